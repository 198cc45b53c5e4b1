"""Member self-service: the daily sign-in (once per business day in Asia/Shanghai, streaks and their bonuses), the
points exchange (points and coupon together, stock, the monthly per-member limit, days of the month), the monthly
coupon allowance, and the back office's sign-in and exchange pages."""

import importlib
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assets import self_service, self_service_selectors, services
from assets.models import (
    Account,
    Asset,
    Coupon,
    CouponTemplate,
    Exchange,
    ExchangeItem,
    LedgerTransaction,
    LoyaltySettings,
    MonthlyCouponClaim,
    SignIn,
    SignInSettings,
)
from benefits.models import Benefit
from members.models import Member, Staff
from members.services import member_cancel, member_freeze, member_unfreeze
from tests.factories import MemberFactory
from tests.tiers import three_rungs
from tiers import selectors as tiers_selectors
from tiers import services as tiers_services

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = LedgerTransaction.Kind
MIGRATED = importlib.import_module("assets.migrations.0003_ledger_invariants")
FULL_WIDTH_5 = "\uff15"


def local(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def key() -> str:
    return uuid4().hex


def at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


def points(member: Member) -> int:
    return int(Account.objects.filter(member=member, asset=Asset.POINTS).values_list("balance", flat=True).first() or 0)


def growth(member: Member) -> int:
    return int(Account.objects.filter(member=member, asset=Asset.GROWTH).values_list("balance", flat=True).first() or 0)


def sign_in_rules(**fields: Any) -> SignInSettings:
    """Open, 5 points and no growth a sign-in, bonuses of 20 on day 7 and 100 on day 30, unless told otherwise."""
    rules = self_service.sign_in_settings()
    values = {
        "is_enabled": True,
        "points": 5,
        "growth": 0,
        "streak_bonuses": [{"day": 7, "points": 20}, {"day": 30, "points": 100}],
    }
    for name, value in {**values, **fields}.items():
        setattr(rules, name, value)
    return self_service.sign_in_settings_save(settings_obj=rules)


def sign_in_on(member: Member, moment: datetime) -> SignIn:
    with at(moment):
        return self_service.sign_in(member=member, at=timezone.now())


def earn(member: Member, amount: int) -> None:
    services.points_earn(member=member, points=amount, idempotency_key=key())


def make_template(**fields: Any) -> CouponTemplate:
    defaults: dict[str, Any] = {
        "name": "10 off 50",
        "kind": CouponTemplate.Kind.CASH_OFF,
        "value_fen": 1_000,
        "threshold_fen": 5_000,
        "validity": CouponTemplate.Validity.RELATIVE,
        "valid_days": 30,
    }
    return CouponTemplate.objects.create(**{**defaults, **fields})


def make_item(**fields: Any) -> ExchangeItem:
    """100 points for a 10-off-50 coupon, open every day, no stock or limit, unless told otherwise."""
    if "coupon_template" not in fields:
        fields["coupon_template"] = make_template()
    return ExchangeItem.objects.create(**{"name": "10 off 50", "points_price": 100, **fields})


def exchange(item: ExchangeItem, member: Member, moment: datetime, idempotency_key: str | None = None) -> Exchange:
    with at(moment):
        return self_service.points_exchange(
            item=item, member=member, idempotency_key=idempotency_key or key(), at=timezone.now()
        )


def rows() -> tuple[int, int, int, int, int]:
    """Everything an exchange writes."""
    return (
        LedgerTransaction.objects.count(),
        Coupon.objects.count(),
        Exchange.objects.count(),
        sum(ExchangeItem.objects.values_list("exchanged", flat=True)),
        sum(CouponTemplate.objects.values_list("issued", flat=True)),
    )


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


# ------------------------------------------------------------------ concurrency harness


def race(work: Callable[[int], Any], *, threads: int) -> list[Any]:
    """Run work(0) … work(threads - 1) at once, each on a thread with its own connection, released together.
    Returns what each returned or raised."""
    barrier = threading.Barrier(threads)
    outcomes: list[Any] = [None] * threads

    def run(n: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            outcomes[n] = work(n)
        except Exception as exc:
            outcomes[n] = exc
        finally:
            connection.close()  # leave no connection open for the flush

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers), "a thread is stuck"
    return outcomes


def tally(outcomes: list[Any]) -> Counter[str]:
    return Counter(type(o).__name__ if isinstance(o, Exception) else "ok" for o in outcomes)


@pytest.fixture
def migrated_rows(transactional_db: None) -> None:
    # A transactional test flushes the rows the migrations made: put back what production has, so that no race
    # depends on which thread happens to create a system account or a settings row first.
    for asset, code in MIGRATED.SYSTEM_ACCOUNTS:
        Account.objects.get_or_create(member=None, asset=asset, code=code)
    LoyaltySettings.objects.get_or_create(pk=1)
    tiers_services.base_tier()
    tiers_services.tier_rules()


# ------------------------------------------------------------------ daily sign-in


class TestSignIn:
    def test_earns_the_points_and_growth_value_of_a_sign_in(self, member: Member) -> None:
        sign_in_rules(points=5, growth=2)

        signed = sign_in_on(member, local(2026, 3, 5))

        assert (signed.business_date, signed.streak, signed.points, signed.growth) == (date(2026, 3, 5), 1, 5, 2)
        assert (points(member), growth(member)) == (5, 2)
        earned = LedgerTransaction.objects.get(kind=Kind.POINTS_EARN, member=member)
        assert (earned.external_ref, earned.actor) == ("sign-in:2026-03-05", "portal")

    def test_its_growth_value_moves_the_member_up_at_once_when_upgrades_are_real_time(self, member: Member) -> None:
        rungs = three_rungs()
        sign_in_rules(growth=100)

        sign_in_on(member, local(2026, 3, 5))

        assert tiers_selectors.member_tier(member=member) == rungs.silver

    def test_a_second_sign_in_the_same_day_returns_the_first_and_earns_nothing(self, member: Member) -> None:
        sign_in_rules()
        first = sign_in_on(member, local(2026, 3, 5, 8))

        again = sign_in_on(member, local(2026, 3, 5, 21))

        assert again.pk == first.pk and SignIn.objects.count() == 1
        assert points(member) == 5 and LedgerTransaction.objects.filter(kind=Kind.POINTS_EARN).count() == 1

    def test_the_day_changes_at_midnight_in_shanghai_not_in_utc(self, member: Member) -> None:
        sign_in_rules()

        # both on 5 March in UTC (15:59 and 16:01), on two business days in Shanghai
        late = sign_in_on(member, local(2026, 3, 5, 23, 59))
        early = sign_in_on(member, local(2026, 3, 6, 0, 1))

        assert (late.business_date, early.business_date) == (date(2026, 3, 5), date(2026, 3, 6))
        assert (late.streak, early.streak) == (1, 2) and points(member) == 10

    def test_a_streak_counts_consecutive_days_and_a_missed_day_starts_it_again(self, member: Member) -> None:
        sign_in_rules()

        streaks = [sign_in_on(member, local(2026, 3, day)).streak for day in (1, 2, 3, 5, 6)]

        assert streaks == [1, 2, 3, 1, 2]

    def test_when_a_missed_day_does_not_reset_it_the_streak_counts_days_signed_in(self, member: Member) -> None:
        sign_in_rules(missed_day_resets=False)

        streaks = [sign_in_on(member, local(2026, 3, day)).streak for day in (1, 2, 3, 5, 9)]

        assert streaks == [1, 2, 3, 4, 5]

    def test_the_seventh_day_in_a_row_earns_the_bonus(self, member: Member) -> None:
        sign_in_rules()

        week = [sign_in_on(member, local(2026, 3, day)) for day in range(1, 9)]

        assert [s.points for s in week] == [5, 5, 5, 5, 5, 5, 25, 5]
        assert week[6].bonus_points == 20 and points(member) == 8 * 5 + 20

    def test_bonuses_that_repeat_start_over_after_the_last_one(self, member: Member) -> None:
        sign_in_rules(streak_bonuses=[{"day": 3, "points": 10}], bonuses_repeat=True)

        earned = [sign_in_on(member, local(2026, 3, day)).bonus_points for day in range(1, 8)]

        assert earned == [0, 0, 10, 0, 0, 10, 0]

    def test_a_frozen_member_is_refused_and_can_sign_in_once_unfrozen_the_same_day(self, member: Member) -> None:
        sign_in_rules()
        member_freeze(member=member, by=None)

        with pytest.raises(services.MemberFrozen):
            sign_in_on(member, local(2026, 3, 5, 9))
        member_unfreeze(member=member, by=None)
        signed = sign_in_on(member, local(2026, 3, 5, 10))

        assert signed.streak == 1 and points(member) == 5

    def test_a_cancelled_membership_is_refused(self, member: Member) -> None:
        sign_in_rules()
        member_cancel(member=member, by=None, reason="asked to leave")

        with pytest.raises(services.MemberCancelled):
            sign_in_on(member, local(2026, 3, 5))

        assert not SignIn.objects.exists()

    def test_a_closed_sign_in_is_refused_and_writes_nothing(self, member: Member) -> None:
        sign_in_rules(is_enabled=False)

        with pytest.raises(self_service.SignInClosed) as refused:
            sign_in_on(member, local(2026, 3, 5))

        assert refused.value.code == "SIGN_IN_CLOSED"
        assert not SignIn.objects.exists() and not LedgerTransaction.objects.exists()


class TestSignInStatus:
    def test_before_the_first_sign_in(self, member: Member) -> None:
        sign_in_rules()

        status = self_service_selectors.sign_in_status(member=member, at=local(2026, 3, 5))

        assert (status.is_open, status.signed_today, status.streak, status.points_today) == (True, False, 0, 5)
        assert (status.next_bonus_day, status.next_bonus_points, status.next_bonus_in_days) == (7, 20, 6)

    def test_after_signing_in_today(self, member: Member) -> None:
        sign_in_rules()
        signed = sign_in_on(member, local(2026, 3, 5))

        status = self_service_selectors.sign_in_status(member=member, at=local(2026, 3, 5, 22))

        assert (status.signed_today, status.today, status.streak) == (True, signed, 1)
        assert (status.next_bonus_day, status.next_bonus_in_days) == (7, 6)

    def test_the_bonus_is_today_on_the_seventh_day(self, member: Member) -> None:
        sign_in_rules()
        for day in range(1, 7):
            sign_in_on(member, local(2026, 3, day))

        status = self_service_selectors.sign_in_status(member=member, at=local(2026, 3, 7))

        assert (status.signed_today, status.streak, status.points_today, status.next_bonus_in_days) == (
            False,
            6,
            25,
            0,
        )

    def test_a_missed_day_ends_the_streak(self, member: Member) -> None:
        sign_in_rules()
        sign_in_on(member, local(2026, 3, 1))
        sign_in_on(member, local(2026, 3, 2))

        status = self_service_selectors.sign_in_status(member=member, at=local(2026, 3, 4))

        assert (status.streak, status.next_bonus_in_days) == (0, 6)


@pytest.mark.django_db(transaction=True)
class TestSignInRace:
    def test_two_taps_at_once_sign_in_once_and_earn_once(self, migrated_rows: None) -> None:
        member = MemberFactory.create()
        sign_in_rules(growth=3)

        outcomes = race(
            lambda _n: self_service.sign_in(member=Member.objects.get(pk=member.pk), at=timezone.now()), threads=2
        )

        assert tally(outcomes) == {"ok": 2}
        assert len({o.pk for o in outcomes}) == 1 and SignIn.objects.count() == 1
        assert (points(member), growth(member)) == (5, 3)
        assert services.ledgers_verify().ok


# ------------------------------------------------------------------ points exchange


class TestPointsExchange:
    def test_spends_the_points_and_issues_the_coupon_together(self, member: Member) -> None:
        earn(member, 150)
        item = make_item()

        made = exchange(item, member, local(2026, 3, 5))

        assert (made.points, made.business_date, made.coupon.member, made.coupon.channel) == (
            100,
            date(2026, 3, 5),
            member,
            Coupon.Channel.EXCHANGE,
        )
        assert made.spend.kind == Kind.POINTS_SPEND and made.spend.amount == 100 and points(member) == 50
        item.refresh_from_db()
        assert item.exchanged == 1

    def test_a_gift_item_gives_a_gift_coupon_to_show_at_the_counter(self, member: Member) -> None:
        earn(member, 500)
        gift = make_template(name="Tote bag", kind=CouponTemplate.Kind.GIFT, gift_name="Tote bag", value_fen=0)
        item = make_item(coupon_template=gift, points_price=500, icon="bag")

        made = exchange(item, member, local(2026, 3, 5))

        assert made.coupon.template.kind == CouponTemplate.Kind.GIFT and points(member) == 0

    def test_short_of_points_is_refused_and_writes_nothing(self, member: Member) -> None:
        earn(member, 99)
        item = make_item()
        before = rows()

        with pytest.raises(services.InsufficientPoints) as refused:
            exchange(item, member, local(2026, 3, 5))

        assert refused.value.code == "INSUFFICIENT_POINTS"
        assert rows() == before and points(member) == 99

    def test_a_retry_with_the_same_key_returns_the_first_exchange(self, member: Member) -> None:
        earn(member, 300)
        item = make_item()

        first = exchange(item, member, local(2026, 3, 5), idempotency_key="tap-1")
        again = exchange(item, member, local(2026, 3, 5), idempotency_key="tap-1")

        assert again.pk == first.pk and Exchange.objects.count() == 1 and points(member) == 200

    def test_the_last_one_goes_and_then_it_is_out_of_stock(self, member: Member) -> None:
        earn(member, 300)
        item = make_item(stock=1)
        exchange(item, member, local(2026, 3, 5))
        before = rows()

        with pytest.raises(self_service.ExchangeOutOfStock) as refused:
            exchange(item, member, local(2026, 3, 5))

        assert refused.value.code == "EXCHANGE_OUT_OF_STOCK" and rows() == before and points(member) == 200

    def test_a_coupon_run_out_is_the_item_run_out_and_the_points_stay(self, member: Member) -> None:
        earn(member, 300)
        item = make_item(coupon_template=make_template(stock=0))

        with pytest.raises(self_service.ExchangeOutOfStock):
            exchange(item, member, local(2026, 3, 5))

        assert points(member) == 300 and not Exchange.objects.exists()

    def test_the_per_member_limit_counts_a_calendar_month(self, member: Member) -> None:
        earn(member, 1_000)
        item = make_item(per_member_limit=2)
        exchange(item, member, local(2026, 3, 1, 0, 1))
        exchange(item, member, local(2026, 3, 31, 23, 59))

        with pytest.raises(self_service.ExchangeLimitReached) as refused:
            exchange(item, member, local(2026, 3, 31, 23, 59))
        in_april = exchange(item, member, local(2026, 4, 1, 0, 1))

        assert refused.value.code == "EXCHANGE_LIMIT_REACHED" and "2 per member" in str(refused.value)
        assert in_april.business_date == date(2026, 4, 1) and points(member) == 700

    def test_the_coupons_own_per_member_limit_is_the_items_limit(self, member: Member) -> None:
        earn(member, 1_000)
        item = make_item(coupon_template=make_template(per_member_limit=1))
        exchange(item, member, local(2026, 3, 5))

        with pytest.raises(self_service.ExchangeLimitReached):
            exchange(item, member, local(2026, 3, 5))

        assert points(member) == 900

    @pytest.mark.parametrize(
        ("moment", "open_"),
        [
            (local(2026, 3, 19, 23, 59), False),
            (local(2026, 3, 20, 0, 1), True),
            (local(2026, 3, 31, 23, 59), True),
            (local(2026, 4, 1, 0, 1), False),
            (local(2026, 2, 28, 12), True),
        ],
    )
    def test_from_the_20th_to_month_end_in_shanghai(self, member: Member, moment: datetime, open_: bool) -> None:
        earn(member, 100)
        item = make_item(month_day_from=20)

        try:
            exchange(item, member, moment)
            outcome = True
        except self_service.ExchangeClosed as refused:
            assert refused.code == "EXCHANGE_CLOSED" and "from day 20 of each month" in str(refused)
            outcome = False

        assert outcome is open_ and points(member) == (0 if open_ else 100)

    def test_a_31st_is_a_shorter_months_last_day(self, member: Member) -> None:
        earn(member, 100)
        item = make_item(month_day_from=25, month_day_to=31)

        made = exchange(item, member, local(2026, 4, 30))

        assert made.business_date == date(2026, 4, 30)

    @pytest.mark.parametrize(
        ("fields", "reason"),
        [
            ({"is_active": False}, "not offered"),
            ({"available_from": date(2026, 3, 6)}, "from 2026-03-06"),
            ({"available_until": date(2026, 3, 4)}, "until 2026-03-04"),
            ({"month_day_from": 1, "month_day_to": 3}, "from day 1 to day 3"),
        ],
    )
    def test_closed_items_say_why(self, member: Member, fields: dict[str, Any], reason: str) -> None:
        earn(member, 100)
        item = make_item(**fields)

        with pytest.raises(self_service.ExchangeClosed) as refused:
            exchange(item, member, local(2026, 3, 5))

        assert reason in str(refused.value) and points(member) == 100

    def test_a_frozen_member_cannot_exchange(self, member: Member) -> None:
        earn(member, 100)
        member_freeze(member=member, by=None)

        with pytest.raises(services.MemberFrozen):
            exchange(make_item(), member, local(2026, 3, 5))

        assert not Exchange.objects.exists()


@pytest.mark.django_db(transaction=True)
class TestExchangeRace:
    def test_eight_members_at_once_for_the_last_three_take_exactly_three(self, migrated_rows: None) -> None:
        members = [MemberFactory.create() for _ in range(8)]
        for m in members:
            earn(m, 100)
        item = make_item(points_price=60, stock=3)

        outcomes = race(
            lambda n: self_service.points_exchange(
                item=item, member=Member.objects.get(pk=members[n].pk), idempotency_key=key(), at=timezone.now()
            ),
            threads=8,
        )

        assert tally(outcomes) == {"ok": 3, "ExchangeOutOfStock": 5}
        item.refresh_from_db()
        assert item.exchanged == 3 and Exchange.objects.count() == 3 and Coupon.objects.count() == 3
        assert sorted(points(m) for m in members) == [40, 40, 40, 100, 100, 100, 100, 100]
        assert services.ledgers_verify().ok


class TestExchangeCatalogue:
    def test_says_for_each_item_whether_the_member_can_exchange_it_and_why_not(
        self, member: Member, django_assert_num_queries: Any
    ) -> None:
        earn(member, 150)
        cheap = make_item(name="cheap", sort_order=1)
        dear = make_item(name="dear", points_price=500, sort_order=2)
        gone = make_item(name="gone", stock=0, sort_order=3)
        later = make_item(name="later", month_day_from=20, sort_order=4)
        once = make_item(name="once", points_price=10, per_member_limit=1, sort_order=5)
        make_item(name="hidden", is_active=False)
        exchange(once, member, local(2026, 3, 5))

        with django_assert_num_queries(4):
            catalogue = self_service_selectors.exchange_catalogue(member=member, at=local(2026, 3, 5, 12))

        assert [(e.item, e.reason_code) for e in catalogue] == [
            (cheap, ""),
            (dear, "INSUFFICIENT_POINTS"),
            (gone, "EXCHANGE_OUT_OF_STOCK"),
            (later, "EXCHANGE_CLOSED"),
            (once, "EXCHANGE_LIMIT_REACHED"),
        ]
        assert catalogue[0].can_exchange and "140 points" in catalogue[1].why_not
        assert catalogue[3].opens == (20, 31) and catalogue[4].exchanged_this_month == 1


# ------------------------------------------------------------------ monthly coupon allowance


@pytest.fixture
def allowance(db: None) -> CouponTemplate:
    """Two coupons a month for every member on the base tier."""
    template = make_template(name="Monthly 10 off")
    benefit = Benefit.objects.create(
        kind=Benefit.Kind.MONTHLY_COUPONS, name="Monthly coupons", coupon_template=template, coupons_per_month=2
    )
    benefit.tiers.set([tiers_services.base_tier()])
    return template


def claim(member: Member, moment: datetime) -> list[Coupon]:
    with at(moment):
        return self_service.monthly_coupons_claim(member=member, at=timezone.now())


class TestMonthlyCoupons:
    def test_the_months_coupons_are_claimed_once(self, member: Member, allowance: CouponTemplate) -> None:
        first = claim(member, local(2026, 3, 1, 0, 5))
        again = claim(member, local(2026, 3, 31, 23, 55))

        assert [c.template for c in first] == [allowance, allowance] and again == []
        assert {c.channel for c in first} == {Coupon.Channel.BENEFIT}
        due = self_service_selectors.monthly_coupons_due(member=member, at=local(2026, 3, 20))
        assert [(d.template, d.allowance, d.claimed, d.due) for d in due] == [(allowance, 2, 2, 0)]

    def test_a_new_month_in_shanghai_brings_them_again(self, member: Member, allowance: CouponTemplate) -> None:
        claim(member, local(2026, 3, 31, 23, 59))

        april = claim(member, local(2026, 4, 1, 0, 1))

        assert len(april) == 2
        assert list(MonthlyCouponClaim.objects.order_by("month", "n").values_list("month", "n")) == [
            (date(2026, 3, 1), 1),
            (date(2026, 3, 1), 2),
            (date(2026, 4, 1), 1),
            (date(2026, 4, 1), 2),
        ]

    def test_a_coupon_out_of_stock_stays_due_until_there_is_stock(
        self, member: Member, allowance: CouponTemplate
    ) -> None:
        CouponTemplate.objects.filter(pk=allowance.pk).update(stock=1)

        first = claim(member, local(2026, 3, 5))
        CouponTemplate.objects.filter(pk=allowance.pk).update(stock=5)
        then = claim(member, local(2026, 3, 6))

        assert (len(first), len(then)) == (1, 1) and Coupon.objects.filter(member=member).count() == 2

    def test_when_nothing_can_be_issued_the_refusal_says_why(self, member: Member, allowance: CouponTemplate) -> None:
        CouponTemplate.objects.filter(pk=allowance.pk).update(stock=0)

        with pytest.raises(services.CouponOutOfStock):
            claim(member, local(2026, 3, 5))

        assert not MonthlyCouponClaim.objects.exists()

    def test_nothing_is_due_without_the_benefit(self, member: Member) -> None:
        assert claim(member, local(2026, 3, 5)) == []
        assert self_service_selectors.monthly_coupons_due(member=member, at=local(2026, 3, 5)) == []

    def test_a_frozen_member_cannot_claim(self, member: Member, allowance: CouponTemplate) -> None:
        member_freeze(member=member, by=None)

        with pytest.raises(services.MemberFrozen):
            claim(member, local(2026, 3, 5))

        assert not Coupon.objects.exists()


@pytest.mark.django_db(transaction=True)
class TestMonthlyCouponsRace:
    def test_two_claims_at_once_issue_the_allowance_once(self, migrated_rows: None) -> None:
        member = MemberFactory.create()
        template = make_template(name="Monthly 10 off")
        benefit = Benefit.objects.create(
            kind=Benefit.Kind.MONTHLY_COUPONS, name="Monthly", coupon_template=template, coupons_per_month=2
        )
        benefit.tiers.set([tiers_services.base_tier()])

        outcomes = race(
            lambda _n: self_service.monthly_coupons_claim(member=Member.objects.get(pk=member.pk), at=timezone.now()),
            threads=2,
        )

        assert sorted(len(o) for o in outcomes) == [0, 2] and Coupon.objects.count() == 2
        assert services.ledgers_verify().ok


# ------------------------------------------------------------------ back office: the sign-in rules


SIGN_IN_FORM = {
    "is_enabled": "on",
    "points": "10",
    "growth": "2",
    "streak_bonuses": "30: 100\n7\uff1a20",  # a full-width colon, as a Chinese keyboard types it
    "missed_day_resets": "on",
}


class TestSignInSettingsPage:
    def test_a_manager_saves_the_rules_with_their_bonuses_by_day(self, manager_client: Client) -> None:
        response = manager_client.post(reverse("assets:sign-in-settings"), SIGN_IN_FORM)

        assert response.status_code == 302
        rules = SignInSettings.objects.get(pk=1)
        assert (rules.is_enabled, rules.points, rules.growth, rules.missed_day_resets, rules.bonuses_repeat) == (
            True,
            10,
            2,
            True,
            False,
        )
        assert rules.streak_bonuses == [{"day": 7, "points": 20}, {"day": 30, "points": 100}]
        assert SignInSettings.pgh_event_model.objects.filter(pgh_obj_id=1).exists()  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("points", FULL_WIDTH_5),
            ("points", "1e3"),
            ("points", "-1"),
            ("growth", ""),
            ("streak_bonuses", "7-20"),
            ("streak_bonuses", "0: 5"),
            ("streak_bonuses", "7: 0"),
            ("streak_bonuses", "7: 20\n7: 30"),
            ("streak_bonuses", "400: 5"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_changes(self, owner_client: Client, field: str, value: str) -> None:
        response = owner_client.post(reverse("assets:sign-in-settings"), SIGN_IN_FORM | {field: value})

        assert response.status_code == 200 and field in response.context["form"].errors
        assert self_service.sign_in_settings().is_enabled is False

    def test_an_open_sign_in_must_give_something(self, owner_client: Client) -> None:
        data = SIGN_IN_FORM | {"points": "0", "growth": "0", "streak_bonuses": ""}

        response = owner_client.post(reverse("assets:sign-in-settings"), data)

        assert response.status_code == 200 and response.context["form"].non_field_errors()
        assert self_service.sign_in_settings().is_enabled is False

    def test_auditors_read_the_rules_but_cannot_change_them(self, auditor_client: Client) -> None:
        sign_in_rules()

        page = auditor_client.get(reverse("assets:sign-in-settings"))
        post = auditor_client.post(reverse("assets:sign-in-settings"), SIGN_IN_FORM)

        assert page.status_code == 200 and "Read only" in page.text and "disabled" in page.text
        assert "7: 20" in page.text
        assert post.status_code == 403 and self_service.sign_in_settings().points == 5

    def test_shows_todays_sign_ins(self, owner_client: Client, member: Member) -> None:
        sign_in_rules()
        sign_in_on(member, timezone.now())

        page = owner_client.get(reverse("assets:sign-in-settings"))

        assert page.context["figures"].today == 1

    def test_the_points_page_leads_to_it(self, owner_client: Client) -> None:
        page = owner_client.get(reverse("assets:points"))

        assert reverse("assets:sign-in-settings") in page.text and reverse("assets:exchange-items") in page.text

    def test_is_closed_to_cashiers(self, cashier_client: Client) -> None:
        assert cashier_client.get(reverse("assets:sign-in-settings")).status_code == 403


# ------------------------------------------------------------------ back office: the exchange catalogue


@pytest.fixture
def template(db: None) -> CouponTemplate:
    return make_template()


def item_form(template: CouponTemplate, **fields: str) -> dict[str, str]:
    return {
        "name": "10 off for 100 points",
        "description": "Exchange at the end of the month",
        "icon": "ticket-perforated",
        "coupon_template": str(template.pk),
        "points_price": "100",
        "stock": "50",
        "per_member_limit": "1",
        "available_from": "",
        "available_until": "",
        "month_day_from": "20",
        "month_day_to": "",
        "sort_order": "1",
        "is_active": "on",
        **fields,
    }


class TestExchangePages:
    def test_a_manager_offers_an_item_from_the_20th_to_month_end(
        self, manager_client: Client, template: CouponTemplate
    ) -> None:
        response = manager_client.post(reverse("assets:exchange-item-create"), item_form(template))

        assert response.status_code == 302
        item = ExchangeItem.objects.get()
        assert (item.coupon_template, item.points_price, item.stock, item.per_member_limit) == (template, 100, 50, 1)
        assert (item.month_day_from, item.month_day_to, item.is_active, item.icon) == (
            20,
            None,
            True,
            "ticket-perforated",
        )
        listing = manager_client.get(reverse("assets:exchange-items"))
        assert "10 off for 100 points" in listing.text and "from day 20 to month end" in listing.text

    @pytest.mark.parametrize(
        "fields",
        [
            {"points_price": "0"},
            {"points_price": "1e3"},
            {"stock": "-1"},
            {"per_member_limit": "0"},
            {"month_day_from": "32"},
            {"month_day_from": "25", "month_day_to": "10"},
            {"available_from": "2026-03-10", "available_until": "2026-03-01"},
            {"coupon_template": "999999"},
            {"icon": "skull"},
            {"name": ""},
        ],
    )
    def test_bad_input_is_refused_and_nothing_is_written(
        self, owner_client: Client, template: CouponTemplate, fields: dict[str, str]
    ) -> None:
        response = owner_client.post(reverse("assets:exchange-item-create"), item_form(template, **fields))

        assert response.status_code == 200 and response.context["form"].errors
        assert not ExchangeItem.objects.exists()

    def test_an_edit_keeps_what_was_exchanged_and_refuses_a_stock_below_it(
        self, owner_client: Client, member: Member
    ) -> None:
        earn(member, 300)
        item = make_item(stock=5)
        exchange(item, member, timezone.now())
        exchange(item, member, timezone.now())
        url = reverse("assets:exchange-item-edit", args=[item.pk])

        refused = owner_client.post(url, item_form(item.coupon_template, stock="1", month_day_from=""))
        saved = owner_client.post(
            url, item_form(item.coupon_template, stock="2", points_price="120", month_day_from="")
        )

        assert refused.status_code == 200 and "stock" in refused.context["form"].errors
        assert saved.status_code == 302
        item.refresh_from_db()
        assert (item.stock, item.exchanged, item.points_price) == (2, 2, 120)

    def test_auditors_see_the_catalogue_but_cannot_change_it(
        self, auditor_client: Client, template: CouponTemplate
    ) -> None:
        item = make_item(coupon_template=template)

        listing = auditor_client.get(reverse("assets:exchange-items"))
        form = auditor_client.get(reverse("assets:exchange-item-edit", args=[item.pk]))
        post = auditor_client.post(reverse("assets:exchange-item-create"), item_form(template))

        assert listing.status_code == 200 and item.name in listing.text
        assert reverse("assets:exchange-item-create") not in listing.text
        assert form.status_code == 403 and post.status_code == 403 and ExchangeItem.objects.count() == 1

    def test_is_closed_to_cashiers(self, cashier_client: Client, cashier: Staff) -> None:
        assert cashier_client.get(reverse("assets:exchange-items")).status_code == 403
        assert cashier_client.get(reverse("assets:exchange-item-create")).status_code == 403


def test_refusals_keep_their_type_when_replayed(member: Member) -> None:
    earn(member, 10)
    item = make_item()

    with pytest.raises(services.InsufficientPoints):
        exchange(item, member, local(2026, 3, 5), idempotency_key="tap-9")
    item.is_active = False
    self_service.exchange_item_save(item=item)

    with pytest.raises(services.InsufficientPoints):
        exchange(item, member, local(2026, 3, 5), idempotency_key="tap-9")
    with pytest.raises(self_service.ExchangeClosed) as closed:
        exchange(item, member, local(2026, 3, 5), idempotency_key="tap-10")
    with pytest.raises(self_service.ExchangeClosed) as replayed:
        exchange(item, member, local(2026, 3, 5), idempotency_key="tap-10")

    assert str(replayed.value) == str(closed.value) == "This item is not offered at the moment."
