"""Member-portal views: phone-first pages under /m/, with their own base template and their own sign-in
(members.portal_auth). Every form is a plain POST that works without JavaScript."""

import time

from axes.helpers import get_client_ip_address
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from members import services
from members.models import Member
from members.portal_auth import (
    PortalAuthError,
    PortalCodeRefused,
    PortalRateLimited,
    PortalRequest,
    portal_code_proved_recently,
    portal_code_send,
    portal_code_tries_left,
    portal_code_verify,
    portal_login,
    portal_login_required,
    portal_logout,
    portal_member,
    portal_password_exists,
    portal_password_login,
    portal_password_set,
    portal_session_refresh,
    safe_next,
)
from members.portal_forms import CodeForm, PasswordLoginForm, PasswordSetForm, PhoneForm, RegisterForm
from members.sms import SmsError, mask_phone

# the sign-in flow's state in the portal session: never in a URL, never in a page but masked
PENDING_PHONE = "portal_login_phone"
PENDING_NEXT = "portal_login_next"
PROVED_PHONE = "portal_proved_phone"
PROVED_AT = "portal_proved_at"
REGISTER_WITHIN = 15 * 60  # seconds after proving the phone


@portal_login_required
def home(request: PortalRequest) -> HttpResponse:
    return render(request, "members/portal/home.html", {"tab": "home", "member": request.member})


@portal_login_required
def member_code(request: PortalRequest) -> HttpResponse:
    return render(request, "members/portal/member_code.html", {"tab": "code", "member": request.member})


def _me_page(request: PortalRequest, form: PasswordSetForm | None = None) -> HttpResponse:
    has_password = portal_password_exists(request.member)
    ask_current = has_password and not portal_code_proved_recently(request)
    context = {
        "tab": "me",
        "member": request.member,
        "has_password": has_password,
        "password_form": form or PasswordSetForm(ask_current=ask_current),
    }
    return render(request, "members/portal/me.html", context)


@portal_login_required
def me(request: PortalRequest) -> HttpResponse:
    return _me_page(request)


@require_POST
@portal_login_required
def password_set(request: PortalRequest) -> HttpResponse:
    member = request.member
    ask_current = portal_password_exists(member) and not portal_code_proved_recently(request)
    form = PasswordSetForm(request.POST, ask_current=ask_current)
    if form.is_valid():
        try:
            if ask_current and member.phone:
                portal_password_login(member.phone.as_e164, form.cleaned_data["current_password"], ip=_ip(request))
        except PortalRateLimited as exc:
            form.add_error(None, str(exc))
        except PortalAuthError:
            form.add_error("current_password", _("This is not your current password."))
        else:
            portal_password_set(member=member, password=form.cleaned_data["new_password"])
            portal_session_refresh(request, member)
            messages.success(request, _("Password saved. Other devices signed in to your account are signed out."))
            return redirect("portal:me")
    return _me_page(request, form)


def _ip(request: HttpRequest) -> str | None:
    return get_client_ip_address(request)  # type: ignore[no-any-return]


def login(request: HttpRequest) -> HttpResponse:
    """Step 1: the phone number. Every valid number gets the same answer (a code is sent to it, member or not:
    a new member registers after proving it), so this page tells nobody who is a member."""
    if portal_member(request) is not None:
        return redirect(safe_next(request, request.GET.get("next")))
    form = PhoneForm(request.POST or None, initial={"next": request.GET.get("next", "")})
    status = 200
    if request.method == "POST" and form.is_valid():
        phone = form.cleaned_data["phone"]
        try:
            portal_code_send(phone, ip=_ip(request))
        except PortalRateLimited as exc:
            if exc.scope == "phone-minute":  # a code is already on its way: go and type it
                messages.info(request, str(exc))
                return _to_code_step(request, phone, form.cleaned_data["next"])
            form.add_error(None, str(exc))
            status = 429
        except SmsError:
            form.add_error(None, _("We could not send a text message just now. Try again in a minute."))
            status = 503
        else:
            return _to_code_step(request, phone, form.cleaned_data["next"])
    return render(request, "members/portal/login.html", {"tab": "me", "form": form}, status=status)


def _to_code_step(request: HttpRequest, phone: str, next_url: str) -> HttpResponse:
    request.session[PENDING_PHONE] = phone
    request.session[PENDING_NEXT] = safe_next(request, next_url)
    return redirect("portal:login-code")


def login_code(request: HttpRequest) -> HttpResponse:
    """Step 2: the code from the text message."""
    phone = request.session.get(PENDING_PHONE)
    if not phone:
        return redirect("portal:login")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            right = portal_code_verify(phone, form.cleaned_data["code"])
        except PortalCodeRefused as exc:
            form.add_error("code", str(exc))
        else:
            if right:
                return _phone_proved(request, phone)
            left = portal_code_tries_left(phone)
            form.add_error(
                "code",
                ngettext("That code is not right. %(n)s more try.", "That code is not right. %(n)s more tries.", left)
                % {"n": left},
            )
    context = {"tab": "me", "form": form, "masked_phone": mask_phone(phone)}
    return render(request, "members/portal/login_code.html", context)


@require_POST
def login_resend(request: HttpRequest) -> HttpResponse:
    phone = request.session.get(PENDING_PHONE)
    if not phone:
        return redirect("portal:login")
    try:
        portal_code_send(phone, ip=_ip(request))
    except PortalRateLimited as exc:
        messages.error(request, str(exc))
    except SmsError:
        messages.error(request, _("We could not send a text message just now. Try again in a minute."))
    else:
        messages.success(request, _("A new code is on its way. Only the newest code works."))
    return redirect("portal:login-code")


def _phone_proved(request: HttpRequest, phone: str) -> HttpResponse:
    session = request.session
    next_url = safe_next(request, session.get(PENDING_NEXT))
    member = Member.objects.filter(phone=phone).first()
    if member is None:
        session.pop(PENDING_PHONE, None)
        session[PROVED_PHONE], session[PROVED_AT] = phone, time.time()
        return redirect("portal:login-register")
    if member.status == Member.Status.CANCELLED:
        portal_logout(request)
        return render(request, "members/portal/login_closed.html", {"tab": "me"}, status=403)
    return _signed_in(request, member, next_url)


def _signed_in(request: HttpRequest, member: Member, next_url: str, *, by_code: bool = True) -> HttpResponse:
    portal_login(request, member, by_code=by_code)
    if member.status == Member.Status.FROZEN:
        messages.warning(
            request,
            _("Your membership is frozen: you can see your account but not spend from it. Ask at a store."),
        )
    return redirect(next_url)


def login_register(request: HttpRequest) -> HttpResponse:
    """Step 3, for a proved number that is no member's yet: join, then signed in."""
    session = request.session
    phone, proved_at = session.get(PROVED_PHONE), session.get(PROVED_AT)
    if not phone or proved_at is None or time.time() - float(proved_at) > REGISTER_WITHIN:
        session.pop(PROVED_PHONE, None)
        return redirect("portal:login")
    next_url = safe_next(request, session.get(PENDING_NEXT))
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_register(
                phone=phone,
                name=form.cleaned_data["name"],
                channel=Member.Channel.PORTAL,
                marketing_consent=form.cleaned_data["marketing_consent"],
            )
        except services.MemberError as exc:
            existing = Member.objects.filter(phone=phone).first() if exc.field == "phone" else None
            if existing is None:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            elif existing.status == Member.Status.CANCELLED:
                portal_logout(request)
                return render(request, "members/portal/login_closed.html", {"tab": "me"}, status=403)
            else:  # registered at a counter a moment ago: the phone is proved, so sign that member in
                return _signed_in(request, existing, next_url)
        else:
            messages.success(request, _("Welcome! You are a member now."))
            return _signed_in(request, member, next_url)
    context = {"tab": "me", "form": form, "masked_phone": mask_phone(phone)}
    return render(request, "members/portal/login_register.html", context)


def login_password(request: HttpRequest) -> HttpResponse:
    """Sign in with phone and password, for members who set one on the Me page."""
    if portal_member(request) is not None:
        return redirect(safe_next(request, request.GET.get("next")))
    form = PasswordLoginForm(request.POST or None, initial={"next": request.GET.get("next", "")})
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            member = portal_password_login(form.cleaned_data["phone"], form.cleaned_data["password"], ip=_ip(request))
        except PortalRateLimited as exc:
            form.add_error(None, str(exc))
            status = 429
        except PortalAuthError as exc:
            form.add_error(None, str(exc))
        else:
            return _signed_in(request, member, safe_next(request, form.cleaned_data["next"]), by_code=False)
    return render(request, "members/portal/login_password.html", {"tab": "me", "form": form}, status=status)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    portal_logout(request)
    messages.info(request, _("You are signed out."))
    return redirect("portal:login")
