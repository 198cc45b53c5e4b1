"""The counter's use cases: the pricing pipeline in its order, a purchase recorded atomically and once, refunds
that undo exactly what the purchase did, guests, top-ups and plan sales."""

import importlib
import threading
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.db import connection
from django.utils import timezone

from assets import counter, services
from assets.models import (
    Account,
    Asset,
    Coupon,
    CouponTemplate,
    LedgerTransaction,
    LoyaltySettings,
    Purchase,
    PurchaseRefund,
    Tender,
)
from benefits.models import Benefit
from members.models import Member, PaidPlan, PaymentCode, Staff, Store
from members.services import payment_code_issue
from tests.factories import MemberFactory
from tiers import services as tiers_services
from tiers.models import Tier, TierRules

Kind = LedgerTransaction.Kind
MIGRATED = importlib.import_module("assets.migrations.0003_ledger_invariants")


def key() -> str:
    return uuid4().hex


def balances(member: Member) -> dict[str, int]:
    rows = Account.objects.filter(member=member).values_list("asset", "balance")
    return {asset: balance for asset, balance in rows}


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


@pytest.fixture
def funded(member: Member, store: Store) -> Member:
    """¥300 paid in with a ¥30 bonus (packages give bonus; here a plain grant), and 5,000 points."""
    services.balance_top_up(member=member, amount_fen=30_000, idempotency_key=key(), store=store)
    services.balance_bonus_grant(member=member, amount_fen=3_000, idempotency_key=key(), actor="test", reason="test")
    services.points_earn(member=member, points=5_000, idempotency_key=key())
    return member


@pytest.fixture
def gold_discount(member: Member) -> Benefit:
    """Gold members pay 95%, and the member stands on Gold."""
    gold = Tier.objects.create(name="Gold", rank=2, threshold=1_000_000)
    benefit = Benefit.objects.create(kind=Benefit.Kind.DISCOUNT, name="Gold price", discount_percent=95)
    benefit.tiers.add(gold)
    tiers_services.tier_set_manual(member=member, tier=gold, reason="test", staff=None)  # type: ignore[arg-type]
    return benefit


@pytest.fixture
def twenty_off(member: Member) -> Coupon:
    template = CouponTemplate.objects.create(
        name="20 off 100",
        kind=CouponTemplate.Kind.CASH_OFF,
        value_fen=2_000,
        threshold_fen=10_000,
        validity=CouponTemplate.Validity.RELATIVE,
        valid_days=30,
    )
    return services.coupon_issue(template=template, member=member, idempotency_key=key())


def pay_code(member: Member) -> str:
    return payment_code_issue(member=member).code


class TestQuote:
    def test_applies_discount_then_coupon_then_points_and_earns_on_money(
        self, store: Store, funded: Member, gold_discount: Benefit, twenty_off: Coupon
    ) -> None:
        quote = counter.purchase_quote(
            store=store, member=funded, amount_fen=20_000, coupon_code=twenty_off.code.lower(), points=1_000
        )

        # 200.00 → 95%: 10.00 off → coupon 20.00 off 190.00 → 1,000 points pay 10.00 → 160.00 to pay
        assert (quote.discount_fen, quote.coupon_fen, quote.points_offset_fen, quote.payable_fen) == (
            1_000,
            2_000,
            1_000,
            16_000,
        )
        assert quote.points_used == 1_000 and quote.points_to_earn == 160 and quote.growth_to_earn == 160
        assert [line.amount_fen for line in quote.lines] == [20_000, -1_000, -2_000, -1_000, 16_000]

    def test_points_are_capped_at_the_share_of_the_order_and_have_a_minimum(self, store: Store, funded: Member) -> None:
        with pytest.raises(counter.PointsNotUsable) as cap:
            counter.purchase_quote(store=store, member=funded, amount_fen=1_000, points=501)
        with pytest.raises(counter.PointsNotUsable) as minimum:
            counter.purchase_quote(store=store, member=funded, amount_fen=1_000, points=99)

        assert cap.value.params["maximum"] == 500 and "At most 500 points" in str(cap.value)
        assert minimum.value.code == "POINTS_NOT_USABLE" and "at least 100" in str(minimum.value)

    def test_a_coupon_below_its_minimum_is_refused(self, store: Store, funded: Member, twenty_off: Coupon) -> None:
        with pytest.raises(services.CouponNotUsable) as refused:
            counter.purchase_quote(store=store, member=funded, amount_fen=9_999, coupon_code=twenty_off.code)

        assert refused.value.params["reason"] == "threshold"

    def test_balance_payments_earn_nothing_when_the_settings_say_so(self, store: Store, funded: Member) -> None:
        LoyaltySettings.objects.filter(pk=1).update(balance_payments_earn=False)

        quote = counter.purchase_quote(store=store, member=funded, amount_fen=10_000, balance_fen=6_000)

        assert (quote.earn_base_fen, quote.points_to_earn) == (4_000, 40)

    def test_a_guest_cannot_use_points(self, store: Store) -> None:
        with pytest.raises(counter.MemberRequired):
            counter.purchase_quote(store=store, member=None, amount_fen=1_000, points=100)


class TestPurchase:
    def test_records_every_asset_once_and_a_retry_returns_the_same_purchase(
        self, store: Store, funded: Member, twenty_off: Coupon
    ) -> None:
        k = key()
        kwargs: dict[str, Any] = {
            "store": store,
            "member": funded,
            "amount_fen": 20_000,
            "coupon_code": twenty_off.code,
            "points": 1_000,
            "tenders": {Tender.BALANCE: 10_000, Tender.CASH: 7_000},
            "idempotency_key": k,
        }
        code = pay_code(funded)
        first = counter.purchase_record(payment_code=code, **kwargs)
        again = counter.purchase_record(
            payment_code=code, **kwargs
        )  # the same request again: the code is not used twice

        assert again.pk == first.pk and Purchase.objects.count() == 1
        assert (first.payable_fen, first.balance_fen, first.cash_fen, first.points_earned) == (
            17_000,
            10_000,
            7_000,
            170,
        )
        twenty_off.refresh_from_db()
        assert twenty_off.status == Coupon.Status.USED
        kinds = sorted(LedgerTransaction.objects.filter(external_ref=first.order_no).values_list("kind", flat=True))
        assert kinds == sorted(
            [Kind.COUPON_REDEEM, Kind.POINTS_SPEND, Kind.BALANCE_SPEND, Kind.POINTS_EARN, Kind.GROWTH_ADD]
        )
        held = balances(funded)
        assert held[Asset.PRINCIPAL] + held[Asset.BONUS] == 33_000 - 10_000
        assert held[Asset.POINTS] == 5_000 - 1_000 + 170
        assert services.ledgers_verify().ok

    def test_the_balance_needs_the_members_payment_code(self, store: Store, funded: Member) -> None:
        before = balances(funded)
        with pytest.raises(counter.PaymentCodeInvalid):
            counter.purchase_record(
                store=store,
                member=funded,
                amount_fen=1_000,
                tenders={Tender.BALANCE: 1_000},
                payment_code="123456789012345678",
                idempotency_key=key(),
            )

        assert balances(funded) == before and not Purchase.objects.exists()

    def test_a_payment_code_is_used_once(self, store: Store, funded: Member) -> None:
        code = pay_code(funded)
        counter.purchase_record(
            store=store, member=funded, amount_fen=1_000, tenders={"balance": 1_000}, payment_code=code,
            idempotency_key=key(),
        )  # fmt: skip

        with pytest.raises(counter.PaymentCodeInvalid):
            counter.purchase_record(
                store=store, member=funded, amount_fen=1_000, tenders={"balance": 1_000}, payment_code=code,
                idempotency_key=key(),
            )  # fmt: skip

    def test_payments_must_add_up_to_what_is_to_pay(self, store: Store, funded: Member) -> None:
        with pytest.raises(counter.PaymentNotAddingUp) as refused:
            counter.purchase_record(
                store=store, member=funded, amount_fen=1_000, tenders={"cash": 900}, idempotency_key=key()
            )

        assert "¥9.00, not the ¥10.00" in str(refused.value) and not Purchase.objects.exists()

    def test_the_same_key_for_another_purchase_is_refused(self, store: Store, funded: Member) -> None:
        k = key()
        counter.purchase_record(
            store=store, member=funded, amount_fen=1_000, tenders={"cash": 1_000}, idempotency_key=k
        )

        with pytest.raises(services.IdempotencyConflict):
            counter.purchase_record(
                store=store, member=funded, amount_fen=2_000, tenders={"cash": 2_000}, idempotency_key=k
            )
        with pytest.raises(services.IdempotencyConflict):  # another payment code is another request
            counter.purchase_record(
                store=store, member=funded, amount_fen=1_000, tenders={"cash": 1_000}, idempotency_key=k,
                payment_code="281234567890123456",
            )  # fmt: skip

    def test_a_guest_purchase_is_recorded_without_a_member(self, store: Store) -> None:
        purchase = counter.purchase_record(
            store=store,
            member=None,
            amount_fen=4_250,
            tenders={"wechat": 4_000, "cash": 250},
            idempotency_key=key(),
            lines=[{"sku": "A1", "name": "Tea", "category": "drinks", "quantity": 2, "unit_price_fen": 2_125}],
        )

        assert purchase.member is None and purchase.tenders() == {"cash": 250, "wechat": 4_000}
        assert list(purchase.lines.values_list("sku", "amount_fen")) == [("A1", 4_250)]
        assert not LedgerTransaction.objects.filter(external_ref=purchase.order_no).exists()

    def test_growth_earned_upgrades_in_real_time(self, store: Store, member: Member) -> None:
        silver = Tier.objects.create(name="Silver", rank=1, threshold=100)
        TierRules.objects.update_or_create(pk=1, defaults={"upgrade_timing": TierRules.Timing.REALTIME})

        counter.purchase_record(
            store=store, member=member, amount_fen=15_000, tenders={"card": 15_000}, idempotency_key=key()
        )

        assert Member.objects.get(pk=member.pk).tier_state.tier == silver


def bought(store: Store, member: Member, coupon: Coupon) -> Purchase:
    """A purchase with a discount-free coupon, points, and a mixed payment (balance and cash)."""
    return counter.purchase_record(
        store=store,
        member=member,
        amount_fen=20_000,
        coupon_code=coupon.code,
        points=1_000,
        tenders={Tender.BALANCE: 10_001, Tender.CASH: 6_999},
        payment_code=pay_code(member),
        idempotency_key=key(),
    )


class TestRefund:
    def test_a_full_refund_undoes_every_asset_exactly(
        self, store: Store, funded: Member, twenty_off: Coupon, manager: Staff
    ) -> None:
        before = balances(funded)
        purchase = bought(store, funded, twenty_off)

        refund = counter.purchase_refund(purchase=purchase, idempotency_key=key(), staff=manager, reason="returned")

        assert (refund.amount_fen, refund.balance_fen, refund.cash_fen) == (17_000, 10_001, 6_999)
        assert (refund.points_restored, refund.points_clawed_back, refund.coupon_restored) == (1_000, 170, True)
        after = balances(funded)
        assert {a: after[a] for a in before} == before
        twenty_off.refresh_from_db()
        assert twenty_off.status == Coupon.Status.AVAILABLE
        assert services.ledgers_verify().ok

    def test_partial_refunds_are_proportional_and_add_up_to_the_whole(
        self, store: Store, funded: Member, twenty_off: Coupon, manager: Staff
    ) -> None:
        before = balances(funded)
        purchase = bought(store, funded, twenty_off)

        parts = [
            counter.purchase_refund(purchase=purchase, amount_fen=amount, idempotency_key=key(), staff=manager)
            for amount in (3_333, 3_333, 10_334)
        ]

        assert [p.balance_fen + p.cash_fen for p in parts] == [3_333, 3_333, 10_334]
        assert sum(p.balance_fen for p in parts) == 10_001 and sum(p.points_clawed_back for p in parts) == 170
        assert [p.coupon_restored for p in parts] == [False, False, True]
        assert {a: balances(funded)[a] for a in before} == before
        with pytest.raises(services.RefundExceedsPaid):
            counter.purchase_refund(purchase=purchase, amount_fen=1, idempotency_key=key(), staff=manager)

    @pytest.mark.parametrize("amounts", [(66, 1), (2, 65), (1, 1, 1, 64), (67,)])
    def test_no_tender_gives_back_more_than_it_took_however_the_refunds_fall(
        self, store: Store, manager: Staff, amounts: tuple[int, ...]
    ) -> None:
        purchase = counter.purchase_record(
            store=store, member=None, amount_fen=67, tenders={"cash": 33, "wechat": 33, "card": 1},
            idempotency_key=key(),
        )  # fmt: skip

        parts = [
            counter.purchase_refund(purchase=purchase, amount_fen=amount, idempotency_key=key(), staff=manager)
            for amount in amounts
        ]

        for part in parts:
            assert min(part.cash_fen, part.wechat_fen, part.card_fen) >= 0
            assert part.cash_fen + part.wechat_fen + part.card_fen == part.amount_fen
        totals = [sum(getattr(p, f) for p in parts) for f in ("cash_fen", "wechat_fen", "card_fen")]
        assert totals == [33, 33, 1]

    def test_more_than_is_left_is_refused_and_changes_nothing(
        self, store: Store, funded: Member, twenty_off: Coupon, manager: Staff
    ) -> None:
        purchase = bought(store, funded, twenty_off)
        counter.purchase_refund(purchase=purchase, amount_fen=10_000, idempotency_key=key(), staff=manager)
        held = balances(funded)

        with pytest.raises(services.RefundExceedsPaid) as refused:
            counter.purchase_refund(purchase=purchase, amount_fen=7_001, idempotency_key=key(), staff=manager)

        assert "70.00" in str(refused.value) and balances(funded) == held and PurchaseRefund.objects.count() == 1

    def test_a_cashier_needs_a_manager_above_the_limit(
        self, store: Store, funded: Member, twenty_off: Coupon, cashier: Staff, manager: Staff
    ) -> None:
        LoyaltySettings.objects.filter(pk=1).update(refund_approval_fen=15_000)
        purchase = bought(store, funded, twenty_off)

        counter.purchase_refund(purchase=purchase, amount_fen=15_000, idempotency_key=key(), staff=cashier)
        with pytest.raises(counter.ApprovalRequired) as refused:
            # refunds of one purchase count together: splitting one does not go round the limit
            counter.purchase_refund(purchase=purchase, amount_fen=2_000, idempotency_key=key(), staff=cashier)
        approved = counter.purchase_refund(
            purchase=purchase, amount_fen=2_000, idempotency_key=key(), staff=cashier, approved_by=manager
        )

        assert "above ¥150.00" in str(refused.value) and approved.approved_by == manager

    @pytest.mark.django_db(transaction=True)
    def test_two_refunds_at_once_cannot_exceed_what_was_paid(self, store: Store, manager: Staff) -> None:
        LoyaltySettings.objects.get_or_create(pk=1)
        member = MemberFactory.create()
        purchase = counter.purchase_record(
            store=store, member=member, amount_fen=10_000, tenders={"cash": 10_000}, idempotency_key=key()
        )
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def refund() -> None:
            try:
                barrier.wait()
                counter.purchase_refund(purchase=purchase, amount_fen=6_000, idempotency_key=key(), staff=manager)
                outcomes.append("refunded")
            except services.RefundExceedsPaid:
                outcomes.append("refused")
            finally:
                connection.close()

        threads = [threading.Thread(target=refund) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        purchase.refresh_from_db()
        assert sorted(outcomes) == ["refunded", "refused"] and purchase.refunded_fen == 6_000


class TestTopUpAndPlans:
    def test_a_top_up_earns_growth_when_top_ups_count_and_its_refund_takes_it_back(
        self, store: Store, member: Member
    ) -> None:
        TierRules.objects.update_or_create(pk=1, defaults={"growth_per_yuan_top_up": 1})

        top_up = counter.top_up_record(member=member, amount_fen=50_000, store=store, idempotency_key=key())
        grown = balances(member)[Asset.GROWTH]
        counter.top_up_refund(top_up=top_up, idempotency_key=key(), store=store)

        assert grown == 500 and balances(member)[Asset.GROWTH] == 0

    def test_a_plan_sold_moves_the_member_to_its_tier_at_once(
        self, store: Store, member: Member, cashier: Staff
    ) -> None:
        plan = PaidPlan.objects.create(name="Black card", price_fen=29_900, duration=PaidPlan.Duration.YEAR)
        black = Tier.objects.create(name="Black", rank=3, threshold=10**9)
        black.plans.add(plan)
        k = key()

        period = counter.plan_sell(
            member=member, plan=plan, store=store, tender="wechat", idempotency_key=k, staff=cashier
        )
        again = counter.plan_sell(
            member=member, plan=plan, store=store, tender="wechat", idempotency_key=k, staff=cashier
        )

        assert again.pk == period.pk and member.plan_periods.count() == 1
        assert Member.objects.get(pk=member.pk).tier_state.tier == black

    def test_a_gift_coupon_is_used_on_its_own(self, store: Store, member: Member) -> None:
        template = CouponTemplate.objects.create(
            name="Free tea", kind=CouponTemplate.Kind.GIFT, gift_name="Tea", validity=CouponTemplate.Validity.RELATIVE,
            valid_days=30,
        )  # fmt: skip
        coupon = services.coupon_issue(template=template, member=member, idempotency_key=key())

        counter.coupon_redeem_standalone(code=coupon.code, member=member, store=store, idempotency_key=key())

        coupon.refresh_from_db()
        assert coupon.status == Coupon.Status.USED


@pytest.mark.django_db(transaction=True)
def test_eight_terminals_paying_from_one_balance_never_overdraw_it(store: Store) -> None:
    LoyaltySettings.objects.get_or_create(pk=1)
    for asset, code in MIGRATED.SYSTEM_ACCOUNTS:
        Account.objects.get_or_create(member=None, asset=asset, code=code)
    member = MemberFactory.create()
    services.balance_top_up(member=member, amount_fen=30_000, idempotency_key=key(), store=store)
    now = timezone.now()
    codes = [
        PaymentCode.objects.create(
            code=f"28{n:016d}", member=member, issued_at=now, expires_at=now + timedelta(minutes=2)
        ).code
        for n in range(8)
    ]  # each terminal scanned a code of its own
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def pay(code: str) -> None:
        try:
            barrier.wait()
            counter.purchase_record(
                store=store, member=Member.objects.get(pk=member.pk), amount_fen=5_000,
                tenders={Tender.BALANCE: 5_000}, payment_code=code, idempotency_key=key(), actor=f"terminal:{code}",
            )  # fmt: skip
            outcomes.append("paid")
        except services.InsufficientBalance:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["paid"] * 6 + ["refused"] * 2
    assert balances(member)[Asset.PRINCIPAL] == 0 and Purchase.objects.count() == 6
    assert services.ledgers_verify().ok


def test_a_plan_off_sale_or_a_frozen_member_is_refused(store: Store, member: Member, manager: Staff) -> None:
    from members.services import member_freeze

    plan = PaidPlan.objects.create(name="Old card", price_fen=9_900, duration=PaidPlan.Duration.YEAR, is_active=False)
    with pytest.raises(counter.PlanNotOnSale):
        counter.plan_sell(member=member, plan=plan, store=store, tender="cash", idempotency_key=key())
    plan.is_active = True
    plan.save()
    member_freeze(member=member, reason="lost card", by=manager.user)

    with pytest.raises(services.MemberFrozen):
        counter.plan_sell(member=member, plan=plan, store=store, tender="cash", idempotency_key=key())

    assert not member.plan_periods.exists()
