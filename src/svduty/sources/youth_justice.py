"""Youth justice service (YJS) offences: one row per offence x young person, pseudonymised.

The YJS runs `svduty pseudonymise` on its case-management extract first, so the file carries a
`person_key` and linkage tokens, never names, dates of birth or PNC ids. CSV (UTF-8, plain or
gzipped) or XLSX (the sheet named `offences`, else the first), columns matched by name with
the variants in `SPEC` and docs/sources/youth-justice.md.

Each loaded row becomes one event (the offence, placed in the young person's **home** LSOA,
`location_type` "home LSOA (residence)") and one involvement (role "young person"). The
outcome is normalised to `OUTCOMES`; the first-time-entrant flag is taken from the file or, if
the file has no such column, derived (see :func:`derive_fte`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import ClassVar

import polars as pl

from svduty.sources.base import Check, Parsed
from svduty.sources.columns import ColumnSpec, flag_is_bad, parse_flag
from svduty.sources.people import (
    PERSON,
    Offence,
    Reader,
    assemble,
    check_header,
    check_offence_codes,
    date_checks,
    dates,
    offence_checks,
    offence_columns,
    person_checks,
    person_columns,
    record,
)
from svduty.sources.tables import TOKEN_SPEC, Layout, Table, raw, read_table, repeated_rows

SPEC: dict[str, ColumnSpec] = {
    "offence_id": ColumnSpec(False, (
        "offence ref", "offence reference", "offence number", "offence no", "yjs offence id",
        "offence key", "charge id")),
    **PERSON,
    "offence_date": ColumnSpec(True, (
        "date of offence", "offence start date", "committed date", "date committed",
        "offence committed date")),
    "offence_code": ColumnSpec(False, (
        "ho code", "home office code", "hoc", "home office offence code", "offence ho code")),
    "offence_description": ColumnSpec(False, (
        "offence", "offence type", "offence desc", "offence details", "offence title")),
    "outcome": ColumnSpec(False, (
        "outcome type", "disposal", "disposal type", "sentence", "outcome description",
        "court outcome", "final outcome")),
    "outcome_date": ColumnSpec(False, (
        "disposal date", "sentence date", "date of outcome", "date of disposal")),
    "first_time_entrant": ColumnSpec(False, ("fte", "fte flag", "first time entrant flag")),
    "age": ColumnSpec(True, (
        "age at offence", "age at time of offence", "age at offence date", "offence age")),
    **TOKEN_SPEC,
}
OFFENCE = Offence("offence_code", "offence_description")
AGES = (10, 17)
# Outcome -> the patterns (lower case) that name it, tried in this order.
OUTCOME_WORDS: dict[str, str] = {
    "youth conditional caution": r"conditional caution|\bycc\b",
    "youth caution": r"caution|\byc\b",
    "community resolution": r"community resolution|outcome 8\b|\bcr\b",
    "diversion": r"divert|diversion|triage|outcome 2[12]\b|deferred prosecution|turnaround|"
                 r"prevention",
    "referral order": r"referral order|\bro\b",
    "reparation order": r"reparation order",
    "youth rehabilitation order": r"rehabilitation order|\byro\b|intensive supervision",
    "detention and training order": r"detention and training|\bdto\b",
    "long-term detention": r"s\.?\s?(250|259|91|90)\b|section (250|259|91|90)\b|long[- ]term "
                           r"detention|extended sentence|detention for life",
    "fine or discharge": r"\bfine|discharge|compensation order",
}
OUTCOMES = (*OUTCOME_WORDS, "other")
# A youth caution, youth conditional caution or court sentence: what makes a first-time
# entrant (community resolutions and diversion do not).
SUBSTANTIVE = ("youth conditional caution", "youth caution", "referral order",
               "reparation order", "youth rehabilitation order", "detention and training order",
               "long-term detention", "fine or discharge")
AGE_FIX = ("give the young person's age on the offence date in whole years; the youth justice "
           "system deals with offences committed at 10 to 17 (an age outside that is usually "
           "the age today, or a typing error; offences committed at 18 or over are not sent)")


def check_columns(path: Path, header: list[str], columns: dict[str, str]) -> None:
    check_header(path, header, columns, OFFENCE)


LAYOUT = Layout(
    spec=SPEC, sheet="offences", unit="offence x young person",
    allowed=("the output of `svduty pseudonymise`: person_key and tokens with the offence, "
             "outcome, age, sex, ethnicity and home LSOA columns; delete the identifying "
             "columns and ask the sender to delete this copy"),
    groups=check_columns,
)


class YouthJustice:
    """Reader for youth justice service offence extracts (CSV, CSV.gz or XLSX)."""

    name: ClassVar[str] = "youth-justice"
    description: ClassVar[str] = (
        "youth justice offences: one row per offence x young person, pseudonymised, placed in "
        "the young person's home LSOA")
    person_level_health: ClassVar[bool] = False

    def check_offence_codes(self, parsed: Parsed, known: set[str]) -> Parsed:
        """Quarantine rows whose code is not in the Home Office list (ingest calls this)."""
        return check_offence_codes(parsed, known)

    def read(self, path: Path) -> Parsed:
        table = read_table(Path(path), LAYOUT)
        reader = Reader(checks=checks(table), dedupe=partial(dedupe, table),
                        events=partial(to_events, table), role="young person",
                        date="__offence_date")
        parsed = assemble(table, normalise(table), reader)
        if "first_time_entrant" not in table.columns:
            parsed.notes.append("no first_time_entrant column: derived as each young person's "
                                "earliest offence in this file with a substantive outcome")
        return parsed


def normalise(table: Table) -> pl.DataFrame:
    """The raw text columns plus `record` and parsed `__` columns."""
    fte = raw(table, "first_time_entrant")
    return table.frame.with_columns(
        raw(table, "offence_id").alias("__given_id"),
        *dates(table, ["offence_date", "outcome_date"]),
        *person_columns(table, "age"),
        *offence_columns(table, OFFENCE),
        outcome(raw(table, "outcome")).alias("__outcome"),
        parse_flag(fte).alias("__fte"),
        flag_is_bad(fte).alias("__fte_bad"),
    ).with_columns(record(table))


def outcome(value: pl.Expr) -> pl.Expr:
    """An outcome as written -> one of OUTCOMES ('other' when not recognised); blank -> null."""
    text = value.str.to_lowercase()
    expr = pl.when(text.is_null()).then(pl.lit(None, pl.String))
    for name, pattern in OUTCOME_WORDS.items():
        expr = expr.when(text.str.contains(pattern)).then(pl.lit(name))
    return expr.otherwise(pl.lit("other"))


def checks(table: Table) -> list[Check]:
    cols = table.columns
    rules = (person_checks(table, "age", AGES, AGE_FIX, age_required=True)
             + date_checks(table, "offence_date", "offence date")
             + offence_checks(table, OFFENCE))
    if "outcome_date" in cols:
        own = cols["outcome_date"]
        rules += date_checks(table, "outcome_date", "outcome date", required=False)
        rules.append(Check(
            pl.col("__outcome_date") < pl.col("__offence_date"), "outcome_date",
            "outcome date is before the offence date",
            f"check the dates in '{own}' and '{cols['offence_date']}'", pl.col(own)))
    if "first_time_entrant" in cols:
        own = cols["first_time_entrant"]
        rules.append(Check(pl.col("__fte_bad"), "first_time_entrant",
                           "flag value is not Y, N or blank",
                           f"use Y or N in '{own}', blank when not known", pl.col(own)))
    return rules


def dedupe(table: Table, work: pl.DataFrame) -> pl.DataFrame:
    """A repeated offence id, or (without ids) a row repeating an earlier row exactly."""
    if "offence_id" in table.columns:
        return repeated_rows(work, "__given_id", "offence_id", "offence id",
                          "give each young person's offence one row and its own id; delete "
                          "the repeated row")
    return repeated_rows(work, "record", "person_key", "the same offence (every column equal)",
                      "delete the repeated row; if these are two offences, send the "
                      "offence_id column", value=pl.col("__key"))


def to_events(table: Table, rows: pl.DataFrame) -> pl.DataFrame:
    """Record id and context (FTE and outcome date); FTE from the file, else derived."""
    ordinal = pl.int_range(1, pl.len() + 1).over("__key", "__offence_date")
    built = pl.format("{}:{}:{}", "__key", pl.col("__offence_date").dt.to_string("%Y-%m-%d"),
                      ordinal)
    fte = (pl.col("__fte") if "first_time_entrant" in table.columns else derive_fte(rows))
    flag = pl.when(fte).then(pl.lit("Y")).when(~fte).then(pl.lit("N"))
    basis = (pl.lit(None, pl.String) if "first_time_entrant" in table.columns
             else pl.lit("fte_basis=derived"))
    return rows.with_columns(
        pl.coalesce("__given_id", built).alias("__id"),
        pl.concat_str([
            pl.format("fte={}", flag), basis,
            pl.format("outcome_date={}", pl.col("__outcome_date").dt.to_string("%Y-%m-%d")),
        ], separator="; ", ignore_nulls=True).replace("", None).alias("__context"),
    )


def derive_fte(rows: pl.DataFrame) -> pl.Expr:
    """True for each young person's earliest offence in the file with a substantive outcome
    (ties: earlier outcome date, then earlier row); False for their other offences; null
    where the outcome is not yet known."""
    substantive = rows.filter(pl.col("__outcome").is_in(SUBSTANTIVE)).sort(
        "__offence_date", "__outcome_date", "row_number", nulls_last=True)
    first = substantive.unique("__key", keep="first").get_column("row_number")
    return (pl.when(pl.col("__outcome").is_null()).then(pl.lit(None, pl.Boolean))
            .otherwise(pl.col("row_number").is_in(first.implode())))
