"""The qualification rules page: auditors read it, owners and managers change it after a preview of who
would move, and bad input changes nothing."""

from datetime import datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from assets import services as assets_services
from tests.factories import MemberFactory
from tiers import services
from tiers.models import MemberTier, Tier, TierChange, TierRules

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = {
    "mode": "cumulative",
    "window_months": "12",
    "evaluation_day": "1",
    "upgrade_timing": "realtime",
    "downgrade": "none",
    "hold_months": "0",
    "growth_per_yuan": "1",
    "growth_per_yuan_top_up": "0",
    "growth_profile_complete": "0",
}


@pytest.fixture
def ladder(db) -> tuple[Tier, Tier, Tier]:
    base = Tier.objects.get(rank=0)
    base.name = "Member"
    base.save()
    silver = Tier.objects.create(name="Silver", rank=1, threshold=100)
    gold = Tier.objects.create(name="Gold", rank=2, threshold=500)
    return base, silver, gold


def rules_now() -> dict[str, object]:
    rules = services.tier_rules()
    return {name: getattr(rules, name) for name in RULES}


def written() -> tuple[int, list[tuple[int, int]], dict[str, object]]:
    placed = list(MemberTier.objects.order_by("member_id").values_list("member_id", "tier_id"))
    return TierChange.objects.count(), placed, rules_now()


class TestRulesPage:
    @pytest.mark.parametrize("client_name", ["owner_client", "manager_client"])
    def test_owners_and_managers_get_the_form(self, request, client_name, ladder):
        response = request.getfixturevalue(client_name).get(reverse("tiers:rules"))

        assert response.status_code == 200 and 'id="preview-button"' in response.text

    def test_auditors_read_it_with_every_field_disabled(self, auditor_client, ladder):
        response = auditor_client.get(reverse("tiers:rules"))

        assert response.status_code == 200 and "Read only" in response.text
        assert all(field.disabled for field in response.context["form"].fields.values())
        assert 'id="preview-button"' not in response.text

    def test_auditors_cannot_post_it(self, auditor_client, ladder):
        before = rules_now()

        response = auditor_client.post(reverse("tiers:rules"), RULES | {"mode": "rolling", "confirmed": "1"})

        assert response.status_code == 403 and rules_now() == before

    def test_is_closed_to_cashiers(self, cashier_client, ladder):
        assert cashier_client.get(reverse("tiers:rules")).status_code == 403

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("evaluation_day", "29"),
            ("evaluation_day", "0"),
            ("window_months", "0"),
            ("window_months", "1e3"),
            ("hold_months", "-1"),
            ("growth_per_yuan", "1.5"),
            ("growth_per_yuan", "\uff11"),
            ("mode", "weekly"),
            ("downgrade", ""),
        ],
    )
    def test_refuses_bad_input_and_changes_nothing(self, manager_client, ladder, field, value):
        before = written()

        response = manager_client.post(reverse("tiers:rules"), RULES | {field: value, "confirmed": "1"})

        assert response.status_code == 200 and field in response.context["form"].errors
        assert response.context["preview"] is None and written() == before

    def test_says_which_days_an_evaluation_may_fall_on(self, manager_client, ladder):
        response = manager_client.post(reverse("tiers:rules"), RULES | {"evaluation_day": "31"})

        assert response.context["form"].errors["evaluation_day"] == ["Enter a number from 1 to 28."]


class TestRulesPreview:
    @time_machine.travel(datetime(2026, 6, 10, 12, tzinfo=SHANGHAI), tick=False)
    def test_switching_to_a_rolling_window_shows_the_downgrades_at_the_next_evaluation(
        self, manager_client, ladder, django_capture_on_commit_callbacks
    ):
        with time_machine.travel(datetime(2025, 1, 5, 12, tzinfo=SHANGHAI), tick=False):
            member = MemberFactory.create()
            assets_services.growth_add(member=member, amount=600, idempotency_key=uuid4().hex)
            services.tiers_recalculate(business_date=datetime(2025, 1, 5, tzinfo=SHANGHAI).date())
        recent = MemberFactory.create()
        assets_services.growth_add(member=recent, amount=600, idempotency_key=uuid4().hex)
        services.tiers_recalculate(business_date=datetime(2026, 6, 10, tzinfo=SHANGHAI).date())
        before = written()
        data = RULES | {"mode": "rolling", "downgrade": "qualified"}

        with django_capture_on_commit_callbacks(execute=True):  # the worker runs the simulation at once
            response = manager_client.post(reverse("tiers:rules"), data)

        preview = response.context["preview"]
        simulation = manager_client.get(reverse("tiers:simulation", args=[preview.simulation.pk]))
        assert str(preview.simulation.evaluation_day) == "2026-07-01"
        assert [(m.source.name, m.target.name, m.count) for m in simulation.context["moves"]] == [("Gold", "Member", 1)]
        assert "1 member from Gold to Member" in simulation.text
        assert "At the evaluation of 2026-07-01" in simulation.text
        assert (
            "Qualification",
            "Cumulative (lifetime growth value)",
            "Rolling window (growth value of the last months)",
        ) in (preview.changes)
        assert written() == before

    def test_save_after_the_preview_changes_the_rules_with_an_audit_record(self, manager_client, manager, ladder):
        data = RULES | {"mode": "rolling", "window_months": "6", "evaluation_day": "15", "downgrade": "one_step"}
        preview = manager_client.post(reverse("tiers:rules"), data)

        response = manager_client.post(
            reverse("tiers:rules"), data | {"confirmed": "1", "based_on": preview.context["form"]["based_on"].value()}
        )

        assert response.status_code == 302
        rules = services.tier_rules()
        assert (rules.mode, rules.window_months, rules.evaluation_day, rules.downgrade) == (
            "rolling",
            6,
            15,
            "one_step",
        )
        event = rules.events.select_related("pgh_context").order_by("-pgh_id").first()  # type: ignore[attr-defined]
        assert event.pgh_context.metadata["user"] == manager.user.pk
        assert event.pgh_context.metadata["action"] == "tier_rules_save"

    def test_a_confirmation_without_the_current_preview_is_previewed_again(self, manager_client, ladder):
        before = written()

        response = manager_client.post(reverse("tiers:rules"), RULES | {"mode": "rolling", "confirmed": "1"})

        assert response.context["preview"].stale and written() == before

    def test_growth_rates_move_nobody_and_evaluate_nobody(self, manager_client, ladder, monkeypatch):
        monkeypatch.setattr(services, "tiers_simulate", lambda **kw: pytest.fail("simulated"))

        response = manager_client.post(reverse("tiers:rules"), RULES | {"growth_per_yuan": "2"})

        preview = response.context["preview"]
        assert preview.simulation is None and preview.changes == [("Growth value per yuan paid", "1", "2")]
        assert "This change moves nobody today" in response.text
        assert TierRules.objects.get().growth_per_yuan == 1
