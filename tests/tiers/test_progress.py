"""tier_progress (the member's tier, growth, what it takes to move up and, in rolling mode, to stay), member_tier and
tier_distribution."""

from datetime import date

import pytest

from members.models import Member
from members.services import member_cancel
from tests.factories import MemberFactory
from tests.tiers import Rungs, at, grow, local, rolling, run_job, three_rungs
from tiers import selectors as tiers_selectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def rungs(db: None) -> Rungs:
    return three_rungs()


@pytest.fixture
def member(db: None) -> Member:
    with at(local(2024, 1, 2)):
        return MemberFactory.create()


class TestTierProgress:
    def test_shows_the_growth_still_needed_for_the_next_tier(self, rungs: Rungs, member: Member) -> None:
        grow(member, 120, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))

        progress = tiers_selectors.tier_progress(member=member, now=local(2025, 3, 11, 9))

        assert (progress.tier, progress.growth, progress.next_tier, progress.to_next) == (
            rungs.silver,
            120,
            rungs.gold,
            380,
        )
        assert (progress.keep_by, progress.to_keep) == (None, None)  # cumulative: a tier is never lost

    def test_a_new_member_stands_on_the_base_tier_with_the_first_rung_ahead(self, rungs: Rungs, member: Member) -> None:
        progress = tiers_selectors.tier_progress(member=member, now=local(2025, 3, 11, 9))

        assert (progress.tier, progress.growth, progress.next_tier, progress.to_next) == (
            rungs.base,
            0,
            rungs.silver,
            100,
        )

    def test_growth_past_the_next_threshold_needs_nothing_more(self, rungs: Rungs, member: Member) -> None:
        grow(member, 150, on=local(2025, 3, 10))  # Silver's worth; the job has not placed the member yet

        progress = tiers_selectors.tier_progress(member=member, now=local(2025, 3, 10, 18))

        assert (progress.tier, progress.next_tier, progress.to_next) == (rungs.base, rungs.silver, 0)

    def test_on_the_top_tier_there_is_nothing_further_to_reach(self, rungs: Rungs, member: Member) -> None:
        grow(member, 700, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))

        progress = tiers_selectors.tier_progress(member=member, now=local(2025, 3, 11, 9))

        assert (progress.tier, progress.next_tier, progress.to_next) == (rungs.gold, None, None)

    def test_counts_growth_only_up_to_now(self, rungs: Rungs, member: Member) -> None:
        grow(member, 120, on=local(2025, 3, 10))
        grow(member, 50, on=local(2025, 3, 12))

        progress = tiers_selectors.tier_progress(member=member, now=local(2025, 3, 11, 9))

        assert progress.growth == 120


class TestTierProgressInRollingMode:
    @pytest.fixture
    def on_silver(self, rungs: Rungs, member: Member) -> Member:
        """Silver since September 2024: 70 earned on 10 April 2024, 40 on 10 September, 50 on 10 January 2025."""
        rolling(window_months=12, evaluation_day=1)
        grow(member, 70, on=local(2024, 4, 10))
        grow(member, 40, on=local(2024, 9, 10))
        run_job(date(2024, 9, 10))
        grow(member, 50, on=local(2025, 1, 10))
        return member

    def test_says_by_which_evaluation_and_how_much_growth_keeps_the_tier(self, rungs: Rungs, on_silver: Member) -> None:
        progress = tiers_selectors.tier_progress(member=on_silver, now=local(2025, 4, 5, 10))

        # the evaluation at the start of 1 May counts from 1 May 2024: 40 + 50 of the 160 earned
        assert (progress.tier, progress.growth) == (rungs.silver, 160)
        assert (progress.keep_by, progress.to_keep) == (date(2025, 5, 1), 10)
        assert progress.to_next == 500 - 160

    def test_the_evaluation_day_later_in_this_month_comes_first(self, rungs: Rungs, on_silver: Member) -> None:
        rolling(evaluation_day=25)

        progress = tiers_selectors.tier_progress(member=on_silver, now=local(2025, 4, 5, 10))

        # the evaluation at the start of 25 April counts from 25 April 2024: 40 + 50
        assert (progress.keep_by, progress.to_keep) == (date(2025, 4, 25), 10)

    def test_enough_growth_in_the_coming_window_needs_nothing_more(self, rungs: Rungs, on_silver: Member) -> None:
        grow(on_silver, 30, on=local(2025, 4, 3))

        progress = tiers_selectors.tier_progress(member=on_silver, now=local(2025, 4, 5, 10))

        assert progress.to_keep == 0

    def test_the_base_tier_has_nothing_to_keep(self, rungs: Rungs, member: Member) -> None:
        rolling()

        progress = tiers_selectors.tier_progress(member=member, now=local(2025, 4, 5, 10))

        assert (progress.tier, progress.keep_by, progress.to_keep) == (rungs.base, None, None)

    def test_on_the_evaluation_day_the_next_evaluation_is_next_month(self, rungs: Rungs, on_silver: Member) -> None:
        progress = tiers_selectors.tier_progress(member=on_silver, now=local(2025, 4, 1, 10))

        # today's evaluation ran at 00:00; the next one, at the start of 1 May, counts from 1 May 2024: 40 + 50
        assert (progress.keep_by, progress.to_keep) == (date(2025, 5, 1), 10)


class TestMemberTier:
    def test_is_the_base_tier_for_a_member_never_placed(self, rungs: Rungs, member: Member) -> None:
        assert tiers_selectors.member_tier(member=member) == rungs.base

    def test_is_the_tier_the_job_placed_the_member_on(self, rungs: Rungs, member: Member) -> None:
        grow(member, 600, on=local(2025, 3, 10))

        run_job(date(2025, 3, 10))

        assert tiers_selectors.member_tier(member=member) == rungs.gold


class TestTierDistribution:
    def test_counts_members_per_tier_with_those_never_placed_on_the_base_tier(self, rungs: Rungs) -> None:
        with at(local(2024, 1, 2)):
            people = MemberFactory.create_batch(4)
        for person, growth in zip(people[1:], (150, 600, 700), strict=True):
            grow(person, growth, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))

        distribution = tiers_selectors.tier_distribution()

        assert distribution == [(rungs.base, 1), (rungs.silver, 1), (rungs.gold, 2)]

    def test_leaves_cancelled_members_out(self, rungs: Rungs) -> None:
        with at(local(2024, 1, 2)):
            _staying, leaving = MemberFactory.create_batch(2)
        grow(leaving, 600, on=local(2025, 3, 10))
        run_job(date(2025, 3, 10))
        member_cancel(member=leaving, by=None, reason="asked to leave")

        distribution = tiers_selectors.tier_distribution()

        assert distribution == [(rungs.base, 1), (rungs.silver, 0), (rungs.gold, 0)]
