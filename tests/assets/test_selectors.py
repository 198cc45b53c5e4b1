"""Reads of the ledgers: a member's ledger pages, expiry dates as staff read them, and the liabilities."""

from datetime import datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from assets import selectors, services
from assets.models import Account
from members.models import Member
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")


def key() -> str:
    return uuid4().hex


@pytest.fixture
def member(db) -> Member:
    return MemberFactory.create()


class TestMemberLedgerPage:
    def test_carries_the_untouched_balance_into_the_next_page(self, member, manager):
        services.balance_top_up(member=member, amount_fen=5_000, idempotency_key=key())
        services.balance_adjust(
            member=member, asset="bonus", amount_fen=700, reason="gift", staff=manager, idempotency_key=key()
        )
        for _ in range(20):  # principal-only lines push the bonus line onto page 2
            services.balance_top_up(member=member, amount_fen=100, idempotency_key=key())

        first = selectors.member_ledger_page(member=member, assets=selectors.BALANCE_ASSETS, page=1)
        second = selectors.member_ledger_page(member=member, assets=selectors.BALANCE_ASSETS, page=2)

        assert first[0].after == (7_000, 700) and first[19].after == (5_100, 700)
        assert [line.after for line in second] == [(5_000, 700), (5_000, 0)]
        assert [line.changes for line in second] == [(0, 700), (5_000, 0)]

    def test_the_balance_after_matches_the_account(self, member):
        for amount in (300, 200, 100):
            services.balance_top_up(member=member, amount_fen=amount, idempotency_key=key())
        services.balance_spend(member=member, amount_fen=250, idempotency_key=key())

        page = selectors.member_ledger_page(member=member, assets=selectors.BALANCE_ASSETS)

        held = sum(
            Account.objects.filter(member=member, asset__in=selectors.BALANCE_ASSETS).values_list("balance", flat=True)
        )
        assert page[0].total_after == held == 350

    def test_a_member_without_accounts_has_an_empty_ledger(self, member):
        page = selectors.member_ledger_page(member=member, assets=selectors.POINTS_ASSETS)

        assert list(page) == []

    def test_reads_in_a_fixed_number_of_queries(self, member, django_assert_num_queries):
        for _ in range(5):
            services.balance_top_up(member=member, amount_fen=100, idempotency_key=key())

        with django_assert_num_queries(6):  # accounts, count, page, transactions, two opening balances
            list(selectors.member_ledger_page(member=member, assets=selectors.BALANCE_ASSETS))


class TestLastValidDate:
    def test_is_the_day_before_the_exclusive_expiry_instant(self):
        assert selectors.last_valid_date(datetime(2028, 1, 1, tzinfo=SHANGHAI)).isoformat() == "2027-12-31"

    def test_reads_the_instant_in_the_merchants_zone(self):
        # local midnight of 1 January in Shanghai is 16:00 on 31 December in UTC
        instant = datetime(2027, 12, 31, 16, tzinfo=ZoneInfo("UTC"))

        assert selectors.last_valid_date(instant).isoformat() == "2027-12-31"

    def test_never_expiring_has_no_date(self):
        assert selectors.last_valid_date(None) is None


class TestLiabilitiesByStore:
    def test_counts_members_holding_a_balance_and_sums_each_asset(self, store):
        rich = MemberFactory.create(registered_store=store)
        services.balance_top_up(member=rich, amount_fen=1_000, idempotency_key=key())
        services.points_earn(member=rich, points=30, idempotency_key=key())
        points_only = MemberFactory.create(registered_store=store)
        services.points_earn(member=points_only, points=5, idempotency_key=key())

        lines, total = selectors.liabilities_by_store()

        assert [(line.store, line.members, line.principal_fen, line.points) for line in lines] == [
            (store, 1, 1_000, 35)
        ]
        assert total.balance_fen == 1_000

    def test_is_one_query_plus_the_stores(self, store, django_assert_num_queries):
        services.balance_top_up(
            member=MemberFactory.create(registered_store=store), amount_fen=1, idempotency_key=key()
        )

        with django_assert_num_queries(2):
            selectors.liabilities_by_store()


class TestPointsExpiring:
    def test_counts_only_live_points_due_within_the_window(self, member):
        services.points_earn(member=member, points=10, idempotency_key=key(), expiry="days", expiry_days=5)
        services.points_earn(member=member, points=20, idempotency_key=key(), expiry="days", expiry_days=60)
        services.points_earn(member=member, points=40, idempotency_key=key(), expiry="never")

        points, members, days = selectors.points_expiring(within_days=30)

        assert (points, members, [d.points for d in days]) == (10, 1, [10])
