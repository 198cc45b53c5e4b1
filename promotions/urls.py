from django.urls import path

from config.views import section_page

app_name = "promotions"
urlpatterns = [
    path("", section_page, {"section": "promotions"}, name="index"),
]
