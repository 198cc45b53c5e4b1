"""Tiers section: the nightly tier recalculation against one hand-written SQL statement.

The job is `tiers.services.tiers_recalculate` for yesterday with its default batch and connections, as it
runs on an ordinary night: the tier state is reset (tiers_membertier, tiers_tierchange and tiers_tiergift
emptied), the job for the day before yesterday places every member from nothing (the first run after going
live: timed and printed as `first_placement`, with its ratio to the baseline, no target), then the timed
night's run places the members whom yesterday's purchases moved. The baseline is one SQL statement
computing every member's tier from the same ledgers (growth up to the cutoff, the stored-value route, paid
plans, manual floors) and counting members per rank; it runs before and after the job, and its figure is
the mean of the two, so caching weighs on both sides alike. The job's placement (members per rank) must
equal the baseline's. Target: the night's job takes at most 2x the baseline. The ladder has five tiers
(growth 0 / 1,000 / 5,000 / 20,000 / 50,000, rank 2 also reached by a single top-up of 1,000 yuan or top-ups
adding up to 5,000 yuan) and no gift packs.
Measured in cumulative mode, then again with a rolling 12-month window (figures only, no target; its
placement is checked too). The job's time is split by step (the figures' pass, the batches, gift packs) in a
comment; when the target is missed, EXPLAIN ANALYZE of the job's figures statement and first batch, with the
job's own parameters (rolled back), and of the baseline follow as comments.

Data: `huiyuan_bench_tiers` (1,000,000 members; BENCH_SCALE=small: `huiyuan_bench_tiers_10000`), kept and
reused. Members come from seed_members' loader. Each member makes 0 to 20 purchases (10 on average) over
the last 18 months, with a spend level of its own (log-normal), and stored-value members top up 1 to 4
times. The purchases are planned first, per range of member ids, in a table of the bench
(`bench_tiers_plan`), then written to the ledgers in time order, slice by slice, one transaction each, the
way the counters appended them: a growth_add transaction with its member line (seq and running
balance_after) and its growth_issued line, a top_up with its principal line and its cash_received line,
and the accounts' cached balance and seq. The ledger triggers stay on (append-only, balanced at commit);
statistics are refreshed every few slices and the tables vacuumed at the end, as autovacuum would have done
by the night of the job; `verify_ledgers` runs once the data is complete. `bench_tiers_state` records how
far generation got, so an interrupted generation resumes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from assets import services as assets_services
from assets.models import Asset, SystemAccount
from bench.members import prepare_members
from tiers import services
from tiers.models import Tier, TierRules

SIZE = 1_000_000
STORES = 20
BENCH_DATABASE = "huiyuan_bench_tiers"
ACTOR = "bench"
TARGET = 2.0
SPAN_DAYS = 548  # 18 months of history
MAX_PURCHASES = 20  # per member, uniform 0..20: 10 on average
PLAN_CHUNK = 100_000  # members planned per statement
SLICE_ROWS = 250_000  # ledger transactions written per database transaction (about)
ANALYZE_EVERY = 5  # slices
ROLLING_MONTHS = 12
# (rank, name, growth threshold, single top-up, total top-ups): the stored-value route reaches rank 2
LADDER = (
    (0, "普通会员", 0, None, None),
    (1, "银卡会员", 1_000, None, None),
    (2, "金卡会员", 5_000, 100_000, 500_000),
    (3, "铂金会员", 20_000, None, None),
    (4, "钻石会员", 50_000, None, None),
)


def database_name(size: int) -> str:
    return BENCH_DATABASE if size == SIZE else f"{BENCH_DATABASE}_{size}"


def _say(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------ data

STATE_SQL = """
CREATE TABLE IF NOT EXISTS bench_tiers_state (
    id int PRIMARY KEY CHECK (id = 1),
    members bigint NOT NULL,
    planned bigint NOT NULL,
    span_start timestamptz NOT NULL,
    span_end timestamptz NOT NULL,
    slices int NOT NULL,
    slices_done int NOT NULL DEFAULT 0,
    done boolean NOT NULL DEFAULT false,
    generation_seconds double precision NOT NULL DEFAULT 0
)
"""

PLAN_TABLE_SQL = """
CREATE UNLOGGED TABLE bench_tiers_plan (
    id bigserial PRIMARY KEY,
    member_id bigint NOT NULL,
    store_id bigint,
    kind varchar(24) NOT NULL,
    amount bigint NOT NULL,
    created_at timestamptz NOT NULL
)
"""

# Every member of the range gets its growth and principal accounts (empty, as registration leaves them).
ACCOUNTS_SQL = """
INSERT INTO assets_account (member_id, asset, code, balance, seq, updated_at)
SELECT m.id, a.asset, '', 0, 0, %(now)s
FROM members_member m CROSS JOIN unnest(ARRAY['growth', 'principal']::varchar[]) WITH ORDINALITY AS a(asset, n)
WHERE m.id BETWEEN %(low)s AND %(high)s
ORDER BY m.id, a.n
ON CONFLICT DO NOTHING
"""

# Per member: how many purchases (0..MAX_PURCHASES) and a spend level in yuan (log-normal, median 150), each
# purchase worth 0.5 to 1.5 times the level in growth value (one per yuan); stored-value members also top up
# 1 to 4 times, mostly small amounts. Times are uniform over the span.
PLAN_SQL = """
WITH m AS MATERIALIZED (
    SELECT id, registered_store_id AS store_id, member_type,
           floor(random() * (%(max)s + 1))::int AS purchases,
           exp(ln(150) + 1.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS level,
           CASE WHEN member_type = 'stored_value' THEN 1 + floor(random() * 4)::int ELSE 0 END AS top_ups
    FROM members_member WHERE id BETWEEN %(low)s AND %(high)s
)
INSERT INTO bench_tiers_plan (member_id, store_id, kind, amount, created_at)
SELECT m.id, m.store_id, 'growth_add', greatest(1, round(m.level * (0.5 + random())))::bigint,
       %(end)s - random() * (%(end)s - %(start)s)
FROM m CROSS JOIN LATERAL generate_series(1, m.purchases) AS g(n)
UNION ALL
SELECT m.id, m.store_id, 'top_up',
       (ARRAY[10000, 10000, 20000, 20000, 50000, 50000, 100000, 200000])[1 + floor(random() * 8)::int],
       %(end)s - random() * (%(end)s - %(start)s)
FROM m CROSS JOIN LATERAL generate_series(1, m.top_ups) AS g(n)
"""

# One slice of the plan, in time order, numbered on each member account after what the account already holds.
# Transaction ids come from the table's own sequence, in time order, so entries can name them before insert.
SLICE_SQL = """
CREATE TEMP TABLE bench_tiers_slice ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('assets_ledgertransaction', 'id')) AS tx_id, x.*
FROM (
    SELECT p.id, p.member_id, p.store_id, p.kind, p.amount, p.created_at, a.id AS account_id, a.asset,
           a.seq + row_number() OVER w AS seq, a.balance + sum(p.amount) OVER w AS balance_after
    FROM bench_tiers_plan p
    JOIN assets_account a ON a.member_id = p.member_id
     AND a.asset = CASE p.kind WHEN 'top_up' THEN 'principal' ELSE 'growth' END
    WHERE p.created_at >= %(low)s AND p.created_at < %(high)s
    WINDOW w AS (PARTITION BY a.id ORDER BY p.created_at, p.id ROWS UNBOUNDED PRECEDING)
    ORDER BY p.created_at, p.id
) x
"""

SLICE_TRANSACTIONS_SQL = """
INSERT INTO assets_ledgertransaction (id, kind, member_id, store_id, amount, actor, business_date, reason,
                                      external_ref, reversed_amount, is_full_reversal, details, created_at)
SELECT tx_id, kind, member_id, store_id, amount, %(actor)s, (created_at AT TIME ZONE %(zone)s)::date, '', '', 0,
       false,
       CASE kind WHEN 'top_up' THEN jsonb_build_object('principal_fen', amount, 'bonus_fen', 0, 'tender', 'cash')
                 ELSE '{}'::jsonb END,
       created_at
FROM bench_tiers_slice ORDER BY tx_id
"""

SLICE_ENTRIES_SQL = """
INSERT INTO assets_entry (transaction_id, account_id, asset, amount, seq, balance_after, created_at)
SELECT tx_id, account_id, asset, amount, seq, balance_after, created_at
FROM (
    SELECT tx_id, 0 AS line, account_id, asset, amount, seq, balance_after, created_at FROM bench_tiers_slice
    UNION ALL
    SELECT tx_id, 1, CASE kind WHEN 'top_up' THEN %(cash)s ELSE %(issued)s END, asset, -amount, NULL, NULL,
           created_at
    FROM bench_tiers_slice
) lines
ORDER BY tx_id, line
"""

SLICE_ACCOUNTS_SQL = """
UPDATE assets_account a SET balance = s.balance_after, seq = s.seq, updated_at = %(now)s
FROM (SELECT DISTINCT ON (account_id) account_id, seq, balance_after
      FROM bench_tiers_slice ORDER BY account_id, seq DESC) s
WHERE a.id = s.account_id
"""


def _system_account(asset: str, code: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM assets_account WHERE member_id IS NULL AND asset = %s AND code = %s", [asset, code]
        )
        return cursor.fetchone()[0]


def _state() -> dict[str, Any] | None:
    with connection.cursor() as cursor:
        cursor.execute(STATE_SQL)
        cursor.execute(
            "SELECT members, planned, span_start, span_end, slices, slices_done, done, generation_seconds"
            " FROM bench_tiers_state WHERE id = 1"
        )
        row = cursor.fetchone()
    if row is None:
        return None
    keys = ("members", "planned", "span_start", "span_end", "slices", "slices_done", "done", "generation_seconds")
    return dict(zip(keys, row, strict=True))


def _plan(size: int) -> dict[str, Any]:
    """Plan every purchase and top-up of the register, member range by member range, and record the plan."""
    started = time.perf_counter()
    end = timezone.now()
    start = end - timedelta(days=SPAN_DAYS)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_tiers_plan")
        cursor.execute(PLAN_TABLE_SQL)
        cursor.execute("SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM members_member")
        low, high = cursor.fetchone()
        for chunk_low in range(low, high + 1, PLAN_CHUNK):
            params: dict[str, Any] = {"low": chunk_low, "high": chunk_low + PLAN_CHUNK - 1, "now": end}
            with transaction.atomic():
                cursor.execute("SELECT setseed(%s)", [(chunk_low % 1_000_003) / 1_000_003])
                cursor.execute(ACCOUNTS_SQL, params)
                cursor.execute(PLAN_SQL, params | {"max": MAX_PURCHASES, "start": start, "end": end})
        cursor.execute("CREATE INDEX bench_tiers_plan_time ON bench_tiers_plan (created_at)")
        cursor.execute("ANALYZE bench_tiers_plan")
        cursor.execute("ANALYZE assets_account")
        cursor.execute("SELECT count(*) FROM bench_tiers_plan")
        planned = cursor.fetchone()[0]
        slices = max(1, -(-planned // SLICE_ROWS))
        cursor.execute(
            "INSERT INTO bench_tiers_state (id, members, planned, span_start, span_end, slices, generation_seconds)"
            " VALUES (1, %s, %s, %s, %s, %s, %s)",
            [size, planned, start, end + timedelta(microseconds=1), slices, time.perf_counter() - started],
        )
    state = _state()
    assert state is not None
    return state


def _slice_bounds(state: dict[str, Any], index: int) -> tuple[datetime, datetime]:
    start, end, slices = state["span_start"], state["span_end"], state["slices"]
    step = (end - start) / slices
    return start + step * index, end if index == slices - 1 else start + step * (index + 1)


def _write(state: dict[str, Any]) -> int:
    """Append the planned slices not yet written, each in one transaction with the state's progress.
    Returns the ledger transactions written."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_tiers_plan")
        if cursor.fetchone()[0] != state["planned"]:
            raise RuntimeError(
                "bench_tiers_plan lost rows (an unlogged table after a server crash): drop the bench database"
                " to generate it again"
            )
    params = {
        "actor": ACTOR,
        "zone": settings.TIME_ZONE,
        "issued": _system_account(Asset.GROWTH, SystemAccount.GROWTH_ISSUED),
        "cash": _system_account(Asset.PRINCIPAL, SystemAccount.CASH_RECEIVED),
    }
    written = 0
    for index in range(state["slices_done"], state["slices"]):
        low, high = _slice_bounds(state, index)
        started = time.perf_counter()
        if (index - state["slices_done"]) % ANALYZE_EVERY == 0:
            # statistics that keep up with the tables, as autovacuum's would: without them the balance check
            # of every entry is planned for a table of unknown size, and turns into a JIT-compiled bitmap scan
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE assets_account, assets_ledgertransaction, assets_entry")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(SLICE_SQL, {"low": low, "high": high})
            cursor.execute(SLICE_TRANSACTIONS_SQL, params)
            written += cursor.rowcount
            cursor.execute(SLICE_ENTRIES_SQL, params)
            cursor.execute(SLICE_ACCOUNTS_SQL, {"now": timezone.now()})
            cursor.execute("UPDATE bench_tiers_state SET slices_done = %s WHERE id = 1", [index + 1])
        with connection.cursor() as cursor:  # after the commit, where the balance check of every entry runs
            cursor.execute(
                "UPDATE bench_tiers_state SET generation_seconds = generation_seconds + %s WHERE id = 1",
                [time.perf_counter() - started],
            )
        if state["slices"] > 1:
            _say(f"# slice {index + 1}/{state['slices']}: {time.perf_counter() - started:.1f} s")
    return written


def _prepare(name: str, size: int) -> bool:
    """Migrate, load members up to `size`, generate the ledgers once. False: the ledgers are broken."""
    prepare_members(name, size, stores=STORES)
    state = _state()
    if state is not None and state["done"]:
        _say(
            f"# {name}: {state['planned']} planned ledger transactions, generated before in "
            f"{state['generation_seconds']:.0f} s"
        )
        return True
    if state is None:
        state = _plan(size)
        _say(f"# {name}: planned {state['planned']} purchases and top-ups in {state['generation_seconds']:.1f} s")
    written = _write(state)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in ("assets_account", "assets_ledgertransaction", "assets_entry"):
            cursor.execute(f"VACUUM ANALYZE {table}")  # as autovacuum would have by the night of the job
    state = _state()
    assert state is not None
    seconds = state["generation_seconds"] + time.perf_counter() - started
    _say(f"# {name}: wrote {written} ledger transactions; generation (plan, writes, vacuum) took {seconds:.1f} s")
    verify_started = time.perf_counter()
    report = assets_services.ledgers_verify()
    _say(f"# verify_ledgers: {report.transactions} transactions in {time.perf_counter() - verify_started:.1f} s")
    if not report.ok:
        _say("# ledgers broken after generation: " + report.text().replace("\n", "\n# "))
        return False
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_tiers_state SET done = true, generation_seconds = %s WHERE id = 1", [seconds])
        cursor.execute("DROP TABLE IF EXISTS bench_tiers_plan")
    return True


def _ladder(mode: str) -> services.Ladder:
    """The bench's ladder (no gift packs, no paid plans) and rules, saved only where they differ."""
    for rank, name, threshold, single, total in LADDER:
        values = {
            "name": name,
            "threshold": threshold,
            "top_up_single_fen": single,
            "top_up_total_fen": total,
            "gift_points": 0,
            "gift_bonus_fen": 0,
        }
        tier, created = Tier.objects.get_or_create(rank=rank, defaults=values)
        if not created and any(getattr(tier, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(tier, k, v)
            tier.save()
        tier.gift_coupons.clear()
        tier.plans.clear()
    Tier.objects.filter(rank__gt=LADDER[-1][0]).delete()
    rules = services.tier_rules()
    wanted = {"mode": mode, "window_months": ROLLING_MONTHS, "downgrade": TierRules.Downgrade.NONE, "hold_months": 0}
    if any(getattr(rules, k) != v for k, v in wanted.items()):
        for k, v in wanted.items():
            setattr(rules, k, v)
        rules.save()
    return services.Ladder.saved()


# ------------------------------------------------------------------ the two paths

# Every member's tier from the ledgers at the cutoff, for everyone at once: growth in the window, the
# stored-value route (a single top-up counts unless refunded before the cutoff), active paid plans, a manual
# floor, and (downgrades off) the tier the member stands on.
BASELINE_SQL = """
WITH lad AS (
    SELECT * FROM unnest(%(t_id)s::bigint[], %(t_rank)s::int[], %(t_threshold)s::bigint[], %(t_single)s::bigint[],
                         %(t_total)s::bigint[]) AS l(id, rank, threshold, single, total)
), growth AS (
    SELECT a.member_id, sum(e.amount)::bigint AS growth
    FROM assets_entry e JOIN assets_account a ON a.id = e.account_id
    WHERE a.asset = 'growth' AND a.member_id IS NOT NULL
      AND e.created_at < %(cutoff)s AND e.created_at >= coalesce(%(window_start)s::timestamptz, '-infinity')
    GROUP BY a.member_id
), refunded AS (
    SELECT DISTINCT reverses_id AS id FROM assets_ledgertransaction
    WHERE kind = 'top_up_refund' AND reverses_id IS NOT NULL AND created_at < %(cutoff)s
), top_up AS (
    SELECT x.member_id, max(x.amount) FILTER (WHERE x.kind = 'top_up' AND r.id IS NULL) AS single,
           sum(CASE x.kind WHEN 'top_up' THEN x.amount ELSE -x.amount END)::bigint AS total
    FROM assets_ledgertransaction x LEFT JOIN refunded r ON r.id = x.id
    WHERE x.kind IN ('top_up', 'top_up_refund') AND x.created_at < %(cutoff)s
    GROUP BY x.member_id
), plan AS (
    SELECT pp.member_id, max(pr.rank) AS rank
    FROM members_planperiod pp
    JOIN unnest(%(plan_ids)s::bigint[], %(plan_ranks)s::int[]) AS pr(plan_id, rank) ON pr.plan_id = pp.plan_id
    WHERE pp.starts_at < %(cutoff)s AND pp.ends_at >= %(cutoff)s
    GROUP BY pp.member_id
), placed AS (
    SELECT greatest(
               (SELECT max(rank) FROM lad WHERE lad.threshold <= coalesce(g.growth, 0)),
               (SELECT max(rank) FROM lad WHERE t.single >= lad.single OR t.total >= lad.total),
               p.rank, fl.rank, cur.rank, 0) AS rank
    FROM members_member m
    LEFT JOIN growth g ON g.member_id = m.id
    LEFT JOIN top_up t ON t.member_id = m.id
    LEFT JOIN plan p ON p.member_id = m.id
    LEFT JOIN tiers_membertier mt ON mt.member_id = m.id
    LEFT JOIN lad cur ON cur.id = mt.tier_id
    LEFT JOIN lad fl ON fl.id = mt.floor_id
    WHERE m.status <> 'cancelled'
)
SELECT rank, count(*) FROM placed GROUP BY rank ORDER BY rank
"""


def _ladder_params(ladder: services.Ladder) -> dict[str, Any]:
    return {
        "t_id": ladder.ids,
        "t_rank": ladder.ranks,
        "t_threshold": ladder.thresholds,
        "t_single": ladder.singles,
        "t_total": ladder.totals,
        "plan_ids": ladder.plan_ids,
        "plan_ranks": ladder.plan_ranks,
    }


def _window_start(ladder: services.Ladder, cutoff: datetime) -> datetime | None:
    if ladder.mode == TierRules.Mode.ROLLING:
        return services.add_months(cutoff, -ladder.window_months)
    return None


def _baseline(ladder: services.Ladder, cutoff: datetime) -> tuple[float, dict[int, int]]:
    params = _ladder_params(ladder) | {"cutoff": cutoff, "window_start": _window_start(ladder, cutoff)}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL, params)
        rows = cursor.fetchall()
    return time.perf_counter() - started, {rank: count for rank, count in rows}


def _reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tiers_tiergift, tiers_tierchange, tiers_membertier")


def _placement(ladder: services.Ladder, examined: int) -> dict[int, int]:
    """Members per rank after the job: its tier rows, and rank 0 for the examined members without one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.rank, count(*) FROM tiers_membertier mt"
            " JOIN unnest(%s::bigint[], %s::int[]) AS l(id, rank) ON l.id = mt.tier_id GROUP BY l.rank",
            [ladder.ids, ladder.ranks],
        )
        counts = {rank: count for rank, count in cursor.fetchall()}
    counts[0] = counts.get(0, 0) + examined - sum(counts.values())
    return {rank: count for rank, count in sorted(counts.items()) if count}


# the job's steps timed where it has them (the figures' pass, the batches, gift packs)
PROFILED = ("_figures_table", "_recalculate_batch", "_gifts_sweep", "_gift_once")


class _Profile:
    """Where the job's time goes: its steps, the queries it sends, and the parameters of its first batch."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.queries = 0
        self.first_batch: dict[str, Any] | None = None
        self.lock = threading.Lock()

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if label == "recalculate_batch":
                self.batch_seen(*args, **kwargs)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                    self.calls[label] = self.calls.get(label, 0) + 1

        return timed

    def count(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1  # the main connection's (the batches' threads have their own)
        return execute(sql, params, many, context)

    def batch_seen(self, sql: str, params: dict[str, Any], **kwargs: Any) -> None:
        with self.lock:
            if self.first_batch is None or params["lo"] < self.first_batch["lo"]:
                self.first_batch = dict(params)


@contextmanager
def _profiled() -> Iterator[_Profile]:
    profile = _Profile()
    originals = {name: getattr(services, name) for name in PROFILED if hasattr(services, name)}
    for name, fn in originals.items():
        setattr(services, name, profile.wrap(name.strip("_"), fn))
    try:
        with connection.execute_wrapper(profile.count):
            yield profile
    finally:
        for name, fn in originals.items():
            setattr(services, name, fn)


def _explain(sql: str, params: dict[str, Any]) -> list[str]:
    """EXPLAIN ANALYZE of `sql` (which may write) with the job's settings, rolled back."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        lines = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return lines


@dataclass
class Measured:
    job: float  # seconds, the night's run
    sql: float  # seconds, the mean of the baseline's runs before and after the job
    first: float  # seconds, the run of the night before, which placed every member from nothing
    equal: bool  # the job placed members on the ranks the baseline computed
    first_batch: dict[str, Any] | None  # the parameters of the night's first batch statement


def _measure(label: str, mode: str, business_date: date) -> Measured | None:
    """Reset, the night before's run (every member placed from nothing), baseline, the night's run, baseline;
    checks the job placed members as the baseline did. None: the job failed."""
    ladder = _ladder(mode)
    cutoff = services.local_midnight_after(business_date)
    _reset()
    try:
        started = time.perf_counter()
        _examined, first_moved = services.tiers_recalculate(business_date=business_date - timedelta(days=1))
        first = time.perf_counter() - started
        # the baseline reads the tier state the night's run starts from (with downgrades off, nobody goes below
        # the tier they stand on)
        sql_before, expected = _baseline(ladder, cutoff)
        with _profiled() as profile:
            started = time.perf_counter()
            examined, moved = services.tiers_recalculate(business_date=business_date)
            job = time.perf_counter() - started
    except Exception as exc:
        _say(f"# {label}: the job failed: {type(exc).__name__}: {exc}".splitlines()[0])
        return None
    sql_after, again = _baseline(ladder, cutoff)
    sql = (sql_before + sql_after) / 2
    placed = _placement(ladder, examined)
    equal = placed == expected == again
    prefix = "" if label == "cumulative" else f"{label}_"
    _say(f"BENCH tiers.{prefix}job_seconds {job:.2f} s")
    _say(f"BENCH tiers.{prefix}sql_seconds {sql:.2f} s")
    _say(f"BENCH tiers.{prefix}members_examined {examined} members")
    _say(f"BENCH tiers.{prefix}members_moved {moved} members")
    _say(f"BENCH tiers.{prefix}first_placement_seconds {first:.2f} s")
    _say(f"BENCH tiers.{prefix}first_placement_moved {first_moved} members")
    _say(f"BENCH tiers.{prefix}first_placement_vs_sql {first / sql:.2f} ratio")
    _say(f"# {label}: baseline {sql_before:.2f} s before the job, {sql_after:.2f} s after")
    _say(f"# {label}: members per rank, job {placed}, baseline {expected}")
    parts = ", ".join(
        f"{name} {profile.seconds[name]:.2f} s / {profile.calls[name]} calls" for name in sorted(profile.seconds)
    )
    _say(
        f"# {label}: the night's run spent {parts} (the batches' time added up over the {services.WORKERS}"
        f" connections running them); {profile.queries} queries on the job's own connection"
    )
    if not equal:
        _say(f"# {label}: THE JOB'S PLACEMENT DIFFERS FROM THE BASELINE'S")
    return Measured(job=job, sql=sql, first=first, equal=equal, first_batch=profile.first_batch)


def _plan_text(lines: list[str]) -> list[str]:
    """An EXPLAIN ANALYZE, without the subplans that only look a rank up in the five-row ladder (the same
    few lines, dozens of times over); how many there were is said instead."""
    kept: list[str] = []
    skipped, index = 0, 0
    while index < len(lines):
        line = lines[index]
        indent = len(line) - len(line.lstrip())
        end = index + 1
        while end < len(lines) and len(lines[end]) - len(lines[end].lstrip()) > indent:
            end += 1
        body = lines[index:end]
        if line.strip().startswith("SubPlan") and any("CTE Scan on lad" in b for b in body) and len(body) <= 6:
            skipped += 1
        else:
            kept.append(line)
            end = index + 1
        index = end
    if skipped:
        kept.append(f"({skipped} subplans looking a rank up in the ladder left out)")
    return kept


def run(*, divisor: int = 1) -> None:
    size = SIZE // divisor
    name = database_name(size)
    if not _prepare(name, size):
        _say(f"RATIO tiers.job_vs_sql n/a target <= {TARGET:g} FAIL")
        return
    yesterday = timezone.localdate() - timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM members_member),"
            " (SELECT count(*) FROM assets_ledgertransaction WHERE kind = 'growth_add'),"
            " (SELECT count(*) FROM assets_ledgertransaction WHERE kind = 'top_up'),"
            " (SELECT count(*) FROM assets_entry)"
        )
        members, purchases, top_ups, entries = cursor.fetchone()
    _say(
        f"# tiers: {members} members, {purchases} purchases, {top_ups} top-ups, {entries} entries in {name};"
        f" job for {yesterday}, batch {services.BATCH}"
    )
    try:
        cumulative = _measure("cumulative", TierRules.Mode.CUMULATIVE, yesterday)
        rolling = _measure("rolling", TierRules.Mode.ROLLING, yesterday)
    finally:
        _ladder(TierRules.Mode.CUMULATIVE)
    if rolling is not None:
        _say(f"BENCH tiers.rolling_job_vs_sql {rolling.job / rolling.sql:.2f} ratio")
    if cumulative is None:
        _say(f"RATIO tiers.job_vs_sql n/a target <= {TARGET:g} FAIL")
        return
    equal = cumulative.equal and (rolling is None or rolling.equal)
    ratio = cumulative.job / cumulative.sql
    verdict = "PASS" if ratio <= TARGET and equal else "FAIL"
    _say(f"RATIO tiers.job_vs_sql {ratio:.2f} target <= {TARGET:g} {verdict}")
    _say(f"BENCH tiers.placement_equal {int(equal)} bool")
    _say(f"RATIO tiers.placement_equal {int(equal)} target >= 1 {'PASS' if equal else 'FAIL'}")
    if ratio > TARGET and cumulative.first_batch is not None:
        # the job's figures and its first batch again, with the job's own parameters, rolled back
        first = cumulative.first_batch
        _say("# EXPLAIN ANALYZE of the job's figures (FIGURES_SQL, every member):")
        figures = first | {"lo": 0, "hi": 2**63 - 1}
        for line in _plan_text(_explain(services.FIGURES_SQL, figures)):
            _say(f"#   {line}")
        _say(f"# EXPLAIN ANALYZE of the job's first batch (BATCH_SQL), members {first['lo']}..{first['hi']}:")
        with transaction.atomic():
            table = services._figures_table(cutoff=first["cutoff"], ladder=services.Ladder.saved())
            params = first | {"at": timezone.now()}
            for line in _plan_text(_explain(services.BATCH_SQL.format(figures_table=table), params)):
                _say(f"#   {line}")
            transaction.set_rollback(True)
        _say("# EXPLAIN ANALYZE of the baseline:")
        ladder = services.Ladder.saved()
        baseline_params = _ladder_params(ladder) | {"cutoff": first["cutoff"], "window_start": None}
        for line in _plan_text(_explain(BASELINE_SQL, baseline_params)):
            _say(f"#   {line}")
