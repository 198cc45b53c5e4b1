"""Concurrency and failure: what many tills at once, two overlapping job runs or a killed connection cannot break.

Each race runs on real PostgreSQL connections, one per thread, released together by a barrier. Each race
also runs once against a deliberately broken implementation through the same harness and the same checks,
to show that the checks would see the bug."""

import contextlib
import importlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from assets import services
from assets.models import (
    Account,
    Asset,
    Coupon,
    CouponTemplate,
    Entry,
    IdempotencyRecord,
    LedgerTransaction,
    LotAllocation,
    LoyaltySettings,
    PointLot,
    SystemAccount,
)
from assets.services import core
from members.models import Member, Staff
from tests.factories import MemberFactory

Kind = LedgerTransaction.Kind
BALANCE = (Asset.PRINCIPAL, Asset.BONUS)
MIGRATED = importlib.import_module("assets.migrations.0003_ledger_invariants")


@pytest.fixture(autouse=True)
def _system_accounts_as_migrated(db: None) -> None:
    # A transactional test flushes the rows the migrations made; put back the system accounts production has,
    # so that no race below depends on which thread happens to create them first.
    for asset, code in MIGRATED.SYSTEM_ACCOUNTS:
        Account.objects.get_or_create(member=None, asset=asset, code=code)
    LoyaltySettings.objects.get_or_create(pk=1)


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


# ------------------------------------------------------------------ the harness


def race(work: Callable[[int], Any], *, jobs: int, threads: int, quick_deadlocks: bool = False) -> list[Any]:
    """Run work(0) … work(jobs - 1) spread over `threads` threads, each on its own connection, all released
    at once; thread t runs the jobs t, t + threads, … in turn. Returns what each job returned or raised."""
    barrier = threading.Barrier(threads)
    outcomes: list[Any] = [NotRun()] * jobs

    def run(first: int) -> None:
        try:
            if quick_deadlocks:
                detect_deadlocks_quickly()
            else:
                connection.ensure_connection()
            barrier.wait(timeout=30)
            for job in range(first, jobs, threads):
                try:
                    outcomes[job] = work(job)
                except Exception as exc:
                    outcomes[job] = exc
        finally:
            connection.close()  # each thread has its own connection; leave none open for the flush

    workers = [threading.Thread(target=run, args=(first,)) for first in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers), "a thread is stuck"
    return outcomes


class NotRun(Exception):
    """The job's thread never got to it (the barrier broke)."""


def detect_deadlocks_quickly() -> None:
    # PostgreSQL looks for a deadlock after waiting deadlock_timeout (1 s by default); a superuser may shorten it
    # for this session, which keeps the deadlock tests fast. Without the right, they are only slower.
    with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SET deadlock_timeout = '20ms'")


def tally(outcomes: Iterable[Any]) -> Counter[str]:
    return Counter(type(o).__name__ if isinstance(o, Exception) else "ok" for o in outcomes)


def is_deadlock(outcome: object) -> bool:
    # Django's OperationalError carries the driver's error as its cause; a bare driver error carries the state
    state = getattr(outcome, "sqlstate", None) or getattr(getattr(outcome, "__cause__", None), "sqlstate", None)
    return isinstance(outcome, Exception) and state == "40P01"


# ------------------------------------------------------------------ ledger helpers


def top_up(member: Member, fen: int, *, staff: Staff, key: str) -> LedgerTransaction:
    return services.balance_top_up(member=member, amount_fen=fen, idempotency_key=key, staff=staff)


def spend(member: Member, fen: int, *, staff: Staff, key: str) -> LedgerTransaction:
    return services.balance_spend(member=member, amount_fen=fen, idempotency_key=key, staff=staff)


def balance_fen(member: Member) -> int:
    return Account.objects.filter(member=member, asset__in=BALANCE).aggregate(s=Sum("balance"))["s"] or 0


def entries_fen(member: Member) -> int:
    return Entry.objects.filter(account__member=member, asset__in=BALANCE).aggregate(s=Sum("amount"))["s"] or 0


def verified() -> bool:
    return services.ledgers_verify().ok


# ------------------------------------------------------------------ balance: many spends against one balance


def spend_race(pay: Callable[[str], object], member: Member) -> dict[str, Any]:
    """400 spends of 1 fen by 16 tills at once, and what the ledger looks like after."""
    outcomes = race(lambda n: pay(f"spend-{n}"), jobs=400, threads=16)

    return {
        "outcomes": tally(outcomes),
        "balance_fen": balance_fen(member),
        "entries_fen": entries_fen(member),
        "verified": verified(),
    }


SPENT_EXACTLY = {
    "outcomes": {"ok": 200, "InsufficientBalance": 200},
    "balance_fen": 0,
    "entries_fen": 0,
    "verified": True,
}


def spend_without_the_row_lock(member: Member, fen: int) -> LedgerTransaction:
    # the bug under test: read the balance without FOR UPDATE, check it, then write from what was read
    with transaction.atomic():
        account = Account.objects.get(member=member, asset=Asset.PRINCIPAL)
        if account.balance < fen:
            raise services.InsufficientBalance(available=account.balance, wanted=fen)
        sales = Account.objects.get(member=None, asset=Asset.PRINCIPAL, code=SystemAccount.SALES)
        tx = LedgerTransaction.objects.create(
            kind=Kind.BALANCE_SPEND, member=member, amount=fen, business_date=timezone.localdate()
        )
        after, seq = account.balance - fen, account.seq + 1
        Entry.objects.bulk_create(
            [
                Entry(
                    transaction=tx, account=account, asset=Asset.PRINCIPAL, amount=-fen, seq=seq, balance_after=after
                ),
                Entry(transaction=tx, account=sales, asset=Asset.PRINCIPAL, amount=fen),
            ]
        )
        Account.objects.filter(pk=account.pk).update(balance=after, seq=seq)
        return tx


@pytest.mark.django_db(transaction=True)
class TestBalanceSpendRace:
    def test_four_hundred_spends_of_a_fen_take_exactly_the_two_hundred_fen_there(
        self, member: Member, cashier: Staff
    ) -> None:
        top_up(member, 200, staff=cashier, key="top-up")

        observed = spend_race(lambda key: spend(member, 1, staff=cashier, key=key), member)

        assert observed == SPENT_EXACTLY

    def test_broken_spend_without_the_row_lock_is_caught(self, member: Member, cashier: Staff) -> None:
        top_up(member, 200, staff=cashier, key="top-up")

        observed = spend_race(lambda _key: spend_without_the_row_lock(member, 1), member)

        assert observed != SPENT_EXACTLY
        assert set(observed["outcomes"]) <= {"ok", "InsufficientBalance", "IntegrityError"}


# ------------------------------------------------------------------ idempotency: one key, many retries at once


def one_key_race(member: Member, staff: Staff) -> dict[str, Any]:
    """16 tills send the same top-up under one key at the same instant."""
    outcomes = race(lambda _n: top_up(member, 500, staff=staff, key="till-7"), jobs=16, threads=16)

    return {
        "outcomes": tally(outcomes),
        "results": len({o.pk for o in outcomes if isinstance(o, LedgerTransaction)}),
        "top_ups": LedgerTransaction.objects.filter(kind=Kind.TOP_UP).count(),
        "balance_fen": balance_fen(member),
    }


EXECUTED_ONCE = {"outcomes": {"ok": 16}, "results": 1, "top_ups": 1, "balance_fen": 500}


def first_answer(scope: str, key: str) -> Any:
    record = IdempotencyRecord.objects.get(scope=scope, key=key)
    return apps.get_model(record.result["model"]).objects.get(pk=record.result["pk"])


def write_once_without_the_claim(
    operation: str, scope: str, key: str, fingerprint: str, body: Callable[[], Any], *_args: object
) -> Any:
    # the bug under test: look for an earlier answer, do the work, and only then record the key
    if IdempotencyRecord.objects.filter(scope=scope, key=key).exists():
        return first_answer(scope, key)
    with transaction.atomic():
        result = body()
    IdempotencyRecord.objects.get_or_create(
        scope=scope,
        key=key,
        defaults={
            "operation": operation,
            "fingerprint": fingerprint,
            "result": {"model": result._meta.label_lower, "pk": result.pk},
        },
    )
    return result


def ledger_rows() -> tuple[int, int, int]:
    return LedgerTransaction.objects.count(), Entry.objects.count(), IdempotencyRecord.objects.count()


@pytest.mark.django_db(transaction=True)
class TestOneKeyRace:
    def test_sixteen_calls_with_one_key_execute_once_and_all_return_that_transaction(
        self, member: Member, cashier: Staff
    ) -> None:
        observed = one_key_race(member, cashier)

        assert observed == EXECUTED_ONCE

    def test_the_key_then_refuses_another_amount_and_writes_nothing(self, member: Member, cashier: Staff) -> None:
        one_key_race(member, cashier)
        before = ledger_rows()

        with pytest.raises(services.IdempotencyConflict):
            top_up(member, 600, staff=cashier, key="till-7")

        assert ledger_rows() == before and balance_fen(member) == 500

    def test_broken_idempotency_without_the_claim_is_caught(
        self, member: Member, cashier: Staff, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(core, "_write_once", write_once_without_the_claim)

        observed = one_key_race(member, cashier)

        assert observed != EXECUTED_ONCE
        assert observed["top_ups"] > 1


# ------------------------------------------------------------------ points expiry: two runs at once


def lots_due(staff: Staff, *, members: int = 20, lots_each: int = 10) -> int:
    """Earn `lots_each` lots of 1 to 9 points for each of `members` members, expiring after a day; interleaved
    across the members, so that every batch of the expiry job touches many of them. Returns the points earned."""
    people = MemberFactory.create_batch(members)
    total = 0
    for n in range(members * lots_each):
        points = 1 + n % 9
        services.points_earn(
            member=people[n % members],
            points=points,
            idempotency_key=f"earn-{n}",
            staff=staff,
            expiry="days",
            expiry_days=1,
        )
        total += points
    return total


def expiry_race(expire: Callable[[], tuple[int, int]], earned: int) -> dict[str, Any]:
    """Two expiry runs at once over every due lot, and what the ledger looks like after."""
    outcomes = race(lambda _n: expire(), jobs=2, threads=2)

    expiries = Counter(
        PointLot.objects.annotate(n=Count("allocations", filter=Q(allocations__kind=LotAllocation.Kind.EXPIRE)))
        .values_list("n", flat=True)
        .iterator()
    )
    return {
        "outcomes": tally(outcomes),
        "points_expired": sum(o[1] for o in outcomes if isinstance(o, tuple)),
        "points_earned": earned,
        "expiries_per_lot": expiries,
        "points_left": Account.objects.filter(member__isnull=False, asset=Asset.POINTS).aggregate(s=Sum("balance"))[
            "s"
        ],
        "verified": verified(),
    }


def expired_once(earned: int) -> dict[str, Any]:
    return {
        "outcomes": {"ok": 2},
        "points_expired": earned,
        "points_earned": earned,
        "expiries_per_lot": {1: 200},
        "points_left": 0,
        "verified": True,
    }


def business_date_after_expiry() -> date:
    return timezone.localdate() + timedelta(days=2)  # lots expire at the midnight after tomorrow


def expire_without_skip_locked_or_guards(business_date: date) -> tuple[int, int]:
    # the bug under test: read what is due, then write each lot's expiry from what was read
    cutoff = services.local_midnight_after(business_date)
    due = list(PointLot.objects.filter(expires_at__lte=cutoff, remaining__gt=0).order_by("pk"))
    expired_account = Account.objects.get(member=None, asset=Asset.POINTS, code=SystemAccount.POINTS_EXPIRED)
    changed = 0
    for start in range(0, len(due), 20):
        with transaction.atomic():
            for lot in due[start : start + 20]:
                tx = LedgerTransaction.objects.create(
                    kind=Kind.POINTS_EXPIRE, member_id=lot.member_id, amount=lot.remaining, business_date=business_date
                )
                LotAllocation.objects.create(
                    lot=lot, transaction=tx, kind=LotAllocation.Kind.EXPIRE, amount=lot.remaining
                )
                PointLot.objects.filter(pk=lot.pk).update(remaining=0)
                account = Account.objects.get(member_id=lot.member_id, asset=Asset.POINTS)
                after, seq = account.balance - lot.remaining, account.seq + 1
                Entry.objects.bulk_create(
                    [
                        Entry(
                            transaction=tx,
                            account=account,
                            asset=Asset.POINTS,
                            amount=-lot.remaining,
                            seq=seq,
                            balance_after=after,
                        ),
                        Entry(transaction=tx, account=expired_account, asset=Asset.POINTS, amount=lot.remaining),
                    ]
                )
                Account.objects.filter(pk=account.pk).update(balance=after, seq=seq)
                changed += lot.remaining
    return len(due), changed


@pytest.mark.django_db(transaction=True)
class TestPointsExpiryRace:
    def test_two_runs_at_once_expire_every_lot_exactly_once(self, cashier: Staff) -> None:
        earned = lots_due(cashier)
        day = business_date_after_expiry()

        observed = expiry_race(lambda: services.points_expire_due(business_date=day, batch=20), earned)

        assert observed == expired_once(earned)

    def test_broken_expiry_without_skip_locked_or_guards_is_caught(self, cashier: Staff) -> None:
        earned = lots_due(cashier)
        day = business_date_after_expiry()

        observed = expiry_race(lambda: expire_without_skip_locked_or_guards(day), earned)

        assert observed != expired_once(earned)
        assert set(observed["outcomes"]) <= {"ok", "IntegrityError", "OperationalError"}


# ------------------------------------------------------------------ coupons: one coupon, one template


def coupon_template(*, stock: int | None = None, per_member_limit: int | None = None) -> CouponTemplate:
    return CouponTemplate.objects.create(
        name="Free coffee",
        kind=CouponTemplate.Kind.GIFT,
        gift_name="Coffee",
        validity=CouponTemplate.Validity.RELATIVE,
        valid_days=30,
        stock=stock,
        per_member_limit=per_member_limit,
    )


def redeem_race(redeem: Callable[[int, int], object], coupon: Coupon) -> dict[str, Any]:
    """Eight tills scan one coupon at once, each under its own key."""
    outcomes = race(lambda n: redeem(coupon.pk, n), jobs=8, threads=8)

    coupon.refresh_from_db()
    return {
        "outcomes": tally(outcomes),
        "reasons": Counter(o.params["reason"] for o in outcomes if isinstance(o, services.CouponNotUsable)),
        "redemptions": LedgerTransaction.objects.filter(kind=Kind.COUPON_REDEEM).count(),
        "status": coupon.status,
        "verified": verified(),
    }


REDEEMED_ONCE = {
    "outcomes": {"ok": 1, "CouponNotUsable": 7},
    "reasons": {"used": 7},
    "redemptions": 1,
    "status": Coupon.Status.USED,
    "verified": True,
}


def redeem_without_the_status_guard(coupon_pk: int, n: int) -> LedgerTransaction:
    # the bug under test: read the status, check it, then write
    with transaction.atomic():
        coupon = Coupon.objects.get(pk=coupon_pk)
        if coupon.status != Coupon.Status.AVAILABLE:
            raise services.CouponNotUsable(reason=coupon.status)
        now = timezone.now()
        tx = LedgerTransaction.objects.create(
            kind=Kind.COUPON_REDEEM,
            member_id=coupon.member_id,
            coupon=coupon,
            amount=1,
            business_date=timezone.localdate(now),
        )
        coupon.status, coupon.redeemed_by, coupon.redeemed_at = Coupon.Status.USED, tx, now
        coupon.save()
        return tx


def issue_race(
    issue: Callable[[int, Member, int], object], template: CouponTemplate, people: list[Member], *, jobs: int
) -> dict[str, Any]:
    """Tills issue `jobs` coupons of one template at once, one thread per member in `people`."""
    outcomes = race(lambda n: issue(template.pk, people[n % len(people)], n), jobs=jobs, threads=len(people))

    template.refresh_from_db()
    return {
        "outcomes": tally(outcomes),
        "issued": template.issued,
        "coupons": Coupon.objects.filter(template=template).count(),
        "verified": verified(),
    }


STOCK_HELD = {"outcomes": {"ok": 100, "CouponOutOfStock": 60}, "issued": 100, "coupons": 100, "verified": True}
LIMIT_HELD = {"outcomes": {"ok": 1, "CouponLimitReached": 7}, "issued": 1, "coupons": 1, "verified": True}


def issue_without_guards(template_pk: int, member: Member, n: int) -> Coupon:
    # the bug under test: read the template's count and the member's coupons, check them, then write
    with transaction.atomic():
        template = CouponTemplate.objects.get(pk=template_pk)
        if template.stock is not None and template.issued >= template.stock:
            raise services.CouponOutOfStock()
        held = Coupon.objects.filter(template=template, member=member).count()
        if template.per_member_limit is not None and held >= template.per_member_limit:
            raise services.CouponLimitReached()
        template.issued += 1
        template.save(update_fields=["issued"])
        now = timezone.now()
        starts, expires = services.coupon_window(template, now)
        coupon = Coupon.objects.create(
            code=services.coupon_code_new(),
            template=template,
            member=member,
            channel=Coupon.Channel.MANUAL,
            issued_at=now,
            starts_at=starts,
            expires_at=expires,
        )
        LedgerTransaction.objects.create(
            kind=Kind.COUPON_ISSUE, member=member, coupon=coupon, business_date=timezone.localdate(now), created_at=now
        )
        return coupon


@pytest.mark.django_db(transaction=True)
class TestCouponRedeemRace:
    @pytest.fixture
    def coupon(self, member: Member, cashier: Staff) -> Coupon:
        return services.coupon_issue(template=coupon_template(), member=member, idempotency_key="issue", staff=cashier)

    def test_eight_tills_scanning_one_coupon_let_exactly_one_use_it(self, coupon: Coupon, cashier: Staff) -> None:
        def redeem(pk: int, n: int) -> LedgerTransaction:
            return services.coupon_redeem(
                coupon=(c := Coupon.objects.get(pk=pk)), member=c.member, idempotency_key=f"redeem-{n}", staff=cashier
            )

        observed = redeem_race(redeem, coupon)

        assert observed == REDEEMED_ONCE

    def test_broken_redeem_without_the_status_guard_is_caught(self, coupon: Coupon) -> None:
        observed = redeem_race(redeem_without_the_status_guard, coupon)

        assert observed != REDEEMED_ONCE
        assert set(observed["outcomes"]) <= {"ok", "CouponNotUsable"}


@pytest.mark.django_db(transaction=True)
class TestCouponIssueRace:
    @staticmethod
    def issue(cashier: Staff) -> Callable[[int, Member, int], Coupon]:
        def issue(pk: int, member: Member, n: int) -> Coupon:
            template = CouponTemplate.objects.get(pk=pk)
            return services.coupon_issue(template=template, member=member, idempotency_key=f"issue-{n}", staff=cashier)

        return issue

    def test_sixteen_tills_issuing_ten_each_stop_at_a_stock_of_a_hundred(self, cashier: Staff) -> None:
        template, people = coupon_template(stock=100), MemberFactory.create_batch(16)

        observed = issue_race(self.issue(cashier), template, people, jobs=160)

        assert observed == STOCK_HELD

    def test_broken_stock_without_the_guarded_update_is_caught(self, cashier: Staff) -> None:
        template, people = coupon_template(stock=100), MemberFactory.create_batch(16)

        observed = issue_race(issue_without_guards, template, people, jobs=160)

        assert observed != STOCK_HELD
        assert set(observed["outcomes"]) <= {"ok", "CouponOutOfStock"}

    def test_eight_tills_issuing_to_one_member_stop_at_a_limit_of_one(self, member: Member, cashier: Staff) -> None:
        template = coupon_template(per_member_limit=1)

        observed = issue_race(self.issue(cashier), template, [member] * 8, jobs=8)

        assert observed == LIMIT_HELD

    def test_broken_member_limit_without_the_guarded_counter_is_caught(self, member: Member) -> None:
        template = coupon_template(per_member_limit=1)

        observed = issue_race(issue_without_guards, template, [member] * 8, jobs=8)

        assert observed != LIMIT_HELD
        assert observed["coupons"] > 1


# ------------------------------------------------------------------ two members locked in opposite orders


def pay_both(first: Member, second: Member, *, staff: Staff, key: str) -> None:
    spend(first, 1, staff=staff, key=f"{key}-{first.pk}")
    spend(second, 1, staff=staff, key=f"{key}-{second.pk}")


@pytest.mark.django_db(transaction=True)
class TestOppositeLockOrders:
    @pytest.fixture
    def pair(self, cashier: Staff) -> tuple[Member, Member]:
        a, b = MemberFactory.create_batch(2)
        top_up(a, 1_000, staff=cashier, key="top-up-a")
        top_up(b, 1_000, staff=cashier, key="top-up-b")
        return a, b

    def test_run_in_transaction_retries_the_deadlocks_so_every_payment_goes_through(
        self, pair: tuple[Member, Member], cashier: Staff
    ) -> None:
        a, b = pair

        def pay(n: int) -> None:
            first, second = (a, b) if n % 2 else (b, a)  # threads alternate: half lock a first, half b first
            services.run_in_transaction(lambda: pay_both(first, second, staff=cashier, key=f"pair-{n}"))

        outcomes = race(pay, jobs=16, threads=8, quick_deadlocks=True)

        assert tally(outcomes) == {"ok": 16}
        assert (balance_fen(a), balance_fen(b)) == (1_000 - 16, 1_000 - 16)
        assert verified()

    def test_broken_opposite_order_locking_without_retry_is_caught(
        self, pair: tuple[Member, Member], cashier: Staff
    ) -> None:
        a, b = pair

        def pay_in_one_atomic_block(round_no: int) -> Callable[[int], None]:
            def pay(n: int) -> None:
                first, second = (a, b) if n % 2 else (b, a)
                with transaction.atomic():  # the bug under test: no retry around the unit
                    pay_both(first, second, staff=cashier, key=f"round-{round_no}-pair-{n}")

            return pay

        deadlocks = 0
        for round_no in range(10):
            outcomes = race(pay_in_one_atomic_block(round_no), jobs=8, threads=8, quick_deadlocks=True)
            deadlocks += sum(is_deadlock(o) for o in outcomes)
            if deadlocks:
                break

        assert deadlocks > 0
        assert verified()


# ------------------------------------------------------------------ a connection killed mid-transaction


def kill_midway_then_retry(member: Member, staff: Staff) -> dict[str, Any]:
    """Hold a top-up at its COMMIT, after its body has written everything, terminate its backend from here,
    then retry the key; and what the ledger looks like after."""
    killed: list[object] = []

    def till() -> None:
        try:
            killed.append(top_up(member, 500, staff=staff, key="till-9"))
        except Exception as exc:
            killed.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=till)
    with transaction.atomic(), connection.cursor() as cursor:
        # The top-up's transaction names this staff member; its deferred foreign-key check takes a KEY SHARE
        # lock on the row at COMMIT, which this FOR UPDATE holds back until the backend is gone.
        cursor.execute("SELECT 1 FROM members_staff WHERE id = %s FOR UPDATE", [staff.pk])
        thread.start()
        held = waiting_on_me(cursor)
        cursor.execute("SELECT pg_terminate_backend(%s)", [held])
    thread.join(timeout=10)
    left_behind = (
        LedgerTransaction.objects.count(),
        Entry.objects.filter(account__member=member).count(),
        IdempotencyRecord.objects.filter(key="till-9").count(),
    )

    try:
        retry: object = top_up(member, 500, staff=staff, key="till-9")
    except Exception as exc:
        retry = exc
    return {
        "killed": tally(killed),
        "left_behind": left_behind,
        "retry": tally([retry]),
        "top_ups": LedgerTransaction.objects.filter(kind=Kind.TOP_UP).count(),
        "balance_fen": balance_fen(member),
        "verified": verified(),
    }


def waiting_on_me(cursor: Any) -> int:
    """The backend blocked by a lock this connection holds (waits up to 10 s for one)."""
    for _poll in range(1_000):
        # pg_locks, not pg_stat_activity: the latter is a snapshot kept until the end of this transaction
        cursor.execute("SELECT pid FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))")
        if row := cursor.fetchone():
            return int(row[0])
        time.sleep(0.01)
    raise AssertionError("nothing came to wait on the lock")


def write_once_claiming_apart(
    operation: str, scope: str, key: str, fingerprint: str, body: Callable[[], Any], *_args: object
) -> Any:
    # the bug under test: the key is claimed and committed before, and apart from, the work
    record, created = IdempotencyRecord.objects.get_or_create(
        scope=scope, key=key, defaults={"operation": operation, "fingerprint": fingerprint}
    )
    if not created:
        return first_answer(scope, key)
    with transaction.atomic():
        result = body()
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            result={"model": result._meta.label_lower, "pk": result.pk}
        )
    return result


KILLED_CLEANLY = {
    "killed": {"OperationalError": 1},
    "left_behind": (0, 0, 0),
    "retry": {"ok": 1},
    "top_ups": 1,
    "balance_fen": 500,
    "verified": True,
}


@pytest.mark.django_db(transaction=True)
class TestAConnectionKilledMidway:
    def test_leaves_nothing_behind_and_the_retry_with_its_key_executes_once(
        self, member: Member, cashier: Staff
    ) -> None:
        observed = kill_midway_then_retry(member, cashier)

        assert observed == KILLED_CLEANLY

    def test_broken_claim_committed_apart_from_the_work_is_caught(
        self, member: Member, cashier: Staff, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(core, "_write_once", write_once_claiming_apart)

        observed = kill_midway_then_retry(member, cashier)

        assert observed != KILLED_CLEANLY
        assert observed["left_behind"] != (0, 0, 0) and observed["retry"] != {"ok": 1}


# ------------------------------------------------------------------ a rolled-back first use of a system account


class RolledBack(Exception):
    pass


@pytest.mark.django_db(transaction=True)
class TestSystemAccountsMadeOnDemand:
    def test_a_rolled_back_first_use_leaves_later_writes_working(self, member: Member, cashier: Staff) -> None:
        Account.objects.filter(member=None).delete()  # as after a flush: the services make them on first use
        with contextlib.suppress(RolledBack), transaction.atomic():  # a deadlock victim, a killed connection…
            top_up(member, 100, staff=cashier, key="rolled-back")
            raise RolledBack

        top_up(member, 100, staff=cashier, key="top-up")

        assert balance_fen(member) == 100


# ------------------------------------------------------------------ what PostgreSQL itself refuses


def change_by_orm_update(row: Entry | LotAllocation) -> None:
    type(row).objects.filter(pk=row.pk).update(amount=F("amount") + 1)


def change_by_orm_delete(row: Entry | LotAllocation) -> None:
    type(row).objects.filter(pk=row.pk).delete()


def change_by_instance_delete(row: Entry | LotAllocation) -> None:
    row.delete()


def change_by_raw_update(row: Entry | LotAllocation) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {row._meta.db_table} SET amount = amount + 1 WHERE id = %s", [row.pk])


def change_by_raw_delete(row: Entry | LotAllocation) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {row._meta.db_table} WHERE id = %s", [row.pk])


CHANGES = [
    change_by_orm_update,
    change_by_orm_delete,
    change_by_instance_delete,
    change_by_raw_update,
    change_by_raw_delete,
]


def one_of_each(member: Member, staff: Staff) -> tuple[Entry, LotAllocation]:
    top_up(member, 1_000, staff=staff, key="top-up")
    services.points_earn(member=member, points=100, idempotency_key="earn", staff=staff)
    services.points_spend(member=member, points=30, idempotency_key="points-spend", staff=staff)
    return Entry.objects.filter(account__member=member).earliest("pk"), LotAllocation.objects.get()


@pytest.mark.django_db
class TestTheDatabaseRefuses:
    @pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__.removeprefix("change_by_"))
    def test_to_change_or_remove_an_entry(
        self, change: Callable[[Entry | LotAllocation], None], member: Member, cashier: Staff
    ) -> None:
        entry, _allocation = one_of_each(member, cashier)

        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change(entry)

        assert Entry.objects.filter(pk=entry.pk).values_list("amount", flat=True).get() == entry.amount

    @pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__.removeprefix("change_by_"))
    def test_to_change_or_remove_a_lot_allocation(
        self, change: Callable[[Entry | LotAllocation], None], member: Member, cashier: Staff
    ) -> None:
        _entry, allocation = one_of_each(member, cashier)

        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change(allocation)

        assert LotAllocation.objects.filter(pk=allocation.pk).values_list("amount", flat=True).get() == 30

    def test_a_member_balance_below_zero(self, member: Member, cashier: Staff) -> None:
        top_up(member, 100, staff=cashier, key="top-up")
        principal = Account.objects.get(member=member, asset=Asset.PRINCIPAL)

        with pytest.raises(IntegrityError, match="account_member_balance_not_negative"), transaction.atomic():
            Account.objects.filter(pk=principal.pk).update(balance=F("balance") - 101)

        principal.refresh_from_db()
        assert principal.balance == 100

    def test_a_second_full_reversal_of_a_transaction(self, member: Member, cashier: Staff) -> None:
        top_up(member, 1_000, staff=cashier, key="top-up")
        payment = spend(member, 300, staff=cashier, key="pay")
        services.balance_refund(spend=payment, idempotency_key="refund", staff=cashier)

        with pytest.raises(IntegrityError, match="ledgertx_fully_reversed_once"), transaction.atomic():
            LedgerTransaction.objects.create(
                kind=Kind.BALANCE_REFUND,
                member=member,
                amount=300,
                reverses=payment,
                is_full_reversal=True,
                business_date=timezone.localdate(),
            )

        assert payment.reversals.count() == 1

    def test_a_second_expiry_of_a_lot(self, member: Member, cashier: Staff) -> None:
        services.points_earn(
            member=member, points=50, idempotency_key="earn", staff=cashier, expiry="days", expiry_days=1
        )
        services.points_expire_due(business_date=business_date_after_expiry())
        expiry = LotAllocation.objects.get(kind=LotAllocation.Kind.EXPIRE)

        with pytest.raises(IntegrityError, match="lotallocation_expire_once"), transaction.atomic():
            LotAllocation.objects.create(
                lot=expiry.lot, transaction=expiry.transaction, kind=LotAllocation.Kind.EXPIRE, amount=50
            )

        assert LotAllocation.objects.filter(lot=expiry.lot, kind=LotAllocation.Kind.EXPIRE).count() == 1


@pytest.mark.django_db(transaction=True)
class TestTheDatabaseRefusesAtCommit:
    def test_a_transaction_whose_entries_do_not_sum_to_zero(self, member: Member) -> None:
        cash = Account.objects.get(member=None, asset=Asset.PRINCIPAL, code=SystemAccount.CASH_RECEIVED)
        inserted: list[Entry] = []

        with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
            tx = LedgerTransaction.objects.create(
                kind=Kind.BALANCE_ADJUST, member=member, amount=100, business_date=timezone.localdate()
            )
            inserted.append(Entry.objects.create(transaction=tx, account=cash, asset=Asset.PRINCIPAL, amount=100))

        assert inserted[0].pk is not None  # the insert itself was accepted: the check runs at COMMIT
        assert (LedgerTransaction.objects.count(), Entry.objects.count()) == (0, 0)
