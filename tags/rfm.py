"""RFM: recency, frequency and monetary value of every member who bought in the window, scored 1-5 by
tie-consistent quintiles and named by the segment table (SPEC "tags", implemented literally).

As of a business date D, over the window of HUIYUAN_RFM_WINDOW_DAYS days ending on D (D included; 0 = all
history up to D), counting paid purchases: money paid (payable_fen > 0) and not refunded in full by D.
Cancelled memberships are not scored.
- recency = D - the business date of the member's last such purchase, in days (the day before D: 1);
- frequency = the number of distinct business days with at least one such purchase;
- monetary = the total paid for them, net of their refunds dated up to D, in fen.
Scores among the n members who bought in the window: order them from worst to best, rank = 1 + the number of
strictly worse members, score = min(5, 1 + floor(5 * (rank - 1) / n)), so equal values always score alike.
SQL's rank() over the worst-first order is exactly that rank. The cell is "RFM" (e.g. "545"); the segment is
the name of the first row of the segment table (by position) whose R, F and M ranges hold the member's scores.

The `rfm` job writes the scores of D into RfmScore, one row per scored member, changing only the rows whose
figures or scores moved, and adds an RfmChange row (the dated history) for each member first scored, moved
to another cell or segment, or no longer scored. rfm_rows(D) computes the same rows for any date without
writing (export_rfm)."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pghistory
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from reports.models import JobRun
from tags import selectors
from tags.models import RfmSegment, Segment, Tag, TagGroup, segment_label
from tags.paid import PAID_PURCHASES_SQL, staged_pass

FIGURES_SQL = f"""
SELECT member_id, max(business_date) AS last_date, count(DISTINCT business_date) AS frequency, sum(net) AS monetary
FROM ({PAID_PURCHASES_SQL}) paid
GROUP BY member_id
"""

SCORES_SQL = f"""
WITH figures AS ({FIGURES_SQL}),
ranked AS (
    SELECT member_id, last_date, frequency, monetary,
           rank() OVER (ORDER BY last_date) AS r_rank,
           rank() OVER (ORDER BY frequency) AS f_rank,
           rank() OVER (ORDER BY monetary) AS m_rank,
           count(*) OVER () AS n
    FROM figures
    JOIN members_member m ON m.id = figures.member_id AND m.status <> 'cancelled'
), scored AS (
    SELECT member_id, last_date, %(day)s::date - last_date AS recency_days, frequency, monetary,
           LEAST(5, 1 + 5 * (r_rank - 1) / n)::smallint AS r,
           LEAST(5, 1 + 5 * (f_rank - 1) / n)::smallint AS f,
           LEAST(5, 1 + 5 * (m_rank - 1) / n)::smallint AS m
    FROM ranked
)
SELECT s.member_id, s.last_date, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m,
       s.r::text || s.f::text || s.m::text AS cell, COALESCE(cells.name, '') AS segment
FROM scored s
LEFT JOIN (SELECT * FROM unnest(%(cell_r)s::smallint[], %(cell_f)s::smallint[], %(cell_m)s::smallint[],
                                %(cell_name)s::text[]) AS c(r, f, m, name)) cells
       ON cells.r = s.r AND cells.f = s.f AND cells.m = s.m
"""

# One pass over the staged scores and the current rows: the history of what moved, then the current rows
# brought in line (removed, changed, added). Rows whose figures and scores are unchanged are not touched.
APPLY_SQL = """
WITH diff AS (
    SELECT s.member_id AS new_id, c.member_id AS old_id, s.last_date, s.recency_days, s.frequency, s.monetary,
           s.r, s.f, s.m, s.cell, s.segment, c.cell AS old_cell, c.segment AS old_segment
    FROM tags_rfm_stage s
    FULL JOIN tags_rfmscore c ON c.member_id = s.member_id
    WHERE s.member_id IS NULL OR c.member_id IS NULL
       OR (s.last_date, s.frequency, s.monetary, s.r, s.f, s.m, s.segment)
          IS DISTINCT FROM (c.last_purchase_date, c.frequency, c.monetary_fen, c.r, c.f, c.m, c.segment)
), history AS (
    INSERT INTO tags_rfmchange (member_id, business_date, recency_days, frequency, monetary_fen, cell, segment,
                                previous_cell, previous_segment)
    SELECT COALESCE(new_id, old_id), %(day)s, recency_days, frequency, monetary, COALESCE(cell, ''),
           COALESCE(segment, ''), COALESCE(old_cell, ''), COALESCE(old_segment, '')
    FROM diff
    WHERE new_id IS NULL OR old_id IS NULL OR cell <> old_cell OR segment <> old_segment
    ON CONFLICT (member_id, business_date) DO UPDATE
        SET recency_days = EXCLUDED.recency_days, frequency = EXCLUDED.frequency,
            monetary_fen = EXCLUDED.monetary_fen, cell = EXCLUDED.cell, segment = EXCLUDED.segment
    RETURNING 1
), removed AS (
    DELETE FROM tags_rfmscore c USING diff d WHERE d.new_id IS NULL AND c.member_id = d.old_id RETURNING 1
), changed AS (
    UPDATE tags_rfmscore c
    SET last_purchase_date = d.last_date, frequency = d.frequency, monetary_fen = d.monetary, r = d.r, f = d.f,
        m = d.m, cell = d.cell, segment = d.segment, changed_on = %(day)s
    FROM diff d
    WHERE d.new_id IS NOT NULL AND d.old_id IS NOT NULL AND c.member_id = d.old_id
    RETURNING 1
), added AS (
    INSERT INTO tags_rfmscore (member_id, last_purchase_date, frequency, monetary_fen, r, f, m, cell, segment,
                               changed_on)
    SELECT new_id, last_date, frequency, monetary, r, f, m, cell, segment, %(day)s FROM diff WHERE old_id IS NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM tags_rfm_stage), (SELECT count(*) FROM history), (SELECT count(*) FROM removed),
       (SELECT count(*) FROM changed), (SELECT count(*) FROM added)
"""


class SegmentInUse(ValueError):
    """A segment the table would lose is named by saved segments (their definitions); nothing was saved."""


class RfmOutOfOrder(ValueError):
    """A run for a later date has started or finished; rfm_rows computes an earlier date without writing."""


def window_start(day: date, window_days: int | None = None) -> date:
    """The first business date of the window that ends on `day` (`day` included); date.min for all history."""
    days = settings.HUIYUAN_RFM_WINDOW_DAYS if window_days is None else window_days
    return date.min if days <= 0 else day - timedelta(days=days - 1)


def window_days() -> int:
    return int(settings.HUIYUAN_RFM_WINDOW_DAYS)


SEGMENT_FIELDS = ("name", "r_min", "r_max", "f_min", "f_max", "m_min", "m_max")
ALL_M = {"m_min": 1, "m_max": 5}  # a row given without M ranges holds every M


def cells_of(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[int, int, int], str]:
    """(R, F, M) → segment name for the 125 cells: the first of `rows` (in order) whose ranges hold the cell.
    A cell no row holds has no segment. A row without M ranges holds every M."""
    cells: dict[tuple[int, int, int], str] = {}
    for row in rows:
        for r in range(row["r_min"], row["r_max"] + 1):
            for f in range(row["f_min"], row["f_max"] + 1):
                for m in range(row.get("m_min", ALL_M["m_min"]), row.get("m_max", ALL_M["m_max"]) + 1):
                    cells.setdefault((r, f, m), row["name"])
    return cells


def segment_cells() -> dict[tuple[int, int, int], str]:
    """The saved segment table's cells (cells_of, rows by position)."""
    return cells_of(RfmSegment.objects.order_by("position", "pk").values(*SEGMENT_FIELDS))


def rf_names(cells: Mapping[tuple[int, int, int], str], r: int, f: int) -> list[tuple[int, int, str]]:
    """What the R x F cell (r, f) is named, by M: runs of (M from, M to, name), M1 first; a run with no
    segment has the name ''. One run (1, 5, name) when every M reads alike."""
    runs: list[tuple[int, int, str]] = []
    for m in range(1, 6):
        name = cells.get((r, f, m), "")
        if runs and runs[-1][2] == name:
            runs[-1] = (runs[-1][0], m, name)
        else:
            runs.append((m, m, name))
    return runs


@transaction.atomic
def rfm_segments_save(*, rows: list[dict[str, Any]], by: User | None) -> list[RfmSegment]:
    """Replace the segment table by `rows` (in order; each with name, r_min, r_max, f_min, f_max, m_min, m_max
    and the id of the row it edits, or none for a new row), audited by pghistory. Each segment keeps its system tag
    (rfm:<name>): a renamed segment's tag and current scores take the new name, a new segment gets a tag, a
    removed one loses it. Saved segments (tags.models.Segment) follow a rename; removing a segment that one of them
    names (by name or by its tag), or giving a removed segment's name to another row, raises SegmentInUse and
    saves nothing. Which cells a segment holds changes members' segments at the next run."""
    group = TagGroup.objects.filter(dimension=TagGroup.Dimension.RFM).order_by("pk").first()
    saved: list[RfmSegment] = []
    with pghistory.context(user=by.pk if by else None, action="rfm_segments_save"):
        before = {s.pk: s.name for s in RfmSegment.objects.select_for_update()}
        wanted = {row["id"] for row in rows if row.get("id") in before}
        removed = [name for pk, name in before.items() if pk not in wanted]
        if reused := sorted(set(removed) & {row["name"] for row in rows}):
            # the removed segment's current scores would pass to the row taking its name
            raise SegmentInUse(
                _("%(names)s is removed and given to another row in one save. Save the removal first.")
                % {"names": ", ".join(segment_label(n) for n in reused)}
            )
        # the tags to go, locked before looking for saved segments that use them: a segment saved meanwhile
        # (tags.segments.segment_save locks the tags and segments it names) is then seen
        list(Tag.objects.select_for_update().filter(kind=Tag.Kind.SYSTEM, code__in=[f"rfm:{n}" for n in removed]))
        _refuse_removing_used(removed)
        Tag.objects.filter(kind=Tag.Kind.SYSTEM, code__in=[f"rfm:{name}" for name in removed]).delete()
        RfmSegment.objects.filter(pk__in=set(before) - wanted).delete()
        # names and tag codes are unique: park the kept rows first, so that two rows may swap names
        for pk in wanted:
            RfmSegment.objects.filter(pk=pk).update(name=f"~{pk}")
            Tag.objects.filter(kind=Tag.Kind.SYSTEM, code=f"rfm:{before[pk]}").update(code=f"rfm:~{pk}")
        renamed: dict[str, str] = {}
        for position, row in enumerate(rows):
            pk = row.get("id") if row.get("id") in wanted else None
            segment = RfmSegment(pk=pk) if pk else RfmSegment()
            segment.name, segment.position = row["name"], position * 10
            for field in SEGMENT_FIELDS[1:]:
                setattr(segment, field, row[field] if field in row else ALL_M[field])
            segment.save(force_insert=pk is None, force_update=pk is not None)
            saved.append(segment)
            if pk:
                Tag.objects.filter(kind=Tag.Kind.SYSTEM, code=f"rfm:~{pk}").update(code=f"rfm:{segment.name}")
                if before[pk] != segment.name:
                    renamed[before[pk]] = segment.name
            if group is not None:
                Tag.objects.get_or_create(
                    code=f"rfm:{segment.name}", defaults={"group": group, "kind": Tag.Kind.SYSTEM, "colour": "#7048e8"}
                )
        if renamed:
            _saved_segments_rename(renamed)
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    UPDATE tags_rfmscore c SET segment = m.new
                    FROM unnest(%s::text[], %s::text[]) AS m(old, new)
                    WHERE c.segment = m.old
                    """,
                    [list(renamed), list(renamed.values())],
                )
    return saved


def _names_used(names: list[str]) -> Q:
    """Saved segments whose definitions name one of these RFM segments, or hold a condition on one's tag."""
    used = Q(pk__in=[])
    for name in names:
        used |= Q(definition__rfm__segments__contains=[name])
    tag_ids = list(Tag.objects.filter(kind=Tag.Kind.SYSTEM, code__in=[f"rfm:{n}" for n in names]).values_list("pk"))
    for (tag_id,) in tag_ids:
        for mode in ("any", "all", "none"):
            used |= Q(**{f"definition__tags__{mode}__contains": [tag_id]})
    return used


def _refuse_removing_used(removed: list[str]) -> None:
    if not removed:
        return
    users = list(Segment.objects.filter(_names_used(removed)).order_by("name").values_list("name", flat=True))
    if users:
        raise SegmentInUse(
            _("Saved segments use the RFM segments this would remove (%(names)s): %(segments)s. Change them first.")
            % {"names": ", ".join(segment_label(n) for n in removed), "segments": ", ".join(users)}
        )


def _saved_segments_rename(renamed: dict[str, str]) -> None:
    """Rename RFM segments inside saved segments' definitions (kept in canonical form: names sorted)."""
    for segment in Segment.objects.select_for_update().filter(_names_used(list(renamed))):
        rfm_part = segment.definition.get("rfm", {})
        if names := rfm_part.get("segments"):
            rfm_part["segments"] = sorted({renamed.get(name, name) for name in names})
            segment.save(update_fields=["definition", "updated_at"])


def _params(day: date, window_days: int | None) -> dict[str, Any]:
    cells = segment_cells()
    return {
        "day": day,
        "start": window_start(day, window_days),
        "cell_r": [r for r, _f, _m in cells],
        "cell_f": [f for _r, f, _m in cells],
        "cell_m": [m for _r, _f, m in cells],
        "cell_name": list(cells.values()),
    }


@dataclass(frozen=True)
class RfmRow:
    member_id: int
    last_purchase_date: date
    recency_days: int
    frequency: int
    monetary_fen: int
    r: int
    f: int
    m: int
    cell: str
    segment: str


def rfm_rows(day: date, *, window_days: int | None = None, chunk: int = 10_000) -> Iterator[RfmRow]:
    """Every scored member's RFM as of `day`, by member id, computed afresh (nothing is written)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        # a named (server-side) cursor would hold the snapshot too; fetching in chunks keeps memory flat
        cursor.execute(f"{SCORES_SQL} ORDER BY s.member_id", _params(day, window_days))
        while rows := cursor.fetchmany(chunk):
            for row in rows:
                yield RfmRow(*row)


def rfm_job(*, business_date: date, run: JobRun | None = None, window_days: int | None = None) -> tuple[int, int]:
    """Score every member who bought in the window as of `business_date`, set-based in PostgreSQL: the scores
    are staged in a temporary table by one statement, then one statement writes the history and brings the
    current rows in line. Running it again for the same date changes nothing. Returns (members scored, rows
    written: history, removed, changed and added). Raises RfmOutOfOrder for a date before the latest run's."""
    try:
        return staged_pass(
            "rfm",
            business_date,
            stage="tags_rfm_stage",
            stage_sql=SCORES_SQL,
            params=_params(business_date, window_days),
            apply_sql=APPLY_SQL,
            table="tags_rfmscore",
            column="segment",
        )
    except selectors.JobOutOfOrder as exc:
        raise RfmOutOfOrder(str(exc)) from None
