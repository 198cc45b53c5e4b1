"""The ledgers' nightly jobs as the scheduler runs them, through reports.services.job_execute: one run per business
date (a second is "already done"), counts recorded, and a failed verification failing its run with the report."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from assets import services
from assets.models import (
    Account,
    Asset,
    Coupon,
    CouponTemplate,
    IdempotencyRecord,
    LedgerTransaction,
    PointsExpiryNotice,
)
from members.models import Member, Store
from reports import services as reports_services
from reports.models import JobRun
from reports.services import BusinessDayNotClosed
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = LedgerTransaction.Kind
FRIDAY = date(2026, 3, 6)


def job_execute(job: str, **kwargs: Any) -> tuple[JobRun, bool]:
    """reports.services.job_execute, whose run is always there once the date has a row."""
    run, ran = reports_services.job_execute(job, **kwargs)
    assert run is not None
    return run, ran


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def key() -> str:
    return uuid4().hex


def earn(member: Member, points: int, days: int) -> LedgerTransaction:
    return services.points_earn(member=member, points=points, expiry="days", expiry_days=days, idempotency_key=key())


def points(member: Member) -> int:
    return Account.objects.get(member=member, asset=Asset.POINTS).balance


def issue_coupon(member: Member, valid_days: int) -> Coupon:
    template = CouponTemplate.objects.create(
        name=f"{valid_days}-day coupon", kind="gift", gift_name="Tea", validity="relative", valid_days=valid_days
    )
    return services.coupon_issue(template=template, member=member, idempotency_key=key())


def damage_balance(member: Member, fen: int) -> None:
    """Move a cached balance behind the ledger's back, as a stray UPDATE would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE assets_account SET balance = balance + %s WHERE member_id = %s AND asset = 'principal'",
            [fen, member.pk],
        )


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Thursday 5 March 2026, 10:00 in Shanghai; tests move it on to the night the jobs run."""
    with time_machine.travel(local(2026, 3, 5, 10), tick=False) as traveller:
        yield traveller


@pytest.mark.django_db
class TestPointsExpireJob:
    def test_expires_the_lots_due_and_records_what_it_did(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 100, days=1)  # last valid day: Friday
        earn(member, 50, days=1)
        earn(member, 30, days=2)
        clock.move_to(local(2026, 3, 7, 0, 5))

        run, ran = job_execute("points_expire", business_date=FRIDAY)

        assert ran is True
        run.refresh_from_db()
        assert (run.status, run.rows_examined, run.rows_changed) == ("succeeded", 2, 150)
        assert points(member) == 30

    def test_a_second_run_for_the_date_is_already_done(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 100, days=1)
        clock.move_to(local(2026, 3, 7, 0, 5))
        first, _ran = job_execute("points_expire", business_date=FRIDAY)

        again, ran = job_execute("points_expire", business_date=FRIDAY, trigger=JobRun.Trigger.MANUAL)

        assert (ran, again.pk) == (False, first.pk)
        assert JobRun.objects.filter(job="points_expire").count() == 1
        assert LedgerTransaction.objects.filter(kind=Kind.POINTS_EXPIRE).count() == 1

    def test_each_date_runs_once_on_its_own(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 100, days=1)
        earn(member, 30, days=2)
        clock.move_to(local(2026, 3, 8, 0, 5))

        friday, _ran = job_execute("points_expire", business_date=FRIDAY)
        saturday, ran = job_execute("points_expire", business_date=date(2026, 3, 7))

        assert ran is True and friday.pk != saturday.pk
        assert (saturday.rows_examined, saturday.rows_changed) == (1, 30)
        assert points(member) == 0

    def test_a_day_that_has_not_ended_cannot_run(self, member: Member, clock: time_machine.Traveller) -> None:
        with pytest.raises(BusinessDayNotClosed):
            job_execute("points_expire", business_date=date(2026, 3, 5))

        assert not JobRun.objects.exists()


@pytest.mark.django_db
class TestPointsExpiringJob:
    def test_lists_the_members_with_points_expiring_within_thirty_days(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        earn(member, 100, days=10)
        earn(MemberFactory.create(), 40, days=60)
        clock.move_to(local(2026, 3, 7, 0, 5))

        run, ran = job_execute("points_expiring", business_date=FRIDAY)

        assert ran is True
        assert (run.rows_examined, run.rows_changed) == (1, 1)
        assert PointsExpiryNotice.objects.get(business_date=FRIDAY).member == member

    def test_a_second_run_for_the_date_is_already_done(self, member: Member, clock: time_machine.Traveller) -> None:
        earn(member, 100, days=10)
        clock.move_to(local(2026, 3, 7, 0, 5))
        job_execute("points_expiring", business_date=FRIDAY)

        _run, ran = job_execute("points_expiring", business_date=FRIDAY)

        assert ran is False and PointsExpiryNotice.objects.count() == 1


@pytest.mark.django_db
class TestCouponsExpireJob:
    def test_expires_the_coupons_whose_last_day_has_ended(self, member: Member, clock: time_machine.Traveller) -> None:
        ended, running = issue_coupon(member, valid_days=2), issue_coupon(member, valid_days=3)
        clock.move_to(local(2026, 3, 7, 0, 5))

        run, ran = job_execute("coupons_expire", business_date=FRIDAY)

        assert ran is True and (run.rows_examined, run.rows_changed) == (1, 1)
        ended.refresh_from_db()
        running.refresh_from_db()
        assert (ended.status, running.status) == ("expired", "available")

    def test_a_second_run_for_the_date_is_already_done(self, member: Member, clock: time_machine.Traveller) -> None:
        issue_coupon(member, valid_days=2)
        clock.move_to(local(2026, 3, 7, 0, 5))
        job_execute("coupons_expire", business_date=FRIDAY)

        _run, ran = job_execute("coupons_expire", business_date=FRIDAY)

        assert ran is False
        assert LedgerTransaction.objects.filter(kind=Kind.COUPON_EXPIRE).count() == 1


@pytest.mark.django_db
class TestIdempotencyPurgeJob:
    @pytest.mark.parametrize(("days_after", "forgotten"), [(29, False), (30, True)])
    def test_forgets_request_keys_thirty_days_after_their_day(
        self, member: Member, days_after: int, forgotten: bool
    ) -> None:
        services.balance_top_up(member=member, amount_fen=100, idempotency_key="pos-1")
        claimed = IdempotencyRecord.objects.get(key="pos-1").created_at  # the database's clock
        day = timezone.localdate(claimed) + timedelta(days=days_after)

        with time_machine.travel(claimed + timedelta(days=days_after + 2), tick=False):
            run, ran = job_execute("idempotency_purge", business_date=day)

        assert (ran, run.rows_changed) == (True, int(forgotten))
        assert IdempotencyRecord.objects.filter(key="pos-1").exists() is not forgotten

    def test_forgets_the_pos_apis_stored_answers_with_them(self, member: Member, store: Store) -> None:
        from members.models import ApiRequest
        from members.terminals import terminal_create

        terminal, _key = terminal_create(store=store, name="Till 1", by=None)
        old = ApiRequest.objects.create(
            terminal=terminal, key="k-old", fingerprint="f", status_code=201, response_body={}
        )
        ApiRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
        ApiRequest.objects.create(terminal=terminal, key="k-new", fingerprint="f", status_code=201, response_body={})

        services.idempotency_purge(business_date=timezone.localdate())

        assert list(ApiRequest.objects.values_list("key", flat=True)) == ["k-new"]


@pytest.mark.django_db
class TestLedgersVerifyJob:
    @pytest.fixture
    def ledger(self, member: Member, clock: time_machine.Traveller) -> Member:
        services.balance_top_up(member=member, amount_fen=10_000, idempotency_key=key())
        services.balance_spend(member=member, amount_fen=1_001, idempotency_key=key())
        earn(member, 100, days=1)
        issue_coupon(member, valid_days=2)
        clock.move_to(local(2026, 3, 7, 0, 5))
        return member

    def test_a_clean_ledger_succeeds_counting_what_it_checked(self, ledger: Member) -> None:
        run, ran = job_execute("ledgers_verify", business_date=FRIDAY)

        assert ran is True
        run.refresh_from_db()
        checked = len(Asset.values) + LedgerTransaction.objects.count() + 1 + 1  # accounts, transactions, lot, coupon
        assert (run.status, run.rows_examined, run.rows_changed) == ("succeeded", checked, 0)

    def test_a_broken_invariant_fails_the_run_with_the_report(self, ledger: Member) -> None:
        damage_balance(ledger, +1)

        with pytest.raises(services.LedgersBroken) as broken:
            job_execute("ledgers_verify", business_date=FRIDAY)

        run = JobRun.objects.get(job="ledgers_verify", business_date=FRIDAY)
        assert run.status == JobRun.Status.FAILED
        assert "1 invariant(s) broken:" in str(broken.value)
        assert "member account balance = sum of its entries" in run.error
        assert f"(member {ledger.pk}, principal): balance 9000" in run.error

    def test_a_failed_date_runs_again_once_repaired(self, ledger: Member) -> None:
        damage_balance(ledger, +1)
        with pytest.raises(services.LedgersBroken):
            job_execute("ledgers_verify", business_date=FRIDAY)
        damage_balance(ledger, -1)

        run, ran = job_execute("ledgers_verify", business_date=FRIDAY)

        assert ran is True
        run.refresh_from_db()
        assert (run.status, run.attempts, run.error) == ("succeeded", 2, "")

    def test_a_second_run_for_the_date_is_already_done(self, ledger: Member) -> None:
        first, _ran = job_execute("ledgers_verify", business_date=FRIDAY)
        damage_balance(ledger, +1)

        again, ran = job_execute("ledgers_verify", business_date=FRIDAY)

        assert (ran, again.pk) == (False, first.pk)
