from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from reports import services
from reports.models import JobRun


@pytest.mark.django_db
class TestJobDates:
    def test_a_business_day_that_has_not_closed_is_refused_and_recorded_nowhere(self):
        today = services.last_closed_business_date() + timedelta(days=1)

        with pytest.raises(services.BusinessDayNotClosed):
            services.job_execute("snapshot_daily", business_date=today)

        assert not JobRun.objects.exists()

    def test_the_command_refuses_today_with_a_clear_error(self):
        today = services.last_closed_business_date() + timedelta(days=1)

        with pytest.raises(CommandError, match="has not closed"):
            call_command("run_job", "snapshot_daily", "--date", today.isoformat())

        assert not JobRun.objects.exists()

    def test_a_run_interrupted_by_ctrl_c_is_recorded_as_failed(self):
        day = services.last_closed_business_date()

        with pytest.raises(KeyboardInterrupt), services.job_run("snapshot_daily", business_date=day):
            raise KeyboardInterrupt

        run = JobRun.objects.get()
        assert run.status == JobRun.Status.FAILED and "KeyboardInterrupt" in run.error
