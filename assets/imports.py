"""Purchase history import, for merchants moving from another system: read a spreadsheet of past purchases,
check every row (the dry run), then record the rows as imported purchases in batches.

A row names its member by member_no, else phone, else external_id (the first that matches wins). A member the
register lacks is an error, unless the import may create members (channel "import", the external id kept).
A row whose store already has its external_ref was imported before and is skipped, so importing a file again
changes nothing. Imported purchases count for growth value (and so for tiers, RFM and reports) unless that is
switched off, and earn points only when that is switched on. Their tender is unknown: "other".
"""

import datetime
import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, cast

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from assets import counter, services
from assets.models import Purchase, PurchaseImport, PurchaseLine
from members import services as members_services
from members import spreadsheets
from members.forms import yuan_text
from members.models import Member, Store
from members.spreadsheets import SpreadsheetError, read_table
from tiers import services as tiers_services

COLUMNS = (
    "member_no",
    "phone",
    "external_id",
    "occurred_at",
    "amount",
    "store",
    "external_ref",
    "category",
    "quantity",
)
KEY_COLUMNS = ("member_no", "phone", "external_id")  # the order rows are matched to members in
REQUIRED_COLUMNS = ("occurred_at", "amount", "external_ref")
SYNC_CHECK_MAX_ROWS = 2_000  # larger files are checked by a Celery job, not while the browser waits
BATCH = 500
PREVIEW_ROWS = 20
ERRORS_KEPT = 5_000
TEXT_MAX = 64  # external_ref, external_id, category: the lengths of their columns
QUANTITY_MAX = 1_000_000
# ASCII digits only: no exponents, signs, thousands separators or full-width digits
AMOUNT_RE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
QUANTITY_RE = re.compile(r"[0-9]{1,7}")
NOON = datetime.time(12)


class ImportFileError(SpreadsheetError):
    """The file as a whole cannot be imported (unreadable, no header, missing columns)."""


@dataclass
class Row:
    """One data row of the file, parsed; `errors` holds (column, message) for what did not parse."""

    number: int  # the row number in the file (the header is row 1)
    values: list[str]
    keys: dict[str, str] = field(default_factory=dict)  # member_no, phone, external_id as given, normalised
    store: Store | None = None
    external_ref: str = ""
    occurred_at: datetime.datetime | None = None
    amount_fen: int = 0
    category: str = ""
    quantity: int | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Verdict:
    action: str  # "import", "skip" (imported before) or "error"
    member: Member | None = None
    create: bool = False  # the member is to be created
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Table:
    headers: list[str]
    rows: list[Row]
    # the earliest purchase of each member key in the file: a member the import creates registered then
    first_seen: dict[tuple[str, str], datetime.datetime] = field(default_factory=dict)


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
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if missing or not any(key in headers for key in KEY_COLUMNS):
        raise ImportFileError(
            _(
                "The file needs the columns occurred_at, amount and external_ref, and at least one of the columns "
                "member_no, phone, external_id."
            )
        )
    duplicated = sorted({h for h in headers if h and headers.count(h) > 1})
    if duplicated:
        raise ImportFileError(_("Columns appear twice: %(columns)s.") % {"columns": ", ".join(duplicated)})
    if not rows:
        raise ImportFileError(_("The file has column names but no rows."))
    return headers, rows


def amount_fen_parse(text: str) -> int | None:
    """'29.33' → 2933, in integers (no float ever sees the amount); None unless 1 to 9 digits and at most two
    decimals."""
    if not AMOUNT_RE.fullmatch(text):
        return None
    whole, _dot, cents = text.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0"))


EARLIEST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


def moment_parse(text: str) -> datetime.datetime | None:
    """An ISO 8601 date or date-time. A date-time without an offset is the merchant's local time; a bare date
    means noon there (the middle of the business day, whatever the hours)."""
    if not text.isascii():
        return None
    zone = timezone.get_default_timezone()
    try:
        day = datetime.datetime.combine(datetime.date.fromisoformat(text), NOON, tzinfo=zone)
        return day if day >= EARLIEST else None
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    try:
        # a date no shop's till can have written (and one that would overflow in UTC) is not a date
        return moment if moment >= EARLIEST else None
    except OverflowError:
        return None


def row_parse(
    number: int,
    values: list[str],
    headers: list[str],
    *,
    stores: dict[str, Store],
    default_store: Store | None,
    now: datetime.datetime,
) -> Row:
    """Check one row on its own (no database): identifiers, the store, the date, the amount, the line.
    Errors are collected, not raised."""
    row = Row(number=number, values=values)
    cells = {h: v.strip() for h, v in zip(headers, values, strict=True) if h}

    def error(column: str, message: str) -> None:
        row.errors.append((column, message))

    if member_no := cells.get("member_no"):
        if members_services.is_valid_member_no(member_no):
            row.keys["member_no"] = member_no
        else:
            error("member_no", _("This is not a valid member number (check digit)."))
    if phone := cells.get("phone"):
        try:
            row.keys["phone"] = str(members_services.normalise_phone(phone))
        except members_services.MemberError as exc:
            error("phone", str(exc))
    if external_id := cells.get("external_id"):
        if len(external_id) > TEXT_MAX:
            error("external_id", _("An external id has at most %(n)s characters.") % {"n": TEXT_MAX})
        else:
            row.keys["external_id"] = external_id
    if not any(cells.get(key) for key in KEY_COLUMNS):
        error(next(k for k in KEY_COLUMNS if k in headers), _("Give the member's member_no, phone or external_id."))

    occurred_text = cells.get("occurred_at", "")
    occurred_at = moment_parse(occurred_text) if occurred_text else None
    if not occurred_text:
        error("occurred_at", _("Give the date of the purchase."))
    elif occurred_at is None:
        error("occurred_at", _("Write the date as YYYY-MM-DD or YYYY-MM-DD HH:MM (ISO 8601), from the year 2000 on."))
    elif occurred_at > now:
        error("occurred_at", _("The purchase date is in the future."))
    else:
        row.occurred_at = occurred_at

    amount_text = cells.get("amount", "")
    amount_fen = amount_fen_parse(amount_text)
    if amount_fen is None:
        error("amount", _("Write the amount in yuan with at most two decimals, e.g. 29.33."))
    elif amount_fen == 0:
        error("amount", _("The amount must be more than zero."))
    else:
        row.amount_fen = amount_fen

    if store_code := cells.get("store"):
        row.store = stores.get(store_code.upper())
        if row.store is None:
            error("store", _("No store has the code %(code)s.") % {"code": store_code})
    elif default_store is not None:
        row.store = default_store
    else:
        error("store", _("Give a store code, or choose a store for rows without one."))

    external_ref = cells.get("external_ref", "")
    if not external_ref:
        error("external_ref", _("Give the purchase's reference in the previous system."))
    elif len(external_ref) > TEXT_MAX:
        error("external_ref", _("An external reference has at most %(n)s characters.") % {"n": TEXT_MAX})
    else:
        row.external_ref = external_ref

    if category := " ".join(cells.get("category", "").split()):
        if len(category) > TEXT_MAX:
            error("category", _("A category has at most %(n)s characters.") % {"n": TEXT_MAX})
        else:
            row.category = category
    if quantity_text := cells.get("quantity"):
        if QUANTITY_RE.fullmatch(quantity_text) and 0 < int(quantity_text) <= QUANTITY_MAX:
            row.quantity = int(quantity_text)
        else:
            error("quantity", _("Write the quantity as a whole number from 1 to %(max)s.") % {"max": QUANTITY_MAX})
    return row


def table_parse(
    headers: list[str], rows: list[list[str]], *, default_store: Store | None, now: datetime.datetime | None = None
) -> Table:
    """Parse every row, flagging a row whose store and external_ref an earlier row of the file already used."""
    now = now or timezone.now()
    stores = {store.code.upper(): store for store in Store.objects.all()}
    table = Table(headers=headers, rows=[])
    first_row_of: dict[tuple[int, str], int] = {}
    for index, values in enumerate(rows):
        number = index + 2
        if not any(values):
            continue
        row = row_parse(number, values, headers, stores=stores, default_store=default_store, now=now)
        if row.store is not None and row.external_ref:
            earlier = first_row_of.setdefault((row.store.pk, row.external_ref), number)
            if earlier != number:
                row.errors.append(
                    ("external_ref", _("Row %(row)s has the same store and external_ref.") % {"row": earlier})
                )
        if row.occurred_at is not None:
            for key, value in row.keys.items():
                seen = table.first_seen.get((key, value))
                if seen is None or row.occurred_at < seen:
                    table.first_seen[(key, value)] = row.occurred_at
        table.rows.append(row)
    return table


# ------------------------------------------------------------------ matching rows to members


def _members_for(rows: Iterable[Row]) -> dict[tuple[str, str], Member]:
    """Every member any of the rows' keys point to, in one query."""
    keys: dict[str, set[str]] = {key: set() for key in KEY_COLUMNS}
    for row in rows:
        for key, value in row.keys.items():
            keys[key].add(value)
    condition = Q(pk__in=[])
    for key, values in keys.items():
        if values:
            condition |= Q(**{f"{key}__in": values})
    found: dict[tuple[str, str], Member] = {}
    for member in Member.objects.filter(condition):
        _remember(found, member)
    return found


def _remember(members: dict[tuple[str, str], Member], member: Member) -> None:
    if member.member_no:
        members[("member_no", member.member_no)] = member
    if member.phone:
        members[("phone", str(member.phone))] = member
    if member.external_id:
        members[("external_id", member.external_id)] = member


def _imported_before(rows: Iterable[Row]) -> set[tuple[int, str]]:
    """The (store, external_ref) pairs of these rows that already have a purchase."""
    wanted = {(row.store.pk, row.external_ref) for row in rows if row.store is not None and row.external_ref}
    if not wanted:
        return set()
    found = Purchase.objects.filter(
        store_id__in={store for store, _ref in wanted}, external_ref__in={ref for _store, ref in wanted}
    ).values_list("store_id", "external_ref")
    return set(found) & wanted


def row_judge(
    row: Row,
    members: dict[tuple[str, str], Member],
    imported: set[tuple[int, str]],
    *,
    create_members: bool,
    writes_ledger: bool,
) -> Verdict:
    """What importing this row would do, given the members its keys match and the purchases already there."""
    if row.errors:
        return Verdict("error", errors=row.errors)
    assert row.store is not None
    if (row.store.pk, row.external_ref) in imported:
        return Verdict("skip")
    member = next((members[(k, v)] for k, v in row.keys.items() if (k, v) in members), None)
    if member is None:
        if "member_no" in row.keys:
            return Verdict("error", errors=[("member_no", _("No member has this member number."))])
        if not create_members:
            column = next(iter(row.keys))
            message = _("No member has this %(column)s. Import the members first, or let this import create them.")
            return Verdict("error", errors=[(column, message % {"column": column})])
        return Verdict("import", create=True)
    if member.status == Member.Status.CANCELLED:
        return Verdict(
            "error", member=member, errors=[("member_no", _("Member %(no)s is cancelled.") % {"no": member.member_no})]
        )
    if member.status == Member.Status.FROZEN and writes_ledger:
        message = _("Member %(no)s is frozen: growth value and points cannot be added.") % {"no": member.member_no}
        return Verdict("error", member=member, errors=[("member_no", message)])
    return Verdict("import", member=member)


# ------------------------------------------------------------------ the dry run


def _error_entries(row: Row, errors: list[tuple[str, str]]) -> list[dict[str, object]]:
    return [{"row": row.number, "column": c, "message": str(m), "values": row.values} for c, m in errors]


def _table_of(purchase_import: PurchaseImport) -> Table:
    purchase_import.file.open("rb")
    try:
        headers, rows = table_read(purchase_import.file, name=purchase_import.file_name)
    finally:
        purchase_import.file.close()
    return table_parse(headers, rows, default_store=purchase_import.default_store, now=purchase_import.created_at)


def import_create(
    *,
    uploaded: IO[bytes],
    file_name: str,
    by: User,
    default_store: Store | None,
    create_members: bool = False,
    earn_growth: bool = True,
    earn_points: bool = False,
) -> PurchaseImport:
    """Store an uploaded file for import after checking it can be read; the dry run comes next.
    Raises SpreadsheetError (the whole file is unusable); nothing is written then."""
    _headers, rows = table_read(uploaded, name=file_name)
    uploaded.seek(0)
    purchase_import = PurchaseImport(
        file_name=file_name[:200],
        default_store=default_store,
        create_members=create_members,
        earn_growth=earn_growth,
        earn_points=earn_points,
        created_by=by,
        total_rows=len(rows),
    )
    purchase_import.file.save(file_name[-100:], ContentFile(uploaded.read()), save=False)
    purchase_import.save()
    return purchase_import


def _writes_ledger(purchase_import: PurchaseImport) -> bool:
    return purchase_import.earn_growth or purchase_import.earn_points


def import_check(*, purchase_import: PurchaseImport) -> PurchaseImport:
    """The dry run: judge every row and record the counts, a preview and the errors. Writes no purchase,
    member or ledger entry."""
    table = _table_of(purchase_import)
    counts = {"import": 0, "skip": 0, "error": 0}
    amount_fen = members_to_create = 0
    preview: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    # members the import would create, by their keys, so that later rows naming them match them
    pending: dict[tuple[str, str], Member] = {}
    for start in range(0, len(table.rows), BATCH):
        batch = table.rows[start : start + BATCH]
        members = {**pending, **_members_for(batch)}
        imported = _imported_before(batch)
        for row in batch:
            verdict = row_judge(
                row,
                members,
                imported,
                create_members=purchase_import.create_members,
                writes_ledger=_writes_ledger(purchase_import),
            )
            counts[verdict.action] += 1
            if verdict.action == "import":
                amount_fen += row.amount_fen
            if verdict.create:
                members_to_create += 1
                new = Member(member_no="", phone=row.keys.get("phone"), external_id=row.keys.get("external_id"))
                _remember(members, new)
                _remember(pending, new)
            if len(preview) < PREVIEW_ROWS:
                preview.append(_preview_entry(row, verdict))
            if verdict.errors and len(errors) < ERRORS_KEPT:
                errors.extend(_error_entries(row, verdict.errors))
    purchase_import.to_import, purchase_import.to_import_fen = counts["import"], amount_fen
    purchase_import.already_imported, purchase_import.invalid = counts["skip"], counts["error"]
    purchase_import.members_to_create = members_to_create
    purchase_import.total_rows = len(table.rows)
    purchase_import.preview, purchase_import.errors = preview, errors
    purchase_import.status = PurchaseImport.Status.CHECKED
    purchase_import.save()
    return purchase_import


def _preview_entry(row: Row, verdict: Verdict) -> dict[str, object]:
    return {
        "row": row.number,
        "action": verdict.action,
        "member_no": verdict.member.member_no if verdict.member else "",
        "new_member": verdict.create,
        "store": row.store.code if row.store else "",
        "external_ref": row.external_ref,
        "occurred_at": timezone.localtime(row.occurred_at).strftime("%Y-%m-%d %H:%M") if row.occurred_at else "",
        "amount": yuan_text(row.amount_fen) if row.amount_fen else "",
    }


# ------------------------------------------------------------------ the import


def import_confirm(*, purchase_import: PurchaseImport) -> bool:
    """Mark a checked import as queued; False if it was already confirmed (a double click)."""
    return bool(
        PurchaseImport.objects.filter(pk=purchase_import.pk, status=PurchaseImport.Status.CHECKED).update(
            status=PurchaseImport.Status.QUEUED, confirmed_at=timezone.now()
        )
    )


def import_resume(*, purchase_import: PurchaseImport) -> bool:
    """Queue again an import that failed while importing; it goes on from its last committed batch. False if it
    had not failed, or failed before it was confirmed."""
    return bool(
        PurchaseImport.objects.filter(
            pk=purchase_import.pk, status=PurchaseImport.Status.FAILED, confirmed_at__isnull=False
        ).update(status=PurchaseImport.Status.QUEUED, message="", finished_at=None)
    )


def import_apply(
    *, purchase_import: PurchaseImport, on_batch: Callable[[PurchaseImport], None] | None = None
) -> PurchaseImport:
    """Record the purchases of a confirmed import, BATCH rows per transaction. Each batch moves the import's
    cursor in its own transaction, so a job run again (a retry, a redelivered message, a resumed import) goes
    on from the last committed batch. Rows are judged afresh: the register may have changed since the dry run.
    Raises what a batch raised (that batch is rolled back; the ones before it stay)."""
    table = _table_of(purchase_import)
    numbers = [row.number for row in table.rows]
    by = purchase_import.created_by
    # the import's own errors replace the dry run's (only when starting, not when a run goes on)
    PurchaseImport.objects.filter(pk=purchase_import.pk, status=PurchaseImport.Status.QUEUED, processed=0).update(
        status=PurchaseImport.Status.RUNNING, errors=[]
    )

    def one_batch() -> tuple[PurchaseImport, bool]:
        # Two runs of one import queue on this lock; the second then sees the first one's cursor.
        current = PurchaseImport.objects.select_for_update().get(pk=purchase_import.pk)
        if current.status not in (PurchaseImport.Status.QUEUED, PurchaseImport.Status.RUNNING):
            return current, False
        start = bisect_left(numbers, current.processed + 2)
        batch = table.rows[start : start + BATCH]
        if not batch:
            current.status, current.finished_at = PurchaseImport.Status.DONE, timezone.now()
            current.save(update_fields=["status", "finished_at"])
            return current, False
        _batch_apply(batch, table, current, by=by)
        current.processed = batch[-1].number - 1
        current.status = PurchaseImport.Status.RUNNING
        current.save(
            update_fields=[
                "processed",
                "imported",
                "imported_fen",
                "skipped",
                "members_created",
                "failed",
                "errors",
                "status",
            ]
        )
        return current, True

    while True:
        # one transaction per batch, retried whole on a deadlock
        current, more = cast(tuple[PurchaseImport, bool], services.run_in_transaction(one_batch))
        if not more:
            return current
        if on_batch:
            on_batch(current)


def _fail(purchase_import: PurchaseImport, row: Row, errors: list[tuple[str, str]]) -> None:
    purchase_import.failed += 1
    if len(purchase_import.errors) < ERRORS_KEPT:
        purchase_import.errors.extend(_error_entries(row, errors))


def _registered_at(row: Row, table: Table) -> datetime.datetime | None:
    seen = [table.first_seen[(k, v)] for k, v in row.keys.items() if (k, v) in table.first_seen]
    return min(seen) if seen else row.occurred_at


def _batch_apply(rows: list[Row], table: Table, purchase_import: PurchaseImport, *, by: User) -> None:
    members = _members_for(rows)
    imported = _imported_before(rows)
    planned: list[tuple[Row, Member]] = []
    for row in rows:
        verdict = row_judge(
            row,
            members,
            imported,
            create_members=purchase_import.create_members,
            writes_ledger=_writes_ledger(purchase_import),
        )
        if verdict.action == "error":
            _fail(purchase_import, row, verdict.errors)
            continue
        if verdict.action == "skip":
            purchase_import.skipped += 1
            continue
        member = verdict.member
        if verdict.create:
            assert row.store is not None
            try:
                member = members_services.member_register(
                    phone=row.keys.get("phone"),
                    channel=Member.Channel.IMPORT,
                    store=row.store,
                    by=by,
                    registered_at=_registered_at(row, table),
                    require_phone=False,
                    external_id=row.keys.get("external_id"),
                )
            except members_services.MemberError as exc:
                _fail(purchase_import, row, [(exc.field or "", str(exc))])
                continue
            purchase_import.members_created += 1
            _remember(members, member)  # later rows of this batch match the member just made
        assert member is not None
        planned.append((row, member))
    if planned:
        _purchases_record(planned, purchase_import)


def _order_numbers(count: int) -> list[str]:
    return counter.order_numbers_new(count)


INSERT_SQL = """
INSERT INTO assets_purchase (order_no, store_id, member_id, actor, source, external_ref, occurred_at, business_date,
    gross_fen, discount_fen, coupon_fen, points_used, points_offset_fen, payable_fen, balance_fen, cash_fen,
    card_fen, wechat_fen, alipay_fen, other_fen, points_earned, growth_earned, multiplier_percent, refunded_fen,
    details)
SELECT v.order_no, v.store_id, v.member_id, %(actor)s, %(source)s, v.external_ref, v.occurred_at, v.business_date,
    v.amount, 0, 0, 0, 0, v.amount, 0, 0, 0, 0, 0, v.amount, v.points, v.growth, 100, 0, v.details
FROM unnest(%(order_no)s::varchar[], %(store)s::bigint[], %(member)s::bigint[], %(ref)s::varchar[],
    %(at)s::timestamptz[], %(day)s::date[], %(amount)s::bigint[], %(points)s::bigint[], %(growth)s::bigint[],
    %(details)s::jsonb[])
    AS v(order_no, store_id, member_id, external_ref, occurred_at, business_date, amount, points, growth, details)
ON CONFLICT (store_id, external_ref) WHERE NOT (external_ref = '') DO NOTHING
RETURNING id, store_id, external_ref, order_no
"""
DETAILS_SQL = """
UPDATE assets_purchase SET details = jsonb_set(assets_purchase.details, '{tx}', v.tx)
FROM unnest(%s::bigint[], %s::jsonb[]) AS v(id, tx)
WHERE assets_purchase.id = v.id
"""


def _purchases_insert(params: dict[str, Any]) -> list[tuple[int, int, str, str]]:
    count = len(params["ref"])
    for attempt in range(1, 4):
        params["order_no"] = _order_numbers(count)
        try:
            # a savepoint: a random order number some other purchase took fails only this statement; new
            # numbers are drawn and it runs again
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(INSERT_SQL, params)
                return cast(list[tuple[int, int, str, str]], cursor.fetchall())
        except IntegrityError:
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


def _purchases_record(planned: list[tuple[Row, Member]], purchase_import: PurchaseImport) -> None:
    """Insert the batch's purchases in one statement, skipping any whose store already has its external_ref
    (a concurrent import of the same file), then their lines, growth value and points."""
    rules = tiers_services.tier_rules() if purchase_import.earn_growth else None
    per_yuan = services.loyalty_settings().points_per_yuan if purchase_import.earn_points else 0
    actor = f"import:{purchase_import.pk}"
    growth = [tiers_services.growth_for_paid(row.amount_fen, rules=rules) if rules else 0 for row, _m in planned]
    points = [services.points_for_paid(row.amount_fen, per_yuan=per_yuan) if per_yuan else 0 for row, _m in planned]
    columns: dict[str, list[Any]] = {name: [] for name in ("store", "member", "ref", "at", "day", "amount", "details")}
    for row, member in planned:
        assert row.store is not None and row.occurred_at is not None  # rows with errors are never planned
        columns["store"].append(row.store.pk)
        columns["member"].append(member.pk)
        columns["ref"].append(row.external_ref)
        columns["at"].append(row.occurred_at)
        columns["day"].append(timezone.localdate(row.occurred_at))
        columns["amount"].append(row.amount_fen)
        columns["details"].append(json.dumps({"import": purchase_import.pk, "row": row.number, "tx": {}}))
    returned = _purchases_insert(
        {"actor": actor, "source": Purchase.Source.IMPORT, "points": points, "growth": growth, **columns}
    )
    made = {(store_id, ref): (pk, order_no) for pk, store_id, ref, order_no in returned}
    lines: list[PurchaseLine] = []
    ledger: list[tuple[int, int, Row, Member, int, str, int, int]] = []
    for (row, member), grows, earns in zip(planned, growth, points, strict=True):
        assert row.store is not None
        if (row.store.pk, row.external_ref) not in made:
            purchase_import.skipped += 1  # another import of the same rows got there first
            continue
        pk, order_no = made[(row.store.pk, row.external_ref)]
        purchase_import.imported += 1
        purchase_import.imported_fen += row.amount_fen
        lines.extend(_lines(pk, row))
        if grows or earns:
            ledger.append((member.pk, row.number, row, member, pk, order_no, grows, earns))
    PurchaseLine.objects.bulk_create(lines)
    # Member by member in primary-key order: two imports running at once lock members' accounts in the same
    # order, so they queue instead of deadlocking.
    ledger.sort(key=lambda item: (item[0], item[1]))
    details: dict[int, dict[str, int]] = {}
    for _member_pk, _number, row, member, pk, order_no, grows, earns in ledger:
        key = f"purchase-import:{row.store.pk if row.store else ''}:{row.external_ref}"
        common: dict[str, Any] = {"member": member, "store": row.store, "actor": actor, "external_ref": order_no}
        txs: dict[str, int] = {}
        if grows:
            txs["growth"] = services.growth_add(
                amount=grows, idempotency_key=f"{key}:growth", occurred_at=row.occurred_at, **common
            ).pk
        if earns:
            txs["points_earn"] = services.points_earn(points=earns, idempotency_key=f"{key}:earn", **common).pk
        details[pk] = txs
    if details:
        with connection.cursor() as cursor:
            cursor.execute(DETAILS_SQL, [list(details), [json.dumps(txs) for txs in details.values()]])


def _lines(purchase_id: int, row: Row) -> list[PurchaseLine]:
    """The row's item line, when it gives a category or a quantity. A line's amount is its unit price times its
    quantity, so an amount the quantity does not divide goes on two lines: 10.00 for 3 is 2 x 3.33 + 1 x 3.34."""
    if not row.category and row.quantity is None:
        return []
    quantity = row.quantity or 1
    unit, rest = divmod(row.amount_fen, quantity)
    parts = [(quantity - rest, unit), (rest, unit + 1)] if rest else [(quantity, unit)]
    return [
        PurchaseLine(
            purchase_id=purchase_id, category=row.category, quantity=q, unit_price_fen=price, amount_fen=q * price
        )
        for q, price in parts
        if q
    ]


# ------------------------------------------------------------------ reports


def error_report_bytes(*, purchase_import: PurchaseImport) -> bytes:
    """CSV (UTF-8 with BOM) of the failed rows: row number, column, message, then the row as uploaded."""
    return spreadsheets.error_report_bytes(
        file=purchase_import.file, file_name=purchase_import.file_name, errors=purchase_import.errors
    )


def template_headers() -> list[str]:
    return list(COLUMNS)


def import_fail(*, purchase_import: PurchaseImport, error: Exception) -> None:
    """Record an unexpected failure, so the page stops waiting and says so."""
    if isinstance(error, SpreadsheetError | services.LedgerError):
        message = str(error)
    else:
        message = _("The import stopped with an internal error.")
    PurchaseImport.objects.filter(pk=purchase_import.pk).update(
        status=PurchaseImport.Status.FAILED, message=message, finished_at=timezone.now()
    )
