from django.urls import path

from config.views import section_page

app_name = "tiers"
urlpatterns = [
    path("", section_page, {"section": "tiers"}, name="index"),
]
