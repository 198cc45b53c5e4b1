"""Manual tags: saving tags (checked and audited), giving and taking them one member at a time or for a selection
of ids, for a filtered member list (with progress) and from an imported file (with per-row errors); every
change has an event, and nothing is logged twice."""

import pghistory.models
import pytest

from members.models import Member
from tags import services
from tags.models import MemberTag, MemberTagEvent, Tag, TagGroup
from tests.factories import MemberFactory
from tests.tags.test_rules_helpers import custom_group, everyone, manual_tag, rule_tag

pytestmark = pytest.mark.django_db


def holders(tag: Tag) -> list[int]:
    return sorted(MemberTag.objects.filter(tag=tag).values_list("member_id", flat=True))


def events(tag: Tag) -> list[tuple[int, str, str]]:
    return sorted(MemberTagEvent.objects.filter(tag=tag).values_list("member_id", "action", "source"))


@pytest.fixture
def vip(db) -> Tag:
    return manual_tag("VIP")


@pytest.fixture
def member(store) -> Member:
    return MemberFactory.create(registered_store=store)


class TestTagSave:
    def save(self, **values: object) -> Tag:
        fields = {"tag": None, "by": None, "group": custom_group(), "name": "Gold club", "kind": "manual"}
        return services.tag_save(**{**fields, "colour": "#206BC4", **values})  # type: ignore[arg-type]

    def test_creates_a_manual_tag_audited_with_the_user(self, owner):
        tag = self.save(by=owner.user, description="  Invited guests ")

        assert (tag.name, tag.colour, tag.description, tag.rule) == ("Gold club", "#206bc4", "Invited guests", {})
        context = pghistory.models.Events.objects.filter(pgh_obj_model="tags.Tag", pgh_obj_id=tag.pk).get().pgh_context
        assert context["user"] == owner.user.pk and context["action"] == "tag_save"

    def test_a_rule_tag_keeps_its_rule_clean(self, store):
        tag = self.save(kind="rule", rule={"match": "any", "conditions": [{"field": "points", "min": "5"}]})

        assert tag.rule == {"match": "any", "conditions": [{"field": "points", "min": 5, "max": None}]}

    @pytest.mark.parametrize(
        ("values", "field"),
        [
            ({"name": "  "}, "name"),
            ({"colour": "blue"}, "colour"),
            ({"kind": "system"}, "kind"),
            ({"kind": "rule", "rule": {"match": "all", "conditions": []}}, "rule"),
        ],
    )
    def test_refuses_what_does_not_check(self, db, values, field):
        with pytest.raises(services.TagError) as refused:
            self.save(**values)

        assert refused.value.field == field

    def test_refuses_a_system_group_and_a_second_tag_of_the_same_name(self, vip):
        preference = TagGroup.objects.get(dimension="preference")

        with pytest.raises(services.TagError, match="filled by the nightly jobs"):
            self.save(group=preference)
        with pytest.raises(services.TagError, match="already has a tag of this name"):
            self.save(name="VIP")

    def test_a_tag_keeps_its_kind(self, vip):
        with pytest.raises(services.TagError, match="cannot change between manual and rule"):
            self.save(tag=vip, kind="rule", rule=everyone({"field": "points", "min": 1}))

    def test_a_system_tag_changes_only_colour_and_description(self, db):
        tag = Tag.objects.get(code="lifecycle:active")

        with pytest.raises(services.TagError):
            self.save(tag=tag, group=tag.group, name="Renamed", kind=tag.kind)
        saved = self.save(tag=tag, group=tag.group, name="", kind=tag.kind, colour="#111111", description="x")

        assert (saved.colour, saved.description, saved.name) == ("#111111", "x", "")

    def test_lifecycle_and_rfm_tags_cannot_be_deactivated(self, db):
        with pytest.raises(services.TagError):
            services.tag_deactivate(tag=Tag.objects.get(code="lifecycle:active"), by=None)


class TestOneMember:
    def test_giving_a_tag_adds_a_row_and_an_event_with_the_user(self, member, vip, owner):
        added = services.member_tag_add(member=member, tag=vip, by=owner.user, reason="Birthday party")

        assert added and holders(vip) == [member.pk]
        event = MemberTagEvent.objects.get(tag=vip)
        assert (event.action, event.source, event.by, event.reason) == ("added", "manual", owner.user, "Birthday party")
        vip.refresh_from_db()
        assert vip.member_count == 1

    def test_giving_it_again_changes_nothing(self, member, vip):
        services.member_tag_add(member=member, tag=vip, by=None)

        assert services.member_tag_add(member=member, tag=vip, by=None) is False
        assert len(events(vip)) == 1

    def test_taking_it_away_logs_the_removal(self, member, vip, owner):
        services.member_tag_add(member=member, tag=vip, by=None)

        removed = services.member_tag_remove(member=member, tag=vip, by=owner.user)

        assert removed and holders(vip) == []
        assert events(vip) == [(member.pk, "added", "manual"), (member.pk, "removed", "manual")]
        assert services.member_tag_remove(member=member, tag=vip, by=owner.user) is False
        vip.refresh_from_db()
        assert vip.member_count == 0

    def test_rule_tags_and_inactive_tags_are_not_given_by_hand(self, member):
        with pytest.raises(services.TagError, match="Only manual tags"):
            services.member_tag_add(member=member, tag=rule_tag(everyone({"field": "points", "min": 1})), by=None)
        with pytest.raises(services.TagError, match="inactive"):
            services.member_tag_add(member=member, tag=manual_tag("Old", active=False), by=None)

    def test_a_cancelled_membership_is_not_tagged(self, vip, store):
        gone = MemberFactory.create(registered_store=store, status=Member.Status.CANCELLED)

        with pytest.raises(services.TagError, match="cancelled"):
            services.member_tag_add(member=gone, tag=vip, by=None)


class TestSelection:
    def test_adds_only_the_members_who_lack_it_and_logs_only_them(self, vip, store):
        holder, fresh = MemberFactory.create_batch(2, registered_store=store)
        gone = MemberFactory.create(registered_store=store, status=Member.Status.CANCELLED)
        services.members_tag_add(tag=vip, member_ids=[holder.pk], by=None)

        added = services.members_tag_add(tag=vip, member_ids=[holder.pk, fresh.pk, gone.pk, 987_654_321], by=None)

        assert added == 1 and holders(vip) == sorted([holder.pk, fresh.pk])
        assert [e[0] for e in events(vip)] == sorted([holder.pk, fresh.pk])
        vip.refresh_from_db()
        assert vip.member_count == 2

    def test_removes_a_selection(self, vip, store):
        members = MemberFactory.create_batch(3, registered_store=store)
        services.members_tag_add(tag=vip, member_ids=[m.pk for m in members], by=None)

        removed = services.members_tag_remove(tag=vip, member_ids=[members[0].pk, members[1].pk, 987_654_321], by=None)

        assert removed == 2 and holders(vip) == [members[2].pk]
        assert [e[1] for e in events(vip)].count("removed") == 2


class TestFilteredList:
    def test_tags_every_member_of_the_list_in_batches_with_progress(self, vip, store, other_store, monkeypatch):
        monkeypatch.setattr(services, "BATCH", 2)
        chosen = MemberFactory.create_batch(3, registered_store=store, channel=Member.Channel.PORTAL)
        MemberFactory.create(registered_store=other_store, channel=Member.Channel.PORTAL)
        MemberFactory.create(registered_store=store)
        reports: list[tuple[int, int, int]] = []

        result = services.members_tag_by_filter(
            tag=vip,
            query=f"channel=portal&store={store.pk}&sort=name&page_size=100",
            action="added",
            by=None,
            progress=lambda *figures: reports.append(figures),
        )

        assert result == (3, 3) and holders(vip) == sorted(m.pk for m in chosen)
        assert reports == [(0, 3, 0), (2, 3, 2), (3, 3, 3)]
        assert {e.reason for e in MemberTagEvent.objects.filter(tag=vip)} == {"member list filter"}

    def test_running_it_again_changes_nothing(self, vip, store):
        MemberFactory.create_batch(2, registered_store=store)
        services.members_tag_by_filter(tag=vip, query="", action="added", by=None)

        assert services.members_tag_by_filter(tag=vip, query="", action="added", by=None) == (2, 0)
        assert len(events(vip)) == 2

    def test_takes_the_tag_away_from_the_list(self, vip, store):
        members = MemberFactory.create_batch(2, registered_store=store, channel=Member.Channel.PORTAL)
        other = MemberFactory.create(registered_store=store)
        services.members_tag_add(tag=vip, member_ids=[m.pk for m in [*members, other]], by=None)

        assert services.members_tag_by_filter(tag=vip, query="channel=portal", action="removed", by=None) == (2, 2)
        assert holders(vip) == [other.pk]


class TestImport:
    def test_tags_the_rows_that_name_a_member_and_reports_the_others(self, vip, store):
        by_no, by_phone = MemberFactory.create_batch(2, registered_store=store)
        gone = MemberFactory.create(registered_store=store, status=Member.Status.CANCELLED)
        national = str(by_phone.phone.national_number)
        headers = ["member_no", "phone", "note"]
        rows = [
            [by_no.member_no, "", "by number"],
            ["", national, "by phone, without +86"],
            ["", "12345", "not a phone"],
            ["9999999999", "", "nobody"],
            ["", "", ""],  # a blank row is skipped
            ["", "", "no key"],
            [gone.member_no, "", "cancelled"],
            [by_no.member_no, "", "again"],
        ]

        outcome = services.members_tag_import(
            tag=vip, headers=headers, rows=rows, action="added", by=None, file_name="guests.xlsx"
        )

        assert holders(vip) == sorted([by_no.pk, by_phone.pk])
        assert (outcome.rows, outcome.matched, outcome.changed, outcome.failed) == (8, 2, 2, 4)
        assert [(e["row"], e["column"]) for e in outcome.errors] == [
            (4, "phone"),
            (7, ""),
            (5, "member_no"),
            (8, "member_no"),
        ]
        assert outcome.errors[0]["values"] == ["", "12345", "not a phone"]
        assert {(e.source, e.reason) for e in MemberTagEvent.objects.filter(tag=vip)} == {("import", "guests.xlsx")}

    def test_a_file_can_take_the_tag_away(self, vip, store):
        member = MemberFactory.create(registered_store=store)
        services.members_tag_add(tag=vip, member_ids=[member.pk], by=None)

        outcome = services.members_tag_import(
            tag=vip, headers=["手机号"], rows=[[str(member.phone)]], action="removed", by=None, file_name="f.csv"
        )

        assert outcome.changed == 1 and holders(vip) == []

    def test_reading_a_file_needs_a_member_column(self, db):
        import io

        from members.spreadsheets import SpreadsheetError

        with pytest.raises(SpreadsheetError, match="member_no column"):
            services.tag_import_read(io.BytesIO(b"name\nTom\n"), name="x.csv")


@pytest.mark.django_db
def test_a_filtered_list_with_a_filter_that_does_not_parse_is_not_tagged(owner_client):
    from django.urls import reverse

    from tags.models import Tag, TagGroup

    group = TagGroup.objects.get(dimension=TagGroup.Dimension.CUSTOM, name="")
    vip = Tag.objects.create(group=group, name="VIP-stale-filter")
    MemberFactory.create_batch(3)

    response = owner_client.post(
        reverse("tags:bulk-filter"), {"query": "tag=999999", "target": vip.pk, "action": "added"}
    )

    assert response.status_code == 200 and "not valid" in response.content.decode()
    assert not vip.member_tags.exists()
