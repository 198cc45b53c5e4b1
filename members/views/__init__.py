"""Back-office views of the members app, one module per area; urls.py imports them from here."""

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

__all__ = [
    "LoginView",
    "lockout_response",
    "staff_create_view",
    "staff_edit_view",
    "staff_list_view",
    "store_edit_view",
    "store_list_view",
    "store_switch",
]
