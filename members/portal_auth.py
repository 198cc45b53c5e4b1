"""Member-portal sign-in: one-time codes texted to a phone, an optional password, and the portal's own session.

Members are never Django users: a signed-in member is a member id in the portal's session (a cookie of its own,
scoped to /m/, see members.middleware.SessionMiddleware), checked on every request against the member's
status, phone and password, so a cancelled membership or a changed phone or password ends other sessions.
Nothing here logs a phone number or a code.
"""

import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import rotate_token
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_htmx.http import HttpResponseClientRedirect

from members import sms
from members.middleware import PORTAL_PATH, is_portal_request
from members.models import Member, PortalCode, PortalPassword
from members.services import MemberError

logger = logging.getLogger("huiyuan.portal")

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=5)
CODE_MAX_ATTEMPTS = 5  # the 5th wrong try locks the code (a CHECK constraint keeps attempts <= 5)
SEND_INTERVAL = timedelta(seconds=60)  # per phone
SENDS_PER_PHONE_HOUR = 5
CODES_KEPT = timedelta(days=1)  # older codes are deleted when a new one is sent
PASSWORD_FAILURES_PER_PHONE = 5  # per PASSWORD_PHONE_WINDOW
PASSWORD_PHONE_WINDOW = 15 * 60
PASSWORD_FAILURES_PER_IP = 20  # per hour
HOUR = 3600

# portal session keys (the portal's session holds nothing else but the flow's own "portal_" keys)
MEMBER_KEY = "portal_member_id"
HASH_KEY = "portal_member_hash"
SEEN_KEY = "portal_seen_day"
CODE_PROVED_KEY = "portal_code_proved_at"
PASSWORD_RECHECK_AFTER = 15 * 60  # seconds after a code sign-in during which a password change needs no old one


class PortalAuthError(MemberError):
    """A refused sign-in step; str(exc) is safe to show to the person signing in."""


class PortalRateLimited(PortalAuthError):
    """Too many tries; `scope` is what was counted (address, phone-minute, phone-hour, password)."""

    def __init__(self, message: str, retry_after: int, scope: str) -> None:
        super().__init__(message)
        self.retry_after, self.scope = retry_after, scope


class PortalCodeRefused(PortalAuthError):
    """No code can be accepted now; `reason` is one of missing, used, expired, locked."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, "code")
        self.reason = reason


def _digest(value: str) -> str:
    """A keyed digest: cache keys and advisory locks never hold a phone number or an address."""
    return salted_hmac("huiyuan.portal.key", value, algorithm="sha256").hexdigest()[:32]


def _code_hash(phone: str, purpose: str, code: str) -> str:
    return salted_hmac("huiyuan.portal.code", f"{purpose}:{phone}:{code}", algorithm="sha256").hexdigest()


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return ngettext("%(n)s second", "%(n)s seconds", seconds) % {"n": seconds}
    minutes = -(-seconds // 60)
    return ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}


# ------------------------------------------------------------------ fixed-window counters in the cache


def _window_key(name: str, subject: str, window: int, now: float) -> tuple[str, int]:
    slot = int(now // window)
    return f"portal:{name}:{_digest(subject)}:{slot}", int((slot + 1) * window - now) + 1


def _hit(name: str, subject: str, *, limit: int, window: int) -> int | None:
    """Count one hit in this window; the seconds until the window ends when that is past `limit`, else None.
    add and incr are atomic in Redis and in local memory alike, so concurrent hits are all counted."""
    key, left = _window_key(name, subject, window, time.time())
    cache.add(key, 0, timeout=window + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 60)
        count = 1
    return left if count > limit else None


def _unhit(name: str, subject: str, *, window: int) -> None:
    key, _left = _window_key(name, subject, window, time.time())
    with contextlib.suppress(ValueError):  # the window ended meanwhile
        cache.decr(key)


# ------------------------------------------------------------------ one-time codes


def portal_code_send(
    phone: str, *, ip: str | None, purpose: str = PortalCode.Purpose.LOGIN, now: datetime | None = None
) -> None:
    """Text a fresh code to `phone` (E.164) for `purpose`; it replaces any earlier code. Every phone is treated
    alike, member or not (a new member registers after proving the phone), so the answer tells nobody who is a
    member. At most one code a minute and SENDS_PER_PHONE_HOUR an hour per phone, and
    HUIYUAN_PORTAL_CODES_PER_IP_HOUR an hour per client address.
    Call it outside a transaction: the text goes out after the code is committed.
    Raises PortalRateLimited, sms.SmsError."""
    now = now or timezone.now()
    ip_subject = ip or "unknown"
    if (wait := _hit("send-ip", ip_subject, limit=settings.HUIYUAN_PORTAL_CODES_PER_IP_HOUR, window=HOUR)) is not None:
        raise PortalRateLimited(
            _("Too many codes were asked for from this network. Try again in %(wait)s.") % {"wait": _wait_text(wait)},
            wait,
            "address",
        )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    try:
        with transaction.atomic(durable=True):
            # Two sends for one phone at once would both see "no code in the last minute": a lock per phone
            # (a transaction-level advisory lock on a digest of it) lets them count one after the other.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('portal_code'), hashtext(%s))", [_digest(phone)])
            # the hourly count is the phone's, whatever the codes were for; the minute between two codes is
            # counted per purpose, so a sign-in right after a phone change is not told to wait for a code that
            # cannot sign in
            recent = list(
                PortalCode.objects.filter(phone=phone, created_at__gt=now - timedelta(hours=1))
                .order_by("-created_at", "-pk")
                .values_list("created_at", "purpose")[:SENDS_PER_PHONE_HOUR]
            )
            last_same = next((at for at, sent_for in recent if sent_for == purpose), None)
            if last_same is not None and last_same > now - SEND_INTERVAL:
                wait = int((last_same + SEND_INTERVAL - now).total_seconds()) + 1
                raise PortalRateLimited(
                    _("A code was just sent to this number. You can ask for another in %(wait)s.")
                    % {"wait": _wait_text(wait)},
                    wait,
                    "phone-minute",
                )
            if len(recent) >= SENDS_PER_PHONE_HOUR:
                wait = int((recent[-1][0] + timedelta(hours=1) - now).total_seconds()) + 1
                raise PortalRateLimited(
                    _("Too many codes were sent to this number. Try again in %(wait)s.") % {"wait": _wait_text(wait)},
                    wait,
                    "phone-hour",
                )
            PortalCode.objects.filter(created_at__lt=now - CODES_KEPT).delete()
            sent = PortalCode.objects.create(
                phone=phone,
                purpose=purpose,
                code_hash=_code_hash(phone, purpose, code),
                created_at=now,
                expires_at=now + CODE_TTL,
            )
    except PortalRateLimited:
        _unhit("send-ip", ip_subject, window=HOUR)  # refused for the phone: not a send from this address
        raise
    try:
        sms.sms_send(phone_e164=phone, text=_code_text(code, purpose))
    except sms.SmsError as exc:
        # never sent: it counts neither against the phone nor against the address
        PortalCode.objects.filter(pk=sent.pk).delete()
        _unhit("send-ip", ip_subject, window=HOUR)
        logger.warning("portal code not sent", extra={"error": str(exc), "purpose": purpose})
        raise


def _code_text(code: str, purpose: str) -> str:
    values = {"merchant": settings.HUIYUAN_MERCHANT_NAME, "code": code, "minutes": int(CODE_TTL.total_seconds() // 60)}
    if purpose == PortalCode.Purpose.PHONE_CHANGE:
        return (
            _(
                "%(merchant)s: %(code)s is your code to confirm this phone number. It is valid for %(minutes)s "
                "minutes; do not share it."
            )
            % values
        )
    return (
        _("%(merchant)s: your sign-in code is %(code)s. It is valid for %(minutes)s minutes; do not share it.") % values
    )


def _latest_code(phone: str, purpose: str) -> PortalCode | None:
    return PortalCode.objects.filter(phone=phone, purpose=purpose).order_by("-created_at", "-pk").first()


def _refusal(row: PortalCode | None, now: datetime) -> PortalCodeRefused | None:
    """Why this code can no longer be accepted, or None while it can."""
    if row is None:
        return PortalCodeRefused(_("Ask for a code first."), "missing")
    if row.used_at is not None:
        return PortalCodeRefused(_("This code has already been used. Ask for a new one."), "used")
    if row.attempts >= CODE_MAX_ATTEMPTS:
        return PortalCodeRefused(_("Too many wrong tries: this code is locked. Ask for a new one."), "locked")
    if row.expires_at <= now:
        return PortalCodeRefused(_("This code has expired. Ask for a new one."), "expired")
    return None


def portal_code_verify(
    phone: str, code: str, *, purpose: str = PortalCode.Purpose.LOGIN, now: datetime | None = None
) -> bool:
    """Check `code` against the newest code sent to `phone` for `purpose`. True: it was right, and it is now
    used. False: it was wrong and counted (portal_code_tries_left says how many tries remain).
    Raises PortalCodeRefused when no code can be accepted: none sent, used, expired, or locked (also by this
    very try, when it was the 5th wrong one)."""
    now = now or timezone.now()
    row = _latest_code(phone, purpose)
    if (refusal := _refusal(row, now)) is not None:
        raise refusal
    assert row is not None
    if hmac.compare_digest(row.code_hash, _code_hash(phone, purpose, code.strip())):
        # guarded UPDATE: of concurrent right tries exactly one uses the code
        live = PortalCode.objects.filter(pk=row.pk, used_at=None, attempts__lt=CODE_MAX_ATTEMPTS, expires_at__gt=now)
        if live.update(used_at=now):
            return True
    else:
        # guarded UPDATE: concurrent wrong tries are each counted, none past the lock, and each learns its own
        # count (RETURNING), so exactly the 5th wrong try is the one that locks the code
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {PortalCode._meta.db_table} SET attempts = attempts + 1"
                " WHERE id = %s AND used_at IS NULL AND attempts < %s RETURNING attempts",
                [row.pk, CODE_MAX_ATTEMPTS],
            )
            counted = cursor.fetchone()
        if counted is not None and counted[0] < CODE_MAX_ATTEMPTS:
            return False
    row.refresh_from_db(fields=["attempts", "used_at"])
    raise _refusal(row, now) or PortalCodeRefused(_("This code has expired. Ask for a new one."), "expired")


def portal_code_tries_left(phone: str, *, purpose: str = PortalCode.Purpose.LOGIN) -> int:
    row = _latest_code(phone, purpose)
    return 0 if row is None else max(0, CODE_MAX_ATTEMPTS - row.attempts)


# ------------------------------------------------------------------ optional password


def _password_of(member: Member) -> str:
    try:
        return member.portal_password.password
    except PortalPassword.DoesNotExist:
        return ""


def portal_password_exists(member: Member) -> bool:
    return bool(_password_of(member))


def portal_password_set(*, member: Member, password: str) -> None:
    """Set or change the member's portal password (Django's validators and hashers).
    Raises django.core.exceptions.ValidationError when the validators refuse it."""
    validate_password(password)
    saved, _created = PortalPassword.objects.update_or_create(
        member=member, defaults={"password": make_password(password)}
    )
    member.portal_password = saved


def portal_password_login(phone: str, password: str, *, ip: str | None) -> Member:
    """The member whose phone and portal password these are. Every failure gets one message (unknown number,
    no password, wrong password, closed membership); PASSWORD_FAILURES_PER_PHONE wrong tries per phone in 15
    minutes and PASSWORD_FAILURES_PER_IP per address in an hour, then refused for the rest of the window.
    Raises PortalRateLimited, PortalAuthError."""
    ip_subject = ip or "unknown"
    # every try is counted first (atomically), and a right one given back: racing tries cannot slip past
    phone_wait = _hit("password-phone", phone, limit=PASSWORD_FAILURES_PER_PHONE, window=PASSWORD_PHONE_WINDOW)
    ip_wait = _hit("password-ip", ip_subject, limit=PASSWORD_FAILURES_PER_IP, window=HOUR)
    if phone_wait is not None or ip_wait is not None:
        wait = max(phone_wait or 0, ip_wait or 0)
        raise PortalRateLimited(
            _("Too many wrong passwords. Sign in with a text code, or try again in %(wait)s.")
            % {"wait": _wait_text(wait)},
            wait,
            "password",
        )
    member = Member.objects.select_related("portal_password").filter(phone=phone).first()
    encoded = _password_of(member) if member is not None and member.status != Member.Status.CANCELLED else ""
    if encoded:
        right = check_password(password, encoded)
    else:
        make_password(password)  # the same time spent whether or not the number has a password
        right = False
    if not right or member is None:
        raise PortalAuthError(_("Wrong phone number or password."), "password")
    # the right password clears this number's count (as django-axes does for staff); the address keeps its
    # other numbers' failures
    cache.delete(_window_key("password-phone", phone, PASSWORD_PHONE_WINDOW, time.time())[0])
    _unhit("password-ip", ip_subject, window=HOUR)
    return member


# ------------------------------------------------------------------ the portal session


def _session_hash(member: Member) -> str:
    """Changes when the member's phone or password does: sessions signed in before then end."""
    phone = member.phone.as_e164 if member.phone else ""
    value = f"{member.pk}|{phone}|{_password_of(member)}"
    return salted_hmac("huiyuan.portal.session", value, algorithm="sha256").hexdigest()


def _day() -> int:
    return int(time.time() // 86400)


def portal_login(request: HttpRequest, member: Member, *, by_code: bool = False) -> None:
    """Sign `member` in to the portal in this browser: a new portal session (a new key, so nobody who knew the
    old one shares it) that lasts HUIYUAN_PORTAL_SESSION_DAYS since the last visit. Staff sessions are not
    touched. `by_code`: the phone was just proved with a text code."""
    if member.status == Member.Status.CANCELLED:
        raise ValueError("a cancelled membership cannot sign in")  # the views check first; reaching here is a bug
    session = request.session
    session.flush()
    session[MEMBER_KEY] = member.pk
    session[HASH_KEY] = _session_hash(member)
    session[SEEN_KEY] = _day()
    if by_code:
        session[CODE_PROVED_KEY] = time.time()
    session.set_expiry(settings.HUIYUAN_PORTAL_SESSION_DAYS * 86400)  # seconds: counted from each save
    rotate_token(request)
    request._portal_member = member  # type: ignore[attr-defined]


def portal_session_refresh(request: HttpRequest, member: Member) -> None:
    """After the member changed their password or phone: keep this browser signed in under a new session key
    (a key that leaked before the change stops working), end every other session."""
    request.session.cycle_key()
    request.session[HASH_KEY] = _session_hash(member)
    rotate_token(request)


def portal_logout(request: HttpRequest) -> None:
    """End the portal session in this browser (a staff session there is left alone)."""
    request.session.flush()
    request._portal_member = None  # type: ignore[attr-defined]


def portal_member(request: HttpRequest) -> Member | None:
    """The member signed in to the portal on this request, or None. Only portal requests (/m/) carry a portal
    session; a staff session never counts. A cancelled membership, or a phone or password changed since the
    sign-in, ends the session."""
    if hasattr(request, "_portal_member"):
        cached: Member | None = request._portal_member
        return cached
    member = None
    if is_portal_request(request) and (member_id := request.session.get(MEMBER_KEY)) is not None:
        member = (
            Member.objects.select_related("portal_password")
            .exclude(status=Member.Status.CANCELLED)
            .filter(pk=member_id)
            .first()
        )
        if member is None or not constant_time_compare(request.session.get(HASH_KEY, ""), _session_hash(member)):
            request.session.flush()
            member = None
        elif request.session.get(SEEN_KEY) != _day():
            request.session[SEEN_KEY] = _day()  # one session write a day renews the lifetime from this visit
    request._portal_member = member  # type: ignore[attr-defined]
    return member


def portal_code_proved(request: HttpRequest) -> None:
    """The member has just proved their current phone with a text code (a step-up before a sensitive change)."""
    request.session[CODE_PROVED_KEY] = time.time()


def portal_code_proved_recently(request: HttpRequest) -> bool:
    proved = request.session.get(CODE_PROVED_KEY)
    return proved is not None and time.time() - float(proved) < PASSWORD_RECHECK_AFTER


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    """`candidate` when it is a portal page of this site (not a sign-in page), else the portal's home."""
    login = reverse("portal:login")
    if (
        candidate
        and candidate.startswith(PORTAL_PATH)
        and not candidate.startswith(login)
        and url_has_allowed_host_and_scheme(candidate, {request.get_host()}, require_https=request.is_secure())
    ):
        return candidate
    return reverse("portal:home")


View = Callable[..., HttpResponse]


class PortalRequest(HttpRequest):
    """A portal request past portal_login_required (for type checking only)."""

    member: Member


def portal_login_required(view: View) -> View:
    """Let in a signed-in member (as request.member); send anyone else to the portal's sign-in page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        member = portal_member(request)
        if member is None:
            login_url = f"{reverse('portal:login')}?{urlencode({'next': request.path})}"
            if request.headers.get("HX-Request") == "true":
                return HttpResponseClientRedirect(login_url)
            return HttpResponseRedirect(login_url)
        request.member = member  # type: ignore[attr-defined]
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)  # a member's own data: never kept by a shared cache or the back button
        return response

    return wrapped
