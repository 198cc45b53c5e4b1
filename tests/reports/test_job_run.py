"""reports.services.job_run and job_execute: one run per (job, business date), failures recorded and retried."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from django.db import connection, connections

from reports import jobs, services
from reports.models import JobRun
from reports.services import JobAlreadyDone, UnknownJob, job_execute, job_run

DAY = date(2026, 3, 10)
HERE = __name__  # the jobs below are registered by dotted path, as the real ones are


# ------------------------------------------------------------------ jobs registered by the tests


class Calls:
    """What the test jobs saw; reset before every test."""

    dates: list[date] = []
    cursors: list[dict] = []
    advisory_locks: list[int] = []
    fail = False
    entered = threading.Event()
    release = threading.Event()

    @classmethod
    def reset(cls) -> None:
        cls.dates, cls.cursors, cls.advisory_locks, cls.fail = [], [], [], False
        cls.entered, cls.release = threading.Event(), threading.Event()


def _advisory_locks_held() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return cursor.fetchone()[0]


def counting_job(*, business_date: date, run: JobRun) -> tuple[int, int]:
    Calls.dates.append(business_date)
    Calls.cursors.append(dict(run.cursor))
    Calls.advisory_locks.append(_advisory_locks_held())
    return 10, 3


def resumable_job(*, business_date: date, run: JobRun) -> tuple[int, int]:
    """Saves its cursor after a first batch, as a batch job does, then fails while Calls.fail is set."""
    Calls.dates.append(business_date)
    Calls.cursors.append(dict(run.cursor))
    run.cursor = {"last_pk": 500}
    run.save(update_fields=["cursor"])
    if Calls.fail:
        raise RuntimeError("batch 2 exploded")
    return 1_000, 1_000


def held_job(*, business_date: date, run: JobRun) -> tuple[int, int]:
    """Stays in its body, holding the advisory lock, until the test lets it go."""
    Calls.dates.append(business_date)
    if Calls.entered.is_set():  # a second run got in: return at once so the test fails fast, not by timeout
        return 1, 1
    Calls.entered.set()
    assert Calls.release.wait(timeout=20), "the test never released the job"
    return 1, 1


@pytest.fixture(autouse=True)
def registered_test_jobs(monkeypatch):
    Calls.reset()
    assert services.JOBS is jobs.JOBS  # services imported the registry itself, so one setitem serves both
    for name in ("counting", "resumable", "held"):
        monkeypatch.setitem(jobs.JOBS, f"test_{name}", f"{HERE}.{name}_job")
    monkeypatch.setitem(jobs.JOBS, "test_other", f"{HERE}.counting_job")
    yield
    Calls.release.set()  # never leave a thread waiting


# ------------------------------------------------------------------ tests


@pytest.mark.django_db
class TestJobExecute:
    def test_runs_the_job_once_and_records_the_run(self):
        run, ran = job_execute("test_counting", business_date=DAY)

        assert ran is True
        assert Calls.dates == [DAY]
        run.refresh_from_db()
        assert (run.job, run.business_date, run.status, run.trigger) == ("test_counting", DAY, "succeeded", "schedule")
        assert (run.rows_examined, run.rows_changed, run.attempts, run.error) == (10, 3, 1, "")
        assert run.finished_at is not None and run.finished_at >= run.started_at

    def test_rerun_of_a_finished_date_changes_nothing(self):
        first, _ = job_execute("test_counting", business_date=DAY)
        before = JobRun.objects.values().get(pk=first.pk)

        again, ran = job_execute("test_counting", business_date=DAY, trigger=JobRun.Trigger.MANUAL)

        assert ran is False and again.pk == first.pk
        assert Calls.dates == [DAY]  # the body was not called a second time
        assert JobRun.objects.count() == 1
        assert JobRun.objects.values().get(pk=first.pk) == before  # same started/finished/attempts/trigger

    def test_failing_body_marks_the_run_failed_and_reraises(self):
        Calls.fail = True

        with pytest.raises(RuntimeError, match="batch 2 exploded"):
            job_execute("test_resumable", business_date=DAY)

        run = JobRun.objects.get(job="test_resumable", business_date=DAY)
        assert run.status == JobRun.Status.FAILED
        assert run.finished_at is not None
        assert "Traceback" in run.error and "RuntimeError: batch 2 exploded" in run.error
        assert run.cursor == {"last_pk": 500}

    def test_later_run_retries_a_failed_date_from_its_cursor(self):
        Calls.fail = True
        with pytest.raises(RuntimeError):
            job_execute("test_resumable", business_date=DAY)
        Calls.fail = False

        run, ran = job_execute("test_resumable", business_date=DAY, trigger=JobRun.Trigger.COMMAND)

        assert ran is True
        assert Calls.cursors == [{}, {"last_pk": 500}]  # the retry started where the failed attempt stopped
        run.refresh_from_db()
        assert (run.status, run.attempts, run.error, run.trigger) == ("succeeded", 2, "", "command")
        assert run.cursor == {"last_pk": 500}
        assert (run.rows_examined, run.rows_changed) == (1_000, 1_000)
        assert JobRun.objects.count() == 1

    def test_different_dates_and_different_jobs_are_independent(self):
        job_execute("test_counting", business_date=DAY)

        results = [
            job_execute("test_counting", business_date=date(2026, 3, 11)),
            job_execute("test_other", business_date=DAY),
        ]

        assert [ran for _run, ran in results] == [True, True]
        assert Calls.dates == [DAY, date(2026, 3, 11), DAY]
        assert sorted(JobRun.objects.values_list("job", "business_date", "status")) == [
            ("test_counting", DAY, "succeeded"),
            ("test_counting", date(2026, 3, 11), "succeeded"),
            ("test_other", DAY, "succeeded"),
        ]

    def test_refuses_a_job_that_is_not_registered(self):
        with pytest.raises(UnknownJob):
            job_execute("no_such_job", business_date=DAY)

        assert not JobRun.objects.exists()

    def test_holds_the_advisory_lock_in_the_body_and_releases_it_after(self):
        job_execute("test_counting", business_date=DAY)

        assert Calls.advisory_locks == [1]
        assert _advisory_locks_held() == 0

    def test_releases_the_advisory_lock_after_a_failure(self):
        Calls.fail = True

        with pytest.raises(RuntimeError):
            job_execute("test_resumable", business_date=DAY)

        assert _advisory_locks_held() == 0


@pytest.mark.django_db
class TestJobRun:
    def test_raises_already_done_before_the_body_for_a_finished_date(self):
        with job_run("adhoc", business_date=DAY) as first:
            pass
        body_ran = False

        with pytest.raises(JobAlreadyDone) as excinfo, job_run("adhoc", business_date=DAY):
            body_ran = True

        assert body_ran is False
        assert excinfo.value.run == first
        assert _advisory_locks_held() == 0

    def test_records_who_started_a_manual_run(self, manager):
        with job_run("adhoc", business_date=DAY, trigger=JobRun.Trigger.MANUAL, started_by=manager.user):
            pass

        run = JobRun.objects.get()
        assert (run.status, run.trigger, run.started_by) == ("succeeded", "manual", manager.user)

    def test_lock_taken_by_another_connection_is_free_after_the_run(self):
        with job_run("adhoc", business_date=DAY):
            pass
        other = connections.create_connection("default")  # a second session, as another worker would have

        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s), %s)", ["adhoc", DAY.toordinal()])
                (locked,) = cursor.fetchone()
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", ["adhoc", DAY.toordinal()])
        finally:
            other.close()

        assert locked is True


def _attempt(job: str) -> tuple[int | None, str | None, bool]:
    """job_execute from a thread of its own, as a second worker or a duplicate delivery would."""
    try:
        run, ran = job_execute(job, business_date=DAY)
        return (run.pk if run else None), (run.status if run else None), ran
    finally:
        connection.close()  # each thread has its own connection


@pytest.mark.django_db(transaction=True)
class TestConcurrentRuns:
    def test_second_run_while_the_first_is_in_its_body_does_not_run(self):
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(_attempt, "test_held")
            assert Calls.entered.wait(timeout=20), "the first run never reached its body"

            second = pool.submit(_attempt, "test_held").result(timeout=20)  # the first still holds the lock

            Calls.release.set()
            winner = first.result(timeout=20)
        run = JobRun.objects.get()
        assert len(Calls.dates) == 1
        assert winner == (run.pk, JobRun.Status.SUCCEEDED, True)
        assert second == (run.pk, JobRun.Status.RUNNING, False)  # it saw the first run's row, still running
        assert (run.status, run.attempts, run.rows_examined) == (JobRun.Status.SUCCEEDED, 1, 1)

    def test_runs_started_at_the_same_moment_run_the_body_once(self):
        start = threading.Barrier(4)

        def attempt_together(_: int) -> tuple[int | None, str | None, bool]:
            start.wait(timeout=10)
            return _attempt("test_counting")

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(attempt_together, range(4)))

        run = JobRun.objects.get()
        assert len(Calls.dates) == 1
        assert sorted(ran for _pk, _status, ran in results) == [False, False, False, True]
        assert (run.status, run.attempts) == (JobRun.Status.SUCCEEDED, 1)
