"""Marketing consent keeps its record: every giving and withdrawal is a row of its own with the door it came
through, who recorded it, and the words agreed to; the rows are never changed."""

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, transaction
from django.urls import reverse
from django.utils import translation

from members.models import ConsentRecord, Member
from members.services import (
    CONSENT_WORDING,
    member_cancel,
    member_register,
    member_self_update,
    member_update,
)

pytestmark = pytest.mark.django_db


def records(member: Member) -> list[tuple[bool, str]]:
    return list(member.consent_records.order_by("pk").values_list("given", "source"))


def test_a_registration_with_consent_records_it_through_the_channel_s_door(owner):
    by_staff = member_register(phone="13800138001", marketing_consent=True, by=owner.user)
    in_portal = member_register(phone="13800138002", channel=Member.Channel.PORTAL, marketing_consent=True)
    imported = member_register(phone="13800138003", channel=Member.Channel.IMPORT, marketing_consent=True)

    assert records(by_staff) == [(True, "staff")]
    assert by_staff.consent_records.get().recorded_by == owner.user
    assert records(in_portal) == [(True, "portal")] and records(imported) == [(True, "import")]


def test_a_registration_without_consent_records_nothing():
    member = member_register(phone="13800138001")

    assert records(member) == []


def test_each_change_is_a_record_and_an_unchanged_answer_is_none(owner):
    member = member_register(phone="13800138001")

    member_update(member=member, by=owner.user, marketing_consent=True)
    member_update(member=member, by=owner.user, marketing_consent=True, name="王五")
    member_self_update(member=member, marketing_consent=False)

    assert records(member) == [(True, "staff"), (False, "portal")]
    member.refresh_from_db()
    last = member.consent_records.latest("pk")
    assert last.recorded_at == member.marketing_consent_at and last.recorded_by is None


def test_the_record_keeps_the_words_in_the_language_they_were_shown_in():
    member = member_register(phone="13800138001")

    with translation.override("zh-hans"):
        member_self_update(member=member, marketing_consent=True)

    wording = member.consent_records.get().wording
    with translation.override("zh-hans"):
        assert wording == str(CONSENT_WORDING[ConsentRecord.Source.PORTAL])
    assert wording != "Tell me about offers and events by text message"


def test_cancelling_a_consenting_member_records_the_withdrawal(owner):
    member = member_register(phone="13800138001", marketing_consent=True)

    member_cancel(member=member, by=owner.user, reason="asked to leave")

    assert records(member) == [(True, "staff"), (False, "cancellation")]


def test_cancelling_a_member_who_never_consented_records_nothing(owner):
    member = member_register(phone="13800138001")

    member_cancel(member=member, by=owner.user, reason="asked to leave")

    assert records(member) == []


def test_a_record_cannot_be_changed():
    member = member_register(phone="13800138001", marketing_consent=True)
    record = member.consent_records.get()

    record.given = False
    with pytest.raises((IntegrityError, InternalError, ProgrammingError)), transaction.atomic():
        record.save()

    assert member.consent_records.get().given is True


def test_the_member_page_lists_the_records(owner_client, owner):
    member = member_register(phone="13800138001", marketing_consent=True, by=owner.user)
    member_self_update(member=member, marketing_consent=False)

    response = owner_client.get(reverse("members:member-detail", args=[member.member_no]) + "?tab=profile")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Member portal" in body and "Agrees to receive marketing messages" in body
    assert f'<td class="font-monospace">{owner.user.username}</td>' in body
