"""The POS API at /api/v1/ (django-ninja): each terminal authenticates with its own key, answers are JSON, and
every error is application/problem+json with a stable `code` and a `detail` in the language the request asks
for (Accept-Language). Each terminal has a budget of requests per minute. The routes live in members.api and
assets.api; the schema is at /api/v1/openapi.json and browsable at /api/v1/docs (bundled static, no CDN)."""

import functools
import math
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.renderers import JSONRenderer
from ninja.security import APIKeyHeader, HttpBearer

from assets.api import router as counter_router
from assets.services.errors import LedgerError
from members.api import PROBLEM_JSON, ApiError, api_response, problem, refusal
from members.api import router as members_router
from members.models import Terminal
from members.services import MemberError
from members.terminals import terminal_authenticate

RATE_WINDOW = 60  # seconds


# ------------------------------------------------------------------ rate limit and authentication


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def rate_check(terminal: Terminal) -> None:
    """Count the request against the terminal's budget for this minute (a fixed window in the cache) and raise
    RateLimited past HUIYUAN_API_RATE_PER_MINUTE (0: no limit)."""
    limit = settings.HUIYUAN_API_RATE_PER_MINUTE
    if limit <= 0:
        return
    now = time.time()
    window = int(now // RATE_WINDOW)
    # the key's prefix rather than the row id: ids start again in a new database, a shared cache does not
    key = f"huiyuan:api-rate:{terminal.key_prefix}:{window}"
    cache.add(key, 0, timeout=RATE_WINDOW * 2)  # add and incr are atomic, in Redis and in local memory alike
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between the two calls: this request starts the window again
        cache.add(key, 1, timeout=RATE_WINDOW * 2)
        count = 1
    if count > limit:
        raise RateLimited(retry_after=max(1, math.ceil((window + 1) * RATE_WINDOW - now)))


def _terminal(key: str) -> Terminal | None:
    terminal = terminal_authenticate(key.strip())
    if terminal is not None:
        rate_check(terminal)
    return terminal


class BearerKey(HttpBearer):
    """`Authorization: Bearer <key>`"""

    def authenticate(self, request: HttpRequest, token: str) -> Terminal | None:
        return _terminal(token)


class HeaderKey(APIKeyHeader):
    """`X-Api-Key: <key>`"""

    param_name = "X-Api-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> Terminal | None:
        return _terminal(key or "")


# ------------------------------------------------------------------ language


def request_language(request: HttpRequest) -> str:
    """The first language of Accept-Language that we ship (zh-CN finds zh-hans), else the default."""
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


def in_request_language(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Run an operation (authentication and errors included) in the request's language."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        language = request_language(request)
        with translation.override(language):
            response = run(request, *args, **kwargs)
        response["Content-Language"] = language
        patch_vary_headers(response, ["Accept-Language"])
        return response

    return wrapper


# ------------------------------------------------------------------ the API


class HuiyuanAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        return str(operation.view_func.__name__)

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """ninja's schema, with the errors documented as application/problem+json and the headers of replays
        and rate limits."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for methods in schema["paths"].values():
            for operation in methods.values():
                idempotent = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
                for status, answer in operation.get("responses", {}).items():
                    code = int(status)
                    if code >= 400 and "application/json" in answer.get("content", {}):
                        answer["content"] = {PROBLEM_JSON: answer["content"]["application/json"]}
                    headers: dict[str, Any] = {}
                    if idempotent and code not in (401, 429):
                        headers["Idempotent-Replayed"] = {
                            "description": "true when this is the stored answer to an earlier request with this key",
                            "schema": {"type": "string", "enum": ["true"]},
                        }
                    if code == 429:
                        headers["Retry-After"] = {
                            "description": "seconds until the terminal's next minute starts",
                            "schema": {"type": "integer"},
                            "required": True,
                        }
                    if headers:
                        answer["headers"] = headers
        return schema


class Renderer(JSONRenderer):
    json_dumps_params = {"sort_keys": True, "ensure_ascii": False}  # as members.api.json_text writes them


api = HuiyuanAPI(
    title="Huiyuan POS API",
    version="1",
    urls_namespace="api",
    description=(
        "For tills and POS devices. Authenticate with the terminal's key (`Authorization: Bearer <key>` or "
        "`X-Api-Key`). Every write needs an `Idempotency-Key` header. Money is `{amount: fen, currency}`. Errors "
        "are `application/problem+json` with a stable `code`; `detail` follows `Accept-Language` (zh-hans, en)."
    ),
    auth=[BearerKey(), HeaderKey()],
    renderer=Renderer(),
    docs=Swagger(settings={"persistAuthorization": True}),
)


# ------------------------------------------------------------------ errors as problems


def _problem_response(status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None) -> HttpResponse:
    return api_response(status, problem(status, code, detail, errors))


def _field_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if len(loc) > 1 and loc[0] == "body" and loc[1] == "payload":
            del loc[1]  # the view's parameter name says nothing to a caller
        found.append(
            {
                "loc": [part if isinstance(part, int) else str(part) for part in loc],
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return found


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    response = _problem_response(
        401, "UNAUTHENTICATED", _("Send the terminal's API key as 'Authorization: Bearer <key>' or 'X-Api-Key'.")
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(RateLimited)
def on_rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = _problem_response(
        429, "RATE_LIMITED", _("Too many requests from this terminal: try again in %(s)s s.") % {"s": exc.retry_after}
    )
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def on_invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _problem_response(
        400, "VALIDATION_ERROR", _("Some fields are missing or not valid."), _field_errors(exc.errors)
    )


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:  # the body is not JSON
        return _problem_response(400, "VALIDATION_ERROR", _("The request body is not valid JSON."))
    return _problem_response(exc.status_code, f"HTTP_{exc.status_code}", str(exc))


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return _problem_response(404, "NOT_FOUND", _("Not found."))


@api.exception_handler(ApiError)
@api.exception_handler(LedgerError)
@api.exception_handler(MemberError)
def on_refusal(request: HttpRequest, exc: Exception) -> HttpResponse:
    refused = refusal(exc)
    if refused is None:  # not reached: only refusals are routed here
        raise exc
    return api_response(*refused)


# ------------------------------------------------------------------ the routes

api.add_decorator(in_request_language, mode="view")
api.add_router("", members_router)
api.add_router("", counter_router)


def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /api/v1/: a problem+json 404 like the API's own, not the office's HTML page."""
    return api_response(404, problem(404, "NOT_FOUND", str(_("Not found."))))
