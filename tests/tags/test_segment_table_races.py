"""A saved segment and the RFM segment table saved at the same time: whichever commits first, the other sees
it (no saved segment is left naming a removed RFM segment, or an old name after a rename)."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from tags import rfm, segments
from tags.models import RfmSegment, Segment, Tag, TagGroup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def table() -> list[RfmSegment]:
    group = TagGroup.objects.create(dimension=TagGroup.Dimension.RFM, name="")
    rows = [
        RfmSegment.objects.create(name="Best", r_min=4, r_max=5, f_min=1, f_max=5, position=0),
        RfmSegment.objects.create(name="Rest", r_min=1, r_max=3, f_min=1, f_max=5, position=10),
    ]
    for row in rows:
        Tag.objects.create(group=group, kind=Tag.Kind.SYSTEM, code=f"rfm:{row.name}")
    return rows


def rows_of(table: list[RfmSegment], **names: str) -> list[dict]:
    """The table as saved, each row renamed by `names` (old=new); a row named "" is removed."""
    fields = rfm.SEGMENT_FIELDS[1:]
    out = []
    for row in table:
        name = names.get(row.name, row.name)
        if name:
            out.append({"id": row.pk, "name": name, **{f: getattr(row, f) for f in fields}})
    return out


def save_segment_holding_commit(definition: dict, saved: threading.Event, go: threading.Event) -> None:
    try:
        with transaction.atomic():
            segments.segment_save(segment=Segment(name="Sleepers", definition=definition), by=None)
            saved.set()
            go.wait(10)
    finally:
        saved.set()
        connection.close()


def table_save_waits(rows: list[dict], outcome: list) -> None:
    try:
        rfm.rfm_segments_save(rows=rows, by=None)
        outcome.append("saved")
    except rfm.SegmentInUse:
        outcome.append("refused")
    finally:
        connection.close()


@pytest.mark.parametrize("by_tag", [False, True])
def test_removing_waits_for_a_segment_being_saved_and_is_refused(table, by_tag):
    tag = Tag.objects.get(code="rfm:Rest")
    definition = {"tags": {"any": [tag.pk]}} if by_tag else {"rfm": {"segments": ["Rest"]}}
    saved, go, outcome = threading.Event(), threading.Event(), []
    first = threading.Thread(target=save_segment_holding_commit, args=(definition, saved, go))
    first.start()
    assert saved.wait(10)
    second = threading.Thread(target=table_save_waits, args=(rows_of(table, Rest=""), outcome))
    second.start()
    second.join(0.5)
    assert second.is_alive() and outcome == []  # waiting on the segment's locks

    go.set()
    first.join(10)
    second.join(10)

    assert outcome == ["refused"] and RfmSegment.objects.filter(name="Rest").exists()


def test_a_rename_waits_for_a_segment_being_saved_and_follows_it(table):
    saved, go, outcome = threading.Event(), threading.Event(), []
    first = threading.Thread(target=save_segment_holding_commit, args=({"rfm": {"segments": ["Rest"]}}, saved, go))
    first.start()
    assert saved.wait(10)
    second = threading.Thread(target=table_save_waits, args=(rows_of(table, Rest="Others"), outcome))
    second.start()
    second.join(0.5)

    go.set()
    first.join(10)
    second.join(10)

    assert outcome == ["saved"]
    assert Segment.objects.get(name="Sleepers").definition["rfm"] == {"segments": ["Others"]}


def test_a_segment_saved_after_a_removal_is_refused(table):
    rfm.rfm_segments_save(rows=rows_of(table, Rest=""), by=None)

    with pytest.raises(ValidationError):
        segments.segment_save(segment=Segment(name="Sleepers", definition={"rfm": {"segments": ["Rest"]}}), by=None)
