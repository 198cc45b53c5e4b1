"""Staff sign-in: passwords, lockout per username and address (django-axes), and idle sessions."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD

TILL = "10.0.0.1"
OTHER_TILL = "10.0.0.2"


def sign_in(client: Client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("members:login"), {"username": username, "password": password})


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail_until_locked(client: Client, username: str) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, username, "not-the-password")


class TestLogin:
    def test_with_the_right_password_goes_to_the_dashboard(self, client, owner):
        response = sign_in(client, "owner", PASSWORD)

        assert response.status_code == 302 and response["Location"] == reverse("reports:dashboard")
        assert is_signed_in(client)

    def test_with_a_wrong_password_shows_the_form_error(self, client, owner):
        response = sign_in(client, "owner", "not-the-password")

        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == ["Wrong username or password."]
        assert "Wrong username or password." in response.content.decode()
        assert not is_signed_in(client)

    def test_for_an_unknown_user_shows_the_same_error(self, client, db):
        response = sign_in(client, "nobody", PASSWORD)

        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == ["Wrong username or password."]

    def test_redirects_a_signed_in_user_away_from_the_login_page(self, owner_client):
        response = owner_client.get(reverse("members:login"))

        assert response.status_code == 302 and response["Location"] == reverse("reports:dashboard")


class TestLoginLockout:
    def test_refuses_even_the_right_password_after_too_many_failures(self, owner):
        client = Client(REMOTE_ADDR=TILL)
        fail_until_locked(client, "owner")

        response = sign_in(client, "owner", PASSWORD)

        assert response.status_code == 429
        assert 'id="lockout"' in response.content.decode()
        assert not is_signed_in(client)

    def test_allows_one_failure_less_than_the_limit(self, owner):
        client = Client(REMOTE_ADDR=TILL)
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            sign_in(client, "owner", "not-the-password")

        response = sign_in(client, "owner", PASSWORD)

        assert response.status_code == 302 and is_signed_in(client)

    def test_does_not_lock_out_another_username_at_the_same_till(self, owner, manager):
        fail_until_locked(Client(REMOTE_ADDR=TILL), "owner")
        client = Client(REMOTE_ADDR=TILL)

        response = sign_in(client, "manager", PASSWORD)

        assert response.status_code == 302 and is_signed_in(client)

    def test_does_not_lock_out_the_same_username_at_another_till(self, owner):
        fail_until_locked(Client(REMOTE_ADDR=TILL), "owner")
        client = Client(REMOTE_ADDR=OTHER_TILL)

        response = sign_in(client, "owner", PASSWORD)

        assert response.status_code == 302 and is_signed_in(client)

    def test_starts_counting_again_after_a_successful_login(self, owner):
        client = Client(REMOTE_ADDR=TILL)
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            sign_in(client, "owner", "not-the-password")
        sign_in(client, "owner", PASSWORD)
        client.logout()
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            sign_in(client, "owner", "not-the-password")

        response = sign_in(client, "owner", PASSWORD)

        assert response.status_code == 302 and is_signed_in(client)


class TestIdleSession:
    @pytest.fixture
    def start(self):  # type: ignore[no-untyped-def]
        return timezone.now()

    def test_signs_out_after_the_idle_window(self, owner_client, start):
        with time_machine.travel(start, tick=False):
            owner_client.get(reverse("reports:dashboard"))
        idle = timedelta(minutes=settings.HUIYUAN_STAFF_IDLE_MINUTES, seconds=1)

        with time_machine.travel(start + idle, tick=False):
            response = owner_client.get(reverse("reports:dashboard"))

        assert response.status_code == 302
        assert response["Location"] == f"{reverse('members:login')}?next={reverse('reports:dashboard')}"
        assert not is_signed_in(owner_client)

    def test_says_why_on_the_login_page(self, owner_client, start):
        with time_machine.travel(start, tick=False):
            owner_client.get(reverse("reports:dashboard"))
        idle = timedelta(minutes=settings.HUIYUAN_STAFF_IDLE_MINUTES, seconds=1)

        with time_machine.travel(start + idle, tick=False):
            response = owner_client.get(reverse("reports:dashboard"), follow=True)

        assert response.redirect_chain[-1][0].startswith(reverse("members:login"))
        assert "You were signed out after a period of inactivity." in response.content.decode()

    def test_stays_signed_in_while_there_is_activity_within_the_window(self, owner_client, start):
        almost_idle = timedelta(minutes=settings.HUIYUAN_STAFF_IDLE_MINUTES) - timedelta(seconds=1)
        with time_machine.travel(start, tick=False):
            owner_client.get(reverse("reports:dashboard"))
        with time_machine.travel(start + almost_idle, tick=False):
            owner_client.get(reverse("reports:dashboard"))

        with time_machine.travel(start + 2 * almost_idle, tick=False):
            response = owner_client.get(reverse("reports:dashboard"))

        assert response.status_code == 200 and is_signed_in(owner_client)

    def test_tells_htmx_to_redirect_instead_of_answering_302(self, owner_client, start):
        with time_machine.travel(start, tick=False):
            owner_client.get(reverse("reports:dashboard"))
        idle = timedelta(minutes=settings.HUIYUAN_STAFF_IDLE_MINUTES, seconds=1)

        with time_machine.travel(start + idle, tick=False):
            response = owner_client.get(reverse("reports:jobs"), headers={"HX-Request": "true"})

        assert response.status_code == 200 and response["HX-Redirect"] == reverse("members:login")
        assert not is_signed_in(owner_client)

    def test_says_why_on_the_login_page_htmx_is_sent_to(self, owner_client, start):
        with time_machine.travel(start, tick=False):
            owner_client.get(reverse("reports:dashboard"))
        idle = timedelta(minutes=settings.HUIYUAN_STAFF_IDLE_MINUTES, seconds=1)
        with time_machine.travel(start + idle, tick=False):
            redirect_to = owner_client.get(reverse("reports:jobs"), headers={"HX-Request": "true"})["HX-Redirect"]

            response = owner_client.get(redirect_to)

        assert "You were signed out after a period of inactivity." in response.content.decode()
