"""A number that is no member's yet joins after proving it: channel portal, consent only when ticked."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from tests.factories import MemberFactory
from tests.portal.conftest import OTHER_PHONE, portal_member_id, sign_in_by_code

pytestmark = pytest.mark.django_db


def prove_new_number(client: Client):  # type: ignore[no-untyped-def]
    return sign_in_by_code(client, OTHER_PHONE)


class TestRegistration:
    def test_a_proved_new_number_is_asked_to_join(self, client):
        response = prove_new_number(client)

        assert response.status_code == 302 and response["Location"] == reverse("portal:login-register")
        page = client.get(response["Location"]).content.decode()
        assert "139****9000" in page and 'name="marketing_consent"' in page
        assert "checked" not in page  # no consent unless the member ticks it
        assert portal_member_id(client) is None

    def test_joining_registers_through_the_portal_and_signs_in(self, client):
        prove_new_number(client)

        response = client.post(reverse("portal:login-register"), {"name": " 李 雷 "})

        member = Member.objects.get(phone=OTHER_PHONE)
        assert response.status_code == 302 and response["Location"] == reverse("portal:home")
        assert (member.channel, member.name, member.marketing_consent) == (Member.Channel.PORTAL, "李 雷", False)
        assert portal_member_id(client) == member.pk

    def test_the_name_is_optional_and_consent_is_kept_when_ticked(self, client):
        prove_new_number(client)

        client.post(reverse("portal:login-register"), {"name": "", "marketing_consent": "on"})

        member = Member.objects.get(phone=OTHER_PHONE)
        assert member.name == "" and member.marketing_consent and member.marketing_consent_at

    def test_needs_a_proved_number(self, client):
        response = client.post(reverse("portal:login-register"), {"name": "x"})

        assert response.status_code == 302 and response["Location"] == reverse("portal:login")
        assert not Member.objects.exists()

    def test_the_proof_lasts_fifteen_minutes(self, client):
        prove_new_number(client)

        with time_machine.travel(timezone.now() + timedelta(minutes=16)):
            response = client.post(reverse("portal:login-register"), {"name": "x"})

        assert response["Location"] == reverse("portal:login")
        assert not Member.objects.filter(phone=OTHER_PHONE).exists()

    def test_a_member_registered_at_the_counter_meanwhile_is_signed_in(self, client):
        prove_new_number(client)
        at_counter = MemberFactory.create(phone=OTHER_PHONE)

        response = client.post(reverse("portal:login-register"), {"name": "x"})

        assert response.status_code == 302 and portal_member_id(client) == at_counter.pk
        assert Member.objects.filter(phone=OTHER_PHONE).count() == 1
