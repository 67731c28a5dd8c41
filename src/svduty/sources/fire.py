"""Fire and rescue service incidents relevant to serious violence: deliberate fires and attacks
on crews.

One row per incident, CSV (UTF-8, plain or gzipped) or XLSX (the sheet named `incidents`, else
the first sheet), read by the shared table reader (:mod:`svduty.sources.tables`). Columns are
matched by name, ignoring case, spaces and punctuation, with the variants listed in `SPEC` and
in docs/data-formats.md. Each incident becomes one event; rows that cannot be loaded are
quarantined with the column, value, reason and fix. The file carries no people: a column that
looks like a name, date of birth or other direct identifier rejects the whole file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import ClassVar

import polars as pl

from svduty.sources.base import (
    EVENT_COLUMNS,
    LSOA_FORMAT,
    QUARANTINE_COLUMNS,
    Check,
    FileError,
    Parsed,
    conform,
    run_checks,
)
from svduty.sources.columns import ColumnSpec, parse_date, parse_time
from svduty.sources.tables import (
    EARLIEST,
    NO_RECORD,
    Layout,
    Table,
    column_notes,
    location_checks,
    period_of,
    raw,
    read_table,
    repeated_rows,
)

SPEC: dict[str, ColumnSpec] = {
    "incident_id": ColumnSpec(True, (
        "incident number", "incident no", "incident ref", "incident reference", "irs id",
        "irs incident id", "irs reference", "incident key")),
    "incident_date": ColumnSpec(True, (
        "date", "call date", "date of call", "alarm date", "incident datetime",
        "incident date time", "date time of call")),
    "incident_time": ColumnSpec(False, ("time", "call time", "time of call", "alarm time")),
    "incident_type": ColumnSpec(True, (
        "type", "incident category", "category", "incident classification",
        "incident type description", "fire type")),
    "property_type": ColumnSpec(False, (
        "property category", "property", "property description", "location type",
        "premises type")),
    "lsoa_code": ColumnSpec(False, (
        "lsoa", "lsoa11cd", "lsoa21cd", "lsoa11", "lsoa21", "lsoa 2011 code", "lsoa 2021 code")),
    "easting": ColumnSpec(False, ("x", "grid x", "eastings", "x coordinate", "os easting")),
    "northing": ColumnSpec(False, ("y", "grid y", "northings", "y coordinate", "os northing")),
    "casualties": ColumnSpec(False, (
        "casualty count", "number of casualties", "no of casualties", "casualties count",
        "injuries")),
}
TYPES = ("deliberate primary fire", "deliberate secondary fire", "attack on crew", "other")
OTHER = ("other", "other incident", "other deliberate")
CREW = r"\b(crews?|staff|firefighters?|personnel)\b"
VIOLENCE = r"\b(attacks?|attacked|violence|violent|assaults?|assaulted|abuse)\b"


def check_location_columns(path: Path, header: list[str], columns: dict[str, str]) -> None:
    """An LSOA column, or easting and northing, or both."""
    grid = {"easting", "northing"} & set(columns)
    if "lsoa_code" not in columns and len(grid) < 2:
        have = f" (found only {grid.pop()})" if grid else ""
        raise FileError(path, f"no location columns{have}; found columns {header[:40]}",
                        "an lsoa_code column, or easting and northing (British National Grid), "
                        "or both")


LAYOUT = Layout(
    spec=SPEC, sheet="incidents", unit="incident",
    allowed=("incident columns only (incident_id, incident_date, incident_time, incident_type, "
             "property_type, lsoa_code, easting, northing, casualties); delete the identifying "
             "columns and ask the sender to delete this copy"),
    groups=check_location_columns,
)


class Fire:
    """Reader for fire and rescue service incident extracts (CSV, CSV.gz or XLSX)."""

    name: ClassVar[str] = "fire"
    description: ClassVar[str] = (
        "fire and rescue incidents: deliberate fires and attacks on crews, one row per incident")
    person_level_health: ClassVar[bool] = False

    def read(self, path: Path) -> Parsed:
        path = Path(path)
        table = read_table(path, LAYOUT)
        work = normalise(table)
        lines = run_checks(work, checks(table))
        bad = lines.get_column("row_number").unique().implode()
        dupes = duplicates(work.filter(~pl.col("row_number").is_in(bad)), table)
        quarantine = pl.concat([lines, dupes]).sort("row_number", maintain_order=True)
        bad = quarantine.get_column("row_number").unique().implode()
        events = to_events(work.filter(~pl.col("row_number").is_in(bad)))
        return Parsed(
            events=events,
            quarantine=conform(quarantine, QUARANTINE_COLUMNS),
            rows_read=work.height,
            period=period_of(events.get_column("month"), work.get_column("__on")),
            notes=column_notes(table),
        )


def incident_type(value: pl.Expr) -> pl.Expr:
    """'Primary fire - deliberate' -> 'deliberate primary fire'; unrecognised -> null."""
    text = value.str.to_lowercase().str.replace_all(r"[^a-z]+", " ").str.strip_chars()
    deliberate = text.str.contains(r"\b(deliberate|deliberately|arson)\b")
    return (pl.when(text.str.contains(CREW) & text.str.contains(VIOLENCE))
            .then(pl.lit("attack on crew"))
            .when(deliberate & text.str.contains(r"\bprimary\b"))
            .then(pl.lit("deliberate primary fire"))
            .when(deliberate & text.str.contains(r"\bsecondary\b"))
            .then(pl.lit("deliberate secondary fire"))
            .when(text.is_in(OTHER)).then(pl.lit("other"))
            .otherwise(pl.lit(None, pl.String)))


def normalise(table: Table) -> pl.DataFrame:
    """The raw text columns plus `record` (the row as JSON) and parsed `__` columns."""
    on, at = parse_date(raw(table, "incident_date"), table.excel)
    if "incident_time" in table.columns:
        at = parse_time(raw(table, "incident_time"), table.excel)
    casualties = raw(table, "casualties").cast(pl.Float64, strict=False)
    whole = casualties.is_between(0, 10_000) & (casualties == casualties.floor())
    frame = table.frame
    own = [c for c in frame.columns if c != "row_number"]
    return frame.with_columns(
        pl.struct(own).struct.json_encode().alias("record"),
        raw(table, "incident_id").alias("__id"),
        on.alias("__on"),
        at.alias("__at"),
        incident_type(raw(table, "incident_type")).alias("__type"),
        raw(table, "lsoa_code").str.to_uppercase().alias("__lsoa"),
        raw(table, "easting").cast(pl.Float64, strict=False).alias("__e"),
        raw(table, "northing").cast(pl.Float64, strict=False).alias("__n"),
        raw(table, "property_type").alias("__location_type"),
        pl.when(whole).then(casualties).cast(pl.Int64).alias("__casualties"),
    )


def checks(table: Table) -> list[Check]:
    lsoa_ok = pl.col("__lsoa").str.contains(LSOA_FORMAT)
    return (id_checks(table) + date_checks(table) + type_checks(table)
            + location_checks(table, lsoa_ok, "incident"))


def id_checks(table: Table) -> list[Check]:
    own = table.columns["incident_id"]
    checks = [Check(pl.col("__id").is_null(), "incident_id", "incident id is empty",
                    f"give every incident its incident number in '{own}'", NO_RECORD)]
    if "casualties" in table.columns:
        value = raw(table, "casualties")
        checks.append(Check(
            value.is_not_null() & pl.col("__casualties").is_null(), "casualties",
            "casualties is not a whole number of people (0 or more)",
            f"give the number of casualties in '{table.columns['casualties']}' as a whole "
            "number, blank if not known", value))
    return checks


def date_checks(table: Table) -> list[Check]:
    own = table.columns["incident_date"]
    value, on = pl.col(own), pl.col("__on")
    fix = f"give the date in '{own}' as dd/mm/yyyy or yyyy-mm-dd"
    checks = [
        Check(value.is_null(), "incident_date", "incident date is empty", fix, NO_RECORD),
        Check(value.is_not_null() & on.is_null(), "incident_date",
              "incident date is not a valid date", fix, value),
        Check(on > date.today(), "incident_date", "incident date is in the future",
              f"check the date in '{own}' (day and month the right way round?)", value),
        Check(on < EARLIEST, "incident_date", "incident date is before 1990",
              f"check the date in '{own}'; a year such as 0024 means the year was cut short",
              value),
    ]
    if "incident_time" in table.columns:
        time = raw(table, "incident_time")
        checks.append(Check(
            time.is_not_null() & pl.col("__at").is_null(), "incident_time",
            "incident time is not a valid time of day",
            f"give the time in '{table.columns['incident_time']}' as HH:MM (24-hour), blank "
            "when unknown", time))
    return checks


def type_checks(table: Table) -> list[Check]:
    own = table.columns["incident_type"]
    value = pl.col(own)
    accepted = ", ".join(TYPES)
    return [
        Check(value.is_null(), "incident_type", "incident type is empty",
              f"give the incident type in '{own}': one of {accepted}", NO_RECORD),
        Check(value.is_not_null() & pl.col("__type").is_null(), "incident_type",
              f"incident type is not one of the accepted types ({accepted})",
              f"use one of {accepted} in '{own}' (variants such as 'Primary fire - "
              "deliberate', 'Secondary (deliberate)' and 'Attack on firefighters' are "
              "understood); send only incidents relevant to serious violence", value),
    ]


def duplicates(work: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Rows repeating an incident id already given on an earlier (loadable) row."""
    return repeated_rows(work, "__id", "incident_id", "incident id",
                         f"give each incident one row and its own incident number in "
                         f"'{table.columns['incident_id']}'; delete the repeated row")


def to_events(rows: pl.DataFrame) -> pl.DataFrame:
    events = rows.select(
        pl.col("__id").alias("source_record_id"),
        "row_number",
        pl.col("__on").dt.month_start().alias("month"),
        pl.col("__on").alias("occurred_on"),
        pl.col("__on").dt.combine(pl.col("__at"), time_unit="us").alias("occurred_at"),
        pl.col("__lsoa").alias("lsoa_code"),
        pl.col("__e").alias("easting"),
        pl.col("__n").alias("northing"),
        pl.col("__location_type").alias("location_type"),
        pl.col("__type").alias("source_category"),
        pl.format("casualties={}", "__casualties").alias("context"),
    )
    return conform(events, EVENT_COLUMNS)
