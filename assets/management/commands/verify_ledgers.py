from django.core.management.base import BaseCommand, CommandError, CommandParser

from assets import services


class Command(BaseCommand):
    help = "Check every ledger invariant in one consistent snapshot; exit non-zero on any violation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--examples", type=int, default=5, help="violating rows to show per invariant")

    def handle(self, *args: object, examples: int, **options: object) -> None:
        report = services.ledgers_verify(examples=examples)
        if not report.ok:
            raise CommandError(report.text())
        self.stdout.write(self.style.SUCCESS(report.text()))
