"""The portal's self-service pages: the daily sign-in (one reward a day, whatever the taps or tabs), the points
exchange (a confirm step with a one-time key, so a double tap exchanges once) and the monthly coupons."""

import re
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from assets import self_service
from assets import services as assets_services
from assets.models import Account, Asset, Coupon, CouponTemplate, Exchange, ExchangeItem, LedgerTransaction, SignIn
from benefits.models import Benefit
from members.models import Member
from members.services import member_freeze
from tests.factories import MemberFactory
from tests.portal.conftest import OTHER_PHONE, new_key, portal_client
from tiers import services as tiers_services


def points(member: Member) -> int:
    found = Account.objects.filter(member=member, asset=Asset.POINTS).values_list("balance", flat=True).first()
    return int(found or 0)


def sign_in_rules(**fields: Any) -> None:
    rules = self_service.sign_in_settings()
    for name, value in {"is_enabled": True, "points": 5, "growth": 0, "streak_bonuses": [], **fields}.items():
        setattr(rules, name, value)
    self_service.sign_in_settings_save(settings_obj=rules)


def make_template(name: str = "¥10 off ¥50") -> CouponTemplate:
    return CouponTemplate.objects.create(
        name=name,
        kind=CouponTemplate.Kind.CASH_OFF,
        value_fen=1_000,
        threshold_fen=5_000,
        validity=CouponTemplate.Validity.RELATIVE,
        valid_days=30,
    )


def make_item(**fields: Any) -> ExchangeItem:
    return ExchangeItem.objects.create(
        **{"name": "Coffee coupon", "points_price": 100, "coupon_template": make_template(), **fields}
    )


def post_exchange(client: Client, item: ExchangeItem, key: str, **extra: Any) -> Any:
    return client.post(reverse("portal:exchange-confirm"), {"item": item.pk, "key": key}, **extra)


def confirm_key(client: Client, item: ExchangeItem) -> str:
    page = client.get(reverse("portal:exchange-confirm"), {"item": item.pk})
    assert page.status_code == 200
    match = re.search(r'name="key" value="([0-9a-f]{32})"', page.content.decode())
    assert match
    return match.group(1)


# ------------------------------------------------------------------ daily sign-in


class TestSignIn:
    def test_the_page_shows_todays_state_and_home_links_to_it(self, member: Member, member_client: Client) -> None:
        sign_in_rules(streak_bonuses=[{"day": 3, "points": 20}])
        home = member_client.get(reverse("portal:home")).content.decode()
        assert reverse("portal:sign-in") in home and reverse("portal:exchange") in home

        page = member_client.get(reverse("portal:sign-in")).content.decode()
        assert "Signing in today earns 5 points." in page
        assert "20 bonus points in 2 more days of signing in." in page
        assert f'action="{reverse("portal:sign-in-post")}"' in page and "csrfmiddlewaretoken" in page

    def test_signing_in_twice_rewards_once(self, member: Member, member_client: Client) -> None:
        sign_in_rules()
        first = member_client.post(reverse("portal:sign-in-post"), follow=True)
        assert "Signed in for today: +5 points." in first.content.decode()
        assert "You have signed in today" in first.content.decode()

        again = member_client.post(reverse("portal:sign-in-post"), follow=True)
        assert "Signed in for today: +5 points." in again.content.decode()
        assert points(member) == 5 and SignIn.objects.filter(member=member).count() == 1

    def test_htmx_gets_the_panel_in_place(self, member: Member, member_client: Client) -> None:
        sign_in_rules()
        panel = member_client.post(reverse("portal:sign-in-post"), headers={"HX-Request": "true"})
        html = panel.content.decode()
        assert panel.status_code == 200 and html.startswith("<section") and "+5 points" in html

    def test_refusals_are_messages(self, member: Member, member_client: Client) -> None:
        sign_in_rules(is_enabled=False)
        closed = member_client.post(reverse("portal:sign-in-post"), follow=True).content.decode()
        assert "Daily sign-in is not open." in closed

        sign_in_rules()
        member_freeze(member=member, by=None, reason="test")
        frozen = member_client.post(reverse("portal:sign-in-post"), follow=True).content.decode()
        assert "Your membership is frozen" in frozen
        assert not SignIn.objects.exists() and points(member) == 0

    @pytest.mark.django_db(transaction=True)
    def test_two_tabs_at_once_earn_one_reward(self) -> None:
        sign_in_rules()
        member = MemberFactory.create()
        tabs = [portal_client(member), portal_client(member)]
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def tap(client: Client) -> None:
            try:
                barrier.wait(timeout=30)
                codes.append(client.post(reverse("portal:sign-in-post")).status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=tap, args=(c,)) for c in tabs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert codes == [302, 302]
        assert SignIn.objects.filter(member=member).count() == 1 and points(member) == 5


# ------------------------------------------------------------------ points exchange


class TestExchange:
    def test_the_catalogue_says_what_each_item_gives_and_why_not(self, member: Member, member_client: Client) -> None:
        assets_services.points_earn(member=member, points=150, idempotency_key=new_key())
        make_item(stock=10)
        make_item(name="Cake coupon", points_price=500)
        page = member_client.get(reverse("portal:exchange")).content.decode()
        assert "Coffee coupon" in page and "10 left" in page and "100 points" in page
        assert "You have 150 points; this needs 500." in page
        assert reverse("portal:exchange") in member_client.get(reverse("portal:points")).content.decode()

    def test_confirm_spends_the_points_and_the_coupon_is_in_the_wallet(
        self, member: Member, member_client: Client
    ) -> None:
        assets_services.points_earn(member=member, points=150, idempotency_key=new_key())
        item = make_item()
        key = confirm_key(member_client, item)
        done = post_exchange(member_client, item, key)
        exchange = Exchange.objects.get(member=member)
        assert done.headers["Location"] == reverse("portal:coupon", args=[exchange.coupon_id])
        result = member_client.get(done.headers["Location"]).content.decode()
        assert "You exchanged 100 points for Coffee coupon. Points left: 50." in result
        assert points(member) == 50
        wallet = member_client.get(reverse("portal:coupons")).content.decode()
        assert reverse("portal:coupon", args=[exchange.coupon_id]) in wallet

    def test_the_same_key_twice_exchanges_once(self, member: Member, member_client: Client) -> None:
        assets_services.points_earn(member=member, points=500, idempotency_key=new_key())
        item = make_item()
        key = confirm_key(member_client, item)
        first, second = post_exchange(member_client, item, key), post_exchange(member_client, item, key)
        assert first.headers["Location"] == second.headers["Location"]
        assert Exchange.objects.count() == 1 and points(member) == 400
        assert confirm_key(member_client, item) != key  # every confirm step mints its own

    def test_not_enough_points_is_a_message_and_writes_nothing(self, member: Member, member_client: Client) -> None:
        assets_services.points_earn(member=member, points=40, idempotency_key=new_key())
        item = make_item()
        before = (LedgerTransaction.objects.count(), Coupon.objects.count())
        page = post_exchange(member_client, item, new_key(), follow=True).content.decode()
        assert "You have 40 points; this needs 100." in page
        assert (LedgerTransaction.objects.count(), Coupon.objects.count()) == before and not Exchange.objects.exists()

    def test_a_bad_key_exchanges_nothing(self, member: Member, member_client: Client) -> None:
        assets_services.points_earn(member=member, points=400, idempotency_key=new_key())
        item = make_item()
        post_exchange(member_client, item, "x")
        assert not Exchange.objects.exists()

    def test_another_member_sees_nothing_of_yours(self, member: Member, member_client: Client) -> None:
        assets_services.points_earn(member=member, points=400, idempotency_key=new_key())
        item = make_item()
        key = confirm_key(member_client, item)
        post_exchange(member_client, item, key)
        exchange = Exchange.objects.get()
        other = MemberFactory.create(phone=OTHER_PHONE)
        assets_services.points_earn(member=other, points=400, idempotency_key=new_key())
        theirs = portal_client(other)
        assert theirs.get(reverse("portal:coupon", args=[exchange.coupon_id])).status_code == 404
        # the same key from another member is their own exchange, not a replay of yours
        post_exchange(theirs, item, key)
        assert Exchange.objects.filter(member=other).count() == 1
        assert points(member) == 300 and points(other) == 300

    def test_pages_need_a_signed_in_member(self, db: None) -> None:
        for name in ("portal:sign-in", "portal:exchange"):
            assert Client().get(reverse(name)).status_code == 302


# ------------------------------------------------------------------ monthly coupons


def test_the_monthly_coupons_are_claimed_once(member: Member, member_client: Client) -> None:
    template = make_template("Monthly treat")
    benefit = Benefit.objects.create(
        kind=Benefit.Kind.MONTHLY_COUPONS, name="Monthly coupons", coupon_template=template, coupons_per_month=2
    )
    benefit.tiers.set([tiers_services.base_tier()])
    page = member_client.get(reverse("portal:coupons")).content.decode()
    assert "Claim this month's coupons" in page and "Monthly treat" in page

    first = member_client.post(reverse("portal:monthly-claim"), follow=True).content.decode()
    assert "2 coupons added to your wallet." in first and "Claim this month's coupons" not in first
    again = member_client.post(reverse("portal:monthly-claim"), follow=True).content.decode()
    assert "You have already claimed this month&#x27;s coupons." in again
    assert Coupon.objects.filter(member=member, template=template).count() == 2
