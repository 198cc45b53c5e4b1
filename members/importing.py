"""Member import: read a spreadsheet, check every row (the dry run), then create or update members through
members.services in batches.

A row matches an existing member by member_no, else phone, else external_id. Matched members get the
row's non-empty fields (member_update); the rest are registered (member_register, channel "import").
Bad rows are reported with their file row number and column; the other rows still go in.
"""

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members import services, spreadsheets
from members.models import ConsentRecord, Member, MemberImport, Store
from members.spreadsheets import SpreadsheetError, read_table

COLUMNS = (
    "member_no",
    "phone",
    "name",
    "gender",
    "birthday",
    "email",
    "external_id",
    "store_code",
    "marketing_consent",
    "notes",
    "registered_at",
)
KEY_COLUMNS = ("member_no", "phone", "external_id")
SYNC_CHECK_MAX_ROWS = 2_000  # larger files are checked by a Celery job, not while the browser waits
BATCH = 500
PREVIEW_ROWS = 20
ERRORS_KEPT = 5_000

GENDERS = {
    "female": Member.Gender.FEMALE,
    "f": Member.Gender.FEMALE,
    "女": Member.Gender.FEMALE,
    "male": Member.Gender.MALE,
    "m": Member.Gender.MALE,
    "男": Member.Gender.MALE,
    "unknown": Member.Gender.UNKNOWN,
    "未知": Member.Gender.UNKNOWN,
}
YES = {"yes", "y", "true", "1", "是", "同意"}
NO = {"no", "n", "false", "0", "否", "不同意"}
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d")
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S")


class ImportFileError(SpreadsheetError):
    """The file as a whole cannot be imported (unreadable, no header, missing columns)."""


@dataclass
class Row:
    """One data row of the file, parsed: `data` holds only the fields the row gives, already normalised."""

    number: int  # the row number in the file (the header is row 1)
    values: list[str]
    data: dict[str, object] = field(default_factory=dict)
    store: Store | None = None
    registered_at: datetime.datetime | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Verdict:
    action: str  # "create", "update", "unchanged" or "error"
    member: Member | None = None
    changes: dict[str, object] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Table:
    headers: list[str]
    rows: list[Row]


# ------------------------------------------------------------------ reading and checking single rows


def table_read(uploaded: IO[bytes], *, name: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of an import file. Raises ImportFileError (or SpreadsheetError) when the file cannot
    be read or lacks the columns an import needs."""
    headers, rows = read_table(uploaded, name=name)
    unknown = [h for h in headers if h and h not in COLUMNS]
    if unknown:
        raise ImportFileError(
            _("Unknown columns: %(columns)s. Use the columns of the template: %(allowed)s.")
            % {"columns": ", ".join(unknown), "allowed": ", ".join(COLUMNS)}
        )
    if not any(key in headers for key in KEY_COLUMNS) or "name" not in headers:
        raise ImportFileError(
            _("The file needs a name column and at least one of the columns member_no, phone, external_id.")
        )
    duplicated = sorted({h for h in headers if h and headers.count(h) > 1})
    if duplicated:
        raise ImportFileError(_("Columns appear twice: %(columns)s.") % {"columns": ", ".join(duplicated)})
    if not rows:
        raise ImportFileError(_("The file has column names but no rows."))
    return headers, rows


def _parse_date(text: str) -> datetime.date | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a calendar date: no zone)
        except ValueError:
            continue
    return None


def _parse_moment(text: str) -> datetime.datetime | None:
    for fmt in DATETIME_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).replace(tzinfo=timezone.get_current_timezone())
        except ValueError:
            continue
    day = _parse_date(text)
    return datetime.datetime.combine(day, datetime.time(), tzinfo=timezone.get_current_timezone()) if day else None


def row_parse(
    number: int,
    values: list[str],
    headers: list[str],
    *,
    stores: dict[str, Store],
    default_store: Store | None,
    today: datetime.date,
    now: datetime.datetime,
) -> Row:
    """Check one row on its own (no database): formats, the store code, dates. Errors are collected, not raised."""
    row = Row(number=number, values=values, store=default_store)
    cells = {h: v.strip() for h, v in zip(headers, values, strict=True) if h}

    def error(column: str, message: str) -> None:
        row.errors.append((column, message))

    if member_no := cells.get("member_no"):
        if services.is_valid_member_no(member_no):
            row.data["member_no"] = member_no
        else:
            error("member_no", _("This is not a valid member number (check digit)."))
    if phone := cells.get("phone"):
        try:
            row.data["phone"] = services.normalise_phone(phone)
        except services.MemberError as exc:
            error("phone", str(exc))
    if name := cells.get("name"):
        name = " ".join(name.split())
        if len(name) > services.NAME_MAX:
            error("name", _("A name has at most %(n)s characters.") % {"n": services.NAME_MAX})
        else:
            row.data["name"] = name
    if gender := cells.get("gender"):
        if gender.lower() in GENDERS:
            row.data["gender"] = GENDERS[gender.lower()]
        else:
            error("gender", _("Write female, male or unknown."))
    if birthday_text := cells.get("birthday"):
        birthday = _parse_date(birthday_text)
        if birthday is None:
            error("birthday", _("Write the date as YYYY-MM-DD."))
        elif not services.OLDEST_BIRTHDAY <= birthday <= today:
            error("birthday", _("Enter a birthday between 1900 and today."))
        else:
            row.data["birthday"] = birthday
    if email := cells.get("email"):
        try:
            validate_email(email)
        except ValidationError:
            error("email", _("Enter a valid e-mail address."))
        else:
            row.data["email"] = email
    if external_id := cells.get("external_id"):
        if len(external_id) > 64:
            error("external_id", _("An external id has at most 64 characters."))
        else:
            row.data["external_id"] = external_id
    if store_code := cells.get("store_code"):
        row.store = stores.get(store_code.upper())
        if row.store is None:
            error("store_code", _("No store has the code %(code)s.") % {"code": store_code})
    if consent := cells.get("marketing_consent"):
        if consent.lower() in YES:
            row.data["marketing_consent"] = True
        elif consent.lower() in NO:
            row.data["marketing_consent"] = False
        else:
            error("marketing_consent", _("Write yes or no."))
    if notes := cells.get("notes"):
        row.data["notes"] = notes
    if registered_text := cells.get("registered_at"):
        registered_at = _parse_moment(registered_text)
        if registered_at is None:
            error("registered_at", _("Write the date as YYYY-MM-DD or YYYY-MM-DD HH:MM."))
        elif registered_at > now:
            error("registered_at", _("The registration date is in the future."))
        else:
            row.registered_at = registered_at
    return row


def table_parse(
    headers: list[str], rows: list[list[str]], *, default_store: Store | None, now: datetime.datetime | None = None
) -> Table:
    """Parse every row, and flag rows whose member number, phone or external id an earlier row already used."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    stores = {store.code.upper(): store for store in Store.objects.all()}
    parsed: list[Row] = []
    first_row_of: dict[tuple[str, object], int] = {}
    for index, values in enumerate(rows):
        number = index + 2
        if not any(values):
            continue
        row = row_parse(number, values, headers, stores=stores, default_store=default_store, today=today, now=now)
        for key in KEY_COLUMNS:
            if key in row.data:
                earlier = first_row_of.setdefault((key, row.data[key]), number)
                if earlier != number:
                    row.errors.append(
                        (key, _("Row %(row)s has the same %(column)s.") % {"row": earlier, "column": key})
                    )
        parsed.append(row)
    return Table(headers=headers, rows=parsed)


# ------------------------------------------------------------------ matching rows to members


def _members_for(rows: Iterable[Row]) -> dict[tuple[str, object], Member]:
    """Every member any of the rows' keys point to, in one query."""
    keys: dict[str, set[object]] = {key: set() for key in KEY_COLUMNS}
    for row in rows:
        for key in KEY_COLUMNS:
            if key in row.data:
                keys[key].add(row.data[key])
    condition = Q(pk__in=[])
    for key, values in keys.items():
        if values:
            condition |= Q(**{f"{key}__in": values})
    found: dict[tuple[str, object], Member] = {}
    for member in Member.objects.filter(condition):
        found[("member_no", member.member_no)] = member
        if member.phone:
            found[("phone", str(member.phone))] = member
        if member.external_id:
            found[("external_id", member.external_id)] = member
    return found


UPDATABLE = ("phone", "name", "gender", "birthday", "email", "external_id", "marketing_consent", "notes")


def row_judge(row: Row, members: dict[tuple[str, object], Member]) -> Verdict:
    """What importing this row would do, given the members its keys match (from _members_for)."""
    if row.errors:
        return Verdict("error", errors=row.errors)
    member = next((members[(k, row.data[k])] for k in KEY_COLUMNS if (k, row.data.get(k)) in members), None)
    if member is None and "member_no" in row.data:
        return Verdict("error", errors=[("member_no", _("No member has this member number."))])
    errors = []
    for key in ("phone", "external_id"):
        owner = members.get((key, row.data.get(key)))
        if owner is not None and owner != member:
            errors.append(
                (key, _("Member %(no)s already has this %(column)s.") % {"no": owner.member_no, "column": key})
            )
    if member is not None and member.status == Member.Status.CANCELLED:
        errors.append(("member_no", _("Member %(no)s is cancelled and cannot be changed.") % {"no": member.member_no}))
    if errors:
        return Verdict("error", member=member, errors=errors)
    if member is None:
        return Verdict("create")
    changes = {k: v for k, v in row.data.items() if k in UPDATABLE and _current(member, k) != v}
    return Verdict("update" if changes else "unchanged", member=member, changes=changes)


def _current(member: Member, key: str) -> object:
    value = getattr(member, key)
    return str(value) if key == "phone" and value else value


# ------------------------------------------------------------------ the dry run and the import


def _error_entries(row: Row, errors: list[tuple[str, str]]) -> list[dict[str, object]]:
    return [{"row": row.number, "column": c, "message": str(m), "values": row.values} for c, m in errors]


def _table_of(member_import: MemberImport) -> Table:
    member_import.file.open("rb")
    try:
        headers, rows = table_read(member_import.file, name=member_import.file_name)
    finally:
        member_import.file.close()
    return table_parse(headers, rows, default_store=member_import.default_store, now=member_import.created_at)


def import_create(*, uploaded: IO[bytes], file_name: str, by: User, default_store: Store | None) -> MemberImport:
    """Store an uploaded file for import after checking it can be read; the dry run comes next.
    Raises SpreadsheetError (the whole file is unusable); nothing is written then."""
    _headers, rows = table_read(uploaded, name=file_name)
    uploaded.seek(0)
    member_import = MemberImport(
        file_name=file_name[:200], default_store=default_store, created_by=by, total_rows=len(rows)
    )
    member_import.file.save(file_name[-100:], ContentFile(uploaded.read()), save=False)
    member_import.save()
    return member_import


def import_check(*, member_import: MemberImport) -> MemberImport:
    """The dry run: judge every row and record the counts, a preview and the errors. Writes no member."""
    table = _table_of(member_import)
    counts = {"create": 0, "update": 0, "unchanged": 0, "error": 0}
    preview: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    for start in range(0, len(table.rows), BATCH):
        batch = table.rows[start : start + BATCH]
        members = _members_for(batch)
        for row in batch:
            verdict = row_judge(row, members)
            counts[verdict.action] += 1
            if len(preview) < PREVIEW_ROWS:
                preview.append(_preview_entry(row, verdict))
            if verdict.errors and len(errors) < ERRORS_KEPT:
                errors.extend(_error_entries(row, verdict.errors))
    member_import.to_create, member_import.to_update = counts["create"], counts["update"]
    member_import.unchanged, member_import.invalid = counts["unchanged"], counts["error"]
    member_import.total_rows = len(table.rows)
    member_import.preview, member_import.errors = preview, errors
    member_import.status = MemberImport.Status.CHECKED
    member_import.save()
    return member_import


def _preview_entry(row: Row, verdict: Verdict) -> dict[str, object]:
    return {
        "row": row.number,
        "action": verdict.action,
        "member_no": verdict.member.member_no if verdict.member else "",
        "name": str(row.data.get("name", "")),
        "phone": str(row.data.get("phone") or ""),
        "changes": sorted(verdict.changes),
    }


def import_confirm(*, member_import: MemberImport) -> bool:
    """Mark a checked import as queued; False if it was already confirmed (a double click)."""
    return bool(
        MemberImport.objects.filter(pk=member_import.pk, status=MemberImport.Status.CHECKED).update(
            status=MemberImport.Status.QUEUED, confirmed_at=timezone.now()
        )
    )


def import_apply(
    *, member_import: MemberImport, on_batch: Callable[[MemberImport], None] | None = None
) -> MemberImport:
    """Create and update members from a confirmed import, BATCH rows per transaction. Each batch moves the
    import's cursor in the same transaction, so a job that is run again (a retry, a redelivered message)
    goes on from the last committed batch and creates no member twice. Rows are judged afresh: the
    register may have changed since the dry run."""
    table = _table_of(member_import)
    by = member_import.created_by
    # the import's own errors replace the dry run's (only when starting, not when a retry goes on)
    MemberImport.objects.filter(pk=member_import.pk, status=MemberImport.Status.QUEUED, processed=0).update(
        status=MemberImport.Status.RUNNING, errors=[]
    )
    while True:
        with transaction.atomic():
            # Two runs of one import queue on this lock; the second then sees the first one's cursor.
            current = MemberImport.objects.select_for_update().get(pk=member_import.pk)
            if current.status not in (MemberImport.Status.QUEUED, MemberImport.Status.RUNNING):
                return current
            batch = [row for row in table.rows if row.number - 2 >= current.processed][:BATCH]
            if not batch:
                current.status, current.finished_at = MemberImport.Status.DONE, timezone.now()
                current.save(update_fields=["status", "finished_at"])
                return current
            members = _members_for(batch)
            for row in batch:
                _row_apply(row, members, current, by=by)
            current.processed = batch[-1].number - 1
            current.status = MemberImport.Status.RUNNING
            current.save(update_fields=["processed", "created", "updated", "failed", "errors", "status"])
        if on_batch:
            on_batch(current)


def _row_apply(row: Row, members: dict[tuple[str, object], Member], member_import: MemberImport, *, by: User) -> None:
    verdict = row_judge(row, members)
    try:
        if verdict.action == "create":
            fields = {k: v for k, v in row.data.items() if k not in ("member_no", "phone", "name", "marketing_consent")}
            member = services.member_register(
                phone=row.data.get("phone"),
                name=str(row.data.get("name", "")),
                channel=Member.Channel.IMPORT,
                store=row.store,
                by=by,
                registered_at=row.registered_at,
                marketing_consent=bool(row.data.get("marketing_consent", False)),
                require_phone=False,
                **fields,
            )
            member_import.created += 1
        elif verdict.action == "update":
            assert verdict.member is not None
            changes: dict[str, Any] = verdict.changes
            member = services.member_update(
                member=verdict.member, by=by, consent_source=ConsentRecord.Source.IMPORT, **changes
            )
            member_import.updated += 1
        elif verdict.action == "unchanged":
            return
        else:
            raise services.MemberError(str(verdict.errors[0][1]), verdict.errors[0][0])
    except services.MemberError as exc:
        member_import.failed += 1
        errors = verdict.errors or [(exc.field or "", str(exc))]
        if len(member_import.errors) < ERRORS_KEPT:
            member_import.errors = [*member_import.errors, *_error_entries(row, errors)]
        return
    # later rows of this batch match the member just made or changed
    for key in KEY_COLUMNS:
        value = _current(member, key)
        if value:
            members[(key, value)] = member


def error_report_bytes(*, member_import: MemberImport) -> bytes:
    """CSV (UTF-8 with BOM) of the failed rows: row number, column, message, then the row as uploaded."""
    return spreadsheets.error_report_bytes(
        file=member_import.file, file_name=member_import.file_name, errors=member_import.errors
    )


def template_headers() -> list[str]:
    return list(COLUMNS)


def import_fail(*, member_import: MemberImport, error: Exception) -> None:
    """Record an unexpected failure, so the page stops waiting and says so."""
    message = str(error) if isinstance(error, SpreadsheetError) else _("The import stopped with an internal error.")
    MemberImport.objects.filter(pk=member_import.pk).update(
        status=MemberImport.Status.FAILED, message=message, finished_at=timezone.now()
    )
