from datetime import date

from celery import shared_task
from django.contrib.auth.models import User

from reports import services
from reports.models import JobRun


@shared_task(acks_late=True)
def run_job_task(
    *,
    job: str,
    business_date: str | None = None,
    trigger: str = JobRun.Trigger.SCHEDULE,
    started_by: int | None = None,
    **kwargs: object,
) -> dict[str, object]:
    """Beat and the Jobs page start every job through this task. Without a date it processes the business
    day that just closed, computed once here in the merchant's time zone."""
    day = date.fromisoformat(business_date) if business_date else services.last_closed_business_date()
    user = User.objects.filter(pk=started_by).first() if started_by else None
    run, ran = services.job_execute(job, business_date=day, trigger=trigger, started_by=user)
    return {"job": job, "business_date": day.isoformat(), "ran": ran, "run_id": run.pk if run else None}
