"""The counter's use cases, one orchestrating service each, called by the cashier screen and the POS API alike:
purchase_quote (read-only), purchase_record, purchase_refund, top_up_record, top_up_refund,
coupon_redeem_standalone and plan_sell. Each runs the ledger services for one member as one idempotent unit
(one key, one lock, all or nothing).

The pricing pipeline, in this fixed order:
1. member discount: the best discount among the benefits that apply now (tier, paid plan, member day); the
   discount rounds down to the fen, so the member pays the rounded-up rest;
2. coupon (one per purchase): cash-off on reaching its minimum (never more than what is left), or a
   percentage with its cap; stores and validity checked; gift coupons are used on their own
   (coupon_redeem_standalone);
3. points offset: at least the configured minimum of points, worth at most the configured share of what is
   left after the coupon, at the configured rate (100 points = 1 yuan by default);
4. payment split: stored balance (only with the member's payment code), cash, bank card, WeChat Pay,
   Alipay (the last three recorded, not processed), in any mix adding up to what is to pay;
5. points and growth value earned last, on the money paid (not the points offset; payments from the
   balance count unless the settings say otherwise), points with the highest multiplier that applies.

This module is the one place in `assets` that reads tiers and benefits: the ledger services themselves depend
only on members."""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assets import services
from assets.models import (
    COUNTER_TENDERS,
    TENDER_FIELDS,
    Asset,
    Coupon,
    CouponTemplate,
    IdempotencyRecord,
    LedgerTransaction,
    Purchase,
    PurchaseLine,
    PurchaseRefund,
    RechargePackage,
    Tender,
)
from assets.services.core import _lock_accounts, _require_active, _scope, _write
from assets.services.errors import CouponNotUsable, LedgerError, RefundExceedsPaid, yuan
from benefits.selectors import benefits_applicable
from config.celery import task_send
from members import services as members_services
from members.models import Member, PaidPlan, PlanPeriod, Staff, Store
from members.roles import Role
from tiers import services as tiers_services

Kind = LedgerTransaction.Kind

RULE_TAGS_REFRESH = "tags.tasks.rule_tags_refresh_task"  # the tags app's task, by name


# ------------------------------------------------------------------ refusals of the counter


class PaymentCodeInvalid(LedgerError):
    code = "PAYMENT_CODE_INVALID"
    message = gettext_lazy("This payment code is not valid: ask the member to refresh it.")


class PaymentNotAddingUp(LedgerError):
    code = "PAYMENT_NOT_ADDING_UP"
    message = gettext_lazy("The payments add up to ¥%(paid)s, not the ¥%(due)s to pay.")


class PointsNotUsable(LedgerError):
    code = "POINTS_NOT_USABLE"
    REASONS: dict[str, Any] = {
        "minimum": gettext_lazy("Use at least %(minimum)s points at once."),
        "cap": gettext_lazy("At most %(maximum)s points can pay for this order."),
        "guest": gettext_lazy("A guest has no points."),
    }

    def __str__(self) -> str:
        return str(self.REASONS.get(str(self.params.get("reason")), self.message)) % self.params


class MemberRequired(LedgerError):
    code = "MEMBER_REQUIRED"
    message = gettext_lazy("Only a member can pay with a stored balance, points or a coupon.")


class ApprovalRequired(LedgerError):
    code = "MANAGER_APPROVAL_REQUIRED"
    message = gettext_lazy("A refund above ¥%(limit)s needs a manager's approval.")


class PlanNotOnSale(LedgerError):
    code = "PLAN_NOT_ON_SALE"
    message = gettext_lazy("This paid plan is not on sale.")


class InvalidAmount(LedgerError):
    code = "VALIDATION_ERROR"
    message = gettext_lazy("Enter an amount above zero.")


for _cls in (
    PaymentCodeInvalid,
    PaymentNotAddingUp,
    PointsNotUsable,
    MemberRequired,
    ApprovalRequired,
    PlanNotOnSale,
    InvalidAmount,
):
    services.REFUSALS[_cls.code] = _cls


# ------------------------------------------------------------------ the quote


@dataclass(frozen=True)
class QuoteLine:
    label: str
    amount_fen: int  # signed: what the line adds to (or takes off) the amount to pay


@dataclass
class Quote:
    store: Store
    member: Member | None
    at: datetime
    gross_fen: int
    discount_percent: int | None = None
    discount_fen: int = 0
    discount_name: str = ""
    coupon: Coupon | None = None
    coupon_fen: int = 0
    points_used: int = 0
    points_offset_fen: int = 0
    payable_fen: int = 0
    multiplier_percent: int = 100
    earn_base_fen: int = 0
    points_to_earn: int = 0
    growth_to_earn: int = 0
    points_available: int = 0
    points_max: int = 0  # the most points this order takes
    lines: list[QuoteLine] = field(default_factory=list)

    @property
    def after_discount_fen(self) -> int:
        return self.gross_fen - self.discount_fen

    @property
    def after_coupon_fen(self) -> int:
        return self.after_discount_fen - self.coupon_fen


def coupon_off(coupon: Coupon, *, member: Member, store: Store, amount_fen: int, at: datetime) -> int:
    """What `coupon` takes off `amount_fen` (after the member discount) for `member` in `store` at `at`, or
    CouponNotUsable with the reason. The purchase quote and the POS API's coupon check use it."""
    if coupon.member_id != member.pk:
        raise CouponNotUsable(reason="other_member")
    if coupon.status != Coupon.Status.AVAILABLE:
        raise CouponNotUsable(reason=coupon.status)
    if coupon.starts_at > at:
        raise CouponNotUsable(reason="not_started")
    if coupon.expires_at <= at:
        raise CouponNotUsable(reason="expired")
    template = coupon.template
    stores = [s.pk for s in template.stores.all()]
    if stores and store.pk not in stores:
        raise CouponNotUsable(reason="store")
    if template.kind == CouponTemplate.Kind.CASH_OFF:
        if amount_fen < template.threshold_fen:
            raise CouponNotUsable(reason="threshold")
        return min(template.value_fen, amount_fen)
    if template.kind == CouponTemplate.Kind.PERCENT:
        if amount_fen < template.threshold_fen:
            raise CouponNotUsable(reason="threshold")
        off = amount_fen * (100 - (template.percent_of_price or 100)) // 100
        return min(off, template.cap_fen) if template.cap_fen else off
    raise CouponNotUsable(reason="gift")


def coupon_by_code(code: str) -> Coupon:
    """The coupon with this code (case and spaces ignored), or CouponNotUsable."""
    cleaned = "".join(code.split()).upper()
    found = Coupon.objects.select_related("template").prefetch_related("template__stores").filter(code=cleaned)
    coupon = found.first() if cleaned else None
    if coupon is None:
        raise CouponNotUsable(reason="unknown")
    return coupon


def purchase_quote(
    *,
    store: Store,
    member: Member | None,
    amount_fen: int,
    coupon_code: str = "",
    points: int = 0,
    balance_fen: int = 0,
    at: datetime | None = None,
) -> Quote:
    """Price a purchase through the pipeline (see the module's notes) without writing anything. `points` is
    how many points the member wants to use; `balance_fen` how much of the payment comes from the stored
    balance (it may not earn). Raises the pipeline's refusals."""
    at = at or timezone.now()
    if amount_fen <= 0:
        raise InvalidAmount()
    settings = services.loyalty_settings()
    quote = Quote(store=store, member=member, at=at, gross_fen=amount_fen)
    quote.lines.append(QuoteLine(_("Amount"), amount_fen))
    if member is None:
        if coupon_code or points or balance_fen:
            raise MemberRequired()
    else:
        applicable = benefits_applicable(member=member, at=at)
        if applicable.discount_percent and applicable.discount_percent < 100:
            quote.discount_percent = applicable.discount_percent
            quote.discount_fen = amount_fen * (100 - applicable.discount_percent) // 100
            quote.discount_name = applicable.discount_from.name if applicable.discount_from else ""
            label = _("Member discount (%(percent)s%% of the price)") % {"percent": applicable.discount_percent}
            quote.lines.append(QuoteLine(label, -quote.discount_fen))
        quote.multiplier_percent = applicable.multiplier_percent
        if coupon_code:
            quote.coupon = coupon_by_code(coupon_code)
            quote.coupon_fen = coupon_off(
                quote.coupon, member=member, store=store, amount_fen=quote.after_discount_fen, at=at
            )
            quote.lines.append(
                QuoteLine(_("Coupon %(name)s") % {"name": quote.coupon.template.name}, -quote.coupon_fen)
            )
        quote.points_available = _points_balance(member)
        rate = settings.points_per_yuan_offset
        quote.points_max = quote.after_coupon_fen * settings.points_offset_max_percent // 100 * rate // 100
        if points:
            if points < settings.points_offset_min:
                raise PointsNotUsable(reason="minimum", minimum=settings.points_offset_min)
            if points > quote.points_max:
                raise PointsNotUsable(reason="cap", maximum=quote.points_max)
            if points > quote.points_available:
                raise services.InsufficientPoints(available=quote.points_available, wanted=points)
            quote.points_offset_fen = points * 100 // rate
            # the points the fen are worth, rounded up: never more off than the points pay for
            quote.points_used = min(points, -(-quote.points_offset_fen * rate // 100))
            label = _("%(points)s points") % {"points": quote.points_used}
            quote.lines.append(QuoteLine(label, -quote.points_offset_fen))
    quote.payable_fen = quote.after_coupon_fen - quote.points_offset_fen
    quote.lines.append(QuoteLine(_("To pay"), quote.payable_fen))
    if member is not None:
        paid_from_balance = min(balance_fen, quote.payable_fen)
        quote.earn_base_fen = quote.payable_fen - (0 if settings.balance_payments_earn else paid_from_balance)
        quote.points_to_earn = services.points_for_paid(
            quote.earn_base_fen, multiplier_percent=quote.multiplier_percent
        )
        quote.growth_to_earn = tiers_services.growth_for_paid(quote.earn_base_fen)
    return quote


def _points_balance(member: Member) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(balance), 0) FROM assets_account WHERE member_id = %s AND asset = %s",
            [member.pk, Asset.POINTS],
        )
        return int(cursor.fetchone()[0])


# ------------------------------------------------------------------ recording a purchase


def order_numbers_new(count: int = 1) -> list[str]:
    """New order numbers: the local date and a number from a sequence, so two purchases never share one (a
    sequence never gives a number twice, rolled back or not)."""
    day = timezone.localdate().strftime("%Y%m%d")
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('assets_order_no_seq') FROM generate_series(1, %s)", [count])
        return [f"{day}{n:010d}" for (n,) in cursor.fetchall()]


def order_no_new() -> str:
    return order_numbers_new()[0]


def _tenders_checked(tenders: Mapping[str, int], payable_fen: int) -> dict[str, int]:
    cleaned: dict[str, int] = {}
    for tender, amount in tenders.items():
        if tender not in COUNTER_TENDERS or not isinstance(amount, int) or amount < 0:
            raise InvalidAmount()
        if amount:
            cleaned[tender] = amount
    if sum(cleaned.values()) != payable_fen:
        raise PaymentNotAddingUp(paid=yuan(sum(cleaned.values())), due=yuan(payable_fen))
    return cleaned


def purchase_record(
    *,
    store: Store,
    member: Member | None,
    amount_fen: int,
    tenders: Mapping[str, int],
    idempotency_key: str,
    coupon_code: str = "",
    points: int = 0,
    payment_code: str = "",
    lines: Sequence[Mapping[str, Any]] = (),
    staff: Staff | None = None,
    actor: str = "",
    source: str = Purchase.Source.COUNTER,
    external_ref: str = "",
) -> Purchase:
    """Record a purchase as quoted, atomically across every asset and idempotently: the coupon used, the points
    spent, the balance paid (after the member's payment code is checked and used up), the points and growth
    value earned, a real-time tier upgrade, the purchase and its lines. A retry with the same key returns
    the same purchase (or the same refusal); the same key with a different request is IDEMPOTENCY_KEY_REUSED."""
    request = {
        "store": store.pk,
        "member": member.pk if member else None,
        "amount": amount_fen,
        "tenders": dict(sorted(tenders.items())),
        "coupon": coupon_code,
        "points": points,
        "lines": [dict(line) for line in lines],
        "ref": external_ref,
        "source": source,
        # a retry with a fresh code is another request (the code itself is not kept)
        "code": hashlib.sha256(payment_code.encode()).hexdigest()[:16] if payment_code else "",
    }
    scope = _scope(staff, actor)

    def work() -> Purchase:
        now = timezone.now()
        balance = int(tenders.get(Tender.BALANCE, 0) or 0)
        quote = purchase_quote(
            store=store, member=member, amount_fen=amount_fen, coupon_code=coupon_code, points=points,
            balance_fen=balance, at=now,
        )  # fmt: skip
        paid = _tenders_checked(tenders, quote.payable_fen)
        order_no = order_no_new()
        common: dict[str, Any] = {"store": store, "staff": staff, "actor": actor}
        txs: dict[str, int] = {}
        if member is not None:
            if paid.get(Tender.BALANCE):
                try:
                    members_services.payment_code_consume(code=payment_code, member=member, now=now)
                except members_services.MemberError:
                    raise PaymentCodeInvalid() from None
            if quote.coupon is not None:
                txs["coupon"] = services.coupon_redeem(
                    coupon=quote.coupon, member=member, idempotency_key=f"{idempotency_key}:coupon",
                    order_amount_fen=quote.after_discount_fen, external_ref=order_no, **common,
                ).pk  # fmt: skip
            if quote.points_used:
                txs["points_spend"] = services.points_spend(
                    member=member, points=quote.points_used, idempotency_key=f"{idempotency_key}:points",
                    external_ref=order_no, **common,
                ).pk  # fmt: skip
            if paid.get(Tender.BALANCE):
                txs["balance"] = services.balance_spend(
                    member=member, amount_fen=paid[Tender.BALANCE], idempotency_key=f"{idempotency_key}:balance",
                    external_ref=order_no, **common,
                ).pk  # fmt: skip
            if quote.points_to_earn:
                txs["points_earn"] = services.points_earn(
                    member=member, points=quote.points_to_earn, idempotency_key=f"{idempotency_key}:earn",
                    external_ref=order_no, **common,
                ).pk  # fmt: skip
            if quote.growth_to_earn:
                txs["growth"] = services.growth_add(
                    member=member, amount=quote.growth_to_earn, idempotency_key=f"{idempotency_key}:growth",
                    external_ref=order_no, **common,
                ).pk  # fmt: skip
        purchase = Purchase.objects.create(
            order_no=order_no,
            store=store,
            member=member,
            staff=staff,
            actor=actor,
            source=source,
            external_ref=external_ref,
            occurred_at=now,
            business_date=timezone.localdate(now),
            gross_fen=quote.gross_fen,
            discount_fen=quote.discount_fen,
            coupon_fen=quote.coupon_fen,
            points_used=quote.points_used,
            points_offset_fen=quote.points_offset_fen,
            payable_fen=quote.payable_fen,
            points_earned=quote.points_to_earn,
            growth_earned=quote.growth_to_earn,
            multiplier_percent=quote.multiplier_percent,
            coupon=quote.coupon,
            details={
                "lines": [[line.label, line.amount_fen] for line in quote.lines],
                "discount": quote.discount_name,
                "tx": txs,
            },
            **{TENDER_FIELDS[t]: amount for t, amount in paid.items()},
        )
        PurchaseLine.objects.bulk_create(_lines(purchase, lines))
        if member is not None and quote.growth_to_earn:
            tiers_services.tier_upgrade_realtime(member=member, staff=staff)
        if member is not None:  # rule tags follow the purchase in the background, never slowing it down
            transaction.on_commit(lambda: _rule_tags_refresh(member.pk), robust=True)
        return purchase

    if member is None:
        return _write("purchase_record", scope=scope, key=idempotency_key, request=request, body=work)
    return services.ledger_unit(
        work, member=member, idempotency_key=idempotency_key, scope=scope, operation="purchase_record", request=request
    )


def _rule_tags_refresh(member_id: int) -> None:
    """Ask a worker to re-evaluate the member's rule tags. By task name (assets does not depend on tags), and
    without retrying the broker: a broker that is down costs this sale nothing but the refresh (logged)."""
    task_send(RULE_TAGS_REFRESH, member_id=member_id)


def purchase_recorded(*, idempotency_key: str, staff: Staff | None = None, actor: str = "") -> Purchase | None:
    """The purchase already recorded under this key and caller, if any: a retry is answered with it before the
    order is priced again (the points or coupon it used are gone by then, so pricing again would refuse)."""
    record = IdempotencyRecord.objects.filter(
        scope=_scope(staff, actor), key=idempotency_key, operation="purchase_record"
    ).first()
    if record is None or record.outcome != IdempotencyRecord.Outcome.DONE or "pk" not in record.result:
        return None
    return Purchase.objects.filter(pk=record.result["pk"]).first()


def _lines(purchase: Purchase, lines: Sequence[Mapping[str, Any]]) -> list[PurchaseLine]:
    made = []
    for line in lines:
        quantity, price = int(line.get("quantity", 1)), int(line["unit_price_fen"])
        if quantity <= 0 or price < 0:
            raise InvalidAmount()
        made.append(
            PurchaseLine(
                purchase=purchase,
                sku=str(line.get("sku", ""))[:64],
                name=str(line.get("name", ""))[:100],
                category=str(line.get("category", ""))[:64],
                quantity=quantity,
                unit_price_fen=price,
                amount_fen=price * quantity,
            )
        )
    return made


# ------------------------------------------------------------------ refunds


def _share(total: int, before: int, after: int, whole: int) -> int:
    """The part of `total` a refund moving the refunded amount from `before` to `after` (of `whole`) carries:
    cumulative rounding, so the parts of any number of refunds add up to `total` exactly."""
    return total * after // whole - total * before // whole


def _tender_split(purchase: Purchase, amount: int) -> dict[str, int]:
    """The refund's money by tender, in proportion to how the purchase was paid: each tender's share of the
    refunded total so far, rounded down, less what it has already given back (never below zero, never more
    than it has left); the fen the rounding leaves go to the tenders with room left, in a fixed order. So no
    tender ever gives back more than it took, and the refund that completes the purchase gives each tender
    exactly its rest."""
    paid = purchase.tenders()
    sums = PurchaseRefund.objects.filter(purchase=purchase).aggregate(**{t: Sum(TENDER_FIELDS[t]) for t in paid})
    back = {t: int(sums[t] or 0) for t in paid}
    after = sum(back.values()) + amount
    room = {t: paid[t] - back[t] for t in paid}
    split = {t: max(0, min(paid[t] * after // purchase.payable_fen - back[t], room[t])) for t in paid}
    leftover = amount - sum(split.values())
    for tender in (t for t in TENDER_FIELDS if t in paid):
        give = max(0, min(leftover, room[tender] - split[tender]))
        split[tender] += give
        leftover -= give
    if leftover:  # cannot happen while refunds never exceed what was paid (the guarded UPDATE)
        raise RefundExceedsPaid(left=yuan(purchase.refundable_fen))
    return {t: v for t, v in split.items() if v}


def purchase_refund(
    *,
    purchase: Purchase,
    idempotency_key: str,
    amount_fen: int | None = None,
    staff: Staff | None = None,
    approved_by: Staff | None = None,
    actor: str = "",
    reason: str = "",
) -> PurchaseRefund:
    """Refund (part of) a purchase in one transaction: the money by tender as it was taken (the balance part
    back to principal and bonus in the split it took), and in proportion the points earned clawed back, the
    points that paid restored and the growth value taken back; the coupon comes back with the refund that
    completes it, if still valid. Never more than was paid over all refunds (a guarded UPDATE); above the
    configured amount (all refunds of the purchase together) a manager approves. Raises RefundExceedsPaid,
    ApprovalRequired, InvalidAmount."""
    request = {
        "purchase": purchase.pk,
        "amount": amount_fen,
        "reason": reason,
        "approved_by": approved_by.pk if approved_by else None,
    }
    scope = _scope(staff, actor)

    def work() -> PurchaseRefund:
        now = timezone.now()
        # refunds of one purchase queue here (a guest's have no member's accounts to queue on)
        fresh = Purchase.objects.select_for_update().get(pk=purchase.pk)
        amount = amount_fen if amount_fen is not None else fresh.refundable_fen
        if amount <= 0:
            if fresh.refundable_fen <= 0:
                raise RefundExceedsPaid(left=yuan(0))
            raise InvalidAmount()
        limit = services.loyalty_settings().refund_approval_fen
        approver_ok = approved_by is not None and approved_by.role in (Role.OWNER, Role.MANAGER)
        staff_ok = staff is not None and staff.role in (Role.OWNER, Role.MANAGER)
        # refunds of one purchase count together, so that splitting one does not go round the limit
        if fresh.refunded_fen + amount > limit and not (approver_ok or staff_ok):
            raise ApprovalRequired(limit=yuan(limit))
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE assets_purchase SET refunded_fen = refunded_fen + %s"
                " WHERE id = %s AND refunded_fen + %s <= payable_fen RETURNING refunded_fen",
                [amount, fresh.pk, amount],
            )
            row = cursor.fetchone()
        if row is None:
            fresh.refresh_from_db(fields=["refunded_fen"])
            raise RefundExceedsPaid(left=yuan(fresh.refundable_fen))
        after = int(row[0])
        before = after - amount
        whole = fresh.payable_fen
        split = _tender_split(fresh, amount)
        txs = {k: LedgerTransaction.objects.get(pk=v) for k, v in fresh.details.get("tx", {}).items()}
        common: dict[str, Any] = {"staff": staff, "actor": actor, "reason": reason[:200]}
        done: dict[str, Any] = {}
        restored = clawed = growth = 0
        if split.get(Tender.BALANCE) and "balance" in txs:
            done["balance"] = services.balance_refund(
                spend=txs["balance"], amount_fen=split[Tender.BALANCE], idempotency_key=f"{idempotency_key}:balance",
                store=fresh.store, **common,
            ).pk  # fmt: skip
        if "points_earn" in txs and (clawed := _share(fresh.points_earned, before, after, whole)):
            done["points_claw_back"] = services.points_claw_back(
                earn=txs["points_earn"], points=clawed, idempotency_key=f"{idempotency_key}:earn",
                store=fresh.store, **common,
            ).pk  # fmt: skip
        if "points_spend" in txs and (restored := _share(fresh.points_used, before, after, whole)):
            done["points_restore"] = services.points_restore(
                spend=txs["points_spend"], points=restored, idempotency_key=f"{idempotency_key}:points",
                store=fresh.store, **common,
            ).pk  # fmt: skip
        if "growth" in txs and (growth := _share(fresh.growth_earned, before, after, whole)):
            done["growth_claw_back"] = services.growth_claw_back(
                add=txs["growth"], amount=growth, idempotency_key=f"{idempotency_key}:growth",
                store=fresh.store, **common,
            ).pk  # fmt: skip
        coupon_back = False
        if after == whole and "coupon" in txs:
            done["coupon_restore"] = services.coupon_restore(
                redemption=txs["coupon"], idempotency_key=f"{idempotency_key}:coupon", **common
            ).pk
            coupon_back = True
        return PurchaseRefund.objects.create(
            purchase=fresh,
            amount_fen=amount,
            points_restored=restored,
            points_clawed_back=clawed,
            growth_clawed_back=growth,
            coupon_restored=coupon_back,
            reason=reason[:200],
            staff=staff,
            approved_by=approved_by if approver_ok else None,
            actor=actor,
            created_at=now,
            business_date=timezone.localdate(now),
            details={"tx": done},
            **{TENDER_FIELDS[t]: v for t, v in split.items()},
        )

    if purchase.member is None:
        return _write("purchase_refund", scope=scope, key=idempotency_key, request=request, body=work)
    return services.ledger_unit(
        work,
        member=purchase.member,
        idempotency_key=idempotency_key,
        scope=scope,
        operation="purchase_refund",
        request=request,
    )


# ------------------------------------------------------------------ top-ups, coupons on their own, plans


def top_up_record(
    *,
    member: Member,
    idempotency_key: str,
    store: Store,
    amount_fen: int | None = None,
    package: RechargePackage | None = None,
    tender: str = Tender.CASH,
    staff: Staff | None = None,
    actor: str = "",
) -> LedgerTransaction:
    """A top-up at the counter: the money (and a package's extras), the growth value top-ups earn, and a
    real-time tier upgrade (the stored-value route), as one unit. Returns the top-up."""
    if tender == Tender.BALANCE or tender not in COUNTER_TENDERS:
        raise InvalidAmount()
    if package is None and (amount_fen is None or amount_fen <= 0):
        raise InvalidAmount()
    request = {
        "member": member.pk,
        "amount": amount_fen,
        "package": package.pk if package else None,
        "tender": tender,
        "store": store.pk,
    }

    def work() -> LedgerTransaction:
        top_up = services.balance_top_up(
            member=member, amount_fen=amount_fen, package=package, idempotency_key=f"{idempotency_key}:top-up",
            store=store, staff=staff, actor=actor, tender=tender,
        )  # fmt: skip
        if growth := tiers_services.growth_for_top_up(top_up.amount):
            services.growth_add(
                member=member, amount=growth, idempotency_key=f"{idempotency_key}:growth", store=store, staff=staff,
                actor=actor, external_ref=f"top-up:{top_up.pk}",
            )  # fmt: skip
        tiers_services.tier_upgrade_realtime(member=member, staff=staff)
        return top_up

    return services.ledger_unit(
        work,
        member=member,
        idempotency_key=idempotency_key,
        scope=_scope(staff, actor),
        operation="top_up_record",
        request=request,
    )


def top_up_refund(
    *,
    top_up: LedgerTransaction,
    idempotency_key: str,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
    override: bool = False,
) -> LedgerTransaction:
    """Refund a top-up at the counter (see assets.services.top_up_refund for the rules), with the growth value
    that top-up earned taken back."""
    if top_up.member is None:
        raise services.NotReversible()
    member = top_up.member
    request = {"top_up": top_up.pk, "override": override, "reason": reason}

    def work() -> LedgerTransaction:
        refund = services.top_up_refund(
            top_up=top_up, idempotency_key=f"{idempotency_key}:refund", store=store, staff=staff, actor=actor,
            reason=reason, override=override,
        )  # fmt: skip
        earned = LedgerTransaction.objects.filter(
            kind=Kind.GROWTH_ADD, member=member, external_ref=f"top-up:{top_up.pk}"
        ).first()
        if earned is not None and earned.amount > earned.reversed_amount:
            services.growth_claw_back(
                add=earned, idempotency_key=f"{idempotency_key}:growth", store=store, staff=staff, actor=actor,
                reason=reason,
            )  # fmt: skip
        return refund

    return services.ledger_unit(
        work,
        member=member,
        idempotency_key=idempotency_key,
        scope=_scope(staff, actor),
        operation="counter_top_up_refund",
        request=request,
    )


def coupon_redeem_standalone(
    *,
    code: str,
    member: Member,
    store: Store,
    idempotency_key: str,
    staff: Staff | None = None,
    actor: str = "",
) -> LedgerTransaction:
    """Use a gift or exchange coupon without a purchase (the gift is handed over). Raises CouponNotUsable."""
    coupon = coupon_by_code(code)
    if coupon.template.kind != CouponTemplate.Kind.GIFT:
        raise CouponNotUsable(reason="purchase_only")
    return services.coupon_redeem(
        coupon=coupon, member=member, store=store, idempotency_key=idempotency_key, staff=staff, actor=actor
    )


def plan_sell(
    *,
    member: Member,
    plan: PaidPlan,
    store: Store,
    tender: str,
    idempotency_key: str,
    staff: Staff | None = None,
    actor: str = "",
) -> PlanPeriod:
    """Sell a paid plan at the counter: a period of the plan (a renewal extends the current one), paid by a
    recorded tender, and the plan's tier at once with its gift pack. One unit, idempotent."""
    if tender == Tender.BALANCE or tender not in COUNTER_TENDERS:
        raise InvalidAmount()
    request = {"member": member.pk, "plan": plan.pk, "store": store.pk, "tender": tender}

    if not plan.is_active:
        raise PlanNotOnSale()

    def work() -> PlanPeriod:
        _lock_accounts(member, ())
        _require_active(Member.objects.get(pk=member.pk))  # frozen or cancelled: refused with its own code
        try:
            period = members_services.plan_grant(
                member=member,
                plan=plan,
                by=staff.user if staff else None,
                source=PlanPeriod.Source.COUNTER,
                order_ref=f"{tender}:{plan.price_fen}",
                reason=_("Sold at %(store)s (%(tender)s)") % {"store": store.name, "tender": Tender(tender).label},
            )
        except members_services.MemberError:
            raise services.MemberCancelled() from None
        tiers_services.tier_plan_started(member=member, staff=staff)
        return period

    return services.ledger_unit(
        work, member=member, idempotency_key=idempotency_key, scope=_scope(staff, actor), operation="plan_sell",
        request=request,
    )  # fmt: skip
