"""Points under random sequences of earning, spending, claw-backs, restores, passing days and expiry runs,
checked after every step against a plain-Python model of the member's lots and debt, and against
ledgers_verify(). Every service commits (transaction=True), so PostgreSQL's checks deferred to COMMIT run on
every step too; every example gets a member of its own and starts on the same morning."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from assets import services
from assets.models import Account, Asset, LedgerTransaction, PointLot
from members.models import Member
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI)
POLICIES = {  # name: (expiry, expiry_days)
    "1 day": ("days", 1),
    "2 days": ("days", 2),
    "3 days": ("days", 3),
    "end of next year": ("end_of_next_year", None),
    "never": ("never", None),
}


def key() -> str:
    return uuid4().hex


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)


def expected_expiry(policy: str, earned_at: datetime) -> datetime | None:
    earned_on = earned_at.astimezone(SHANGHAI).date()
    expiry, days = POLICIES[policy]
    if expiry == "never":
        return None
    if expiry == "days":
        assert days is not None
        return midnight_after(earned_on + timedelta(days=days))
    return midnight_after(date(earned_on.year + 1, 12, 31))


@dataclass
class Lot:
    pk: int
    remaining: int
    expires_at: datetime | None
    expired: int = 0  # taken by the expiry job
    lapsed: int = 0  # given back by a restore after the lot had expired, so not given back at all

    def live_at(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class Earning:
    tx: LedgerTransaction
    lot: Lot | None  # None when the whole earning repaid debt
    clawed_back: bool = False


@dataclass
class Spending:
    tx: LedgerTransaction
    taken: list[tuple[Lot, int]] = field(default_factory=list)
    restored: bool = False


class PointsLedger(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.member: Member = MemberFactory.create()
        self.travel = time_machine.travel(START, tick=False)
        self.clock = self.travel.start()
        self.now = START
        self.lots: list[Lot] = []
        self.earnings: list[Earning] = []
        self.spendings: list[Spending] = []
        self.debt = 0

    def teardown(self) -> None:
        self.travel.stop()

    # ---------------------------------------------------------------- rules

    @rule(points=st.integers(1, 200), policy=st.sampled_from(sorted(POLICIES)))
    def earn(self, points: int, policy: str) -> None:
        expiry, days = POLICIES[policy]

        tx = services.points_earn(
            member=self.member, points=points, expiry=expiry, expiry_days=days, idempotency_key=key()
        )

        repaid = min(points, self.debt)
        self.debt -= repaid
        lot = None
        if points > repaid:
            made = PointLot.objects.get(earned_by=tx)
            lot = Lot(pk=made.pk, remaining=points - repaid, expires_at=expected_expiry(policy, self.now))
            self.lots.append(lot)
        else:
            assert not PointLot.objects.filter(earned_by=tx).exists()
        self.earnings.append(Earning(tx=tx, lot=lot))

    @rule(points=st.integers(1, 120))
    def spend(self, points: int) -> None:
        live = sorted(
            (lot for lot in self.lots if lot.remaining > 0 and lot.live_at(self.now)),
            key=lambda lot: (lot.expires_at is None, lot.expires_at or START, lot.pk),
        )
        available = sum(lot.remaining for lot in live)
        if points > available:
            with pytest.raises(services.InsufficientPoints) as refused:
                services.points_spend(member=self.member, points=points, idempotency_key=key())
            assert refused.value.params == {"available": available, "wanted": points}
            return

        tx = services.points_spend(member=self.member, points=points, idempotency_key=key())

        spending, left = Spending(tx=tx), points
        for lot in live:
            take = min(left, lot.remaining)
            lot.remaining -= take
            spending.taken.append((lot, take))
            left -= take
            if not left:
                break
        self.spendings.append(spending)
        assert sorted(tx.allocations.values_list("lot_id", "amount")) == sorted(
            (lot.pk, take) for lot, take in spending.taken
        )

    def claw_back_candidates(self) -> list[Earning]:
        return [e for e in self.earnings if not e.clawed_back]

    @precondition(lambda self: self.claw_back_candidates())
    @rule(data=st.data())
    def claw_back(self, data: st.DataObject) -> None:
        earning = data.draw(st.sampled_from(self.claw_back_candidates()), label="earning")

        back = services.points_claw_back(earn=earning.tx, idempotency_key=key())

        lot, taken, gone = earning.lot, 0, 0
        if lot is not None:
            taken, gone = lot.remaining, lot.expired + lot.lapsed  # what the member no longer has nor used
            lot.remaining = 0
        debt = max(0, earning.tx.amount - taken - gone)  # the rest was spent (or repaid debt): owed again
        self.debt += debt
        earning.clawed_back = True
        assert (back.details["from_lot"], back.details["debt"]) == (taken, debt)

    @precondition(lambda self: any(not s.restored for s in self.spendings))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        spending = data.draw(st.sampled_from([s for s in self.spendings if not s.restored]), label="spending")

        back = services.points_restore(spend=spending.tx, idempotency_key=key())

        live = [(lot, amount) for lot, amount in spending.taken if lot.live_at(self.now)]
        for lot, amount in spending.taken:
            if not lot.live_at(self.now):
                lot.lapsed += amount  # given back too late: those points are gone
        restored = sum(amount for _lot, amount in live)
        repaid = min(restored, self.debt)  # restored points repay a debt first, like an earning
        self.debt -= repaid
        to_give = restored - repaid
        # what is left goes back latest-expiring first (never-expiring first of all)
        live.sort(
            key=lambda pair: (
                pair[0].expires_at is not None,
                -(pair[0].expires_at or self.now).timestamp(),
                -pair[0].pk,
            )
        )
        for lot, amount in live:
            give = min(amount, to_give)
            lot.remaining += give
            to_give -= give
        spending.restored = True
        assert (back.details["restored"], back.details["lapsed"]) == (restored, spending.tx.amount - restored)

    @rule(days=st.integers(0, 3))
    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)
        self.clock.shift(timedelta(days=days))

    @rule()
    def expire(self) -> None:
        """The nightly job for yesterday, run twice: the second run finds nothing to do."""
        business_date = timezone.localdate() - timedelta(days=1)
        cutoff = midnight_after(business_date)
        due = [lot for lot in self.lots if lot.remaining and lot.expires_at is not None and lot.expires_at <= cutoff]
        last = LedgerTransaction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

        first = services.points_expire_due(business_date=business_date)
        second = services.points_expire_due(business_date=business_date)

        expired = LedgerTransaction.objects.filter(
            member=self.member, kind=LedgerTransaction.Kind.POINTS_EXPIRE, pk__gt=last
        ).values_list("amount", "business_date")
        expected = sum(lot.remaining for lot in due)
        assert list(expired) == ([(expected, business_date)] if due else [])
        assert first[0] >= len(due) and first[1] >= expected  # other examples' members may have lots due too
        assert second == (0, 0)
        for lot in due:
            lot.expired += lot.remaining
            lot.remaining = 0

    # ---------------------------------------------------------------- invariants

    @invariant()
    def the_points_balance_is_what_the_lots_hold(self) -> None:
        balances = dict(Account.objects.filter(member=self.member).values_list("asset", "balance"))
        assert balances.get(Asset.POINTS, 0) == sum(lot.remaining for lot in self.lots)

    @invariant()
    def the_lots_are_the_models_lots(self) -> None:
        stored = {
            pk: (remaining, expires_at)
            for pk, remaining, expires_at in PointLot.objects.filter(member=self.member).values_list(
                "pk", "remaining", "expires_at"
            )
        }
        assert stored == {lot.pk: (lot.remaining, lot.expires_at) for lot in self.lots}

    @invariant()
    def the_debt_is_the_models_debt(self) -> None:
        balances = dict(Account.objects.filter(member=self.member).values_list("asset", "balance"))
        assert balances.get(Asset.POINTS_DEBT, 0) == self.debt

    @invariant()
    def the_ledgers_verify(self) -> None:
        report = services.ledgers_verify()
        assert report.ok, report.text()


@pytest.mark.django_db(transaction=True)
def test_points_ledger_agrees_with_its_model() -> None:
    run_state_machine_as_test(
        PointsLedger,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
