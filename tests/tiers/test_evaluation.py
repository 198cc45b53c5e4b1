"""tier_evaluate: where the rules put one member at the end of a business day (merchant's time zone), from the
ledgers, paid plans and tier state up to that instant, by each route (growth, top-up, paid plan). It writes nothing."""

from datetime import date, datetime

import pytest

from assets import services as assets_services
from assets.models import LedgerTransaction
from members.models import Member, PaidPlan, PlanPeriod
from members.services import member_cancel, plan_grant
from tests.factories import MemberFactory
from tests.tiers import Rungs, at, grow, local, new_key, rolling, three_rungs, top_up, written
from tiers import services as tiers_services
from tiers.models import Tier
from tiers.services import Evaluation

pytestmark = pytest.mark.django_db


@pytest.fixture
def rungs(db: None) -> Rungs:
    return three_rungs()


@pytest.fixture
def member(db: None) -> Member:
    with at(local(2024, 1, 2)):
        return MemberFactory.create()


def evaluate(member: Member, as_of: date) -> Evaluation:
    return tiers_services.tier_evaluate(member=member, as_of=as_of)


def refund(top_up_tx: LedgerTransaction) -> None:
    assets_services.top_up_refund(top_up=top_up_tx, idempotency_key=new_key())


class TestTierEvaluate:
    def test_places_a_member_by_lifetime_growth_in_cumulative_mode(self, rungs: Rungs, member: Member) -> None:
        grow(member, 80, on=local(2023, 3, 1))
        grow(member, 40, on=local(2025, 3, 10))

        evaluation = evaluate(member, date(2025, 3, 10))

        assert (evaluation.growth, evaluation.target_id, evaluation.reason) == (120, rungs.silver.pk, "growth")

    def test_counts_what_was_earned_until_midnight_in_the_merchants_zone(self, rungs: Rungs, member: Member) -> None:
        grow(member, 100, on=local(2025, 3, 10, 23, 59))
        grow(member, 400, on=local(2025, 3, 11, 0, 1))

        that_day, next_day = evaluate(member, date(2025, 3, 10)), evaluate(member, date(2025, 3, 11))

        assert (that_day.growth, that_day.target_id) == (100, rungs.silver.pk)
        assert (next_day.growth, next_day.target_id) == (500, rungs.gold.pk)

    def test_writes_nothing(self, rungs: Rungs, member: Member) -> None:
        grow(member, 600, on=local(2025, 3, 10))

        evaluation = evaluate(member, date(2025, 3, 10))

        assert evaluation.changes
        assert written() == (0, 0, 0)  # no tier row, history row or gift pack

    def test_a_member_without_growth_stays_on_the_base_tier(self, rungs: Rungs, member: Member) -> None:
        evaluation = evaluate(member, date(2025, 3, 10))

        assert (evaluation.current_rank, evaluation.target_id, evaluation.changes) == (0, rungs.base.pk, False)

    def test_a_cancelled_member_cannot_be_evaluated(self, rungs: Rungs, member: Member) -> None:
        member_cancel(member=member, by=None, reason="asked to leave")

        with pytest.raises(tiers_services.TierError):
            evaluate(member, date(2025, 3, 10))


class TestRollingWindow:
    def test_counts_only_the_growth_of_the_last_months(self, rungs: Rungs, member: Member) -> None:
        rolling(window_months=12)
        grow(member, 500, on=local(2024, 3, 10))
        grow(member, 100, on=local(2025, 1, 10))

        # the evaluations at the start of 1 March and of 1 April 2025: windows from 1 March and 1 April 2024
        march, april = evaluate(member, date(2025, 2, 28)), evaluate(member, date(2025, 3, 31))

        assert (march.growth, march.growth_rank) == (600, rungs.gold.rank)
        assert (april.growth, april.growth_rank) == (100, rungs.silver.rank)

    def test_the_window_opens_at_the_same_local_instant_n_months_earlier(self, rungs: Rungs, member: Member) -> None:
        rolling(window_months=12)
        grow(member, 400, on=local(2024, 3, 31, 23, 59))
        grow(member, 100, on=local(2024, 4, 1, 0, 0))

        evaluation = evaluate(member, date(2025, 3, 31))  # the window is [1 April 2024 00:00, 1 April 2025 00:00)

        assert evaluation.growth == 100


@pytest.fixture
def stored_value(rungs: Rungs) -> Rungs:
    # Silver: a single top-up of at least 500.00; Gold: top-ups adding up to at least 1,000.00
    Tier.objects.filter(pk=rungs.silver.pk).update(top_up_single_fen=50_000)
    Tier.objects.filter(pk=rungs.gold.pk).update(top_up_total_fen=100_000)
    return rungs


class TestStoredValueRoute:
    def test_a_single_top_up_of_at_least_x_reaches_the_tier(self, stored_value: Rungs, member: Member) -> None:
        top_up(member, 50_000, on=local(2025, 3, 10))

        evaluation = evaluate(member, date(2025, 3, 10))

        assert (evaluation.top_up_rank, evaluation.target_id, evaluation.reason) == (
            1,
            stored_value.silver.pk,
            "top_up",
        )

    def test_a_smaller_single_top_up_reaches_nothing(self, stored_value: Rungs, member: Member) -> None:
        top_up(member, 49_999, on=local(2025, 3, 10))

        evaluation = evaluate(member, date(2025, 3, 10))

        assert (evaluation.top_up_rank, evaluation.target_id) == (None, stored_value.base.pk)

    def test_top_ups_adding_up_to_y_reach_the_tier(self, stored_value: Rungs, member: Member) -> None:
        for day in (1, 5, 10):
            top_up(member, 40_000, on=local(2025, 3, day))  # each is below the single top-up of Silver

        evaluation = evaluate(member, date(2025, 3, 10))

        assert (evaluation.top_up_rank, evaluation.target_id, evaluation.reason) == (2, stored_value.gold.pk, "top_up")

    def test_a_refunded_top_up_no_longer_counts_for_either_route(self, stored_value: Rungs, member: Member) -> None:
        first = top_up(member, 70_000, on=local(2025, 3, 1))
        top_up(member, 40_000, on=local(2025, 3, 2))  # 1,100.00 in all: Gold, until the first is refunded
        with at(local(2025, 3, 3)):
            refund(first)

        evaluation = evaluate(member, date(2025, 3, 3))

        assert (evaluation.top_up_rank, evaluation.target_id) == (None, stored_value.base.pk)

    def test_a_top_up_refunded_after_the_day_still_counts_for_that_day(
        self, stored_value: Rungs, member: Member
    ) -> None:
        first = top_up(member, 50_000, on=local(2025, 3, 10))
        with at(local(2025, 3, 12)):
            refund(first)

        evaluation = evaluate(member, date(2025, 3, 10))

        assert (evaluation.top_up_rank, evaluation.target_id) == (1, stored_value.silver.pk)


def plan_for(tier: Tier) -> PaidPlan:
    plan = PaidPlan.objects.create(name=f"{tier.name} plan", price_fen=2_900, duration=PaidPlan.Duration.MONTH)
    tier.plans.add(plan)
    return plan


def buy(member: Member, plan: PaidPlan, *, on: datetime) -> PlanPeriod:
    return plan_grant(member=member, plan=plan, by=None, source=PlanPeriod.Source.COUNTER, now=on)


class TestPaidRoute:
    def test_an_active_plan_puts_the_member_on_its_tier(self, rungs: Rungs, member: Member) -> None:
        buy(member, plan_for(rungs.gold), on=local(2025, 1, 5, 10))

        evaluation = evaluate(member, date(2025, 1, 5))

        assert (evaluation.plan_rank, evaluation.target_id, evaluation.reason) == (2, rungs.gold.pk, "paid_plan")

    def test_a_plan_counts_only_on_the_days_it_runs(self, rungs: Rungs, member: Member) -> None:
        buy(member, plan_for(rungs.gold), on=local(2025, 1, 5, 10))  # until 10:00 on 5 February

        days = [date(2025, 1, 4), date(2025, 2, 4), date(2025, 2, 5)]
        ranks = [evaluate(member, day).plan_rank for day in days]

        assert ranks == [None, 2, None]

    def test_a_plan_never_lowers_a_higher_earned_tier(self, rungs: Rungs, member: Member) -> None:
        grow(member, 600, on=local(2025, 1, 3))
        buy(member, plan_for(rungs.silver), on=local(2025, 1, 5, 10))

        evaluation = evaluate(member, date(2025, 1, 5))

        assert (evaluation.plan_rank, evaluation.target_id, evaluation.reason) == (1, rungs.gold.pk, "growth")
