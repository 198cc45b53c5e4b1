"""Every write carries an Idempotency-Key: a retry gets the first answer back unchanged (and marked), moving
nothing again; the same key for another request is a 409; refusals are remembered; server errors are not."""

import json
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import RequestFactory

from assets import services
from assets.models import Purchase
from assets.selectors import member_balances
from members.api import KEY_MAX, idempotent
from members.models import ApiRequest, Member, Store
from members.terminals import terminal_create
from tests.api.conftest import Api, cny, key, pay_code, problem_of
from tests.factories import MemberFactory


def paying_by_balance(member: Member, fen: int = 1_000) -> dict[str, Any]:
    return {
        "member_no": member.member_no,
        "amount": cny(fen),
        "tenders": [{"tender": "balance", "amount": cny(fen)}],
        "payment_code": pay_code(member),
    }


class TestTheKey:
    def test_a_write_without_a_key_is_refused_and_records_nothing(self, api, funded):
        response = api.post("/purchases", paying_by_balance(funded), idempotency_key=None)

        body = problem_of(response)
        assert response.status_code == 400 and body["code"] == "VALIDATION_ERROR"
        assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
        assert not Purchase.objects.exists()

    def test_a_key_of_more_than_80_characters_is_refused(self, api, funded):
        too_long = api.post("/purchases", paying_by_balance(funded), idempotency_key="k" * (KEY_MAX + 1))
        longest = api.post("/purchases", paying_by_balance(funded), idempotency_key="k" * KEY_MAX)

        assert too_long.status_code == 400 and problem_of(too_long)["code"] == "VALIDATION_ERROR"
        assert longest.status_code == 201

    def test_a_quote_needs_no_key(self, api, funded):
        response = api.post("/quotes", {"member_no": funded.member_no, "amount": cny(100)}, idempotency_key=None)

        assert response.status_code == 200


class TestReplay:
    def test_a_retry_gets_the_same_answer_marked_as_replayed_and_moves_nothing_twice(self, api, funded):
        body, the_key = paying_by_balance(funded), key()

        first = api.post("/purchases", body, idempotency_key=the_key)
        again = api.post("/purchases", body, idempotency_key=the_key)

        assert (first.status_code, again.status_code) == (201, 201)
        assert again.content == first.content
        assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
        assert Purchase.objects.count() == 1
        assert member_balances(member=funded)["principal"] + member_balances(member=funded)["bonus"] == 33_000 - 1_000

    def test_the_same_body_with_keys_in_another_order_is_the_same_request(self, api, funded):
        body, the_key = paying_by_balance(funded), key()
        reordered = dict(reversed(list(body.items())))

        api.post("/purchases", body, idempotency_key=the_key)
        again = api.post("/purchases", reordered, idempotency_key=the_key)

        assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"

    def test_a_refusal_stays_refused_when_retried(self, api, funded, store):
        body, the_key = paying_by_balance(funded, fen=50_000), key()
        first = api.post("/purchases", body, idempotency_key=the_key)
        topped_up = api.post("/top-ups", {"member_no": funded.member_no, "amount": cny(50_000), "tender": "cash"})
        assert topped_up.status_code == 201

        again = api.post("/purchases", body, idempotency_key=the_key)

        assert first.status_code == again.status_code == 422
        assert problem_of(again)["code"] == "INSUFFICIENT_BALANCE" and again["Idempotent-Replayed"] == "true"
        assert not Purchase.objects.exists()

    def test_keys_belong_to_their_terminal(self, api, funded, store):
        _other, other_key = terminal_create(store=store, name="Till 2", by=None)
        body, the_key = (
            {
                "member_no": funded.member_no,
                "amount": cny(1_000),
                "tenders": [{"tender": "cash", "amount": cny(1_000)}],
            },
            key(),
        )

        api.post("/purchases", body, idempotency_key=the_key)
        other = Api(other_key).post("/purchases", body, idempotency_key=the_key)

        assert other.status_code == 201 and not other.has_header("Idempotent-Replayed")
        assert Purchase.objects.count() == 2


class TestConflict:
    def test_the_same_key_with_another_body_is_a_409_and_moves_nothing(self, api, funded):
        the_key = key()
        api.post("/purchases", paying_by_balance(funded, 1_000), idempotency_key=the_key)

        response = api.post("/purchases", paying_by_balance(funded, 2_000), idempotency_key=the_key)

        assert response.status_code == 409 and problem_of(response)["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert Purchase.objects.count() == 1

    def test_the_same_key_on_another_route_is_a_409(self, api, funded):
        the_key = key()
        api.post(
            "/top-ups", {"member_no": funded.member_no, "amount": cny(1_000), "tender": "cash"}, idempotency_key=the_key
        )

        response = api.post("/purchases", paying_by_balance(funded), idempotency_key=the_key)

        assert response.status_code == 409 and problem_of(response)["code"] == "IDEMPOTENCY_KEY_REUSED"

    def test_the_conflict_is_not_stored_over_the_first_answer(self, api, funded):
        body, the_key = paying_by_balance(funded), key()
        first = api.post("/purchases", body, idempotency_key=the_key)
        api.post("/purchases", paying_by_balance(funded, 2_000), idempotency_key=the_key)

        again = api.post("/purchases", body, idempotency_key=the_key)

        assert again.content == first.content


class TestServerErrors:
    def test_are_not_stored_so_a_retry_runs_again(self, till):
        request = RequestFactory().post("/api/v1/purchases", "{}", content_type="application/json")
        request.auth = till[0]  # type: ignore[attr-defined]

        def broken() -> tuple[int, Any]:
            raise RuntimeError("a bug")

        with pytest.raises(RuntimeError):
            idempotent(request, "k1", broken)
        answer = idempotent(request, "k1", lambda: (201, {"ok": True}))

        assert answer.status_code == 201 and json.loads(answer.content) == {"ok": True}
        assert ApiRequest.objects.get(terminal=till[0], key="k1").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_once_record_one_purchase(store: Store) -> None:
    _terminal, api_key = terminal_create(store=store, name="Till", by=None)
    member = MemberFactory.create(registered_store=store)
    services.balance_top_up(member=member, amount_fen=10_000, idempotency_key=key(), store=store)
    body, the_key = paying_by_balance(member, 3_000), key()
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def send() -> None:
        try:
            barrier.wait()
            answers.append(Api(api_key).post("/purchases", body, idempotency_key=the_key))
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.status_code for a in answers) == [201, 201]
    assert answers[0].json()["order_no"] == answers[1].json()["order_no"]
    assert Purchase.objects.count() == 1 and ApiRequest.objects.count() == 1
    assert member_balances(member=member)["principal"] == 7_000


class TestReviewCases:
    def test_a_retry_after_the_answer_was_lost_finds_the_purchase_not_its_own_reference(self, api, funded, till):
        body = {
            "member_no": funded.member_no,
            "amount": cny(1_000),
            "tenders": [{"tender": "cash", "amount": cny(1_000)}],
            "external_ref": "TILL-0001",
        }
        first = api.post("/purchases", body, idempotency_key="k-lost-answer")
        ApiRequest.objects.filter(key="k-lost-answer").delete()  # the answer never reached the till, nor the table

        again = api.post("/purchases", body, idempotency_key="k-lost-answer")

        assert first.status_code == 201 and again.status_code == 201
        assert json.loads(again.content)["order_no"] == json.loads(first.content)["order_no"]
        assert Purchase.objects.count() == 1

    def test_money_is_a_json_integer(self, api, funded):
        for amount in (True, 100.0, "100"):
            response = api.post(
                "/quotes", {"member_no": funded.member_no, "amount": {"amount": amount, "currency": "CNY"}}
            )
            assert response.status_code in (400, 422), amount
            assert problem_of(response)["code"] == "VALIDATION_ERROR"

    def test_an_unknown_path_is_a_problem_too(self, api):
        response = api.get("/no-such-route")

        assert response.status_code == 404 and problem_of(response)["code"] == "NOT_FOUND"
