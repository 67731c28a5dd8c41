"""Render an edition of the assessment: HTML (Jinja2), PDF (WeasyPrint, from the same HTML),
DOCX (python-docx, from the same content) and CSV tables.

Charts come from one Altair specification per exhibit (:mod:`svduty.assessment.charts`),
rendered offline by vl-convert: inline SVG in the HTML and PDF, PNG in the DOCX, each with a
text alternative and its data table beside it.
"""

from __future__ import annotations

import io
import math
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from jinja2 import Environment, select_autoescape

if TYPE_CHECKING:
    from svduty.assessment.build import Edition, ExhibitOut

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


def cell(value: object, column: str) -> str:
    """A value as people read it: thousands separators, sensible decimals, '*' kept."""
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


def chart_parts(x: ExhibitOut) -> tuple[str | None, str, bytes | None]:
    """SVG, text alternative and PNG of the exhibit's chart (None where there is none)."""
    if x.chart is None:
        return None, "", None
    from svduty.assessment import charts  # renders each chart and format once per build

    return (charts.render(x.chart, "svg"), charts.text_alternative(x.chart),
            charts.render(x.chart, "png"))


def html(edition: Edition, context: dict) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(resources.files("svduty.assessment").joinpath(
        "templates/sna.html.j2").read_text("utf-8"))
    sections = []
    for s in edition.sections:
        exhibits = []
        for x in s.exhibits:
            svg, alt, _ = chart_parts(x)
            exhibits.append({
                "key": x.spec.key, "title": x.spec.title, "result": x.spec.result,
                "chart_svg": svg, "alt": alt, "caveats": x.caveats,
                "header": [{"label": label(c), "num": x.table.schema[c].is_numeric()}
                           for c in x.table.columns],
                "rows": [[cell(v, c) for v, c in zip(row, x.table.columns, strict=True)]
                         for row in x.table.iter_rows()],
                "empty_reason": "this analysis had nothing to show for this scope (see "
                                "the data quality section)."})
        sections.append({"key": s.spec.key, "number": s.number, "title": s.spec.title,
                         "paragraphs": s.paragraphs, "findings": s.findings,
                         "exhibits": exhibits})
    methods = [{"name": x.result.meta.name, "title": x.result.meta.title,
                "method": x.result.meta.method, "caveats": x.result.meta.caveats}
               for s in edition.sections for x in s.exhibits if x.result]
    return template.render(**context, sections=sections, marking=edition.marking,
                           edition_label=edition.label, edition_notice=edition.notice,
                           methods=unique(methods))


def unique(methods: list[dict]) -> list[dict]:
    seen, out = set(), []
    for m in methods:
        if m["name"] not in seen:
            seen.add(m["name"])
            out.append(m)
    return out


def pdf(html_text: str, path: Path) -> None:
    """A4 PDF from the same HTML; tagged PDF/UA-1 where WeasyPrint manages it."""
    from weasyprint import HTML

    document = HTML(string=html_text, base_url=str(path.parent))
    try:
        document.write_pdf(path, pdf_variant="pdf/ua-1", pdf_tags=True)
    except Exception:  # PDF/UA refused (e.g. an image without alt): a tagged plain PDF
        document.write_pdf(path, pdf_tags=True)


def docx(edition: Edition, context: dict, path: Path) -> None:
    """An editable Word document with the same content: real headings and tables."""
    from docx import Document
    from docx.shared import Cm, Pt

    doc = Document()
    doc.styles["Normal"].font.name = "Arial"
    doc.styles["Normal"].font.size = Pt(10)
    for section in doc.sections:
        section.header.paragraphs[0].text = edition.marking
        section.footer.paragraphs[0].text = edition.marking
    doc.core_properties.title = context["title"]
    doc.add_heading(context["title"], 0)
    doc.add_paragraph(f"{context['scope']}. Definition version {context['definition_version']}."
                      f" {edition.label}.")
    doc.add_paragraph(edition.notice)
    for s in edition.sections:
        doc.add_heading(f"{s.number}. {s.spec.title}", 1)
        for p in s.paragraphs:
            doc.add_paragraph(p)
        for f in s.findings:
            doc.add_paragraph(f"{f.text} [{f.result}]", style="List Bullet")
        for x in s.exhibits:
            doc.add_heading(x.spec.title, 2)
            _, alt, png = chart_parts(x)
            if png:
                doc.add_picture(io.BytesIO(png), width=Cm(16))
                doc.inline_shapes[-1]._inline.docPr.set("descr", alt)
            if x.table.is_empty():
                doc.add_paragraph("No data for this scope.")
                continue
            docx_table(doc, x.table)
            for c in x.caveats:
                doc.add_paragraph(f"Note: {c}").runs[0].font.size = Pt(8)
    doc.add_heading("Appendix: the local definition", 1)
    doc.add_paragraph(context["definition_text"]).runs[0].font.size = Pt(7)
    doc.save(path)


def docx_table(doc, table: pl.DataFrame, limit: int = 60) -> None:
    rows = table.head(limit)
    t = doc.add_table(rows=1, cols=len(rows.columns))
    t.style = "Light Grid Accent 1"
    for i, c in enumerate(rows.columns):
        t.rows[0].cells[i].text = label(c)
    for row in rows.iter_rows():
        cells = t.add_row().cells
        for i, (v, c) in enumerate(zip(row, rows.columns, strict=True)):
            cells[i].text = cell(v, c)
    if table.height > limit:
        doc.add_paragraph(f"First {limit} of {table.height:,} rows; all rows are in the "
                          "tables folder.")
