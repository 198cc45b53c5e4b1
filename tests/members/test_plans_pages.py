"""Owners and managers keep the paid plans: price in yuan, duration, on sale."""

import pytest
from django.urls import reverse

from members.forms import yuan_to_fen
from members.models import PaidPlan

FULL_WIDTH_12 = "\uff11\uff12"  # twelve in full-width digits, as a Chinese keyboard may type it
PLAN = {"name": "Gold", "price": "299.00", "duration": "year", "is_active": "on", "description": ""}


class TestYuanToFen:
    @pytest.mark.parametrize(("text", "fen"), [("299.00", 29_900), ("299", 29_900), ("0.5", 50), ("12.34", 1_234)])
    def test_converts_yuan_text_to_fen(self, text, fen):
        assert yuan_to_fen(text) == fen

    @pytest.mark.parametrize("text", [FULL_WIDTH_12, "1e3", "+12", "-1", "1.234", "", "1,000", "12.", ".5", "NaN"])
    def test_refuses_anything_else(self, text):
        with pytest.raises(ValueError):
            yuan_to_fen(text)


class TestPlanPages:
    def test_owner_creates_a_plan(self, owner_client):
        response = owner_client.post(reverse("members:plan-create"), PLAN)

        assert response.status_code == 302
        plan = PaidPlan.objects.get()
        assert (plan.name, plan.price_fen, plan.duration, plan.is_active) == ("Gold", 29_900, "year", True)

    @pytest.mark.parametrize("price", [FULL_WIDTH_12, "1e3", "+12", "-5", "1.999"])
    def test_refuses_a_bad_price_and_saves_nothing(self, manager_client, price):
        response = manager_client.post(reverse("members:plan-create"), PLAN | {"price": price})

        assert response.status_code == 200 and "price" in response.context["form"].errors
        assert not PaidPlan.objects.exists()

    def test_manager_edits_a_plan(self, manager_client):
        plan = PaidPlan.objects.create(name="Gold", price_fen=100, duration="month")

        manager_client.post(reverse("members:plan-edit", args=[plan.pk]), PLAN | {"is_active": ""})

        plan.refresh_from_db()
        assert (plan.price_fen, plan.is_active, plan.duration) == (29_900, False, "year")

    def test_list_shows_price_in_yuan_and_current_members(self, owner_client):
        PaidPlan.objects.create(name="Gold", price_fen=29_900, duration="year")

        response = owner_client.get(reverse("members:plan-list"))

        assert "¥299.00" in response.text and "Gold" in response.text

    def test_cashiers_cannot_see_or_change_plans(self, cashier_client):
        assert cashier_client.get(reverse("members:plan-list")).status_code == 403
        assert cashier_client.post(reverse("members:plan-create"), PLAN).status_code == 403

    def test_auditors_read_but_cannot_change(self, auditor_client):
        assert auditor_client.get(reverse("members:plan-list")).status_code == 200
        assert auditor_client.post(reverse("members:plan-create"), PLAN).status_code == 403
        assert not PaidPlan.objects.exists()
