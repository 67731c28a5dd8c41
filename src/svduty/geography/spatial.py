"""Boundaries: read, reproject to British National Grid, overlay.

All area arithmetic is in EPSG:27700 (metres). The overlay of two polygon sets is done pair
by pair on candidates from an STR-tree (the same work as ``geopandas.overlay`` without
building the full union), in two threads: shapely releases the GIL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import polars as pl
import pyogrio
import shapely

from svduty.geography.errors import ReferenceError
from svduty.geography.readers import Source

BNG = "EPSG:27700"
BOUNDARY_DIR = "geography/boundaries"
# layer -> (code column, name column); regular expressions so any ward vintage is read.
LAYERS: dict[str, tuple[str, str]] = {
    "lsoa11": ("LSOA11CD", "LSOA11NM"),
    "lsoa21": ("LSOA21CD", "LSOA21NM"),
    "ward": (r"WD\d\dCD", r"WD\d\dNM"),
    "msoa21": ("MSOA21CD", "MSOA21NM"),
}
THREADS = 2


@dataclass
class Layer:
    """One boundary set: columns code, name, lad_code, geometry (EPSG:27700, valid)."""

    name: str
    frame: gpd.GeoDataFrame
    vintage: str  # e.g. 'WD25' for wards, 'LSOA21' for 2021 LSOAs

    @property
    def codes(self) -> set[str]:
        return set(self.frame["code"])


def read_layer(source: Source, layer: str) -> Layer | None:
    """Every GeoJSON file of a boundary layer as one frame, or None if the folder is absent."""
    folder = source.root / BOUNDARY_DIR / layer
    files = sorted(folder.glob("*.geojson")) + sorted(folder.glob("*.json"))
    if not files:
        source.missing.append(f"boundaries-{layer}: {BOUNDARY_DIR}/{layer}/*.geojson")
        return None
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(lambda f: read_boundary_file(f, layer), files))
    for path, (part, _) in zip(files, parts, strict=True):
        source.record(f"boundaries-{layer}", path, len(part))
    vintages = {v for _, v in parts}
    frame = pd.concat([p for p, _ in parts], ignore_index=True)
    frame = frame.drop_duplicates("code", keep="first").reset_index(drop=True)
    return Layer(layer, gpd.GeoDataFrame(frame, geometry="geometry", crs=BNG),
                 "/".join(sorted(vintages)))


def read_boundary_file(path: Path, layer: str) -> tuple[gpd.GeoDataFrame, str]:
    """One boundary file in EPSG:27700 with valid geometry; returns it and its code vintage."""
    try:
        frame = pyogrio.read_dataframe(path, use_arrow=True)
    except Exception as exc:  # GDAL raises many types for a broken file
        raise ReferenceError(f"{path}: could not be read as a {layer} boundary file "
                             f"(GeoJSON polygons): {exc}") from exc
    code, name = (_column(frame, pattern, path, layer) for pattern in LAYERS[layer])
    lad = "LADCD_ACTIVE" if "LADCD_ACTIVE" in frame.columns else None
    out = gpd.GeoDataFrame({
        "code": frame[code].astype(str), "name": frame[name].astype(str),
        "lad_code": frame[lad].astype(str) if lad else None,
    }, geometry=frame.geometry.values, crs=frame.crs or "EPSG:4326")
    out = out.to_crs(BNG)
    out["geometry"] = shapely.make_valid(out.geometry.values)
    return out, code[:-2]


def _column(frame: pd.DataFrame, pattern: str, path: Path, layer: str) -> str:
    found = [c for c in frame.columns if pd.Series([c]).str.fullmatch(pattern).item()]
    if not found:
        raise ReferenceError(
            f"{path}: not a {layer} boundary file: no column matching '{pattern}' "
            f"(found {', '.join(map(str, frame.columns[:12]))}).")
    return found[0]


def intersections(a: Layer, b: Layer, rows: np.ndarray | None = None) -> pl.DataFrame:
    """Area (m²) of every non-empty intersection of a polygon of `a` (or of its `rows`) with
    one of `b`. Pairs that only touch are skipped before the costly intersection."""
    left, right = a.frame.geometry.values, b.frame.geometry.values
    rows = np.arange(len(left)) if rows is None else rows
    ia, ib = b.frame.sindex.query(left[rows], predicate="intersects")
    ta, tb = b.frame.sindex.query(left[rows], predicate="touches")
    touching = np.isin(ia * len(right) + ib, ta * len(right) + tb)
    ia, ib = rows[ia[~touching]], ib[~touching]
    return pl.DataFrame({
        "a_code": a.frame["code"].to_numpy()[ia].astype(str),
        "b_code": b.frame["code"].to_numpy()[ib].astype(str),
        "area": pair_areas(left[ia], right[ib]),
    }).filter(pl.col("area") > 0)


def pair_areas(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Areas of left[i] ∩ right[i], computed in threads (shapely releases the GIL)."""
    if not len(left):
        return np.array([], dtype=float)
    chunks = np.array_split(np.arange(len(left)), THREADS * 4)

    def areas(idx: np.ndarray) -> np.ndarray:
        return shapely.area(shapely.intersection(left[idx], right[idx]))

    with ThreadPoolExecutor(THREADS) as pool:
        return np.concatenate(list(pool.map(areas, chunks)))


def layer_table(layer: Layer) -> pl.DataFrame:
    """Codes, names, LADs and polygon areas (m²) of a layer as a polars frame."""
    f = layer.frame
    return pl.DataFrame({
        "code": f["code"].to_numpy().astype(str), "name": f["name"].to_numpy().astype(str),
        "lad_code": pd.Series(f["lad_code"]).to_numpy().astype(object),
        "area": shapely.area(f.geometry.values),
    }, schema_overrides={"lad_code": pl.String})


def best_fit(small: Layer, big: Layer) -> pl.DataFrame:
    """For each polygon of `small`, the polygon of `big` holding the largest share of its area.

    The polygon of `big` under a point inside each small polygon is tried first: holding
    more than half of its area, it is the best fit. Only the others are fully overlaid.
    Columns: code, fit_code, fit_name, fit_share (the share of the small polygon's area).
    """
    geoms, area = small.frame.geometry.values, shapely.area(small.frame.geometry.values)
    ip, ib = big.frame.sindex.query(shapely.point_on_surface(geoms), predicate="intersects")
    first = np.unique(ip, return_index=True)[1]
    ip, ib = ip[first], ib[first]
    share = pair_areas(geoms[ip], big.frame.geometry.values[ib]) / area[ip]
    majority = share > 0.5
    pieces = pl.concat([
        pl.DataFrame({"a_code": small.frame["code"].to_numpy()[ip[majority]].astype(str),
                      "b_code": big.frame["code"].to_numpy()[ib[majority]].astype(str),
                      "area": share[majority] * area[ip[majority]]}),
        intersections(small, big, np.setdiff1d(np.arange(len(geoms)), ip[majority])),
    ])
    areas = layer_table(small).select("code", "area")
    names = layer_table(big).select(pl.col("code").alias("b_code"),
                                    pl.col("name").alias("fit_name"))
    return (pieces.sort(["a_code", "area", "b_code"], descending=[False, True, False])
            .unique("a_code", keep="first", maintain_order=True)
            .join(areas, left_on="a_code", right_on="code")
            .join(names, on="b_code", how="left")
            .select(pl.col("a_code").alias("code"), pl.col("b_code").alias("fit_code"),
                    "fit_name", (pl.col("area") / pl.col("area_right")).alias("fit_share")))


def nest(small: Layer, big: Layer) -> pl.DataFrame:
    """For areas that nest exactly (LSOAs in MSOAs of one vintage): the polygon of `big`
    holding a point inside each polygon of `small`. Columns: code, fit_code."""
    points = shapely.point_on_surface(small.frame.geometry.values)
    ip, ib = big.frame.sindex.query(points, predicate="intersects")
    return pl.DataFrame({
        "code": small.frame["code"].to_numpy()[ip].astype(str),
        "fit_code": big.frame["code"].to_numpy()[ib].astype(str),
    }).unique("code", keep="first", maintain_order=True)


def write_layer(layer: Layer, path: Path) -> None:
    """Write a layer as GeoParquet (EPSG:27700) with its code column named for the layer."""
    prefix = "ward" if layer.name == "ward" else layer.name
    frame = layer.frame.rename(columns={"code": f"{prefix}_code", "name": f"{prefix}_name"})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
