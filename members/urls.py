from django.contrib.auth import views as auth_views
from django.urls import path

from config.views import section_page
from members import portal, views

app_name = "members"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("store/switch/", views.store_switch, name="store-switch"),
    path("members/", section_page, {"section": "members"}, name="index"),
    path("settings/", views.store_list_view, name="settings"),
    path("settings/stores/", views.store_list_view, name="store-list"),
    path("settings/stores/new/", views.store_edit_view, name="store-create"),
    path("settings/stores/<int:pk>/", views.store_edit_view, name="store-edit"),
    path("settings/staff/", views.staff_list_view, name="staff-list"),
    path("settings/staff/new/", views.staff_create_view, name="staff-create"),
    path("settings/staff/<int:pk>/", views.staff_edit_view, name="staff-edit"),
]

portal_urlpatterns = [
    path("", portal.home, name="home"),
    path("code/", portal.member_code, name="code"),
    path("me/", portal.me, name="me"),
    path("login/", portal.login, name="login"),
]
