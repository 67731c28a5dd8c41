"""Ambulance service call-outs to assaults: assaults, sexual assaults, stabbings and shootings.

One row per incident (a CAD call-out), CSV (UTF-8, plain or gzipped) or XLSX (the sheet named
`incidents`, else the first sheet), read by the shared table reader
(:mod:`svduty.sources.tables`). Columns are matched by name, ignoring case, spaces and
punctuation, with the variants listed in `SPEC` and in docs/sources/ambulance.md. The chief
complaint (AMPDS card 4 or 27 determinant, or text) gives the event's `source_category` and
`weapon`; response category, age band, sex and conveyance go in its `context`. Each incident
becomes one event; rows that cannot be loaded are quarantined with the column, value, reason
and fix. The file carries no people: a column that looks like a name, date of birth, NHS number
or other direct identifier (including patient and caller variants) rejects the whole file.
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
from svduty.sources.columns import (
    AGE_UNKNOWN,
    FLAG_FALSE,
    FLAG_TRUE,
    FLAG_UNKNOWN,
    ColumnSpec,
    normalise_name,
    parse_date,
    parse_sex,
    parse_time,
)
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
        "cad number", "cad no", "cad ref", "cad reference", "cad id", "cad incident number",
        "incident number", "incident no", "incident ref", "incident reference", "call id",
        "call number", "call reference", "job number", "job no", "job id", "job reference")),
    "call_date": ColumnSpec(True, (
        "date", "incident date", "date of call", "call received", "call received date",
        "call datetime", "call date time", "call received datetime", "date time of call",
        "incident datetime", "incident date time", "call connect date", "call start")),
    "call_time": ColumnSpec(False, (
        "time", "time of call", "call received time", "incident time", "call connect time",
        "call start time")),
    "category": ColumnSpec(False, (
        "response category", "call category", "arp category", "cat", "dispatch category",
        "response priority", "priority", "category at dispatch", "final category")),
    "chief_complaint": ColumnSpec(True, (
        "incident type", "chief complaint description", "complaint", "ampds", "ampds code",
        "ampds determinant", "determinant", "determinant code", "mpds code", "mpds determinant",
        "nature of call", "call nature", "call type", "problem", "symptom group",
        "pathways symptom group")),
    "age_band": ColumnSpec(False, (
        "age", "age group", "age range", "patient age", "patient age band", "patient age group",
        "age years", "age in years")),
    "sex": ColumnSpec(False, ("gender", "patient sex", "patient gender", "sex of patient")),
    "lsoa_code": ColumnSpec(False, (
        "lsoa", "lsoa11cd", "lsoa21cd", "lsoa11", "lsoa21", "lsoa 2011 code", "lsoa 2021 code",
        "incident lsoa", "lsoa of incident")),
    "easting": ColumnSpec(False, (
        "x", "grid x", "eastings", "x coordinate", "os easting", "incident easting")),
    "northing": ColumnSpec(False, (
        "y", "grid y", "northings", "y coordinate", "os northing", "incident northing")),
    "location_type": ColumnSpec(False, (
        "location category", "incident location type", "place type", "premises type",
        "scene type", "property type")),
    "conveyed": ColumnSpec(False, (
        "conveyance", "conveyed to hospital", "transported", "transported to hospital",
        "conveyed yn", "patient conveyed")),
}
CATEGORIES = ("assault", "stab or penetrating wound", "gunshot wound", "sexual assault", "other")
AGE_BANDS = ("0-9", "10-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
BAND_STARTS = (0, 10, 18, 25, 35, 45, 55, 65)
MAX_AGE = 120
# Patient and caller identifiers that the shared list (columns.IDENTIFIER_COLUMNS) lacks.
PATIENT_IDENTIFIERS = frozenset({
    "patientname", "patientforename", "patientforenames", "patientfirstname",
    "patientsurname", "patientlastname", "patientfullname", "patientdob",
    "patientdateofbirth", "patientnhsnumber", "patientnhsno", "patientaddress",
    "patientpostcode", "homeaddress", "homepostcode", "callername", "callerphone",
    "callernumber", "callertelephone", "phonenumber", "telephonenumber", "contactnumber",
    "callbacknumber", "mobilenumber",
})
CONVEYED_TRUE = (*FLAG_TRUE, "conveyed", "transported", "see and convey")
CONVEYED_FALSE = (*FLAG_FALSE, "not conveyed", "non conveyed", "nonconveyed",
                  "not transported", "see and treat", "hear and treat")
# AMPDS determinant: card, level (A-E, O for omega), number, optional suffix ("04D01S").
DETERMINANT = r"^0?(\d{1,2})\s*[-.]?\s*([a-eo])\s*[-.]?\s*(\d{1,2})([a-z]?)\b"
SEXUAL = r"\b(sexual|sexually|rape|raped)\b"
CARD_TITLE = r"\bassault\b.*\bsexual assault\b"  # AMPDS card 4 title: not sexual as such
GUNSHOT = r"\b(gunshot|gunshots|gsw|shot|shooting|shotgun)\b"
STAB = r"\b(stab|stabbed|stabbing|stabbings|penetrating|impaled|impalement)\b"
KNIFE = r"\b(stab|stabbed|stabbing|stabbings|knife|knives|knifed|blade|bladed|sharp|machete)\b"
GUN = r"\b(gunshot|gunshots|gsw|shot|shooting|shotgun|gun|guns|firearm|firearms)\b"
ASSAULT = (r"\b(assault|assaults|assaulted|attack|attacked|violence|violent|fight|fighting|"
           r"punched|kicked|glassed|glassing|gbh|abh|wounding)\b")
OTHER = r"^other\b"


def check_columns(path: Path, header: list[str], columns: dict[str, str]) -> None:
    """No patient or caller identifiers; an LSOA column, or easting and northing, or both."""
    ids = [h for h in header if normalise_name(h) in PATIENT_IDENTIFIERS]
    if ids:
        raise FileError(
            path, f"the file has columns that identify people directly ({', '.join(ids)}); "
            "raw identifiers must never be sent, and nothing from this file was loaded",
            LAYOUT.allowed)
    grid = {"easting", "northing"} & set(columns)
    if "lsoa_code" not in columns and len(grid) < 2:
        have = f" (found only {grid.pop()})" if grid else ""
        raise FileError(path, f"no location columns{have}; found columns {header[:40]}",
                        "an lsoa_code column, or easting and northing (British National Grid), "
                        "or both")


LAYOUT = Layout(
    spec=SPEC, sheet="incidents", unit="incident (call-out)",
    allowed=("incident columns only (incident_id, call_date, call_time, category, "
             "chief_complaint, age_band, sex, lsoa_code, easting, northing, location_type, "
             "conveyed); no patient or caller details; delete the identifying columns and ask "
             "the sender to delete this copy"),
    groups=check_columns,
)


class Ambulance:
    """Reader for ambulance service assault call-out extracts (CSV, CSV.gz or XLSX)."""

    name: ClassVar[str] = "ambulance"
    description: ClassVar[str] = (
        "ambulance call-outs to assaults, stabbings, shootings and sexual assaults, one row per "
        "incident")
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


# ------------------------------------------------------------------------------ normalising


def words(value: pl.Expr) -> pl.Expr:
    """Lower-case letters only, single-spaced: 'Stab/Gunshot' -> 'stab gunshot'."""
    return value.str.to_lowercase().str.replace_all(r"[^a-z]+", " ").str.strip_chars()


def determinant(value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(card number, suffix letter) of an AMPDS determinant such as '04D01S'; else nulls."""
    parts = value.str.strip_chars().str.to_lowercase().str.extract_groups(DETERMINANT)
    return (parts.struct.field("1").cast(pl.Int32, strict=False),
            parts.struct.field("4"))


def category_from_code(card: pl.Expr, suffix: pl.Expr) -> pl.Expr:
    """Card 4 (assault/sexual assault) and 27 (stab/gunshot/penetrating) -> category."""
    return (pl.when(card == 4).then(pl.when(suffix == "s").then(pl.lit("sexual assault"))
                                    .otherwise(pl.lit("assault")))
            .when(card == 27).then(pl.when(suffix == "g").then(pl.lit("gunshot wound"))
                                   .otherwise(pl.lit("stab or penetrating wound")))
            .otherwise(pl.lit(None, pl.String)))


def weapon_from_code(card: pl.Expr, suffix: pl.Expr) -> pl.Expr:
    """Card 27 suffix S (stab) or G (gunshot), card 4 suffix T (stun gun); else unknown."""
    return (pl.when((card == 27) & (suffix == "s")).then(pl.lit("knife or sharp"))
            .when((card == 27) & (suffix == "g")).then(pl.lit("firearm"))
            .when((card == 4) & (suffix == "t")).then(pl.lit("other"))
            .otherwise(pl.lit("unknown")))


def category_from_text(text: pl.Expr) -> pl.Expr:
    """'Assault - knife' -> assault, 'Stab wound' -> stab or penetrating wound, ...; else null."""
    stab, gunshot = text.str.contains(STAB), text.str.contains(GUNSHOT)
    return (pl.when(text.str.contains(CARD_TITLE)).then(pl.lit("assault"))
            .when(text.str.contains(SEXUAL)).then(pl.lit("sexual assault"))
            .when(gunshot & ~stab).then(pl.lit("gunshot wound"))
            .when(stab).then(pl.lit("stab or penetrating wound"))
            .when(text.str.contains(ASSAULT) | text.str.contains(KNIFE) | text.str.contains(GUN))
            .then(pl.lit("assault"))
            .when(text.str.contains(OTHER)).then(pl.lit("other"))
            .otherwise(pl.lit(None, pl.String)))


def weapon_from_text(text: pl.Expr) -> pl.Expr:
    """Knife or stab words -> knife or sharp, gun words -> firearm; both or neither: unknown."""
    knife, gun = text.str.contains(KNIFE), text.str.contains(GUN)
    return (pl.when(knife & ~gun).then(pl.lit("knife or sharp"))
            .when(gun & ~knife).then(pl.lit("firearm"))
            .otherwise(pl.lit("unknown")))


def complaint(value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(source_category, weapon) from an AMPDS determinant or a written complaint."""
    card, suffix = determinant(value)
    text = words(value)
    coded = card.is_not_null()
    category = pl.when(coded).then(category_from_code(card, suffix)).otherwise(
        category_from_text(text))
    weapon = pl.when(coded).then(weapon_from_code(card, suffix)).otherwise(
        weapon_from_text(text))
    return category, pl.when(category.is_not_null()).then(weapon)


def response_category(value: pl.Expr) -> pl.Expr:
    """'Cat 1', 'C1', 'Category 1', '1', 'C1T', 'Cat 2 - emergency' -> 'C1'..'C4'; else null."""
    low = value.str.to_lowercase().str.strip_chars()
    number = low.str.extract(r"^(?:c|cat|category)?\s*[.:]?\s*([1-4])(?:t|\b)", 1)
    return pl.when(number.is_not_null()).then(pl.lit("C") + number)


def band_of(age: pl.Expr) -> pl.Expr:
    """The age band holding an age in whole years (0-120)."""
    expr = pl.when(age < BAND_STARTS[1]).then(pl.lit(AGE_BANDS[0]))
    for start, band in zip(BAND_STARTS[2:], AGE_BANDS[1:], strict=False):
        expr = expr.when(age < start).then(pl.lit(band))
    return expr.otherwise(pl.lit(AGE_BANDS[-1]))


def age_bounds(value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(youngest, oldest) age a written age or band allows: '25', '18-24', '65+', 'under 10'."""
    low = value.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    years = low.cast(pl.Float64, strict=False)
    exact = pl.when(years == years.floor()).then(years).cast(pl.Int64, strict=False)
    pair = low.str.extract_groups(r"^(\d{1,3}) ?(?:-|–|—|to) ?(\d{1,3})$")
    plus = low.str.extract(r"^(\d{1,3}) ?(?:\+|plus|and over|or over|and above|and older)$", 1)
    over = low.str.extract(r"^(?:over|>) ?(\d{1,3})$", 1).cast(pl.Int64) + 1
    under = low.str.extract(r"^(?:under|<) ?(\d{1,3})$", 1).cast(pl.Int64) - 1
    youngest = pl.coalesce(exact, pair.struct.field("1").cast(pl.Int64),
                           plus.cast(pl.Int64), over, pl.when(under.is_not_null()).then(0))
    oldest = pl.coalesce(exact, pair.struct.field("2").cast(pl.Int64),
                         pl.when(plus.is_not_null() | over.is_not_null()).then(MAX_AGE), under)
    return youngest, oldest


def parse_age_band(value: pl.Expr) -> pl.Expr:
    """The standard band of an age or of a band that fits inside one; else null."""
    youngest, oldest = age_bounds(value)
    ok = (youngest >= 0) & (youngest <= oldest) & (oldest <= MAX_AGE)
    return pl.when(ok & (band_of(youngest) == band_of(oldest))).then(band_of(youngest))


def parse_conveyed(value: pl.Expr) -> pl.Expr:
    """Y/N and 'Conveyed'/'See and treat' style values -> 'yes'/'no'; else null."""
    low = (value.str.replace(r"^(\d)\.0+$", "$1").str.to_lowercase()
           .str.replace_all(r"[^a-z0-9]+", " ").str.strip_chars())
    return (pl.when(low.is_in(CONVEYED_TRUE)).then(pl.lit("yes"))
            .when(low.is_in(CONVEYED_FALSE)).then(pl.lit("no")))


def context(table: Table) -> pl.Expr:
    """'category=C2; age_band=18-24; sex=male; conveyed=yes' from the columns present."""
    parts = [pl.lit(f"{key}=") + pl.col(f"__{key}")
             for key in ("category", "age_band", "sex", "conveyed")]
    text = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return pl.when(text.str.len_bytes() > 0).then(text)


def normalise(table: Table) -> pl.DataFrame:
    """The raw text columns plus `record` (the row as JSON) and parsed `__` columns."""
    on, at = parse_date(raw(table, "call_date"), table.excel)
    if "call_time" in table.columns:
        at = pl.coalesce(parse_time(raw(table, "call_time"), table.excel), at)
    category, weapon = complaint(raw(table, "chief_complaint"))
    frame = table.frame
    own = [c for c in frame.columns if c != "row_number"]
    work = frame.with_columns(
        pl.struct(own).struct.json_encode().alias("record"),
        raw(table, "incident_id").alias("__id"),
        on.alias("__on"),
        at.alias("__at"),
        category.alias("__type"),
        weapon.alias("__weapon"),
        response_category(raw(table, "category")).alias("__category"),
        parse_age_band(raw(table, "age_band")).alias("__age_band"),
        parse_sex(raw(table, "sex")).alias("__sex"),
        parse_conveyed(raw(table, "conveyed")).alias("__conveyed"),
        raw(table, "lsoa_code").str.to_uppercase().alias("__lsoa"),
        raw(table, "easting").cast(pl.Float64, strict=False).alias("__e"),
        raw(table, "northing").cast(pl.Float64, strict=False).alias("__n"),
        raw(table, "location_type").alias("__location_type"),
    )
    return work.with_columns(context(table).alias("__context"))


# ---------------------------------------------------------------------------------- checks


def checks(table: Table) -> list[Check]:
    lsoa_ok = pl.col("__lsoa").str.contains(LSOA_FORMAT)
    return (id_checks(table) + date_checks(table) + complaint_checks(table)
            + detail_checks(table) + location_checks(table, lsoa_ok, "incident"))


def id_checks(table: Table) -> list[Check]:
    own = table.columns["incident_id"]
    return [Check(pl.col("__id").is_null(), "incident_id", "incident id is empty",
                  f"give every call-out its CAD or incident number in '{own}'", NO_RECORD)]


def date_checks(table: Table) -> list[Check]:
    own = table.columns["call_date"]
    value, on = pl.col(own), pl.col("__on")
    fix = f"give the date in '{own}' as dd/mm/yyyy or yyyy-mm-dd (optionally with HH:MM)"
    checks = [
        Check(value.is_null(), "call_date", "call date is empty", fix, NO_RECORD),
        Check(value.is_not_null() & on.is_null(), "call_date", "call date is not a valid date",
              fix, value),
        Check(on > date.today(), "call_date", "call date is in the future",
              f"check the date in '{own}' (day and month the right way round?)", value),
        Check(on < EARLIEST, "call_date", "call date is before 1990",
              f"check the date in '{own}'; a year such as 0024 means the year was cut short",
              value),
    ]
    if "call_time" in table.columns:
        time = raw(table, "call_time")
        checks.append(Check(
            time.is_not_null() & parse_time(time, table.excel).is_null(), "call_time",
            "call time is not a valid time of day",
            f"give the time in '{table.columns['call_time']}' as HH:MM (24-hour), blank "
            "when unknown", time))
    return checks


def complaint_checks(table: Table) -> list[Check]:
    own = table.columns["chief_complaint"]
    value = pl.col(own)
    accepted = ", ".join(CATEGORIES)
    return [
        Check(value.is_null(), "chief_complaint", "chief complaint is empty",
              f"give the chief complaint or AMPDS determinant in '{own}'", NO_RECORD),
        Check(value.is_not_null() & pl.col("__type").is_null(), "chief_complaint",
              f"chief complaint is not assault-related (accepted: {accepted})",
              f"use an AMPDS card 4 or 27 determinant (e.g. 04D01, 27B01S) or a description "
              f"such as 'Assault', 'Sexual assault', 'Stab wound', 'Gunshot wound' or 'Other' "
              f"in '{own}'; send only assault-related call-outs", value),
    ]


def detail_checks(table: Table) -> list[Check]:
    """Age band, sex, response category and conveyance: present but not understood."""
    return [
        optional_check(table, "age_band", "__age_band",
                       "age is not a whole number of years (0-120) nor an age band",
                       f"give the age in years or one of the bands {', '.join(AGE_BANDS)} "
                       "(a band that straddles two of these, such as 15-19, cannot be used); "
                       "blank if not known", AGE_UNKNOWN),
        optional_check(table, "sex", "__sex", "sex is not one of the accepted values",
                       "use M, F, Other or Unknown; blank if not known"),
        optional_check(table, "category", "__category",
                       "response category is not C1, C2, C3 or C4",
                       "use C1, C2, C3 or C4 (Cat 1, Category 1 are understood); blank if not "
                       "known"),
        optional_check(table, "conveyed", "__conveyed", "conveyed is not Y or N",
                       "use Y (conveyed to hospital) or N (not conveyed); blank if not known",
                       FLAG_UNKNOWN),
    ]


def optional_check(table: Table, canonical: str, parsed: str, reason: str, fix: str,
                   unknown: tuple[str, ...] = ()) -> Check:
    """Quarantine a present value that does not parse (values in `unknown` are allowed)."""
    value = raw(table, canonical)
    own = table.columns.get(canonical, canonical)
    return Check(value.is_not_null() & pl.col(parsed).is_null()
                 & ~value.str.to_lowercase().is_in(unknown),
                 canonical, reason, f"{fix} (in '{own}')", value)


def duplicates(work: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Rows repeating an incident id already given on an earlier (loadable) row."""
    return repeated_rows(
        work, "__id", "incident_id", "incident id",
        f"give each call-out one row (not one per patient or per vehicle) and its own number "
        f"in '{table.columns['incident_id']}'; delete the repeated row")


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
        pl.col("__weapon").alias("weapon"),
        pl.col("__context").alias("context"),
    )
    return conform(events, EVENT_COLUMNS)
