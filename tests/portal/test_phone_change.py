"""A member moves their membership to a new phone: a code texted to the new number proves it, the old number is
told, other devices are signed out, and a number that is another member's is refused."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import sms
from members.models import Member, PortalCode
from members.portal_auth import portal_code_verify
from tests.factories import MemberFactory
from tests.portal.conftest import OTHER_PHONE, PHONE, last_code, portal_client, portal_member_id

pytestmark = pytest.mark.django_db
NEW = "+8613700137000"
NEW_TYPED = "137 0013 7000"


def ask(client: Client, phone: str = NEW_TYPED):  # type: ignore[no-untyped-def]
    return client.post(reverse("portal:phone"), {"phone": phone})


def confirm(client: Client, code: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("portal:phone-code"), {"code": code}, follow=True)


def test_a_code_goes_to_the_new_number_for_a_phone_change(member_client):
    response = ask(member_client)

    assert response.status_code == 302 and response["Location"] == reverse("portal:phone-code")
    assert [m.phone for m in sms.outbox] == [NEW]
    assert PortalCode.objects.get(phone=NEW).purpose == PortalCode.Purpose.PHONE_CHANGE
    assert "confirm this phone number" in sms.outbox[0].text


def test_the_right_code_moves_the_membership_and_tells_the_old_number(member_client, member):
    ask(member_client)

    response = confirm(member_client, last_code(NEW))

    member.refresh_from_db()
    assert member.phone.as_e164 == NEW
    assert response.redirect_chain[-1][0] == reverse("portal:me") and "137****7000" in response.content.decode()
    told = [m for m in sms.outbox if m.phone == PHONE]
    assert len(told) == 1 and "137****7000" in told[0].text


def test_this_browser_stays_signed_in_and_others_are_signed_out(member_client, member):
    other_device = portal_client(member)
    ask(member_client)

    confirm(member_client, last_code(NEW))

    assert member_client.get(reverse("portal:home")).status_code == 200
    assert other_device.get(reverse("portal:home")).status_code == 302
    assert portal_member_id(member_client) == member.pk


def test_the_new_number_signs_in_afterwards(member_client, member, client):
    ask(member_client)
    confirm(member_client, last_code(NEW))

    client.post(reverse("portal:login"), {"phone": NEW_TYPED})
    client.post(reverse("portal:login-code"), {"code": last_code(NEW)})

    assert portal_member_id(client) == member.pk


def test_a_wrong_code_changes_nothing_and_counts(member_client, member):
    ask(member_client)
    wrong = f"{(int(last_code(NEW)) + 1) % 1_000_000:06d}"

    response = confirm(member_client, wrong)

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and "4 more tries" in response.content.decode()


def test_the_fifth_wrong_code_locks_it(member_client, member):
    ask(member_client)
    right = last_code(NEW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        confirm(member_client, wrong)

    response = confirm(member_client, right)

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and "locked" in response.content.decode()


def test_an_expired_code_is_refused(member_client, member):
    ask(member_client)
    PortalCode.objects.filter(phone=NEW).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = confirm(member_client, last_code(NEW))

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and "expired" in response.content.decode()


def test_a_sign_in_code_for_the_new_number_does_not_change_the_phone(member_client, member, client):
    client.post(reverse("portal:login"), {"phone": NEW_TYPED})  # someone signs in with the new number
    sign_in_code = last_code(NEW)
    member_client.post(reverse("portal:phone"), {"phone": NEW_TYPED})  # a phone-change code of its own

    response = confirm(member_client, sign_in_code)

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and response.status_code == 200


def test_a_phone_change_code_does_not_sign_in(member_client, client):
    ask(member_client)

    assert not PortalCode.objects.filter(phone=NEW, purpose=PortalCode.Purpose.LOGIN).exists()
    with pytest.raises(Exception):  # noqa: B017 - no sign-in code exists for this number
        portal_code_verify(NEW, last_code(NEW))


def test_another_member_s_number_is_refused_after_the_proof(member_client, member):
    MemberFactory.create(phone=OTHER_PHONE)
    ask(member_client, "139 0013 9000")

    response = confirm(member_client, last_code(OTHER_PHONE))

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE
    assert "belongs to another membership" in response.content.decode()


def test_the_same_number_is_refused_without_a_text(member_client):
    response = ask(member_client, "138 0013 8000")

    assert response.status_code == 200 and "already your number" in response.content.decode() and not sms.outbox


def test_a_number_that_cannot_take_texts_is_a_form_error(member_client):
    response = ask(member_client, "12345")

    assert response.status_code == 200 and not sms.outbox


def test_sends_are_limited_per_number(member_client):
    ask(member_client)

    again = member_client.post(reverse("portal:phone-resend"), follow=True)

    assert len(sms.outbox) == 1 and "You can ask for another in" in again.content.decode()


def test_the_code_step_without_a_number_goes_back(member_client):
    response = member_client.get(reverse("portal:phone-code"))

    assert response.status_code == 302 and response["Location"] == reverse("portal:phone")


def test_no_phone_number_is_in_a_url(member_client):
    response = ask(member_client)

    assert "137" not in response["Location"]


def test_the_page_needs_a_signed_in_member(client):
    response = client.post(reverse("portal:phone"), {"phone": NEW_TYPED})

    assert response.status_code == 302 and not sms.outbox and not Member.objects.filter(phone=NEW).exists()


def test_the_hourly_limit_counts_codes_of_every_purpose(member_client, client):
    for _ in range(5):
        PortalCode.objects.create(
            phone=NEW,
            purpose=PortalCode.Purpose.LOGIN,
            code_hash="x",
            created_at=timezone.now() - timedelta(minutes=10),
            expires_at=timezone.now(),
        )

    refused = ask(member_client)

    assert refused.status_code == 429 and not sms.outbox
    assert "Too many codes were sent to this number" in refused.content.decode()
