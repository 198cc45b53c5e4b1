"""The RFM map (R x F grid with member counts and average spend), the segment table's editor, and the lifecycle
funnel with its transitions and thresholds."""

import hashlib
from datetime import timedelta
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.forms import formset_factory
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from members.permissions import OfficeRequest, staff_role_required
from reports.models import JobRun
from tags import rfm, selectors
from tags.lifecycle import lifecycle_settings, lifecycle_settings_save
from tags.models import LifecycleChange, RfmSegment, Stage, Tag, segment_label
from tags.rfm_forms import LifecycleSettingsForm, SegmentRowForm, SegmentRowsFormSet
from tags.views.common import EDITORS, READERS

TRANSITIONS_DAYS = 30
FIGURES_FORMAT = 2  # in the cache key: raise it when the cached figures change shape, so a deploy reads afresh


def _grid() -> tuple[list[list[dict[str, Any]]], int]:
    """Rows R5..R1, columns F1..F5: members, their share and average spend per cell; and the total."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT r, f, count(*), avg(monetary_fen) FROM tags_rfmscore GROUP BY r, f")
        found = {(r, f): (n, int(avg or 0)) for r, f, n, avg in cursor.fetchall()}
    total = sum(n for n, _avg in found.values())
    cells = rfm.segment_cells()
    grid = [
        [
            {
                "r": r,
                "f": f,
                "members": found.get((r, f), (0, 0))[0],
                "avg_fen": found.get((r, f), (0, 0))[1],
                "segment": " · ".join(_rf_lines(cells, r, f)),
                "segment_lines": _rf_lines(cells, r, f),
            }
            for f in range(1, 6)
        ]
        for r in range(5, 0, -1)
    ]
    return grid, total


def _rf_lines(cells: dict[tuple[int, int, int], str], r: int, f: int) -> list[str]:
    """The R x F cell's segment, or its segments by M (["Loyal M1-3", "Champions M4-5"]) where M splits it."""
    runs = rfm.rf_names(cells, r, f)
    if len(runs) == 1:
        return [segment_label(runs[0][2])] if runs[0][2] else []
    return [
        f"{segment_label(name) or '—'} M{low}" + (f"\u2013{high}" if high > low else "") for low, high, name in runs
    ]


def _segment_summary() -> list[dict[str, Any]]:
    day = selectors.last_run_date("rfm")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT segment, count(*), avg(monetary_fen), avg(frequency), avg(%s::date - last_purchase_date)
            FROM tags_rfmscore GROUP BY segment ORDER BY count(*) DESC
            """,
            [day],
        )
        rows = cursor.fetchall()
    return [
        {
            "name": name,
            "label": segment_label(name) if name else _("No segment"),
            "members": n,
            "avg_fen": int(avg or 0),
            "frequency": float(freq or 0),
            "recency": None if recency is None else float(recency),
        }
        for name, n, avg, freq, recency in rows
    ]


def _figures() -> tuple[list[list[dict[str, Any]]], int, list[dict[str, Any]]]:
    """The grid and the segment summary, counted over every score once per run (and segment table): the page
    reads them from the cache, not from a million rows at each view."""
    version = hashlib.sha256(repr(sorted(rfm.segment_cells().items())).encode()).hexdigest()[:16]
    run = JobRun.objects.filter(job="rfm", status=JobRun.Status.SUCCEEDED).order_by("-business_date").first()
    ran = f"{run.pk}:{run.finished_at}" if run else "0:"
    key = f"tags:rfm-map:{FIGURES_FORMAT}:{ran}:{version}:{get_language()}"
    figures = cache.get(key)
    if figures is None:
        grid, total = _grid()
        figures = (grid, total, _segment_summary())
        cache.set(key, figures, timeout=24 * 3600)
    return figures


@staff_role_required(*READERS)
def rfm_view(request: OfficeRequest) -> HttpResponse:
    grid, total, summary = _figures()
    chart = [
        [cell["f"] - 1, cell["r"] - 1, cell["members"], cell["avg_fen"], "\n".join(cell["segment_lines"])]
        for row in grid
        for cell in row
    ]
    context = {
        "grid": grid,
        "total": total,
        "chart": chart,
        "summary": summary,
        "last_run": selectors.last_run_date("rfm"),
        "window_days": rfm.window_days(),
        "can_edit": request.role in EDITORS,
        "section_tab": "rfm",
        "active_section": "tags",
    }
    return render(request, "tags/rfm.html", context)


@staff_role_required(*EDITORS)
def rfm_segments_view(request: OfficeRequest) -> HttpResponse:
    """The segment table: rows of R, F and M ranges and a name, tried in order; the grid beside it shows which
    segment each of the 25 R x F cells falls in (by M where M splits it)."""
    FormSet = formset_factory(SegmentRowForm, formset=SegmentRowsFormSet, extra=1, can_delete=True)
    initial = [
        {"id": s.pk, **{field: getattr(s, field) for field in rfm.SEGMENT_FIELDS}}
        for s in RfmSegment.objects.order_by("position", "pk")
    ]
    formset = cast(SegmentRowsFormSet, FormSet(request.POST or None, initial=initial, prefix="seg"))
    refused = ""
    if request.method == "POST" and formset.is_valid():
        try:
            rfm.rfm_segments_save(rows=formset.ordered_rows_data(), by=cast(User, request.user))
        except rfm.SegmentInUse as exc:
            refused = str(exc)
        else:
            messages.success(request, _("Segment table saved. The next RFM run names members by it."))
            return redirect("tags:rfm")
    context = {
        "formset": formset,
        "refused": refused,
        "cells": _coverage(formset),
        "section_tab": "rfm",
        "active_section": "tags",
    }
    return render(request, "tags/rfm_segments.html", context)


def _coverage(formset: SegmentRowsFormSet) -> list[list[list[tuple[int, int, str]]]]:
    """The 25 R x F cells (R5..R1 by F1..F5) named by the table as it stands (saved, or as submitted if
    valid): each cell's runs of (M from, M to, name as read), one run where every M reads alike."""
    cells = rfm.segment_cells()
    if formset.is_bound and formset.is_valid():
        cells = rfm.cells_of(formset.ordered_rows_data())
    return [
        [[(low, high, segment_label(name)) for low, high, name in rfm.rf_names(cells, r, f)] for f in range(1, 6)]
        for r in range(5, 0, -1)
    ]


@staff_role_required(*READERS)
def lifecycle_view(request: OfficeRequest) -> HttpResponse:
    rules = lifecycle_settings()
    can_edit = request.role in EDITORS
    form = LifecycleSettingsForm(request.POST or None, instance=rules) if can_edit else None
    if request.method == "POST":
        if form is None:
            return HttpResponse(status=403)
        if form.is_valid():
            lifecycle_settings_save(settings_obj=form.save(commit=False), by=cast(User, request.user))
            messages.success(request, _("Lifecycle thresholds saved. The next lifecycle run stages members by them."))
            return redirect("tags:lifecycle")
    # as the last run counted them (Tag.member_count of the lifecycle tags), not a count of every member here
    counts = {
        tag.code.partition(":")[2]: tag.member_count
        for tag in Tag.objects.filter(kind=Tag.Kind.SYSTEM, code__startswith="lifecycle:")
    }
    total = sum(counts.values())
    stages = [
        {"stage": stage.value, "label": str(stage.label), "members": counts.get(stage.value, 0)} for stage in Stage
    ]
    last_run = selectors.last_run_date("lifecycle")
    transitions: list[dict[str, Any]] = []
    if last_run is not None:
        since = last_run - timedelta(days=TRANSITIONS_DAYS - 1)
        moved = (
            LifecycleChange.objects.filter(business_date__gte=since)
            .exclude(from_stage="")
            .values("from_stage", "to_stage")
            .order_by()
            .annotate(n=Count("pk"))
        )
        labels = {stage.value: str(stage.label) for stage in Stage}
        transitions = sorted(
            (
                {"from": labels.get(row["from_stage"], ""), "to": labels.get(row["to_stage"], ""), "members": row["n"]}
                for row in moved
            ),
            key=lambda row: -row["members"],
        )
    context = {
        "stages": stages,
        "total": total,
        "chart": [{"name": s["label"], "value": s["members"]} for s in stages],
        "transitions": transitions,
        "transitions_days": TRANSITIONS_DAYS,
        "last_run": last_run,
        "rules": rules,
        "form": form,
        "section_tab": "lifecycle",
        "active_section": "tags",
    }
    return render(request, "tags/lifecycle.html", context)
