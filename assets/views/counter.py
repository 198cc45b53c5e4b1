"""The counter screen: one always-focused field finds the member (phone, last four digits, member number or a
scanned payment code), F1-F4 open a purchase, a top-up, a coupon or the points, every step is a small htmx
swap, and each write is previewed first with a one-time key made when the preview renders, so a double Enter
is a retry of the same request. Recent sales with their refunds, receipts for 58 and 80 mm printers, and the
shift summary."""

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.contrib.auth import authenticate
from django.core import signing
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from assets import counter, selectors, services
from assets.forms import (
    CounterCouponForm,
    CounterPurchaseForm,
    CounterRefundForm,
    CounterRegisterForm,
    CounterTopUpForm,
    new_key,
)
from assets.models import TENDER_FIELDS, LedgerTransaction, Purchase, PurchaseRefund, RechargePackage, Tender
from assets.summary import member_find, member_summary
from members import services as members_services
from members.models import Member, Staff, Store
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role

COUNTER_ROLES = (Role.OWNER, Role.MANAGER, Role.CASHIER)
RECENT = 15


def _store(request: OfficeRequest) -> Store | None:
    """The store the counter records in: a cashier's own, or the one an owner or manager has switched to."""
    return request.office_store


def _member(request: OfficeRequest, member_no: str) -> Member:
    """A member the counter may serve (cancelled memberships are not served)."""
    found = Member.objects.exclude(status=Member.Status.CANCELLED).filter(member_no=member_no).first()
    if found is None:
        raise Http404
    return found


def _work(request: OfficeRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, f"assets/counter/{template}", {"store": _store(request), **context}, status=status)


def _member_panel(request: OfficeRequest, member: Member, **extra: Any) -> HttpResponse:
    context = {"member": member, "summary": member_summary(member, at=timezone.now(), store=_store(request)), **extra}
    return _work(request, "member.html", context)


@staff_role_required(*COUNTER_ROLES)
def counter_view(request: OfficeRequest) -> HttpResponse:
    context = {
        "store": _store(request),
        "recent": _recent(_store(request)),
        "active_section": "counter",
        "register_form": CounterRegisterForm(),
    }
    return render(request, "assets/counter/counter.html", context)


@staff_role_required(*COUNTER_ROLES)
def counter_welcome_view(request: OfficeRequest) -> HttpResponse:
    return _work(request, "welcome.html", {})


# ------------------------------------------------------------------ finding and registering the member


@require_POST
@staff_role_required(*COUNTER_ROLES)
def counter_find_view(request: OfficeRequest) -> HttpResponse:
    query = request.POST.get("q", "").strip()
    store = _store(request)
    if not query:
        return _work(request, "welcome.html", {})
    found = member_find(query, store=store)
    if len(found) == 1:
        scanned = query if query.isdigit() and len(query) == 18 and query.startswith("28") else ""
        return _member_panel(request, found[0], scanned_code=scanned)
    if found:
        return _work(request, "pick.html", {"found": found, "query": query})
    form = CounterRegisterForm(initial={"phone": query} if query.isdigit() and len(query) == 11 else None)
    return _work(request, "not_found.html", {"query": query, "register_form": form})


@staff_role_required(*COUNTER_ROLES)
def counter_member_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    return _member_panel(request, _member(request, member_no))


@require_POST
@staff_role_required(*COUNTER_ROLES)
def counter_register_view(request: OfficeRequest) -> HttpResponse:
    form = CounterRegisterForm(request.POST)
    if form.is_valid():
        try:
            member = members_services.member_register(
                phone=form.cleaned_data["phone"],
                name=form.cleaned_data["name"],
                birthday=form.cleaned_data["birthday"],
                store=_store(request),
                by=request.user,  # type: ignore[arg-type]
            )
        except members_services.MemberError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            return _member_panel(request, member, registered=True)
    return _work(request, "not_found.html", {"register_form": form, "query": ""}, status=422)


# ------------------------------------------------------------------ a purchase


def _purchase_quote(form: CounterPurchaseForm, store: Store, member: Member | None) -> counter.Quote:
    """The quote for the form; priced again when the rest of the payment goes to the balance, since payments
    from the balance may not earn."""
    data = form.cleaned_data

    def priced(balance_fen: int) -> counter.Quote:
        return counter.purchase_quote(
            store=store,
            member=member,
            amount_fen=data["amount"],
            coupon_code=data.get("coupon") or "",
            points=data.get("points") or 0,
            balance_fen=balance_fen,
        )

    quote = priced(data.get("balance") or 0)
    from_balance = form.tenders(quote.payable_fen).get(Tender.BALANCE, 0)
    return quote if from_balance == (data.get("balance") or 0) else priced(from_balance)


@dataclass
class Step:
    """What a purchase form step shows: the quote (if it could be priced) and the refusal (if any)."""

    quote: counter.Quote | None = None
    tenders: dict[str, int] | None = None
    refusal: str = ""
    code: str = ""


def _purchase_step(form: CounterPurchaseForm, store: Store) -> tuple[Member | None, Step]:
    member_no = form.cleaned_data.get("member_no") or ""
    member = None
    if member_no:  # a member that is gone (cancelled meanwhile, or a number typed by hand) is not a guest
        member = Member.objects.exclude(status=Member.Status.CANCELLED).filter(member_no=member_no).first()
        if member is None:
            raise Http404
    try:
        quote = _purchase_quote(form, store, member)
    except services.LedgerError as exc:
        return member, Step(refusal=str(exc), code=exc.code)
    tenders = form.tenders(quote.payable_fen)
    paid = sum(tenders.values())
    if paid != quote.payable_fen:
        refusal = counter.PaymentNotAddingUp(paid=services.yuan(paid), due=services.yuan(quote.payable_fen))
        return member, Step(quote=quote, tenders=tenders, refusal=str(refusal), code=refusal.code)
    return member, Step(quote=quote, tenders=tenders)


@staff_role_required(*COUNTER_ROLES)
def counter_purchase_view(request: OfficeRequest) -> HttpResponse:
    """GET: the purchase form (for the member, or a guest); POST: the live quote as the cashier types."""
    store = _store(request)
    if store is None:
        return _work(request, "no_store.html", {})
    member_no = request.GET.get("member", "") or request.POST.get("member_no", "")
    member = _member(request, member_no) if member_no else None
    if request.method == "GET":
        form = CounterPurchaseForm(initial={"member_no": member_no, "payment_code": request.GET.get("code", "")})
        return _work(request, "purchase.html", {"form": form, "member": member, "step": Step()})
    form = CounterPurchaseForm(request.POST)
    step = Step()
    if form.is_valid():
        _member_found, step = _purchase_step(form, store)
    return _work(request, "quote.html", {"form": form, "member": member, "step": step})


@require_POST
@staff_role_required(*COUNTER_ROLES)
def counter_purchase_preview_view(request: OfficeRequest) -> HttpResponse:
    """Enter on the form: the whole quote to confirm, with a one-time key for this purchase."""
    store = _store(request)
    if store is None:
        return _work(request, "no_store.html", {})
    form = CounterPurchaseForm(request.POST)
    member = None
    if form.is_valid():
        member, step = _purchase_step(form, store)
        if not step.refusal:
            data = request.POST.copy()
            data["idempotency_key"] = new_key()
            form = CounterPurchaseForm(data)
            form.is_valid()
            return _work(request, "purchase_preview.html", {"form": form, "member": member, "step": step})
    else:
        step = Step()
    return _work(request, "purchase.html", {"form": form, "member": member, "step": step}, status=422)


@require_POST
@staff_role_required(*COUNTER_ROLES)
def counter_purchase_edit_view(request: OfficeRequest) -> HttpResponse:
    """ "Change" on the preview: back to the form with its values (the preview's key is dropped)."""
    data = request.POST.copy()
    data.pop("idempotency_key", None)
    form = CounterPurchaseForm(data)
    member_no = data.get("member_no", "")
    member = _member(request, member_no) if member_no else None
    step = Step()
    if form.is_valid() and _store(request) is not None:
        _member_found, step = _purchase_step(form, _store(request))  # type: ignore[arg-type]
    return _work(request, "purchase.html", {"form": form, "member": member, "step": step})


@require_POST
@staff_role_required(*COUNTER_ROLES)
def counter_purchase_confirm_view(request: OfficeRequest) -> HttpResponse:
    """Enter on the preview: record it. The same key again (a double Enter) finds the same purchase."""
    store = _store(request)
    form = CounterPurchaseForm(request.POST)
    if store is None or not form.is_valid() or not form.cleaned_data.get("idempotency_key"):
        return _work(request, "purchase.html", {"form": form, "member": None, "step": Step()}, status=422)
    # a second Enter: the purchase this key recorded, before the order is priced again without its points
    recorded = counter.purchase_recorded(idempotency_key=form.cleaned_data["idempotency_key"], staff=request.staff)
    if recorded is not None:
        return _result(request, recorded)
    member, step = _purchase_step(form, store)
    data = form.cleaned_data
    try:
        if step.refusal:
            raise services.LedgerError()
        assert step.quote is not None and step.tenders is not None
        purchase = counter.purchase_record(
            store=store,
            member=member,
            amount_fen=data["amount"],
            tenders=step.tenders,
            coupon_code=data.get("coupon") or "",
            points=data.get("points") or 0,
            payment_code=data.get("payment_code") or "",
            idempotency_key=data["idempotency_key"],
            staff=request.staff,
        )
    except services.LedgerError as exc:
        step.refusal = step.refusal or str(exc)
        retry = request.POST.copy()
        retry.pop("idempotency_key", None)
        form = CounterPurchaseForm(retry)
        form.is_valid()
        return _work(request, "purchase.html", {"form": form, "member": member, "step": step}, status=422)
    return _result(request, purchase)


def _result(request: OfficeRequest, purchase: Purchase) -> HttpResponse:
    member = purchase.member
    context = {
        "purchase": purchase,
        "member": member,
        "summary": member_summary(member, at=timezone.now(), store=_store(request)) if member else None,
        "recent": _recent(_store(request)),
    }
    return _work(request, "purchase_done.html", context)


@staff_role_required(*COUNTER_ROLES)
def counter_receipt_view(request: OfficeRequest, order_no: str) -> HttpResponse:
    purchase = get_object_or_404(
        _purchases(_store(request), request.staff).select_related("member", "store"), order_no=order_no
    )
    width = "58" if request.GET.get("w") == "58" else "80"
    context = {
        "purchase": purchase,
        "width": width,
        "lines": purchase.details.get("lines", []),
        "refunds": purchase.refunds.order_by("pk"),
    }
    return render(request, "assets/counter/receipt.html", context)


# ------------------------------------------------------------------ top-ups and coupons


def _packages(at: datetime) -> QuerySet[RechargePackage]:
    on_sale = Q(starts_at__isnull=True) | Q(starts_at__lte=at)
    not_over = Q(ends_at__isnull=True) | Q(ends_at__gt=at)
    return RechargePackage.objects.filter(on_sale, not_over, is_active=True).order_by("pay_fen")


@staff_role_required(*COUNTER_ROLES)
def counter_top_up_view(request: OfficeRequest) -> HttpResponse:
    """GET: the top-up form; POST: its preview with a one-time key; POST with the key: the top-up."""
    store = _store(request)
    if store is None:
        return _work(request, "no_store.html", {})
    member_no = request.GET.get("member", "") or request.POST.get("member_no", "")
    member = _member(request, member_no)
    packages = _packages(timezone.now())
    if request.method == "GET":
        form = CounterTopUpForm(initial={"member_no": member_no}, packages=packages)
        return _work(request, "top_up.html", {"form": form, "member": member})
    form = CounterTopUpForm(request.POST, packages=packages)
    if not form.is_valid():
        return _work(request, "top_up.html", {"form": form, "member": member}, status=422)
    data = form.cleaned_data
    if not data.get("idempotency_key"):
        fresh = request.POST.copy()
        fresh["idempotency_key"] = new_key()
        form = CounterTopUpForm(fresh, packages=packages)
        form.is_valid()
        return _work(request, "top_up_preview.html", {"form": form, "member": member, "data": form.cleaned_data})
    try:
        top_up = counter.top_up_record(
            member=member,
            store=store,
            amount_fen=data["amount"] if data.get("package") is None else None,
            package=data.get("package"),
            tender=data["tender"],
            idempotency_key=data["idempotency_key"],
            staff=request.staff,
        )
    except services.LedgerError as exc:
        retry = request.POST.copy()
        retry.pop("idempotency_key", None)
        form = CounterTopUpForm(retry, packages=packages)
        form.is_valid()
        return _work(request, "top_up.html", {"form": form, "member": member, "refusal": str(exc)}, status=422)
    return _member_panel(request, member, top_up=top_up)


@staff_role_required(*COUNTER_ROLES)
def counter_coupon_view(request: OfficeRequest) -> HttpResponse:
    """A gift or exchange coupon used on its own: GET the form, POST a preview, POST with the key to use it."""
    store = _store(request)
    if store is None:
        return _work(request, "no_store.html", {})
    member_no = request.GET.get("member", "") or request.POST.get("member_no", "")
    member = _member(request, member_no)
    if request.method == "GET":
        return _work(
            request, "coupon.html", {"form": CounterCouponForm(initial={"member_no": member_no}), "member": member}
        )
    form = CounterCouponForm(request.POST)
    if not form.is_valid():
        return _work(request, "coupon.html", {"form": form, "member": member}, status=422)
    data = form.cleaned_data
    try:
        coupon = counter.coupon_by_code(data["code"])
        if not data.get("idempotency_key"):
            if coupon.member_id != member.pk:
                raise services.CouponNotUsable(reason="other_member")
            fresh = request.POST.copy()
            fresh["idempotency_key"] = new_key()
            form = CounterCouponForm(fresh)
            form.is_valid()
            return _work(request, "coupon_preview.html", {"form": form, "member": member, "coupon": coupon})
        counter.coupon_redeem_standalone(
            code=data["code"], member=member, store=store, idempotency_key=data["idempotency_key"], staff=request.staff
        )
    except services.LedgerError as exc:
        retry = request.POST.copy()
        retry.pop("idempotency_key", None)
        form = CounterCouponForm(retry)
        form.is_valid()
        return _work(request, "coupon.html", {"form": form, "member": member, "refusal": str(exc)}, status=422)
    return _member_panel(request, member, redeemed=coupon)


@staff_role_required(*COUNTER_ROLES)
def counter_points_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = _member(request, member_no)
    context = {
        "member": member,
        "summary": member_summary(member, at=timezone.now(), store=_store(request)),
        "points": selectors.member_points_summary(member=member),
        "lots": selectors.member_live_lots(member=member),
    }
    return _work(request, "points.html", context)


# ------------------------------------------------------------------ recent sales and refunds


def _purchases(store: Store | None, staff: Staff | None) -> QuerySet[Purchase]:
    purchases = Purchase.objects.all()
    if store is not None:
        purchases = purchases.filter(store=store)
    elif staff is not None and staff.role == Role.CASHIER:
        purchases = purchases.none()
    return purchases


def _recent(store: Store | None) -> list[Purchase]:
    if store is None:
        return []
    today = timezone.localdate()
    return list(
        Purchase.objects.filter(store=store, business_date=today)
        .select_related("member")
        .order_by("-occurred_at", "-pk")[:RECENT]
    )


@staff_role_required(*COUNTER_ROLES)
def counter_recent_view(request: OfficeRequest) -> HttpResponse:
    return _work(request, "recent.html", {"recent": _recent(_store(request))})


APPROVAL_SALT = "counter-refund-approval"
APPROVAL_SECONDS = 300


def _approver(request: OfficeRequest, form: CounterRefundForm, order_no: str) -> Staff | None:
    """The manager who approves at the till: by their username and password on the form (a cashier asks one
    over), or by the signed approval the preview carries (so the password never goes back into the page)."""
    token = form.cleaned_data.get("approval") or ""
    if token:
        try:
            signed = signing.loads(token, salt=APPROVAL_SALT, max_age=APPROVAL_SECONDS)
        except signing.BadSignature:
            form.add_error(None, _("The manager's approval has expired: ask again."))
            return None
        bound = (order_no, form.cleaned_data.get("amount"), form.cleaned_data.get("idempotency_key"))
        if (signed.get("order"), signed.get("amount"), signed.get("key")) != bound:
            form.add_error(None, _("The manager's approval has expired: ask again."))
            return None
        return Staff.objects.filter(pk=signed.get("staff")).first()
    username, password = form.cleaned_data.get("manager") or "", form.cleaned_data.get("manager_password") or ""
    if not username:
        return None
    user = authenticate(request, username=username, password=password)
    staff = Staff.objects.filter(user=user).first() if user is not None else None
    if staff is None or staff.role not in (Role.OWNER, Role.MANAGER):
        form.add_error("manager", _("These are not a manager's username and password."))
        return None
    return staff


@staff_role_required(*COUNTER_ROLES)
def counter_refund_view(request: OfficeRequest, order_no: str) -> HttpResponse:
    """GET: the refund form; POST: its preview with a one-time key (and the manager's approval, signed); POST
    with the key: the refund."""
    purchase = get_object_or_404(_purchases(_store(request), request.staff).select_related("member"), order_no=order_no)
    limit = services.loyalty_settings().refund_approval_fen
    context: dict[str, Any] = {"purchase": purchase, "limit": limit}
    if request.method == "GET":
        return _work(request, "refund.html", {**context, "form": CounterRefundForm()})
    form = CounterRefundForm(request.POST)
    if not form.is_valid():
        return _work(request, "refund.html", {**context, "form": form}, status=422)
    approver = _approver(request, form, purchase.order_no)
    if form.errors:
        return _work(request, "refund.html", {**context, "form": form}, status=422)
    amount = form.cleaned_data.get("amount") or purchase.refundable_fen  # what the preview shows
    data = form.cleaned_data
    if not data.get("idempotency_key"):
        fresh = request.POST.copy()
        fresh["idempotency_key"] = new_key()
        fresh.pop("manager_password", None)
        if approver is not None:  # for this refund only: this purchase, this amount, this key
            approval = {
                "staff": approver.pk,
                "order": purchase.order_no,
                "amount": data.get("amount"),
                "key": fresh["idempotency_key"],
            }
            fresh["approval"] = signing.dumps(approval, salt=APPROVAL_SALT)
        form = CounterRefundForm(fresh)
        form.is_valid()
        return _work(request, "refund_preview.html", {**context, "form": form, "amount": amount, "approver": approver})
    try:
        refund = counter.purchase_refund(
            purchase=purchase,
            amount_fen=data.get("amount"),  # empty: all that is left, worked out under the refund's lock
            idempotency_key=data["idempotency_key"],
            staff=request.staff,
            approved_by=approver,
            reason=data.get("reason") or "",
        )
    except services.LedgerError as exc:
        retry = request.POST.copy()
        for name in ("idempotency_key", "approval"):
            retry.pop(name, None)
        form = CounterRefundForm(retry)
        form.is_valid()
        return _work(request, "refund.html", {**context, "form": form, "refusal": str(exc)}, status=422)
    purchase.refresh_from_db()
    return _work(request, "refund_done.html", {**context, "refund": refund, "recent": _recent(_store(request))})


# ------------------------------------------------------------------ the shift summary


@dataclass
class ShiftLine:
    label: str
    count: int
    amount_fen: int


@staff_role_required(*COUNTER_ROLES)
def counter_shift_view(request: OfficeRequest) -> HttpResponse:
    """Today's totals at this store: by kind and by tender, refunds counted apart; printable."""
    store = _store(request)
    if store is None:
        return render(request, "assets/counter/shift.html", {"store": None, "active_section": "counter"})
    today = timezone.localdate()
    purchases = Purchase.objects.filter(store=store, business_date=today)
    refunds = PurchaseRefund.objects.filter(purchase__store=store, business_date=today)
    mine = request.GET.get("mine") == "1" and request.staff is not None
    if mine:
        purchases, refunds = purchases.filter(staff=request.staff), refunds.filter(staff=request.staff)
    sums = purchases.aggregate(n=Count("pk"), paid=Sum("payable_fen"), **{t: Sum(f) for t, f in TENDER_FIELDS.items()})
    back = refunds.aggregate(n=Count("pk"), paid=Sum("amount_fen"), **{t: Sum(f) for t, f in TENDER_FIELDS.items()})
    top_ups = LedgerTransaction.objects.filter(store=store, business_date=today, kind=LedgerTransaction.Kind.TOP_UP)
    top_up_refunds = LedgerTransaction.objects.filter(
        store=store, business_date=today, kind=LedgerTransaction.Kind.TOP_UP_REFUND
    )
    if mine:
        top_ups, top_up_refunds = top_ups.filter(staff=request.staff), top_up_refunds.filter(staff=request.staff)
    t_sum = top_ups.aggregate(n=Count("pk"), total=Sum("amount"))
    tr_sum = top_up_refunds.aggregate(n=Count("pk"), total=Sum("amount"))
    kinds = [
        ShiftLine(_("Sales"), sums["n"] or 0, sums["paid"] or 0),
        ShiftLine(_("Refunds"), back["n"] or 0, -(back["paid"] or 0)),
        ShiftLine(_("Top-ups"), t_sum["n"] or 0, t_sum["total"] or 0),
        ShiftLine(_("Top-up refunds"), tr_sum["n"] or 0, -(tr_sum["total"] or 0)),
    ]
    tenders = [
        ShiftLine(str(Tender(t).label), 0, (sums[t] or 0) - (back[t] or 0))
        for t in TENDER_FIELDS
        if (sums[t] or 0) or (back[t] or 0)
    ]
    context = {
        "store": store,
        "day": today,
        "kinds": kinds,
        "tenders": tenders,
        "net_fen": (sums["paid"] or 0) - (back["paid"] or 0),
        "mine": mine,
        "printed_at": timezone.localtime(),
        "opened": timezone.make_aware(datetime.combine(today, time.min)),
        "active_section": "counter",
    }
    return render(request, "assets/counter/shift.html", context)
