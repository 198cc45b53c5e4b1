"""Spreadsheets in and out: CSV (UTF-8 with BOM, so Excel opens Chinese text correctly) and xlsx.

Writers stream; readers turn an uploaded file into (headers, rows) of strings, or raise SpreadsheetError
with a message safe to show to staff.
"""

import csv
import datetime
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.utils.translation import gettext as _

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000


class SpreadsheetError(Exception):
    """A file we cannot read; str(exc) is safe to show to staff."""


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell_text(value: object) -> object:
    # Spreadsheet programs run cells starting with these as formulas (CSV injection); prefix a quote.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _looks_numeric(value):
        return "'" + value
    return "" if value is None else value


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _csv_chunks(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(headers)
    for row in rows:
        yield writer.writerow([_cell_text(value) for value in row])


def csv_bytes(*, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    return "".join(_csv_chunks(headers, rows)).encode("utf-8")


def xlsx_bytes(*, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(list(headers))
    for row in rows:
        sheet.append([_xlsx_value(value) for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _xlsx_value(value: object) -> object:
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # xlsx has no time zones; callers pass local times
    if value is None or isinstance(value, int | float | datetime.date | bool):
        return value
    return _cell_text(str(value))


def export_response(*, filename: str, headers: list[str], rows: Iterable[Sequence[object]], fmt: str) -> HttpResponse:
    """A download of headers + rows as CSV (UTF-8 with BOM, which Excel needs to show Chinese) or xlsx.
    filename is without extension. Raises ValueError for an unknown fmt."""
    if fmt == "csv":
        response = HttpResponse(csv_bytes(headers=headers, rows=rows), content_type=CSV_CONTENT_TYPE)
    elif fmt == "xlsx":
        response = HttpResponse(xlsx_bytes(headers=headers, rows=rows), content_type=XLSX_CONTENT_TYPE)
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    response["Content-Disposition"] = _attachment(f"{filename}.{fmt}")
    return response


def _attachment(filename: str) -> str:
    stem, _dot, extension = filename.rpartition(".")
    ascii_stem = stem.encode("ascii", "ignore").decode().strip() or "export"
    return f"attachment; filename=\"{ascii_stem}.{extension}\"; filename*=UTF-8''{quote(filename)}"


# --- reading -------------------------------------------------------------------------------------------


def upload_checked(uploaded: Any, read: Callable[..., object]) -> Any:
    """An import form's uploaded file, read once by `read` (the import's own reader, called with the file and
    name=) so that a file too large or not a readable table is a form error. Returns the file."""
    if uploaded.size > MAX_UPLOAD_BYTES:
        raise ValidationError(_("The file is larger than 20 MB."))
    try:
        read(uploaded, name=uploaded.name)
    except SpreadsheetError as exc:
        raise ValidationError(str(exc)) from None
    return uploaded


def read_table(uploaded: IO[bytes], *, name: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers (stripped, lower-cased) and rows (stripped strings, padded or cut to the header width; the
    first row is file row 2) of an uploaded .xlsx or .csv (UTF-8 with or without BOM, or GB18030).
    Raises SpreadsheetError for anything else or a file without a header row."""
    name = (name or getattr(uploaded, "name", "") or "").lower()
    uploaded.seek(0)
    data = uploaded.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise SpreadsheetError(_("The file is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // 1024 // 1024})
    if not data.strip():
        raise SpreadsheetError(_("The file is empty."))
    if data[:4] == b"PK\x03\x04":
        table = _read_xlsx(data)
    elif name.endswith((".xlsx", ".xlsm")):
        raise SpreadsheetError(_("The file is not a valid Excel workbook."))
    elif name.endswith(".xls"):
        raise SpreadsheetError(_("Old Excel files (.xls) are not supported; save the file as .xlsx or CSV."))
    else:
        table = _read_csv(data)
    return _tidy(table)


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise SpreadsheetError(_("The file is not a spreadsheet (upload .xlsx or .csv)."))
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SpreadsheetError(_("The CSV file is neither UTF-8 nor GB18030 text."))


def _read_csv(data: bytes) -> list[list[object]]:
    text = _decode(data)
    try:
        dialect: type[csv.Dialect] = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        return [list(row) for row in csv.reader(io.StringIO(text, newline=""), dialect)]
    except csv.Error as exc:
        raise SpreadsheetError(_("The CSV file is malformed: %(error)s") % {"error": exc}) from exc


def _read_xlsx(data: bytes) -> list[list[object]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise SpreadsheetError(_("The file is not a valid Excel workbook.")) from exc
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise SpreadsheetError(_("The workbook has no sheets."))
        table = []
        for row in sheet.iter_rows(values_only=True):
            table.append(list(row))
            if len(table) > MAX_ROWS + 1:
                break
        return table
    finally:
        workbook.close()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ") if value.time() != datetime.time() else value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores phone numbers and member numbers typed as numbers as floats
    return str(value).strip()


def _tidy(table: list[list[object]]) -> tuple[list[str], list[list[str]]]:
    rows = [[_text(value) for value in row] for row in table]
    if not any(any(row) for row in rows):
        raise SpreadsheetError(_("The file is empty."))
    headers = [header.strip().lower() for header in rows[0]]
    while headers and not headers[-1]:
        headers.pop()
    if not headers:
        raise SpreadsheetError(_("The first row must hold the column names."))
    # blank rows stay (as empty cells) so that row numbers in error messages match the file; trailing ones go
    body = [(row + [""] * len(headers))[: len(headers)] for row in rows[1:]]
    while body and not any(body[-1]):
        body.pop()
    if len(body) > MAX_ROWS:
        raise SpreadsheetError(_("The file has more than %(max)d rows; split it.") % {"max": MAX_ROWS})
    return headers, body


def error_report_bytes(*, file: Any, file_name: str, errors: Iterable[dict[str, Any]]) -> bytes:
    """CSV (UTF-8 with BOM) of an import's failed rows: row number, column, message, then the row as uploaded
    (the uploaded file's header row heads those columns)."""
    file.open("rb")
    try:
        headers, _rows = read_table(file, name=file_name)
    except SpreadsheetError:
        headers = []
    finally:
        file.close()
    rows = [[entry["row"], entry["column"], entry["message"], *entry.get("values", [])] for entry in errors]
    return csv_bytes(headers=[_("row"), _("column"), _("error"), *headers], rows=rows)
