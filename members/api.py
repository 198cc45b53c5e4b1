"""The POS API's member routes (search, summary, recent ledger events), and what every route of the API shares:
money in fen, problem bodies with stable codes, the refusals of the API layer itself, the member lookup and the
idempotent write (ApiRequest). config/api.py puts the API together."""

import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, cast

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, Router, Schema
from ninja.params import functions as param
from ninja.responses import NinjaJSONEncoder
from pydantic import ConfigDict, field_validator

from assets import summary
from assets.models import Asset
from assets.services.errors import IdempotencyConflict, LedgerError
from members.models import ApiRequest, Member, Terminal
from members.services import MemberError, PaymentCodeRefused

PROBLEM_JSON = "application/problem+json"
MAX_FEN = 99_999_999_999  # what an amount typed as 9 digits of yuan and 2 of fen can reach
KEY_MAX = 80  # the services add suffixes of their own to the key, up to their 100 characters
KEY_PATTERN = r"^[\x21-\x7e]+$"  # visible ASCII: a UUID, a till's receipt number
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # no control characters (PostgreSQL refuses NUL in text)
MEMBER_NO_PATTERN = r"^[0-9]{1,20}$"

# ------------------------------------------------------------------ problems

TITLES: dict[int, Any] = {
    400: _("The request is not valid"),
    401: _("Not authenticated"),
    403: _("Not allowed"),
    404: _("Not found"),
    409: _("Conflict"),
    422: _("Refused"),
    429: _("Too many requests"),
}
# refusals of the ledgers that are not "the rules say no" (422)
LEDGER_STATUS = {
    "VALIDATION_ERROR": 400,
    "NOT_ALLOWED": 403,
    "MANAGER_APPROVAL_REQUIRED": 403,
    IdempotencyConflict.code: 409,
}


class FieldError(Schema):
    loc: list[str | int]
    message: str
    type: str


class Problem(Schema):
    """An error as application/problem+json (RFC 9457); `code` is stable, `detail` in the request's language."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    errors: list[FieldError] | None = None


def problem(status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "urn:huiyuan:problem:" + code.lower().replace("_", "-"),
        "title": str(TITLES.get(status, _("Error"))),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


class ApiError(Exception):
    """A refusal of the API itself, before any service is asked; str(exc) is translated."""

    code = "VALIDATION_ERROR"
    status = 400
    message: Any = _("The request is not valid.")

    def __init__(self, **params: object) -> None:
        super().__init__(self.code)
        self.params = params

    def __str__(self) -> str:
        return str(self.message) % self.params if self.params else str(self.message)


class MemberNotFound(ApiError):
    code, status = "MEMBER_NOT_FOUND", 404
    message = _("No member has this member number.")


def refusal(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """The status and problem body of an anticipated refusal, or None for anything else (a bug: a 500)."""
    if isinstance(exc, ApiError):
        return exc.status, problem(exc.status, exc.code, str(exc))
    if isinstance(exc, LedgerError):
        status = LEDGER_STATUS.get(exc.code, 422)
        return status, problem(status, exc.code, str(exc))
    if isinstance(exc, PaymentCodeRefused):
        return 422, problem(422, "PAYMENT_CODE_INVALID", str(exc))
    if isinstance(exc, MemberError):
        return 422, problem(422, "MEMBER_REFUSED", str(exc))
    return None


def json_text(data: Any) -> str:
    # sorted keys: a first answer and its replays (read back from jsonb, which keeps no order) are the same bytes
    return json.dumps(data, cls=NinjaJSONEncoder, sort_keys=True, ensure_ascii=False)


def api_response(status: int, body: Any, *, replayed: bool = False) -> HttpResponse:
    media_type = PROBLEM_JSON if status >= 400 else "application/json"
    response = HttpResponse(json_text(body), status=status, content_type=f"{media_type}; charset=utf-8")
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def responses(ok: dict[int, Any], *errors: int) -> dict[int, Any]:
    """An operation's documented answers: its own, the problems it may give, and those any route gives (401
    without a valid key, 429 over the rate limit)."""
    return {**ok, **dict.fromkeys(sorted({401, 429, *errors}), Problem)}


# ------------------------------------------------------------------ money


class Money(Schema):
    """An amount of money in fen (1/100 yuan) and its currency, the deployment's one."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=0, le=MAX_FEN, strict=True, description="fen (a JSON integer: not 100.0, not true)")
    currency: str = Field(json_schema_extra={"enum": [settings.HUIYUAN_CURRENCY]})

    @field_validator("currency")
    @classmethod
    def _the_currency(cls, value: str) -> str:
        if value != settings.HUIYUAN_CURRENCY:
            raise ValueError(f"only {settings.HUIYUAN_CURRENCY} is accepted")
        return value


def money(fen: int) -> Money:
    return Money(amount=fen, currency=settings.HUIYUAN_CURRENCY)


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment)


# ------------------------------------------------------------------ the terminal, the member, idempotent writes


def terminal_of(request: HttpRequest) -> Terminal:
    """The terminal the API key authenticated (every route requires one)."""
    return cast(Terminal, request.auth)  # type: ignore[attr-defined]


def member_get(member_no: str) -> Member:
    """The member with this number; cancelled memberships are not served. Raises MemberNotFound."""
    member = Member.objects.exclude(status=Member.Status.CANCELLED).filter(member_no=member_no).first()
    if member is None:
        raise MemberNotFound()
    return member


def idempotency_key_param() -> Any:
    return param.Header(
        ...,
        alias="Idempotency-Key",
        min_length=1,
        max_length=KEY_MAX,
        pattern=KEY_PATTERN,
        description="One key per attempted write (a UUID, say); a retry sends the same key and the same body.",
    )


def request_fingerprint(request: HttpRequest) -> str:
    """sha256 of the method, the path and the body as canonical JSON (keys sorted, no spaces)."""
    try:
        body: Any = json.loads(request.body or b"null")
    except ValueError:  # not reached: the body was parsed before the view ran
        body = request.body.decode(errors="replace")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def idempotent(request: HttpRequest, key: str, run: Callable[[], tuple[int, Any]]) -> HttpResponse:
    """Answer a write once per (terminal, key): a stored answer to the same request comes back as it was, with
    `Idempotent-Replayed: true`; the same key with another request is IDEMPOTENCY_KEY_REUSED (409). Otherwise
    `run` answers (status, body), or raises an anticipated refusal, and the answer is stored, refusals too, so a
    retried refusal stays refused. A request that fails with a server error stores nothing."""
    terminal = terminal_of(request)
    fingerprint = request_fingerprint(request)
    earlier = ApiRequest.objects.filter(terminal=terminal, key=key).first()
    if earlier is not None:
        return _answer_again(earlier, fingerprint)
    try:
        status, body = run()
    except (ApiError, LedgerError, MemberError) as exc:
        refused = refusal(exc)
        assert refused is not None
        status, body = refused
        if isinstance(exc, IdempotencyConflict):
            return api_response(status, body)  # not stored: the first answer under this key stands
    text = json_text(body)
    with connection.cursor() as cursor:
        # Two identical requests at once both got here (the services let one of them do the work and give the
        # other its result): the first row wins, the other request answers with it.
        cursor.execute(
            "INSERT INTO members_apirequest (terminal_id, key, fingerprint, status_code, response_body, created_at)"
            " VALUES (%s, %s, %s, %s, %s::jsonb, now()) ON CONFLICT (terminal_id, key) DO NOTHING RETURNING id",
            [terminal.pk, key, fingerprint, status, text],
        )
        stored = cursor.fetchone() is not None
    if not stored:
        return _answer_again(ApiRequest.objects.get(terminal=terminal, key=key), fingerprint)
    return api_response(status, json.loads(text))


def _answer_again(earlier: ApiRequest, fingerprint: str) -> HttpResponse:
    if earlier.fingerprint != fingerprint:
        conflict = IdempotencyConflict()
        return api_response(409, problem(409, conflict.code, str(conflict)))
    return api_response(earlier.status_code, earlier.response_body, replayed=True)


# ------------------------------------------------------------------ member routes


class MemberBrief(Schema):
    member_no: str
    name: str
    phone: str = Field(description="masked: 138****8000")
    status: str
    registered_store: str | None = Field(description="store code")


class MemberList(Schema):
    members: list[MemberBrief]


class TierOut(Schema):
    name: str
    colour: str


class BalanceOut(Schema):
    principal: Money
    bonus: Money
    total: Money


class PointsOut(Schema):
    available: int
    debt: int
    expiring: int = Field(description="points that expire within 30 days")
    expiring_by: date | None = Field(description="the last day the first of them can be used")


class CouponOut(Schema):
    code: str
    name: str
    kind: str = Field(description="cash_off, percent or gift")
    value: Money
    threshold: Money
    percent_of_price: int | None
    cap: Money
    gift_name: str
    expires_at: datetime
    last_valid_date: date


class AlertOut(Schema):
    kind: str = Field(description="frozen, birthday_today, birthday_month, points_expiring or tier_close")
    level: str = Field(description="danger, warning or info")
    text: str


class MemberSummaryOut(Schema):
    member_no: str
    name: str
    phone: str = Field(description="masked")
    status: str
    member_type: str
    tier: TierOut
    growth: int
    next_tier: str | None
    to_next_tier: int | None
    balance: BalanceOut
    points: PointsOut
    coupons: list[CouponOut]
    alerts: list[AlertOut]


class LedgerEventOut(Schema):
    transaction_id: int
    kind: str
    kind_label: str
    asset: str
    unit: str = Field(description="fen, points or growth")
    amount: int = Field(description="signed, in the unit")
    balance_after: int
    at: datetime
    store: str | None = Field(description="store code")
    order_ref: str


class LedgerOut(Schema):
    events: list[LedgerEventOut]


UNITS: dict[str, str] = {Asset.PRINCIPAL: "fen", Asset.BONUS: "fen", Asset.GROWTH: "growth"}

router = Router(tags=["members"])


@router.get("/members", response=responses({200: MemberList}, 400), summary="Find members")
def member_search(
    request: HttpRequest,
    q: str = param.Query(..., min_length=1, max_length=32, pattern=TEXT_PATTERN),
) -> MemberList:
    """Find members by one field: a phone (with or without +86), its last four digits (several candidates,
    this store's first), a member number, or a payment code the member shows (looked up, not used). Phones are
    masked. No match is an empty list."""
    found = summary.member_find(q, store=terminal_of(request).store)
    return MemberList(
        members=[
            MemberBrief(
                member_no=m.member_no,
                name=m.name,
                phone=m.masked_phone,
                status=m.status,
                registered_store=m.registered_store.code if m.registered_store else None,
            )
            for m in found
        ]
    )


@router.get(
    "/members/{member_no}", response=responses({200: MemberSummaryOut}, 400, 404), summary="A member at a glance"
)
def member_detail(
    request: HttpRequest, member_no: str = param.Path(..., pattern=MEMBER_NO_PATTERN)
) -> MemberSummaryOut:
    """The member at a glance: tier, balance, points and what expires within 30 days, coupons usable in this
    store, and alerts (frozen, birthday, points expiring, close to the next tier)."""
    member = member_get(member_no)
    seen = summary.member_summary(member, at=timezone.now(), store=terminal_of(request).store)
    return MemberSummaryOut(
        member_no=member.member_no,
        name=member.name,
        phone=member.masked_phone,
        status=member.status,
        member_type=member.member_type,
        tier=TierOut(name=seen.tier_name, colour=seen.tier_colour),
        growth=seen.growth,
        next_tier=seen.next_tier_name,
        to_next_tier=seen.to_next_tier,
        balance=BalanceOut(
            principal=money(seen.principal_fen), bonus=money(seen.bonus_fen), total=money(seen.balance_fen)
        ),
        points=PointsOut(
            available=seen.points,
            debt=seen.points_debt,
            expiring=seen.points_expiring,
            expiring_by=seen.points_expiring_by,
        ),
        coupons=[
            CouponOut(
                code=c.code,
                name=c.name,
                kind=c.kind,
                value=money(c.value_fen),
                threshold=money(c.threshold_fen),
                percent_of_price=c.percent_of_price,
                cap=money(c.cap_fen),
                gift_name=c.gift_name,
                expires_at=local(c.expires_at),
                last_valid_date=c.last_valid_date,
            )
            for c in seen.coupons
        ],
        alerts=[AlertOut(kind=a.kind, level=a.level, text=a.text) for a in seen.alerts],
    )


@router.get(
    "/members/{member_no}/ledger", response=responses({200: LedgerOut}, 400, 404), summary="Recent ledger events"
)
def member_ledger(
    request: HttpRequest,
    member_no: str = param.Path(..., pattern=MEMBER_NO_PATTERN),
    limit: int = param.Query(20, ge=1, le=100),
) -> LedgerOut:
    """The member's latest ledger entries over balance, points and growth value, newest first."""
    member = member_get(member_no)
    return LedgerOut(
        events=[
            LedgerEventOut(
                transaction_id=e.transaction_id,
                kind=e.kind,
                kind_label=e.kind_label,
                asset=e.asset,
                unit=UNITS.get(e.asset, "points"),
                amount=e.amount,
                balance_after=e.balance_after,
                at=local(e.at),
                store=e.store.code if e.store else None,
                order_ref=e.order_ref,
            )
            for e in summary.member_ledger_recent(member, limit=limit)
        ]
    )
