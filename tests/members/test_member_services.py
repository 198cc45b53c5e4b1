"""Members change only through members.services: bad input is refused with the field at fault and nothing
written; every change leaves a pghistory event that names who made it."""

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from members.models import Member
from members.services import (
    MemberError,
    member_cancel,
    member_freeze,
    member_register,
    member_unfreeze,
    member_update,
)


def register(phone: object = "13800138000", **fields: Any) -> Member:
    return member_register(phone=phone, **fields)


def events_of(member: Member) -> list[dict[str, object]]:
    rows = member.events.select_related("pgh_context").order_by("pgh_id")  # type: ignore[attr-defined]
    return [{"label": e.pgh_label, **(e.pgh_context.metadata if e.pgh_context else {})} for e in rows]


@pytest.mark.django_db
class TestMemberRegisterRefuses:
    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"phone": "12345"}, "phone"),
            ({"phone": "not a phone"}, "phone"),
            ({"phone": ""}, "phone"),
            ({"birthday": timezone.localdate() + timedelta(days=1)}, "birthday"),
            ({"birthday": date(1800, 1, 1)}, "birthday"),
            ({"email": "garbage@@example"}, "email"),
            ({"email": "no-at-sign"}, "email"),
            ({"name": "名" * 10_240}, "name"),
            ({"gender": "robot"}, "gender"),
        ],
        ids=[
            "short-phone",
            "letters-phone",
            "no-phone",
            "future-birthday",
            "birthday-1800",
            "email-two-ats",
            "email-no-at",
            "10kb-name",
            "unknown-gender",
        ],
    )
    def test_bad_input_naming_the_field_and_writes_nothing(self, fields, field):
        data = {"phone": "13800138000", **fields}

        with pytest.raises(MemberError) as refused:
            member_register(**data)

        assert refused.value.field == field
        assert Member.objects.count() == 0

    def test_a_phone_another_member_has_whatever_its_spelling(self):
        register("13800138000", name="张三")

        with pytest.raises(MemberError) as refused:
            register("+86 138 0013 8000", name="李四")

        assert refused.value.field == "phone"
        assert list(Member.objects.values_list("name", flat=True)) == ["张三"]

    def test_an_unknown_channel(self):
        with pytest.raises(MemberError) as refused:
            register(channel="carrier-pigeon")

        assert refused.value.field == "channel"
        assert Member.objects.count() == 0


@pytest.mark.django_db(transaction=True)
class TestMemberRegisterConcurrently:
    def test_two_registrations_of_one_phone_let_exactly_one_through(self):
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def attempt(name: str) -> None:
            try:
                barrier.wait()
                outcomes.append(register("13800138000", name=name))
            except MemberError as exc:
                outcomes.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt, args=(name,)) for name in ("张三", "李四")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        errors = [o for o in outcomes if isinstance(o, MemberError)]
        assert len(errors) == 1 and errors[0].field == "phone"
        assert Member.objects.filter(phone="+8613800138000").count() == 1


@pytest.mark.django_db
class TestMemberRegister:
    @pytest.mark.parametrize("typed", ["13800138000", "+86 138 0013 8000", "+8613800138000", " 138-0013-8000 "])
    def test_keeps_the_phone_in_e164(self, typed):
        member = register(typed)

        member.refresh_from_db()
        assert str(member.phone) == "+8613800138000"

    def test_gives_a_valid_member_number(self):
        from members.services import is_valid_member_no

        member = register()

        assert is_valid_member_no(member.member_no)

    def test_keeps_pinyin_and_initials_for_search(self):
        member = register(name="张三丰")

        assert (member.name_pinyin, member.name_initials) == ("zhangsanfeng", "zsf")

    def test_tidies_the_spaces_in_a_name(self):
        member = register(name="  Li   Lei ")

        assert (member.name, member.name_pinyin, member.name_initials) == ("Li Lei", "lilei", "ll")

    def test_dates_consent_when_given(self):
        member = register(marketing_consent=True)

        assert member.marketing_consent and member.marketing_consent_at is not None

    def test_records_who_registered_the_member(self, owner):
        member = register(by=owner.user)

        assert events_of(member) == [{"label": "insert", "user": owner.user.pk, "action": "register"}]


@pytest.mark.django_db
class TestMemberUpdate:
    def test_changes_the_data_given(self, owner):
        member = register(name="张三")

        member_update(member=member, by=owner.user, email="zhangsan@example.com", birthday=date(1990, 5, 1))

        member.refresh_from_db()
        assert (member.email, member.birthday) == ("zhangsan@example.com", date(1990, 5, 1))

    def test_renaming_updates_pinyin_and_initials(self, owner):
        member = register(name="张三")

        member_update(member=member, by=owner.user, name="李小龙")

        member.refresh_from_db()
        assert (member.name_pinyin, member.name_initials) == ("lixiaolong", "lxl")

    def test_refuses_a_phone_another_member_has_and_changes_nothing(self, owner):
        register("13800138000")
        member = register("13900139000", name="张三")

        with pytest.raises(MemberError) as refused:
            member_update(member=member, by=owner.user, phone="13800138000", name="李四")

        member.refresh_from_db()
        assert refused.value.field == "phone"
        assert (str(member.phone), member.name) == ("+8613900139000", "张三")

    def test_refuses_removing_the_phone(self, owner):
        member = register()

        with pytest.raises(MemberError) as refused:
            member_update(member=member, by=owner.user, phone="")

        assert refused.value.field == "phone"

    def test_refuses_a_future_birthday_and_changes_nothing(self, owner):
        member = register(birthday=date(1990, 1, 1))

        with pytest.raises(MemberError):
            member_update(member=member, by=owner.user, birthday=timezone.localdate() + timedelta(days=1))

        member.refresh_from_db()
        assert member.birthday == date(1990, 1, 1)

    def test_dates_a_change_of_consent(self, owner):
        member = register()

        member_update(member=member, by=owner.user, marketing_consent=True)

        member.refresh_from_db()
        assert member.marketing_consent and member.marketing_consent_at is not None

    def test_refuses_a_cancelled_member(self, owner):
        member = register()
        member_cancel(member=member, by=owner.user, reason="asked to leave")

        with pytest.raises(MemberError):
            member_update(member=member, by=owner.user, name="王五")

    def test_records_an_event_with_the_user(self, owner):
        member = register(by=owner.user)

        member_update(member=member, by=owner.user, name="王五")

        assert events_of(member)[-1] == {"label": "update", "user": owner.user.pk, "action": "update"}


@pytest.mark.django_db
class TestMemberFreeze:
    def test_freezes_an_active_member_on_record(self, owner):
        member = register()

        member_freeze(member=member, by=owner.user, reason="lost card")

        member.refresh_from_db()
        assert member.status == Member.Status.FROZEN
        assert events_of(member)[-1] == {
            "label": "update",
            "user": owner.user.pk,
            "action": "frozen",
            "reason": "lost card",
        }

    def test_freezing_a_frozen_member_changes_nothing(self, owner):
        member = register()
        member_freeze(member=member, by=owner.user)
        member.refresh_from_db()
        before = (member.updated_at, len(events_of(member)))

        member_freeze(member=member, by=owner.user)

        member.refresh_from_db()
        assert member.status == Member.Status.FROZEN
        assert (member.updated_at, len(events_of(member))) == before

    def test_unfreezing_makes_the_member_active_again(self, owner):
        member = register()
        member_freeze(member=member, by=owner.user)

        member_unfreeze(member=member, by=owner.user, reason="card found")

        member.refresh_from_db()
        assert member.status == Member.Status.ACTIVE

    def test_refuses_a_cancelled_member(self, owner):
        member = register()
        member_cancel(member=member, by=owner.user, reason="asked to leave")

        with pytest.raises(MemberError):
            member_freeze(member=member, by=owner.user)


@pytest.mark.django_db
class TestMemberCancel:
    def test_pseudonymises_personal_data_and_keeps_the_member_number(self, owner):
        member = register(
            name="张三",
            email="zs@example.com",
            birthday=date(1990, 1, 1),
            notes="likes tea",
            profile={"shoe_size": 42},
            external_id="OLD-1",
            marketing_consent=True,
        )
        member_no = member.member_no

        member_cancel(member=member, by=owner.user, reason="asked to leave")

        member.refresh_from_db()
        assert member.member_no == member_no and member.status == Member.Status.CANCELLED
        assert (member.phone, member.name, member.name_pinyin, member.name_initials) == (None, "", "", "")
        assert (member.email, member.birthday, member.notes, member.profile, member.external_id) == (
            "",
            None,
            "",
            {},
            None,
        )
        assert member.marketing_consent is False

    def test_frees_the_phone_for_a_new_registration(self, owner):
        member = register("13800138000")
        member_cancel(member=member, by=owner.user, reason="asked to leave")

        newcomer = register("13800138000")

        assert newcomer.pk != member.pk

    def test_cancelling_twice_changes_nothing(self, owner):
        member = register()
        member_cancel(member=member, by=owner.user, reason="asked to leave")
        count = len(events_of(member))

        member_cancel(member=member, by=owner.user, reason="again")

        assert len(events_of(member)) == count

    def test_is_recorded_with_the_user_and_reason(self, owner):
        member = register()

        member_cancel(member=member, by=owner.user, reason="asked to leave")

        assert events_of(member)[-1] == {
            "label": "update",
            "user": owner.user.pk,
            "action": "cancel",
            "reason": "asked to leave",
        }
