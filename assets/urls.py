from django.urls import path

from config.views import section_page

app_name = "assets"
urlpatterns = [
    path("balance/", section_page, {"section": "balance"}, name="balance"),
    path("points/", section_page, {"section": "points"}, name="points"),
    path("coupons/", section_page, {"section": "coupons"}, name="coupons"),
    path("counter/", section_page, {"section": "counter"}, name="counter"),
]
