"""Reading partner tables: CSV (UTF-8, plain or gzipped) or XLSX into text columns.

Shared by the readers of partner extracts that arrive as one table with a header row
(police_recorded, fire, ...). A reader describes its table with a `Layout` (its columns, the
sheet to prefer, what one row is, and any checks on groups of columns); :func:`read_table`
returns the recognised columns as trimmed text, rows numbered spreadsheet-style (header = 1),
or raises FileError naming the problem: empty, not UTF-8, truncated gzip, ragged rows, not
comma-separated, notes above the table, identifying columns or missing columns.
"""

from __future__ import annotations

import calendar
import csv
import io
import itertools
import posixpath
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from xml.etree import ElementTree

import fastexcel
import numpy as np
import polars as pl

from svduty.sources.base import (
    TOKEN_FIELDS,
    Check,
    FileError,
    decode,
    empty_quarantine,
    open_text,
)
from svduty.sources.columns import (
    ColumnSpec,
    has_required,
    identifier_columns,
    resolve_columns,
    unique_names,
)

HEADER_SEARCH_ROWS = 20
HEAD_BYTES = 262_144
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
ZIP_MAGIC, OLE_MAGIC = b"PK\x03\x04", b"\xd0\xcf\x11\xe0"
SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


@dataclass(frozen=True)
class Layout:
    """What a reader expects of its table.

    `spec`: the columns; `sheet`: the worksheet to read when a workbook has one of that name
    (else the first); `unit`: what one row is, for messages ('crime x person'); `allowed`:
    what to send instead when identifying columns are found; `groups`: extra header checks
    (columns required as alternatives), called with (path, header, resolved columns).
    """

    spec: dict[str, ColumnSpec]
    sheet: str
    unit: str
    allowed: str
    groups: Callable[[Path, list[str], dict[str, str]], None] | None = None


@dataclass
class Table:
    """A file's rows as text: recognised columns (own names) plus `row_number`."""

    frame: pl.DataFrame
    columns: dict[str, str]  # canonical -> the file's own column name
    excel: bool
    ignored: list[str]




def read_table(path: Path, layout: Layout) -> Table:
    """Read a CSV or Excel extract into text columns; FileError if it is not a usable table."""
    if path.suffix.lower() in EXCEL_SUFFIXES:
        return read_excel_table(path, layout)
    raw = open_text(path)
    if raw[:4] in (ZIP_MAGIC, OLE_MAGIC):
        return read_excel_table(path, layout)
    return read_csv_table(path, raw, layout)


def read_csv_table(path: Path, raw: bytes, layout: Layout) -> Table:
    # The whole file is checked for UTF-8 (naming a bad line) unless it is plain ASCII.
    head = (raw[:HEAD_BYTES].decode() if raw.isascii() else decode(path, raw)[:HEAD_BYTES])
    rows = list(itertools.islice(csv.reader(io.StringIO(head)), HEADER_SEARCH_ROWS))
    check_separator(path, rows[0])
    header = unique_names(rows[0])
    columns = check_header(path, header, [unique_names(r) for r in rows],
                           row_of=line_numbers(head), layout=layout)
    check_field_counts(path, raw, len(header))
    try:
        frame = pl.read_csv(raw, has_header=True, new_columns=header, infer_schema=False,
                            empty_string_is_null=False, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FileError(path, f"the CSV is malformed ({str(exc).splitlines()[0]})",
                        "a complete CSV export; export the file again") from exc
    return Table(finish(path, frame, columns, layout), columns, False, ignored(header, columns))


def check_separator(path: Path, header: list[str]) -> None:
    """A header of one cell holding semicolons or tabs: the file is not comma-separated."""
    if len(header) != 1:
        return
    for mark, name in SEPARATORS.items():
        if header[0].count(mark) >= 2:
            raise FileError(path, f"the columns are separated by {name}, not commas",
                            "a comma-separated CSV (in Excel: Save as > CSV UTF-8)")


def line_numbers(head: str) -> list[int]:
    """The file line on which each of the first CSV records starts."""
    reader = csv.reader(io.StringIO(head))
    starts, line = [], 1
    for _ in itertools.islice(reader, HEADER_SEARCH_ROWS):
        starts.append(line)
        line = reader.line_num + 1
    return starts


def check_field_counts(path: Path, raw: bytes, width: int) -> None:
    """FileError naming the first line whose number of fields differs from the header's.

    Works on the positions of commas, quotes and line ends (numpy): commas and line ends
    inside double quotes do not count, so quoted values with commas or line breaks are
    handled; blank lines are allowed.
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    quotes = np.flatnonzero(data == ord('"'))
    commas = np.flatnonzero(data == ord(","))
    if quotes.size % 2:
        raise FileError(
            path, f"a quoted value opened on line {line_of(newlines, quotes[-1])} is never "
            "closed; the file may be truncated", "a complete CSV export; export it again")
    record_ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    starts = np.concatenate(([0], record_ends + 1))
    ends = np.append(record_ends, data.size)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    if quotes.size:
        opens, closes = quotes[0::2], quotes[1::2]
        quoted_commas = np.searchsorted(commas, closes) - np.searchsorted(commas, opens)
        fields -= np.bincount(np.searchsorted(record_ends, opens), weights=quoted_commas,
                              minlength=starts.size).astype(np.int64)
    length = ends - starts
    carriage = (length == 1) & (data[np.minimum(starts, data.size - 1)] == ord("\r"))
    bad = np.flatnonzero((length > 0) & ~carriage & (fields != width))
    if bad.size:
        record = bad[0]
        raise FileError(
            path, f"line {line_of(newlines, starts[record])} has {fields[record]} fields but "
            f"the header has {width}; the file may be truncated, or a value contains an "
            "unquoted comma",
            "every row with the same number of fields as the header; export the file again, "
            "quoting text that contains commas")


def line_of(newlines: np.ndarray, position: int) -> int:
    """The 1-based line of a byte position, given the positions of all line ends."""
    return int(np.searchsorted(newlines, position)) + 1


def read_excel_table(path: Path, layout: Layout) -> Table:
    """Read the layout's sheet (or the first sheet) with every cell as text."""
    try:
        reader = fastexcel.read_excel(path)
        sheet = choose_sheet(reader.sheet_names, layout.sheet)
        frame = pl.from_arrow(reader.load_sheet(sheet, header_row=None, dtypes="string",
                                                eager=True))
    except (fastexcel.FastExcelError, OSError, pl.exceptions.PolarsError) as exc:
        raise FileError(
            path, f"this is not a readable Excel workbook ({str(exc).splitlines()[0]})",
            "an .xlsx workbook saved by Excel, or a UTF-8 CSV file with a .csv name") from exc
    if frame.height == 0:
        raise FileError(path, f"sheet '{sheet}' is empty", "a header row and data rows")
    top = first_used_row(path, sheet)
    grid = [unique_names(list(row)) for row in frame.head(HEADER_SEARCH_ROWS).rows()]
    header = grid[0]
    columns = check_header(path, header, grid, row_of=[top + i for i in range(len(grid))],
                           layout=layout)
    frame = frame.slice(1)
    frame.columns = header
    return Table(finish(path, frame, columns, layout), columns, True, ignored(header, columns))


def choose_sheet(names: list[str], wanted: str) -> str:
    for name in names:
        if name.strip().lower() == wanted.lower():
            return name
    return names[0]


def first_used_row(path: Path, sheet: str) -> int:
    """The spreadsheet row of the first cell with a value (the reader skips blank rows above)."""
    try:
        with zipfile.ZipFile(path) as book, book.open(sheet_part(book, sheet)) as xml:
            count = 0
            for _, element in ElementTree.iterparse(xml):
                if local(element.tag) != "row":
                    continue
                count += 1
                if any(local(v.tag) in ("v", "is") for cell in element for v in cell):
                    return int(element.get("r", count))
                element.clear()
    except (zipfile.BadZipFile, KeyError, StopIteration, ElementTree.ParseError, ValueError,
            OSError):
        return 1  # .xls, or a layout this does not know: trust the reader
    return 1


def sheet_part(book: zipfile.ZipFile, sheet: str) -> str:
    """The zip member holding a named worksheet."""
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    rel_id = next(next(v for k, v in el.attrib.items() if local(k) == "id")
                  for el in workbook.iter() if local(el.tag) == "sheet" and el.get("name") == sheet)
    target = next(el.get("Target") for el in rels if el.get("Id") == rel_id)
    return target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def check_header(path: Path, header: list[str], rows: list[list[str]],
                 row_of: list[int], layout: Layout) -> dict[str, str]:
    """Resolve the header row; FileError if the table does not start in row 1 or lacks columns."""
    ids = identifier_columns(header)
    if ids:
        raise FileError(
            path, f"the file has columns that identify people directly ({', '.join(ids)}); "
            "raw identifiers must never be sent, and nothing from this file was loaded",
            layout.allowed)
    found = [i for i, row in enumerate(rows) if has_required(row, layout.spec)]
    if found and row_of[found[0]] != 1:
        raise FileError(
            path, f"the table must start in row 1: found the header on row "
            f"{row_of[found[0]]}; delete the rows above it",
            f"the column names in row 1 and one {layout.unit} per row below")
    columns = resolve_columns(path, header, layout.spec)
    if layout.groups is not None:
        layout.groups(path, header, columns)
    return columns



def finish(path: Path, frame: pl.DataFrame, columns: dict[str, str],
           layout: Layout) -> pl.DataFrame:
    """Keep the recognised columns, trimmed (blank -> null); number the rows (header = 1);
    drop rows with nothing in any recognised column."""
    keep = list(columns.values())
    frame = frame.select(pl.col(keep).cast(pl.String))
    padded = frame.select(
        (pl.col(c).str.starts_with(" ") | pl.col(c).str.ends_with(" ")
         | pl.col(c).str.starts_with("\t") | pl.col(c).str.ends_with("\t")).any()
        for c in keep).row(0)
    text = [pl.col(c).str.strip_chars() if pad else pl.col(c) for c, pad in zip(keep, padded,
                                                                                strict=True)]
    out = frame.select(
        pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("row_number"),
        *[pl.when(t.str.len_bytes() > 0).then(t).alias(c) for t, c in zip(text, keep,
                                                                            strict=True)],
    ).filter(pl.any_horizontal(pl.col(keep).is_not_null()))
    if out.height == 0:
        raise FileError(path, "the file has a header but no data rows",
                        f"one row per {layout.unit} under the header row")
    return out


def ignored(header: list[str], columns: dict[str, str]) -> list[str]:
    used = set(columns.values())
    return [h for h in header if h not in used]


def column_notes(table: Table) -> list[str]:
    renamed = [f"'{own}' as {canonical}" for canonical, own in table.columns.items()
               if own != canonical]
    notes = [f"columns read: {', '.join(renamed)}"] if renamed else []
    if table.ignored:
        notes.append(f"columns ignored (not loaded or stored): {', '.join(table.ignored)}")
    return notes


# The linkage tokens `svduty pseudonymise` adds; person-level readers add these to their spec.
TOKEN_SPEC: dict[str, ColumnSpec] = {field: ColumnSpec(False, ()) for field in TOKEN_FIELDS}
NO_RECORD = pl.lit(None, pl.String)
EARLIEST = date(1990, 1, 1)  # an event date before this is a typing error
GB_EASTING = (0.0, 700_000.0)
GB_NORTHING = (0.0, 1_300_000.0)


def raw(table: Table, canonical: str) -> pl.Expr:
    """The file's own column for a canonical name, or a null column when it has none."""
    own = table.columns.get(canonical)
    return pl.col(own) if own else pl.lit(None, pl.String)


def location_checks(table: Table, lsoa_ok: pl.Expr, place: str) -> list[Check]:
    """LSOA format and British National Grid checks shared by partner extracts.

    `lsoa_ok` tells a well-formed LSOA code; the frame needs the parsed grid reference as
    `__e` and `__n`. `place` names what happened there ("offence", "incident").
    """
    lsoa = raw(table, "lsoa_code")
    checks = [Check(
        lsoa.is_not_null() & ~lsoa_ok, "lsoa_code", "not an England or Wales LSOA code",
        "LSOA codes look like E01015023 (England) or W01000001 (Wales); give the code, not the "
        "LSOA name", lsoa)]
    if "easting" not in table.columns or "northing" not in table.columns:
        return [*checks, Check(lsoa.is_null(), "lsoa_code", "no location: the LSOA code is empty",
                               f"give the LSOA code of where the {place} happened", NO_RECORD)]
    east, north = raw(table, "easting"), raw(table, "northing")
    grid_text = pl.concat_str([east, north], separator=",", ignore_nulls=True)
    fix = ("give British National Grid easting and northing in metres (e.g. 248000, 54500), "
           "not longitude and latitude")
    e, n = pl.col("__e"), pl.col("__n")
    return [
        *checks,
        Check(east.is_not_null() & e.is_null(), "easting", "easting is not a number", fix, east),
        Check(north.is_not_null() & n.is_null(), "northing", "northing is not a number", fix,
              north),
        Check(~(e.is_between(*GB_EASTING) & n.is_between(*GB_NORTHING)), "easting",
              "grid reference is outside Great Britain", fix, grid_text),
        Check(east.is_null() != north.is_null(), "easting",
              "grid reference is incomplete (one of easting and northing is empty)", fix,
              grid_text),
        Check(lsoa.is_null() & east.is_null() & north.is_null(), "lsoa_code",
              "no location: both the LSOA code and the grid reference are empty",
              f"give the LSOA code or the easting and northing of where the {place} happened",
              NO_RECORD),
    ]


def period_of(months: pl.Series, all_dates: pl.Series) -> tuple[date, date]:
    """First day of the earliest loaded month to the last day of the latest.

    With nothing loaded, the dates of all rows are used, or the current month if none parse.
    """
    dates = months if months.len() else all_dates.drop_nulls()
    if dates.len() == 0:
        dates = pl.Series([date.today()])
    start, end = dates.min(), dates.max()
    last = calendar.monthrange(end.year, end.month)[1]
    return start.replace(day=1), end.replace(day=last)


# ------------------------------------------------------------------- offence code validation


def repeated_rows(work: pl.DataFrame, key: str, column: str, what: str, fix: str,
               value: pl.Expr | None = None) -> pl.DataFrame:
    """Rows repeating the `key` of an earlier loadable row (`value`: what to report)."""
    later = work.filter(~pl.col(key).is_first_distinct())
    if later.height == 0:
        return empty_quarantine()
    first = work.filter(pl.col(key).is_first_distinct()).select(
        key, pl.col("row_number").alias("__first"))
    return later.join(first, on=key, how="left").select(
        "row_number", pl.lit(column).alias("column"),
        (pl.col(key) if value is None else value).alias("value"),
        pl.format(f"{what} is already given on row {{}}", "__first").alias("reason"),
        pl.lit(fix).alias("fix"), "record")
