"""tiers_recalculate, the nightly job: each qualification mode across evaluation dates, downgrades and holds, the
stored-value and paid routes, the manual floor, the history it writes, running twice, resuming after a kill, and
the simulation of a draft ladder, which runs the same evaluation and writes nothing."""

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from django.db import transaction

from assets import services as assets_services
from assets.models import LedgerTransaction
from members.models import Member, PaidPlan, PlanPeriod, Staff
from members.services import plan_grant
from reports import services as reports_services
from reports.models import JobRun
from tests.factories import MemberFactory
from tests.tiers import (
    JOB,
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
    tier_rows,
    top_up,
    written,
)
from tiers import services as tiers_services
from tiers.models import MemberTier, Tier, TierChange, TierGift, TierRules

pytestmark = pytest.mark.django_db

Reason = TierChange.Reason
Downgrade = TierRules.Downgrade
RECALCULATE = tiers_services.tiers_recalculate  # the real job, whatever a test patches in its place


@pytest.fixture
def rungs(db: None) -> Rungs:
    return three_rungs()


@pytest.fixture
def member(db: None) -> Member:
    with at(local(2024, 1, 2)):
        return MemberFactory.create()


def members(n: int) -> list[Member]:
    with at(local(2024, 1, 2)):
        return MemberFactory.create_batch(n)


def set_floor(member: Member, tier: Tier | None, *, staff: Staff, on: datetime, reason: str = "VIP guest") -> None:
    with at(on):
        tiers_services.tier_set_manual(member=member, tier=tier, reason=reason, staff=staff)


class TestCumulativeMode:
    def test_growth_lifts_the_member_at_the_nightly_job(self, rungs: Rungs, member: Member) -> None:
        set_rules(upgrade_timing=TierRules.Timing.EVALUATION)
        grow(member, 120, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        on_silver = tier_of(member)
        grow(member, 400, on=local(2025, 3, 11))

        run_job(date(2025, 3, 11))

        assert (on_silver, tier_of(member)) == (rungs.silver, rungs.gold)

    def test_growth_earned_after_the_business_day_waits_for_the_next_job(self, rungs: Rungs, member: Member) -> None:
        grow(member, 600, on=local(2025, 3, 10))

        run_job(date(2025, 3, 9))

        assert tier_of(member) == rungs.base

    def test_a_refund_never_lowers_the_tier_when_downgrades_are_off(self, rungs: Rungs, member: Member) -> None:
        purchase = grow(member, 600, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        claw_back(purchase, on=local(2025, 3, 12))

        run_job(date(2025, 3, 12))

        assert tier_of(member) == rungs.gold
        assert tiers_services.tier_evaluate(member=member, as_of=date(2025, 3, 12)).growth == 0


class TestRefunds:
    def test_lower_growth_at_once_and_the_tier_at_the_next_job(self, rungs: Rungs, member: Member) -> None:
        set_rules(downgrade=Downgrade.QUALIFIED)
        purchase = grow(member, 600, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        claw_back(purchase, 200, on=local(2025, 3, 12, 15))
        before_the_job = tier_of(member)

        run_job(date(2025, 3, 12))

        change = last_change(member)
        assert (before_the_job, tier_of(member)) == (rungs.gold, rungs.silver)
        assert (change.from_tier, change.to_tier, change.reason) == (rungs.gold, rungs.silver, Reason.DOWNGRADE)


class TestRollingWindow:
    def test_downgrades_at_the_first_evaluation_after_the_growth_leaves_the_window(
        self, rungs: Rungs, member: Member
    ) -> None:
        rolling()
        grow(member, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))
        run_evaluation(date(2025, 3, 1))  # window from 1 March 2024: the growth still counts
        kept = tier_of(member)

        run_evaluation(date(2025, 4, 1))  # window from 1 April 2024: it does not

        assert (kept, tier_of(member)) == (rungs.gold, rungs.base)
        assert last_change(member).reason == Reason.DOWNGRADE

    def test_never_downgrades_between_evaluations(self, rungs: Rungs, member: Member) -> None:
        rolling()
        grow(member, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))
        run_evaluation(date(2025, 3, 1))  # still inside the window then

        for day in (date(2025, 3, 15), date(2025, 3, 30)):  # the growth has left the window; no evaluation yet
            run_job(day)

        assert tier_of(member) == rungs.gold

    def test_upgrades_do_not_wait_for_the_evaluation_in_real_time_mode(self, rungs: Rungs, member: Member) -> None:
        rolling(upgrade_timing=TierRules.Timing.REALTIME)
        grow(member, 600, on=local(2025, 3, 15))

        run_job(date(2025, 3, 15))

        assert tier_of(member) == rungs.gold

    def test_one_step_drops_one_rung_per_evaluation(self, rungs: Rungs, member: Member) -> None:
        rolling(downgrade=Downgrade.ONE_STEP)
        grow(member, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))
        run_evaluation(date(2025, 4, 1))
        one_step = tier_of(member)

        run_evaluation(date(2025, 5, 1))

        assert (one_step, tier_of(member)) == (rungs.silver, rungs.base)

    def test_one_step_never_drops_below_the_tier_qualified_for(self, rungs: Rungs, member: Member) -> None:
        rolling(downgrade=Downgrade.ONE_STEP)
        grow(member, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))
        grow(member, 150, on=local(2025, 1, 10))  # Silver's worth inside the window

        for first in (date(2025, 4, 1), date(2025, 5, 1)):
            run_evaluation(first)

        assert tier_of(member) == rungs.silver

    def test_to_qualified_drops_straight_to_the_tier_qualified_for(self, rungs: Rungs, member: Member) -> None:
        rolling(downgrade=Downgrade.QUALIFIED)
        grow(member, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))

        run_evaluation(date(2025, 4, 1))

        change = last_change(member)
        assert (change.from_tier, change.to_tier) == (rungs.gold, rungs.base)


class TestHoldPeriod:
    def test_a_tier_is_kept_until_m_months_after_it_was_reached(self, rungs: Rungs, member: Member) -> None:
        rolling(window_months=1, hold_months=3)
        grow(member, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))  # Gold reached at 02:00 on 11 March, held until 02:00 on 11 June
        held = []
        for first in (date(2024, 5, 1), date(2024, 6, 1)):  # the growth left the window on 1 April
            run_evaluation(first)
            held.append(tier_of(member))

        run_evaluation(date(2024, 7, 1))

        assert held == [rungs.gold, rungs.gold]
        assert tier_of(member) == rungs.base

    def test_without_a_hold_the_same_member_drops_at_the_first_evaluation(self, rungs: Rungs, member: Member) -> None:
        rolling(window_months=1, hold_months=0)
        grow(member, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))

        run_evaluation(date(2024, 5, 1))

        assert tier_of(member) == rungs.base


@pytest.fixture
def stored_value(rungs: Rungs) -> Rungs:
    # Silver: a single top-up of at least 500.00; Gold: top-ups adding up to at least 1,000.00
    Tier.objects.filter(pk=rungs.silver.pk).update(top_up_single_fen=50_000)
    Tier.objects.filter(pk=rungs.gold.pk).update(top_up_total_fen=100_000)
    return rungs


class TestStoredValueRoute:
    def test_a_single_top_up_lifts_the_member_with_reason_top_up(self, stored_value: Rungs, member: Member) -> None:
        top_up(member, 50_000, on=local(2025, 3, 10))

        run_job(date(2025, 3, 10))

        change = last_change(member)
        assert (tier_of(member), change.reason) == (stored_value.silver, Reason.TOP_UP)

    def test_top_ups_adding_up_to_the_total_lift_the_member(self, stored_value: Rungs, member: Member) -> None:
        top_up(member, 30_000, on=local(2025, 3, 1))
        run_job(date(2025, 3, 1))
        top_up(member, 70_000, on=local(2025, 3, 10))

        run_job(date(2025, 3, 10))

        assert tier_of(member) == stored_value.gold

    def test_a_refunded_top_up_lowers_the_tier_at_the_next_job(self, stored_value: Rungs, member: Member) -> None:
        set_rules(downgrade=Downgrade.QUALIFIED)
        paid_in = top_up(member, 50_000, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        with at(local(2025, 3, 11)):
            assets_services.top_up_refund(top_up=paid_in, idempotency_key="refund-1")

        run_job(date(2025, 3, 11))

        change = last_change(member)
        assert (change.from_tier, change.to_tier, change.reason) == (
            stored_value.silver,
            stored_value.base,
            "downgrade",
        )


def plan_for(tier: Tier) -> PaidPlan:
    plan = PaidPlan.objects.create(name=f"{tier.name} plan", price_fen=2_900, duration=PaidPlan.Duration.MONTH)
    tier.plans.add(plan)
    return plan


def buy(member: Member, plan: PaidPlan, *, on: datetime) -> PlanPeriod:
    return plan_grant(member=member, plan=plan, by=None, source=PlanPeriod.Source.COUNTER, now=on)


class TestPaidRoute:
    def test_an_active_plan_lifts_the_member_to_its_tier_for_its_period(self, rungs: Rungs, member: Member) -> None:
        buy(member, plan_for(rungs.gold), on=local(2025, 1, 5, 10))  # until 10:00 on 5 February

        run_job(date(2025, 1, 5))
        run_job(date(2025, 2, 4))

        assert tier_of(member) == rungs.gold
        assert list(TierChange.objects.filter(member=member).values_list("reason", flat=True)) == [Reason.PAID_PLAN]

    def test_when_the_plan_ends_the_member_drops_back_whatever_the_downgrade_rule(
        self, rungs: Rungs, member: Member
    ) -> None:
        rolling(downgrade=Downgrade.NONE, hold_months=12)  # nothing else would ever lower this member
        grow(member, 150, on=local(2025, 1, 3))
        buy(member, plan_for(rungs.gold), on=local(2025, 1, 5, 10))
        run_job(date(2025, 1, 5))

        run_job(date(2025, 2, 5))  # the plan ended at 10:00; not an evaluation day either

        change = last_change(member)
        assert tier_of(member) == rungs.silver
        assert (change.from_tier, change.to_tier, change.reason) == (rungs.gold, rungs.silver, Reason.PLAN_EXPIRED)

    def test_a_plan_never_lowers_a_higher_earned_tier(self, rungs: Rungs, member: Member) -> None:
        grow(member, 600, on=local(2025, 1, 3))
        run_job(date(2025, 1, 3))
        buy(member, plan_for(rungs.silver), on=local(2025, 1, 5, 10))

        for day in (date(2025, 1, 5), date(2025, 2, 5)):
            run_job(day)

        assert tier_of(member) == rungs.gold
        assert TierChange.objects.filter(member=member).count() == 1

    def test_a_tier_growth_also_reaches_stays_when_the_plan_ends(self, rungs: Rungs, member: Member) -> None:
        set_rules(downgrade=Downgrade.QUALIFIED)
        buy(member, plan_for(rungs.gold), on=local(2025, 1, 5, 10))
        run_job(date(2025, 1, 5))
        grow(member, 600, on=local(2025, 1, 20))

        run_job(date(2025, 2, 5))

        assert tier_of(member) == rungs.gold


class TestManualFloor:
    def test_setting_it_moves_the_member_up_at_once(self, rungs: Rungs, member: Member, manager: Staff) -> None:
        set_floor(member, rungs.gold, staff=manager, on=local(2025, 3, 10))

        state = MemberTier.objects.get(member=member)
        assert (state.tier, state.floor, state.floor_reason) == (rungs.gold, rungs.gold, "VIP guest")

    def test_the_member_never_drops_below_it_while_it_is_set(
        self, rungs: Rungs, member: Member, manager: Staff
    ) -> None:
        set_rules(downgrade=Downgrade.QUALIFIED)
        purchase = grow(member, 600, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        set_floor(member, rungs.silver, staff=manager, on=local(2025, 3, 11))
        claw_back(purchase, on=local(2025, 3, 12))

        run_job(date(2025, 3, 12))

        assert tier_of(member) == rungs.silver

    def test_a_floor_holds_a_member_with_no_growth_at_all(self, rungs: Rungs, member: Member, manager: Staff) -> None:
        rolling()
        set_floor(member, rungs.gold, staff=manager, on=local(2024, 3, 10))

        run_evaluation(date(2025, 4, 1))

        assert tier_of(member) == rungs.gold

    def test_once_removed_the_usual_rules_apply_at_the_next_job(
        self, rungs: Rungs, member: Member, manager: Staff
    ) -> None:
        set_rules(downgrade=Downgrade.QUALIFIED)
        set_floor(member, rungs.gold, staff=manager, on=local(2025, 3, 10))
        set_floor(member, None, staff=manager, on=local(2025, 3, 11), reason="review done")
        removed_but_kept = tier_of(member)

        run_job(date(2025, 3, 11))

        assert (removed_but_kept, tier_of(member)) == (rungs.gold, rungs.base)
        assert MemberTier.objects.get(member=member).floor is None

    def test_a_floor_below_the_current_tier_changes_nothing_at_once(
        self, rungs: Rungs, member: Member, manager: Staff
    ) -> None:
        grow(member, 600, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))

        set_floor(member, rungs.silver, staff=manager, on=local(2025, 3, 11))

        assert tier_of(member) == rungs.gold
        assert TierChange.objects.filter(member=member).count() == 1

    def test_a_reason_is_required(self, rungs: Rungs, member: Member, manager: Staff) -> None:
        with pytest.raises(tiers_services.TierError):
            set_floor(member, rungs.gold, staff=manager, on=local(2025, 3, 10), reason="  ")

        assert written() == (0, 0, 0)


class TestTierHistory:
    def test_a_move_by_the_job_records_from_to_reason_business_date_and_the_run(
        self, rungs: Rungs, member: Member
    ) -> None:
        grow(member, 120, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        grow(member, 400, on=local(2025, 3, 11))

        run = run_job(date(2025, 3, 11))

        change = last_change(member)
        assert (change.from_tier, change.to_tier, change.reason) == (rungs.silver, rungs.gold, Reason.GROWTH)
        assert (change.business_date, change.job_run, change.staff) == (date(2025, 3, 11), run, None)
        assert change.changed_at == local(2025, 3, 12, 2)

    def test_a_first_move_by_the_job_comes_from_the_base_tier(self, rungs: Rungs, member: Member) -> None:
        grow(member, 120, on=local(2025, 3, 10))

        run_job(date(2025, 3, 10))

        assert last_change(member).from_tier == rungs.base

    def test_a_manual_move_records_the_staff_member_and_no_run(
        self, rungs: Rungs, member: Member, manager: Staff
    ) -> None:
        set_floor(member, rungs.gold, staff=manager, on=local(2025, 3, 10, 15), reason="VIP guest")

        change = last_change(member)
        assert (change.from_tier, change.to_tier, change.reason, change.note) == (
            rungs.base,
            rungs.gold,
            Reason.MANUAL,
            "VIP guest",
        )
        assert (change.business_date, change.job_run, change.staff) == (date(2025, 3, 10), None, manager)


class TestRunTwice:
    def test_a_second_run_for_the_same_date_changes_nothing(self, rungs: Rungs, manager: Staff) -> None:
        rolling(downgrade=Downgrade.ONE_STEP)
        climber, faller, floored = members(3)
        grow(faller, 600, on=local(2024, 3, 10))
        run_job(date(2024, 3, 10))
        grow(climber, 600, on=local(2025, 3, 20))
        set_floor(floored, rungs.silver, staff=manager, on=local(2025, 3, 20))
        day = date(2025, 3, 31)  # the evaluation at the start of 1 April: upgrades and downgrades
        with at(local(2025, 4, 1, 2)):
            first = tiers_services.tiers_recalculate(business_date=day)
            after_first = tier_rows(), written()

            second = tiers_services.tiers_recalculate(business_date=day)

        assert first == (3, 2)  # (members examined, members moved): the climber up, the faller one step down
        assert second == (3, 0)
        assert (tier_rows(), written()) == after_first

    def test_the_scheduled_job_does_not_run_a_done_date_again(self, rungs: Rungs, member: Member) -> None:
        grow(member, 600, on=local(2025, 3, 10))
        first = run_job(date(2025, 3, 10))

        with at(local(2025, 3, 12, 2)):
            again, ran = reports_services.job_execute(JOB, business_date=date(2025, 3, 10))

        assert (again, ran) == (first, False)
        assert TierChange.objects.count() == 1


# ------------------------------------------------------------------ a run killed half-way


class Killed(Exception):
    """The worker dies."""


def in_pairs(monkeypatch: pytest.MonkeyPatch, *, after: int) -> None:
    """Make the job run in batches of two members. The ids up to `after` hold nobody in this test, so the run starts
    just above them, as if it had already passed those empty batches."""

    def recalculate_in_pairs(*, business_date: date, run: JobRun) -> tuple[int, int]:
        if not run.cursor:
            run.cursor = {"member_id": after}
        return RECALCULATE(business_date=business_date, run=run, batch=2)

    monkeypatch.setattr(tiers_services, "tiers_recalculate", recalculate_in_pairs)


def dying_at_call(fn: Callable[..., Any], n: int) -> Callable[..., Any]:
    calls = itertools.count(1)

    def dying(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == n:
            raise Killed()
        return fn(*args, **kwargs)

    return dying


def end_state() -> dict[str, object]:
    return {
        "tiers": tier_rows(),
        "history": Counter(TierChange.objects.values_list("member_id", "from_tier_id", "to_tier_id", "reason")),
        "gifts": sorted(TierGift.objects.values_list("member_id", "tier_id")),
        "gift_points": LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.POINTS_EARN).count(),
    }


def uninterrupted(day: date) -> dict[str, object]:
    """The end state one run from start to end reaches on the same data; then undone."""
    with transaction.atomic():
        RECALCULATE(business_date=day)
        state = end_state()
        transaction.set_rollback(True)
    return state


class TestKilledRun:
    @pytest.fixture
    def scenario(self, manager: Staff) -> list[Member]:
        """Six members, two per batch: two upgrades to Gold (with its gift pack), a refund that lowers a tier,
        an upgrade to Silver, a manual floor and a member who stays where they are."""
        three_rungs(gift_points=200)
        set_rules(downgrade=Downgrade.QUALIFIED)
        people = members(6)
        refunded = grow(people[2], 600, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        set_floor(people[4], Tier.objects.get(rank=1), staff=manager, on=local(2025, 3, 11))
        grow(people[0], 600, on=local(2025, 3, 12))
        claw_back(refunded, on=local(2025, 3, 12))
        grow(people[3], 150, on=local(2025, 3, 12))
        grow(people[5], 700, on=local(2025, 3, 12))
        return people

    def test_re_run_after_a_kill_ends_like_an_uninterrupted_run(
        self, scenario: list[Member], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        day = date(2025, 3, 12)
        with at(local(2025, 3, 13, 2)):
            expected = uninterrupted(day)
            in_pairs(monkeypatch, after=scenario[0].pk - 1)
            with monkeypatch.context() as patch, pytest.raises(Killed):
                patch.setattr(tiers_services, "_recalculate_batch", dying_at_call(tiers_services._recalculate_batch, 2))
                reports_services.job_execute(JOB, business_date=day)  # dies in its second batch
            killed = JobRun.objects.get(job=JOB, business_date=day)

            run, ran = reports_services.job_execute(JOB, business_date=day)

        assert (killed.status, killed.cursor["member_id"]) == (JobRun.Status.FAILED, scenario[1].pk)
        assert ran and run is not None and run.status == JobRun.Status.SUCCEEDED
        assert end_state() == expected
        assert (run.attempts, run.rows_examined, run.rows_changed) == (2, 6, 4)

    def test_a_resumed_run_starts_after_its_cursor_and_adds_to_its_counts(self, rungs: Rungs) -> None:
        people = members(4)
        for person in people:
            grow(person, 600, on=local(2025, 3, 10))
        day = date(2025, 3, 10)
        run = JobRun.objects.create(
            job=JOB, business_date=day, cursor={"member_id": people[1].pk, "examined": 10, "changed": 2}
        )

        with at(local(2025, 3, 11, 2)):
            counts = tiers_services.tiers_recalculate(business_date=day, run=run, batch=2)

        run.refresh_from_db()
        assert counts == (12, 4)
        assert [tier_of(person) for person in people] == [rungs.base, rungs.base, rungs.gold, rungs.gold]
        assert (run.cursor["examined"], run.cursor["changed"]) == (12, 4)

    def test_a_batch_that_fails_after_setting_its_cursor_is_done_again_on_re_run(
        self, rungs: Rungs, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        people = members(4)
        for person in people:
            grow(person, 600, on=local(2025, 3, 10))
        day = date(2025, 3, 10)
        in_pairs(monkeypatch, after=people[0].pk - 1)
        one_batch = tiers_services._recalculate_batch
        batches = itertools.count(1)

        def second_batch_dies_after_its_changes(*args: Any, **kwargs: Any) -> Any:
            # the second batch dies after writing its changes and its cursor, before committing (a kill, a failed
            # commit)
            seen, moved = one_batch(*args, **kwargs)
            if next(batches) == 2:
                assert moved == 2
                raise Killed()
            return seen, moved

        with at(local(2025, 3, 11, 2)):
            with monkeypatch.context() as patch, pytest.raises(Killed):
                patch.setattr(tiers_services, "_recalculate_batch", second_batch_dies_after_its_changes)
                reports_services.job_execute(JOB, business_date=day)

            reports_services.job_execute(JOB, business_date=day)

        assert [tier_of(person) for person in people] == [rungs.gold] * 4


# ------------------------------------------------------------------ simulation


class TestTiersSimulate:
    @pytest.fixture
    def placed(self, rungs: Rungs) -> list[Member]:
        """Members placed by the saved ladder: two on Silver (120, 300), two on Gold (600, 650), one on base (50)."""
        people = members(5)
        for person, growth in zip(people, (120, 300, 600, 650, 50), strict=True):
            grow(person, growth, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        return people

    def test_a_draft_ladder_reports_who_would_move_from_which_tier_to_which(
        self, rungs: Rungs, placed: list[Member]
    ) -> None:
        rungs.silver.threshold = 250  # raised, not saved
        platinum = Tier(name="Platinum", rank=3, threshold=600)  # new, not saved
        rules = tiers_services.tier_rules()
        rules.downgrade = Downgrade.QUALIFIED  # a rule being changed too
        draft = tiers_services.Ladder.build([rungs.base, rungs.silver, rungs.gold, platinum], rules)

        with at(local(2025, 3, 12, 9)):
            moves = tiers_services.tiers_simulate(ladder=draft, as_of=date(2025, 3, 11))

        platinum_id = -4  # a draft's unsaved tier: minus its position in the ladder, from 1
        assert moves == {(rungs.silver.pk, rungs.base.pk): 1, (rungs.gold.pk, platinum_id): 2}

    def test_writes_nothing(self, rungs: Rungs, placed: list[Member]) -> None:
        rungs.silver.threshold = 50  # the member with 50 would move up
        draft = tiers_services.Ladder.build([rungs.base, rungs.silver, rungs.gold], tiers_services.tier_rules())
        before = tier_rows(), written(), list(Tier.objects.order_by("rank").values_list("pk", "threshold"))

        with at(local(2025, 3, 12, 9)):
            moves = tiers_services.tiers_simulate(ladder=draft, as_of=date(2025, 3, 11))

        assert sum(moves.values()) == 1
        assert (tier_rows(), written(), list(Tier.objects.order_by("rank").values_list("pk", "threshold"))) == before

    def test_the_saved_ladder_predicts_what_the_job_then_does(self, rungs: Rungs, placed: list[Member]) -> None:
        set_rules(downgrade=Downgrade.QUALIFIED)
        grow(placed[4], 500, on=local(2025, 3, 11))
        refunded = LedgerTransaction.objects.get(member=placed[3], kind=LedgerTransaction.Kind.GROWTH_ADD)
        claw_back(refunded, 600, on=local(2025, 3, 11))
        with at(local(2025, 3, 12, 1)):
            predicted = tiers_services.tiers_simulate(ladder=tiers_services.Ladder.saved(), as_of=date(2025, 3, 11))

        run = run_job(date(2025, 3, 11))

        done = Counter(TierChange.objects.filter(job_run=run).values_list("from_tier_id", "to_tier_id"))
        assert predicted == dict(done)
        assert (tier_of(placed[3]), tier_of(placed[4]), sum(predicted.values())) == (rungs.base, rungs.gold, 2)


# ------------------------------------------------------------------ batches on several connections


@pytest.mark.django_db(transaction=True)
class TestParallelBatches:
    """Outside a caller's transaction the batches run on two connections at once; the end state, the counts and
    the resumption after a kill are those of one connection."""

    @pytest.fixture
    def people(self) -> list[Member]:
        three_rungs(gift_points=200)
        set_rules(downgrade=TierRules.Downgrade.QUALIFIED)
        people = members(12)
        with at(local(2025, 3, 10)):
            for n, person in enumerate(people):
                if n % 3:
                    grow(person, (0, 150, 600)[n % 3])
        return people

    def test_two_connections_place_everyone_once(self, people: list[Member]) -> None:
        first = people[0].pk - 1
        with at(local(2025, 3, 11, 2)):
            run = JobRun.objects.create(job=JOB, business_date=date(2025, 3, 10), cursor={"member_id": first})
            counts = RECALCULATE(business_date=date(2025, 3, 10), run=run, batch=2, workers=2)
            again = RECALCULATE(business_date=date(2025, 3, 10), batch=2, workers=2)
        run.refresh_from_db()

        assert counts == (12, 8) and again == (12, 0)
        assert [tier_of(p).rank for p in people] == [(0, 1, 2)[n % 3] for n in range(12)]
        assert TierChange.objects.filter(job_run=run).count() == 8 and TierGift.objects.count() == 4
        assert LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.POINTS_EARN).count() == 4
        assert run.cursor["done"] == [] and run.cursor["member_id"] >= people[-1].pk
        assert (run.cursor["examined"], run.cursor["changed"]) == (12, 8)

    def test_a_run_killed_on_one_connection_resumes_where_both_left_off(
        self, people: list[Member], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = people[0].pk - 1
        with at(local(2025, 3, 11, 2)):
            run = JobRun.objects.create(job=JOB, business_date=date(2025, 3, 10), cursor={"member_id": first})
            with monkeypatch.context() as patch, pytest.raises(Killed):
                patch.setattr(tiers_services, "_recalculate_batch", dying_at_call(tiers_services._recalculate_batch, 3))
                RECALCULATE(business_date=date(2025, 3, 10), run=run, batch=2, workers=2)
            run.refresh_from_db()
            half = dict(run.cursor)
            RECALCULATE(business_date=date(2025, 3, 10), run=run, batch=2, workers=2)
        run.refresh_from_db()

        assert 0 < half["examined"] < 12
        assert (run.cursor["examined"], run.cursor["changed"]) == (12, 8)
        assert [tier_of(p).rank for p in people] == [(0, 1, 2)[n % 3] for n in range(12)]
        assert TierChange.objects.count() == 8 and TierGift.objects.count() == 4

    def test_a_figures_table_left_by_a_dead_worker_is_dropped(self, people: list[Member]) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("CREATE UNLOGGED TABLE tier_figures_999999999 (member_id bigint)")

        with at(local(2025, 3, 11, 2)):
            RECALCULATE(business_date=date(2025, 3, 10), batch=4, workers=2)

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'tier_figures_%%'")
            assert cursor.fetchone()[0] == 0
