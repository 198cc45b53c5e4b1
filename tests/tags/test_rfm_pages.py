"""The RFM map, the segment table's editor and the lifecycle page: who may see and change them, what they show,
and what saving the segment table does to tags and current scores."""

from datetime import date

import pytest
from django.urls import reverse

from reports.models import JobRun
from tags.lifecycle import lifecycle_job, lifecycle_settings
from tags.models import RfmScore, RfmSegment, Segment, Tag
from tags.rfm import SEGMENT_FIELDS, rfm_job
from tags.segments import segment_members
from tests.tags.test_rfm import EXPECTED, D, people  # noqa: F401 - the hand-computed example's fixture

pytestmark = pytest.mark.django_db
LANGUAGES = ["zh-hans", "en"]


def rows_post(**changes: dict[str, object]) -> dict[str, object]:
    """The segment table as saved, as the editor posts it, with `changes` by row index (or "new")."""
    data: dict[str, object] = {}
    segments = list(RfmSegment.objects.order_by("position", "pk"))
    for i, s in enumerate(segments):
        row = {"id": s.pk, **{field: getattr(s, field) for field in SEGMENT_FIELDS}}
        row.update(changes.get(str(i), {}))
        data.update({f"seg-{i}-{k}": v for k, v in row.items()})
    n = len(segments)
    extra = changes.get("new", {"name": "", "r_min": 1, "r_max": 1, "f_min": 1, "f_max": 1, "m_min": 1, "m_max": 5})
    data.update({f"seg-{n}-{k}": v for k, v in extra.items()})
    data.update({"seg-TOTAL_FORMS": n + 1, "seg-INITIAL_FORMS": n, "seg-MIN_NUM_FORMS": 0, "seg-MAX_NUM_FORMS": 1000})
    return data


@pytest.fixture
def scored(people):  # noqa: F811
    rfm_job(business_date=D, window_days=365)
    lifecycle_job(business_date=D)
    for job in ("rfm", "lifecycle"):
        JobRun.objects.create(job=job, business_date=D, status=JobRun.Status.SUCCEEDED)
    return people


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["tags:rfm", "tags:rfm-segments", "tags:lifecycle"])
def test_pages_render(owner_client, scored, name, language):
    owner_client.cookies["django_language"] = language

    response = owner_client.get(reverse(name))

    assert response.status_code == 200 and f'<html lang="{language}"' in response.content.decode()


def test_the_map_counts_members_per_cell_and_names_segments(owner_client, scored):
    body = owner_client.get(reverse("tags:rfm")).content.decode()

    # A is R4 F4 (Loyal), 3,500 fen; C and E share R1 F1 (Lost)
    assert '<td data-cell="44"><div class="fw-bold">1</div><div class="small text-secondary">¥35.00</div>' in body
    assert '<td data-cell="11"><div class="fw-bold">2</div>' in body
    assert "6 members scored as of 2026-06-30" in body


def test_the_map_names_a_cell_split_by_m_by_its_segments(owner_client, scored):
    RfmSegment.objects.create(name="Whales", r_min=1, r_max=1, f_min=1, f_max=1, m_min=5, m_max=5, position=0)

    body = owner_client.get(reverse("tags:rfm")).content.decode()

    cell = body.split('<td data-cell="11">')[1].split("</td>")[0]
    assert '<div class="small">Lost M1\u20134 · Whales M5</div>' in cell


def test_cashiers_see_none_and_auditors_cannot_edit(cashier_client, auditor_client, scored):
    assert cashier_client.get(reverse("tags:rfm")).status_code == 403
    assert auditor_client.get(reverse("tags:rfm")).status_code == 200
    assert auditor_client.get(reverse("tags:rfm-segments")).status_code == 403
    assert auditor_client.post(reverse("tags:lifecycle"), {"new_days": 5}).status_code == 403
    assert lifecycle_settings().new_days == 30


def test_renaming_a_segment_renames_its_tag_and_the_current_scores(owner_client, scored):
    response = owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"9": {"name": "Gone"}}))  # Lost

    assert response.status_code == 302
    assert set(RfmScore.objects.filter(member__in=[scored["C"], scored["E"]]).values_list("segment", flat=True)) == {
        "Gone"
    }
    assert Tag.objects.filter(code="rfm:Gone").exists() and not Tag.objects.filter(code="rfm:Lost").exists()


def test_two_segments_may_swap_names(owner_client, scored):
    owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"0": {"name": "Loyal"}, "1": {"name": "Champions"}}))

    names = list(RfmSegment.objects.order_by("position").values_list("name", flat=True)[:2])
    assert names == ["Loyal", "Champions"]
    assert RfmScore.objects.get(member=scored["A"]).segment == "Champions"  # A was Loyal (row 1)


def test_a_new_row_gets_a_tag_and_a_removed_row_loses_it(owner_client, scored):
    new = {"name": "Whales", "r_min": 1, "r_max": 5, "f_min": 1, "f_max": 5, "m_min": 1, "m_max": 5}
    data = rows_post(**{"new": new, "10": {"DELETE": "on"}})  # remove Hibernating

    owner_client.post(reverse("tags:rfm-segments"), data)

    assert Tag.objects.filter(code="rfm:Whales", kind="system").exists()
    assert not Tag.objects.filter(code="rfm:Hibernating").exists()
    assert not RfmSegment.objects.filter(name="Hibernating").exists()


def test_a_row_with_m_ranges_splits_the_cells_it_shares(owner_client, scored):
    new = {"name": "Whales", "r_min": 1, "r_max": 1, "f_min": 1, "f_max": 1, "m_min": 4, "m_max": 5}
    data = rows_post(new=new)
    refused = owner_client.post(reverse("tags:rfm-segments"), {**data, "seg-11-m_min": 6})

    response = owner_client.post(reverse("tags:rfm-segments"), data)

    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert response.status_code == 302
    whales = RfmSegment.objects.get(name="Whales")
    assert (whales.m_min, whales.m_max, whales.position) == (4, 5, 110)
    body = owner_client.get(reverse("tags:rfm-segments")).content.decode()
    # R1 F1 is Lost for M1-5 first: the new row, tried last, holds nothing of it
    assert "Whales" not in body.split('id="segment-cells"')[1]
    # Lost keeps M1-3 of R1 F1; the next row holding it, Hibernating (R1-2 F1-2), takes M4-5 before Whales
    owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"9": {"m_max": 3}}))
    cells = owner_client.get(reverse("tags:rfm-segments")).content.decode().split('id="segment-cells"')[1]
    r1 = cells.split("<th>R1</th>")[1].split("</tr>")[0]
    assert 'Lost <span class="text-secondary">M1\u20133</span>' in r1
    assert 'Hibernating <span class="text-secondary">M4\u20135</span>' in r1 and "Whales" not in r1


def test_m_to_below_m_from_is_refused(owner_client, scored):
    response = owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"0": {"m_min": 4, "m_max": 2}}))

    assert response.status_code == 200 and "M to must be at least M from." in response.content.decode()
    assert RfmSegment.objects.get(name="Champions").m_min == 1


def test_a_rename_follows_into_saved_segments(owner_client, scored):
    segment = Segment.objects.create(name="Gone and lost", definition={"v": 1, "rfm": {"segments": ["Lost", "New"]}})

    owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"9": {"name": "Gone"}, "3": {"name": "Zebra"}}))

    segment.refresh_from_db()
    assert segment.definition == {"v": 1, "rfm": {"segments": ["Gone", "Zebra"]}}
    assert set(segment_members(segment)) == {scored["B"], scored["C"], scored["E"]}  # B is New, C and E Lost


@pytest.mark.parametrize("how", ["name", "any", "all", "none"])
def test_removing_a_segment_a_saved_segment_uses_is_refused(owner_client, scored, how):
    tag = Tag.objects.get(code="rfm:Hibernating")
    definition = {"rfm": {"segments": ["Hibernating"]}} if how == "name" else {"tags": {how: [tag.pk]}}
    Segment.objects.create(name="Sleepers", definition={"v": 1, **definition})

    response = owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"10": {"DELETE": "on"}}))

    body = response.content.decode()
    assert response.status_code == 200 and "Saved segments use the RFM segments this would remove" in body
    assert "Sleepers" in body and RfmSegment.objects.filter(name="Hibernating").exists()
    assert Tag.objects.filter(pk=tag.pk).exists()


def test_giving_a_removed_segment_s_name_to_another_row_in_one_save_is_refused(owner_client, scored):
    data = rows_post(**{"9": {"DELETE": "on"}, "10": {"name": "Lost"}})  # remove Lost, rename Hibernating

    response = owner_client.post(reverse("tags:rfm-segments"), data)

    assert response.status_code == 200 and "is removed and given to another row in one save" in body_of(response)
    assert RfmSegment.objects.filter(name="Hibernating").exists()
    assert set(RfmScore.objects.filter(member__in=[scored["C"], scored["E"]]).values_list("segment", flat=True)) == {
        "Lost"
    }


def test_a_swap_is_followed_into_saved_segments(owner_client, scored):
    segment = Segment.objects.create(name="Best", definition={"v": 1, "rfm": {"segments": ["Champions"]}})

    owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"0": {"name": "Loyal"}, "1": {"name": "Champions"}}))

    segment.refresh_from_db()
    assert segment.definition == {"v": 1, "rfm": {"segments": ["Loyal"]}}
    assert list(segment_members(segment)) == []  # A was Loyal, now Champions; row 0 (now Loyal) holds nobody


def body_of(response) -> str:
    return response.content.decode()


def test_a_blank_new_row_is_ignored(owner_client, scored):
    response = owner_client.post(reverse("tags:rfm-segments"), rows_post())

    assert response.status_code == 302 and RfmSegment.objects.count() == 11


def test_bad_ranges_and_duplicate_names_are_refused(owner_client, scored):
    bad = owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"0": {"r_min": 5, "r_max": 2}}))
    twice = owner_client.post(reverse("tags:rfm-segments"), rows_post(**{"1": {"name": "champions"}}))

    assert bad.status_code == 200 and "R to must be at least R from." in bad.content.decode()
    assert twice.status_code == 200 and "Two segments have the same name." in twice.content.decode()
    assert RfmSegment.objects.get(position=0).r_min == 5 and RfmSegment.objects.filter(name="Loyal").exists()


def test_the_lifecycle_page_counts_stages_and_saves_thresholds(owner_client, scored):
    body = owner_client.get(reverse("tags:lifecycle")).content.decode()
    assert 'data-stage="new"' in body

    response = owner_client.post(
        reverse("tags:lifecycle"), {"new_days": 14, "new_max_purchases": 2, "active_days": 60, "churned_days": 120}
    )

    rules = lifecycle_settings()
    assert response.status_code == 302 and (rules.new_days, rules.active_days, rules.churned_days) == (14, 60, 120)


def test_churned_before_active_is_refused(owner_client, scored):
    response = owner_client.post(
        reverse("tags:lifecycle"), {"new_days": 30, "new_max_purchases": 1, "active_days": 90, "churned_days": 60}
    )

    assert response.status_code == 200 and lifecycle_settings().churned_days == 180


def test_the_member_page_shows_stage_and_scores(owner_client, scored):
    member = scored["A"]

    response = owner_client.get(reverse("tags:member-tags", args=[member.member_no]), headers={"HX-Request": "true"})
    body = response.content.decode()

    assert 'id="member-insights"' in body and ">444<" in body and "Loyal" in body
    assert date(2026, 6, 30).isoformat() in body
