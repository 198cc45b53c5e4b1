"""Sending codes is limited per phone (one a minute, five an hour) and per client address (twenty an hour), and
the answer is the same whether or not the number is a member's."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from members import sms
from members.portal_auth import PortalRateLimited, portal_code_send
from tests.portal.conftest import OTHER_PHONE, PHONE, ask_code

pytestmark = pytest.mark.django_db
IP = "10.1.2.3"


def without_tokens(html: str) -> str:
    return re.sub(r"[A-Za-z0-9]{64}", "TOKEN", html)  # the masked CSRF token differs on every page


def phones(n: int) -> list[str]:
    return [f"+86137{i:08d}" for i in range(n)]


def scope_of_refusal(phone: str, ip: str = IP) -> str:
    with pytest.raises(PortalRateLimited) as caught:
        portal_code_send(phone, ip=ip)
    return caught.value.scope


class TestPerPhone:
    def test_one_code_a_minute(self):
        portal_code_send(PHONE, ip=IP)

        assert scope_of_refusal(PHONE, "10.9.9.9") == "phone-minute"
        with time_machine.travel(timezone.now() + timedelta(seconds=61)):
            portal_code_send(PHONE, ip=IP)
        assert len(sms.outbox) == 2

    def test_five_codes_an_hour(self):
        start = timezone.now()
        for minute in range(5):
            with time_machine.travel(start + timedelta(minutes=2 * minute)):
                portal_code_send(PHONE, ip=IP)

        with time_machine.travel(start + timedelta(minutes=30)):
            assert scope_of_refusal(PHONE) == "phone-hour"
        with time_machine.travel(start + timedelta(minutes=61)):
            portal_code_send(PHONE, ip=IP)
        assert len(sms.outbox) == 6

    def test_another_phone_is_not_held_up(self):
        portal_code_send(PHONE, ip=IP)

        portal_code_send(OTHER_PHONE, ip=IP)

        assert [m.phone for m in sms.outbox] == [PHONE, OTHER_PHONE]


class TestPerAddress:
    def test_twenty_codes_an_hour_from_one_address(self, settings):
        assert settings.HUIYUAN_PORTAL_CODES_PER_IP_HOUR == 20
        numbers = phones(21)
        for phone in numbers[:20]:
            portal_code_send(phone, ip=IP)

        assert scope_of_refusal(numbers[20]) == "address"
        portal_code_send(numbers[20], ip="10.4.5.6")
        assert len(sms.outbox) == 21

    def test_a_refusal_for_the_phone_does_not_use_up_the_address(self, settings):
        settings.HUIYUAN_PORTAL_CODES_PER_IP_HOUR = 2
        portal_code_send(PHONE, ip=IP)
        for _ in range(3):
            scope_of_refusal(PHONE)

        portal_code_send(OTHER_PHONE, ip=IP)

        assert len(sms.outbox) == 2

    def test_the_page_says_to_wait_with_429(self, settings, db):
        settings.HUIYUAN_PORTAL_CODES_PER_IP_HOUR = 1
        client = Client(REMOTE_ADDR=IP)
        ask_code(client, "137 0000 0001")

        response = ask_code(client, "137 0000 0002")

        assert response.status_code == 429
        assert "Too many codes were asked for from this network" in response.content.decode()
        assert len(sms.outbox) == 1


class TestNoMembershipOracle:
    def test_a_member_and_a_stranger_get_the_same_answers(self, member):
        answers = []
        for typed in ("138 0013 8000", "139 0013 9000"):  # a member's number, then nobody's
            client = Client()
            sent = ask_code(client, typed)
            page = client.get(sent["Location"])
            again = ask_code(client, typed)
            answers.append(
                (
                    sent.status_code,
                    sent["Location"],
                    page.status_code,
                    without_tokens(page.content.decode()).replace("139****9000", "138****8000"),
                    again.status_code,
                    again["Location"],
                )
            )

        assert answers[0] == answers[1]
        assert [m.phone for m in sms.outbox] == [PHONE, OTHER_PHONE]
        assert "If this number can sign in, a code is on its way" in answers[0][3]
