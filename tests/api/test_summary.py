"""assets.summary: one counter field finds the member (phone, last four digits, member number, a payment code
looked up without using it), and the member at a glance with the alerts a cashier should see."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from assets import services
from assets.models import CouponTemplate, LoyaltySettings, PointLot
from assets.summary import member_find, member_ledger_recent, member_summary
from members.models import Member, PaymentCode, Store
from members.services import member_cancel, member_freeze, payment_code_issue
from tests.api.conftest import key
from tests.factories import MemberFactory, StoreFactory
from tiers.models import Tier

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def zhang(store: Store) -> Member:
    return MemberFactory.create(phone="+8613800138000", registered_store=store)


class TestMemberFind:
    def test_finds_by_phone_with_or_without_the_country_code_and_spaces(self, zhang, store):
        for typed in ("13800138000", "+8613800138000", "138 0013 8000", "138-0013-8000"):
            assert member_find(typed, store=store) == [zhang], typed

    def test_finds_by_member_number(self, zhang, store):
        assert member_find(zhang.member_no, store=store) == [zhang]

    def test_last_four_digits_give_this_stores_members_first_then_the_latest(self, store, other_store):
        older = MemberFactory.create(phone="+8613900001234", registered_store=store)
        elsewhere = MemberFactory.create(phone="+8613900011234", registered_store=other_store)
        newer = MemberFactory.create(phone="+8613900021234", registered_store=store)

        assert member_find("1234", store=store) == [newer, older, elsewhere]
        assert member_find("1234", store=None) == [newer, elsewhere, older]

    def test_last_four_digits_give_at_most_ten(self, store):
        for n in range(12):
            MemberFactory.create(phone=f"+86139{n:04d}5678", registered_store=store)

        assert len(member_find("5678", store=store)) == 10

    def test_a_payment_code_finds_its_member_and_stays_usable(self, zhang, store):
        code = payment_code_issue(member=zhang)

        found = member_find(code.code, store=store)

        assert found == [zhang]
        code.refresh_from_db()
        assert code.consumed_at is None

    def test_a_used_or_expired_payment_code_finds_nobody(self, zhang, store):
        code = payment_code_issue(member=zhang)
        PaymentCode.objects.filter(pk=code.pk).update(consumed_at=timezone.now())

        assert member_find(code.code, store=store) == []
        assert member_find(code.code, store=store, at=code.expires_at + timedelta(seconds=1)) == []

    def test_cancelled_members_are_left_out(self, zhang, store):
        member_cancel(member=zhang, by=None, reason="asked")

        assert member_find(zhang.member_no, store=store) == []

    def test_a_name_or_nonsense_finds_nobody(self, zhang, store):
        assert member_find(zhang.name, store=store) == []
        assert member_find("", store=store) == []
        assert member_find("１３８００１３８０００", store=store) == []  # noqa: RUF001  (full-width digits)


class TestMemberSummary:
    def test_gives_balance_points_and_tier(self, funded, store):
        seen = member_summary(funded, at=timezone.now())

        assert (seen.principal_fen, seen.bonus_fen, seen.balance_fen, seen.points) == (30_000, 3_000, 33_000, 5_000)
        assert seen.tier_name == Tier.objects.get(rank=0).name and seen.tier_colour.startswith("#")
        assert seen.alerts == []

    def test_points_expiring_within_30_days_with_the_day_to_use_them_by(self, member):
        LoyaltySettings.objects.update_or_create(pk=1, defaults={"points_expiry": "days", "points_expiry_days": 10})
        services.points_earn(member=member, points=300, idempotency_key=key())
        LoyaltySettings.objects.filter(pk=1).update(points_expiry="never")
        services.points_earn(member=member, points=200, idempotency_key=key())

        seen = member_summary(member, at=timezone.now())

        lot = PointLot.objects.filter(member=member, expires_at__isnull=False).get()
        assert seen.points == 500 and seen.points_expiring == 300
        assert seen.points_expiring_by == timezone.localtime(lot.expires_at).date() - timedelta(days=1)
        assert [a.kind for a in seen.alerts] == ["points_expiring"]
        assert "300 points expire by" in seen.alerts[0].text

    def test_a_frozen_member_is_flagged_first(self, member):
        frozen = member_freeze(member=member, by=None)

        seen = member_summary(frozen, at=timezone.now())

        assert seen.alerts[0].kind == "frozen" and seen.alerts[0].level == "danger"

    def test_birthday_today_and_this_month(self, member):
        Member.objects.filter(pk=member.pk).update(birthday=date(1990, 5, 20))
        member.refresh_from_db()

        on_the_day = member_summary(member, at=datetime(2026, 5, 20, 9, tzinfo=SHANGHAI))
        in_the_month = member_summary(member, at=datetime(2026, 5, 3, 9, tzinfo=SHANGHAI))
        later = member_summary(member, at=datetime(2026, 6, 3, 9, tzinfo=SHANGHAI))

        assert [a.kind for a in on_the_day.alerts] == ["birthday_today"]
        assert [a.kind for a in in_the_month.alerts] == ["birthday_month"]
        assert in_the_month.alerts[0].text == "Birthday this month (2026-05-20)."
        assert later.alerts == []

    def test_close_to_the_next_tier_when_a_fifth_of_the_step_or_less_is_left(self, member, other_store):
        Tier.objects.get_or_create(rank=0, defaults={"name": "Member"})
        Tier.objects.create(name="Silver", rank=1, threshold=1_000)
        services.growth_add(member=member, amount=799, idempotency_key=key())
        far = member_summary(member, at=timezone.now())
        services.growth_add(member=member, amount=1, idempotency_key=key())

        close = member_summary(member, at=timezone.now())

        assert far.alerts == [] and far.to_next_tier == 201
        assert [a.kind for a in close.alerts] == ["tier_close"]
        assert close.alerts[0].text == "200 growth value to Silver." and close.next_tier_name == "Silver"

    def test_lists_usable_coupons_first_expiring_first_and_leaves_out_other_stores(self, member, store):
        soon = CouponTemplate.objects.create(name="Soon", kind="cash_off", value_fen=500, valid_days=3)
        later = CouponTemplate.objects.create(name="Later", kind="cash_off", value_fen=500, valid_days=30)
        elsewhere = CouponTemplate.objects.create(name="Elsewhere", kind="gift", gift_name="Tea", valid_days=30)
        elsewhere.stores.add(StoreFactory.create(code="BJ-01"))
        used = CouponTemplate.objects.create(name="Used", kind="gift", gift_name="Tea", valid_days=30)
        for template in (later, soon, elsewhere, used):
            coupon = services.coupon_issue(template=template, member=member, idempotency_key=key())
        services.coupon_redeem(coupon=coupon, member=member, idempotency_key=key())

        anywhere = member_summary(member, at=timezone.now())
        here = member_summary(member, at=timezone.now(), store=store)

        assert [c.name for c in anywhere.coupons] == ["Soon", "Later", "Elsewhere"]
        assert [c.name for c in here.coupons] == ["Soon", "Later"]
        assert here.coupons[0].last_valid_date == timezone.localdate() + timedelta(days=2)


class TestMemberLedgerRecent:
    def test_gives_the_latest_entries_over_all_accounts_newest_first(self, funded):
        events = member_ledger_recent(funded, limit=2)

        assert [(e.kind, e.asset, e.amount, e.balance_after) for e in events] == [
            ("points_earn", "points", 5_000, 5_000),
            ("bonus_grant", "bonus", 3_000, 3_000),
        ]

    def test_a_member_without_accounts_has_none(self, member):
        assert member_ledger_recent(member) == []
