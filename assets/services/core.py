"""The one write path every ledger service follows, and the helpers it is made of."""

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from django.apps import apps
from django.db import OperationalError, connection, models, transaction
from django.utils import timezone

from assets.models import (
    MEMBER_ASSETS,
    Account,
    Entry,
    IdempotencyRecord,
    LedgerTransaction,
)
from assets.services.errors import (
    REFUSALS,
    IdempotencyConflict,
    LedgerError,
    MemberCancelled,
    MemberFrozen,
    NotAllowed,
    ReasonRequired,
    RefundExceedsPaid,
)
from members.models import Member, Staff, Store
from members.roles import Role

T = TypeVar("T", bound=models.Model)
Kind = LedgerTransaction.Kind
MAX_ATTEMPTS = 5
RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure


def _fingerprint(operation: str, request: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps([operation, request], sort_keys=True, default=str).encode()).hexdigest()


def _scope(staff: Staff | None, actor: str) -> str:
    return f"staff:{staff.pk}" if staff is not None else (actor or "system")


def _write(operation: str, *, scope: str, key: str, request: Mapping[str, object], body: Callable[[], T]) -> T:
    """Run `body` once per (scope, key): the first call executes, a retry gets the first result (or the
    first refusal) back, the same key for a different request raises IdempotencyConflict."""
    if not key or len(key) > 100:
        raise ValueError("an idempotency key of 1 to 100 characters is required")
    fingerprint = _fingerprint(operation, request)
    if connection.in_atomic_block:
        return _write_once(operation, scope, key, fingerprint, body)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _write_once(operation, scope, key, fingerprint, body)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE or attempt == MAX_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.005, 0.02) * attempt)
    raise AssertionError("unreachable")


def _write_once(operation: str, scope: str, key: str, fingerprint: str, body: Callable[[], T]) -> T:
    refused: LedgerError | None = None
    # no savepoint of its own: nested in a caller's transaction, an error here fails the caller's unit anyway
    with transaction.atomic(savepoint=False):
        # A concurrent call with the same key blocks on this INSERT until the first one commits (then
        # finds its row) or rolls back (then claims the key itself): one of them executes.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO assets_idempotencyrecord (scope, key, operation, fingerprint, outcome, result, created_at)"
                " VALUES (%s, %s, %s, %s, 'done', '{}', now()) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
                [scope, key, operation, fingerprint],
            )
            row = cursor.fetchone()
        if row is None:
            return _replay(scope, key, operation, fingerprint)  # type: ignore[no-any-return]
        try:
            with transaction.atomic():  # a savepoint: a refusal undoes the work and keeps the claim
                result = body()
        except LedgerError as exc:
            IdempotencyRecord.objects.filter(pk=row[0]).update(
                outcome=IdempotencyRecord.Outcome.REFUSED, result={"code": exc.code, "params": exc.params}
            )
            refused = exc
        else:
            IdempotencyRecord.objects.filter(pk=row[0]).update(
                result={"model": result._meta.label_lower, "pk": result.pk}
            )
            return result
    raise refused


def _replay(scope: str, key: str, operation: str, fingerprint: str) -> Any:
    record = IdempotencyRecord.objects.get(scope=scope, key=key)
    if record.operation != operation or record.fingerprint != fingerprint:
        raise IdempotencyConflict()
    if record.outcome == IdempotencyRecord.Outcome.REFUSED:
        raise REFUSALS.get(record.result.get("code", ""), LedgerError)(**record.result.get("params", {}))
    return apps.get_model(record.result["model"]).objects.get(pk=record.result["pk"])


def run_in_transaction(fn: Callable[[], Any], *, attempts: int = MAX_ATTEMPTS) -> Any:
    """Run several services as one unit, retrying the whole unit on deadlock or serialization failure.
    Orchestrators (a counter purchase) and anything that locks two members go through here."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return fn()
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE or attempt == attempts:
                raise
            time.sleep(random.uniform(0.005, 0.02) * attempt)
    raise AssertionError("unreachable")


_system_ids: dict[tuple[str, str], int] = {}


def _system(asset: str, code: str) -> Account:
    """A system account (cached by id). Never locked: hot accounts would serialise every member."""
    key = (asset, code)
    if key not in _system_ids:
        account, _created = Account.objects.get_or_create(member=None, asset=asset, code=code)
        _system_ids[key] = account.pk
    return Account(pk=_system_ids[key], asset=asset, code=code)


def system_accounts_forget() -> None:
    """Drop cached system account ids (tests that flush the database call this)."""
    _system_ids.clear()


def _lock_accounts(member: Member, assets: Iterable[str]) -> dict[str, Account]:
    """Lock the member's accounts for `assets` in primary-key order (Saleor's rule: one order for
    everybody, so two services on one member queue instead of deadlocking). Also re-reads the member's
    status under the same statement. Creates all of a member's accounts together on first use."""
    wanted = sorted(set(assets))
    for _attempt in range(2):
        rows = list(
            Account.objects.select_for_update(of=("self",))
            .select_related("member")
            .filter(member_id=member.pk, asset__in=wanted)
            .order_by("pk")
        )
        if len(rows) == len(wanted):
            owner = rows[0].member
            assert owner is not None  # member accounts have a member
            member.status = owner.status
            return {a.asset: a for a in rows}
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO assets_account (member_id, asset, code, balance, seq, updated_at)"
                " SELECT %s, a, '', 0, 0, now() FROM unnest(%s::varchar[]) AS a ON CONFLICT DO NOTHING",
                [member.pk, list(MEMBER_ASSETS)],
            )
    raise AssertionError("accounts could not be created")


def _require_active(member: Member) -> None:
    if member.status == Member.Status.FROZEN:
        raise MemberFrozen()
    if member.status == Member.Status.CANCELLED:
        raise MemberCancelled()


def _require_manager(staff: Staff | None, reason: str) -> None:
    if staff is None or staff.role not in (Role.OWNER, Role.MANAGER):
        raise NotAllowed()
    if not reason.strip():
        raise ReasonRequired()


def _transaction(
    kind: str,
    *,
    member: Member | None,
    amount: int = 0,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
    external_ref: str = "",
    reverses: LedgerTransaction | None = None,
    is_full_reversal: bool = False,
    now: datetime | None = None,
    **extra: Any,
) -> LedgerTransaction:
    now = now or timezone.now()
    return LedgerTransaction.objects.create(
        kind=kind,
        member=member,
        amount=amount,
        store=store,
        staff=staff,
        actor=actor,
        reason=reason[:200],
        external_ref=external_ref[:64],
        reverses=reverses,
        is_full_reversal=is_full_reversal,
        business_date=timezone.localdate(now),
        created_at=now,
        **extra,
    )


def _post(tx: LedgerTransaction, lines: Iterable[tuple[Account, int]]) -> list[Entry]:
    """Append the lines of `tx`; member lines get the next sequence number and the balance after them,
    and their accounts' cached balances move in the same statement batch (the rows are locked)."""
    entries, dirty = [], {}
    for account, amount in lines:
        if amount == 0:
            continue
        if account.member_id is None:
            entries.append(Entry(transaction=tx, account=account, asset=account.asset, amount=amount))
            continue
        account.balance += amount
        account.seq += 1
        entries.append(
            Entry(
                transaction=tx,
                account=account,
                asset=account.asset,
                amount=amount,
                seq=account.seq,
                balance_after=account.balance,
                created_at=tx.created_at,
            )
        )
        dirty[account.pk] = account
    Entry.objects.bulk_create(entries)
    if dirty:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE assets_account a SET balance = v.balance, seq = v.seq, updated_at = now()"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, balance, seq) WHERE a.id = v.id",
                [list(dirty), [a.balance for a in dirty.values()], [a.seq for a in dirty.values()]],
            )
    return entries


def _reverse_guard(original: LedgerTransaction, amount: int) -> bool:
    """Count `amount` against what is left to reverse of `original` (guarded UPDATE: two refunds racing
    cannot together exceed it). Returns whether this reversal completes it."""
    updated = LedgerTransaction.objects.filter(pk=original.pk, reversed_amount__lte=models.F("amount") - amount).update(
        reversed_amount=models.F("reversed_amount") + amount
    )
    if not updated:
        original.refresh_from_db(fields=["reversed_amount"])
        raise RefundExceedsPaid(left=original.amount - original.reversed_amount)
    original.refresh_from_db(fields=["reversed_amount"])
    return original.reversed_amount == original.amount


def _positive(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")  # forms and the API refuse this first
    return value


def idempotency_purge(
    *, business_date: date, run: object = None, keep_days: int = 30, batch: int = 10_000
) -> tuple[int, int]:
    """Forget request keys older than `keep_days` before the end of `business_date` (DESIGN: at least 7 days;
    POS retries come within minutes). Batched, so the table is never locked for long. Returns (deleted, deleted)."""
    cutoff = datetime.combine(
        business_date + timedelta(days=1 - keep_days), datetime.min.time(), tzinfo=timezone.get_current_timezone()
    )
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM assets_idempotencyrecord WHERE id IN"
                " (SELECT id FROM assets_idempotencyrecord WHERE created_at < %s ORDER BY id LIMIT %s)",
                [cutoff, batch],
            )
            if not cursor.rowcount:
                return deleted, deleted
            deleted += cursor.rowcount
