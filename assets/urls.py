from django.urls import path

from assets import views
from config.views import section_page

app_name = "assets"
urlpatterns = [
    path("balance/", views.balance_view, name="balance"),
    path("balance/packages/new/", views.package_edit_view, name="package-create"),
    path("balance/packages/<int:pk>/", views.package_edit_view, name="package-edit"),
    path("points/", views.points_view, name="points"),
    path("coupons/", views.coupons_view, name="coupons"),
    path("coupons/templates/new/", views.template_edit_view, name="template-create"),
    path("coupons/templates/<int:pk>/", views.template_edit_view, name="template-edit"),
    path("coupons/issue/", views.coupon_batch_new_view, name="coupon-batch-new"),
    path("coupons/issue/<int:pk>/", views.coupon_batch_view, name="coupon-batch"),
    path("coupons/issue/<int:pk>/status/", views.coupon_batch_status_view, name="coupon-batch-status"),
    path("members/<str:member_no>/balance/adjust/", views.balance_adjust_view, name="balance-adjust"),
    path("members/<str:member_no>/points/adjust/", views.points_adjust_view, name="points-adjust"),
    path("members/<str:member_no>/coupons/issue/", views.coupon_issue_view, name="coupon-issue"),
    path("members/<str:member_no>/coupons/<int:pk>/void/", views.coupon_void_view, name="coupon-void"),
    path("counter/", section_page, {"section": "counter"}, name="counter"),
]
