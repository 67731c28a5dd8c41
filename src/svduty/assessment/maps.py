"""Static maps for the Strategic Needs Assessment from the partnership's own boundaries.

Maps are Altair ``mark_geoshape`` charts drawn on British National Grid coordinates (EPSG:27700)
with an identity projection (north up), so no reprojection, tiles or network are needed; they
render through :func:`svduty.assessment.charts.render` like every chart. Boundaries are
simplified as a coverage (shared edges stay shared, no gaps or slivers) and rounded to whole
metres to keep the SVG small. Classes carry a shape as well as a colour where a map shows
categories, so they can be read without colour.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import altair as alt
import geopandas as gpd
import numpy as np
import polars as pl
import shapely

from svduty.assessment.charts import OKABE_ITO, Table, _titled, table_of

TOLERANCE_M = 15.0  # simplification tolerance: well under a pixel at report scale
SIZE = 520
RATE_COLOURS = ["#fde725", "#5ec962", "#21918c", "#3b528b", "#440154"]  # viridis, 5 classes
NOT_SIGNIFICANT = "#e8e8e8"
# The lightest classes (yellow, light grey) have well under 3:1 contrast with the white page,
# so every area and legend swatch has this outline (7:1 on white; WCAG 2.2, 1.4.11).
OUTLINE = "#505a5f"
GI_CLASSES = {"hot spot": (OKABE_ITO["vermillion"], "triangle-up"),
              "cold spot": (OKABE_ITO["blue"], "triangle-down"),
              "not significant": (NOT_SIGNIFICANT, None)}
HOTSPOT_CLASSES = {
    "persistent hot spot": (OKABE_ITO["vermillion"], "triangle-up"),
    "emerging hot spot": (OKABE_ITO["orange"], "diamond"),
    "intermittent hot spot": (OKABE_ITO["yellow"], "circle"),
    "former hot spot": (OKABE_ITO["purple"], "square"),
    "mixed hot/cold spot": (OKABE_ITO["grey"], "cross"),
    "persistent cold spot": (OKABE_ITO["blue"], "triangle-down"),
    "emerging cold spot": (OKABE_ITO["sky_blue"], "diamond"),
    "intermittent cold spot": ("#a6d8f0", "circle"),
    "former cold spot": (OKABE_ITO["green"], "square"),
    "no pattern": (NOT_SIGNIFICANT, None),
}


def boundaries(root: Path, layer: str = "lsoa21") -> gpd.GeoDataFrame:
    """A boundary layer of the partnership (EPSG:27700)."""
    return gpd.read_parquet(Path(root) / "reference" / "boundaries" / f"{layer}.parquet")


def simplified(geoms: np.ndarray, tolerance: float = TOLERANCE_M) -> np.ndarray:
    """Coverage-simplified geometry rounded to whole metres."""
    geoms = shapely.make_valid(np.asarray(geoms))
    out = shapely.coverage_simplify(geoms, tolerance) if tolerance > 0 else geoms
    out = shapely.set_precision(out, 1.0)
    empty = shapely.is_empty(out)
    out[empty] = shapely.set_precision(geoms[empty], 1.0)  # never lose a small area
    return out


def features(codes: list[str], geoms: np.ndarray, rows: pl.DataFrame,
             key: str) -> list[dict[str, Any]]:
    """GeoJSON features joined to the table rows by code (properties: the row)."""
    by_code = {r[key]: r for r in _json_rows(rows)}
    return [{"type": "Feature", "geometry": shapely.geometry.mapping(g),
             "properties": by_code[c]} for c, g in zip(codes, geoms, strict=True)
            if c in by_code]


def _json_rows(rows: pl.DataFrame) -> list[dict[str, Any]]:
    rows = rows.with_columns(
        [pl.col(c).cast(pl.String) for c, t in rows.schema.items() if t.is_temporal()]
        + [pl.col(c).fill_nan(None) for c, t in rows.schema.items() if t.is_float()])
    return rows.to_dicts()


def _areas(rows: pl.DataFrame, root: Path, key: str, tolerance: float) -> list[dict]:
    layer = boundaries(root, "lsoa21")
    layer = layer[layer["lsoa21_code"].isin(set(rows[key]))]
    geoms = simplified(layer.geometry.values, tolerance)
    return features(layer["lsoa21_code"].tolist(), geoms, rows, key)


def _map(feats: list[dict], title: str, description: str, color: alt.Color,
         subtitle: str | None = None, marks: alt.Chart | None = None) -> Any:
    base = alt.Chart({"values": feats}).mark_geoshape(  # as charts._data: not walked
        stroke=OUTLINE, strokeWidth=0.4).encode(
        color=color, tooltip=[alt.Tooltip("properties.name:N", title="Area"),
                              alt.Tooltip("properties.label:N", title="Value")])
    chart = base + marks if marks is not None else base
    chart = chart.project(type="identity", reflectY=True).properties(width=SIZE, height=SIZE)
    return _titled(chart, title, description, subtitle)


# -- rates -----------------------------------------------------------------------------------

def _nice(x: float) -> float:
    """Round a class break to two significant figures."""
    if x <= 0 or not math.isfinite(x):
        return 0.0
    digits = 1 - math.floor(math.log10(x))
    return round(x, digits)


def rate_classes(rates: pl.Series, classes: int = 5) -> tuple[list[float], list[str]]:
    """Quantile class breaks (rounded) and their labels, lowest first."""
    values = rates.drop_nulls().drop_nans().to_numpy()
    qs = np.quantile(values, np.linspace(0, 1, classes + 1)[1:-1]) if values.size else []
    breaks = sorted({_nice(q) for q in qs if _nice(q) > 0})
    edges = [0.0, *breaks]
    labels = [f"{lo:g} to under {hi:g}" for lo, hi in zip(edges, breaks, strict=False)]
    labels.append(f"{edges[-1]:g} or more")
    return breaks, labels


def _with_classes(rows: pl.DataFrame, value: str, classes: int) -> tuple[pl.DataFrame,
                                                                       list[str]]:
    breaks, labels = rate_classes(rows[value], classes)
    index = np.searchsorted(breaks, rows[value].fill_null(np.nan).to_numpy(), side="right")
    label = [labels[i] if not math.isnan(v) else "no rate" for i, v in
             zip(index, rows[value].fill_null(np.nan).to_numpy(), strict=True)]
    return rows.with_columns(pl.Series("band", label)), labels


def rate_map(source: Table, root: Path, value: str = "rate_per_1000", classes: int = 5,
             tolerance: float = TOLERANCE_M) -> Any:
    """Choropleth of serious violence per 1,000 residents by LSOA (places-lsoa-rates)."""
    rows = table_of(source)
    if rows.is_empty() or rows[value].drop_nulls().is_empty():
        return None
    rows, labels = _with_classes(rows, value, classes)
    rows = rows.with_columns(pl.col("lsoa_name").alias("name"),
                             pl.col(value).round(1).cast(pl.String).alias("label"))
    feats = _areas(rows, root, "lsoa21_code", tolerance)
    if not feats:
        return None
    colours = RATE_COLOURS[:len(labels)] if len(labels) < 5 else RATE_COLOURS
    color = alt.Color("properties.band:N", title="Offences per 1,000 residents",
                      sort=labels, scale=alt.Scale(domain=labels, range=colours),
                      legend=alt.Legend(orient="right", symbolType="square", symbolSize=200,
                                         symbolStrokeColor=OUTLINE, symbolStrokeWidth=0.6))
    top = rows.sort(value, descending=True, nulls_last=True).row(0, named=True)
    text = (f"Map of the {len(feats)} LSOAs of the partnership shaded by serious violence per "
            f"1,000 residents in {len(labels)} classes of about equal numbers of areas "
            f"(darker is higher). Highest: {top['lsoa_name']}"
            + (f" in {top['ward_name']} ward" if top.get("ward_name") else "") + ".")
    return _map(feats, "Serious violence per 1,000 residents by LSOA", text, color,
                "Classes are quintiles of LSOAs")


def ward_rates(source: Table) -> pl.DataFrame:
    """LSOA counts and residents summed to their (best-fit) wards, with the rate per 1,000."""
    rows = table_of(source)
    if "lsoa21_code" not in rows.columns:
        return rows
    return (rows.group_by("ward_code", "ward_name")
            .agg(pl.col("events").sum(), pl.col("residents").sum(),
                 pl.col("lsoa21_code").alias("lsoas"))
            .with_columns((1000 * pl.col("events") / pl.col("residents"))
                          .alias("rate_per_1000")).sort("ward_code"))


def ward_map(source: Table, root: Path, value: str = "rate_per_1000", classes: int = 5,
             tolerance: float = TOLERANCE_M) -> Any:
    """Choropleth by ward for the published edition, where LSOAs would disclose.

    From places-lsoa-rates the counts are summed to wards and the outlines are the LSOAs
    dissolved by ward_code: the same best-fit wards the counts use. From places-ward-rates
    the outlines are the official ward boundaries (``ward.parquet``).
    """
    rows = table_of(source)
    if rows.is_empty():
        return None
    wards = ward_rates(rows)
    if wards[value].drop_nulls().is_empty():
        return None
    outline = _ward_outlines(rows, root)
    wards, labels = _with_classes(wards, value, classes)
    wards = wards.with_columns(pl.col("ward_name").alias("name"),
                               pl.col(value).round(1).cast(pl.String).alias("label"))
    feats = features(outline["ward_code"].tolist(),
                     simplified(outline.geometry.values, tolerance), wards, "ward_code")
    if not feats:
        return None
    color = alt.Color("properties.band:N", title="Offences per 1,000 residents",
                      sort=labels, scale=alt.Scale(domain=labels,
                                                   range=RATE_COLOURS[:len(labels)]),
                      legend=alt.Legend(orient="right", symbolType="square", symbolSize=200,
                                         symbolStrokeColor=OUTLINE, symbolStrokeWidth=0.6))
    top = wards.sort(value, descending=True, nulls_last=True).row(0, named=True)
    text = (f"Map of the {len(feats)} wards of the partnership shaded by serious violence per "
            f"1,000 residents in {len(labels)} classes of about equal numbers of wards (darker "
            f"is higher). Highest: {top['ward_name']}. Wards are built from whole LSOAs "
            "(best fit).")
    return _map(feats, "Serious violence per 1,000 residents by ward", text, color,
                "Classes are quintiles of wards")


def _ward_outlines(rows: pl.DataFrame, root: Path) -> gpd.GeoDataFrame:
    """Ward outlines: LSOAs dissolved by the table's ward_code, or the ward layer."""
    if "lsoa21_code" not in rows.columns:
        layer = boundaries(root, "ward")
        return layer[layer["ward_code"].isin(set(rows["ward_code"]))].reset_index(drop=True)
    members = dict(zip(rows["lsoa21_code"], rows["ward_code"], strict=True))
    layer = boundaries(root, "lsoa21")
    layer = layer[layer["lsoa21_code"].isin(members)].copy()
    layer["ward_code"] = layer["lsoa21_code"].map(members)
    layer = layer.dropna(subset=["ward_code"])
    return layer[["ward_code", "geometry"]].dissolve(by="ward_code",
                                                      method="coverage").reset_index()


def level_map(level, root: Path, classes: int = 5, tolerance: float = TOLERANCE_M) -> Any:
    """Choropleth of a :class:`svduty.assessment.levels.Level`: the rate per 1,000 by the
    level's areas (LSOAs dissolved by the area they are drawn in), areas with a small count
    in a "suppressed" class of their own."""
    rows = level.areas
    if rows.is_empty() or rows["rate_per_1000"].drop_nulls().is_empty():
        return None
    suppressed = f"suppressed (fewer than {level.below} events)"
    shown = rows.with_columns(pl.when(pl.col("suppressed")).then(None)
                              .otherwise(pl.col("rate_per_1000")).alias("rate_per_1000"))
    shown, labels = _with_classes(shown, "rate_per_1000", classes)
    shown = shown.with_columns(
        pl.when(pl.col("suppressed")).then(pl.lit(suppressed)).otherwise(pl.col("band"))
        .alias("band"),
        pl.when(pl.col("suppressed")).then(pl.lit("suppressed"))
        .otherwise(pl.col("rate_per_1000").round(1).cast(pl.String)).alias("label"))
    outline = _dissolved(level.members, root)
    feats = features(outline["code"].tolist(), simplified(outline.geometry.values, tolerance),
                     shown, "code")
    if not feats:
        return None
    domain = labels + ([suppressed] if level.suppressed else [])
    colours = RATE_COLOURS[:len(labels)] + ([NOT_SIGNIFICANT] if level.suppressed else [])
    color = alt.Color("properties.band:N", title="Offences per 1,000 residents", sort=domain,
                      scale=alt.Scale(domain=domain, range=colours),
                      legend=alt.Legend(orient="right", symbolType="square", symbolSize=200,
                                         symbolStrokeColor=OUTLINE, symbolStrokeWidth=0.6))
    text = (f"Map of the {len(feats)} areas ({level.level}) of the partnership shaded by "
            f"serious violence per 1,000 residents in {len(labels)} classes (darker is "
            f"higher). {level.reason}")
    return _map(feats, f"Serious violence per 1,000 residents by {level.level}", text, color,
                f"Classes are quantiles of {level.level} areas")


def _dissolved(members: dict[str, str], root: Path) -> gpd.GeoDataFrame:
    """The LSOAs dissolved by the area each is drawn in (column `code`)."""
    layer = boundaries(root, "lsoa21")
    layer = layer[layer["lsoa21_code"].isin(members)].copy()
    layer["code"] = layer["lsoa21_code"].map(members)
    return layer[["code", "geometry"]].dissolve(by="code", method="coverage").reset_index()


# -- hot spots -------------------------------------------------------------------------------

def _class_map(source: Table, root: Path, column: str, classes: dict[str, tuple],
               title: str, what: str, tolerance: float) -> Any:
    rows = table_of(source)
    if rows.is_empty():
        return None
    rows = rows.with_columns(pl.col("lsoa_name").alias("name"),
                             pl.col(column).alias("label"))
    feats = _areas(rows, root, "lsoa21_code", tolerance)
    if not feats:
        return None
    present = set(rows[column])
    domain = [c for c in classes if c in present] + sorted(present - set(classes))
    colours = [classes.get(c, (OKABE_ITO["grey"], None))[0] for c in domain]
    color = alt.Color(f"properties.{column}:N", title=what, sort=domain,
                      scale=alt.Scale(domain=domain, range=colours),
                      legend=alt.Legend(orient="right", symbolType="square", symbolSize=200,
                                         symbolStrokeColor=OUTLINE, symbolStrokeWidth=0.6))
    marked = [c for c in domain if classes.get(c, (None, "circle"))[1]]
    marks = _class_marks(feats, column, marked, classes) if marked else None
    counts = rows.group_by(column).len().sort("len", descending=True)
    summary = "; ".join(f"{r[column]}: {r['len']}" for r in counts.iter_rows(named=True))
    text = (f"Map of the {len(feats)} LSOAs of the partnership coloured by {what}"
            + (f", with a black symbol for each class ({', '.join(marked)})" if marked else "")
            + f". LSOAs in each class: {summary}.")
    return _map(feats, title, text, color, None, marks)


def _class_marks(feats: list[dict], column: str, marked: list[str],
                 classes: dict[str, tuple]) -> alt.Chart:
    points = []
    for f in feats:
        cls = f["properties"][column]
        if cls in marked:
            p = shapely.geometry.shape(f["geometry"]).representative_point()
            points.append({"x": p.x, "y": p.y, "cls": cls, "name": f["properties"]["name"]})
    shapes = [classes.get(c, (None, "circle"))[1] for c in marked]
    return alt.Chart({"values": points}).mark_point(
        filled=True, color="black", size=28, opacity=0.85).encode(
        longitude="x:Q", latitude="y:Q",
        shape=alt.Shape("cls:N", title="Symbol", sort=marked,
                        scale=alt.Scale(domain=marked, range=shapes),
                        legend=alt.Legend(orient="right")),
        tooltip=[alt.Tooltip("name:N", title="Area"), alt.Tooltip("cls:N", title="Class")])


def gi_star_map(source: Table, root: Path, tolerance: float = TOLERANCE_M) -> Any:
    """Hot and cold spots (Getis-Ord Gi*, FDR-controlled) by LSOA (places-gi-star)."""
    return _class_map(source, root, "class", GI_CLASSES,
                      "Hot and cold spots of serious violence (Getis-Ord Gi*)",
                      "Gi* class", tolerance)


def hotspot_map(source: Table, root: Path, tolerance: float = TOLERANCE_M) -> Any:
    """Hot spot classes over time (persistent, emerging, ...) by LSOA (places-hotspot-classes)."""
    return _class_map(source, root, "category", HOTSPOT_CLASSES,
                      "Hot spots over time: persistent, emerging and former",
                      "Hot spot class", tolerance)


MAPS = {"places-lsoa-rates": rate_map, "places-gi-star": gi_star_map,
        "places-hotspot-classes": hotspot_map, "places-ward-rates": ward_map}
"""The map drawn from each Result by default (each also takes the partnership root)."""
