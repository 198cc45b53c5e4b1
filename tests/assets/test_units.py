"""Several services as one unit: `ledger_unit` (one claim, one lock, all or nothing) and
`run_in_transaction(lock_members=...)`."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from uuid import uuid4

import pytest
from django.db import connection

from assets import services
from assets.models import Account, Asset, CouponTemplate, IdempotencyRecord, LedgerTransaction
from members.models import Member
from tests.factories import MemberFactory

Kind = LedgerTransaction.Kind


def key() -> str:
    return uuid4().hex


def balances(member: Member) -> dict[str, int]:
    return dict(Account.objects.filter(member=member).values_list("asset", "balance"))


def purchase(member: Member, fen: int, *, unit_key: str) -> LedgerTransaction:
    def pay_earn_grow() -> LedgerTransaction:
        paid = services.balance_spend(member=member, amount_fen=fen, idempotency_key=key())
        services.points_earn(member=member, points=fen // 100, idempotency_key=key())
        services.growth_add(member=member, amount=fen // 100, idempotency_key=key())
        return paid

    return services.ledger_unit(
        pay_earn_grow,
        member=member,
        idempotency_key=unit_key,
        scope="counter",
        operation="purchase",
        request={"member": member.pk, "amount": fen},
    )


@pytest.fixture
def member(db) -> Member:
    member = MemberFactory.create()
    services.balance_top_up(member=member, amount_fen=10_000, idempotency_key=key())
    return member


class TestLedgerUnit:
    def test_records_every_service_of_the_unit(self, member: Member) -> None:
        paid = purchase(member, 2_500, unit_key="order-1")

        assert paid.kind == Kind.BALANCE_SPEND
        assert balances(member) == {
            Asset.PRINCIPAL: 7_500,
            Asset.BONUS: 0,
            Asset.POINTS: 25,
            Asset.POINTS_DEBT: 0,
            Asset.GROWTH: 25,
        }
        assert services.ledgers_verify().ok

    def test_a_retry_returns_the_first_result_and_changes_nothing(self, member: Member) -> None:
        first = purchase(member, 2_500, unit_key="order-1")

        again = purchase(member, 2_500, unit_key="order-1")

        assert again.pk == first.pk
        assert balances(member)[Asset.PRINCIPAL] == 7_500
        assert LedgerTransaction.objects.filter(member=member, kind=Kind.POINTS_EARN).count() == 1

    def test_claims_one_key_for_the_whole_unit(self, member: Member) -> None:
        before = IdempotencyRecord.objects.count()

        purchase(member, 2_500, unit_key="order-1")

        assert IdempotencyRecord.objects.count() == before + 1

    def test_the_same_key_for_another_amount_is_a_conflict(self, member: Member) -> None:
        purchase(member, 2_500, unit_key="order-1")

        with pytest.raises(services.IdempotencyConflict):
            purchase(member, 3_000, unit_key="order-1")

        assert balances(member)[Asset.PRINCIPAL] == 7_500

    def test_a_refusal_undoes_the_whole_unit_and_is_remembered(self, member: Member) -> None:
        def earn_then_overspend() -> LedgerTransaction:
            services.points_earn(member=member, points=50, idempotency_key=key())
            return services.balance_spend(member=member, amount_fen=50_000, idempotency_key=key())

        def unit() -> LedgerTransaction:
            return services.ledger_unit(
                earn_then_overspend,
                member=member,
                idempotency_key="order-2",
                scope="counter",
                operation="purchase",
                request={"amount": 50_000},
            )

        with pytest.raises(services.InsufficientBalance):
            unit()
        services.balance_top_up(member=member, amount_fen=100_000, idempotency_key=key())

        with pytest.raises(services.InsufficientBalance):
            unit()

        assert balances(member)[Asset.POINTS] == 0
        assert not LedgerTransaction.objects.filter(member=member, kind=Kind.POINTS_EARN).exists()

    def test_a_refusal_caught_inside_the_unit_undoes_only_that_service(self, member: Member) -> None:
        template = CouponTemplate.objects.create(
            name="One each", kind=CouponTemplate.Kind.GIFT, gift_name="Cake", valid_days=7, per_member_limit=1
        )
        services.coupon_issue(template=template, member=member, idempotency_key=key())

        def pay_and_try_a_second_coupon() -> LedgerTransaction:
            paid = services.balance_spend(member=member, amount_fen=1_000, idempotency_key=key())
            with pytest.raises(services.CouponLimitReached):
                services.coupon_issue(template=template, member=member, idempotency_key=key())
            return paid

        services.ledger_unit(
            pay_and_try_a_second_coupon,
            member=member,
            idempotency_key="order-3",
            scope="counter",
            operation="purchase",
            request={},
        )

        template.refresh_from_db()
        assert template.issued == 1  # the refused issue's stock increment was rolled back with it
        assert balances(member)[Asset.PRINCIPAL] == 9_000
        assert services.ledgers_verify().ok


class TestRefusalsCaughtInsideAUnit:
    def test_a_refused_payment_leaves_the_shared_accounts_exact(self, member: Member) -> None:
        def try_big_then_small() -> LedgerTransaction:
            with pytest.raises(services.InsufficientBalance):
                services.balance_spend(member=member, amount_fen=1_000_000, idempotency_key=key())
            return services.balance_spend(member=member, amount_fen=1_000, idempotency_key=key())

        services.ledger_unit(
            try_big_then_small,
            member=member,
            idempotency_key="order-4",
            scope="counter",
            operation="purchase",
            request={},
        )

        assert balances(member)[Asset.PRINCIPAL] == 9_000
        assert services.ledgers_verify().ok


@pytest.mark.django_db(transaction=True)
def test_units_locking_two_members_first_never_deadlock() -> None:
    a, b = MemberFactory.create(), MemberFactory.create()
    for m in (a, b):
        services.balance_top_up(member=m, amount_fen=10_000, idempotency_key=key())
    barrier = Barrier(8)

    def transfer_like(i: int) -> str:
        first, second = (a, b) if i % 2 else (b, a)
        try:
            barrier.wait()
            services.run_in_transaction(
                lambda: (
                    services.balance_spend(member=first, amount_fen=100, idempotency_key=key()),
                    services.balance_spend(member=second, amount_fen=100, idempotency_key=key()),
                ),
                attempts=1,  # no retry: locking both members up front must be enough
                lock_members=[first, second],
            )
            return "ok"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(transfer_like, range(8)))

    assert results == ["ok"] * 8
    assert balances(a)[Asset.PRINCIPAL] == balances(b)[Asset.PRINCIPAL] == 10_000 - 800
    assert services.ledgers_verify().ok
