from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports import services
from reports.jobs import JOBS
from reports.models import JobRun


class Command(BaseCommand):
    help = "Run one scheduled job for one business date (once: a finished date is not run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", choices=sorted(JOBS))
        parser.add_argument("--date", type=date.fromisoformat, help="business date YYYY-MM-DD (default: yesterday)")

    def handle(self, *args: object, job: str, date: date | None, **options: object) -> None:
        day = date or services.last_closed_business_date()
        try:
            run, ran = services.job_execute(job, business_date=day, trigger=JobRun.Trigger.COMMAND)
        except Exception as exc:
            raise CommandError(f"{job} {day} failed: {exc}") from exc
        if not ran:
            state = run.get_status_display() if run else "running elsewhere"
            self.stdout.write(f"{job} {day}: already done ({state}); nothing changed")
            return
        assert run is not None
        self.stdout.write(
            self.style.SUCCESS(
                f"{job} {day}: {run.status}, examined {run.rows_examined}, changed {run.rows_changed}, "
                f"{run.duration_seconds:.2f}s"
            )
        )
