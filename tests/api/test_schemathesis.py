"""Schemathesis over the POS API's own OpenAPI schema: every operation gets generated requests, valid ones and
invalid ones, and every answer must be no server error, a documented status, the documented media type, the
documented headers and a body matching its schema. Half of the valid requests name the real member, purchase,
top-up, coupon, package and plan, so that they go past the lookups into the services."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.core.result import Ok

from assets import services
from assets.models import CouponTemplate, RechargePackage
from members.models import Member, PaidPlan, Store, Terminal
from tests.api.conftest import cny, key, pay_code

EXAMPLES = 20  # per operation and generation mode
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@pytest.fixture
def wsgi_app(world: dict[str, Any]) -> Iterator[WSGIHandler]:
    # Django closes the database connection around each request; inside the test's transaction that would end
    # the transaction, so (as Django's own test client does) not here. After `world`, whose test client
    # connects the signals again when it is done.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(api: Any, funded: Member, store: Store, till: tuple[Terminal, str]) -> dict[str, Any]:
    """Real things for generated requests to name: a purchase, a top-up, coupons, a package and a plan."""
    gift = CouponTemplate.objects.create(name="Coffee", kind="gift", gift_name="Coffee", valid_days=30)
    coupon = services.coupon_issue(template=gift, member=funded, idempotency_key=key())
    package = RechargePackage.objects.create(name="Pay 100 get 20", pay_fen=10_000, bonus_fen=2_000)
    plan = PaidPlan.objects.create(name="Plus", price_fen=9_900, duration="month")
    bought = api.post(
        "/purchases",
        {"member_no": funded.member_no, "amount": cny(5_000), "tenders": [{"tender": "cash", "amount": cny(5_000)}]},
    ).json()
    topped = api.post("/top-ups", {"member_no": funded.member_no, "amount": cny(1_000), "tender": "cash"}).json()
    return {
        "path": {
            "member_no": funded.member_no,
            "order_no": bought["order_no"],
            "top_up_id": topped["id"],
            "code": coupon.code,
        },
        "query": {"member": funded.member_no},
        "body": {"member_no": funded.member_no, "package_id": package.pk, "plan_id": plan.pk},
        "member": funded,
    }


def name_real_things(case: Any, world: dict[str, Any]) -> None:
    for name in list(case.path_parameters or {}):
        if name in world["path"]:
            case.path_parameters[name] = world["path"][name]
    for name in list(case.query or {}):
        if name in world["query"]:
            case.query[name] = world["query"][name]
    if isinstance(case.body, dict):
        for name in list(case.body):
            if name in world["body"]:
                case.body[name] = world["body"][name]
        if "payment_code" in case.body:
            case.body["payment_code"] = pay_code(world["member"])


def test_every_generated_request_gets_a_documented_answer_and_no_server_error(
    wsgi_app: WSGIHandler, till: tuple[Terminal, str], world: dict[str, Any], settings: Any
) -> None:
    settings.HUIYUAN_API_RATE_PER_MINUTE = 0  # thousands of requests in a minute are the point here
    settings.ALLOWED_HOSTS = ["localhost"]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    checks = [CHECKS.get_one(name) for name in CHECK_NAMES]
    headers = {"Authorization": f"Bearer {till[1]}"}
    figures = {"operations": 0, "examples": 0, "server_errors": 0}
    failures: list[str] = []

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the schema loads
        operation = result.ok()
        figures["operations"] += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                exercise(operation, mode, world, headers, checks, figures)
            except Exception as exc:  # a failure hypothesis found (and shrank): report them all at the end
                failures.append(f"{operation.label} ({mode}): {exc}")

    print(f"schemathesis: {figures}; failures: {len(failures)}")
    assert figures["operations"] == 12
    assert not failures, "\n\n".join(failures)
    assert figures["server_errors"] == 0


settings_for_run = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a red build is reproducible
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


def exercise(
    operation: Any,
    mode: GenerationMode,
    world: dict[str, Any],
    headers: dict[str, str],
    checks: list[Any],
    figures: dict[str, int],
) -> None:
    @settings_for_run
    @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
    def one(case: Any, real: bool) -> None:
        if real and mode == GenerationMode.POSITIVE:
            name_real_things(case, world)
        response = case.call(headers=headers)
        figures["examples"] += 1
        figures["server_errors"] += response.status_code >= 500
        case.validate_response(response, checks=checks, headers=headers)

    one()
