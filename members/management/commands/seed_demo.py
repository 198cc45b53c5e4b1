from django.core.management.base import BaseCommand, CommandParser

from assets.demo import seed_demo_ledgers
from members.demo import is_real_database, seed_demo
from reports import services as reports_services
from reports.models import JobRun
from tags.demo import run_demo_jobs, seed_demo_purchases
from tiers.demo import seed_demo_tiers


class Command(BaseCommand):
    help = "Create the demo merchant (stores, one staff user per role, members) where missing. Safe to repeat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="add demo data even to a database with real users")

    def handle(self, *args: object, force: bool, **options: object) -> None:
        if is_real_database() and not force:
            # demo logins share a published password: never add them to a merchant's database by accident
            self.stdout.write("This database has users but no demo ones: demo data not added (--force to add it).")
            return
        created = seed_demo()
        created |= seed_demo_ledgers()
        created |= seed_demo_tiers()
        created |= seed_demo_purchases()
        run_demo_jobs()  # RFM, lifecycle and tags over the purchase history
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
