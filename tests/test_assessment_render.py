"""Rendering details of the SNA that need no analysis: Word tables in full, citations in
words, and PDFs reused from the disk cache when an edition has not changed."""

from __future__ import annotations

import os
from types import SimpleNamespace

import polars as pl
from docx import Document
from docx.oxml.ns import qn

from svduty.assessment import render, workers
from svduty.assessment.cache import DiskCache
from svduty.assessment.contents import Exhibit
from svduty.assessment.findings import Finding


def test_word_tables_hold_every_row_with_a_repeating_header():
    table = pl.DataFrame({"lsoa21_code": [f"E0100{i:04d}" for i in range(250)],
                          "events": list(range(250)), "share_of_people": [0.5] * 250})
    doc = Document()
    render.docx_table(doc, table)
    rows = doc.tables[0].rows
    assert len(rows) == 251
    assert [c.text for c in rows[0].cells] == ["LSOA", "events", "share of people"]
    assert [c.text for c in rows[250].cells] == ["E01000249", "249", "50.0%"]
    assert rows[0]._tr.trPr.find(qn("w:tblHeader")) is not None


def _edition(*exhibits: tuple[str, str, str, int]) -> SimpleNamespace:
    """A stand-in edition: one section per (key, result, title, rows) exhibit."""
    sections = [SimpleNamespace(number=n, exhibits=[SimpleNamespace(
        spec=SimpleNamespace(key=key, result=result, title=title),
        table=pl.DataFrame({"x": list(range(rows))}))])
        for n, (key, result, title, rows) in enumerate(exhibits, start=3)]
    return SimpleNamespace(sections=sections)


def test_findings_cite_the_exhibit_title_not_the_result_id():
    edition = _edition(("trend-change", "trend-change", "Change in the latest 12 months", 3),
                       ("empty", "places-gi-star", "Hot and cold spots", 0))
    cited = render.citations(edition)
    shown = Finding("sv-change", "summary", "Up.", "trend-change", source="Change by category")
    assert render.citation(shown, cited) == {
        "text": "Change in the latest 12 months, section 3", "href": "trend-change"}
    hidden = Finding("gi", "places", "Hot.", "places-gi-star", source="Gi* hot spots")
    assert render.citation(hidden, cited) == {"text": "Gi* hot spots", "href": ""}


def test_an_unchanged_edition_reuses_its_pdf(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path / "partnership", "pdf")
    page = "<p>{}</p><p class='meta'><span class=\"built\">Built {}.</span></p>"
    made = []
    real = workers.write_pdf
    monkeypatch.setattr(workers, "write_pdf", lambda *a: made.append(a) or real(*a))
    render.pdf(page.format("same", "01 May 2025 10:00"), tmp_path / "a.pdf", cache)
    render.pdf(page.format("same", "02 May 2025 11:30"), tmp_path / "b.pdf", cache)
    assert len(made) == 1  # only the build time differs: the PDF is reused
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    render.pdf(page.format("changed", "02 May 2025 11:30"), tmp_path / "c.pdf", cache)
    assert len(made) == 2 and (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def test_pdfs_written_by_a_worker(tmp_path):
    with workers.workers(1) as jobs:
        render.pdf("<h1>Title</h1><p>Text.</p>", tmp_path / "w.pdf", None, jobs)
        jobs.wait()
        assert jobs.pool is not None and jobs.peak_mib > 0
    assert (tmp_path / "w.pdf").read_bytes().startswith(b"%PDF")


def test_the_cache_keeps_the_most_recent_files(tmp_path):
    cache = DiskCache(tmp_path, "pdf")
    cache.keep = 2
    for i in range(4):
        path = cache.put(f"k{i}", "pdf", b"%PDF")
        stamp = 1_000_000 + i
        os.utime(path, (stamp, stamp))
    cache.prune()
    assert sorted(p.name for p in cache.folder.iterdir()) == ["k2.pdf", "k3.pdf"]
    assert cache.get("k3", "pdf") == b"%PDF" and cache.get("k0", "pdf") is None


def test_word_puts_long_tables_in_full_in_an_appendix(tmp_path):
    short = pl.DataFrame({"ward_name": ["A", "B"], "events": [10, 20]})
    long = pl.DataFrame({"lsoa21_code": [f"E01{i:06d}" for i in range(render.DOCX_ROWS + 40)],
                         "events": list(range(render.DOCX_ROWS + 40))})
    exhibits = [SimpleNamespace(spec=Exhibit(key, key, title, tuple(table.columns),
                                             counts=("events",)),
                                table=table, chart=None, caveats=[])
                for key, title, table in (("short", "Short table", short),
                                          ("long", "Long table", long))]
    exhibits.append(SimpleNamespace(spec=Exhibit("none", "none", "No table", ("events",),
                                                 counts=("events",)),
                                    table=pl.DataFrame(), chart=None,
                                    caveats=["Why there is nothing to show."]))
    section = SimpleNamespace(number=3, spec=SimpleNamespace(title="Places"), paragraphs=[],
                              exhibits=exhibits, findings=[Finding(
                                  "k", "places", "A finding.", "long", source="Long result")])
    edition = SimpleNamespace(marking="OFFICIAL", label="Published edition", notice="n",
                              sections=[section])
    context = {"title": "SNA", "scope": "Anytown", "definition_version": "1",
               "definition_about": "Our definition, version 1.",
               "definition_rules": pl.DataFrame({"rule": ["knife"], "category": ["Knife"],
                                                 "maximum_penalty": ["Four years."]})}
    render.docx(edition, context, tmp_path / "sna.docx")
    doc = Document(str(tmp_path / "sna.docx"))
    assert [len(t.rows) for t in doc.tables] == [3, render.DOCX_ROWS + 41]
    texts = [p.text for p in doc.paragraphs]
    rule = texts.index("Knife (rule knife)")  # each rule a heading and its facts, not a table
    assert texts[rule + 1] == "Maximum penalty: Four years."
    assert "A finding. (Source: Long table, section 3.)" in texts
    note = next(t for t in texts if t.startswith("The full table"))
    assert f"({render.DOCX_ROWS + 40} rows)" in note and "tables/long.csv" in note
    empty = texts.index("No data for this scope.")
    assert texts[empty + 1] == "Note: Why there is nothing to show."  # kept with no table
    assert texts.index("Appendix: long tables") > texts.index("Appendix: the local definition")


def test_kept_analyses_come_back_exactly(demo_results, demo_partnership, tmp_path):
    from svduty.analysis.run import Run
    from svduty.analysis.scope import resolve_scope
    from svduty.assessment import reuse
    from svduty.partnership import Partnership

    partnership = Partnership(demo_partnership)
    with partnership.warehouse(read_only=True) as wh:
        scope = resolve_scope(partnership, wh)
    run = Run(scope, list(demo_results.values()), {}, {"trend": 1.5}, {"trend": 3})
    here = SimpleNamespace(root=tmp_path)  # keep it outside the shared demo folder
    reuse.save(here, "key", run)
    back = reuse.load(here, "key")
    assert back.scope == scope and back.seconds == run.seconds and back.made == run.made
    for a, b in zip(run.results, back.results, strict=True):
        assert a.table.equals(b.table) and a.table.schema == b.table.schema, a.name
        for part in ("name", "title", "method", "sources", "loads", "definition_version",
                     "period", "caveats"):
            assert getattr(a.meta, part) == getattr(b.meta, part), (a.name, part)
    assert reuse.load(here, "another key") is None


def test_the_analyses_key_changes_with_the_warehouse(tmp_path):
    from svduty.assessment import reuse

    (tmp_path / "warehouse.duckdb").write_bytes(b"x")
    (tmp_path / "definition.toml").write_text("version = '1'\n")
    here = SimpleNamespace(root=tmp_path)
    key = reuse.inputs_key(here, "Plymouth", None)
    assert reuse.inputs_key(here, "Plymouth", None) == key
    assert reuse.inputs_key(here, None, None) != key
    os.utime(tmp_path / "warehouse.duckdb", (2_000_000, 2_000_000))  # an ingest
    assert reuse.inputs_key(here, "Plymouth", None) != key
    changed = reuse.inputs_key(here, "Plymouth", None)
    (tmp_path / "definition.toml").write_text("version = '2'\n")
    assert reuse.inputs_key(here, "Plymouth", None) != changed
