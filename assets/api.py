"""The POS API's counter routes: quote, purchase, refund, top-up and its refund, coupon check and redemption,
plan sale, and the program's rules. Every write goes through one assets.counter service under the terminal's
Idempotency-Key (members.api.idempotent); amounts are Money in fen."""

from datetime import datetime
from typing import Any, Literal

from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, Router, Schema
from ninja.params import functions as param
from pydantic import ConfigDict, model_validator

from assets import counter, selectors, services
from assets.models import Coupon, LedgerTransaction, Purchase, PurchaseRefund, RechargePackage
from members.api import (
    MAX_FEN,
    MEMBER_NO_PATTERN,
    TEXT_PATTERN,
    ApiError,
    Money,
    idempotency_key_param,
    idempotent,
    local,
    member_get,
    money,
    responses,
    terminal_of,
)
from members.models import Member, PaidPlan, PlanPeriod
from tiers import selectors as tiers_selectors
from tiers import services as tiers_services

Kind = LedgerTransaction.Kind
MAX_ID = 2**63 - 1
MAX_POINTS = 1_000_000_000
MAX_QUANTITY = 1_000_000
CODE_PATTERN = r"^[0-9A-Za-z ]*$"
ORDER_NO_PATTERN = r"^[0-9]{1,32}$"
COUPON_CODE_PATTERN = r"^[0-9A-Za-z]{1,32}$"
WRITES = (400, 404, 409, 422)  # the problems a write may answer with (besides 401 and 429)

TenderName = Literal["cash", "card", "wechat", "alipay", "balance"]
RecordedTender = Literal["cash", "card", "wechat", "alipay"]  # money taken outside the ledgers


# ------------------------------------------------------------------ refusals of the API


class PurchaseNotFound(ApiError):
    code, status = "PURCHASE_NOT_FOUND", 404
    message = _("This store has no purchase with this order number.")


class TopUpNotFound(ApiError):
    code, status = "TOP_UP_NOT_FOUND", 404
    message = _("This store has no top-up with this id.")


class CouponNotFound(ApiError):
    code, status = "COUPON_NOT_FOUND", 404
    message = _("No coupon has this code.")


class PackageNotFound(ApiError):
    code, status = "PACKAGE_NOT_FOUND", 404
    message = _("No recharge package has this id.")


class PlanNotFound(ApiError):
    code, status = "PLAN_NOT_FOUND", 404
    message = _("No paid plan has this id.")


class ExternalRefUsed(ApiError):
    code, status = "EXTERNAL_REF_USED", 409
    message = _("This store already has a purchase with this external reference.")


class AmountRequired(ApiError):
    message = _("Give an amount above zero or a recharge package.")


# ------------------------------------------------------------------ schemas


class In(Schema):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


MemberNo = Field(None, pattern=MEMBER_NO_PATTERN, description="member number; none for a guest")
CouponCode = Field("", max_length=40, pattern=CODE_PATTERN)


class TenderIn(In):
    tender: TenderName
    amount: Money


class LineIn(In):
    sku: str = Field("", max_length=64, pattern=TEXT_PATTERN)
    name: str = Field("", max_length=100, pattern=TEXT_PATTERN)
    category: str = Field("", max_length=64, pattern=TEXT_PATTERN)
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY, strict=True)
    unit_price: Money


class QuoteIn(In):
    member_no: str | None = MemberNo
    amount: Money
    coupon_code: str = CouponCode
    points: int = Field(0, ge=0, le=MAX_POINTS, strict=True, description="points the member wants to use")
    balance: Money | None = Field(None, description="the part to be paid from the stored balance (it may not earn)")


class PurchaseIn(In):
    member_no: str | None = MemberNo
    amount: Money
    coupon_code: str = CouponCode
    points: int = Field(0, ge=0, le=MAX_POINTS, strict=True)
    tenders: list[TenderIn] = Field(max_length=5, description="adding up to what is to pay; each tender once")
    payment_code: str = Field("", max_length=24, pattern=r"^[0-9]*$", description="needed to pay by balance")
    lines: list[LineIn] = Field([], max_length=200)
    external_ref: str = Field("", max_length=64, pattern=TEXT_PATTERN, description="the till's own receipt number")

    @model_validator(mode="after")
    def _each_tender_once(self) -> "PurchaseIn":
        names = [t.tender for t in self.tenders]
        if len(set(names)) != len(names):
            raise ValueError("each tender at most once")
        return self


class RefundIn(In):
    amount: Money | None = Field(None, description="none: all that is left to refund")
    reason: str = Field("", max_length=200, pattern=TEXT_PATTERN)


class TopUpIn(In):
    member_no: str = Field(pattern=MEMBER_NO_PATTERN)
    amount: Money | None = Field(None, description="with a package: its price, or none")
    package_id: int | None = Field(None, ge=1, le=MAX_ID, strict=True)
    tender: RecordedTender


class TopUpRefundIn(In):
    reason: str = Field("", max_length=200, pattern=TEXT_PATTERN)


class CouponRedeemIn(In):
    member_no: str = Field(pattern=MEMBER_NO_PATTERN)


class PlanSaleIn(In):
    member_no: str = Field(pattern=MEMBER_NO_PATTERN)
    plan_id: int = Field(ge=1, le=MAX_ID, strict=True)
    tender: RecordedTender


class PricingLine(Schema):
    label: str
    amount: Money
    subtract: bool = Field(description="the line takes its amount off")


class CouponApplied(Schema):
    code: str
    name: str
    off: Money


class QuoteOut(Schema):
    amount: Money
    discount: Money
    discount_percent: int | None = Field(description="the member pays this share of the price")
    discount_name: str
    coupon: CouponApplied | None
    points_used: int
    points_offset: Money
    payable: Money
    points_to_earn: int
    growth_to_earn: int
    multiplier_percent: int
    points_available: int
    points_max: int = Field(description="the most points this order takes")
    pricing: list[PricingLine]


class TenderOut(Schema):
    tender: str
    amount: Money


class LineOut(Schema):
    sku: str
    name: str
    category: str
    quantity: int
    unit_price: Money
    amount: Money


class PurchaseOut(Schema):
    order_no: str
    occurred_at: datetime
    store: str
    member_no: str | None
    external_ref: str
    amount: Money
    discount: Money
    coupon: CouponApplied | None
    points_used: int
    points_offset: Money
    payable: Money
    tenders: list[TenderOut]
    points_earned: int
    growth_earned: int
    lines: list[LineOut]
    pricing: list[PricingLine]
    balance_after: Money | None = Field(description="the member's stored balance after it")
    points_after: int | None


class RefundOut(Schema):
    id: int
    order_no: str
    amount: Money
    tenders: list[TenderOut]
    points_restored: int
    points_clawed_back: int
    growth_clawed_back: int
    coupon_restored: bool
    refunded: Money = Field(description="all refunds of the purchase so far")
    refundable: Money
    created_at: datetime


class BalanceAfter(Schema):
    principal: Money
    bonus: Money
    total: Money


class TopUpOut(Schema):
    id: int
    member_no: str
    paid: Money
    bonus: Money
    tender: str
    package_id: int | None
    package_name: str | None
    created_at: datetime
    balance: BalanceAfter


class TopUpRefundOut(Schema):
    id: int
    top_up_id: int
    member_no: str
    principal: Money = Field(description="paid back")
    bonus: Money = Field(description="taken back")
    created_at: datetime
    balance: BalanceAfter


class CouponCheckOut(Schema):
    code: str
    name: str
    kind: str = Field(description="cash_off, percent or gift")
    status: str
    member_no: str
    value: Money
    threshold: Money
    percent_of_price: int | None
    cap: Money
    gift_name: str
    starts_at: datetime
    expires_at: datetime
    usable: bool = Field(description="by the member in this store now (a gift: redeemed on its own)")
    reason: str | None = Field(
        description="why not: used, expired, void, not_started, other_member, store, threshold or member_frozen"
    )
    detail: str | None
    off: Money | None = Field(description="what it takes off the amount asked about")


class CouponRedeemOut(Schema):
    code: str
    name: str
    gift_name: str
    member_no: str
    redeemed_at: datetime


class PlanOut(Schema):
    id: int
    name: str
    price: Money
    duration: str


class PlanSaleOut(Schema):
    member_no: str
    plan: PlanOut
    starts_at: datetime
    ends_at: datetime
    tier: str


class TierRung(Schema):
    name: str
    rank: int
    threshold: int = Field(description="growth value")
    colour: str


class PackageOut(Schema):
    id: int
    name: str
    pay: Money
    bonus: Money
    points: int
    growth: int
    coupons: list[str]
    on_sale_until: datetime | None


class PointsRules(Schema):
    per_yuan: int = Field(description="points earned per yuan paid")
    worth_one_yuan: int = Field(description="points that pay one yuan")
    offset_max_percent: int = Field(description="points pay at most this share of an order")
    offset_min: int = Field(description="fewest points used at once")
    expiry: str
    expiry_days: int
    balance_payments_earn: bool


class GrowthRules(Schema):
    mode: str
    window_months: int
    per_yuan: int
    per_yuan_top_up: int
    upgrades: str


class ProgramOut(Schema):
    currency: str
    points: PointsRules
    growth: GrowthRules
    refund_approval_above: Money = Field(description="refunds of a purchase above this need a manager")
    tiers: list[TierRung]
    packages: list[PackageOut]
    plans: list[PlanOut]


# ------------------------------------------------------------------ shaping answers


def _pricing(lines: list[tuple[str, int]]) -> list[PricingLine]:
    return [PricingLine(label=label, amount=money(abs(fen)), subtract=fen < 0) for label, fen in lines]


def _coupon_applied(coupon: Coupon | None, off: int) -> CouponApplied | None:
    return CouponApplied(code=coupon.code, name=coupon.template.name, off=money(off)) if coupon else None


def _balance_after(member: Member) -> BalanceAfter:
    balances = selectors.member_balances(member=member)
    principal, bonus = balances["principal"], balances["bonus"]
    return BalanceAfter(principal=money(principal), bonus=money(bonus), total=money(principal + bonus))


def _tenders(document: Purchase | PurchaseRefund) -> list[TenderOut]:
    paid = {t: getattr(document, f"{t}_fen") for t in ("balance", "cash", "card", "wechat", "alipay", "other")}
    return [TenderOut(tender=t, amount=money(fen)) for t, fen in paid.items() if fen]


def _purchase_out(purchase: Purchase) -> PurchaseOut:
    member = purchase.member
    balances = selectors.member_balances(member=member) if member else None
    return PurchaseOut(
        order_no=purchase.order_no,
        occurred_at=local(purchase.occurred_at),
        store=purchase.store.code,
        member_no=member.member_no if member else None,
        external_ref=purchase.external_ref,
        amount=money(purchase.gross_fen),
        discount=money(purchase.discount_fen),
        coupon=_coupon_applied(purchase.coupon, purchase.coupon_fen),
        points_used=purchase.points_used,
        points_offset=money(purchase.points_offset_fen),
        payable=money(purchase.payable_fen),
        tenders=_tenders(purchase),
        points_earned=purchase.points_earned,
        growth_earned=purchase.growth_earned,
        lines=[
            LineOut(
                sku=line.sku,
                name=line.name,
                category=line.category,
                quantity=line.quantity,
                unit_price=money(line.unit_price_fen),
                amount=money(line.amount_fen),
            )
            for line in purchase.lines.order_by("pk")
        ],
        pricing=_pricing([(str(label), int(fen)) for label, fen in purchase.details.get("lines", [])]),
        balance_after=money(balances["principal"] + balances["bonus"]) if balances else None,
        points_after=balances["points"] if balances else None,
    )


def _plan_out(plan: PaidPlan) -> PlanOut:
    return PlanOut(id=plan.pk, name=plan.name, price=money(plan.price_fen), duration=plan.duration)


# ------------------------------------------------------------------ routes

router = Router(tags=["counter"])


@router.post("/quotes", response=responses({200: QuoteOut}, 400, 404, 422), summary="Price a purchase")
def quote_create(request: HttpRequest, payload: QuoteIn) -> QuoteOut:
    """Price a purchase without recording anything: member discount, coupon, points, what is to pay and what it
    earns. Read-only, so no Idempotency-Key."""
    member = member_get(payload.member_no) if payload.member_no else None
    quote = counter.purchase_quote(
        store=terminal_of(request).store,
        member=member,
        amount_fen=payload.amount.amount,
        coupon_code=payload.coupon_code,
        points=payload.points,
        balance_fen=payload.balance.amount if payload.balance else 0,
    )
    return QuoteOut(
        amount=money(quote.gross_fen),
        discount=money(quote.discount_fen),
        discount_percent=quote.discount_percent,
        discount_name=quote.discount_name,
        coupon=_coupon_applied(quote.coupon, quote.coupon_fen),
        points_used=quote.points_used,
        points_offset=money(quote.points_offset_fen),
        payable=money(quote.payable_fen),
        points_to_earn=quote.points_to_earn,
        growth_to_earn=quote.growth_to_earn,
        multiplier_percent=quote.multiplier_percent,
        points_available=quote.points_available,
        points_max=quote.points_max,
        pricing=_pricing([(line.label, line.amount_fen) for line in quote.lines]),
    )


@router.post("/purchases", response=responses({201: PurchaseOut}, *WRITES), summary="Record a purchase")
def purchase_create(
    request: HttpRequest, payload: PurchaseIn, idempotency_key: str = idempotency_key_param()
) -> HttpResponse:
    """Record a purchase as quoted, in one transaction: coupon, points, balance (with the member's payment code),
    points and growth earned, a tier upgrade. The tenders must add up to what is to pay."""
    terminal = terminal_of(request)

    def run() -> tuple[int, Any]:
        member = member_get(payload.member_no) if payload.member_no else None
        ref = payload.external_ref.strip()
        # a reference used before by another request (a retry of this one is answered by the service's replay)
        retry = counter.purchase_recorded(idempotency_key=idempotency_key, actor=f"terminal:{terminal.pk}")
        if ref and retry is None and Purchase.objects.filter(store=terminal.store, external_ref=ref).exists():
            raise ExternalRefUsed()
        try:
            purchase = counter.purchase_record(
                store=terminal.store,
                member=member,
                amount_fen=payload.amount.amount,
                tenders={t.tender: t.amount.amount for t in payload.tenders},
                idempotency_key=idempotency_key,
                coupon_code=payload.coupon_code,
                points=payload.points,
                payment_code=payload.payment_code,
                lines=[
                    {
                        "sku": line.sku,
                        "name": line.name,
                        "category": line.category,
                        "quantity": line.quantity,
                        "unit_price_fen": line.unit_price.amount,
                    }
                    for line in payload.lines
                ],
                actor=f"terminal:{terminal.pk}",
                source=Purchase.Source.API,
                external_ref=ref,
            )
        except IntegrityError as exc:
            if "purchase_external_ref_per_store" in str(exc):  # the same reference sent twice at once
                raise ExternalRefUsed() from None
            raise
        return 201, _purchase_out(purchase)

    return idempotent(request, idempotency_key, run)


@router.post(
    "/purchases/{order_no}/refunds", response=responses({201: RefundOut}, *WRITES, 403), summary="Refund a purchase"
)
def refund_create(
    request: HttpRequest,
    payload: RefundIn,
    order_no: str = param.Path(..., pattern=ORDER_NO_PATTERN),
    idempotency_key: str = idempotency_key_param(),
) -> HttpResponse:
    """Refund (part of) a purchase of this store: money back by tender as it was taken, points and growth in
    proportion, the coupon with the refund that completes it. Above the program's limit a manager approves at
    the counter screen (MANAGER_APPROVAL_REQUIRED here)."""
    terminal = terminal_of(request)

    def run() -> tuple[int, Any]:
        purchase = Purchase.objects.select_related("member").filter(order_no=order_no, store=terminal.store).first()
        if purchase is None:
            raise PurchaseNotFound()
        refund = counter.purchase_refund(
            purchase=purchase,
            idempotency_key=idempotency_key,
            amount_fen=payload.amount.amount if payload.amount else None,
            actor=f"terminal:{terminal.pk}",
            reason=payload.reason,
        )
        done = refund.purchase
        done.refresh_from_db(fields=["refunded_fen"])
        return 201, RefundOut(
            id=refund.pk,
            order_no=done.order_no,
            amount=money(refund.amount_fen),
            tenders=_tenders(refund),
            points_restored=refund.points_restored,
            points_clawed_back=refund.points_clawed_back,
            growth_clawed_back=refund.growth_clawed_back,
            coupon_restored=refund.coupon_restored,
            refunded=money(done.refunded_fen),
            refundable=money(done.refundable_fen),
            created_at=local(refund.created_at),
        )

    return idempotent(request, idempotency_key, run)


@router.post("/top-ups", response=responses({201: TopUpOut}, *WRITES), summary="Top up a balance")
def top_up_create(
    request: HttpRequest, payload: TopUpIn, idempotency_key: str = idempotency_key_param()
) -> HttpResponse:
    """Top up a member's stored balance, by an amount or with a recharge package on sale (its bonus, points,
    growth value and coupons come with it). The money is taken by a recorded tender (not the balance)."""
    terminal = terminal_of(request)

    def run() -> tuple[int, Any]:
        member = member_get(payload.member_no)
        package = None
        if payload.package_id is not None:
            package = RechargePackage.objects.filter(pk=payload.package_id).first()
            if package is None:
                raise PackageNotFound()
        elif payload.amount is None or payload.amount.amount <= 0:
            raise AmountRequired()
        top_up = counter.top_up_record(
            member=member,
            idempotency_key=idempotency_key,
            store=terminal.store,
            amount_fen=payload.amount.amount if payload.amount else None,
            package=package,
            tender=payload.tender,
            actor=f"terminal:{terminal.pk}",
        )
        return 201, TopUpOut(
            id=top_up.pk,
            member_no=member.member_no,
            paid=money(int(top_up.details["principal_fen"])),
            bonus=money(int(top_up.details["bonus_fen"])),
            tender=str(top_up.details.get("tender", payload.tender)),
            package_id=top_up.package_id,
            package_name=top_up.package.name if top_up.package else None,
            created_at=local(top_up.created_at),
            balance=_balance_after(member),
        )

    return idempotent(request, idempotency_key, run)


@router.post(
    "/top-ups/{top_up_id}/refund", response=responses({201: TopUpRefundOut}, *WRITES), summary="Refund a top-up"
)
def top_up_refund_create(
    request: HttpRequest,
    payload: TopUpRefundIn,
    top_up_id: int = param.Path(..., ge=1, le=MAX_ID),
    idempotency_key: str = idempotency_key_param(),
) -> HttpResponse:
    """Refund a top-up made in this store: its principal is paid back, its package's bonus, points, growth and
    unused coupons are taken back. Once part of it is spent only a manager can refund it (TOP_UP_ALREADY_SPENT)."""
    terminal = terminal_of(request)

    def run() -> tuple[int, Any]:
        top_up = (
            LedgerTransaction.objects.select_related("member", "package")
            .filter(pk=top_up_id, kind=Kind.TOP_UP, store=terminal.store)
            .first()
        )
        if top_up is None or top_up.member is None:
            raise TopUpNotFound()
        refund = counter.top_up_refund(
            top_up=top_up,
            idempotency_key=idempotency_key,
            store=terminal.store,
            actor=f"terminal:{terminal.pk}",
            reason=payload.reason,
        )
        return 201, TopUpRefundOut(
            id=refund.pk,
            top_up_id=top_up.pk,
            member_no=top_up.member.member_no,
            principal=money(int(refund.details["principal_fen"])),
            bonus=money(int(refund.details["bonus_fen"])),
            created_at=local(refund.created_at),
            balance=_balance_after(top_up.member),
        )

    return idempotent(request, idempotency_key, run)


@router.get("/coupons/{code}", response=responses({200: CouponCheckOut}, 400, 404), summary="Check a coupon")
def coupon_check(
    request: HttpRequest,
    code: str = param.Path(..., pattern=COUPON_CODE_PATTERN),
    member: str | None = param.Query(None, pattern=MEMBER_NO_PATTERN, description="member number (default: its owner)"),
    amount: int | None = param.Query(None, ge=0, le=MAX_FEN, description="fen the coupon would apply to"),
) -> CouponCheckOut:
    """Whether the coupon can be used now in this store by the member, and what it takes off `amount` (an amount
    after any member discount; POST /quotes prices a whole order). A gift coupon is usable on its own."""
    store = terminal_of(request).store
    try:
        coupon = counter.coupon_by_code(code)
    except services.CouponNotUsable:
        raise CouponNotFound() from None
    holder = member_get(member) if member else coupon.member
    template = coupon.template
    usable, reason, detail, off = True, None, None, None
    try:
        # without an amount: the coupon's own conditions only, as if the order just reached its minimum
        taken = counter.coupon_off(
            coupon, member=holder, store=store, amount_fen=template.threshold_fen if amount is None else amount,
            at=timezone.now(),
        )  # fmt: skip
        off = money(taken) if amount is not None else None
    except services.CouponNotUsable as exc:
        if exc.params.get("reason") != "gift":
            usable, reason, detail = False, str(exc.params.get("reason")), str(exc)
    if usable and holder.status == Member.Status.FROZEN:
        usable, reason, detail, off = False, "member_frozen", str(services.MemberFrozen()), None
    return CouponCheckOut(
        code=coupon.code,
        name=template.name,
        kind=template.kind,
        status=coupon.status,
        member_no=coupon.member.member_no,
        value=money(template.value_fen),
        threshold=money(template.threshold_fen),
        percent_of_price=template.percent_of_price,
        cap=money(template.cap_fen),
        gift_name=template.gift_name,
        starts_at=local(coupon.starts_at),
        expires_at=local(coupon.expires_at),
        usable=usable,
        reason=reason,
        detail=detail,
        off=off,
    )


@router.post(
    "/coupons/{code}/redeem", response=responses({201: CouponRedeemOut}, *WRITES), summary="Redeem a gift coupon"
)
def coupon_redeem(
    request: HttpRequest,
    payload: CouponRedeemIn,
    code: str = param.Path(..., pattern=COUPON_CODE_PATTERN),
    idempotency_key: str = idempotency_key_param(),
) -> HttpResponse:
    """Use a gift or exchange coupon without a purchase (the gift is handed over). Other kinds are used in a
    purchase (COUPON_NOT_USABLE here)."""
    terminal = terminal_of(request)

    def run() -> tuple[int, Any]:
        member = member_get(payload.member_no)
        try:
            coupon = counter.coupon_by_code(code)
        except services.CouponNotUsable:
            raise CouponNotFound() from None
        redemption = counter.coupon_redeem_standalone(
            code=coupon.code,
            member=member,
            store=terminal.store,
            idempotency_key=idempotency_key,
            actor=f"terminal:{terminal.pk}",
        )
        return 201, CouponRedeemOut(
            code=coupon.code,
            name=coupon.template.name,
            gift_name=coupon.template.gift_name,
            member_no=member.member_no,
            redeemed_at=local(redemption.created_at),
        )

    return idempotent(request, idempotency_key, run)


@router.post("/plan-sales", response=responses({201: PlanSaleOut}, *WRITES), summary="Sell a paid plan")
def plan_sale_create(
    request: HttpRequest, payload: PlanSaleIn, idempotency_key: str = idempotency_key_param()
) -> HttpResponse:
    """Sell a paid plan: a period of it (a renewal extends the current one) paid by a recorded tender, and the
    plan's tier at once."""
    terminal = terminal_of(request)

    def run() -> tuple[int, Any]:
        member = member_get(payload.member_no)
        plan = PaidPlan.objects.filter(pk=payload.plan_id).first()
        if plan is None:
            raise PlanNotFound()
        period: PlanPeriod = counter.plan_sell(
            member=member,
            plan=plan,
            store=terminal.store,
            tender=payload.tender,
            idempotency_key=idempotency_key,
            actor=f"terminal:{terminal.pk}",
        )
        return 201, PlanSaleOut(
            member_no=member.member_no,
            plan=_plan_out(plan),
            starts_at=local(period.starts_at),
            ends_at=local(period.ends_at),
            tier=tiers_selectors.member_tier(member=member).name,
        )

    return idempotent(request, idempotency_key, run)


@router.get("/program", response=responses({200: ProgramOut}), summary="The program's rules")
def program(request: HttpRequest) -> ProgramOut:
    """The program's rules a till shows or prices with: points and growth rules, the tier ladder, the recharge
    packages and paid plans on sale now."""
    loyalty = selectors.loyalty_settings()
    rules = tiers_services.tier_rules()
    now = timezone.now()
    packages = [p for p in selectors.recharge_package_list() if services.package_on_sale(p, now)]
    return ProgramOut(
        currency=money(0).currency,
        points=PointsRules(
            per_yuan=loyalty.points_per_yuan,
            worth_one_yuan=loyalty.points_per_yuan_offset,
            offset_max_percent=loyalty.points_offset_max_percent,
            offset_min=loyalty.points_offset_min,
            expiry=loyalty.points_expiry,
            expiry_days=loyalty.points_expiry_days,
            balance_payments_earn=loyalty.balance_payments_earn,
        ),
        growth=GrowthRules(
            mode=rules.mode,
            window_months=rules.window_months,
            per_yuan=rules.growth_per_yuan,
            per_yuan_top_up=rules.growth_per_yuan_top_up,
            upgrades=rules.upgrade_timing,
        ),
        refund_approval_above=money(loyalty.refund_approval_fen),
        tiers=[
            TierRung(name=t.name, rank=t.rank, threshold=t.threshold, colour=t.colour) for t in tiers_selectors.ladder()
        ],
        packages=[
            PackageOut(
                id=p.pk,
                name=p.name,
                pay=money(p.pay_fen),
                bonus=money(p.bonus_fen),
                points=p.points,
                growth=p.growth,
                coupons=[t.name for t in p.coupon_templates.all()],
                on_sale_until=local(p.ends_at) if p.ends_at else None,
            )
            for p in packages
        ],
        plans=[_plan_out(p) for p in PaidPlan.objects.filter(is_active=True).order_by("price_fen", "pk")],
    )
