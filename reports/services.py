import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_celery_beat.models import PeriodicTask

from reports.jobs import JOBS
from reports.models import DailySnapshot, JobRun

logger = logging.getLogger(__name__)


class JobAlreadyDone(Exception):
    """This (job, business date) has succeeded already, or another run holds it right now."""

    def __init__(self, run: JobRun | None) -> None:
        super().__init__(f"already done or running: {run}")
        self.run = run


class UnknownJob(ValueError):
    pass


class BusinessDayNotClosed(ValueError):
    """A run for a day that has not ended would be recorded as done, and the nightly run would skip it."""


def business_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a business day as aware instants, in the merchant's time zone."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return datetime.combine(day, time.min, tzinfo=zone), datetime.combine(
        day + timedelta(days=1), time.min, tzinfo=zone
    )


def last_closed_business_date() -> date:
    """The business day that nightly jobs process: yesterday, in the merchant's time zone."""
    return timezone.localdate() - timedelta(days=1)


@contextmanager
def job_run(
    job: str, *, business_date: date, trigger: str = JobRun.Trigger.SCHEDULE, started_by: User | None = None
) -> Iterator[JobRun]:
    """Record one run of `job` for `business_date`. Raises JobAlreadyDone (before the body runs) when the
    date has succeeded or another run holds it; marks the run failed and re-raises when the body raises."""
    # A session-level advisory lock, not a row lock: it is held across the job's own batch transactions
    # and released by PostgreSQL if the worker dies, so a crashed run never blocks the next one.
    lock_args: list[str | int] = [job, business_date.toordinal()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s), %s)", lock_args)
        (locked,) = cursor.fetchone()
    if not locked:
        raise JobAlreadyDone(JobRun.objects.filter(job=job, business_date=business_date).first())
    try:
        run = _job_run_start(job, business_date, trigger, started_by)
        try:
            yield run
        except BaseException:  # Ctrl-C or a worker's SIGTERM too: never leave the row "running"
            run.status, run.finished_at, run.error = JobRun.Status.FAILED, timezone.now(), traceback.format_exc()
            # not the cursor: the job commits it with each batch, and its in-memory value may be a batch ahead
            run.save(update_fields=["status", "finished_at", "error"])
            raise
        run.status, run.finished_at = JobRun.Status.SUCCEEDED, timezone.now()
        run.save()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", lock_args)
            (unlocked,) = cursor.fetchone()
        if not unlocked:
            # the lock was taken on another session: a transaction-mode pooler (PgBouncer) or connection
            # pooling swapped the connection under the job, and the lock no longer protects anything
            logger.error("job lock was not held at the end of the run", extra={"job": job, "day": str(business_date)})


@transaction.atomic(durable=True)  # committed before the body runs, or a second run would not see it
def _job_run_start(job: str, business_date: date, trigger: str, started_by: User | None) -> JobRun:
    run = JobRun.objects.filter(job=job, business_date=business_date).first()
    if run is not None and run.status == JobRun.Status.SUCCEEDED:
        raise JobAlreadyDone(run)
    if run is None:
        return JobRun.objects.create(job=job, business_date=business_date, trigger=trigger, started_by=started_by)
    # an earlier attempt failed or its worker died: try again, keeping its cursor so batches resume
    run.status, run.trigger, run.started_by = JobRun.Status.RUNNING, trigger, started_by
    run.attempts += 1
    run.started_at, run.finished_at, run.error = timezone.now(), None, ""
    run.save()
    return run


def job_execute(
    job: str, *, business_date: date, trigger: str = JobRun.Trigger.SCHEDULE, started_by: User | None = None
) -> tuple[JobRun | None, bool]:
    """Run a registered job for one business date. Returns (the run, whether it ran now);
    a date that is done already, or running elsewhere, returns (that run, False).
    Raises UnknownJob, BusinessDayNotClosed."""
    if job not in JOBS:
        raise UnknownJob(job)
    if business_date > last_closed_business_date():
        raise BusinessDayNotClosed(f"{business_date} has not closed yet")
    fn = import_string(JOBS[job])
    try:
        with job_run(job, business_date=business_date, trigger=trigger, started_by=started_by) as run:
            run.rows_examined, run.rows_changed = fn(business_date=business_date, run=run)
    except JobAlreadyDone as done:
        return done.run, False
    return run, True


def schedule_toggle(*, task: PeriodicTask) -> PeriodicTask:
    """Pause or re-enable a beat schedule. Saving through the model (not a queryset update) is what tells
    the DatabaseScheduler to reload; pausing also forgets the last run, so re-enabling does not catch up."""
    task.enabled = not task.enabled
    if not task.enabled:
        task.last_run_at = None
    task.save(update_fields=["enabled", "last_run_at"])
    return task


def snapshot_build(*, business_date: date, run: JobRun) -> tuple[int, int]:
    """Member totals and new members per store and for all stores, as of the end of `business_date`.
    Set-based: one INSERT ... SELECT with GROUPING SETS, whatever the number of members."""
    start, end = business_day_bounds(business_date)
    with transaction.atomic():
        DailySnapshot.objects.filter(business_date=business_date).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO reports_dailysnapshot
                    (business_date, store_id, members_total, members_new, job_run_id, created_at)
                SELECT %(day)s, CASE WHEN GROUPING(m.registered_store_id) = 0 THEN m.registered_store_id END,
                       count(*), count(*) FILTER (WHERE m.registered_at >= %(start)s), %(run)s, now()
                FROM members_member m
                WHERE m.registered_at < %(end)s
                GROUP BY GROUPING SETS ((m.registered_store_id), ())
                HAVING GROUPING(m.registered_store_id) = 1 OR m.registered_store_id IS NOT NULL
                """,
                {"day": business_date, "start": start, "end": end, "run": run.pk},
            )
            changed = cursor.rowcount  # GROUPING SETS emits the all-stores row even when there are no members
        examined = DailySnapshot.objects.get(business_date=business_date, store=None).members_total
    return examined, changed
