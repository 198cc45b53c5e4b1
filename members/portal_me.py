"""The member portal's "Me" pages of self-service: the profile (with marketing consent), moving the membership
to a new phone number proved by a text code, and the paid membership's status and renewal."""

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from assets import self_service
from assets.services.errors import LedgerError
from members import portal_selectors, services, sms
from members.models import PortalCode
from members.portal import client_ip, date_formats
from members.portal_auth import (
    PortalCodeRefused,
    PortalRateLimited,
    PortalRequest,
    portal_code_proved,
    portal_code_proved_recently,
    portal_code_send,
    portal_code_tries_left,
    portal_code_verify,
    portal_login_required,
    portal_session_refresh,
)
from members.portal_forms import CodeForm, PhoneChangeForm, ProfileForm
from members.sms import SmsError, mask_phone

logger = logging.getLogger(__name__)

NEW_PHONE = "portal_new_phone"  # the number being proved, kept in the session (never in a URL)
PHONE_CHANGE = PortalCode.Purpose.PHONE_CHANGE


def _sms_failed() -> str:
    return _("We could not send a text message just now. Try again in a minute.")


# ------------------------------------------------------------------ profile


@portal_login_required
def profile(request: PortalRequest) -> HttpResponse:
    member = request.member
    form = ProfileForm(request.POST or None, member=member)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_self_update(member=member, **form.cleaned_data)
        except services.MemberError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Your details are saved."))
            try:
                growth = self_service.profile_completion_reward(member=member)
            except LedgerError:
                growth = 0  # a frozen membership earns nothing; the next save after unfreezing does
            if growth:
                messages.success(
                    request,
                    ngettext(
                        "Thank you for completing your profile: %(n)s growth value added.",
                        "Thank you for completing your profile: %(n)s growth value added.",
                        growth,
                    )
                    % {"n": growth},
                )
            return redirect("portal:me")
    context = {
        "tab": "me",
        "form": form,
        "member": member,
        "consent": member.consent_records.order_by("-recorded_at", "-pk").first(),
        "fmt": date_formats(),
    }
    return render(request, "members/portal/profile.html", context)


# ------------------------------------------------------------------ phone change


def _code_error(form: CodeForm, phone: str, purpose: str) -> None:
    left = portal_code_tries_left(phone, purpose=purpose)
    form.add_error(
        "code",
        ngettext("That code is not right. %(n)s more try.", "That code is not right. %(n)s more tries.", left)
        % {"n": left},
    )


@portal_login_required
def phone_verify(request: PortalRequest) -> HttpResponse:
    """Step 0: before the membership can move to another number, the member proves the current one with a text
    code (unless they signed in with one in the last few minutes), so a borrowed phone or a leaked session
    cannot take the membership. A member who lost the old number changes it at a store."""
    current = request.member.phone.as_e164 if request.member.phone else None
    if current is None:
        return redirect("portal:me")
    form = CodeForm(request.POST or None)
    form.fields["code"].label = _("Code sent to your current number")
    status = 200
    if request.method == "POST" and "send" in request.POST:
        form = CodeForm()
        form.fields["code"].label = _("Code sent to your current number")
        try:
            portal_code_send(current, ip=client_ip(request))
        except PortalRateLimited as exc:
            if exc.scope == "phone-minute":  # a code is on its way already
                messages.info(request, str(exc))
            else:
                messages.error(request, str(exc))
                status = 429
        except SmsError:
            messages.error(request, _sms_failed())
            status = 503
        else:
            messages.success(request, _("A code is on its way to your current number."))
    elif request.method == "POST" and form.is_valid():
        try:
            right = portal_code_verify(current, form.cleaned_data["code"])
        except PortalCodeRefused as exc:
            form.add_error("code", str(exc))
        else:
            if right:
                portal_code_proved(request)
                return redirect("portal:phone")
            _code_error(form, current, PortalCode.Purpose.LOGIN)
    context = {"tab": "me", "form": form, "current": request.member.masked_phone}
    return render(request, "members/portal/phone_verify.html", context, status=status)


@portal_login_required
def phone(request: PortalRequest) -> HttpResponse:
    """Step 1: the new number; a code is texted to it."""
    if not portal_code_proved_recently(request):
        return redirect("portal:phone-verify")
    form = PhoneChangeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        new = form.cleaned_data["phone"]
        current = request.member.phone
        if current is not None and new == current.as_e164:
            form.add_error("phone", _("This is already your number."))
        else:
            try:
                portal_code_send(new, ip=client_ip(request), purpose=PHONE_CHANGE)
            except PortalRateLimited as exc:
                if exc.scope == "phone-minute":
                    messages.info(request, str(exc))
                    request.session[NEW_PHONE] = new
                    return redirect("portal:phone-code")
                form.add_error(None, str(exc))
                status = 429
            except SmsError:
                form.add_error(None, _sms_failed())
                status = 503
            else:
                request.session[NEW_PHONE] = new
                return redirect("portal:phone-code")
    context = {"tab": "me", "form": form, "current": request.member.masked_phone}
    return render(request, "members/portal/phone.html", context, status=status)


@portal_login_required
def phone_code(request: PortalRequest) -> HttpResponse:
    """Step 2: the code texted to the new number; right, and the membership moves to it."""
    new = request.session.get(NEW_PHONE)
    if not new or not portal_code_proved_recently(request):
        return redirect("portal:phone")
    form = CodeForm(request.POST or None)
    form.fields["code"].label = _("Code sent to the new number")
    if request.method == "POST" and form.is_valid():
        try:
            right = portal_code_verify(new, form.cleaned_data["code"], purpose=PHONE_CHANGE)
        except PortalCodeRefused as exc:
            form.add_error("code", str(exc))
        else:
            if right:
                return _phone_proved(request, new)
            _code_error(form, new, PHONE_CHANGE)
    context = {"tab": "me", "form": form, "masked_phone": sms.mask_phone(new)}
    return render(request, "members/portal/phone_code.html", context)


def _phone_proved(request: PortalRequest, new: str) -> HttpResponse:
    request.session.pop(NEW_PHONE, None)
    try:
        member, old = services.member_phone_change(member=request.member, phone=new)
    except services.MemberError as exc:
        messages.error(request, str(exc))
        return redirect("portal:phone")
    portal_session_refresh(request, member)  # this browser stays signed in; other devices are signed out
    if old:
        _tell_old_phone(old, new)
    messages.success(
        request,
        _("Your membership now uses %(phone)s. Other devices signed in to your account are signed out.")
        % {"phone": mask_phone(new)},
    )
    return redirect("portal:me")


def _tell_old_phone(old: str, new: str) -> None:
    """A text to the number the membership left, so a change its owner did not make does not go unnoticed."""
    text = _(
        "%(merchant)s: your membership's phone number was changed to %(phone)s. If you did not do this, "
        "ask at any of our stores."
    ) % {"merchant": settings.HUIYUAN_MERCHANT_NAME, "phone": mask_phone(new)}
    try:
        sms.sms_send(phone_e164=old, text=text)
    except SmsError as exc:
        logger.warning("phone change notice not sent", extra={"error": str(exc)})


@require_POST
@portal_login_required
def phone_resend(request: PortalRequest) -> HttpResponse:
    new = request.session.get(NEW_PHONE)
    if not new:
        return redirect("portal:phone")
    try:
        portal_code_send(new, ip=client_ip(request), purpose=PHONE_CHANGE)
    except PortalRateLimited as exc:
        messages.error(request, str(exc))
    except SmsError:
        messages.error(request, _sms_failed())
    else:
        messages.success(request, _("A new code is on its way. Only the newest code works."))
    return redirect("portal:phone-code")


# ------------------------------------------------------------------ paid membership


@portal_login_required
def plan(request: PortalRequest) -> HttpResponse:
    status = portal_selectors.plan_status(member=request.member, now=timezone.now())
    context: dict[str, Any] = {"tab": "me", "status": status, "fmt": date_formats()}
    return render(request, "members/portal/plan.html", context)
