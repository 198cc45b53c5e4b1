"""Points: lots with an expiry by policy, spending first-expiring-first, claw-backs and their debt, restores,
manual adjustments, the nightly expiry and the list of points about to expire."""

from collections.abc import Iterator
from datetime import date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine

from assets import selectors, services
from assets.models import (
    Account,
    Asset,
    LedgerTransaction,
    LotAllocation,
    LoyaltySettings,
    PointLot,
    PointsExpiryNotice,
)
from members.models import Member, Staff
from members.services import member_freeze
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = LedgerTransaction.Kind


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def key() -> str:
    return uuid4().hex


def earn(
    member: Member, points: int, *, expiry: str | None = None, days: int | None = None, ref: str = ""
) -> LedgerTransaction:
    return services.points_earn(
        member=member, points=points, expiry=expiry, expiry_days=days, external_ref=ref, idempotency_key=key()
    )


def spend(member: Member, points: int, *, idempotency_key: str | None = None) -> LedgerTransaction:
    return services.points_spend(member=member, points=points, idempotency_key=idempotency_key or key())


def claw_back(earning: LedgerTransaction, points: int | None = None) -> LedgerTransaction:
    return services.points_claw_back(earn=earning, points=points, idempotency_key=key())


def restore(spending: LedgerTransaction, points: int | None = None) -> LedgerTransaction:
    return services.points_restore(spend=spending, points=points, idempotency_key=key())


def adjust(member: Member, points: int, *, staff: Staff | None, reason: str = "goodwill") -> LedgerTransaction:
    return services.points_adjust(member=member, points=points, reason=reason, staff=staff, idempotency_key=key())


def expire(day: date) -> tuple[int, int]:
    return services.points_expire_due(business_date=day)


def held(member: Member) -> tuple[int, int]:
    """(points, points debt) on the member's accounts."""
    balances = dict(Account.objects.filter(member=member).values_list("asset", "balance"))
    return balances.get(Asset.POINTS, 0), balances.get(Asset.POINTS_DEBT, 0)


def lot_of(earning: LedgerTransaction) -> PointLot:
    return PointLot.objects.get(earned_by=earning)


def remaining(*earnings: LedgerTransaction) -> list[int]:
    return [lot_of(e).remaining for e in earnings]


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Thursday 5 March 2026, 10:00 in Shanghai; tests move it on."""
    with time_machine.travel(local(2026, 3, 5, 10), tick=False) as traveller:
        yield traveller


class TestPointsExpiry:
    @pytest.mark.parametrize(
        ("earned_at", "expires_at"),
        [
            (local(2026, 3, 5, 10), local(2028, 1, 1)),
            (local(2026, 12, 31, 23, 59), local(2028, 1, 1)),
            (local(2027, 1, 1, 0, 1), local(2029, 1, 1)),  # still 31 December 2026 in UTC
        ],
        ids=["spring", "last-minute-of-the-year", "first-minute-of-the-next"],
    )
    def test_by_default_points_last_to_the_end_of_the_following_year(
        self, member: Member, earned_at: datetime, expires_at: datetime
    ) -> None:
        with time_machine.travel(earned_at, tick=False):
            earning = earn(member, 100)

        assert lot_of(earning).expires_at == expires_at

    @pytest.mark.parametrize(
        ("earned_at", "expires_at"),
        [
            (local(2026, 3, 5, 23, 59), local(2026, 4, 5)),  # the 30th day after 5 March is 4 April
            (local(2026, 3, 6, 0, 1), local(2026, 4, 6)),  # 5 March in UTC, 6 March here
        ],
        ids=["23:59", "00:01"],
    )
    def test_n_days_after_earning_end_at_local_midnight(
        self, member: Member, earned_at: datetime, expires_at: datetime
    ) -> None:
        with time_machine.travel(earned_at, tick=False):
            earning = earn(member, 100, expiry="days", days=30)

        assert lot_of(earning).expires_at == expires_at

    def test_the_configured_policy_applies_when_none_is_given(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        config = services.loyalty_settings()
        config.points_expiry, config.points_expiry_days = "days", 7
        config.save()

        earning = earn(member, 100)

        assert lot_of(earning).expires_at == local(2026, 3, 13)

    def test_points_may_never_expire(self, member: Member, clock: time_machine.Traveller) -> None:
        earning = earn(member, 100, expiry="never")

        assert lot_of(earning).expires_at is None


class TestPointsEarn:
    def test_makes_a_lot_and_credits_the_points(self, member: Member, clock: time_machine.Traveller) -> None:
        earning = earn(member, 120, ref="order-1")

        lot = lot_of(earning)
        assert (lot.original, lot.remaining, lot.earned_at) == (120, 120, local(2026, 3, 5, 10))
        assert (earning.kind, earning.amount, earning.external_ref) == (Kind.POINTS_EARN, 120, "order-1")
        assert held(member) == (120, 0)

    def test_a_retry_with_the_same_key_returns_the_first_earning(self, member: Member) -> None:
        first = services.points_earn(member=member, points=50, idempotency_key="order-1")

        again = services.points_earn(member=member, points=50, idempotency_key="order-1")

        assert again == first and PointLot.objects.filter(member=member).count() == 1
        assert held(member) == (50, 0)

    def test_a_frozen_member_earns_nothing(self, member: Member) -> None:
        member_freeze(member=member, by=None, reason="lost card")

        with pytest.raises(services.MemberFrozen):
            earn(member, 50)

        assert held(member) == (0, 0)


class TestPointsSpend:
    def test_takes_first_expiring_first_and_never_expiring_last(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        never = earn(member, 100, expiry="never")
        next_year = earn(member, 100)
        in_ten_days = earn(member, 100, expiry="days", days=10)
        in_three_days = earn(member, 100, expiry="days", days=3)

        spending = spend(member, 250)

        assert remaining(in_three_days, in_ten_days, next_year, never) == [0, 0, 50, 100]
        taken = sorted(spending.allocations.values_list("lot_id", "kind", "amount"))
        assert taken == sorted(
            [
                (lot_of(in_three_days).pk, "spend", 100),
                (lot_of(in_ten_days).pk, "spend", 100),
                (lot_of(next_year).pk, "spend", 50),
            ]
        )
        assert held(member) == (150, 0)

    def test_takes_lots_expiring_together_in_the_order_they_were_earned(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        first, second = earn(member, 30), earn(member, 30)

        spend(member, 40)

        assert remaining(first, second) == [0, 20]

    def test_touches_each_lot_once_however_much_it_takes(self, member: Member, clock: time_machine.Traveller) -> None:
        earnings = [earn(member, 10, expiry="days", days=d) for d in (5, 4, 3, 2, 1)]

        spending = spend(member, 45)

        assert spending.allocations.count() == 5
        assert remaining(*earnings) == [5, 0, 0, 0, 0]

    def test_more_than_is_available_is_refused(self, member: Member) -> None:
        earn(member, 100)

        with pytest.raises(services.InsufficientPoints) as refused:
            spend(member, 150)

        assert str(refused.value) == "Only 100 points are available, less than 150."
        assert held(member) == (100, 0) and not LotAllocation.objects.exists()

    def test_lots_already_due_cannot_be_spent_even_before_the_expiry_job_ran(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        earn(member, 100, expiry="days", days=1)  # last valid day: Friday 6 March
        clock.move_to(local(2026, 3, 7, 0, 0))

        with pytest.raises(services.InsufficientPoints) as refused:
            spend(member, 1)

        assert refused.value.params == {"available": 0, "wanted": 1}
        assert held(member) == (100, 0)  # the job has not run: the points are still on the account

    def test_a_lot_can_be_spent_until_the_last_minute_of_its_last_day(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        earn(member, 100, expiry="days", days=1)
        clock.move_to(local(2026, 3, 6, 23, 59))

        spend(member, 100)

        assert held(member) == (0, 0)

    def test_a_retry_with_the_same_key_returns_the_first_spending(self, member: Member) -> None:
        earn(member, 100)
        first = spend(member, 60, idempotency_key="order-2")

        again = spend(member, 60, idempotency_key="order-2")

        assert again == first and held(member) == (40, 0)

    def test_a_frozen_member_cannot_spend(self, member: Member) -> None:
        earn(member, 100)
        member_freeze(member=Member.objects.get(pk=member.pk), by=None)

        with pytest.raises(services.MemberFrozen):
            spend(member, 10)


class TestPointsClawBack:
    def test_takes_back_from_the_orders_own_lot(self, member: Member, clock: time_machine.Traveller) -> None:
        refunded = earn(member, 100, expiry="never", ref="order-1")
        kept = earn(member, 50, expiry="days", days=3, ref="order-2")

        back = claw_back(refunded)

        assert remaining(refunded, kept) == [0, 50]
        assert back.details == {"from_lot": 100, "debt": 0, "lapsed": 0}
        assert (back.reverses, back.is_full_reversal, back.external_ref) == (refunded, True, "order-1")
        assert held(member) == (50, 0)

    def test_what_was_spent_of_it_becomes_debt(self, member: Member) -> None:
        earning = earn(member, 100)
        spend(member, 70)

        back = claw_back(earning)

        assert back.details == {"from_lot": 30, "debt": 70, "lapsed": 0}
        assert held(member) == (0, 70)

    def test_the_next_earnings_repay_the_debt_first(self, member: Member) -> None:
        earning = earn(member, 100)
        spend(member, 70)
        claw_back(earning)

        partly = earn(member, 50)
        fully = earn(member, 100)

        assert not PointLot.objects.filter(earned_by=partly).exists()
        assert (partly.details, fully.details) == ({"debt_repaid": 50}, {"debt_repaid": 20})
        assert lot_of(fully).original == 80
        assert held(member) == (80, 0)

    def test_a_points_adjustment_repays_the_debt_first_too(self, member: Member, manager: Staff) -> None:
        earning = earn(member, 100)
        spend(member, 70)
        claw_back(earning)

        adjust(member, 100, staff=manager)

        assert held(member) == (30, 0)

    def test_what_expired_of_it_is_gone_not_debt(self, member: Member, clock: time_machine.Traveller) -> None:
        earning = earn(member, 100, expiry="days", days=1)
        spend(member, 30)
        clock.move_to(local(2026, 3, 7, 1))
        assert expire(date(2026, 3, 6)) == (1, 70)

        back = claw_back(earning)

        assert back.details == {"from_lot": 0, "debt": 30, "lapsed": 70}
        assert held(member) == (0, 30)

    def test_takes_a_due_lot_back_before_the_expiry_job_gets_to_it(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        earning = earn(member, 100, expiry="days", days=1)
        clock.move_to(local(2026, 3, 7, 1))

        back = claw_back(earning)

        assert back.details == {"from_lot": 100, "debt": 0, "lapsed": 0}
        assert expire(date(2026, 3, 6)) == (0, 0)
        assert held(member) == (0, 0)

    def test_an_earning_that_only_repaid_debt_makes_that_debt_again(self, member: Member) -> None:
        first = earn(member, 100)
        spend(member, 100)
        claw_back(first)
        repaying = earn(member, 60)

        claw_back(repaying)

        assert held(member) == (0, 100)

    def test_partial_claw_backs_add_up_to_the_earning(self, member: Member) -> None:
        earning = earn(member, 100)
        spend(member, 70)

        steps = [claw_back(earning, 20), claw_back(earning, 30), claw_back(earning, 50)]

        assert [s.details["from_lot"] for s in steps] == [20, 10, 0]
        assert [s.details["debt"] for s in steps] == [0, 20, 50]
        assert [s.is_full_reversal for s in steps] == [False, False, True]
        assert held(member) == (0, 70)

    def test_never_more_than_was_earned(self, member: Member) -> None:
        earning = earn(member, 100)
        claw_back(earning, 60)

        with pytest.raises(services.RefundExceedsPaid):
            claw_back(earning, 41)

        assert held(member) == (40, 0)

    def test_only_an_earning_can_be_clawed_back(self, member: Member) -> None:
        earn(member, 100)

        with pytest.raises(services.NotReversible):
            claw_back(spend(member, 10))

    def test_partial_claw_backs_after_expiry_make_the_same_debt_as_one(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        earning = earn(member, 100, expiry="days", days=1)
        spend(member, 30)
        clock.move_to(local(2026, 3, 7, 1))
        expire(date(2026, 3, 6))

        claw_back(earning, 50)
        claw_back(earning, 50)

        assert held(member) == (0, 30)

    def test_points_whose_refund_lapsed_are_not_debt(self, member: Member, clock: time_machine.Traveller) -> None:
        earning = earn(member, 100, expiry="days", days=1, ref="order-1")
        spending = spend(member, 100)
        clock.move_to(local(2026, 3, 10, 10))
        expire(date(2026, 3, 9))
        back = restore(spending)
        assert (back.details["restored"], back.details["lapsed"]) == (0, 100)

        claw_back(earning)

        assert held(member) == (0, 0)


class TestPointsRestore:
    @pytest.fixture
    def spent(self, member: Member, clock: time_machine.Traveller) -> tuple[LedgerTransaction, ...]:
        """150 points spent: 100 from a lot expiring on 15 March, 50 from a lot that never expires."""
        soon = earn(member, 100, expiry="days", days=10)
        never = earn(member, 100, expiry="never")
        return soon, never, spend(member, 150)

    def test_gives_the_points_back_to_the_lots_they_came_from(
        self, member: Member, spent: tuple[LedgerTransaction, ...]
    ) -> None:
        soon, never, spending = spent

        back = restore(spending)

        assert remaining(soon, never) == [100, 100]
        assert (back.details["restored"], back.details["lapsed"]) == (150, 0) and back.is_full_reversal
        assert held(member) == (200, 0)

    def test_a_partial_restore_refills_the_latest_expiring_lot_first(
        self, member: Member, spent: tuple[LedgerTransaction, ...]
    ) -> None:
        soon, never, spending = spent

        restore(spending, 60)

        assert remaining(soon, never) == [10, 100]

    def test_partial_restores_add_up_to_the_spending(
        self, member: Member, spent: tuple[LedgerTransaction, ...]
    ) -> None:
        soon, never, spending = spent

        steps = [restore(spending, 60), restore(spending, 60), restore(spending, 30)]

        assert remaining(soon, never) == [100, 100]
        assert [s.is_full_reversal for s in steps] == [False, False, True]
        with pytest.raises(services.RefundExceedsPaid):
            restore(spending, 1)

    def test_only_into_lots_that_are_still_live(
        self, member: Member, spent: tuple[LedgerTransaction, ...], clock: time_machine.Traveller
    ) -> None:
        soon, never, spending = spent
        clock.move_to(local(2026, 3, 16, 9))
        expire(date(2026, 3, 15))

        back = restore(spending)

        assert (back.details["restored"], back.details["lapsed"]) == (50, 100)
        assert remaining(soon, never) == [0, 100]
        assert held(member) == (100, 0)

    def test_nothing_into_a_lot_that_is_due_but_not_yet_expired(
        self, member: Member, spent: tuple[LedgerTransaction, ...], clock: time_machine.Traveller
    ) -> None:
        soon, never, spending = spent
        clock.move_to(local(2026, 3, 16, 0))

        back = restore(spending)

        assert (back.details["restored"], back.details["lapsed"]) == (50, 100)
        assert remaining(soon, never) == [0, 100]

    def test_restoring_a_spending_cancels_the_debt_its_points_made(self, member: Member) -> None:
        earning = earn(member, 100, ref="order-1")
        spending = spend(member, 100)  # order 2, paid with order 1's points
        claw_back(earning)  # order 1 refunded: the 100 spent are owed
        assert held(member) == (0, 100)

        restore(spending)  # order 2 refunded: nothing was spent after all

        assert held(member) == (0, 0)

    def test_only_a_spending_can_be_restored(self, member: Member) -> None:
        with pytest.raises(services.NotReversible):
            restore(earn(member, 10))


class TestPointsAdjust:
    def test_a_manager_adds_points_as_a_lot_under_the_configured_policy(
        self, member: Member, manager: Staff, clock: time_machine.Traveller
    ) -> None:
        added = adjust(member, 80, staff=manager)

        lot = PointLot.objects.get(earned_by=added)
        assert (lot.original, lot.expires_at) == (80, local(2028, 1, 1))
        assert (added.kind, added.amount, added.details, added.staff) == (
            Kind.POINTS_ADJUST,
            80,
            {"delta": 80},
            manager,
        )
        assert held(member) == (80, 0)

    def test_a_manager_takes_points_first_expiring_first(
        self, member: Member, manager: Staff, clock: time_machine.Traveller
    ) -> None:
        later, sooner = earn(member, 100), earn(member, 100, expiry="days", days=2)

        taken = adjust(member, -130, staff=manager)

        assert remaining(sooner, later) == [0, 70]
        assert set(taken.allocations.values_list("kind", flat=True)) == {"adjust"}
        assert held(member) == (70, 0)

    def test_cannot_take_more_than_is_available(self, member: Member, manager: Staff) -> None:
        earn(member, 100)

        with pytest.raises(services.InsufficientPoints):
            adjust(member, -101, staff=manager)

        assert held(member) == (100, 0)

    def test_a_cashier_may_not_adjust(self, member: Member, cashier: Staff) -> None:
        with pytest.raises(services.NotAllowed):
            adjust(member, 10, staff=cashier)

    @pytest.mark.parametrize("reason", ["", "  "])
    def test_needs_a_reason(self, member: Member, manager: Staff, reason: str) -> None:
        with pytest.raises(services.ReasonRequired):
            adjust(member, 10, staff=manager, reason=reason)

        assert held(member) == (0, 0)


class TestPointsExpireDue:
    def test_expires_what_is_left_of_the_lots_due_by_the_end_of_the_day(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        due = earn(member, 100, expiry="days", days=1)  # last valid day 6 March
        tomorrow = earn(member, 100, expiry="days", days=2)
        never = earn(member, 100, expiry="never")
        spend(member, 30)
        clock.move_to(local(2026, 3, 7, 0, 30))

        assert expire(date(2026, 3, 6)) == (1, 70)

        assert remaining(due, tomorrow, never) == [0, 100, 100]
        assert held(member) == (200, 0)
        expiry = LedgerTransaction.objects.get(kind=Kind.POINTS_EXPIRE)
        assert (expiry.member, expiry.amount, expiry.business_date) == (member, 70, date(2026, 3, 6))
        assert lot_of(due).allocations.get(kind="expire").amount == 70

    def test_a_second_run_for_the_day_changes_nothing(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 100, expiry="days", days=1)
        clock.move_to(local(2026, 3, 7, 0, 30))
        expire(date(2026, 3, 6))

        assert expire(date(2026, 3, 6)) == (0, 0)

        assert LedgerTransaction.objects.filter(kind=Kind.POINTS_EXPIRE).count() == 1
        assert held(member) == (0, 0)

    def test_makes_one_transaction_per_member(self, member: Member, clock: time_machine.Traveller) -> None:
        other = MemberFactory.create()
        for who in (member, member, other):
            earn(who, 10, expiry="days", days=1)
        clock.move_to(local(2026, 3, 7, 0, 30))

        assert expire(date(2026, 3, 6)) == (3, 30)

        amounts = LedgerTransaction.objects.filter(kind=Kind.POINTS_EXPIRE).values_list("member_id", "amount")
        assert sorted(amounts) == sorted([(member.pk, 20), (other.pk, 10)])

    def test_works_through_many_lots_in_batches(self, member: Member, clock: time_machine.Traveller) -> None:
        for _ in range(7):
            earn(member, 10, expiry="days", days=1)
        clock.move_to(local(2026, 3, 7, 0, 30))

        assert services.points_expire_due(business_date=date(2026, 3, 6), batch=3) == (7, 70)

        assert held(member) == (0, 0)

    def test_leaves_lots_due_on_a_later_day(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 100, expiry="days", days=1)

        assert expire(date(2026, 3, 5)) == (0, 0)

        assert held(member) == (100, 0)

    def test_lifetime_figures_count_earned_spent_and_expired(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        earning = earn(member, 100, expiry="days", days=1)
        earn(member, 50, expiry="never")
        spending = spend(member, 40)
        restore(spending, 10)
        clock.move_to(local(2026, 3, 7, 0, 30))
        expire(date(2026, 3, 6))
        claw_back(earning)

        summary = selectors.member_points_summary(member=member)

        assert (summary.earned, summary.spent, summary.expired) == (150, 30, 70)
        assert (summary.clawed_back, summary.available, summary.debt) == (100, 50, 30)


class TestPointsExpiringList:
    def test_lists_per_member_what_expires_in_the_next_thirty_days_only(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        earn(member, 1, expiry="days", days=1)  # last valid day 6 March: the expiry job's, not a reminder
        earn(member, 10, expiry="days", days=2)  # 7 March
        earn(member, 20, expiry="days", days=31)  # 5 April, the 30th day after 6 March
        earn(member, 40, expiry="days", days=32)  # 6 April: too far
        earn(member, 80, expiry="never")
        other = MemberFactory.create()
        earn(other, 5, expiry="days", days=5)

        listed = services.points_expiring_list(business_date=date(2026, 3, 6))

        assert listed == (2, 2)
        notices = {n.member_id: n for n in PointsExpiryNotice.objects.filter(business_date=date(2026, 3, 6))}
        assert (notices[member.pk].points, notices[member.pk].first_expires_at) == (30, local(2026, 3, 8))
        assert notices[other.pk].points == 5

    def test_leaves_out_what_is_already_spent(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 10, expiry="days", days=3)
        spend(member, 10)

        assert services.points_expiring_list(business_date=date(2026, 3, 6)) == (0, 0)

    def test_a_rerun_of_the_day_writes_nothing_new(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 10, expiry="days", days=3)
        services.points_expiring_list(business_date=date(2026, 3, 6))
        earn(member, 10, expiry="days", days=3)

        assert services.points_expiring_list(business_date=date(2026, 3, 6)) == (1, 0)

        assert PointsExpiryNotice.objects.get().points == 10


class TestPointsForPaid:
    """The spec's floor rule: paid * rate * multiplier, rounded down once, at the end."""

    @pytest.mark.parametrize(
        ("paid_fen", "per_yuan", "multiplier_percent", "points"),
        [
            (1_299, 1, 100, 12),  # ¥12.99 earns 12: fractions of a yuan earn nothing
            (99, 1, 100, 0),
            (10_000, 1, 100, 100),
            (1_299, 1, 150, 19),  # 1.5 times ¥12.99: floor(19.485), not floor(12.99) * 1.5 = 18
            (1_299, 2, 100, 25),  # 2 per yuan: floor(25.98)
            (1_299, 1, 200, 25),
            (0, 1, 200, 0),
        ],
    )
    def test_rounds_down_once_at_the_end(
        self, paid_fen: int, per_yuan: int, multiplier_percent: int, points: int
    ) -> None:
        assert services.points_for_paid(paid_fen, per_yuan=per_yuan, multiplier_percent=multiplier_percent) == points

    @pytest.mark.django_db
    def test_uses_the_configured_rate(self) -> None:
        LoyaltySettings.objects.update_or_create(pk=1, defaults={"points_per_yuan": 3})

        assert services.points_for_paid(1_050) == 31

    def test_refuses_a_negative_amount(self) -> None:
        with pytest.raises(ValueError):
            services.points_for_paid(-1, per_yuan=1)
