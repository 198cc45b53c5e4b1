"""Shared pieces of the POS API tests: a terminal with its key, a client that sends it, and funded members."""

import json
from typing import Any
from uuid import uuid4

import pytest
from django.test import Client

from assets import services
from members.models import Member, Store, Terminal
from members.services import payment_code_issue
from members.terminals import terminal_create
from tests.factories import MemberFactory

BASE = "/api/v1"


def key() -> str:
    return uuid4().hex


def cny(fen: int) -> dict[str, Any]:
    return {"amount": fen, "currency": "CNY"}


class Api:
    """Django's test client speaking to the POS API as one terminal."""

    def __init__(self, api_key: str | None, language: str = "en") -> None:
        self.client = Client()
        self.api_key = api_key
        self.language = language

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept-Language": self.language}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers | (extra or {})

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(BASE + path, params, headers=self.headers(headers))

    def post(
        self, path: str, body: Any, *, idempotency_key: str | None = "new", headers: dict[str, str] | None = None
    ) -> Any:
        extra = dict(headers or {})
        if idempotency_key is not None:
            extra["Idempotency-Key"] = key() if idempotency_key == "new" else idempotency_key
        return self.client.post(
            BASE + path, json.dumps(body), content_type="application/json", headers=self.headers(extra)
        )


@pytest.fixture
def till(store: Store) -> tuple[Terminal, str]:
    return terminal_create(store=store, name="Till 1", by=None)


@pytest.fixture
def api(till: tuple[Terminal, str]) -> Api:
    return Api(till[1])


@pytest.fixture
def member(store: Store) -> Member:
    return MemberFactory.create(registered_store=store)


@pytest.fixture
def funded(member: Member, store: Store) -> Member:
    """¥300 paid in with a ¥30 bonus, and 5,000 points, put there through the ledger services."""
    services.balance_top_up(member=member, amount_fen=30_000, idempotency_key=key(), store=store)
    services.balance_bonus_grant(member=member, amount_fen=3_000, idempotency_key=key(), actor="test", reason="test")
    services.points_earn(member=member, points=5_000, idempotency_key=key())
    return member


def pay_code(member: Member) -> str:
    return payment_code_issue(member=member).code


def problem_of(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/problem+json"), response.content
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    assert body["type"] == "urn:huiyuan:problem:" + body["code"].lower().replace("_", "-")
    return body
