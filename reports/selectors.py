from dataclasses import dataclass
from datetime import date
from typing import cast

from django.db.models import QuerySet
from django_celery_beat.models import PeriodicTask

from members import selectors as members_selectors
from members.models import Staff, Store
from members.roles import Role
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
    snapshots = DailySnapshot.objects.order_by("-business_date")
    staff = Staff.objects.filter(user__is_active=True)
    if viewer is not None and viewer.role == Role.CASHIER:
        # a cashier sees its own store, whatever was asked; one without a store sees nothing
        store = viewer.store
        staff = staff.filter(store=store)
        if store is None:
            snapshots = snapshots.none()
    snapshots = snapshots.filter(store=store)
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
        staff_active=staff.count(),
        snapshot_date=latest.business_date if latest else None,
        trend=trend,
    )


def job_run_list(*, job: str = "") -> QuerySet[JobRun]:
    qs = JobRun.objects.select_related("started_by").order_by("-started_at", "-pk")
    return qs.filter(job=job) if job else qs


def job_run_succeeded(*, job: str, business_date: date) -> bool:
    return JobRun.objects.filter(job=job, business_date=business_date, status=JobRun.Status.SUCCEEDED).exists()


def schedule_list() -> QuerySet[PeriodicTask]:
    return cast(
        QuerySet[PeriodicTask],
        PeriodicTask.objects.select_related("crontab", "interval")
        .exclude(task__startswith="celery.")
        .order_by("name", "pk"),
    )
