"""Ledger verification: clean after a realistic mix of every service, and each invariant named when it breaks.

Damage is done as a stray script or a bad migration would: direct UPDATEs of cached figures, and edits of
append-only rows with the triggers switched off for that one statement (`session_replication_role = replica`),
all inside the test's transaction, where ledgers_verify() reads what the test wrote."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from io import StringIO
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from assets import services
from assets.models import Account, Asset, Coupon, CouponTemplate, Entry, LedgerTransaction, PointLot, RechargePackage
from members.models import Staff
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = LedgerTransaction.Kind


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def key() -> str:
    return uuid4().hex


def check(phrase: str) -> str:
    """The one invariant whose description contains `phrase`."""
    (name,) = [name for name, _sql in services.CHECKS if phrase in name]
    return name


def broken() -> set[str]:
    return {violation.check for violation in services.ledgers_verify().violations}


def corrupt(sql: str, params: list[Any], *, bypass_triggers: bool = False) -> None:
    with connection.cursor() as cursor:
        if bypass_triggers:
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        assert cursor.rowcount >= 1, "the damage must hit a row"
        if bypass_triggers:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@contextmanager
def rolled_back_afterwards() -> Iterator[None]:
    """A savepoint undone at the end: damage that PostgreSQL checks when the test ends (a transaction that
    does not balance, checked with the deferred constraints) is gone by then."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@dataclass
class Mix:
    """Rows of a ledger that every service has written to, for the damage to aim at."""

    principal: Account
    plain_top_up: LedgerTransaction
    part_refunded: LedgerTransaction
    live_lot: PointLot
    expired_lot: PointLot
    available: Coupon
    used: Coupon
    template: CouponTemplate


def build_mix(manager: Staff, cashier: Staff) -> Mix:
    """Three members over a week: top-ups with and without a package, payments and refunds, a top-up refund,
    points earned, spent, clawed back, restored, adjusted and expired, coupons issued, used, restored, voided
    and expired, growth added and clawed back."""
    ann, bo, cy = MemberFactory.create(), MemberFactory.create(), MemberFactory.create()
    template = CouponTemplate.objects.create(
        name="10 off 50", kind="cash_off", value_fen=1_000, threshold_fen=5_000, validity="relative", valid_days=3
    )
    package = RechargePackage.objects.create(
        name="Pay 100 get 20", pay_fen=10_000, bonus_fen=2_000, points=100, growth=50
    )
    package.coupon_templates.add(template)
    with time_machine.travel(local(2026, 3, 5, 10), tick=False) as clock:
        services.balance_top_up(member=ann, package=package, idempotency_key=key(), staff=cashier)
        plain = services.balance_top_up(member=bo, amount_fen=30_000, idempotency_key=key(), staff=cashier)
        refunded_top_up = services.balance_top_up(member=cy, amount_fen=5_000, idempotency_key=key())
        services.top_up_refund(top_up=refunded_top_up, idempotency_key=key(), staff=cashier)
        part_refunded = services.balance_spend(member=ann, amount_fen=1_001, idempotency_key=key())
        services.balance_refund(spend=part_refunded, amount_fen=500, idempotency_key=key())
        whole = services.balance_spend(member=bo, amount_fen=2_550, idempotency_key=key())
        services.balance_refund(spend=whole, idempotency_key=key())
        services.balance_adjust(
            member=bo, asset=Asset.BONUS, amount_fen=300, reason="goodwill", staff=manager, idempotency_key=key()
        )
        services.balance_bonus_grant(member=cy, amount_fen=800, idempotency_key=key(), actor="tier:2")

        short = services.points_earn(member=bo, points=80, expiry="days", expiry_days=1, idempotency_key=key())
        lasting = services.points_earn(member=bo, points=200, expiry="never", idempotency_key=key())
        spent = services.points_spend(member=bo, points=50, idempotency_key=key())
        services.points_restore(spend=spent, points=20, idempotency_key=key())
        refunded_earn = services.points_earn(member=ann, points=40, idempotency_key=key())
        services.points_spend(member=ann, points=120, idempotency_key=key())
        services.points_claw_back(earn=refunded_earn, idempotency_key=key())  # ann now owes points
        services.points_earn(member=ann, points=10, idempotency_key=key())  # and repays some
        services.points_adjust(member=cy, points=30, reason="apology", staff=manager, idempotency_key=key())
        services.points_adjust(member=cy, points=-10, reason="typo", staff=manager, idempotency_key=key())

        growth = services.growth_add(member=cy, amount=70, idempotency_key=key())
        services.growth_claw_back(add=growth, amount=20, idempotency_key=key())

        used = services.coupon_issue(template=template, member=bo, idempotency_key=key())
        services.coupon_redeem(coupon=used, member=used.member, order_amount_fen=6_000, idempotency_key=key())
        restored = services.coupon_issue(template=template, member=bo, idempotency_key=key())
        redemption = services.coupon_redeem(coupon=restored, member=restored.member, idempotency_key=key())
        services.coupon_restore(redemption=redemption, idempotency_key=key())
        services.coupon_void(
            coupon=services.coupon_issue(template=template, member=cy, idempotency_key=key()),
            reason="wrong member",
            idempotency_key=key(),
        )
        services.coupon_issue(template=template, member=cy, idempotency_key=key())  # left to expire

        clock.move_to(local(2026, 3, 8, 2))
        assert services.points_expire_due(business_date=date(2026, 3, 7)) == (1, 50)
        assert services.coupon_expire_due(business_date=date(2026, 3, 7))[0] >= 1
        available = services.coupon_issue(template=template, member=ann, idempotency_key=key())
    return Mix(
        principal=Account.objects.get(member=ann, asset=Asset.PRINCIPAL),
        plain_top_up=plain,
        part_refunded=part_refunded,
        live_lot=PointLot.objects.get(earned_by=lasting),
        expired_lot=PointLot.objects.get(earned_by=short),
        available=available,
        used=used,
        template=template,
    )


@pytest.fixture(autouse=True)
def _quick_passwords() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):  # staff per test
        yield


@pytest.fixture
def mix(manager: Staff, cashier: Staff) -> Mix:
    return build_mix(manager, cashier)


DAMAGE: dict[str, tuple[Callable[[Mix], None], set[str]]] = {
    "cached-balance": (
        lambda m: corrupt("UPDATE assets_account SET balance = balance + 1 WHERE id = %s", [m.principal.pk]),
        {check("balance = sum of its entries")},
    ),
    "sequence-gap": (
        lambda m: corrupt("UPDATE assets_account SET seq = seq + 1 WHERE id = %s", [m.principal.pk]),
        {check("balance = sum of its entries")},
    ),
    "entry-on-another-asset": (
        lambda m: corrupt(
            "UPDATE assets_entry SET asset = 'bonus' WHERE transaction_id = %s AND asset = 'principal'",
            [m.plain_top_up.pk],
            bypass_triggers=True,
        ),
        {check("entry's asset is its account's asset")},
    ),
    "unbalanced-transaction": (
        lambda m: corrupt(
            "UPDATE assets_entry SET amount = amount + 1 WHERE transaction_id = %s AND seq IS NULL",
            [m.plain_top_up.pk],
            bypass_triggers=True,
        ),
        {check("sums to zero per asset")},
    ),
    "points-balance-off-its-lots": (
        lambda m: corrupt(
            "UPDATE assets_pointlot SET original = original + 1, remaining = remaining + 1 WHERE id = %s",
            [m.live_lot.pk],
        ),
        {check("points balance = sum of the member's lot remainders")},
    ),
    "lot-off-its-allocations": (
        lambda m: corrupt("UPDATE assets_pointlot SET original = original + 1 WHERE id = %s", [m.live_lot.pk]),
        {check("remaining = original - its allocations")},
    ),
    "expired-lot-holding-points": (
        lambda m: corrupt(
            "UPDATE assets_pointlot SET original = original + 5, remaining = 5 WHERE id = %s", [m.expired_lot.pk]
        ),
        {check("no lot past its expiry keeps points"), check("points balance = sum of the member's lot remainders")},
    ),
    "coupon-status-off-its-events": (
        lambda m: corrupt(
            "UPDATE assets_coupon SET status = 'void', closed_at = now() WHERE id = %s", [m.available.pk]
        ),
        {check("coupon's status agrees with its last ledger event")},
    ),
    "coupon-used-by-another-transaction": (
        lambda m: corrupt(
            "UPDATE assets_coupon SET redeemed_by_id = (SELECT min(id) FROM assets_ledgertransaction"
            " WHERE coupon_id = %s AND kind = 'coupon_issue') WHERE id = %s",
            [m.used.pk, m.used.pk],
        ),
        {check("used coupon is used by its redemption")},
    ),
    "template-issued-count": (
        lambda m: corrupt("UPDATE assets_coupontemplate SET issued = issued + 1 WHERE id = %s", [m.template.pk]),
        {check("issued count = its coupons")},
    ),
    "reversals-off-the-record": (
        lambda m: corrupt(
            "UPDATE assets_ledgertransaction SET reversed_amount = 0 WHERE id = %s", [m.part_refunded.pk]
        ),
        {check("reversals never exceed")},
    ),
}


@pytest.mark.django_db
class TestLedgersVerify:
    def test_a_realistic_mix_of_every_service_verifies_clean(self, mix: Mix) -> None:
        report = services.ledgers_verify()

        assert report.ok, report.text()
        assert report.accounts == 3 * len(Asset.values)
        assert (report.lots, report.coupons) == (PointLot.objects.count(), Coupon.objects.count())
        assert report.text().endswith("All invariants hold.")

    def test_the_mix_moves_value_in_every_way_there_is(self, mix: Mix) -> None:
        kinds = set(LedgerTransaction.objects.values_list("kind", flat=True))

        assert kinds == set(Kind.values)  # every kind of movement is in the mix

    @pytest.mark.parametrize("damage", list(DAMAGE))
    def test_names_the_broken_invariant(self, mix: Mix, damage: str) -> None:
        do_damage, expected = DAMAGE[damage]

        with rolled_back_afterwards():
            do_damage(mix)
            found = broken()

        assert found == expected

    def test_the_report_gives_counts_and_examples(self, mix: Mix) -> None:
        corrupt("UPDATE assets_account SET balance = balance + 1 WHERE id = %s", [mix.principal.pk])

        report = services.ledgers_verify()

        (violation,) = report.violations
        assert violation.count == 1
        assert violation.examples[0].startswith(f"account {mix.principal.pk} (member {mix.principal.member_id}, ")
        assert "1 invariant(s) broken:" in report.text()
        assert f"- {violation.check}: 1 row(s), e.g. account {mix.principal.pk}" in report.text()

    def test_lists_at_most_the_examples_asked_for(self, mix: Mix) -> None:
        corrupt("UPDATE assets_account SET balance = balance + 1 WHERE member_id IS NOT NULL AND asset = 'growth'", [])

        (violation,) = services.ledgers_verify(examples=2).violations

        assert (violation.count, len(violation.examples)) == (3, 2)


@pytest.mark.django_db
class TestVerifyLedgersCommand:
    def test_reports_a_clean_ledger(self, mix: Mix) -> None:
        out = StringIO()

        call_command("verify_ledgers", stdout=out)

        assert "All invariants hold." in out.getvalue()

    def test_fails_with_a_readable_report_and_a_non_zero_exit(self, mix: Mix) -> None:
        corrupt("UPDATE assets_coupontemplate SET issued = issued + 1 WHERE id = %s", [mix.template.pk])

        with pytest.raises(CommandError) as failed:
            call_command("verify_ledgers")

        message = str(failed.value)
        assert failed.value.returncode == 1
        assert "1 invariant(s) broken:" in message
        assert f"- {check('issued count = its coupons')}: 1 row(s), e.g. template {mix.template.pk}:" in message

    def test_shows_as_many_examples_as_asked(self, mix: Mix) -> None:
        corrupt("UPDATE assets_account SET balance = balance + 1 WHERE member_id IS NOT NULL AND asset = 'growth'", [])

        with pytest.raises(CommandError) as failed:
            call_command("verify_ledgers", "--examples", "1")

        (line,) = [line for line in str(failed.value).splitlines() if line.startswith("- ")]
        assert "3 row(s), e.g. account " in line and ";" not in line


@pytest.mark.django_db(transaction=True)  # as run from a shell: its own transaction, and the exit status
class TestVerifyLedgersFromTheCommandLine:
    def test_exits_non_zero_when_an_invariant_is_broken(self, mix: Mix, capsys: pytest.CaptureFixture[str]) -> None:
        corrupt("UPDATE assets_account SET balance = balance + 1 WHERE id = %s", [mix.principal.pk])

        with pytest.raises(SystemExit) as exited:
            ManagementUtility(["manage.py", "verify_ledgers"]).execute()

        assert exited.value.code == 1
        assert check("balance = sum of its entries") in capsys.readouterr().err

    def test_exits_zero_when_clean(self, mix: Mix, capsys: pytest.CaptureFixture[str]) -> None:
        ManagementUtility(["manage.py", "verify_ledgers"]).execute()

        assert "All invariants hold." in capsys.readouterr().out


@pytest.mark.django_db
class TestDatabaseGuards:
    def test_an_entry_cannot_be_edited(self, mix: Mix) -> None:
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            Entry.objects.filter(transaction=mix.plain_top_up).update(amount=1)

    def test_an_entry_cannot_be_deleted(self, mix: Mix) -> None:
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            Entry.objects.filter(transaction=mix.plain_top_up).delete()


@pytest.mark.django_db(transaction=True)  # the balance check is deferred to COMMIT
def test_a_transaction_that_does_not_balance_is_refused_at_commit(mix: Mix) -> None:
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        Entry.objects.create(
            transaction=mix.plain_top_up, account=mix.principal, asset=Asset.PRINCIPAL, amount=1, seq=None
        )

    assert services.ledgers_verify().ok
