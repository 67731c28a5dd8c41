"""What every partner-data source provides: read one file into events, involvements and
quarantined rows, or reject the whole file with one clear message.

A source module (police_uk, police_recorded, ...) knows its file format only. The shared
rules (checksums, loads, superseding, LSOA harmonisation, out-of-area marking, atomic writes)
live in :mod:`svduty.sources.ingest`.

Row numbers are spreadsheet-style: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Protocol

import polars as pl
from isal import igzip, isal_zlib

# Columns a reader may fill in `Parsed.events`; anything missing is added as null.
EVENT_COLUMNS: dict[str, pl.DataType] = {
    "source_record_id": pl.String, "row_number": pl.Int64, "scope": pl.String,
    "month": pl.Date, "occurred_on": pl.Date, "occurred_at": pl.Datetime("us"),
    "lsoa_code": pl.String,
    "easting": pl.Float64, "northing": pl.Float64,
    "longitude": pl.Float64, "latitude": pl.Float64, "location_desc": pl.String,
    "location_type": pl.String, "offence_code": pl.String, "police_uk_category": pl.String,
    "icd10": pl.String, "source_category": pl.String, "weapon": pl.String,
    "domestic": pl.Boolean, "alcohol": pl.Boolean, "drugs_exploitation": pl.Boolean,
    "night_time_economy": pl.Boolean, "hate": pl.Boolean, "outcome": pl.String,
    "context": pl.String,
}
INVOLVEMENT_COLUMNS: dict[str, pl.DataType] = {
    "source_record_id": pl.String, "row_number": pl.Int64, "person_key": pl.String,
    "role": pl.String,
    "age": pl.Int16, "age_band": pl.String, "sex": pl.String, "ethnicity": pl.String,
}
# Counts a partner sends already aggregated (hospital admissions, school absence): one row per
# area x period x breakdown. `value` is null where the sender suppressed a small count.
AGGREGATE_COLUMNS: dict[str, pl.DataType] = {
    "row_number": pl.Int64, "measure": pl.String, "period_start": pl.Date,
    "period_end": pl.Date, "period_type": pl.String, "area_type": pl.String,
    "area_code": pl.String, "area_name": pl.String, "category": pl.String, "icd10": pl.String,
    "age_band": pl.String, "sex": pl.String, "value": pl.Float64, "suppressed": pl.Boolean,
    "denominator": pl.Float64, "context": pl.String,
}
AREA_TYPES = ("lsoa", "msoa", "ward", "lad", "csp", "pfa", "school", "provider")
PERIOD_TYPES = ("month", "quarter", "financial year", "academic year", "calendar year",
                "school term", "other")
# Hashed linkage derivatives written by `svduty pseudonymise` (see docs/pseudonymisation.md).
# Person-level readers keep them (long form: one row per person key, field and token) so
# people can later be linked across partners whose strongest identifiers differ.
TOKEN_FIELDS = ("forename_token", "surname_token", "name_token", "dob_token", "dob_year",
                "dob_swapped", "forename_soundex", "surname_soundex", "surname_nysiis",
                "forename_initial", "postcode_sector", "postcode_token", "nhs_number_token",
                "upn_token", "pnc_id_token", "person_id_token")
TOKEN_COLUMNS: dict[str, pl.DataType] = {
    "row_number": pl.Int64, "person_key": pl.String, "field": pl.String, "token": pl.String,
}
QUARANTINE_COLUMNS: dict[str, pl.DataType] = {
    "row_number": pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String,
    "fix": pl.String, "record": pl.String,
}
LSOA_FORMAT = r"^[EW]01\d{6}$"  # an England or Wales LSOA code, either vintage
WEAPONS = ("knife or sharp", "firearm", "blunt", "corrosive", "other", "none", "unknown")


class FileError(Exception):
    """The file is not what it claims to be. Nothing from it is loaded."""

    def __init__(self, path: Path | str, problem: str, expected: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.expected = expected
        super().__init__(f"{self.path.name}: {problem}. Expected: {expected}")


@dataclass
class Parsed:
    """One file read by a source: rows to load and rows quarantined with reasons.

    Every data row of the file is either loaded (it is the `row_number` of an event, an
    involvement or an aggregate) or quarantined (its `row_number` is in `quarantine`, one
    line per reason); the ingest framework checks this reconciliation for every file.
    """

    events: pl.DataFrame
    quarantine: pl.DataFrame
    rows_read: int
    period: tuple[date, date]
    scope: str | None = None
    involvements: pl.DataFrame | None = None
    partner: str | None = None
    aggregates: pl.DataFrame | None = None  # AGGREGATE_COLUMNS, for aggregate sources
    tokens: pl.DataFrame | None = None  # TOKEN_COLUMNS, for person-level sources
    notes: list[str] = field(default_factory=list)


class Source(Protocol):
    """A partner-data source: a name, a description and a reader."""

    name: ClassVar[str]
    description: ClassVar[str]
    # Health or social-care person-level data needs a recorded lawful gateway (s.16(4)).
    person_level_health: ClassVar[bool]

    def read(self, path: Path) -> Parsed: ...

    # Optional: readers of Home Office-coded data may define
    # `check_offence_codes(parsed, known: set[str]) -> Parsed`, which ingest calls with the
    # warehouse's offence code list.
    # Optional: readers of free-text locations may define
    # `locate(parsed, gazetteer) -> Parsed`, which ingest calls right after `read` with the
    # run's local gazetteer (svduty.geography.gazetteer) to replace the text with LSOAs.


def conform(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """Give a frame exactly `columns` (missing ones as typed nulls), in that order."""
    return frame.select(conforming(tuple(frame.columns), tuple(columns.items())))


@lru_cache(maxsize=256)
def conforming(present: tuple[str, ...], columns: tuple[tuple[str, pl.DataType], ...]
               ) -> tuple[pl.Expr, ...]:
    """The expressions `conform` selects (made once per shape: a file's worth of work)."""
    return tuple((pl.col(name) if name in present else pl.lit(None)).cast(dtype).alias(name)
                 for name, dtype in columns)


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_COLUMNS)


def quarantine_rows(
    frame: pl.DataFrame, bad: pl.Expr | pl.Series, column: str, reason: str, fix: str,
    value: pl.Expr | None = None,
) -> pl.DataFrame:
    """Quarantine lines for the rows of `frame` where `bad` holds.

    `frame` needs `row_number`; the raw row is kept as JSON text in `record` (taken from a
    `record` column if the frame has one, else built from the frame's other columns for the
    quarantined rows only, which keeps clean files fast).
    """
    hits = frame.filter(bad)
    if "record" not in hits.columns:
        hits = hits.with_columns(record_of([c for c in hits.columns if c != "row_number"]))
    return hits.select(line(column, reason, fix, value))


def record_of(columns: list[str]) -> pl.Expr:
    """The raw row as JSON text (`record`), kept in quarantine for correction."""
    return pl.struct(columns).struct.json_encode().alias("record")


def line(column: str, reason: str, fix: str, value: pl.Expr | None = None) -> list[pl.Expr]:
    """The quarantine columns for rows that break one rule (`value`: the column's own value
    unless given)."""
    value_expr = value if value is not None else pl.col(column).cast(pl.String)
    return [pl.col("row_number").cast(pl.Int64), pl.lit(column).alias("column"),
            value_expr.alias("value"), pl.lit(reason).alias("reason"),
            pl.lit(fix).alias("fix"), pl.col("record")]


def open_text(path: Path) -> bytes:
    """Read a plain or gzipped file, rejecting truncated or corrupt gzip with FileError.

    Gzip is inflated with ISA-L (python-isal), about twice as fast as zlib: un-gzipping is
    most of the time it takes to read a police.uk file.
    """
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = igzip.decompress(raw)
        except (EOFError, OSError, isal_zlib.error) as exc:
            raise FileError(path, f"the gzip file is truncated or corrupt ({exc})",
                            "a complete .csv.gz file; download or copy it again") from exc
    if not raw.strip():
        raise FileError(path, "the file is empty", "a header row and at least one data row")
    return raw


def decode(path: Path, raw: bytes) -> str:
    """Decode UTF-8 (with or without BOM); reject other encodings with a clear message."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileError(
            path, f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})",
            "UTF-8 CSV; in Excel use 'Save as > CSV UTF-8', or re-export from the source system",
        ) from exc


@dataclass(frozen=True)
class Check:
    """A row rule: rows where `bad` holds are quarantined with this column, reason and fix."""

    bad: pl.Expr
    column: str
    reason: str
    fix: str
    value: pl.Expr | None = None


def run_checks(frame: pl.DataFrame, checks: Sequence[Check]) -> pl.DataFrame:
    """Evaluate every check in one pass; quarantine lines for the (usually few) bad rows, by
    row and, within a row, in the order of `checks`."""
    flags = [c.bad.fill_null(False).alias(f"_check{i}") for i, c in enumerate(checks)]
    flagged = frame.with_columns(flags).filter(pl.any_horizontal(pl.col(r"^_check\d+$")))
    if flagged.height == 0:
        return empty_quarantine()
    raw = flagged.lazy()  # one query for every rule's lines: the bad rows are few
    if "record" not in frame.columns:
        raw = raw.with_columns(record_of([c for c in frame.columns if c != "row_number"]))
    lines = [raw.filter(pl.col(f"_check{i}")).select(line(c.column, c.reason, c.fix, c.value))
             for i, c in enumerate(checks)]
    return pl.concat(lines).sort("row_number", maintain_order=True).collect()  # rule order


def person_tokens(frame: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """Linkage tokens in long form from a frame holding `row_number`, `person_key` and the
    file's own token columns (`columns`: canonical token field -> own column name)."""
    present = {f: own for f, own in columns.items() if f in TOKEN_FIELDS}
    if not present or frame.height == 0:
        return pl.DataFrame(schema=TOKEN_COLUMNS)
    wide = frame.select("row_number", "person_key",
                        *[pl.col(own).str.to_lowercase().alias(f) for f, own in present.items()])
    long = wide.unpivot(index=["row_number", "person_key"], variable_name="field",
                        value_name="token")
    ok = pl.col("token").str.contains(r"^[0-9a-f]{64}$") & pl.col("person_key").is_not_null()
    return conform(long.filter(ok), TOKEN_COLUMNS)
