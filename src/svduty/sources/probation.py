"""Probation supervision periods: one row per person x period under supervision, pseudonymised.

The Probation Service runs `svduty pseudonymise` on its extract first, so the file carries a
`person_key` and linkage tokens, never names, dates of birth, CRNs or PNC ids. CSV (UTF-8,
plain or gzipped) or XLSX (the sheet named `supervision`, else the first), columns matched by
name with the variants in `SPEC` and docs/sources/probation.md.

Each loaded row becomes one event (the supervision period, in the month it started, placed in
the person's **home** LSOA, `location_type` "home LSOA (residence)") and one involvement (role
"person on probation"). The index offence gives the event's offence code, broad group and
weapon; end date, order type and risk of serious harm go in the context.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import ClassVar

import polars as pl

from svduty.sources.base import Check, Parsed
from svduty.sources.columns import ColumnSpec
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
from svduty.sources.tables import (
    NO_RECORD,
    TOKEN_SPEC,
    Layout,
    Table,
    raw,
    read_table,
    repeated_rows,
)

SPEC: dict[str, ColumnSpec] = {
    "supervision_id": ColumnSpec(True, (
        "case id", "supervision period id", "supervision ref", "supervision reference",
        "order id", "sentence id", "event id", "period id")),
    **PERSON,
    "start_date": ColumnSpec(True, (
        "supervision start date", "order start date", "licence start date",
        "sentence start date", "commencement date", "date started", "start")),
    "end_date": ColumnSpec(False, (
        "supervision end date", "order end date", "licence end date", "sentence end date",
        "termination date", "date ended", "end")),
    "order_type": ColumnSpec(False, (
        "sentence type", "disposal type", "order", "supervision type", "licence type",
        "order description")),
    "index_offence_code": ColumnSpec(False, (
        "offence code", "ho code", "home office code", "hoc", "main offence code",
        "index offence ho code")),
    "index_offence_description": ColumnSpec(False, (
        "index offence", "offence", "main offence", "offence description", "offence desc",
        "main offence description")),
    "risk_of_serious_harm": ColumnSpec(False, (
        "rosh", "rosh level", "risk of serious harm level", "rosh rating", "overall rosh")),
    "age": ColumnSpec(False, (
        "age at start", "age at sentence", "age at supervision start", "age at commencement")),
    **TOKEN_SPEC,
}
OFFENCE = Offence("index_offence_code", "index_offence_description")
AGES = (18, 120)
# Order type -> the patterns (lower case) that name it, tried in this order.
ORDER_WORDS: dict[str, str] = {
    "post-sentence supervision": r"post[- ]?sentence|\bpss\b",
    "suspended sentence order": r"suspended|\bsso\b",
    "community order": r"community order|\bco\b|community sentence",
    "licence": r"licen[cs]e|parole|release on|\bhdc\b|home detention",
}
ORDER_TYPES = (*ORDER_WORDS, "other")
ROSH: dict[str, str] = {
    "low": "low", "l": "low", "medium": "medium", "m": "medium", "med": "medium",
    "high": "high", "h": "high", "very high": "very high", "vh": "very high",
    "veryhigh": "very high", "v high": "very high",
}
AGE_FIX = ("give the person's age on the start date in whole years; probation supervises "
           "people aged 18 and over (under-18s are supervised by the youth justice service "
           "and are not sent in this extract; an age under 18 is usually a typing error)")


def check_columns(path: Path, header: list[str], columns: dict[str, str]) -> None:
    check_header(path, header, columns, OFFENCE)


LAYOUT = Layout(
    spec=SPEC, sheet="supervision", unit="supervision period",
    allowed=("the output of `svduty pseudonymise`: person_key and tokens with the "
             "supervision, index offence, age, sex, ethnicity and home LSOA columns; delete the "
             "identifying columns and ask the sender to delete this copy"),
    groups=check_columns,
)


class Probation:
    """Reader for probation supervision-period extracts (CSV, CSV.gz or XLSX)."""

    name: ClassVar[str] = "probation"
    description: ClassVar[str] = (
        "probation supervision periods: one row per person x period, pseudonymised, placed "
        "in the person's home LSOA")
    person_level_health: ClassVar[bool] = False

    def check_offence_codes(self, parsed: Parsed, known: set[str]) -> Parsed:
        """Quarantine rows whose code is not in the Home Office list (ingest calls this)."""
        return check_offence_codes(parsed, known)

    def read(self, path: Path) -> Parsed:
        table = read_table(Path(path), LAYOUT)
        reader = Reader(checks=checks(table), dedupe=dedupe,
                        events=partial(to_events, table), role="person on probation",
                        date="__start_date")
        return assemble(table, normalise(table), reader)


def normalise(table: Table) -> pl.DataFrame:
    """The raw text columns plus `record` and parsed `__` columns."""
    rosh = raw(table, "risk_of_serious_harm").str.to_lowercase().str.replace_all(
        r"[^a-z ]", "").str.strip_chars()
    return table.frame.with_columns(
        raw(table, "supervision_id").alias("__id"),
        *dates(table, ["start_date", "end_date"]),
        *person_columns(table, "age"),
        *offence_columns(table, OFFENCE),
        order_type(raw(table, "order_type")).alias("__order"),
        rosh.replace_strict(ROSH, default=None, return_dtype=pl.String).alias("__rosh"),
    ).with_columns(record(table))


def order_type(value: pl.Expr) -> pl.Expr:
    """An order type as written -> one of ORDER_TYPES ('other' when not recognised)."""
    text = value.str.to_lowercase()
    expr = pl.when(text.is_null()).then(pl.lit(None, pl.String))
    for name, pattern in ORDER_WORDS.items():
        expr = expr.when(text.str.contains(pattern)).then(pl.lit(name))
    return expr.otherwise(pl.lit("other"))


def checks(table: Table) -> list[Check]:
    cols = table.columns
    rules = [Check(pl.col("__id").is_null(), "supervision_id", "supervision id is empty",
                   f"give every supervision period its id in '{cols['supervision_id']}'",
                   NO_RECORD)]
    rules += (person_checks(table, "age", AGES, AGE_FIX)
              + date_checks(table, "start_date", "start date")
              + offence_checks(table, OFFENCE))
    if "end_date" in cols:
        own = cols["end_date"]
        rules += date_checks(table, "end_date", "end date", required=False)[:1]
        rules.append(Check(
            pl.col("__end_date") < pl.col("__start_date"), "end_date",
            "end date is before the start date",
            f"check the dates in '{own}' and '{cols['start_date']}' (day and month the right "
            "way round?)", pl.col(own)))
    if "risk_of_serious_harm" in cols:
        own = cols["risk_of_serious_harm"]
        rules.append(Check(
            pl.col(own).is_not_null() & pl.col("__rosh").is_null(), "risk_of_serious_harm",
            "risk of serious harm is not low, medium, high or very high",
            f"use low, medium, high or very high in '{own}', blank if not assessed",
            pl.col(own)))
    return rules


def dedupe(work: pl.DataFrame) -> pl.DataFrame:
    return repeated_rows(work, "__id", "supervision_id", "supervision id",
                      "give each supervision period one row and its own id; delete the "
                      "repeated row")


def to_events(table: Table, rows: pl.DataFrame) -> pl.DataFrame:
    """Context: end date (or 'open'), order type and risk of serious harm."""
    end = (pl.col("__end_date").dt.to_string("%Y-%m-%d").fill_null("open")
           if "end_date" in table.columns else pl.lit(None, pl.String))
    return rows.with_columns(
        pl.lit(None, pl.String).alias("__outcome"),
        pl.concat_str([
            pl.format("end_date={}", end),
            pl.format("order_type={}", "__order"),
            pl.format("rosh={}", "__rosh"),
        ], separator="; ", ignore_nulls=True).replace("", None).alias("__context"),
    )
