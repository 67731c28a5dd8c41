"""data.police.uk street-level crime files (`YYYY-MM-<force>-street.csv[.gz]`).

Public, anonymised and monthly: no dates, times, offence codes, weapons or ages. Locations are
snapped to "on or near" points. Good for context maps and for police.uk-category proxies of a
local definition; a force extract coded to Home Office offence codes is needed for the
definition itself (see docs/data-formats.md).
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import polars as pl
import polars_hash  # noqa: F401  (registers the `nchash` namespace)

from svduty.sources.base import (
    LSOA_FORMAT,
    Check,
    FileError,
    Parsed,
    decode,
    empty_quarantine,
    open_text,
    record_of,
    run_checks,
)

HEADER = [
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
    "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context",
]
OTHER_POLICE_UK_FILES = {
    "Outcome type": "a police.uk outcomes file",
    "Part of a policing operation": "a police.uk stop-and-search file",
}
CATEGORIES = (
    "Anti-social behaviour", "Bicycle theft", "Burglary", "Criminal damage and arson", "Drugs",
    "Other theft", "Possession of weapons", "Public order", "Robbery", "Shoplifting",
    "Theft from the person", "Vehicle crime", "Violence and sexual offences", "Other crime",
    # legacy categories in files before 2013
    "Violent crime", "Public disorder and weapons",
)
# Great Britain, generously: Scilly to Shetland, Ardnamurchan to Lowestoft.
GB_LAT = (49.8, 60.95)
GB_LON = (-8.7, 1.8)
FILE_NAME = re.compile(r"(?P<month>\d{4}-\d{2})-(?P<force>[a-z0-9-]+?)-street\.csv(\.gz)?$")


class PoliceUK:
    """Reader for data.police.uk street-level CSV files, plain or gzipped."""

    name: ClassVar[str] = "police-uk"
    description: ClassVar[str] = "data.police.uk street-level crime (public, monthly, anonymised)"
    person_level_health: ClassVar[bool] = False

    def read(self, path: Path) -> Parsed:
        raw = read_frame(path)
        file_month, force = name_parts(path)
        frame = raw.with_row_index("row_number", offset=2).with_columns(
            pl.col("row_number").cast(pl.Int64), *DERIVED.values())
        problems = find_problems(frame, file_month)
        good = (frame.filter(~pl.col("row_number").is_in(problems["row_number"].implode()))
                if problems.height else frame)
        month = file_month or single_month(path, good)
        scope = force or slug(first(raw, "Falls within"))
        return Parsed(
            events=to_events(good, scope),
            quarantine=problems,
            rows_read=raw.height,
            period=month_period(month),
            scope=scope,
            partner=first(raw, "Reported by"),
        )


def read_frame(path: Path) -> pl.DataFrame:
    """Read the whole file as text columns, checking it is a street-level file.

    The file is un-gzipped first (:func:`open_text`, which rejects empty files and truncated
    gzip), then parsed by Polars; only when that fails is the text decoded to say exactly
    what is wrong (encoding, ragged rows...).
    """
    raw = open_text(path)
    try:
        frame = pl.read_csv(raw, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        decode(path, raw)  # raises for non-UTF-8 text, naming the line
        raise FileError(path, f"the CSV is malformed or truncated ({str(exc).splitlines()[0]})",
                        "a complete data.police.uk street-level CSV") from exc
    check_header(path, frame.columns)
    if frame.height == 0:
        raise FileError(path, "the file has a header but no rows",
                        "at least one crime row under the header")
    return frame


def check_header(path: Path, header: list[str]) -> None:
    for marker, kind in OTHER_POLICE_UK_FILES.items():
        if marker in header:
            raise FileError(path, f"this is {kind}, not a street-level crime file",
                            "YYYY-MM-<force>-street.csv from data.police.uk")
    missing = [c for c in HEADER if c not in header]
    if missing:
        raise FileError(
            path, f"columns {missing} are missing (found {header[:12]})",
            "the 12 data.police.uk street-level columns: " + ", ".join(HEADER),
        )


def name_parts(path: Path) -> tuple[str | None, str | None]:
    match = FILE_NAME.search(path.name)
    return (match["month"], match["force"]) if match else (None, None)


# Worked out once per file, for the row rules and the events alike.
DERIVED = {
    "_longitude": pl.col("Longitude").cast(pl.Float64, strict=False).alias("_longitude"),
    "_latitude": pl.col("Latitude").cast(pl.Float64, strict=False).alias("_latitude"),
    "_first": pl.col("Crime ID").nchash.xxh3_128().is_first_distinct().alias("_first"),
}  # _first: the first row with its Crime ID, compared by a 128-bit hash (XXH3): several
# times faster than comparing 64-character ids, with no collision in practice
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


def find_problems(frame: pl.DataFrame, file_month: str | None) -> pl.DataFrame:
    """One quarantine line per problem found, for rows that cannot be loaded.

    `frame` holds the file's text columns, `row_number` and the `DERIVED` columns. The rules
    run on the few rows a cheap screen picks out: every rule, except that a month is first
    compared with the file's month rather than checked for its form.
    """
    checks = row_checks(file_month)
    if file_month and re.match(MONTH, file_month):
        month_screen = pl.col("Month") != file_month
        screen = [month_screen if c.column == "Month" else c.bad for c in checks]
    else:
        screen = [c.bad for c in checks]
    suspects = frame.filter(pl.any_horizontal(screen).fill_null(True))
    if suspects.height == 0:
        return empty_quarantine()
    raw = [c for c in suspects.columns if c != "row_number" and c not in DERIVED]
    return run_checks(suspects.with_columns(record_of(raw)), checks)


@lru_cache(maxsize=64)
def row_checks(file_month: str | None) -> tuple[Check, ...]:
    """The row rules, in the order a row's problems are reported (made once per month:
    building the expressions costs more than a small file's checks)."""
    lon, lat = pl.col("_longitude"), pl.col("_latitude")
    month = pl.col("Month")
    month_ok = month.str.contains(MONTH).fill_null(False)
    coordinates = pl.concat_str(["Longitude", "Latitude"], separator=",", ignore_nulls=True)
    required = ["Month", "Reported by", "Falls within", "Crime type"]
    checks = [
        Check(pl.any_horizontal(pl.col(required).is_null()), "Crime type",
              "row is incomplete (a required field is empty or the row has fewer fields than "
              "the header); the file may be truncated or edited",
              "re-download the month from data.police.uk", pl.lit(None, pl.String)),
        Check(~month_ok, "Month", "month is not a valid YYYY-MM month",
              "fix the Month column (e.g. 2025-01)"),
        Check(~pl.col("Crime type").is_in(CATEGORIES).fill_null(False), "Crime type",
              "unknown police.uk crime type",
              "use one of the police.uk categories: " + ", ".join(CATEGORIES[:14])),
        Check(pl.col("LSOA code").is_not_null() & ~pl.col("LSOA code").str.contains(LSOA_FORMAT),
              "LSOA code", "not an England or Wales LSOA code",
              "LSOA codes look like E01015023 (England) or W01000001 (Wales)"),
        Check((pl.col("Longitude").is_not_null() & lon.is_null())
              | (pl.col("Latitude").is_not_null() & lat.is_null()),
              "Longitude", "coordinate is not a number", "give decimal degrees, e.g. -4.1427",
              coordinates),
        Check((lon.is_null() != lat.is_null())
              | ~(lat.is_between(*GB_LAT) & lon.is_between(*GB_LON)).fill_null(True),
              "Longitude", "coordinates are outside Great Britain or incomplete",
              "check longitude/latitude are WGS84 decimal degrees in the right columns",
              coordinates),
        Check(pl.col("Crime ID").is_not_null() & ~pl.col("_first"),
              "Crime ID", "Crime ID repeated in this file; the first row with it is loaded",
              "none needed if the rows are the same crime; otherwise report to the force"),
    ]
    if file_month:
        checks.append(Check(
            month_ok & (month != file_month), "Month",
            f"row month differs from the file's month {file_month}",
            "police.uk files hold one month each; check the file was not edited or merged"))
    return tuple(checks)


def to_events(good: pl.DataFrame, scope: str | None) -> pl.DataFrame:
    """Map clean rows onto event columns."""
    month = pl.col("Month").str.to_date("%Y-%m")
    record_id = pl.when(pl.col("Crime ID").is_not_null()).then(pl.col("Crime ID")).otherwise(
        pl.concat_str([pl.lit("asb-row-"), pl.col("row_number").cast(pl.String)]))
    return good.select(
        pl.concat_str([pl.col("Month"), record_id], separator="/").alias("source_record_id"),
        "row_number",
        pl.lit(scope).alias("scope"),
        month.alias("month"),
        pl.col("LSOA code").alias("lsoa_code"),
        pl.col("_longitude").alias("longitude"),
        pl.col("_latitude").alias("latitude"),
        pl.col("Location").alias("location_desc"),
        pl.col("Crime type").alias("police_uk_category"),
        pl.col("Crime type").alias("source_category"),
        pl.col("Last outcome category").alias("outcome"),
        pl.col("Context").alias("context"),
    )


def single_month(path: Path, good: pl.DataFrame) -> str:
    months = good.get_column("Month").unique().drop_nulls()
    if months.len() == 0:
        raise FileError(path, "no row has a valid month and the file name has none",
                        "YYYY-MM-<force>-street.csv with YYYY-MM months")
    return str(months.min())


def month_period(month: str) -> tuple[date, date]:
    year, mon = (int(x) for x in month.split("-"))
    return date(year, mon, 1), date(year, mon, calendar.monthrange(year, mon)[1])


def first(frame: pl.DataFrame, column: str) -> str | None:
    values = frame.get_column(column).drop_nulls()
    return values[0] if values.len() else None


def slug(name: str | None) -> str | None:
    if not name:
        return None
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("&", "and")).strip("-").removesuffix(
        "-police").removesuffix("-constabulary")
