"""`benefits_applicable(member=..., at=...)`: the one answer to "which benefits apply to this member now"."""

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Q
from django.utils import timezone

from benefits.models import Benefit
from members.models import Member, PlanPeriod
from tiers import selectors as tiers_selectors


@dataclass
class Applicable:
    """What applies at one instant, with the stacking rules applied: the best discount wins; the highest
    multiplier wins, and additive ones add their extra part on top of it."""

    benefits: list[Benefit] = field(default_factory=list)
    discount_percent: int | None = None  # the member pays this share of the price; None: no discount
    discount_from: Benefit | None = None
    multiplier_percent: int = 100
    multipliers_from: list[Benefit] = field(default_factory=list)
    birthday: list[Benefit] = field(default_factory=list)
    member_day: list[Benefit] = field(default_factory=list)
    monthly_coupons: list[Benefit] = field(default_factory=list)
    info: list[Benefit] = field(default_factory=list)


def birthday_on(birthday: date, year: int) -> date:
    """The day a birthday is kept in `year`: 29 February falls on 28 February in a year without it."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def is_member_day(benefit: Benefit, day: date) -> bool:
    if benefit.weekday is not None:
        return day.weekday() == benefit.weekday
    if benefit.day_of_month is None:
        return False
    # the 31st in a shorter month is kept on its last day
    return day.day == min(benefit.day_of_month, calendar.monthrange(day.year, day.month)[1])


def is_birthday(benefit: Benefit, member: Member, day: date) -> bool:
    if member.birthday is None:
        return False
    if benefit.birthday_when == Benefit.BirthdayWhen.MONTH:
        return day.month == member.birthday.month
    return day == birthday_on(member.birthday, day.year)


def benefits_of(*, member: Member, at: datetime) -> list[Benefit]:
    """The active benefits of the member's tier and of any paid plan running at `at`."""
    tier = tiers_selectors.member_tier(member=member)
    plan_ids = PlanPeriod.objects.filter(member=member, starts_at__lte=at, ends_at__gt=at).values("plan_id")
    return list(
        Benefit.objects.filter(is_active=True)
        .filter(Q(tiers=tier) | Q(plans__in=plan_ids))
        .select_related("coupon_template")
        .distinct()
        .order_by("kind", "pk")
    )


def benefits_applicable(*, member: Member, at: datetime) -> Applicable:
    """Which benefits apply to `member` at `at`, days counted in the merchant's time zone (a member day
    that is a Wednesday there is a Wednesday until 23:59:59 local time)."""
    if member.status == Member.Status.CANCELLED:
        return Applicable()  # a cancelled membership has no benefits
    day = timezone.localtime(at).date()
    result = Applicable(benefits=benefits_of(member=member, at=at))
    discounts: list[Benefit] = []
    multipliers: list[Benefit] = []
    for benefit in result.benefits:
        kind = benefit.kind
        if kind == Benefit.Kind.DISCOUNT:
            discounts.append(benefit)
        elif kind == Benefit.Kind.POINTS_MULTIPLIER:
            multipliers.append(benefit)
        elif kind == Benefit.Kind.MEMBER_DAY and is_member_day(benefit, day):
            result.member_day.append(benefit)
            if benefit.discount_percent:
                discounts.append(benefit)
            if benefit.multiplier_percent:
                multipliers.append(benefit)
        elif kind == Benefit.Kind.BIRTHDAY and is_birthday(benefit, member, day):
            result.birthday.append(benefit)
            if benefit.multiplier_percent:
                multipliers.append(benefit)
        elif kind == Benefit.Kind.MONTHLY_COUPONS:
            result.monthly_coupons.append(benefit)
        elif kind in (Benefit.Kind.INFO, Benefit.Kind.UPGRADE_GIFT):
            result.info.append(benefit)
    if discounts:
        best = min(discounts, key=lambda b: (b.discount_percent or 100, b.pk))
        result.discount_percent, result.discount_from = best.discount_percent, best
    competing = [b for b in multipliers if not b.additive]
    top = max(competing, key=lambda b: (b.multiplier_percent or 100, -b.pk)) if competing else None
    result.multiplier_percent = (top.multiplier_percent or 100) if top else 100
    result.multipliers_from = [top] if top else []
    for extra in (b for b in multipliers if b.additive):
        result.multiplier_percent += (extra.multiplier_percent or 100) - 100
        result.multipliers_from.append(extra)
    return result
