"""Schools: suspensions and permanent exclusions (person-level) and persistent absence
(aggregate counts), from the local authority's education team or from schools.

One source, two kinds of file, told apart by their columns:

- **Suspensions and permanent exclusions**: one row per suspension or exclusion, from the
  LA's education management system, pseudonymised with `svduty pseudonymise` before it is
  sent (the pupil is a `person_key`, never a UPN or name). Each row becomes one event and one
  involvement (role "pupil"). The event is placed at the pupil's **home** LSOA, not at the
  school: it says where children excluded from school live.
- **Persistent absence**: DfE-style counts by school (URN) or by area (LSOA, MSOA, ward or
  local authority code) for an academic year or a term. Each row becomes one aggregate per
  measure ("persistent absence", and "severe absence" when given).

CSV (UTF-8, plain or gzipped) or XLSX, read by the shared table reader. Rows that cannot be
loaded are quarantined with the column, value, reason and fix. A newer file supersedes only
files of its own kind (the reader sets the scope): exclusions, absence by school, or absence
by area.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

import polars as pl

from svduty.sources.base import (
    AGGREGATE_COLUMNS,
    EVENT_COLUMNS,
    INVOLVEMENT_COLUMNS,
    LSOA_FORMAT,
    QUARANTINE_COLUMNS,
    TOKEN_FIELDS,
    Check,
    FileError,
    Parsed,
    conform,
    empty_quarantine,
    person_tokens,
    run_checks,
)
from svduty.sources.columns import (
    AGE_UNKNOWN,
    ColumnSpec,
    age_band,
    expected_columns,
    flag_is_bad,
    parse_age,
    parse_date,
    parse_flag,
    parse_sex,
)
from svduty.sources.tables import (
    EARLIEST,
    NO_RECORD,
    TOKEN_SPEC,
    Layout,
    Table,
    column_notes,
    period_of,
    raw,
    read_table,
)

URN = ColumnSpec(False, ("urn", "school urn", "establishment urn", "urn of school"))
SCHOOL_NAME = ColumnSpec(False, ("school", "establishment name", "name of school"))
EXCLUSION_SPEC: dict[str, ColumnSpec] = {
    "exclusion_id": ColumnSpec(False, (
        "exclusion id", "exclusion ref", "exclusion reference", "exclusion number",
        "suspension id", "suspension reference", "record id")),
    "person_key": ColumnSpec(True, (
        "person key", "pupil key", "pseudonym", "pupil pseudonym", "pseudonymised id",
        "person hash")),
    "start_date": ColumnSpec(True, (
        "exclusion start date", "suspension start date", "start", "exclusion date",
        "date of exclusion", "date excluded")),
    "category": ColumnSpec(True, (
        "exclusion category", "exclusion type", "type", "category of exclusion",
        "suspension type", "exclusion category code")),
    "reason": ColumnSpec(True, (
        "exclusion reason", "reason for exclusion", "reason code", "exclusion reason code",
        "reason category", "suspension reason")),
    "sessions": ColumnSpec(False, (
        "sessions lost", "days lost", "number of sessions", "sessions missed", "length",
        "length of exclusion", "duration")),
    "school_urn": URN,
    "school_name": SCHOOL_NAME,
    "age": ColumnSpec(False, (
        "age at start", "age at exclusion", "age at start of exclusion", "pupil age")),
    "sex": ColumnSpec(False, ("gender", "pupil sex")),
    "ethnicity": ColumnSpec(False, (
        "ethnic group", "ethnic origin", "ethnicity code", "ethnic code")),
    "sen_status": ColumnSpec(False, (
        "sen", "sen provision", "special educational needs", "sen status code", "send")),
    "fsm": ColumnSpec(False, (
        "free school meals", "fsm eligible", "fsm status", "fsm eligibility", "fsm6",
        "ever 6 fsm")),
    "home_lsoa": ColumnSpec(True, (
        "lsoa", "lsoa code", "home lsoa code", "pupil lsoa", "residence lsoa", "lsoa11cd",
        "lsoa21cd")),
    **TOKEN_SPEC,
}
ABSENCE_SPEC: dict[str, ColumnSpec] = {
    "time_period": ColumnSpec(True, (
        "academic year", "year", "period", "term", "time period", "reporting period")),
    "time_identifier": ColumnSpec(False, ("time identifier", "term within year")),
    "school_urn": URN,
    "school_name": SCHOOL_NAME,
    "area_code": ColumnSpec(False, (
        "lsoa", "lsoa code", "lsoa11cd", "lsoa21cd", "msoa", "msoa code", "ward", "ward code",
        "la code", "lad code", "new la code", "area", "geography code")),
    "area_name": ColumnSpec(False, ("la name", "ward name", "lsoa name", "geography name")),
    "enrolments": ColumnSpec(True, (
        "enrolment", "pupils", "headcount", "number of pupils", "pupil headcount",
        "pupil count")),
    "persistent_absentees": ColumnSpec(True, (
        "pa count", "persistently absent pupils", "persistent absence count",
        "enrolments pa 10 exact", "number persistently absent")),
    "severe_absentees": ColumnSpec(False, (
        "severely absent pupils", "sa count", "severe absence count",
        "enrolments pa 50 exact", "number severely absent")),
    "age_band": ColumnSpec(False, ("age group", "age")),
    "year_group": ColumnSpec(False, (
        "nc year", "national curriculum year", "year of education")),
}

EXCLUSIONS, ABSENCE = "suspensions-exclusions", "persistent-absence"
CATEGORIES = {
    "suspension": "suspension", "fixed term exclusion": "suspension",
    "fixed period exclusion": "suspension", "fixed term": "suspension",
    "fixed period": "suspension", "fixd": "suspension", "fte": "suspension",
    "permanent exclusion": "permanent exclusion", "permanent": "permanent exclusion",
    "perm": "permanent exclusion",
}
# DfE school census exclusion reason codes -> the full reason label.
REASONS = {
    "PP": "Physical assault against a pupil",
    "PA": "Physical assault against an adult",
    "VP": "Verbal abuse or threatening behaviour against a pupil",
    "VA": "Verbal abuse or threatening behaviour against an adult",
    "OW": "Use or threat of use of an offensive weapon or prohibited item",
    "DA": "Drug and alcohol related",
    "PD": "Persistent disruptive behaviour",
    "BU": "Bullying",
    "RA": "Racist abuse",
    "LG": "Abuse against sexual orientation and gender identity",
    "DS": "Abuse relating to disability",
    "SM": "Sexual misconduct",
    "DM": "Damage",
    "TH": "Theft",
    "MT": "Inappropriate use of social media or online technology",
    "OT": "Other",
}
WEAPON_REASON = REASONS["OW"]
SCHOOL_AGES = (4, 19)
KEY_FORMAT = r"^[0-9a-f]{64}$"
URN_FORMAT = r"^\d{6}$"
AREA_FORMAT = r"^[EW]0[1256789]\d{6}$"
AREA_PREFIXES = {"01": "lsoa", "02": "msoa", "05": "ward", "06": "lad", "07": "lad",
              "08": "lad", "09": "lad"}
SUPPRESSED = ("c", "x", "z", ":", "low", "u", "*")
MEASURES = {"persistent_absentees": "persistent absence", "severe_absentees": "severe absence"}
MEASURE_CONTEXT = {
    "persistent_absentees": "pupils missing 10% or more of possible sessions",
    "severe_absentees": "pupils missing 50% or more of possible sessions",
}
LOCATION_TYPE = "home LSOA (residence)"


class School:
    """Reader for school suspensions and exclusions (pseudonymised) and persistent absence."""

    name: ClassVar[str] = "school"
    description: ClassVar[str] = (
        "schools: suspensions and permanent exclusions (one row per exclusion, pseudonymised) "
        "or persistent absence counts by school or area")
    person_level_health: ClassVar[bool] = False

    def read(self, path: Path) -> Parsed:
        path = Path(path)
        kind, table = read_either(path)
        if kind == EXCLUSIONS:
            return read_exclusions(table)
        return read_absence(table)


# ---------------------------------------------------------------------------------- reading


def check_area_columns(path: Path, header: list[str], columns: dict[str, str]) -> None:
    """An absence file needs a school URN or an area code column."""
    if "school_urn" not in columns and "area_code" not in columns:
        raise FileError(path, f"no school or area column; found columns {header[:40]}",
                        "a school_urn column (6-digit URN) or an area code column (lsoa, "
                        "ward or la code)")


LAYOUTS = {
    EXCLUSIONS: Layout(
        spec=EXCLUSION_SPEC, sheet="exclusions", unit="suspension or exclusion",
        allowed=("the output of `svduty pseudonymise` (person_key and token columns) with "
                 "the exclusion columns; run it on the extract, send its output and delete "
                 "this copy")),
    ABSENCE: Layout(
        spec=ABSENCE_SPEC, sheet="absence", unit="school or area x period",
        allowed="counts only (no pupil-level columns)", groups=check_area_columns),
}
KIND_NAMES = {EXCLUSIONS: "suspensions and permanent exclusions",
              ABSENCE: "persistent absence counts"}


def read_either(path: Path) -> tuple[str, Table]:
    """The kind of school file and its table; FileError when the columns fit neither."""
    problems = []
    for kind, layout in LAYOUTS.items():
        try:
            return kind, read_table(path, layout)
        except FileError as exc:
            if not exc.problem.startswith("required column(s) missing"):
                raise
            problems.append(f"as {KIND_NAMES[kind]}: {exc.problem}")
    expected = " OR ".join(f"for {KIND_NAMES[k]}, {expected_columns(layout.spec)}"
                           for k, layout in LAYOUTS.items())
    raise FileError(path, "the columns fit neither kind of school file (" + "; ".join(problems)
                    + ")", expected)


def finish(work: pl.DataFrame, checks: list[Check],
           repeat: Repeat) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(loadable rows, quarantine lines): row checks, then repeats of earlier good rows."""
    lines = run_checks(work, checks)
    bad = lines.get_column("row_number").unique().implode()
    dupes = duplicates(work.filter(~pl.col("row_number").is_in(bad)), repeat)
    quarantine = pl.concat([lines, dupes]).sort("row_number", maintain_order=True)
    bad = quarantine.get_column("row_number").unique().implode()
    return work.filter(~pl.col("row_number").is_in(bad)), conform(quarantine,
                                                                   QUARANTINE_COLUMNS)


@dataclass(frozen=True)
class Repeat:
    """What makes a row a repeat: its `key` columns; the quarantine column and reason."""

    key: list[str]
    column: str
    reason: str  # with {} for the earlier row


def duplicates(work: pl.DataFrame, repeat: Repeat) -> pl.DataFrame:
    """Rows repeating the key of an earlier (loadable) row, naming that row."""
    key = repeat.key
    later = work.filter(~pl.struct(key).is_first_distinct())
    if later.height == 0:
        return empty_quarantine()
    first = work.filter(pl.struct(key).is_first_distinct()).select(
        *key, pl.col("row_number").alias("__first"))
    return later.join(first, on=key, how="left", nulls_equal=True).select(
        "row_number",
        pl.lit(repeat.column).alias("column"),
        pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator=" / ",
                      ignore_nulls=True).alias("value"),
        pl.format(repeat.reason, "__first").alias("reason"),
        pl.lit("delete the repeated row").alias("fix"),
        "record",
    )


# ------------------------------------------------------------------- suspensions, exclusions


def read_exclusions(table: Table) -> Parsed:
    work = normalise_exclusions(table)
    good, quarantine = finish(work, exclusion_checks(table), exclusion_repeat(table))
    good = good.with_columns(pl.coalesce("__id", built_id()).alias("__id"))
    events = exclusion_events(good)
    tokens = {f: own for f, own in table.columns.items() if f in TOKEN_FIELDS}
    return Parsed(
        events=events,
        quarantine=quarantine,
        rows_read=work.height,
        period=period_of(events.get_column("month"), work.get_column("__on")),
        scope=EXCLUSIONS,
        involvements=pupils(good),
        tokens=person_tokens(good.with_columns(pl.col("__key").alias("person_key")), tokens),
        notes=column_notes(table),
    )


def exclusion_repeat(table: Table) -> Repeat:
    if "exclusion_id" in table.columns:
        return Repeat(["__id"], "exclusion_id", "exclusion id is already given on row {}")
    return Repeat(["__key", "__on", "__category", "__reason"], "person_key",
                  "the same pupil, start date, category and reason are already given on "
                  "row {}")


def built_id() -> pl.Expr:
    """An id for a file without exclusion_id: person key, start date and row."""
    return pl.format("{}/{}/{}", pl.col("__key").str.slice(0, 16),
                     pl.col("__on").dt.strftime("%Y%m%d"), "row_number")


def normalise_exclusions(table: Table) -> pl.DataFrame:
    """Raw text columns, `record` (the row as JSON, a raw person key removed) and parsed `__`
    columns."""
    on, _ = parse_date(raw(table, "start_date"), table.excel)
    key = raw(table, "person_key").str.to_lowercase()
    frame = table.frame.with_columns(key.alias("__key"))
    return frame.with_columns(
        record(table),
        raw(table, "exclusion_id").alias("__id"),
        on.alias("__on"),
        category(raw(table, "category")).alias("__category"),
        reason(raw(table, "reason")).alias("__reason"),
        raw(table, "sessions").cast(pl.Float64, strict=False).alias("__sessions"),
        school_urn(raw(table, "school_urn")).alias("__urn"),
        parse_age(raw(table, "age")).alias("__age"),
        parse_sex(raw(table, "sex")).alias("__sex"),
        parse_flag(raw(table, "fsm")).alias("__fsm"),
        raw(table, "school_name").alias("__school_name"),
        raw(table, "sen_status").alias("__sen"),
        raw(table, "ethnicity").alias("__ethnicity"),
        raw(table, "home_lsoa").str.to_uppercase().alias("__lsoa"),
    )


def record(table: Table) -> pl.Expr:
    """The row's recognised columns as JSON; a person key that is not a token is removed."""
    own_key = table.columns["person_key"]
    fields = [pl.when(bad_key()).then(pl.lit("[removed]")).otherwise(pl.col(c)).alias(c)
              if c == own_key else pl.col(c) for c in table.columns.values()]
    return pl.struct(fields).struct.json_encode().alias("record")


def bad_key() -> pl.Expr:
    return pl.col("__key").is_not_null() & ~pl.col("__key").str.contains(KEY_FORMAT)


def words(value: pl.Expr) -> pl.Expr:
    """Lower case, '/' as 'or', '&' as 'and', letters only, no articles, single spaces."""
    text = (value.str.to_lowercase().str.replace_all("/", " or ").str.replace_all("&", " and ")
            .str.replace_all(r"[^a-z]+", " "))
    return text.str.replace_all(r"\b(a|an|the)\b", " ").str.replace_all(r"\s+", " ") \
        .str.strip_chars()


def category(value: pl.Expr) -> pl.Expr:
    """'Fixed-term exclusion' or 'FIXD' -> 'suspension'; 'PERM' -> 'permanent exclusion'."""
    return words(value).replace_strict(CATEGORIES, default=None, return_dtype=pl.String)


def reason(value: pl.Expr) -> pl.Expr:
    """A DfE reason code or label (any case, '/' for 'or') -> the full DfE label."""
    return words(value).replace_strict(reason_lookup(), default=None, return_dtype=pl.String)


def reason_lookup() -> dict[str, str]:
    """Normalised code or label -> DfE label."""
    labels = pl.DataFrame({"label": list(REASONS.values())})
    spelled = labels.select(words(pl.col("label")).alias("w"), "label")
    lookup = dict(spelled.iter_rows())
    return lookup | {code.lower(): label for code, label in REASONS.items()}


def school_urn(value: pl.Expr) -> pl.Expr:
    """A URN as text: '113500' (Excel's '113500.0' too)."""
    return value.str.replace(r"\.0+$", "")


def exclusion_checks(table: Table) -> list[Check]:
    return (person_checks(table) + start_checks(table) + category_checks(table)
            + detail_checks(table) + home_checks(table))


def person_checks(table: Table) -> list[Check]:
    own = table.columns["person_key"]
    checks = [
        Check(pl.col("__key").is_null(), "person_key", "person key is empty",
              f"give every row the pupil's person_key from `svduty pseudonymise` in '{own}'",
              NO_RECORD),
        Check(bad_key(), "person_key",
              "not a pseudonymous person key (64 lower-case hexadecimal characters): raw "
              "identifiers such as UPNs must never be sent",
              "run `svduty pseudonymise` on the extract before sending it and send its output; "
              "delete this copy",
              pl.format("[removed: {} characters]", pl.col("__key").str.len_chars())),
    ]
    if "exclusion_id" in table.columns:
        checks.append(Check(pl.col("__id").is_null(), "exclusion_id", "exclusion id is empty",
                            f"give every row its exclusion id in "
                            f"'{table.columns['exclusion_id']}'", NO_RECORD))
    return checks


def start_checks(table: Table) -> list[Check]:
    own = table.columns["start_date"]
    value, on = pl.col(own), pl.col("__on")
    fix = f"give the start date in '{own}' as dd/mm/yyyy or yyyy-mm-dd"
    return [
        Check(value.is_null(), "start_date", "start date is empty", fix, NO_RECORD),
        Check(value.is_not_null() & on.is_null(), "start_date",
              "start date is not a valid date", fix, value),
        Check(on > date.today(), "start_date", "start date is in the future",
              f"check the date in '{own}' (day and month the right way round?)", value),
        Check(on < EARLIEST, "start_date", "start date is before 1990",
              f"check the date in '{own}'; a year such as 0024 means the year was cut short",
              value),
    ]


def category_checks(table: Table) -> list[Check]:
    cat, why = table.columns["category"], table.columns["reason"]
    cats = "suspension (or fixed-term exclusion, FIXD) or permanent exclusion (PERM)"
    reasons = ", ".join(f"{c} ({label})" for c, label in REASONS.items())
    return [
        Check(pl.col(cat).is_null(), "category", "category is empty",
              f"give the category in '{cat}': {cats}", NO_RECORD),
        Check(pl.col(cat).is_not_null() & pl.col("__category").is_null(), "category",
              "category is not suspension or permanent exclusion",
              f"use {cats} in '{cat}'", pl.col(cat)),
        Check(pl.col(why).is_null(), "reason", "reason is empty",
              f"give the DfE reason in '{why}' (Other when none fits)", NO_RECORD),
        Check(pl.col(why).is_not_null() & pl.col("__reason").is_null(), "reason",
              "reason is not a DfE exclusion reason",
              f"use a DfE reason code or its label in '{why}': {reasons}", pl.col(why)),
    ]


def detail_checks(table: Table) -> list[Check]:
    """Sessions, URN, age, sex and free school meals, where the file has them."""
    cols, checks = table.columns, []
    if "sessions" in cols:
        own = pl.col(cols["sessions"])
        sessions = pl.col("__sessions")
        ok = (sessions.is_finite() & (sessions >= 0)).fill_null(False)
        checks.append(Check(
            own.is_not_null() & ~ok, "sessions",
            "sessions is not a number of sessions (0 or more)",
            f"give the sessions lost in '{cols['sessions']}' as a number, blank if not known",
            own))
    if "school_urn" in cols:
        checks.append(urn_check(table))
    if "age" in cols:
        own = pl.col(cols["age"])
        unknown = own.str.to_lowercase().is_in(AGE_UNKNOWN)
        checks.append(Check(
            own.is_not_null() & ~unknown & ~pl.col("__age").is_between(*SCHOOL_AGES)
            .fill_null(False), "age", "age is not a school age (whole years from 4 to 19)",
            f"give the pupil's age at the start date in whole years in '{cols['age']}', blank "
            "if not known", own))
    if "sex" in cols:
        own = pl.col(cols["sex"])
        checks.append(Check(
            own.is_not_null() & pl.col("__sex").is_null(), "sex",
            "sex is not one of M, F, U (male, female, unknown) or other",
            f"use M, F or U in '{cols['sex']}', blank if unknown", own))
    if "fsm" in cols:
        own = pl.col(cols["fsm"])
        checks.append(Check(flag_is_bad(own), "fsm", "free school meals is not Y, N or blank",
                            f"use Y or N in '{cols['fsm']}', blank when not known", own))
    return checks


def urn_check(table: Table) -> Check:
    own = pl.col(table.columns["school_urn"])
    return Check(own.is_not_null() & ~school_urn(own).str.contains(URN_FORMAT), "school_urn",
                 "not a school URN (6 digits)",
                 f"give the school's 6-digit unique reference number (URN, as on Get "
                 f"Information about Schools) in '{table.columns['school_urn']}'", own)


def home_checks(table: Table) -> list[Check]:
    own = pl.col(table.columns["home_lsoa"])
    return [
        Check(own.is_null(), "home_lsoa", "home LSOA is empty",
              "give the LSOA of the pupil's home address (look it up from the postcode before "
              "pseudonymising)", NO_RECORD),
        Check(own.is_not_null() & ~pl.col("__lsoa").str.contains(LSOA_FORMAT), "home_lsoa",
              "not an England or Wales LSOA code",
              "LSOA codes look like E01015023 (England) or W01000001 (Wales); give the code, "
              "not the LSOA name or the postcode", own),
    ]


def exclusion_events(rows: pl.DataFrame) -> pl.DataFrame:
    weapon = pl.when(pl.col("__reason") == WEAPON_REASON).then(pl.lit("other"))
    return conform(rows.select(
        pl.col("__id").alias("source_record_id"),
        "row_number",
        pl.lit(EXCLUSIONS).alias("scope"),
        pl.col("__on").dt.month_start().alias("month"),
        pl.col("__on").alias("occurred_on"),
        pl.col("__lsoa").alias("lsoa_code"),
        pl.lit(LOCATION_TYPE).alias("location_type"),
        pl.col("__category").alias("source_category"),
        weapon.otherwise(pl.lit(None, pl.String)).alias("weapon"),
        exclusion_context().alias("context"),
    ), EVENT_COLUMNS)


def exclusion_context() -> pl.Expr:
    """'reason=...; urn=...; sessions=...; school=...; sen=...; fsm=...' (parts given only)."""
    sessions = pl.col("__sessions").cast(pl.String).str.replace(r"\.0$", "")
    fsm = pl.when(pl.col("__fsm")).then(pl.lit("Y")).when(~pl.col("__fsm")).then(pl.lit("N"))
    parts = {"reason": pl.col("__reason"), "urn": pl.col("__urn"), "sessions": sessions,
             "school": pl.col("__school_name"), "sen": pl.col("__sen"), "fsm": fsm}
    return pl.concat_str([pl.lit(f"{name}=") + expr for name, expr in parts.items()],
                         separator="; ", ignore_nulls=True)


def pupils(rows: pl.DataFrame) -> pl.DataFrame:
    return conform(rows.select(
        pl.col("__id").alias("source_record_id"),
        "row_number",
        pl.col("__key").alias("person_key"),
        pl.lit("pupil").alias("role"),
        pl.col("__age").alias("age"),
        age_band(pl.col("__age")).alias("age_band"),
        pl.col("__sex").alias("sex"),
        pl.col("__ethnicity").alias("ethnicity"),
    ), INVOLVEMENT_COLUMNS)


# ------------------------------------------------------------------------ persistent absence


def read_absence(table: Table) -> Parsed:
    work = normalise_absence(table)
    repeat = Repeat(["__start", "__end", "__area_type", "__area", "__age_band",
                     "__year_group"], "school_urn" if "area_code" not in table.columns
                    else "area_code",
                    "the same school or area, period and breakdown are already given on "
                    "row {}")
    good, quarantine = finish(work, absence_checks(table), repeat)
    aggregates = absence_aggregates(good, table)
    starts = aggregates.get_column("period_start")
    ends = aggregates.get_column("period_end")
    if starts.len() == 0:
        starts, ends = work.get_column("__start").drop_nulls(), work.get_column("__end")
    return Parsed(
        events=pl.DataFrame(schema=EVENT_COLUMNS),
        quarantine=quarantine,
        rows_read=work.height,
        period=absence_period(starts, ends.drop_nulls()),
        scope=f"{ABSENCE}-{'school' if 'school_urn' in table.columns else 'area'}",
        aggregates=aggregates,
        notes=column_notes(table),
    )


def absence_period(starts: pl.Series, ends: pl.Series) -> tuple[date, date]:
    """Earliest period start to latest period end (this academic year when nothing parses)."""
    if starts.len() == 0 or ends.len() == 0:
        today = date.today()
        first = today.year if today.month >= 9 else today.year - 1
        return date(first, 9, 1), date(first + 1, 8, 31)
    return starts.min(), ends.max()


def normalise_absence(table: Table) -> pl.DataFrame:
    """Raw columns, `record`, the parsed period and area, and the counts as numbers."""
    frame = table.frame
    own = [c for c in frame.columns if c != "row_number"]
    text = pl.concat_str([raw(table, "time_period"), raw(table, "time_identifier")],
                         separator=" ", ignore_nulls=True)
    frame = frame.with_columns(pl.struct(own).struct.json_encode().alias("record"),
                               text.alias("__period_text"))
    periods = period_lookup(frame.get_column("__period_text"))
    urn = school_urn(raw(table, "school_urn"))
    area = raw(table, "area_code").str.to_uppercase().str.replace_all(" ", "")
    return frame.join(periods, on="__period_text", how="left").with_columns(
        pl.coalesce(urn, area).alias("__area"),
        pl.when(urn.is_not_null()).then(pl.lit("school"))
        .otherwise(area.str.slice(1, 2).replace_strict(AREA_PREFIXES, default=None))
        .alias("__area_type"),
        pl.coalesce(raw(table, "school_name"), raw(table, "area_name")).alias("__area_name"),
        raw(table, "age_band").alias("__age_band"),
        raw(table, "year_group").alias("__year_group"),
        *[pupil_count(raw(table, c)).alias(f"__{c}") for c in
          ("enrolments", "persistent_absentees", "severe_absentees")],
        *[suppressed(raw(table, c)).alias(f"__{c}_suppressed") for c in
          ("enrolments", "persistent_absentees", "severe_absentees")],
    )


def suppressed(value: pl.Expr) -> pl.Expr:
    """A cell the sender suppressed ('c', 'x', 'z', ':', 'low', ...)."""
    return value.str.to_lowercase().is_in(SUPPRESSED).fill_null(False)


def pupil_count(value: pl.Expr) -> pl.Expr:
    """A whole number of pupils, 0 or more ('25' or Excel's '25.0'); anything else null."""
    number = value.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite() & (number >= 0) & (number == number.floor())).then(number)


def period_lookup(texts: pl.Series) -> pl.DataFrame:
    """Each distinct period text -> its start, end and period type (null when unreadable)."""
    distinct = texts.drop_nulls().unique().to_list()
    parsed = [parse_period(t) or (None, None, None) for t in distinct]
    return pl.DataFrame({
        "__period_text": distinct,
        "__start": [p[0] for p in parsed],
        "__end": [p[1] for p in parsed],
        "__period_type": [p[2] for p in parsed],
    }, schema={"__period_text": pl.String, "__start": pl.Date, "__end": pl.Date,
               "__period_type": pl.String})


def parse_period(text: str) -> tuple[date, date, str] | None:
    """'202324', '2023/24', '2023-24' (1 Sep-31 Aug), 'Autumn 2023', '202324 Spring term'.

    Terms are taken as autumn = September-December, spring = January-March and summer =
    April-August. Two terms ('Autumn and spring term') give period type 'other'.
    """
    low = re.sub(r"[\s_]+", " ", text.lower()).strip()
    terms = re.findall(r"\b(autumn|spring|summer)\b", low)
    years = re.sub(r"\b(autumn|spring|summer|and|terms?|full|academic|year)\b", " ", low)
    years = re.sub(r"\s+", " ", years).strip()
    if re.fullmatch(r"\d{4}", years) and len(terms) == 1:
        calendar_year = int(years)
        first = calendar_year if terms[0] == "autumn" else calendar_year - 1
    else:
        found = re.fullmatch(r"(\d{4}) ?(?:/|-|to)? ?(\d{2}|\d{4})", years)
        if not found or not next_year(int(found[1]), found[2]):
            return None
        first = int(found[1])
    if not terms:
        return date(first, 9, 1), date(first + 1, 8, 31), "academic year"
    bounds = [term_bounds(t, first) for t in terms]
    kind = "school term" if len(set(terms)) == 1 else "other"
    return min(b[0] for b in bounds), max(b[1] for b in bounds), kind


def next_year(first: int, second: str) -> bool:
    """Whether '24' or '2024' is the year after `first`."""
    if len(second) == 4:
        return int(second) == first + 1
    return int(second) == (first + 1) % 100


def term_bounds(term: str, first: int) -> tuple[date, date]:
    """A term of the academic year starting in September of `first`."""
    if term == "autumn":
        return date(first, 9, 1), date(first, 12, 31)
    if term == "spring":
        return date(first + 1, 1, 1), date(first + 1, 3, 31)
    return date(first + 1, 4, 1), date(first + 1, 8, 31)


def absence_checks(table: Table) -> list[Check]:
    return period_checks(table) + area_checks(table) + count_checks(table)


def period_checks(table: Table) -> list[Check]:
    own = table.columns["time_period"]
    value = pl.col("__period_text")
    fix = (f"give the academic year in '{own}' as 202324, 2023/24 or 2023-24, or a term as "
           "'Autumn 2023'")
    return [
        Check(pl.col(own).is_null(), "time_period", "period is empty", fix, NO_RECORD),
        Check(pl.col(own).is_not_null() & pl.col("__start").is_null(), "time_period",
              "period is not an academic year or a school term", fix, value),
        Check(pl.col("__start") > date.today(), "time_period", "period is in the future",
              f"check the year in '{own}'", value),
    ]


def area_checks(table: Table) -> list[Check]:
    cols = table.columns
    area = raw(table, "area_code")
    where = "area_code" if "area_code" in cols else "school_urn"
    checks = [Check(pl.col("__area").is_null(), where,
                    "no school or area: the URN and the area code are empty",
                    "give the school's URN, or the code of the area counted", NO_RECORD)]
    if "school_urn" in cols:
        checks.append(urn_check(table))
    if "area_code" in cols:
        checks.append(Check(
            raw(table, "school_urn").is_null() & area.is_not_null()
            & ~pl.col("__area").str.contains(AREA_FORMAT), "area_code",
            "not an area code svduty can place (LSOA E01, MSOA E02, ward E05 or local "
            "authority E06-E09)",
            f"give the 9-character ONS code in '{cols['area_code']}' (e.g. E01015023, or "
            "E06000026 for a local authority: DfE files call it new_la_code, not the 3-digit "
            "old_la_code)", area))
    return checks


def count_checks(table: Table) -> list[Check]:
    cols, checks = table.columns, []
    for name in ("enrolments", "persistent_absentees", "severe_absentees"):
        if name not in cols:
            continue
        own = pl.col(cols[name])
        fix = (f"give the number of pupils in '{cols[name]}' as a whole number, or c where it "
               "is suppressed")
        if name != "severe_absentees":
            checks.append(Check(own.is_null(), name, f"{name} is empty", fix, NO_RECORD))
        checks.append(Check(
            own.is_not_null() & ~pl.col(f"__{name}_suppressed") & pl.col(f"__{name}").is_null(),
            name, f"{name} is not a whole number of pupils (0 or more)", fix, own))
    return checks + consistency_checks(table)


def consistency_checks(table: Table) -> list[Check]:
    """Absentees cannot outnumber enrolments; severe absentees are persistent absentees too."""
    cols = table.columns
    enrolled, persistent = pl.col("__enrolments"), pl.col("__persistent_absentees")
    fix = "check the counts: absentees are a subset of the pupils enrolled"
    both = pl.format("{} of {}", pl.col(cols["persistent_absentees"]), pl.col(cols["enrolments"]))
    checks = [Check(persistent > enrolled, "persistent_absentees",
                    "more persistent absentees than pupils enrolled", fix, both)]
    if "severe_absentees" in cols:
        severe = pl.col("__severe_absentees")
        own = pl.col(cols["severe_absentees"])
        checks += [
            Check(severe > enrolled, "severe_absentees",
                  "more severe absentees than pupils enrolled", fix,
                  pl.format("{} of {}", own, pl.col(cols["enrolments"]))),
            Check((severe > persistent) & ~(severe > enrolled).fill_null(False),
                  "severe_absentees",
                  "more severe absentees than persistent absentees",
                  "check the counts: every severely absent pupil (50% or more) is also "
                  "persistently absent (10% or more)",
                  pl.format("{} of {}", own, pl.col(cols["persistent_absentees"]))),
        ]
    return checks


def absence_aggregates(rows: pl.DataFrame, table: Table) -> pl.DataFrame:
    """One aggregate per row and measure given (a blank severe count gives no row)."""
    frames = []
    for name, measure in MEASURES.items():
        if name not in table.columns:
            continue
        given = pl.col(f"__{name}").is_not_null() | pl.col(f"__{name}_suppressed")
        frames.append(rows.filter(given).select(
            "row_number",
            pl.lit(measure).alias("measure"),
            pl.col("__start").alias("period_start"),
            pl.col("__end").alias("period_end"),
            pl.col("__period_type").alias("period_type"),
            pl.col("__area_type").alias("area_type"),
            pl.col("__area").alias("area_code"),
            pl.col("__area_name").alias("area_name"),
            pl.col("__year_group").alias("category"),
            pl.col("__age_band").alias("age_band"),
            pl.col(f"__{name}").alias("value"),
            pl.col(f"__{name}_suppressed").alias("suppressed"),
            pl.col("__enrolments").alias("denominator"),
            pl.lit(MEASURE_CONTEXT[name]).alias("context"),
        ))
    return conform(pl.concat(frames), AGGREGATE_COLUMNS).sort("row_number", maintain_order=True)
