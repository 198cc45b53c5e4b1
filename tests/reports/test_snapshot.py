"""The nightly snapshot (reports.services.snapshot_build) through every way it is started, and the dashboard
that reads it."""

import re
from datetime import UTC, date, datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from members.roles import Role
from reports.models import DailySnapshot, JobRun
from reports.services import job_execute
from reports.tasks import run_job_task
from tests.conftest import client_for, make_staff
from tests.factories import MemberFactory, StoreFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 10)


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def snapshot_figures(day: date = DAY) -> dict[str | None, tuple[int, int]]:
    """{store code, or None for all stores: (members_total, members_new)}"""
    return {
        s.store.code if s.store else None: (s.members_total, s.members_new)
        for s in DailySnapshot.objects.filter(business_date=day).select_related("store")
    }


def kpi(response, name: str) -> str:
    match = re.search(rf'data-kpi="{name}".*?class="kpi-value">([^<]*)<', response.content.decode(), re.DOTALL)
    assert match, f"no {name} tile"
    return match.group(1).strip()


@pytest.fixture
def members_around_the_day(store, other_store):
    """Members registered at instants around 2026-03-10 in Shanghai (UTC+8), where a UTC day would differ."""
    far = StoreFactory(code="SH-03")
    for registered_at, registered_store in [
        (shanghai(2026, 3, 1, 10, 0), store),  # before the day: total only
        (shanghai(2026, 3, 9, 23, 59, 59), store),  # last second of the day before: total only
        (shanghai(2026, 3, 10, 0, 0), store),  # first instant of the day: new
        (datetime(2026, 3, 9, 16, 30, tzinfo=UTC), store),  # 00:30 in Shanghai (still the 9th in UTC): new
        (shanghai(2026, 3, 10, 23, 59), other_store),  # last minute of the day: new
        (shanghai(2026, 3, 10, 12, 0), None),  # no store: only in the all-stores row
        (shanghai(2026, 3, 11, 0, 0), store),  # the next day: not counted
        (datetime(2026, 3, 10, 16, 30, tzinfo=UTC), other_store),  # 00:30 on the 11th in Shanghai: not counted
        (shanghai(2026, 3, 12, 9, 0), far),  # a store with no members yet on the day: no row
    ]:
        MemberFactory(registered_at=registered_at, registered_store=registered_store)


@pytest.mark.django_db
class TestSnapshotBuild:
    def test_counts_members_per_store_and_for_all_stores_at_the_end_of_the_business_day(self, members_around_the_day):
        run, ran = job_execute("snapshot_daily", business_date=DAY)

        assert ran is True
        assert snapshot_figures() == {"SH-01": (4, 2), "SH-02": (1, 1), None: (6, 4)}
        assert (run.status, run.rows_examined, run.rows_changed) == ("succeeded", 6, 3)
        assert set(DailySnapshot.objects.values_list("job_run", flat=True)) == {run.pk}

    def test_writes_an_all_stores_row_of_zeros_when_there_are_no_members(self):
        run, _ = job_execute("snapshot_daily", business_date=DAY)

        assert snapshot_figures() == {None: (0, 0)}
        assert (run.status, run.rows_examined, run.rows_changed) == ("succeeded", 0, 1)

    def test_counts_members_registered_on_earlier_days_as_new_only_on_their_day(self, store):
        MemberFactory(registered_at=shanghai(2026, 3, 9, 8, 0), registered_store=store)
        MemberFactory(registered_at=shanghai(2026, 3, 10, 8, 0), registered_store=store)

        job_execute("snapshot_daily", business_date=date(2026, 3, 9))
        job_execute("snapshot_daily", business_date=DAY)

        assert snapshot_figures(date(2026, 3, 9)) == {"SH-01": (1, 1), None: (1, 1)}
        assert snapshot_figures(DAY) == {"SH-01": (2, 1), None: (2, 1)}


@pytest.mark.django_db
class TestRunJobCommand:
    def test_builds_the_snapshot_for_the_given_date(self, store):
        MemberFactory(registered_at=shanghai(2026, 3, 10, 9, 0), registered_store=store)
        out = StringIO()

        call_command("run_job", "snapshot_daily", "--date", "2026-03-10", stdout=out)

        assert "snapshot_daily 2026-03-10: succeeded, examined 1, changed 2" in out.getvalue()
        run = JobRun.objects.get()
        assert (run.job, run.business_date, run.trigger) == ("snapshot_daily", DAY, "command")
        assert snapshot_figures() == {"SH-01": (1, 1), None: (1, 1)}

    def test_second_run_says_already_done_and_changes_nothing(self, store):
        MemberFactory(registered_at=shanghai(2026, 3, 10, 9, 0), registered_store=store)
        call_command("run_job", "snapshot_daily", "--date", "2026-03-10", stdout=StringIO())
        runs = list(JobRun.objects.values())
        snapshots = list(DailySnapshot.objects.order_by("pk").values())
        MemberFactory(registered_at=shanghai(2026, 3, 10, 10, 0), registered_store=store)  # late data is not picked up
        out = StringIO()

        call_command("run_job", "snapshot_daily", "--date", "2026-03-10", stdout=out)

        assert "snapshot_daily 2026-03-10: already done" in out.getvalue()
        assert "nothing changed" in out.getvalue()
        assert list(JobRun.objects.values()) == runs
        assert list(DailySnapshot.objects.order_by("pk").values()) == snapshots


@pytest.mark.django_db
class TestRunJobTask:
    def test_builds_the_snapshot_for_the_given_date(self, store):
        MemberFactory(registered_at=shanghai(2026, 3, 10, 9, 0), registered_store=store)

        result = run_job_task.delay(job="snapshot_daily", business_date="2026-03-10").get(timeout=10)

        run = JobRun.objects.get()
        assert result == {"job": "snapshot_daily", "business_date": "2026-03-10", "ran": True, "run_id": run.pk}
        assert (run.status, run.trigger) == ("succeeded", "schedule")
        assert snapshot_figures() == {"SH-01": (1, 1), None: (1, 1)}

    def test_reports_an_already_done_date_without_running_it(self, store):
        first = run_job_task(job="snapshot_daily", business_date="2026-03-10")

        again = run_job_task(job="snapshot_daily", business_date="2026-03-10")

        assert again == {**first, "ran": False}
        assert JobRun.objects.count() == 1

    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (datetime(2026, 3, 10, 17, 0, tzinfo=UTC), date(2026, 3, 10)),  # 01:00 on the 11th in Shanghai
            (datetime(2026, 3, 10, 16, 0, tzinfo=UTC), date(2026, 3, 10)),  # midnight in Shanghai
            (datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC), date(2026, 3, 9)),  # 23:59:59 on the 10th in Shanghai
        ],
    )
    def test_processes_yesterday_in_the_merchants_time_zone_without_a_date(self, store, now, expected):
        MemberFactory(registered_at=shanghai(2026, 3, 9, 12, 0), registered_store=store)

        with time_machine.travel(now, tick=False):
            result = run_job_task(job="snapshot_daily")

        assert result["business_date"] == expected.isoformat() and result["ran"] is True
        assert JobRun.objects.get().business_date == expected
        assert snapshot_figures(expected)[None] == (1, 1 if expected == date(2026, 3, 9) else 0)


@pytest.mark.django_db
class TestDashboard:
    @pytest.fixture
    def snapshot_of_three(self, store, other_store):
        for registered_at, registered_store in [
            (shanghai(2026, 3, 1, 9, 0), store),
            (shanghai(2026, 3, 10, 9, 0), store),
            (shanghai(2026, 3, 10, 23, 59), other_store),
        ]:
            MemberFactory(registered_at=registered_at, registered_store=registered_store)
        job_execute("snapshot_daily", business_date=DAY)

    def test_shows_the_latest_snapshot_plus_members_registered_since(self, owner_client, store, snapshot_of_three):
        MemberFactory(registered_at=shanghai(2026, 3, 11, 0, 0), registered_store=store)  # after the cutoff
        MemberFactory(registered_store=store)  # registered now
        # registered before the cutoff but entered after the snapshot ran: the snapshot is the figure of record
        MemberFactory(registered_at=shanghai(2026, 3, 5, 9, 0), registered_store=store)

        response = owner_client.get(reverse("reports:dashboard"))

        assert response.status_code == 200
        assert kpi(response, "members") == "5"
        assert "latest 2026-03-10" in response.content.decode()

    def test_shows_a_cashier_the_snapshot_of_their_store(self, store, snapshot_of_three):
        MemberFactory(registered_store=store)
        cashier_client = client_for(make_staff(Role.CASHIER, store=store))

        response = cashier_client.get(reverse("reports:dashboard"))

        assert kpi(response, "members") == "3"  # 2 in SH-01's snapshot row + 1 since; SH-02's member is not theirs

    def test_counts_live_without_a_snapshot(self, owner_client, store):
        MemberFactory.create_batch(3, registered_store=store)

        response = owner_client.get(reverse("reports:dashboard"))

        assert kpi(response, "members") == "3"

    def test_uses_a_bounded_number_of_queries(
        self, owner_client, store, snapshot_of_three, django_assert_max_num_queries
    ):
        MemberFactory.create_batch(20, registered_store=store)
        for day in range(1, 10):
            job_execute("snapshot_daily", business_date=date(2026, 3, day))

        with django_assert_max_num_queries(14):  # session, user, staff, groups, 7 figures, stores, session save
            response = owner_client.get(reverse("reports:dashboard"))

        assert kpi(response, "members") == "23"
