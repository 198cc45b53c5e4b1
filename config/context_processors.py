from typing import Any

from django.conf import settings

from config.navigation import sections_for
from members import selectors as members_selectors
from members.permissions import OfficeRequest
from members.roles import Role


def office(request: OfficeRequest) -> dict[str, Any]:
    role = getattr(request, "role", None)
    if role is None:
        return {"merchant_name": settings.HUIYUAN_MERCHANT_NAME}
    return {
        "merchant_name": settings.HUIYUAN_MERCHANT_NAME,
        "nav_sections": sections_for(role),
        "role_label": Role(role).label,
        "switcher_stores": [] if role == Role.CASHIER else members_selectors.store_list(viewer=request.staff),
        "office_store": request.office_store,
    }
