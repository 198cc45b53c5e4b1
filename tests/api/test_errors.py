"""Every refusal reaches the till as application/problem+json with its stable code and a status that says what
kind of refusal it is (400 invalid, 403 needs a manager, 404 unknown, 409 conflict, 422 the rules say no, 429
too many); the detail follows Accept-Language."""

from datetime import datetime
from typing import Any

import pytest
import time_machine
from django.http import Http404
from django.test import RequestFactory

from assets import services
from assets.models import CouponTemplate, RechargePackage
from config.api import api as pos_api
from members.api import refusal
from members.models import Member, PaidPlan
from members.services import MemberError, PaymentCodeRefused, member_cancel, member_freeze
from members.terminals import terminal_create
from tests.api.conftest import Api, cny, key, pay_code, problem_of
from tests.factories import StoreFactory


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = problem_of(response)
    assert body["code"] == code and body["detail"]
    return body


def buy(api: Api, member: Member, fen: int, **extra: Any) -> Any:
    body = {"member_no": member.member_no, "amount": cny(fen), "tenders": [{"tender": "cash", "amount": cny(fen)}]}
    return api.post("/purchases", body | extra)


@pytest.fixture
def gift(funded: Member) -> str:
    template = CouponTemplate.objects.create(name="Coffee", kind="gift", gift_name="Coffee", valid_days=30)
    return services.coupon_issue(template=template, member=funded, idempotency_key=key()).code


@pytest.fixture
def twenty_off(funded: Member) -> str:
    template = CouponTemplate.objects.create(
        name="20 off 100", kind="cash_off", value_fen=2_000, threshold_fen=10_000, valid_days=30
    )
    return services.coupon_issue(template=template, member=funded, idempotency_key=key()).code


class TestValidationError:
    def test_a_missing_field_names_it(self, api, funded):
        body = refused(api.post("/purchases", {"member_no": funded.member_no, "tenders": []}), 400, "VALIDATION_ERROR")

        assert {"loc": ["body", "amount"], "message": "Field required", "type": "missing"} in body["errors"]

    def test_another_currency_is_refused(self, api, funded):
        body = refused(
            api.post("/quotes", {"amount": {"amount": 100, "currency": "USD"}}, idempotency_key=None),
            400,
            "VALIDATION_ERROR",
        )

        assert body["errors"][0]["loc"] == ["body", "amount", "currency"]

    def test_a_negative_amount_is_refused(self, api):
        refused(api.post("/quotes", {"amount": cny(-1)}, idempotency_key=None), 400, "VALIDATION_ERROR")

    def test_a_misspelt_field_is_refused_not_ignored(self, api, funded):
        body = refused(
            api.post("/quotes", {"amount": cny(100), "coupon": "x"}, idempotency_key=None), 400, "VALIDATION_ERROR"
        )

        assert body["errors"][0]["type"] == "extra_forbidden"

    def test_a_body_that_is_not_json_is_refused(self, api):
        response = api.client.post(
            "/api/v1/quotes", "{", content_type="application/json", headers=api.headers({"Idempotency-Key": "k"})
        )

        refused(response, 400, "VALIDATION_ERROR")

    def test_a_tender_given_twice_is_refused(self, api, funded):
        tenders = [{"tender": "cash", "amount": cny(50)}, {"tender": "cash", "amount": cny(50)}]

        refused(api.post("/purchases", {"amount": cny(100), "tenders": tenders}), 400, "VALIDATION_ERROR")

    def test_a_zero_amount_is_refused_by_the_counter(self, api):
        refused(api.post("/quotes", {"amount": cny(0)}, idempotency_key=None), 400, "VALIDATION_ERROR")

    def test_a_top_up_needs_an_amount_or_a_package(self, api, funded):
        response = api.post("/top-ups", {"member_no": funded.member_no, "tender": "cash"})

        refused(response, 400, "VALIDATION_ERROR")

    def test_a_member_number_that_is_not_digits_is_refused(self, api):
        refused(api.get("/members/abc"), 400, "VALIDATION_ERROR")


class TestNotFound:
    def test_an_unknown_member(self, api):
        refused(api.get("/members/1234567890"), 404, "MEMBER_NOT_FOUND")

    def test_a_cancelled_member_is_not_served(self, api, member):
        member_cancel(member=member, by=None, reason="asked")

        refused(api.get(f"/members/{member.member_no}"), 404, "MEMBER_NOT_FOUND")
        refused(buy(api, member, 100), 404, "MEMBER_NOT_FOUND")

    def test_an_unknown_purchase(self, api):
        refused(api.post("/purchases/2026010100000000/refunds", {}), 404, "PURCHASE_NOT_FOUND")

    def test_a_purchase_of_another_store(self, api, funded):
        order_no = buy(api, funded, 1_000).json()["order_no"]
        _terminal, other_key = terminal_create(store=StoreFactory.create(code="BJ-01"), name="Till", by=None)

        refused(Api(other_key).post(f"/purchases/{order_no}/refunds", {}), 404, "PURCHASE_NOT_FOUND")

    def test_an_unknown_top_up(self, api):
        refused(api.post("/top-ups/999999/refund", {}), 404, "TOP_UP_NOT_FOUND")

    def test_an_unknown_coupon(self, api, funded):
        refused(api.get("/coupons/0000000000000000"), 404, "COUPON_NOT_FOUND")
        refused(api.post("/coupons/0000000000000000/redeem", {"member_no": funded.member_no}), 404, "COUPON_NOT_FOUND")

    def test_an_unknown_package_and_plan(self, api, funded):
        top_up = {"member_no": funded.member_no, "package_id": 999_999, "tender": "cash"}
        sale = {"member_no": funded.member_no, "plan_id": 999_999, "tender": "cash"}

        refused(api.post("/top-ups", top_up), 404, "PACKAGE_NOT_FOUND")
        refused(api.post("/plan-sales", sale), 404, "PLAN_NOT_FOUND")


class TestRefusedByTheRules:
    def test_insufficient_balance(self, api, funded):
        response = api.post(
            "/purchases",
            {
                "member_no": funded.member_no,
                "amount": cny(50_000),
                "tenders": [{"tender": "balance", "amount": cny(50_000)}],
                "payment_code": pay_code(funded),
            },
        )

        assert "less than ¥500.00" in refused(response, 422, "INSUFFICIENT_BALANCE")["detail"]

    def test_insufficient_points(self, api, funded):
        quote = {"member_no": funded.member_no, "amount": cny(1_000_000), "points": 6_000}

        refused(api.post("/quotes", quote, idempotency_key=None), 422, "INSUFFICIENT_POINTS")

    def test_points_below_the_minimum(self, api, funded):
        quote = {"member_no": funded.member_no, "amount": cny(10_000), "points": 50}

        refused(api.post("/quotes", quote, idempotency_key=None), 422, "POINTS_NOT_USABLE")

    def test_a_coupon_below_its_minimum(self, api, funded, twenty_off):
        quote = {"member_no": funded.member_no, "amount": cny(5_000), "coupon_code": twenty_off}

        body = refused(api.post("/quotes", quote, idempotency_key=None), 422, "COUPON_NOT_USABLE")

        assert body["detail"] == "The order does not reach this coupon's minimum."

    def test_a_cash_off_coupon_cannot_be_redeemed_on_its_own(self, api, funded, twenty_off):
        response = api.post(f"/coupons/{twenty_off}/redeem", {"member_no": funded.member_no})

        refused(response, 422, "COUPON_NOT_USABLE")

    def test_a_payment_code_is_needed_to_pay_by_balance(self, api, funded):
        tenders = [{"tender": "balance", "amount": cny(1_000)}]

        response = api.post("/purchases", {"member_no": funded.member_no, "amount": cny(1_000), "tenders": tenders})

        refused(response, 422, "PAYMENT_CODE_INVALID")

    def test_a_frozen_member(self, api, funded):
        member_freeze(member=funded, by=None)

        response = api.post("/top-ups", {"member_no": funded.member_no, "amount": cny(1_000), "tender": "cash"})

        refused(response, 422, "MEMBER_FROZEN")

    def test_payments_not_adding_up(self, api, funded):
        body = {
            "member_no": funded.member_no,
            "amount": cny(1_000),
            "tenders": [{"tender": "cash", "amount": cny(999)}],
        }

        refused(api.post("/purchases", body), 422, "PAYMENT_NOT_ADDING_UP")

    def test_a_guest_cannot_use_points(self, api):
        refused(
            api.post("/quotes", {"amount": cny(10_000), "points": 100}, idempotency_key=None), 422, "MEMBER_REQUIRED"
        )

    def test_a_refund_above_what_was_paid(self, api, funded):
        order_no = buy(api, funded, 1_000).json()["order_no"]

        response = api.post(f"/purchases/{order_no}/refunds", {"amount": cny(1_001)})

        refused(response, 422, "REFUND_EXCEEDS_PAID")

    def test_a_refund_above_the_limit_needs_a_manager(self, api, funded):
        order_no = buy(api, funded, 30_000).json()["order_no"]

        refused(api.post(f"/purchases/{order_no}/refunds", {}), 403, "MANAGER_APPROVAL_REQUIRED")

    def test_a_spent_top_up_cannot_be_refunded_here(self, api, funded):
        top_up = api.post("/top-ups", {"member_no": funded.member_no, "amount": cny(1_000), "tender": "cash"}).json()
        services.balance_spend(member=funded, amount_fen=33_500, idempotency_key=key())

        refused(api.post(f"/top-ups/{top_up['id']}/refund", {}), 422, "TOP_UP_ALREADY_SPENT")

    def test_a_top_up_is_refunded_once(self, api, funded):
        top_up = api.post("/top-ups", {"member_no": funded.member_no, "amount": cny(1_000), "tender": "cash"}).json()
        assert api.post(f"/top-ups/{top_up['id']}/refund", {}).status_code == 201

        refused(api.post(f"/top-ups/{top_up['id']}/refund", {}), 422, "NOT_REVERSIBLE")

    def test_a_package_off_sale_and_a_wrong_amount_for_a_package(self, api, funded):
        off = RechargePackage.objects.create(name="Old", pay_fen=10_000, is_active=False)
        on = RechargePackage.objects.create(name="New", pay_fen=10_000, bonus_fen=1_000)

        off_sale = api.post("/top-ups", {"member_no": funded.member_no, "package_id": off.pk, "tender": "cash"})
        wrong = api.post(
            "/top-ups", {"member_no": funded.member_no, "package_id": on.pk, "amount": cny(5_000), "tender": "cash"}
        )

        refused(off_sale, 422, "PACKAGE_NOT_ON_SALE")
        assert "¥100.00" in refused(wrong, 422, "PACKAGE_AMOUNT_MISMATCH")["detail"]

    def test_a_plan_off_sale(self, api, funded):
        plan = PaidPlan.objects.create(name="Old", price_fen=9_900, duration="month", is_active=False)

        response = api.post("/plan-sales", {"member_no": funded.member_no, "plan_id": plan.pk, "tender": "cash"})

        refused(response, 422, "PLAN_NOT_ON_SALE")


class TestConflicts:
    def test_the_same_external_reference_twice(self, api, funded):
        assert buy(api, funded, 1_000, external_ref="R-1").status_code == 201

        refused(buy(api, funded, 2_000, external_ref="R-1"), 409, "EXTERNAL_REF_USED")

    def test_an_idempotency_key_used_for_another_request(self, api, funded):
        assert buy(api, funded, 1_000).status_code == 201
        api_key = key()
        buy_once = api.post(
            "/top-ups", {"member_no": funded.member_no, "amount": cny(1_000), "tender": "cash"}, idempotency_key=api_key
        )
        assert buy_once.status_code == 201

        again = api.post(
            "/top-ups", {"member_no": funded.member_no, "amount": cny(2_000), "tender": "cash"}, idempotency_key=api_key
        )

        refused(again, 409, "IDEMPOTENCY_KEY_REUSED")


class TestRateLimit:
    def test_past_the_budget_a_terminal_waits_for_the_next_minute(self, api, till, store, settings):
        settings.HUIYUAN_API_RATE_PER_MINUTE = 3
        _other, other_key = terminal_create(store=store, name="Till 2", by=None)

        with time_machine.travel(datetime(2026, 5, 1, 10, 0, 45), tick=False) as clock:
            answers = [api.get("/program").status_code for _ in range(3)]
            over = api.get("/program")
            other_terminal = Api(other_key).get("/program")
            clock.shift(15)
            next_minute = api.get("/program")

        assert answers == [200, 200, 200]
        refused(over, 429, "RATE_LIMITED")
        assert over["Retry-After"] == "15"
        assert other_terminal.status_code == 200 and next_minute.status_code == 200

    def test_zero_turns_the_limit_off(self, api, settings):
        settings.HUIYUAN_API_RATE_PER_MINUTE = 0

        assert {api.get("/program").status_code for _ in range(5)} == {200}


class TestLanguage:
    def test_the_detail_follows_accept_language(self, till, funded):
        body = {
            "member_no": funded.member_no,
            "amount": cny(1_000),
            "tenders": [{"tender": "balance", "amount": cny(1_000)}],
        }

        chinese = Api(till[1], language="zh-hans").post("/purchases", body)
        mainland = Api(till[1], language="zh-CN,zh;q=0.9").post("/purchases", body)
        english = Api(till[1], language="en-GB,en;q=0.8").post("/purchases", body)

        assert chinese.json()["detail"] == mainland.json()["detail"] == "付款码无效：请会员刷新付款码。"  # noqa: RUF001
        assert chinese["Content-Language"] == "zh-hans"
        assert english.json()["detail"] == "This payment code is not valid: ask the member to refresh it."
        assert chinese.json()["code"] == english.json()["code"] == "PAYMENT_CODE_INVALID"

    def test_the_api_layers_own_refusals_are_translated_too(self, till):
        body = problem_of(Api(till[1], language="zh-hans").get("/members/1234567890"))

        assert (body["code"], body["title"], body["detail"]) == ("MEMBER_NOT_FOUND", "未找到", "该会员号不存在。")

    def test_an_unknown_language_gets_the_default(self, till, settings):
        settings.LANGUAGE_CODE = "zh-hans"

        response = Api(None, language="fr").get("/program")

        assert response["Content-Language"] == "zh-hans"


class TestRefusalMapping:
    def test_member_errors_are_refusals_too(self):
        code_refused = refusal(PaymentCodeRefused("expired"))
        member_refused = refusal(MemberError("no"))

        assert code_refused is not None and code_refused[0] == 422
        assert code_refused[1]["code"] == "PAYMENT_CODE_INVALID"
        assert member_refused is not None and member_refused[1]["code"] == "MEMBER_REFUSED"
        assert refusal(RuntimeError("a bug")) is None

    def test_a_404_raised_inside_an_operation_is_a_problem(self, db):
        response = pos_api.on_exception(RequestFactory().get("/api/v1/x"), Http404())

        assert response.status_code == 404 and problem_of(response)["code"] == "NOT_FOUND"
