"""manage.py export_rfm --date YYYY-MM-DD --out FILE.csv: one row per member scored as of that date."""

import csv
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from members.models import Member
from tags.rfm import rfm_rows

HEADER = ["member_no", "external_id", "recency_days", "frequency", "monetary_fen", "r", "f", "m", "segment"]
CHUNK = 10_000


class Command(BaseCommand):
    help = "Write the RFM scores as of a business date (computed afresh, the window from settings) to a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True, help="the as-of business date, YYYY-MM-DD")
        parser.add_argument("--out", required=True, help="the CSV file to write")
        parser.add_argument("--window-days", type=int, default=None, help="override HUIYUAN_RFM_WINDOW_DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"])
        except ValueError:
            raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}") from None
        written = 0
        with open(options["out"], "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            batch: list[Any] = []
            for row in rfm_rows(day, window_days=options["window_days"]):
                batch.append(row)
                if len(batch) == CHUNK:
                    written += self._write(writer, batch)
                    batch = []
            written += self._write(writer, batch)
        self.stdout.write(f"{written} members scored as of {day} written to {options['out']}")

    @staticmethod
    def _write(writer: Any, batch: list[Any]) -> int:
        ids = dict(
            (pk, (no, ext or ""))
            for pk, no, ext in Member.objects.filter(pk__in=[row.member_id for row in batch]).values_list(
                "pk", "member_no", "external_id"
            )
        )
        for row in batch:
            member_no, external_id = ids[row.member_id]
            writer.writerow(
                [
                    member_no,
                    external_id,
                    row.recency_days,
                    row.frequency,
                    row.monetary_fen,
                    row.r,
                    row.f,
                    row.m,
                    row.segment,
                ]
            )
        return len(batch)
