"""The Jobs page (reports.views.jobs, job_run_now, schedule_toggle): schedules, running a job by hand, runs."""

import json
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.messages import constants, get_messages
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from reports import jobs
from reports.models import JobRun
from reports.services import job_execute

DAY = date(2026, 3, 10)
SHANGHAI_0100_ON_THE_11TH = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # the 10th has just closed


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def schedule(db) -> PeriodicTask:
    return PeriodicTask.objects.get(name="snapshot_daily")


@pytest.mark.django_db
class TestSchedules:
    def test_data_migration_schedules_the_daily_snapshot_at_half_past_midnight_in_shanghai(self, schedule):
        crontab = schedule.crontab

        assert schedule.task == "reports.tasks.run_job_task"
        assert json.loads(schedule.kwargs) == {"job": "snapshot_daily"}
        assert schedule.enabled is True
        fields = (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week)
        assert " ".join(fields) == "30 0 * * *"
        assert str(crontab.timezone) == "Asia/Shanghai"

    def test_page_lists_the_schedule(self, manager_client, schedule):
        response = manager_client.get(reverse("reports:jobs"))

        body = response.content.decode()
        assert response.status_code == 200
        assert "snapshot_daily" in body
        assert '30 0 * * * <span class="text-secondary">(Asia/Shanghai)</span>' in body
        assert reverse("reports:schedule-toggle", args=[schedule.pk]) in body

    def test_toggle_pauses_an_enabled_schedule(self, manager_client, schedule):
        response = manager_client.post(reverse("reports:schedule-toggle", args=[schedule.pk]))

        assert response.status_code == 302 and response.url == reverse("reports:jobs")
        schedule.refresh_from_db()
        assert schedule.enabled is False
        assert messages_of(response) == [(constants.WARNING, "Schedule snapshot_daily paused.")]

    def test_toggle_enables_a_paused_schedule_again(self, manager_client, schedule):
        manager_client.post(reverse("reports:schedule-toggle", args=[schedule.pk]))

        response = manager_client.post(reverse("reports:schedule-toggle", args=[schedule.pk]))

        schedule.refresh_from_db()
        assert schedule.enabled is True
        assert messages_of(response)[-1] == (constants.SUCCESS, "Schedule snapshot_daily enabled.")

    def test_toggle_is_refused_to_an_auditor(self, auditor_client, schedule):
        response = auditor_client.post(reverse("reports:schedule-toggle", args=[schedule.pk]))

        assert response.status_code == 403
        schedule.refresh_from_db()
        assert schedule.enabled is True

    def test_toggle_only_accepts_post(self, manager_client, schedule):
        response = manager_client.get(reverse("reports:schedule-toggle", args=[schedule.pk]))

        assert response.status_code == 405
        schedule.refresh_from_db()
        assert schedule.enabled is True


@pytest.mark.django_db
class TestRunNow:
    def test_runs_the_job_and_records_who_started_it(self, manager_client, manager):
        response = manager_client.post(
            reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": "2026-03-10"}
        )

        assert response.status_code == 302 and response.url == reverse("reports:jobs")
        run = JobRun.objects.get()
        assert (run.job, run.business_date, run.status) == ("snapshot_daily", DAY, JobRun.Status.SUCCEEDED)
        assert (run.trigger, run.started_by) == (JobRun.Trigger.MANUAL, manager.user)
        assert messages_of(response) == [
            (constants.SUCCESS, "Daily snapshot (member counts for the dashboard) for 2026-03-10 has been queued.")
        ]

    def test_finished_date_is_not_run_again(self, manager_client):
        first, _ = job_execute("snapshot_daily", business_date=DAY)

        manager_client.post(reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": "2026-03-10"})

        run = JobRun.objects.get()
        assert (run.pk, run.trigger, run.started_by, run.attempts) == (first.pk, JobRun.Trigger.SCHEDULE, None, 1)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"job": "snapshot_daily", "business_date": "2026-02-30"}, "Enter a valid date."),
            ({"job": "snapshot_daily", "business_date": "yesterday"}, "Enter a valid date."),
            ({"job": "snapshot_daily", "business_date": ""}, "This field is required."),
            ({"job": "no_such_job", "business_date": "2026-03-10"}, "Select a valid choice."),
        ],
        ids=["impossible-date", "not-a-date", "no-date", "unknown-job"],
    )
    def test_refuses_an_invalid_request_and_creates_nothing(self, manager_client, data, message):
        response = manager_client.post(reverse("reports:job-run"), data)

        assert response.status_code == 302 and response.url == reverse("reports:jobs")
        assert not JobRun.objects.exists()
        [(level, text)] = messages_of(response)
        assert level == constants.ERROR and text.startswith(message)

    @pytest.mark.parametrize("day", ["2026-03-11", "2026-03-12", "2026-12-31"])
    def test_refuses_a_business_day_that_has_not_closed(self, manager_client, day):
        # a snapshot of an unfinished day would count as done, and the nightly run would then skip that day
        with time_machine.travel(SHANGHAI_0100_ON_THE_11TH, tick=False):
            response = manager_client.post(reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": day})

        assert not JobRun.objects.exists()
        assert messages_of(response) == [(constants.ERROR, "Only a business day that has closed can be run.")]

    def test_accepts_the_business_day_that_just_closed(self, manager_client):
        with time_machine.travel(SHANGHAI_0100_ON_THE_11TH, tick=False):
            manager_client.post(reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": "2026-03-10"})

        assert JobRun.objects.get().business_date == DAY

    @pytest.mark.parametrize("client_fixture", ["auditor_client", "cashier_client"])
    def test_is_refused_to_roles_that_may_not_run_jobs(self, request, client_fixture):
        client = request.getfixturevalue(client_fixture)

        response = client.post(reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": "2026-03-10"})

        assert response.status_code == 403
        assert not JobRun.objects.exists()

    def test_form_is_shown_only_to_roles_that_may_run_jobs(self, manager_client, auditor_client):
        manager_page = manager_client.get(reverse("reports:jobs")).content.decode()

        auditor_page = auditor_client.get(reverse("reports:jobs")).content.decode()

        assert f'action="{reverse("reports:job-run")}"' in manager_page
        assert f'action="{reverse("reports:job-run")}"' not in auditor_page


@pytest.mark.django_db
class TestRunsList:
    @pytest.fixture
    def runs(self, monkeypatch):
        monkeypatch.setitem(jobs.JOBS, "other_job", "reports.services.snapshot_build")
        monkeypatch.setitem(jobs.JOB_LABELS, "other_job", "Other job")
        job_execute("snapshot_daily", business_date=date(2026, 3, 8))
        job_execute("other_job", business_date=date(2026, 3, 9))

    def test_full_page_lists_every_run(self, manager_client, runs):
        response = manager_client.get(reverse("reports:jobs"))

        body = response.content.decode()
        assert "<html" in body
        assert "2026-03-08" in body and "2026-03-09" in body

    def test_htmx_filter_returns_only_the_runs_of_that_job(self, manager_client, runs):
        response = manager_client.get(
            reverse("reports:jobs"), {"job": "snapshot_daily"}, headers={"HX-Request": "true"}
        )

        body = response.content.decode()
        assert response.status_code == 200
        assert "<html" not in body and "Schedules" not in body
        assert "2026-03-08" in body and "2026-03-09" not in body
        assert '<option value="snapshot_daily" selected>' in body

    def test_filter_without_htmx_returns_the_full_page(self, manager_client, runs):
        response = manager_client.get(reverse("reports:jobs"), {"job": "other_job"})

        body = response.content.decode()
        assert "<html" in body and "Schedules" in body
        assert "2026-03-09" in body and "2026-03-08" not in body

    def test_unknown_job_filter_lists_every_run(self, manager_client, runs):
        response = manager_client.get(reverse("reports:jobs"), {"job": "nope"}, headers={"HX-Request": "true"})

        body = response.content.decode()
        assert "2026-03-08" in body and "2026-03-09" in body

    def test_shows_a_failed_run_with_its_error(self, manager_client, monkeypatch):
        monkeypatch.setitem(jobs.JOBS, "broken", "builtins.divmod")
        with pytest.raises(TypeError):
            job_execute("broken", business_date=DAY)

        response = manager_client.get(reverse("reports:jobs"))

        body = response.content.decode()
        assert "Failed" in body and "TypeError" in body

    def test_auditor_may_read_the_page(self, auditor_client, runs):
        response = auditor_client.get(reverse("reports:jobs"))

        assert response.status_code == 200
        assert "2026-03-08" in response.content.decode()

    def test_cashier_may_not_read_the_page(self, cashier_client):
        response = cashier_client.get(reverse("reports:jobs"))

        assert response.status_code == 403


def test_pausing_a_schedule_forgets_its_last_run_so_re_enabling_does_not_catch_up(manager_client):
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="snapshot_daily")
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=timezone.now())

    manager_client.post(reverse("reports:schedule-toggle", args=[task.pk]))

    task.refresh_from_db()
    assert task.enabled is False and task.last_run_at is None
