from django.core.management.base import BaseCommand

from members.demo import seed_demo
from reports import services as reports_services
from reports.models import JobRun


class Command(BaseCommand):
    help = "Create the demo merchant (stores, one staff user per role, members) where missing. Safe to repeat."

    def handle(self, *args: object, **options: object) -> None:
        created = seed_demo()
        # the dashboard's trend comes from nightly snapshots; give a first run yesterday's
        reports_services.job_execute(
            "snapshot_daily", business_date=reports_services.last_closed_business_date(), trigger=JobRun.Trigger.COMMAND
        )
        if any(created.values()):
            self.stdout.write(
                self.style.SUCCESS("Demo data created: " + ", ".join(f"{v} {k}" for k, v in created.items()))
            )
        else:
            self.stdout.write("Demo data already present; nothing changed.")
