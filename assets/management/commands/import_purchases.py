from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from assets import imports
from assets.models import PurchaseImport
from members.forms import yuan_text
from members.models import Store
from members.roles import Role
from members.spreadsheets import SpreadsheetError

ERRORS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Import purchase history from an .xlsx or .csv file (the columns of the purchase import template). "
        "Imported purchases count for growth value and earn no points unless told otherwise; --dry-run writes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--store", help="store code for rows without a store")
        parser.add_argument(
            "--create-members", action="store_true", help="register members the file names but the register lacks"
        )
        parser.add_argument("--earn-points", action="store_true", help="imported purchases earn points")
        parser.add_argument("--no-growth", action="store_true", help="imported purchases add no growth value")
        parser.add_argument("--dry-run", action="store_true", help="check every row and print what would happen")
        parser.add_argument("--user", help="username recorded as the importer (default: the first owner)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        store = None
        if options["store"]:
            store = Store.objects.filter(code__iexact=options["store"]).first()
            if store is None:
                raise CommandError(f"no store has the code {options['store']}")
        user = self._user(options["user"])
        try:
            with path.open("rb") as handle:
                purchase_import = imports.import_create(
                    uploaded=handle,
                    file_name=path.name,
                    by=user,
                    default_store=store,
                    create_members=options["create_members"],
                    earn_growth=not options["no_growth"],
                    earn_points=options["earn_points"],
                )
        except SpreadsheetError as exc:
            raise CommandError(str(exc)) from None
        purchase_import = imports.import_check(purchase_import=purchase_import)
        if options["dry_run"]:
            self.stdout.write(
                f"dry run of {purchase_import.total_rows} rows: {purchase_import.to_import} to import "
                f"(¥{yuan_text(purchase_import.to_import_fen)}), {purchase_import.already_imported} already imported, "
                f"{purchase_import.members_to_create} members to create, {purchase_import.invalid} with errors; "
                "nothing written"
            )
        else:
            imports.import_confirm(purchase_import=purchase_import)
            purchase_import = imports.import_apply(
                purchase_import=purchase_import,
                on_batch=lambda p: self.stderr.write(f"{p.processed}/{p.total_rows} rows", ending="\r"),
            )
            self.stdout.write(
                f"imported {purchase_import.total_rows} rows: {purchase_import.imported} purchases recorded "
                f"(¥{yuan_text(purchase_import.imported_fen)}), {purchase_import.skipped} already imported, "
                f"{purchase_import.members_created} members created, {purchase_import.failed} failed "
                f"(import #{purchase_import.pk})"
            )
        self._errors(purchase_import)

    def _user(self, username: str | None) -> User:
        owners = Q(is_superuser=True) | Q(groups__name=Role.OWNER)
        users = User.objects.filter(username=username) if username else User.objects.filter(owners, is_active=True)
        user = users.order_by("pk").first()
        if user is None:
            raise CommandError("no such user; pass --user USERNAME" if username else "no owner; pass --user")
        return user

    def _errors(self, purchase_import: PurchaseImport) -> None:
        for entry in purchase_import.errors[:ERRORS_SHOWN]:
            self.stdout.write(f"row {entry['row']}: {entry['column'] or '-'}: {entry['message']}")
        if len(purchase_import.errors) > ERRORS_SHOWN:
            self.stdout.write(f"... and {len(purchase_import.errors) - ERRORS_SHOWN} more errors")
