"""What the person-level partner readers share (youth justice, probation).

Their extracts have one row per person x offence or supervision period, made pseudonymous by
`svduty pseudonymise` first: a 64-hex `person_key`, linkage tokens, age, sex, ethnicity and
the person's **home** LSOA (where they live, not where anything happened). This module holds
the person, place and offence columns, their parsing and checks, and the assembly of one
`Parsed` (one event and one involvement per loaded row, plus the linkage tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import polars as pl

from svduty.geography import normalise_offence_code
from svduty.sources.base import (
    EVENT_COLUMNS,
    INVOLVEMENT_COLUMNS,
    LSOA_FORMAT,
    QUARANTINE_COLUMNS,
    Check,
    FileError,
    Parsed,
    conform,
    person_tokens,
    run_checks,
)
from svduty.sources.columns import (
    ColumnSpec,
    age_band,
    age_is_bad,
    normalise_name,
    parse_age,
    parse_date,
    parse_sex,
)
from svduty.sources.tables import (
    EARLIEST,
    NO_RECORD,
    Table,
    column_notes,
    period_of,
    raw,
)

PERSON_KEY = r"^[0-9a-f]{64}$"
HOME_PLACE = "home LSOA (residence)"
HO_CODE = r"^\d{1,3}[A-Z]?(\.\d{1,2})?$"
PERSON: dict[str, ColumnSpec] = {
    "person_key": ColumnSpec(True, (
        "person key", "pseudonym", "person pseudonym", "pseudonymised id", "person hash")),
    "sex": ColumnSpec(False, ("gender", "person sex")),
    "ethnicity": ColumnSpec(False, ("ethnic group", "ethnic origin", "self defined ethnicity",
                                    "ethnicity code")),
    "home_lsoa": ColumnSpec(True, (
        "lsoa", "lsoa code", "home lsoa code", "residence lsoa", "lsoa of residence",
        "address lsoa", "lsoa11cd", "lsoa21cd", "home lsoa 2011", "home lsoa 2021")),
}
# Local person ids that `svduty pseudonymise` does not know by these names: sent raw, they
# identify the person, so the file is refused (rename the column `person id` first).
LOCAL_IDS = frozenset({
    "crn", "casereferencenumber", "nomisid", "nomisnumber", "prisonnumber", "prisonerno",
    "bookingnumber", "cro", "cronumber", "ypid", "youngpersonid", "childid", "personid",
    "localpersonid", "clientid", "nominalid", "subjectid", "nominalnumber", "clientnumber",
    "nominalref", "postcode", "homepostcode", "address", "homeaddress",
})
# Broad offence groups (the Home Office offence groups, shortened) from the code's number.
CODE_GROUPS: dict[str, tuple[int, ...]] = {
    "violence against the person": (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 36, 104, 105,
                                     106),
    "sexual offences": (16, 17, 18, 19, 20, 21, 22, 23, 70, 71, 72, 73, 74, 88),
    "robbery": (34,),
    "theft": (28, 29, 30, 31, 35, 37, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 126),
    "criminal damage": (56, 57, 58),
    "public order": (9, 62, 63, 64, 65, 66),
    "possession of weapons": (10, 81, 90),
    "drug offences": (92,),
}
# The same groups from an offence description, tried in this order (first match wins).
WORD_GROUPS: dict[str, str] = {
    "robbery": r"\brob(bery|bed)?\b|\bmugg",
    "sexual offences": r"\brape\b|sexual|indecen|voyeur|exposure|grooming",
    "possession of weapons": (r"possess\w*.*\b(knife|knives|blade|bladed|weapon|firearm|gun|"
                              r"sharp|offensive)|\b(carry\w*|having)\b.*\b(knife|blade|bladed|"
                              r"weapon|article)|offensive weapon|threaten\w* with"),
    "drug offences": r"\bdrugs?\b|cannabis|cocaine|heroin|controlled substance|\bclass [abc]\b",
    "public order": r"public order|affray|violent disorder|\briot|fear.*alarm|alarm.*distress",
    "violence against the person": (
        r"assault|wound|\bgbh\b|\babh\b|grievous|bodily harm|murder|manslaughter|"
        r"threat\w* to kill|harass|stalk|kidnap|battery|malicious comm|cruelty|"
        r"strangulation|suffocation|\bviolen"),
    "criminal damage": r"damage|arson|graffiti",
    "theft": r"theft|\bsteal|\bstole|burglary|shoplift|taking.*vehicle|\btwoc\b|handling",
}
KNIFE = r"knife|knives|blade|bladed|sharp|stab|machete|\bpoint(ed)? article"
FIREARM = r"firearm|\bguns?\b|pistol|shotgun|rifle"
KNIFE_CODES = ("10D", "90")
FIREARM_CODES = ("10A", "10B", "81")


@dataclass(frozen=True)
class Offence:
    """The canonical names of a reader's offence code and description columns."""

    code: str
    description: str


# ---------------------------------------------------------------------------- the header


def raw_identifier_columns(header: list[str]) -> list[str]:
    """Header names that are raw identifiers `svduty pseudonymise` would have replaced."""
    from svduty.privacy.pseudonymise import DROPPED, IDENTIFIERS
    from svduty.sources.columns import alias_index

    raw_names = LOCAL_IDS | {normalise_name(n) for n in DROPPED} | set(alias_index(IDENTIFIERS))
    return [h for h in header if h and normalise_name(h) in raw_names]


def check_header(path: Path, header: list[str], columns: dict[str, str],
                 offence: Offence) -> None:
    """No raw identifier columns; an offence code or description column (or both)."""
    found = raw_identifier_columns(header)
    if found:
        raise FileError(
            path, f"the file has columns that identify people directly ({', '.join(found)}); "
            "raw identifiers must never be sent, and nothing from this file was loaded",
            "the output of `svduty pseudonymise` (person_key and tokens); rename a local id "
            "such as CRN or YP ID to 'person id' before pseudonymising, and ask the sender to "
            "delete this copy")
    if offence.code not in columns and offence.description not in columns:
        raise FileError(
            path, f"no offence columns; found columns {header[:40]}",
            f"a {offence.code} column (Home Office offence code), or {offence.description}, "
            "or both")


# ---------------------------------------------------------------------------- normalising


def person_columns(table: Table, age: str) -> list[pl.Expr]:
    """Parsed person and place columns: __key, __age, __sex, __ethnicity, __lsoa."""
    age_raw = raw(table, age)
    return [
        raw(table, "person_key").str.to_lowercase().alias("__key"),
        parse_age(age_raw).alias("__age"),
        age_is_bad(age_raw).alias("__age_bad"),
        parse_sex(raw(table, "sex")).alias("__sex"),
        raw(table, "ethnicity").alias("__ethnicity"),
        raw(table, "home_lsoa").str.to_uppercase().str.replace_all(r"\s", "").alias("__lsoa"),
    ]


def offence_columns(table: Table, offence: Offence) -> list[pl.Expr]:
    """Parsed offence columns: __code (normalised), __group and __weapon."""
    code = offence_code(raw(table, offence.code))
    text = raw(table, offence.description).str.to_lowercase()
    return [
        code.alias("__code"),
        pl.coalesce(code_group(code), word_group(text),
                    pl.when(code.is_not_null() | text.is_not_null()).then(pl.lit("other")))
        .alias("__group"),
        weapon(code, text).alias("__weapon"),
    ]


def offence_code(value: pl.Expr) -> pl.Expr:
    """Codes in the warehouse's form ('008N' -> '8N', '4/1' -> '4.1'); null stays null."""
    def normalise(series: pl.Series) -> pl.Series:
        unique = series.drop_nulls().unique()
        if unique.is_empty():
            return series.cast(pl.String)
        codes = pl.Series([normalise_offence_code(v) for v in unique.to_list()], dtype=pl.String)
        return series.replace_strict(unique, codes, default=None, return_dtype=pl.String)

    return value.map_batches(normalise, return_dtype=pl.String)


def code_group(code: pl.Expr) -> pl.Expr:
    """The broad group of a well-formed Home Office code (37.1 is violence, 37.2 theft)."""
    number = code.str.extract(r"^(\d+)").cast(pl.Int32, strict=False)
    expr = pl.when(code.is_null() | ~code.str.contains(HO_CODE)).then(pl.lit(None, pl.String)).when(
        code == "37.1").then(pl.lit("violence against the person"))
    for group, numbers in CODE_GROUPS.items():
        expr = expr.when(number.is_in(numbers)).then(pl.lit(group))
    return expr.otherwise(pl.lit("other"))


def word_group(text: pl.Expr) -> pl.Expr:
    """The broad group named by an offence description; null when none is recognised."""
    expr = pl.when(text.is_null()).then(pl.lit(None, pl.String))
    for group, pattern in WORD_GROUPS.items():
        expr = expr.when(text.str.contains(pattern)).then(pl.lit(group))
    return expr.otherwise(pl.lit(None, pl.String))


def weapon(code: pl.Expr, text: pl.Expr) -> pl.Expr:
    """'knife or sharp' or 'firearm' from the description (or a weapon code), else null."""
    return (pl.when(text.str.contains(KNIFE) | code.is_in(KNIFE_CODES))
            .then(pl.lit("knife or sharp"))
            .when(text.str.contains(FIREARM) | code.is_in(FIREARM_CODES))
            .then(pl.lit("firearm"))
            .otherwise(pl.lit(None, pl.String)))


def record(table: Table) -> pl.Expr:
    """The row's recognised columns as JSON; a person key that is not a token is removed."""
    own_key = table.columns["person_key"]
    fields = [pl.when(bad_key()).then(pl.lit("[removed]")).otherwise(pl.col(c)).alias(c)
              if c == own_key else pl.col(c) for c in table.columns.values()]
    return pl.struct(fields).struct.json_encode().alias("record")


def bad_key() -> pl.Expr:
    return pl.col("__key").is_not_null() & ~pl.col("__key").str.contains(PERSON_KEY)


# ---------------------------------------------------------------------------------- checks


def person_checks(table: Table, age: str, ages: tuple[int, int], age_fix: str,
                  age_required: bool = False) -> list[Check]:
    """Key, age (whole years within `ages`), sex and home LSOA rules."""
    own = table.columns
    key_fix = ("run `svduty pseudonymise` on the extract before sending it and send its "
               "output; delete this copy")
    checks = [
        Check(pl.col("__key").is_null(), "person_key", "person key is empty",
              f"give every row the person_key made by `svduty pseudonymise` in "
              f"'{own['person_key']}'", NO_RECORD),
        Check(bad_key(), "person_key",
              "not a pseudonymous key (64 lower-case hexadecimal characters from `svduty "
              "pseudonymise`): raw identifiers must never be sent", key_fix,
              pl.format("[removed: {} characters]", pl.col("__key").str.len_chars())),
    ]
    if age in own:
        checks += age_checks(own[age], age, ages, age_fix, age_required)
    if "sex" in own:
        sex = pl.col(own["sex"])
        checks.append(Check(
            sex.is_not_null() & pl.col("__sex").is_null(), "sex",
            "sex is not one of M, F, U (male, female, unknown) or other",
            f"use M, F or U in '{own['sex']}', blank if unknown", sex))
    lsoa = pl.col(own["home_lsoa"])
    checks.append(Check(
        lsoa.is_not_null() & ~pl.col("__lsoa").str.contains(LSOA_FORMAT), "home_lsoa",
        "not an England or Wales LSOA code",
        f"give the LSOA code of the person's home address in '{own['home_lsoa']}' (e.g. "
        "E01015023), not a postcode or an LSOA name; blank if of no fixed abode", lsoa))
    return checks


def age_checks(own: str, age: str, ages: tuple[int, int], fix: str,
               required: bool) -> list[Check]:
    value, years = pl.col(own), pl.col("__age")
    low, high = ages
    checks = [
        Check(pl.col("__age_bad"), age, "age is not a whole number of years",
              f"give the age in whole years in '{own}'", value),
        Check(~years.is_between(low, high), age, f"age is outside {low} to {high}", fix, value),
    ]
    if required:
        checks.append(Check(years.is_null() & ~pl.col("__age_bad"), age, "age is empty",
                            f"give the age in whole years in '{own}'", NO_RECORD))
    return checks


def date_checks(table: Table, column: str, what: str, required: bool = True) -> list[Check]:
    """Empty (when required), not a date, in the future, before 1990; parsed in `__<column>`."""
    own = table.columns[column]
    value, on = pl.col(own), pl.col(f"__{column}")
    fix = f"give the date in '{own}' as dd/mm/yyyy or yyyy-mm-dd"
    checks = [
        Check(value.is_not_null() & on.is_null(), column, f"{what} is not a valid date", fix,
              value),
        Check(on > date.today(), column, f"{what} is in the future",
              f"check the date in '{own}' (day and month the right way round?)", value),
        Check(on < EARLIEST, column, f"{what} is before 1990",
              f"check the date in '{own}'; a year such as 0024 means the year was cut short",
              value),
    ]
    if required:
        checks.insert(0, Check(value.is_null(), column, f"{what} is empty", fix, NO_RECORD))
    return checks


def offence_checks(table: Table, offence: Offence) -> list[Check]:
    """An offence code or description on every row; a code in Home Office form."""
    code_own = table.columns.get(offence.code)
    given = [pl.col(c).is_not_null() for c in (code_own, table.columns.get(offence.description))
             if c]
    names = " or ".join(f"'{table.columns[c]}'" for c in (offence.code, offence.description)
                        if c in table.columns)
    checks = [Check(~pl.any_horizontal(given), offence.code,
                    "no offence: the offence code and description are empty",
                    f"give the Home Office offence code or the offence in {names}", NO_RECORD)]
    if code_own:
        code_raw = pl.col(code_own)
        checks.append(Check(
            code_raw.is_not_null() & ~pl.col("__code").str.contains(HO_CODE), offence.code,
            "not a Home Office offence code (expected a number, an optional letter and an "
            "optional .sub-code, e.g. 8N, 5D, 105A, 4.1)",
            f"give the Home Office code in '{code_own}', not a court (CJS) or local code; in "
            "Excel format the column as text so 4.10 is not shortened to 4.1; or leave it "
            "blank and give the offence description", code_raw))
    return checks


# -------------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class Reader:
    """How one person-level reader turns checked rows into events.

    `checks`: the row rules; `dedupe`: quarantine lines for repeats among rows that passed;
    `events`: adds `__id` (the record id), `__outcome` and `__context` to the loadable rows;
    `role`: the involvement's role; `date`: the parsed date that places an event in a month.
    """

    checks: list[Check]
    dedupe: Callable[[pl.DataFrame], pl.DataFrame]
    events: Callable[[pl.DataFrame], pl.DataFrame]
    role: str
    date: str


def assemble(table: Table, work: pl.DataFrame, reader: Reader) -> Parsed:
    """Check, de-duplicate and build events, involvements and tokens for one file."""
    lines = run_checks(work, reader.checks)
    bad = lines.get_column("row_number").unique().implode()
    dupes = reader.dedupe(work.filter(~pl.col("row_number").is_in(bad)))
    quarantine = pl.concat([lines, conform(dupes, QUARANTINE_COLUMNS)]).sort(
        "row_number", maintain_order=True)
    bad = quarantine.get_column("row_number").unique().implode()
    good = reader.events(work.filter(~pl.col("row_number").is_in(bad)))
    events = conform(good.select(
        pl.col("__id").alias("source_record_id"),
        "row_number",
        pl.col(reader.date).dt.month_start().alias("month"),
        pl.col(reader.date).alias("occurred_on"),
        pl.col("__lsoa").alias("lsoa_code"),
        pl.lit(HOME_PLACE).alias("location_type"),
        pl.col("__code").alias("offence_code"),
        pl.col("__group").alias("source_category"),
        pl.col("__weapon").alias("weapon"),
        pl.col("__outcome").alias("outcome"),
        pl.col("__context").alias("context"),
    ), EVENT_COLUMNS)
    return Parsed(
        events=events,
        quarantine=conform(quarantine, QUARANTINE_COLUMNS),
        rows_read=work.height,
        period=period_of(events.get_column("month"), work.get_column(reader.date)),
        involvements=involvements(good, reader.role),
        tokens=person_tokens(good.with_columns(pl.col("__key").alias("person_key")),
                             table.columns),
        notes=column_notes(table),
    )


def involvements(rows: pl.DataFrame, role: str) -> pl.DataFrame:
    return conform(rows.select(
        pl.col("__id").alias("source_record_id"),
        "row_number",
        pl.col("__key").alias("person_key"),
        pl.lit(role).alias("role"),
        pl.col("__age").alias("age"),
        age_band(pl.col("__age")).alias("age_band"),
        pl.col("__sex").alias("sex"),
        pl.col("__ethnicity").alias("ethnicity"),
    ), INVOLVEMENT_COLUMNS)


def dates(table: Table, columns: list[str]) -> list[pl.Expr]:
    """`__<column>`: each named date column parsed (null when absent or unreadable)."""
    return [parse_date(raw(table, c), table.excel)[0].alias(f"__{c}") for c in columns]


def check_offence_codes(parsed: Parsed, known: set[str]) -> Parsed:
    """Quarantine rows whose offence code is not in `known` (the warehouse's Home Office
    list), with their involvement and event. Returns `parsed` itself when all are known."""
    codes = pl.Series(sorted({normalise_offence_code(c) for c in known}), dtype=pl.String).implode()
    unknown = parsed.events.filter(pl.col("offence_code").is_not_null()
                                   & ~pl.col("offence_code").is_in(codes))
    if unknown.height == 0:
        return parsed
    rows = unknown.get_column("row_number").implode()
    lines = unknown.select(
        "row_number", pl.lit("offence_code").alias("column"),
        pl.col("offence_code").alias("value"),
        pl.format("offence code {} is not in the Home Office offence code list",
                  "offence_code").alias("reason"),
        pl.lit("check the code against the Home Office offence code list (not a court CJS "
               "code); or leave it blank and give the offence description").alias("fix"),
        NO_RECORD.alias("record"))
    events = parsed.events.filter(~pl.col("row_number").is_in(rows))
    people = parsed.involvements
    if people is not None:
        people = people.filter(~pl.col("row_number").is_in(rows))
    quarantine = pl.concat([parsed.quarantine, conform(lines, QUARANTINE_COLUMNS)])
    period = (period_of(events.get_column("month"), events.get_column("month"))
              if events.height else parsed.period)
    return replace(parsed, events=events, involvements=people, period=period,
                   quarantine=quarantine.sort("row_number", maintain_order=True))
