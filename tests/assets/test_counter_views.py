"""The counter screen: finding the member, a purchase previewed then confirmed once however many times Enter is
pressed, refunds with a manager's approval, top-ups, receipts and the shift summary."""

from uuid import uuid4

import pytest
from django.test import Client
from django.urls import reverse

from assets import services
from assets.models import Account, Asset, LoyaltySettings, Purchase, PurchaseRefund, RechargePackage
from members.models import Member, Staff, Store
from members.services import payment_code_issue
from tests.factories import MemberFactory


def key() -> str:
    return uuid4().hex


@pytest.fixture
def member(store: Store) -> Member:
    member = MemberFactory.create(phone="+8613800138123", name="李雷", registered_store=store)
    services.balance_top_up(member=member, amount_fen=50_000, idempotency_key=key(), store=store)
    services.points_earn(member=member, points=1_000, idempotency_key=key())
    return member


def purchase_data(member: Member | None, **fields: str) -> dict[str, str]:
    return {"member_no": member.member_no if member else "", "amount": "100.00", "rest_by": "cash", **fields}


def principal(member: Member) -> int:
    return Account.objects.get(member=member, asset=Asset.PRINCIPAL).balance


class TestFind:
    def test_the_last_four_digits_of_a_phone_find_the_member(self, cashier_client: Client, member: Member) -> None:
        response = cashier_client.post(reverse("assets:counter-find"), {"q": "8123"})

        assert response.status_code == 200 and member.member_no in response.text

    def test_a_scanned_payment_code_finds_its_member_and_is_kept_for_paying(
        self, cashier_client: Client, member: Member
    ) -> None:
        code = payment_code_issue(member=member).code

        response = cashier_client.post(reverse("assets:counter-find"), {"q": code})

        assert member.member_no in response.text and f'data-scanned-code="{code}"' in response.text

    def test_nobody_found_offers_to_register_and_registering_takes_a_phone(
        self, cashier_client: Client, store: Store
    ) -> None:
        missing = cashier_client.post(reverse("assets:counter-find"), {"q": "13900139000"})
        registered = cashier_client.post(reverse("assets:counter-register"), {"phone": "13900139000", "name": "韩梅梅"})

        assert 'value="13900139000"' in missing.text
        member = Member.objects.get(name="韩梅梅")
        assert registered.status_code == 200 and member.registered_store == store

    def test_a_bad_phone_is_a_form_error_and_registers_nobody(self, cashier_client: Client) -> None:
        response = cashier_client.post(reverse("assets:counter-register"), {"phone": "12", "name": "x"})

        assert response.status_code == 422 and not Member.objects.filter(name="x").exists()

    def test_is_closed_to_auditors(self, auditor_client: Client) -> None:
        assert auditor_client.get(reverse("assets:counter")).status_code == 403


class TestPurchase:
    def test_the_quote_follows_the_typing(self, cashier_client: Client, member: Member) -> None:
        response = cashier_client.post(reverse("assets:counter-purchase"), purchase_data(member, points="100"))

        assert response.status_code == 200
        assert "¥99.00" in response.text  # 100.00 less 100 points

    def test_preview_then_confirm_records_once_however_often_enter_is_pressed(
        self, cashier_client: Client, member: Member
    ) -> None:
        code = payment_code_issue(member=member).code
        data = purchase_data(member, amount="80.00", rest_by="balance", payment_code=code)

        preview = cashier_client.post(reverse("assets:counter-purchase-preview"), data)
        confirm = {**data, "idempotency_key": preview.context["form"]["idempotency_key"].value()}
        first = cashier_client.post(reverse("assets:counter-purchase-confirm"), confirm)
        second = cashier_client.post(reverse("assets:counter-purchase-confirm"), confirm)

        assert preview.status_code == 200 and "Take ¥80.00" in preview.text
        assert first.status_code == second.status_code == 200
        assert Purchase.objects.count() == 1 and principal(member) == 50_000 - 8_000
        order = Purchase.objects.get().order_no
        assert order in first.text and order in second.text

    def test_a_second_enter_after_the_points_are_spent_shows_the_same_purchase(
        self, cashier_client: Client, member: Member
    ) -> None:
        data = purchase_data(member, amount="100.00", points="1000")  # every point the member has
        preview = cashier_client.post(reverse("assets:counter-purchase-preview"), data)
        confirm = {**data, "idempotency_key": preview.context["form"]["idempotency_key"].value()}

        first = cashier_client.post(reverse("assets:counter-purchase-confirm"), confirm)
        second = cashier_client.post(reverse("assets:counter-purchase-confirm"), confirm)

        assert first.status_code == second.status_code == 200 and Purchase.objects.count() == 1
        assert Purchase.objects.get().order_no in second.text

    def test_a_refusal_is_shown_and_nothing_is_recorded(self, cashier_client: Client, member: Member) -> None:
        data = purchase_data(member, amount="80.00", rest_by="balance", payment_code="281111111111111111")
        preview = cashier_client.post(reverse("assets:counter-purchase-preview"), data)
        confirm = {**data, "idempotency_key": preview.context["form"]["idempotency_key"].value()}

        response = cashier_client.post(reverse("assets:counter-purchase-confirm"), confirm)

        assert response.status_code == 422 and "payment code is not valid" in response.text
        assert not Purchase.objects.exists() and principal(member) == 50_000

    def test_bad_amounts_are_form_errors(self, cashier_client: Client, member: Member) -> None:
        for amount in ("1e3", "-5", "\uff11\uff12", "12.345", ""):
            response = cashier_client.post(
                reverse("assets:counter-purchase-preview"), purchase_data(member, amount=amount)
            )
            assert response.status_code == 422, amount
        assert not Purchase.objects.exists()

    def test_a_guests_purchase(self, cashier_client: Client) -> None:
        data = purchase_data(None, amount="42.50", rest_by="wechat")
        preview = cashier_client.post(reverse("assets:counter-purchase-preview"), data)
        cashier_client.post(
            reverse("assets:counter-purchase-confirm"),
            {**data, "idempotency_key": preview.context["form"]["idempotency_key"].value()},
        )

        purchase = Purchase.objects.get()
        assert purchase.member is None and purchase.wechat_fen == 4_250

    def test_the_receipt_prints_the_lines(self, cashier_client: Client, member: Member) -> None:
        data = purchase_data(member, amount="30.00", cash="30.00")
        preview = cashier_client.post(reverse("assets:counter-purchase-preview"), data)
        cashier_client.post(
            reverse("assets:counter-purchase-confirm"),
            {**data, "idempotency_key": preview.context["form"]["idempotency_key"].value()},
        )
        order = Purchase.objects.get().order_no

        narrow = cashier_client.get(reverse("assets:counter-receipt", args=[order]) + "?w=58")

        assert narrow.status_code == 200 and "receipt-58" in narrow.text and order in narrow.text


def bought(client: Client, member: Member, amount: str = "300.00") -> Purchase:
    data = purchase_data(member, amount=amount, cash=amount)
    preview = client.post(reverse("assets:counter-purchase-preview"), data)
    client.post(
        reverse("assets:counter-purchase-confirm"),
        {**data, "idempotency_key": preview.context["form"]["idempotency_key"].value()},
    )
    return Purchase.objects.latest("pk")


class TestRefund:
    def test_a_cashier_refunds_above_the_limit_with_a_managers_password(
        self, cashier_client: Client, member: Member, manager: Staff
    ) -> None:
        LoyaltySettings.objects.filter(pk=1).update(refund_approval_fen=10_000)
        manager.user.set_password("manager-pass-1")
        manager.user.save()
        purchase = bought(cashier_client, member)
        url = reverse("assets:counter-refund", args=[purchase.order_no])

        wrong = cashier_client.post(url, {"amount": "", "manager": manager.user.username, "manager_password": "nope"})
        preview = cashier_client.post(
            url, {"amount": "", "manager": manager.user.username, "manager_password": "manager-pass-1"}
        )
        approval = preview.context["form"]["approval"].value()
        done = cashier_client.post(  # what the preview page sends back: its key and the signed approval
            url,
            {"amount": "", "idempotency_key": preview.context["form"]["idempotency_key"].value(), "approval": approval},
        )
        forged = cashier_client.post(url, {"amount": "", "idempotency_key": "f" * 32, "approval": approval + "x"})

        assert wrong.status_code == 422 and "not a manager" in wrong.text
        assert "manager-pass-1" not in preview.text and approval
        assert forged.status_code == 422 and "approval has expired" in forged.text
        assert done.status_code == 200 and "Refunded ¥300.00" in done.text
        refund = PurchaseRefund.objects.get()
        assert refund.approved_by == manager and refund.cash_fen == 30_000

    def test_an_approval_is_for_its_own_refund_only(
        self, cashier_client: Client, member: Member, manager: Staff
    ) -> None:
        LoyaltySettings.objects.filter(pk=1).update(refund_approval_fen=10_000)
        manager.user.set_password("manager-pass-1")
        manager.user.save()
        purchase = bought(cashier_client, member)
        url = reverse("assets:counter-refund", args=[purchase.order_no])
        approved = {"amount": "120.00", "manager": manager.user.username, "manager_password": "manager-pass-1"}
        preview = cashier_client.post(url, approved)
        approval = preview.context["form"]["approval"].value()

        other = cashier_client.post(url, {"amount": "180.00", "idempotency_key": "e" * 32, "approval": approval})

        assert other.status_code == 422 and "approval has expired" in other.text
        assert not PurchaseRefund.objects.exists()

    def test_a_second_enter_on_refund_everything_shows_the_refund(
        self, manager_client: Client, cashier_client: Client, member: Member
    ) -> None:
        purchase = bought(cashier_client, member, amount="50.00")
        url = reverse("assets:counter-refund", args=[purchase.order_no])
        preview = manager_client.post(url, {"amount": ""})
        confirm = {"amount": "", "idempotency_key": preview.context["form"]["idempotency_key"].value()}

        first = manager_client.post(url, confirm)
        second = manager_client.post(url, confirm)

        assert first.status_code == second.status_code == 200 and PurchaseRefund.objects.count() == 1

    def test_without_approval_the_refund_is_refused(self, cashier_client: Client, member: Member) -> None:
        LoyaltySettings.objects.filter(pk=1).update(refund_approval_fen=10_000)
        purchase = bought(cashier_client, member)
        url = reverse("assets:counter-refund", args=[purchase.order_no])
        preview = cashier_client.post(url, {"amount": "200.00"})

        response = cashier_client.post(
            url, {"amount": "200.00", "idempotency_key": preview.context["form"]["idempotency_key"].value()}
        )

        assert response.status_code == 422 and "manager" in response.text and not PurchaseRefund.objects.exists()


class TestTopUpAndShift:
    def test_a_top_up_with_a_package(self, cashier_client: Client, member: Member) -> None:
        package = RechargePackage.objects.create(name="500 get 50", pay_fen=50_000, bonus_fen=5_000)
        url = reverse("assets:counter-top-up")
        data = {"member_no": member.member_no, "package": str(package.pk), "tender": "card"}

        preview = cashier_client.post(url, data)
        cashier_client.post(url, {**data, "idempotency_key": preview.context["form"]["idempotency_key"].value()})

        balances = dict(Account.objects.filter(member=member).values_list("asset", "balance"))
        assert "Take ¥500.00" in preview.text
        assert (balances[Asset.PRINCIPAL], balances[Asset.BONUS]) == (100_000, 5_000)

    def test_the_shift_summary_adds_up_sales_and_refunds_by_tender(
        self, manager_client: Client, cashier_client: Client, member: Member
    ) -> None:
        purchase = bought(cashier_client, member, amount="120.00")
        bought(cashier_client, member, amount="30.00")
        url = reverse("assets:counter-refund", args=[purchase.order_no])
        preview = cashier_client.post(url, {"amount": "20.00"})
        cashier_client.post(
            url, {"amount": "20.00", "idempotency_key": preview.context["form"]["idempotency_key"].value()}
        )

        response = cashier_client.get(reverse("assets:counter-shift"))

        kinds = {line.label: (line.count, line.amount_fen) for line in response.context["kinds"]}
        assert kinds["Sales"] == (2, 15_000) and kinds["Refunds"] == (1, -2_000)
        assert response.context["net_fen"] == 13_000
