"""Column names and values shared by partner-file readers.

Partners name columns in many ways ("Crime No", "crime_ref", "CRIME REFERENCE"). Each reader
declares its columns as canonical names with accepted variants (`ColumnSpec`);
:func:`resolve_columns` matches a file's header to them, ignoring case, spaces and punctuation,
and rejects the file with one clear message when a required column is missing.

The value parsers here (flags, dates, times, ages) are polars expressions, so readers stay
vectorised: a parser returns null for a value it cannot read, and the reader quarantines rows
where the raw value was present but the parsed one is null.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from svduty.sources.base import FileError

AGE_BANDS = ("0-9", "10-17", "18-24", "25-34", "35-49", "50-64", "65+")
FLAG_TRUE = ("y", "yes", "true", "1")
FLAG_FALSE = ("n", "no", "false", "0")
FLAG_UNKNOWN = ("unknown", "not known", "u", "n/k")
AGE_UNKNOWN = ("unknown", "not known", "n/k", "nk", "not stated")
SEXES = {
    "m": "male", "male": "male", "f": "female", "female": "female",
    "u": "unknown", "x": "unknown", "unknown": "unknown", "not known": "unknown",
    "not stated": "unknown", "n/k": "unknown", "nk": "unknown",
    "other": "other", "indeterminate": "other",
}
# Column names that mean a direct identifier: a file carrying them is refused, never stored.
IDENTIFIER_COLUMNS = frozenset({
    "name", "forename", "forenames", "surname", "firstname", "lastname", "fullname",
    "personname", "victimname", "suspectname", "offendername", "dateofbirth", "dob",
    "birthdate", "victimdob", "suspectdob", "offenderdob", "pnc", "pncid", "pncnumber",
    "pncno", "nhsnumber", "nhsno", "upn", "nationalinsurancenumber", "ninumber", "nino",
})
EXCEL_EPOCH = date(1899, 12, 30)
_DATE_TIME = (r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4})"
              r"(?:[ T](\d{1,2}:\d{2}(?::\d{2})?)(?:\.\d+)?)?$")
_TIME = r"^(?:\d{4}-\d{2}-\d{2}[ T])?(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?$"
_SERIAL = r"^\d+(?:\.\d+)?$"


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column: whether the file must have it, and the other names accepted."""

    required: bool = False
    aliases: tuple[str, ...] = ()


def normalise_name(name: str) -> str:
    """A column name reduced for matching: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def alias_index(spec: dict[str, ColumnSpec]) -> dict[str, str]:
    """Normalised name -> canonical name, for every canonical name and alias in `spec`."""
    index: dict[str, str] = {}
    for canonical, column in spec.items():
        for name in (canonical, *column.aliases):
            key = normalise_name(name)
            if index.setdefault(key, canonical) != canonical:
                raise ValueError(f"alias '{name}' is given for {index[key]} and {canonical}")
    return index


def match_columns(header: list[str], spec: dict[str, ColumnSpec]) -> dict[str, list[str]]:
    """Canonical name -> the header names that match it (normally one)."""
    index = alias_index(spec)
    found: dict[str, list[str]] = {}
    for name in header:
        canonical = index.get(normalise_name(name or ""))
        if canonical:
            found.setdefault(canonical, []).append(name)
    return found


def has_required(header: list[str], spec: dict[str, ColumnSpec]) -> bool:
    """Whether `header` has every required column of `spec` (used to find a header row)."""
    found = match_columns(header, spec)
    return all(c in found for c, s in spec.items() if s.required)


def resolve_columns(path: Path, header: list[str], spec: dict[str, ColumnSpec]) -> dict[str, str]:
    """Map canonical names to the file's own column names.

    Raises FileError naming the missing required columns, the columns found and the closest
    names in the file, or naming two columns that both match one canonical column.
    """
    found = match_columns(header, spec)
    for canonical, names in found.items():
        exact = [n for n in names if normalise_name(n) == normalise_name(canonical)]
        if len(names) > 1 and len(exact) != 1:
            raise FileError(path, f"columns {names} all look like {canonical}",
                            f"one {canonical} column; rename or delete the others")
        found[canonical] = exact or names
    missing = [c for c, s in spec.items() if s.required and c not in found]
    if missing:
        raise FileError(path, missing_message(missing, header, spec),
                        expected_columns(spec))
    return {canonical: names[0] for canonical, names in found.items()}


def missing_message(missing: list[str], header: list[str], spec: dict[str, ColumnSpec]) -> str:
    """'required column(s) missing: ...; found ...; did you mean ...' for a FileError."""
    parts = [f"required column(s) missing: {', '.join(missing)}; found columns {header[:40]}"]
    for canonical in missing:
        close = close_matches(canonical, header, spec[canonical])
        if close:
            parts.append(f"did you mean {' or '.join(repr(c) for c in close)} for {canonical}?")
    return "; ".join(parts)


def close_matches(canonical: str, header: list[str], column: ColumnSpec) -> list[str]:
    """Header names close to any accepted name of a column (difflib, normalised)."""
    by_key = {normalise_name(h): h for h in header if h}
    hits: list[str] = []
    for name in (canonical, *column.aliases):
        for key in difflib.get_close_matches(normalise_name(name), list(by_key), n=2,
                                             cutoff=0.75):
            if by_key[key] not in hits:
                hits.append(by_key[key])
    return hits[:3]


def expected_columns(spec: dict[str, ColumnSpec]) -> str:
    required = [c for c, s in spec.items() if s.required]
    return (f"a header row in row 1 with at least the columns {', '.join(required)} "
            "(other accepted names are listed in docs/data-formats.md)")


def identifier_columns(header: list[str]) -> list[str]:
    """Header names that look like direct identifiers (name, date of birth, PNC id, ...)."""
    return [h for h in header if h and normalise_name(h) in IDENTIFIER_COLUMNS]


def unique_names(header: list[str | None]) -> list[str]:
    """Header cells as usable, distinct column names ("column 3" for a blank one)."""
    names: list[str] = []
    for i, cell in enumerate(header, start=1):
        name = (cell or "").strip() or f"column {i}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


def blank_to_null(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Strip surrounding spaces from text columns; empty text becomes null."""
    return frame.with_columns(
        pl.col(c).str.strip_chars().replace("", None) for c in columns
    )


def parse_flag(value: pl.Expr) -> pl.Expr:
    """Y/N, Yes/No, True/False, 1/0 (any case) -> Boolean; blank or 'unknown' -> null."""
    low = value.str.to_lowercase()
    return pl.when(low.is_in(FLAG_TRUE)).then(True).when(low.is_in(FLAG_FALSE)).then(False)


def flag_is_bad(value: pl.Expr) -> pl.Expr:
    """A flag value that is present but not one of the accepted spellings."""
    return value.is_not_null() & ~value.str.to_lowercase().is_in(
        (*FLAG_TRUE, *FLAG_FALSE, *FLAG_UNKNOWN))


def parse_sex(value: pl.Expr) -> pl.Expr:
    """M/F/Male/Female/U/X/Unknown/Other (any case) -> male, female, unknown, other."""
    return value.str.to_lowercase().replace_strict(SEXES, default=None, return_dtype=pl.String)


def parse_age(value: pl.Expr) -> pl.Expr:
    """Whole years 0-120 as Int16 ('25' or Excel's '25.0'); anything else null."""
    years = value.cast(pl.Float64, strict=False)
    ok = years.is_between(0, 120) & (years == years.floor())
    return pl.when(ok).then(years).cast(pl.Int16)


def age_is_bad(value: pl.Expr) -> pl.Expr:
    """An age that is present but not 'unknown' nor a whole number of years 0-120."""
    return (value.is_not_null() & parse_age(value).is_null()
            & ~value.str.to_lowercase().is_in(AGE_UNKNOWN))


def age_band(age: pl.Expr) -> pl.Expr:
    """The standard age band of an age in whole years (null stays null)."""
    expr = pl.when(age.is_null()).then(pl.lit(None, pl.String))
    for upper, band in zip((10, 18, 25, 35, 50, 65), AGE_BANDS, strict=False):
        expr = expr.when(age < upper).then(pl.lit(band))
    return expr.otherwise(pl.lit(AGE_BANDS[-1]))


def parse_date(value: pl.Expr, excel: bool = False) -> tuple[pl.Expr, pl.Expr]:
    """(date, time) from yyyy-mm-dd or dd/mm/yyyy, each with an optional HH:MM[:SS].

    With `excel`, a bare number is an Excel serial day (days since 1899-12-30; a fraction is
    the time of day). The time is null unless the value carries one.
    """
    parts = value.str.extract_groups(_DATE_TIME)
    day_text, time_text = parts.struct.field("1"), parts.struct.field("2")
    on = pl.coalesce(day_text.str.to_date("%Y-%m-%d", strict=False),
                     day_text.str.to_date("%d/%m/%Y", strict=False))
    at = hms_time(time_text)
    if excel:
        serial_on, serial_at = excel_serial(value)
        on, at = pl.coalesce(on, serial_on), pl.coalesce(at, serial_at)
    return on, at


def parse_time(value: pl.Expr, excel: bool = False) -> pl.Expr:
    """A time of day from HH:MM[:SS], HHMM, or (with `excel`) a fraction of a day."""
    parts = value.str.extract_groups(_TIME)
    hms = pl.concat_str([parts.struct.field("1"), parts.struct.field("2"),
                         parts.struct.field("3").fill_null("00")], separator=":")
    hhmm = value.str.extract(r"^(\d{2})(\d{2})$", 1) + ":" + value.str.extract(
        r"^(\d{2})(\d{2})$", 2) + ":00"
    at = pl.coalesce(hms, hhmm).str.to_time("%H:%M:%S", strict=False)
    if excel:
        serial = value.cast(pl.Float64, strict=False)
        fraction = pl.when(serial.is_between(0, 1, closed="left")).then(serial)
        at = pl.coalesce(at, seconds_to_time(fraction * 86_400))
    return at


def hms_time(text: pl.Expr) -> pl.Expr:
    """'H:MM' or 'HH:MM:SS' -> Time, null when absent or invalid."""
    padded = pl.when(text.str.count_matches(":") == 1).then(text + ":00").otherwise(text)
    return padded.str.to_time("%H:%M:%S", strict=False)


def excel_serial(value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(date, time) from an Excel serial day number such as 45352 or 45352.5."""
    serial = pl.when(value.str.contains(_SERIAL)).then(value).cast(pl.Float64, strict=False)
    serial = pl.when(serial.is_between(1, 2_958_465)).then(serial)  # up to 9999-12-31
    days = serial.floor()
    on = pl.lit(EXCEL_EPOCH) + pl.duration(days=days.cast(pl.Int64))
    at = pl.when(serial != days).then(seconds_to_time((serial - days) * 86_400))
    return on, at


def seconds_to_time(seconds: pl.Expr) -> pl.Expr:
    """Seconds after midnight (rounded to the second) -> Time."""
    nanos = (seconds.round(0).clip(0, 86_399) * 1_000_000_000).cast(pl.Int64)
    return nanos.cast(pl.Time)
