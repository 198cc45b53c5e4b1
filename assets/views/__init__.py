"""Back-office views of the ledgers, one module per area; urls.py imports them from here."""

from assets.views.balance import balance_view, package_edit_view
from assets.views.coupons import (
    coupon_batch_new_view,
    coupon_batch_status_view,
    coupon_batch_view,
    coupons_view,
    template_edit_view,
)
from assets.views.imports import (
    purchase_import_confirm_view,
    purchase_import_detail_view,
    purchase_import_errors_view,
    purchase_import_resume_view,
    purchase_import_status_view,
    purchase_import_template_view,
    purchase_import_view,
)
from assets.views.member_tabs import (
    MEMBER_TABS,
    balance_adjust_view,
    coupon_issue_view,
    coupon_void_view,
    member_tab_context,
    points_adjust_view,
)
from assets.views.points import points_view
from assets.views.self_service import exchange_item_edit_view, exchange_items_view, sign_in_settings_view

__all__ = [
    "MEMBER_TABS",
    "balance_adjust_view",
    "balance_view",
    "coupon_batch_new_view",
    "coupon_batch_status_view",
    "coupon_batch_view",
    "coupon_issue_view",
    "coupon_void_view",
    "coupons_view",
    "exchange_item_edit_view",
    "exchange_items_view",
    "member_tab_context",
    "package_edit_view",
    "points_adjust_view",
    "points_view",
    "purchase_import_confirm_view",
    "purchase_import_detail_view",
    "purchase_import_errors_view",
    "purchase_import_resume_view",
    "purchase_import_status_view",
    "purchase_import_template_view",
    "purchase_import_view",
    "sign_in_settings_view",
    "template_edit_view",
]
