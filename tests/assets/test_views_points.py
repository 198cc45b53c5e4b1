"""The points section: the rules owners and managers set, outstanding points and what expires soon."""

from datetime import datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from assets import services
from assets.models import LoyaltySettings
from tests.factories import MemberFactory

FULL_WIDTH_12 = "\uff11\uff12"
RULES = {
    "points_expiry": "days",
    "points_expiry_days": "180",
    "points_per_yuan": "2",
    "points_per_yuan_offset": "50",
    "points_offset_max_percent": "30",
    "points_offset_min": "200",
    "refund_approval": "300.00",
}


def key() -> str:
    return uuid4().hex


def rules() -> LoyaltySettings:
    return LoyaltySettings.objects.get(pk=1)


class TestPointsSection:
    def test_manager_changes_the_rules(self, manager_client):
        response = manager_client.post(reverse("assets:points"), RULES)

        assert response.status_code == 302
        saved = rules()
        assert (saved.points_expiry, saved.points_expiry_days, saved.points_per_yuan) == ("days", 180, 2)
        assert (saved.points_per_yuan_offset, saved.points_offset_max_percent) == (50, 30)
        assert (saved.points_offset_min, saved.refund_approval_fen, saved.balance_payments_earn) == (200, 30_000, False)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("points_per_yuan", FULL_WIDTH_12),
            ("points_per_yuan", "1e3"),
            ("points_per_yuan", "-1"),
            ("points_per_yuan_offset", "0"),
            ("points_offset_max_percent", "101"),
            ("points_offset_max_percent", "12.5"),
            ("points_expiry_days", ""),
            ("points_expiry_days", "0"),
        ],
    )
    def test_refuses_bad_rules_and_keeps_the_old_ones(self, owner_client, field, value):
        response = owner_client.post(reverse("assets:points"), RULES | {field: value})

        assert response.status_code == 200 and field in response.context["form"].errors
        assert rules().points_expiry == "end_of_next_year"

    def test_days_are_not_needed_when_points_never_expire(self, owner_client):
        owner_client.post(reverse("assets:points"), RULES | {"points_expiry": "never", "points_expiry_days": ""})

        assert (rules().points_expiry, rules().points_expiry_days) == ("never", 365)

    def test_auditors_read_the_rules_but_cannot_change_them(self, auditor_client):
        page = auditor_client.get(reverse("assets:points"))
        post = auditor_client.post(reverse("assets:points"), RULES)

        assert page.status_code == 200 and "Read only" in page.text and "disabled" in page.text
        assert post.status_code == 403 and rules().points_expiry == "end_of_next_year"

    def test_is_closed_to_cashiers(self, cashier_client):
        assert cashier_client.get(reverse("assets:points")).status_code == 403

    def test_shows_outstanding_points_and_what_expires_within_30_days(self, owner_client):
        shanghai = ZoneInfo("Asia/Shanghai")
        with time_machine.travel(datetime(2026, 3, 1, 10, tzinfo=shanghai), tick=False):
            soon, later = MemberFactory.create(), MemberFactory.create()
            services.points_earn(member=soon, points=40, idempotency_key=key(), expiry="days", expiry_days=10)
            services.points_earn(member=later, points=60, idempotency_key=key(), expiry="days", expiry_days=90)

            response = owner_client.get(reverse("assets:points"))

        assert (response.context["outstanding"], response.context["expiring_points"]) == (100, 40)
        assert response.context["expiring_members"] == 1
        [day] = response.context["expiring_days"]
        assert (day.last_valid_date.isoformat(), day.points) == ("2026-03-11", 40)
