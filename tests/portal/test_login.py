"""Signing in at /m/login/: phone, then the texted code; the code page, its refusals, logout and next."""

import logging
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import services, sms
from members.models import Member
from tests.portal.conftest import (
    OTHER_PHONE,
    PHONE,
    TYPED,
    ask_code,
    enter_code,
    last_code,
    portal_member_id,
    sign_in_by_code,
)

pytestmark = pytest.mark.django_db


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


class TestLoginPage:
    def test_asks_for_a_mobile_number_with_a_phone_keyboard(self, client):
        body = client.get(reverse("portal:login")).content.decode()

        assert 'type="tel"' in body and 'inputmode="tel"' in body and 'autocomplete="tel"' in body
        assert 'method="post"' in body and "csrfmiddlewaretoken" in body and "disabled" not in body

    def test_refuses_what_is_not_a_mobile_number(self, client):
        for typed in ("12345", "021 6123 4567", "not a phone"):
            response = ask_code(client, typed)

            assert response.status_code == 200 and response.context["form"].errors["phone"], typed
        assert sms.outbox == []

    def test_sends_codes_only_to_the_regions_set(self, client, settings):
        refused = ask_code(client, "+852 9123 4567")
        settings.HUIYUAN_SMS_REGIONS = ["CN", "HK"]
        accepted = ask_code(client, "+852 9123 4567")

        assert refused.status_code == 200 and refused.context["form"].errors["phone"]
        assert accepted.status_code == 302 and [m.phone for m in sms.outbox] == ["+85291234567"]

    def test_sends_a_signed_in_member_home(self, member_client):
        response = member_client.get(reverse("portal:login"))

        assert response.status_code == 302 and response["Location"] == reverse("portal:home")


class TestCodeStep:
    def test_the_phone_goes_in_the_session_not_the_url(self, client, member):
        response = ask_code(client)

        assert response.status_code == 302 and response["Location"] == reverse("portal:login-code")
        page = client.get(response["Location"]).content.decode()
        assert "138****8000" in page and "13800138000" not in page

    def test_the_code_field_suits_a_phone(self, client, member):
        ask_code(client)

        body = client.get(reverse("portal:login-code")).content.decode()

        assert 'inputmode="numeric"' in body and 'autocomplete="one-time-code"' in body

    def test_without_a_phone_goes_back_to_the_first_step(self, client, db):
        response = client.get(reverse("portal:login-code"))

        assert response.status_code == 302 and response["Location"] == reverse("portal:login")

    def test_the_right_code_signs_the_member_in(self, client, member):
        response = sign_in_by_code(client)

        assert response.status_code == 302 and response["Location"] == reverse("portal:home")
        assert portal_member_id(client) == member.pk
        assert client.get(reverse("portal:home")).status_code == 200

    def test_a_code_typed_with_spaces_or_full_width_digits_is_fine(self, client, member):
        ask_code(client)
        code = last_code()
        full_width = "".join(chr(ord(d) + 0xFEE0) for d in code)

        response = enter_code(client, f" {full_width[:3]} {full_width[3:]} ")

        assert response.status_code == 302 and portal_member_id(client) == member.pk

    def test_a_wrong_code_says_how_many_tries_are_left(self, client, member):
        ask_code(client)

        response = enter_code(client, wrong(last_code()))

        assert response.status_code == 200 and portal_member_id(client) is None
        assert "That code is not right. 4 more tries." in response.content.decode()

    def test_a_wrong_code_five_times_locks_it(self, client, member):
        ask_code(client)
        code = last_code()
        for _ in range(4):
            enter_code(client, wrong(code))

        fifth = enter_code(client, wrong(code))
        right = enter_code(client, code)

        assert "this code is locked" in fifth.content.decode()
        assert "this code is locked" in right.content.decode() and portal_member_id(client) is None

    def test_an_expired_code_is_refused(self, client, member):
        ask_code(client)

        with time_machine.travel(timezone.now() + timedelta(minutes=6)):
            response = enter_code(client, last_code())

        assert "This code has expired. Ask for a new one." in response.content.decode()
        assert portal_member_id(client) is None

    def test_a_used_code_is_refused(self, client, member):
        sign_in_by_code(client)
        used = last_code()
        other_browser = Client()
        ask_code(other_browser)  # a minute has not passed: no new code, straight to the code step

        response = enter_code(other_browser, used)

        assert "This code has already been used. Ask for a new one." in response.content.decode()
        assert portal_member_id(other_browser) is None and len(sms.outbox) == 1

    def test_a_new_code_can_be_asked_for_after_a_minute(self, client, member):
        ask_code(client)
        first = last_code()

        with time_machine.travel(timezone.now() + timedelta(seconds=61)):
            response = client.post(reverse("portal:login-resend"))
            second = last_code()
            signed_in = enter_code(client, second)

        assert response.status_code == 302 and len(sms.outbox) == 2
        assert signed_in.status_code == 302 and (first == second or portal_member_id(client) == member.pk)

    def test_a_new_code_within_the_minute_is_refused_with_the_wait(self, client, member):
        ask_code(client)

        client.post(reverse("portal:login-resend"))

        assert len(sms.outbox) == 1
        body = client.get(reverse("portal:login-code")).content.decode()
        assert "You can ask for another in" in body


class TestFrozenAndCancelled:
    def test_a_frozen_member_signs_in_and_is_told(self, client, member):
        services.member_freeze(member=member, by=None, reason="lost card")

        response = sign_in_by_code(client)

        assert response.status_code == 302 and portal_member_id(client) == member.pk
        assert "frozen" in client.get(reverse("portal:home")).content.decode()

    def test_a_cancelled_membership_gets_a_clear_page_after_the_code(self, client, member):
        Member.objects.filter(pk=member.pk).update(status=Member.Status.CANCELLED)

        response = sign_in_by_code(client)

        assert response.status_code == 403
        assert "This membership is closed" in response.content.decode()
        assert portal_member_id(client) is None
        assert client.get(reverse("portal:home")).status_code == 302

    def test_a_cancelled_membership_gets_the_same_first_step_as_a_new_number(self, member):
        Member.objects.filter(pk=member.pk).update(status=Member.Status.CANCELLED)
        cancelled, unknown = Client(), Client()

        first = ask_code(cancelled, TYPED)
        second = ask_code(unknown, "139 0013 9000")

        assert (first.status_code, first["Location"]) == (second.status_code, second["Location"])
        assert [m.phone for m in sms.outbox] == [PHONE, OTHER_PHONE]


class TestNext:
    def test_a_portal_page_sends_a_signed_out_visitor_to_sign_in_and_back(self, client, member):
        for name in ("portal:home", "portal:code", "portal:me"):
            response = client.get(reverse(name))
            assert response.status_code == 302
            assert response["Location"] == f"{reverse('portal:login')}?next={reverse(name).replace('/', '%2F')}"

        ask_code(client, next=reverse("portal:code"))
        response = enter_code(client, last_code())

        assert response["Location"] == reverse("portal:code")

    @pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/m/", "/admin/", "/m/login/"])
    def test_a_next_off_the_portal_is_ignored(self, client, member, target):
        ask_code(client, next=target)

        response = enter_code(client, last_code())

        assert response["Location"] == reverse("portal:home")


class TestLogout:
    def test_signs_the_member_out(self, member_client, member):
        response = member_client.post(reverse("portal:logout"))

        assert response.status_code == 302 and response["Location"] == reverse("portal:login")
        assert portal_member_id(member_client) is None
        assert member_client.get(reverse("portal:home")).status_code == 302

    def test_needs_a_post(self, member_client, member):
        response = member_client.get(reverse("portal:logout"))

        assert response.status_code == 405 and portal_member_id(member_client) == member.pk


class TestCsrf:
    def test_the_login_post_needs_the_token(self, member):
        client = Client(enforce_csrf_checks=True)

        refused = ask_code(client)
        client.get(reverse("portal:login"))
        accepted = ask_code(client, csrfmiddlewaretoken=client.cookies["csrftoken"].value)

        assert refused.status_code == 403 and accepted.status_code == 302
        assert len(sms.outbox) == 1

    def test_the_code_post_needs_the_token(self, member):
        client = Client(enforce_csrf_checks=True)
        client.get(reverse("portal:login"))
        token = client.cookies["csrftoken"].value
        ask_code(client, csrfmiddlewaretoken=token)

        refused = enter_code(client, last_code())

        assert refused.status_code == 403 and portal_member_id(client) is None

    def test_logout_needs_the_token(self, member):
        client = Client(enforce_csrf_checks=True)
        from tests.portal.conftest import portal_client

        portal_client(member, client)

        assert client.post(reverse("portal:logout")).status_code == 403
        assert portal_member_id(client) == member.pk


class TestPrivacy:
    def test_no_phone_number_or_code_in_any_log_line(self, client, member, caplog):
        caplog.set_level(logging.DEBUG)

        sign_in_by_code(client)
        client.get(reverse("portal:home"))

        logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        assert caplog.records and "13800138000" not in logged and last_code() not in logged

    def test_the_console_backend_masks_the_number(self, capsys):
        sms.ConsoleSmsBackend().send(PHONE, "code 123456")

        out = capsys.readouterr().out
        assert "+86 138****8000" in out and "123456" in out and "13800138000" not in out


class TestMemberPages:
    def test_are_never_cached(self, member_client):
        response = member_client.get(reverse("portal:me"))

        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]

    def test_an_htmx_request_signed_out_is_sent_to_sign_in_as_a_whole_page(self, client, db):
        response = client.get(reverse("portal:home"), headers={"HX-Request": "true"})

        assert response.status_code == 200 and response["HX-Redirect"].startswith(reverse("portal:login"))
