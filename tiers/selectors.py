"""Reads of the tier ladder: a member's tier, progress towards the next one, the distribution."""

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from assets.models import Asset, Entry
from members.models import Member
from tiers.models import MemberTier, Tier, TierChange, TierRules
from tiers.services import Ladder, add_months, base_tier, tier_rules


def ladder() -> list[Tier]:
    return list(Tier.objects.order_by("rank"))


def ladder_detailed() -> QuerySet[Tier]:
    """The ladder with what its page shows of each tier: the plans granting it, gift coupons, benefits."""
    return Tier.objects.order_by("rank").prefetch_related("plans", "gift_coupons", "benefits")


def ladder_version() -> str:
    """A digest of the saved ladder (every field of every tier, its plans and gift coupons) and rules; a preview
    made under another one is stale, and so is a save confirmed on it."""
    tiers = list(Tier.objects.order_by("pk").values())
    links = [
        (t.pk, sorted(p.pk for p in t.plans.all()), sorted(c.pk for c in t.gift_coupons.all()))
        for t in Tier.objects.order_by("pk").prefetch_related("plans", "gift_coupons")
    ]
    rules = TierRules.objects.filter(pk=1).values().first()
    return hashlib.sha256(repr((tiers, links, rules)).encode()).hexdigest()[:20]


def draft_ladder(tiers: Iterable[Tier], rules: TierRules, plan_ids: dict[int | None, list[int]]) -> Ladder:
    """Ladder.build over unsaved values: `tiers` may hold edited copies and new tiers (pk None), and
    `plan_ids` gives each tier's paid plans by pk (None for the new one), since unsaved tiers have no
    many-to-many rows to read them from."""
    ordered = sorted(tiers, key=lambda t: t.rank)
    ladder = Ladder.build(ordered, rules)
    pairs = [(plan, t.rank) for t in ordered for plan in plan_ids.get(t.pk, [])]
    return dataclasses.replace(ladder, plan_ids=[p for p, _ in pairs], plan_ranks=[r for _, r in pairs])


def draft_ids(tiers: Iterable[Tier]) -> dict[int, Tier]:
    """The ids a draft ladder gives its tiers (a new tier's is negative, as Ladder.build numbers it)."""
    ordered = sorted(tiers, key=lambda t: t.rank)
    return {t.pk if t.pk is not None else -(i + 1): t for i, t in enumerate(ordered)}


def member_tier(*, member: Member) -> Tier:
    state = MemberTier.objects.select_related("tier").filter(member=member).first()
    return state.tier if state else base_tier()


def member_tier_history(*, member: Member, limit: int = 50) -> list[TierChange]:
    return list(
        TierChange.objects.filter(member=member)
        .select_related("from_tier", "to_tier", "staff__user", "job_run")
        .order_by("-changed_at", "-pk")[:limit]
    )


def _growth_between(member: Member, start: datetime | None, end: datetime) -> int:
    entries = Entry.objects.filter(account__member=member, asset=Asset.GROWTH, created_at__lt=end)
    if start is not None:
        entries = entries.filter(created_at__gte=start)
    return int(entries.aggregate(s=Sum("amount"))["s"] or 0)


def next_evaluation(rules: TierRules, today: date) -> date:
    """The next day of the month on which the rolling window is evaluated (today's counts if it is that day)."""
    this_month = today.replace(day=rules.evaluation_day)
    if this_month > today:  # on the day itself the evaluation ran at midnight: the next one is next month
        return this_month
    return (this_month.replace(day=1) + timedelta(days=32)).replace(day=rules.evaluation_day)


@dataclass(frozen=True)
class Progress:
    tier: Tier
    growth: int  # what counts now: lifetime, or the window's
    next_tier: Tier | None
    to_next: int | None  # growth value still needed for the next tier
    keep_by: date | None  # rolling mode: the next evaluation day
    to_keep: int | None  # rolling mode: growth value needed by then to keep the current tier


def tier_progress(*, member: Member, now: datetime | None = None) -> Progress:
    """Where the member stands and what it takes to move up (and, in rolling mode, to stay)."""
    now = now or timezone.now()
    rules = tier_rules()
    tier = member_tier(member=member)
    rolling = rules.mode == TierRules.Mode.ROLLING
    growth = _growth_between(member, add_months(now, -rules.window_months) if rolling else None, now)
    above = Tier.objects.filter(rank__gt=tier.rank).order_by("rank").first()
    to_next = max(0, above.threshold - growth) if above else None
    keep_by = to_keep = None
    if rolling and tier.rank > 0:
        keep_by = next_evaluation(rules, timezone.localdate(now))
        evaluated_at = datetime.combine(keep_by, datetime.min.time(), tzinfo=ZoneInfo(settings.TIME_ZONE))
        # what will still be inside the window on that day
        still_counting = _growth_between(member, add_months(evaluated_at, -rules.window_months), now)
        to_keep = max(0, tier.threshold - still_counting)
    return Progress(tier=tier, growth=growth, next_tier=above, to_next=to_next, keep_by=keep_by, to_keep=to_keep)


def tier_distribution() -> list[tuple[Tier, int]]:
    """Members per tier (members without a tier row stand on the base tier)."""
    counts = dict(
        MemberTier.objects.exclude(member__status=Member.Status.CANCELLED)
        .values("tier")
        .annotate(n=Count("member"))
        .values_list("tier", "n")
    )
    tiers = ladder()
    total = Member.objects.exclude(status=Member.Status.CANCELLED).count()
    base = tiers[0] if tiers else base_tier()
    placed = sum(n for pk, n in counts.items() if pk != base.pk)
    return [(t, (total - placed) if t.pk == base.pk else counts.get(t.pk, 0)) for t in tiers]
