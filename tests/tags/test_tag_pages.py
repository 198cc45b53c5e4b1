"""The tags pages: the list of groups and tags, a tag's page (members keyset-paged, history), creating and editing
tags with the rule builder and its htmx parts, bulk tagging of a member list or by file with its status page, in
both languages, and who may do what."""

from uuid import uuid4

import pghistory.models
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from members.models import Member
from tags import rules, services
from tags.models import MemberTag, MemberTagEvent, Tag
from tags.views import pages
from tests.factories import MemberFactory
from tests.tags.test_rules_helpers import custom_group, everyone, manual_tag, rule_tag

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def body(response) -> str:
    return response.content.decode()


@pytest.fixture
def vip(db) -> Tag:
    return manual_tag("VIP")


class TestTagList:
    @pytest.mark.parametrize("language", ["zh-hans", "en"])
    def test_renders_every_group_with_its_tags_in_both_languages(self, owner_client, store, vip, language):
        rule_tag(everyone({"field": "spend", "days": 30, "min_fen": 10_000}), name="Big spenders")
        owner_client.cookies["django_language"] = language

        response = owner_client.get(reverse("tags:index"))

        assert response.status_code == 200
        page = body(response)
        assert f'<html lang="{language}">' in page and "VIP" in page and "Big spenders" in page
        assert 'data-group="preference"' in page and 'data-group="lifecycle"' in page
        if language == "en":
            assert "paid at least ¥100.00 in the last 30 days" in page

    def test_costs_the_same_queries_whatever_the_number_of_tags(self, owner_client, store, vip):
        rule_tag(everyone({"field": "store", "values": [store.pk]}), name="Here")
        owner_client.get(reverse("tags:index"))  # the first request of a session costs more
        with CaptureQueriesContext(connection) as few:
            owner_client.get(reverse("tags:index"))
        for n in range(4):
            manual_tag(f"Manual {n}")
            rule_tag(everyone({"field": "points", "min": n}), name=f"Rule {n}")

        with CaptureQueriesContext(connection) as many:
            owner_client.get(reverse("tags:index"))

        assert len(many) == len(few), "\n".join(q["sql"][:120] for q in many.captured_queries)

    def test_an_auditor_reads_it_without_the_buttons(self, auditor_client, vip):
        page = body(auditor_client.get(reverse("tags:index")))

        assert "VIP" in page and reverse("tags:tag-create") not in page

    @pytest.mark.parametrize(
        "name",
        ["tags:index", "tags:tag-create", "tags:bulk-filter", "tags:rule-condition", "tags:rule-group"],
    )
    def test_a_cashier_is_refused(self, cashier_client, name):
        assert cashier_client.get(reverse(name)).status_code == 403

    def test_a_cashier_is_refused_a_tags_page(self, cashier_client, vip):
        assert cashier_client.get(reverse("tags:tag-detail", args=[vip.pk])).status_code == 403
        assert cashier_client.post(reverse("tags:tag-active", args=[vip.pk]), {"active": "0"}).status_code == 403

    def test_an_auditor_cannot_create(self, auditor_client):
        assert auditor_client.get(reverse("tags:tag-create")).status_code == 403


class TestTagPage:
    @pytest.mark.parametrize("language", ["zh-hans", "en"])
    def test_shows_members_and_history(self, owner_client, owner, store, vip, language):
        member = MemberFactory.create(registered_store=store, name="韩梅梅")
        services.member_tag_add(member=member, tag=vip, by=owner.user)
        owner_client.cookies["django_language"] = language

        page = body(owner_client.get(reverse("tags:tag-detail", args=[vip.pk])))

        assert f'<html lang="{language}">' in page
        assert f'data-member="{member.pk}"' in page and "韩梅梅" in page
        assert reverse("members:member-detail", args=[member.member_no]) in page
        assert page.count(member.member_no) >= 2  # a member row and a history row

    def test_members_come_in_keyset_pages(self, owner_client, store, vip):
        members = MemberFactory.create_batch(51, registered_store=store)
        services.members_tag_add(tag=vip, member_ids=[m.pk for m in members], by=None)
        url = reverse("tags:tag-detail", args=[vip.pk])

        first = body(owner_client.get(url))
        second = body(owner_client.get(url, {"part": "members", "after": members[49].pk}, **HTMX))

        assert first.count("data-member=") == 50 and f"?after={members[49].pk}" in first
        assert second.count("data-member=") == 1 and f'data-member="{members[50].pk}"' in second

    def test_ticked_members_lose_the_tag(self, owner_client, store, vip):
        keep, drop = MemberFactory.create_batch(2, registered_store=store)
        services.members_tag_add(tag=vip, member_ids=[keep.pk, drop.pk], by=None)

        response = owner_client.post(reverse("tags:tag-members-remove", args=[vip.pk]), {"member": [drop.pk]})

        assert response.status_code == 302
        assert list(MemberTag.objects.filter(tag=vip).values_list("member_id", flat=True)) == [keep.pk]
        assert MemberTagEvent.objects.filter(tag=vip, member=drop, action="removed").count() == 1

    def test_a_tag_can_be_deactivated_and_reactivated(self, owner_client, vip):
        owner_client.post(reverse("tags:tag-active", args=[vip.pk]), {"active": "0"})
        vip.refresh_from_db()
        inactive = vip.is_active

        owner_client.post(reverse("tags:tag-active", args=[vip.pk]), {"active": "1"})

        vip.refresh_from_db()
        assert (inactive, vip.is_active) == (False, True)

    def test_a_lifecycle_tag_lists_its_stage(self, owner_client):
        tag = Tag.objects.get(code="lifecycle:new")

        assert owner_client.get(reverse("tags:tag-detail", args=[tag.pk])).status_code == 200


def rule_post(**extra: object) -> dict[str, object]:
    """The tag form with a builder of two conditions: a top-level one and a group of one."""
    return {
        "name": "Portal fans",
        "group": custom_group().pk,
        "kind": "rule",
        "colour": "#ae3ec9",
        "description": "",
        "match": "all",
        "node": ["r1", "g1", "r2"],
        "r1-parent": "",
        "r1-field": "channel",
        "r1-values": ["portal"],
        "g1-match": "any",
        "r2-parent": "g1",
        "r2-field": "registered_within",
        "r2-days": "3650",
        **extra,
    }


class TestCreateAndEdit:
    @pytest.mark.parametrize("language", ["zh-hans", "en"])
    def test_the_form_renders_with_a_first_condition(self, owner_client, store, language):
        owner_client.cookies["django_language"] = language

        page = body(owner_client.get(reverse("tags:tag-create")))

        assert 'id="rule-builder"' in page and 'name="node"' in page and f'<html lang="{language}">' in page

    def test_a_manual_tag_is_created_and_audited_with_the_user(self, owner_client, owner):
        response = owner_client.post(
            reverse("tags:tag-create"),
            {"name": "Wedding guests", "group": custom_group().pk, "kind": "manual", "colour": "#206bc4"},
        )

        tag = Tag.objects.get(name="Wedding guests")
        assert response.status_code == 302 and response["Location"] == reverse("tags:tag-detail", args=[tag.pk])
        assert (tag.kind, tag.created_by) == ("manual", owner.user)
        event = pghistory.models.Events.objects.filter(pgh_obj_model="tags.Tag", pgh_obj_id=tag.pk).first()
        assert event is not None and event.pgh_context["user"] == owner.user.pk

    def test_a_rule_tag_is_saved_from_the_builder_and_evaluated_at_once(
        self, owner_client, store, django_capture_on_commit_callbacks
    ):
        portal = MemberFactory.create(registered_store=store, channel=Member.Channel.PORTAL)
        MemberFactory.create(registered_store=store)

        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(reverse("tags:tag-create"), rule_post())

        tag = Tag.objects.get(name="Portal fans")
        assert response.status_code == 302
        assert tag.rule == {
            "match": "all",
            "conditions": [
                {"field": "channel", "values": ["portal"]},
                {"match": "any", "conditions": [{"field": "registered_within", "days": 3650}]},
            ],
        }
        assert list(MemberTag.objects.filter(tag=tag).values_list("member_id", flat=True)) == [portal.pk]

    def test_a_bad_rule_is_shown_with_its_condition_and_nothing_is_saved(self, owner_client):
        response = owner_client.post(reverse("tags:tag-create"), rule_post(**{"r2-days": "0"}))

        assert response.status_code == 200
        assert "Condition 2.1: enter a number of days" in body(response)
        assert not Tag.objects.filter(name="Portal fans").exists()

    def test_editing_a_rule_tag_shows_its_rule_in_the_builder(self, owner_client, store):
        tag = rule_tag(everyone({"field": "store", "values": [store.pk]}))

        page = body(owner_client.get(reverse("tags:tag-edit", args=[tag.pk])))

        assert 'data-field="store"' in page and f'<option value="{store.pk}" selected>' in page

    def test_a_system_tag_changes_colour_only(self, owner_client):
        tag = Tag.objects.get(code="lifecycle:new")

        response = owner_client.post(
            reverse("tags:tag-edit", args=[tag.pk]), {"colour": "#000000", "description": "Fresh faces"}
        )

        tag.refresh_from_db()
        assert response.status_code == 302 and (tag.colour, tag.description, tag.name) == ("#000000", "Fresh faces", "")


class TestRuleBuilderParts:
    def test_a_new_condition_row(self, owner_client):
        page = body(owner_client.get(reverse("tags:rule-condition"), {"parent": "g1"}, **HTMX))

        assert 'class="rule-row rule-condition' in page and 'value="g1"' in page and 'data-field="spend"' in page

    def test_changing_the_field_redraws_the_row_with_its_inputs(self, owner_client, store):
        page = body(owner_client.get(reverse("tags:rule-condition"), {"key": "r7", "r7-field": "store"}, **HTMX))

        assert 'id="row-r7"' in page and 'data-field="store"' in page and "Jing&#x27;an" in page

    def test_a_new_group(self, owner_client):
        page = body(owner_client.get(reverse("tags:rule-group"), **HTMX))

        assert 'class="rule-row rule-group' in page and page.count('name="node"') == 2

    def test_counting_the_members_of_the_rule_in_the_builder(self, owner_client, store):
        MemberFactory.create(registered_store=store, channel=Member.Channel.PORTAL)

        page = body(owner_client.post(reverse("tags:rule-count"), rule_post(), **HTMX))

        assert 'data-figure="count">1 member<' in page

    def test_a_rule_too_long_to_count_here_says_so(self, owner_client, store, monkeypatch):
        compile_rule = rules.rule_sql

        def slow(rule, **kwargs):
            compiled = compile_rule(rule, **kwargs)
            return rules.Sql(f"SELECT x.* FROM ({compiled.text}) x, pg_sleep(2)", compiled.params)

        monkeypatch.setattr(pages, "RULE_COUNT_MS", 50)
        monkeypatch.setattr(rules, "rule_sql", slow)

        page = body(owner_client.post(reverse("tags:rule-count"), rule_post(), **HTMX))

        assert "This rule takes too long to count here." in page and 'data-figure="count"' not in page


def csv_file(text: str, name: str = "members.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8-sig"), content_type="text/csv")


class TestBulk:
    def test_the_filter_page_counts_the_members_of_the_list(self, owner_client, store, vip):
        MemberFactory.create_batch(2, registered_store=store, channel=Member.Channel.PORTAL)
        MemberFactory.create(registered_store=store)

        page = body(owner_client.get(reverse("tags:bulk-filter"), {"channel": "portal", "target": vip.pk}))

        assert 'data-figure="count">2<' in page and f'<option value="{vip.pk}" selected>' in page

    def test_tagging_a_filtered_list_runs_as_a_job_with_a_status_page(
        self, owner_client, store, vip, django_capture_on_commit_callbacks
    ):
        portal = MemberFactory.create_batch(2, registered_store=store, channel=Member.Channel.PORTAL)
        MemberFactory.create(registered_store=store)

        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(
                reverse("tags:bulk-filter"), {"query": "channel=portal", "target": vip.pk, "action": "added"}
            )

        assert response.status_code == 302
        assert sorted(MemberTag.objects.filter(tag=vip).values_list("member_id", flat=True)) == [m.pk for m in portal]
        page = body(owner_client.get(response["Location"]))
        assert 'data-figure="changed">2<' in page and "Done" in page

    @pytest.mark.parametrize("language", ["zh-hans", "en"])
    def test_the_import_page_renders(self, owner_client, vip, language):
        owner_client.cookies["django_language"] = language

        response = owner_client.get(reverse("tags:tag-import", args=[vip.pk]))

        assert response.status_code == 200 and f'<html lang="{language}">' in body(response)

    def test_an_import_with_a_bad_row_tags_the_rest_and_reports_the_row(
        self, owner_client, store, vip, django_capture_on_commit_callbacks, settings, tmp_path
    ):
        settings.MEDIA_ROOT = tmp_path
        member = MemberFactory.create(registered_store=store)
        upload = csv_file(f"member_no,note\n{member.member_no},ok\n9999999999,nobody\n")

        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(reverse("tags:tag-import", args=[vip.pk]), {"file": upload, "action": "added"})

        assert response.status_code == 302
        assert list(MemberTag.objects.filter(tag=vip).values_list("member_id", flat=True)) == [member.pk]
        page = body(owner_client.get(response["Location"]))
        assert 'data-figure="failed">1<' in page and "No member has this member number." in page
        report = owner_client.get(response["Location"] + "errors.csv").content.decode("utf-8-sig")
        assert report.splitlines()[1] == "3,member_no,No member has this member number.,9999999999,nobody"
        assert not list(tmp_path.rglob("*.csv"))  # the upload is deleted once done

    def test_a_file_without_a_member_column_is_refused_at_once(self, owner_client, vip):
        response = owner_client.post(
            reverse("tags:tag-import", args=[vip.pk]), {"file": csv_file("name\nTom\n"), "action": "added"}
        )

        assert response.status_code == 200 and "member_no column" in body(response)

    def test_a_status_page_of_another_tag_is_not_found(self, owner_client, vip):
        other = manual_tag("Other")
        task_id = uuid4()
        from tags import tasks

        tasks.tag_members_filter_task.apply(
            kwargs={"tag_id": other.pk, "action": "added", "query": ""}, task_id=str(task_id)
        )

        assert owner_client.get(reverse("tags:bulk-status", args=[vip.pk, task_id])).status_code == 404

    def test_members_ticked_on_the_member_list_are_tagged_by_number(self, owner_client, store, vip):
        ticked = MemberFactory.create_batch(2, registered_store=store)
        MemberFactory.create(registered_store=store)

        response = owner_client.post(
            reverse("tags:bulk-selection"),
            {"member": [m.member_no for m in ticked], "target": vip.pk, "action": "added", "query": "channel=store"},
        )

        assert response.status_code == 302 and response["Location"] == reverse("members:index") + "?channel=store"
        assert sorted(MemberTag.objects.filter(tag=vip).values_list("member_id", flat=True)) == [m.pk for m in ticked]

    def test_a_cashier_cannot_start_bulk_jobs(self, cashier_client, vip):
        assert cashier_client.post(reverse("tags:bulk-filter"), {"target": vip.pk}).status_code == 403
        assert cashier_client.get(reverse("tags:tag-import", args=[vip.pk])).status_code == 403
        assert cashier_client.post(reverse("tags:bulk-selection"), {"target": vip.pk}).status_code == 403
