"""Reads of the ledgers for the back office: a member's balance, points and coupons, and the liabilities."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from assets.models import (
    Account,
    Asset,
    Coupon,
    CouponIssueBatch,
    CouponTemplate,
    Entry,
    LedgerTransaction,
    LoyaltySettings,
    PointLot,
    RechargePackage,
)
from members.models import Member, Store

Kind = LedgerTransaction.Kind
LEDGER_PAGE_SIZE = 20
COUPON_PAGE_SIZE = 20
BALANCE_ASSETS = (Asset.PRINCIPAL, Asset.BONUS)
POINTS_ASSETS = (Asset.POINTS, Asset.POINTS_DEBT)


def member_balances(*, member: Member) -> dict[str, int]:
    """The cached balance of each of the member's accounts; assets without an account yet hold 0."""
    found = dict(Account.objects.filter(member=member).values_list("asset", "balance"))
    return {asset: int(found.get(asset, 0)) for asset in Asset.values}


def _kind_totals(member: Member, kinds: tuple[str, ...]) -> dict[str, int]:
    rows = (
        LedgerTransaction.objects.filter(member=member, kind__in=kinds)
        .values("kind")
        .annotate(total=Sum("amount"))
        .order_by("kind")
    )
    totals = {kind: 0 for kind in kinds}
    totals.update({row["kind"]: int(row["total"] or 0) for row in rows})
    return totals


# ------------------------------------------------------------------ balance


@dataclass(frozen=True)
class BalanceSummary:
    principal_fen: int
    bonus_fen: int
    top_up_fen: int  # paid in, net of top-up refunds
    spend_fen: int  # paid with the balance, net of refunds

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.bonus_fen


def member_balance_summary(*, member: Member) -> BalanceSummary:
    balances = member_balances(member=member)
    totals = _kind_totals(member, (Kind.TOP_UP, Kind.TOP_UP_REFUND, Kind.BALANCE_SPEND, Kind.BALANCE_REFUND))
    return BalanceSummary(
        principal_fen=balances[Asset.PRINCIPAL],
        bonus_fen=balances[Asset.BONUS],
        top_up_fen=totals[Kind.TOP_UP] - totals[Kind.TOP_UP_REFUND],
        spend_fen=totals[Kind.BALANCE_SPEND] - totals[Kind.BALANCE_REFUND],
    )


# ------------------------------------------------------------------ ledgers


@dataclass(frozen=True)
class LedgerLine:
    """One transaction as it moved a pair of the member's accounts (principal and bonus, or points and debt):
    the change of each and both balances after it, in the order the pair was asked for."""

    transaction: LedgerTransaction
    changes: tuple[int, int]
    after: tuple[int, int]

    @property
    def total_after(self) -> int:
        return self.after[0] + self.after[1]

    @property
    def by(self) -> str:
        tx = self.transaction
        return tx.staff.user.get_username() if tx.staff is not None else tx.actor


def member_ledger_page(*, member: Member, assets: tuple[str, str], page: Any = None) -> Page[Any]:
    """A page of the member's ledger over two of their accounts, newest first: one line per transaction with
    the change of each account and both balances after it."""
    accounts = dict(Account.objects.filter(member=member, asset__in=assets).values_list("asset", "pk"))
    grouped = (
        Entry.objects.filter(account_id__in=accounts.values())
        .values("transaction_id")
        .annotate(
            **{f"change_{a}": Sum("amount", filter=Q(asset=a), default=0) for a in assets},
            **{f"after_{a}": Max("balance_after", filter=Q(asset=a)) for a in assets},
        )
        .order_by("-transaction_id")
    )
    paginator: Paginator[Any] = Paginator(grouped, LEDGER_PAGE_SIZE)
    result = paginator.get_page(page)
    rows: list[dict[str, Any]] = list(result.object_list)
    if not rows:
        result.object_list = []
        return result
    transactions = LedgerTransaction.objects.select_related("store", "staff__user").in_bulk(
        [row["transaction_id"] for row in rows]
    )
    # balances just before the oldest line of the page; later lines carry them forward
    oldest = rows[-1]["transaction_id"]
    running = {
        a: int(
            Entry.objects.filter(account_id=accounts[a], transaction_id__lt=oldest)
            .order_by("-seq")
            .values_list("balance_after", flat=True)
            .first()
            or 0
        )
        if a in accounts
        else 0
        for a in assets
    }
    lines = []
    for row in reversed(rows):
        for a in assets:
            running[a] = row[f"after_{a}"] if row[f"after_{a}"] is not None else running[a]
        first, second = assets
        lines.append(
            LedgerLine(
                transaction=transactions[row["transaction_id"]],
                changes=(int(row[f"change_{first}"]), int(row[f"change_{second}"])),
                after=(running[first], running[second]),
            )
        )
    lines.reverse()
    result.object_list = lines
    return result


# ------------------------------------------------------------------ points


@dataclass(frozen=True)
class PointsSummary:
    available: int
    debt: int
    earned: int
    spent: int  # net of points given back by refunds
    expired: int
    clawed_back: int


def member_points_summary(*, member: Member) -> PointsSummary:
    balances = member_balances(member=member)
    totals = _kind_totals(
        member, (Kind.POINTS_EARN, Kind.POINTS_SPEND, Kind.POINTS_RESTORE, Kind.POINTS_EXPIRE, Kind.POINTS_CLAW_BACK)
    )
    return PointsSummary(
        available=balances[Asset.POINTS],
        debt=balances[Asset.POINTS_DEBT],
        earned=totals[Kind.POINTS_EARN],
        spent=totals[Kind.POINTS_SPEND] - totals[Kind.POINTS_RESTORE],
        expired=totals[Kind.POINTS_EXPIRE],
        clawed_back=totals[Kind.POINTS_CLAW_BACK],
    )


def last_valid_date(expires_at: datetime | None) -> date | None:
    """The last local day on which something expiring at `expires_at` (exclusive local midnight) still counts."""
    if expires_at is None:
        return None
    return timezone.localtime(expires_at).date() - timedelta(days=1)


@dataclass(frozen=True)
class LotGroup:
    """The member's live points that expire together: one row however many purchases earned them."""

    expires_at: datetime | None
    last_valid_date: date | None
    remaining: int
    original: int
    lots: int
    first_earned_at: datetime
    last_earned_at: datetime


def member_live_lots(*, member: Member) -> list[LotGroup]:
    """The member's points still to use, grouped by when they expire, first-expiring-first (never last).
    Grouped, because a regular customer earns a lot per purchase and most of them expire on one day."""
    rows = (
        PointLot.objects.filter(member=member, remaining__gt=0)
        .values("expires_at")
        .annotate(
            remaining_sum=Sum("remaining"),
            original_sum=Sum("original"),
            lots=Count("id"),
            first=Min("earned_at"),
            last=Max("earned_at"),
        )
        .order_by(F("expires_at").asc(nulls_last=True))
    )
    return [
        LotGroup(
            expires_at=r["expires_at"],
            last_valid_date=last_valid_date(r["expires_at"]),
            remaining=r["remaining_sum"],
            original=r["original_sum"],
            lots=r["lots"],
            first_earned_at=r["first"],
            last_earned_at=r["last"],
        )
        for r in rows
    ]


# ------------------------------------------------------------------ coupons


def member_coupons_page(*, member: Member, page: Any = None) -> Page[Coupon]:
    coupons = Coupon.objects.filter(member=member).select_related("template").order_by("-issued_at", "-pk")
    result: Page[Coupon] = Paginator(coupons, COUPON_PAGE_SIZE).get_page(page)
    for coupon in result.object_list:
        coupon.last_valid_date = last_valid_date(coupon.expires_at)  # type: ignore[attr-defined]
    return result


def coupon_templates_issuable() -> QuerySet[CouponTemplate]:
    """Templates staff can issue now: active, and with stock left."""
    in_stock = Q(stock__isnull=True) | Q(issued__lt=F("stock"))
    return CouponTemplate.objects.filter(in_stock, is_active=True).order_by("name", "pk")


def coupon_template_list() -> QuerySet[CouponTemplate]:
    """Every template with how many of its coupons were used; newest first, active ones on top. The count is
    a subquery per template so that it reads the (template, status) index, not every coupon."""
    used = (
        Coupon.objects.filter(template=OuterRef("pk"), status=Coupon.Status.USED)
        .order_by()
        .values("template")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        CouponTemplate.objects.annotate(used=Coalesce(Subquery(used), 0))
        .prefetch_related("stores")
        .order_by("-is_active", "-created_at", "-pk")
    )


def coupon_batch_list(*, limit: int = 10) -> QuerySet[CouponIssueBatch]:
    return CouponIssueBatch.objects.select_related("template", "created_by").order_by("-created_at", "-pk")[:limit]


# ------------------------------------------------------------------ configuration


def recharge_package_list() -> QuerySet[RechargePackage]:
    return RechargePackage.objects.prefetch_related("coupon_templates").order_by("-is_active", "pay_fen", "pk")


def loyalty_settings() -> LoyaltySettings:
    settings_obj, _created = LoyaltySettings.objects.get_or_create(pk=1)
    return settings_obj


# ------------------------------------------------------------------ liabilities


@dataclass(frozen=True)
class Liability:
    store: Store | None
    members: int  # members holding a balance
    principal_fen: int
    bonus_fen: int
    points: int
    points_debt: int

    @property
    def balance_fen(self) -> int:
        return self.principal_fen + self.bonus_fen


def liabilities_by_store() -> tuple[list[Liability], Liability]:
    """What members hold, by the store they registered at (None: no store), and the total over all stores.
    One grouped scan of the member accounts."""
    holding = Q(asset__in=BALANCE_ASSETS, balance__gt=0)
    rows = (
        Account.objects.filter(member__isnull=False)
        .values("member__registered_store")
        .annotate(
            members=Count("member", filter=holding, distinct=True),
            principal=Sum("balance", filter=Q(asset=Asset.PRINCIPAL), default=0),
            bonus=Sum("balance", filter=Q(asset=Asset.BONUS), default=0),
            points=Sum("balance", filter=Q(asset=Asset.POINTS), default=0),
            debt=Sum("balance", filter=Q(asset=Asset.POINTS_DEBT), default=0),
        )
        .order_by("member__registered_store")
    )
    stores = Store.objects.in_bulk([r["member__registered_store"] for r in rows if r["member__registered_store"]])
    lines = [
        Liability(
            store=stores.get(r["member__registered_store"]) if r["member__registered_store"] else None,
            members=int(r["members"]),
            principal_fen=int(r["principal"]),
            bonus_fen=int(r["bonus"]),
            points=int(r["points"]),
            points_debt=int(r["debt"]),
        )
        for r in rows
    ]
    lines.sort(key=lambda line: (line.store is None, line.store.code if line.store else ""))
    total = Liability(
        store=None,
        members=sum(line.members for line in lines),
        principal_fen=sum(line.principal_fen for line in lines),
        bonus_fen=sum(line.bonus_fen for line in lines),
        points=sum(line.points for line in lines),
        points_debt=sum(line.points_debt for line in lines),
    )
    return lines, total


def points_outstanding() -> tuple[int, int]:
    """(points members hold, points they owe) over all members."""
    totals = Account.objects.filter(member__isnull=False, asset__in=POINTS_ASSETS).aggregate(
        points=Sum("balance", filter=Q(asset=Asset.POINTS), default=0),
        debt=Sum("balance", filter=Q(asset=Asset.POINTS_DEBT), default=0),
    )
    return int(totals["points"]), int(totals["debt"])


@dataclass(frozen=True)
class ExpiringDay:
    last_valid_date: date
    points: int
    members: int


def points_expiring(*, within_days: int = 30) -> tuple[int, int, list[ExpiringDay]]:
    """Points in live lots that expire within `within_days` from now: (points, members, per last valid day)."""
    now = timezone.now()
    due = PointLot.objects.filter(
        remaining__gt=0, expires_at__gt=now, expires_at__lte=now + timedelta(days=within_days)
    )
    totals = due.aggregate(points=Sum("remaining", default=0), members=Count("member", distinct=True))
    by_day = due.values("expires_at").annotate(points=Sum("remaining"), members=Count("member", distinct=True))
    days: dict[date, ExpiringDay] = {}
    for row in by_day.order_by("expires_at"):
        day = last_valid_date(row["expires_at"])
        assert day is not None
        earlier = days.get(day)
        days[day] = ExpiringDay(
            last_valid_date=day,
            points=int(row["points"]) + (earlier.points if earlier else 0),
            members=int(row["members"]) + (earlier.members if earlier else 0),
        )
    return int(totals["points"]), int(totals["members"]), list(days.values())
