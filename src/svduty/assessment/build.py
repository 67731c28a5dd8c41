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
from typing import TYPE_CHECKING

import polars as pl

from svduty.analysis.result import Result
from svduty.assessment import render
from svduty.assessment.contents import SECTIONS, Exhibit, Section
from svduty.partnership import Partnership
from svduty.runtime import fewer_collections

if TYPE_CHECKING:
    from svduty.assessment.cache import DiskCache
    from svduty.assessment.workers import Workers

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
    disclosure: dict = field(default_factory=dict)  # how it was protected (for the manifest)
    hidden: frozenset[int] = frozenset()  # counts protection hid or rounded: never written


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


@fewer_collections()
def assess(partnership: Partnership, out: Path, area: str | None = None,
           period: str | None = None, editions: tuple[str, ...] = ("restricted", "published"),
           progress: Callable[[str], None] | None = None) -> dict[str, dict[str, Path]]:
    """Run the analyses (or reuse those of the last build where no input has changed: see
    :mod:`svduty.assessment.reuse`) and build each edition; returns edition -> format ->
    path."""
    from svduty.assessment import reuse
    from svduty.assessment.workers import workers

    say = progress or (lambda _: None)
    key, run = reuse.kept(partnership, area, period)
    drawn, drawings = {}, render.caches(partnership.root)["charts"]
    with workers(eager=run is None) as jobs:  # they warm up while the analyses run
        if run is None:
            say("running the analyses")
            run = reuse.analyse(partnership, key, area, period,
                                progress=lambda m: say(f"analysing: {m}"),
                                made=lambda made: draw_soon(made, partnership, drawn, jobs,
                                                            drawings))
        else:
            say("no input has changed since the last build: its analyses are reused")
        results = {r.name: r for r in run.results}
        started = []
        for name in editions:  # each edition's PDF is written while the next is prepared
            say(f"preparing the {name} edition")
            edition = prepare(partnership, run, results, name, drawn)
            say(f"writing the {name} edition")
            started.append((edition, start_edition(edition, out / name, partnership, jobs)))
        built = {}
        for edition, (paths, context) in started:
            say(f"writing the {edition.name} edition's Word document")
            built[edition.name] = finish_edition(edition, paths, context, partnership)
        say("writing the PDFs")
        jobs.wait()
    render.prune(partnership.root)
    return built


def draw_soon(made: list[Result], partnership: Partnership, drawn: dict, jobs: Workers,
              drawings: DiskCache | None) -> None:
    """Start drawing the charts of Results as the analyses make them, in the workers, so
    that they are ready when the editions are written. These are the restricted edition's
    charts; the published edition draws the same ones, withholds them, or draws a map at a
    larger level (that one later)."""
    from svduty.assessment import charts

    results = {r.name: r for r in made}
    drawing = [figure(x, results[x.result], "restricted", partnership, drawn, results)[0]
               for s in SECTIONS for x in s.exhibits
               if x.chart is not None and x.result in results
               and not results[x.result].table.is_empty()
               and not nothing_counted(shown(results[x.result], x), x)]
    charts.render_soon([c for c in drawing if c is not None], jobs, drawings)


def prepare(partnership: Partnership, run, results: dict[str, Result], name: str,
            drawn: dict | None = None) -> Edition:
    """The sections of one edition: narrative, findings and protected exhibits."""
    from svduty.assessment import narrative
    from svduty.assessment.findings import recommendations, section_findings

    marking, label, notice = EDITIONS[name]
    limits = partnership.config.disclosure
    notice = notice.format(low=limits.suppress_below - 1, rate=limits.rate_min_count)
    overrides = narrative.load_overrides(partnership.root)
    joint = together(results, partnership) if name == "published" else None
    sections, generated = [], {}
    exhibits = {spec.key: [exhibit(results, x, name, partnership, drawn, joint)
                           for x in spec.exhibits] for spec in SECTIONS}
    hidden = hidden_counts(exhibits)
    for number, spec in enumerate(SECTIONS, start=1):
        findings = (recommendations(section_findings(results, "all"))
                    if spec.key == "recommendations" else section_findings(results, spec.key))
        if name == "published":
            findings = [f for f in findings
                        if publishable(f, limits, hidden.get(f.result, frozenset()))]
        generated |= {f"{spec.key}.intro": spec.intro,
                      **{f"finding:{f.key}": f.text for f in findings}}
        intro, _ = narrative.apply(f"{spec.key}.intro", spec.intro, overrides)
        findings = [f.__class__(**{**f.__dict__, "text": narrative.apply(
            f"finding:{f.key}", f.text, overrides)[0]}) for f in findings]
        sections.append(SectionOut(spec, number, [p for p in intro.split("\n\n") if p],
                                   findings, exhibits[spec.key]))
    narrative.write_templates(partnership.root, generated)  # for analysts to copy and edit
    context = {"scope": run.scope.describe(),
               "definition_version": run.scope.definition_version,
               "title": f"Serious violence: strategic needs assessment for {run.scope.label}",
               "period": (run.scope.start, run.scope.end)}
    return Edition(name, marking, label, notice, sections, context)


def publishable(finding, limits, hidden: frozenset[int] = frozenset()) -> bool:
    """A finding quoting a count under the suppression threshold, or any count that a
    published table of its Result hides or rounds (`hidden`), is left out of the published
    edition (person-level cohort figures appear only where they pass)."""
    quoted = {k: v for k, v in getattr(finding, "figures", {}).items()
              if isinstance(v, int) and not isinstance(v, bool)}
    counts = [v for k, v in quoted.items() if k.endswith(
        ("count", "people", "pupils", "appeared", "before", "after", "n"))]
    return (all(v == 0 or v >= limits.suppress_below for v in counts)
            and not hidden & set(quoted.values()))


def hidden_counts(exhibits: dict[str, list[ExhibitOut]]) -> dict[str, frozenset[int]]:
    """Result name -> every count its exhibits hide or round (none in the restricted
    edition)."""
    hidden: dict[str, frozenset[int]] = {}
    for x in (x for out in exhibits.values() for x in out if x.hidden):
        hidden[x.spec.result] = hidden.get(x.spec.result, frozenset()) | x.hidden
    return hidden


def together(results: dict[str, Result], partnership: Partnership):
    """Joint protection of every published exhibit of the same events (None: none)."""
    from svduty.assessment.joint import protect_together

    return protect_together(results, partnership.config.disclosure)


def exhibit(results: dict[str, Result], spec: Exhibit, edition: str,
            partnership: Partnership, drawn: dict | None = None, joint=None) -> ExhibitOut:
    """The exhibit's rows and columns from its Result, protected for the edition (jointly
    with the exhibits of the same events where `joint` covers it)."""
    result = results.get(spec.result)
    if result is None or result.table.is_empty():
        return ExhibitOut(spec, pl.DataFrame(), result)
    table = shown(result, spec)
    caveats, record = [*([spec.note] if spec.note else []), *result.meta.caveats], {}
    if nothing_counted(table, spec):  # e.g. measures police.uk cannot give: the notes say why
        return ExhibitOut(spec, table.clear(), result, caveats=caveats)
    hidden: frozenset[int] = frozenset()
    if edition == "published" and spec.counts:
        table, note, hidden = published(table, spec, result, partnership, joint, record)
        caveats += note
    if spec.pivot is not None:
        index, columns, values = spec.pivot
        table = table.pivot(on=columns, index=index, values=values, maintain_order=True)
    chart, note, level = figure(spec, result, edition, partnership, drawn, results,
                                bool(hidden))
    record |= level
    return ExhibitOut(spec, table, result, chart=chart, caveats=caveats + note,
                      disclosure=record, hidden=hidden)


def shown(result: Result, spec: Exhibit) -> pl.DataFrame:
    """The exhibit's rows and columns of its Result, before any protection."""
    table = spec.rows(result.table)
    return table.select([c for c in spec.columns if c in table.columns])


def nothing_counted(table: pl.DataFrame, spec: Exhibit) -> bool:
    """Whether every count of the table is missing (a grid of blanks tells readers
    nothing)."""
    counts = [c for c in spec.counts if c in table.columns]
    return bool(counts) and all(table.get_column(c).is_null().all() for c in counts)


def published(table: pl.DataFrame, spec: Exhibit, result: Result, partnership: Partnership,
              joint, record: dict) -> tuple[pl.DataFrame, list[str], frozenset[int]]:
    """The table protected for the published edition (jointly with the other exhibits of
    the same events where `joint` covers it), its caveats, and the counts protection hid
    or rounded (a chart drawn from the Result, or a finding, must not show them)."""
    from svduty.assessment import disclosure

    shown = joint.shown.get(spec.key) if joint is not None else None
    if shown:
        out, notes = jointly(table, spec, result, partnership, shown)
        record["protected"] = "jointly with the other tables of the same events"
    else:
        out, notes = protect(table, spec, result, partnership)
        record["protected"] = "on its own"
    out, blanked = disclosure.blank_group_shares(out, spec.shares, spec.rates)
    if blanked:
        notes.append(f"{blanked} share(s) are not shown because a count of their group is "
                     "hidden: they would give away the group's total, and so that count.")
    return out, notes, changed_counts(table, out, spec.counts)


def changed_counts(before: pl.DataFrame, after: pl.DataFrame,
                   counts: tuple[str, ...]) -> frozenset[int]:
    """The counts of `before` that disclosure control hid or rounded in `after`."""
    changed: set[int] = set()
    for count in (c for c in counts if c in before.columns and c in after.columns):
        was = before.get_column(count).cast(pl.Float64)
        shown = after.get_column(count).cast(pl.String).cast(pl.Float64, strict=False)
        differs = (shown.is_null() & was.is_not_null()) | (shown != was).fill_null(False)
        changed |= {int(v) for v in was.filter(differs).to_list()}
    return frozenset(changed)


def jointly(table: pl.DataFrame, spec: Exhibit, result: Result, partnership: Partnership,
            shown: dict[str, dict[int, str | None]]) -> tuple[pl.DataFrame, list[str]]:
    """Primary suppression of every count, then the joint protection's text on the rows it
    covers (`shown`: count column -> row -> text), rates blanked where their count is *."""
    from svduty.assessment import disclosure

    out, _ = disclosure.protect_exhibit(table, list(spec.counts), dict(spec.rates),
                                        partnership.config.disclosure, result.meta.sources)
    for count, by_row in shown.items():
        values = out.get_column(count).to_list()
        for row, text in by_row.items():
            if row < len(values) and text is not None:
                values[row] = text
        out = out.with_columns(pl.Series(count, values, pl.String))
    out = disclosure.blank_rates(out, spec.rates)
    hidden = sum(int((out.get_column(c) == disclosure.STAR).sum()) for c in spec.counts
                 if c in out.columns)
    low = disclosure.resolve_limits(partnership.config.disclosure,
                                    result.meta.sources).suppress_below
    return out, ([f"{hidden} count(s) are shown as *: those from 1 to {low - 1} and others "
                  "hidden so that none can be worked out from this table or by differencing "
                  "it with the other published tables of the same events."] if hidden else [])


def figure(spec: Exhibit, result: Result, edition: str, partnership: Partnership,
           drawn: dict | None = None, results: dict[str, Result] | None = None,
           protected: bool = False) -> tuple[object | None, list[str], dict]:
    """The exhibit's chart or map from its Result, the caveats it adds, and (for a rate
    map) the level drawn and why. In the published edition a chart is withheld where its
    data hold a count under the threshold or disclosure control hid or rounded a count of
    its table (`protected`), and a rate map is drawn at the smallest level of the geography
    ladder that does not disclose (:func:`map_level`)."""
    from svduty.assessment import charts, maps

    if spec.chart is None:
        return None, [], {}
    draw = (charts.CHARTS if spec.chart == "chart" else maps.MAPS).get(result.name)
    if draw is None:
        return None, [], {}
    classes = result.name in ("places-hotspot-classes", "places-gi-star")  # no counts drawn
    withheld = (edition == "published" and not classes
                and (protected or has_small_counts(result, spec, partnership)))
    if spec.chart == "map" and not classes:
        return rate_map_at_level(spec, result, edition, partnership, drawn, results or {},
                                 protected)
    if spec.chart == "map":
        return shared(drawn, spec.key, lambda: draw(result, partnership.root)), [], {}
    if withheld:
        return None, ["The chart is withheld from the published edition because its data "
                      "include counts that disclosure control hides; the protected table is "
                      "shown."], {}
    return shared(drawn, spec.key, lambda: draw(result)), [], {}


def rate_map_at_level(spec: Exhibit, result: Result, edition: str, partnership: Partnership,
                      drawn: dict | None, results: dict[str, Result], protected: bool = False
                      ) -> tuple[object | None, list[str], dict]:
    """A rate map at its own level where that does not disclose (or in the restricted
    edition), else at the smallest larger level that does not; withheld if none. Where
    disclosure control hid or rounded a count of the exhibit's table (`protected`), the map
    starts one level up: its areas' rates would give those counts away."""
    from svduty.assessment import maps
    from svduty.assessment.levels import LADDER

    own = "LSOA" if "lsoa21_code" in result.table.columns else "ward"
    draw = maps.MAPS[result.name]
    if edition != "published":
        return shared(drawn, spec.key, lambda: draw(result, partnership.root)), [], {
            "map_level": own, "map_reason": "restricted edition: drawn at its own level"}
    names = [name for name, _, _ in LADDER]
    start = names[names.index(own) + 1] if protected else own
    why = (f"Not drawn by {own}: disclosure control hides counts of the table by {own}, "
           "which the map's rates would give away. " if protected else "")
    level = map_level(result, results, partnership, start)
    if level is None:
        reason = (f"{why}The map is withheld from the published edition: at every level from "
                  f"{start} up some areas have counts under the threshold (or there is a "
                  "single area).")
        return None, [reason], {"map_level": None, "map_reason": reason}
    record = {"map_level": level.level, "map_reason": why + level.reason,
              "map_areas_suppressed": level.suppressed}
    if level.level == own and not level.suppressed:
        return shared(drawn, spec.key, lambda: draw(result, partnership.root)), [
            level.reason], record
    chart = shared(drawn, f"{spec.key}@{level.level}",
                   lambda: maps.level_map(level, partnership.root))
    return chart, [why + level.reason], record


def map_level(result: Result, results: dict[str, Result], partnership: Partnership,
              start: str):
    """The smallest level of the ladder (from `start`) at which the rate map of `result`
    does not disclose, from the LSOA counts (places-lsoa-rates or the Result itself)."""
    from svduty.assessment import disclosure, levels

    lsoas = result if "lsoa21_code" in result.table.columns else results.get(
        "places-lsoa-rates")
    if lsoas is None or lsoas.table.is_empty():
        return None
    rows = lsoas.table.select("lsoa21_code", "events", "residents")
    rows = rows.join(levels.ladder(partnership, rows["lsoa21_code"].to_list()),
                     on="lsoa21_code", how="left")
    if "ward_code" in lsoas.table.columns:  # the best-fit wards the counts use
        rows = rows.drop("ward_code", "ward_name").join(
            lsoas.table.select("lsoa21_code", "ward_code", "ward_name"), on="lsoa21_code")
    limits = disclosure.resolve_limits(partnership.config.disclosure, lsoas.meta.sources)
    return levels.choose(rows, limits, start)


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
    out = disclosure.blank_rates(out, spec.rates)
    notes = [f"{hidden} count(s) are shown as *: those from 1 to {limits.suppress_below - 1} "
             "and others hidden so that none can be worked out from the totals."] if hidden \
        else []
    return out.select(table.columns), notes


def start_edition(edition: Edition, folder: Path, partnership: Partnership,
                  jobs: Workers | None = None) -> tuple[dict[str, Path], dict]:
    """Write the edition's tables and HTML and start its PDF (the slowest step: in a worker
    where `jobs` are given); returns its paths and the context :func:`finish_edition`
    needs."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = folder / "tables"
    tables.mkdir(exist_ok=True)
    for section in edition.sections:
        for x in section.exhibits:
            if not x.table.is_empty():
                render.csv_table(x.table).write_csv(tables / f"{x.spec.key}.csv")
    rules, about = definition_rules(partnership)
    if not rules.is_empty():
        rules.write_csv(tables / "definition.csv")
    context = edition.context | {
        "definition_rules": rules, "definition_about": about, "loads": loads(partnership),
        "glossary": GLOSSARY, "attribution": ATTRIBUTION,
        "built": datetime.now().strftime("%d %B %Y %H:%M"), "started": time.perf_counter()}
    cache = render.caches(partnership.root)
    if jobs is not None:
        render.draw_charts(edition, jobs, cache["charts"])
    html = render.html(edition, context, cache["charts"])
    paths = {"html": folder / "sna.html", "pdf": folder / "sna.pdf", "docx": folder / "sna.docx",
             "manifest": folder / "manifest.json"}
    paths["html"].write_text(html, "utf-8")
    render.pdf(html, paths["pdf"], cache["pdf"], jobs)
    return paths, context


def finish_edition(edition: Edition, paths: dict[str, Path], context: dict,
                   partnership: Partnership) -> dict[str, Path]:
    """Write the edition's Word document and manifest, and audit the build."""
    from svduty.privacy import audit

    render.docx(edition, context, paths["docx"], render.caches(partnership.root)["charts"])
    paths["manifest"].write_text(json.dumps(manifest(edition, context["started"]), indent=2,
                                            default=str) + "\n", "utf-8")
    audit.record(partnership.root, "assess", edition=edition.name,
                 folder=str(paths["html"].parent.resolve()))
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
                "rows": x.table.height, "disclosure": x.disclosure,
                "sources": meta.sources if meta else [], "loads": meta.loads if meta else [],
                "definition_version": meta.definition_version if meta else None,
                "period": [str(d) for d in meta.period] if meta and meta.period else None})
    return {"edition": edition.name, "marking": edition.marking,
            "scope": edition.context["scope"],
            "definition_version": edition.context["definition_version"],
            "built_at": datetime.now().isoformat(timespec="seconds"),
            "render_seconds": round(time.perf_counter() - started, 2), "figures": figures}


def harm_weight(harm: str | float | None) -> str:
    """A rule's harm weight in words (`harm` in definition.toml)."""
    if harm is None:
        return "none: counted, but left out of harm-weighted totals"
    if harm == "css":
        return "the ONS Crime Severity Score weight of each event's offence code"
    return f"{harm:g} for every event"


def definition_rules(partnership: Partnership) -> tuple[pl.DataFrame, str]:
    """The local definition in full, for readers: one row per rule (what it selects, its
    conditions, harm weight and its rationale against the four statutory factors), and a
    line naming the definition, its version and approval."""
    from svduty.definition.rules import load_definition

    if not partnership.definition_path.exists():
        return pl.DataFrame(), "No local definition (definition.toml) was found."
    d = load_definition(partnership.definition_path)
    rows = [{
        "rule": r.id, "category": r.category,
        "selects": ("Home Office offence codes " + ", ".join(r.offence_codes)
                    if r.offence_codes else "")
                   + ("police.uk categories (a proxy): " + ", ".join(r.police_uk_categories)
                      if r.police_uk_categories else ""),
        "conditions": "; ".join(r.conditions) or "none",
        "harm_weight": harm_weight(r.harm),
        "maximum_penalty": r.rationale.maximum_penalty,
        "impact_on_victims": r.rationale.victim_impact,
        "prevalence": r.rationale.prevalence,
        "community_impact": r.rationale.community_impact,
    } for r in d.rules]
    m = d.meta
    approval = (f"approved by {m.approved_by} on {m.approved_on}" if m.status == "approved"
                else m.status)
    about = (f"{m.name}, version {d.definition_version} ({approval}). An event is serious "
             "violence if any rule matches; its category is that of the first rule that "
             "matches. Each rule records the partnership's reasoning against the four factors "
             "of s.13(6) of the Police, Crime, Sentencing and Courts Act 2022.")
    return pl.DataFrame(rows), about


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
