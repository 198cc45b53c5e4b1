"""The nightly `tags_rules` job: rule tags kept in step with their rules (added and removed, with history),
preference tags from each member's top category, running twice, resuming, and the refresh of one member after a
purchase or a registration."""

from datetime import date, timedelta

import pytest
from django.urls import reverse

from members.models import Member
from reports import services as reports_services
from reports.jobs import JOB_LABELS, JOBS
from reports.models import JobRun
from tags import services
from tags.models import MemberTag, MemberTagEvent, RuleRefresh, Tag, TagGroup
from tests.factories import MemberFactory
from tests.tags.test_rules_helpers import buy, everyone, manual_tag, noon, rule_tag

pytestmark = pytest.mark.django_db

D = date(2025, 6, 30)
BIG_SPENDERS = everyone({"field": "spend", "days": 30, "min_fen": 10_000})


def holders(tag: Tag) -> list[int]:
    return sorted(MemberTag.objects.filter(tag=tag).values_list("member_id", flat=True))


def events(tag: Tag | None = None) -> list[tuple[int, str, str, date]]:
    qs = MemberTagEvent.objects.all() if tag is None else MemberTagEvent.objects.filter(tag=tag)
    return sorted(qs.values_list("member_id", "action", "source", "business_date"))


def run(day: date) -> tuple[int, int]:
    return services.tags_rules_job(business_date=day, run=None)


@pytest.fixture
def members(store) -> list[Member]:
    return MemberFactory.create_batch(3, registered_store=store, registered_at=noon(date(2024, 1, 1)))


class TestRuleTags:
    def test_the_job_gives_the_tag_to_the_members_its_rule_holds_for(self, members, store):
        rich, poor, _idle = members
        buy(rich, 10_000, day=D, store=store)
        buy(poor, 9_999, day=D, store=store)
        tag = rule_tag(BIG_SPENDERS)

        examined, changed = run(D)

        assert holders(tag) == [rich.pk]
        assert events(tag) == [(rich.pk, "added", "rule", D)]
        assert (examined, changed) == (3, 1)
        tag.refresh_from_db()
        assert tag.member_count == 1 and tag.counted_at is not None
        assert MemberTag.objects.get(tag=tag).source == "rule"

    def test_running_twice_changes_nothing_and_logs_nothing_twice(self, members, store):
        buy(members[0], 10_000, day=D, store=store)
        tag = rule_tag(BIG_SPENDERS)
        run(D)
        rows = list(MemberTag.objects.filter(tag=tag).values_list("pk", "member_id", "added_at"))

        again = run(D)

        assert again == (3, 0)
        assert list(MemberTag.objects.filter(tag=tag).values_list("pk", "member_id", "added_at")) == rows
        assert len(events(tag)) == 1

    def test_a_member_the_rule_no_longer_holds_for_is_removed_with_a_dated_event(self, members, store):
        rich = members[0]
        buy(rich, 10_000, day=D - timedelta(days=29), store=store)
        tag = rule_tag(BIG_SPENDERS)
        run(D)

        run(D + timedelta(days=1))  # the purchase has left the 30-day window

        assert holders(tag) == []
        assert events(tag) == [(rich.pk, "added", "rule", D), (rich.pk, "removed", "rule", D + timedelta(days=1))]
        tag.refresh_from_db()
        assert tag.member_count == 0

    def test_inactive_rule_tags_are_left_alone(self, members, store):
        buy(members[0], 10_000, day=D, store=store)
        tag = rule_tag(BIG_SPENDERS, active=False)

        run(D)

        assert holders(tag) == [] and events(tag) == []

    def test_manual_tags_are_not_touched(self, members):
        vip = manual_tag()
        services.members_tag_add(tag=vip, member_ids=[members[1].pk], by=None)

        run(D)

        assert holders(vip) == [members[1].pk]

    def test_a_cancelled_membership_loses_its_rule_tags(self, members):
        tag = rule_tag(everyone({"field": "registered_within", "days": 3650}))
        run(D)
        Member.objects.filter(pk=members[0].pk).update(status=Member.Status.CANCELLED)

        run(D + timedelta(days=1))

        assert holders(tag) == sorted(m.pk for m in members[1:])

    def test_a_killed_run_resumes_after_the_tags_it_finished(self, members, store):
        first = rule_tag(everyone({"field": "registered_within", "days": 3650}), name="All")
        second = rule_tag(BIG_SPENDERS, name="Big")
        buy(members[0], 10_000, day=D, store=store)
        job = JobRun.objects.create(job="tags_rules", business_date=D, cursor={"tags": [first.pk], "changed": 0})

        services.tags_rules_job(business_date=D, run=job)

        assert holders(first) == [] and holders(second) == [members[0].pk]
        job.refresh_from_db()
        assert job.cursor == {"tags": [first.pk, second.pk], "changed": 1, "preference": True}

    def test_it_is_registered_as_a_job_and_runs_through_the_job_runner(self, members, store):
        buy(members[0], 10_000, day=D, store=store)
        tag = rule_tag(BIG_SPENDERS)

        job, ran = reports_services.job_execute("tags_rules", business_date=D)

        assert JOBS["tags_rules"] == "tags.services.tags_rules_job" and "tags_rules" in JOB_LABELS
        assert ran and job is not None and job.status == JobRun.Status.SUCCEEDED
        assert (job.rows_examined, job.rows_changed) == (3, 1) and holders(tag) == [members[0].pk]


class TestPreferenceTags:
    def preference(self, member: Member) -> list[str]:
        return list(
            MemberTag.objects.filter(member=member, tag__code__startswith="preference:").values_list(
                "tag__code", flat=True
            )
        )

    def test_each_member_gets_a_tag_of_their_top_category(self, members, store):
        tea, coffee, _none = members
        buy(tea, 500, day=D, store=store, categories=[("tea", 400), ("cake", 100)])
        buy(coffee, 500, day=D, store=store, categories=[("coffee", 500)])

        run(D)

        assert (self.preference(tea), self.preference(coffee), self.preference(members[2])) == (
            ["preference:tea"],
            ["preference:coffee"],
            [],
        )
        made = Tag.objects.get(code="preference:tea")
        assert (made.kind, made.name, made.label, made.group.dimension) == (
            "system",
            "",
            "tea",
            TagGroup.Dimension.PREFERENCE,
        )
        assert made.member_count == 1
        assert MemberTag.objects.get(member=tea).source == "system"
        assert events() == sorted([(tea.pk, "added", "system", D), (coffee.pk, "added", "system", D)])

    def test_a_tie_goes_to_the_first_category_by_name(self, members, store):
        buy(members[0], 600, day=D, store=store, categories=[("tea", 300), ("coffee", 300)])

        run(D)

        assert self.preference(members[0]) == ["preference:coffee"]

    def test_a_new_top_category_replaces_the_old_one(self, members, store):
        member = members[0]
        buy(member, 300, day=D, store=store, categories=[("tea", 300)])
        run(D)
        later = D + timedelta(days=1)
        buy(member, 900, day=later, store=store, categories=[("coffee", 900)])

        run(later)

        assert self.preference(member) == ["preference:coffee"]
        tea = Tag.objects.get(code="preference:tea")
        assert [(e[1], e[3]) for e in events(tea)] == [("added", D), ("removed", later)]
        tea.refresh_from_db()
        assert tea.member_count == 0

    def test_running_twice_changes_nothing(self, members, store):
        buy(members[0], 300, day=D, store=store, categories=[("tea", 300)])
        run(D)

        assert run(D) == (3, 0)
        assert Tag.objects.filter(code="preference:tea").count() == 1 and len(events()) == 1

    def test_an_inactive_preference_tag_is_not_given(self, members, store):
        buy(members[0], 300, day=D, store=store, categories=[("tea", 300)])
        run(D)
        services.tag_deactivate(tag=Tag.objects.get(code="preference:tea"), by=None)

        run(D + timedelta(days=1))

        assert self.preference(members[0]) == []


class TestRefreshOfOneMember:
    def test_evaluates_every_rule_tag_for_that_member_only(self, members, store):
        rich, other, _idle = members
        tag = rule_tag(everyone({"field": "spend", "days": 30, "min_fen": 100}))
        buy(other, 100, day=D, store=store)
        buy(rich, 100, day=D, store=store)

        changed = services.rule_tags_refresh_member(rich.pk, D)

        assert changed == (1, 0) and holders(tag) == [rich.pk]
        tag.refresh_from_db()
        assert tag.member_count == 1

    def test_the_night_for_the_closed_day_leaves_a_later_refresh_alone(self, members, store):
        late, lapsed, imported = members
        tag = rule_tag(everyone({"field": "spend", "days": 1, "min_fen": 100}))
        run(D - timedelta(days=1))
        buy(lapsed, 100, day=D, store=store)
        services.rule_tags_refresh_member(lapsed.pk, D)  # its purchase on D: it gains the tag
        buy(imported, 100, day=D, store=store)  # no refresh: the night's run finds it
        # after midnight (D + 1): one member buys (gains the tag), another is edited (its window moved on)
        buy(late, 100, day=D + timedelta(days=1), store=store)
        services.rule_tags_refresh_member(late.pk, D + timedelta(days=1))
        services.rule_tags_refresh_member(lapsed.pk, D + timedelta(days=1))
        assert holders(tag) == [late.pk]

        run(D)  # the night's run for the day just closed, at 01:40 on D + 1

        assert holders(tag) == [late.pk, imported.pk]  # late and lapsed as their refresh as of D + 1 left them
        run(D + timedelta(days=1))
        assert holders(tag) == [late.pk]

    def test_the_night_also_leaves_alone_a_later_refresh_that_changed_nothing(self, members, store):
        kept, other, _idle = members
        tag = rule_tag(everyone({"field": "spend", "days": 1, "min_fen": 100}))
        buy(kept, 100, day=D - timedelta(days=1), store=store)
        buy(other, 100, day=D - timedelta(days=1), store=store)
        run(D - timedelta(days=1))
        buy(kept, 100, day=D + timedelta(days=1), store=store)  # after midnight: it still qualifies, as of D + 1
        assert services.rule_tags_refresh_member(kept.pk, D + timedelta(days=1)) == (0, 0)

        run(D)  # as of D neither bought within the day

        assert holders(tag) == [kept.pk]
        assert list(RuleRefresh.objects.values_list("member_id", flat=True)) == [kept.pk]
        run(D + timedelta(days=1))
        assert holders(tag) == [kept.pk] and not RuleRefresh.objects.exists()

    def test_a_purchase_at_the_counter_queues_it_after_commit(self, members, store, django_capture_on_commit_callbacks):
        tag = rule_tag(everyone({"field": "purchase_count", "days": 30, "min": 1}))

        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            buy(members[0], 100, day=date.today(), store=store)

        assert len(callbacks) >= 1 and holders(tag) == [members[0].pk]

    def test_registering_in_the_back_office_queues_it(self, owner_client, store, django_capture_on_commit_callbacks):
        tag = rule_tag(everyone({"field": "registered_within", "days": 1}))

        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(
                reverse("members:member-create"),
                {"name": "李雷", "phone": "13900001111", "gender": "unknown", "store": store.pk},
            )

        assert response.status_code == 302
        assert holders(tag) == list(Member.objects.filter(phone="+8613900001111").values_list("pk", flat=True))
