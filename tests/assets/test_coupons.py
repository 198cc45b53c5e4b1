"""Coupons: validity windows, stock and per-member limits, redemption checks, restores on refunds, voiding,
the nightly expiry, and codes that are 16 unguessable digits."""

import re
from collections.abc import Iterator
from datetime import date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine

from assets import services
from assets.models import Coupon, CouponTemplate, LedgerTransaction
from members.models import Member, Store
from members.services import member_freeze
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = LedgerTransaction.Kind


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def key() -> str:
    return uuid4().hex


def make_template(**fields: object) -> CouponTemplate:
    """A cash-off coupon, 10.00 off orders of 50.00, valid for 7 days from issue, unless told otherwise."""
    defaults: dict[str, object] = {
        "name": "10 off 50",
        "kind": CouponTemplate.Kind.CASH_OFF,
        "value_fen": 1_000,
        "threshold_fen": 5_000,
        "validity": CouponTemplate.Validity.RELATIVE,
        "valid_days": 7,
    }
    return CouponTemplate.objects.create(**{**defaults, **fields})


def issue(template: CouponTemplate, member: Member, *, idempotency_key: str | None = None) -> Coupon:
    return services.coupon_issue(template=template, member=member, idempotency_key=idempotency_key or key())


def redeem(
    coupon: Coupon,
    *,
    member: Member | None = None,
    store: Store | None = None,
    order_fen: int | None = None,
    ref: str = "order-1",
) -> LedgerTransaction:
    return services.coupon_redeem(
        coupon=coupon,
        member=member or coupon.member,
        store=store,
        order_amount_fen=order_fen,
        external_ref=ref,
        idempotency_key=key(),
    )


def restore(coupon: Coupon) -> LedgerTransaction:
    """Refund the order that uses `coupon` now."""
    coupon.refresh_from_db()
    assert coupon.redeemed_by is not None, "only a used coupon has an order to refund"
    return services.coupon_restore(redemption=coupon.redeemed_by, idempotency_key=key())


def void(coupon: Coupon, reason: str = "issued by mistake") -> LedgerTransaction:
    return services.coupon_void(coupon=coupon, reason=reason, idempotency_key=key())


def status(coupon: Coupon) -> str:
    coupon.refresh_from_db()
    return coupon.status


@pytest.fixture
def member(db: None) -> Member:
    return MemberFactory.create()


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Thursday 5 March 2026, 10:00 in Shanghai; tests move it on."""
    with time_machine.travel(local(2026, 3, 5, 10), tick=False) as traveller:
        yield traveller


@pytest.fixture
def coupon(member: Member, clock: time_machine.Traveller) -> Coupon:
    """10.00 off 50.00, issued on 5 March, valid to the end of 11 March."""
    return issue(make_template(), member)


class TestCouponWindow:
    def test_fixed_dates_run_from_the_first_days_midnight_to_the_midnight_after_the_last(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        template = make_template(validity="fixed", valid_from=date(2026, 3, 1), valid_until=date(2026, 3, 31))

        coupon = issue(template, member)

        assert (coupon.starts_at, coupon.expires_at) == (local(2026, 3, 1), local(2026, 4, 1))

    def test_fixed_dates_without_a_start_run_from_the_issue(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        template = make_template(validity="fixed", valid_until=date(2026, 3, 31))

        coupon = issue(template, member)

        assert (coupon.starts_at, coupon.expires_at) == (local(2026, 3, 5, 10), local(2026, 4, 1))

    @pytest.mark.parametrize(
        ("issued_at", "days", "expires_at"),
        [
            (local(2026, 3, 5, 10), 7, local(2026, 3, 12)),
            (local(2026, 3, 5, 23, 59), 7, local(2026, 3, 12)),
            (local(2026, 3, 6, 0, 1), 7, local(2026, 3, 13)),  # still 5 March in UTC
            (local(2026, 3, 5, 10), 1, local(2026, 3, 6)),  # one day: the day of issue
        ],
        ids=["seven-days", "issued-at-23:59", "issued-at-00:01", "one-day"],
    )
    def test_n_days_count_the_day_of_issue_as_the_first(
        self, member: Member, issued_at: datetime, days: int, expires_at: datetime
    ) -> None:
        with time_machine.travel(issued_at, tick=False):
            coupon = issue(make_template(valid_days=days), member)

        assert (coupon.issued_at, coupon.starts_at, coupon.expires_at) == (issued_at, issued_at, expires_at)


class TestCouponIssue:
    def test_issues_an_available_coupon_recording_the_channel(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        template = make_template()

        coupon = services.coupon_issue(
            template=template, member=member, channel=Coupon.Channel.PROMOTION, idempotency_key=key()
        )

        assert (coupon.member, coupon.template, coupon.status, coupon.channel) == (
            member,
            template,
            "available",
            "promotion",
        )
        assert LedgerTransaction.objects.get(coupon=coupon).kind == Kind.COUPON_ISSUE
        template.refresh_from_db()
        assert template.issued == 1

    def test_a_retry_with_the_same_key_returns_the_first_coupon(self, member: Member) -> None:
        template = make_template()
        first = issue(template, member, idempotency_key="gift-1")

        again = issue(template, member, idempotency_key="gift-1")

        assert again == first and Coupon.objects.count() == 1

    def test_stops_at_the_per_member_limit(self, member: Member) -> None:
        template = make_template(per_member_limit=2)
        issue(template, member)
        issue(template, member)

        with pytest.raises(services.CouponLimitReached):
            issue(template, member)

        issue(template, MemberFactory.create())
        assert Coupon.objects.filter(member=member).count() == 2
        template.refresh_from_db()
        assert template.issued == 3

    def test_stops_when_the_stock_runs_out(self, member: Member) -> None:
        template = make_template(stock=2)
        issue(template, member)
        issue(template, MemberFactory.create())

        with pytest.raises(services.CouponOutOfStock):
            issue(template, MemberFactory.create())

        template.refresh_from_db()
        assert (template.issued, Coupon.objects.count()) == (2, 2)

    def test_a_refusal_at_the_limit_uses_up_no_stock(self, member: Member) -> None:
        template = make_template(stock=2, per_member_limit=1)
        issue(template, member)
        with pytest.raises(services.CouponLimitReached):
            issue(template, member)

        issue(template, MemberFactory.create())

        template.refresh_from_db()
        assert template.issued == 2

    def test_an_inactive_template_issues_nothing(self, member: Member) -> None:
        template = make_template(is_active=False)

        with pytest.raises(services.CouponTemplateClosed):
            issue(template, member)

        assert not Coupon.objects.exists()

    def test_a_template_whose_dates_are_over_issues_nothing(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        template = make_template(validity="fixed", valid_until=date(2026, 3, 4))

        with pytest.raises(services.CouponTemplateClosed):
            issue(template, member)

    def test_a_template_valid_to_the_end_of_today_still_issues(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        issue(make_template(validity="fixed", valid_until=date(2026, 3, 5)), member)

        assert Coupon.objects.filter(member=member).count() == 1

    def test_a_frozen_member_gets_none(self, member: Member) -> None:
        member_freeze(member=member, by=None)

        with pytest.raises(services.MemberFrozen):
            issue(make_template(), member)

    def test_codes_are_sixteen_digits_and_unique(self, member: Member) -> None:
        template = make_template()

        codes = [issue(template, member).code for _ in range(40)]

        assert all(re.fullmatch(r"[0-9]{16}", code) for code in codes)
        assert len(set(codes)) == 40

    def test_codes_keep_their_leading_zeros(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(services.coupons.secrets, "randbelow", lambda n: 42)

        assert services.coupon_code_new() == "0000000000000042"

    def test_codes_are_drawn_from_all_sixteen_digit_numbers(self) -> None:
        codes = {services.coupon_code_new() for _ in range(2_000)}

        assert len(codes) == 2_000
        assert all(re.fullmatch(r"[0-9]{16}", code) for code in codes)


class TestCouponRedeem:
    def test_uses_the_coupon_on_the_order(self, coupon: Coupon, store: Store) -> None:
        used = redeem(coupon, store=store, order_fen=5_000, ref="order-9")

        coupon.refresh_from_db()
        assert (coupon.status, coupon.redeemed_by, coupon.order_ref) == ("used", used, "order-9")
        assert coupon.redeemed_at == local(2026, 3, 5, 10)
        assert (used.kind, used.store, used.external_ref) == (Kind.COUPON_REDEEM, store, "order-9")

    def test_another_members_coupon_is_refused(self, coupon: Coupon) -> None:
        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon, member=MemberFactory.create())

        assert str(refused.value) == "This coupon belongs to another member."
        assert status(coupon) == "available"

    def test_its_owner_may_use_it(self, coupon: Coupon, member: Member) -> None:
        redeem(coupon, member=member)

        assert status(coupon) == "used"

    def test_a_coupon_for_some_stores_is_refused_elsewhere(
        self, member: Member, clock: time_machine.Traveller, store: Store, other_store: Store
    ) -> None:
        template = make_template()
        template.stores.add(store)
        coupon = issue(template, member)

        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon, store=other_store)

        assert refused.value.params == {"reason": "store"}
        redeem(coupon, store=store)
        assert status(coupon) == "used"

    def test_a_coupon_for_every_store_is_used_anywhere(self, coupon: Coupon, other_store: Store) -> None:
        redeem(coupon, store=other_store)

        assert status(coupon) == "used"

    def test_a_cash_off_coupon_needs_the_order_to_reach_its_threshold(self, coupon: Coupon) -> None:
        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon, order_fen=4_999)

        assert str(refused.value) == "The order does not reach this coupon's minimum."
        redeem(coupon, order_fen=5_000)
        assert status(coupon) == "used"

    def test_a_percentage_coupon_has_no_threshold(self, member: Member, clock: time_machine.Traveller) -> None:
        coupon = issue(
            make_template(kind="percent", value_fen=0, percent_of_price=85, cap_fen=2_000, threshold_fen=5_000), member
        )

        redeem(coupon, order_fen=100)

        assert status(coupon) == "used"

    def test_a_coupon_not_yet_valid_is_refused(self, member: Member, clock: time_machine.Traveller) -> None:
        template = make_template(validity="fixed", valid_from=date(2026, 3, 10), valid_until=date(2026, 3, 31))
        coupon = issue(template, member)
        clock.move_to(local(2026, 3, 9, 23, 59))

        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon)

        assert refused.value.params == {"reason": "not_started"}
        clock.move_to(local(2026, 3, 10, 0, 0))
        redeem(coupon)
        assert status(coupon) == "used"

    def test_an_expired_coupon_is_refused_before_the_expiry_job_ran(
        self, coupon: Coupon, clock: time_machine.Traveller
    ) -> None:
        clock.move_to(local(2026, 3, 12, 0, 0))

        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon)

        assert str(refused.value) == "This coupon has expired."
        assert status(coupon) == "available"

    def test_a_coupon_is_usable_until_the_last_minute_of_its_last_day(
        self, coupon: Coupon, clock: time_machine.Traveller
    ) -> None:
        clock.move_to(local(2026, 3, 11, 23, 59))

        redeem(coupon)

        assert status(coupon) == "used"

    def test_a_used_coupon_is_refused(self, coupon: Coupon) -> None:
        first = redeem(coupon, ref="order-1")

        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon, ref="order-2")

        assert str(refused.value) == "This coupon has been used."
        coupon.refresh_from_db()
        assert (coupon.redeemed_by, coupon.order_ref) == (first, "order-1")

    def test_a_stale_copy_of_a_used_coupon_is_refused_too(self, coupon: Coupon) -> None:
        redeem(Coupon.objects.get(pk=coupon.pk))

        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon, ref="order-2")

        assert refused.value.params == {"reason": "used"}

    def test_a_void_coupon_is_refused(self, coupon: Coupon) -> None:
        void(coupon)

        with pytest.raises(services.CouponNotUsable) as refused:
            redeem(coupon)

        assert str(refused.value) == "This coupon has been voided."

    def test_a_frozen_owner_cannot_use_it(self, coupon: Coupon, member: Member) -> None:
        member_freeze(member=member, by=None)

        with pytest.raises(services.MemberFrozen):
            redeem(coupon)

        assert status(coupon) == "available"


class TestCouponRestore:
    def test_within_its_validity_the_coupon_is_available_again(
        self, coupon: Coupon, clock: time_machine.Traveller
    ) -> None:
        used = redeem(coupon)
        clock.move_to(local(2026, 3, 11, 23, 59))

        back = restore(coupon)

        coupon.refresh_from_db()
        assert (coupon.status, coupon.redeemed_by, coupon.redeemed_at, coupon.closed_at) == (
            "available",
            None,
            None,
            None,
        )
        assert (back.kind, back.reverses, back.is_full_reversal, back.details) == (Kind.COUPON_RESTORE, used, True, {})
        redeem(coupon, ref="order-2")
        assert status(coupon) == "used"

    def test_after_its_validity_the_coupon_comes_back_expired(
        self, coupon: Coupon, clock: time_machine.Traveller
    ) -> None:
        redeem(coupon)
        clock.move_to(local(2026, 3, 12, 0, 0))

        back = restore(coupon)

        coupon.refresh_from_db()
        assert (coupon.status, coupon.closed_at, coupon.redeemed_by) == ("expired", local(2026, 3, 12), None)
        assert back.details == {"expired": True}

    def test_a_redemption_is_restored_once(self, coupon: Coupon) -> None:
        used = redeem(coupon)
        services.coupon_restore(redemption=used, idempotency_key=key())

        with pytest.raises(services.NotReversible):
            services.coupon_restore(redemption=used, idempotency_key=key())

        assert LedgerTransaction.objects.filter(kind=Kind.COUPON_RESTORE).count() == 1

    def test_a_late_refund_of_the_first_order_does_not_free_the_coupon_of_the_second(self, coupon: Coupon) -> None:
        first = redeem(coupon, ref="order-1")
        services.coupon_restore(redemption=first, idempotency_key=key())
        second = redeem(coupon, ref="order-2")

        with pytest.raises(services.NotReversible):
            services.coupon_restore(redemption=first, idempotency_key=key())

        coupon.refresh_from_db()
        assert (coupon.status, coupon.redeemed_by_id) == ("used", second.pk)

    def test_only_a_redemption_can_be_restored(self, coupon: Coupon) -> None:
        issued = LedgerTransaction.objects.get(coupon=coupon, kind=Kind.COUPON_ISSUE)

        with pytest.raises(services.NotReversible):
            services.coupon_restore(redemption=issued, idempotency_key=key())

        assert status(coupon) == "available"


class TestCouponVoid:
    def test_withdraws_an_available_coupon_with_a_reason(self, coupon: Coupon, clock: time_machine.Traveller) -> None:
        voided = void(coupon, "sent to the wrong member")

        coupon.refresh_from_db()
        assert (coupon.status, coupon.closed_at) == ("void", local(2026, 3, 5, 10))
        assert (voided.kind, voided.reason) == (Kind.COUPON_VOID, "sent to the wrong member")

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_needs_a_reason(self, coupon: Coupon, reason: str) -> None:
        with pytest.raises(services.ReasonRequired):
            void(coupon, reason)

        assert status(coupon) == "available"

    def test_a_used_coupon_cannot_be_voided(self, coupon: Coupon) -> None:
        redeem(coupon)

        with pytest.raises(services.CouponNotUsable) as refused:
            void(coupon)

        assert refused.value.params == {"reason": "used"}
        assert status(coupon) == "used"


class TestCouponExpireDue:
    def test_expires_available_coupons_whose_last_day_has_ended(
        self, member: Member, clock: time_machine.Traveller
    ) -> None:
        one_day = make_template(valid_days=1)
        lapsed, used = issue(one_day, member), issue(one_day, member)
        redeem(used)
        later = issue(make_template(valid_days=2), member)
        clock.move_to(local(2026, 3, 6, 0, 30))

        assert services.coupon_expire_due(business_date=date(2026, 3, 5)) == (1, 1)

        assert [status(c) for c in (lapsed, used, later)] == ["expired", "used", "available"]
        expiry = LedgerTransaction.objects.get(kind=Kind.COUPON_EXPIRE)
        assert (expiry.coupon, expiry.member, expiry.business_date) == (lapsed, member, date(2026, 3, 5))

    def test_a_second_run_for_the_day_changes_nothing(self, member: Member, clock: time_machine.Traveller) -> None:
        issue(make_template(valid_days=1), member)
        clock.move_to(local(2026, 3, 6, 0, 30))
        services.coupon_expire_due(business_date=date(2026, 3, 5))

        assert services.coupon_expire_due(business_date=date(2026, 3, 5)) == (0, 0)

        assert LedgerTransaction.objects.filter(kind=Kind.COUPON_EXPIRE).count() == 1

    def test_works_through_many_coupons_in_batches(self, member: Member, clock: time_machine.Traveller) -> None:
        template = make_template(valid_days=1)
        for _ in range(5):
            issue(template, member)
        clock.move_to(local(2026, 3, 6, 0, 30))

        assert services.coupon_expire_due(business_date=date(2026, 3, 5), batch=2) == (5, 5)

        assert set(Coupon.objects.values_list("status", flat=True)) == {"expired"}

    def test_leaves_coupons_whose_last_day_is_later(self, coupon: Coupon) -> None:
        assert services.coupon_expire_due(business_date=date(2026, 3, 10)) == (0, 0)

        assert status(coupon) == "available"
