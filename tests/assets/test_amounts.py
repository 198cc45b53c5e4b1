"""Amounts at the edge and at the services: text becomes whole fen only when it is plain ASCII yuan, and the
services refuse zero and negative amounts as programming errors, before anything is written."""

from collections.abc import Callable
from uuid import uuid4

import pytest
from django.db import transaction

from assets import services
from assets.models import Entry, IdempotencyRecord, LedgerTransaction, LotAllocation, PointLot
from members.forms import yuan_to_fen
from members.models import Member, Staff
from tests.factories import MemberFactory


def key() -> str:
    return uuid4().hex


def rows_written() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (LedgerTransaction, Entry, IdempotencyRecord, PointLot, LotAllocation)
    )


@pytest.fixture
def member(db: None) -> Member:
    """Holds 100.00 of balance, 100 points and 10 growth, all through the services."""
    member = MemberFactory.create()
    services.balance_top_up(member=member, amount_fen=10_000, idempotency_key=key())
    services.points_earn(member=member, points=100, idempotency_key=key())
    services.growth_add(member=member, amount=10, idempotency_key=key())
    return member


class TestYuanToFen:
    @pytest.mark.parametrize(
        "text",
        [
            "\uff11\uff12",
            "1e3",
            "1_000",
            "-5",
            "1.234",
            "99999999999999",
            "+12",
            " ",
            "",
            "12.",
            ".5",
            "1,000",
            "\u0663",
        ],
        ids=[
            "full-width",
            "exponent",
            "underscore",
            "negative",
            "three-decimals",
            "too-long",
            "plus-sign",
            "blank",
            "empty",
            "trailing-dot",
            "leading-dot",
            "thousands-comma",
            "arabic-indic-digit",
        ],
    )
    def test_refuses_anything_but_plain_ascii_yuan(self, text: str) -> None:
        with pytest.raises(ValueError):
            yuan_to_fen(text)

    @pytest.mark.parametrize(
        ("text", "fen"),
        [
            ("12", 1_200),
            ("12.3", 1_230),
            ("12.34", 1_234),
            ("0.01", 1),
            (" 7.5 ", 750),
            ("999999999.99", 99_999_999_999),
        ],
    )
    def test_converts_plain_yuan_to_whole_fen(self, text: str, fen: int) -> None:
        assert yuan_to_fen(text) == fen

    def test_reads_zero_as_zero_leaving_the_refusal_to_the_services(self) -> None:
        assert yuan_to_fen("0") == 0
        assert yuan_to_fen("0.00") == 0


WRITES: dict[str, Callable[[Member, Staff, int], object]] = {
    "balance_top_up": lambda m, s, n: services.balance_top_up(member=m, amount_fen=n, idempotency_key=key()),
    "balance_spend": lambda m, s, n: services.balance_spend(member=m, amount_fen=n, idempotency_key=key()),
    "points_earn": lambda m, s, n: services.points_earn(member=m, points=n, idempotency_key=key()),
    "points_spend": lambda m, s, n: services.points_spend(member=m, points=n, idempotency_key=key()),
    "growth_add": lambda m, s, n: services.growth_add(member=m, amount=n, idempotency_key=key()),
    "balance_adjust": lambda m, s, n: services.balance_adjust(
        member=m, asset="principal", amount_fen=n, reason="typo", staff=s, idempotency_key=key()
    ),
    "points_adjust": lambda m, s, n: services.points_adjust(
        member=m, points=n, reason="typo", staff=s, idempotency_key=key()
    ),
}
SIGNED = {"balance_adjust", "points_adjust"}  # corrections take a sign: only zero is meaningless
NOT_POSITIVE = [
    pytest.param(service, amount, id=f"{service}-{label}")
    for service in WRITES
    for amount, label in ((0, "zero"), (-5, "negative"), (True, "bool"))
    if service not in SIGNED or amount == 0
]


class TestServicesRefuseAmountsThatAreNotPositive:
    @pytest.mark.parametrize(("service", "amount"), NOT_POSITIVE)
    def test_with_value_error_writing_nothing(self, member: Member, manager: Staff, service: str, amount: int) -> None:
        before = rows_written()

        with pytest.raises(ValueError), transaction.atomic():
            WRITES[service](member, manager, amount)

        assert rows_written() == before

    def test_balance_spend_refuses_before_claiming_the_request_key(self, member: Member) -> None:
        spent_key = key()
        with pytest.raises(ValueError):
            services.balance_spend(member=member, amount_fen=0, idempotency_key=spent_key)

        payment = services.balance_spend(member=member, amount_fen=100, idempotency_key=spent_key)

        assert payment.amount == 100

    def test_a_missing_request_key_is_an_error(self, member: Member) -> None:
        with pytest.raises(ValueError):
            services.balance_spend(member=member, amount_fen=100, idempotency_key="")


REVERSALS_OF: dict[str, Callable[[Member], LedgerTransaction]] = {
    "balance_refund": lambda m: services.balance_spend(member=m, amount_fen=500, idempotency_key=key()),
    "points_claw_back": lambda m: services.points_earn(member=m, points=50, idempotency_key=key()),
    "points_restore": lambda m: services.points_spend(member=m, points=50, idempotency_key=key()),
    "growth_claw_back": lambda m: services.growth_add(member=m, amount=5, idempotency_key=key()),
}
REVERSALS: dict[str, Callable[[LedgerTransaction, int], object]] = {
    "balance_refund": lambda t, n: services.balance_refund(spend=t, amount_fen=n, idempotency_key=key()),
    "points_claw_back": lambda t, n: services.points_claw_back(earn=t, points=n, idempotency_key=key()),
    "points_restore": lambda t, n: services.points_restore(spend=t, points=n, idempotency_key=key()),
    "growth_claw_back": lambda t, n: services.growth_claw_back(add=t, amount=n, idempotency_key=key()),
}


class TestReversalsRefuseAmountsThatAreNotPositive:
    @pytest.mark.parametrize("service", list(REVERSALS))
    @pytest.mark.parametrize("amount", [0, -5, True], ids=["zero", "negative", "bool"])
    def test_with_value_error_writing_nothing(self, member: Member, service: str, amount: int) -> None:
        original = REVERSALS_OF[service](member)
        before = rows_written()

        with pytest.raises(ValueError), transaction.atomic():
            REVERSALS[service](original, amount)

        assert rows_written() == before
