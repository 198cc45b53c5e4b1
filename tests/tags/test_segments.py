"""Segments as campaigns use them: what a definition means, how it is checked, counted and saved."""

from datetime import date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from members import filters as members_filters
from members.models import Member
from tags import segments
from tags.models import MemberLifecycle, MemberTag, RfmScore, RfmSegment, Segment, Stage, Tag, TagGroup
from tests.factories import MemberFactory
from tiers.models import MemberTier, Tier

pytestmark = pytest.mark.django_db


def members_of(definition) -> set[str]:
    return set(segments.segment_members(definition).values_list("member_no", flat=True))


def nos(*members: Member) -> set[str]:
    return {m.member_no for m in members}


@pytest.fixture
def group() -> TagGroup:
    return TagGroup.objects.create(name="Interests", dimension=TagGroup.Dimension.CUSTOM)


@pytest.fixture
def coffee(group) -> Tag:
    return Tag.objects.create(group=group, name="Coffee")


@pytest.fixture
def tea(group) -> Tag:
    return Tag.objects.create(group=group, name="Tea")


@pytest.fixture
def vip(group) -> Tag:
    return Tag.objects.create(group=group, name="VIP")


def hold(member: Member, *tags: Tag) -> Member:
    for tag in tags:
        MemberTag.objects.create(member=member, tag=tag, source=MemberTag.Source.MANUAL)
    return member


def system_tag(code: str) -> Tag:
    kind, _sep, _value = code.partition(":")
    dimension = TagGroup.Dimension.LIFECYCLE if kind == "lifecycle" else TagGroup.Dimension.RFM
    group = TagGroup.objects.filter(dimension=dimension).first() or TagGroup.objects.create(dimension=dimension)
    return Tag.objects.get_or_create(code=code, defaults={"group": group, "kind": Tag.Kind.SYSTEM})[0]


def stage(member: Member, value: str) -> Member:
    MemberLifecycle.objects.create(member=member, stage=value, since=date(2025, 1, 1))
    return member


def score(member: Member, r: int, f: int, m: int, segment: str = "") -> Member:
    RfmScore.objects.create(
        member=member,
        last_purchase_date=date(2025, 1, 1),
        frequency=f,
        monetary_fen=m * 10_000,
        r=r,
        f=f,
        m=m,
        cell=f"{r}{f}{m}",
        segment=segment,
        changed_on=date(2025, 1, 1),
    )
    return member


@pytest.fixture
def people(store, coffee, tea, vip):
    """ann: coffee + tea; bob: coffee; cai: tea + vip; dan: no tags."""
    ann = hold(MemberFactory.create(registered_store=store), coffee, tea)
    bob = hold(MemberFactory.create(registered_store=store), coffee)
    cai = hold(MemberFactory.create(registered_store=store), tea, vip)
    dan = MemberFactory.create(registered_store=store)
    return ann, bob, cai, dan


class TestTagConditions:
    def test_any_holds_members_with_at_least_one_of_the_tags(self, people, coffee, vip):
        ann, bob, cai, _dan = people

        assert members_of({"v": 1, "tags": {"any": [coffee.pk, vip.pk]}}) == nos(ann, bob, cai)

    def test_all_holds_members_with_every_one_of_the_tags(self, people, coffee, tea):
        ann, *_ = people

        assert members_of({"v": 1, "tags": {"all": [coffee.pk, tea.pk]}}) == nos(ann)

    def test_none_holds_members_without_any_of_the_tags_untagged_members_included(self, people, coffee, vip):
        *_, dan = people

        assert members_of({"v": 1, "tags": {"none": [coffee.pk, vip.pk]}}) == nos(dan)

    def test_any_all_and_none_combine_with_and(self, people, coffee, tea, vip):
        ann, bob, _cai, _dan = people

        definition = {"v": 1, "tags": {"any": [coffee.pk, vip.pk], "all": [coffee.pk], "none": [tea.pk]}}

        assert members_of(definition) == nos(bob)
        assert ann not in segments.segment_members(definition)

    def test_a_lifecycle_tag_reads_the_lifecycle_table(self, people, coffee):
        ann, bob, _cai, _dan = people
        stage(ann, Stage.ACTIVE)
        stage(bob, Stage.CHURNED)
        active = system_tag("lifecycle:active")

        assert members_of({"v": 1, "tags": {"any": [active.pk]}}) == nos(ann)
        assert members_of({"v": 1, "tags": {"any": [coffee.pk], "none": [active.pk]}}) == nos(bob)

    def test_an_rfm_tag_reads_the_rfm_table(self, people):
        ann, bob, *_ = people
        score(ann, 5, 5, 5, "Champions")
        score(bob, 1, 1, 1, "Lost")

        assert members_of({"v": 1, "tags": {"all": [system_tag("rfm:Champions").pk]}}) == nos(ann)

    def test_a_deleted_tag_is_held_by_nobody(self, people, coffee, vip):
        ann, bob, cai, dan = people
        gone = vip.pk
        vip.delete()

        assert members_of({"v": 1, "tags": {"all": [gone]}}) == set()
        assert members_of({"v": 1, "tags": {"any": [gone]}}) == set()
        assert members_of({"v": 1, "tags": {"any": [gone, coffee.pk]}}) == nos(ann, bob)
        assert members_of({"v": 1, "tags": {"none": [gone]}}) == nos(ann, bob, cai, dan)


class TestLifecycleAndRfm:
    def test_lifecycle_stages_are_any_of(self, store):
        new = stage(MemberFactory.create(registered_store=store), Stage.NEW)
        silent = stage(MemberFactory.create(registered_store=store), Stage.SILENT)
        stage(MemberFactory.create(registered_store=store), Stage.CHURNED)
        MemberFactory.create(registered_store=store)  # not staged yet

        assert members_of({"v": 1, "lifecycle": ["new", "silent"]}) == nos(new, silent)

    def test_rfm_segments_and_score_ranges_include_both_ends(self, store):
        champion = score(MemberFactory.create(registered_store=store), 5, 4, 5, "Champions")
        loyal = score(MemberFactory.create(registered_store=store), 3, 4, 3, "Loyal")
        lost = score(MemberFactory.create(registered_store=store), 1, 1, 1, "Lost")
        MemberFactory.create(registered_store=store)  # never scored

        assert members_of({"v": 1, "rfm": {"segments": ["Champions", "Loyal"]}}) == nos(champion, loyal)
        assert members_of({"v": 1, "rfm": {"r": [3, 5]}}) == nos(champion, loyal)
        assert members_of({"v": 1, "rfm": {"r": [1, 5], "m": [1, 3]}}) == nos(loyal, lost)
        assert members_of({"v": 1, "rfm": {"f": [4, 4], "segments": ["Loyal"]}}) == nos(loyal)

    def test_unscored_members_match_no_rfm_condition(self, store):
        MemberFactory.create(registered_store=store)

        assert members_of({"v": 1, "rfm": {"r": [1, 5]}}) == set()

    def test_tags_lifecycle_rfm_and_fields_combine(self, people, coffee):
        ann, bob, _cai, _dan = people
        stage(ann, Stage.ACTIVE)
        stage(bob, Stage.ACTIVE)
        score(ann, 5, 5, 5, "Champions")
        score(bob, 2, 5, 5, "Can't lose them")
        Member.objects.filter(pk=ann.pk).update(marketing_consent=True, marketing_consent_at=timezone.now())

        definition = {
            "v": 1,
            "tags": {"any": [coffee.pk]},
            "lifecycle": ["active"],
            "rfm": {"m": [4, 5]},
            "member": {"consent": True, "status": ["active"]},
        }

        assert members_of(definition) == nos(ann)


class TestTiers:
    def test_the_base_tier_holds_members_without_a_tier_row(self, store):
        base = Tier.objects.get(rank=0)
        gold = Tier.objects.create(name="Gold", rank=2, threshold=5_000)
        unplaced = MemberFactory.create(registered_store=store)
        on_base = MemberFactory.create(registered_store=store)
        golden = MemberFactory.create(registered_store=store)
        MemberTier.objects.create(member=on_base, tier=base, reached_at=timezone.now())
        MemberTier.objects.create(member=golden, tier=gold, reached_at=timezone.now())

        assert members_of({"v": 1, "tiers": [base.pk]}) == nos(unplaced, on_base)
        assert members_of({"v": 1, "tiers": [gold.pk]}) == nos(golden)
        assert members_of({"v": 1, "tiers": [base.pk, gold.pk]}) == nos(unplaced, on_base, golden)


class TestMemberFields:
    def test_type_status_channel_and_store_are_any_of(self, store, other_store):
        paid = MemberFactory.create(registered_store=store, member_type=Member.Type.PAID)
        frozen = MemberFactory.create(registered_store=other_store, status=Member.Status.FROZEN)
        portal = MemberFactory.create(registered_store=store, channel=Member.Channel.PORTAL)

        assert members_of({"v": 1, "member": {"type": ["paid", "stored_value"]}}) == nos(paid)
        assert members_of({"v": 1, "member": {"status": ["frozen", "cancelled"]}}) == nos(frozen)
        assert members_of({"v": 1, "member": {"channel": ["portal"]}}) == nos(portal)
        assert members_of({"v": 1, "member": {"store": [other_store.pk]}}) == nos(frozen)

    def test_registration_dates_are_local_days_both_included(self, store):
        def registered(day: date, hour: int) -> Member:
            moment = timezone.make_aware(datetime(day.year, day.month, day.day, hour))
            return MemberFactory.create(registered_store=store, registered_at=moment)

        first = registered(date(2025, 3, 1), 0)
        last = registered(date(2025, 3, 31), 23)
        registered(date(2025, 2, 28), 23)
        registered(date(2025, 4, 1), 0)

        definition = {"v": 1, "member": {"registered_from": "2025-03-01", "registered_to": "2025-03-31"}}

        assert members_of(definition) == nos(first, last)

    def test_consent_and_birthday_month(self, store):
        may = MemberFactory.create(registered_store=store, birthday=date(1990, 5, 20))
        june = MemberFactory.create(
            registered_store=store,
            birthday=date(1985, 6, 1),
            marketing_consent=True,
            marketing_consent_at=timezone.now(),
        )
        MemberFactory.create(registered_store=store, birthday=None)

        assert members_of({"v": 1, "member": {"birthday_month": [5, 6]}}) == nos(may, june)
        assert members_of({"v": 1, "member": {"consent": True}}) == nos(june)
        assert members_of({"v": 1, "member": {"consent": False, "birthday_month": [5, 6]}}) == nos(may)

    def test_no_condition_holds_everyone(self, people):
        assert members_of({"v": 1}) == nos(*people)
        assert segments.segment_is_everyone({}) and not segments.segment_is_everyone({"lifecycle": ["new"]})

    def test_a_saved_segment_works_like_its_definition(self, people, coffee, owner):
        ann, bob, *_ = people
        segment = segments.segment_save(
            segment=Segment(name="Coffee", definition={"tags": {"any": [coffee.pk]}}), by=owner.user
        )

        assert members_of(segment) == nos(ann, bob)


class TestSegmentClean:
    def test_gives_the_canonical_form(self, coffee, tea, store):
        clean = segments.segment_clean(
            {
                "tags": {"any": [tea.pk, coffee.pk, tea.pk], "none": []},
                "lifecycle": ["silent", "new"],
                "rfm": {"r": (2, 4)},
                "member": {"status": ["frozen", "active"], "store": [store.pk], "consent": None},
            }
        )

        assert clean == {
            "v": 1,
            "tags": {"any": sorted([coffee.pk, tea.pk])},
            "lifecycle": ["new", "silent"],
            "rfm": {"r": [2, 4]},
            "member": {"status": ["active", "frozen"], "store": [store.pk]},
        }

    @pytest.mark.parametrize(
        ("definition", "path", "words"),
        [
            ({"tags": {"any": [999_999]}}, "tags.any", "999999"),
            ({"tags": {"some": [1]}}, "tags", "tags.some"),
            ({"tags": {"all": "1"}}, "tags.all", "must be a list"),
            ({"tags": {"none": [True]}}, "tags.none", "ids"),
            ({"rfm": {"r": [4, 2]}}, "rfm.r", "the lower first"),
            ({"rfm": {"m": [0, 6]}}, "rfm.m", "from 1 to 5"),
            ({"rfm": {"segments": ["Nobody"]}}, "rfm.segments", "Nobody"),
            ({"lifecycle": ["asleep"]}, "lifecycle", "asleep"),
            ({"tiers": [999_999]}, "tiers", "999999"),
            ({"member": {"status": ["gone"]}}, "member.status", "gone"),
            ({"member": {"store": [999_999]}}, "member.store", "999999"),
            ({"member": {"registered_from": "2025-02-30"}}, "member.registered_from", "YYYY-MM-DD"),
            (
                {"member": {"registered_from": "2025-03-02", "registered_to": "2025-03-01"}},
                "member.registered_to",
                "before",
            ),
            ({"member": {"consent": "yes"}}, "member.consent", "true or false"),
            ({"member": {"birthday_month": [13]}}, "member.birthday_month", "1 to 12"),
            ({"v": 2}, "v", "version"),
            ({"colour": "red"}, "__all__", "colour"),
        ],
    )
    def test_refuses_with_a_message_naming_the_problem(self, definition, path, words):
        with pytest.raises(ValidationError) as caught:
            segments.segment_clean(definition)

        assert path in caught.value.message_dict
        assert words in " ".join(caught.value.message_dict[path])

    def test_refuses_a_tag_both_wanted_and_excluded(self, coffee):
        with pytest.raises(ValidationError) as caught:
            segments.segment_clean({"tags": {"any": [coffee.pk], "none": [coffee.pk]}})

        assert "Coffee" in caught.value.message_dict["tags.none"][0]

    def test_refuses_what_is_not_an_object(self):
        with pytest.raises(ValidationError):
            segments.segment_clean(["tags"])

    def test_reports_every_problem_at_once(self):
        with pytest.raises(ValidationError) as caught:
            segments.segment_clean({"lifecycle": ["asleep"], "rfm": {"f": [5, 1]}})

        assert set(caught.value.message_dict) == {"lifecycle", "rfm.f"}

    def test_segment_members_refuses_a_malformed_definition(self):
        with pytest.raises(ValidationError):
            segments.segment_members({"rfm": {"r": "high"}})

    def test_accepts_the_shipped_rfm_segment_names(self):
        names = list(RfmSegment.objects.values_list("name", flat=True)[:2])

        assert segments.segment_clean({"rfm": {"segments": names}})["rfm"]["segments"] == sorted(names)


class TestCounting:
    def test_small_segments_are_counted_exactly(self, people, coffee):
        count = segments.segment_count({"tags": {"any": [coffee.pk]}})

        assert (count.value, count.capped, count.approximate) == (2, False, False)

    def test_large_segments_stop_counting_like_the_member_list(self, store, monkeypatch):
        monkeypatch.setattr(members_filters, "EXACT_COUNT_LIMIT", 3)
        MemberFactory.create_batch(5, registered_store=store)

        count = segments.segment_count({"member": {"status": ["active"]}})

        assert count.capped and count.value == 3

    def test_refresh_counts_exactly_and_keeps_the_time(self, people, coffee, owner, monkeypatch):
        segment = Segment.objects.create(name="Coffee", definition={"v": 1, "tags": {"any": [coffee.pk]}})
        monkeypatch.setattr(members_filters, "EXACT_COUNT_LIMIT", 1)

        count = segments.segment_refresh_count(segment)

        segment.refresh_from_db()
        assert count == 2 and segment.member_count == 2 and segment.counted_at is not None
        assert segment.events.count() == 1  # type: ignore[attr-defined]  # its creation; the count is not history


class TestSegmentSave:
    def test_creates_cleaned_counted_and_audited(self, people, coffee, tea, owner):
        segment = segments.segment_save(
            segment=Segment(name="Hot drinks", definition={"tags": {"any": [tea.pk, coffee.pk]}}), by=owner.user
        )

        segment.refresh_from_db()
        event = segment.events.select_related("pgh_context").get()  # type: ignore[attr-defined]
        assert segment.definition == {"v": 1, "tags": {"any": sorted([coffee.pk, tea.pk])}}
        assert segment.created_by == owner.user and segment.member_count == 3
        assert event.pgh_context.metadata == {"user": owner.user.pk, "action": "segment_save"}

    def test_a_change_of_definition_is_recounted(self, people, coffee, vip, owner):
        segment = segments.segment_save(
            segment=Segment(name="S", definition={"tags": {"any": [coffee.pk]}}), by=owner.user
        )
        segment.definition = {"tags": {"any": [vip.pk]}}

        segments.segment_save(segment=segment, by=owner.user)

        segment.refresh_from_db()
        assert segment.member_count == 1 and segment.events.count() == 2  # type: ignore[attr-defined]

    def test_refuses_a_bad_definition_or_a_name_in_use(self, owner):
        segments.segment_save(segment=Segment(name="Taken"), by=owner.user)

        with pytest.raises(ValidationError) as bad:
            segments.segment_save(segment=Segment(name="New", definition={"lifecycle": ["x"]}), by=owner.user)
        with pytest.raises(ValidationError) as taken:
            segments.segment_save(segment=Segment(name="Taken"), by=owner.user)

        assert "lifecycle" in bad.value.message_dict and "name" in taken.value.message_dict
        assert list(Segment.objects.values_list("name", flat=True)) == ["Taken"]

    def test_delete_is_audited(self, owner):
        segment = segments.segment_save(segment=Segment(name="Gone"), by=owner.user)

        segments.segment_delete(segment=segment, by=owner.user)

        assert not Segment.objects.exists()


def test_registration_window_of_one_day(store):
    today = timezone.localdate()
    member = MemberFactory.create(registered_store=store, registered_at=timezone.now())
    MemberFactory.create(registered_store=store, registered_at=timezone.now() - timedelta(days=3))

    day = today.isoformat()

    assert members_of({"member": {"registered_from": day, "registered_to": day}}) == nos(member)
