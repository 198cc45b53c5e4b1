"""The member list: search shapes, filters, sorting, keyset pages, privacy, bulk freeze and export."""

import re
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from members import filters
from members.models import Member
from tests.factories import MemberFactory

LIST = "/members/"


def numbers(response) -> list[str]:
    return re.findall(r'href="/members/(\d{10,20})/"', response.content.decode())


def at(days_ago: int) -> datetime:
    return timezone.now() - timedelta(days=days_ago)


@pytest.fixture
def zhang(store) -> Member:
    return MemberFactory.create(
        name="张三",
        name_pinyin="zhangsan",
        name_initials="zs",
        phone="+8613812348000",
        external_id="OLD-77",
        registered_store=store,
        registered_at=at(3),
    )


@pytest.fixture
def li(other_store) -> Member:
    return MemberFactory.create(
        name="李四",
        name_pinyin="lisi",
        name_initials="ls",
        phone="+8615900001234",
        registered_store=other_store,
        registered_at=at(1),
        status=Member.Status.FROZEN,
        member_type=Member.Type.PAID,
        channel=Member.Channel.PORTAL,
        marketing_consent=True,
        marketing_consent_at=at(1),
    )


class TestMemberSearch:
    @pytest.mark.parametrize(
        "q", ["13812348000", "+8613812348000", "138 1234 8000", "8000", "张", "zhang", "ZHANG", "zs", "OLD-77"]
    )
    def test_finds_the_member_by_each_shape(self, owner_client, zhang, li, q):
        response = owner_client.get(LIST, {"q": q})

        assert response.status_code == 200 and numbers(response) == [zhang.member_no]

    def test_finds_a_member_by_member_number(self, owner_client, zhang, li):
        response = owner_client.get(LIST, {"q": zhang.member_no})

        assert numbers(response) == [zhang.member_no]

    def test_last_four_digits_give_a_pick_list(self, owner_client, store):
        a = MemberFactory.create(phone="+8613900004321", registered_store=store)
        b = MemberFactory.create(phone="+8618600004321", registered_store=store)
        MemberFactory.create(phone="+8618600004322", registered_store=store)

        response = owner_client.get(LIST, {"q": "4321"})

        assert sorted(numbers(response)) == sorted([a.member_no, b.member_no])

    def test_no_match_says_so(self, owner_client, zhang):
        response = owner_client.get(LIST, {"q": "nobody"})

        assert numbers(response) == [] and "No member matches" in response.content.decode()


class TestMemberFilters:
    @pytest.mark.parametrize(
        "params",
        [
            {"status": "frozen"},
            {"type": "paid"},
            {"channel": "portal"},
            {"consent": "yes"},
            {"registered_from": (timezone.localdate() - timedelta(days=2)).isoformat()},
        ],
    )
    def test_each_filter_keeps_only_matching_members(self, owner_client, zhang, li, params):
        response = owner_client.get(LIST, params)

        assert numbers(response) == [li.member_no]

    def test_store_and_date_to_filters(self, owner_client, zhang, li, store):
        to = (timezone.localdate() - timedelta(days=2)).isoformat()

        by_store = owner_client.get(LIST, {"store": store.pk})
        by_date = owner_client.get(LIST, {"registered_to": to})

        assert numbers(by_store) == [zhang.member_no] and numbers(by_date) == [zhang.member_no]

    @pytest.mark.parametrize(
        "params",
        [
            {"registered_from": "2026-02-30"},
            {"sort": "password"},
            {"page_size": "100000"},
            {"store": "999999"},
            {"status": "deleted"},
            {"after": "not-a-cursor"},
            {"before": "eyJ4IjoxfQ"},
            {"q": "x" * 5000},
        ],
    )
    def test_bad_values_are_ignored_never_a_500(self, owner_client, zhang, li, params):
        response = owner_client.get(LIST, params)

        assert response.status_code == 200 and sorted(numbers(response)) == sorted([zhang.member_no, li.member_no])


class TestMemberSorting:
    def test_newest_first_by_default_and_each_column_sorts(self, owner_client, zhang, li):
        newest = numbers(owner_client.get(LIST))
        oldest = numbers(owner_client.get(LIST, {"sort": "registered_at"}))
        by_no = numbers(owner_client.get(LIST, {"sort": "-member_no"}))
        by_name = numbers(owner_client.get(LIST, {"sort": "name"}))

        assert newest == [li.member_no, zhang.member_no] and oldest == newest[::-1]
        assert by_no == sorted([zhang.member_no, li.member_no], reverse=True)
        assert by_name == [m.member_no for m in sorted([zhang, li], key=lambda m: m.name)]


class TestKeysetPaging:
    @pytest.mark.parametrize("sort", ["-registered_at", "registered_at", "member_no", "-member_no", "name"])
    def test_pages_follow_on_without_duplicates_or_gaps(self, owner_client, store, sort):
        moment = at(5)
        for i in range(60):  # ties on registered_at: the id breaks them
            MemberFactory.create(registered_store=store, registered_at=moment - timedelta(minutes=i // 3))
        url, seen = f"{LIST}?sort={sort}", []

        while url:
            response = owner_client.get(url)
            seen += numbers(response)
            found = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
            url = found.group(1).replace("&amp;", "&") if found else ""

        expected = numbers(owner_client.get(LIST, {"sort": sort, "page_size": 100}))
        assert len(seen) == 60 and seen == expected

    def test_previous_goes_back_to_the_same_rows(self, owner_client, store):
        for i in range(30):
            MemberFactory.create(registered_store=store, registered_at=at(i))
        first = owner_client.get(LIST)
        nxt = re.search(r'rel="next" href="([^"]+)"', first.content.decode()).group(1).replace("&amp;", "&")
        second = owner_client.get(nxt)
        prev = re.search(r'rel="prev" href="([^"]+)"', second.content.decode()).group(1).replace("&amp;", "&")

        back = owner_client.get(prev)

        assert numbers(back) == numbers(first) and len(numbers(second)) == 5

    def test_queries_do_not_grow_with_the_rows_shown(self, owner_client, store, django_assert_max_num_queries):
        MemberFactory.create_batch(100, registered_store=store)

        with django_assert_max_num_queries(12):
            owner_client.get(LIST, {"page_size": 25})
        with django_assert_max_num_queries(12):
            owner_client.get(LIST, {"page_size": 100, "status": "active"})

    def test_htmx_request_gets_only_the_results(self, owner_client, zhang):
        response = owner_client.get(LIST, {"q": "zhang"}, headers={"HX-Request": "true"})

        body = response.content.decode()
        assert "<html" not in body and zhang.member_no in body and 'hx-swap-oob="true"' in body


class TestMemberCount:
    def test_small_selections_are_counted_exactly(self, owner_client, zhang, li):
        assert "2 members" in owner_client.get(LIST, {"q": ""}).content.decode()
        assert "1 member" in owner_client.get(LIST, {"status": "frozen"}).content.decode()

    def test_large_selections_stop_counting(self, store, monkeypatch):
        monkeypatch.setattr(filters, "EXACT_COUNT_LIMIT", 3)
        MemberFactory.create_batch(5, registered_store=store)

        count = filters.member_count(Member.objects.all(), whole_register=False)

        assert count.capped and count.value == 3


class TestPrivacy:
    def test_cashier_sees_masked_phones_of_their_own_store_only(self, cashier_client, zhang, li):
        response = cashier_client.get(LIST)

        body = response.content.decode()
        assert numbers(response) == [zhang.member_no]
        assert "138****8000" in body and "13812348000" not in body and "138 1234 8000" not in body

    def test_cashier_cannot_reach_another_store_by_filter_or_search(self, cashier_client, zhang, li, other_store):
        assert numbers(cashier_client.get(LIST, {"store": other_store.pk})) == [zhang.member_no]
        assert numbers(cashier_client.get(LIST, {"q": "1234"})) == []

    def test_filter_bar_offers_the_store_filter_to_all_but_cashiers(self, owner_client, cashier_client, zhang):
        owner_page = owner_client.get(LIST).content.decode()
        cashier_page = cashier_client.get(LIST).content.decode()

        assert 'id="id_channel"' in owner_page and 'id="id_store"' in owner_page
        assert 'id="id_channel"' in cashier_page and 'id="id_store"' not in cashier_page

    def test_owner_sees_full_phones(self, owner_client, zhang):
        assert "138 1234 8000" in owner_client.get(LIST).content.decode()

    def test_auditor_reads_the_list_but_cannot_bulk_freeze(self, auditor_client, zhang):
        listed = auditor_client.get(LIST)

        response = auditor_client.post(reverse("members:bulk-freeze"), {"member": [zhang.member_no], "reason": "x"})

        assert numbers(listed) == [zhang.member_no] and 'id="bulk-freeze"' not in listed.content.decode()
        assert response.status_code == 403
        zhang.refresh_from_db()
        assert zhang.status == Member.Status.ACTIVE

    def test_cashier_cannot_bulk_freeze_or_export(self, cashier_client, zhang):
        freeze = cashier_client.post(reverse("members:bulk-freeze"), {"member": [zhang.member_no], "reason": "x"})
        export = cashier_client.get(reverse("members:export"))

        assert freeze.status_code == 403 and export.status_code == 403


class TestBulkFreeze:
    def test_freezes_only_the_ticked_active_members(self, manager_client, store, li):
        a, b, untouched = MemberFactory.create_batch(3, registered_store=store)

        response = manager_client.post(
            reverse("members:bulk-freeze"),
            {"member": [a.member_no, b.member_no, li.member_no], "reason": "fraud check", "query": "status=active"},
        )

        assert response.status_code == 302 and response["Location"] == "/members/?status=active"
        statuses = dict(Member.objects.values_list("member_no", "status"))
        assert statuses[a.member_no] == statuses[b.member_no] == Member.Status.FROZEN
        assert statuses[untouched.member_no] == Member.Status.ACTIVE and statuses[li.member_no] == "frozen"

    def test_without_a_reason_or_selection_nothing_changes(self, owner_client, zhang):
        no_reason = owner_client.post(reverse("members:bulk-freeze"), {"member": [zhang.member_no]})
        nobody = owner_client.post(reverse("members:bulk-freeze"), {"reason": "x"})
        garbage = owner_client.post(reverse("members:bulk-freeze"), {"member": ["'; drop"], "reason": "x"})

        assert {no_reason.status_code, nobody.status_code, garbage.status_code} == {302}
        zhang.refresh_from_db()
        assert zhang.status == Member.Status.ACTIVE

    def test_redirect_stays_on_the_list(self, owner_client, zhang):
        response = owner_client.post(
            reverse("members:bulk-freeze"), {"member": [zhang.member_no], "reason": "x", "query": "//evil.example"}
        )

        assert response["Location"].startswith("/members/")


class TestExport:
    def test_csv_has_a_bom_and_only_the_filtered_rows(self, owner_client, zhang, li):
        response = owner_client.get(reverse("members:export"), {"status": "frozen", "format": "csv"})

        content = response.content
        assert response.status_code == 200 and content.startswith(b"\xef\xbb\xbf")
        text = content.decode("utf-8-sig")
        assert li.member_no in text and zhang.member_no not in text and "+8615900001234" in text

    def test_xlsx_is_a_workbook(self, owner_client, zhang):
        response = owner_client.get(reverse("members:export"), {"format": "xlsx"})

        assert response.status_code == 200 and response.content[:2] == b"PK"

    def test_too_large_a_selection_is_refused_with_a_message(self, owner_client, store, monkeypatch):
        from members.views import member_list

        monkeypatch.setattr(member_list, "EXPORT_MAX_ROWS", 2)
        MemberFactory.create_batch(3, registered_store=store)

        response = owner_client.get(reverse("members:export"), {"format": "csv"}, follow=True)

        assert "too many to download" in response.content.decode()


@pytest.mark.django_db
class TestSearchPlans:
    """Every search shape and the list's pages use an index: with sequential scans priced out, none is left."""

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"q": "13812348000"},
            {"q": "+8613812348000"},
            {"q": "8000"},
            {"q": "1000000018"},
            {"q": "zhang"},
            {"q": "张"},
            {"q": "zs"},
            {"status": "frozen", "registered_from": "2025-01-01"},
            {"store": "1"},
            {"type": "paid"},
            {"sort": "member_no"},
            {"sort": "registered_at"},
        ],
    )
    def test_no_sequential_scan_of_members(self, store, params):
        MemberFactory.create_batch(20, registered_store=store)
        params = {**params, "store": str(store.pk)} if "store" in params else params
        form = filters.MemberFilterForm(params, stores=store.__class__.objects.all())
        qs = filters.member_filter(Member.objects.all(), form)
        sort = form.value("sort", filters.DEFAULT_SORT)
        order = [sort] if "member_no" in sort else [sort, sort.replace(sort.lstrip("-"), "pk")]

        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            plans = [qs.order_by(*order)[:26].explain()]
            sql, sql_params = filters.count_sample(qs).query.sql_with_params()
            cursor.execute(f"EXPLAIN SELECT count(*) FROM ({sql}) AS s", sql_params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

        assert plans[0].count("members_member") and not any("Seq Scan on members_member" in p for p in plans), plans
