"""Reads for the member portal. Every function takes the signed-in member and starts its queries from them, so a
page can only ever show that member's own ledgers, coupons and purchases. Lists page by keyset (a cursor of the
last row's time and id, never an OFFSET) and come back newest first unless said otherwise."""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from assets.models import Account, Asset, Coupon, Entry, LedgerTransaction, PointLot, Purchase
from assets.selectors import last_valid_date
from benefits.models import Benefit
from benefits.selectors import benefits_of
from members import services as members_services
from members.models import Member, PaidPlan, PlanPeriod
from tiers import selectors as tiers_selectors
from tiers import services as tiers_services
from tiers.models import MemberTier, Tier, TierRules

T = TypeVar("T")
M = TypeVar("M", bound=models.Model)
Kind = LedgerTransaction.Kind
PAGE_SIZE = 20
EXPIRING_WITHIN = timedelta(days=30)
BALANCE_ASSETS = (Asset.PRINCIPAL, Asset.BONUS)
POINTS_ASSETS = (Asset.POINTS, Asset.POINTS_DEBT)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([0-9]{1,18})-([0-9]{1,18})")


def merchant_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


# ------------------------------------------------------------------ keyset paging


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's time and id. In a URL as "<microseconds since 1970>-<id>"."""

    at: datetime
    pk: int

    def __str__(self) -> str:
        return f"{(self.at - _EPOCH) // timedelta(microseconds=1)}-{self.pk}"

    @classmethod
    def parse(cls, value: str | None) -> "Cursor | None":
        """The cursor in `value`, or None when there is none or it is not one (the first page then)."""
        match = _CURSOR.fullmatch(value or "")
        if match is None:
            return None
        try:
            return cls(at=_EPOCH + timedelta(microseconds=int(match[1])), pk=int(match[2]))
        except OverflowError:
            return None


@dataclass(frozen=True)
class Slice(Generic[T]):
    """One page of a list and the cursor of the next one (None: this is the last page)."""

    items: list[T]
    next_cursor: Cursor | None


def _page(queryset: QuerySet[M], *, field_name: str, after: Cursor | None, descending: bool, limit: int) -> Slice[M]:
    if after is not None:
        beyond = "lt" if descending else "gt"
        queryset = queryset.filter(
            Q(**{f"{field_name}__{beyond}": after.at}) | Q(**{field_name: after.at, f"pk__{beyond}": after.pk})
        )
    sign = "-" if descending else ""
    rows = list(queryset.order_by(f"{sign}{field_name}", f"{sign}pk")[: limit + 1])
    items = rows[:limit]
    more = len(rows) > limit
    return Slice(items, Cursor(getattr(items[-1], field_name), items[-1].pk) if more else None)


@dataclass(frozen=True)
class Month(Generic[T]):
    """The rows of one calendar month in the merchant's zone. `continued`: the month began on an earlier page."""

    first_day: date
    items: list[T]
    continued: bool = False


def by_month(items: Sequence[T], when: Callable[[T], datetime], *, after: Cursor | None = None) -> list[Month[T]]:
    """Consecutive rows grouped by their local month; a page that goes on with the month the last page ended in
    says so, so that its heading is not repeated."""
    zone = merchant_zone()
    previous = timezone.localtime(after.at, zone).date().replace(day=1) if after else None
    months: list[Month[T]] = []
    for item in items:
        first_day = timezone.localtime(when(item), zone).date().replace(day=1)
        if not months or months[-1].first_day != first_day:
            months.append(Month(first_day, [], continued=not months and first_day == previous))
        months[-1].items.append(item)
    return months


# ------------------------------------------------------------------ balance and points ledgers


class Source(models.TextChoices):
    """Where a movement of balance or points came from, as members read it."""

    PURCHASE = "purchase", pgettext_lazy("ledger source", "Purchase")
    TOP_UP = "top_up", pgettext_lazy("ledger source", "Top-up")
    BONUS = "bonus", pgettext_lazy("ledger source", "Bonus")
    EXCHANGE = "exchange", pgettext_lazy("ledger source", "Exchange")
    EXPIRY = "expiry", pgettext_lazy("ledger source", "Expiry")
    ADJUSTMENT = "adjustment", pgettext_lazy("ledger source", "Adjustment")
    REFUND = "refund", pgettext_lazy("ledger source", "Refund")


_SOURCES: dict[str, Source] = {
    Kind.TOP_UP: Source.TOP_UP,
    Kind.TOP_UP_REFUND: Source.REFUND,
    Kind.BALANCE_SPEND: Source.PURCHASE,
    Kind.BALANCE_REFUND: Source.REFUND,
    Kind.BALANCE_ADJUST: Source.ADJUSTMENT,
    Kind.BONUS_GRANT: Source.BONUS,
    Kind.POINTS_CLAW_BACK: Source.REFUND,
    Kind.POINTS_RESTORE: Source.REFUND,
    Kind.POINTS_ADJUST: Source.ADJUSTMENT,
    Kind.POINTS_EXPIRE: Source.EXPIRY,
}


def source_of(tx: LedgerTransaction) -> Source:
    """Points earned on an order are the purchase's, others a bonus (a package, a tier gift, a campaign); points
    spent on an order paid for it, others were exchanged."""
    if tx.kind == Kind.POINTS_EARN:
        return Source.PURCHASE if tx.external_ref and not tx.external_ref.startswith("top-up:") else Source.BONUS
    if tx.kind == Kind.POINTS_SPEND:
        return Source.PURCHASE if tx.external_ref else Source.EXCHANGE
    return _SOURCES.get(tx.kind, Source.ADJUSTMENT)


@dataclass(frozen=True)
class HistoryLine:
    """One transaction as it moved a pair of the member's accounts (principal and bonus, or points and points
    owed): the change of each and both balances after it. `purchase_id`: the member's purchase it belongs to."""

    transaction: LedgerTransaction
    source: Source
    changes: tuple[int, int]
    after: tuple[int, int]
    purchase_id: int | None = None

    @property
    def source_label(self) -> str:
        return str(self.source.label)

    @property
    def total_change(self) -> int:
        return self.changes[0] + self.changes[1]

    @property
    def total_after(self) -> int:
        return self.after[0] + self.after[1]

    @property
    def second_abs(self) -> int:
        return abs(self.changes[1])


@dataclass(frozen=True)
class History:
    lines: list[HistoryLine]
    next_cursor: Cursor | None


def _balance_before(account_id: int, tx: LedgerTransaction) -> int:
    earlier = Q(created_at__lt=tx.created_at) | Q(created_at=tx.created_at, transaction_id__lt=tx.pk)
    value = (
        Entry.objects.filter(earlier, account_id=account_id)
        .order_by("-seq")
        .values_list("balance_after", flat=True)
        .first()
    )
    return int(value or 0)


def member_history(
    *, member: Member, assets: tuple[str, str], after: Cursor | None = None, limit: int = PAGE_SIZE
) -> History:
    """A page of the member's ledger over two of their accounts, newest first, keyset on (created_at, id)."""
    accounts = dict(Account.objects.filter(member=member, asset__in=assets).values_list("asset", "pk"))
    if not accounts:
        return History([], None)
    moved_here = Entry.objects.filter(transaction=OuterRef("pk"), account_id__in=list(accounts.values()))
    page = _page(
        LedgerTransaction.objects.filter(Exists(moved_here), member=member).select_related("store"),
        field_name="created_at",
        after=after,
        descending=True,
        limit=limit,
    )
    txs = page.items
    if not txs:
        return History([], None)
    changes: dict[tuple[int, str], int] = {}
    balances: dict[tuple[int, str], int] = {}
    entries = (
        Entry.objects.filter(transaction_id__in=[tx.pk for tx in txs], account_id__in=list(accounts.values()))
        .order_by("seq")
        .values_list("transaction_id", "asset", "amount", "balance_after")
    )
    for tx_id, asset, amount, balance_after in entries:
        changes[tx_id, asset] = changes.get((tx_id, asset), 0) + amount
        balances[tx_id, asset] = int(balance_after or 0)
    oldest = txs[-1]
    # what the accounts held before the oldest line of the page; later lines carry it forward
    running = {
        asset: _balance_before(accounts[asset], oldest)
        if asset in accounts and (oldest.pk, asset) not in balances
        else 0
        for asset in assets
    }
    refs = {tx.external_ref for tx in txs if tx.external_ref}
    purchases = dict(
        Purchase.objects.filter(member=member, order_no__in=refs).values_list("order_no", "pk") if refs else []
    )
    lines: list[HistoryLine] = []
    for tx in reversed(txs):
        for asset in assets:
            running[asset] = balances.get((tx.pk, asset), running[asset])
        first, second = assets
        lines.append(
            HistoryLine(
                transaction=tx,
                source=source_of(tx),
                changes=(changes.get((tx.pk, first), 0), changes.get((tx.pk, second), 0)),
                after=(running[first], running[second]),
                purchase_id=purchases.get(tx.external_ref),
            )
        )
    lines.reverse()
    return History(lines, page.next_cursor)


# ------------------------------------------------------------------ points by expiry


def points_expiring(*, member: Member, now: datetime, within: timedelta = EXPIRING_WITHIN) -> tuple[int, date | None]:
    """The member's points that expire within `within` of `now`, and the last day the last of them can be used
    (so "N expiring by DATE" holds for all N)."""
    due = PointLot.objects.filter(member=member, remaining__gt=0, expires_at__gt=now, expires_at__lte=now + within)
    totals = due.aggregate(points=Sum("remaining", default=0), last=Max("expires_at"))
    points = int(totals["points"])
    return points, last_valid_date(totals["last"]) if points else None


# ------------------------------------------------------------------ coupons


class CouponTab(models.TextChoices):
    AVAILABLE = "available", pgettext_lazy("coupon tab", "Available")
    USED = "used", pgettext_lazy("coupon tab", "Used")
    EXPIRED = "expired", pgettext_lazy("coupon tab", "Expired")


def _coupon_tab(tab: str, now: datetime) -> Q:
    if tab == CouponTab.USED:
        return Q(status=Coupon.Status.USED)
    lapsed = Q(status=Coupon.Status.AVAILABLE, expires_at__lte=now)  # the nightly job has not closed it yet
    if tab == CouponTab.EXPIRED:
        return Q(status__in=[Coupon.Status.EXPIRED, Coupon.Status.VOID]) | lapsed
    return Q(status=Coupon.Status.AVAILABLE, expires_at__gt=now)


# each tab's order: what to use first on top, then what happened last
_COUPON_ORDER = {
    CouponTab.AVAILABLE: ("expires_at", False),
    CouponTab.USED: ("redeemed_at", True),
    CouponTab.EXPIRED: ("expires_at", True),
}


def member_coupons(*, member: Member) -> QuerySet[Coupon]:
    return Coupon.objects.filter(member=member).select_related("template")


def coupon_counts(*, member: Member, now: datetime) -> dict[str, int]:
    counts = Coupon.objects.filter(member=member).aggregate(
        **{tab: Count("pk", filter=_coupon_tab(tab, now)) for tab in CouponTab.values}
    )
    return {tab: int(counts[tab]) for tab in CouponTab.values}


def coupon_page(
    *, member: Member, tab: str, now: datetime, after: Cursor | None = None, limit: int = PAGE_SIZE
) -> Slice[Coupon]:
    field_name, descending = _COUPON_ORDER[CouponTab(tab)]
    coupons = member_coupons(member=member).filter(_coupon_tab(tab, now))
    return _page(coupons, field_name=field_name, after=after, descending=descending, limit=limit)


def coupon_state(coupon: Coupon, now: datetime) -> str:
    """available, upcoming (not valid yet), used, expired or void, as the member should read it now."""
    if coupon.status == Coupon.Status.AVAILABLE:
        if coupon.expires_at <= now:
            return "expired"
        return "upcoming" if coupon.starts_at > now else "available"
    return str(coupon.status)


# ------------------------------------------------------------------ purchases


def member_purchases(*, member: Member) -> QuerySet[Purchase]:
    return Purchase.objects.filter(member=member).select_related("store")


def purchase_id_of(*, member: Member, order_no: str) -> int | None:
    """The id of the member's purchase with this order number (a coupon names the order it was used on)."""
    if not order_no:
        return None
    return Purchase.objects.filter(member=member, order_no=order_no).values_list("pk", flat=True).first()


def purchase_page(*, member: Member, after: Cursor | None = None, limit: int = PAGE_SIZE) -> Slice[Purchase]:
    return _page(member_purchases(member=member), field_name="occurred_at", after=after, descending=True, limit=limit)


def purchase_detail(*, member: Member, pk: int) -> Purchase | None:
    return (
        member_purchases(member=member)
        .select_related("coupon__template")
        .prefetch_related("lines", "refunds")
        .filter(pk=pk)
        .first()
    )


# ------------------------------------------------------------------ tier and benefits


def growth_to_fen(growth: int, per_yuan: int) -> int | None:
    """What a member pays to earn `growth` (the rules give growth per yuan, rounded down): None when payments
    earn no growth. Rounded up to the fen, so the sum really is enough."""
    if per_yuan <= 0:
        return None
    return -(-growth * 100 // per_yuan)


@dataclass(frozen=True)
class TierOutlook:
    """Where the member stands: the tier, how far to the next (in growth value and, when payments earn growth,
    in money), and in rolling mode what it takes to keep the tier by the next evaluation."""

    tier: Tier
    growth: int
    next_tier: Tier | None
    to_next: int | None
    to_next_fen: int | None
    percent: int  # of the way from this tier's threshold to the next one's
    keep_by: date | None = None
    to_keep: int | None = None
    to_keep_fen: int | None = None
    benefits: list[Benefit] = field(default_factory=list)
    next_benefits: list[Benefit] = field(default_factory=list)


def tier_outlook(*, member: Member, now: datetime) -> TierOutlook:
    progress = tiers_selectors.tier_progress(member=member, now=now)
    rules = tiers_services.tier_rules()
    per_yuan = rules.growth_per_yuan
    tier, above = progress.tier, progress.next_tier
    percent = 100
    if above is not None:
        step = max(1, above.threshold - tier.threshold)
        percent = max(0, min(100, (progress.growth - tier.threshold) * 100 // step))
    keep_by = to_keep = None
    if progress.keep_by is not None and rules.downgrade != TierRules.Downgrade.NONE:
        evaluated_at = datetime.combine(progress.keep_by, datetime.min.time(), tzinfo=merchant_zone())
        state = MemberTier.objects.filter(member=member).select_related("floor").first()
        # a tier held by a paid plan, set by staff, above a manager's floor or still within the months a new
        # tier is kept is not lost at that evaluation
        held = state is not None and (
            state.source in ("paid_plan", "manual")
            or (state.floor is not None and state.floor.rank >= tier.rank)
            or members_services.add_months(state.reached_at, rules.hold_months) > evaluated_at
        )
        if not held:
            keep_by, to_keep = progress.keep_by, progress.to_keep
    benefits = benefits_of(member=member, at=now)
    next_benefits: list[Benefit] = []
    if above is not None:
        next_benefits = list(
            Benefit.objects.filter(is_active=True, tiers=above)
            .exclude(pk__in=[b.pk for b in benefits])
            .select_related("coupon_template")
            .order_by("kind", "pk")
        )
    return TierOutlook(
        tier=tier,
        growth=progress.growth,
        next_tier=above,
        to_next=progress.to_next,
        to_next_fen=growth_to_fen(progress.to_next, per_yuan) if progress.to_next else None,
        percent=percent,
        keep_by=keep_by,
        to_keep=to_keep,
        to_keep_fen=growth_to_fen(to_keep, per_yuan) if to_keep else None,
        benefits=benefits,
        next_benefits=next_benefits,
    )


# ------------------------------------------------------------------ paid plan

RENEW_REMINDER = timedelta(days=30)


@dataclass
class PlanOffer:
    plan: PaidPlan
    tiers: list[Tier]


@dataclass
class PlanStatus:
    current: PlanPeriod | None  # the period covering now
    queued: list[PlanPeriod]  # renewals that start when the current one ends
    paid_until: datetime | None  # the end of the unbroken paid stretch from now
    last_ended: PlanPeriod | None  # the most recent period already over, when none covers now
    offers: list[PlanOffer]  # plans on sale, with the tiers each grants

    @property
    def ends_soon(self) -> bool:
        return self.paid_until is not None and self.paid_until - timezone.now() <= RENEW_REMINDER

    @property
    def days_left(self) -> int:
        if self.paid_until is None:
            return 0
        return max(0, (timezone.localtime(self.paid_until).date() - timezone.localdate()).days)


def plan_status(*, member: Member, now: datetime) -> PlanStatus:
    """The member's paid membership: the period running now, renewals queued after it, where the paid stretch
    ends, and the plans on sale. Periods never overlap (PostgreSQL's exclusion constraint), so the stretch is
    the running period followed by the queued periods that start exactly where the one before ends."""
    periods = list(member.plan_periods.select_related("plan").filter(ends_at__gt=now).order_by("starts_at", "pk"))
    current = next((p for p in periods if p.starts_at <= now), None)
    queued = [p for p in periods if p.starts_at > now]
    paid_until = None
    if current is not None:
        paid_until = current.ends_at
        for period in queued:
            if period.starts_at != paid_until:
                break
            paid_until = period.ends_at
    last_ended = None
    if current is None:
        last_ended = (
            member.plan_periods.select_related("plan").filter(ends_at__lte=now).order_by("-ends_at", "-pk").first()
        )
    on_sale = list(PaidPlan.objects.filter(is_active=True).order_by("price_fen", "pk"))
    granted: dict[int, list[Tier]] = {}
    through = Tier.plans.through
    for row in through.objects.filter(paidplan__in=on_sale).select_related("tier").order_by("tier__rank"):
        granted.setdefault(row.paidplan_id, []).append(row.tier)
    offers = [PlanOffer(plan=plan, tiers=granted.get(plan.pk, [])) for plan in on_sale]
    return PlanStatus(current=current, queued=queued, paid_until=paid_until, last_ended=last_ended, offers=offers)
