"""The member's histories: balance and points ledgers by month with "load more", points by expiry date, coupons by
status with their rules and codes, purchases with their receipts."""

import re
from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assets import counter
from assets import services as assets_services
from assets.models import Coupon, CouponTemplate, LedgerTransaction
from members import portal_selectors
from members.models import Member, Store
from members.portal_selectors import Cursor
from tests.factories import MemberFactory
from tests.portal.conftest import History, new_key, shop
from tests.tiers import local

pytestmark = pytest.mark.django_db
TIMES = "\N{MULTIPLICATION SIGN}"


def get(client, url: str, **extra) -> str:  # type: ignore[no-untyped-def]
    response = client.get(url, **extra)
    assert response.status_code == 200, url
    return str(response.content.decode())


def text(body: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#x27;", "'")


def rows(body: str) -> list[str]:
    """Each ledger or purchase row's words, top to bottom."""
    return [text(row).strip() for row in re.findall(r'<li><(?:a|div) class="row[^"]*".*?</(?:a|div)></li>', body, re.S)]


def top_up(member: Member, fen: int, *, on: datetime | None = None, store: Store | None = None) -> LedgerTransaction:
    with time_machine.travel(on or local(2025, 3, 10), tick=False):
        return assets_services.balance_top_up(member=member, amount_fen=fen, idempotency_key=new_key(), store=store)


class TestBalanceHistory:
    def test_names_the_source_and_shows_signed_amounts_and_the_running_balance(self, member_client, history):
        found = [
            re.sub(r"\d+ \w{3}, \d\d:\d\d", "DAY", row) for row in rows(get(member_client, reverse("portal:balance")))
        ]

        assert found == [
            "Refund DAY · Jing'an +34.00 bonus +3.08 Balance ¥256.00",
            "Purchase DAY · Jing'an -108.00 bonus -9.81 Balance ¥222.00",
            "Bonus Welcome DAY +30.00 Balance ¥330.00",
            "Top-up DAY · Jing'an +300.00 Balance ¥300.00",
        ]

    def test_links_a_purchase_and_its_refund_to_the_receipt(self, member_client, history):
        body = get(member_client, reverse("portal:balance"))

        assert body.count(f'href="{reverse("portal:purchase", args=[history.purchase.pk])}"') == 2

    def test_groups_by_month_in_the_merchant_s_time_zone(self, member_client, member):
        top_up(member, 100, on=local(2025, 1, 31, 23, 30))  # 15:30 UTC
        top_up(member, 200, on=local(2025, 2, 1, 0, 30))  # still 31 January in UTC

        body = get(member_client, reverse("portal:balance"))

        assert re.findall(r'<h2 class="month-title">([^<]+)</h2>', body) == ["February 2025", "January 2025"]

    def test_heads_months_in_chinese(self, member_client, member):
        top_up(member, 100, on=local(2025, 1, 31, 23, 30))
        member_client.cookies["django_language"] = "zh-hans"

        body = get(member_client, reverse("portal:balance"))

        assert '<h2 class="month-title">2025年1月</h2>' in body and "充值" in body and "1月31日 23:30" in body

    def test_says_so_when_there_is_nothing_yet(self, member_client):
        assert "No balance movements yet" in get(member_client, reverse("portal:balance"))

    def test_reads_the_same_number_of_queries_however_many_lines(self, member_client, member, store):
        for day in range(1, 4):
            top_up(member, 100, on=local(2025, 3, day), store=store)
        with CaptureQueriesContext(connection) as few:
            get(member_client, reverse("portal:balance"))
        for day in range(4, 20):
            top_up(member, 100, on=local(2025, 3, day), store=store)

        with CaptureQueriesContext(connection) as many:
            get(member_client, reverse("portal:balance"))

        assert len(many.captured_queries) == len(few.captured_queries)


class TestLoadMore:
    @pytest.fixture
    def busy(self, member: Member) -> Member:
        """25 top-ups of ¥1 to ¥25 in March 2025, one a day."""
        for day in range(1, 26):
            top_up(member, day * 100, on=local(2025, 3, day, 10))
        return member

    def test_shows_twenty_lines_and_a_link_to_the_next_ones_by_cursor(self, member_client, busy):
        body = get(member_client, reverse("portal:balance"))

        more = re.search(r'<a class="button block more" href="([^"]+)" hx-get="([^"]+)"', body)
        assert len(rows(body)) == 20 and more is not None and more[1] == more[2]
        assert re.fullmatch(r"/m/balance/\?after=\d+-\d+", more[1].replace("&amp;", "&"))

    def test_htmx_gets_the_next_lines_alone_going_on_with_the_same_month(self, member_client, busy):
        more = re.search(r'hx-get="([^"]+)"', get(member_client, reverse("portal:balance")))
        assert more is not None

        body = get(member_client, more[1].replace("&amp;", "&"), HTTP_HX_REQUEST="true")

        assert "<html" not in body and len(rows(body)) == 5 and "Load more" not in body
        assert 'class="month continued"' in body and "month-title" not in body
        # the oldest five, each with the balance after it: ¥1 + ¥2 + … carried from before the page
        assert [r.split("Balance ")[1] for r in rows(body)] == ["¥15.00", "¥10.00", "¥6.00", "¥3.00", "¥1.00"]

    def test_without_javascript_the_link_opens_the_next_page_in_full(self, member_client, busy):
        more = re.search(r'href="(/m/balance/\?after=[^"]+)"', get(member_client, reverse("portal:balance")))
        assert more is not None

        body = get(member_client, more[1].replace("&amp;", "&"))

        assert "<html" in body and len(rows(body)) == 5 and "March 2025" in body and "Back to the latest" in body

    def test_pages_through_lines_made_at_one_instant_without_losing_or_repeating_any(self, member: Member) -> None:
        with time_machine.travel(local(2025, 3, 1), tick=False):
            made = {
                assets_services.balance_top_up(member=member, amount_fen=100, idempotency_key=new_key()).pk
                for _ in range(7)
            }
        seen: list[int] = []
        after: Cursor | None = None
        while True:
            page = portal_selectors.member_history(
                member=member, assets=portal_selectors.BALANCE_ASSETS, after=after, limit=3
            )
            seen += [line.transaction.pk for line in page.lines]
            if page.next_cursor is None:
                break
            after = page.next_cursor

        assert seen == sorted(made, reverse=True)

    def test_an_unreadable_cursor_shows_the_first_page(self, member_client, busy):
        body = get(member_client, reverse("portal:balance") + "?after=13800138000")

        assert len(rows(body)) == 20 and "25.00" in rows(body)[0]

    def test_a_cursor_is_a_time_and_an_id_and_nothing_else(self):
        cursor = Cursor(at=local(2025, 3, 1, 10), pk=42)

        assert re.fullmatch(r"\d+-42", str(cursor)) and Cursor.parse(str(cursor)) == cursor
        assert Cursor.parse("1-2-3") is None and Cursor.parse("999999999999999999-1") is None


class TestPointsHistory:
    def test_names_every_source_with_the_points_left(self, member_client, member, history: History, manager):
        assets_services.points_earn(member=member, points=50, idempotency_key=new_key(), reason="Birthday")
        assets_services.points_spend(member=member, points=30, idempotency_key=new_key())
        assets_services.points_adjust(member=member, points=-4, reason="typo", staff=manager, idempotency_key=new_key())

        found = [re.sub(r"\d+ \w{3}, \d\d:\d\d", "DAY", r) for r in rows(get(member_client, reverse("portal:points")))]

        assert found == [
            "Adjustment DAY -4 Balance 90",
            "Exchange DAY -30 Balance 94",
            "Bonus Birthday DAY +50 Balance 124",
            "Refund DAY · Jing'an -34 Balance 74",
            "Purchase DAY · Jing'an +108 Balance 108",
        ]
        assert "typo" not in get(member_client, reverse("portal:points"))  # staff's reasons stay in the back office

    def test_shows_expired_points(self, member_client, member):
        with time_machine.travel(local(2025, 3, 1), tick=False):
            assets_services.points_earn(
                member=member, points=80, idempotency_key=new_key(), expiry="days", expiry_days=5
            )
        with time_machine.travel(local(2025, 3, 7, 2), tick=False):
            assets_services.points_expire_due(business_date=date(2025, 3, 6))

        assert rows(get(member_client, reverse("portal:points")))[0] == "Expiry 7 Mar, 02:00 -80 Balance 0"

    def test_says_when_a_refund_leaves_points_owed(self, member_client, member, store):
        history = shop(member, store)
        assets_services.points_spend(member=member, points=70, idempotency_key=new_key())

        counter.purchase_refund(purchase=history.purchase, idempotency_key=new_key(), actor="terminal:1")

        body = get(member_client, reverse("portal:points"))
        assert "Refund" in rows(body)[0] and "-4 " in rows(body)[0] and "70 points now owed" in rows(body)[0]
        assert "70 points owed after a refund" in text(body)

    def test_shows_what_expires_within_30_days(self, member_client, member):
        with time_machine.travel(local(2025, 3, 1), tick=False):
            assets_services.points_earn(
                member=member, points=120, idempotency_key=new_key(), expiry="days", expiry_days=10
            )
            body = get(member_client, reverse("portal:points"))

        assert "120 expiring by 11 Mar" in text(body)


class TestPointsByExpiry:
    def test_lists_live_points_first_expiring_first_never_expiring_last(self, member_client, member):
        with time_machine.travel(local(2025, 3, 1), tick=False):
            assets_services.points_earn(member=member, points=10, idempotency_key=new_key(), expiry="never")
            assets_services.points_earn(member=member, points=20, idempotency_key=new_key())
            for _ in range(2):
                assets_services.points_earn(
                    member=member, points=30, idempotency_key=new_key(), expiry="days", expiry_days=10
                )
            body = get(member_client, reverse("portal:points-expiry"))

        assert rows(body) == [
            "Use by 11 Mar 2025 From 2 earnings since 1 Mar 2025 60 Soon",
            "Use by 31 Dec 2026 Earned on 1 Mar 2025 20",
            "Never expire Earned on 1 Mar 2025 10",
        ]
        assert "90 points in all" in text(body)


class TestCoupons:
    @pytest.fixture
    def coupons(self, member: Member, history: History) -> dict[str, Coupon]:
        template = history.coupon.template
        voided = assets_services.coupon_issue(template=template, member=member, idempotency_key=new_key())
        assets_services.coupon_void(coupon=voided, reason="test", idempotency_key=new_key())
        with time_machine.travel(local(2024, 1, 10), tick=False):
            lapsed = assets_services.coupon_issue(template=template, member=member, idempotency_key=new_key())
        later = CouponTemplate.objects.create(
            name="Spring gift",
            kind=CouponTemplate.Kind.GIFT,
            gift_name="Tote bag",
            validity=CouponTemplate.Validity.FIXED,
            valid_from=date.today() + timedelta(days=40),
            valid_until=date.today() + timedelta(days=70),
        )
        upcoming = assets_services.coupon_issue(template=later, member=member, idempotency_key=new_key())
        return {
            "available": history.coupon,
            "used": history.used_coupon,
            "void": voided,
            "lapsed": lapsed,
            "upcoming": upcoming,
        }

    def test_sorts_coupons_into_available_used_and_expired_tabs_with_counts(self, member_client, coupons):
        body = get(member_client, reverse("portal:coupons"))

        tabs = re.findall(r'<a href="[^"]*\?tab=(\w+)"[^>]*>[^<]+<span class="count nums">(\d+)</span>', body)
        assert tabs == [("available", "2"), ("used", "1"), ("expired", "2")]

    @pytest.mark.parametrize(
        ("tab", "expected"),
        [
            ("available", ["available", "upcoming"]),  # the soonest to expire first
            ("used", ["used"]),
            ("expired", ["void", "lapsed"]),
        ],
    )
    def test_each_tab_lists_its_coupons(self, member_client, coupons, tab, expected):
        body = get(member_client, reverse("portal:coupons") + f"?tab={tab}")

        listed = [int(pk) for pk in re.findall(r'class="coupon state-\w+" href="/m/coupons/(\d+)/"', body)]
        assert listed == [coupons[name].pk for name in expected]

    def test_cards_say_what_the_coupon_is_worth_and_until_when(self, member_client, coupons):
        words = text(get(member_client, reverse("portal:coupons")))

        assert "¥20 from ¥100.00 ¥20 off ¥100 ¥20.00 off orders from ¥100.00 Use by" in words
        assert "Gift Spring gift Gift: Tote bag Valid from" in words

    def test_expired_cards_say_they_were_withdrawn_or_ran_out(self, member_client, coupons):
        words = text(get(member_client, reverse("portal:coupons") + "?tab=expired"))

        assert "Withdrawn" in words and "Expired after 8 Feb 2024" in words

    def test_never_puts_a_coupon_code_in_a_link(self, member_client, coupons):
        body = get(member_client, reverse("portal:coupons"))

        for coupon in coupons.values():
            assert coupon.code not in body

    def test_detail_shows_the_rules_and_the_code_as_qr_code_and_digits(self, member_client, coupons):
        coupon = coupons["available"]

        body = get(member_client, reverse("portal:coupon", args=[coupon.pk]))

        words = text(body)
        assert 'class="segno"' in body and " ".join(re.findall(r".{4}", coupon.code)) in words
        assert "What you get ¥20.00 off orders from ¥100.00" in words and "Every store" in words
        assert "One coupon per order" in words and "How you got it Issued by staff" in words

    def test_detail_names_the_stores_it_is_good_in(self, member_client, coupons, other_store):
        coupons["available"].template.stores.add(other_store)

        words = text(get(member_client, reverse("portal:coupon", args=[coupons["available"].pk])))

        assert "Where Xuhui" in words

    def test_detail_of_a_used_coupon_shows_no_code_and_leads_to_the_receipt(self, member_client, coupons, history):
        coupon = coupons["used"]

        body = get(member_client, reverse("portal:coupon", args=[coupon.pk]))

        assert coupon.code not in body and 'class="segno"' not in body
        assert f'href="{reverse("portal:purchase", args=[history.purchase.pk])}"' in body

    def test_pages_by_cursor(self, member, coupons):
        now = datetime.now().astimezone()

        first = portal_selectors.coupon_page(member=member, tab="expired", now=now, limit=1)
        second = portal_selectors.coupon_page(member=member, tab="expired", now=now, after=first.next_cursor, limit=1)

        assert [c.pk for c in first.items + second.items] == [coupons["void"].pk, coupons["lapsed"].pk]
        assert second.next_cursor is None


class TestPurchases:
    def test_lists_purchases_with_store_amount_points_and_refunds(self, member_client, history):
        found = [
            re.sub(r"\d+ \w{3}, \d\d:\d\d", "DAY", r) for r in rows(get(member_client, reverse("portal:purchases")))
        ]

        assert found == ["Jing'an DAY +108 points ¥108.00 ¥34.00 refunded"]

    def test_lists_only_the_member_s_own(self, member_client, history, store):
        shop(MemberFactory.create(), store)
        counter.purchase_record(
            store=store, member=None, amount_fen=500, tenders={"cash": 500}, idempotency_key=new_key(), actor="t:1"
        )

        assert len(rows(get(member_client, reverse("portal:purchases")))) == 1

    def test_groups_by_local_month(self, member_client, member, store):
        for moment in (local(2025, 1, 31, 23, 30), local(2025, 2, 1, 0, 30)):
            with time_machine.travel(moment, tick=False):
                counter.purchase_record(
                    store=store, member=member, amount_fen=500, tenders={"cash": 500}, idempotency_key=new_key()
                )

        body = get(member_client, reverse("portal:purchases"))

        assert re.findall(r'<h2 class="month-title">([^<]+)</h2>', body) == ["February 2025", "January 2025"]

    def test_receipt_shows_lines_price_tenders_earnings_and_refunds(self, member_client, history):
        words = text(get(member_client, reverse("portal:purchase", args=[history.purchase.pk])))

        assert f"Latte {TIMES} 2 ¥68.00 Cheesecake ¥60.00" in words
        assert "Amount ¥128.00 Coupon · ¥20 off ¥100 -¥20.00 Paid ¥108.00" in words
        assert "Paid with Stored balance ¥108.00" in words and "Points +108 Growth value +108" in words
        assert "¥34.00 refunded" in words and "34 points earned taken back ¥34.00" in words
        assert history.purchase.order_no in words

    def test_receipt_shows_the_points_that_paid(self, member_client, member, store):
        assets_services.points_earn(member=member, points=1_000, idempotency_key=new_key())
        purchase = counter.purchase_record(
            store=store,
            member=member,
            amount_fen=20_000,
            points=1_000,
            tenders={"wechat": 19_000},
            idempotency_key=new_key(),
        )

        words = text(get(member_client, reverse("portal:purchase", args=[purchase.pk])))

        assert "Points · 1,000 points -¥10.00 Paid ¥190.00 Paid with WeChat Pay ¥190.00" in words

    def test_receipt_reads_in_chinese(self, member_client, history):
        member_client.cookies["django_language"] = "zh-hans"

        words = text(get(member_client, reverse("portal:purchase", args=[history.purchase.pk])))

        assert "实付 ¥108.00" in words and "储值余额 ¥108.00" in words and "已退 ¥34.00" in words


def test_balance_and_points_pages_show_the_totals(member_client, history):
    balance = text(get(member_client, reverse("portal:balance")))
    points = text(get(member_client, reverse("portal:points")))

    assert "Total balance ¥256.00 Paid in ¥232.73 Bonus ¥23.27" in balance
    assert "Points you can use 74" in points
