"""The member edits their own details in the portal: name, gender, e-mail and consent freely, the birthday once
(then only staff change it); a complete profile earns the configured growth value once."""

from datetime import date

import pytest
from django.urls import reverse

from assets.models import Account, Asset, LedgerTransaction
from members.models import Member
from members.services import MemberError, member_freeze, member_self_update, member_unfreeze
from tiers.models import TierRules

pytestmark = pytest.mark.django_db
URL = reverse("portal:profile")
FULL = {"name": "王小明", "gender": "male", "birthday": "1990-05-01", "email": "xm@example.com"}


def growth_of(member: Member) -> int:
    account = Account.objects.filter(member=member, asset=Asset.GROWTH).first()
    return account.balance if account else 0


@pytest.fixture
def profile_growth(db) -> int:
    TierRules.objects.update_or_create(pk=1, defaults={"growth_profile_complete": 50})
    return 50


def test_the_page_shows_the_member_s_details(member_client, member):
    body = member_client.get(URL).content.decode()

    assert 'value="王小明"' in body and 'type="date"' in body and 'name="marketing_consent"' in body


def test_saving_changes_the_member_and_says_so(member_client, member):
    response = member_client.post(URL, {**FULL, "marketing_consent": "on"}, follow=True)

    member.refresh_from_db()
    assert response.redirect_chain[-1][0] == reverse("portal:me")
    assert (member.name, member.gender, member.birthday, member.email) == (
        "王小明",
        "male",
        date(1990, 5, 1),
        "xm@example.com",
    )
    assert member.marketing_consent and member.consent_records.get().source == "portal"
    assert "Your details are saved." in response.content.decode()


def test_the_history_says_the_member_made_the_change(member_client, member, owner_client):
    member_client.post(URL, {**FULL, "name": "王大明"})

    body = owner_client.get(reverse("members:member-detail", args=[member.member_no]) + "?tab=history").content
    assert "Edited by the member in the portal" in body.decode()
    assert '<span class="fw-medium history-user">the member</span>' in body.decode()


def test_a_bad_e_mail_is_a_form_error_and_changes_nothing(member_client, member):
    response = member_client.post(URL, {**FULL, "email": "not-an-address"})

    member.refresh_from_db()
    assert response.status_code == 200 and "Enter a valid email address." in response.content.decode()
    assert member.email == "" and member.birthday is None


def test_a_future_birthday_is_refused(member_client, member):
    response = member_client.post(URL, {**FULL, "birthday": "2999-01-01"})

    member.refresh_from_db()
    assert response.status_code == 200 and member.birthday is None
    assert "Enter a birthday between 1900 and today." in response.content.decode()


def test_a_gender_off_the_list_is_refused(member_client, member):
    response = member_client.post(URL, {**FULL, "gender": "robot"})

    member.refresh_from_db()
    assert response.status_code == 200 and member.gender == "unknown"


def test_a_set_birthday_is_shown_but_not_offered(member_client, member):
    Member.objects.filter(pk=member.pk).update(birthday=date(1990, 5, 1))

    body = member_client.get(URL).content.decode()

    assert 'name="birthday"' not in body and "ask at a store" in body


def test_a_posted_birthday_cannot_change_a_set_one(member_client, member):
    Member.objects.filter(pk=member.pk).update(birthday=date(1990, 5, 1))

    member_client.post(URL, {**FULL, "birthday": "1991-01-01", "name": "王大明"})

    member.refresh_from_db()
    assert member.birthday == date(1990, 5, 1) and member.name == "王大明"


def test_the_service_refuses_to_change_a_set_birthday(member):
    Member.objects.filter(pk=member.pk).update(birthday=date(1990, 5, 1))

    with pytest.raises(MemberError) as refused:
        member_self_update(member=member, birthday=date(1991, 1, 1))

    member.refresh_from_db()
    assert refused.value.field == "birthday" and member.birthday == date(1990, 5, 1)


def test_the_service_takes_only_what_members_may_change(member):
    with pytest.raises(ValueError):
        member_self_update(member=member, notes="VIP")


def test_a_complete_profile_earns_growth_once(member_client, member, profile_growth):
    response = member_client.post(URL, FULL, follow=True)
    member_client.post(URL, {**FULL, "name": "王大明"})
    member_client.post(URL, {**FULL, "email": ""})
    member_client.post(URL, FULL)

    assert growth_of(member) == profile_growth
    assert "50 growth value added" in response.content.decode()
    assert LedgerTransaction.objects.filter(member=member, external_ref="profile-complete").count() == 1


def test_an_incomplete_profile_earns_nothing(member_client, member, profile_growth):
    member_client.post(URL, {**FULL, "gender": "unknown"})

    assert growth_of(member) == 0


def test_no_growth_when_none_is_configured(member_client, member):
    member_client.post(URL, FULL)

    assert growth_of(member) == 0


def test_a_frozen_member_saves_details_but_earns_later(member_client, member, profile_growth):
    member_freeze(member=member, by=None)

    response = member_client.post(URL, FULL)

    member.refresh_from_db()
    assert response.status_code == 302 and member.email == "xm@example.com" and growth_of(member) == 0
    member_unfreeze(member=member, by=None)
    member_client.post(URL, FULL)
    assert growth_of(member) == profile_growth


def test_the_page_needs_a_signed_in_member(client):
    response = client.post(URL, FULL)

    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


def test_a_post_without_the_csrf_token_is_refused(member, settings):
    from django.test import Client

    from tests.portal.conftest import portal_client

    strict = portal_client(member, Client(enforce_csrf_checks=True))

    response = strict.post(URL, FULL)

    member.refresh_from_db()
    assert response.status_code == 403 and member.email == ""
