"""The member page's balance, points and coupons tabs: figures after real ledger work, and the manager's
adjustments, coupon issues and voids with their reasons, confirmations and idempotency keys."""

from datetime import datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from assets import services
from assets.models import Account, Coupon, CouponTemplate, LedgerTransaction, RechargePackage
from members import services as members_services
from members.models import Member
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
FULL_WIDTH_12 = "\uff11\uff12"
BAD_AMOUNTS = [FULL_WIDTH_12, "1e3", "-5", "0", "1.234", "+12", "1_000", ""]
HTMX = {"HX-Request": "true"}


def key() -> str:
    return uuid4().hex


def balance(member: Member, asset: str) -> int:
    account = Account.objects.filter(member=member, asset=asset).first()
    return account.balance if account else 0


def tab_url(member: Member, tab: str, **query: object) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return reverse("members:member-detail", args=[member.member_no]) + f"?tab={tab}{extra}"


def adjust_url(member: Member) -> str:
    return reverse("assets:balance-adjust", args=[member.member_no])


def points_url(member: Member) -> str:
    return reverse("assets:points-adjust", args=[member.member_no])


def cash_off(**overrides: object) -> CouponTemplate:
    fields = {"name": "¥10 off", "kind": "cash_off", "value_fen": 1_000, "threshold_fen": 5_000, "valid_days": 30}
    return CouponTemplate.objects.create(**(fields | overrides))


@pytest.fixture
def member(store) -> Member:
    return MemberFactory.create(registered_store=store, name="王小明")


@pytest.fixture
def funded(member) -> Member:
    """100.00 paid in with a package giving 20.00 bonus, then 30.00 paid with the balance."""
    package = RechargePackage.objects.create(name="Pay 100 get 20", pay_fen=10_000, bonus_fen=2_000)
    services.balance_top_up(member=member, package=package, idempotency_key=key())
    services.balance_spend(member=member, amount_fen=3_000, idempotency_key=key(), external_ref="ORD-1")
    return member


class TestBalanceTab:
    def test_shows_principal_bonus_and_what_was_topped_up_and_spent(self, owner_client, funded):
        response = owner_client.get(tab_url(funded, "balance"), headers=HTMX)

        figures = response.context["balance"]
        # 30.00 from 100.00 principal + 20.00 bonus: the bonus part is 30.00 * 20 / 120 = 5.00
        assert (figures.principal_fen, figures.bonus_fen, figures.total_fen) == (7_500, 1_500, 9_000)
        assert (figures.top_up_fen, figures.spend_fen) == (10_000, 3_000)
        assert "¥75.00" in response.text and "¥15.00" in response.text and "¥90.00" in response.text

    def test_lists_the_ledger_newest_first_with_the_balance_after_each_line(self, owner_client, funded):
        response = owner_client.get(tab_url(funded, "balance"), headers=HTMX)

        lines = list(response.context["ledger"])
        assert [line.transaction.kind for line in lines] == ["balance_spend", "top_up"]
        assert [line.changes for line in lines] == [(-2_500, -500), (10_000, 2_000)]
        assert [line.total_after for line in lines] == [9_000, 12_000]
        assert "ORD-1" in response.text and "Balance payment" in response.text

    def test_pages_the_ledger_twenty_lines_at_a_time(self, owner_client, member):
        for _ in range(23):
            services.balance_top_up(member=member, amount_fen=100, idempotency_key=key())

        first = owner_client.get(tab_url(member, "balance"), headers=HTMX)
        second = owner_client.get(tab_url(member, "balance", page=2), headers=HTMX)

        assert len(first.context["ledger"]) == 20 and len(second.context["ledger"]) == 3
        assert [line.total_after for line in second.context["ledger"]] == [300, 200, 100]

    def test_managers_get_the_adjust_form(self, manager_client, funded):
        response = manager_client.get(tab_url(funded, "balance"), headers=HTMX)

        assert response.context["adjust_form"] is not None and 'id="balance-adjust"' in response.text

    def test_cashiers_of_the_store_read_it_without_the_adjust_form(self, cashier_client, funded):
        response = cashier_client.get(tab_url(funded, "balance"), headers=HTMX)

        assert response.status_code == 200
        assert response.context["adjust_form"] is None and 'id="balance-adjust"' not in response.text

    def test_cashiers_of_another_store_do_not_find_the_member(self, cashier_client, other_store):
        stranger = MemberFactory.create(registered_store=other_store)

        assert cashier_client.get(tab_url(stranger, "balance")).status_code == 404

    def test_auditors_read_it_without_the_adjust_form(self, auditor_client, funded):
        response = auditor_client.get(tab_url(funded, "balance"))

        assert response.status_code == 200 and response.context["adjust_form"] is None

    def test_the_full_page_opens_on_the_tab(self, owner_client, funded):
        response = owner_client.get(tab_url(funded, "balance"))

        assert response.status_code == 200 and "<html" in response.text and "¥90.00" in response.text


def adjust(client, member, **fields: object):
    data = {"asset": "bonus", "direction": "deduct", "amount": "12.00", "reason": "Goodwill corrected"}
    return client.post(adjust_url(member), {"idempotency_key": key()} | data | fields)


class TestBalanceAdjust:
    def test_review_restates_the_adjustment_and_changes_nothing(self, manager_client, funded):
        response = adjust(manager_client, funded)

        assert response.status_code == 200 and response.context["confirming"]
        assert "<html" in response.text  # without htmx the step is a page of its own
        assert "Deduct ¥12.00 from the bonus of member 王小明" in response.text
        assert "Goodwill corrected" in response.text
        assert balance(funded, "bonus") == 1_500

    def test_confirming_adjusts_and_goes_back_to_the_tab(self, manager_client, funded, manager):
        response = adjust(manager_client, funded, confirmed="1")

        assert response.status_code == 302 and response["Location"] == tab_url(funded, "balance")
        assert balance(funded, "bonus") == 1_500 - 1_200
        tx = LedgerTransaction.objects.get(kind="balance_adjust")
        assert (tx.reason, tx.staff, tx.amount) == ("Goodwill corrected", manager, 1_200)

    def test_adds_to_principal(self, owner_client, funded):
        adjust(owner_client, funded, asset="principal", direction="add", amount="0.5", confirmed="1")

        assert balance(funded, "principal") == 7_550

    def test_a_double_submit_with_the_same_key_adjusts_once(self, manager_client, funded):
        same = key()

        first = adjust(manager_client, funded, idempotency_key=same, confirmed="1")
        again = adjust(manager_client, funded, idempotency_key=same, confirmed="1")

        assert first.status_code == again.status_code == 302
        assert balance(funded, "bonus") == 300
        assert LedgerTransaction.objects.filter(kind="balance_adjust").count() == 1

    @pytest.mark.parametrize("amount", BAD_AMOUNTS)
    def test_refuses_a_bad_amount_and_changes_nothing(self, manager_client, funded, amount):
        response = adjust(manager_client, funded, amount=amount, confirmed="1")

        assert response.status_code == 200 and "amount" in response.context["form"].errors
        assert not LedgerTransaction.objects.filter(kind="balance_adjust").exists()

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_requires_a_reason(self, manager_client, funded, reason):
        response = adjust(manager_client, funded, reason=reason, confirmed="1")

        assert "reason" in response.context["form"].errors
        assert balance(funded, "bonus") == 1_500

    def test_review_refuses_deducting_more_than_is_held(self, manager_client, funded):
        response = adjust(manager_client, funded, amount="15.01")

        assert not response.context["confirming"]
        assert "The bonus balance is only ¥15.00." in response.context["form"].errors["amount"]

    def test_a_refusal_by_the_ledger_is_shown_and_the_next_try_gets_a_new_key(self, manager_client, funded):
        posted = key()

        response = adjust(manager_client, funded, amount="99.00", idempotency_key=posted, confirmed="1")

        form = response.context["form"]
        assert response.status_code == 200 and "less than ¥99.00" in " ".join(form.non_field_errors())
        assert form["idempotency_key"].value() != posted and not response.context["confirming"]
        assert balance(funded, "bonus") == 1_500

    def test_change_goes_back_to_the_form_with_the_same_key(self, manager_client, funded):
        posted = key()

        response = adjust(manager_client, funded, idempotency_key=posted, edit="1")

        assert not response.context["confirming"] and response.context["form"]["idempotency_key"].value() == posted

    def test_htmx_gets_the_fragment_and_a_client_redirect(self, manager_client, funded):
        review = manager_client.post(
            adjust_url(funded),
            {"idempotency_key": key(), "asset": "bonus", "direction": "add", "amount": "1", "reason": "r"},
            headers=HTMX,
        )
        done = manager_client.post(
            adjust_url(funded),
            {
                "idempotency_key": key(),
                "asset": "bonus",
                "direction": "add",
                "amount": "1",
                "reason": "r",
                "confirmed": "1",
            },
            headers=HTMX,
        )

        assert "<html" not in review.text and 'name="confirmed"' in review.text
        assert done.status_code == 200 and done["HX-Redirect"] == tab_url(funded, "balance")

    @pytest.mark.parametrize("client_name", ["cashier_client", "auditor_client"])
    def test_cashiers_and_auditors_cannot_adjust(self, request, funded, client_name):
        response = adjust(request.getfixturevalue(client_name), funded, confirmed="1")

        assert response.status_code == 403
        assert balance(funded, "bonus") == 1_500


class TestPointsTab:
    def test_shows_points_lots_and_their_last_valid_day(self, owner_client, member):
        with time_machine.travel(datetime(2026, 3, 5, 10, tzinfo=SHANGHAI), tick=False):
            services.points_earn(member=member, points=500, idempotency_key=key())
            services.points_spend(member=member, points=120, idempotency_key=key())

            response = owner_client.get(tab_url(member, "points"), headers=HTMX)

        figures = response.context["points"]
        assert (figures.available, figures.earned, figures.spent, figures.expired, figures.debt) == (
            380,
            500,
            120,
            0,
            0,
        )
        [lot] = response.context["lots"]
        assert (lot.remaining, lot.original) == (380, 500)
        assert "2027-12-31" in response.text  # earned in 2026: valid to the end of the following year

    def test_a_lot_that_never_expires_says_so(self, owner_client, member):
        services.points_earn(member=member, points=10, idempotency_key=key(), expiry="never")

        response = owner_client.get(tab_url(member, "points"), headers=HTMX)

        assert "never expires" in response.text

    def test_shows_a_points_debt(self, owner_client, member):
        earning = services.points_earn(member=member, points=100, idempotency_key=key())
        services.points_spend(member=member, points=100, idempotency_key=key())
        services.points_claw_back(earn=earning, idempotency_key=key())

        response = owner_client.get(tab_url(member, "points"), headers=HTMX)

        assert response.context["points"].debt == 100 and response.context["shows_debt"]
        assert "owes 100 points" in response.text


def adjust_points(client, member, **fields: object):
    data = {"idempotency_key": key(), "direction": "add", "points": "250", "reason": "Lost receipt"}
    return client.post(points_url(member), data | fields)


class TestPointsAdjust:
    def test_review_then_confirm_adds_points(self, manager_client, member):
        review = adjust_points(manager_client, member)
        done = adjust_points(manager_client, member, confirmed="1")

        assert "Add 250 points to member 王小明" in review.text
        assert done.status_code == 302 and balance(member, "points") == 250

    def test_deducts_from_what_the_member_has(self, owner_client, member):
        services.points_earn(member=member, points=300, idempotency_key=key())

        adjust_points(owner_client, member, direction="deduct", points="100", confirmed="1")

        assert balance(member, "points") == 200

    def test_review_refuses_deducting_more_than_the_member_has(self, owner_client, member):
        response = adjust_points(owner_client, member, direction="deduct", points="1")

        assert "The member has only 0 points." in response.context["form"].errors["points"]

    @pytest.mark.parametrize("points", [FULL_WIDTH_12, "1e3", "-5", "0", "1.5", "+3", ""])
    def test_refuses_bad_points_and_changes_nothing(self, manager_client, member, points):
        response = adjust_points(manager_client, member, points=points, confirmed="1")

        assert response.status_code == 200 and "points" in response.context["form"].errors
        assert not LedgerTransaction.objects.filter(kind="points_adjust").exists()

    def test_requires_a_reason(self, manager_client, member):
        response = adjust_points(manager_client, member, reason=" ", confirmed="1")

        assert "reason" in response.context["form"].errors and balance(member, "points") == 0

    def test_a_double_submit_with_the_same_key_adds_once(self, manager_client, member):
        same = key()

        adjust_points(manager_client, member, idempotency_key=same, confirmed="1")
        adjust_points(manager_client, member, idempotency_key=same, confirmed="1")

        assert balance(member, "points") == 250

    def test_auditors_cannot_adjust(self, auditor_client, member):
        assert adjust_points(auditor_client, member, confirmed="1").status_code == 403
        assert balance(member, "points") == 0


class TestCouponsTab:
    def test_lists_the_members_coupons_with_their_status(self, owner_client, member):
        coupon = services.coupon_issue(template=cash_off(), member=member, idempotency_key=key())

        response = owner_client.get(tab_url(member, "coupons"), headers=HTMX)

        assert coupon.code in response.text and "Available" in response.text
        assert "¥10.00 off orders from ¥50.00" in response.text

    def test_issues_a_coupon(self, manager_client, member, manager):
        template = cash_off()

        response = manager_client.post(
            reverse("assets:coupon-issue", args=[member.member_no]), {"idempotency_key": key(), "template": template.pk}
        )

        assert response.status_code == 302
        coupon = Coupon.objects.get(member=member)
        assert (coupon.template, coupon.channel, coupon.status) == (template, "manual", "available")
        assert LedgerTransaction.objects.get(kind="coupon_issue").staff == manager

    def test_shows_why_a_coupon_was_not_issued(self, manager_client, member):
        template = cash_off(per_member_limit=1)
        services.coupon_issue(template=template, member=member, idempotency_key=key())

        response = manager_client.post(
            reverse("assets:coupon-issue", args=[member.member_no]), {"idempotency_key": key(), "template": template.pk}
        )

        assert response.status_code == 200
        assert "already has as many of this coupon" in " ".join(response.context["issue_form"].non_field_errors())
        assert Coupon.objects.filter(member=member).count() == 1

    def test_voids_an_available_coupon_with_a_reason(self, manager_client, member):
        coupon = services.coupon_issue(template=cash_off(), member=member, idempotency_key=key())
        url = reverse("assets:coupon-void", args=[member.member_no, coupon.pk])

        refused = manager_client.post(url, {"idempotency_key": key(), "reason": ""})
        voided = manager_client.post(url, {"idempotency_key": key(), "reason": "Issued by mistake"})

        assert "reason" in refused.context["form"].errors
        coupon.refresh_from_db()
        assert voided.status_code == 302 and coupon.status == "void"

    def test_the_void_form_opens_in_the_tab(self, manager_client, member):
        coupon = services.coupon_issue(template=cash_off(), member=member, idempotency_key=key())

        response = manager_client.get(reverse("assets:coupon-void", args=[member.member_no, coupon.pk]), headers=HTMX)

        assert response.status_code == 200 and "<html" not in response.text and 'id="coupon-void"' in response.text

    def test_a_cancelled_member_gets_no_coupons_but_can_be_written_off(self, owner_client, owner, funded):
        members_services.member_cancel(member=funded, by=owner.user, reason="moved away")

        coupons = owner_client.get(tab_url(funded, "coupons"), headers=HTMX)
        written_off = adjust(owner_client, funded, direction="deduct", amount="15.00", confirmed="1")

        assert coupons.context["issue_form"] is None
        assert written_off.status_code == 302 and balance(funded, "bonus") == 0

    def test_cashiers_see_coupons_but_cannot_issue_or_void(self, cashier_client, member):
        coupon = services.coupon_issue(template=cash_off(), member=member, idempotency_key=key())

        tab = cashier_client.get(tab_url(member, "coupons"), headers=HTMX)
        issue = cashier_client.post(reverse("assets:coupon-issue", args=[member.member_no]), {"template": 1})
        void = cashier_client.post(reverse("assets:coupon-void", args=[member.member_no, coupon.pk]), {"reason": "x"})

        assert tab.status_code == 200 and tab.context["issue_form"] is None and "Void" not in tab.text
        assert coupon.code not in tab.text and f"••••{coupon.code[-4:]}" in tab.text
        assert issue.status_code == void.status_code == 403
