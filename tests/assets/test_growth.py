"""Growth value: added by purchases and top-ups, clawed back (in part or whole) by refunds, never below zero."""

from uuid import uuid4

import pytest

from assets import services
from assets.models import Account, Asset, LedgerTransaction
from members.models import Member
from members.services import member_freeze
from tests.factories import MemberFactory

Kind = LedgerTransaction.Kind


def key() -> str:
    return uuid4().hex


def add(member: Member, amount: int, *, idempotency_key: str | None = None, ref: str = "") -> LedgerTransaction:
    return services.growth_add(member=member, amount=amount, external_ref=ref, idempotency_key=idempotency_key or key())


def claw_back(addition: LedgerTransaction, amount: int | None = None) -> LedgerTransaction:
    return services.growth_claw_back(add=addition, amount=amount, idempotency_key=key())


def growth(member: Member) -> int:
    return Account.objects.filter(member=member, asset=Asset.GROWTH).values_list("balance", flat=True).first() or 0


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


class TestGrowthAdd:
    def test_adds_to_the_members_growth_value(self, member: Member) -> None:
        first = add(member, 120, ref="order-1")
        add(member, 30)

        assert (first.kind, first.amount, first.external_ref) == (Kind.GROWTH_ADD, 120, "order-1")
        assert growth(member) == 150

    def test_a_retry_with_the_same_key_returns_the_first_addition(self, member: Member) -> None:
        first = add(member, 120, idempotency_key="order-1")

        again = add(member, 120, idempotency_key="order-1")

        assert again == first and growth(member) == 120

    def test_a_frozen_member_gains_nothing(self, member: Member) -> None:
        member_freeze(member=member, by=None, reason="lost card")

        with pytest.raises(services.MemberFrozen):
            add(member, 10)

        assert growth(member) == 0


class TestGrowthClawBack:
    def test_takes_back_a_whole_addition(self, member: Member) -> None:
        refunded = add(member, 120, ref="order-1")
        add(member, 30)

        back = claw_back(refunded)

        assert (back.amount, back.details, back.reverses, back.is_full_reversal) == (
            120,
            {"taken": 120},
            refunded,
            True,
        )
        assert back.external_ref == "order-1"
        assert growth(member) == 30

    def test_takes_back_part_of_an_addition(self, member: Member) -> None:
        addition = add(member, 120)

        back = claw_back(addition, 45)

        assert (back.amount, back.is_full_reversal) == (45, False)
        assert growth(member) == 75

    def test_partial_claw_backs_add_up_to_the_addition(self, member: Member) -> None:
        addition = add(member, 120)

        steps = [claw_back(addition, 20), claw_back(addition, 100)]

        assert [s.is_full_reversal for s in steps] == [False, True]
        assert growth(member) == 0

    def test_never_more_than_was_added(self, member: Member) -> None:
        addition = add(member, 120)
        add(member, 500)
        claw_back(addition, 100)

        with pytest.raises(services.RefundExceedsPaid):
            claw_back(addition, 21)

        assert growth(member) == 520

    def test_a_whole_addition_is_taken_back_once(self, member: Member) -> None:
        addition = add(member, 120)
        claw_back(addition)

        with pytest.raises(services.RefundExceedsPaid):
            claw_back(addition)

        assert growth(member) == 0

    def test_never_below_zero(self, member: Member) -> None:
        additions = [add(member, n) for n in (10, 20, 30)]

        for addition in reversed(additions):
            claw_back(addition)

        assert growth(member) == 0
        assert Account.objects.get(member=member, asset=Asset.GROWTH).entries.count() == 6

    def test_reaches_a_frozen_member(self, member: Member) -> None:
        addition = add(member, 120)
        member_freeze(member=Member.objects.get(pk=member.pk), by=None)

        claw_back(addition)

        assert growth(member) == 0

    def test_only_an_addition_can_be_clawed_back(self, member: Member) -> None:
        back = claw_back(add(member, 10))

        with pytest.raises(services.NotReversible):
            claw_back(back)
