"""The `svduty` command line: thin wrappers that parse, call the library and print with Rich."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from svduty.console import DirArg, console, err, fail, open_partnership
from svduty.partnership import Partnership, PartnershipError, init_partnership

app = typer.Typer(
    help="Serious Violence Duty toolkit: set up a partnership, load partner data, check it.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)


class Template(StrEnum):
    default = "default"
    home_office = "home-office"
    london_vru = "london-vru"
    broad = "broad"


class Format(StrEnum):
    table = "table"
    json = "json"


def _mount_subapps() -> None:
    from svduty.definition.cli import app as definition_app
    from svduty.geography.cli import app as reference_app

    app.add_typer(reference_app, name="reference",
                  help="Import (or fetch) reference geography, population and deprivation.")
    app.add_typer(definition_app, name="definition",
                  help="Show, check and weigh the evidence for the local definition.")


@app.command()
def init(
    root: DirArg,
    area: Annotated[list[str], typer.Option(
        "--area", help="LA, CSP or force: code or name. Repeat for several CSPs.")],
    name: Annotated[str | None, typer.Option(help="Partnership name (default from areas).")] = None,
    definition: Annotated[Template, typer.Option(
        help="Starting definition template.")] = Template.default,
) -> None:
    """Create a partnership folder: partnership.toml, definition.toml and inbox/."""
    try:
        p = init_partnership(root, area, name=name, template=definition.value)
    except PartnershipError as exc:
        fail(str(exc))
    table = Table(title=f"{p.config.name}: {len(p.config.areas)} CSP(s)")
    for column in ("CSP", "code", "local authorities", "police force area"):
        table.add_column(column)
    for a in p.config.areas:
        table.add_row(a.csp_name, a.csp_code, ", ".join(a.lad_names), a.pfa_name)
    console.print(table)
    console.print(f"Created {root}/ with partnership.toml, definition.toml "
                  f"('{definition.value}' template) and inbox/.\n"
                  f"Next: [bold]svduty reference import {root} <reference folder>[/]")


@app.command()
def ingest(
    root: DirArg,
    source: Annotated[str, typer.Argument(help="Source: police-uk, police-recorded, ...")],
    files: Annotated[list[Path], typer.Argument(help="Files or folders of files.")],
    partner: Annotated[str | None, typer.Option(help="Partner that sent the files.")] = None,
) -> None:
    """Load partner files: each row is loaded or quarantined with a reason."""
    from svduty.definition.rules import DefinitionError
    from svduty.sources import get_source
    from svduty.sources.ingest import IngestError, expand
    from svduty.sources.ingest import ingest as run_ingest

    p = open_partnership(root)
    try:
        reader = get_source(source)
        count = len(expand(files))
    except (ValueError, IngestError) as exc:
        fail(str(exc))
    with _progress(count) as (progress, task):
        try:
            results = run_ingest(p, reader, files, partner=partner,
                                 progress=lambda f: progress.advance(task))
        except (IngestError, DefinitionError) as exc:
            fail(str(exc))
    _print_results(results)
    if any(r.status == "rejected" for r in results):
        raise typer.Exit(1)


def _progress(total: int):
    from contextlib import contextmanager

    @contextmanager
    def bar():
        progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                            disable=total <= 3)
        with progress:
            yield progress, progress.add_task("Ingesting files", total=total)

    return bar()


def _print_results(results) -> None:
    table = Table(title="Ingest")
    for column in ("file", "status", "load", "read", "loaded", "quarantined", "out of area"):
        table.add_column(column, justify="right" if column not in ("file", "status") else "left")
    for r in results:
        table.add_row(r.path.name, r.status, str(r.load_id or ""), f"{r.rows_read:,}",
                      f"{r.rows_loaded:,}", f"{r.rows_quarantined:,}", f"{r.rows_out_of_area:,}")
    console.print(table)
    for r in results:
        if r.status == "rejected":
            err.print(f"[bold red]Rejected[/] {r.path}: {r.message}")
        elif r.status == "skipped":
            console.print(f"[yellow]Skipped[/] {r.path.name}: {r.message}")
        if r.superseded:
            console.print(f"{r.path.name} supersedes load(s) {', '.join(map(str, r.superseded))}")
        for note in r.notes:
            console.print(f"{r.path.name}: {note}")


@app.command()
def status(
    root: DirArg,
    format: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """Show each load, months covered and missing per source, and quarantine reasons."""
    from svduty.loads import status as load_status

    p = open_partnership(root)
    try:
        wh = p.warehouse(read_only=True)
    except PartnershipError as exc:
        fail(str(exc))
    with wh:
        report = load_status(wh)
    if format is Format.json:
        console.print_json(json.dumps(report, default=str))
        return
    _print_status(p, report)


def _print_status(p: Partnership, report: dict) -> None:
    loads = Table(title=f"{p.config.name}: loads", expand=False)
    for column in ("load", "source / scope", "file", "period", "read", "loaded",
                   "quar.", "status", "sha256", "when"):
        loads.add_column(column, overflow="fold")
    for r in report["loads"]:
        period = f"{r['period_start']:%Y-%m}"
        if f"{r['period_end']:%Y-%m}" != period:
            period += f"..{r['period_end']:%Y-%m}"
        loads.add_row(str(r["load_id"]), f"{r['source']} / {r['scope'] or '-'}", r["file_name"],
                      period, f"{r['rows_read']:,}", f"{r['rows_loaded']:,}",
                      f"{r['rows_quarantined']:,}", r["status"], r["checksum"][:8],
                      f"{r['loaded_at']:%Y-%m-%d %H:%M}")
    console.print(loads)
    cover = Table(title="Months covered")
    for column in ("source", "scope", "from", "to", "months", "missing"):
        cover.add_column(column)
    for c in report["coverage"]:
        cover.add_row(c["source"], c["scope"] or "", f"{c['first_month']:%Y-%m}",
                      f"{c['last_month']:%Y-%m}", str(c["months_covered"]),
                      ", ".join(c["missing"]) or "none")
    console.print(cover)
    reasons = Table(title="Quarantine reasons")
    for column in ("source", "column", "reason", "rows", "example value"):
        reasons.add_column(column)
    for q in report["quarantine"]:
        reasons.add_row(q["source"], q["column"], q["reason"], f"{q['rows']:,}",
                        str(q["example"]))
    console.print(reasons)


@app.command()
def export(
    root: DirArg,
    table: Annotated[str, typer.Argument(
        help="events, involvements, sv_events, quarantine, loads, ...")],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
) -> None:
    """Write a warehouse table to CSV for checking by hand (the export is audited)."""
    from svduty.privacy import audit
    from svduty.warehouse import export_table

    p = open_partnership(root)
    with p.warehouse(read_only=True) as wh:
        try:
            rows = export_table(wh, table, out)
        except ValueError as exc:
            fail(str(exc))
    audit.record(p.root, "export", table=table, file=str(out.resolve()), rows=rows)
    console.print(f"Wrote {rows:,} rows of {table} to {out}")


key_app = typer.Typer(help="Make the partnership's secret pseudonymisation key.",
                      no_args_is_help=True)
app.add_typer(key_app, name="key")


@key_app.command("new")
def key_new(keyfile: Annotated[Path, typer.Argument(help="Key file to create.")]) -> None:
    """Write a new random 256-bit key (mode 0600). Never overwrites an existing file."""
    from svduty.privacy.keys import KeyFileError, new_key

    try:
        new_key(keyfile)
    except KeyFileError as exc:
        fail(str(exc))
    console.print(f"Wrote a new key to {keyfile} (readable by you only). Keep it secret and "
                  "share it only by the route in the information sharing agreement.")


@app.command()
def pseudonymise(
    src: Annotated[Path, typer.Argument(help="Extract to pseudonymise: .csv, .csv.gz, .xlsx.")],
    out: Annotated[Path, typer.Argument(help="Output CSV (raw identifiers removed).")],
    key: Annotated[Path, typer.Option("--key", help="The partnership key file.")],
    source: Annotated[str, typer.Option(
        "--source", help="Which system the extract is from (e.g. police-recorded, ae).")],
) -> None:
    """Replace names, dates of birth, NHS numbers, postcodes... with keyed tokens, before
    anything is shared. Run on the partner's own machine."""
    from svduty.privacy.keys import KeyFileError, load_key
    from svduty.privacy.pseudonymise import pseudonymise as run
    from svduty.sources.base import FileError

    try:
        secret = load_key(key)
    except KeyFileError as exc:
        fail(str(exc))
    with Progress(TextColumn("pseudonymising"), BarColumn(), TextColumn("{task.completed:,} rows"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("rows", total=None)
        try:
            report = run(src, out, secret, source,
                         progress=lambda n: bar.advance(task, n))
        except FileError as exc:
            fail(str(exc))
    table = Table(title=f"{src.name} -> {out.name}", show_header=False)
    table.add_column("")
    table.add_column("")
    table.add_row("rows read", f"{report.rows_read:,}")
    table.add_row("rows written", f"{report.rows_written:,}")
    table.add_row("rows not processed", f"{report.rows_rejected:,}")
    table.add_row("identifiers (tokenised)", ", ".join(
        f"{c} ({f})" for f, c in report.identifiers.items()))
    table.add_row("dropped (not written)", ", ".join(report.dropped) or "none")
    table.add_row("passed through unchanged", ", ".join(report.passed_through) or "none")
    console.print(table)
    for reason, n in report.rejected.items():
        rows = ", ".join(map(str, report.rejected_rows[:10]))
        console.print(f"[yellow]{n:,} row(s) not processed:[/] {reason} (rows {rows}"
                      f"{', ...' if n > 10 else ''}; row 1 is the header)")
    for warning, n in report.warnings.items():
        console.print(f"[yellow]Warning:[/] {n:,} row(s): {warning} (token still made)")
    if report.rejected_path:
        console.print(f"Row numbers and reasons (no identifiers): {report.rejected_path}")
    if report.passed_through:
        console.print("Check the passed-through columns hold no names, addresses or other "
                      "identifiers before sharing.")


@app.command()
def analyse(
    root: DirArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for the Results (CSV + JSON).")],
    period: Annotated[str | None, typer.Option(
        "--period", help="Months to analyse, START..END, e.g. 2023-04..2025-03 (default: every "
        "month the police data covers).")] = None,
    area: Annotated[str | None, typer.Option(
        "--area", help="One CSP or local authority of the partnership (code or name); default: "
        "all of them.")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only these analyses (repeatable): measures, trend, places, times, "
        "people, domestic, health, risk, near_repeat, comparison, quality.")] = None,
) -> None:
    """Run every analysis the Strategic Needs Assessment needs and write each Result as CSV
    with a JSON sidecar (sources, loads, definition version, period, method, parameters,
    caveats, SQL)."""
    from svduty.analysis.run import ANALYSES, write_run
    from svduty.analysis.run import analyse as run_analyses
    from svduty.analysis.scope import ScopeError
    from svduty.definition.rules import DefinitionError
    from svduty.privacy import audit

    p = open_partnership(root)
    unknown = set(only or ()) - {m for m, _ in ANALYSES}
    if unknown:
        fail(f"unknown analysis {', '.join(sorted(unknown))}; choose from "
             f"{', '.join(m for m, _ in ANALYSES)}")
    try:
        with console.status("Analysing...") as status:
            run = run_analyses(p, area, period, tuple(only or ()),
                               progress=lambda what: status.update(f"Analysing: {what}"))
    except (ScopeError, PartnershipError, DefinitionError) as exc:
        fail(str(exc))
    index = write_run(run, out)
    audit.record(p.root, "analyse", scope=run.scope.describe(), out=str(out.resolve()),
                 results=len(run.results), failures=sorted(run.failures))
    table = Table(title=f"{run.scope.describe()}: {len(run.results)} Results")
    for column in ("analysis", "results", "seconds"):
        table.add_column(column, justify="left" if column == "analysis" else "right")
    for module, what in ANALYSES:
        if module in run.seconds:
            table.add_row(what, "failed" if module in run.failures else str(run.made[module]),
                          f"{run.seconds[module]:.1f}")
    console.print(table)
    for module, message in run.failures.items():
        err.print(f"[red]{module} failed:[/red] {message}")
    console.print(f"Results in {out} (index: {index.name})")
    if run.failures:
        raise typer.Exit(1)


class EditionChoice(StrEnum):
    restricted = "restricted"
    published = "published"
    both = "both"


@app.command()
def assess(
    root: DirArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for the assessment (one "
                                      "sub-folder per edition).")],
    period: Annotated[str | None, typer.Option(
        "--period", help="Months to assess, START..END, e.g. 2023-04..2025-03.")] = None,
    area: Annotated[str | None, typer.Option(
        "--area", help="One force area, CSP or local authority of the partnership.")] = None,
    edition: Annotated[EditionChoice, typer.Option(
        "--edition", help="restricted (OFFICIAL-SENSITIVE, small counts kept), published "
        "(OFFICIAL, disclosure-controlled) or both.")] = EditionChoice.both,
) -> None:
    """Build the Strategic Needs Assessment: sna.html, sna.pdf, sna.docx, tables/*.csv and
    manifest.json for each edition, from a fresh run of every analysis."""
    from svduty.analysis.scope import ScopeError
    from svduty.assessment.build import assess as build
    from svduty.definition.rules import DefinitionError

    p = open_partnership(root)
    editions = (("restricted", "published") if edition is EditionChoice.both
                else (edition.value,))
    try:
        with console.status("Building the assessment...") as status:
            built = build(p, out, area, period, editions,
                          progress=lambda m: status.update(f"Assessment: {m}"))
    except (ScopeError, PartnershipError, DefinitionError) as exc:
        fail(str(exc))
    for name, paths in built.items():
        console.print(f"[bold]{name}[/bold] edition: " + ", ".join(
            str(path) for path in paths.values()))


@app.command()
def demo(root: Annotated[Path, typer.Argument(help="Folder for the demo.")] = Path(
        "demo-partnership"),
         seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 2024,
         ) -> None:
    """Build the synthetic Anytown partnership from generated data: geography, every
    partner's extract, pseudonymisation, ingest and the ground truth of what was planted."""
    import time

    from svduty.demo.build import BANNER, build_demo

    if (root / "partnership.toml").exists():
        fail(f"{root} already holds a partnership; give another folder or delete it first.")
    start = time.perf_counter()
    console.print(f"[bold]{BANNER}[/bold]")
    report = build_demo(root, seed=seed, progress=lambda m: console.print(f"- {m}"))
    table = Table(title="Ingested (rows read / loaded / quarantined)")
    for column in ("source", "files", "read", "loaded", "quarantined"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, (read, loaded, quarantined) in report.ingested.items():
        table.add_row(source, str(len(report.files[source])), f"{read:,}", f"{loaded:,}",
                      f"{quarantined:,}")
    console.print(table)
    console.print(f"Partnership built in {time.perf_counter() - start:.0f} s. Outputs in {root}:")
    console.print(f"  partnership folder   {root}  (svduty status {root})")
    console.print(f"  warehouse            {root / 'warehouse.duckdb'}")
    console.print(f"  partners' raw files  {root / 'partner-side'}  (fake identifiers; never "
                  "shared)")
    console.print(f"  pseudonymised inbox  {root / 'inbox'}")
    console.print(f"  ground truth         {report.truth_path}")
    from svduty.assessment.build import assess as build_assessment

    console.print("- building the Strategic Needs Assessment (both editions)")
    built = build_assessment(Partnership(root), root / "assessment",
                             progress=lambda m: console.print(f"  - {m}"))
    for name, paths in built.items():
        console.print(f"  SNA, {name} edition  {paths['html']}  (also sna.pdf, sna.docx, "
                      "tables/, manifest.json)")
    console.print(f"Done in {time.perf_counter() - start:.0f} s.")


_mount_subapps()

if __name__ == "__main__":
    app()
