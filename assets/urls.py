from django.urls import include, path

from assets import views

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
    path("purchases/import/", views.purchase_import_view, name="purchase-import"),
    path("purchases/import/template.<str:fmt>", views.purchase_import_template_view, name="purchase-import-template"),
    path("purchases/import/<int:pk>/", views.purchase_import_detail_view, name="purchase-import-detail"),
    path("purchases/import/<int:pk>/status/", views.purchase_import_status_view, name="purchase-import-status"),
    path("purchases/import/<int:pk>/confirm/", views.purchase_import_confirm_view, name="purchase-import-confirm"),
    path("purchases/import/<int:pk>/resume/", views.purchase_import_resume_view, name="purchase-import-resume"),
    path("purchases/import/<int:pk>/errors.csv", views.purchase_import_errors_view, name="purchase-import-errors"),
    path("members/<str:member_no>/balance/adjust/", views.balance_adjust_view, name="balance-adjust"),
    path("members/<str:member_no>/points/adjust/", views.points_adjust_view, name="points-adjust"),
    path("members/<str:member_no>/coupons/issue/", views.coupon_issue_view, name="coupon-issue"),
    path("members/<str:member_no>/coupons/<int:pk>/void/", views.coupon_void_view, name="coupon-void"),
    path("counter/", include("assets.counter_urls")),
    path("points/sign-in/", views.sign_in_settings_view, name="sign-in-settings"),
    path("points/exchange/", views.exchange_items_view, name="exchange-items"),
    path("points/exchange/new/", views.exchange_item_edit_view, name="exchange-item-create"),
    path("points/exchange/<int:pk>/", views.exchange_item_edit_view, name="exchange-item-edit"),
]
