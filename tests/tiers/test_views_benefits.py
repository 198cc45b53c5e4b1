"""The benefit catalogue under the tiers section: one form for every kind, keeping only the fields the kind
uses; auditors read the list; bad input changes nothing."""

import pytest
from django.urls import reverse

from assets.models import CouponTemplate
from benefits.models import Benefit
from members.models import PaidPlan
from tiers.models import Tier

BENEFIT = {
    "kind": "discount",
    "name": "Gold discount",
    "description": "",
    "discount_percent": "95",
    "multiplier_percent": "",
    "birthday_when": "month",
    "gift_points": "",
    "coupons_per_month": "",
    "member_day_by": "weekday",
    "weekday": "2",
    "day_of_month": "",
    "is_active": "on",
}


@pytest.fixture
def gold(db) -> Tier:
    return Tier.objects.create(name="Gold", rank=2, threshold=500, colour="#d4a017")


@pytest.fixture
def coupon(db) -> CouponTemplate:
    return CouponTemplate.objects.create(name="Coffee", kind="gift", gift_name="Coffee", valid_days=30)


class TestBenefitList:
    def test_lists_each_benefit_with_what_it_gives_and_to_whom(self, auditor_client, gold, coupon):
        discount = Benefit.objects.create(kind="discount", name="Gold discount", discount_percent=95)
        discount.tiers.add(gold)
        Benefit.objects.create(kind="member_day", name="Wednesday", weekday=2, multiplier_percent=200)
        Benefit.objects.create(kind="monthly_coupons", name="Coffee club", coupon_template=coupon, coupons_per_month=2)
        Benefit.objects.create(kind="points_multiplier", name="Boost", multiplier_percent=150, additive=True)

        response = auditor_client.get(reverse("tiers:benefits"))

        body = response.text
        assert response.status_code == 200
        assert "pays 95% of the price" in body and "Gold" in body
        assert "every Wednesday; points \u00d72" in body
        assert "Coffee, 2 a month" in body and "points \u00d71.5, added to other multipliers" in body
        assert reverse("tiers:benefit-create") not in body  # auditors read only

    def test_managers_get_the_edit_links(self, manager_client, gold):
        benefit = Benefit.objects.create(kind="info", name="Priority service", description="At every counter.")

        body = manager_client.get(reverse("tiers:benefits")).text

        assert reverse("tiers:benefit-edit", args=[benefit.pk]) in body

    def test_is_closed_to_cashiers(self, cashier_client):
        assert cashier_client.get(reverse("tiers:benefits")).status_code == 403


class TestBenefitForm:
    def test_creates_a_discount_for_a_tier_and_a_plan(self, manager_client, gold):
        plan = PaidPlan.objects.create(name="Gold Pass", price_fen=9_900, duration="year")

        response = manager_client.post(
            reverse("tiers:benefit-create"), BENEFIT | {"tiers": [gold.pk], "plans": [plan.pk]}
        )

        assert response.status_code == 302
        benefit = Benefit.objects.get()
        assert (benefit.kind, benefit.discount_percent, benefit.weekday) == ("discount", 95, None)
        assert list(benefit.tiers.all()) == [gold] and list(benefit.plans.all()) == [plan]
        assert benefit.events.select_related("pgh_context").get().pgh_context.metadata["action"] == "benefit_save"  # type: ignore[attr-defined]

    def test_keeps_only_the_fields_the_kind_uses(self, owner_client, coupon):
        data = BENEFIT | {
            "kind": "member_day",
            "name": "Pay day",
            "member_day_by": "day_of_month",
            "day_of_month": "31",
            "discount_percent": "90",
            "gift_points": "500",
            "coupon_template": coupon.pk,
        }

        owner_client.post(reverse("tiers:benefit-create"), data)

        benefit = Benefit.objects.get()
        assert (benefit.day_of_month, benefit.weekday, benefit.discount_percent) == (31, None, 90)
        assert (benefit.gift_points, benefit.coupon_template, benefit.birthday_when) == (0, None, "")

    def test_creates_a_birthday_gift(self, owner_client, coupon):
        data = BENEFIT | {
            "kind": "birthday",
            "name": "Birthday",
            "birthday_when": "day",
            "gift_points": "500",
            "coupon_template": coupon.pk,
        }

        owner_client.post(reverse("tiers:benefit-create"), data)

        benefit = Benefit.objects.get()
        assert (benefit.birthday_when, benefit.gift_points, benefit.coupon_template, benefit.discount_percent) == (
            "day",
            500,
            coupon,
            None,
        )

    def test_edits_a_benefit(self, owner_client, gold):
        benefit = Benefit.objects.create(kind="discount", name="Old", discount_percent=98)

        owner_client.post(
            reverse("tiers:benefit-edit", args=[benefit.pk]), BENEFIT | {"tiers": [gold.pk], "is_active": ""}
        )

        benefit.refresh_from_db()
        assert (benefit.name, benefit.discount_percent, benefit.is_active) == ("Gold discount", 95, False)
        assert list(benefit.tiers.all()) == [gold]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"discount_percent": "100"}, "discount_percent"),
            ({"discount_percent": "0"}, "discount_percent"),
            ({"discount_percent": ""}, "discount_percent"),
            ({"discount_percent": "9.5"}, "discount_percent"),
            ({"kind": "points_multiplier", "multiplier_percent": "100"}, "multiplier_percent"),
            ({"kind": "points_multiplier", "multiplier_percent": ""}, "multiplier_percent"),
            ({"kind": "member_day", "discount_percent": "", "multiplier_percent": ""}, "__all__"),
            ({"kind": "member_day", "member_day_by": "day_of_month", "day_of_month": "32"}, "day_of_month"),
            ({"kind": "member_day", "weekday": "7"}, "weekday"),
            ({"kind": "birthday", "discount_percent": ""}, "__all__"),
            ({"kind": "monthly_coupons"}, "coupon_template"),
            ({"kind": "info", "description": " "}, "description"),
            ({"kind": "cashback"}, "kind"),
            ({"name": ""}, "name"),
        ],
    )
    def test_refuses_bad_input_and_saves_nothing(self, owner_client, changes, field):
        response = owner_client.post(reverse("tiers:benefit-create"), BENEFIT | changes)

        assert response.status_code == 200 and field in response.context["form"].errors
        assert not Benefit.objects.exists()

    def test_auditors_cannot_open_or_post_it(self, auditor_client):
        assert auditor_client.get(reverse("tiers:benefit-create")).status_code == 403
        assert auditor_client.post(reverse("tiers:benefit-create"), BENEFIT).status_code == 403
        assert not Benefit.objects.exists()
