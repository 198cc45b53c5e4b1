"""The stored-balance section: liabilities by store, and recharge packages kept by owners and managers."""

from datetime import datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from assets import services
from assets.models import CouponTemplate, RechargePackage
from tests.factories import MemberFactory

FULL_WIDTH_12 = "\uff11\uff12"
PACKAGE = {"name": "Pay 500 get 80", "pay": "500.00", "bonus": "80", "points": "100", "growth": "", "is_active": "on"}


def key() -> str:
    return uuid4().hex


class TestBalanceSection:
    def test_sums_what_members_hold_by_store_with_a_row_for_no_store(self, auditor_client, store, other_store):
        services.balance_top_up(
            member=MemberFactory.create(registered_store=store), amount_fen=10_000, idempotency_key=key()
        )
        services.balance_top_up(
            member=MemberFactory.create(registered_store=store), amount_fen=2_550, idempotency_key=key()
        )
        services.balance_top_up(
            member=MemberFactory.create(registered_store=None), amount_fen=100, idempotency_key=key()
        )
        services.points_earn(
            member=MemberFactory.create(registered_store=other_store), points=70, idempotency_key=key()
        )

        response = auditor_client.get(reverse("assets:balance"))

        lines, total = response.context["lines"], response.context["total"]
        assert [(line.store, line.members, line.balance_fen, line.points) for line in lines] == [
            (store, 2, 12_550, 0),
            (other_store, 0, 0, 70),
            (None, 1, 100, 0),
        ]
        assert (total.members, total.balance_fen, total.points) == (3, 12_650, 70)
        assert "126.50" in response.text and "No store" in response.text

    @pytest.mark.parametrize("client_name", ["owner_client", "manager_client", "auditor_client"])
    def test_opens_for_back_office_roles(self, request, client_name):
        assert request.getfixturevalue(client_name).get(reverse("assets:balance")).status_code == 200

    def test_is_closed_to_cashiers(self, cashier_client):
        assert cashier_client.get(reverse("assets:balance")).status_code == 403

    def test_lists_packages_with_their_window(self, owner_client):
        RechargePackage.objects.create(
            name="Spring",
            pay_fen=50_000,
            bonus_fen=8_000,
            starts_at=datetime(2030, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
            ends_at=datetime(2030, 4, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
        )

        response = owner_client.get(reverse("assets:balance"))

        assert "Spring" in response.text and "¥500.00" in response.text and "2030-03-31" in response.text
        assert "Outside its dates" in response.text


class TestPackagePages:
    def test_manager_creates_a_package_with_coupons_and_a_window(self, manager_client):
        template = CouponTemplate.objects.create(name="Coffee", kind="gift", gift_name="Coffee", valid_days=30)
        data = PACKAGE | {
            "coupon_templates": [template.pk],
            "on_sale_from": "2030-03-01",
            "on_sale_until": "2030-03-31",
        }

        response = manager_client.post(reverse("assets:package-create"), data)

        assert response.status_code == 302
        package = RechargePackage.objects.get()
        assert (package.pay_fen, package.bonus_fen, package.points, package.growth) == (50_000, 8_000, 100, 0)
        assert list(package.coupon_templates.all()) == [template]
        shanghai = ZoneInfo("Asia/Shanghai")
        assert package.starts_at == datetime(2030, 3, 1, tzinfo=shanghai)
        assert package.ends_at == datetime(2030, 4, 1, tzinfo=shanghai)  # the end of the last day

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("pay", FULL_WIDTH_12),
            ("pay", "1e3"),
            ("pay", "-5"),
            ("pay", "0"),
            ("pay", "1.234"),
            ("bonus", "-1"),
            ("points", "1.5"),
            ("points", FULL_WIDTH_12),
            ("on_sale_until", "2020-01-01"),
        ],
    )
    def test_refuses_bad_input_and_saves_nothing(self, owner_client, field, value):
        data = PACKAGE | {"on_sale_from": "2030-01-01", field: value}

        response = owner_client.post(reverse("assets:package-create"), data)

        assert response.status_code == 200 and field in response.context["form"].errors
        assert not RechargePackage.objects.exists()

    def test_edits_a_package(self, owner_client):
        package = RechargePackage.objects.create(name="Old", pay_fen=100, bonus_fen=0)

        owner_client.post(reverse("assets:package-edit", args=[package.pk]), PACKAGE | {"is_active": ""})

        package.refresh_from_db()
        assert (package.name, package.pay_fen, package.is_active) == ("Pay 500 get 80", 50_000, False)

    def test_the_edit_form_shows_yuan_and_the_last_day(self, owner_client):
        package = RechargePackage.objects.create(
            name="Old", pay_fen=12_345, ends_at=datetime(2030, 4, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
        )

        response = owner_client.get(reverse("assets:package-edit", args=[package.pk]))

        assert 'value="123.45"' in response.text and 'value="2030-03-31"' in response.text

    def test_auditors_and_cashiers_cannot_change_packages(self, auditor_client, cashier_client):
        assert auditor_client.get(reverse("assets:package-create")).status_code == 403
        assert auditor_client.post(reverse("assets:package-create"), PACKAGE).status_code == 403
        assert cashier_client.post(reverse("assets:package-create"), PACKAGE).status_code == 403
        assert not RechargePackage.objects.exists()
