from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from members import portal, portal_self_service, views

app_name = "members"
MEMBER_NO = r"^members/(?P<member_no>[0-9]{10,20})/"  # digits only, so /members/new/ and /members/plans/ stay free
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("store/switch/", views.store_switch, name="store-switch"),
    path("members/", views.member_list_view, name="index"),
    path("members/bulk-freeze/", views.members_bulk_freeze_view, name="bulk-freeze"),
    path("members/export/", views.members_export_view, name="export"),
    # member page, registration and paid plans: fixed paths first, then member numbers (digits only)
    path("members/new/", views.member_create_view, name="member-create"),
    path("members/plans/", views.plan_list_view, name="plan-list"),
    path("members/plans/new/", views.plan_edit_view, name="plan-create"),
    path("members/plans/<int:pk>/", views.plan_edit_view, name="plan-edit"),
    path("members/import/", views.member_import_view, name="import"),
    path("members/import/template.<str:fmt>", views.member_import_template_view, name="import-template"),
    path("members/import/<int:pk>/", views.member_import_detail_view, name="import-detail"),
    path("members/import/<int:pk>/status/", views.member_import_status_view, name="import-status"),
    path("members/import/<int:pk>/confirm/", views.member_import_confirm_view, name="import-confirm"),
    path("members/import/<int:pk>/errors.csv", views.member_import_errors_view, name="import-errors"),
    re_path(MEMBER_NO + r"$", views.member_detail_view, name="member-detail"),
    re_path(MEMBER_NO + r"edit/$", views.member_edit_view, name="member-edit"),
    re_path(MEMBER_NO + r"freeze/$", views.member_freeze_view, name="member-freeze"),
    re_path(MEMBER_NO + r"unfreeze/$", views.member_unfreeze_view, name="member-unfreeze"),
    re_path(MEMBER_NO + r"cancel/$", views.member_cancel_view, name="member-cancel"),
    re_path(MEMBER_NO + r"grant-plan/$", views.member_grant_plan_view, name="member-grant-plan"),
    path("settings/", views.store_list_view, name="settings"),
    path("settings/stores/", views.store_list_view, name="store-list"),
    path("settings/stores/new/", views.store_edit_view, name="store-create"),
    path("settings/stores/<int:pk>/", views.store_edit_view, name="store-edit"),
    path("settings/staff/", views.staff_list_view, name="staff-list"),
    path("settings/staff/new/", views.staff_create_view, name="staff-create"),
    path("settings/staff/<int:pk>/", views.staff_edit_view, name="staff-edit"),
    path("settings/terminals/", views.terminal_list_view, name="terminal-list"),
    path("settings/terminals/new/", views.terminal_create_view, name="terminal-create"),
    path("settings/terminals/<int:pk>/rotate/", views.terminal_rotate_view, name="terminal-rotate"),
    path("settings/terminals/<int:pk>/deactivate/", views.terminal_deactivate_view, name="terminal-deactivate"),
    path("settings/terminals/<int:pk>/activate/", views.terminal_activate_view, name="terminal-activate"),
]

portal_urlpatterns = [
    path("", portal.home, name="home"),
    path("code/", portal.member_code, name="code"),
    path("balance/", portal.balance, name="balance"),
    path("points/", portal.points, name="points"),
    path("points/expiry/", portal.points_expiry, name="points-expiry"),
    path("coupons/", portal.coupons, name="coupons"),
    path("coupons/<int:pk>/", portal.coupon, name="coupon"),
    path("coupons/monthly/", portal_self_service.monthly_claim, name="monthly-claim"),
    path("sign-in/", portal_self_service.sign_in, name="sign-in"),
    path("sign-in/now/", portal_self_service.sign_in_post, name="sign-in-post"),
    path("exchange/", portal_self_service.exchange, name="exchange"),
    path("exchange/confirm/", portal_self_service.exchange_confirm, name="exchange-confirm"),
    path("purchases/", portal.purchases, name="purchases"),
    path("purchases/<int:pk>/", portal.purchase, name="purchase"),
    path("me/", portal.me, name="me"),
    path("me/password/", portal.password_set, name="password"),
    path("login/", portal.login, name="login"),
    path("login/code/", portal.login_code, name="login-code"),
    path("login/code/resend/", portal.login_resend, name="login-resend"),
    path("login/register/", portal.login_register, name="login-register"),
    path("login/password/", portal.login_password, name="login-password"),
    path("logout/", portal.logout, name="logout"),
]
