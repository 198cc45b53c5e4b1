from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from members import importing
from members.models import MemberImport, Store
from members.roles import Role
from members.spreadsheets import SpreadsheetError


class Command(BaseCommand):
    help = "Import members from an .xlsx or .csv file (the columns of the import template); --dry-run writes nothing."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="check every row and print what would happen")
        parser.add_argument("--store", help="store code for rows without a store_code")
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
                member_import = importing.import_create(
                    uploaded=handle, file_name=path.name, by=user, default_store=store
                )
        except SpreadsheetError as exc:
            raise CommandError(str(exc)) from None
        member_import = importing.import_check(member_import=member_import)
        if options["dry_run"]:
            self.stdout.write(
                f"dry run of {member_import.total_rows} rows: {member_import.to_create} to create, "
                f"{member_import.to_update} to update, {member_import.unchanged} unchanged, "
                f"{member_import.invalid} with errors; nothing written"
            )
        else:
            importing.import_confirm(member_import=member_import)
            member_import = importing.import_apply(
                member_import=member_import,
                on_batch=lambda m: self.stderr.write(f"{m.processed}/{m.total_rows} rows", ending="\r"),
            )
            self.stdout.write(
                f"imported {member_import.total_rows} rows: {member_import.created} created, "
                f"{member_import.updated} updated, {member_import.failed} failed (import #{member_import.pk})"
            )
        self._errors(member_import)

    def _user(self, username: str | None) -> User:
        owners = Q(is_superuser=True) | Q(groups__name=Role.OWNER)
        users = User.objects.filter(username=username) if username else User.objects.filter(owners, is_active=True)
        user = users.order_by("pk").first()
        if user is None:
            raise CommandError("no such user; pass --user USERNAME" if username else "no owner; pass --user")
        return user

    def _errors(self, member_import: MemberImport) -> None:
        for entry in member_import.errors[:200]:
            self.stdout.write(f"row {entry['row']}: {entry['column'] or '-'}: {entry['message']}")
        if len(member_import.errors) > 200:
            self.stdout.write(f"... and {len(member_import.errors) - 200} more errors")
