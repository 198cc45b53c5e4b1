"""The coupons section: templates with every rule checked on the form, and issuing to a member list."""

from uuid import uuid4

import pytest
from django.urls import reverse

from assets import services
from assets.models import Coupon, CouponIssueBatch, CouponTemplate
from members.models import Member
from tests.factories import MemberFactory

FULL_WIDTH_12 = "\uff11\uff12"
CASH_OFF = {
    "name": "¥20 off ¥100",
    "kind": "cash_off",
    "value": "20",
    "threshold": "100.00",
    "validity": "relative",
    "valid_days": "30",
    "is_active": "on",
}


def key() -> str:
    return uuid4().hex


def template(**overrides: object) -> CouponTemplate:
    fields = {"name": "¥10 off", "kind": "cash_off", "value_fen": 1_000, "valid_days": 30}
    return CouponTemplate.objects.create(**(fields | overrides))


class TestCouponList:
    def test_shows_issued_stock_used_and_the_redemption_rate(self, auditor_client):
        coupon_template = template(stock=10)
        member = MemberFactory.create()
        coupons = [
            services.coupon_issue(template=coupon_template, member=member, idempotency_key=key()) for _ in "abcd"
        ]
        services.coupon_redeem(coupon=coupons[0], member=coupons[0].member, idempotency_key=key(), external_ref="ORD-9")

        response = auditor_client.get(reverse("assets:coupons"))

        [row] = response.context["templates"]
        assert (row.issued, row.stock, row.used) == (4, 10, 1)
        assert "4 / 10" in response.text and "25.0%" in response.text

    @pytest.mark.parametrize("client_name", ["owner_client", "manager_client", "auditor_client"])
    def test_opens_for_back_office_roles(self, request, client_name):
        assert request.getfixturevalue(client_name).get(reverse("assets:coupons")).status_code == 200

    def test_costs_the_same_queries_for_more_templates(self, owner_client, store, django_assert_max_num_queries):
        for n in range(5):
            template(name=f"T{n}").stores.set([store])
        owner_client.get(reverse("assets:coupons"))  # warm the session and the staff lookup

        with django_assert_max_num_queries(8):
            owner_client.get(reverse("assets:coupons"))

    def test_is_closed_to_cashiers(self, cashier_client):
        assert cashier_client.get(reverse("assets:coupons")).status_code == 403


class TestTemplatePages:
    def test_creates_a_cash_off_coupon_for_some_stores(self, manager_client, store):
        response = manager_client.post(reverse("assets:template-create"), CASH_OFF | {"stores": [store.pk]})

        assert response.status_code == 302
        saved = CouponTemplate.objects.get()
        assert (saved.kind, saved.value_fen, saved.threshold_fen, saved.valid_days) == ("cash_off", 2_000, 10_000, 30)
        assert list(saved.stores.all()) == [store]

    def test_creates_a_percentage_coupon_and_clears_what_it_does_not_use(self, owner_client):
        data = CASH_OFF | {"kind": "percent", "percent_of_price": "85", "cap": "30", "threshold": ""}

        owner_client.post(reverse("assets:template-create"), data)

        saved = CouponTemplate.objects.get()
        assert (saved.percent_of_price, saved.cap_fen, saved.value_fen, saved.threshold_fen) == (85, 3_000, 0, 0)

    def test_creates_a_gift_with_fixed_dates(self, owner_client):
        data = CASH_OFF | {"kind": "gift", "gift_name": "Coffee", "validity": "fixed", "valid_until": "2099-12-31"}

        owner_client.post(reverse("assets:template-create"), data)

        saved = CouponTemplate.objects.get()
        assert (saved.gift_name, saved.valid_until.isoformat(), saved.valid_days) == ("Coffee", "2099-12-31", None)

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"value": ""}, "value"),
            ({"value": "0"}, "value"),
            ({"value": FULL_WIDTH_12}, "value"),
            ({"value": "1e3"}, "value"),
            ({"value": "-5"}, "value"),
            ({"value": "1.234"}, "value"),
            ({"threshold": "10"}, "threshold"),
            ({"kind": "percent", "percent_of_price": ""}, "percent_of_price"),
            ({"kind": "percent", "percent_of_price": "0"}, "percent_of_price"),
            ({"kind": "percent", "percent_of_price": "100"}, "percent_of_price"),
            ({"kind": "gift", "gift_name": " "}, "gift_name"),
            ({"validity": "fixed"}, "valid_until"),
            ({"validity": "fixed", "valid_from": "2099-02-01", "valid_until": "2099-01-01"}, "valid_until"),
            ({"validity": "fixed", "valid_until": "2020-01-01"}, "valid_until"),
            ({"valid_days": ""}, "valid_days"),
            ({"valid_days": "0"}, "valid_days"),
            ({"stock": "-1"}, "stock"),
            ({"per_member_limit": "0"}, "per_member_limit"),
            ({"name": ""}, "name"),
        ],
    )
    def test_refuses_what_the_database_would_refuse_with_a_form_error(self, owner_client, changes, field):
        response = owner_client.post(reverse("assets:template-create"), CASH_OFF | changes)

        assert response.status_code == 200 and field in response.context["form"].errors
        assert not CouponTemplate.objects.exists()

    def test_after_issuing_the_worth_is_fixed_but_the_rest_can_change(self, owner_client):
        coupon_template = template(stock=5)
        services.coupon_issue(template=coupon_template, member=MemberFactory.create(), idempotency_key=key())

        response = owner_client.post(
            reverse("assets:template-edit", args=[coupon_template.pk]),
            CASH_OFF | {"name": "Renamed", "value": "99", "stock": "8", "is_active": ""},
        )

        assert response.status_code == 302
        coupon_template.refresh_from_db()
        assert (coupon_template.name, coupon_template.value_fen, coupon_template.stock) == ("Renamed", 1_000, 8)
        assert (coupon_template.issued, coupon_template.is_active) == (1, False)

    def test_refuses_a_stock_below_what_was_issued(self, owner_client):
        coupon_template = template(stock=5)
        for _ in range(2):
            services.coupon_issue(template=coupon_template, member=MemberFactory.create(), idempotency_key=key())

        response = owner_client.post(
            reverse("assets:template-edit", args=[coupon_template.pk]), CASH_OFF | {"stock": "1"}
        )

        assert "stock" in response.context["form"].errors
        coupon_template.refresh_from_db()
        assert coupon_template.stock == 5

    def test_auditors_cannot_create_or_edit(self, auditor_client):
        assert auditor_client.get(reverse("assets:template-create")).status_code == 403
        assert auditor_client.post(reverse("assets:template-create"), CASH_OFF).status_code == 403
        assert not CouponTemplate.objects.exists()


class TestIssueToMembers:
    def test_counts_the_active_members_the_filters_choose(self, manager_client, store, other_store):
        MemberFactory.create_batch(3, registered_store=store)
        MemberFactory.create(registered_store=store, status=Member.Status.FROZEN)
        MemberFactory.create(registered_store=other_store)
        template()

        response = manager_client.get(reverse("assets:coupon-batch-new"), {"store": store.pk})

        assert response.status_code == 200 and response.context["count"] == 3
        assert "Issue to 3 members" in response.text

    def test_the_count_follows_the_filters_over_htmx(self, manager_client, store):
        MemberFactory.create_batch(2, registered_store=store)

        response = manager_client.get(
            reverse("assets:coupon-batch-new"), {"store": store.pk, "q": "nobody"}, headers={"HX-Request": "true"}
        )

        assert response.context["count"] == 0 and "<html" not in response.text

    def test_issues_to_every_chosen_member_and_reports_progress(
        self, manager_client, store, django_capture_on_commit_callbacks
    ):
        members = MemberFactory.create_batch(3, registered_store=store)
        MemberFactory.create()  # another store's member is not chosen
        coupon_template = template(stock=2)

        with django_capture_on_commit_callbacks(execute=True):
            response = manager_client.post(
                reverse("assets:coupon-batch-new"),
                {"store": store.pk, "template": coupon_template.pk, "idempotency_key": "batch-key-000000001"},
            )

        batch = CouponIssueBatch.objects.get()
        assert response.status_code == 302 and response["Location"] == reverse("assets:coupon-batch", args=[batch.pk])
        assert batch.filters == {"store": store.pk}
        batch.refresh_from_db()
        assert (batch.status, batch.total, batch.issued, batch.skipped) == ("done", 3, 2, 1)  # the stock ran out
        assert Coupon.objects.filter(member__in=members).count() == 2
        page = manager_client.get(response["Location"])
        assert "2 of 3 members" not in page.text and "3 of 3 members" in page.text

    def test_a_double_submit_starts_one_batch(self, manager_client, store, django_capture_on_commit_callbacks):
        MemberFactory.create_batch(2, registered_store=store)
        data = {"store": store.pk, "template": template().pk, "idempotency_key": "batch-key-000000002"}

        with django_capture_on_commit_callbacks(execute=True):
            first = manager_client.post(reverse("assets:coupon-batch-new"), data)
            second = manager_client.post(reverse("assets:coupon-batch-new"), data)

        assert first["Location"] == second["Location"]
        assert CouponIssueBatch.objects.count() == 1 and Coupon.objects.count() == 2

    def test_the_progress_polls_while_the_job_runs_and_refreshes_when_it_is_done(self, manager_client, manager):
        batch = CouponIssueBatch.objects.create(template=template(), total=10, issued=4, created_by=manager.user)
        url = reverse("assets:coupon-batch-status", args=[batch.pk])

        running = manager_client.get(url, headers={"HX-Request": "true"})
        CouponIssueBatch.objects.filter(pk=batch.pk).update(status="done", issued=10)
        finished = manager_client.get(url, headers={"HX-Request": "true"})

        assert 'hx-trigger="every 1500ms"' in running.text and "4 of 10 members" in running.text
        assert finished["HX-Refresh"] == "true"

    def test_a_filter_that_does_not_parse_starts_nothing(self, manager_client):
        response = manager_client.post(
            reverse("assets:coupon-batch-new"), {"registered_from": "yesterday", "template": template().pk}
        )

        assert response.status_code == 200 and not CouponIssueBatch.objects.exists()

    def test_the_member_list_links_to_it_with_its_filters(self, manager_client, store):
        response = manager_client.get(reverse("members:index"), {"status": "active"})

        assert reverse("assets:coupon-batch-new") + "?status=active" in response.text

    def test_auditors_and_cashiers_cannot_issue(self, auditor_client, cashier_client):
        assert auditor_client.get(reverse("assets:coupon-batch-new")).status_code == 403
        assert cashier_client.get(reverse("assets:coupon-batch-new")).status_code == 403
        assert auditor_client.post(reverse("assets:coupon-batch-new"), {"template": template().pk}).status_code == 403
        assert not CouponIssueBatch.objects.exists()
