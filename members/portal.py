"""Member-portal views: phone-first pages under /m/, with their own base template and their own sign-in
(members.portal_auth). Every form is a plain POST that works without JavaScript."""

import re
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from axes.helpers import get_client_ip_address
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.formats import date_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.http import require_POST

from assets import selectors as assets_selectors
from assets.models import Coupon, CouponTemplate
from assets.selectors import last_valid_date
from assets.self_service import profile_is_complete
from assets.summary import member_summary
from benefits.models import Benefit
from members import portal_selectors, portal_self_service, services
from members.cards import code128_svg, qr_svg
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
from tiers.models import Tier
from tiers.templatetags.tiers_tags import GREY, text_on

# the sign-in flow's state in the portal session: never in a URL, never in a page but masked
PENDING_PHONE = "portal_login_phone"
PENDING_NEXT = "portal_login_next"
PROVED_PHONE = "portal_proved_phone"
PROVED_AT = "portal_proved_at"
REGISTER_WITHIN = 15 * 60  # seconds after proving the phone


@portal_login_required
def home(request: PortalRequest) -> HttpResponse:
    member, now = request.member, timezone.now()
    summary = member_summary(member, at=now)
    outlook = portal_selectors.tier_outlook(member=member, now=now)
    expiring, expiring_by = portal_selectors.points_expiring(member=member, now=now)
    context = {
        "tab": "home",
        "member": member,
        "fmt": date_formats(),
        "card": _card(member, outlook.tier),
        "summary": summary,
        "expiring": expiring,
        "expiring_by": expiring_by,
        "outlook": outlook,
        "next_text": _next_tier_text(outlook),
        "keep_text": _keep_tier_text(outlook),
        "benefits": [_benefit_line(b) for b in outlook.benefits],
        "next_benefits": _next_tier_lines(outlook),
    }
    return render(request, "members/portal/home.html", context)


@portal_login_required
def member_code(request: PortalRequest) -> HttpResponse:
    """The payment code: the same code for a minute, then a fresh one. htmx swaps in the fresh code when the
    countdown ends; without JavaScript the page reloads itself, and a link refreshes it by hand. The code is in
    the page only, never in a URL (the portal's pages are never cached: portal_login_required)."""
    member = request.member
    context: dict[str, Any] = {"tab": "code", "member": member, "frozen": member.status == Member.Status.FROZEN}
    if not context["frozen"]:
        now = timezone.now()
        code = services.payment_code_issue(member=member, now=now)
        age = int((now - code.issued_at).total_seconds())
        context.update(
            {
                "digits": _grouped(code.code),
                "qr": _qr(code.code),
                "barcode": _barcode(code.code),
                "seconds_left": max(1, int(services.PAYMENT_CODE_REFRESH.total_seconds()) - age),
            }
        )
    if _partial_wanted(request):
        return render(request, "members/portal/partials/payment_code.html", context)
    return render(request, "members/portal/member_code.html", context)


# ------------------------------------------------------------------ histories


def _ledger(request: PortalRequest, ledger: str, assets: tuple[str, str]) -> tuple[dict[str, Any], bool]:
    """A page of the member's balance or points ledger: its context and whether htmx asked for the lines alone."""
    after = portal_selectors.Cursor.parse(request.GET.get("after"))
    history = portal_selectors.member_history(member=request.member, assets=assets, after=after)
    partial = _partial_wanted(request)
    # lines that htmx adds below the last page go on with its month; a page on its own heads every month
    months = portal_selectors.by_month(
        history.lines, lambda line: line.transaction.created_at, after=after if partial else None
    )
    context = {
        "tab": "home",
        "fmt": date_formats(),
        "months": months,
        "ledger": ledger,
        "more_url": _more_url(request, history.next_cursor),
        "after": after,
    }
    return context, partial


@portal_login_required
def balance(request: PortalRequest) -> HttpResponse:
    context, partial = _ledger(request, "balance", portal_selectors.BALANCE_ASSETS)
    if partial:
        return render(request, "members/portal/partials/history.html", context)
    context["balances"] = assets_selectors.member_balances(member=request.member)
    return render(request, "members/portal/balance.html", context)


@portal_login_required
def points(request: PortalRequest) -> HttpResponse:
    context, partial = _ledger(request, "points", portal_selectors.POINTS_ASSETS)
    if partial:
        return render(request, "members/portal/partials/history.html", context)
    member = request.member
    expiring, expiring_by = portal_selectors.points_expiring(member=member, now=timezone.now())
    context.update(
        {
            "balances": assets_selectors.member_balances(member=member),
            "expiring": expiring,
            "expiring_by": expiring_by,
        }
    )
    return render(request, "members/portal/points.html", context)


@portal_login_required
def points_expiry(request: PortalRequest) -> HttpResponse:
    member, now = request.member, timezone.now()
    lots = assets_selectors.member_live_lots(member=member)
    soon = now + portal_selectors.EXPIRING_WITHIN
    context = {
        "tab": "home",
        "fmt": date_formats(),
        "lots": [(lot, lot.expires_at is not None and lot.expires_at <= soon) for lot in lots],
        "total": sum(lot.remaining for lot in lots),
    }
    return render(request, "members/portal/points_expiry.html", context)


@portal_login_required
def coupons(request: PortalRequest) -> HttpResponse:
    member, now = request.member, timezone.now()
    tab = request.GET.get("tab", "")
    if tab not in portal_selectors.CouponTab.values:
        tab = portal_selectors.CouponTab.AVAILABLE
    after = portal_selectors.Cursor.parse(request.GET.get("after"))
    page = portal_selectors.coupon_page(member=member, tab=tab, now=now, after=after)
    context: dict[str, Any] = {
        "tab": "home",
        "fmt": date_formats(),
        "coupon_tab": tab,
        "coupons": [_coupon_card(c, now) for c in page.items],
        "more_url": _more_url(request, page.next_cursor, tab=tab),
        "after": after,
    }
    if _partial_wanted(request):
        return render(request, "members/portal/partials/coupon_list.html", context)
    counts = portal_selectors.coupon_counts(member=member, now=now)
    if tab == portal_selectors.CouponTab.AVAILABLE and not after:
        context["monthly_due"] = portal_self_service.monthly_due(request)
    context["tabs"] = [
        (value, label, counts[value], _query(tab=value)) for value, label in portal_selectors.CouponTab.choices
    ]
    return render(request, "members/portal/coupons.html", context)


@portal_login_required
def coupon(request: PortalRequest, pk: int) -> HttpResponse:
    now = timezone.now()
    found = get_object_or_404(
        portal_selectors.member_coupons(member=request.member).prefetch_related("template__stores"), pk=pk
    )
    card = _coupon_card(found, now)
    tab = {"used": "used", "expired": "expired", "void": "expired"}.get(card["state"], "available")
    context: dict[str, Any] = {
        "tab": "home",
        "fmt": date_formats(),
        "back": reverse("portal:coupons") + _query(tab=tab),
        "coupon": found,
        "card": card,
        "stores": list(found.template.stores.order_by("code", "pk")),
        "purchase_id": portal_selectors.purchase_id_of(member=request.member, order_no=found.order_ref),
    }
    if card["state"] in ("available", "upcoming"):
        context["digits"] = _grouped(found.code)
        context["qr"] = _qr(found.code)
    return render(request, "members/portal/coupon.html", context)


@portal_login_required
def purchases(request: PortalRequest) -> HttpResponse:
    after = portal_selectors.Cursor.parse(request.GET.get("after"))
    page = portal_selectors.purchase_page(member=request.member, after=after)
    partial = _partial_wanted(request)
    context = {
        "tab": "home",
        "fmt": date_formats(),
        # a page that htmx adds below the last one goes on with its month; a page on its own heads every month
        "months": portal_selectors.by_month(page.items, lambda p: p.occurred_at, after=after if partial else None),
        "more_url": _more_url(request, page.next_cursor),
        "after": after,
    }
    if partial:
        return render(request, "members/portal/partials/purchase_list.html", context)
    return render(request, "members/portal/purchases.html", context)


@portal_login_required
def purchase(request: PortalRequest, pk: int) -> HttpResponse:
    found = portal_selectors.purchase_detail(member=request.member, pk=pk)
    if found is None:
        raise Http404
    pipeline: list[tuple[str, int]] = [(_("Amount"), found.gross_fen)]
    if found.discount_fen:
        discount = found.details.get("discount") or ""
        label = _("Member discount") + (f" · {discount}" if discount else "")
        pipeline.append((label, -found.discount_fen))
    if found.coupon_fen:
        coupon_name = found.coupon.template.name if found.coupon is not None else ""
        pipeline.append((_("Coupon") + (f" · {coupon_name}" if coupon_name else ""), -found.coupon_fen))
    if found.points_offset_fen:
        used = _("%(n)s points") % {"n": f"{found.points_used:,}"}
        pipeline.append((_("Points") + f" · {used}", -found.points_offset_fen))
    context = {
        "tab": "home",
        "fmt": date_formats(),
        "purchase": found,
        "lines": list(found.lines.all()),
        "pipeline": pipeline,
        "tenders": list(found.tenders().items()),
        "refunds": sorted(found.refunds.all(), key=lambda r: (r.created_at, r.pk)),
    }
    return render(request, "members/portal/purchase.html", context)


# ------------------------------------------------------------------ helpers of the pages above


def _partial_wanted(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request  # type: ignore[union-attr]


def _query(**params: str) -> str:
    return "?" + urlencode(params)


def _more_url(request: HttpRequest, cursor: portal_selectors.Cursor | None, **params: str) -> str | None:
    """The next page of a list: the same page with the cursor (never anything personal) in its query."""
    if cursor is None:
        return None
    return request.path + _query(**params, after=str(cursor))


def date_formats() -> dict[str, str]:
    """Date formats (Django's date filter syntax) as members read dates in their language."""
    return {
        # Translators: Django date format of a day without its year ("3 Jan"; in Chinese "n月j日")
        "day": pgettext("portal date format", "j M"),
        # Translators: Django date format of a day with its year ("3 Jan 2025"; in Chinese "Y年n月j日")
        "day_year": pgettext("portal date format", "j M Y"),
        # Translators: Django date format of a month heading ("January 2025"; in Chinese "Y年n月")
        "month": pgettext("portal date format", "F Y"),
        # Translators: Django date format of a day and time ("3 Jan, 14:05"; in Chinese "n月j日 H:i")
        "day_time": pgettext("portal date format", "j M, H:i"),
        # Translators: Django date format of a full date and time ("3 Jan 2025, 14:05"; in Chinese "Y年n月j日 H:i")
        "date_time": pgettext("portal date format", "j M Y, H:i"),
    }


def _grouped(digits: str, size: int = 4) -> list[str]:
    """Digits in fours, as people read a code out: "123456789" → ["1234", "5678", "9"]."""
    return [digits[i : i + size] for i in range(0, len(digits), size)]


_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_SVG_MM = re.compile(r'<svg[^>]*? width="([0-9.]+)mm" height="([0-9.]+)mm"[^>]*>')
_SVG_PX = re.compile(r'<svg width="([0-9]+)" height="([0-9]+)"')
PX_PER_MM = 96 / 25.4


def _barcode(digits: str) -> SafeString:
    """A Code128 barcode that scales to its box: a viewBox over the bars alone (the digits printed under them fall
    outside it; the page shows them itself, in groups). Inline in HTML it needs no XML namespace."""

    def box(match: re.Match[str]) -> str:
        width, bars = float(match[1]) * PX_PER_MM, 16 * PX_PER_MM  # module height 14 mm, 1 mm above and below
        return f'<svg viewBox="0 0 {width:.2f} {bars:.2f}" preserveAspectRatio="none">'

    return mark_safe(_SVG_MM.sub(box, code128_svg(digits), count=1))  # markup made here, from digits only


def _qr(data: str) -> SafeString:
    """A QR code that scales to its box (the stylesheet sizes it)."""
    return mark_safe(_SVG_PX.sub(r'<svg viewBox="0 0 \1 \2"', qr_svg(data, scale=4), count=1))  # from digits only


def _card(member: Member, tier: Tier) -> dict[str, Any]:
    colour = tier.colour if _HEX_COLOUR.fullmatch(tier.colour) else GREY
    return {
        "tier": tier,
        "colour": colour,
        "text": text_on(colour),
        "number": _grouped(member.member_no),
        "qr": _qr(member.member_no),
        "barcode": _barcode(member.member_no),
    }


def short_cny(fen: int) -> str:
    """¥120 for whole yuan, ¥33.34 otherwise: a sum to spend reads best without ".00"."""
    yuan, cents = divmod(fen, 100)
    return f"¥{yuan:,}" if not cents else f"¥{yuan:,}.{cents:02d}"


def _next_tier_text(outlook: portal_selectors.TierOutlook) -> str:
    above = outlook.next_tier
    if above is None:
        return _("You are on our top tier. Thank you for being with us!")
    if not outlook.to_next:
        return _("You qualify for %(tier)s: it will be yours at the next update.") % {"tier": above.name}
    if outlook.to_next_fen is not None:
        return _("Spend %(amount)s more to reach %(tier)s") % {
            "amount": short_cny(outlook.to_next_fen),
            "tier": above.name,
        }
    return ngettext(
        "%(n)s more growth point to reach %(tier)s", "%(n)s more growth points to reach %(tier)s", outlook.to_next
    ) % {"n": f"{outlook.to_next:,}", "tier": above.name}


def _keep_tier_text(outlook: portal_selectors.TierOutlook) -> str:
    if outlook.keep_by is None:
        return ""
    params = {"tier": outlook.tier.name, "date": date_format(outlook.keep_by, date_formats()["day"])}
    if not outlook.to_keep:
        return _("You keep %(tier)s at the review on %(date)s.") % params
    if outlook.to_keep_fen is not None:
        return _("Spend %(amount)s more by %(date)s to keep %(tier)s") % {
            **params,
            "amount": short_cny(outlook.to_keep_fen),
        }
    return ngettext(
        "%(n)s more growth point by %(date)s to keep %(tier)s",
        "%(n)s more growth points by %(date)s to keep %(tier)s",
        outlook.to_keep,
    ) % {**params, "n": f"{outlook.to_keep:,}"}


def price_share(pay_percent: int) -> str:
    """What paying `pay_percent` of the price reads as: "15% off" in English, "8.5折" in Chinese."""
    # Translators: how a discount reads in your language: "off" (15% off) or "tenths" (8.5折: pay 8.5 tenths)
    if pgettext("discount style", "off") == "tenths":
        tenths = str(pay_percent // 10) + (f".{pay_percent % 10}" if pay_percent % 10 else "")
        return pgettext("pay this many tenths of the price (8.5 = 15% off)", "%(tenths)s tenths") % {"tenths": tenths}
    return _("%(off)s%% off") % {"off": 100 - pay_percent}


def _times(percent: int) -> str:
    whole, part = divmod(percent, 100)
    return f"\u00d7{whole}" + (f".{part:02d}".rstrip("0") if part else "")


def _benefit_line(benefit: Benefit) -> dict[str, str]:
    """A benefit as members read it: its name, what it gives in a few words, and the merchant's description."""
    kind, parts = benefit.kind, []
    if kind == Benefit.Kind.MEMBER_DAY:
        if benefit.weekday is not None:
            parts.append(_("every %(day)s") % {"day": WEEKDAYS[benefit.weekday]})
        elif benefit.day_of_month is not None:
            parts.append(_("on day %(day)s of each month") % {"day": benefit.day_of_month})
    if kind == Benefit.Kind.BIRTHDAY:
        parts.append(str(benefit.get_birthday_when_display()))
    if benefit.discount_percent:
        parts.append(price_share(benefit.discount_percent))
    if benefit.multiplier_percent and benefit.multiplier_percent != 100:
        parts.append(_("points %(times)s") % {"times": _times(benefit.multiplier_percent)})
    if benefit.gift_points:
        parts.append(_("%(n)s points") % {"n": f"{benefit.gift_points:,}"})
    if benefit.coupon_template is not None:
        name = benefit.coupon_template.name
        if kind == Benefit.Kind.MONTHLY_COUPONS:
            parts.append(
                ngettext(
                    "%(n)s %(coupon)s coupon a month", "%(n)s %(coupon)s coupons a month", benefit.coupons_per_month
                )
                % {"n": benefit.coupons_per_month, "coupon": name}
            )
        else:
            parts.append(_("a %(coupon)s coupon") % {"coupon": name})
    return {"name": benefit.name, "terms": " · ".join(parts), "description": benefit.description}


def _next_tier_lines(outlook: portal_selectors.TierOutlook) -> list[dict[str, str]]:
    above = outlook.next_tier
    if above is None:
        return []
    lines = [_benefit_line(b) for b in outlook.next_benefits]
    gift: list[str] = []
    if above.gift_points:
        gift.append(_("%(n)s points") % {"n": f"{above.gift_points:,}"})
    if above.gift_bonus_fen:
        gift.append(_("%(amount)s bonus balance") % {"amount": short_cny(above.gift_bonus_fen)})
    gift += [_("a %(coupon)s coupon") % {"coupon": t.name} for t in above.gift_coupons.order_by("pk")]
    if gift:
        lines.insert(0, {"name": _("Upgrade gift"), "terms": " · ".join(gift), "description": ""})
    return lines


def _coupon_card(coupon: Coupon, now: datetime) -> dict[str, Any]:
    """A coupon as its card shows it: the headline value, the state and the days that matter."""
    template = coupon.template
    if template.kind == CouponTemplate.Kind.CASH_OFF:
        headline = short_cny(template.value_fen)
    elif template.kind == CouponTemplate.Kind.PERCENT and template.percent_of_price:
        headline = price_share(template.percent_of_price)
    else:
        headline = _("Gift")
    return {
        "coupon": coupon,
        "headline": headline,
        "state": portal_selectors.coupon_state(coupon, now),
        "last_day": last_valid_date(coupon.expires_at),
        "first_day": timezone.localtime(coupon.starts_at).date(),
    }


def _me_page(request: PortalRequest, form: PasswordSetForm | None = None) -> HttpResponse:
    has_password = portal_password_exists(request.member)
    ask_current = has_password and not portal_code_proved_recently(request)
    context = {
        "tab": "me",
        "member": request.member,
        "profile_complete": profile_is_complete(request.member),
        "plan": portal_selectors.plan_status(member=request.member, now=timezone.now()),
        "fmt": date_formats(),
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
                portal_password_login(
                    member.phone.as_e164, form.cleaned_data["current_password"], ip=client_ip(request)
                )
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


def client_ip(request: HttpRequest) -> str | None:
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
            portal_code_send(phone, ip=client_ip(request))
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
        portal_code_send(phone, ip=client_ip(request))
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
            member = portal_password_login(
                form.cleaned_data["phone"], form.cleaned_data["password"], ip=client_ip(request)
            )
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
