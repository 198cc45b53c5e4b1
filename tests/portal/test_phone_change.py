"""A member moves their membership to a new phone: first a code to the current number proves it is them, then a
code texted to the new number proves that one; the old number is told, other devices are signed out, and a
number that is another member's is refused."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import sms
from members.models import Member, PortalCode
from members.portal_auth import PortalCodeRefused, portal_code_verify
from tests.factories import MemberFactory
from tests.portal.conftest import OTHER_PHONE, PHONE, last_code, portal_client, portal_member_id

pytestmark = pytest.mark.django_db
NEW = "+8613700137000"
NEW_TYPED = "137 0013 7000"


VERIFY = reverse("portal:phone-verify")


def prove_current(client: Client) -> None:
    """Step 0: a code to the member's current number."""
    client.post(VERIFY, {"send": "1"})
    client.post(VERIFY, {"code": last_code(PHONE)})
    sms.outbox.clear()


@pytest.fixture
def proved(member_client) -> Client:
    prove_current(member_client)
    return member_client


def ask(client: Client, phone: str = NEW_TYPED):  # type: ignore[no-untyped-def]
    return client.post(reverse("portal:phone"), {"phone": phone})


def confirm(client: Client, code: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("portal:phone-code"), {"code": code}, follow=True)


def test_a_code_goes_to_the_new_number_for_a_phone_change(proved):
    response = ask(proved)

    assert response.status_code == 302 and response["Location"] == reverse("portal:phone-code")
    assert [m.phone for m in sms.outbox] == [NEW]
    assert PortalCode.objects.get(phone=NEW).purpose == PortalCode.Purpose.PHONE_CHANGE
    assert "confirm this phone number" in sms.outbox[0].text


def test_the_right_code_moves_the_membership_and_tells_the_old_number(proved, member):
    ask(proved)

    response = confirm(proved, last_code(NEW))

    member.refresh_from_db()
    assert member.phone.as_e164 == NEW
    assert response.redirect_chain[-1][0] == reverse("portal:me") and "137****7000" in response.content.decode()
    told = [m for m in sms.outbox if m.phone == PHONE]
    assert len(told) == 1 and "137****7000" in told[0].text


def test_this_browser_stays_signed_in_and_others_are_signed_out(proved, member):
    other_device = portal_client(member)
    ask(proved)

    confirm(proved, last_code(NEW))

    assert proved.get(reverse("portal:home")).status_code == 200
    assert other_device.get(reverse("portal:home")).status_code == 302
    assert portal_member_id(proved) == member.pk


def test_the_new_number_signs_in_afterwards(proved, member, client):
    ask(proved)
    confirm(proved, last_code(NEW))

    client.post(reverse("portal:login"), {"phone": NEW_TYPED})
    client.post(reverse("portal:login-code"), {"code": last_code(NEW)})

    assert portal_member_id(client) == member.pk


def test_a_wrong_code_changes_nothing_and_counts(proved, member):
    ask(proved)
    wrong = f"{(int(last_code(NEW)) + 1) % 1_000_000:06d}"

    response = confirm(proved, wrong)

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and "4 more tries" in response.content.decode()


def test_the_fifth_wrong_code_locks_it(proved, member):
    ask(proved)
    right = last_code(NEW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        confirm(proved, wrong)

    response = confirm(proved, right)

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and "locked" in response.content.decode()


def test_an_expired_code_is_refused(proved, member):
    ask(proved)
    PortalCode.objects.filter(phone=NEW).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = confirm(proved, last_code(NEW))

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and "expired" in response.content.decode()


def test_a_sign_in_code_for_the_new_number_does_not_change_the_phone(proved, member, client):
    client.post(reverse("portal:login"), {"phone": NEW_TYPED})  # someone signs in with the new number
    sign_in_code = last_code(NEW)
    proved.post(reverse("portal:phone"), {"phone": NEW_TYPED})  # a phone-change code of its own

    response = confirm(proved, sign_in_code)

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE and response.status_code == 200


def test_a_phone_change_code_does_not_sign_in(proved, client):
    ask(proved)

    assert not PortalCode.objects.filter(phone=NEW, purpose=PortalCode.Purpose.LOGIN).exists()
    with pytest.raises(PortalCodeRefused) as refused:
        portal_code_verify(NEW, last_code(NEW))
    assert refused.value.reason == "missing"


def test_another_member_s_number_is_refused_after_the_proof(proved, member):
    MemberFactory.create(phone=OTHER_PHONE)
    ask(proved, "139 0013 9000")

    response = confirm(proved, last_code(OTHER_PHONE))

    member.refresh_from_db()
    assert member.phone.as_e164 == PHONE
    assert "belongs to another membership" in response.content.decode()


def test_the_same_number_is_refused_without_a_text(proved):
    response = ask(proved, "138 0013 8000")

    assert response.status_code == 200 and "already your number" in response.content.decode() and not sms.outbox


def test_a_number_that_cannot_take_texts_is_a_form_error(proved):
    response = ask(proved, "12345")

    assert response.status_code == 200 and not sms.outbox


def test_sends_are_limited_per_number(proved):
    ask(proved)

    again = proved.post(reverse("portal:phone-resend"), follow=True)

    assert len(sms.outbox) == 1 and "You can ask for another in" in again.content.decode()


def test_the_code_step_without_a_number_goes_back(proved):
    response = proved.get(reverse("portal:phone-code"))

    assert response.status_code == 302 and response["Location"] == reverse("portal:phone")


def test_no_phone_number_is_in_a_url(proved):
    urls = [ask(proved)["Location"], confirm(proved, last_code(NEW)).redirect_chain[-1][0]]

    assert not [url for url in urls if "137" in url or "138" in url]


def test_the_page_needs_a_signed_in_member(client):
    response = client.post(reverse("portal:phone"), {"phone": NEW_TYPED})

    assert response.status_code == 302 and not sms.outbox and not Member.objects.filter(phone=NEW).exists()


def test_the_hourly_limit_counts_codes_of_every_purpose(proved, client):
    for _ in range(5):
        PortalCode.objects.create(
            phone=NEW,
            purpose=PortalCode.Purpose.LOGIN,
            code_hash="x",
            created_at=timezone.now() - timedelta(minutes=10),
            expires_at=timezone.now(),
        )

    refused = ask(proved)

    assert refused.status_code == 429 and not sms.outbox
    assert "Too many codes were sent to this number" in refused.content.decode()


def test_without_proving_the_current_number_nothing_is_sent_to_a_new_one(member_client, member):
    response = ask(member_client)

    assert response.status_code == 302 and response["Location"] == VERIFY and not sms.outbox


def test_a_password_session_must_prove_the_current_number(member, client):
    from members.portal_auth import portal_password_set

    portal_password_set(member=member, password="a-long-Passw0rd")
    client.post(reverse("portal:login-password"), {"phone": "138 0013 8000", "password": "a-long-Passw0rd"})
    assert portal_member_id(client) == member.pk

    assert ask(client)["Location"] == VERIFY
    assert client.get(reverse("portal:phone-code")).status_code == 302
    assert not [m for m in sms.outbox if m.phone == NEW]


def test_proving_the_current_number_sends_a_sign_in_code_to_it(member_client):
    member_client.post(VERIFY, {"send": "1"})

    assert [m.phone for m in sms.outbox] == [PHONE]
    assert PortalCode.objects.get(phone=PHONE).purpose == PortalCode.Purpose.LOGIN


def test_a_wrong_code_for_the_current_number_does_not_unlock_the_change(member_client):
    member_client.post(VERIFY, {"send": "1"})
    wrong = f"{(int(last_code(PHONE)) + 1) % 1_000_000:06d}"

    response = member_client.post(VERIFY, {"code": wrong})

    assert response.status_code == 200 and "4 more tries" in response.content.decode()
    assert ask(member_client)["Location"] == VERIFY


def test_a_sign_in_by_code_counts_as_proof(member, client):
    client.post(reverse("portal:login"), {"phone": "138 0013 8000"})
    client.post(reverse("portal:login-code"), {"code": last_code(PHONE)})

    assert ask(client)["Location"] == reverse("portal:phone-code")


def test_the_session_key_changes_with_the_phone(proved, member):
    from django.conf import settings

    before = proved.cookies[settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME].value
    ask(proved)
    confirm(proved, last_code(NEW))

    assert proved.cookies[settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME].value != before
    assert portal_member_id(proved) == member.pk


def test_the_minute_between_codes_is_counted_per_purpose(proved, client):
    client.post(reverse("portal:login"), {"phone": NEW_TYPED})  # a sign-in code to the new number

    response = ask(proved)  # a phone-change code to it within the minute

    assert response["Location"] == reverse("portal:phone-code")
    assert [m.phone for m in sms.outbox] == [NEW, NEW]
    purposes = sorted(PortalCode.objects.filter(phone=NEW).values_list("purpose", flat=True))
    assert purposes == [PortalCode.Purpose.LOGIN, PortalCode.Purpose.PHONE_CHANGE]
