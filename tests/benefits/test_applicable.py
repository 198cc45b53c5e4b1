"""benefits_applicable(member=, at=): the benefits of the member's tier and running paid plans that apply at an
instant, days counted in the merchant's time zone (Asia/Shanghai, 8 hours ahead of UTC), with the stacking rules:
the best discount wins, the highest multiplier wins, additive multipliers add their extra part."""

import calendar
from collections.abc import Iterable
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benefits.models import Benefit
from benefits.selectors import Applicable, benefits_applicable, is_member_day
from members.models import Member, PaidPlan, PlanPeriod, Staff
from members.services import plan_grant
from tests.factories import MemberFactory
from tests.tiers import Rungs, local, three_rungs
from tiers import services as tiers_services
from tiers.models import Tier

pytestmark = pytest.mark.django_db

Kind = Benefit.Kind


@pytest.fixture
def rungs(db: None) -> Rungs:
    return three_rungs()


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


@pytest.fixture
def on_silver(rungs: Rungs, member: Member, manager: Staff) -> Member:
    tiers_services.tier_set_manual(member=member, tier=rungs.silver, reason="test member", staff=manager)
    return member


def benefit(kind: str, *, tiers: Iterable[Tier] = (), plans: Iterable[PaidPlan] = (), **fields: object) -> Benefit:
    made = Benefit.objects.create(kind=kind, name=str(fields.pop("name", kind)), **fields)
    made.tiers.set(tiers)
    made.plans.set(plans)
    return made


def applicable(member: Member, at: datetime) -> Applicable:
    return benefits_applicable(member=member, at=at)


class TestBirthday:
    @pytest.fixture
    def leapling(self, rungs: Rungs) -> Member:
        return MemberFactory.create(birthday=date(2000, 2, 29))

    def test_29_february_is_kept_on_28_february_in_a_year_without_it(self, rungs: Rungs, leapling: Member) -> None:
        gift = benefit(Kind.BIRTHDAY, tiers=[rungs.base], birthday_when=Benefit.BirthdayWhen.DAY, gift_points=100)

        days = [local(2025, 2, 27), local(2025, 2, 28, 0, 1), local(2025, 2, 28, 23, 59), local(2025, 3, 1, 0, 1)]
        kept = [applicable(leapling, day).birthday for day in days]

        assert kept == [[], [gift], [gift], []]

    def test_in_a_leap_year_it_is_kept_on_29_february_itself(self, rungs: Rungs, leapling: Member) -> None:
        gift = benefit(Kind.BIRTHDAY, tiers=[rungs.base], birthday_when=Benefit.BirthdayWhen.DAY, gift_points=100)

        kept = [applicable(leapling, day).birthday for day in (local(2028, 2, 28), local(2028, 2, 29))]

        assert kept == [[], [gift]]

    def test_a_birthday_month_benefit_runs_through_february(self, rungs: Rungs, leapling: Member) -> None:
        month = benefit(Kind.BIRTHDAY, tiers=[rungs.base], birthday_when=Benefit.BirthdayWhen.MONTH, gift_points=100)

        days = [
            local(2025, 1, 31, 23, 59),
            local(2025, 2, 1, 0, 1),
            local(2025, 2, 28, 23, 59),
            local(2025, 3, 1, 0, 1),
        ]
        kept = [applicable(leapling, day).birthday for day in days]

        assert kept == [[], [month], [month], []]

    def test_the_day_is_the_merchants_day(self, rungs: Rungs) -> None:
        born_1_march = MemberFactory.create(birthday=date(1990, 3, 1))
        gift = benefit(Kind.BIRTHDAY, tiers=[rungs.base], birthday_when=Benefit.BirthdayWhen.DAY, gift_points=100)

        # 16:30 UTC on 28 February is 00:30 on 1 March in Shanghai
        result = applicable(born_1_march, datetime(2025, 2, 28, 16, 30, tzinfo=UTC))

        assert result.birthday == [gift]

    def test_a_birthday_multiplier_counts_only_on_the_birthday(self, rungs: Rungs, leapling: Member) -> None:
        benefit(Kind.BIRTHDAY, tiers=[rungs.base], birthday_when=Benefit.BirthdayWhen.DAY, multiplier_percent=300)

        on_the_day, day_after = applicable(leapling, local(2025, 2, 28)), applicable(leapling, local(2025, 3, 1))

        assert (on_the_day.multiplier_percent, day_after.multiplier_percent) == (300, 100)

    def test_a_member_without_a_birthday_gets_no_birthday_benefit(self, rungs: Rungs, member: Member) -> None:
        benefit(Kind.BIRTHDAY, tiers=[rungs.base], birthday_when=Benefit.BirthdayWhen.MONTH, gift_points=100)

        assert applicable(member, local(2025, 2, 28)).birthday == []


class TestMemberDay:
    def test_a_weekday_runs_from_midnight_to_midnight_merchant_time(self, rungs: Rungs, member: Member) -> None:
        wednesday = benefit(Kind.MEMBER_DAY, tiers=[rungs.base], weekday=2, discount_percent=88)
        # Wednesday 5 March 2025 in Shanghai, given as UTC instants
        instants = [
            datetime(2025, 3, 4, 15, 59, tzinfo=UTC),  # 23:59 Tuesday in Shanghai
            datetime(2025, 3, 4, 16, 1, tzinfo=UTC),  # 00:01 Wednesday (still Tuesday in UTC)
            datetime(2025, 3, 5, 15, 59, tzinfo=UTC),  # 23:59 Wednesday
            datetime(2025, 3, 5, 16, 1, tzinfo=UTC),  # 00:01 Thursday (still Wednesday in UTC)
        ]

        results = [applicable(member, at) for at in instants]

        assert [r.member_day for r in results] == [[], [wednesday], [wednesday], []]
        assert [r.discount_percent for r in results] == [None, 88, 88, None]

    def test_a_day_of_the_month_starts_at_midnight_merchant_time(self, rungs: Rungs, member: Member) -> None:
        fifteenth = benefit(Kind.MEMBER_DAY, tiers=[rungs.base], day_of_month=15, multiplier_percent=200)

        eve, morning = applicable(member, local(2025, 3, 14, 23, 59)), applicable(member, local(2025, 3, 15, 0, 1))

        assert (eve.member_day, morning.member_day) == ([], [fifteenth])
        assert (eve.multiplier_percent, morning.multiplier_percent) == (100, 200)

    def test_day_31_falls_on_the_last_day_of_a_shorter_month(self, rungs: Rungs, member: Member) -> None:
        last = benefit(Kind.MEMBER_DAY, tiers=[rungs.base], day_of_month=31, multiplier_percent=200)
        instants = [
            local(2025, 4, 29, 23, 59),
            local(2025, 4, 30, 0, 1),
            local(2025, 4, 30, 23, 59),  # April has 30 days
            local(2025, 5, 1, 0, 1),
            local(2025, 5, 30, 23, 59),
            local(2025, 5, 31, 0, 1),
            local(2025, 2, 28, 12),  # and February 28
            local(2028, 2, 29, 12),  # or 29
        ]

        days = [bool(applicable(member, at).member_day) for at in instants]

        assert days == [False, True, True, False, False, True, True, True]
        assert applicable(member, local(2025, 4, 30)).member_day == [last]


class TestIsMemberDay:
    @settings(max_examples=200, deadline=None)
    @given(year=st.integers(2000, 2100), month=st.integers(1, 12), day_of_month=st.integers(1, 31))
    def test_every_month_has_exactly_one_day_of_month_member_day(
        self, year: int, month: int, day_of_month: int
    ) -> None:
        benefit = Benefit(kind=Kind.MEMBER_DAY, day_of_month=day_of_month)
        length = calendar.monthrange(year, month)[1]

        days = [d for d in range(1, length + 1) if is_member_day(benefit, date(year, month, d))]

        assert days == [min(day_of_month, length)]  # the day itself, or the month's last day when it has none


class TestStacking:
    def test_the_best_discount_wins(self, rungs: Rungs, on_silver: Member) -> None:
        benefit(Kind.DISCOUNT, tiers=[rungs.silver], discount_percent=95)
        better = benefit(Kind.DISCOUNT, tiers=[rungs.silver], discount_percent=90)
        member_day = benefit(Kind.MEMBER_DAY, tiers=[rungs.silver], weekday=2, discount_percent=88)

        tuesday, wednesday = applicable(on_silver, local(2025, 3, 4)), applicable(on_silver, local(2025, 3, 5))

        assert (tuesday.discount_percent, tuesday.discount_from) == (90, better)
        assert (wednesday.discount_percent, wednesday.discount_from) == (88, member_day)

    def test_the_highest_multiplier_wins(self, rungs: Rungs, on_silver: Member) -> None:
        benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=150)
        highest = benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=200)
        benefit(Kind.MEMBER_DAY, tiers=[rungs.silver], weekday=2, multiplier_percent=180)

        result = applicable(on_silver, local(2025, 3, 5))

        assert (result.multiplier_percent, result.multipliers_from) == (200, [highest])

    def test_additive_multipliers_add_their_extra_part(self, rungs: Rungs, on_silver: Member) -> None:
        highest = benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=200)
        benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=150)
        extra = benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=150, additive=True)
        day = benefit(Kind.MEMBER_DAY, tiers=[rungs.silver], weekday=2, multiplier_percent=120, additive=True)

        result = applicable(on_silver, local(2025, 3, 5))

        assert result.multiplier_percent == 200 + 50 + 20
        assert result.multipliers_from == [highest, day, extra]

    def test_additive_multipliers_alone_add_to_one(self, rungs: Rungs, on_silver: Member) -> None:
        benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=150, additive=True)

        assert applicable(on_silver, local(2025, 3, 4)).multiplier_percent == 150

    def test_inactive_benefits_are_ignored(self, rungs: Rungs, on_silver: Member) -> None:
        kept = benefit(Kind.DISCOUNT, tiers=[rungs.silver], discount_percent=95)
        benefit(Kind.DISCOUNT, tiers=[rungs.silver], discount_percent=80, is_active=False)
        benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=300, is_active=False)

        result = applicable(on_silver, local(2025, 3, 4))

        assert (result.benefits, result.discount_percent, result.multiplier_percent) == ([kept], 95, 100)

    def test_only_the_members_own_tier_counts(self, rungs: Rungs, on_silver: Member) -> None:
        benefit(Kind.DISCOUNT, tiers=[rungs.silver], discount_percent=95)
        benefit(Kind.DISCOUNT, tiers=[rungs.gold], discount_percent=85)
        benefit(Kind.DISCOUNT, tiers=[rungs.base], discount_percent=98)

        assert applicable(on_silver, local(2025, 3, 4)).discount_percent == 95

    def test_no_benefit_means_full_price_and_a_multiplier_of_one(self, rungs: Rungs, member: Member) -> None:
        result = applicable(member, local(2025, 3, 4))

        assert (result.benefits, result.discount_percent, result.multiplier_percent) == ([], None, 100)

    def test_sorts_the_other_kinds_into_their_lists(self, rungs: Rungs, on_silver: Member) -> None:
        coupons = benefit(Kind.MONTHLY_COUPONS, tiers=[rungs.silver], coupons_per_month=2)
        service = benefit(Kind.INFO, tiers=[rungs.silver], description="Priority service")
        gift = benefit(Kind.UPGRADE_GIFT, tiers=[rungs.silver])

        result = applicable(on_silver, local(2025, 3, 4))

        assert (result.monthly_coupons, sorted(result.info, key=lambda b: b.pk)) == ([coupons], [service, gift])


class TestPaidPlanBenefits:
    @pytest.fixture
    def plan(self, db: None) -> PaidPlan:
        return PaidPlan.objects.create(name="Plus", price_fen=2_900, duration=PaidPlan.Duration.MONTH)

    def test_apply_while_the_plan_runs_and_stop_when_it_ends(
        self, rungs: Rungs, on_silver: Member, plan: PaidPlan
    ) -> None:
        benefit(Kind.DISCOUNT, tiers=[rungs.silver], discount_percent=95)
        benefit(Kind.DISCOUNT, plans=[plan], discount_percent=85)
        period = plan_grant(
            member=on_silver, plan=plan, by=None, source=PlanPeriod.Source.COUNTER, now=local(2025, 1, 5, 10)
        )

        before, first, last = (
            applicable(on_silver, local(2025, 1, 5, 9, 59)),
            applicable(on_silver, period.starts_at),
            applicable(on_silver, local(2025, 2, 5, 9, 59)),
        )
        ended = applicable(on_silver, period.ends_at)

        assert [r.discount_percent for r in (before, first, last)] == [95, 85, 85]
        assert ended.discount_percent == 95

    def test_stack_with_the_tiers_by_the_same_rules(self, rungs: Rungs, on_silver: Member, plan: PaidPlan) -> None:
        benefit(Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], multiplier_percent=150)
        benefit(Kind.POINTS_MULTIPLIER, plans=[plan], multiplier_percent=200)
        benefit(Kind.POINTS_MULTIPLIER, plans=[plan], multiplier_percent=110, additive=True)
        plan_grant(member=on_silver, plan=plan, by=None, source=PlanPeriod.Source.COUNTER, now=local(2025, 1, 5, 10))

        assert applicable(on_silver, local(2025, 1, 20)).multiplier_percent == 210

    def test_a_benefit_of_both_the_tier_and_the_plan_counts_once(
        self, rungs: Rungs, on_silver: Member, plan: PaidPlan
    ) -> None:
        both = benefit(
            Kind.POINTS_MULTIPLIER, tiers=[rungs.silver], plans=[plan], multiplier_percent=120, additive=True
        )
        plan_grant(member=on_silver, plan=plan, by=None, source=PlanPeriod.Source.COUNTER, now=local(2025, 1, 5, 10))

        result = applicable(on_silver, local(2025, 1, 20))

        assert (result.benefits, result.multiplier_percent) == ([both], 120)
