"""Fast lookups used at ingest: LSOA codes to 2021 LSOAs and LADs; points to 2021 LSOAs."""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from svduty.geography.correspondence import CorrespondenceFigures
from svduty.geography.errors import ReferenceError
from svduty.warehouse import Warehouse

if TYPE_CHECKING:
    import geopandas as gpd

LAYER_NAMES = ("lsoa11", "lsoa21", "ward", "msoa21")
LOOKUP_SQL = """
    WITH a21 AS (SELECT lsoa_code, lad_code FROM areas WHERE lsoa_vintage = 2021),
    a11 AS (SELECT lsoa_code, lad_code FROM areas
            WHERE lsoa_vintage = 2011 AND lsoa_code NOT IN (SELECT lsoa_code FROM a21)),
    fit AS (SELECT lsoa11_code, lsoa21_code FROM lsoa_correspondence WHERE best_fit)
    SELECT lsoa_code, CAST(2021 AS SMALLINT) AS lsoa_vintage, lsoa_code AS lsoa21_code,
           lad_code FROM a21
    UNION ALL
    SELECT a11.lsoa_code, CAST(2011 AS SMALLINT), fit.lsoa21_code, a11.lad_code
    FROM a11 LEFT JOIN fit ON fit.lsoa11_code = a11.lsoa_code
"""
_lock = threading.Lock()


def lsoa_lookup(wh: Warehouse, lad_codes: list[str]) -> pl.DataFrame:
    """One row per known LSOA code: its vintage, 2021 (best-fit) code, current LAD, in_area.

    A code in both vintages is a 2021 code (lsoa21_code = itself). A 2011-only code takes
    the best-fit 2021 LSOA of the correspondence (null where unmapped) and its 2011 LAD.
    """
    frame = wh.con.cursor().execute(LOOKUP_SQL).pl()
    return frame.select(
        pl.col("lsoa_code").cast(pl.String), pl.col("lsoa_vintage").cast(pl.Int16),
        pl.col("lsoa21_code").cast(pl.String), pl.col("lad_code").cast(pl.String),
        pl.col("lad_code").is_in(list(lad_codes)).fill_null(False).alias("in_area"))


def correspondence_figures(wh: Warehouse) -> CorrespondenceFigures | None:
    """The figures recorded by the last reference import (None before any)."""
    row = wh.con.cursor().execute(
        "SELECT value FROM meta WHERE key = 'reference_correspondence'").fetchone()
    if not row or not row[0]:
        return None
    return CorrespondenceFigures(**json.loads(row[0]))


def boundaries(root: Path, layer: str) -> gpd.GeoDataFrame:
    """A stored boundary layer (lsoa11, lsoa21, ward, msoa21) in EPSG:27700."""
    path = _layer_path(root, layer)
    return _load(str(path), path.stat().st_mtime_ns).copy()


def geocode_points(root: Path, x: np.ndarray, y: np.ndarray,
                   crs: str = "EPSG:27700") -> np.ndarray:
    """The 2021 LSOA code containing each point, None where no held boundary contains it.

    x, y: eastings and northings (EPSG:27700), or longitudes and latitudes (EPSG:4326).
    Shapely and pyproj only (not GeoPandas): an ingest geocodes a handful of rows, and
    importing GeoPandas for them would cost more than the rest of a police.uk file.
    """
    import shapely

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out = np.full(len(x), None, dtype=object)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return out
    px, py = x[ok], y[ok]
    if crs != BOUNDARY_CRS:
        transformer = _transformer(crs)
        with _lock:  # a pyproj Transformer is not to be shared by threads at once
            px, py = transformer.transform(px, py)
    path = _layer_path(root, "lsoa21")
    codes, tree = _index(str(path), path.stat().st_mtime_ns)
    point, polygon = tree.query(shapely.points(px, py), predicate="intersects")
    first = np.unique(point, return_index=True)[1]  # the first polygon holding each point
    found = np.full(len(px), None, dtype=object)
    found[point[first]] = codes[polygon[first]]
    out[ok] = found
    return out


BOUNDARY_CRS = "EPSG:27700"  # every held boundary layer (see spatial.write_layer)


@lru_cache(maxsize=4)
def _transformer(crs: str):
    """A transformer from `crs` to the boundaries' grid, made once (making one reads the
    PROJ database: longer than transforming a file's points)."""
    from pyproj import Transformer

    return Transformer.from_crs(crs, BOUNDARY_CRS, always_xy=True)


@lru_cache(maxsize=4)
def _index(path: str, mtime_ns: int) -> tuple[np.ndarray, object]:
    """The LSOA codes of a boundary file and a spatial index (shapely STRtree) of their
    polygons, read once per file version."""
    import shapely

    with _lock:  # Polars, not pyarrow.parquet: its first read sets up datasets (0.3 s)
        table = pl.read_parquet(path, columns=["lsoa21_code", "geometry"])
        wkb = table.get_column("geometry").ext.storage().to_numpy()  # GeoArrow WKB
        tree = shapely.STRtree(shapely.from_wkb(wkb))
        tree.query(shapely.points([0.0], [0.0]))  # build the tree now, before threads share it
        return table.get_column("lsoa21_code").to_numpy().astype(object), tree


def _layer_path(root: Path, layer: str) -> Path:
    if layer not in LAYER_NAMES:
        raise ReferenceError(f"unknown boundary layer '{layer}'; choose one of "
                             f"{', '.join(LAYER_NAMES)}.")
    path = Path(root) / "reference" / "boundaries" / f"{layer}.parquet"
    if not path.exists():
        raise ReferenceError(
            f"{path}: no {layer} boundaries in this partnership. Import reference data "
            f"with boundaries: svduty reference import {root} <folder>")
    return path


@lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> gpd.GeoDataFrame:
    import geopandas as gpd

    frame = gpd.read_parquet(path)
    frame.sindex  # noqa: B018 - build the spatial index once, before threads share it
    return frame


def _load(path: str, mtime_ns: int) -> gpd.GeoDataFrame:
    with _lock:  # ingest geocodes from two threads; load and index the file only once
        return _cached(path, mtime_ns)
