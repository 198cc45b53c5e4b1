"""What the nightly RFM and lifecycle passes share: which purchases count as paid on a business date, the
staged pass that writes them, and how the system tags that read their tables are counted."""

from datetime import date
from typing import Any

from django.db import connection, transaction

from tags import selectors
from tags.models import Tag

# Members' paid purchases up to %(day)s and from %(start)s: money paid (payable_fen > 0) and not refunded in full
# by that day; `net` is what stays paid. Read from the purchase_paid_day_idx index alone.
PAID_PURCHASES_SQL = """
SELECT p.member_id, p.business_date, p.payable_fen - COALESCE(r.refunded, 0) AS net
FROM assets_purchase p
LEFT JOIN (
    SELECT purchase_id, sum(amount_fen) AS refunded FROM assets_purchaserefund
    WHERE business_date <= %(day)s GROUP BY purchase_id
) r ON r.purchase_id = p.id
WHERE p.member_id IS NOT NULL AND p.payable_fen > 0
  AND p.business_date <= %(day)s AND p.business_date >= %(start)s
  AND p.payable_fen - COALESCE(r.refunded, 0) > 0
"""


def system_tags_count(prefix: str, table: str, column: str) -> None:
    """Tag.member_count of the system tags `<prefix>:<value>` from the rows of `table` per `column` (the
    Tags page reads these counts). Table and column are the jobs' own constants, never user input."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE tags_tag t SET member_count = COALESCE(c.n, 0), counted_at = now()
            FROM tags_tag t2
            LEFT JOIN (SELECT {column} AS value, count(*) AS n FROM {table} GROUP BY {column}) c
                   ON t2.code = %(prefix)s || ':' || c.value
            WHERE t.id = t2.id AND t2.kind = %(kind)s AND t2.code LIKE %(like)s
            """,
            {"prefix": prefix, "kind": Tag.Kind.SYSTEM, "like": f"{prefix}:%"},
        )


def staged_pass(
    job: str,
    business_date: date,
    *,
    stage: str,
    stage_sql: str,
    params: dict[str, Any],
    apply_sql: str,
    table: str,
    column: str,
) -> tuple[int, int]:
    """One nightly pass, set-based and in one transaction: `stage_sql` (with `params`) stages every row in the
    temporary table `stage`, `apply_sql` writes the history and brings `table` in line, and the system tags
    `<job>:<value of column>` are counted from `table`. One run at a time and never behind a later one: raises
    selectors.JobOutOfOrder. Returns (rows staged, rows written: history, removed, changed and added). Names
    and SQL are the jobs' own constants, never user input."""
    with transaction.atomic(), connection.cursor() as cursor:
        selectors.job_hold(job, business_date)
        cursor.execute("SET LOCAL jit = off")  # compiling these plans costs more than it saves
        cursor.execute(f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS {stage_sql}", params)
        cursor.execute(f"ANALYZE {stage}")
        cursor.execute(apply_sql, {"day": business_date})
        staged, history, removed, changed, added = cursor.fetchone()
        cursor.execute(f"DROP TABLE {stage}")  # at once: inside a caller's transaction, commit is later
        system_tags_count(job, table, column)
    return staged, history + removed + changed + added
