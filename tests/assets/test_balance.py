"""The stored balance: top-ups (with recharge packages), payments split between principal and bonus, refunds,
top-up refunds, manual adjustments, frozen and cancelled members, remembered refusals, cumulative figures."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from assets import selectors, services
from assets.models import Account, Asset, Coupon, CouponTemplate, Entry, LedgerTransaction, RechargePackage
from members.models import Member, Staff
from members.services import member_cancel, member_freeze, member_unfreeze
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = LedgerTransaction.Kind


def key() -> str:
    return uuid4().hex


def top_up(
    member: Member,
    fen: int | None = None,
    *,
    package: RechargePackage | None = None,
    idempotency_key: str | None = None,
    staff: Staff | None = None,
) -> LedgerTransaction:
    return services.balance_top_up(
        member=member, amount_fen=fen, package=package, idempotency_key=idempotency_key or key(), staff=staff
    )


def spend(member: Member, fen: int, *, idempotency_key: str | None = None) -> LedgerTransaction:
    return services.balance_spend(member=member, amount_fen=fen, idempotency_key=idempotency_key or key())


def refund(payment: LedgerTransaction, fen: int | None = None) -> LedgerTransaction:
    return services.balance_refund(spend=payment, amount_fen=fen, idempotency_key=key())


def refund_top_up(
    top_up_tx: LedgerTransaction, *, staff: Staff | None = None, override: bool = False, reason: str = ""
) -> LedgerTransaction:
    return services.top_up_refund(
        top_up=top_up_tx, idempotency_key=key(), staff=staff, override=override, reason=reason
    )


def adjust(member: Member, asset: str, fen: int, *, staff: Staff | None, reason: str = "miskeyed") -> LedgerTransaction:
    return services.balance_adjust(
        member=member, asset=asset, amount_fen=fen, reason=reason, staff=staff, idempotency_key=key()
    )


def held(member: Member) -> tuple[int, int]:
    """(principal, bonus) the member holds, in fen."""
    balances = dict(Account.objects.filter(member=member).values_list("asset", "balance"))
    return balances.get(Asset.PRINCIPAL, 0), balances.get(Asset.BONUS, 0)


def balance_of(member: Member, asset: str) -> int:
    return Account.objects.filter(member=member, asset=asset).values_list("balance", flat=True).first() or 0


def moved(tx: LedgerTransaction) -> tuple[int, int]:
    """How `tx` changed the member's (principal, bonus), signed."""
    lines = Entry.objects.filter(transaction=tx, account__member__isnull=False)
    return (
        sum(e.amount for e in lines if e.asset == Asset.PRINCIPAL),
        sum(e.amount for e in lines if e.asset == Asset.BONUS),
    )


def make_package(pay_fen: int = 10_000, bonus_fen: int = 2_000, **fields: Any) -> RechargePackage:
    return RechargePackage.objects.create(
        name=f"Pay {pay_fen} get {bonus_fen}", pay_fen=pay_fen, bonus_fen=bonus_fen, **fields
    )


def make_template(**fields: object) -> CouponTemplate:
    defaults: dict[str, object] = {"name": "10 off 50", "kind": "cash_off", "value_fen": 1_000, "threshold_fen": 5_000}
    return CouponTemplate.objects.create(**{**defaults, "validity": "relative", "valid_days": 30, **fields})


def fund(member: Member, principal: int, bonus: int, manager: Staff) -> None:
    """Give `member` exactly this balance through the services: a package, a plain top-up, or a manager's bonus."""
    if principal and bonus:
        top_up(member, package=make_package(principal, bonus))
    elif principal:
        top_up(member, principal)
    elif bonus:
        adjust(member, Asset.BONUS, bonus, staff=manager, reason="goodwill")


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


@pytest.fixture
def package(db: None) -> RechargePackage:
    return make_package(10_000, 2_000)


@pytest.fixture
def funded(member: Member, package: RechargePackage) -> Member:
    """100.00 principal + 20.00 bonus, topped up with a package."""
    top_up(member, package=package)
    return member


class TestBalanceTopUp:
    def test_adds_the_amount_to_principal(self, member: Member) -> None:
        tx = top_up(member, 5_000)

        assert (tx.kind, tx.amount) == (Kind.TOP_UP, 5_000)
        assert held(member) == (5_000, 0)

    def test_a_retry_with_the_same_key_returns_the_first_top_up(self, member: Member) -> None:
        first = top_up(member, 5_000, idempotency_key="pos-1")

        again = top_up(member, 5_000, idempotency_key="pos-1")

        assert again == first
        assert held(member) == (5_000, 0)

    def test_the_same_key_for_another_amount_is_a_conflict(self, member: Member) -> None:
        top_up(member, 5_000, idempotency_key="pos-1")

        with pytest.raises(services.IdempotencyConflict):
            top_up(member, 6_000, idempotency_key="pos-1")

        assert held(member) == (5_000, 0)

    def test_a_package_adds_its_bonus_points_growth_and_coupons(self, member: Member) -> None:
        template = make_template()
        package = make_package(10_000, 2_000, points=100, growth=50)
        package.coupon_templates.add(template)

        tx = top_up(member, package=package)

        assert held(member) == (10_000, 2_000)
        assert (balance_of(member, Asset.POINTS), balance_of(member, Asset.GROWTH)) == (100, 50)
        coupon = Coupon.objects.get(member=member)
        assert (coupon.template, coupon.channel, coupon.status) == (template, Coupon.Channel.PACKAGE, "available")
        assert tx.details["coupons"] == [coupon.pk]
        assert LedgerTransaction.objects.get(pk=tx.details["points_tx"]).kind == Kind.POINTS_EARN
        assert LedgerTransaction.objects.get(pk=tx.details["growth_tx"]).kind == Kind.GROWTH_ADD

    def test_a_package_charges_its_price_when_no_amount_is_given(
        self, member: Member, package: RechargePackage
    ) -> None:
        tx = top_up(member, package=package)

        assert tx.amount == 10_000 and tx.package == package

    def test_a_package_with_its_own_price_as_the_amount_is_accepted(
        self, member: Member, package: RechargePackage
    ) -> None:
        tx = top_up(member, 10_000, package=package)

        assert held(member) == (10_000, 2_000) and tx.package == package

    def test_another_amount_than_the_package_price_is_refused(self, member: Member, package: RechargePackage) -> None:
        with pytest.raises(services.PackageAmountMismatch) as refused:
            top_up(member, 9_999, package=package)

        assert str(refused.value) == "This recharge package costs ¥100.00."
        assert held(member) == (0, 0)

    @pytest.mark.parametrize(
        "window",
        [
            {"is_active": False},
            {"starts_at": datetime(2026, 3, 6, 0, 0, tzinfo=SHANGHAI)},
            {"ends_at": datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI)},
        ],
        ids=["withdrawn", "not-yet-on-sale", "sale-ended-at-this-instant"],
    )
    def test_a_package_not_on_sale_is_refused(self, member: Member, window: dict[str, Any]) -> None:
        package = make_package(points=100, **window)

        with (
            time_machine.travel(datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI), tick=False),
            pytest.raises(services.PackageNotOnSale),
        ):
            top_up(member, package=package)

        assert held(member) == (0, 0) and balance_of(member, Asset.POINTS) == 0

    def test_a_package_within_its_sale_window_is_sold(self, member: Member) -> None:
        package = make_package(
            starts_at=datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI), ends_at=datetime(2026, 3, 6, tzinfo=SHANGHAI)
        )

        with time_machine.travel(datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI), tick=False):
            top_up(member, package=package)

        assert held(member) == (10_000, 2_000)

    def test_a_package_coupon_out_of_stock_is_skipped_not_fatal(self, member: Member) -> None:
        sold_out = make_template(stock=0)
        package = make_package()
        package.coupon_templates.add(sold_out)

        tx = top_up(member, package=package)

        assert held(member) == (10_000, 2_000)
        assert (tx.details["coupons"], tx.details["coupons_skipped"]) == ([], [sold_out.pk])

    def test_the_first_top_up_makes_a_registered_member_a_stored_value_member(self, member: Member) -> None:
        at = datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI)

        with time_machine.travel(at, tick=False):
            top_up(member, 100)

        member.refresh_from_db()
        assert member.member_type == Member.Type.STORED_VALUE
        assert member.stored_value_at == at

    def test_a_later_top_up_keeps_the_date_of_the_first(self, member: Member) -> None:
        with time_machine.travel(datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI), tick=False) as clock:
            top_up(member, 100)
            clock.shift(timedelta(days=30))
            top_up(member, 100)

        member.refresh_from_db()
        assert member.stored_value_at == datetime(2026, 3, 5, 10, 0, tzinfo=SHANGHAI)

    def test_a_paid_member_stays_paid(self, db: None) -> None:
        member = MemberFactory.create(member_type=Member.Type.PAID)

        top_up(member, 100)

        member.refresh_from_db()
        assert member.member_type == Member.Type.PAID and member.stored_value_at is not None


class TestBalanceSpend:
    @pytest.mark.parametrize(
        ("principal", "bonus", "amount", "principal_part", "bonus_part"),
        [
            (10_000, 2_000, 1_001, 835, 166),  # the spec's example: 10.01 * 20 / 120 = 1.668… → 1.66
            (10_000, 2_000, 12_000, 10_000, 2_000),  # everything
            (10_000, 2_000, 6, 5, 1),  # exactly one fen of bonus
            (10_000, 2_000, 5, 5, 0),  # 0.83 fen of bonus rounds down to none
            (3_000, 1_000, 1, 1, 0),
            (3_000, 1_000, 4, 3, 1),
            (10_000, 0, 2_550, 2_550, 0),  # all principal
            (0, 500, 300, 0, 300),  # all bonus (a manager's goodwill)
        ],
    )
    def test_takes_principal_and_bonus_in_proportion_rounding_the_bonus_down(
        self,
        member: Member,
        manager: Staff,
        principal: int,
        bonus: int,
        amount: int,
        principal_part: int,
        bonus_part: int,
    ) -> None:
        fund(member, principal, bonus, manager)

        payment = spend(member, amount)

        assert moved(payment) == (-principal_part, -bonus_part)
        assert payment.details == {"principal_fen": principal_part, "bonus_fen": bonus_part}
        assert held(member) == (principal - principal_part, bonus - bonus_part)

    def test_each_payment_uses_the_proportion_held_at_that_moment(self, funded: Member) -> None:
        spend(funded, 1_001)  # leaves 91.65 + 18.34

        payment = spend(funded, 1_001)

        assert moved(payment) == (-835, -166)  # 10.01 * 18.34 / 109.99 = 1.669… → 1.66
        assert held(funded) == (9_165 - 835, 1_834 - 166)

    def test_more_than_the_balance_is_refused(self, funded: Member) -> None:
        with pytest.raises(services.InsufficientBalance) as refused:
            spend(funded, 12_001)

        assert str(refused.value) == "The balance is ¥120.00, less than ¥120.01."
        assert held(funded) == (10_000, 2_000)

    def test_an_empty_balance_refuses_any_payment(self, member: Member) -> None:
        with pytest.raises(services.InsufficientBalance):
            spend(member, 1)

    def test_a_retry_with_the_same_key_returns_the_first_payment(self, funded: Member) -> None:
        first = spend(funded, 500, idempotency_key="order-1")

        again = spend(funded, 500, idempotency_key="order-1")

        assert again == first
        assert sum(held(funded)) == 12_000 - 500


class TestBalanceRefund:
    def test_restores_exactly_the_split_of_the_payment(self, funded: Member) -> None:
        payment = spend(funded, 1_001)

        back = refund(payment)

        assert moved(back) == (835, 166)
        assert back.is_full_reversal and back.reverses == payment
        assert held(funded) == (10_000, 2_000)

    def test_restores_the_split_even_after_the_proportion_changed(self, funded: Member) -> None:
        payment = spend(funded, 1_001)
        top_up(funded, 50_000)

        back = refund(payment)

        assert moved(back) == (835, 166)

    @pytest.mark.parametrize(
        ("steps", "bonus_parts"),
        [
            ([333, 333, 335], [55, 55, 56]),
            ([1, 1, 999], [0, 0, 166]),
            ([500, 500, 1], [82, 83, 1]),
            ([1_000, 1], [165, 1]),
        ],
    )
    def test_partial_refunds_add_up_exactly_to_the_split(
        self, funded: Member, steps: list[int], bonus_parts: list[int]
    ) -> None:
        payment = spend(funded, 1_001)

        refunds = [refund(payment, step) for step in steps]

        assert [moved(r)[1] for r in refunds] == bonus_parts
        assert [sum(moved(r)) for r in refunds] == steps
        assert (sum(moved(r)[0] for r in refunds), sum(bonus_parts)) == (835, 166)
        assert held(funded) == (10_000, 2_000)

    def test_only_the_refund_that_completes_the_payment_is_its_full_reversal(self, funded: Member) -> None:
        payment = spend(funded, 1_001)

        refunds = [refund(payment, 300), refund(payment, 300), refund(payment, 401)]

        assert [r.is_full_reversal for r in refunds] == [False, False, True]
        payment.refresh_from_db()
        assert payment.reversed_amount == 1_001

    def test_never_more_than_was_paid(self, funded: Member) -> None:
        payment = spend(funded, 1_001)

        with pytest.raises(services.RefundExceedsPaid) as refused:
            refund(payment, 1_002)

        assert str(refused.value) == "That is more than is left to refund (10.01)."
        assert held(funded) == (10_000 - 835, 2_000 - 166)

    def test_never_more_than_is_left_after_partial_refunds(self, funded: Member) -> None:
        payment = spend(funded, 1_001)
        refund(payment, 500)

        with pytest.raises(services.RefundExceedsPaid) as refused:
            refund(payment, 502)

        assert str(refused.value) == "That is more than is left to refund (5.01)."

    def test_a_refunded_payment_cannot_be_refunded_again(self, funded: Member) -> None:
        payment = spend(funded, 1_001)
        refund(payment)

        with pytest.raises(services.RefundExceedsPaid):
            refund(payment)

        assert LedgerTransaction.objects.filter(reverses=payment, is_full_reversal=True).count() == 1
        assert held(funded) == (10_000, 2_000)

    def test_only_a_payment_can_be_refunded(self, member: Member) -> None:
        top_up_tx = top_up(member, 1_000)

        with pytest.raises(services.NotReversible):
            refund(top_up_tx, 100)


class TestTopUpRefund:
    def test_an_untouched_top_up_is_refunded_whole_with_its_bonus(
        self, member: Member, package: RechargePackage, cashier: Staff
    ) -> None:
        paid = top_up(member, package=package)

        back = refund_top_up(paid, staff=cashier)

        assert moved(back) == (-10_000, -2_000)
        assert (back.kind, back.amount, back.reverses, back.is_full_reversal) == (
            Kind.TOP_UP_REFUND,
            10_000,
            paid,
            True,
        )
        assert held(member) == (0, 0)

    def test_a_spent_top_up_is_refused(self, funded: Member, cashier: Staff) -> None:
        paid = LedgerTransaction.objects.get(member=funded, kind=Kind.TOP_UP)
        spend(funded, 1_001)

        with pytest.raises(services.TopUpAlreadySpent):
            refund_top_up(paid, staff=cashier)

        assert held(funded) == (9_165, 1_834)

    def test_a_manager_may_override_with_a_reason_refunding_what_is_left(self, funded: Member, manager: Staff) -> None:
        paid = LedgerTransaction.objects.get(member=funded, kind=Kind.TOP_UP)
        spend(funded, 1_001)

        back = refund_top_up(paid, staff=manager, override=True, reason="moving abroad")

        assert moved(back) == (-9_165, -1_834)
        assert back.amount == 9_165 and back.details["override"] is True
        assert held(funded) == (0, 0)

    def test_an_override_needs_a_reason(self, funded: Member, manager: Staff) -> None:
        paid = LedgerTransaction.objects.get(member=funded, kind=Kind.TOP_UP)
        spend(funded, 1_001)

        with pytest.raises(services.ReasonRequired):
            refund_top_up(paid, staff=manager, override=True, reason="  ")

    def test_a_cashier_cannot_override(self, funded: Member, cashier: Staff) -> None:
        paid = LedgerTransaction.objects.get(member=funded, kind=Kind.TOP_UP)
        spend(funded, 1_001)

        with pytest.raises(services.NotAllowed):
            refund_top_up(paid, staff=cashier, override=True, reason="customer insists")

        assert held(funded) == (9_165, 1_834)

    def test_takes_back_the_package_points_growth_and_unused_coupons(self, member: Member, cashier: Staff) -> None:
        unused, used = make_template(name="unused"), make_template(name="used")
        package = make_package(points=100, growth=50)
        package.coupon_templates.add(unused, used)
        paid = top_up(member, package=package)
        services.coupon_redeem(coupon=(c := Coupon.objects.get(template=used)), member=c.member, idempotency_key=key())

        refund_top_up(paid, staff=cashier)

        statuses = dict(Coupon.objects.filter(member=member).values_list("template__name", "status"))
        assert statuses == {"unused": "void", "used": "used"}
        assert (balance_of(member, Asset.POINTS), balance_of(member, Asset.GROWTH)) == (0, 0)
        earn = LedgerTransaction.objects.get(pk=paid.details["points_tx"])
        assert earn.reversals.get().kind == Kind.POINTS_CLAW_BACK

    def test_package_points_already_spent_become_points_debt(self, member: Member, cashier: Staff) -> None:
        paid = top_up(member, package=make_package(points=100))
        services.points_spend(member=member, points=40, idempotency_key=key())

        refund_top_up(paid, staff=cashier)

        assert (balance_of(member, Asset.POINTS), balance_of(member, Asset.POINTS_DEBT)) == (0, 40)

    def test_a_top_up_is_refunded_once(self, member: Member, cashier: Staff) -> None:
        paid = top_up(member, 5_000)
        top_up(member, 5_000)
        refund_top_up(paid, staff=cashier)

        with pytest.raises(services.NotReversible):
            refund_top_up(paid, staff=cashier)

        assert held(member) == (5_000, 0)

    def test_only_a_top_up_can_be_refunded_this_way(self, funded: Member, cashier: Staff) -> None:
        with pytest.raises(services.NotReversible):
            refund_top_up(spend(funded, 100), staff=cashier)


class TestBalanceAdjust:
    def test_a_manager_corrects_either_part_with_a_reason(self, funded: Member, manager: Staff) -> None:
        added = adjust(funded, Asset.BONUS, 500, staff=manager)
        taken = adjust(funded, Asset.PRINCIPAL, -300, staff=manager)

        assert (moved(added), moved(taken)) == ((0, 500), (-300, 0))
        assert (taken.amount, taken.reason, taken.staff) == (300, "miskeyed", manager)
        assert held(funded) == (9_700, 2_500)

    def test_an_owner_may_correct_too(self, funded: Member, owner: Staff) -> None:
        adjust(funded, Asset.PRINCIPAL, 100, staff=owner)

        assert held(funded) == (10_100, 2_000)

    def test_a_cashier_may_not(self, funded: Member, cashier: Staff) -> None:
        with pytest.raises(services.NotAllowed):
            adjust(funded, Asset.PRINCIPAL, 100, staff=cashier)

        assert held(funded) == (10_000, 2_000)

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_needs_a_reason(self, funded: Member, manager: Staff, reason: str) -> None:
        with pytest.raises(services.ReasonRequired):
            adjust(funded, Asset.BONUS, 100, staff=manager, reason=reason)

    def test_cannot_take_a_part_below_zero(self, funded: Member, manager: Staff) -> None:
        with pytest.raises(services.InsufficientBalance):
            adjust(funded, Asset.BONUS, -2_001, staff=manager)

        adjust(funded, Asset.BONUS, -2_000, staff=manager)
        assert held(funded) == (10_000, 0)

    def test_only_balance_assets_can_be_adjusted_here(self, funded: Member, manager: Staff) -> None:
        with pytest.raises(ValueError):
            adjust(funded, Asset.POINTS, 100, staff=manager)


class TestFrozenAndCancelledMembers:
    @pytest.mark.parametrize(
        "operation",
        [lambda m: top_up(m, 100), lambda m: spend(m, 100)],
        ids=["top-up", "payment"],
    )
    def test_a_frozen_member_is_refused(self, funded: Member, operation: Callable[[Member], object]) -> None:
        member_freeze(member=Member.objects.get(pk=funded.pk), by=None, reason="lost card")

        with pytest.raises(services.MemberFrozen) as refused:
            operation(funded)  # a stale copy of the member: the service re-reads the status under its lock

        assert str(refused.value) == "This member's assets are frozen."
        assert held(funded) == (10_000, 2_000)

    @pytest.mark.parametrize(
        "operation",
        [lambda m: top_up(m, 100), lambda m: spend(m, 100)],
        ids=["top-up", "payment"],
    )
    def test_a_cancelled_member_is_refused(self, funded: Member, operation: Callable[[Member], object]) -> None:
        member_cancel(member=Member.objects.get(pk=funded.pk), by=None, reason="asked to leave")

        with pytest.raises(services.MemberCancelled):
            operation(funded)

        assert held(funded) == (10_000, 2_000)

    def test_a_refund_still_reaches_a_frozen_member(self, funded: Member) -> None:
        payment = spend(funded, 1_001)
        member_freeze(member=Member.objects.get(pk=funded.pk), by=None, reason="lost card")

        refund(payment)

        assert held(funded) == (10_000, 2_000)

    def test_no_cash_leaves_a_frozen_account_through_a_top_up_refund(self, member: Member, manager: Staff) -> None:
        first = top_up(member, 5_000)
        member_freeze(member=Member.objects.get(pk=member.pk), by=None, reason="dispute")

        with pytest.raises(services.MemberFrozen):
            refund_top_up(first, staff=manager, override=True, reason="asked for it")

        assert held(member) == (5_000, 0)

    def test_an_adjustment_of_true_is_not_one_fen(self, member: Member, manager: Staff) -> None:
        with pytest.raises(ValueError):
            adjust(member, Asset.PRINCIPAL, True, staff=manager)  # type: ignore[arg-type]


class TestRefusalsAreRemembered:
    def test_a_retry_after_topping_up_is_still_refused(self, member: Member) -> None:
        top_up(member, 100)
        with pytest.raises(services.InsufficientBalance):
            spend(member, 500, idempotency_key="order-7")
        top_up(member, 1_000)

        with pytest.raises(services.InsufficientBalance) as again:
            spend(member, 500, idempotency_key="order-7")

        assert str(again.value) == "The balance is ¥1.00, less than ¥5.00."
        assert held(member) == (1_100, 0)

    def test_a_new_key_is_a_new_request(self, member: Member) -> None:
        top_up(member, 100)
        with pytest.raises(services.InsufficientBalance):
            spend(member, 500, idempotency_key="order-7")
        top_up(member, 1_000)

        spend(member, 500, idempotency_key="order-7b")

        assert held(member) == (600, 0)

    def test_a_frozen_refusal_outlives_the_unfreezing(self, funded: Member) -> None:
        member_freeze(member=Member.objects.get(pk=funded.pk), by=None)
        with pytest.raises(services.MemberFrozen):
            spend(funded, 100, idempotency_key="order-8")
        member_unfreeze(member=Member.objects.get(pk=funded.pk), by=None)

        with pytest.raises(services.MemberFrozen):
            spend(funded, 100, idempotency_key="order-8")

    def test_a_replayed_refusal_leaves_the_callers_transaction_usable(self, member: Member) -> None:
        with transaction.atomic():  # an orchestrating service's unit of work
            with pytest.raises(services.InsufficientBalance):
                spend(member, 500, idempotency_key="order-9")
            with pytest.raises(services.InsufficientBalance):
                spend(member, 500, idempotency_key="order-9")

            top_up(member, 1_000)  # the unit carries on, as it can after the first refusal

        assert held(member) == (1_000, 0)


class TestCumulativeFigures:
    def test_top_ups_and_payments_are_kept_net_of_their_refunds(
        self, member: Member, package: RechargePackage, cashier: Staff
    ) -> None:
        top_up(member, package=package)
        plain = top_up(member, 5_000)
        first = spend(member, 1_001)
        spend(member, 2_000)
        refund(first, 500)
        refund_top_up(plain, staff=cashier)

        summary = selectors.member_balance_summary(member=member)

        assert (summary.top_up_fen, summary.spend_fen) == (10_000, 2_501)
        assert (summary.principal_fen, summary.bonus_fen) == held(member)
        assert summary.total_fen == 17_000 - 5_000 - 2_501

    def test_refusals_leave_no_trace_in_the_figures(self, member: Member) -> None:
        top_up(member, 100)
        with pytest.raises(services.InsufficientBalance):
            spend(member, 500)

        summary = selectors.member_balance_summary(member=member)

        assert (summary.top_up_fen, summary.spend_fen) == (100, 0)
        assert LedgerTransaction.objects.filter(member=member, kind=Kind.BALANCE_SPEND).count() == 0
