from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from members import terminals
from members.models import Store
from members.services import MemberError


class Command(BaseCommand):
    help = "Add a POS terminal to a store and print its API key (shown this once only)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("store", metavar="STORE_CODE", help="the store's code, e.g. SH-01")
        parser.add_argument("name", metavar="NAME", help="the terminal's name, unique in the store")

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.filter(code__iexact=options["store"]).first()
        if store is None:
            raise CommandError(_("No store has the code %(code)s.") % {"code": options["store"]})
        try:
            terminal, key = terminals.terminal_create(store=store, name=options["name"], by=None)
        except MemberError as exc:
            raise CommandError(str(exc)) from None
        # the warning goes to stderr, so stdout is the key alone (KEY=$(manage.py create_terminal ...))
        self.stderr.write(
            self.style.WARNING(
                _("API key of terminal %(name)s at %(store)s; it is shown only now and cannot be shown again:")
                % {"name": terminal.name, "store": store.code}
            )
        )
        self.stdout.write(key)
