"""The one write path every ledger service follows, and the helpers it is made of."""

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
from django.apps import apps
from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.utils import timezone

from assets.models import (
    MEMBER_ASSETS,
    Account,
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
MAX_ATTEMPTS = 10
RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure


@contextmanager
def _hot_cursor() -> Iterator[psycopg.Cursor[Any]]:
    """A cursor with server-side parameter binding on Django's own connection (same transaction), so psycopg
    can prepare the few statements of the write path once per connection instead of PostgreSQL parsing and
    planning them for every purchase (Django's cursors bind client-side). Errors come out as Django's
    (OperationalError, IntegrityError), like any other query's, so deadlock retries see them."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _fingerprint(operation: str, request: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps([operation, request], sort_keys=True, default=str).encode()).hexdigest()


def _scope(staff: Staff | None, actor: str) -> str:
    return f"staff:{staff.pk}" if staff is not None else (actor or "system")


# The claim of the service running now: the first transaction it records stores itself as the claim's result
# in the same statement (one round trip less per service on the counter's hot path).
_claim: ContextVar[list[int | None] | None] = ContextVar("ledger_claim", default=None)
# inside ledger_unit: the services skip their own claims and share the unit's locked accounts of its member
_in_unit: ContextVar[bool] = ContextVar("ledger_in_unit", default=False)
_unit_locked: ContextVar["Locked | None"] = ContextVar("ledger_unit_locked", default=None)


def _write(
    operation: str,
    *,
    scope: str,
    key: str,
    request: Mapping[str, object],
    body: Callable[[], T],
    savepoint: bool = True,
    lock: tuple[Member, Iterable[str]] | None = None,
) -> T:
    """Run `body` once per (scope, key): the first call executes, a retry gets the first result (or the
    first refusal) back, the same key for a different request raises IdempotencyConflict.
    `savepoint=False` is for services whose every refusal comes before their first write; `lock` names the
    member's accounts the body will lock, so the claim and the lock go to PostgreSQL as one statement."""
    if not key or len(key) > 100:
        raise ValueError("an idempotency key of 1 to 100 characters is required")
    if _in_unit.get():  # inside a ledger unit: the unit's claim covers this service
        if not savepoint:
            # it refuses before it writes (its contract), so a refusal the caller catches leaves nothing behind
            unit = _unit_locked.get()
            seqs = [a.seq for a in unit.values()] if unit is not None else []
            try:
                return body()
            except LedgerError:
                if unit is not None and seqs != [a.seq for a in unit.values()]:
                    raise RuntimeError(f"{operation} refused after writing; nothing is kept") from None
                raise
        try:
            # a refusal the caller catches must undo this service's part, and only it
            with transaction.atomic():
                return body()
        except BaseException:
            _unit_accounts_reread()  # the savepoint undid balances the shared account objects still hold
            raise
    fingerprint = _fingerprint(operation, request)
    if connection.in_atomic_block:
        return _write_once(operation, scope, key, fingerprint, body, savepoint, lock)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _write_once(operation, scope, key, fingerprint, body, savepoint, lock)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE or attempt == MAX_ATTEMPTS:
                raise
            _backoff(attempt)
    raise AssertionError("unreachable")


def _write_once(
    operation: str,
    scope: str,
    key: str,
    fingerprint: str,
    body: Callable[[], T],
    savepoint: bool,
    lock: tuple[Member, Iterable[str]] | None,
) -> T:
    refused: LedgerError | None = None
    earlier: IdempotencyRecord | None = None
    # No savepoint of its own, and nothing raised out of it but real errors: inside a caller's transaction a
    # refusal or a replay must leave that transaction usable.
    with transaction.atomic(savepoint=False):
        # A concurrent call with the same key blocks on this INSERT until the first one commits (then
        # finds its row) or rolls back (then claims the key itself): one of them executes.
        prelocked = None
        if lock is None:
            with _hot_cursor() as cursor:
                cursor.execute(CLAIM_SQL, [scope, key, operation, fingerprint], prepare=True)
                row = cursor.fetchone()
        else:
            row, prelocked = _claim_and_lock(scope, key, operation, fingerprint, lock[0], lock[1])
        if row is None:
            earlier = IdempotencyRecord.objects.get(scope=scope, key=key)
        else:
            claim: list[int | None] = [row[0]]
            token = _claim.set(claim)
            lock_token = _prelocked.set(prelocked)
            try:
                if savepoint:  # the body may refuse after writing: the savepoint undoes the work, keeps the claim
                    with transaction.atomic():
                        result = body()
                else:
                    result = body()
            except LedgerError as exc:
                if not savepoint and claim[0] is None:
                    # it refused after recording a transaction, with no savepoint to undo it: fail the whole
                    # transaction rather than keep the writes of a request reported as refused
                    raise RuntimeError(f"{operation} refused after writing; nothing is kept") from exc
                IdempotencyRecord.objects.filter(pk=row[0]).update(
                    outcome=IdempotencyRecord.Outcome.REFUSED, result={"code": exc.code, "params": exc.params}
                )
                refused = exc
            else:
                if result is None:  # a unit whose work returned nothing to show (nothing to upgrade, say)
                    IdempotencyRecord.objects.filter(pk=row[0]).update(result={"none": True})
                elif claim[0] is not None or not isinstance(result, LedgerTransaction) or result.claim_id != row[0]:
                    IdempotencyRecord.objects.filter(pk=row[0]).update(
                        result={"model": result._meta.label_lower, "pk": result.pk}
                    )
                return result
            finally:
                _claim.reset(token)
                _prelocked.reset(lock_token)
    if earlier is not None:
        return _replay(earlier, operation, fingerprint)  # type: ignore[no-any-return]
    assert refused is not None
    raise refused


def _replay(record: IdempotencyRecord, operation: str, fingerprint: str) -> Any:
    if record.operation != operation or record.fingerprint != fingerprint:
        raise IdempotencyConflict()
    if record.outcome == IdempotencyRecord.Outcome.REFUSED:
        raise REFUSALS.get(record.result.get("code", ""), LedgerError)(**record.result.get("params", {}))
    if record.result.get("none"):
        return None
    return apps.get_model(record.result["model"]).objects.get(pk=record.result["pk"])


def _backoff(attempt: int) -> None:
    """Full jitter, doubling up to half a second: colliding retries spread out instead of colliding again."""
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


def run_in_transaction(
    fn: Callable[[], Any], *, attempts: int = MAX_ATTEMPTS, lock_members: Iterable[Member] = ()
) -> Any:
    """Run several services as one unit, retrying the whole unit on deadlock or serialization failure.
    `lock_members` locks those members' accounts first, all in primary-key order, so a unit touching
    several members never deadlocks with another doing the same in the other order."""
    member_ids = sorted({m.pk for m in lock_members})
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                if member_ids:
                    with _hot_cursor() as cursor:
                        cursor.execute(
                            "SELECT id FROM assets_account WHERE member_id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                            [member_ids],
                        )
                return fn()
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE or attempt == attempts:
                raise
            _backoff(attempt)
    raise AssertionError("unreachable")


def _unit_accounts_reread() -> None:
    unit = _unit_locked.get()
    if unit is None or connection.needs_rollback:
        return
    with _hot_cursor() as cursor:
        cursor.execute(
            "SELECT id, balance, seq FROM assets_account WHERE id = ANY(%s)", [[a.pk for a in unit.values()]]
        )
        fresh = {pk: (balance, seq) for pk, balance, seq in cursor.fetchall()}
    for account in unit.values():
        account.balance, account.seq = fresh[account.pk]


def ledger_unit(
    fn: Callable[[], T],
    *,
    member: Member,
    idempotency_key: str,
    scope: str,
    operation: str,
    request: Mapping[str, object],
) -> T:
    """Run several ledger services for one member as one idempotent, atomic unit (a counter purchase: pay,
    earn, grow): one claim for the unit's key, the member's accounts locked once and shared by the services,
    one transaction retried on deadlock. The services' own keys are not claimed inside a unit. A retry gets
    what `fn` first returned (a model instance) or its first refusal; any refusal undoes the whole unit."""

    def body() -> T:
        locked = _lock_accounts(member, MEMBER_ASSETS)
        in_unit, unit_locked = _in_unit.set(True), _unit_locked.set(locked)
        try:
            return fn()
        finally:
            _in_unit.reset(in_unit)
            _unit_locked.reset(unit_locked)

    return _write(operation, scope=scope, key=idempotency_key, request=request, body=body, lock=(member, MEMBER_ASSETS))


_system_ids: dict[tuple[str, str], int] = {}


def _system(asset: str, code: str) -> Account:
    """A system account (cached by id). Never locked: hot accounts would serialise every member."""
    key = (asset, code)
    pk = _system_ids.get(key)
    if pk is None:
        account, _created = Account.objects.get_or_create(member=None, asset=asset, code=code)
        pk = account.pk
        # remembered once committed: a row created by a transaction that rolls back must not be cached
        transaction.on_commit(lambda: _system_ids.setdefault(key, account.pk))
    return Account(pk=pk, asset=asset, code=code)


def system_accounts_forget() -> None:
    """Drop cached system account ids (tests that flush the database call this)."""
    _system_ids.clear()


class Locked(dict[str, Account]):
    """The member's locked accounts by asset, with the points expiry policy read in the same statement."""

    expiry: tuple[str, int] | None = None
    member_id: int | None = None
    status: str = ""


LOCK_SQL = """
SELECT a.id, a.asset, a.balance, a.seq, m.status, s.points_expiry, s.points_expiry_days
FROM assets_account a
JOIN members_member m ON m.id = a.member_id
LEFT JOIN assets_loyaltysettings s ON s.id = 1
WHERE a.member_id = %s AND a.asset = ANY(%s)
ORDER BY a.id
FOR NO KEY UPDATE OF a
"""


CLAIM_SQL = (
    "INSERT INTO assets_idempotencyrecord (scope, key, operation, fingerprint, outcome, result, created_at)"
    " VALUES (%s, %s, %s, %s, 'done', '{}', now()) ON CONFLICT (scope, key) DO NOTHING RETURNING id"
)
# The claim and the lock in one round trip. Whichever runs first, a duplicate of the request waits (on the
# key or on the rows) for the first to finish. The outer joins keep the claim's id when the member has no
# accounts yet (then they are created and locked in a second step).
CLAIM_AND_LOCK_SQL = f"""
WITH c AS ({CLAIM_SQL}),
l AS ({LOCK_SQL})
SELECT c.id, l.* FROM (SELECT 1) AS one LEFT JOIN c ON true LEFT JOIN l ON true ORDER BY l.id
"""

# accounts the claim statement locked, for the body's first _lock_accounts of that member
_prelocked: ContextVar[Locked | None] = ContextVar("ledger_prelocked", default=None)


def _locked(member: Member, rows: list[tuple[Any, ...]]) -> Locked:
    locked = Locked(
        (asset, Account(id=pk, member_id=member.pk, asset=asset, code="", balance=balance, seq=seq))
        for pk, asset, balance, seq, _status, _policy, _days in rows
    )
    locked.member_id = member.pk
    locked.status = member.status = rows[0][4]
    if rows[0][5] is not None:
        locked.expiry = (rows[0][5], rows[0][6])
    return locked


def _claim_and_lock(
    scope: str, key: str, operation: str, fingerprint: str, member: Member, assets: Iterable[str]
) -> tuple[tuple[int] | None, Locked | None]:
    with _hot_cursor() as cursor:
        cursor.execute(
            CLAIM_AND_LOCK_SQL, [scope, key, operation, fingerprint, member.pk, sorted(set(assets))], prepare=True
        )
        rows = cursor.fetchall()
    claim = (rows[0][0],) if rows and rows[0][0] is not None else None
    accounts = [r[1:] for r in rows if r[1] is not None]
    return claim, (_locked(member, accounts) if accounts else None)


def _lock_accounts(member: Member, assets: Iterable[str]) -> Locked:
    """Lock the member's accounts for `assets` in primary-key order (Saleor's rule: one order for
    everybody, so two services on one member queue instead of deadlocking). The same statement re-reads
    the member's status and the points policy. Creates all of a member's accounts together on first use.
    NO KEY UPDATE: entries referencing these rows (KEY SHARE) are not blocked, writers of them are."""
    wanted = sorted(set(assets))
    unit = _unit_locked.get()
    if unit is not None and unit.member_id == member.pk:
        member.status = unit.status  # one set of account objects for the whole unit keeps balances current
        return unit
    pre = _prelocked.get()
    if pre is not None and pre.member_id == member.pk and len(pre) == len(wanted) and set(wanted) <= set(pre):
        _prelocked.set(None)  # used once: later locks in the body re-read what nested services changed
        return pre
    with _hot_cursor() as cursor:
        for _attempt in range(2):
            cursor.execute(LOCK_SQL, [member.pk, wanted], prepare=True)
            rows = cursor.fetchall()
            if len(rows) == len(wanted):
                return _locked(member, rows)
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


# One statement records a transaction: its row, its entries, the cached balances of its member accounts,
# the claim's result and (for an earning) its points lot. The balanced-sum trigger still runs at commit.
RECORD_SQL = """
WITH t AS (
    INSERT INTO assets_ledgertransaction (kind, member_id, store_id, staff_id, actor, business_date, reason,
        external_ref, amount, reversed_amount, reverses_id, is_full_reversal, coupon_id, package_id, details,
        created_at)
    VALUES (%(kind)s, %(member)s, %(store)s, %(staff)s, %(actor)s, %(day)s, %(reason)s, %(ref)s, %(amount)s, 0,
        %(reverses)s, %(full)s, %(coupon)s, %(package)s, %(details)s::jsonb, %(now)s)
    RETURNING id
), e AS (
    INSERT INTO assets_entry (transaction_id, account_id, asset, amount, seq, balance_after, created_at)
    SELECT t.id, v.account_id, v.asset, v.amount, v.seq, v.balance_after, %(now)s
    FROM t, unnest(%(e_account)s::bigint[], %(e_asset)s::varchar[], %(e_amount)s::bigint[], %(e_seq)s::bigint[],
                   %(e_after)s::bigint[]) AS v(account_id, asset, amount, seq, balance_after)
), a AS (
    UPDATE assets_account SET balance = v.balance, seq = v.seq, updated_at = %(now)s
    FROM unnest(%(a_id)s::bigint[], %(a_balance)s::bigint[], %(a_seq)s::bigint[], %(a_was)s::bigint[])
         AS v(id, balance, seq, was)
    WHERE assets_account.id = v.id AND assets_account.seq = v.was
    RETURNING 1
), c AS (
    UPDATE assets_idempotencyrecord SET result = jsonb_build_object('model', 'assets.ledgertransaction', 'pk', t.id)
    FROM t WHERE assets_idempotencyrecord.id = %(claim)s
), l AS (
    INSERT INTO assets_pointlot (member_id, earned_by_id, original, remaining, earned_at, expires_at)
    SELECT %(member)s, t.id, %(lot)s, %(lot)s, %(now)s, %(lot_expires)s::timestamptz FROM t WHERE %(lot)s > 0
)
SELECT t.id, (SELECT count(*) FROM a) FROM t
"""


def _transaction(
    kind: str,
    *,
    member: Member | None,
    lines: Iterable[tuple[Account, int]] = (),
    amount: int = 0,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
    external_ref: str = "",
    reverses: LedgerTransaction | None = None,
    is_full_reversal: bool = False,
    coupon: Any = None,
    package: Any = None,
    details: dict[str, Any] | None = None,
    lot: tuple[int, datetime | None] | None = None,
    now: datetime | None = None,
    day: date | None = None,
) -> LedgerTransaction:
    """Record a transaction with its lines (and an earning's lot: (points, expires_at)) in one statement.
    Member lines get the account's next sequence number and the balance after them; the accounts must be
    locked by the caller. Returns the transaction."""
    now = now or timezone.now()
    e_account: list[int] = []
    e_asset: list[str] = []
    e_amount: list[int] = []
    e_seq: list[int | None] = []
    e_after: list[int | None] = []
    dirty: dict[int, Account] = {}
    was: dict[int, int] = {}
    for account, delta in lines:
        if delta == 0:
            continue
        e_account.append(account.pk)
        e_asset.append(account.asset)
        e_amount.append(delta)
        if account.member_id is None:
            e_seq.append(None)
            e_after.append(None)
            continue
        was.setdefault(account.pk, account.seq)
        account.balance += delta
        account.seq += 1
        e_seq.append(account.seq)
        e_after.append(account.balance)
        dirty[account.pk] = account
    holder = _claim.get()
    claim = holder[0] if holder else None
    if holder:
        holder[0] = None  # the first transaction of a service is its result
    day = day or timezone.localdate(now)
    reason, external_ref = reason[:200], external_ref[:64]
    params: dict[str, Any] = {
        "kind": kind,
        "member": member.pk if member else None,
        "store": store.pk if store else None,
        "staff": staff.pk if staff else None,
        "actor": actor,
        "day": day,
        "reason": reason,
        "ref": external_ref,
        "amount": amount,
        "reverses": reverses.pk if reverses else None,
        "full": is_full_reversal,
        "coupon": coupon.pk if coupon else None,
        "package": package.pk if package else None,
        "details": json.dumps(details or {}),
        "now": now,
        "e_account": e_account,
        "e_asset": e_asset,
        "e_amount": e_amount,
        "e_seq": e_seq,
        "e_after": e_after,
        "a_id": list(dirty),
        "a_balance": [a.balance for a in dirty.values()],
        "a_seq": [a.seq for a in dirty.values()],
        "a_was": [was[pk] for pk in dirty],
        "claim": claim,
        "lot": lot[0] if lot else 0,
        "lot_expires": lot[1] if lot else None,
    }
    with _hot_cursor() as cursor:
        cursor.execute(RECORD_SQL, params, prepare=True)
        row = cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING
    pk, moved = row
    if moved != len(dirty):
        # an account object older than its row (its sequence number moved since it was read): writing its
        # balance would corrupt the ledger, so the whole transaction fails instead
        raise RuntimeError(f"stale account balance for transaction {kind}; nothing is kept")
    tx = LedgerTransaction(
        id=pk,
        kind=kind,
        member=member,
        store=store,
        staff=staff,
        actor=actor,
        business_date=day,
        reason=reason,
        external_ref=external_ref,
        amount=amount,
        reverses=reverses,
        is_full_reversal=is_full_reversal,
        coupon=coupon,
        package=package,
        details=details or {},
        created_at=now,
    )
    tx._state.adding, tx._state.db = False, "default"
    tx.claim_id = claim
    return tx


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
        business_date + timedelta(days=1 - keep_days), datetime.min.time(), tzinfo=ZoneInfo(settings.TIME_ZONE)
    )
    deleted = 0
    # the ledger's keys, and the POS API's stored answers (members_apirequest), the same age
    for table in ("assets_idempotencyrecord", "members_apirequest"):
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {table} WHERE id IN"
                    f" (SELECT id FROM {table} WHERE created_at < %s ORDER BY id LIMIT %s)",
                    [cutoff, batch],
                )
                if not cursor.rowcount:
                    break
                deleted += cursor.rowcount
    return deleted, deleted
