"""Back-office views of the members app, one module per area; urls.py imports them from here."""

from members.views.imports import (
    member_import_confirm_view,
    member_import_detail_view,
    member_import_errors_view,
    member_import_status_view,
    member_import_template_view,
    member_import_view,
)
from members.views.member_list import member_list_view, members_bulk_freeze_view, members_export_view
from members.views.member_page import (
    member_cancel_view,
    member_create_view,
    member_detail_view,
    member_edit_view,
    member_freeze_view,
    member_grant_plan_view,
    member_unfreeze_view,
)
from members.views.plans import plan_edit_view, plan_list_view
from members.views.staff import (
    LoginView,
    lockout_response,
    staff_create_view,
    staff_edit_view,
    staff_list_view,
    store_edit_view,
    store_list_view,
    store_switch,
)
from members.views.terminals import (
    terminal_activate_view,
    terminal_create_view,
    terminal_deactivate_view,
    terminal_list_view,
    terminal_rotate_view,
)

__all__ = [
    "LoginView",
    "lockout_response",
    "member_cancel_view",
    "member_create_view",
    "member_detail_view",
    "member_edit_view",
    "member_freeze_view",
    "member_grant_plan_view",
    "member_import_confirm_view",
    "member_import_detail_view",
    "member_import_errors_view",
    "member_import_status_view",
    "member_import_template_view",
    "member_import_view",
    "member_list_view",
    "member_unfreeze_view",
    "members_bulk_freeze_view",
    "members_export_view",
    "plan_edit_view",
    "plan_list_view",
    "staff_create_view",
    "staff_edit_view",
    "staff_list_view",
    "store_edit_view",
    "store_list_view",
    "store_switch",
    "terminal_activate_view",
    "terminal_create_view",
    "terminal_deactivate_view",
    "terminal_list_view",
    "terminal_rotate_view",
]
