"""Cases a review found: a removed floor, a move that races the job, the exact end of a hold, a paid plan under
upgrades that wait for the evaluation, and a plan's tier that growth also reaches."""

from datetime import date

import pytest

from members.models import PaidPlan, Staff
from members.services import plan_grant
from tests.factories import MemberFactory
from tests.tiers import (
    Rungs,
    at,
    claw_back,
    grow,
    last_change,
    local,
    rolling,
    run_evaluation,
    run_job,
    set_rules,
    three_rungs,
    tier_of,
)
from tiers import services as tiers_services
from tiers.models import MemberTier, TierRules


@pytest.fixture
def rungs(db) -> Rungs:
    return three_rungs()


class TestRemovingAFloor:
    def test_drops_the_member_at_the_next_night_whatever_the_downgrade_rule(self, rungs: Rungs, manager: Staff) -> None:
        member = MemberFactory.create()
        with at(local(2025, 3, 10)):
            tiers_services.tier_set_manual(member=member, tier=rungs.gold, reason="VIP", staff=manager)
        with at(local(2025, 3, 11)):
            tiers_services.tier_set_manual(member=member, tier=None, reason="ended", staff=manager)

        run_job(date(2025, 3, 11))

        assert tier_of(member) == rungs.base and last_change(member).reason == "manual"


class TestAMoveThatRacesTheJob:
    def test_a_floor_set_after_the_evaluation_is_not_overwritten(self, rungs: Rungs, manager: Staff) -> None:
        member = MemberFactory.create()
        grow(member, 150, on=local(2025, 3, 10))
        ladder = tiers_services.Ladder.saved()
        evaluations = tiers_services._evaluate(
            member.pk,
            member.pk,
            cutoff=tiers_services.local_midnight_after(date(2025, 3, 10)),
            ladder=ladder,
            upgrades=True,
            downgrades=True,
        )
        tiers_services.tier_set_manual(member=member, tier=rungs.gold, reason="VIP", staff=manager)

        changes = tiers_services._apply(evaluations, business_date=date(2025, 3, 10), changed_at=local(2025, 3, 11, 2))

        assert changes == [] and tier_of(member) == rungs.gold


class TestTheEndOfAHold:
    def test_a_one_month_hold_lasts_one_month(self, rungs: Rungs) -> None:
        rolling(window_months=1, hold_months=1, upgrade_timing=TierRules.Timing.EVALUATION)
        member = MemberFactory.create()
        grow(member, 600, on=local(2025, 12, 20))
        run_evaluation(date(2026, 1, 1))
        assert tier_of(member) == rungs.gold

        run_evaluation(date(2026, 2, 1))  # the growth left the window, and the month is up

        assert tier_of(member) == rungs.base


class TestAPaidPlanUnderUpgradesAtTheEvaluation:
    def test_applies_at_the_next_night_not_at_the_next_evaluation(self, rungs: Rungs) -> None:
        rolling(upgrade_timing=TierRules.Timing.EVALUATION)
        plan = PaidPlan.objects.create(name="Gold pass", price_fen=9_900, duration=PaidPlan.Duration.MONTH)
        rungs.gold.plans.add(plan)
        member = MemberFactory.create()
        with at(local(2025, 1, 5)):
            plan_grant(member=member, plan=plan, by=None, source="counter", reason="bought")

        run_job(date(2025, 1, 5))

        assert tier_of(member) == rungs.gold


class TestAPlanTierThatGrowthAlsoReaches:
    def test_is_held_by_growth_once_the_plan_ends(self, rungs: Rungs) -> None:
        set_rules(downgrade=TierRules.Downgrade.NONE)
        plan = PaidPlan.objects.create(name="Gold pass", price_fen=9_900, duration=PaidPlan.Duration.MONTH)
        rungs.gold.plans.add(plan)
        member = MemberFactory.create()
        with at(local(2025, 1, 5)):
            plan_grant(member=member, plan=plan, by=None, source="counter", reason="bought")
        run_job(date(2025, 1, 5))
        addition = grow(member, 600, on=local(2025, 1, 10))
        run_job(date(2025, 2, 10))  # the plan has ended; growth holds Gold now
        assert MemberTier.objects.get(member=member).source == "growth"

        claw_back(addition, on=local(2025, 3, 1))
        run_job(date(2025, 3, 1))

        assert tier_of(member) == rungs.gold  # never downgrade: a refund does not end it as if the plan just had


class TestAMissedEvaluationNight:
    def test_the_next_run_evaluates_instead_of_waiting_a_month(self, rungs: Rungs) -> None:
        rolling(window_months=1)
        member = MemberFactory.create()
        grow(member, 600, on=local(2025, 12, 20))
        run_evaluation(date(2026, 1, 1))
        run_job(date(2026, 1, 30))
        assert tier_of(member) == rungs.gold

        run_job(date(2026, 2, 1))  # the night of 31 January, the eve of the evaluation, never ran

        assert tier_of(member) == rungs.base

    def test_a_night_that_ran_is_not_evaluated_again(self, rungs: Rungs) -> None:
        rolling(window_months=1)
        member = MemberFactory.create()
        grow(member, 600, on=local(2025, 12, 20))
        run_evaluation(date(2026, 1, 1))
        run_job(date(2026, 1, 20))

        run_job(date(2026, 1, 21))  # the window has moved on, but no evaluation day came

        assert tier_of(member) == rungs.gold
