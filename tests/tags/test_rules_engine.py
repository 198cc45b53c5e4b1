"""The rule engine: which members a clean rule selects as of a business date (each condition at its boundary,
AND/OR, a nested group), how rules are checked, put in words and explained for one member."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError

from members.models import Member
from tags import rules
from tags.rules import rule_member_ids
from tests.factories import MemberFactory
from tests.tags.test_rules_helpers import buy, earn_points, everyone, noon, refund, rule_tag, top_up
from tiers.models import MemberTier, Tier

pytestmark = pytest.mark.django_db

D = date(2025, 6, 30)


def days_before(n: int) -> date:
    return D - timedelta(days=n)


def selects(rule: dict, *members: Member) -> list[int]:
    """The ids among `members` that the rule selects as of D."""
    return rule_member_ids(rules.rule_clean(rule), as_of=D, member_ids=[m.pk for m in members])


@pytest.fixture
def member(store) -> Member:
    return MemberFactory.create(registered_store=store, registered_at=noon(date(2024, 1, 2)))


class TestRegisteredWithin:
    def test_counts_the_n_days_ending_with_the_business_date(self, store):
        first_day = MemberFactory.create(registered_at=noon(days_before(6)).replace(hour=0))
        day_before = MemberFactory.create(registered_at=noon(days_before(7)).replace(hour=23, minute=59))

        found = selects(everyone({"field": "registered_within", "days": 7}), first_day, day_before)

        assert found == [first_day.pk]

    def test_a_member_registered_after_the_date_still_counts(self, store):
        later = MemberFactory.create(registered_at=noon(D + timedelta(days=1)))

        assert selects(everyone({"field": "registered_within", "days": 7}), later) == [later.pk]


class TestSpend:
    RULE = everyone({"field": "spend", "days": 30, "min_fen": 10_000})

    def test_exactly_the_minimum_on_the_first_day_of_the_window_counts(self, member, store):
        buy(member, 10_000, day=days_before(29), store=store)

        assert selects(self.RULE, member) == [member.pk]

    def test_a_purchase_n_days_before_is_outside_the_window(self, member, store):
        buy(member, 10_000, day=days_before(30), store=store)

        assert selects(self.RULE, member) == []

    def test_one_fen_short_does_not_count(self, member, store):
        buy(member, 9_999, day=D, store=store)

        assert selects(self.RULE, member) == []

    def test_purchases_after_the_business_date_are_never_read(self, member, store):
        buy(member, 10_000, day=D + timedelta(days=1), store=store)

        assert selects(self.RULE, member) == []

    def test_refunds_up_to_the_date_are_taken_off(self, member, store):
        purchase = buy(member, 10_000, day=days_before(3), store=store)
        refund(purchase, 1, day=D)

        assert selects(self.RULE, member) == []

    def test_a_refund_after_the_date_is_not_known_yet(self, member, store):
        purchase = buy(member, 10_000, day=days_before(3), store=store)
        refund(purchase, 1, day=D + timedelta(days=1))

        assert selects(self.RULE, member) == [member.pk]

    def test_the_upper_bound_is_inclusive(self, member, store):
        buy(member, 20_000, day=D, store=store)

        assert selects(everyone({"field": "spend", "days": 30, "min_fen": 0, "max_fen": 20_000}), member) == [member.pk]
        assert selects(everyone({"field": "spend", "days": 30, "min_fen": 0, "max_fen": 19_999}), member) == []

    def test_a_member_who_never_bought_spent_nothing(self, member):
        assert selects(everyone({"field": "spend", "days": 30, "min_fen": 0, "max_fen": 0}), member) == [member.pk]


class TestPurchaseCount:
    def test_counts_purchases_between_min_and_max(self, member, store):
        buy(member, 100, day=D, store=store)
        buy(member, 100, day=days_before(29), store=store)

        assert selects(everyone({"field": "purchase_count", "days": 30, "min": 2, "max": 2}), member) == [member.pk]
        assert selects(everyone({"field": "purchase_count", "days": 30, "min": 3}), member) == []

    def test_a_fully_refunded_purchase_does_not_count(self, member, store):
        buy(member, 100, day=D, store=store)
        refund(buy(member, 100, day=D, store=store), 100, day=D)

        assert selects(everyone({"field": "purchase_count", "days": 30, "min": 2}), member) == []


class TestLastPurchase:
    RULE = everyone({"field": "last_purchase", "days": 30})

    def test_exactly_n_days_old_is_not_older_than_n_days(self, member, store):
        buy(member, 100, day=days_before(30), store=store)

        assert selects(self.RULE, member) == []

    def test_n_plus_one_days_old_is(self, member, store):
        buy(member, 100, day=days_before(31), store=store)

        assert selects(self.RULE, member) == [member.pk]

    def test_a_later_purchase_counts_as_the_last_one(self, member, store):
        buy(member, 100, day=days_before(400), store=store)
        buy(member, 100, day=days_before(2), store=store)

        assert selects(self.RULE, member) == []

    def test_members_who_never_bought_count_only_when_asked(self, member):
        assert selects(self.RULE, member) == []
        rule = everyone({"field": "last_purchase", "days": 30, "include_never": True})
        assert selects(rule, member) == [member.pk]


class TestMemberFields:
    def test_birthday_month_from_a_list_or_the_month_of_the_date(self, store):
        march = MemberFactory.create(birthday=date(1990, 3, 9))
        june = MemberFactory.create(birthday=date(1990, 6, 1))
        unknown = MemberFactory.create(birthday=None)

        listed = selects(everyone({"field": "birthday_month", "months": [3, 4]}), march, june, unknown)
        this_month = selects(everyone({"field": "birthday_month", "this_month": True}), march, june, unknown)

        assert (listed, this_month) == ([march.pk], [june.pk])

    def test_channel_store_and_member_type(self, store, other_store):
        here = MemberFactory.create(registered_store=store, channel=Member.Channel.PORTAL)
        there = MemberFactory.create(registered_store=other_store, member_type=Member.Type.PAID)

        assert selects(everyone({"field": "store", "values": [store.pk]}), here, there) == [here.pk]
        assert selects(everyone({"field": "channel", "values": ["portal"]}), here, there) == [here.pk]
        assert selects(everyone({"field": "member_type", "values": ["paid"]}), here, there) == [there.pk]

    def test_a_member_without_a_tier_row_stands_on_rank_zero(self, store):
        base = Tier.objects.get(rank=0)
        gold = Tier.objects.create(name="Gold", rank=1, threshold=100)
        plain = MemberFactory.create()
        golden = MemberFactory.create()
        MemberTier.objects.create(member=golden, tier=gold, reached_at=noon(D))

        assert selects(everyone({"field": "tier", "values": [base.pk]}), plain, golden) == [plain.pk]
        assert selects(everyone({"field": "tier", "values": [gold.pk]}), plain, golden) == [golden.pk]

    def test_balance_and_points_ranges_are_inclusive(self, member):
        top_up(member, 5_000)
        earn_points(member, 300)

        assert selects(everyone({"field": "balance", "min_fen": 5_000}), member) == [member.pk]
        assert selects(everyone({"field": "balance", "min_fen": 5_001}), member) == []
        assert selects(everyone({"field": "points", "min": 100, "max": 300}), member) == [member.pk]
        assert selects(everyone({"field": "points", "max": 299}), member) == []

    def test_cancelled_memberships_never_match(self, store):
        gone = MemberFactory.create(status=Member.Status.CANCELLED)

        assert selects(everyone({"field": "registered_within", "days": 3650}), gone) == []


class TestTopCategory:
    def test_the_category_with_the_most_spent_in_the_last_year(self, member, store):
        buy(member, 900, day=days_before(10), store=store, categories=[("tea", 300), ("coffee", 600)])
        buy(member, 500, day=days_before(365), store=store, categories=[("tea", 500)])  # a day too old

        assert selects(everyone({"field": "top_category", "values": ["coffee"]}), member) == [member.pk]

    def test_a_tie_goes_to_the_first_category_by_name(self, member, store):
        buy(member, 600, day=D, store=store, categories=[("tea", 300), ("coffee", 300)])

        assert selects(everyone({"field": "top_category", "values": ["coffee"]}), member) == [member.pk]
        assert selects(everyone({"field": "top_category", "values": ["tea"]}), member) == []


class TestCombinations:
    def test_all_needs_every_condition_and_any_needs_one(self, store, other_store):
        both = MemberFactory.create(registered_store=store, channel=Member.Channel.PORTAL)
        one = MemberFactory.create(registered_store=store)
        neither = MemberFactory.create(registered_store=other_store)
        conditions = ({"field": "store", "values": [store.pk]}, {"field": "channel", "values": ["portal"]})

        assert selects(everyone(*conditions, match="all"), both, one, neither) == [both.pk]
        assert selects(everyone(*conditions, match="any"), both, one, neither) == [both.pk, one.pk]

    def test_a_nested_group(self, store, other_store):
        # the store of registration AND (a portal registration OR a March birthday)
        portal = MemberFactory.create(registered_store=store, channel=Member.Channel.PORTAL)
        march = MemberFactory.create(registered_store=store, birthday=date(2000, 3, 3))
        plain = MemberFactory.create(registered_store=store)
        elsewhere = MemberFactory.create(registered_store=other_store, channel=Member.Channel.PORTAL)
        rule = everyone(
            {"field": "store", "values": [store.pk]},
            everyone(
                {"field": "channel", "values": ["portal"]}, {"field": "birthday_month", "months": [3]}, match="any"
            ),
        )

        assert selects(rule, portal, march, plain, elsewhere) == [portal.pk, march.pk]

    def test_one_statement_serves_every_member(self, store):
        members = MemberFactory.create_batch(3, registered_store=store)
        rule = rules.rule_clean(everyone({"field": "store", "values": [store.pk]}))

        assert rule_member_ids(rule, as_of=D) == sorted(m.pk for m in members)


class TestRuleClean:
    def test_normalises_numbers_and_lists(self, store):
        rule = {
            "match": "any",
            "conditions": [
                {"field": "channel", "values": ["store", "portal", "store"]},
                {"field": "spend", "days": "30", "min_fen": "100", "max_fen": ""},
            ],
        }

        cleaned = rules.rule_clean(rule)

        assert cleaned == {
            "match": "any",
            "conditions": [
                {"field": "channel", "values": ["portal", "store"]},
                {"field": "spend", "days": 30, "min_fen": 100, "max_fen": None},
            ],
        }

    @pytest.mark.parametrize(
        ("rule", "message"),
        [
            ({"match": "all", "conditions": []}, "add at least one condition"),
            ({"match": "all", "conditions": [{"field": "shoe size"}]}, "Condition 1: choose what the condition"),
            ({"match": "all", "conditions": [{"field": "spend", "days": 0, "min_fen": 1}]}, "number of days"),
            ({"match": "all", "conditions": [{"field": "points", "min": 5, "max": 4}]}, "upper bound is below"),
            ({"match": "all", "conditions": [{"field": "balance"}]}, "a lower bound, an upper bound or both"),
            ({"match": "all", "conditions": [{"field": "store", "values": [999_999]}]}, "no longer exists"),
            ({"match": "all", "conditions": [{"field": "channel", "values": ["pigeon"]}]}, "from the list"),
            (
                {
                    "match": "all",
                    "conditions": [
                        {"field": "tier", "values": [1]},
                        {"match": "any", "conditions": [{"match": "all", "conditions": []}]},
                    ],
                },
                "Condition 2.1: a group cannot hold another group",
            ),
        ],
    )
    def test_refuses_with_a_message_naming_the_condition(self, db, rule, message):
        with pytest.raises(ValidationError) as refused:
            rules.rule_clean(rule)

        assert any(message in text for text in refused.value.messages), refused.value.messages


class TestInWords:
    def test_rule_text_reads_the_whole_rule(self, store):
        rule = rules.rule_clean(
            everyone(
                {"field": "spend", "days": 30, "min_fen": 10_000},
                everyone(
                    {"field": "store", "values": [store.pk]}, {"field": "birthday_month", "months": [3]}, match="any"
                ),
            )
        )

        text = rules.rule_text(rule)

        assert (
            text
            == "all of: paid at least ¥100.00 in the last 30 days; any of (registered at Jing'an; birthday in March)"
        )


class TestExplain:
    def test_shows_each_condition_with_the_members_value(self, member, store):
        buy(member, 12_000, day=days_before(2), store=store)
        tag = rule_tag(
            rules.rule_clean(
                everyone({"field": "spend", "days": 30, "min_fen": 10_000}, {"field": "last_purchase", "days": 1})
            )
        )

        lines = rules.rule_explain(tag, member, D)

        assert [(line.depth, line.actual, line.passed) for line in lines] == [
            (0, "as of 2025-06-30", True),
            (1, "¥120.00", True),
            (1, "2025-06-28, 2 days before", True),
        ]

    def test_a_failing_condition_in_a_group(self, member, store):
        tag = rule_tag(
            rules.rule_clean(
                everyone(
                    {"field": "store", "values": [store.pk]},
                    everyone({"field": "points", "min": 1}, {"field": "purchase_count", "days": 7, "min": 1}),
                )
            )
        )

        lines = rules.rule_explain(tag, member, D)

        assert [(line.depth, line.passed) for line in lines] == [
            (0, False),
            (1, True),
            (1, False),
            (2, False),
            (2, False),
        ]
        assert [line.actual for line in lines[1:]] == ["Jing'an", "", "0", "0"]
