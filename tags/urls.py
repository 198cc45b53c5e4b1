from django.urls import path

from config.views import section_page

app_name = "tags"
urlpatterns = [
    path("", section_page, {"section": "tags"}, name="index"),
]
