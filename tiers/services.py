"""Placing members on the tier ladder: one SQL statement evaluates a range of members (the nightly job, a single
member, a real-time upgrade and the simulation of a changed ladder all use it), and the writes that follow."""

import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pghistory
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from assets import services as assets_services
from assets.models import Coupon
from members import services as members_services
from members.models import Member, Staff
from reports.models import JobRun
from tiers.models import MemberTier, Tier, TierChange, TierGift, TierRules, TierSimulation

BATCH = 50_000


class TierError(Exception):
    """A refusal staff can read (str(exc) is translated)."""


def tier_rules() -> TierRules:
    return TierRules.objects.get_or_create(pk=1)[0]


def base_tier() -> Tier:
    """Rank 0, where every member starts (made if a merchant's ladder has none)."""
    return Tier.objects.get_or_create(rank=0, defaults={"name": "普通会员"})[0]


local_midnight_after = assets_services.local_midnight_after
add_months = members_services.add_months  # calendar months in the merchant's zone


@dataclass(frozen=True)
class Ladder:
    """The ladder and rules an evaluation runs with: the saved ones, or a draft being simulated."""

    ids: list[int]
    ranks: list[int]
    thresholds: list[int]
    singles: list[int | None]
    totals: list[int | None]
    plan_ids: list[int]
    plan_ranks: list[int]
    mode: str
    window_months: int
    downgrade: str
    hold_months: int
    evaluation_day: int
    upgrade_timing: str

    @classmethod
    def saved(cls) -> "Ladder":
        base_tier()
        tiers = list(Tier.objects.order_by("rank").prefetch_related("plans"))
        rules = tier_rules()
        return cls.build(tiers, rules)

    @classmethod
    def build(cls, tiers: list[Tier], rules: TierRules) -> "Ladder":
        plan_ids, plan_ranks = [], []
        for tier in tiers:
            for plan in tier.plans.all() if tier.pk is not None else ():
                plan_ids.append(plan.pk)
                plan_ranks.append(tier.rank)
        return cls(
            ids=[t.pk if t.pk is not None else -(i + 1) for i, t in enumerate(tiers)],  # a draft's new tiers
            ranks=[t.rank for t in tiers],
            thresholds=[t.threshold for t in tiers],
            singles=[t.top_up_single_fen for t in tiers],
            totals=[t.top_up_total_fen for t in tiers],
            plan_ids=plan_ids,
            plan_ranks=plan_ranks,
            mode=rules.mode,
            window_months=rules.window_months,
            downgrade=rules.downgrade,
            hold_months=rules.hold_months,
            evaluation_day=rules.evaluation_day,
            upgrade_timing=rules.upgrade_timing,
        )

    def is_evaluation_day(self, business_date: date) -> bool:
        """Rolling mode evaluates (and may downgrade) once a month, at the start of its evaluation day."""
        return self.mode == TierRules.Mode.CUMULATIVE or (business_date + timedelta(days=1)).day == self.evaluation_day


# Per member of [lo, hi]: growth at `cutoff` (in the window, rolling mode), the largest single top-up not
# refunded before the cutoff, and the net of top-ups. Only members with any of them have a row.
FIGURES_SQL = """
WITH g AS (
    SELECT a.member_id, sum(e.amount)::bigint AS growth
    FROM assets_account a JOIN assets_entry e ON e.account_id = a.id
    WHERE a.asset = 'growth' AND a.member_id BETWEEN %(lo)s AND %(hi)s AND e.created_at < %(cutoff)s
      AND e.created_at >= coalesce(%(window_start)s::timestamptz, '-infinity')
    GROUP BY a.member_id
), refunded AS (
    SELECT DISTINCT reverses_id AS id FROM assets_ledgertransaction
    WHERE kind = 'top_up_refund' AND member_id BETWEEN %(lo)s AND %(hi)s AND created_at < %(cutoff)s
), t AS (
    SELECT x.member_id, max(x.amount) FILTER (WHERE x.kind = 'top_up' AND r.id IS NULL) AS single,
           sum(CASE x.kind WHEN 'top_up' THEN x.amount ELSE -x.amount END)::bigint AS total
    FROM assets_ledgertransaction x LEFT JOIN refunded r ON r.id = x.id
    WHERE x.member_id BETWEEN %(lo)s AND %(hi)s AND x.kind IN ('top_up', 'top_up_refund') AND x.created_at < %(cutoff)s
    GROUP BY x.member_id
)
SELECT coalesce(g.member_id, t.member_id) AS member_id, g.growth, t.single, t.total
FROM g FULL JOIN t ON t.member_id = g.member_id
"""

# The nightly job reads every member's figures from one pass over the ledgers (a per-batch pass would scan
# them all once per batch), kept in an unlogged table for the run, named after the backend that made it (its
# batches run on several connections; a table whose backend is gone was left by a killed worker).
FIGURES_TABLE = "tier_figures_{pid}"
# batches run at once on this many connections (the ledgers' one pass uses PostgreSQL's parallel workers)
WORKERS = 2

# Where the rules put each member of [lo, hi] (`figures`: the statement above, or the job's table): the rank
# each route reaches and the target. Members without a tier row stand on rank 0. Routes tie-break growth,
# top-up, manual, paid plan: a tier that growth also reaches does not end with a paid plan.
DECIDE_SQL = """
WITH lad AS (
    SELECT * FROM unnest(%(t_id)s::bigint[], %(t_rank)s::int[], %(t_threshold)s::bigint[], %(t_single)s::bigint[],
                         %(t_total)s::bigint[]) AS l(id, rank, threshold, single, total)
), f AS (
    {figures}
), p AS (
    SELECT pp.member_id, max(pr.rank) AS rank
    FROM members_planperiod pp
    JOIN unnest(%(plan_ids)s::bigint[], %(plan_ranks)s::int[]) AS pr(plan_id, rank) ON pr.plan_id = pp.plan_id
    WHERE pp.member_id BETWEEN %(lo)s AND %(hi)s AND pp.starts_at < %(cutoff)s AND pp.ends_at >= %(cutoff)s
    GROUP BY pp.member_id
), routes AS (
    SELECT m.id AS member_id,
           coalesce(f.growth, 0) AS growth,
           coalesce((SELECT max(rank) FROM lad WHERE lad.threshold <= coalesce(f.growth, 0)), 0) AS growth_rank,
           CASE WHEN f.single IS NOT NULL OR f.total IS NOT NULL THEN
               (SELECT max(rank) FROM lad WHERE (lad.single IS NOT NULL AND f.single >= lad.single)
                                             OR (lad.total IS NOT NULL AND f.total >= lad.total))
           END AS top_up_rank,
           p.rank AS plan_rank,
           fl.rank AS floor_rank,
           coalesce(cur.id, (SELECT id FROM lad WHERE lad.rank = 0)) AS cur_id, coalesce(cur.rank, 0) AS cur_rank,
           mt.reached_at, coalesce(mt.source, 'growth') AS source, mt.floor_id, mt.member_id IS NOT NULL AS has_row
    FROM members_member m
    LEFT JOIN f ON f.member_id = m.id
    LEFT JOIN p ON p.member_id = m.id
    -- the range again, so the tier rows are read by their key whatever the statistics say
    LEFT JOIN tiers_membertier mt ON mt.member_id = m.id AND mt.member_id BETWEEN %(lo)s AND %(hi)s
    LEFT JOIN lad cur ON cur.id = mt.tier_id
    LEFT JOIN lad fl ON fl.id = mt.floor_id
    WHERE m.id BETWEEN %(lo)s AND %(hi)s AND m.status <> 'cancelled'
), best AS (
    SELECT r.*,
           greatest(r.growth_rank, coalesce(r.top_up_rank, 0), coalesce(r.plan_rank, 0), coalesce(r.floor_rank, 0))
               AS best_rank
    FROM routes r
), decided AS MATERIALIZED (
    SELECT b.*,
           -- the route that holds the current tier is gone: a paid plan ended, or a manager's floor was removed
           (b.source = 'paid_plan' AND coalesce(b.plan_rank, -1) < b.cur_rank)
             OR (b.source = 'manual' AND coalesce(b.floor_rank, -1) < b.cur_rank) AS route_gone,
           CASE
             -- upgrades wait for the evaluation when so configured, but a paid plan or a floor applies at once
             WHEN b.best_rank > b.cur_rank
                  AND (%(upgrades)s OR b.best_rank IN (coalesce(b.plan_rank, -1), coalesce(b.floor_rank, -1)))
               THEN b.best_rank
             WHEN b.best_rank >= b.cur_rank THEN b.cur_rank
             -- below the current tier: a tier held by a plan or a floor ends with it, whatever the downgrade rule
             WHEN (b.source = 'paid_plan' AND coalesce(b.plan_rank, -1) < b.cur_rank)
                  OR (b.source = 'manual' AND coalesce(b.floor_rank, -1) < b.cur_rank) THEN b.best_rank
             WHEN NOT %(downgrades)s OR %(downgrade)s = 'none' THEN b.cur_rank
             -- placed at or after this cutoff (by this date's run, or a real-time upgrade since): nothing to undo
             WHEN b.reached_at >= %(cutoff)s THEN b.cur_rank
             WHEN b.reached_at > %(hold_since)s THEN b.cur_rank
             WHEN %(downgrade)s = 'qualified' THEN b.best_rank
             ELSE greatest(b.best_rank, (SELECT max(rank) FROM lad WHERE lad.rank < b.cur_rank))
           END AS target_rank
    FROM best b
), evaluated AS (
    SELECT d.member_id, d.cur_id, d.cur_rank,
           (%(t_id)s::bigint[])[array_position(%(t_rank)s::int[], d.target_rank)] AS target_id, d.target_rank,
           CASE
             WHEN d.target_rank = d.cur_rank THEN ''
             WHEN d.target_rank > d.cur_rank THEN
               CASE d.best_rank WHEN d.growth_rank THEN 'growth' WHEN d.top_up_rank THEN 'top_up'
                                WHEN d.floor_rank THEN 'manual' ELSE 'paid_plan' END
             WHEN d.route_gone AND d.source = 'paid_plan' THEN 'plan_expired'
             WHEN d.route_gone THEN 'manual'
             ELSE 'downgrade'
           END AS reason,
           d.growth, d.growth_rank, d.top_up_rank, d.plan_rank, d.floor_rank,
           -- what holds the member on the tier they end on (a plan's or a floor's tier that growth also reaches
           -- is held by growth from then on, so it does not end with the plan)
           CASE
             WHEN d.growth_rank >= d.target_rank THEN 'growth'
             WHEN coalesce(d.top_up_rank, -1) >= d.target_rank THEN 'top_up'
             WHEN coalesce(d.floor_rank, -1) >= d.target_rank THEN 'manual'
             WHEN coalesce(d.plan_rank, -1) >= d.target_rank THEN 'paid_plan'
             ELSE d.source
           END AS holder,
           d.source, d.floor_id, d.has_row
    FROM decided d
)
"""

# One member or a few: every figure of the evaluation.
EVALUATE_SQL = DECIDE_SQL.format(figures=FIGURES_SQL.strip()) + "SELECT * FROM evaluated ORDER BY member_id"

# A dry run over everyone: how many would move from which tier to which.
SIMULATE_SQL = (
    DECIDE_SQL.format(figures=FIGURES_SQL.strip())
    + "SELECT cur_id, target_id, count(*) FROM evaluated WHERE target_rank <> cur_rank GROUP BY cur_id, target_id"
)

# The nightly job's batch: evaluate and write in one statement. Compare-and-set: a member whose tier or floor
# changed since the evaluation read it (a real-time upgrade, a manager's floor) is left for the next run and
# gets no history row; members whose tier is now held by another route only get that noted.
BATCH_SQL = (
    DECIDE_SQL.format(
        figures="SELECT member_id, growth, single, total FROM {figures_table} WHERE member_id BETWEEN %(lo)s AND %(hi)s"
    )
    + """, moving AS (
    SELECT * FROM evaluated WHERE target_rank <> cur_rank
), updated AS (
    UPDATE tiers_membertier t
    SET tier_id = v.target_id, reached_at = %(reached)s, source = v.holder, updated_at = %(at)s
    FROM moving v
    WHERE v.has_row AND t.member_id = v.member_id AND t.tier_id = v.cur_id AND t.member_id BETWEEN %(lo)s AND %(hi)s
      AND t.floor_id IS NOT DISTINCT FROM v.floor_id
    RETURNING t.member_id
), inserted AS (
    INSERT INTO tiers_membertier (member_id, tier_id, reached_at, source, floor_reason, updated_at)
    SELECT v.member_id, v.target_id, %(reached)s, v.holder, '', %(at)s FROM moving v WHERE NOT v.has_row
    ON CONFLICT (member_id) DO NOTHING
    RETURNING member_id
), noted AS (
    UPDATE tiers_membertier t SET source = v.holder
    FROM evaluated v
    WHERE v.target_rank = v.cur_rank AND v.has_row AND v.holder <> v.source
      AND t.member_id = v.member_id AND t.tier_id = v.cur_id AND t.member_id BETWEEN %(lo)s AND %(hi)s
    RETURNING t.member_id
), history AS (
    INSERT INTO tiers_tierchange (member_id, from_tier_id, to_tier_id, reason, note, changed_at, business_date,
                                  job_run_id, staff_id)
    SELECT v.member_id, v.cur_id, v.target_id, v.reason, '', %(at)s, %(business_date)s, %(run)s, NULL
    FROM moving v
    WHERE v.member_id IN (SELECT member_id FROM updated UNION ALL SELECT member_id FROM inserted)
    RETURNING member_id
)
SELECT (SELECT count(*) FROM evaluated), (SELECT count(*) FROM history)
"""
)


@dataclass(frozen=True)
class Evaluation:
    member_id: int
    current_id: int | None
    current_rank: int
    target_id: int
    target_rank: int
    reason: str
    growth: int
    growth_rank: int
    top_up_rank: int | None
    plan_rank: int | None
    floor_rank: int | None
    holder: str = "growth"  # the route holding the tier the member ends on
    source: str = "growth"  # the route recorded as holding the current tier
    floor_id: int | None = None
    has_row: bool = False

    @property
    def changes(self) -> bool:
        return self.target_rank != self.current_rank

    @property
    def holder_changes(self) -> bool:
        return not self.changes and self.has_row and self.holder != self.source


def _params(lo: int, hi: int, *, cutoff: datetime, ladder: Ladder, upgrades: bool, downgrades: bool) -> dict[str, Any]:
    return {
        "lo": lo,
        "hi": hi,
        "cutoff": cutoff,
        "window_start": add_months(cutoff, -ladder.window_months) if ladder.mode == TierRules.Mode.ROLLING else None,
        "t_id": ladder.ids,
        "t_rank": ladder.ranks,
        "t_threshold": ladder.thresholds,
        "t_single": ladder.singles,
        "t_total": ladder.totals,
        "plan_ids": ladder.plan_ids,
        "plan_ranks": ladder.plan_ranks,
        "upgrades": upgrades,
        "downgrades": downgrades,
        "downgrade": ladder.downgrade,
        "hold_since": add_months(cutoff, -ladder.hold_months),
    }


def _evaluate(
    lo: int, hi: int, *, cutoff: datetime, ladder: Ladder, upgrades: bool, downgrades: bool
) -> list[Evaluation]:
    params = _params(lo, hi, cutoff=cutoff, ladder=ladder, upgrades=upgrades, downgrades=downgrades)
    with connection.cursor() as cursor:
        cursor.execute(EVALUATE_SQL, params)
        return [Evaluation(*row) for row in cursor.fetchall()]


def tier_evaluate(*, member: Member, as_of: date, ladder: Ladder | None = None) -> Evaluation:
    """Where the rules put `member` at the end of business day `as_of` (merchant's zone), from the ledgers,
    plans and tier state up to that instant. Writes nothing."""
    ladder = ladder or Ladder.saved()
    found = _evaluate(
        member.pk,
        member.pk,
        cutoff=local_midnight_after(as_of),
        ladder=ladder,
        upgrades=True,
        downgrades=ladder.is_evaluation_day(as_of),
    )
    if not found:
        raise TierError(f"member {member.pk} cannot be evaluated (cancelled?)")
    return found[0]


# ------------------------------------------------------------------ writes


def _apply(
    evaluations: list[Evaluation],
    *,
    business_date: date,
    changed_at: datetime,
    reached_at: datetime | None = None,
    run: JobRun | None = None,
    staff: Staff | None = None,
) -> list[TierChange]:
    """Move the members whose evaluation changes them, with their history rows. Compare-and-set: a member
    whose tier or floor changed since the evaluation (a real-time upgrade, a manager's floor) is left for the
    next run, and gets no history row. Members whose tier is now held by another route only get that noted."""
    moving = [e for e in evaluations if e.changes]
    noted = [e for e in evaluations if e.holder_changes]
    moved: set[int] = set()
    with connection.cursor() as cursor:
        rows = [e for e in moving if e.has_row]
        if rows:
            cursor.execute(
                """
                UPDATE tiers_membertier t
                SET tier_id = v.tier_id, reached_at = %(reached)s, source = v.holder, updated_at = %(at)s
                FROM unnest(%(members)s::bigint[], %(tiers)s::bigint[], %(holders)s::varchar[], %(was)s::bigint[],
                            %(floors)s::bigint[]) AS v(member_id, tier_id, holder, was, floor_id)
                WHERE t.member_id = v.member_id AND t.tier_id = v.was AND t.floor_id IS NOT DISTINCT FROM v.floor_id
                RETURNING t.member_id
                """,
                {
                    "at": changed_at,
                    "reached": reached_at or changed_at,
                    "members": [e.member_id for e in rows],
                    "tiers": [e.target_id for e in rows],
                    "holders": [e.holder for e in rows],
                    "was": [e.current_id for e in rows],
                    "floors": [e.floor_id for e in rows],
                },
            )
            moved |= {row[0] for row in cursor.fetchall()}
        first = [e for e in moving if not e.has_row]
        if first:
            cursor.execute(
                """
                INSERT INTO tiers_membertier (member_id, tier_id, reached_at, source, floor_reason, updated_at)
                SELECT v.member_id, v.tier_id, %(reached)s, v.holder, '', %(at)s
                FROM unnest(%(members)s::bigint[], %(tiers)s::bigint[], %(holders)s::varchar[])
                     AS v(member_id, tier_id, holder)
                ON CONFLICT (member_id) DO NOTHING
                RETURNING member_id
                """,
                {
                    "at": changed_at,
                    "reached": reached_at or changed_at,
                    "members": [e.member_id for e in first],
                    "tiers": [e.target_id for e in first],
                    "holders": [e.holder for e in first],
                },
            )
            moved |= {row[0] for row in cursor.fetchall()}
        if noted:
            cursor.execute(
                """
                UPDATE tiers_membertier t SET source = v.holder
                FROM unnest(%(members)s::bigint[], %(holders)s::varchar[], %(was)s::bigint[])
                     AS v(member_id, holder, was)
                WHERE t.member_id = v.member_id AND t.tier_id = v.was
                """,
                {
                    "members": [e.member_id for e in noted],
                    "holders": [e.holder for e in noted],
                    "was": [e.current_id for e in noted],
                },
            )
    return TierChange.objects.bulk_create(
        TierChange(
            member_id=e.member_id,
            from_tier_id=e.current_id,
            to_tier_id=e.target_id,
            reason=e.reason,
            changed_at=changed_at,
            business_date=business_date,
            job_run=run,
            staff=staff,
        )
        for e in moving
        if e.member_id in moved
    )


def tiers_recalculate(
    *, business_date: date, run: JobRun | None = None, batch: int = BATCH, workers: int = WORKERS
) -> tuple[int, int]:
    """The nightly recalculation over every member, in batches of member ids, one transaction each, the
    batches done saved in the run so a killed worker resumes; upgrades get their gift packs. Set-based: every
    member's figures in one pass over the ledgers first, then one statement per batch that evaluates and
    writes, `workers` batches at a time (one, inside a caller's transaction: other connections would not see
    its data). A second run for the same date changes nothing. Returns (members examined, members moved)."""
    ladder = Ladder.saved()
    cutoff = local_midnight_after(business_date)
    downgrades = ladder.is_evaluation_day(business_date) or _evaluation_missed(ladder, business_date)
    # upgrades: every night, unless they wait for the (monthly) evaluation of a rolling window
    upgrades = ladder.upgrade_timing == TierRules.Timing.REALTIME or downgrades
    saved = (run.cursor or {}) if run is not None else {}
    after, done = int(saved.get("member_id", 0)), set(saved.get("done", []))
    batch = int(saved.get("batch", batch))  # a resumed run keeps the batches its done list names
    examined, changed = int(saved.get("examined", 0)), int(saved.get("changed", 0))
    top = Member.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    # tiers with a gift pack: the others need no per-member work at all
    gifted = set(
        Tier.objects.filter(Q(gift_points__gt=0) | Q(gift_bonus_fen__gt=0) | Q(gift_coupons__isnull=False))
        .values_list("pk", flat=True)
        .distinct()
    )
    todo = [(lo, lo + batch - 1) for lo in range(after + 1, top + 1, batch) if lo + batch - 1 not in done]
    if todo:
        table = _figures_table(cutoff=cutoff, ladder=ladder)
        sql = BATCH_SQL.format(figures_table=table)
        # reached at the end of the evaluated day: a hold of M months ends at that day's M-month mark
        fixed = {"reached": cutoff, "business_date": business_date, "run": run and run.pk}

        def one_batch(lo: int, hi: int) -> tuple[int, int]:
            params = _params(lo, hi, cutoff=cutoff, ladder=ladder, upgrades=upgrades, downgrades=downgrades)
            # one transaction per batch, retried whole on deadlock (a real-time upgrade of a member in this
            # batch takes the same rows the other way round)
            return assets_services.run_in_transaction(  # type: ignore[no-any-return]
                functools.partial(_recalculate_batch, sql, params | fixed, run=run, after=after, batch=batch)
            )

        try:
            if workers <= 1 or len(todo) == 1 or connection.in_atomic_block:
                results = [one_batch(lo, hi) for lo, hi in todo]
            else:
                results = _in_parallel(one_batch, todo, workers)
        finally:
            _figures_drop(table)
        examined += sum(seen for seen, _moved in results)
        changed += sum(moved for _seen, moved in results)
        if run is not None:
            run.refresh_from_db(fields=["cursor"])
    _gifts_sweep(business_date, gifted, ladder)
    return examined, changed


def _in_parallel(
    fn: Callable[[int, int], tuple[int, int]], todo: list[tuple[int, int]], workers: int
) -> list[tuple[int, int]]:
    """Run fn over the batches on `workers` threads, each with its own connection, in order of member ids;
    the first failure stops the others from taking more batches and is raised."""
    pending = iter(todo)
    lock, failed = threading.Lock(), threading.Event()
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while not failed.is_set():
                with lock:
                    taken = next(pending, None)
                if taken is None:
                    return
                outcome = fn(*taken)
                with lock:
                    results.append(outcome)
        except BaseException as exc:
            failed.set()
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=work, name=f"tiers-batch-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:  # interrupted too: no batch starts after this, and none is left running on a dropped table
        failed.set()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def _recalculate_batch(
    sql: str, params: dict[str, Any], *, run: JobRun | None, after: int, batch: int
) -> tuple[int, int]:
    """One batch: evaluate and write in one statement, and add the batch to the run's cursor in the same
    transaction (committed with the batch's changes, or not at all). Returns (examined, moved)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")  # compiling the statement would cost more than running it
        # the foreign keys checked in the statement rather than at commit, where the run's row is locked
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql, params | {"at": timezone.now()})
        seen, moved = cursor.fetchone()
    if run is not None:
        # the run's row, locked last and briefly: batches on other connections add themselves to it too
        # NO KEY UPDATE: the history rows' foreign key holds a KEY SHARE lock on this row already
        state = JobRun.objects.select_for_update(no_key=True).values_list("cursor", flat=True).get(pk=run.pk) or {}
        upto = max(int(state.get("member_id", 0)), after)
        done = set(state.get("done", [])) | {params["hi"]}
        while upto + batch in done:  # every batch up to here is done: the cursor moves past them
            upto += batch
            done.discard(upto)
        cursor_state = {
            "member_id": upto,
            "batch": batch,
            "done": sorted(done),
            "examined": int(state.get("examined", 0)) + seen,
            "changed": int(state.get("changed", 0)) + moved,
        }
        JobRun.objects.filter(pk=run.pk).update(cursor=cursor_state)
    return seen, moved


def _figures_table(*, cutoff: datetime, ladder: Ladder) -> str:
    """Every member's figures at `cutoff`, in one pass over the ledgers, into an unlogged table the run's
    connections share; returns its name. Tables left by killed workers go first."""
    params = _params(0, 2**63 - 1, cutoff=cutoff, ladder=ladder, upgrades=False, downgrades=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ '^tier_figures_[0-9]+$'"
            " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = substring(c.relname from 14)::int)"
        )
        for (left,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE IF EXISTS "{left}"')
        cursor.execute("SELECT pg_backend_pid()")
        table = FIGURES_TABLE.format(pid=cursor.fetchone()[0])
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE UNLOGGED TABLE {table} AS {FIGURES_SQL}", params)
        cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (member_id)")
        cursor.execute(f"ANALYZE {table}")
    return table


def _figures_drop(table: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    except DatabaseError:
        pass  # the connection broke with a batch: the next run drops the table of a backend that is gone


def _evaluation_missed(ladder: Ladder, business_date: date) -> bool:
    """Whether a rolling-window evaluation fell between the last successful nightly run and this one (a night
    the job did not run): then this run evaluates, rather than waiting a month."""
    last = (
        JobRun.objects.filter(job="tiers_recalculate", status=JobRun.Status.SUCCEEDED, business_date__lt=business_date)
        .order_by("-business_date")
        .values_list("business_date", flat=True)
        .first()
    )
    if last is None:
        return False
    return any(ladder.is_evaluation_day(last + timedelta(days=k)) for k in range(1, (business_date - last).days))


def _gifts_sweep(business_date: date, gifted: set[int], ladder: Ladder) -> int:
    """Give the gift packs of the day's upgrades that have none yet, each in a short transaction of its own
    (after the batches, so no batch holds tier rows while it takes members' accounts). A run that died in
    between gives them when it is re-run. Returns how many were given."""
    if not gifted:
        return 0
    given = 0
    pending = (
        TierChange.objects.filter(business_date=business_date, to_tier_id__in=gifted)
        .exclude(Exists(TierGift.objects.filter(member_id=OuterRef("member_id"), tier_id=OuterRef("to_tier_id"))))
        .order_by("pk")
    )
    for change in [c for c in pending if _is_upgrade(c, ladder)]:  # the day's upgrades to gifted tiers only
        given += assets_services.run_in_transaction(functools.partial(_gift_once, change)) is not None
    return given


def _is_upgrade(change: TierChange, ladder: Ladder) -> bool:
    rank = dict(zip(ladder.ids, ladder.ranks, strict=True))
    return change.from_tier_id is None or rank.get(change.to_tier_id, 0) > rank.get(change.from_tier_id, 0)


@transaction.atomic  # joins the caller's transaction: the purchase or top-up that earned it
def tier_upgrade_realtime(*, member: Member, staff: Staff | None = None) -> TierChange | None:
    """Upgrade `member` now if a purchase or top-up just qualified them and upgrades are real-time; call it
    inside the transaction that earned it. Never downgrades. Returns the change, if any."""
    ladder = Ladder.saved()
    if ladder.upgrade_timing != TierRules.Timing.REALTIME:
        return None
    return _upgrade_now(member, ladder=ladder, staff=staff, upgrades=True)


@transaction.atomic  # joins the caller's transaction: the plan's sale or grant
def tier_plan_started(*, member: Member, staff: Staff | None = None) -> TierChange | None:
    """A paid plan's tier applies as soon as the plan is granted or sold, whatever the upgrade timing (other
    upgrades still wait for it). Call it inside the transaction that granted the plan."""
    ladder = Ladder.saved()
    return _upgrade_now(member, ladder=ladder, staff=staff, upgrades=ladder.upgrade_timing == TierRules.Timing.REALTIME)


def _upgrade_now(member: Member, *, ladder: Ladder, staff: Staff | None, upgrades: bool) -> TierChange | None:
    now = timezone.now()
    # a row lock on the member's tier (made if missing) queues two events upgrading one member at once
    MemberTier.objects.get_or_create(
        member=member, defaults={"tier": base_tier(), "reached_at": member.registered_at, "source": "growth"}
    )
    MemberTier.objects.select_for_update().get(member=member)
    found = _evaluate(
        member.pk, member.pk, cutoff=now + timedelta(microseconds=1), ladder=ladder, upgrades=upgrades, downgrades=False
    )
    if not found or found[0].target_rank <= found[0].current_rank:
        return None
    evaluation = found[0]
    changes = _apply([evaluation], business_date=timezone.localdate(now), changed_at=now, staff=staff)
    if not changes:  # cannot happen while the row lock is held; never fail the purchase over it
        return None
    _gift_once(changes[0])
    return changes[0]


def _gift_once(change: TierChange) -> TierGift | None:
    """The upgrade gift pack of the tier reached, at most once per member and tier: the unique row decides
    who gives it, and each part goes through the ledger services under a key derived from that row."""
    tier = Tier.objects.prefetch_related("gift_coupons").get(pk=change.to_tier_id)
    coupons = list(tier.gift_coupons.order_by("pk"))
    if not (tier.gift_points or tier.gift_bonus_fen or coupons):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tiers_tiergift (member_id, tier_id, change_id, granted_at, details)"
            " VALUES (%s, %s, %s, %s, '{}') ON CONFLICT (member_id, tier_id) DO NOTHING RETURNING id",
            [change.member_id, tier.pk, change.pk, timezone.now()],
        )
        row = cursor.fetchone()
    if row is None:
        return None  # given before (an earlier upgrade to this tier, or a concurrent one)
    member = Member.objects.get(pk=change.member_id)
    actor, key = f"tier:{tier.pk}", f"tier-gift:{member.pk}:{tier.pk}"
    details: dict[str, Any] = {}
    with pghistory.context(action="tier_gift", tier=tier.pk):
        # a part the ledger refuses (a frozen member) is recorded as skipped: it never stops an upgrade or the job
        if tier.gift_points:
            try:
                details["points_tx"] = assets_services.points_earn(
                    member=member,
                    points=tier.gift_points,
                    idempotency_key=f"{key}:points",
                    actor=actor,
                    reason=tier.name,
                ).pk
            except assets_services.LedgerError as exc:
                details["points_skipped"] = exc.code
        if tier.gift_bonus_fen:
            try:
                details["bonus_tx"] = assets_services.balance_bonus_grant(
                    member=member,
                    amount_fen=tier.gift_bonus_fen,
                    idempotency_key=f"{key}:bonus",
                    actor=actor,
                    reason=tier.name,
                ).pk
            except assets_services.LedgerError as exc:
                details["bonus_skipped"] = exc.code
        issued, skipped = [], []
        for template in coupons:
            try:
                issued.append(
                    assets_services.coupon_issue(
                        template=template,
                        member=member,
                        channel=Coupon.Channel.TIER_GIFT,
                        idempotency_key=f"{key}:coupon:{template.pk}",
                        actor=actor,
                    ).pk
                )
            except assets_services.LedgerError:
                skipped.append(template.pk)
        if issued or skipped:
            details |= {"coupons": issued, "coupons_skipped": skipped}
    gift = TierGift.objects.get(pk=row[0])
    gift.details = json.loads(json.dumps(details))
    gift.save(update_fields=["details"])
    return gift


def tier_set_manual(*, member: Member, tier: Tier | None, reason: str, staff: Staff, by: User | None = None) -> None:
    """A manager's floor: the member stands at least on `tier` until it is removed (tier=None). Setting it
    moves the member up at once; removing it lets the next evaluation apply the usual rules."""
    if not reason.strip():
        raise TierError("reason required")
    now = timezone.now()
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="tier_floor", reason=reason[:200]):
        state, _created = MemberTier.objects.select_for_update().get_or_create(
            member=member, defaults={"tier": base_tier(), "reached_at": member.registered_at, "source": "growth"}
        )
        state.floor, state.floor_reason = tier, reason[:200] if tier else ""
        state.save(update_fields=["floor", "floor_reason", "updated_at"])
        if tier is not None and tier.rank > state.tier.rank:
            TierChange.objects.create(
                member=member,
                from_tier=state.tier,
                to_tier=tier,
                reason=TierChange.Reason.MANUAL,
                note=reason[:200],
                changed_at=now,
                business_date=timezone.localdate(now),
                staff=staff,
            )
            state.tier, state.reached_at, state.source = tier, now, TierChange.Reason.MANUAL
            state.save(update_fields=["tier", "reached_at", "source", "updated_at"])
            _gift_once(TierChange.objects.filter(member=member).order_by("-pk").first())  # type: ignore[arg-type]


def tiers_simulate(*, ladder: Ladder, as_of: date) -> dict[tuple[int | None, int], int]:
    """A dry run of `ladder` (a draft: unsaved tiers carry negative ids) over every member as the nightly job
    would place them after `as_of`: how many members would move from which tier to which. Writes nothing."""
    downgrades = ladder.is_evaluation_day(as_of)
    params = _params(
        0, 2**63 - 1, cutoff=local_midnight_after(as_of), ladder=ladder, upgrades=True, downgrades=downgrades
    )
    with connection.cursor() as cursor:
        cursor.execute(SIMULATE_SQL, params)
        return {(cur, target): count for cur, target, count in cursor.fetchall()}


def tier_simulation_start(
    *, ladder: Ladder, tiers: dict[int, Tier], as_of: date, evaluation_day: date | None, by: User | None
) -> TierSimulation:
    """Queue the dry run of a draft `ladder` (its tiers by the ids it gives them) for a worker; the preview
    polls the returned row. Simulations older than a week are cleared on the way."""
    from tiers import tasks  # the task module imports this one

    TierSimulation.objects.filter(created_at__lt=timezone.now() - timedelta(days=7)).delete()
    simulation = TierSimulation.objects.create(
        draft=dataclasses.asdict(ladder),
        tiers={
            str(pk): {"name": t.name, "rank": t.rank, "colour": t.colour, "icon": t.icon} for pk, t in tiers.items()
        },
        as_of=as_of,
        evaluation_day=evaluation_day,
        requested_by=by,
    )
    transaction.on_commit(lambda: tasks.tier_simulation_task.delay(simulation_id=simulation.pk))
    return simulation


def tier_simulation_run(*, simulation_id: int) -> TierSimulation:
    """Run a queued simulation: the draft and the saved ladder over every member, their moves paired. A message
    delivered again runs it again (it only reads); a finished one is left as it is."""
    claimed = TierSimulation.objects.filter(
        pk=simulation_id, status__in=(TierSimulation.Status.PENDING, TierSimulation.Status.RUNNING)
    ).update(status=TierSimulation.Status.RUNNING)
    simulation = TierSimulation.objects.get(pk=simulation_id)
    if not claimed:
        return simulation
    started = time.monotonic()
    try:
        draft = tiers_simulate(ladder=Ladder(**simulation.draft), as_of=simulation.as_of)
        anyway = tiers_simulate(ladder=Ladder.saved(), as_of=simulation.as_of)
    except Exception as exc:
        simulation.status, simulation.error = TierSimulation.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        simulation.finished_at = timezone.now()
        simulation.save(update_fields=["status", "error", "finished_at"])
        raise
    moves = {key: [n, 0] for key, n in draft.items()}
    for key, n in anyway.items():
        moves.setdefault(key, [0, 0])[1] += n
    simulation.moves = [[src, dst, n, m] for (src, dst), (n, m) in sorted(moves.items(), key=str)]
    simulation.members = Member.objects.exclude(status=Member.Status.CANCELLED).count()
    simulation.status, simulation.seconds = TierSimulation.Status.DONE, time.monotonic() - started
    simulation.finished_at = timezone.now()
    simulation.save(update_fields=["moves", "members", "status", "seconds", "finished_at"])
    return simulation


def growth_for_paid(paid_fen: int, *, rules: TierRules | None = None) -> int:
    """Growth value earned on money paid (the rules' rate per yuan, rounded down)."""
    rate = (rules or tier_rules()).growth_per_yuan
    return max(0, paid_fen) * rate // 100


def growth_for_top_up(amount_fen: int, *, rules: TierRules | None = None) -> int:
    """Growth value earned on a top-up (0 unless the merchant counts top-ups)."""
    rate = (rules or tier_rules()).growth_per_yuan_top_up
    return max(0, amount_fen) * rate // 100
