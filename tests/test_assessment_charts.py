"""Charts and maps of the Strategic Needs Assessment: one Vega-Lite spec, SVG and PNG offline.

Results are made by the analysis engine from the demo and from Plymouth (Devon police.uk),
written and read back as the report reads them.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import geopandas as gpd
import polars as pl
import pytest
import shapely

from svduty.analysis.result import Result, read_result
from svduty.assessment import charts, maps

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMESPACE = re.compile(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"')
SVG = "{http://www.w3.org/2000/svg}"
CHART_CASES = [(name, fn) for name, fn in charts.CHARTS.items()] + [
    ("trend-monthly", charts.category_mix)]


def _round_trip(results: dict[str, Result], out: Path) -> dict[str, Result]:
    """The Results as the report reads them: written as CSV + JSON and read back."""
    for result in results.values():
        result.write(out)
    return {p.stem: read_result(p) for p in out.glob("*.csv")}


@pytest.fixture(scope="module")
def demo(demo_results, tmp_path_factory) -> dict[str, Result]:
    return _round_trip(demo_results, tmp_path_factory.mktemp("demo-results"))


@pytest.fixture(scope="module")
def plymouth(plymouth_results, tmp_path_factory) -> dict[str, Result]:
    return _round_trip(plymouth_results, tmp_path_factory.mktemp("plymouth-results"))


def _no_external_urls(chart, svg: str) -> None:
    assert "http" not in json.dumps(charts.spec(chart))
    assert "http" not in NAMESPACE.sub("", svg)


def _check_rendered(chart) -> ET.Element:
    svg = charts.render(chart, "svg")
    png = charts.render(chart, "png")
    assert isinstance(svg, str) and svg.startswith("<svg")
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}desc").text == charts.text_alternative(chart)
    assert isinstance(png, bytes) and png.startswith(PNG_MAGIC) and len(png) > 5000
    _no_external_urls(chart, svg)
    return root


def _title(chart) -> str:
    title = chart.to_dict()["title"]
    return title["text"] if isinstance(title, dict) else title


def _datasets(spec: dict) -> list[list[dict]]:
    """Every inline data set of a spec, outermost and first layer first."""
    found = list(spec.get("datasets", {}).values())
    if "values" in spec.get("data", {}):
        found.append(spec["data"]["values"])
    for layer in spec.get("layer", []):
        found += _datasets(layer)
    return found


def _values(chart) -> list[dict]:
    """Rows of the chart's first inline data set."""
    return _datasets(chart.to_dict())[0]


@pytest.mark.parametrize(("name", "fn"), CHART_CASES, ids=[f.__name__ for _, f in CHART_CASES])
def test_chart_renders_with_title_and_text_alternative(demo, name, fn):
    chart = fn(demo[name])
    assert chart is not None
    assert _title(chart)
    assert len(charts.text_alternative(chart)) > 60  # says what the chart shows
    _check_rendered(chart)


LEGEND_LABEL = re.compile(r'role-legend-label"[^>]*><text[^>]*>([^<]*)</text>')


@pytest.mark.parametrize(("name", "fn"), CHART_CASES, ids=[f.__name__ for _, f in CHART_CASES])
def test_no_legend_repeats_an_entry(demo, name, fn):
    """Colour and shape of the same field share one legend: no second, grey legend of the
    same entries."""
    labels = LEGEND_LABEL.findall(charts.render(fn(demo[name]), "svg"))
    assert len(labels) == len(set(labels)), labels


@pytest.mark.parametrize(("name", "fn"), CHART_CASES, ids=[f.__name__ for _, f in CHART_CASES])
def test_empty_table_gives_no_chart(demo, name, fn):
    assert fn(demo[name].table.clear()) is None


def test_chart_colours_are_colour_blind_safe(demo):
    safe = set(charts.OKABE_ITO.values()) | {"white", "black"}
    for name, fn in CHART_CASES:
        text = json.dumps(fn(demo[name]).to_dict())
        colours = set(re.findall(r"#[0-9A-Fa-f]{6}", text))
        assert colours <= safe, (fn.__name__, colours - safe)
        schemes = set(re.findall(r'"scheme": "(\w+)"', text))
        assert schemes <= {"viridis", "blueorange"}, schemes


def test_monthly_trend_plots_partnership_counts(demo):
    table = demo["trend-monthly"].table
    chart = charts.monthly_trend(table)
    plotted = {r["month"]: r["value"] for r in _values(chart) if r["series"] == "Monthly count"}
    expected = table.filter((pl.col("level") == "partnership")
                            & (pl.col("sv_category") == charts.ALL))
    assert len(plotted) == expected.height == 42
    for month, count in expected.select("month", "count").iter_rows():
        assert plotted[str(month)] == count
    rolling = [r for r in _values(chart) if r["series"] == "12-month average"
               and r["value"] is not None]
    last = expected.sort("month").row(-1, named=True)
    assert rolling[-1]["value"] == pytest.approx(last["rolling_12m"] / 12)


def test_category_mix_sums_the_latest_twelve_months(demo):
    table = demo["trend-monthly"].table
    chart = charts.category_mix(table)
    got = {r["sv_category"]: r["count"] for r in _values(chart)}
    rows = table.filter((pl.col("level") == "partnership")
                        & (pl.col("sv_category") != charts.ALL))
    months = sorted(set(rows["month"]))[-12:]  # 42 consecutive months in the demo
    expected = {c: sum(r["count"] for r in rows.filter(pl.col("sv_category") == c)
                       .iter_rows(named=True) if r["month"] in months)
                for c in set(rows["sv_category"])}
    assert got == expected
    assert "Oct 2024 to Sep 2025" in charts.text_alternative(chart)


def test_force_comparison_scales_intervals_to_a_year(demo):
    chart = charts.force_comparison(demo["comparison-force"])
    rows = _values(chart)
    assert {r["level"] for r in rows} == {"csp"} and {r["category"] for r in rows} == {
        charts.ALL}
    for r in rows:
        assert r["lower"] < r["rate_per_1000_per_year"] < r["upper"]
        years = r["rate_per_1000"] / r["rate_per_1000_per_year"]
        assert years == pytest.approx(r["months_with_data"] / 12, rel=1e-3)
    assert [r["area"] for r in rows if r["in_scope"]] == ["This partnership"]


def test_knox_marks_significant_cells(demo):
    table = demo["near-repeat-knox"].table
    rows = _values(charts.knox(table))
    starred = {(r["space_from_m"], r["time_from_days"]) for r in rows if r["label"].endswith("*")}
    expected = {(r["space_from_m"], r["time_from_days"])
                for r in table.filter(pl.col("p_value") < 0.05).iter_rows(named=True)}
    assert starred == expected


def test_text_alternative_names_the_peak(demo):
    table = demo["times-hour-weekday"].table
    top = table.sort("count").row(-1, named=True)
    text = charts.text_alternative(charts.hour_weekday(table))
    assert f"{top['weekday_name']} {top['hour']:02d}:00" in text


# -- maps -----------------------------------------------------------------------------------

def _shapes(root: ET.Element) -> list[ET.Element]:
    """The area paths of a map SVG (one per feature of the geoshape layer)."""
    groups = [g for g in root.iter(f"{SVG}g") if "mark-shape" in (g.get("class") or "")]
    assert len(groups) == 1
    return list(groups[0].iter(f"{SVG}path"))


def test_rate_map_has_one_path_per_lsoa(demo, demo_partnership):
    table = demo["places-lsoa-rates"].table
    chart = maps.rate_map(table, demo_partnership)
    feats = _values(chart)
    assert len(feats) == table.height == 170
    assert {f["properties"]["lsoa21_code"] for f in feats} == set(table["lsoa21_code"])
    assert len(_shapes(_check_rendered(chart))) == table.height
    # the classes order the rates: every LSOA in a higher class has a higher rate
    labels = chart.to_dict()["encoding"]["color"]["scale"]["domain"]
    rank = {label: i for i, label in enumerate(labels)}
    by_class = sorted(feats, key=lambda f: f["properties"]["rate_per_1000"])
    classes = [rank[f["properties"]["band"]] for f in by_class]
    assert classes == sorted(classes) and len(set(classes)) == 5


def test_simplified_boundaries_keep_their_areas(demo_partnership):
    layer = maps.boundaries(demo_partnership)
    simple = maps.simplified(layer.geometry.values)
    original = shapely.area(layer.geometry.values)
    assert not shapely.is_empty(simple).any() and shapely.is_valid(simple).all()
    assert abs(shapely.area(simple) / original - 1).max() < 0.05
    # a coverage: shared edges stay shared, so the union has no slivers between areas
    gap = shapely.area(shapely.union_all(layer.geometry.values)) - shapely.area(
        shapely.union_all(simple))
    assert abs(gap) / original.sum() < 0.005


@pytest.mark.parametrize(("name", "fn", "column"), [
    ("places-gi-star", maps.gi_star_map, "class"),
    ("places-hotspot-classes", maps.hotspot_map, "category")])
def test_class_maps_mark_each_class_with_a_symbol(demo, demo_partnership, name, fn, column):
    table = demo[name].table
    chart = fn(table, demo_partnership)
    spec = chart.to_dict()
    datasets = _datasets(spec)
    areas = next(d for d in datasets if d[0].get("type") == "Feature")
    points = next(d for d in datasets if d[0].get("type") != "Feature")
    assert len(areas) == table.height
    marked = table.filter(~pl.col(column).is_in(["not significant", "no pattern"]))
    assert marked.height > 0
    assert sorted(p["cls"] for p in points) == sorted(marked[column])
    for p in points:  # each symbol lies inside its own LSOA
        area = next(a for a in areas if a["properties"]["name"] == p["name"])
        assert shapely.geometry.shape(area["geometry"]).contains(shapely.Point(p["x"], p["y"]))
    root = _check_rendered(chart)
    assert len(_shapes(root)) == table.height


def test_gi_star_map_finds_the_planted_persistent_hotspots(demo, demo_partnership):
    truth = json.loads((demo_partnership / "ground-truth.json").read_text())
    hot = {f["properties"]["lsoa21_code"] for f in _values(
        maps.gi_star_map(demo["places-gi-star"], demo_partnership))
        if f["properties"]["class"] == "hot spot"}
    assert hot and hot & set(truth["hotspots"]["persistent"])


def test_ward_map_sums_lsoas_to_the_engine_ward_rates(demo, demo_partnership):
    lsoa, ward = demo["places-lsoa-rates"].table, demo["places-ward-rates"].table
    summed = maps.ward_rates(lsoa).sort("ward_code")
    engine = ward.sort("ward_code")
    assert summed["ward_code"].to_list() == engine["ward_code"].to_list()
    assert summed["events"].to_list() == engine["events"].to_list()
    assert summed["rate_per_1000"].to_list() == pytest.approx(engine["rate_per_1000"].to_list())
    for source in (lsoa, ward):  # dissolved LSOAs, or the official ward layer
        chart = maps.ward_map(source, demo_partnership)
        assert len(_values(chart)) == ward.height
        assert len(_shapes(_check_rendered(chart))) == ward.height


def test_ward_outlines_cover_their_lsoas(demo, demo_partnership):
    lsoa = demo["places-lsoa-rates"].table
    wards = maps._ward_outlines(lsoa, demo_partnership)
    layer = maps.boundaries(demo_partnership)
    layer = layer[layer["lsoa21_code"].isin(set(lsoa["lsoa21_code"]))]
    assert wards.geometry.area.sum() == pytest.approx(layer.geometry.area.sum(), rel=1e-6)
    assert isinstance(wards, gpd.GeoDataFrame) and len(wards) == lsoa["ward_code"].n_unique()


def test_empty_tables_give_no_map(demo, demo_partnership):
    for name, fn in maps.MAPS.items():
        assert fn(demo[name].table.clear(), demo_partnership) is None


# -- Plymouth (real police.uk data, with gaps) ------------------------------------------------

def test_plymouth_maps_and_gappy_trend(plymouth, devon_police_uk):
    table = plymouth["places-lsoa-rates"].table
    boundaries = gpd.read_parquet(devon_police_uk / "reference/boundaries/lsoa21.parquet")
    assert set(table["lsoa21_code"]) <= set(boundaries["lsoa21_code"])
    chart = maps.rate_map(table, devon_police_uk)
    assert len(_shapes(_check_rendered(chart))) == table.height
    trend = charts.monthly_trend(plymouth["trend-monthly"])
    counts = [r for r in _values(trend) if r["series"] == "Monthly count"]
    missing = [r for r in counts if r["value"] is None]
    assert missing and date.fromisoformat(missing[0]["month"]) == date(2019, 3, 1)
    assert f"{len(missing)} month(s) without complete data" in charts.text_alternative(trend)
    _check_rendered(trend)


def test_plymouth_empty_results_give_no_chart(plymouth):
    knox = plymouth["near-repeat-knox"]
    assert knox.table.is_empty() and charts.knox(knox) is None
    _check_rendered(charts.force_comparison(plymouth["comparison-force"]))


# -- one font, outlines, cache and workers ---------------------------------------------------

def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_charts_and_maps_use_the_document_font(demo, demo_partnership):
    from importlib import resources

    template = resources.files("svduty.assessment").joinpath("templates/sna.html.j2")
    assert template.read_text("utf-8").count("font-family: {{ font | safe }}") == 2
    drawn = [charts.monthly_trend(demo["trend-monthly"]),
             maps.ward_map(demo["places-ward-rates"], demo_partnership)]
    for chart in drawn:
        assert charts.spec(chart)["config"]["font"] == charts.FONT
        families = set(re.findall(r'font-family="([^"]*)"', charts.render(chart, "svg")))
        assert families == {charts.FONT}


def test_every_map_area_and_swatch_has_an_outline_of_3_to_1(demo, demo_partnership):
    """The lightest classes (viridis yellow, light grey) are under 3:1 on white, so every
    area and legend swatch is outlined in a colour of at least 3:1 (WCAG 2.2, 1.4.11)."""
    assert _contrast(maps.RATE_COLOURS[0], "#ffffff") < 3  # why the outline is needed
    assert _contrast(maps.OUTLINE, "#ffffff") >= 3
    for name, fn in maps.MAPS.items():
        spec = json.dumps(charts.spec(fn(demo[name], demo_partnership)))
        assert f'"stroke": "{maps.OUTLINE}"' in spec, name
        assert '"stroke": "white"' not in spec, name
        assert f'"symbolStrokeColor": "{maps.OUTLINE}"' in spec, name


def test_rendered_charts_are_reused_from_the_disk_cache(demo, tmp_path, monkeypatch):
    from svduty.assessment.cache import DiskCache

    cache = DiskCache(tmp_path, "charts")
    first = charts.render(charts.seasonality(demo["times-month-of-year"]), "svg", cache=cache)
    png = charts.render(charts.seasonality(demo["times-month-of-year"]), "png", cache=cache)
    assert len(list(cache.folder.iterdir())) == 2 and png.startswith(PNG_MAGIC)

    def refuse(*_, **__):
        raise AssertionError("rendered again")

    monkeypatch.setattr(charts.vlc, "vegalite_to_svg", refuse)
    monkeypatch.setattr(charts.vlc, "svg_to_png", refuse)
    again = charts.seasonality(demo["times-month-of-year"])  # a new chart, the same spec
    assert charts.render(again, "svg", cache=cache) == first
    assert charts.render(again, "png", cache=cache) == png
    changed = charts.seasonality(demo["times-month-of-year"].table.head(6))
    with pytest.raises(AssertionError, match="rendered again"):
        charts.render(changed, "svg", cache=cache)


def test_charts_drawn_in_a_worker_match_those_drawn_here(demo, tmp_path):
    from svduty.assessment.cache import DiskCache
    from svduty.assessment.workers import workers

    made = [charts.concentration(demo["places-concentration"]),
            charts.knox(demo["near-repeat-knox"])]
    here = [charts._render(c, "svg", 2.0, None) for c in made]
    pngs = [charts._render(c, "png", 2.0, None) for c in made]
    fresh = [charts.concentration(demo["places-concentration"]),
             charts.knox(demo["near-repeat-knox"])]
    cache = DiskCache(tmp_path, "charts")
    with workers(1) as jobs:
        charts.render_all(fresh, jobs, cache)
        assert jobs.pool is not None
    assert [charts.render(c, "svg") for c in fresh] == here
    assert [charts.render(c, "png") for c in fresh] == pngs  # drawn with the SVG, by the worker
    assert len(list(cache.folder.iterdir())) == 4
