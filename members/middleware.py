import time
from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from members.models import Staff, Store
from members.roles import Role

# Auditors are read-only, but signing out, switching language or the viewed store changes no data.
AUDITOR_POST_ALLOWED = ("members:logout", "set_language", "members:store-switch")
SESSION_STORE_KEY = "office_store_id"


class StaffSessionMiddleware:
    """Attach request.staff, request.role and request.office_store; expire idle staff sessions;
    refuse unsafe methods to auditors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.staff, request.role, request.office_store = None, None, None  # type: ignore[attr-defined]
        if request.user.is_authenticated and not request.path.startswith(("/m/", "/api/", "/static/")):
            if response := self._expire_if_idle(request):
                return response
            self._attach(request)
            if request.role == Role.AUDITOR and request.method not in ("GET", "HEAD", "OPTIONS"):  # type: ignore[attr-defined]
                allowed = {reverse(name) for name in AUDITOR_POST_ALLOWED}
                if request.path not in allowed:
                    raise PermissionDenied
        return self.get_response(request)

    def _expire_if_idle(self, request: HttpRequest) -> HttpResponse | None:
        now = time.time()
        last = request.session.get("staff_seen_at")
        if last is not None and now - last > settings.HUIYUAN_STAFF_IDLE_MINUTES * 60:
            logout(request)
            messages.info(request, _("You were signed out after a period of inactivity."))
            if request.headers.get("HX-Request") == "true":
                return HttpResponseClientRedirect(reverse(settings.LOGIN_URL))
            return redirect_to_login(request.get_full_path())
        if last is None or now - last > 60:  # a session write per minute at most, not per request
            request.session["staff_seen_at"] = now
        return None

    def _attach(self, request: HttpRequest) -> None:
        staff = (
            Staff.objects.select_related("store", "user")
            .prefetch_related("user__groups")
            .filter(user=cast(User, request.user))
            .first()
        )
        role = staff.role if staff else None
        if role is None and request.user.is_superuser:
            role = Role.OWNER
        store = None
        if role == Role.CASHIER:
            store = staff.store if staff else None
        elif (store_id := request.session.get(SESSION_STORE_KEY)) is not None:
            store = Store.objects.filter(pk=store_id).first()
        request.staff, request.role, request.office_store = staff, role, store  # type: ignore[attr-defined]
