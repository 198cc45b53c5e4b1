from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails

from members.models import Staff, Store

View = Callable[..., HttpResponse]


class OfficeRequest(HttpRequest):
    """A back-office request as the middleware leaves it (for type checking only)."""

    htmx: HtmxDetails
    staff: Staff | None
    role: str | None
    office_store: Store | None


def staff_role_required(*roles: str) -> Callable[[View], View]:
    """Let in signed-in staff whose role is one of `roles` (any role when none are given); 403 for the rest."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            role = getattr(request, "role", None)
            if role is None or (roles and role not in roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
