from dataclasses import dataclass
from datetime import date
from typing import cast

from django.db.models import QuerySet
from django_celery_beat.models import PeriodicTask

from members import selectors as members_selectors
from members.models import Staff, Store
from reports.models import DailySnapshot, JobRun
from reports.services import business_day_bounds


@dataclass(frozen=True)
class DashboardFigures:
    members_total: int
    members_new_today: int
    stores_active: int
    staff_active: int
    snapshot_date: date | None
    trend: list[tuple[date, int, int]]  # (business date, total, new) from nightly snapshots


def dashboard_figures(*, viewer: Staff | None, store: Store | None, today: date) -> DashboardFigures:
    """The dashboard tiles. The member total is the latest nightly snapshot plus those registered since,
    an indexed range count, so the page stays fast at a million members."""
    if viewer is not None and viewer.store_id and store is None and viewer.role == "cashier":
        store = viewer.store
    snapshots = DailySnapshot.objects.filter(store=store).order_by("-business_date")
    latest = snapshots.first()
    members = members_selectors.member_list(viewer=viewer, store=store)
    today_start, _ = business_day_bounds(today)
    if latest is None:
        total = members.count()
    else:
        _, since = business_day_bounds(latest.business_date)
        total = latest.members_total + members.filter(registered_at__gte=since).count()
    new_today = members.filter(registered_at__gte=today_start).count()
    trend = [(s.business_date, s.members_total, s.members_new) for s in reversed(snapshots[:30])]
    return DashboardFigures(
        members_total=total,
        members_new_today=new_today,
        stores_active=members_selectors.store_list(viewer=viewer).filter(is_active=True).count(),
        staff_active=Staff.objects.filter(user__is_active=True).count(),
        snapshot_date=latest.business_date if latest else None,
        trend=trend,
    )


def job_run_list(*, job: str = "") -> QuerySet[JobRun]:
    qs = JobRun.objects.select_related("started_by").order_by("-started_at", "-pk")
    return qs.filter(job=job) if job else qs


def schedule_list() -> QuerySet[PeriodicTask]:
    return cast(
        QuerySet[PeriodicTask],
        PeriodicTask.objects.select_related("crontab", "interval")
        .exclude(task__startswith="celery.")
        .order_by("name", "pk"),
    )
