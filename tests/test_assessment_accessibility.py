"""The published Strategic Needs Assessment meets WCAG 2.2 AA: axe-core (vendored in
tests/assets, MPL-2.0) run in headless Chromium finds no serious or critical violations; the
page loads nothing from the network; every chart has a text alternative and a data table;
every table has a caption and header scopes; and the page is usable from the keyboard."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from svduty.assessment.build import assess
from svduty.partnership import Partnership

CHROMIUM = Path(os.environ.get("SVDUTY_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).parent / "assets" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = {"serious", "critical"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def published(demo_partnership, tmp_path_factory) -> Path:
    """The published edition's sna.html, built from a private copy of the demo (the build
    writes narrative templates and the audit log into the partnership)."""
    root = tmp_path_factory.mktemp("sna-a11y") / "anytown"
    shutil.copytree(demo_partnership, root,
                    ignore=shutil.ignore_patterns("partner-side", "inbox"))
    out = root / "sna"
    assess(Partnership(root), out, editions=("published",))
    return out / "published" / "sna.html"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Loaded:
    """A page with the report loaded, and every URL it asked for."""

    def __init__(self, browser, html: Path) -> None:
        self.requests: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._local_only)
        self.page = self.context.new_page()
        self.page.goto(html.as_uri(), wait_until="load")

    def _local_only(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            route.abort()


@pytest.fixture
def loaded(browser, published) -> Iterator[Loaded]:
    page = Loaded(browser, published)
    yield page
    page.context.close()


def axe(page) -> dict:
    """axe-core's results for the WCAG 2.0-2.2 A and AA rules, every <details> opened so
    the data tables are checked too."""
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.add_script_tag(content=AXE.read_text("utf-8"))
    return page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)


def describe(violation: dict) -> str:
    nodes = "; ".join(" ".join(n["target"]) for n in violation["nodes"][:3])
    return (f"{violation['impact']} {violation['id']} ({violation['help']}): "
            f"{len(violation['nodes'])} element(s), e.g. {nodes}")


def test_axe_finds_no_serious_or_critical_violations(loaded):
    results = axe(loaded.page)
    assert results["testEngine"]["version"].startswith("4.")
    assert len(results["passes"]) >= 20  # axe really ran its rules on the report
    blocking = [describe(v) for v in results["violations"] if v["impact"] in BLOCKING]
    assert not blocking, "\n".join(blocking)
    for v in results["violations"]:
        warnings.warn(f"axe: {describe(v)}", stacklevel=1)


def test_loads_nothing_from_the_network(loaded):
    assert loaded.requests and loaded.requests[0].startswith("file:")
    outside = [url for url in loaded.requests if not url.startswith(("file:", "data:"))]
    assert not outside
    assert loaded.page.evaluate("document.querySelectorAll('script, iframe, link').length") == 0


CHARTS = """() => [...document.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg'))
  .map(svg => {
    const holder = svg.parentElement.closest('[role=img]');
    const ids = holder ? (holder.getAttribute('aria-labelledby') || '').split(/\\s+/) : [];
    const name = holder ? (holder.getAttribute('aria-label')
      || ids.map(id => (document.getElementById(id) || {}).textContent || '').join(' ')) : '';
    const figure = svg.closest('figure');
    const after = figure && figure.nextElementSibling;
    return {name: name.trim(), figure: !!figure,
            table: !!(after && after.matches('details') && after.querySelector('table'))};
  })"""


def test_every_chart_has_a_text_alternative_and_a_data_table(loaded):
    charts = loaded.page.evaluate(CHARTS)
    assert len(charts) >= 8
    for chart in charts:
        assert chart["figure"], chart
        assert len(chart["name"]) > 60, chart  # a description, not just a title
        assert chart["table"], chart
    assert len({c["name"] for c in charts}) == len(charts)


TABLES = """() => [...document.querySelectorAll('table')].map(t => ({
  caption: (t.caption ? t.caption.textContent : '').trim(),
  headers: [...t.querySelectorAll('th')].map(th => th.getAttribute('scope')),
  columns: t.querySelectorAll('thead th').length,
  widest: Math.max(0, ...[...t.querySelectorAll('tbody tr')].map(r => r.cells.length))}))"""


def test_every_table_has_a_caption_and_header_scopes(loaded):
    tables = loaded.page.evaluate(TABLES)
    assert len(tables) >= 15
    for table in tables:
        assert table["caption"], table
        assert table["headers"] and all(s in {"col", "row"} for s in table["headers"]), table
        assert table["columns"] >= table["widest"], table


FOCUSED = """() => { const e = document.activeElement, box = e.getBoundingClientRect(),
  style = getComputedStyle(e);
  return {tag: e.tagName.toLowerCase(), cls: e.className, href: e.getAttribute('href'),
          in_main: !!e.closest('main'), visible: box.left >= 0 && box.top >= 0
            && box.width > 0 && box.right <= innerWidth && box.bottom <= innerHeight,
          outline: parseFloat(style.outlineWidth) || 0}; }"""


def test_tab_reaches_the_skip_link_first_and_it_skips_to_the_content(loaded):
    page = loaded.page
    page.keyboard.press("Tab")
    skip = page.evaluate(FOCUSED)
    assert skip["tag"] == "a" and skip["cls"] == "skip", skip
    assert skip["visible"] and skip["outline"] > 0, skip
    target = skip["href"].removeprefix("#")
    assert page.evaluate("id => document.getElementById(id)?.tagName", target) == "MAIN"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == f"#{target}"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["in_main"]


def test_tables_open_and_scroll_from_the_keyboard(loaded):
    page = loaded.page
    positive = "document.querySelectorAll('[tabindex]:not([tabindex=\"0\"])').length"
    assert page.evaluate(positive) == 0
    page.focus("main details:not([open]) > summary")
    focused = page.evaluate(FOCUSED)
    assert focused["tag"] == "summary" and focused["outline"] > 0, focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.parentElement.open")
    page.keyboard.press("Tab")
    region = page.evaluate("""() => { const e = document.activeElement;
      return {role: e.getAttribute('role'), name: e.getAttribute('aria-label'),
              tabindex: e.getAttribute('tabindex'), table: !!e.querySelector('table')}; }""")
    # tabindex too: Chromium alone makes scroll boxes focusable; other browsers need it
    assert region["role"] == "region" and region["name"] and region["table"], region
    assert region["tabindex"] == "0", region
