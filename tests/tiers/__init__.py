"""Builders shared by the tier and benefit tests: a three-rung ladder, the rules row, growth and top-ups through
the ledger services, and the nightly job run at the moment the schedule would run it (time-machine)."""

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import time_machine

from assets import services as assets_services
from assets.models import LedgerTransaction
from members.models import Member
from reports import services as reports_services
from reports.models import JobRun
from tiers import selectors as tiers_selectors
from tiers import services as tiers_services
from tiers.models import MemberTier, Tier, TierChange, TierGift, TierRules

SHANGHAI = ZoneInfo("Asia/Shanghai")
JOB = "tiers_recalculate"


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


def at_or_now(on: datetime | None) -> AbstractContextManager[object]:
    return at(on) if on else nullcontext()


def new_key() -> str:
    return uuid4().hex


@dataclass(frozen=True)
class Rungs:
    base: Tier
    silver: Tier
    gold: Tier


def three_rungs(**gold: object) -> Rungs:
    """The base tier (rank 0, from the data migration), Silver at 100 and Gold at 500 growth value."""
    return Rungs(
        base=tiers_services.base_tier(),
        silver=Tier.objects.create(name="Silver", rank=1, threshold=100),
        gold=Tier.objects.create(name="Gold", rank=2, threshold=500, **gold),
    )


def set_rules(**fields: object) -> TierRules:
    rules, _created = TierRules.objects.update_or_create(pk=1, defaults=fields)
    return rules


def rolling(**fields: object) -> TierRules:
    """Rolling 12-month window evaluated at the start of each 1st, down to the tier qualified for, no hold."""
    defaults: dict[str, object] = {
        "mode": TierRules.Mode.ROLLING,
        "window_months": 12,
        "evaluation_day": 1,
        "downgrade": TierRules.Downgrade.QUALIFIED,
        "hold_months": 0,
    }
    return set_rules(**{**defaults, **fields})


def grow(member: Member, amount: int, *, on: datetime | None = None) -> LedgerTransaction:
    """Growth value earned (by a purchase) at `on`, or now."""
    with at_or_now(on):
        return assets_services.growth_add(member=member, amount=amount, idempotency_key=new_key())


def claw_back(addition: LedgerTransaction, amount: int | None = None, *, on: datetime | None = None) -> None:
    """A refund of the purchase that earned `addition` takes its growth value back (all of it, or `amount`)."""
    with at_or_now(on):
        assets_services.growth_claw_back(add=addition, amount=amount, idempotency_key=new_key())


def top_up(member: Member, fen: int, *, on: datetime | None = None) -> LedgerTransaction:
    with at_or_now(on):
        return assets_services.balance_top_up(member=member, amount_fen=fen, idempotency_key=new_key())


def run_job(day: date) -> JobRun:
    """The nightly recalculation for business day `day`, started at 02:00 the next morning."""
    with at(local(day.year, day.month, day.day, 2) + timedelta(days=1)):
        run, ran = reports_services.job_execute(JOB, business_date=day)
    assert ran and run is not None
    return run


def run_evaluation(first: date) -> JobRun:
    """The rolling-window evaluation at the start of `first` (day 1): the job for the business day before it."""
    return run_job(first - timedelta(days=1))


def tier_of(member: Member) -> Tier:
    return tiers_selectors.member_tier(member=member)


def last_change(member: Member) -> TierChange:
    change = TierChange.objects.filter(member=member).order_by("-pk").first()
    assert change is not None
    return change


def tier_rows() -> dict[int, tuple[int, str]]:
    """Every member's tier row: member id → (tier id, how it was reached)."""
    return {row.member_id: (row.tier_id, row.source) for row in MemberTier.objects.all()}


def written() -> tuple[int, int, int]:
    """How many tier rows, history rows and gift packs exist."""
    return MemberTier.objects.count(), TierChange.objects.count(), TierGift.objects.count()
