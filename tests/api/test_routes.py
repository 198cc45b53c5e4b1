"""The routes doing their job: finding and summarising members, pricing, purchases by any mix of tenders with
their lines, refunds, top-ups with packages and their refunds, coupon checks and gift redemptions, plan sales
and the program's rules. Money is always {"amount": fen, "currency": "CNY"}."""

import pytest

from assets import services
from assets.models import Coupon, CouponTemplate, Purchase, RechargePackage
from benefits.models import Benefit
from members.models import Member, PaidPlan, PaymentCode
from members.services import member_freeze
from tests.api.conftest import cny, key, pay_code
from tests.factories import MemberFactory, StoreFactory
from tiers import services as tiers_services
from tiers.models import Tier


@pytest.fixture
def twenty_off(funded: Member) -> Coupon:
    template = CouponTemplate.objects.create(
        name="20 off 100", kind="cash_off", value_fen=2_000, threshold_fen=10_000, valid_days=30
    )
    return services.coupon_issue(template=template, member=funded, idempotency_key=key())


@pytest.fixture
def coffee(funded: Member) -> Coupon:
    template = CouponTemplate.objects.create(name="Coffee", kind="gift", gift_name="Latte", valid_days=30)
    return services.coupon_issue(template=template, member=funded, idempotency_key=key())


@pytest.fixture
def gold(funded: Member) -> Tier:
    """Gold members pay 95%, and the member stands on Gold."""
    tier = Tier.objects.create(name="Gold", rank=2, threshold=1_000_000, colour="#d4a017")
    benefit = Benefit.objects.create(kind=Benefit.Kind.DISCOUNT, name="Gold price", discount_percent=95)
    benefit.tiers.add(tier)
    tiers_services.tier_set_manual(member=funded, tier=tier, reason="test", staff=None)  # type: ignore[arg-type]
    return tier


class TestMembers:
    def test_search_by_phone_masks_the_phone(self, api, member):
        found = api.get("/members", q=str(member.phone).removeprefix("+86")).json()["members"]

        assert found == [
            {
                "member_no": member.member_no,
                "name": member.name,
                "phone": member.masked_phone,
                "status": "active",
                "registered_store": "SH-01",
            }
        ]
        assert "****" in found[0]["phone"]

    def test_search_by_a_payment_code_leaves_it_usable(self, api, funded):
        code = pay_code(funded)

        found = api.get("/members", q=code).json()["members"]
        paid = api.post(
            "/purchases",
            {
                "member_no": found[0]["member_no"],
                "amount": cny(500),
                "tenders": [{"tender": "balance", "amount": cny(500)}],
                "payment_code": code,
            },
        )

        assert paid.status_code == 201 and PaymentCode.objects.get(code=code).consumed_at is not None

    def test_search_finding_nobody_is_an_empty_list(self, api, db):
        assert api.get("/members", q="0000").json() == {"members": []}

    def test_the_summary(self, api, funded, gold, twenty_off):
        seen = api.get(f"/members/{funded.member_no}").json()

        assert seen["tier"] == {"name": "Gold", "colour": "#d4a017"}
        assert seen["balance"] == {"principal": cny(30_000), "bonus": cny(3_000), "total": cny(33_000)}
        assert seen["points"] == {"available": 5_000, "debt": 0, "expiring": 0, "expiring_by": None}
        assert [c["code"] for c in seen["coupons"]] == [twenty_off.code]
        assert seen["coupons"][0]["threshold"] == cny(10_000) and seen["coupons"][0]["kind"] == "cash_off"
        assert seen["phone"] == funded.masked_phone and seen["status"] == "active"

    def test_the_ledger_newest_first_within_the_limit(self, api, funded):
        events = api.get(f"/members/{funded.member_no}/ledger", limit=2).json()["events"]

        assert [(e["kind"], e["unit"], e["amount"]) for e in events] == [
            ("points_earn", "points", 5_000),
            ("bonus_grant", "fen", 3_000),
        ]
        assert events[0]["at"].endswith("+08:00")


class TestQuoteAndPurchase:
    def test_a_quote_applies_discount_coupon_and_points_in_order(self, api, funded, gold, twenty_off):
        quote = api.post(
            "/quotes",
            {"member_no": funded.member_no, "amount": cny(20_000), "coupon_code": twenty_off.code, "points": 1_000},
            idempotency_key=None,
        ).json()

        assert (quote["discount"], quote["coupon"]["off"], quote["points_offset"], quote["payable"]) == (
            cny(1_000),
            cny(2_000),
            cny(1_000),
            cny(16_000),
        )
        assert quote["discount_percent"] == 95 and quote["points_to_earn"] == 160
        assert [(line["amount"]["amount"], line["subtract"]) for line in quote["pricing"]] == [
            (20_000, False),
            (1_000, True),
            (2_000, True),
            (1_000, True),
            (16_000, False),
        ]

    def test_a_purchase_by_balance_and_cash_with_its_lines(self, api, till, funded, twenty_off):
        response = api.post(
            "/purchases",
            {
                "member_no": funded.member_no,
                "amount": cny(20_000),
                "coupon_code": twenty_off.code,
                "points": 1_000,
                "tenders": [{"tender": "balance", "amount": cny(10_000)}, {"tender": "cash", "amount": cny(7_000)}],
                "payment_code": pay_code(funded),
                "lines": [
                    {"sku": "A1", "name": "Tea", "category": "drinks", "quantity": 2, "unit_price": cny(5_000)},
                    {"sku": "B2", "name": "Cake", "unit_price": cny(10_000)},
                ],
                "external_ref": "T1-0001",
            },
        )

        bought = response.json()
        assert response.status_code == 201
        assert bought["payable"] == cny(17_000) and bought["points_used"] == 1_000
        assert bought["tenders"] == [
            {"tender": "balance", "amount": cny(10_000)},
            {"tender": "cash", "amount": cny(7_000)},
        ]
        assert [(line["sku"], line["quantity"], line["amount"]) for line in bought["lines"]] == [
            ("A1", 2, cny(10_000)),
            ("B2", 1, cny(10_000)),
        ]
        assert bought["balance_after"] == cny(23_000) and bought["points_after"] == 5_000 - 1_000 + 170
        purchase = Purchase.objects.get(order_no=bought["order_no"])
        assert purchase.source == Purchase.Source.API and purchase.actor == f"terminal:{till[0].pk}"
        assert purchase.external_ref == "T1-0001" and purchase.store.code == "SH-01"

    def test_a_guest_purchase(self, api, db):
        response = api.post("/purchases", {"amount": cny(800), "tenders": [{"tender": "wechat", "amount": cny(800)}]})

        bought = response.json()
        assert response.status_code == 201
        assert bought["member_no"] is None and bought["balance_after"] is None and bought["points_earned"] == 0


class TestRefunds:
    def test_partial_then_the_rest_and_the_coupon_comes_back_with_the_last(self, api, funded, twenty_off):
        bought = api.post(
            "/purchases",
            {
                "member_no": funded.member_no,
                "amount": cny(12_000),
                "coupon_code": twenty_off.code,
                "tenders": [{"tender": "cash", "amount": cny(10_000)}],
            },
        ).json()

        part = api.post(f"/purchases/{bought['order_no']}/refunds", {"amount": cny(4_000), "reason": "one returned"})
        rest = api.post(f"/purchases/{bought['order_no']}/refunds", {})

        assert part.status_code == rest.status_code == 201
        assert part.json()["refundable"] == cny(6_000) and not part.json()["coupon_restored"]
        assert rest.json()["amount"] == cny(6_000) and rest.json()["refunded"] == cny(10_000)
        assert rest.json()["coupon_restored"] and rest.json()["tenders"] == [{"tender": "cash", "amount": cny(6_000)}]
        twenty_off.refresh_from_db()
        assert twenty_off.status == Coupon.Status.AVAILABLE


class TestTopUps:
    def test_with_a_package_and_its_refund(self, api, funded):
        package = RechargePackage.objects.create(name="Pay 100 get 20", pay_fen=10_000, bonus_fen=2_000)

        topped = api.post("/top-ups", {"member_no": funded.member_no, "package_id": package.pk, "tender": "alipay"})
        back = api.post(f"/top-ups/{topped.json()['id']}/refund", {"reason": "changed mind"})

        assert topped.status_code == 201
        assert (topped.json()["paid"], topped.json()["bonus"], topped.json()["tender"]) == (
            cny(10_000),
            cny(2_000),
            "alipay",
        )
        assert topped.json()["balance"]["total"] == cny(33_000 + 12_000)
        assert back.status_code == 201
        assert (back.json()["principal"], back.json()["bonus"]) == (cny(10_000), cny(2_000))
        assert back.json()["balance"]["total"] == cny(33_000)

    def test_a_top_up_of_another_store_is_not_refunded_here(self, api, funded):
        elsewhere = StoreFactory.create(code="BJ-01")
        top_up = services.balance_top_up(member=funded, amount_fen=1_000, idempotency_key=key(), store=elsewhere)

        assert api.post(f"/top-ups/{top_up.pk}/refund", {}).status_code == 404


class TestCoupons:
    def test_check_says_what_it_takes_off(self, api, funded, twenty_off):
        checked = api.get(f"/coupons/{twenty_off.code}", member=funded.member_no, amount=15_000).json()

        assert checked["usable"] and checked["off"] == cny(2_000) and checked["member_no"] == funded.member_no
        assert checked["reason"] is None and checked["threshold"] == cny(10_000)

    def test_check_below_the_minimum_says_why(self, api, funded, twenty_off):
        checked = api.get(f"/coupons/{twenty_off.code}", amount=5_000).json()

        assert not checked["usable"] and checked["reason"] == "threshold" and checked["off"] is None
        assert checked["detail"] == "The order does not reach this coupon's minimum."

    def test_check_for_another_member(self, api, twenty_off, store):
        other = MemberFactory.create(registered_store=store)

        checked = api.get(f"/coupons/{twenty_off.code}", member=other.member_no).json()

        assert not checked["usable"] and checked["reason"] == "other_member"

    def test_check_for_a_frozen_member(self, api, funded, twenty_off):
        member_freeze(member=funded, by=None)

        checked = api.get(f"/coupons/{twenty_off.code}", amount=15_000).json()

        assert not checked["usable"] and checked["reason"] == "member_frozen" and checked["off"] is None

    def test_a_gift_is_usable_on_its_own_and_redeemed(self, api, funded, coffee):
        checked = api.get(f"/coupons/{coffee.code}").json()

        redeemed = api.post(f"/coupons/{coffee.code}/redeem", {"member_no": funded.member_no})

        assert checked["usable"] and checked["kind"] == "gift" and checked["off"] is None
        assert redeemed.status_code == 201 and redeemed.json()["gift_name"] == "Latte"
        coffee.refresh_from_db()
        assert coffee.status == Coupon.Status.USED
        assert api.get(f"/coupons/{coffee.code}").json()["reason"] == "used"


class TestPlansAndProgram:
    def test_a_plan_sale_moves_the_member_to_its_tier(self, api, funded):
        plus = Tier.objects.create(name="Plus", rank=3, threshold=5_000_000)
        plan = PaidPlan.objects.create(name="Plus monthly", price_fen=2_900, duration="month")
        plus.plans.add(plan)

        sold = api.post("/plan-sales", {"member_no": funded.member_no, "plan_id": plan.pk, "tender": "card"})

        assert sold.status_code == 201
        assert sold.json()["plan"] == {"id": plan.pk, "name": "Plus monthly", "price": cny(2_900), "duration": "month"}
        assert sold.json()["tier"] == "Plus"
        funded.refresh_from_db()
        assert funded.member_type == Member.Type.PAID

    def test_the_program_lists_rules_tiers_and_what_is_on_sale(self, api, db):
        RechargePackage.objects.create(name="On", pay_fen=10_000, bonus_fen=1_000)
        RechargePackage.objects.create(name="Off", pay_fen=10_000, is_active=False)
        PaidPlan.objects.create(name="Old", price_fen=100, duration="year", is_active=False)
        PaidPlan.objects.create(name="Plus", price_fen=2_900, duration="month")

        program = api.get("/program").json()

        assert program["currency"] == "CNY"
        assert program["points"]["worth_one_yuan"] == 100 and program["points"]["offset_max_percent"] == 50
        assert program["refund_approval_above"] == cny(20_000)
        assert [p["name"] for p in program["packages"]] == ["On"]
        assert [p["name"] for p in program["plans"]] == ["Plus"]
        assert program["tiers"][0]["rank"] == 0
