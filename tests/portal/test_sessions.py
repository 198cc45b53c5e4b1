"""The portal's session is its own: staff and member sign-ins in one browser never see each other; a member
stays signed in for 30 days since the last visit."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import services
from tests.conftest import client_for
from tests.portal.conftest import portal_client, portal_member_id, sign_in_by_code

pytestmark = pytest.mark.django_db
THIRTY_DAYS = 30 * 24 * 3600


def staff_signed_in(client: Client) -> bool:
    return client.get(reverse("reports:dashboard")).status_code == 200


def member_signed_in(client: Client) -> bool:
    return client.get(reverse("portal:home")).status_code == 200


class TestSeparateSessions:
    def test_a_staff_session_does_not_open_portal_pages(self, owner_client):
        for name in ("portal:home", "portal:code", "portal:me"):
            response = owner_client.get(reverse(name))

            assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))

    def test_a_portal_session_does_not_open_staff_pages(self, member_client):
        for name in ("reports:dashboard", "members:index", "assets:counter"):
            response = member_client.get(reverse(name))

            assert response.status_code == 302 and response["Location"].startswith(reverse("members:login"))

    def test_the_portal_cookie_is_its_own_and_only_for_the_portal(self, client, member):
        response = sign_in_by_code(client)

        cookie = response.cookies[settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME]
        assert cookie["path"] == "/m/" and cookie["httponly"] and cookie["samesite"] == "Lax"
        assert settings.SESSION_COOKIE_NAME not in response.cookies

    def test_staff_and_member_in_one_browser_sign_out_separately(self, owner, member):
        browser = client_for(owner)
        portal_client(member, browser)
        assert staff_signed_in(browser) and member_signed_in(browser)

        browser.post(reverse("portal:logout"))
        assert staff_signed_in(browser) and not member_signed_in(browser)

        portal_client(member, browser)
        browser.post(reverse("members:logout"))
        assert member_signed_in(browser) and not staff_signed_in(browser)

    def test_a_member_signing_in_keeps_the_staff_session(self, owner, member):
        browser = client_for(owner)

        sign_in_by_code(browser)

        assert staff_signed_in(browser) and member_signed_in(browser)

    def test_staff_idle_expiry_does_not_apply_to_the_portal(self, owner, member):
        browser = portal_client(member, client_for(owner))
        staff_signed_in(browser)

        with time_machine.travel(timezone.now() + timedelta(minutes=settings.HUIYUAN_STAFF_IDLE_MINUTES + 5)):
            assert member_signed_in(browser)
            assert not staff_signed_in(browser)

    def test_signing_in_starts_a_new_session(self, client, member):
        client.post(reverse("portal:login"), {"phone": "138 0013 8000"})
        before = client.cookies[settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME].value

        sign_in_by_code(client)

        assert client.cookies[settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME].value != before


class TestLongLivedSession:
    def test_the_cookie_lasts_thirty_days(self, client, member):
        response = sign_in_by_code(client)

        assert response.cookies[settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME]["max-age"] == THIRTY_DAYS

    def test_a_member_is_still_signed_in_after_29_days(self, member_client):
        with time_machine.travel(timezone.now() + timedelta(days=29)):
            assert member_signed_in(member_client)

    def test_a_visit_renews_the_thirty_days(self, member_client):
        with time_machine.travel(timezone.now() + timedelta(days=20)):
            member_signed_in(member_client)
        with time_machine.travel(timezone.now() + timedelta(days=45)):
            assert member_signed_in(member_client)

    def test_thirty_days_without_a_visit_end_the_session(self, member_client):
        with time_machine.travel(timezone.now() + timedelta(days=31)):
            assert not member_signed_in(member_client)


class TestSessionEnds:
    def test_when_the_membership_is_cancelled(self, member_client, member):
        services.member_cancel(member=member, by=None, reason="asked to leave")

        assert not member_signed_in(member_client) and portal_member_id(member_client) is None

    def test_when_staff_change_the_members_phone(self, member_client, member):
        services.member_update(member=member, by=None, phone="+8613700137000")

        assert not member_signed_in(member_client)
