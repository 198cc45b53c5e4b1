import io
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from members import importing, services, spreadsheets, tasks
from members.models import Member, MemberImport

HEADER = "member_no,phone,name,gender,birthday,email,external_id,store_code,marketing_consent,notes,registered_at\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def csv_file(*lines: str, encoding: str = "utf-8") -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode(encoding)


def xlsx_file(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER.strip().split(","))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def post_upload(client, name: str, content: bytes, **data):
    return client.post(reverse("members:import"), {"file": upload(name, content), **data})


def import_of(response) -> MemberImport:
    assert response.status_code == 302, response.content.decode()[:2000]
    return MemberImport.objects.get(pk=int(response.url.rstrip("/").rsplit("/", 1)[1]))


class TestReadTable:
    def test_reads_utf8_csv_with_a_bom(self):
        headers, rows = spreadsheets.read_table(io.BytesIO(b"\xef\xbb\xbfName,Phone\n\xe5\xbc\xa0\xe4\xb8\x89,1\n"))

        assert (headers, rows) == (["name", "phone"], [["张三", "1"]])

    def test_reads_gb18030_csv(self):
        _headers, rows = spreadsheets.read_table(io.BytesIO("name,notes\n张三,老顾客\n".encode("gb18030")))

        assert rows == [["张三", "老顾客"]]

    def test_reads_xlsx_numbers_as_the_digits_typed(self):
        content = xlsx_file([[None, 13800138000, "李四"]])

        _headers, rows = spreadsheets.read_table(io.BytesIO(content), name="m.xlsx")

        assert rows[0][:3] == ["", "13800138000", "李四"]

    @pytest.mark.parametrize(
        ("content", "name", "message"),
        [
            (b"", "m.csv", "empty"),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "m.png", "not a spreadsheet"),
            (b"PK\x03\x04garbage", "m.xlsx", "not a valid Excel"),
            (b"not a zip at all", "m.xlsx", "not a valid Excel"),
        ],
    )
    def test_refuses_what_is_not_a_readable_table(self, content, name, message):
        with pytest.raises(spreadsheets.SpreadsheetError, match=message):
            spreadsheets.read_table(io.BytesIO(content), name=name)


class TestExportResponse:
    def test_csv_starts_with_a_bom_and_defuses_formulas(self):
        response = spreadsheets.export_response(filename="会员", headers=["a"], rows=[["=1+1"], ["-3"]], fmt="csv")

        assert response.content == "\ufeffa\r\n'=1+1\r\n-3\r\n".encode()
        assert "filename*=UTF-8''%E4%BC%9A%E5%91%98.csv" in response["Content-Disposition"]

    def test_xlsx_opens_with_the_rows(self):
        response = spreadsheets.export_response(filename="m", headers=["a", "b"], rows=[["张三", 3]], fmt="xlsx")

        sheet = load_workbook(io.BytesIO(response.content)).active
        assert [list(r) for r in sheet.iter_rows(values_only=True)] == [["a", "b"], ["张三", 3]]


class TestUploadAndDryRun:
    def test_dry_run_counts_and_writes_no_member(self, owner_client, store):
        services.member_register(phone="13800000001", name="老会员")
        content = csv_file(
            ",13800000001,老会员改名,,,,,,,,",
            ",13800000002,新会员,female,1990-05-01,a@example.com,OLD-2,SH-01,yes,VIP,2020-01-02",
            ",13800000003,坏门店,,,,,NOPE,,,",
        )

        member_import = import_of(post_upload(owner_client, "m.csv", content))

        assert Member.objects.count() == 1
        assert (member_import.status, member_import.to_create, member_import.to_update, member_import.invalid) == (
            "checked",
            1,
            1,
            1,
        )
        assert member_import.errors[0]["row"] == 4
        assert member_import.errors[0]["column"] == "store_code"

    def test_the_page_shows_the_preview_and_the_errors(self, owner_client, store):
        member_import = import_of(post_upload(owner_client, "m.csv", csv_file(",13800000003,坏门店,,,,,NOPE,,,")))

        page = owner_client.get(reverse("members:import-detail", args=[member_import.pk])).content.decode()

        assert "No store has the code NOPE." in page and "Confirm import" not in page

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"\x00\x01\x02binary", "not a spreadsheet"),
            (b"", "The submitted file is empty"),
            (b"name,notes\n\xe5\xbc\xa0,x\n", "at least one of the columns"),
            (b"phone,name,phne\n13800000001,x,y\n", "Unknown columns: phne"),
            (HEADER.encode(), "no rows"),
        ],
    )
    def test_an_unusable_file_is_refused_and_nothing_is_written(self, owner_client, content, message):
        response = post_upload(owner_client, "m.csv", content)

        assert response.status_code == 200
        assert message in response.content.decode()
        assert not MemberImport.objects.exists() and not Member.objects.exists()

    def test_gb18030_csv_imports_chinese_names(self, owner_client, store):
        content = csv_file(",13800000002,张三,男,,,,SH-01,是,老顾客,", encoding="gb18030")

        member_import = import_of(post_upload(owner_client, "m.csv", content))

        assert member_import.preview[0]["name"] == "张三" and member_import.to_create == 1

    def test_utf8_bom_csv_and_xlsx_are_read_alike(self, owner_client, store):
        bom = import_of(post_upload(owner_client, "a.csv", b"\xef\xbb\xbf" + csv_file(",13800000002,张三,,,,,,,,")))
        xlsx = import_of(post_upload(owner_client, "b.xlsx", xlsx_file([[None, 13800000002, "张三"]])))

        assert bom.preview == xlsx.preview and bom.to_create == 1

    def test_each_kind_of_bad_row_gets_its_own_error(self, owner_client, store):
        other = services.member_register(phone="13800000009", name="别人", external_id="X-9")
        content = csv_file(
            ",12345,号码坏,,,,,,,,",
            ",13800000002,日期坏,,2026-02-30,,,,,,",
            ",13800000002,重复,,,,,,,,",
            ",13800000003,古人,,1800-01-01,,,,,,",
            ",13800000004,邮箱坏,,,garbage,,,,,",
            f"{other.member_no},13800000005,换号,,,,X-9,,,,",
            ",13800000006,占用,,,,X-9,,,,",
            "1234567890,13800000007,卡号错,,,,,,,,",
        )

        member_import = import_of(post_upload(owner_client, "m.csv", content))

        errors = {(e["row"], e["column"]) for e in member_import.errors}
        assert errors == {
            (2, "phone"),
            (3, "birthday"),
            (4, "phone"),
            (5, "birthday"),
            (6, "email"),
            (8, "external_id"),
            (9, "member_no"),
        }
        assert (member_import.to_update, member_import.to_create, member_import.invalid) == (1, 0, 7)


class TestConfirmedImport:
    def test_creates_and_updates_through_the_services(
        self, owner_client, owner, store, django_capture_on_commit_callbacks
    ):
        existing = services.member_register(phone="13800000001", name="老会员")
        content = csv_file(
            ",13800000001,老会员改名,,,,,,yes,,",
            ",13800000002,新会员,female,1990-05-01,a@example.com,OLD-2,SH-01,yes,VIP,2020-01-02",
            ",,无手机,,,,OLD-3,,,,",
            ",13800000003,坏门店,,,,,NOPE,,,",
        )
        member_import = import_of(post_upload(owner_client, "m.csv", content))

        with django_capture_on_commit_callbacks(execute=True):
            owner_client.post(reverse("members:import-confirm", args=[member_import.pk]))

        member_import.refresh_from_db()
        assert (member_import.status, member_import.created, member_import.updated, member_import.failed) == (
            "done",
            2,
            1,
            1,
        )
        existing.refresh_from_db()
        assert existing.name == "老会员改名" and existing.marketing_consent
        new = Member.objects.get(external_id="OLD-2")
        assert new.channel == "import" and new.registered_store == store and new.birthday.isoformat() == "1990-05-01"
        assert new.registered_at.year == 2020 and new.marketing_consent and new.gender == "female"
        assert Member.objects.get(external_id="OLD-3").phone is None

    def test_the_error_report_lists_failed_rows_with_their_cells(self, owner_client, store):
        member_import = import_of(post_upload(owner_client, "m.csv", csv_file(",13800000003,坏门店,,,,,NOPE,,,")))

        response = owner_client.get(reverse("members:import-errors", args=[member_import.pk]))

        text = response.content.decode("utf-8")
        assert text.startswith("\ufeffrow,column,error,member_no,phone")
        assert "2,store_code,No store has the code NOPE.,,13800000003,坏门店" in text

    def test_confirming_twice_queues_one_job(self, owner_client, store, django_capture_on_commit_callbacks):
        member_import = import_of(post_upload(owner_client, "m.csv", csv_file(",13800000002,新,,,,,,,,")))

        with django_capture_on_commit_callbacks(execute=True):
            owner_client.post(reverse("members:import-confirm", args=[member_import.pk]))
            owner_client.post(reverse("members:import-confirm", args=[member_import.pk]))

        assert Member.objects.count() == 1

    def test_status_polls_while_busy_and_reloads_the_page_when_done(self, owner_client, owner, store):
        member_import = import_of(post_upload(owner_client, "m.csv", csv_file(",13800000002,新,,,,,,,,")))
        importing.import_confirm(member_import=member_import)
        url = reverse("members:import-status", args=[member_import.pk])

        busy = owner_client.get(url, headers={"HX-Request": "true"})
        tasks.member_import_apply_task(import_id=member_import.pk)
        done = owner_client.get(url, headers={"HX-Request": "true"})

        assert 'hx-trigger="every 2s"' in busy.content.decode()
        assert done.headers["HX-Refresh"] == "true"


@pytest.mark.slow
def test_ten_thousand_rows_are_created_exactly_once_even_when_the_job_runs_again(owner, store):
    lines = [f",1390{n:07d},会员{n},,,,EXT-{n},SH-01,,," for n in range(10_000)]
    member_import = importing.import_create(
        uploaded=io.BytesIO(csv_file(*lines)), file_name="big.csv", by=owner.user, default_store=None
    )
    tasks.member_import_check_task(import_id=member_import.pk)  # checked as a job: the file is large
    importing.import_confirm(member_import=member_import)
    started = time.monotonic()

    tasks.member_import_apply_task(import_id=member_import.pk)
    elapsed = time.monotonic() - started
    tasks.member_import_apply_task(import_id=member_import.pk)
    MemberImport.objects.filter(pk=member_import.pk).update(status="running", processed=0)  # a lost cursor
    tasks.member_import_apply_task(import_id=member_import.pk)

    assert Member.objects.filter(channel="import").count() == 10_000
    member_import.refresh_from_db()
    assert member_import.status == "done" and member_import.failed == 0
    assert elapsed < 120


class TestCommand:
    def test_dry_run_prints_counts_and_errors_and_writes_nothing(self, owner, store, tmp_path, capsys):
        path = tmp_path / "m.csv"
        path.write_bytes(csv_file(",13800000002,新,,,,,,,,", ",13800000003,坏,,,,,NOPE,,,"))

        call_command("import_members", str(path), "--dry-run")

        out = capsys.readouterr().out
        assert "1 to create" in out and "1 with errors" in out and "row 3: store_code" in out
        assert not Member.objects.exists()

    def test_imports_with_a_default_store(self, owner, store, tmp_path, capsys):
        path = tmp_path / "m.csv"
        path.write_bytes(csv_file(",13800000002,新,,,,,,,,"))

        call_command("import_members", str(path), "--store", "sh-01")

        assert Member.objects.get().registered_store == store
        assert "1 created" in capsys.readouterr().out

    def test_a_malformed_file_is_a_command_error(self, owner, tmp_path):
        path = tmp_path / "m.xlsx"
        path.write_bytes(b"nonsense")

        with pytest.raises(CommandError, match="not a valid Excel"):
            call_command("import_members", str(path))


class TestPermissions:
    @pytest.mark.parametrize("client_name", ["cashier_client", "auditor_client"])
    def test_only_owners_and_managers_import(self, request, client_name, store):
        client = request.getfixturevalue(client_name)

        page = client.get(reverse("members:import"))
        posted = post_upload(client, "m.csv", csv_file(",13800000002,新,,,,,,,,"))

        assert (page.status_code, posted.status_code) == (403, 403)
        assert not MemberImport.objects.exists()

    def test_manager_sees_the_page_and_downloads_templates(self, manager_client):
        page = manager_client.get(reverse("members:import"))
        csv = manager_client.get(reverse("members:import-template", args=["csv"]))
        xlsx = manager_client.get(reverse("members:import-template", args=["xlsx"]))

        assert page.status_code == 200
        assert csv.content.decode("utf-8") == "\ufeff" + HEADER.replace("\n", "\r\n")
        assert next(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))[0] == "member_no"
