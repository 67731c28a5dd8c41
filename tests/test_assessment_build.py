"""`svduty assess` on the demo: both editions in every format, the protective marking on
every page, the manifest tracing every figure, published tables free of small counts, and
analysts' narrative overrides surviving a rebuild."""

from __future__ import annotations

import base64
import gc
import json
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from docx import Document
from markupsafe import escape

from svduty.assessment import render
from svduty.assessment.build import assess
from svduty.assessment.contents import SECTIONS
from svduty.partnership import Partnership
from svduty.runtime import THRESHOLDS

build_thresholds: set[tuple[int, int, int]] = set()  # the collector's, as the build went


@pytest.fixture(scope="module")
def built(demo_partnership, tmp_path_factory) -> tuple[Path, Path]:
    """A private copy of the demo (the build writes narrative templates and the audit log),
    with one analyst override, and the assessment built from it."""
    root = tmp_path_factory.mktemp("sna") / "anytown"
    shutil.copytree(demo_partnership, root, ignore=shutil.ignore_patterns("partner-side",
                                                                          "inbox"))
    own = root / "assessment" / "narrative"
    own.mkdir(parents=True)
    (own / "places.intro.md").write_text("Our own words about places.\n\nA second paragraph.")
    out = root / "sna"
    assess(Partnership(root), out, progress=lambda _: build_thresholds.add(gc.get_threshold()))
    return root, out


def test_the_build_collects_garbage_less_often_and_then_as_before(built):
    assert build_thresholds == {THRESHOLDS}
    assert gc.get_threshold() != THRESHOLDS


def test_both_editions_in_every_format(built):
    _, out = built
    for edition in ("restricted", "published"):
        folder = out / edition
        for name in ("sna.html", "sna.pdf", "sna.docx", "manifest.json"):
            assert (folder / name).stat().st_size > 10_000, (edition, name)
        assert len(list((folder / "tables").glob("*.csv"))) >= 20


def test_html_is_self_contained(built):
    _, out = built
    html = (out / "published" / "sna.html").read_text()
    for attribute in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert attribute not in html
    assert html.count("<svg") >= 8 and "<script" not in html
    for section in SECTIONS:
        assert f'id="{section.key}"' in html


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
@pytest.mark.parametrize(("edition", "marking"), [("restricted", "OFFICIAL-SENSITIVE"),
                                                  ("published", "OFFICIAL")])
def test_marking_and_page_number_on_every_pdf_page(built, edition, marking):
    _, out = built
    text = subprocess.run(["pdftotext", "-layout", str(out / edition / "sna.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) > 20
    for number, page in enumerate(pages, start=1):
        lines = [line.strip() for line in page.strip().splitlines() if line.strip()]
        assert lines[0] == marking, (number, lines[0])
        assert f"Page {number} of {len(pages)}" in page
    info = subprocess.run(["pdfinfo", str(out / edition / "sna.pdf")], capture_output=True,
                          text=True, check=True).stdout
    assert "Tagged:          yes" in info


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
@pytest.mark.parametrize("edition", ["restricted", "published"])
def test_no_pdf_text_runs_past_the_right_margin(built, edition):
    """Every word of every page lies inside the A4 page's 18 mm side margins (a table too
    wide for the page would be cut off at its edge)."""
    _, out = built
    boxes = subprocess.run(["pdftotext", "-bbox", str(out / edition / "sna.pdf"), "-"],
                           capture_output=True, text=True, check=True).stdout
    right = 595.28 - 18 / 25.4 * 72 + 1  # A4 width less the margin, in points, plus 1 pt
    pages = boxes.split("<page ")[1:]
    past = [(number, word) for number, page in enumerate(pages, start=1)
            for x_max, word in re.findall(r'xMax="([\d.]+)"[^>]*>([^<]*)</word>', page)
            if float(x_max) > right]
    assert len(pages) > 20 and not past, past[:10]


@pytest.mark.skipif(shutil.which("fc-match") is None, reason="fontconfig not installed")
@pytest.mark.parametrize("edition", ["restricted", "published"])
def test_printed_tables_give_every_word_room_in_its_column(built, edition):
    """The PDF lays tables out at fixed column widths computed from their texts: every word
    of every cell fits its column, measured with the font the PDF uses (bold headings), so
    no text runs into the next column."""
    from html import unescape

    from PIL import ImageFont

    def font(style: str) -> ImageFont.FreeTypeFont:
        path = subprocess.run(["fc-match", "-f", "%{file}", f"Arial:{style}"],
                              capture_output=True, text=True, check=True).stdout
        return ImageFont.truetype(path, 100)

    fonts = {"th": font("bold"), "td": font("regular")}
    size_pt, page_pt, padding_pt = 0.85 * 12, (210 - 36) / 25.4 * 72, 2 * 6
    html = (built[1] / edition / "sna.html").read_text()
    tables = re.findall(r'<table class="sized">(.*?)</table>', html, re.S)
    assert len(tables) >= 10
    for table in tables:
        widths = [float(w) for w in re.findall(r'<col style="width: ([\d.]+)%">', table)]
        assert abs(sum(widths) - 100) < 1
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
            cells = re.findall(r"<(t[hd])[^>]*>(.*?)</t[hd]>", row, re.S)
            assert len(cells) == len(widths)
            for (tag, text), width in zip(cells, widths, strict=True):
                room = width / 100 * page_pt - padding_pt
                for word in unescape(re.sub(r"<[^>]+>", "", text)).split():
                    assert fonts[tag].getlength(word) / 100 * size_pt <= room, (word, width)


@pytest.mark.skipif(shutil.which("pdfimages") is None, reason="poppler-utils not installed")
def test_pdf_charts_are_the_html_svgs_as_vector_images_with_their_alternatives(built):
    _, out = built
    html = (out / "published" / "sna.html").read_text()
    svgs = render.INLINE_SVG.findall(html)
    printed = render.print_html(html)
    images = re.findall(r'<img class="chart" alt="([^"]*)" src="data:image/svg\+xml;base64,'
                        r'([^"]+)">', printed)
    assert "<svg" not in printed and len(images) == len(svgs) >= 8
    for svg, (alt, data) in zip(svgs, images, strict=True):
        assert base64.b64decode(data).decode() == svg
        assert alt and f"<desc>{alt}</desc>" in svg
    pdf = out / "published" / "sna.pdf"
    listed = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    assert len(listed) == 2  # the header lines only: charts are drawn as vectors, not pixels
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Offences per 1,000 residents" in text  # a map legend's title, drawn as text


def test_docx_has_real_headings_tables_and_the_marking(built):
    _, out = built
    doc = Document(str(out / "published" / "sna.docx"))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert "1. Executive summary and key findings" in headings
    assert len(doc.tables) >= 15 and len(doc.inline_shapes) >= 5
    assert all(s.header.paragraphs[0].text == "OFFICIAL" for s in doc.sections)
    assert all(shape._inline.docPr.get("descr") for shape in doc.inline_shapes)


def test_manifest_traces_every_exhibit_to_its_result(built):
    root, out = built
    manifest = json.loads((out / "published" / "manifest.json").read_text())
    assert manifest["marking"] == "OFFICIAL" and manifest["definition_version"]
    exhibits = [f for f in manifest["figures"] if f["kind"] == "exhibit" and f["rows"]]
    findings = [f for f in manifest["figures"] if f["kind"] == "finding"]
    assert len(exhibits) >= 20 and len(findings) >= 10
    for f in exhibits:
        assert (out / "published" / f["table"]).exists(), f["key"]
        assert f["sources"] and f["loads"] and f["period"] and f["edition"] == "published"
    loaded = {r[0] for r in Partnership(root).warehouse(read_only=True).con.execute(
        "SELECT load_id FROM loads").fetchall()}
    assert {load for f in exhibits for load in f["loads"]} <= loaded


def test_published_tables_show_no_small_counts(built):
    """Every count column the contents mark as a count holds '*' or a number >= 8 (or 0)."""
    _, out = built
    low = Partnership(built[0]).config.disclosure.suppress_below
    starred = 0
    for section in SECTIONS:
        for x in section.exhibits:
            path = out / "published" / "tables" / f"{x.key}.csv"
            if not path.exists():
                continue
            table = pl.read_csv(path, infer_schema=False)
            counted = [c for c in table.columns if c != x.pivot[0]] if x.pivot else x.counts
            for column in counted:
                if column not in table.columns:
                    continue
                values = table.get_column(column).drop_nulls()
                starred += (values == "*").sum()
                numbers = values.filter(values != "*").cast(pl.Float64)
                assert not ((numbers >= 1) & (numbers < low)).any(), (x.key, column)
    restricted = pl.read_csv(out / "restricted" / "tables" / "times-hour-weekday.csv")
    assert restricted.columns[:3] == ["hour", "Monday", "Tuesday"] and restricted.height == 24
    days = restricted.drop("hour").to_numpy()
    assert ((days >= 1) & (days < low)).any()  # small counts kept in the restricted edition
    assert starred > 0



def test_published_counts_read_as_numbers_beside_their_stars(built):
    """Disclosure control turns the count columns to text ("3909", "*"); the HTML and Word
    tables still show each count with its thousands separator, right-aligned."""
    _, out = built
    html = (out / "published" / "sna.html").read_text()
    words = {c.text for t in Document(str(out / "published" / "sna.docx")).tables
             for row in t.rows for c in row.cells}
    checked = 0
    for section in SECTIONS:
        for x in section.exhibits:
            path = out / "published" / "tables" / f"{x.key}.csv"
            if not path.exists() or not x.counts:
                continue
            table = pl.read_csv(path, infer_schema=False)
            column = next((c for c in x.counts if c in table.columns), None)
            if column is None:
                continue
            big = [v for v in table.get_column(column).drop_nulls() if v.isdigit()
                   and int(v) >= 1000]
            for value in big[:3]:
                assert f'<td class="num">{int(value):,}</td>' in html, (x.key, value)
                assert f"{int(value):,}" in words, (x.key, value)
                checked += 1
    assert checked >= 3


def test_published_rates_and_shares_never_sit_beside_a_hidden_count(demo_partnership,
                                                                   demo_results):
    """A share, gap, change or rate is worked out from its count(s): where any is '*' it is
    blank, so the hidden count cannot be recovered from it (e.g. share x total). Thresholds
    are raised so that the demo's tables hide counts that have rates beside them."""
    from svduty.assessment.build import exhibit
    from svduty.assessment.disclosure import bases
    from svduty.partnership import Disclosure

    p = Partnership(demo_partnership)
    p.config = p.config.model_copy(update={"disclosure": Disclosure(
        suppress_below=300, rate_min_count=300)})
    checked = 0
    for x in (x for section in SECTIONS for x in section.exhibits if x.rates):
        table = exhibit(demo_results, x, "published", p).table
        for rate, of in x.rates.items():
            counts = [c for c in bases(of) if c in table.columns]
            if rate not in table.columns or not counts:
                continue
            hidden = table.filter(pl.any_horizontal([pl.col(c) == "*" for c in counts]))
            checked += hidden.height
            assert hidden.get_column(rate).is_null().all(), (x.key, rate)
    assert checked > 20


def test_analyst_overrides_survive_a_rebuild(built):
    root, out = built
    html = (out / "restricted" / "sna.html").read_text()
    assert "Our own words about places." in html and "A second paragraph." in html
    generated = root / "assessment" / "narrative" / "generated"
    assert (generated / "places.intro.md").exists()
    assert any(p.name.startswith("finding--") for p in generated.iterdir())
    assert (root / "assessment" / "narrative" / "places.intro.md").read_text().startswith(
        "Our own words")


def test_a_small_category_beside_its_total_gets_a_complement(demo_partnership):
    """One category of 3 next to 'All serious violence': hiding the 3 alone would let anyone
    subtract it back out, so a second category is hidden too, and the LP attacker agrees."""
    from svduty.analysis.result import Meta, Result
    from svduty.assessment import disclosure
    from svduty.assessment.build import exhibit
    from svduty.assessment.contents import SECTIONS

    spec = next(x for s in SECTIONS for x in s.exhibits if x.key == "trend-change")
    cats = ["All serious violence", "Firearm offences", "Rape", "Robbery"]
    table = pl.DataFrame({"level": "csp", "area_name": "Anytown", "sv_category": cats,
                          "count_before": [120, 3, 40, 77], "count_after": [130, 9, 50, 71],
                          "percent_change": 1.0, "ratio_lower": 0.9, "ratio_upper": 1.1,
                          "p_value": 0.5})
    result = Result(table, Meta(name="trend-change", title="t", method="m",
                                sources=["police-recorded"]))
    out = exhibit({"trend-change": result}, spec, "published",
                  Partnership(demo_partnership)).table
    before = dict(zip(out["sv_category"], out["count_before"], strict=True))
    assert before["Firearm offences"] == "*" and before["All serious violence"] == "120"
    assert sum(v == "*" for v in before.values()) >= 2
    assert out["count_after"].to_list() == ["130", "9", "50", "71"]  # nothing small there
    published = table.select("area_name", "sv_category", pl.col("count_before").alias("count"),
                             out["count_before"].alias("count_shown"))
    exposed = disclosure.audit_tables([disclosure.Table(
        "t", published, ("area_name", "sv_category"), total="All serious violence")],
        disclosure.resolve_limits(None))
    assert exposed == []


def test_the_definition_appendix_lists_every_rule_with_its_rationale(built):
    from svduty.definition.rules import load_definition

    root, out = built
    rules = load_definition(Partnership(root).definition_path).rules
    for edition in ("restricted", "published"):
        table = pl.read_csv(out / edition / "tables" / "definition.csv")
        assert table.get_column("rule").to_list() == [r.id for r in rules]
        assert table.get_column("maximum_penalty").to_list() == [
            r.rationale.maximum_penalty for r in rules]
        weights = dict(zip(table["rule"], table["harm_weight"], strict=True))
        assert any(r.harm == "css" for r in rules)
        for r in rules:  # in words, not the bare "css" of definition.toml
            assert ("ONS Crime Severity Score" in weights[r.id]) == (r.harm == "css"), r.id
    html = (out / "published" / "sna.html").read_text()
    assert "The rules of the local definition" in html
    for rule in rules:
        assert f'id="rule-{rule.id}"' in html and escape(rule.rationale.community_impact) in html
    words = "\n".join(p.text for p in Document(str(out / "published" / "sna.docx")).paragraphs)
    assert all(r.rationale.community_impact in words for r in rules)


def test_a_table_with_no_count_at_all_is_no_data_with_its_notes(plymouth_results,
                                                                  devon_police_uk):
    """From police.uk alone none of the Home Office core measures can be counted: the
    section says so in words instead of a grid of blanks."""
    from svduty.assessment.build import exhibit

    spec = next(x for s in SECTIONS for x in s.exhibits if x.key == "measures-core")
    result = plymouth_results[spec.result]
    assert spec.rows(result.table)["count"].is_null().all()  # every measure unavailable
    for edition in ("restricted", "published"):
        out = exhibit(plymouth_results, spec, edition, Partnership(devon_police_uk))
        assert out.table.is_empty() and out.chart is None
        assert any("unavailable" in c for c in out.caveats)



def test_charts_drawn_during_the_analyses_are_the_ones_the_editions_show(plymouth_results,
                                                                         devon_police_uk):
    """The charts started as each analysis finishes are the very ones each edition then
    shows (none is made twice), and every chart the restricted edition shows was started."""
    from svduty.analysis.run import Run
    from svduty.analysis.scope import resolve_scope
    from svduty.assessment import charts
    from svduty.assessment.build import draw_soon, prepare
    from svduty.assessment.workers import Workers

    p = Partnership(devon_police_uk)
    drawn: dict = {}
    draw_soon(list(plymouth_results.values()), p, drawn, Workers(None), None)
    assert len(drawn) >= 6
    early = {id(c) for c in drawn.values()}
    with p.warehouse(read_only=True) as wh:
        run = Run(resolve_scope(p, wh, "Plymouth"), results=list(plymouth_results.values()))
    for name in ("restricted", "published"):
        shown = [x.chart for s in prepare(p, run, plymouth_results, name, drawn).sections
                 for x in s.exhibits if x.chart is not None]
        if name == "restricted":
            assert {id(c) for c in shown} == early
        else:  # the same charts, less those withheld, plus maps drawn at a larger level
            assert {id(c) for c in shown} - early == {id(drawn[k]) for k in drawn if "@" in k}
    assert all(charts.render(c, "svg").startswith("<svg") for c in drawn.values())
