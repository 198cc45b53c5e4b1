"""The segments pages: list, builder with its live count, save and edit, export, recount, delete, and who may."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from members.models import Member
from members.views import member_list
from tags import segments
from tags.models import MemberTag, Segment, Tag, TagGroup
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def numbers(body: str) -> set[str]:
    return set(re.findall(r'href="/members/(\d{10,20})/"', body))


@pytest.fixture
def coffee(db) -> Tag:
    group = TagGroup.objects.create(name="Interests", dimension=TagGroup.Dimension.CUSTOM)
    return Tag.objects.create(group=group, name="Coffee")


@pytest.fixture
def drinkers(store, coffee) -> list[Member]:
    members = MemberFactory.create_batch(2, registered_store=store, phone=None)
    members[0].phone = "+8613800001111"
    members[0].save()
    for member in members:
        MemberTag.objects.create(member=member, tag=coffee, source=MemberTag.Source.MANUAL)
    return members


@pytest.fixture
def others(store) -> list[Member]:
    return MemberFactory.create_batch(3, registered_store=store)


@pytest.fixture
def segment(coffee, drinkers, owner) -> Segment:
    return segments.segment_save(
        segment=Segment(name="Coffee lovers", description="Bought coffee", definition={"tags": {"any": [coffee.pk]}}),
        by=owner.user,
    )


class TestPages:
    @pytest.mark.parametrize("language", ["zh-hans", "en"])
    @pytest.mark.parametrize("name", ["tags:segments", "tags:segment-new", "tags:segment-edit", "tags:segment-delete"])
    def test_render_in_both_languages(self, owner_client, segment, name, language):
        owner_client.cookies["django_language"] = language
        url = (
            reverse(name, args=[segment.pk]) if name in ("tags:segment-edit", "tags:segment-delete") else reverse(name)
        )

        response = owner_client.get(url)

        assert response.status_code == 200
        assert f'<html lang="{language}">' in response.content.decode()

    def test_list_shows_a_segment_whose_author_is_gone(self, owner_client, segment):
        Segment.objects.create(name="From the API", definition={"v": 1})  # created_by: none (or the user deleted)

        response = owner_client.get(reverse("tags:segments"))

        assert response.status_code == 200 and "From the API" in response.content.decode()

    def test_list_shows_name_description_count_and_author(self, owner_client, segment):
        body = owner_client.get(reverse("tags:segments")).content.decode()

        assert "Coffee lovers" in body and "Bought coffee" in body and "owner" in body
        assert re.search(r'<td class="text-end">\s*2\s*</td>', body)

    def test_builder_for_a_new_segment_counts_everyone(self, owner_client, drinkers, others):
        body = owner_client.get(reverse("tags:segment-new")).content.decode()

        assert "5 members" in body and 'id="segment-form"' in body
        assert 'hx-get="/tags/segments/count/"' in body and "change delay:" in body

    def test_tag_pickers_are_grouped_by_tag_group(self, owner_client, coffee):
        body = owner_client.get(reverse("tags:segment-new")).content.decode()

        assert re.search(rf'<optgroup label="Interests">\s*<option value="{coffee.pk}"', body)


class TestLiveCount:
    def test_counts_and_previews_the_matching_members(self, owner_client, coffee, drinkers, others):
        response = owner_client.get(
            reverse("tags:segment-count"), {"tags_any": coffee.pk}, headers={"HX-Request": "true"}
        )

        body = response.content.decode()
        assert response.status_code == 200 and "<html" not in body
        assert "2 members" in body and numbers(body) == {m.member_no for m in drinkers}

    def test_combines_tags_with_member_fields(self, owner_client, coffee, drinkers, others):
        Member.objects.filter(pk=drinkers[0].pk).update(status=Member.Status.FROZEN)

        response = owner_client.get(reverse("tags:segment-count"), {"tags_any": coffee.pk, "status": "active"})

        assert numbers(response.content.decode()) == {drinkers[1].member_no}

    def test_bad_conditions_are_explained_not_counted(self, owner_client, coffee):
        response = owner_client.get(
            reverse("tags:segment-count"), {"tags_any": coffee.pk, "tags_none": coffee.pk, "r_min": "4", "r_max": "2"}
        )

        body = response.content.decode()
        assert response.status_code == 200 and 'id="segment-count-invalid"' in body
        assert "both wanted and excluded" in body and "the lower first" in body

    def test_the_preview_stops_at_twenty(self, owner_client, store):
        MemberFactory.create_batch(22, registered_store=store)

        body = owner_client.get(reverse("tags:segment-count")).content.decode()

        assert len(numbers(body)) == 20 and "22 members" in body


class TestBuilderSaves:
    def test_creates_a_segment_from_the_form(self, owner_client, coffee, drinkers, others, owner):
        response = owner_client.post(
            reverse("tags:segment-new"),
            {
                "name": "Coffee, active, spring",
                "description": "For the spring campaign",
                "tags_any": [coffee.pk],
                "status": ["active"],
                "r_min": "3",
                "birthday_month": ["3", "4"],
                "consent": "yes",
            },
        )

        segment = Segment.objects.get()
        assert response.status_code == 302 and response["Location"] == reverse("tags:segment-edit", args=[segment.pk])
        assert segment.definition == {
            "v": 1,
            "tags": {"any": [coffee.pk]},
            "rfm": {"r": [3, 5]},
            "member": {"status": ["active"], "consent": True, "birthday_month": [3, 4]},
        }
        assert segment.created_by == owner.user and segment.counted_at is not None

    def test_edits_the_definition_and_recounts(self, manager_client, segment, coffee, drinkers):
        response = manager_client.post(
            reverse("tags:segment-edit", args=[segment.pk]),
            {"name": "Coffee lovers", "description": "", "tags_none": [coffee.pk]},
        )

        segment.refresh_from_db()
        assert response.status_code == 302
        assert segment.definition == {"v": 1, "tags": {"none": [coffee.pk]}} and segment.member_count == 0

    def test_the_edit_page_shows_the_saved_conditions(self, owner_client, segment, coffee):
        body = owner_client.get(reverse("tags:segment-edit", args=[segment.pk])).content.decode()

        assert re.search(rf'<option value="{coffee.pk}" selected>Coffee</option>', body)
        assert 'value="Coffee lovers"' in body and "2 members" in body

    def test_a_segment_whose_tag_was_deleted_still_opens(self, owner_client, segment, coffee):
        coffee.delete()

        response = owner_client.get(reverse("tags:segment-edit", args=[segment.pk]))

        assert response.status_code == 200 and "0 members" in response.content.decode()

    def test_a_name_in_use_or_bad_conditions_are_form_errors(self, owner_client, segment, coffee):
        taken = owner_client.post(reverse("tags:segment-new"), {"name": "Coffee lovers"})
        contradictory = owner_client.post(
            reverse("tags:segment-new"), {"name": "Odd", "tags_all": [coffee.pk], "tags_none": [coffee.pk]}
        )
        unknown_tag = owner_client.post(reverse("tags:segment-new"), {"name": "Odd", "tags_any": ["999999"]})

        assert taken.status_code == contradictory.status_code == unknown_tag.status_code == 200
        assert "already exists" in taken.content.decode()
        assert "both wanted and excluded" in contradictory.content.decode()
        assert "999999" in unknown_tag.content.decode()
        assert Segment.objects.count() == 1


class TestExport:
    def test_csv_has_a_bom_the_member_list_header_and_only_the_segment(self, owner_client, segment, drinkers, others):
        response = owner_client.get(reverse("tags:segment-export", args=[segment.pk]))

        content = b"".join(response.streaming_content)
        lines = content.decode("utf-8-sig").splitlines()
        assert response.status_code == 200 and content.startswith(b"\xef\xbb\xbf")
        assert response["Content-Type"].startswith("text/csv")
        assert lines[0] == ",".join(str(label) for _c, label in member_list.EXPORT_COLUMNS)
        assert {line.split(",")[0] for line in lines[1:]} == {m.member_no for m in drinkers}
        assert "+8613800001111" in content.decode("utf-8-sig")

    def test_too_large_a_segment_is_refused_with_a_message(self, owner_client, segment, monkeypatch):
        monkeypatch.setattr(member_list, "EXPORT_MAX_ROWS", 1)

        response = owner_client.get(reverse("tags:segment-export", args=[segment.pk]), follow=True)

        assert "too many to download" in response.content.decode()


class TestRecountAndDelete:
    def test_recount_stores_the_count_now(self, owner_client, segment, coffee, store):
        MemberTag.objects.create(
            member=MemberFactory.create(registered_store=store), tag=coffee, source=MemberTag.Source.MANUAL
        )

        response = owner_client.post(reverse("tags:segment-recount", args=[segment.pk]))

        segment.refresh_from_db()
        assert response.status_code == 302 and segment.member_count == 3

    def test_a_recount_too_long_for_the_page_is_left_to_a_task(
        self, owner_client, segment, coffee, store, monkeypatch, django_capture_on_commit_callbacks
    ):
        MemberTag.objects.create(
            member=MemberFactory.create(registered_store=store), tag=coffee, source=MemberTag.Source.MANUAL
        )
        exact = segments.segment_refresh_count
        slow_once = iter([True])

        def slow_count(segment: Segment) -> int:
            if next(slow_once, False):  # the page's attempt; the task's runs at full speed
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(2)")
            return exact(segment)

        monkeypatch.setattr(segments, "COUNT_IN_REQUEST_MS", 50)
        monkeypatch.setattr(segments, "segment_refresh_count", slow_count)

        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = owner_client.post(reverse("tags:segment-recount", args=[segment.pk]), follow=True)
        segment.refresh_from_db()
        assert "is being counted" in response.content.decode() and segment.member_count == 2
        assert len(queued) == 1

        queued[0]()  # the task, run in-process (eager)

        segment.refresh_from_db()
        assert segment.member_count == 3

    def test_delete_asks_then_deletes(self, owner_client, segment):
        page = owner_client.get(reverse("tags:segment-delete", args=[segment.pk]))

        response = owner_client.post(reverse("tags:segment-delete", args=[segment.pk]))

        assert page.status_code == 200 and 'id="delete-button"' in page.content.decode()
        assert response.status_code == 302 and not Segment.objects.exists()


class TestPermissions:
    @pytest.mark.parametrize(
        ("name", "method", "with_pk"),
        [
            ("tags:segments", "get", False),
            ("tags:segment-new", "get", False),
            ("tags:segment-new", "post", False),
            ("tags:segment-count", "get", False),
            ("tags:segment-edit", "get", True),
            ("tags:segment-export", "get", True),
            ("tags:segment-recount", "post", True),
            ("tags:segment-delete", "post", True),
        ],
    )
    def test_cashiers_get_403_everywhere(self, cashier_client, segment, name, method, with_pk):
        url = reverse(name, args=[segment.pk]) if with_pk else reverse(name)

        response = getattr(cashier_client, method)(url, {"name": "x"} if method == "post" else {})

        assert response.status_code == 403
        assert Segment.objects.filter(name="Coffee lovers").exists() and Segment.objects.count() == 1

    def test_auditors_read_the_list_but_cannot_build_or_export(self, auditor_client, segment):
        listed = auditor_client.get(reverse("tags:segments"))

        assert listed.status_code == 200 and "Coffee lovers" in listed.content.decode()
        assert 'id="segment-new-link"' not in listed.content.decode()
        assert auditor_client.get(reverse("tags:segment-new")).status_code == 403
        assert auditor_client.get(reverse("tags:segment-export", args=[segment.pk])).status_code == 403

    def test_managers_build_and_export(self, manager_client, segment):
        assert manager_client.get(reverse("tags:segment-new")).status_code == 200
        assert manager_client.get(reverse("tags:segment-export", args=[segment.pk])).status_code == 200

    def test_signed_out_visitors_are_sent_to_sign_in(self, client, segment):
        response = client.get(reverse("tags:segments"))

        assert response.status_code == 302 and "/login/" in response["Location"]
