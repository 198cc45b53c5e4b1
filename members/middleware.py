import time
from collections.abc import Callable
from typing import Literal, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from members.models import Staff, Store
from members.roles import Role

# Auditors are read-only, but signing out, switching language or the viewed store changes no data.
AUDITOR_POST_ALLOWED = ("members:logout", "set_language", "members:store-switch")
SESSION_STORE_KEY = "office_store_id"
PORTAL_PATH = "/m/"


def is_portal_request(request: HttpRequest) -> bool:
    return request.path.startswith(PORTAL_PATH)


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware, except that member-portal requests (/m/) use a session of their own in a
    cookie of their own, scoped to /m/. A staff sign-in and a member sign-in in one browser never share a
    session: neither can open the other's pages, sign the other out, or stretch the other's lifetime."""

    def process_request(self, request: HttpRequest) -> None:
        if not is_portal_request(request):
            return super().process_request(request)
        request.session = self.SessionStore(request.COOKIES.get(settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME))
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not is_portal_request(request):
            return super().process_response(request, response)  # type: ignore[no-any-return]
        # Django's own process_response, with the portal's cookie name and path
        name = settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME
        try:
            session = request.session
            accessed, modified, empty = session.accessed, session.modified, session.is_empty()
        except AttributeError:
            return response
        samesite = cast(Literal["Lax", "Strict", "None"], settings.SESSION_COOKIE_SAMESITE)
        need_vary_cookie = accessed
        if name in request.COOKIES and empty:
            response.delete_cookie(name, path=PORTAL_PATH, domain=settings.SESSION_COOKIE_DOMAIN, samesite=samesite)
            need_vary_cookie = True
        elif (modified or settings.SESSION_SAVE_EVERY_REQUEST) and not empty and response.status_code < 500:
            max_age: int | None = None
            expires: str | None = None
            if not session.get_expire_at_browser_close():
                max_age = session.get_expiry_age()
                expires = http_date(time.time() + max_age)
            try:
                session.save()
            except UpdateError:
                raise SessionInterrupted("The portal session was deleted before the request completed.") from None
            response.set_cookie(
                name,
                str(session.session_key),
                max_age=max_age,
                expires=expires,
                domain=settings.SESSION_COOKIE_DOMAIN,
                path=PORTAL_PATH,
                secure=bool(settings.SESSION_COOKIE_SECURE),
                httponly=True,
                samesite=samesite,
            )
            need_vary_cookie = True
        if need_vary_cookie:
            patch_vary_headers(response, ("Cookie",))
        return response


class StaffSessionMiddleware:
    """Attach request.staff, request.role and request.office_store; expire idle staff sessions;
    refuse unsafe methods to auditors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.staff, request.role, request.office_store = None, None, None  # type: ignore[attr-defined]
        # portal requests carry the portal's session, never a staff one (SessionMiddleware above)
        if not request.path.startswith((PORTAL_PATH, "/api/", "/static/")) and request.user.is_authenticated:
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
