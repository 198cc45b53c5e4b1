"""Terminals and their POS API keys: a key is shown once and kept only as a hash; it authenticates its
terminal until the key is replaced or the terminal (or its store) is deactivated; owners and managers
manage terminals under Settings, and create_terminal adds one from the shell."""

import hashlib
import re
from datetime import datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse

from members.models import Store, Terminal
from members.services import MemberError
from members.terminals import terminal_activate, terminal_authenticate, terminal_create, terminal_deactivate
from members.terminals import terminal_rotate as rotate
from tests.factories import StoreFactory

KEY_SHAPE = re.compile(r"hy_[a-z0-9]{8}_[A-Za-z0-9_-]{40}")


def create(store: Store, name: str = "Till 1", by=None) -> tuple[Terminal, str]:
    return terminal_create(store=store, name=name, by=by)


def stored_values(terminal: Terminal) -> str:
    """Everything kept about a terminal, its row and its history, as one text."""
    row = Terminal.objects.filter(pk=terminal.pk).values().get()
    events = list(terminal.events.values())  # type: ignore[attr-defined]
    return repr([row, *events])


@pytest.mark.django_db
class TestTerminalCreate:
    def test_returns_a_key_of_the_documented_shape_whose_prefix_finds_the_terminal(self, store):
        terminal, key = create(store)

        assert KEY_SHAPE.fullmatch(key)
        assert terminal.key_prefix == key[3:11]

    def test_keeps_only_the_hash_of_the_key(self, store):
        terminal, key = create(store)

        terminal.refresh_from_db()
        assert terminal.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in stored_values(terminal) and key[12:] not in stored_values(terminal)

    def test_gives_every_terminal_a_different_key(self, store):
        keys = {create(store, name=f"Till {n}")[1] for n in range(5)}

        assert len(keys) == 5

    def test_records_who_added_it(self, store, owner):
        terminal, _key = create(store, by=owner.user)

        event = terminal.events.select_related("pgh_context").get()
        assert terminal.created_by == owner.user and terminal.is_active
        assert event.pgh_context.metadata == {"user": owner.user.pk, "action": "terminal_create"}

    @pytest.mark.parametrize("name", ["", "   "])
    def test_refuses_a_terminal_without_a_name(self, store, name):
        with pytest.raises(MemberError) as refused:
            create(store, name=name)

        assert refused.value.field == "name" and not Terminal.objects.exists()

    def test_refuses_a_name_the_store_already_uses(self, store):
        create(store, name="Till 1")

        with pytest.raises(MemberError, match="already has a terminal") as refused:
            create(store, name="Till 1")

        assert refused.value.field == "name" and Terminal.objects.count() == 1

    def test_allows_the_same_name_in_another_store(self, store, other_store):
        create(store, name="Till 1")

        terminal, _key = create(other_store, name="Till 1")

        assert terminal.store == other_store

    def test_refuses_a_closed_store(self):
        closed = StoreFactory.create(is_active=False)

        with pytest.raises(MemberError) as refused:
            create(closed)

        assert refused.value.field == "store" and not Terminal.objects.exists()


@pytest.mark.django_db
class TestTerminalAuthenticate:
    def test_accepts_the_right_key(self, store):
        terminal, key = create(store)

        assert terminal_authenticate(key) == terminal

    @pytest.mark.parametrize("bad", ["", "hy_", "not a key", "hy_" + "a" * 49])
    def test_refuses_what_is_not_a_key(self, store, bad):
        create(store)

        assert terminal_authenticate(bad) is None

    def test_refuses_a_wrong_key_with_a_real_prefix(self, store):
        _terminal, key = create(store)
        wrong = key[:12] + ("A" if key[12] != "A" else "B") + key[13:]

        assert terminal_authenticate(wrong) is None

    def test_refuses_the_key_of_a_deactivated_terminal_until_it_is_activated(self, store):
        terminal, key = create(store)

        terminal_deactivate(terminal=terminal, by=None)
        refused = terminal_authenticate(key)
        terminal_activate(terminal=terminal, by=None)

        assert refused is None and terminal_authenticate(key) == terminal

    def test_refuses_a_terminal_of_a_closed_store(self, store):
        _terminal, key = create(store)

        Store.objects.filter(pk=store.pk).update(is_active=False)

        assert terminal_authenticate(key) is None

    def test_refuses_a_key_that_was_replaced_and_accepts_the_new_one(self, store):
        terminal, old_key = create(store)

        new_key = rotate(terminal=terminal, by=None)

        terminal.refresh_from_db()
        assert terminal_authenticate(old_key) is None and terminal_authenticate(new_key) == terminal
        assert terminal.key_prefix == new_key[3:11] and terminal.rotated_at is not None

    def test_records_last_use_at_most_once_a_minute(self, store, django_assert_num_queries):
        terminal, key = create(store)
        start = datetime(2026, 3, 5, 10, 0, 0).astimezone()

        with time_machine.travel(start, tick=False):
            terminal_authenticate(key)
        with time_machine.travel(start + timedelta(seconds=59), tick=False), django_assert_num_queries(1):
            terminal_authenticate(key)  # the lookup only: no write within the minute
        within_the_minute = Terminal.objects.get(pk=terminal.pk).last_used_at
        with time_machine.travel(start + timedelta(seconds=61), tick=False):
            terminal_authenticate(key)

        assert within_the_minute == start
        assert Terminal.objects.get(pk=terminal.pk).last_used_at == start + timedelta(seconds=61)

    def test_last_use_leaves_no_history(self, store):
        terminal, key = create(store)

        terminal_authenticate(key)

        assert terminal.events.count() == 1


@pytest.mark.django_db
class TestCreateTerminalCommand:
    def test_prints_a_key_that_authenticates_with_a_warning(self, store):
        out, err = StringIO(), StringIO()

        call_command("create_terminal", "sh-01", "Till 9", stdout=out, stderr=err)

        key = out.getvalue().strip()
        assert terminal_authenticate(key) == Terminal.objects.get(store=store, name="Till 9")
        assert "shown only now" in err.getvalue()

    def test_refuses_an_unknown_store(self, store):
        with pytest.raises(CommandError, match="No store has the code XX-99"):
            call_command("create_terminal", "XX-99", "Till 1", stdout=StringIO(), stderr=StringIO())

        assert not Terminal.objects.exists()

    def test_refuses_a_name_the_store_already_uses(self, store):
        create(store, name="Till 1")

        with pytest.raises(CommandError, match="already has a terminal"):
            call_command("create_terminal", "SH-01", "Till 1", stdout=StringIO(), stderr=StringIO())


def key_on_page(html: str) -> str:
    match = KEY_SHAPE.search(html)
    assert match, "no key on the page"
    return match.group()


@pytest.mark.django_db
class TestTerminalViewsPermissions:
    @pytest.mark.parametrize("client_name", ["cashier_client", "auditor_client"])
    @pytest.mark.parametrize(
        ("method", "url_name", "needs_terminal"),
        [
            ("get", "members:terminal-list", False),
            ("get", "members:terminal-create", False),
            ("post", "members:terminal-create", False),
            ("get", "members:terminal-rotate", True),
            ("post", "members:terminal-rotate", True),
            ("post", "members:terminal-deactivate", True),
            ("post", "members:terminal-activate", True),
        ],
    )
    def test_cashiers_and_auditors_are_refused(self, request, store, client_name, method, url_name, needs_terminal):
        client = request.getfixturevalue(client_name)
        terminal, key = create(store)
        url = reverse(url_name, args=[terminal.pk] if needs_terminal else [])

        response = getattr(client, method)(url, {"store": store.pk, "name": "Till 2"} if method == "post" else {})

        assert response.status_code == 403
        assert Terminal.objects.count() == 1 and terminal_authenticate(key) == terminal

    @pytest.mark.parametrize("client_name", ["owner_client", "manager_client"])
    def test_owners_and_managers_see_the_list_with_prefixes_only(self, request, store, client_name):
        terminal, key = create(store)

        response = request.getfixturevalue(client_name).get(reverse("members:terminal-list"))

        html = response.content.decode()
        assert response.status_code == 200
        assert f"hy_{terminal.key_prefix}_" in html and key not in html and terminal.key_hash not in html

    def test_the_settings_tabs_link_terminals_for_managers_only_among_the_rest(self, manager_client, auditor_client):
        url = reverse("members:terminal-list")

        assert url in manager_client.get(reverse("members:store-list")).content.decode()
        assert url not in auditor_client.get(reverse("members:store-list")).content.decode()


@pytest.mark.django_db
class TestTerminalCreateView:
    def test_shows_the_key_once_and_keeps_only_its_hash(self, manager_client, store):
        response = manager_client.post(reverse("members:terminal-create"), {"store": store.pk, "name": "Till 1"})

        key = key_on_page(response.content.decode())
        terminal = Terminal.objects.get(store=store, name="Till 1")
        assert response.status_code == 200 and "shown only now" in response.content.decode()
        assert terminal_authenticate(key) == terminal and terminal.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert "no-store" in response["Cache-Control"]

    def test_puts_the_key_in_no_url_cookie_or_session(self, manager_client, store):
        response = manager_client.post(reverse("members:terminal-create"), {"store": store.pk, "name": "Till 1"})
        key = key_on_page(response.content.decode())

        list_page = manager_client.get(reverse("members:terminal-list")).content.decode()

        assert "Location" not in response and key not in str(manager_client.cookies)
        assert key not in repr(dict(manager_client.session)) and key not in list_page

    def test_records_who_created_it(self, manager_client, manager, store):
        manager_client.post(reverse("members:terminal-create"), {"store": store.pk, "name": "Till 1"})

        assert Terminal.objects.get().created_by == manager.user

    def test_a_duplicate_name_is_a_form_error_and_writes_nothing(self, owner_client, store):
        create(store, name="Till 1")

        response = owner_client.post(reverse("members:terminal-create"), {"store": store.pk, "name": "Till 1"})

        html = response.content.decode()
        assert response.status_code == 200 and "already has a terminal with this name" in html
        assert "is-invalid" in re.search(r'<input[^>]*name="name"[^>]*>', html).group()
        assert not KEY_SHAPE.search(html) and Terminal.objects.count() == 1

    def test_an_empty_name_is_a_form_error(self, owner_client, store):
        response = owner_client.post(reverse("members:terminal-create"), {"store": store.pk, "name": "  "})

        assert response.status_code == 200 and "is-invalid" in response.content.decode()
        assert not Terminal.objects.exists()


@pytest.mark.django_db
class TestTerminalRotateView:
    def test_asks_first_and_changes_nothing_until_confirmed(self, owner_client, store):
        terminal, key = create(store)

        response = owner_client.get(reverse("members:terminal-rotate", args=[terminal.pk]))

        assert response.status_code == 200 and "stops working at once" in response.content.decode()
        assert terminal_authenticate(key) == terminal

    def test_shows_a_new_key_and_the_old_one_stops_working(self, manager_client, store):
        terminal, old_key = create(store)

        response = manager_client.post(reverse("members:terminal-rotate", args=[terminal.pk]))

        new_key = key_on_page(response.content.decode())
        assert response.status_code == 200 and "no-store" in response["Cache-Control"]
        assert new_key != old_key and terminal_authenticate(old_key) is None
        assert terminal_authenticate(new_key) == terminal

    def test_an_unknown_terminal_is_not_found(self, owner_client):
        assert owner_client.post(reverse("members:terminal-rotate", args=[999_999])).status_code == 404


@pytest.mark.django_db
class TestTerminalDeactivateView:
    def test_deactivating_refuses_the_key_and_activating_restores_it(self, owner_client, store):
        terminal, key = create(store)

        response = owner_client.post(reverse("members:terminal-deactivate", args=[terminal.pk]))
        refused = terminal_authenticate(key)
        owner_client.post(reverse("members:terminal-activate", args=[terminal.pk]))

        assert response.status_code == 302 and response["Location"] == reverse("members:terminal-list")
        assert refused is None and terminal_authenticate(key) == terminal

    def test_is_post_only(self, owner_client, store):
        terminal, key = create(store)

        response = owner_client.get(reverse("members:terminal-deactivate", args=[terminal.pk]))

        assert response.status_code == 405 and terminal_authenticate(key) == terminal
