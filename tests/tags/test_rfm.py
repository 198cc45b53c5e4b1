"""RFM exactly as the spec defines it: hand-computed examples (ties, one-day buyers, a purchase on the as-of day's
eve, refunds reducing monetary, members with no purchase in the window not scored), the window's edges, the job's
idempotency and history, and a brute-force check of the quintile formula on random data."""

import csv
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command

from assets.models import Purchase, PurchaseRefund
from members.models import Member, Store
from reports.models import JobRun
from tags.models import RfmChange, RfmScore, RfmSegment, Tag
from tags.rfm import RfmOutOfOrder, cells_of, rf_names, rfm_job, rfm_rows, window_start
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
D = date(2026, 6, 30)
_orders = iter(range(1, 10**9))


def buy(member: Member | None, store: Store, day: date, fen: int, *, refunds: tuple[tuple[int, date], ...] = ()):
    """A purchase paid in cash on `day`, with refunds (amount, business date)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    purchase = Purchase.objects.create(
        order_no=f"T{next(_orders)}",
        store=store,
        member=member,
        occurred_at=datetime.combine(day, time(12), tzinfo=zone),
        business_date=day,
        gross_fen=fen,
        payable_fen=fen,
        cash_fen=fen,
        refunded_fen=sum(amount for amount, _day in refunds),
    )
    for amount, refund_day in refunds:
        PurchaseRefund.objects.create(purchase=purchase, amount_fen=amount, cash_fen=amount, business_date=refund_day)
    return purchase


@pytest.fixture
def people(store) -> dict[str, Member]:
    """The hand-computed example (see each member's comment); D = 2026-06-30, a 365-day window from 2025-07-01."""
    m = {name: MemberFactory.create(name=name) for name in "ABCDEFGHI"}
    d = timedelta(days=1)
    buy(m["A"], store, D - d, 1000)  # A: two purchases on the eve of D and one ten days before
    buy(m["A"], store, D - d, 500)
    buy(m["A"], store, D - 10 * d, 2000)
    buy(m["B"], store, D, 800)  # B: one purchase on D itself
    buy(m["C"], store, D - 100 * d, 5000, refunds=((1000, D - 90 * d),))  # C: refunded in part
    buy(m["D"], store, D - 400 * d, 9999)  # D: before the window
    buy(m["E"], store, D - 364 * d, 300)  # E: on the window's first day
    buy(m["F"], store, D - 365 * d, 700)  # F: the day before the window
    buy(m["G"], store, D - 50 * d, 800)  # G: two one-day visits
    buy(m["G"], store, D - 20 * d, 800)
    buy(m["H"], store, D - 5 * d, 1200, refunds=((600, D + d),))  # H: refunded after D: not yet
    zero = buy(m["I"], store, D - 3 * d, 0)  # I: nothing paid (a purchase paid in points)
    assert zero.payable_fen == 0
    buy(None, store, D - 2 * d, 5000)  # a guest
    m["J"] = MemberFactory.create(name="J")  # J: refunded in full by D: no paid purchase
    buy(m["J"], store, D - 4 * d, 900, refunds=((900, D - 2 * d),))
    m["K"] = MemberFactory.create(name="K")  # K: a cancelled membership is not scored
    buy(m["K"], store, D - 4 * d, 900)
    Member.objects.filter(pk=m["K"].pk).update(status=Member.Status.CANCELLED)
    return m


# member → (recency, frequency, monetary, cell, segment), computed by hand from the spec:
#   R: worst to best E(364) C(100) G(20) H(5) A(1) B(0): ranks 1..6 of n = 6 → scores 1 1 2 3 4 5
#   F: B C E H bought on 1 day (rank 1 → 1), A G on 2 days (rank 5 → 1 + floor(5 * 4 / 6) = 4)
#   M: E 300, B 800, H 1200, G 1600, A 3500, C 4000 → 1 1 2 3 4 5
#   segments by the shipped table: A R4 F4 Loyal, B R5 F1 New, C and E R1 F1 Lost, G R2 F4 At risk,
#   H R3 F1 About to sleep
EXPECTED = {
    "A": (1, 2, 3500, "444", "Loyal"),
    "B": (0, 1, 800, "511", "New"),
    "C": (100, 1, 4000, "115", "Lost"),
    "E": (364, 1, 300, "111", "Lost"),
    "G": (20, 2, 1600, "243", "At risk"),
    "H": (5, 1, 1200, "312", "About to sleep"),
}


def by_name(people: dict[str, Member]) -> dict[int, str]:
    return {member.pk: name for name, member in people.items()}


def test_the_window_is_365_days_ending_on_d():
    assert window_start(D, 365) == date(2025, 7, 1) and window_start(D, 1) == D and window_start(D, 0) == date.min


def test_the_hand_computed_example(people):
    names = by_name(people)

    got = {
        names[row.member_id]: (row.recency_days, row.frequency, row.monetary_fen, row.cell, row.segment)
        for row in rfm_rows(D, window_days=365)
    }

    assert got == EXPECTED


def test_the_job_writes_the_scores_and_their_first_history(people):
    names = by_name(people)

    scored, written = rfm_job(business_date=D, window_days=365)

    rows = {names[s.member_id]: (D - s.last_purchase_date).days for s in RfmScore.objects.all()}
    assert scored == 6 and rows == {name: values[0] for name, values in EXPECTED.items()}
    cells = {names[s.member_id]: (s.cell, s.segment, s.frequency, s.monetary_fen) for s in RfmScore.objects.all()}
    assert cells == {name: (v[3], v[4], v[1], v[2]) for name, v in EXPECTED.items()}
    history = {names[c.member_id]: (c.previous_cell, c.cell, c.business_date) for c in RfmChange.objects.all()}
    assert history == {name: ("", v[3], D) for name, v in EXPECTED.items()}
    assert written == 12  # six first histories and six rows added


def test_running_twice_for_one_date_changes_nothing(people):
    rfm_job(business_date=D, window_days=365)
    before = list(RfmScore.objects.order_by("pk").values())

    scored, written = rfm_job(business_date=D, window_days=365)

    assert (scored, written) == (6, 0)
    assert list(RfmScore.objects.order_by("pk").values()) == before and RfmChange.objects.count() == 6


def test_the_next_day_drops_who_left_the_window_and_records_only_moves(people, store):
    rfm_job(business_date=D, window_days=365)
    names = by_name(people)
    next_day = D + timedelta(days=1)

    rfm_job(business_date=next_day, window_days=365)  # E's only purchase has left the window

    assert "E" not in {names[s.member_id] for s in RfmScore.objects.all()}
    left = RfmChange.objects.get(member=people["E"], business_date=next_day)
    assert (left.previous_cell, left.cell, left.segment) == ("111", "", "")
    moved = {names[c.member_id] for c in RfmChange.objects.filter(business_date=next_day)}
    same = {n for n in EXPECTED if n != "E" and RfmScore.objects.get(member=people[n]).changed_on == D}
    assert moved.isdisjoint(same) and "E" in moved


def test_all_history_scores_every_buyer(people):
    names = by_name(people)

    scored = {names[row.member_id] for row in rfm_rows(D, window_days=0)}

    assert scored == {"A", "B", "C", "D", "E", "F", "G", "H"}


def test_a_later_run_in_progress_also_refuses_an_earlier_date(people):
    JobRun.objects.create(job="rfm", business_date=D, status=JobRun.Status.RUNNING)

    with pytest.raises(RfmOutOfOrder):
        rfm_job(business_date=D - timedelta(days=1), window_days=365)


def test_a_failed_later_run_does_not_block(people):
    JobRun.objects.create(job="rfm", business_date=D, status=JobRun.Status.FAILED)

    assert rfm_job(business_date=D - timedelta(days=1), window_days=365)[0] > 0


def test_an_earlier_date_after_a_later_run_is_refused(people):
    JobRun.objects.create(job="rfm", business_date=D, status=JobRun.Status.SUCCEEDED)

    with pytest.raises(RfmOutOfOrder):
        rfm_job(business_date=D - timedelta(days=1), window_days=365)


def test_an_edited_segment_table_renames_at_the_next_run(people):
    rfm_job(business_date=D, window_days=365)
    RfmSegment.objects.filter(name="Lost").update(position=0, r_min=1, r_max=1, f_min=1, f_max=1, name="Gone")

    rfm_job(business_date=D, window_days=365)

    assert set(RfmScore.objects.filter(member__in=[people["C"], people["E"]]).values_list("segment", flat=True)) == {
        "Gone"
    }
    assert RfmChange.objects.filter(member=people["C"], business_date=D, segment="Gone").exists()


def test_m_ranges_split_a_cell_by_monetary_score(people):
    # C (115) and E (111) share R1 F1; a row for its biggest spenders, tried first, takes C alone
    RfmSegment.objects.create(name="Lapsed whales", r_min=1, r_max=1, f_min=1, f_max=1, m_min=5, m_max=5, position=0)

    rfm_job(business_date=D, window_days=365)

    segments = {s.member_id: s.segment for s in RfmScore.objects.filter(member__in=[people["C"], people["E"]])}
    assert segments == {people["C"].pk: "Lapsed whales", people["E"].pk: "Lost"}


def test_cells_of_takes_the_first_row_holding_each_cell_and_every_m_by_default():
    rows = [
        {"name": "Top", "r_min": 5, "r_max": 5, "f_min": 5, "f_max": 5, "m_min": 4, "m_max": 5},
        {"name": "Rest", "r_min": 4, "r_max": 5, "f_min": 5, "f_max": 5},
    ]

    cells = cells_of(rows)

    assert len(cells) == 10 and cells[(5, 5, 4)] == cells[(5, 5, 5)] == "Top"
    assert cells[(5, 5, 3)] == cells[(4, 5, 5)] == "Rest" and (3, 5, 5) not in cells
    assert rf_names(cells, 5, 5) == [(1, 3, "Rest"), (4, 5, "Top")]
    assert rf_names(cells, 4, 5) == [(1, 5, "Rest")] and rf_names(cells, 1, 1) == [(1, 5, "")]


def test_rfm_tags_count_their_members(people):
    rfm_job(business_date=D, window_days=365)

    counts = dict(Tag.objects.filter(code__startswith="rfm:").values_list("code", "member_count"))

    assert counts["rfm:Lost"] == 2 and counts["rfm:Loyal"] == 1 and counts["rfm:Champions"] == 0


def test_the_job_runs_by_name_with_the_window_from_settings(people, settings):
    settings.HUIYUAN_RFM_WINDOW_DAYS = 365
    call_command("run_job", "rfm", "--date", D.isoformat())

    assert RfmScore.objects.count() == 6 and JobRun.objects.get(job="rfm").rows_examined == 6


def test_export_rfm_writes_one_row_per_scored_member(people, tmp_path, settings):
    settings.HUIYUAN_RFM_WINDOW_DAYS = 365
    Member.objects.filter(pk=people["A"].pk).update(external_id="EXT-A")
    out = tmp_path / "rfm.csv"

    call_command("export_rfm", "--date", D.isoformat(), "--out", str(out))

    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    header = ["member_no", "external_id", "recency_days", "frequency", "monetary_fen", "r", "f", "m", "segment"]
    assert list(rows[0]) == header and len(rows) == 6
    a = next(row for row in rows if row["member_no"] == people["A"].member_no)
    assert a == {
        "member_no": people["A"].member_no,
        "external_id": "EXT-A",
        "recency_days": "1",
        "frequency": "2",
        "monetary_fen": "3500",
        "r": "4",
        "f": "4",
        "m": "4",
        "segment": "Loyal",
    }


def score(values: list[int], *, lower_is_better: bool) -> list[int]:
    """The spec's formula, by brute force: rank = 1 + the number of strictly worse members."""
    n = len(values)

    def worse(a: int, b: int) -> bool:  # is a worse than b
        return a > b if lower_is_better else a < b

    return [min(5, 1 + (5 * sum(worse(other, v) for other in values)) // n) for v in values]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scores_match_the_formula_on_random_data_with_ties(store, seed):
    rng = random.Random(seed)
    members = MemberFactory.create_batch(37)
    for member in members:
        for _ in range(rng.randint(1, 4)):
            buy(member, store, D - timedelta(days=rng.choice([0, 1, 1, 3, 7, 7, 30, 200])), rng.choice([500, 800, 800]))

    rows = sorted(rfm_rows(D, window_days=365), key=lambda row: row.member_id)

    assert len(rows) == 37
    assert [row.r for row in rows] == score([row.recency_days for row in rows], lower_is_better=True)
    assert [row.f for row in rows] == score([row.frequency for row in rows], lower_is_better=False)
    assert [row.m for row in rows] == score([row.monetary_fen for row in rows], lower_is_better=False)
