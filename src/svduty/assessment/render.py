"""Render an edition of the assessment: HTML (Jinja2), PDF (WeasyPrint, from the same HTML),
DOCX (python-docx, from the same content) and CSV tables.

Charts come from one Altair specification per exhibit (:mod:`svduty.assessment.charts`),
rendered offline by vl-convert: inline SVG in the HTML, the same SVG as an image in the PDF,
PNG in the DOCX, each with a text alternative and its data table beside it. Every format
uses one font (:data:`svduty.assessment.charts.FONT`).

Findings cite the exhibit they rest on by its title (the Result's own id stays in the
manifest and the methods appendix). Charts and PDFs can be drawn in worker processes
(:mod:`svduty.assessment.workers`) and kept in a disk cache (:mod:`svduty.assessment.cache`)
so that a rebuild reuses what has not changed.
"""

from __future__ import annotations

import base64
import io
import math
import re
import shutil
from collections.abc import Collection
from concurrent.futures import Future
from copy import deepcopy
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from jinja2 import Environment, select_autoescape

from svduty.assessment.cache import DiskCache, digest

if TYPE_CHECKING:
    from svduty.assessment.build import Edition, ExhibitOut
    from svduty.assessment.workers import Workers

DOCX_ROWS = 60  # Word tables longer than this go to an appendix at the end
BUILT = re.compile(r'<span class="built">.*?</span>', re.DOTALL)
INLINE_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)  # the charts (vl-convert's SVG)
SVG_DESC = re.compile(r"<desc>(.*?)</desc>", re.DOTALL)  # each chart's text alternative

LABELS = {"sv_category": "category", "count_before": "previous 12 months",
          "count_after": "latest 12 months", "percent_change": "change (%)",
          "ratio_lower": "ratio: lower 95%", "ratio_upper": "ratio: upper 95%",
          "p_value": "p-value", "rate_per_1000": "rate per 1,000",
          "rate_per_100k": "rate per 100,000", "rate_lower": "lower 95%",
          "rate_upper": "upper 95%", "rolling_12m": "rolling 12 months",
          "pi_lower": "lower 95% PI", "pi_upper": "upper 95% PI", "lsoa21_code": "LSOA",
          "lsoa_name": "LSOA name", "ward_name": "ward", "periods_hot": "periods hot",
          "rate_per_1000_year": "rate per 1,000 a year", "share_of_role": "share",
          "involvements_per_person": "times involved", "share_of_people": "share of people",
          "later_appeared": "later appeared", "median_days": "median days",
          "gap_adjusted": "gap (chance-adjusted)", "gap_adjusted_lower": "lower 95%",
          "gap_adjusted_upper": "upper 95%", "spearman_rho": "Spearman rho",
          "ci_lower": "lower 95%", "ci_upper": "upper 95%", "irr": "rate ratio (IRR)",
          "irr_lower": "lower 95%", "irr_upper": "upper 95%",
          "ratio_to_force": "ratio to force", "harm_weight_total": "harm (weighted)",
          "events_without_weight": "events without a weight", "month_name": "month",
          "seasonal_index": "seasonal index", "index_lower": "lower 95%",
          "index_upper": "upper 95%", "weekday_name": "day", "rate_ratio": "rate ratio",
          "term_count": "term", "holiday_count": "holiday", "admissions_known": "admissions",
          "suppressed_cells": "suppressed cells", "change_ratio": "change (ratio)"}


def label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " "))


def cell(value: object, column: str, count: bool = False) -> str:
    """A value as people read it: thousands separators, sensible decimals, '*' kept. A
    `count` that disclosure control turned to text (``"3909"`` beside ``"*"``) reads as a
    number too."""
    if count and isinstance(value, str) and value.isdigit():
        return f"{int(value):,}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if column == "p_value" or column.endswith("_p"):
            return "<0.001" if value < 0.001 else f"{value:.3f}"
        if column.startswith(("share", "gap")) or column in ("value", "lower", "upper"):
            return f"{value:.1%}" if abs(value) <= 1 else f"{value:,.1f}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    if isinstance(value, date):
        return f"{value:%b %Y}" if value.day == 1 else f"{value:%d/%m/%Y}"
    return str(value)


def csv_table(table: pl.DataFrame) -> pl.DataFrame:
    """The table as published in tables/*.csv (nested values as text)."""
    return table.with_columns(pl.col(c).cast(pl.String) for c, t in table.schema.items()
                              if t.is_nested())


def caches(root: Path) -> dict[str, DiskCache]:
    """The partnership's disk caches of rendered charts and PDFs."""
    return {kind: DiskCache(root, kind) for kind in ("charts", "pdf")}


def prune(root: Path) -> None:
    """Keep the disk caches to their size (least recently used files go first)."""
    for cache in caches(root).values():
        cache.prune()


def chart_parts(x: ExhibitOut, cache: DiskCache | None = None, png: bool = True
                ) -> tuple[str | None, str, bytes | None]:
    """SVG, text alternative and PNG (unless not `png`) of the exhibit's chart (None where
    there is none)."""
    if x.chart is None:
        return None, "", None
    from svduty.assessment import charts  # renders each chart and format once per build

    return (charts.render(x.chart, "svg", cache=cache), charts.text_alternative(x.chart),
            charts.render(x.chart, "png", cache=cache) if png else None)


def draw_charts(edition: Edition, workers: Workers, cache: DiskCache | None = None) -> None:
    """Start drawing every chart of the edition in the workers, several at a time, without
    waiting: the HTML collects them."""
    from svduty.assessment import charts

    charts.render_soon([x.chart for s in edition.sections for x in s.exhibits
                        if x.chart is not None], workers, cache)


def citations(edition: Edition) -> dict[str, dict[str, str]]:
    """Result name -> how findings cite it in words: the title of the first exhibit drawn
    from it (with the section number and the exhibit's anchor)."""
    cited: dict[str, dict[str, str]] = {}
    for s in edition.sections:
        for x in s.exhibits:
            if x.spec.result not in cited and not x.table.is_empty():
                cited[x.spec.result] = {"text": f"{x.spec.title}, section {s.number}",
                                        "href": x.spec.key}
    return cited


def citation(finding: object, cited: dict[str, dict[str, str]]) -> dict[str, str]:
    """The words a finding cites its evidence with: an exhibit's title where one shows its
    Result, else the Result's own title; never the bare Result id unless nothing else."""
    name = getattr(finding, "result", "")
    if name in cited:
        return cited[name]
    return {"text": getattr(finding, "source", "") or name, "href": ""}


def html(edition: Edition, context: dict, cache: DiskCache | None = None) -> str:
    """The edition as one self-contained HTML page (the PDF is made from it)."""
    from svduty.assessment.charts import FONT

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(resources.files("svduty.assessment").joinpath(
        "templates/sna.html.j2").read_text("utf-8"))
    cited = citations(edition)
    sections = []
    for s in edition.sections:
        exhibits = []
        for x in s.exhibits:
            svg, alt, _ = chart_parts(x, cache, png=False)
            counts = x.spec.count_columns(x.table.columns)
            rows = [[cell(v, c, c in counts) for v, c in zip(row, x.table.columns, strict=True)]
                    for row in x.table.iter_rows()]
            exhibits.append({
                "key": x.spec.key, "title": x.spec.title, "result": x.spec.result,
                "chart_svg": svg, "alt": alt, "caveats": x.caveats,
                "header": [{"label": label(c),
                            "num": x.table.schema[c].is_numeric() or c in counts}
                           for c in x.table.columns],
                "rows": rows,
                "widths": column_widths([label(c) for c in x.table.columns], rows),
                "empty_reason": "this analysis had nothing to show for this scope (see "
                                "the data quality section)."})
        findings = [{"text": f.text, "cite": citation(f, cited)} for f in s.findings]
        sections.append({"key": s.spec.key, "number": s.number, "title": s.spec.title,
                         "paragraphs": s.paragraphs, "findings": findings,
                         "exhibits": exhibits})
    methods = [{"name": x.result.meta.name, "title": x.result.meta.title,
                "method": x.result.meta.method, "caveats": x.result.meta.caveats}
               for s in edition.sections for x in s.exhibits if x.result]
    return template.render(**context, sections=sections, marking=edition.marking,
                           edition_label=edition.label, edition_notice=edition.notice,
                           methods=unique(methods), font=FONT)


def column_widths(header: list[str], rows: list[list[str]]) -> list[float] | None:
    """Each column's share of a printed table's width (per cent), so that the PDF lays the
    table out at fixed widths: WeasyPrint otherwise lays every cell out twice more, at its
    narrowest and widest, to size the columns (a tenth of a PDF's time). As in that
    automatic layout, a column is never narrower than its longest word (nor than half its
    heading, which then takes two lines at most), and the room left is shared in proportion
    to how much wider each column's longest text is. None where the words alone do not fit
    the page: that table is sized by its contents."""
    narrowest, wanted = [], []
    for i, name in enumerate(header):
        texts = [r[i] for r in rows]
        low = max([em(w, bold=True) for w in [*name.split(), name[: len(name) // 2]]]
                  + [em(w) for t in texts for w in t.split()])
        narrowest.append(low + PADDING_EM)
        wanted.append(max([low, *map(em, texts)]) + PADDING_EM)
    if sum(narrowest) > PAGE_EM:
        return None
    spare, room = PAGE_EM - sum(narrowest), sum(wanted) - sum(narrowest)
    widths = [n + (w - n) * min(1.0, spare / room) if room else n
              for n, w in zip(narrowest, wanted, strict=True)]
    return [round(100 * w / sum(widths), 1) for w in widths]


def em(text: str, bold: bool = False) -> float:
    """A generous width of `text` in ems of the tables' sans-serif font (headings are
    bold): wide enough for Arial and for DejaVu Sans, where Arial is not installed."""
    width = sum(0.36 if c in NARROW else 0.95 if c in WIDE else 0.78 if c.isupper()
                else 0.66 for c in text)
    return width * 1.15 if bold else width


NARROW, WIDE = " .,:;'|!ijlrtf()[]/-*", "mwMW%@"
PAGE_EM = 46.0  # A4 less margins is 48 ems of a table's text (0.85 rem)
PADDING_EM = 1.2  # a cell's padding either side (0.5 rem each), in those ems


def unique(methods: list[dict]) -> list[dict]:
    seen, out = set(), []
    for m in methods:
        if m["name"] not in seen:
            seen.add(m["name"])
            out.append(m)
    return out


def pdf(html_text: str, path: Path, cache: DiskCache | None = None,
        workers: Workers | None = None) -> Future | None:
    """A4 PDF from the same HTML (each chart an image of its SVG: :func:`print_html`); tagged
    PDF/UA-1 where WeasyPrint manages it. Written in a worker process where `workers` are
    given (``workers.wait()`` waits for it); with a `cache`, an edition whose HTML is
    unchanged but for its build time reuses the last PDF."""
    from svduty.assessment import workers as pool

    html_text = print_html(html_text)
    key = digest(BUILT.sub("", html_text), "pdf", _version("weasyprint"))
    kept = cache.path(key, "pdf") if cache else None
    if kept is not None and kept.exists():
        shutil.copyfile(kept, path)
        return None
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
    if workers is None:
        pool.write_pdf(html_text, path, kept)
        return None
    return workers.later(pool.write_pdf, html_text, path, kept)


def print_html(html_text: str) -> str:
    """The HTML with each inline chart SVG as an image of the same SVG (a data: URL) whose
    alt text is the chart's text alternative: the PDF stays vector and tags each chart as a
    figure with its alternative, and WeasyPrint need not style every mark of every chart as
    an HTML element (a tenth of a PDF's time)."""
    def image(match: re.Match) -> str:
        svg = match.group(0)
        alt = SVG_DESC.search(svg)
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        return (f'<img class="chart" alt="{alt.group(1) if alt else ""}" '
                f'src="data:image/svg+xml;base64,{data}">')
    return INLINE_SVG.sub(image, html_text)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def docx(edition: Edition, context: dict, path: Path,
         cache: DiskCache | None = None) -> None:
    """An editable Word document with the same content: real headings and full tables
    (those over :data:`DOCX_ROWS` rows in an appendix at the end, with a note in place)."""
    from docx import Document
    from docx.shared import Cm, Pt

    from svduty.assessment.charts import FONT

    doc = Document()
    doc.styles["Normal"].font.name = FONT.split(",")[0]  # Arial: the charts' font
    doc.styles["Normal"].font.size = Pt(10)
    for section in doc.sections:
        section.header.paragraphs[0].text = edition.marking
        section.footer.paragraphs[0].text = edition.marking
    doc.core_properties.title = context["title"]
    styled = Styled(doc)
    styled(context["title"], "Title")
    doc.add_paragraph(f"{context['scope']}. Definition version {context['definition_version']}."
                      f" {edition.label}.")
    doc.add_paragraph(edition.notice)
    cited, long = citations(edition), []
    for s in edition.sections:
        styled(f"{s.number}. {s.spec.title}", "Heading 1")
        for p in s.paragraphs:
            doc.add_paragraph(p)
        for f in s.findings:
            styled(f"{f.text} (Source: {citation(f, cited)['text']}.)", "List Bullet")
        for x in s.exhibits:
            styled(x.spec.title, "Heading 2")
            _, alt, png = chart_parts(x, cache)
            if png:
                doc.add_picture(io.BytesIO(png), width=Cm(16))
                doc.inline_shapes[-1]._inline.docPr.set("descr", alt)
            if x.table.is_empty():
                doc.add_paragraph("No data for this scope.")
            elif x.table.height > DOCX_ROWS:
                long.append(x)
                doc.add_paragraph(f"The full table ({x.table.height:,} rows) is in the "
                                  "appendix \"Long tables\" at the end of this document, and "
                                  f"in tables/{x.spec.key}.csv.")
            else:
                docx_table(doc, x.table, x.spec.count_columns(x.table.columns))
            for c in x.caveats:
                doc.add_paragraph(f"Note: {c}").runs[0].font.size = Pt(8)
    styled("Appendix: the local definition", "Heading 1")
    doc.add_paragraph(context["definition_about"])
    for rule in context["definition_rules"].iter_rows(named=True):  # too wide for a table
        styled(f"{rule['category']} (rule {rule['rule']})", "Heading 3")
        for column, value in rule.items():
            if column not in ("rule", "category"):
                line = doc.add_paragraph()
                line.add_run(f"{label(column).capitalize()}: ").bold = True
                line.add_run(str(value))
    if long:
        styled("Appendix: long tables", "Heading 1")
        for x in long:
            styled(x.spec.title, "Heading 2")
            docx_table(doc, x.table, x.spec.count_columns(x.table.columns))
    doc.save(path)


class Styled:
    """Adds paragraphs in a named style, each style looked up once: python-docx looks a
    style up by name for every paragraph, and that was about half a document's time."""

    def __init__(self, doc) -> None:
        self.doc = doc
        self.ids: dict[str, str] = {}

    def __call__(self, text: str, style: str):
        if style not in self.ids:
            self.ids[style] = self.doc.styles[style].style_id
        paragraph = self.doc.add_paragraph(text)
        paragraph._p.style = self.ids[style]
        return paragraph


def docx_table(doc, table: pl.DataFrame, counts: Collection[str] = ()) -> None:
    """Every row of the table as a Word table, its header row repeated on each page
    (`counts`: the columns holding counts, see :func:`cell`)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    t = doc.add_table(rows=2, cols=len(table.columns))
    t.style = "Light Grid Accent 1"
    for i, c in enumerate(table.columns):
        t.rows[0].cells[i].text = label(c)
    header = t.rows[0]._tr.get_or_add_trPr()
    header.append(OxmlElement("w:tblHeader"))
    for cell_ in t.rows[1].cells:
        cell_.text = "x"  # a row to copy: one run per cell
    template = t.rows[1]._tr
    body = template.getparent()
    body.remove(template)
    for row in table.iter_rows():
        tr = deepcopy(template)
        for text_, value in zip(tr.iter(qn("w:t")), zip(row, table.columns, strict=True),
                                strict=True):
            text_.text = cell(*value, value[1] in counts)
        body.append(tr)
