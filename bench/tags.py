"""Tags section: the nightly RFM and lifecycle jobs against one hand-written SQL statement computing the same
RFM scores.

The jobs are `tags.rfm.rfm_job` and `tags.lifecycle.lifecycle_job` for yesterday, as they run on an ordinary
night: the night before has scored and staged every member (the first run after going live: timed and printed
as `first_run`, no target), and yesterday's purchases move some members. The baseline is one SQL statement
computing every scored member's recency, frequency, monetary and tie-consistent quintile scores for the same
date and window, as written by hand from the spec; it runs before and after the jobs, and its figure is the
mean of the two, so caching weighs on both sides alike. The job's scores (members per R, F, M score) must equal
the baseline's. Target: RFM and lifecycle together take at most 2x the baseline.

Then the rule tags: three rules over purchases and member fields (spend in 30 days, purchases in 90 days, last
purchase more than 180 days ago and registered within two years), the job's step for them timed on a first run
(everyone new) and on a run that changes nothing, beside the evaluation alone (each rule's SELECT count, the
statement the job diffs against current rows); the whole job once more (with the preference tags, top category
over the purchase lines); and the member list filtered by one of them through Django's test client. Figures
only, no target.

Data: `huiyuan_bench_tags` (1,000,000 members and 10,000,000 purchases; BENCH_SCALE=small:
`huiyuan_bench_tags_10000`, 100,000 purchases), kept and reused. Members come from seed_members' loader. Each
member makes 0 to 20 purchases (10 on average) over the last 18 months, on days of its own, one in fifty
partly refunded; purchases are written by set-based INSERTs per range of members, `bench_tags_state`
records how far generation got.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from bench.members import _timed, ensure_owner, prepare_members
from members.models import Member, Store
from tags import lifecycle, rfm, rules, services
from tags.models import Tag, TagGroup

SIZE = 1_000_000
STORES = 20
BENCH_DATABASE = "huiyuan_bench_tags"
TARGET = 2.0
SPAN_DAYS = 548
MAX_PURCHASES = 20
CHUNK = 50_000  # members per generation statement


def database_name(size: int) -> str:
    return BENCH_DATABASE if size == SIZE else f"{BENCH_DATABASE}_{size}"


def _say(line: str) -> None:
    print(line, flush=True)


GENERATE_SQL = """
WITH members AS (
    SELECT id, hashint8(id)::bigint AS h FROM members_member WHERE id > %(after)s AND id <= %(upto)s
), purchases AS (
    SELECT m.id AS member_id, n,
           -- the day: spread over the span, later purchases of a member later on average
           %(today)s::date - 1 - (abs(hashint8(m.h + n)::bigint) %% %(span)s)::int AS day,
           -- a spend level per member (100 to ~2,000 yuan a visit), varied per purchase
           (1000 + (abs(m.h) %% 20000) * (50 + abs(hashint8(m.h - n)::bigint) %% 100) / 100)::bigint AS paid,
           (abs(hashint8(m.h * 31 + n)::bigint) %% %(stores)s)::int AS store_index
    FROM members m
    CROSS JOIN LATERAL generate_series(1, (abs(m.h) %% (%(max)s + 1))::int) AS n
)
INSERT INTO assets_purchase (
    order_no, store_id, member_id, actor, source, external_ref, occurred_at, business_date, gross_fen, discount_fen,
    coupon_fen, points_used, points_offset_fen, payable_fen, balance_fen, cash_fen, card_fen, wechat_fen,
    alipay_fen, other_fen, points_earned, growth_earned, multiplier_percent, refunded_fen, details
)
SELECT 'B' || p.member_id || '-' || p.n, (%(store_ids)s::bigint[])[p.store_index + 1], p.member_id, 'bench',
       'counter', '', (p.day + time '12:00') AT TIME ZONE %(tz)s, p.day, p.paid, 0, 0, 0, 0, p.paid, 0, p.paid,
       0, 0, 0, 0, p.paid / 100, p.paid / 100, 100, 0, '{}'::jsonb
FROM purchases p
"""

REFUND_SQL = """
WITH chosen AS (
    SELECT id, payable_fen / 3 AS amount, business_date + 1 AS day
    FROM assets_purchase
    WHERE member_id > %(after)s AND member_id <= %(upto)s AND hashint8(id) %% 50 = 0
      AND business_date < %(today)s::date - 1
), refunds AS (
    INSERT INTO assets_purchaserefund (purchase_id, amount_fen, balance_fen, cash_fen, card_fen, wechat_fen,
        alipay_fen, other_fen, points_restored, points_clawed_back, growth_clawed_back, coupon_restored, reason,
        actor, created_at, business_date, details)
    SELECT id, amount, 0, amount, 0, 0, 0, 0, 0, 0, 0, false, '', 'bench', now(), day, '{}'::jsonb FROM chosen
    RETURNING purchase_id, amount_fen
)
UPDATE assets_purchase p SET refunded_fen = r.amount_fen FROM refunds r WHERE p.id = r.purchase_id
"""


def _state() -> dict[str, Any] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_tags_state (id int PRIMARY KEY, upto bigint, done boolean, "
            "seconds float8, today date)"
        )
        cursor.execute("SELECT upto, done, seconds, today FROM bench_tags_state WHERE id = 1")
        row = cursor.fetchone()
    return None if row is None else {"upto": row[0], "done": row[1], "seconds": row[2], "today": row[3]}


def _prepare(name: str, size: int) -> date | None:
    """Migrate, load members up to `size`, generate purchases once. Returns the day the data was made for."""
    prepare_members(name, size, stores=STORES)
    state = _state()
    if state is not None and state["done"]:
        _say(f"# {name}: purchases generated before in {state['seconds']:.0f} s")
        return state["today"]  # type: ignore[no-any-return]
    today = state["today"] if state else timezone.localdate()
    upto = state["upto"] if state else 0
    seconds = state["seconds"] if state else 0.0
    store_ids = list(Store.objects.order_by("pk").values_list("pk", flat=True)[:STORES])
    last_id = Member.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with connection.cursor() as cursor:
        if state is None:
            cursor.execute("INSERT INTO bench_tags_state VALUES (1, 0, false, 0, %s)", [today])
        while upto < last_id:
            started = time.perf_counter()
            params = {
                "after": upto,
                "upto": upto + CHUNK,
                "today": today,
                "span": SPAN_DAYS,
                "max": MAX_PURCHASES,
                "stores": len(store_ids),
                "store_ids": store_ids,
                "tz": timezone.get_current_timezone_name(),
            }
            cursor.execute("BEGIN")
            cursor.execute(GENERATE_SQL, params)
            cursor.execute(REFUND_SQL, params)
            upto += CHUNK
            seconds += time.perf_counter() - started
            cursor.execute("UPDATE bench_tags_state SET upto = %s, seconds = %s WHERE id = 1", [upto, seconds])
            cursor.execute("COMMIT")
            if (upto // CHUNK) % 4 == 0:
                _say(f"# {name}: purchases of members up to id {upto} written ({seconds:.0f} s)")
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE assets_purchase")
        cursor.execute("VACUUM ANALYZE assets_purchaserefund")
        seconds += time.perf_counter() - started
        cursor.execute("UPDATE bench_tags_state SET done = true, seconds = %s WHERE id = 1", [seconds])
        cursor.execute("SELECT count(*) FROM assets_purchase")
        (purchases,) = cursor.fetchone()
    _say(f"# {name}: wrote {purchases} purchases in {seconds:.0f} s")
    return today  # type: ignore[no-any-return]


# The baseline: the spec's RFM written by hand as one statement (refunds summed per purchase and joined,
# count(DISTINCT ...) per member, rank() for "1 + the number of strictly worse members"), counting members per
# (R, F, M) score. It reads the same tables and indexes as the job.
BASELINE_SQL = """
WITH refunds AS (
    SELECT purchase_id, sum(amount_fen) AS refunded FROM assets_purchaserefund
    WHERE business_date <= %(day)s GROUP BY purchase_id
), paid AS (
    SELECT p.member_id, p.business_date, p.payable_fen - COALESCE(r.refunded, 0) AS net
    FROM assets_purchase p LEFT JOIN refunds r ON r.purchase_id = p.id
    WHERE p.member_id IS NOT NULL AND p.payable_fen > 0
      AND p.business_date BETWEEN %(start)s AND %(day)s AND p.payable_fen - COALESCE(r.refunded, 0) > 0
), figures AS (
    SELECT member_id, %(day)s::date - max(business_date) AS recency, count(DISTINCT business_date) AS frequency,
           sum(net) AS monetary
    FROM paid WHERE member_id IN (SELECT id FROM members_member WHERE status <> 'cancelled')
    GROUP BY member_id
), ranked AS (
    SELECT rank() OVER (ORDER BY recency DESC) AS rr, rank() OVER (ORDER BY frequency) AS fr,
           rank() OVER (ORDER BY monetary) AS mr, count(*) OVER () AS n
    FROM figures
)
SELECT LEAST(5, 1 + 5 * (rr - 1) / n) AS r, LEAST(5, 1 + 5 * (fr - 1) / n) AS f,
       LEAST(5, 1 + 5 * (mr - 1) / n) AS m, count(*)
FROM ranked GROUP BY 1, 2, 3
"""


def _baseline(day: date) -> tuple[float, dict[tuple[int, int, int], int]]:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
        cursor.execute(BASELINE_SQL, {"day": day, "start": rfm.window_start(day)})
        rows = cursor.fetchall()
    return time.perf_counter() - started, {(r, f, m): n for r, f, m, n in rows}


def _job_scores() -> dict[tuple[int, int, int], int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT r, f, m, count(*) FROM tags_rfmscore GROUP BY 1, 2, 3")
        return {(r, f, m): n for r, f, m, n in cursor.fetchall()}


def _reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tags_rfmscore, tags_rfmchange, tags_memberlifecycle, tags_lifecyclechange")


@dataclass
class Measured:
    rfm_seconds: float
    lifecycle_seconds: float
    scored: int
    rfm_written: int
    staged: int
    lifecycle_written: int

    @property
    def seconds(self) -> float:
        return self.rfm_seconds + self.lifecycle_seconds


def _measure(day: date) -> Measured:
    started = time.perf_counter()
    scored, rfm_written = rfm.rfm_job(business_date=day)
    middle = time.perf_counter()
    staged, lifecycle_written = lifecycle.lifecycle_job(business_date=day)
    return Measured(middle - started, time.perf_counter() - middle, scored, rfm_written, staged, lifecycle_written)


def run(*, divisor: int = 1) -> None:
    size = SIZE // divisor
    name = database_name(size)
    _say(f"\n## tags: RFM and lifecycle over {size:,} members")
    today = _prepare(name, size)
    if today is None:
        return
    night = today - timedelta(days=1)  # the data's last business day: the night's run
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM assets_purchase")
        (purchases,) = cursor.fetchone()
    _say(f"# {purchases:,} purchases; window {rfm.window_start(night)} to {night}")
    before, expected = _baseline(night)
    _reset()
    first = _measure(night - timedelta(days=1))  # the first run after going live: everyone is new
    nightly = _measure(night)
    after, _again = _baseline(night)
    baseline = (before + after) / 2
    got = _job_scores()
    _say(f"baseline_sql_seconds: {baseline:.2f} (before {before:.2f}, after {after:.2f})")
    _say(
        f"first_run_seconds: {first.seconds:.2f} (rfm {first.rfm_seconds:.2f}, lifecycle "
        f"{first.lifecycle_seconds:.2f}; {first.scored:,} scored, {first.staged:,} staged), "
        f"ratio {first.seconds / baseline:.2f}"
    )
    _say(
        f"night_seconds: {nightly.seconds:.2f} (rfm {nightly.rfm_seconds:.2f}, lifecycle "
        f"{nightly.lifecycle_seconds:.2f}; {nightly.scored:,} scored, {nightly.rfm_written:,} RFM rows written, "
        f"{nightly.lifecycle_written:,} lifecycle rows written)"
    )
    ratio = nightly.seconds / baseline
    same = got == expected
    _say(f"scores_equal_baseline: {'yes' if same else 'NO'} ({sum(got.values()):,} members scored)")
    _say(
        f"ratio_night_to_baseline: {ratio:.2f} (target {TARGET:.0f}: {'PASS' if ratio <= TARGET and same else 'FAIL'})"
    )
    run_rules(night)


RULES = {
    "bench: spent 500 in 30 days": {"match": "all", "conditions": [{"field": "spend", "days": 30, "min_fen": 50_000}]},
    "bench: 3 visits in 90 days": {"match": "all", "conditions": [{"field": "purchase_count", "days": 90, "min": 3}]},
    "bench: lapsed recent joiners": {
        "match": "all",
        "conditions": [{"field": "last_purchase", "days": 180}, {"field": "registered_within", "days": 730}],
    },
}


def _rule_tags() -> list[Tag]:
    group, _created = TagGroup.objects.get_or_create(dimension=TagGroup.Dimension.CUSTOM, name="bench")
    found = []
    for name, rule in RULES.items():
        tag, _created = Tag.objects.update_or_create(
            name=name, group=group, defaults={"kind": Tag.Kind.RULE, "rule": rule, "is_active": True}
        )
        found.append(tag)
    return found


def _apply_rules(tags: list[Tag], night: date) -> tuple[float, int]:
    """The job's per-tag step (tag_rule_apply and the recount, one transaction each) for these tags."""
    started, changed = time.perf_counter(), 0
    for tag in tags:
        with transaction.atomic():
            added, removed = services.tag_rule_apply(tag, business_date=night)
            services.tag_recount(Tag.objects.filter(pk=tag.pk))
        changed += added + removed
    return time.perf_counter() - started, changed


def run_rules(night: date) -> None:
    """The rule tags at this size: their evaluation alone (one SELECT count per rule) beside the job's step
    for them on a first run and on a run that changes nothing; the whole `tags_rules` job, which also keeps
    the preference tags; and the member list filtered by one of them."""
    from django.test import Client

    tags = _rule_tags()
    ids = [tag.pk for tag in tags]
    with connection.cursor() as cursor:  # only the bench's rule tags start afresh
        cursor.execute("DELETE FROM tags_membertag WHERE tag_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM tags_membertagevent WHERE tag_id = ANY(%s)", [ids])
    started = time.perf_counter()
    for tag in tags:
        rules.rule_member_count(rules.rule_clean(tag.rule, check_references=False), as_of=night)
    evaluation = time.perf_counter() - started
    first, first_changed = _apply_rules(tags, night)
    again, again_changed = _apply_rules(tags, night)
    started = time.perf_counter()
    services.tags_rules_job(business_date=night, run=None)
    job = time.perf_counter() - started
    held = {tag.name: tag.member_count for tag in Tag.objects.filter(pk__in=ids)}
    _say(f"rules_evaluation_seconds: {evaluation:.2f} (3 rules, SELECT count each; held {held})")
    _say(f"rules_apply_first_seconds: {first:.2f} ({first_changed:,} tags given), ratio {first / evaluation:.2f}")
    _say(f"rules_apply_again_seconds: {again:.2f} ({again_changed:,} changes), ratio {again / evaluation:.2f}")
    _say(f"tags_rules_job_seconds: {job:.2f} (the 3 rules unchanged, and the preference tags)")
    client = Client()
    client.force_login(ensure_owner())
    url = f"/members/?tag={tags[0].pk}"
    if (status := client.get(url).status_code) != 200:
        _say(f"# member list by tag: GET {url} answered {status}; not timed")
        return
    _say(f"member_list_by_tag_ms: {_timed(lambda: client.get(url)):.1f} (median; {held[tags[0].name]:,} hold it)")
