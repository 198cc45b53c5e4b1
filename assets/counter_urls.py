"""The counter screen's URLs, under /assets/counter/ in the assets namespace."""

from django.urls import path

from assets.views import counter as views

urlpatterns = [
    path("", views.counter_view, name="counter"),
    path("welcome/", views.counter_welcome_view, name="counter-welcome"),
    path("find/", views.counter_find_view, name="counter-find"),
    path("register/", views.counter_register_view, name="counter-register"),
    path("members/<str:member_no>/", views.counter_member_view, name="counter-member"),
    path("members/<str:member_no>/points/", views.counter_points_view, name="counter-points"),
    path("purchase/", views.counter_purchase_view, name="counter-purchase"),
    path("purchase/preview/", views.counter_purchase_preview_view, name="counter-purchase-preview"),
    path("purchase/edit/", views.counter_purchase_edit_view, name="counter-purchase-edit"),
    path("purchase/confirm/", views.counter_purchase_confirm_view, name="counter-purchase-confirm"),
    path("top-up/", views.counter_top_up_view, name="counter-top-up"),
    path("coupon/", views.counter_coupon_view, name="counter-coupon"),
    path("recent/", views.counter_recent_view, name="counter-recent"),
    path("orders/<str:order_no>/receipt/", views.counter_receipt_view, name="counter-receipt"),
    path("orders/<str:order_no>/refund/", views.counter_refund_view, name="counter-refund"),
    path("shift/", views.counter_shift_view, name="counter-shift"),
]
