"""`svduty reference ...`: import or fetch reference geography, population and deprivation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from svduty.console import DirArg, console, err, fail, open_partnership
from svduty.geography.errors import ReferenceError
from svduty.partnership import Partnership, PartnershipError

app = typer.Typer(
    help="Import (or fetch) reference geography, population and deprivation.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)


@app.command("import")
def import_(
    root: DirArg,
    source: Annotated[Path | None, typer.Argument(
        help="Reference folder laid out like shared/data (default: the last one used, "
             "from partnership.toml).")] = None,
) -> None:
    """Load geography, LSOA 2011->2021 correspondence, population, deprivation, offence codes.

    Replaces the reference data already in the warehouse, in one transaction.
    """
    p = open_partnership(root)
    if source is None:
        if not p.config.reference_source:
            fail("Name the reference folder: svduty reference import "
                 f"{root} <folder> (none is recorded in partnership.toml yet).")
        source = Path(p.config.reference_source)
    run_import(p, source)


@app.command()
def fetch(
    root: DirArg,
    dest: Annotated[Path | None, typer.Option(
        "--dest", help="Where to keep the downloaded files (default: DIR/reference/source).",
    )] = None,
) -> None:
    """Download the official reference files from their publishers, then import them."""
    from svduty.geography.fetch import fetch_reference, load_sources

    p = open_partnership(root)
    dest = dest or p.root / "reference" / "source"
    try:
        sources = load_sources()
        with steps(len(sources)) as advance:
            written = fetch_reference(dest, progress=advance, sources=sources)
    except ReferenceError as exc:
        fail(str(exc))
    console.print(f"Downloaded {len(written)} file(s) into {dest}.")
    run_import(p, dest)


def run_import(p: Partnership, source: Path) -> None:
    from svduty.definition.rules import DefinitionError, keep_current
    from svduty.geography.importer import STEPS, import_reference

    try:
        with steps(len(STEPS)) as advance:
            report = import_reference(p, source, progress=advance)
    except (ReferenceError, PartnershipError) as exc:
        fail(str(exc))
    print_report(report)
    try:
        keep_current(p)  # the new warehouse starts under the partnership's definition
    except DefinitionError as exc:  # the reference data are in; the definition needs fixing
        fail(f"{exc}\nFix definition.toml; it is applied at the next ingest or analysis.")


def steps(total: int):
    """A Rich progress bar advanced once per step; yields the callback."""
    from contextlib import contextmanager

    @contextmanager
    def bar():
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            TimeElapsedColumn(), console=err, transient=True)
        with progress:
            task = progress.add_task("Starting", total=total)
            started = False

            def advance(description: str) -> None:
                nonlocal started
                progress.update(task, description=description, advance=1 if started else 0)
                started = True

            yield advance
            progress.update(task, completed=total)

    return bar()


def print_report(report) -> None:
    """Rows per table, boundaries, correspondence figures and anything missing."""
    console.print(f"Imported reference data from {report.source} in {report.seconds:.0f} s.")
    table = Table(title="Reference tables")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, f"{rows:,}")
    for layer, count in report.boundaries.items():
        table.add_row(f"boundaries: {layer}", f"{count:,}")
    console.print(table)
    if report.correspondence is not None:
        console.print(correspondence_table(report.correspondence))
    for line in report.missing:
        console.print(f"[yellow]Missing (optional):[/] {line}")
    for line in report.notes:
        console.print(f"[dim]Note:[/] {line}")


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def correspondence_table(f) -> Table:
    table = Table(title="LSOA 2011 -> 2021 correspondence")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("2011 LSOAs with boundaries (overlay)", f"{f.lsoa11_in_coverage:,}"),
        ("... mapped by the overlay", f"{f.lsoa11_mapped_in_coverage:,}"),
        ("share of their area mapped", pct(f.area_share_mapped)),
        ("share of their 2011 population mapped", pct(f.population_share_mapped)),
        ("2011 LSOAs elsewhere matched by code", f"{f.lsoa11_code_match:,}"),
        ("2011 LSOAs with no 2021 equivalent", f"{f.lsoa11_unmapped:,}"),
        ("national 2011 population mapped", pct(f.national_population_share_mapped)),
        ("population weights", f.population_weights),
    ] + [(f"method: {m}", f"{n:,}") for m, n in f.by_method.items()]
    for row in rows:
        table.add_row(*row)
    return table
