"""Build the Strategic Needs Assessment (`svduty assess`) from the analysis Results.

Each edition goes in its own folder: `sna.html` (one self-contained file), `sna.pdf` (A4,
tagged PDF/UA), `sna.docx` (editable), `tables/*.csv` (every table and chart's data) and
`manifest.json` (for every exhibit: the Result, sources, loads, definition version, period
and edition). The **restricted** edition (OFFICIAL-SENSITIVE) keeps small counts; the
**published** edition (OFFICIAL) passes every table through disclosure control first, and
its charts are drawn from the protected tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from svduty.analysis.result import Result
from svduty.assessment import render
from svduty.assessment.contents import SECTIONS, Exhibit, Section
from svduty.partnership import Partnership

EDITIONS = {
    "restricted": ("OFFICIAL-SENSITIVE", "Restricted edition for partners",
                   "This restricted edition keeps small counts. It is for the partnership's "
                   "members only: do not publish or forward it."),
    "published": ("OFFICIAL", "Published edition",
                  "This published edition applies disclosure control: counts from 1 to {low} "
                  "are shown as *, rates are not shown where fewer than {rate} events underlie "
                  "them, and further cells are suppressed where they could be worked out from "
                  "totals."),
}
ATTRIBUTION = ("Contains public sector information licensed under the Open Government Licence "
               "v3.0. Contains data from data.police.uk. Source: Office for National Statistics. "
               "Contains OS data © Crown copyright and database right.")
GLOSSARY = (
    ("CSP", "Community Safety Partnership: the partnership that usually leads the Serious "
            "Violence Duty in an area."),
    ("LSOA", "Lower layer Super Output Area: a small area of about 1,500 residents (2021)."),
    ("Gi* (Getis-Ord)", "A statistic that finds clusters of areas with more (hot spot) or "
                        "fewer (cold spot) events than expected by chance."),
    ("Confidence interval (CI)", "The range within which the true value is likely to lie (95% "
                                 "of the time); a wide interval means an uncertain figure."),
    ("Rate ratio", "One rate divided by another; 1.2 means 20% higher."),
    ("Cardiff Model", "Sharing anonymised emergency department assault data with the police "
                      "and partners to find violence the police do not hear about."),
    ("Harm weight", "A weight per offence (e.g. the Cambridge Crime Harm Index, in days of "
                    "imprisonment) so that serious offences count for more."),
    ("Suppression (*)", "A small count hidden so that no one can be identified."),
)


@dataclass
class ExhibitOut:
    """One exhibit ready for rendering: its table (already protected for the edition)."""

    spec: Exhibit
    table: pl.DataFrame
    result: Result | None
    chart: object | None = None  # an Altair chart, drawn from `table`
    caveats: list[str] = field(default_factory=list)


@dataclass
class SectionOut:
    spec: Section
    number: int
    paragraphs: list[str]
    findings: list
    exhibits: list[ExhibitOut]


@dataclass
class Edition:
    """Everything one edition shows."""

    name: str
    marking: str
    label: str
    notice: str
    sections: list[SectionOut]
    context: dict


def assess(partnership: Partnership, out: Path, area: str | None = None,
           period: str | None = None, editions: tuple[str, ...] = ("restricted", "published"),
           progress: Callable[[str], None] | None = None) -> dict[str, dict[str, Path]]:
    """Run the analyses and build each edition; returns edition -> format -> path."""
    from svduty.analysis.run import analyse

    say = progress or (lambda _: None)
    say("running the analyses")
    run = analyse(partnership, area, period, progress=lambda m: say(f"analysing: {m}"))
    results = {r.name: r for r in run.results}
    built, drawn = {}, {}
    for name in editions:
        say(f"building the {name} edition")
        edition = prepare(partnership, run, results, name, drawn)
        built[name] = write_edition(edition, out / name, partnership)
    return built


def prepare(partnership: Partnership, run, results: dict[str, Result], name: str,
            drawn: dict | None = None) -> Edition:
    """The sections of one edition: narrative, findings and protected exhibits."""
    from svduty.assessment import narrative
    from svduty.assessment.findings import recommendations, section_findings

    marking, label, notice = EDITIONS[name]
    limits = partnership.config.disclosure
    notice = notice.format(low=limits.suppress_below - 1, rate=limits.rate_min_count)
    overrides = narrative.load_overrides(partnership.root)
    sections, generated = [], {}
    for number, spec in enumerate(SECTIONS, start=1):
        findings = (recommendations(section_findings(results, "all"))
                    if spec.key == "recommendations" else section_findings(results, spec.key))
        if name == "published":
            findings = [f for f in findings if publishable(f, limits)]
        generated |= {f"{spec.key}.intro": spec.intro,
                      **{f"finding:{f.key}": f.text for f in findings}}
        intro, _ = narrative.apply(f"{spec.key}.intro", spec.intro, overrides)
        findings = [f.__class__(**{**f.__dict__, "text": narrative.apply(
            f"finding:{f.key}", f.text, overrides)[0]}) for f in findings]
        exhibits = [exhibit(results, x, name, partnership, drawn) for x in spec.exhibits]
        sections.append(SectionOut(spec, number, [p for p in intro.split("\n\n") if p],
                                   findings, exhibits))
    narrative.write_templates(partnership.root, generated)  # for analysts to copy and edit
    context = {"scope": run.scope.describe(),
               "definition_version": run.scope.definition_version,
               "title": f"Serious violence: strategic needs assessment for {run.scope.label}",
               "period": (run.scope.start, run.scope.end)}
    return Edition(name, marking, label, notice, sections, context)


def publishable(finding, limits) -> bool:
    """A finding quoting a count under the suppression threshold is left out of the
    published edition (person-level cohort figures appear only where they pass)."""
    counts = [v for k, v in getattr(finding, "figures", {}).items()
              if isinstance(v, int) and not isinstance(v, bool) and k.endswith(
                  ("count", "people", "pupils", "appeared", "before", "after", "n"))]
    return all(v == 0 or v >= limits.suppress_below for v in counts)


def exhibit(results: dict[str, Result], spec: Exhibit, edition: str,
            partnership: Partnership, drawn: dict | None = None) -> ExhibitOut:
    """The exhibit's rows and columns from its Result, protected for the edition."""
    result = results.get(spec.result)
    if result is None or result.table.is_empty():
        return ExhibitOut(spec, pl.DataFrame(), result)
    table = result.table
    if spec.where is not None:
        table = table.filter(spec.where)
    if spec.sort:
        table = table.sort(list(spec.sort))
    if spec.limit:
        table = table.head(spec.limit)
    table = table.select([c for c in spec.columns if c in table.columns])
    caveats = list(result.meta.caveats)
    if edition == "published" and spec.counts:
        table, note = protect(table, spec, result, partnership)
        caveats += note
    if spec.pivot is not None:
        index, columns, values = spec.pivot
        table = table.pivot(on=columns, index=index, values=values, maintain_order=True)
    chart, note = figure(spec, result, edition, partnership, drawn)
    return ExhibitOut(spec, table, result, chart=chart, caveats=caveats + note)


def figure(spec: Exhibit, result: Result, edition: str, partnership: Partnership,
           drawn: dict | None = None) -> tuple[object | None, list[str]]:
    """The exhibit's chart or map from its Result. In the published edition a chart whose
    data hold a count under the threshold is withheld, and an LSOA map is redrawn by ward
    (or withheld if a ward would still disclose)."""
    from svduty.assessment import charts, maps

    if spec.chart is None:
        return None, []
    draw = (charts.CHARTS if spec.chart == "chart" else maps.MAPS).get(result.name)
    if draw is None:
        return None, []
    classes = result.name in ("places-hotspot-classes", "places-gi-star")  # no counts drawn
    small = (edition == "published" and not classes
             and has_small_counts(result, spec, partnership))
    if spec.chart == "map":
        if small and result.name == "places-ward-rates":
            return None, ["The map is withheld from the published edition: some wards have "
                          "counts under the threshold."]
        if small:
            return None, ["The LSOA map is withheld from the published edition: some LSOAs "
                          "have counts under the threshold; see the ward map."]
        return shared(drawn, spec.key, lambda: draw(result, partnership.root)), []
    if small:
        return None, ["The chart is withheld from the published edition because its data "
                      "include counts under the threshold; the protected table is shown."]
    return shared(drawn, spec.key, lambda: draw(result)), []


def shared(drawn: dict | None, key: str, make: Callable[[], object]) -> object:
    """One chart object per exhibit for the whole build (the editions draw the same one)."""
    if drawn is None:
        return make()
    if key not in drawn:
        drawn[key] = make()
    return drawn[key]


def has_small_counts(result: Result, spec: Exhibit, partnership: Partnership) -> bool:
    """Whether any count the chart would draw is from 1 to suppress_below - 1."""
    low = partnership.config.disclosure.suppress_below
    table = result.table if spec.where is None else result.table.filter(spec.where)
    for column in spec.counts:
        if column in table.columns and table.get_column(column).dtype.is_numeric():
            values = table.get_column(column)
            if ((values >= 1) & (values < low)).any():
                return True
    return False


def protect(table: pl.DataFrame, spec: Exhibit, result: Result,
            partnership: Partnership) -> tuple[pl.DataFrame, list[str]]:
    """Primary and secondary suppression of the exhibit's counts (published edition)."""
    from svduty.assessment import disclosure

    if spec.total is not None:
        try:
            return with_totals(table, spec, result, partnership)
        except disclosure.DisclosureError as exc:  # rows that do not add up to the total
            out, notes = disclosure.protect_exhibit(
                table, list(spec.counts), dict(spec.rates), partnership.config.disclosure,
                result.meta.sources)
            return out, [*notes, f"Only primary suppression was possible: {exc}"]
    return disclosure.protect_exhibit(table, list(spec.counts), dict(spec.rates),
                                      partnership.config.disclosure, result.meta.sources)


def with_totals(table: pl.DataFrame, spec: Exhibit, result: Result,
                partnership: Partnership) -> tuple[pl.DataFrame, list[str]]:
    """Primary and secondary suppression of each count column against the exhibit's own
    total rows, audited by the linear-programming attacker."""
    from svduty.assessment import disclosure

    dims, label = spec.total
    limits = disclosure.resolve_limits(partnership.config.disclosure, result.meta.sources)
    out, hidden = table, 0
    for count in spec.counts:
        frame = table.select(*dims, pl.col(count).cast(pl.Int64))
        shown = disclosure.suppress(
            [disclosure.Table(count, frame, dims, count=count, total=label)], limits)[count]
        hidden += int(shown.get_column("suppressed").sum())
        out = out.drop(count).join(shown.select(*dims, pl.col(f"{count}_shown").alias(count)),
                                   on=list(dims), how="left", maintain_order="left")
    for rate, of in spec.rates.items():
        if rate in out.columns:
            out = out.with_columns(pl.when(pl.col(of) == disclosure.STAR).then(None)
                                   .otherwise(pl.col(rate)).alias(rate))
    notes = [f"{hidden} count(s) are shown as *: those from 1 to {limits.suppress_below - 1} "
             "and others hidden so that none can be worked out from the totals."] if hidden \
        else []
    return out.select(table.columns), notes


def write_edition(edition: Edition, folder: Path, partnership: Partnership
                  ) -> dict[str, Path]:
    """Write tables, HTML, PDF, DOCX and the manifest of one edition."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = folder / "tables"
    tables.mkdir(exist_ok=True)
    for section in edition.sections:
        for x in section.exhibits:
            if not x.table.is_empty():
                render.csv_table(x.table).write_csv(tables / f"{x.spec.key}.csv")
    context = edition.context | {
        "definition_text": definition_text(partnership), "loads": loads(partnership),
        "glossary": GLOSSARY, "attribution": ATTRIBUTION,
        "built": datetime.now().strftime("%d %B %Y %H:%M")}
    started = time.perf_counter()
    html = render.html(edition, context)
    paths = {"html": folder / "sna.html", "pdf": folder / "sna.pdf", "docx": folder / "sna.docx",
             "manifest": folder / "manifest.json"}
    paths["html"].write_text(html, "utf-8")
    render.pdf(html, paths["pdf"])
    render.docx(edition, context, paths["docx"])
    paths["manifest"].write_text(json.dumps(manifest(edition, started), indent=2,
                                            default=str) + "\n", "utf-8")
    from svduty.privacy import audit

    audit.record(partnership.root, "assess", edition=edition.name, folder=str(folder.resolve()))
    return paths


def manifest(edition: Edition, started: float) -> dict:
    figures = []
    for section in edition.sections:
        for f in section.findings:
            figures.append({"kind": "finding", "key": f.key, "section": section.spec.key,
                            "result": f.result, "edition": edition.name})
        for x in section.exhibits:
            meta = x.result.meta if x.result else None
            figures.append({
                "kind": "exhibit", "key": x.spec.key, "section": section.spec.key,
                "title": x.spec.title, "table": f"tables/{x.spec.key}.csv",
                "chart": x.spec.chart, "result": x.spec.result, "edition": edition.name,
                "rows": x.table.height,
                "sources": meta.sources if meta else [], "loads": meta.loads if meta else [],
                "definition_version": meta.definition_version if meta else None,
                "period": [str(d) for d in meta.period] if meta and meta.period else None})
    return {"edition": edition.name, "marking": edition.marking,
            "scope": edition.context["scope"],
            "definition_version": edition.context["definition_version"],
            "built_at": datetime.now().isoformat(timespec="seconds"),
            "render_seconds": round(time.perf_counter() - started, 2), "figures": figures}


def definition_text(partnership: Partnership) -> str:
    path = partnership.definition_path
    return path.read_text("utf-8") if path.exists() else "(no definition.toml)"


def loads(partnership: Partnership) -> list[dict]:
    with partnership.warehouse(read_only=True) as wh:
        rows = wh.con.execute("""SELECT source, file_name, period_start, period_end,
            rows_loaded, loaded_at FROM loads WHERE superseded_by IS NULL
            ORDER BY source, period_start""").fetchall()
    return [{"source": s, "file": f, "period": period_text(a, b), "rows": f"{n:,}",
             "loaded": t.strftime("%d/%m/%Y")} for s, f, a, b, n, t in rows]


def period_text(start: date | None, end: date | None) -> str:
    if not start:
        return ""
    return f"{start:%b %Y}" if not end or end.strftime("%Y%m") == start.strftime("%Y%m") \
        else f"{start:%b %Y} to {end:%b %Y}"
