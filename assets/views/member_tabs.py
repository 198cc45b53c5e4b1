"""The member page's balance, points and coupons tabs, and the manager's adjustments made from them."""

from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from assets import selectors, services
from assets.forms import (
    DEDUCT,
    BalanceAdjustForm,
    CouponIssueForm,
    CouponVoidForm,
    PointsAdjustForm,
    with_new_key,
)
from assets.models import Asset, Coupon
from assets.templatetags.assets_tags import yuan
from assets.views.common import SUPERVISORS, done, member_or_404, member_tab_url, render_member_action
from members.models import Member
from members.permissions import OfficeRequest, staff_role_required

MEMBER_TABS = ("balance", "points", "coupons")


def member_tab_context(request: OfficeRequest, member: Member, tab: str) -> dict[str, Any]:
    """What the member page needs to show one of the asset tabs; cashiers and auditors only read them.
    A cancelled member's balance and points can still be corrected (written off), but no coupon is issued."""
    can_adjust = request.role in SUPERVISORS
    can_change = can_adjust and member.status != Member.Status.CANCELLED
    page = request.GET.get("page")
    if tab == "balance":
        return {
            "balance": selectors.member_balance_summary(member=member),
            "ledger": selectors.member_ledger_page(member=member, assets=selectors.BALANCE_ASSETS, page=page),
            "adjust_form": BalanceAdjustForm() if can_adjust else None,
        }
    if tab == "points":
        ledger = selectors.member_ledger_page(member=member, assets=selectors.POINTS_ASSETS, page=page)
        summary = selectors.member_points_summary(member=member)
        return {
            "points": summary,
            "lots": selectors.member_live_lots(member=member),
            "ledger": ledger,
            "shows_debt": bool(summary.debt) or any(line.changes[1] for line in ledger),
            "adjust_form": PointsAdjustForm() if can_adjust else None,
        }
    return {
        "coupons": selectors.member_coupons_page(member=member, page=page),
        "issue_form": CouponIssueForm() if can_change else None,
        "can_void": can_change,
    }


def _refused(form_class: type[Any], request: OfficeRequest, exc: services.LedgerError) -> Any:
    """The form again after the ledger refused it, under a fresh key so that a corrected attempt is new."""
    form = form_class(with_new_key(request.POST))
    form.is_valid()
    form.add_error(None, str(exc))
    return form


@require_POST
@staff_role_required(*SUPERVISORS)
def balance_adjust_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = member_or_404(request, member_no)
    form = BalanceAdjustForm(request.POST)
    confirming = False
    if form.is_valid():
        data = form.cleaned_data
        if form.is_confirmed(request.POST):
            try:
                services.balance_adjust(
                    member=member,
                    asset=data["asset"],
                    amount_fen=form.signed_amount_fen,
                    reason=data["reason"],
                    staff=request.staff,
                    idempotency_key=data["idempotency_key"],
                    store=request.office_store,
                )
            except services.LedgerError as exc:
                form = _refused(BalanceAdjustForm, request, exc)
            else:
                return done(request, member_tab_url(member, "balance"), _("Balance adjusted."))
        elif "edit" not in request.POST:
            held = selectors.member_balances(member=member)[data["asset"]]
            if data["direction"] == DEDUCT and data["amount"] > held:
                message = _("The %(asset)s balance is only ¥%(held)s.") % {
                    "asset": _asset_name(data),
                    "held": yuan(held),
                }
                form.add_error("amount", message)
            else:
                confirming = True
    context = {"member": member, "form": form, "confirming": confirming}
    if confirming:
        context["asset_name"] = _asset_name(form.cleaned_data)
    return render_member_action(request, "assets/partials/balance_adjust.html", context)


def _asset_name(data: dict[str, Any]) -> str:
    return _("principal") if data["asset"] == Asset.PRINCIPAL else _("bonus")


@require_POST
@staff_role_required(*SUPERVISORS)
def points_adjust_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = member_or_404(request, member_no)
    form = PointsAdjustForm(request.POST)
    confirming = False
    if form.is_valid():
        data = form.cleaned_data
        if form.is_confirmed(request.POST):
            try:
                services.points_adjust(
                    member=member,
                    points=form.signed_points,
                    reason=data["reason"],
                    staff=request.staff,
                    idempotency_key=data["idempotency_key"],
                    store=request.office_store,
                )
            except services.LedgerError as exc:
                form = _refused(PointsAdjustForm, request, exc)
            else:
                return done(request, member_tab_url(member, "points"), _("Points adjusted."))
        elif "edit" not in request.POST:
            held = selectors.member_balances(member=member)[Asset.POINTS]
            if data["direction"] == DEDUCT and data["points"] > held:
                form.add_error("points", _("The member has only %(n)s points.") % {"n": f"{held:,}"})
            else:
                confirming = True
    context = {"member": member, "form": form, "confirming": confirming}
    return render_member_action(request, "assets/partials/points_adjust.html", context)


@require_POST
@staff_role_required(*SUPERVISORS)
def coupon_issue_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = member_or_404(request, member_no)
    form = CouponIssueForm(request.POST)
    if form.is_valid():
        template = form.cleaned_data["template"]
        try:
            services.coupon_issue(
                template=template,
                member=member,
                channel=Coupon.Channel.MANUAL,
                idempotency_key=form.cleaned_data["idempotency_key"],
                staff=request.staff,
                store=request.office_store,
            )
        except services.LedgerError as exc:
            form = _refused(CouponIssueForm, request, exc)
        else:
            return done(request, member_tab_url(member, "coupons"), _("Coupon %(name)s issued.") % {"name": template})
    return render_member_action(request, "assets/partials/coupon_issue.html", {"member": member, "issue_form": form})


@staff_role_required(*SUPERVISORS)
def coupon_void_view(request: OfficeRequest, member_no: str, pk: int) -> HttpResponse:
    member = member_or_404(request, member_no)
    coupon = get_object_or_404(Coupon.objects.select_related("template"), pk=pk, member=member)
    form = CouponVoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.coupon_void(
                coupon=coupon,
                reason=form.cleaned_data["reason"],
                idempotency_key=form.cleaned_data["idempotency_key"],
                staff=request.staff,
            )
        except services.LedgerError as exc:
            form = _refused(CouponVoidForm, request, exc)
        else:
            return done(request, member_tab_url(member, "coupons"), _("Coupon voided."))
    context = {"member": member, "coupon": coupon, "form": form}
    return render_member_action(request, "assets/partials/coupon_void.html", context)
