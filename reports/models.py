from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobRun(models.Model):
    """One run of a scheduled job for one business date; at most one succeeds per (job, date)."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        MANUAL = "manual", _("By hand")
        COMMAND = "command", _("Command")

    job = models.CharField(_("job"), max_length=64)
    business_date = models.DateField(_("business date"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(_("trigger"), max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE)
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    rows_examined = models.BigIntegerField(_("rows examined"), default=0)
    rows_changed = models.BigIntegerField(_("rows changed"), default=0)
    cursor = models.JSONField(_("cursor"), default=dict, blank=True)  # where a killed batch run resumes
    error = models.TextField(_("error"), blank=True)
    started_by = models.ForeignKey(
        "auth.User", verbose_name=_("started by"), null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        constraints = [models.UniqueConstraint(fields=["job", "business_date"], name="jobrun_one_per_job_and_date")]
        indexes = [models.Index(fields=["-started_at"], name="jobrun_started_idx")]

    def __str__(self) -> str:
        return f"{self.job} {self.business_date}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class DailySnapshot(models.Model):
    """Figures computed nightly for one business date (and one store, or all stores when store is empty),
    so the dashboard never counts a million rows on a page view."""

    business_date = models.DateField(_("business date"))
    store = models.ForeignKey("members.Store", null=True, blank=True, on_delete=models.CASCADE)
    members_total = models.BigIntegerField(_("members"))
    members_new = models.BigIntegerField(_("new members"))
    job_run = models.ForeignKey(JobRun, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("daily snapshot")
        verbose_name_plural = _("daily snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["business_date", "store"],
                condition=models.Q(store__isnull=False),
                name="snapshot_one_per_store",
            ),
            models.UniqueConstraint(
                fields=["business_date"], condition=models.Q(store__isnull=True), name="snapshot_one_for_all_stores"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.business_date} {self.store or 'all stores'}"
