"""Ledger section: a purchase through the ledger services against the same writes in plain SQL.

One purchase is a balance payment of 100 fen, one point earned as a lot and one growth value, in one
database transaction. The service path runs `balance_spend`, `points_earn` and `growth_add` under
`ledger_unit`, the way the counter records a purchase: one idempotency key and one lock of the member's
accounts for the whole purchase. The baseline does the same writes with psycopg
on its own connections: claim one idempotency row for the purchase, lock the member's five accounts
FOR UPDATE in primary-key order, insert the three ledger transactions, their six entries (member lines
with seq and balance_after, system lines without), the points lot, update the cached balances and commit.
Both write the same tables, so the same constraints and triggers (append-only, balanced at commit) fire.

Each scenario runs a fixed time with 1, 4 or 16 threads started together, each thread on a connection of
its own, on random members or all on one hot member. Service and SQL alternate (service, SQL, SQL,
service) so drift on a shared machine weighs on both. Figures: transactions per second and p50/p95
latency of a whole purchase (retries included), for both, and their ratio; the target is the service
path at >= 35% of the SQL rate with 4 threads on random members. `verify_ledgers` must be clean after.

Data: `huiyuan_bench_ledger` (100,000 members; BENCH_SCALE=small: `huiyuan_bench_ledger_1000`), kept and
reused. Members come from seed_members' loader. Every active member is funded once by set-based SQL (see
`_fund`), which also tops up, at the start of every run, the members a previous run drained below half.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg.types.json import Jsonb

from assets import services
from assets.models import MEMBER_ASSETS, Asset, LedgerTransaction, SystemAccount
from bench.members import prepare_members
from members.models import Member, Store
from members.seeding import SEED_STORE_PREFIX

SIZE = 100_000
STORES = 20
BENCH_DATABASE = "huiyuan_bench_ledger"
ACTOR = "bench"  # the idempotency scope of every bench write, like "terminal:<id>" at a counter
SPEND_FEN = 100
POINTS = 1
GROWTH = 1
FUND_FEN = 10_000_000  # what each member is funded to: 100,000 purchases
REFILL_BELOW_FEN = FUND_FEN // 2  # a run takes far less, even from the hot member
FUND_BATCH = 10_000  # members per funding transaction
THREADS_TARGET = 4
TARGET = 0.35
WARMUP = 2  # purchases per thread before the clock starts (connection, caches)
MAX_ATTEMPTS = 5
RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure, as the services retry
# (name, threads, all threads on one member)
SCENARIOS = (
    ("random_1", 1, False),
    ("random_4", 4, False),
    ("random_16", 16, False),
    ("hot_4", 4, True),
    ("hot_16", 16, True),
)

Kind = LedgerTransaction.Kind


def database_name(size: int) -> str:
    return BENCH_DATABASE if size == SIZE else f"{BENCH_DATABASE}_{size}"


def _say(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------ data

ACCOUNTS_SQL = """
INSERT INTO assets_account (member_id, asset, code, balance, seq, updated_at)
SELECT m.id, a.asset, '', 0, 0, %(now)s
FROM members_member m CROSS JOIN unnest(%(assets)s::varchar[]) WITH ORDINALITY AS a(asset, n)
WHERE m.id BETWEEN %(low)s AND %(high)s AND m.status = 'active'
ORDER BY m.id, a.n
ON CONFLICT DO NOTHING
"""

# One top-up per member whose principal is below the floor, bringing it to FUND_FEN: the transaction,
# its two entries (the member line numbered seq + 1 with its balance_after, the cash-received line without)
# and the cached balance, all in one statement under the account row locks. The deferred trigger checks at
# commit that every transaction balances, as it does for the services.
FUND_SQL = """
WITH plan AS MATERIALIZED (
    SELECT a.id AS account_id, a.member_id, a.balance, a.seq, %(fund)s - a.balance AS amount
    FROM assets_account a JOIN members_member m ON m.id = a.member_id
    WHERE a.member_id BETWEEN %(low)s AND %(high)s AND a.asset = 'principal'
      AND m.status = 'active' AND a.balance < %(floor)s
    ORDER BY a.id
    FOR UPDATE OF a
), tx AS (
    INSERT INTO assets_ledgertransaction (kind, member_id, amount, actor, business_date, reason, external_ref,
                                          reversed_amount, is_full_reversal, details, created_at)
    SELECT 'top_up', member_id, amount, %(actor)s, %(day)s, 'bench funding', '', 0, false,
           jsonb_build_object('principal_fen', amount, 'bonus_fen', 0, 'tender', 'cash'), %(now)s
    FROM plan
    RETURNING id, member_id, amount
), lines AS (
    INSERT INTO assets_entry (transaction_id, account_id, asset, amount, seq, balance_after, created_at)
    SELECT tx.id, plan.account_id, 'principal', tx.amount, plan.seq + 1, plan.balance + tx.amount, %(now)s
    FROM tx JOIN plan USING (member_id)
    UNION ALL
    SELECT tx.id, %(cash)s, 'principal', -tx.amount, NULL, NULL, %(now)s FROM tx
)
UPDATE assets_account a SET balance = plan.balance + plan.amount, seq = plan.seq + 1, updated_at = %(now)s
FROM plan WHERE a.id = plan.account_id
"""


def _system_accounts() -> dict[tuple[str, str], int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT asset, code, id FROM assets_account WHERE member_id IS NULL")
        return {(asset, code): pk for asset, code, pk in cursor.fetchall()}


def _fund(member_ids: list[int]) -> int:
    """Give every active member its five accounts and fund its principal to FUND_FEN with one top-up
    (again when it fell below REFILL_BELOW_FEN), in keyset batches of FUND_BATCH members, one transaction
    each. Returns how many members were topped up."""
    cash = _system_accounts()[(Asset.PRINCIPAL, SystemAccount.CASH_RECEIVED)]
    funded = 0
    for start in range(0, len(member_ids), FUND_BATCH):
        chunk = member_ids[start : start + FUND_BATCH]
        now = timezone.now()
        params: dict[str, Any] = {
            "low": chunk[0],
            "high": chunk[-1],
            "now": now,
            "day": timezone.localdate(now),
            "assets": list(MEMBER_ASSETS),
            "fund": FUND_FEN,
            "floor": REFILL_BELOW_FEN,
            "actor": ACTOR,
            "cash": cash,
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(ACCOUNTS_SQL, params)
            cursor.execute(FUND_SQL, params)
            funded += cursor.rowcount
    if funded:
        with connection.cursor() as cursor:
            for table in ("assets_account", "assets_ledgertransaction", "assets_entry"):
                cursor.execute(f"ANALYZE {table}")
    return funded


def _prepare(name: str, size: int) -> list[int] | None:
    """Migrate, load members up to `size`, fund them; returns the active members' ids (None: broken)."""
    prepare_members(name, size, stores=STORES)
    member_ids = list(Member.objects.filter(status=Member.Status.ACTIVE).order_by("pk").values_list("pk", flat=True))
    started = time.perf_counter()
    funded = _fund(member_ids)
    if funded:
        _say(f"# {name}: funded {funded} members in {time.perf_counter() - started:.1f} s")
        report = services.ledgers_verify()
        if not report.ok:
            _say("# ledgers broken after funding: " + report.text().replace("\n", "\n# "))
            return None
    return member_ids


# ------------------------------------------------------------------ the two paths


class _Path(Protocol):
    def open(self) -> None: ...
    def purchase(self, member_id: int, key: str) -> None: ...
    def close(self) -> None: ...


class _ServicePath:
    """A counter purchase through the services, one database transaction, this thread's Django connection."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self) -> None:
        connection.ensure_connection()

    def purchase(self, member_id: int, key: str) -> None:
        # the member as a counter has it (looked up before paying); the services re-read its status under lock
        member = Member.from_db(DEFAULT_DB_ALIAS, ["id", "status"], [member_id, Member.Status.ACTIVE])
        store = self.store

        def purchase() -> LedgerTransaction:
            paid = services.balance_spend(
                member=member, amount_fen=SPEND_FEN, idempotency_key=f"{key}:pay", store=store, actor=ACTOR
            )
            services.points_earn(
                member=member, points=POINTS, idempotency_key=f"{key}:points", store=store, actor=ACTOR
            )
            services.growth_add(member=member, amount=GROWTH, idempotency_key=f"{key}:growth", store=store, actor=ACTOR)
            return paid

        services.ledger_unit(
            purchase,
            member=member,
            idempotency_key=key,
            scope=ACTOR,
            operation="purchase",
            request={"member": member_id, "amount": SPEND_FEN},
        )

    def close(self) -> None:
        connection.close()


CLAIM_SQL = """
INSERT INTO assets_idempotencyrecord (scope, key, operation, fingerprint, outcome, result, created_at)
VALUES (%s, %s, 'purchase', %s, 'done', '{}', %s) ON CONFLICT (scope, key) DO NOTHING RETURNING id
"""
LOCK_SQL = """
SELECT a.id, a.asset, a.balance, a.seq, m.status
FROM assets_account a JOIN members_member m ON m.id = a.member_id
WHERE a.member_id = %s ORDER BY a.id FOR UPDATE OF a
"""
TRANSACTIONS_SQL = """
INSERT INTO assets_ledgertransaction (kind, member_id, store_id, amount, actor, business_date, reason,
                                      external_ref, reversed_amount, is_full_reversal, details, created_at)
VALUES (%(spend)s, %(member)s, %(store)s, %(spend_amount)s, %(actor)s, %(day)s, '', '', 0, false, %(split)s, %(now)s),
       (%(earn)s, %(member)s, %(store)s, %(points)s, %(actor)s, %(day)s, '', '', 0, false, '{}', %(now)s),
       (%(growth)s, %(member)s, %(store)s, %(growth_amount)s, %(actor)s, %(day)s, '', '', 0, false, '{}', %(now)s)
RETURNING id, kind
"""
ENTRIES_SQL = """
INSERT INTO assets_entry (transaction_id, account_id, asset, amount, seq, balance_after, created_at)
SELECT t, a, s, x, q, b, %s
FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::bigint[], %s::bigint[], %s::bigint[]) AS v(t, a, s, x, q, b)
"""
LOT_SQL = """
INSERT INTO assets_pointlot (member_id, earned_by_id, original, remaining, earned_at, expires_at)
VALUES (%s, %s, %s, %s, %s, %s)
"""
BALANCES_SQL = """
UPDATE assets_account a SET balance = v.balance, seq = v.seq, updated_at = %s
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, balance, seq) WHERE a.id = v.id
"""
SQL_STATEMENTS = 8  # BEGIN, claim, lock, transactions, entries, lot, balances, COMMIT (counted as for the services)


class _SqlPath:
    """The same purchase written by hand with psycopg: own connection, autocommit off, one commit."""

    def __init__(self, params: dict[str, Any], system: dict[tuple[str, str], int], store_id: int) -> None:
        self.params = params
        self.system = system
        self.store_id = store_id
        config = services.loyalty_settings()
        self.expiry, self.expiry_days = config.points_expiry, config.points_expiry_days
        self.conn: psycopg.Connection[Any] | None = None

    def open(self) -> None:
        self.conn = psycopg.connect(**self.params)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def purchase(self, member_id: int, key: str) -> None:
        assert self.conn is not None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                self._purchase_once(self.conn, member_id, key)
                return
            except psycopg.Error as exc:
                self.conn.rollback()
                if exc.sqlstate not in RETRYABLE or attempt == MAX_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * attempt)
            except BaseException:
                self.conn.rollback()
                raise

    def _purchase_once(self, conn: psycopg.Connection[Any], member_id: int, key: str) -> None:
        now = timezone.now()
        fingerprint = hashlib.sha256(f"purchase:{member_id}:{SPEND_FEN}:{POINTS}:{GROWTH}".encode()).hexdigest()
        with conn.cursor() as cursor:
            cursor.execute(CLAIM_SQL, [ACTOR, key, fingerprint, now])
            if cursor.fetchone() is None:
                conn.rollback()  # a replay: the first purchase stands (never with the bench's fresh keys)
                return
            cursor.execute(LOCK_SQL, [member_id])
            rows = cursor.fetchall()
            if not rows or rows[0][4] != Member.Status.ACTIVE:
                raise RuntimeError(f"member {member_id} has no accounts or is not active")
            accounts = {asset: [pk, balance, seq] for pk, asset, balance, seq, _status in rows}
            principal, bonus = accounts[Asset.PRINCIPAL][1], accounts[Asset.BONUS][1]
            if principal + bonus < SPEND_FEN:
                raise RuntimeError(f"member {member_id}: insufficient balance")
            if accounts[Asset.POINTS_DEBT][1]:
                raise RuntimeError(f"member {member_id}: points debt (the bench never makes any)")
            bonus_part = SPEND_FEN * bonus // (principal + bonus)  # as balance_spend: bonus rounds down
            split = {"principal_fen": SPEND_FEN - bonus_part, "bonus_fen": bonus_part}
            cursor.execute(
                TRANSACTIONS_SQL,
                {
                    "spend": Kind.BALANCE_SPEND,
                    "earn": Kind.POINTS_EARN,
                    "growth": Kind.GROWTH_ADD,
                    "member": member_id,
                    "store": self.store_id,
                    "spend_amount": SPEND_FEN,
                    "points": POINTS,
                    "growth_amount": GROWTH,
                    "actor": ACTOR,
                    "day": timezone.localdate(now),
                    "split": Jsonb(split),
                    "now": now,
                },
            )
            tx = {kind: pk for pk, kind in cursor.fetchall()}
            lines: list[tuple[int, int, str, int, int | None, int | None]] = []
            dirty: set[str] = set()

            def member_line(tx_id: int, asset: str, amount: int) -> None:
                if amount:
                    account = accounts[asset]
                    account[1] += amount
                    account[2] += 1
                    lines.append((tx_id, account[0], asset, amount, account[2], account[1]))
                    dirty.add(asset)

            def system_line(tx_id: int, asset: str, code: str, amount: int) -> None:
                if amount:
                    lines.append((tx_id, self.system[(asset, code)], asset, amount, None, None))

            spend, earn, growth = tx[Kind.BALANCE_SPEND], tx[Kind.POINTS_EARN], tx[Kind.GROWTH_ADD]
            member_line(spend, Asset.PRINCIPAL, -split["principal_fen"])
            system_line(spend, Asset.PRINCIPAL, SystemAccount.SALES, split["principal_fen"])
            member_line(spend, Asset.BONUS, -bonus_part)
            system_line(spend, Asset.BONUS, SystemAccount.SALES, bonus_part)
            member_line(earn, Asset.POINTS, POINTS)
            system_line(earn, Asset.POINTS, SystemAccount.POINTS_ISSUED, -POINTS)
            member_line(growth, Asset.GROWTH, GROWTH)
            system_line(growth, Asset.GROWTH, SystemAccount.GROWTH_ISSUED, -GROWTH)
            cursor.execute(ENTRIES_SQL, [now, *(list(column) for column in zip(*lines, strict=True))])
            expires_at = services.points_expiry(now, policy=self.expiry, days=self.expiry_days)
            cursor.execute(LOT_SQL, [member_id, earn, POINTS, POINTS, now, expires_at])
            changed = [accounts[asset] for asset in sorted(dirty)]
            cursor.execute(
                BALANCES_SQL, [now, [a[0] for a in changed], [a[1] for a in changed], [a[2] for a in changed]]
            )
        conn.commit()


# ------------------------------------------------------------------ running


@dataclass
class Result:
    purchases: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # milliseconds
    errors: int = 0
    first_error: str = ""

    @property
    def tps(self) -> float:
        return self.purchases / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def add(self, other: Result) -> None:
        self.purchases += other.purchases
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error


def _round(
    make_path: Callable[[], _Path], threads: int, pick: Callable[[random.Random], int], seconds: float
) -> Result:
    """`threads` threads, each on its own connection, warmed up, released together by a barrier, buying for
    `seconds`; the rate is all purchases over the time from the first start to the last finish."""
    barrier = threading.Barrier(threads, timeout=300)
    tag = f"{time.time_ns():x}"
    lock = threading.Lock()
    result = Result()
    spans: list[tuple[float, float]] = []

    def fail(exc: BaseException) -> None:
        with lock:
            result.errors += 1
            result.first_error = result.first_error or f"{type(exc).__name__}: {exc}".splitlines()[0]

    def work(index: int) -> None:
        rng = random.Random(f"{tag}:{index}")
        path = make_path()
        ready = False
        try:
            path.open()
            for n in range(WARMUP):
                path.purchase(pick(rng), f"{tag}:{index}:w{n}")
            ready = True
        except Exception as exc:
            fail(exc)
        try:
            barrier.wait()
            latencies, n = [], 0
            started = time.perf_counter()
            deadline = started + seconds
            while ready and time.perf_counter() < deadline:
                member_id = pick(rng)
                begun = time.perf_counter()
                try:
                    path.purchase(member_id, f"{tag}:{index}:{n}")
                except Exception as exc:
                    fail(exc)
                else:
                    latencies.append((time.perf_counter() - begun) * 1000)
                n += 1
            finished = time.perf_counter()
            with lock:
                result.purchases += len(latencies)
                result.latencies += latencies
                spans.append((started, finished))
        finally:
            path.close()

    workers = [threading.Thread(target=work, args=(i,), name=f"bench-ledger-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if spans:
        result.seconds = max(end for _s, end in spans) - min(start for start, _e in spans)
    return result


def _queries_per_purchase(path: _ServicePath, member_id: int) -> list[str]:
    """Every statement one purchase sends: Django's own, and those of the write path's prepared cursor."""
    path.purchase(member_id, f"{time.time_ns():x}:q0")  # warm: system account ids, settings
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            path.purchase(member_id, f"{time.time_ns():x}:q1")
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    # psycopg counts every statement a cursor sends (Django's included); Django logs BEGIN and COMMIT
    return [q["sql"] for q in queries.captured_queries if q["sql"] in ("BEGIN", "COMMIT")] + sent


def _statement_kind(sql: str) -> str:
    words = sql.split()
    head = " ".join(words[:3]).replace('"', "")
    if words and words[0] in {"SAVEPOINT", "RELEASE", "ROLLBACK"}:
        return words[0]
    if "FOR UPDATE" in sql:
        return "SELECT ... FOR UPDATE " + sql.split("FROM", 1)[1].split()[0].replace('"', "")
    return head


def _connection_params() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "autocommit": False,
    }
    return {k: v for k, v in params.items() if v is not None}


def _seconds(divisor: int) -> float:
    return 2.0 if divisor == 1 else 0.75  # per round; each path gets two rounds per scenario


def run(*, divisor: int = 1) -> None:
    size = SIZE // divisor
    name = database_name(size)
    member_ids = _prepare(name, size)
    if member_ids is None:
        _say(f"RATIO ledger.service_vs_sql_{THREADS_TARGET}_threads n/a target >= {TARGET:g} FAIL")
        _say("BENCH ledger.verify_ok 0 bool")
        _say("RATIO ledger.verify_ok 0 target >= 1 FAIL")
        return
    store = Store.objects.filter(code__startswith=SEED_STORE_PREFIX).order_by("pk").first()
    assert store is not None
    system = _system_accounts()
    params = _connection_params()
    hot = member_ids[0]
    seconds = _seconds(divisor)
    _say(
        f"# ledger: {len(member_ids)} funded active members in {name}; {seconds:g} s x 2 rounds per path and "
        f"scenario; hot member {hot}"
    )

    queries = _queries_per_purchase(_ServicePath(store), member_ids[-1])
    _say(f"BENCH ledger.queries_per_purchase {len(queries)} queries")
    _say(f"BENCH ledger.sql_queries_per_purchase {SQL_STATEMENTS} queries")

    def service() -> _Path:
        return _ServicePath(store)

    def sql() -> _Path:
        return _SqlPath(params, system, store.pk)

    ratios: dict[str, float] = {}
    rows = []
    for scenario, threads, on_hot in SCENARIOS:

        def pick(rng: random.Random, on_hot: bool = on_hot) -> int:
            return hot if on_hot else rng.choice(member_ids)

        figures = {"service": Result(), "sql": Result()}
        for label, make in (("service", service), ("sql", sql), ("sql", sql), ("service", service)):
            figures[label].add(_round(make, threads, pick, seconds))
        for label, result in figures.items():
            _say(f"BENCH ledger.{scenario}.{label}_tps {result.tps:.1f} tx/s")
            _say(f"BENCH ledger.{scenario}.{label}_p50 {result.percentile(0.5):.2f} ms")
            _say(f"BENCH ledger.{scenario}.{label}_p95 {result.percentile(0.95):.2f} ms")
            if result.errors:
                _say(f"BENCH ledger.{scenario}.{label}_errors {result.errors} tx")
                _say(f"# {scenario} {label}: {result.first_error}")
        ratio = figures["service"].tps / figures["sql"].tps if figures["sql"].tps else float("nan")
        ratios[scenario] = ratio
        _say(f"BENCH ledger.{scenario}.service_vs_sql {ratio:.2f} ratio")
        rows.append((scenario, figures["service"], figures["sql"], ratio))

    _say(f"# {'scenario':<10} {'service tx/s':>12} {'p50':>7} {'p95':>7} {'sql tx/s':>9} {'p50':>7} {'p95':>7}  ratio")
    for scenario, svc, raw, ratio in rows:
        _say(
            f"# {scenario:<10} {svc.tps:>12.1f} {svc.percentile(0.5):>7.2f} {svc.percentile(0.95):>7.2f} "
            f"{raw.tps:>9.1f} {raw.percentile(0.5):>7.2f} {raw.percentile(0.95):>7.2f}  {ratio:.2f}"
        )

    target = ratios.get(f"random_{THREADS_TARGET}", float("nan"))
    verdict = "PASS" if target >= TARGET else "FAIL"
    _say(f"RATIO ledger.service_vs_sql_{THREADS_TARGET}_threads {target:.2f} target >= {TARGET:g} {verdict}")
    if verdict == "FAIL":
        kinds: dict[str, int] = {}
        for sql_text in queries:
            kinds[_statement_kind(sql_text)] = kinds.get(_statement_kind(sql_text), 0) + 1
        _say(f"# one service purchase sends {len(queries)} statements (SQL path: {SQL_STATEMENTS}):")
        for kind, count in sorted(kinds.items(), key=lambda item: -item[1]):
            _say(f"#   {count:>3}  {kind}")

    started = time.perf_counter()
    report = services.ledgers_verify()
    _say(f"# verify_ledgers: {report.transactions} transactions in {time.perf_counter() - started:.1f} s")
    _say(f"BENCH ledger.verify_ok {int(report.ok)} bool")
    _say(f"RATIO ledger.verify_ok {int(report.ok)} target >= 1 {'PASS' if report.ok else 'FAIL'}")
    if not report.ok:
        _say("# " + report.text().replace("\n", "\n# "))
