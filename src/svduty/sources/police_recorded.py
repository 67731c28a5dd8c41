"""Force recorded-crime extracts: the file svduty asks police forces to send.

One row per crime x person involvement, crime columns repeated on each row of the crime (a
crime with nobody recorded has one row with the person columns empty). CSV (UTF-8, plain or
gzipped) or XLSX (the sheet named `crimes`, else the first sheet). Columns are matched by name,
ignoring case, spaces and punctuation, with the variants listed in `SPEC` and in
docs/data-formats.md.

Each crime becomes one event (from its first row that can be loaded) and each row with a role
becomes one involvement. Rows that cannot be loaded are quarantined with the column, value,
reason and fix. Whether an offence code is in the Home Office list is checked afterwards by the
ingest framework through :func:`validate_offence_codes`, against the warehouse's codes.
Columns not listed in `SPEC` are ignored: they are neither loaded nor kept in quarantine.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import ClassVar

import polars as pl

from svduty.sources import tables
from svduty.sources.base import (
    LSOA_FORMAT,
    QUARANTINE_COLUMNS,
    Check,
    FileError,
    Parsed,
    conform,
    empty_quarantine,
    quarantine_rows,
)
from svduty.sources.columns import (
    ColumnSpec,
    age_band,
    age_is_bad,
    flag_is_bad,
    missing_message,
    parse_age,
    parse_date,
    parse_flag,
    parse_sex,
    parse_time,
)
from svduty.sources.tables import EARLIEST, NO_RECORD, Layout, Table, column_notes, period_of

CRIME: dict[str, ColumnSpec] = {
    "crime_reference": ColumnSpec(True, (
        "crime ref", "crime reference", "crime number", "crime no", "crime id", "crime ref no",
        "crime reference number", "occurrence number", "occurrence no", "urn", "reference")),
    "offence_code": ColumnSpec(True, (
        "ho code", "home office code", "hoc", "ho offence code", "home office offence code",
        "crime code", "hoc code")),
    "offence_date": ColumnSpec(False, (
        "committed date", "date committed", "start date", "date from", "occurred date",
        "committed from date", "date", "incident date")),
    "offence_time": ColumnSpec(False, (
        "time", "committed time", "start time", "time committed", "time from", "occurred time",
        "committed from time")),
    "offence_datetime": ColumnSpec(False, (
        "offence date time", "committed date time", "committed datetime", "date time",
        "datetime", "occurred at")),
    "lsoa_code": ColumnSpec(False, (
        "lsoa", "lsoa11cd", "lsoa21cd", "lsoa11", "lsoa21", "lsoa 2011 code", "lsoa 2021 code")),
    "easting": ColumnSpec(False, ("x", "grid x", "eastings", "x coordinate", "os easting")),
    "northing": ColumnSpec(False, ("y", "grid y", "northings", "y coordinate", "os northing")),
    "location_type": ColumnSpec(False, ("location category", "premises type", "place type")),
    "outcome": ColumnSpec(False, ("outcome type", "last outcome", "outcome category")),
}
FLAGS: dict[str, ColumnSpec] = {
    "knife_sharp_instrument": ColumnSpec(False, (
        "knife", "knife flag", "knife/sharp instrument", "sharp instrument", "knife or sharp",
        "knife crime", "knife crime flag", "knife sharp instrument flag")),
    "firearm": ColumnSpec(False, ("firearm flag", "firearms", "gun", "firearm involved")),
    "domestic_abuse": ColumnSpec(False, (
        "domestic", "da flag", "domestic flag", "domestic abuse flag", "da")),
    "alcohol": ColumnSpec(False, ("alcohol related", "alcohol flag", "alcohol involved")),
    "county_lines": ColumnSpec(False, (
        "county lines flag", "exploitation", "cl flag", "cl", "county lines exploitation")),
    "hate": ColumnSpec(False, ("hate crime", "hate flag", "hate crime flag")),
    "night_time_economy": ColumnSpec(False, ("nte", "nte flag", "night time economy flag")),
}
PERSON: dict[str, ColumnSpec] = {
    "role": ColumnSpec(False, ("person role", "involvement", "involvement type", "person type")),
    "person_key": ColumnSpec(False, (
        "person key", "pseudonym", "person pseudonym", "pseudonymised id", "person hash")),
    "age": ColumnSpec(False, ("age at offence", "victim age", "age at time of offence",
                              "age at committed date")),
    "sex": ColumnSpec(False, ("gender", "person sex")),
    "ethnicity": ColumnSpec(False, ("ethnic group", "ethnic origin", "self defined ethnicity",
                                    "ethnicity code")),
}
SPEC: dict[str, ColumnSpec] = {**CRIME, **FLAGS, **PERSON}
# Flag column -> the event column it fills.
FLAG_EVENT = {"domestic_abuse": "domestic", "alcohol": "alcohol",
              "county_lines": "drugs_exploitation", "hate": "hate",
              "night_time_economy": "night_time_economy"}
ROLES = {
    "victim": "victim", "v": "victim", "aggrieved": "victim", "injured party": "victim",
    "suspect": "suspect", "s": "suspect", "accused": "suspect",
    "offender": "offender", "o": "offender", "perpetrator": "offender",
}
HO_CODE = r"^\d{1,3}[A-Z]?(\.\d{1,2})?$"
PERSON_KEY = r"^[0-9a-f]{32,128}$"
# Parsed columns that must agree across the rows of one crime -> the column named in quarantine.
CRIME_FIELDS = {
    "__code": "offence_code", "__on": "offence_date", "__at": "offence_time",
    "__lsoa": "lsoa_code", "__e": "easting", "__n": "northing",
    **{f"__{flag}": flag for flag in FLAGS},
    "__location_type": "location_type", "__outcome": "outcome",
}


class PoliceRecorded:
    """Reader for force recorded-crime extracts (CSV, CSV.gz or XLSX)."""

    name: ClassVar[str] = "police-recorded"
    description: ClassVar[str] = (
        "force recorded crime: one row per crime x person, Home Office offence codes")
    person_level_health: ClassVar[bool] = False

    def check_offence_codes(self, parsed: Parsed, known: set[str]) -> Parsed:
        """Quarantine crimes whose code is not in the Home Office list (ingest calls this)."""
        return validate_offence_codes(parsed, known)

    def read(self, path: Path) -> Parsed:
        path = Path(path)
        table = read_table(path)
        work = flag_problems(normalise(table), table)
        lines = pl.concat([problem_lines(work, table), conflicts(work, table)])
        bad_rows = lines.get_column("row_number").unique().implode()
        good = work.filter(~pl.col("__row_bad") & ~pl.col("row_number").is_in(bad_rows))
        event_rows, people, extra = split_good(good, table)
        events = to_events(event_rows)
        quarantine = pl.concat([lines, extra]).sort("row_number", maintain_order=True)
        return Parsed(
            events=events,
            quarantine=conform(quarantine, QUARANTINE_COLUMNS),
            rows_read=work.height,
            period=period_of(events.get_column("month"), work.get_column("__on")),
            involvements=to_involvements(people),
            notes=column_notes(table),
        )


# ---------------------------------------------------------------------------------- reading


def check_groups(path: Path, header: list[str], columns: dict[str, str]) -> None:
    """Columns required as alternatives: a date or date-time; an LSOA or a grid reference."""
    if "offence_date" not in columns and "offence_datetime" not in columns:
        raise FileError(path, missing_message(["offence_date"], header, SPEC),
                        "an offence_date column (or a single offence_datetime column)")
    grid = {"easting", "northing"} & set(columns)
    if "lsoa_code" not in columns and len(grid) < 2:
        have = f" (found only {grid.pop()})" if grid else ""
        raise FileError(path, f"no location columns{have}; found columns {header[:40]}",
                        "an lsoa_code column, or easting and northing (British National Grid), "
                        "or both")


LAYOUT = Layout(
    spec=SPEC, sheet="crimes", unit="crime x person",
    allowed=("person columns role, person_key (from `svduty pseudonymise`), age, sex and "
             "ethnicity only; delete the identifying columns and ask the sender to delete "
             "this copy"),
    groups=check_groups,
)


def read_table(path: Path) -> Table:
    """Read a CSV or Excel extract into text columns; FileError if it is not a usable table."""
    return tables.read_table(path, LAYOUT)


# ---------------------------------------------------------------------------- normalising


def normalise(table: Table) -> pl.DataFrame:
    """Add parsed `__` columns next to the raw text columns.

    Most columns hold few distinct values (crime columns repeat on every person row), so each
    parser runs once per distinct value and its results are mapped back onto the rows.
    """
    cols = table.columns

    def raw(canonical: str) -> pl.Expr:
        return pl.col(cols[canonical]) if canonical in cols else pl.lit(None, pl.String)

    frame = table.frame
    mapped = [expr for canonical, parsers in distinct_parsers(cols, table.excel).items()
              for expr in parse_distinct(frame, cols[canonical], parsers)]
    frame = frame.with_columns(mapped)
    defaults = {"__at": pl.lit(None, pl.Time), "__lsoa": pl.lit(None, pl.String),
                "__lsoa_ok": pl.lit(True), "__role": pl.lit(None, pl.String),
                "__age": pl.lit(None, pl.Int16), "__sex": pl.lit(None, pl.String),
                **{f"__{flag}": pl.lit(None, pl.Boolean) for flag in FLAGS}}
    return frame.with_columns(
        *[expr.alias(name) for name, expr in defaults.items() if name not in frame.columns],
        raw("crime_reference").alias("__ref"),
        raw("easting").cast(pl.Float64, strict=False).alias("__e"),
        raw("northing").cast(pl.Float64, strict=False).alias("__n"),
        raw("location_type").alias("__location_type"),
        raw("outcome").alias("__outcome"),
        raw("person_key").str.to_lowercase().alias("__key"),
        raw("ethnicity").alias("__ethnicity"),
    )


def distinct_parsers(cols: dict[str, str], excel: bool) -> dict[str, dict[str, pl.Expr]]:
    """canonical column -> {parsed column: parser of the raw text}."""
    def own(canonical: str) -> pl.Expr:
        return pl.col(cols[canonical])

    code = offence_code(own("offence_code"))
    parsers = {"offence_code": {"__code": code, "__code_ok": code.str.contains(HO_CODE)}}
    date_col = "offence_date" if "offence_date" in cols else "offence_datetime"
    on, at = parse_date(own(date_col), excel)
    parsers[date_col] = {"__on": on}
    if "offence_time" in cols:
        parsers["offence_time"] = {"__at": parse_time(own("offence_time"), excel)}
    elif date_col == "offence_datetime":
        parsers[date_col]["__at"] = at
    elif "offence_datetime" in cols:
        parsers["offence_datetime"] = {"__at": parse_date(own("offence_datetime"), excel)[1]}
    if "lsoa_code" in cols:
        lsoa = own("lsoa_code").str.to_uppercase()
        parsers["lsoa_code"] = {"__lsoa": lsoa, "__lsoa_ok": lsoa.str.contains(LSOA_FORMAT)}
    for flag in FLAGS.keys() & cols.keys():
        parsers[flag] = {f"__{flag}": parse_flag(own(flag)),
                         f"__{flag}_bad": flag_is_bad(own(flag))}
    person = {
        "role": {"__role": own("role").str.to_lowercase().replace_strict(
            ROLES, default=None, return_dtype=pl.String)} if "role" in cols else {},
        "age": {"__age": parse_age(own("age")), "__age_bad": age_is_bad(own("age"))}
        if "age" in cols else {},
        "sex": {"__sex": parse_sex(own("sex"))} if "sex" in cols else {},
    }
    return parsers | {k: v for k, v in person.items() if v}


def parse_distinct(frame: pl.DataFrame, column: str,
                   parsers: dict[str, pl.Expr]) -> list[pl.Expr]:
    """Run `parsers` on the distinct values of `column`; expressions mapping them onto rows."""
    lookup = frame.select(pl.col(column).unique().drop_nulls()).with_columns(
        expr.alias(name) for name, expr in parsers.items())
    keys = lookup.get_column(column)
    return [pl.col(column).replace_strict(keys, lookup.get_column(name), default=None)
            .alias(name) for name in parsers]


def offence_code(code: pl.Expr) -> pl.Expr:
    """Home Office code as written in the offence list: '008/01' -> '8.1', ' 08n' -> '8N'."""
    return (code.str.to_uppercase().str.replace_all(r"\s+", "").str.replace_all("/", ".")
            .str.replace(r"^0+(\d)", "$1").str.replace(r"\.0+(\d)", ".$1"))


def normalise_codes(codes: set[str]) -> list[str]:
    series = pl.Series("code", sorted(codes), dtype=pl.String)
    return series.to_frame().select(offence_code(pl.col("code")).unique()).to_series().to_list()


# ---------------------------------------------------------------------------------- checks


def flag_problems(work: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Add one Boolean column per check, plus `__crime_bad` and `__row_bad`."""
    crime, person = crime_checks(table), person_checks(table)
    names = [f"__check{i}" for i in range(len(crime) + len(person))]
    flags = [c.bad.fill_null(False).alias(n) for c, n in zip(crime + person, names,
                                                               strict=True)]
    return work.with_columns(flags).with_columns(
        pl.any_horizontal(pl.col(names[:len(crime)])).alias("__crime_bad"),
        pl.any_horizontal(pl.col(names)).alias("__row_bad"),
    )


def problem_lines(work: pl.DataFrame, table: Table) -> pl.DataFrame:
    """One quarantine line per failed check (a row may have several)."""
    flagged = work.filter("__row_bad")
    if flagged.height == 0:
        return empty_quarantine()
    flagged = flagged.with_columns(record(table))
    checks = crime_checks(table) + person_checks(table)
    return pl.concat([
        quarantine_rows(flagged, pl.col(f"__check{i}"), c.column, c.reason, c.fix, c.value)
        for i, c in enumerate(checks)
    ])


def record(table: Table) -> pl.Expr:
    """The row's recognised columns as JSON; a person key that is not a keyed hash is removed."""
    own_key = table.columns.get("person_key")
    fields = [
        pl.when(bad_key()).then(pl.lit("[removed]")).otherwise(pl.col(c)).alias(c)
        if c == own_key else pl.col(c) for c in table.columns.values()
    ]
    return pl.struct(fields).struct.json_encode().alias("record")


def bad_key() -> pl.Expr:
    return pl.col("__key").is_not_null() & ~pl.col("__key").str.contains(PERSON_KEY)


def crime_checks(table: Table) -> list[Check]:
    """Rules on the crime columns; a row failing one cannot carry its crime's event."""
    return (reference_checks(table) + date_checks(table)
            + tables.location_checks(table, pl.col("__lsoa_ok"), "offence")
            + flag_checks(table))


def reference_checks(table: Table) -> list[Check]:
    cols = table.columns
    code_raw = pl.col(cols["offence_code"])
    return [
        Check(pl.col("__ref").is_null(), "crime_reference", "crime reference is empty",
              f"give every row the crime reference it belongs to ('{cols['crime_reference']}')",
              NO_RECORD),
        Check(code_raw.is_null(), "offence_code", "offence code is empty",
              f"give the Home Office offence code in '{cols['offence_code']}' (e.g. 8N, 105A, "
              "4.1)", NO_RECORD),
        Check(code_raw.is_not_null() & ~pl.col("__code_ok"), "offence_code",
              "not a Home Office offence code (expected a number, an optional letter and an "
              "optional .sub-code, e.g. 8N, 5D, 105A, 4.1)",
              f"give the Home Office code in '{cols['offence_code']}', not a force or local "
              "code; in Excel format the column as text so 4.10 is not shortened to 4.1",
              code_raw),
    ]


def date_checks(table: Table) -> list[Check]:
    cols = table.columns
    date_col = "offence_date" if "offence_date" in cols else "offence_datetime"
    raw, on = pl.col(cols[date_col]), pl.col("__on")
    fix = (f"give the date in '{cols[date_col]}' as dd/mm/yyyy or yyyy-mm-dd"
           + (" (with HH:MM for a date and time)" if date_col == "offence_datetime" else ""))
    checks = [
        Check(raw.is_null(), date_col, "offence date is empty", fix, NO_RECORD),
        Check(raw.is_not_null() & on.is_null(), date_col, "offence date is not a valid date",
              fix, raw),
        Check(on > date.today(), date_col, "offence date is in the future",
              f"check the date in '{cols[date_col]}' (day and month the right way round?)", raw),
        Check(on < EARLIEST, date_col, "offence date is before 1990",
              f"check the date in '{cols[date_col]}'; a year such as 0024 means the year was "
              "cut short", raw),
    ]
    if "offence_time" in cols:
        time = pl.col(cols["offence_time"])
        checks.append(Check(
            time.is_not_null() & pl.col("__at").is_null(), "offence_time",
            "offence time is not a valid time of day",
            f"give the time in '{cols['offence_time']}' as HH:MM (24-hour), blank when unknown",
            time))
    return checks


def flag_checks(table: Table) -> list[Check]:
    return [
        Check(pl.col(f"__{flag}_bad"), flag, "flag value is not Y, N or blank",
              f"use Y or N in '{own}' (Yes/No, True/False and 1/0 also work), blank when "
              "not known", pl.col(own))
        for flag, own in table.columns.items() if flag in FLAGS
    ]


def person_checks(table: Table) -> list[Check]:
    """Rules on the person columns; a failing row is quarantined but its crime still loads."""
    cols = table.columns
    role = pl.col(cols["role"]) if "role" in cols else pl.lit(None, pl.String)
    people = [pl.col(cols[c]).is_not_null() for c in ("person_key", "age", "sex", "ethnicity")
              if c in cols]
    checks: list[Check] = []
    if "role" in cols:
        checks.append(Check(
            role.is_not_null() & pl.col("__role").is_null(), "role", "unknown role",
            f"use victim, suspect or offender in '{cols['role']}'", role))
    if people:
        checks.append(Check(
            role.is_null() & pl.any_horizontal(people), "role",
            "person details are given but the role is empty",
            "give the person's role (victim, suspect or offender), or clear the person columns "
            "if nobody is recorded", NO_RECORD))
    if "person_key" in cols:
        checks.append(Check(
            bad_key(), "person_key",
            "not a pseudonymous key (32 to 128 hexadecimal characters): raw identifiers "
            "must never be sent",
            "run `svduty pseudonymise` on the extract before sending it and send its output; "
            "delete this copy",
            pl.format("[removed: {} characters]", pl.col("__key").str.len_chars())))
    return checks + value_checks(cols)


def value_checks(cols: dict[str, str]) -> list[Check]:
    checks = []
    if "age" in cols:
        age = pl.col(cols["age"])
        checks.append(Check(
            pl.col("__age_bad"), "age",
            "age is not a whole number of years from 0 to 120",
            f"give the age at the offence in whole years in '{cols['age']}', blank if unknown",
            age))
    if "sex" in cols:
        sex = pl.col(cols["sex"])
        checks.append(Check(
            sex.is_not_null() & pl.col("__sex").is_null(), "sex",
            "sex is not one of M, F, U (male, female, unknown) or other",
            f"use M, F or U in '{cols['sex']}', blank if unknown", sex))
    return checks


def conflicts(work: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Rows whose crime fields differ from the first sound row of the same crime."""
    sound = work.filter(~pl.col("__crime_bad"))
    rows = sound.filter(pl.col("__ref").is_duplicated())
    if rows.height == 0:
        return empty_quarantine()
    first = rows.filter(pl.col("__ref").is_first_distinct()).select(
        "__ref", pl.col("row_number").alias("__first"),
        *[pl.col(n).alias(f"__first{n}") for n in CRIME_FIELDS])
    differs = {n: pl.col(n).ne_missing(pl.col(f"__first{n}")) for n in CRIME_FIELDS}
    hits = rows.join(first, on="__ref", how="left").filter(pl.any_horizontal(differs.values()))
    if hits.height == 0:
        return empty_quarantine()
    fields = crime_fields(table.columns)
    own = {n: table.columns.get(fields[n]) for n in fields}
    column = pl.coalesce([pl.when(d).then(pl.lit(fields[n])) for n, d in differs.items()])
    value = pl.coalesce([pl.when(d).then(pl.col(own[n]) if own[n] else NO_RECORD)
                         for n, d in differs.items()])
    listed = pl.concat_str([pl.when(d).then(pl.lit(fields[n]))
                            for n, d in differs.items()], separator=", ", ignore_nulls=True)
    return hits.select(
        "row_number", column.alias("column"), value.alias("value"),
        pl.format("conflicts with row {} of the same crime (different {})", "__first", listed)
        .alias("reason"),
        pl.lit("give every row of a crime the same crime details; if these are different "
               "crimes, give them different crime references").alias("fix"),
        record(table),
    )


def crime_fields(cols: dict[str, str]) -> dict[str, str]:
    """CRIME_FIELDS, naming the date-time column where the file has one instead."""
    fields = dict(CRIME_FIELDS)
    if "offence_date" not in cols:
        fields["__on"] = "offence_datetime"
    if "offence_time" not in cols and "offence_datetime" in cols:
        fields["__at"] = "offence_datetime"
    return fields


def split_good(good: pl.DataFrame, table: Table) -> tuple[pl.DataFrame, pl.DataFrame,
                                                          pl.DataFrame]:
    """(event rows, involvement rows, quarantine lines for rows that add nothing).

    The first good row of a crime carries its event; a later row with nobody in it repeats
    the crime, and a person listed twice with the same role is a duplicate.
    """
    person = ["__ref", "__key", "__role"]
    named = pl.col("__key").is_not_null() & pl.col("__role").is_not_null()
    good = good.with_columns(
        pl.col("__ref").is_first_distinct().alias("__event"),
        (named & ~pl.struct(person).is_first_distinct()).alias("__duplicate"))
    repeat = ~pl.col("__event") & pl.col("__role").is_null()
    extra = good.filter(pl.col("__duplicate") | repeat)
    events = good.filter("__event")
    people = good.filter(pl.col("__role").is_not_null() & ~pl.col("__duplicate"))
    if extra.height == 0:
        return events, people, empty_quarantine()
    extra = extra.join(events.select("__ref", pl.col("row_number").alias("__first")),
                       on="__ref", how="left").join(
        people.filter(named).select(*person, pl.col("row_number").alias("__same")),
        on=person, how="left")
    lines = extra.select(
        "row_number",
        pl.when(repeat).then(pl.lit("crime_reference")).otherwise(pl.lit("person_key"))
        .alias("column"),
        pl.when(repeat).then(pl.col("__ref")).otherwise(pl.col("__key")).alias("value"),
        pl.when(repeat).then(pl.format(
            "repeats a crime already loaded from row {} and names nobody (role is empty)",
            "__first")).otherwise(pl.format(
                "the same person and role is already listed for this crime in row {}",
                "__same")).alias("reason"),
        pl.lit("delete the repeated row").alias("fix"),
        record(table),
    )
    return events, people, lines


# ---------------------------------------------------------------------------------- output


def to_events(rows: pl.DataFrame) -> pl.DataFrame:
    knife, firearm = pl.col("__knife_sharp_instrument"), pl.col("__firearm")
    weapon = (pl.when(knife).then(pl.lit("knife or sharp")).when(firearm).then(pl.lit("firearm"))
              .when(~knife & ~firearm).then(pl.lit("none")).otherwise(pl.lit("unknown")))
    return rows.select(
        pl.col("__ref").alias("source_record_id"),
        "row_number",
        pl.lit(None, pl.String).alias("scope"),
        pl.col("__on").dt.month_start().alias("month"),
        pl.col("__on").alias("occurred_on"),
        pl.col("__on").dt.combine(pl.col("__at"), time_unit="us").alias("occurred_at"),
        pl.col("__lsoa").alias("lsoa_code"),
        pl.col("__e").alias("easting"),
        pl.col("__n").alias("northing"),
        pl.col("__location_type").alias("location_type"),
        pl.col("__code").alias("offence_code"),
        weapon.alias("weapon"),
        *[pl.col(f"__{flag}").alias(event) for flag, event in FLAG_EVENT.items()],
        pl.col("__outcome").alias("outcome"),
    )


def to_involvements(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        pl.col("__ref").alias("source_record_id"),
        "row_number",
        pl.col("__key").alias("person_key"),
        pl.col("__role").alias("role"),
        pl.col("__age").alias("age"),
        age_band(pl.col("__age")).alias("age_band"),
        pl.col("__sex").alias("sex"),
        pl.col("__ethnicity").alias("ethnicity"),
    )


def validate_offence_codes(parsed: Parsed, known: set[str]) -> Parsed:
    """Quarantine crimes (with their people) whose offence code is not in `known`.

    `known` is the warehouse's Home Office offence code list; codes on both sides are
    normalised the same way ('4/1' and '4.1' match). Returns `parsed` itself when every
    code is known.
    """
    codes = pl.Series(normalise_codes(known), dtype=pl.String).implode()
    unknown = parsed.events.filter(~pl.col("offence_code").is_in(codes))
    if unknown.height == 0:
        return parsed
    fix = pl.lit("check the code against the Home Office offence code list; if it is a new "
                 "code, import current reference data").alias("fix")
    lines = [unknown.select(
        "row_number", pl.lit("offence_code").alias("column"),
        pl.col("offence_code").alias("value"),
        pl.format("offence code {} is not in the Home Office offence code list",
                  "offence_code").alias("reason"), fix, NO_RECORD.alias("record"))]
    involvements = parsed.involvements
    if involvements is not None and involvements.height:
        ids = unknown.get_column("source_record_id").implode()
        gone = involvements.filter(
            pl.col("source_record_id").is_in(ids)
            & ~pl.col("row_number").is_in(unknown.get_column("row_number").implode())
        ).join(unknown.select("source_record_id", "offence_code"), on="source_record_id")
        lines.append(gone.select(
            "row_number", pl.lit("offence_code").alias("column"),
            pl.col("offence_code").alias("value"),
            pl.format("belongs to crime {} whose offence code {} is not in the Home Office "
                      "offence code list", "source_record_id", "offence_code").alias("reason"),
            fix, NO_RECORD.alias("record")))
        involvements = involvements.filter(~pl.col("source_record_id").is_in(ids))
    events = parsed.events.filter(pl.col("offence_code").is_in(codes))
    quarantine = pl.concat([conform(q, QUARANTINE_COLUMNS) for q in (parsed.quarantine, *lines)])
    period = (period_of(events.get_column("month"), events.get_column("month"))
              if events.height else parsed.period)
    return replace(parsed, events=events, involvements=involvements,
                   quarantine=quarantine.sort("row_number", maintain_order=True), period=period)
