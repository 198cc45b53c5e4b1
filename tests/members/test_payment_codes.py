"""The dynamic payment code: the same for 60 s, valid for at most 120 s, consumed once, and random, so
nobody who lacks the server's state can work it out from the member number."""

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from members.models import Member, PaymentCode
from members.services import PaymentCodeRefused, member_register, payment_code_consume, payment_code_issue

FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))  # as a Chinese IME types


@pytest.fixture
def member(db) -> Member:
    return member_register(phone="13800138000", name="张三")


@pytest.fixture
def other_member(db) -> Member:
    return member_register(phone="13900139000", name="李四")


@pytest.mark.django_db
class TestPaymentCodeIssue:
    def test_gives_the_same_code_within_sixty_seconds(self, member):
        now = timezone.now()
        first = payment_code_issue(member=member, now=now)

        again = payment_code_issue(member=member, now=now + timedelta(seconds=59))

        assert again.code == first.code

    def test_gives_a_new_code_after_sixty_seconds(self, member):
        now = timezone.now()
        first = payment_code_issue(member=member, now=now)

        later = payment_code_issue(member=member, now=now + timedelta(seconds=61))

        assert later.code != first.code

    def test_gives_a_new_code_once_the_current_one_is_used(self, member):
        now = timezone.now()
        first = payment_code_issue(member=member, now=now)
        payment_code_consume(code=first.code, now=now + timedelta(seconds=5))

        fresh = payment_code_issue(member=member, now=now + timedelta(seconds=10))

        assert fresh.code != first.code

    def test_is_a_short_numeric_code_valid_for_at_most_120_seconds(self, member):
        code = payment_code_issue(member=member)

        assert code.code.isascii() and code.code.isdigit() and len(code.code) <= 24
        assert code.expires_at - code.issued_at <= timedelta(seconds=120)

    def test_does_not_contain_the_member_number(self, member):
        codes = {payment_code_issue(member=member, now=timezone.now() + timedelta(minutes=i)).code for i in range(20)}

        assert not any(member.member_no in code for code in codes)

    def test_gives_two_members_at_the_same_instant_unrelated_codes(self, member, other_member):
        now = timezone.now()

        first, second = (payment_code_issue(member=m, now=now).code for m in (member, other_member))

        assert first != second
        differing = sum(a != b for a, b in zip(first[2:], second[2:], strict=True))  # after the fixed "28"
        assert differing >= 8  # a counter or a hash of the member number would differ in a digit or two

    def test_codes_of_one_member_follow_no_pattern(self, member):
        now = timezone.now()

        codes = [int(payment_code_issue(member=member, now=now + timedelta(minutes=i)).code) for i in range(10)]

        steps = {b - a for a, b in itertools.pairwise(codes)}
        assert len(set(codes)) == 10 and len(steps) == 9

    def test_clears_expired_codes_of_the_member(self, member):
        now = timezone.now()
        payment_code_issue(member=member, now=now)

        payment_code_issue(member=member, now=now + timedelta(minutes=5))

        assert PaymentCode.objects.filter(member=member).count() == 1


@pytest.mark.django_db
class TestPaymentCodeConsume:
    def test_returns_the_member_and_uses_the_code_up(self, member):
        code = payment_code_issue(member=member)

        paid_by = payment_code_consume(code=code.code, member=member)

        code.refresh_from_db()
        assert paid_by == member and code.consumed_at is not None

    def test_refuses_a_code_used_already(self, member):
        code = payment_code_issue(member=member)
        payment_code_consume(code=code.code)

        with pytest.raises(PaymentCodeRefused):
            payment_code_consume(code=code.code)

    def test_accepts_a_code_just_before_it_expires(self, member):
        now = timezone.now()
        code = payment_code_issue(member=member, now=now)

        paid_by = payment_code_consume(code=code.code, now=now + timedelta(seconds=119))

        assert paid_by == member

    def test_refuses_a_code_after_120_seconds(self, member):
        now = timezone.now()
        code = payment_code_issue(member=member, now=now)

        with pytest.raises(PaymentCodeRefused):
            payment_code_consume(code=code.code, now=now + timedelta(seconds=121))

    def test_refuses_another_members_code_and_leaves_it_usable(self, member, other_member):
        code = payment_code_issue(member=member)

        with pytest.raises(PaymentCodeRefused):
            payment_code_consume(code=code.code, member=other_member)

        assert payment_code_consume(code=code.code, member=member) == member

    @pytest.mark.parametrize(
        "typed", ["", "28abc", "28123456".translate(FULLWIDTH), "28 1234", "-281234", "DROP TABLE"]
    )
    def test_refuses_anything_but_ascii_digits(self, member, typed):
        payment_code_issue(member=member)

        with pytest.raises(PaymentCodeRefused) as refused:
            payment_code_consume(code=typed)

        assert refused.value.field == "code"

    def test_refuses_an_unknown_code(self, member):
        payment_code_issue(member=member)

        with pytest.raises(PaymentCodeRefused):
            payment_code_consume(code="280000000000000000")


@pytest.mark.django_db(transaction=True)
class TestPaymentCodeConsumeConcurrently:
    def test_eight_consumers_at_once_let_exactly_one_through(self, member):
        code = payment_code_issue(member=member).code

        def consume(_: int) -> bool:
            try:
                payment_code_consume(code=code)
            except PaymentCodeRefused:
                return False
            finally:
                connection.close()  # each thread has its own connection; leave none open for the flush
            return True

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(consume, range(8)))

        assert outcomes.count(True) == 1
        assert PaymentCode.objects.get(code=code).consumed_at is not None
