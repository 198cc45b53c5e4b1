"""The member list's tag filter: one tag, or several (members holding any of them), of every kind."""

import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from members import filters
from members.models import Member, Store
from tags.models import MemberLifecycle, MemberTag, Tag, TagGroup
from tests.factories import MemberFactory

LIST = "/members/"


def numbers(response) -> set[str]:
    return set(re.findall(r'href="/members/(\d{10,20})/"', response.content.decode()))


@pytest.fixture
def group(db) -> TagGroup:
    return TagGroup.objects.create(name="Interests", dimension=TagGroup.Dimension.CUSTOM)


@pytest.fixture
def coffee(group) -> Tag:
    return Tag.objects.create(group=group, name="Coffee")


@pytest.fixture
def tea(group) -> Tag:
    return Tag.objects.create(group=group, name="Tea")


@pytest.fixture
def trio(store, coffee, tea) -> tuple[Member, Member, Member]:
    """ann drinks coffee, bob tea, cai neither."""
    ann, bob, cai = MemberFactory.create_batch(3, registered_store=store)
    MemberTag.objects.create(member=ann, tag=coffee, source=MemberTag.Source.MANUAL)
    MemberTag.objects.create(member=bob, tag=tea, source=MemberTag.Source.MANUAL)
    return ann, bob, cai


class TestMemberListTagFilter:
    def test_one_tag_lists_its_holders(self, owner_client, trio, coffee):
        ann, _bob, _cai = trio

        assert numbers(owner_client.get(LIST, {"tag": coffee.pk})) == {ann.member_no}

    def test_several_tags_list_the_holders_of_any(self, owner_client, trio, coffee, tea):
        ann, bob, _cai = trio

        response = owner_client.get(LIST, {"tag": [coffee.pk, tea.pk]})

        assert numbers(response) == {ann.member_no, bob.member_no} and "2 members" in response.content.decode()

    def test_a_lifecycle_tag_lists_the_members_at_that_stage(self, owner_client, trio):
        _ann, bob, _cai = trio
        MemberLifecycle.objects.create(member=bob, stage="silent", since=date(2025, 1, 1))
        group = TagGroup.objects.filter(dimension=TagGroup.Dimension.LIFECYCLE).first() or TagGroup.objects.create(
            dimension=TagGroup.Dimension.LIFECYCLE
        )
        silent = Tag.objects.get_or_create(code="lifecycle:silent", defaults={"group": group, "kind": "system"})[0]

        assert numbers(owner_client.get(LIST, {"tag": silent.pk})) == {bob.member_no}

    def test_combines_with_the_other_filters(self, owner_client, trio, coffee, tea):
        _ann, bob, _cai = trio
        Member.objects.filter(pk=bob.pk).update(status=Member.Status.FROZEN)

        response = owner_client.get(LIST, {"tag": [coffee.pk, tea.pk], "status": "frozen"})

        assert numbers(response) == {bob.member_no}

    def test_an_unknown_tag_is_reported_and_ignored(self, owner_client, trio):
        response = owner_client.get(LIST, {"tag": "999999"})

        assert "These filters were ignored" in response.content.decode() and len(numbers(response)) == 3

    def test_the_filter_bar_loads_the_tags_after_the_page(self, owner_client, trio, coffee):
        with CaptureQueriesContext(connection) as queries:
            body = owner_client.get(LIST).content.decode()

        assert 'id="id_tag"' in body and 'name="tag"' in body
        assert f'hx-get="{reverse("tags:tag-options")}" hx-trigger="load"' in body
        assert not any("tags_tag" in q["sql"] for q in queries.captured_queries)

    def test_the_tag_options_are_grouped_with_the_chosen_ones_selected(self, cashier_client, coffee, tea):
        response = cashier_client.get(reverse("tags:tag-options"), {"tag": [str(tea.pk), "junk"]})

        body = response.content.decode()
        assert response.status_code == 200 and "<html" not in body
        assert f'<optgroup label="Interests"><option value="{coffee.pk}">Coffee</option>' in body
        assert f'<option value="{tea.pk}" selected>Tea</option>' in body

    def test_the_chosen_tag_is_kept_by_htmx_requests_from_the_results(self, owner_client, trio, coffee):
        body = owner_client.get(LIST, {"tag": coffee.pk}).content.decode()

        assert 'id="member-results" aria-live="polite" hx-include="#id_tag"' in body
        assert re.search(rf'<option value="{coffee.pk}" selected>Coffee</option>', body)

    def test_cashiers_filter_by_tag_within_their_store(self, cashier_client, trio, coffee, other_store: Store):
        outsider = MemberFactory.create(registered_store=other_store)
        MemberTag.objects.create(member=outsider, tag=coffee, source=MemberTag.Source.MANUAL)
        ann, _bob, _cai = trio

        assert numbers(cashier_client.get(LIST, {"tag": coffee.pk})) == {ann.member_no}


class TestTagFilterForm:
    def test_a_tag_filter_is_a_filter(self, trio, coffee):
        form = filters.MemberFilterForm({"tag": [str(coffee.pk)]}, stores=Store.objects.all())

        assert not filters.is_unfiltered(form) and form.value("tag") == [coffee.pk]

    def test_member_filter_applies_it(self, trio, coffee, tea):
        ann, bob, _cai = trio
        form = filters.MemberFilterForm({"tag": [str(coffee.pk), str(tea.pk)]}, stores=Store.objects.all())

        found = set(filters.member_filter(Member.objects.all(), form).values_list("pk", flat=True))

        assert found == {ann.pk, bob.pk}

    def test_tag_choices_are_read_only_when_needed(self, trio, django_assert_num_queries):
        with django_assert_num_queries(0):
            filters.MemberFilterForm({"status": "active"}, stores=Store.objects.none()).fields["tag"]
