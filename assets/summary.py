"""What the counter needs to know about a member at a glance, for the cashier screen and the POS API alike:
`member_find` (one field: a phone, its last four digits, a member number or a scanned payment code) and
`member_summary` (tier, balance, points and what expires soon, usable coupons, and the alerts a cashier should
see). Plain data, no markup: each interface renders it its own way."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Case, IntegerField, Min, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from assets.models import Account, Asset, Coupon, CouponTemplate, Entry, LedgerTransaction, PointLot
from assets.selectors import last_valid_date, member_balances
from benefits.selectors import birthday_on
from members.filters import member_search
from members.models import Member, PaymentCode, Store
from tiers import selectors as tiers_selectors

FIND_LIMIT = 10
EXPIRING_WITHIN = timedelta(days=30)
TIER_CLOSE_SHARE = 20  # percent of the step to the next tier still to go that counts as "close"
PAYMENT_CODE = re.compile(r"28[0-9]{16}")
_SEPARATORS = re.compile(r"[\s-]+")


# ------------------------------------------------------------------ finding a member


def member_find(query: str, *, store: Store | None, at: datetime | None = None) -> list[Member]:
    """The members one counter field may mean, at most 10, cancelled memberships left out: the member of a live
    payment code (looked up, not used: paying uses it), a phone number (+86 or not), a member number, or the
    last four digits of a phone (several candidates: this store's members first, then the most recently
    registered). Anything else finds nobody."""
    compact = _SEPARATORS.sub("", query)
    if not compact.removeprefix("+").isdigit() or not compact.isascii() or len(compact) > 24:
        return []
    live = Member.objects.exclude(status=Member.Status.CANCELLED)
    if PAYMENT_CODE.fullmatch(compact):
        code = (
            PaymentCode.objects.select_related("member")
            .filter(code=compact, consumed_at=None, expires_at__gt=at or timezone.now())
            .first()
        )
        if code is not None and code.member.status != Member.Status.CANCELLED:
            return [code.member]
    found = member_search(live, compact)
    own_store_first = (
        Case(When(registered_store=store, then=Value(0)), default=Value(1), output_field=IntegerField())
        if store is not None
        else Value(0)
    )
    return list(found.order_by(own_store_first, "-registered_at", "-pk")[:FIND_LIMIT])


# ------------------------------------------------------------------ the summary


@dataclass(frozen=True)
class CouponLine:
    """A coupon the member can use now. `expires_at` is the exclusive instant; `last_valid_date` the last local
    day it can be used (what to show)."""

    code: str
    name: str
    kind: str
    value_fen: int
    threshold_fen: int
    percent_of_price: int | None
    cap_fen: int
    gift_name: str
    expires_at: datetime
    last_valid_date: date


@dataclass(frozen=True)
class Alert:
    """Something the cashier should notice. `kind` is stable (for code and tests), `level` is how much it
    matters (danger, warning or info), `text` the translated sentence in the active language."""

    kind: str
    level: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        texts = {
            "frozen": _("Assets frozen: balance, points and coupons cannot be used."),
            "birthday_today": _("Birthday today."),
            "birthday_month": _("Birthday this month (%(date)s)."),
            "points_expiring": _("%(points)s points expire by %(date)s."),
            "tier_close": _("%(to_go)s growth value to %(tier)s."),
        }
        return texts[self.kind] % self.params

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class MemberSummary:
    member: Member
    tier_name: str
    tier_colour: str
    growth: int
    next_tier_name: str | None
    to_next_tier: int | None
    principal_fen: int
    bonus_fen: int
    points: int
    points_debt: int
    points_expiring: int  # within 30 days
    points_expiring_by: date | None  # the last day the first of them can be used
    coupons: list[CouponLine]
    alerts: list[Alert]

    @property
    def balance_fen(self) -> int:
        """The stored balance in total: principal and bonus."""
        return self.principal_fen + self.bonus_fen


def member_summary(member: Member, *, at: datetime, store: Store | None = None) -> MemberSummary:
    """The member as the counter sees them at `at` (days in the merchant's time zone). With `store`, coupons
    that cannot be used there are left out."""
    balances = member_balances(member=member)
    progress = tiers_selectors.tier_progress(member=member, now=at)
    expiring = PointLot.objects.filter(
        member=member, remaining__gt=0, expires_at__gt=at, expires_at__lte=at + EXPIRING_WITHIN
    ).aggregate(points=Sum("remaining", default=0), first=Min("expires_at"))
    points_expiring = int(expiring["points"])
    expiring_by = last_valid_date(expiring["first"]) if points_expiring else None
    coupons = _usable_coupons(member, at=at, store=store)
    alerts: list[Alert] = []
    if member.status == Member.Status.FROZEN:
        alerts.append(Alert("frozen", "danger"))
    today = timezone.localtime(at).date()
    if member.birthday is not None:
        birthday = birthday_on(member.birthday, today.year)
        if birthday == today:
            alerts.append(Alert("birthday_today", "info"))
        elif birthday.month == today.month:
            alerts.append(Alert("birthday_month", "info", {"date": birthday.isoformat()}))
    if points_expiring and expiring_by is not None:
        alerts.append(Alert("points_expiring", "warning", {"points": points_expiring, "date": expiring_by.isoformat()}))
    if progress.next_tier is not None and progress.to_next:
        step = progress.next_tier.threshold - progress.tier.threshold
        if progress.to_next * 100 <= step * TIER_CLOSE_SHARE:
            alerts.append(Alert("tier_close", "info", {"to_go": progress.to_next, "tier": progress.next_tier.name}))
    return MemberSummary(
        member=member,
        tier_name=progress.tier.name,
        tier_colour=progress.tier.colour,
        growth=progress.growth,
        next_tier_name=progress.next_tier.name if progress.next_tier else None,
        to_next_tier=progress.to_next,
        principal_fen=balances[Asset.PRINCIPAL],
        bonus_fen=balances[Asset.BONUS],
        points=balances[Asset.POINTS],
        points_debt=balances[Asset.POINTS_DEBT],
        points_expiring=points_expiring,
        points_expiring_by=expiring_by,
        coupons=coupons,
        alerts=alerts,
    )


def _usable_coupons(member: Member, *, at: datetime, store: Store | None) -> list[CouponLine]:
    coupons = (
        Coupon.objects.filter(member=member, status=Coupon.Status.AVAILABLE, starts_at__lte=at, expires_at__gt=at)
        .select_related("template")
        .prefetch_related("template__stores")
        .order_by("expires_at", "pk")
    )
    lines = []
    for coupon in coupons:
        template: CouponTemplate = coupon.template
        stores = [s.pk for s in template.stores.all()]
        if store is not None and stores and store.pk not in stores:
            continue
        valid_until = last_valid_date(coupon.expires_at)
        assert valid_until is not None  # a coupon always expires
        lines.append(
            CouponLine(
                code=coupon.code,
                name=template.name,
                kind=template.kind,
                value_fen=template.value_fen,
                threshold_fen=template.threshold_fen,
                percent_of_price=template.percent_of_price,
                cap_fen=template.cap_fen,
                gift_name=template.gift_name,
                expires_at=coupon.expires_at,
                last_valid_date=valid_until,
            )
        )
    return lines


# ------------------------------------------------------------------ recent ledger events


@dataclass(frozen=True)
class LedgerEvent:
    """One entry on one of the member's accounts: `amount` is signed, in the asset's unit (fen for principal and
    bonus, whole points, whole growth value)."""

    transaction_id: int
    kind: str
    kind_label: str
    asset: str
    amount: int
    balance_after: int
    at: datetime
    store: Store | None
    order_ref: str


def member_ledger_recent(member: Member, *, limit: int = 20) -> list[LedgerEvent]:
    """The member's latest ledger entries over all their accounts, newest first. Each account is read newest
    first along its (account, seq) index, so a member with years of history costs no more than a new one."""
    entries: list[Entry] = []
    for account_id in Account.objects.filter(member=member).order_by("pk").values_list("pk", flat=True):
        entries += Entry.objects.filter(account_id=account_id).order_by("-seq")[:limit]
    entries.sort(key=lambda e: (e.created_at, e.transaction_id, e.pk), reverse=True)
    entries = entries[:limit]
    transactions = LedgerTransaction.objects.select_related("store").in_bulk({e.transaction_id for e in entries})
    events = []
    for entry in entries:
        tx = transactions[entry.transaction_id]
        events.append(
            LedgerEvent(
                transaction_id=tx.pk,
                kind=tx.kind,
                kind_label=str(tx.get_kind_display()),
                asset=entry.asset,
                amount=entry.amount,
                balance_after=entry.balance_after or 0,
                at=entry.created_at,
                store=tx.store,
                order_ref=tx.external_ref,
            )
        )
    return events
