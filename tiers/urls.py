from django.urls import path

from benefits import views as benefits_views
from tiers import views

app_name = "tiers"
urlpatterns = [
    path("", views.ladder_view, name="index"),
    path("new/", views.tier_edit_view, name="tier-create"),
    path("<int:pk>/", views.tier_edit_view, name="tier-edit"),
    path("<int:pk>/delete/", views.tier_delete_view, name="tier-delete"),
    path("rules/", views.rules_view, name="rules"),
    path("simulations/<int:pk>/", views.simulation_view, name="simulation"),
    path("benefits/", benefits_views.benefit_list_view, name="benefits"),
    path("benefits/new/", benefits_views.benefit_edit_view, name="benefit-create"),
    path("benefits/<int:pk>/", benefits_views.benefit_edit_view, name="benefit-edit"),
    path("members/<str:member_no>/floor/", views.member_floor_view, name="member-floor"),
]
