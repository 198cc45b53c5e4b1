import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role
from reports import selectors, services
from reports.forms import RunJobForm
from reports.jobs import JOB_LABELS
from reports.models import JobRun
from reports.tasks import run_job_task

JOB_ADMINS = (Role.OWNER, Role.MANAGER)
logger = logging.getLogger(__name__)


@staff_role_required()
def dashboard(request: OfficeRequest) -> HttpResponse:
    figures = selectors.dashboard_figures(
        viewer=request.staff,
        store=request.office_store,
        today=timezone.localdate(),
    )
    chart = {
        "dates": [d.isoformat() for d, _total, _new in figures.trend],
        "total": [total for _d, total, _new in figures.trend],
        "new": [new for _d, _total, new in figures.trend],
        "labels": [_("Members"), _("New members")],
    }
    return render(
        request,
        "reports/dashboard.html",
        {"figures": figures, "chart": chart, "active_section": "dashboard"},
    )


@staff_role_required(Role.OWNER, Role.MANAGER, Role.AUDITOR)
def jobs(request: OfficeRequest) -> HttpResponse:
    job = request.GET.get("job", "")
    page = Paginator(selectors.job_run_list(job=job if job in JOB_LABELS else ""), 25).get_page(request.GET.get("page"))
    form = RunJobForm(initial={"business_date": services.last_closed_business_date()})
    context = {
        "schedules": selectors.schedule_list(),
        "page": page,
        "job_filter": job,
        "job_labels": JOB_LABELS,
        "form": form,
        "can_run": request.role in JOB_ADMINS,
        "active_section": "jobs",
    }
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        return render(request, "reports/jobs.html#runs", context)
    return render(request, "reports/jobs.html", context)


@require_POST
@staff_role_required(*JOB_ADMINS)
def job_run_now(request: OfficeRequest) -> HttpResponse:
    form = RunJobForm(request.POST)
    if form.is_valid():
        job, day = form.cleaned_data["job"], form.cleaned_data["business_date"]
        names = {"job": JOB_LABELS[job], "date": day}
        if selectors.job_run_succeeded(job=job, business_date=day):
            messages.info(request, _("%(job)s for %(date)s has already succeeded; it is not run twice.") % names)
            return redirect("reports:jobs")
        try:
            run_job_task.delay(
                job=job, business_date=day.isoformat(), trigger=JobRun.Trigger.MANUAL, started_by=request.user.pk
            )
        except OperationalError:
            logger.exception("job queue unreachable")
            messages.error(request, _("The job queue cannot be reached right now; nothing was started."))
        else:
            messages.success(request, _("%(job)s for %(date)s has been queued.") % names)
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("reports:jobs")


@require_POST
@staff_role_required(*JOB_ADMINS)
def schedule_toggle(request: OfficeRequest, pk: int) -> HttpResponse:
    task = services.schedule_toggle(task=get_object_or_404(selectors.schedule_list(), pk=pk))
    if task.enabled:
        messages.success(request, _("Schedule %(name)s enabled.") % {"name": task.name})
    else:
        messages.warning(request, _("Schedule %(name)s paused.") % {"name": task.name})
    return redirect("reports:jobs")
