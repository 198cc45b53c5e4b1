import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from members.seeding import members_seed


class Command(BaseCommand):
    help = (
        "Load N synthetic members fast (COPY): realistic names with pinyin, unique phones, Luhn member numbers, "
        "spread over SEED-nn stores and three years; paid members get a current plan period. For speed the "
        "load turns off row triggers for its own session (session_replication_role = replica, which needs a "
        "PostgreSQL superuser), so no pghistory events are written for seeded members; ANALYZE runs at the end. "
        "For test and benchmark databases, not a merchant's."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, required=True, help="how many members to add")
        parser.add_argument("--stores", type=int, default=20, help="spread them over this many stores (default 20)")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable data set")

    def handle(self, *args: object, count: int, stores: int, seed: int | None, **options: object) -> None:
        if count < 1 or stores < 1:
            raise CommandError("--count and --stores must be at least 1.")
        started = time.monotonic()
        result = members_seed(count=count, stores=stores, seed=seed)
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.created} members added ({result.requested - result.created} skipped as duplicates), "
                f"{result.paid_periods} paid plan periods, in {elapsed:.1f} s "
                f"({result.created / max(elapsed, 0.001):,.0f} members/s)."
            )
        )
