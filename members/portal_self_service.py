"""Member-portal self-service pages: the daily sign-in, the points exchange and the monthly coupons. Each POST is
a plain form that works without JavaScript; the services in assets.self_service make repeats harmless (one
sign-in a day, one exchange per key, one claim of each month's coupons)."""

import re
import uuid
from datetime import date
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from assets import selectors as assets_selectors
from assets import self_service, self_service_selectors
from assets import services as assets_services
from assets.models import CouponTemplate, ExchangeItem
from assets.services import LedgerError
from members.portal_auth import PortalRequest, portal_login_required

KEY = re.compile(r"[0-9a-f]{32}")  # the confirm step's one-time key, as minted below


def refusal_text(exc: LedgerError) -> str:
    """A refusal as the member reads it (the services' own words are written for staff in places)."""
    if isinstance(exc, assets_services.MemberFrozen):
        return _("Your membership is frozen: you can see your account but not spend from it. Ask at a store.")
    if isinstance(exc, assets_services.MemberCancelled):
        return _("Your membership has been cancelled.")
    if isinstance(exc, assets_services.InsufficientPoints):
        available, wanted = int(str(exc.params.get("available", 0))), int(str(exc.params.get("wanted", 0)))
        return ngettext(
            "You have %(available)s point; this needs %(wanted)s.",
            "You have %(available)s points; this needs %(wanted)s.",
            available,
        ) % {"available": f"{available:,}", "wanted": f"{wanted:,}"}
    return str(exc)


def _day(value: date) -> str:
    from members.portal import date_formats

    return date_format(value, date_formats()["day"])


# ------------------------------------------------------------------ daily sign-in


def _sign_in_context(request: PortalRequest) -> dict[str, Any]:
    status = self_service_selectors.sign_in_status(member=request.member, at=timezone.now())
    streak_days = min(status.streak, 7)
    return {"tab": "home", "status": status, "week": [n < streak_days for n in range(7)]}


@portal_login_required
def sign_in(request: PortalRequest) -> HttpResponse:
    """Today's sign-in: signed in or not, the streak, what today earns and the next streak bonus."""
    return render(request, "members/portal/sign_in.html", _sign_in_context(request))


@require_POST
@portal_login_required
def sign_in_post(request: PortalRequest) -> HttpResponse:
    """Sign in for today. A second tap (or another tab) gets the first sign-in back, with no second reward."""
    result: dict[str, str] = {}
    try:
        signed = self_service.sign_in(member=request.member, at=timezone.now())
    except LedgerError as exc:
        result = {"level": "error", "text": refusal_text(exc)}
    else:
        text = ngettext("Signed in for today: +%(n)s point.", "Signed in for today: +%(n)s points.", signed.points) % {
            "n": f"{signed.points:,}"
        }
        if signed.bonus_points:
            text += " " + _("That includes a streak bonus of %(n)s.") % {"n": f"{signed.bonus_points:,}"}
        result = {"level": "success", "text": text}
    if getattr(request, "htmx", None):
        context = {**_sign_in_context(request), "result": result}
        return render(request, "members/portal/partials/sign_in_panel.html", context)
    getattr(messages, result["level"])(request, result["text"])
    return redirect("portal:sign-in")


# ------------------------------------------------------------------ points exchange


def _headline(template: CouponTemplate) -> str:
    from members.portal import price_share, short_cny

    if template.kind == CouponTemplate.Kind.CASH_OFF:
        return short_cny(template.value_fen)
    if template.kind == CouponTemplate.Kind.PERCENT and template.percent_of_price:
        return price_share(template.percent_of_price)
    return _("Gift")


def _window(entry: self_service_selectors.CatalogueEntry) -> str:
    """When an item can be exchanged, in a few words ("" when always)."""
    item, parts = entry.item, []
    if item.available_from and item.available_until:
        parts.append(
            _("%(first)s to %(last)s") % {"first": _day(item.available_from), "last": _day(item.available_until)}
        )
    elif item.available_from:
        parts.append(_("from %(first)s") % {"first": _day(item.available_from)})
    elif item.available_until:
        parts.append(_("until %(last)s") % {"last": _day(item.available_until)})
    if item.month_day_from is not None or item.month_day_to is not None:
        if item.month_day_to is None:
            parts.append(_("day %(first)s to month end") % {"first": item.month_day_from})
        else:
            parts.append(
                _("days %(first)s–%(last)s of each month")  # noqa: RUF001 (a range of days)
                % {"first": item.month_day_from or 1, "last": item.month_day_to}
            )
    return " · ".join(parts)


def _entry_card(entry: self_service_selectors.CatalogueEntry) -> dict[str, Any]:
    item = entry.item
    return {
        "item": item,
        "entry": entry,
        "headline": _headline(item.coupon_template),
        "left": None if item.stock is None else max(0, item.stock - item.exchanged),
        "window": _window(entry),
        "why_not": refusal_text(entry.refusal) if entry.refusal is not None else "",
        "short": entry.reason_code == "INSUFFICIENT_POINTS",
    }


def _points(request: PortalRequest) -> int:
    return int(assets_selectors.member_balances(member=request.member)["points"])


@portal_login_required
def exchange(request: PortalRequest) -> HttpResponse:
    catalogue = self_service_selectors.exchange_catalogue(member=request.member, at=timezone.now())
    context = {"tab": "home", "points": _points(request), "items": [_entry_card(e) for e in catalogue]}
    return render(request, "members/portal/exchange.html", context)


def _item_id(value: str | None) -> int:
    """The catalogue's id of an item (public: the same for every member), from the query or the form."""
    if not value or not value.isdigit() or len(value) > 12:
        raise Http404
    return int(value)


@portal_login_required
def exchange_confirm(request: PortalRequest) -> HttpResponse:
    """The confirm step (GET ?item=, with a fresh one-time key) and the exchange itself (POST of the item and that
    key). Done, it shows the coupon in the member's wallet."""
    if request.method == "POST":
        return _exchange_post(request, _item_id(request.POST.get("item")))
    pk = _item_id(request.GET.get("item"))
    catalogue = self_service_selectors.exchange_catalogue(member=request.member, at=timezone.now())
    entry = next((e for e in catalogue if e.item.pk == pk), None)
    if entry is None:
        raise Http404
    points = _points(request)
    context = {
        "tab": "home",
        "card": _entry_card(entry),
        "points": points,
        "after": points - entry.item.points_price,
        "key": uuid.uuid4().hex,
    }
    return render(request, "members/portal/exchange_confirm.html", context)


def _exchange_post(request: PortalRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(ExchangeItem.objects.select_related("coupon_template"), pk=pk)
    key = request.POST.get("key", "")
    if not KEY.fullmatch(key):
        messages.error(request, _("This page had expired. Please confirm again."))
        return redirect(reverse("portal:exchange-confirm") + "?" + urlencode({"item": pk}))
    try:
        done = self_service.points_exchange(
            item=item, member=request.member, idempotency_key=f"portal-exchange:{key}", at=timezone.now()
        )
    except LedgerError as exc:
        messages.error(request, refusal_text(exc))
        return redirect("portal:exchange")
    left = _points(request)
    messages.success(
        request,
        _("It's yours! You exchanged %(n)s points for %(name)s. Points left: %(left)s.")
        % {"n": f"{done.points:,}", "name": item.name, "left": f"{left:,}"},
    )
    return redirect("portal:coupon", pk=done.coupon_id)


# ------------------------------------------------------------------ monthly coupons


def monthly_due(request: PortalRequest) -> list[self_service_selectors.MonthlyDue]:
    """This month's coupons the member's benefits still owe them."""
    due = self_service_selectors.monthly_coupons_due(member=request.member, at=timezone.now())
    return [d for d in due if d.due > 0]


@require_POST
@portal_login_required
def monthly_claim(request: PortalRequest) -> HttpResponse:
    try:
        issued = self_service.monthly_coupons_claim(member=request.member, at=timezone.now())
    except LedgerError as exc:
        messages.error(request, refusal_text(exc))
    else:
        if issued:
            messages.success(
                request,
                ngettext("%(n)s coupon added to your wallet.", "%(n)s coupons added to your wallet.", len(issued))
                % {"n": len(issued)},
            )
        else:
            messages.info(request, _("You have already claimed this month's coupons."))
    return redirect("portal:coupons")
