"""`svduty definition ...`: show, check and weigh the evidence for the local definition."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from svduty.console import DirArg, console, err, fail, open_partnership
from svduty.definition.rules import FACTORS, Definition, DefinitionError, load_definition
from svduty.partnership import Partnership, PartnershipError

app = typer.Typer(
    help="The local definition of serious violence (definition.toml): show it, check it, and "
         "see the s.13(6) evidence (penalty, local prevalence, trend) for each offence group.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)


class EvidenceFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"




def _warehouse_codes(p: Partnership) -> set[str]:
    """Offence codes in the warehouse reference table (empty if there is no warehouse)."""
    if not p.warehouse_path.exists():
        return set()
    with p.warehouse(read_only=True) as wh:
        rows = wh.con.execute("SELECT offence_code FROM offence_codes").fetchall()
    return {r[0] for r in rows}


def _load(p: Partnership, strict: bool = False) -> Definition:
    try:
        return load_definition(p.definition_path, _warehouse_codes(p), strict=strict)
    except DefinitionError as exc:
        fail(str(exc))
        raise  # unreachable


@app.command()
def check(
    root: DirArg,
    strict: Annotated[bool, typer.Option(help="Treat warnings (unknown codes, "
                                               "'TO COMPLETE' text) as errors.")] = False,
) -> None:
    """Validate definition.toml and print its version (exit 1 on any problem)."""
    p = open_partnership(root)
    definition = _load(p, strict=strict)
    for warning in definition.warnings:
        err.print(f"[yellow]Warning:[/] {warning}", highlight=False)
    console.print(f"[green]OK[/] {p.definition_path}: {len(definition.rules)} rules, "
                  f"version [bold]{definition.definition_version}[/] ({definition.meta.status})")


@app.command()
def show(root: DirArg) -> None:
    """Show the definition: name, version, approval, each rule and its rationale."""
    p = open_partnership(root)
    d = _load(p)
    approved = (f"approved by {d.meta.approved_by} on {d.meta.approved_on}"
                if d.meta.status == "approved" else d.meta.status)
    console.print(f"[bold]{d.meta.name}[/]: definition {d.definition_version} ({approved})")
    if d.meta.description:
        console.print(d.meta.description.strip(), highlight=False)
    console.print(_rules_table(d))
    console.print(_rationale_table(d))


def _rules_table(d: Definition) -> Table:
    table = Table(title="Rules (an event's main category is the first rule it matches)")
    for column in ("#", "id", "category", "selects", "conditions", "harm", "proxy"):
        table.add_column(column, overflow="fold")
    for n, rule in enumerate(d.rules, start=1):
        selects = (", ".join(rule.offence_codes) if rule.offence_codes else
                   "police.uk: " + ", ".join(rule.police_uk_categories))
        table.add_row(str(n), rule.id, rule.category, selects, "; ".join(rule.conditions),
                      "" if rule.harm is None else str(rule.harm), "yes" if rule.is_proxy else "")
    return table


def _rationale_table(d: Definition) -> Table:
    table = Table(title="Rationale against the s.13(6) factors")
    table.add_column("id")
    for factor in FACTORS:
        table.add_column(factor.replace("_", " "), overflow="fold")
    for rule in d.rules:
        values = rule.rationale.model_dump()
        table.add_row(rule.id, *[_short(values[f]) for f in FACTORS])
    return table


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command()
def evidence(
    root: DirArg,
    format: Annotated[EvidenceFormat, typer.Option(
        "--format", help="table (on screen), csv or json.")] = EvidenceFormat.table,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of the "
                                                  "screen.")] = None,
) -> None:
    """For each candidate offence group: maximum penalty, local count, rate, share, trend,
    and whether the definition includes it (the s.13(6) factors)."""
    from svduty.definition.evidence import definition_evidence

    p = open_partnership(root)
    definition = _draft(p)
    try:
        with p.warehouse(read_only=True) as wh:
            frame = definition_evidence(wh, p.config.lad_codes, definition=definition)
    except PartnershipError as exc:
        fail(str(exc))
    if format is EvidenceFormat.table:
        _print_evidence(frame, out)
    else:
        _write_evidence(frame, format, out)


def _draft(p: Partnership) -> Definition | None:
    """The definition for the 'in definition' column; a broken draft only warns (the
    evidence is most needed while the definition is being written)."""
    if not p.definition_path.exists():
        return None
    try:
        return load_definition(p.definition_path)
    except DefinitionError as exc:
        err.print(f"[yellow]Warning:[/] {exc}\nShowing the evidence without the "
                  "'in definition' column.", highlight=False)
        return None


def _write_evidence(frame: pl.DataFrame, format: EvidenceFormat, out: Path | None) -> None:
    text = frame.write_csv() if format is EvidenceFormat.csv else frame.write_json()
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, "utf-8")
    console.print(f"Wrote {frame.height} offence groups to {out}")


def _print_evidence(frame: pl.DataFrame, out: Path | None) -> None:
    table = _evidence_table(frame)
    if out is None:
        console.print(table)
        return
    with out.open("w", encoding="utf-8") as handle:
        Console(file=handle, width=200).print(table)
    console.print(f"Wrote the evidence table to {out}")


def _evidence_table(frame: pl.DataFrame) -> Table:
    first = frame.row(0, named=True)
    title = f"Evidence for the local definition, {first['period_start']} to {first['period_end']}"
    table = Table(title=title, caption=_caption(first))
    for column, justify in (("offence group", "left"), ("maximum penalty", "left"),
                            ("count", "right"), ("per 1,000", "right"),
                            ("% of violence", "right"), ("previous", "right"),
                            ("change %", "right"), ("p", "right"), ("in definition", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for row in frame.iter_rows(named=True):
        count = str(row["count"])
        if row.get("proxy_category") and "proxy" in (row.get("basis") or ""):
            count += f"\n[dim](all police.uk '{row['proxy_category']}')[/]"
        table.add_row(
            row["offence_group"], _penalty(row), count,
            _num(row["rate_per_1000"], 3), _num(row["share_of_violence_pct"], 1),
            str(row["previous_count"]), _num(row["change_pct"], 1), _num(row["p_value"], 3),
            row["in_definition"])
    return table


def _penalty(row: dict) -> str:
    """The group's highest maximum penalty, the offence that carries it, and the statute."""
    return (f"{row['max_penalty']}\n[dim]{row['max_penalty_offence']}: "
            f"{row['statute']}[/]")


def _caption(row: dict) -> str:
    basis = row["basis"]
    note = ("Counts are whole police.uk categories (a proxy), not the offence group."
            if "proxy" in basis else "")
    return (f"Basis: {basis}. {note} Residents: {row['residents'] or 'unknown'}. "
            f"Trend: {row['trend_note']}. Penalties compiled from legislation; check against "
            "legislation.gov.uk. CSS weights UNVERIFIED.")


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
