"""Purchase history import: rows parsed strictly, matched to members in a fixed order, checked by a dry run that
writes nothing, recorded in resumable batches, and never twice however often a file is imported."""

import datetime
import io
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook, load_workbook

from assets import counter, imports, services, tasks
from assets.models import (
    Account,
    Asset,
    Entry,
    IdempotencyRecord,
    LedgerTransaction,
    Purchase,
    PurchaseImport,
    PurchaseLine,
)
from members import services as members_services
from members.models import Member, Staff, Store
from tests.factories import MemberFactory

Kind = LedgerTransaction.Kind
HEADER = "member_no,phone,external_id,occurred_at,amount,store,external_ref,category,quantity\n"
SHANGHAI = ZoneInfo("Asia/Shanghai")
FULL_WIDTH_12 = "\uff11\uff12"
FULL_WIDTH_YEAR = "\uff12\uff10\uff12\uff14"
ARABIC_INDIC_12 = "\u0661\u0662"


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def csv_file(*lines: str) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


def checked(owner: Staff, content: bytes, *, store: Store | None = None, **options: bool) -> PurchaseImport:
    """Upload and dry-run a file, as the upload page does."""
    purchase_import = imports.import_create(
        uploaded=io.BytesIO(content), file_name="history.csv", by=owner.user, default_store=store, **options
    )
    return imports.import_check(purchase_import=purchase_import)


def applied(purchase_import: PurchaseImport) -> PurchaseImport:
    """Confirm and run the import as its Celery job does."""
    imports.import_confirm(purchase_import=purchase_import)
    tasks.purchase_import_apply_task(import_id=purchase_import.pk)
    purchase_import.refresh_from_db()
    return purchase_import


def errors_of(purchase_import: PurchaseImport) -> set[tuple[int, str]]:
    return {(e["row"], e["column"]) for e in purchase_import.errors}


def growth(member: Member) -> int:
    return Account.objects.filter(member=member, asset=Asset.GROWTH).values_list("balance", flat=True).first() or 0


def ledger_rows() -> tuple[int, int, int, int]:
    return (
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        IdempotencyRecord.objects.count(),
        Account.objects.count(),
    )


@pytest.fixture
def member(store: Store) -> Member:
    return MemberFactory.create(phone="+8613800000001", external_id="OLD-1", registered_store=store)


class TestAmounts:
    @pytest.mark.parametrize(
        ("text", "fen"),
        [
            ("29.33", 2_933),
            ("29.3", 2_930),
            ("29", 2_900),
            ("0.01", 1),
            ("007.50", 750),
            ("999999999.99", 99_999_999_999),
        ],
    )
    def test_reads_yuan_into_fen_exactly(self, text: str, fen: int) -> None:
        assert imports.amount_fen_parse(text) == fen

    @pytest.mark.parametrize(
        "text",
        [
            "1e3",
            FULL_WIDTH_12,
            "-1",
            "1.234",
            "",
            "1,000.00",
            "+5",
            ".5",
            "5.",
            "1234567890",
            "0x10",
            "12 ",
            ARABIC_INDIC_12,
        ],
    )
    def test_refuses_anything_but_ascii_digits_and_two_decimals(self, text: str) -> None:
        assert imports.amount_fen_parse(text) is None


class TestMoments:
    def test_a_bare_date_means_noon_in_the_merchants_zone(self) -> None:
        assert imports.moment_parse("2024-03-05") == datetime.datetime(2024, 3, 5, 12, tzinfo=SHANGHAI)

    def test_a_date_time_without_offset_is_local(self) -> None:
        assert imports.moment_parse("2024-03-05 14:30") == datetime.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)

    def test_an_offset_is_kept(self) -> None:
        moment = imports.moment_parse("2024-03-05T14:30:00Z")

        assert moment is not None and timezone.localtime(moment, SHANGHAI).hour == 22

    @pytest.mark.parametrize(
        "text", ["05/03/2024", FULL_WIDTH_YEAR + "-03-05", "2024-02-30", "yesterday", "2024-03-05 25:00"]
    )
    def test_refuses_what_is_not_iso_8601(self, text: str) -> None:
        assert imports.moment_parse(text) is None


class TestDryRun:
    def test_each_kind_of_bad_row_gets_its_own_error(self, owner: Staff, store: Store, member: Member) -> None:
        tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
        content = csv_file(
            ",13800000001,,2024-03-05,1e3,,R-1,,",
            f",13800000001,,2024-03-05,{FULL_WIDTH_12},,R-2,,",
            ",13800000001,,2024-03-05,-1,,R-3,,",
            ",13800000001,,2024-03-05,1.234,,R-4,,",
            f",13800000001,,{tomorrow},10,,R-5,,",
            ",13800000001,,2024-03-05,10,NOPE,R-6,,",
            ",,,2024-03-05,10,,R-7,,",
            ",13800000001,,2024-03-05,10,,R-8,,",
            ",13800000001,,2024-03-06,11,,R-8,,",
            ",13800000001,,2024-03-05,10,,,,",
            ",13800000001,,2024-03-05,10,,R-11,,0",
            ",13800000001,,2024-03-05,10,,R-12,,1.5",
            ",13800000001,,2024-03-05,10,,R-13," + "x" * 65 + ",",
            ",13800000001,,5 March,10,,R-14,,",
            ",13800000001,,2024-03-05,0.00,,R-15,,",
            ",13800000001,,2024-03-05,10,,R-16," + "书" * 64 + ",2",
        )

        purchase_import = checked(owner, content, store=store)

        assert errors_of(purchase_import) == {
            (2, "amount"),
            (3, "amount"),
            (4, "amount"),
            (5, "amount"),
            (6, "occurred_at"),
            (7, "store"),
            (8, "member_no"),
            (10, "external_ref"),
            (11, "external_ref"),
            (12, "quantity"),
            (13, "quantity"),
            (14, "category"),
            (15, "occurred_at"),
            (16, "amount"),
        }
        assert (purchase_import.to_import, purchase_import.invalid) == (2, 14)
        assert purchase_import.to_import_fen == 2_000

    def test_the_same_reference_in_another_store_is_another_purchase(
        self, owner: Staff, store: Store, other_store: Store, member: Member
    ) -> None:
        purchase_import = checked(
            owner, csv_file(",13800000001,,2024-03-05,10,SH-01,R-1,,", ",13800000001,,2024-03-05,10,sh-02,R-1,,")
        )

        assert (purchase_import.to_import, purchase_import.invalid) == (2, 0)

    def test_a_row_without_a_store_needs_the_default_store(self, owner: Staff, store: Store, member: Member) -> None:
        purchase_import = checked(owner, csv_file(",13800000001,,2024-03-05,10,,R-1,,"))

        assert errors_of(purchase_import) == {(2, "store")}

    def test_writes_nothing(self, owner: Staff, store: Store, member: Member) -> None:
        before = ledger_rows()

        purchase_import = checked(
            owner,
            csv_file(",13800000001,,2024-03-05,10,,R-1,,", ",13800000099,NEW-1,2024-03-05,10,,R-2,,"),
            store=store,
            create_members=True,
            earn_points=True,
        )

        assert (purchase_import.status, purchase_import.to_import, purchase_import.members_to_create) == (
            "checked",
            2,
            1,
        )
        assert not Purchase.objects.exists() and Member.objects.count() == 1
        assert ledger_rows() == before

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"phone,amount,external_ref\n1,2,3\n", "needs the columns occurred_at"),
            (b"occurred_at,amount,external_ref\n1,2,3\n", "needs the columns occurred_at"),
            (b"phone,occurred_at,amount,external_ref,price\n1,2,3,4,5\n", "Unknown columns: price"),
            (HEADER.encode(), "no rows"),
        ],
    )
    def test_a_file_without_the_columns_is_refused(self, owner: Staff, content: bytes, message: str) -> None:
        with pytest.raises(imports.ImportFileError, match=message):
            imports.import_create(uploaded=io.BytesIO(content), file_name="p.csv", by=owner.user, default_store=None)

        assert not PurchaseImport.objects.exists()


class TestMatching:
    def test_member_no_then_phone_then_external_id(self, owner: Staff, store: Store) -> None:
        by_no = MemberFactory.create(phone="+8613800000011")
        by_phone = MemberFactory.create(phone="+8613800000012")
        by_external = MemberFactory.create(phone="+8613800000013", external_id="OLD-13")
        unknown_no = members_services.with_check_digit("999999999")
        content = csv_file(
            f"{by_no.member_no},13800000012,OLD-13,2024-03-05,1,,R-1,,",
            ",+86 138 0000 0012,OLD-13,2024-03-05,2,,R-2,,",
            ",13800000099,OLD-13,2024-03-05,3,,R-3,,",
            f"{unknown_no},13800000012,,2024-03-05,4,,R-4,,",
        )

        purchase_import = applied(checked(owner, content, store=store))

        owners = dict(Purchase.objects.values_list("external_ref", "member_id"))
        assert owners == {"R-1": by_no.pk, "R-2": by_phone.pk, "R-3": by_external.pk, "R-4": by_phone.pk}
        assert purchase_import.imported == 4

    def test_an_unknown_member_is_an_error_unless_members_may_be_created(self, owner: Staff, store: Store) -> None:
        purchase_import = checked(owner, csv_file(",13800000099,NEW-1,2024-03-05,10,,R-1,,"), store=store)

        assert errors_of(purchase_import) == {(2, "phone")}
        assert "let this import create them" in purchase_import.errors[0]["message"]

    def test_cancelled_and_frozen_members_are_errors(self, owner: Staff, store: Store) -> None:
        frozen = MemberFactory.create(phone="+8613800000021")
        cancelled = MemberFactory.create(phone="+8613800000022")
        members_services.member_freeze(member=frozen, by=None, reason="test")
        members_services.member_cancel(member=cancelled, by=None, reason="test")
        content = csv_file(",13800000021,,2024-03-05,10,,R-1,,", f"{cancelled.member_no},,,2024-03-05,10,,R-2,,")

        counted = checked(owner, content, store=store)
        history_only = checked(owner, content, store=store, earn_growth=False)

        assert errors_of(counted) == {(2, "member_no"), (3, "member_no")}
        assert errors_of(history_only) == {(3, "member_no")}


class TestCreateMembers:
    def test_creates_each_unknown_member_once_with_channel_import(self, owner: Staff, store: Store) -> None:
        content = csv_file(
            ",13800000099,NEW-1,2024-03-05 18:00,10,,R-1,,",
            ",,NEW-1,2023-11-02,20,,R-2,,",
            ",13800000099,,2024-05-01,30,,R-3,,",
            f"{members_services.with_check_digit('999999999')},,,2024-05-01,30,,R-4,,",
        )

        dry = checked(owner, content, store=store, create_members=True)
        purchase_import = applied(dry)

        assert (dry.members_to_create, dry.to_import, dry.invalid) == (1, 3, 1)
        assert errors_of(purchase_import) == {(5, "member_no")}
        created = Member.objects.get()
        assert (created.channel, created.external_id, str(created.phone)) == ("import", "NEW-1", "+8613800000099")
        assert created.registered_store == store
        assert created.registered_at == datetime.datetime(2023, 11, 2, 12, tzinfo=SHANGHAI)  # the first purchase
        assert Purchase.objects.filter(member=created).count() == 3
        assert (purchase_import.members_created, purchase_import.imported, purchase_import.failed) == (1, 3, 1)


class TestImport:
    def test_records_each_row_as_an_imported_purchase_paid_by_other(
        self, owner: Staff, store: Store, member: Member
    ) -> None:
        purchase_import = applied(
            checked(
                owner,
                csv_file(",13800000001,,2024-03-05,29.33,,R-1,饮品,", ",,OLD-1,2024-03-06 09:15,10.00,,R-2,,3"),
                store=store,
            )
        )

        first, second = Purchase.objects.order_by("external_ref")
        assert (first.source, first.store, first.member, first.actor) == (
            "import",
            store,
            member,
            f"import:{purchase_import.pk}",
        )
        assert first.occurred_at == datetime.datetime(2024, 3, 5, 12, tzinfo=SHANGHAI)
        assert first.business_date == datetime.date(2024, 3, 5)
        assert (first.gross_fen, first.payable_fen, first.other_fen, first.tenders()) == (
            2_933,
            2_933,
            2_933,
            {"other": 2_933},
        )
        assert second.occurred_at == datetime.datetime(2024, 3, 6, 9, 15, tzinfo=SHANGHAI)
        assert len(first.order_no) == 18 and first.order_no != second.order_no
        assert list(first.lines.values_list("category", "quantity", "amount_fen")) == [("饮品", 1, 2_933)]
        # ¥10.00 for 3 items: a line's amount is its price times its quantity, so the odd fen gets a line of its own
        assert sorted(second.lines.values_list("quantity", "unit_price_fen")) == [(1, 334), (2, 333)]
        assert PurchaseLine.objects.aggregate(total=Sum("amount_fen"))["total"] == 3_933
        assert (purchase_import.status, purchase_import.imported, purchase_import.imported_fen) == ("done", 2, 3_933)

    def test_counts_for_growth_by_default_and_earns_no_points(self, owner: Staff, store: Store, member: Member) -> None:
        applied(checked(owner, csv_file(",13800000001,,2024-03-05,29.33,,R-1,,"), store=store))

        purchase = Purchase.objects.get()
        addition = LedgerTransaction.objects.get(kind=Kind.GROWTH_ADD)
        assert (addition.member, addition.amount, addition.external_ref) == (member, 29, purchase.order_no)
        assert (purchase.growth_earned, purchase.points_earned, purchase.details["tx"]) == (
            29,
            0,
            {"growth": addition.pk},
        )
        assert growth(member) == 29
        assert not LedgerTransaction.objects.filter(kind=Kind.POINTS_EARN).exists()
        assert services.ledgers_verify().ok

    def test_earns_points_only_when_asked(self, owner: Staff, store: Store, member: Member) -> None:
        applied(checked(owner, csv_file(",13800000001,,2024-03-05,29.33,,R-1,,"), store=store, earn_points=True))

        purchase = Purchase.objects.get()
        earning = LedgerTransaction.objects.get(kind=Kind.POINTS_EARN)
        assert (earning.amount, earning.external_ref, purchase.points_earned) == (29, purchase.order_no, 29)
        assert set(purchase.details["tx"]) == {"growth", "points_earn"}
        assert services.ledgers_verify().ok

    def test_history_only_writes_no_ledger(self, owner: Staff, store: Store, member: Member) -> None:
        before = ledger_rows()

        applied(checked(owner, csv_file(",13800000001,,2024-03-05,29.33,,R-1,,"), store=store, earn_growth=False))

        assert Purchase.objects.get().growth_earned == 0
        assert ledger_rows() == before

    def test_a_refund_of_an_imported_purchase_takes_its_growth_back(
        self, owner: Staff, store: Store, member: Member
    ) -> None:
        applied(checked(owner, csv_file(",13800000001,,2024-03-05,100,,R-1,,"), store=store))

        refund = counter.purchase_refund(purchase=Purchase.objects.get(), idempotency_key="refund-1", staff=owner)

        assert (refund.other_fen, refund.growth_clawed_back) == (10_000, 100)
        assert growth(member) == 0

    def test_a_second_import_of_the_same_file_changes_nothing(self, owner: Staff, store: Store, member: Member) -> None:
        content = csv_file(",13800000001,,2024-03-05,10,,R-1,,", ",13800000099,NEW-1,2024-03-05,20,,R-2,,")
        applied(checked(owner, content, store=store, create_members=True, earn_points=True))
        before = (ledger_rows(), Purchase.objects.count(), PurchaseLine.objects.count(), Member.objects.count())

        again = checked(owner, content, store=store, create_members=True, earn_points=True)
        dry = (again.to_import, again.already_imported, again.members_to_create)
        again = applied(again)

        assert dry == (0, 2, 0)
        assert (again.imported, again.skipped, again.members_created) == (0, 2, 0)
        assert (ledger_rows(), Purchase.objects.count(), PurchaseLine.objects.count(), Member.objects.count()) == before


class Interrupted(Exception):
    pass


class TestResumption:
    content = csv_file(*(f",13800000001,,2024-03-0{n},{n},,R-{n},," for n in range(1, 8)))

    def test_a_failed_batch_leaves_the_ones_before_and_resuming_finishes_the_rest(
        self, owner: Staff, store: Store, member: Member, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(imports, "BATCH", 3)
        real_growth_add = services.growth_add

        def growth_add_failing_on_row_6(**kwargs: Any) -> LedgerTransaction:
            if kwargs["idempotency_key"].endswith(":R-5:growth"):
                raise RuntimeError("the database went away")
            return real_growth_add(**kwargs)

        monkeypatch.setattr(services, "growth_add", growth_add_failing_on_row_6)
        purchase_import = checked(owner, self.content, store=store)
        imports.import_confirm(purchase_import=purchase_import)

        with pytest.raises(RuntimeError):
            tasks.purchase_import_apply_task(import_id=purchase_import.pk)
        purchase_import.refresh_from_db()
        failed = (purchase_import.status, purchase_import.processed, purchase_import.imported, Purchase.objects.count())
        monkeypatch.setattr(services, "growth_add", real_growth_add)
        assert imports.import_resume(purchase_import=purchase_import)
        tasks.purchase_import_apply_task(import_id=purchase_import.pk)

        purchase_import.refresh_from_db()
        assert failed == ("failed", 3, 3, 3)
        assert (purchase_import.status, purchase_import.imported, purchase_import.processed) == ("done", 7, 7)
        assert Purchase.objects.count() == LedgerTransaction.objects.filter(kind=Kind.GROWTH_ADD).count() == 7
        assert growth(member) == sum(range(1, 8))

    def test_a_killed_worker_is_picked_up_where_it_stopped(
        self, owner: Staff, store: Store, member: Member, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(imports, "BATCH", 3)
        purchase_import = checked(owner, self.content, store=store)
        imports.import_confirm(purchase_import=purchase_import)

        def killed(_progress: PurchaseImport) -> None:
            raise Interrupted

        with pytest.raises(Interrupted):
            imports.import_apply(purchase_import=purchase_import, on_batch=killed)
        tasks.purchase_import_apply_task(import_id=purchase_import.pk)  # the message, delivered again

        purchase_import.refresh_from_db()
        assert (purchase_import.status, purchase_import.imported, purchase_import.skipped) == ("done", 7, 0)
        assert Purchase.objects.count() == 7 and growth(member) == sum(range(1, 8))


@pytest.mark.slow
def test_ten_thousand_rows_import_once_and_a_second_import_changes_nothing(owner: Staff, store: Store) -> None:
    Member.objects.bulk_create(
        Member(
            member_no=members_services.with_check_digit(str(500_000_000 + n)),
            phone=f"+86137{n:08d}",
            name=f"会员{n}",
            registered_store=store,
        )
        for n in range(2_000)
    )
    lines = []
    for n in range(10_000):
        who = n % 2_500  # 2,000 known members (by member_no or phone) and 500 to create (by external id)
        if who >= 2_000:
            key = f",,NEW-{who}"
        elif n % 2:
            key = f"{members_services.with_check_digit(str(500_000_000 + who))},,"
        else:
            key = f",137{who:08d},"
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=n % 300)
        lines.append(f"{key},{day.isoformat()} 1{n % 10}:00,{n % 500 + 1}.{n % 100:02d},,R-{n},食品,{n % 3 + 1}")
    content = csv_file(*lines)

    started = time.monotonic()
    purchase_import = imports.import_create(
        uploaded=io.BytesIO(content), file_name="big.csv", by=owner.user, default_store=store, create_members=True
    )
    tasks.purchase_import_check_task(import_id=purchase_import.pk)  # a large file is checked as a job
    dry_run_seconds = time.monotonic() - started
    purchase_import.refresh_from_db()
    assert (purchase_import.to_import, purchase_import.members_to_create, purchase_import.invalid) == (10_000, 500, 0)
    assert not Purchase.objects.exists()
    started = time.monotonic()
    purchase_import = applied(purchase_import)
    apply_seconds = time.monotonic() - started
    print(f"10,000 rows: dry run {dry_run_seconds:.1f} s, import {apply_seconds:.1f} s")
    assert (purchase_import.status, purchase_import.imported, purchase_import.members_created) == ("done", 10_000, 500)
    before = (ledger_rows(), Purchase.objects.count(), PurchaseLine.objects.count(), Member.objects.count())

    again = imports.import_create(
        uploaded=io.BytesIO(content), file_name="big.csv", by=owner.user, default_store=store, create_members=True
    )
    tasks.purchase_import_check_task(import_id=again.pk)
    again = applied(PurchaseImport.objects.get(pk=again.pk))

    assert (again.imported, again.skipped, again.failed, again.members_created) == (0, 10_000, 0, 0)
    assert (ledger_rows(), Purchase.objects.count(), PurchaseLine.objects.count(), Member.objects.count()) == before
    assert Purchase.objects.aggregate(total=Sum("payable_fen"))["total"] == sum(
        (n % 500 + 1) * 100 + n % 100 for n in range(10_000)
    )
    assert not Purchase.objects.values("order_no").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert services.ledgers_verify().ok
    assert apply_seconds < 120


class TestCommand:
    def test_dry_run_prints_counts_and_errors_and_writes_nothing(
        self, owner: Staff, store: Store, member: Member, tmp_path: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "p.csv"
        path.write_bytes(csv_file(",13800000001,,2024-03-05,10,,R-1,,", ",13800000001,,2024-03-05,1e3,,R-2,,"))

        call_command("import_purchases", str(path), "--store", "sh-01", "--dry-run")

        out = capsys.readouterr().out
        assert "1 to import (¥10.00)" in out and "1 with errors" in out and "row 3: amount" in out
        assert not Purchase.objects.exists()

    def test_imports_creating_members(
        self, owner: Staff, store: Store, tmp_path: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "p.csv"
        path.write_bytes(csv_file(",13800000099,NEW-1,2024-03-05,10,,R-1,,"))

        call_command("import_purchases", str(path), "--store", "SH-01", "--create-members")

        assert Purchase.objects.get().member == Member.objects.get(external_id="NEW-1")
        assert "1 purchases recorded" in capsys.readouterr().out

    def test_an_unknown_store_is_a_command_error(self, owner: Staff, tmp_path: Any) -> None:
        path = tmp_path / "p.csv"
        path.write_bytes(csv_file(",13800000099,,2024-03-05,10,,R-1,,"))

        with pytest.raises(CommandError, match="no store has the code NOPE"):
            call_command("import_purchases", str(path), "--store", "NOPE")


def post_upload(client: Client, content: bytes, name: str = "p.csv", **data: Any) -> Any:
    return client.post(reverse("assets:purchase-import"), {"file": SimpleUploadedFile(name, content), **data})


def import_of(response: Any) -> PurchaseImport:
    assert response.status_code == 302, response.content.decode()[:2000]
    return PurchaseImport.objects.get(pk=int(response.url.rstrip("/").rsplit("/", 1)[1]))


def xlsx_file(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER.strip().split(","))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


class TestViews:
    @pytest.mark.parametrize("client_name", ["cashier_client", "auditor_client"])
    def test_only_owners_and_managers_import(
        self, request: pytest.FixtureRequest, client_name: str, store: Store
    ) -> None:
        client = request.getfixturevalue(client_name)

        page = client.get(reverse("assets:purchase-import"))
        posted = post_upload(client, csv_file(",13800000001,,2024-03-05,10,SH-01,R-1,,"))

        assert (page.status_code, posted.status_code) == (403, 403)
        assert not PurchaseImport.objects.exists()

    def test_the_stored_balance_page_links_to_the_import(self, manager_client: Client) -> None:
        page = manager_client.get(reverse("assets:balance")).content.decode()

        assert reverse("assets:purchase-import") in page

    def test_manager_sees_the_page_and_downloads_the_templates(self, manager_client: Client) -> None:
        page = manager_client.get(reverse("assets:purchase-import"))
        csv = manager_client.get(reverse("assets:purchase-import-template", args=["csv"]))
        xlsx = manager_client.get(reverse("assets:purchase-import-template", args=["xlsx"]))

        assert page.status_code == 200 and "Let the purchases earn points" in page.content.decode()
        assert csv.content.decode("utf-8") == "\ufeff" + HEADER.replace("\n", "\r\n")
        assert next(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))[3] == "occurred_at"

    def test_upload_dry_run_then_confirm(
        self, manager_client: Client, store: Store, member: Member, django_capture_on_commit_callbacks: Any
    ) -> None:
        content = csv_file(",13800000001,,2024-03-05,29.33,,R-1,,", ",13800000001,,2024-03-05,-1,,R-2,,")

        purchase_import = import_of(post_upload(manager_client, content, default_store=store.pk, earn_growth="on"))
        page = manager_client.get(reverse("assets:purchase-import-detail", args=[purchase_import.pk])).content.decode()
        report = manager_client.get(reverse("assets:purchase-import-errors", args=[purchase_import.pk]))
        written_before_confirming = Purchase.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            manager_client.post(reverse("assets:purchase-import-confirm", args=[purchase_import.pk]))
            manager_client.post(reverse("assets:purchase-import-confirm", args=[purchase_import.pk]))  # a double click
        done = manager_client.get(reverse("assets:purchase-import-detail", args=[purchase_import.pk])).content.decode()

        assert "Confirm import" in page and "R-1" in page and "Write the amount in yuan" in page
        assert '3,amount,"Write the amount in yuan' in report.content.decode("utf-8")
        assert not written_before_confirming
        purchase_import.refresh_from_db()
        assert (purchase_import.status, purchase_import.imported, purchase_import.failed) == ("done", 1, 1)
        assert purchase_import.earn_growth and not purchase_import.earn_points and not purchase_import.create_members
        assert Purchase.objects.get().member == member
        assert "Purchases imported" in done

    def test_the_options_reach_the_import(self, owner_client: Client, store: Store) -> None:
        content = xlsx_file([[None, None, "NEW-1", datetime.datetime(2024, 3, 5, 18, 30), 29.33, "SH-01", "R-1"]])

        purchase_import = import_of(post_upload(owner_client, content, "p.xlsx", create_members="on", earn_points="on"))

        assert purchase_import.create_members and purchase_import.earn_points and not purchase_import.earn_growth
        assert purchase_import.preview[0]["occurred_at"] == "2024-03-05 18:30"
        assert (purchase_import.preview[0]["amount"], purchase_import.members_to_create) == ("29.33", 1)

    def test_an_unusable_file_is_refused_on_the_form(self, owner_client: Client) -> None:
        response = post_upload(owner_client, b"phone,amount\n1,2\n")

        assert response.status_code == 200 and "needs the columns occurred_at" in response.content.decode()
        assert not PurchaseImport.objects.exists()

    def test_status_polls_while_busy_and_reloads_the_page_when_done(
        self, owner_client: Client, owner: Staff, store: Store, member: Member
    ) -> None:
        purchase_import = checked(owner, csv_file(",13800000001,,2024-03-05,10,,R-1,,"), store=store)
        imports.import_confirm(purchase_import=purchase_import)
        url = reverse("assets:purchase-import-status", args=[purchase_import.pk])

        busy = owner_client.get(url, headers={"HX-Request": "true"})
        tasks.purchase_import_apply_task(import_id=purchase_import.pk)
        done = owner_client.get(url, headers={"HX-Request": "true"})

        assert 'hx-trigger="every 2s"' in busy.content.decode()
        assert done.headers["HX-Refresh"] == "true"

    def test_a_failed_import_can_be_resumed_from_its_page(
        self,
        owner_client: Client,
        owner: Staff,
        store: Store,
        member: Member,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        purchase_import = checked(owner, csv_file(",13800000001,,2024-03-05,10,,R-1,,"), store=store)
        imports.import_confirm(purchase_import=purchase_import)
        imports.import_fail(purchase_import=purchase_import, error=RuntimeError("boom"))
        page = owner_client.get(reverse("assets:purchase-import-detail", args=[purchase_import.pk])).content.decode()

        with django_capture_on_commit_callbacks(execute=True):
            owner_client.post(reverse("assets:purchase-import-resume", args=[purchase_import.pk]))

        assert "Resume the import" in page and "internal error" in page
        purchase_import.refresh_from_db()
        assert (purchase_import.status, purchase_import.imported) == ("done", 1)


def test_imported_growth_is_dated_when_the_purchase_happened(owner: Staff, store: Store) -> None:
    from assets.models import LedgerTransaction

    member = MemberFactory.create(phone="+8613800138999")
    content = csv_file(",13800138999,,2025-03-15,120.00,,OLD-1,,")
    applied(checked(owner, content, store=store))

    added = LedgerTransaction.objects.get(member=member, kind=LedgerTransaction.Kind.GROWTH_ADD)
    assert added.business_date.isoformat() == "2025-03-15"
    assert timezone.localtime(added.created_at).hour == 12


@pytest.mark.parametrize("when", ["0001-01-01T00:00+14:00", "0001-01-01", "1999-12-31"])
def test_a_date_before_2000_is_a_row_error_not_a_failed_check(owner: Staff, store: Store, when: str) -> None:
    MemberFactory.create(phone="+8613800138998")
    purchase_import = checked(owner, csv_file(f",13800138998,,{when},120.00,,OLD-2,,"), store=store)

    assert (1, "occurred_at") in errors_of(purchase_import) or (2, "occurred_at") in errors_of(purchase_import)
