"""Places: where serious violence happens, with sensible defaults that are all reported.

Rates per 1,000 residents by LSOA and ward (every LSOA, zeros included), Getis-Ord Gi* hot
and cold spots, a kernel density surface, hot spot classification over time (as sfhotspot's
``hotspot_classify``), and how concentrated violence is in a few LSOAs and locations.
Counts run in the engine; the statistics run on the counts.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import polars as pl
import shapely
from scipy import ndimage

from svduty.analysis import hotspots as hs
from svduty.analysis.data import Data
from svduty.analysis.result import Result
from svduty.analysis.stats import rate

PER = 1000.0
TOP_SHARES = (0.01, 0.05, 0.10)
REPEAT_THRESHOLDS = (2, 5, 10)
TOP_LOCATIONS = 50
KDE_CELLS_SHORT_SIDE = 50
KDE_ROUND_M = 100
KDE_TRUNCATE = 4.0  # the kernel is cut at 4 standard deviations
AREA_COLUMNS = ("lsoa21_code", "lsoa_name", "ward_code", "ward_name", "lad_code", "lad_name")


def analyse(data: Data) -> list[Result]:
    """Every places Result for the scope."""
    lsoas = lsoa_counts(data)
    shared = list(data.queries)
    results = [lsoa_rates(data, lsoas), ward_rates(data, lsoas, shared)]
    weights = hs.lsoa_weights(data.wh.path.parent, lsoas.get_column("lsoa21_code").to_list())
    results.append(gi_star_result(data, lsoas, weights, shared))
    results += classification_results(data, lsoas, weights)
    points = location_counts(data)
    results.append(kde_result(data, points))
    results += concentration_results(data, lsoas, points, shared)
    return results


# ------------------------------------------------------------------------ counts

def lsoa_counts(data: Data) -> pl.DataFrame:
    """Every LSOA of the scope with its serious violence count and residents."""
    a = data.areas()
    areas = data.fetch(a.filter(a.lad_code.isin(data.scope.lad_codes)).select(*AREA_COLUMNS))
    sv = data.sv()
    counts = data.fetch(sv.group_by("lsoa21_code").aggregate(events=sv.count()),
                        (data.scope.police_source,))
    pop = data.population("lsoa21_code")
    return (areas.join(counts, on="lsoa21_code", how="left")
            .join(pop, on="lsoa21_code", how="left")
            .with_columns(pl.col("events").fill_null(0).cast(pl.Int64),
                          pl.col("residents").fill_null(0.0))
            .sort("lsoa21_code"))


def with_rates(frame: pl.DataFrame) -> pl.DataFrame:
    """Add rate per 1,000 with its exact 95% interval, share of events and ranks."""
    r, lo, hi = rate(frame.get_column("events").to_numpy(),
                     frame.get_column("residents").to_numpy(), PER)
    total = max(int(frame.get_column("events").sum()), 1)
    return frame.with_columns(
        pl.Series("rate_per_1000", r), pl.Series("rate_lower", lo), pl.Series("rate_upper", hi),
        (pl.col("events") / total).alias("share_of_events"),
    ).with_columns(
        pl.col("rate_per_1000").fill_nan(None).rank("min", descending=True)
        .cast(pl.Int64).alias("rank_rate"),
        pl.col("events").rank("min", descending=True).cast(pl.Int64).alias("rank_events"),
    ).sort(["rank_rate", "lsoa21_code" if "lsoa21_code" in frame.columns else "ward_code"],
           nulls_last=True)


def rate_method(level: str) -> str:
    return (f"Serious violence events by {level} in the period (police source: the scope's), "
            "divided by Census 2021 usual residents, per 1,000 residents for the whole "
            "period. 95% intervals are exact (Garwood) Poisson intervals. Ranks: 1 = highest "
            "(ties share the lowest rank).")


def lsoa_rates(data: Data, lsoas: pl.DataFrame) -> Result:
    table = with_rates(lsoas)
    meta = data.meta(
        "places-lsoa-rates", "Serious violence by LSOA: count, rate per 1,000 residents",
        rate_method("2021 LSOA") + " Every LSOA in the scope is listed, zeros included.",
        geography=geography(data, "LSOA 2021"), parameters=rate_parameters(lsoas),
        caveats=["Rates use residents as the denominator; town-centre LSOAs with few "
                 "residents and many visitors get high rates for that reason."])
    return Result(table, meta)


def ward_rates(data: Data, lsoas: pl.DataFrame, shared: list[str]) -> Result:
    wards = lsoas.group_by("ward_code").agg(
        pl.col("ward_name").first(), pl.col("lad_code").first(), pl.col("lad_name").first(),
        pl.len().alias("lsoas"), pl.col("events").sum())
    pop = data.population("ward_code")
    wards = wards.join(pop, on="ward_code", how="left").with_columns(
        pl.col("residents").fill_null(0.0))
    meta = data.meta(
        "places-ward-rates", "Serious violence by ward: count, rate per 1,000 residents",
        rate_method("electoral ward") + " Wards are built from whole 2021 LSOAs (each LSOA "
        "in its best-fit ward).", geography=geography(data, "electoral ward (best fit)"),
        parameters=rate_parameters(lsoas) | {"wards": wards.height},
        caveats=["Wards are approximated by whole LSOAs (best fit), so ward counts and "
                 "populations can differ slightly from official ward figures."])
    meta.queries = [*shared, *meta.queries]
    return Result(with_rates(wards), meta)


def rate_parameters(lsoas: pl.DataFrame) -> dict:
    return {"per": PER, "confidence": 0.95, "interval": "exact Poisson (Garwood)",
            "denominator": "Census 2021 usual residents", "lsoas": lsoas.height,
            "events": int(lsoas.get_column("events").sum())}


def geography(data: Data, unit: str) -> str:
    return f"{data.scope.label} ({', '.join(data.scope.lad_codes)}): {unit}"


# ------------------------------------------------------------------------ Gi*

def gi_star_result(data: Data, lsoas: pl.DataFrame, weights: hs.Weights,
                   shared: list[str]) -> Result:
    counts = lsoas.filter(pl.col("lsoa21_code").is_in(weights.codes)).sort("lsoa21_code")
    gi = hs.gi_star(counts.get_column("events").to_numpy(), weights)
    neighbours = [weights.w.cardinalities[c] for c in weights.codes]
    table = (counts.select(*AREA_COLUMNS, "events", "residents")
             .with_columns(pl.Series("neighbours", neighbours, pl.Int64))
             .join(gi, on="lsoa21_code").sort("z_score", descending=True, nulls_last=True))
    meta = data.meta(
        "places-gi-star", "Hot and cold spots of serious violence (Getis-Ord Gi*) by LSOA",
        "Getis-Ord Gi* on the count of serious violence in each 2021 LSOA over the whole "
        "period: each LSOA's count plus its neighbours' (Queen contiguity: sharing a border "
        "or a corner) compared with the scope's total. Counts, not rates, are used, as is "
        f"usual for hot spot maps: they show where violence happens. {hs.PERMUTATIONS} "
        "conditional permutations give a pseudo p-value (p_sim); p_fdr controls the false "
        f"discovery rate across LSOAs (Benjamini-Hochberg). Hot spot: p_fdr < {hs.ALPHA} "
        "and z > 0; cold spot: p_fdr < alpha and z < 0.",
        geography=geography(data, "LSOA 2021"), parameters=hs.gi_parameters(weights),
        caveats=[*hs.weights_caveats(weights),
                 "A hot spot is a cluster of LSOAs with more violence than expected if "
                 "violence were spread at random; it says nothing about why."])
    meta.queries = [*shared, *meta.queries]
    return Result(table, meta)


def period_counts(data: Data) -> tuple[pl.DataFrame, list[date]]:
    """Serious violence by LSOA and period (PERIOD_MONTHS blocks from the scope's start)."""
    start = data.scope.start
    sv = data.sv()
    index = ((sv.month.year() - start.year) * 12 + (sv.month.month() - start.month)) \
        // hs.PERIOD_MONTHS
    sv = sv.mutate(period=index.cast("int64"))
    counts = data.fetch(sv.group_by(["period", "lsoa21_code"]).aggregate(events=sv.count()),
                        (data.scope.police_source,))
    n = len(data.scope.months) // hs.PERIOD_MONTHS + 1
    starts = [data.scope.months[i * hs.PERIOD_MONTHS] for i in range(n)
              if i * hs.PERIOD_MONTHS < len(data.scope.months)]
    return counts.with_columns(pl.col("events").cast(pl.Int64)), starts


def classification_results(data: Data, lsoas: pl.DataFrame,
                           weights: hs.Weights) -> list[Result]:
    counts, starts = period_counts(data)
    per = hs.gi_star_periods(counts, weights)
    if per.is_empty() or per.get_column("period").n_unique() < 2:
        return []
    used = sorted(per.get_column("period").unique().to_list())
    months = data.scope.months
    recent_from = months[max(0, len(months) - hs.RECENT_MONTHS)]
    n_recent, rule = hs.recent_periods([starts[p] for p in used], recent_from)
    names = lsoas.select(*AREA_COLUMNS)
    span = pl.DataFrame({"period": used, "period_start": [starts[p] for p in used],
                         "period_end": [months[min(len(months), (p + 1) * hs.PERIOD_MONTHS) - 1]
                                        for p in used]})
    per_table = (per.join(span, on="period").join(names, on="lsoa21_code", how="left")
                 .select("period_start", "period_end", *AREA_COLUMNS, "events", "gi_star",
                         "z_score", "p_sim", "p_norm", "p_fdr", "class")
                 .sort(["period_start", "lsoa21_code"]))
    params = classify_parameters(weights, used, starts, n_recent, rule)
    caveats = classify_caveats(data, used, starts)
    meta_p = data.meta(
        "places-gi-star-periods", "Hot and cold spots (Gi*) by LSOA in each period",
        f"Gi* as in places-gi-star, run separately on each {hs.PERIOD_MONTHS}-month period "
        "(periods with no serious violence are left out). Within a period, significance is "
        "taken as sfhotspot's hotspot_classify takes it: the two-sided normal p-value of the "
        "z-score (p_norm), with the false discovery rate controlled across LSOAs (p_fdr). "
        "Conditional-permutation p-values are not used per period (p_sim is empty): they "
        "cannot fall below 1/(permutations + 1), so with a period's few events almost nothing "
        "would survive FDR control.",
        geography=geography(data, "LSOA 2021"),
        parameters=params, caveats=caveats)
    table = hs.classify(per, n_recent).join(names, on="lsoa21_code", how="left")
    table = table.select(*AREA_COLUMNS, pl.exclude(AREA_COLUMNS)).sort(
        ["category", "share_hot", "lsoa21_code"], descending=[False, True, False])
    meta_c = data.meta(
        "places-hotspot-classes", "Hot spot classification over time (persistent, emerging, "
        "intermittent, former)", classify_method(n_recent, len(used)),
        geography=geography(data, "LSOA 2021"), parameters=params, caveats=caveats)
    meta_c.queries = list(meta_p.queries)
    return [Result(per_table, meta_p), Result(table, meta_c)]


def classify_method(n_recent: int, n: int) -> str:
    recent_prop = n_recent / n
    return (f"Each LSOA's Gi* class in each of {n} periods of {hs.PERIOD_MONTHS} months, "
            "summarised as sfhotspot's hotspot_classify does: persistent hot spot if hot in "
            f"at least {hs.PERSISTENT_PROP:.0%} of periods; emerging if hot in fewer than "
            f"{hs.HOTSPOT_PROP:.0%} of the older periods and in at least {recent_prop:.0%} "
            f"(the recent share) of the {n_recent} recent periods; former if hot in at least "
            f"{hs.HOTSPOT_PROP:.0%} of older periods and fewer than {hs.HOTSPOT_PROP:.0%} of "
            f"recent ones; intermittent if hot in at least {hs.HOTSPOT_PROP:.0%} of periods; "
            "otherwise no pattern. The same rules give cold spot categories; an LSOA with "
            "both is a mixed hot/cold spot. Tests run in that order.")


def classify_parameters(weights: hs.Weights, used: list[int], starts: list[date],
                        n_recent: int, rule: str) -> dict:
    return hs.gi_parameters(weights) | {
        "period_months": hs.PERIOD_MONTHS, "periods": len(used),
        "period_starts": [starts[p].isoformat() for p in used],
        "recent_periods": n_recent,
        "recent_rule": rule, "recent_prop": n_recent / len(used),
        "hotspot_prop": hs.HOTSPOT_PROP, "persistent_prop": hs.PERSISTENT_PROP,
        "emerging_rule": "share of older periods hot < hotspot_prop and share of recent "
                         "periods hot >= recent_prop",
        "period_inference": "two-sided normal p-value of the z-score, FDR across LSOAs"}


def classify_caveats(data: Data, used: list[int], starts: list[date]) -> list[str]:
    out = ["Departures from sfhotspot: LSOAs instead of a square grid; normal p-values with "
           "false discovery rate control across LSOAs in each period (sfhotspot adjusts its "
           "normal p-values by Holm); 'recent' is "
           f"the last {hs.RECENT_MONTHS} months where that leaves older periods (sfhotspot "
           "default: the last 20% of periods), because the assessment is annual."]
    dropped = len(starts) - len(used)
    if dropped:
        out.append(f"{dropped} period(s) had no serious violence recorded (months missing "
                   "from the data) and are left out of the classification.")
    months = set(data.scope.months)
    if len(months) % hs.PERIOD_MONTHS:
        out.append("The last period is shorter than the others.")
    return out


# ------------------------------------------------------------------------ locations

def location_counts(data: Data) -> pl.DataFrame:
    """Events per distinct point (police.uk snap point or recorded coordinates), with
    British National Grid x, y and a label."""
    sv = data.sv()
    keyed = sv.filter(sv.easting.notnull() | sv.latitude.notnull())
    grouped = keyed.group_by(["easting", "northing", "latitude", "longitude"]).aggregate(
        events=keyed.count(), location_desc=keyed.location_desc.min(),
        lsoa21_code=keyed.lsoa21_code.min())
    frame = data.fetch(grouped, (data.scope.police_source,))
    x, y = to_bng(frame)
    label = pl.when(pl.col("location_desc").is_not_null()).then(pl.col("location_desc"))\
        .otherwise(pl.format("{}, {}", pl.col("x").round(0).cast(pl.Int64),
                             pl.col("y").round(0).cast(pl.Int64)))
    return frame.with_columns(pl.Series("x", x), pl.Series("y", y)).with_columns(
        label.alias("location"), pl.col("events").cast(pl.Int64))


def to_bng(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Easting/northing where held, else the longitude/latitude projected to EPSG:27700."""
    x = frame.get_column("easting").to_numpy().astype(np.float64)
    y = frame.get_column("northing").to_numpy().astype(np.float64)
    need = ~np.isfinite(x) | ~np.isfinite(y)
    if need.any():
        lon = frame.get_column("longitude").to_numpy().astype(np.float64)[need]
        lat = frame.get_column("latitude").to_numpy().astype(np.float64)[need]
        pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(27700)
        x[need], y[need] = pts.x.to_numpy(), pts.y.to_numpy()
    return x, y


# ------------------------------------------------------------------------ KDE

def cell_size(bounds: np.ndarray) -> float:
    """sfhotspot's rule: 50 cells on the shorter side, rounded down to a multiple of 100 m."""
    side = min(bounds[2] - bounds[0], bounds[3] - bounds[1])
    rounded = math.floor(side / KDE_CELLS_SHORT_SIDE / KDE_ROUND_M) * KDE_ROUND_M
    return float(rounded) if rounded > 0 else side / KDE_CELLS_SHORT_SIDE


def silverman(values: np.ndarray) -> float:
    """Silverman's rule of thumb: 1.06 min(sd, IQR / 1.34) n^(-1/5)."""
    q1, q3 = np.quantile(values, [0.25, 0.75])
    spread = min(float(np.std(values, ddof=1)), (q3 - q1) / 1.34) or float(np.std(values))
    return 1.06 * spread * len(values) ** -0.2


def kde_grid(x: np.ndarray, y: np.ndarray, weight: np.ndarray,
             polygons: gpd.GeoSeries) -> tuple[pl.DataFrame, dict]:
    """Gaussian KDE of weighted points on a grid clipped to `polygons`: x, y (cell centres),
    density (events per km² over the period), events (in the cell)."""
    bounds = polygons.total_bounds
    size = cell_size(bounds)
    nx = math.ceil((bounds[2] - bounds[0]) / size)
    ny = math.ceil((bounds[3] - bounds[1]) / size)
    xs, ys = bounds[0] + size * np.arange(nx + 1), bounds[1] + size * np.arange(ny + 1)
    gx, gy = np.meshgrid(xs[:-1] + size / 2, ys[:-1] + size / 2)
    gx, gy = gx.ravel(), gy.ravel()
    boxes = shapely.box(gx - size / 2, gy - size / 2, gx + size / 2, gy + size / 2)
    tree = shapely.STRtree(polygons.to_numpy())
    keep = np.unique(tree.query(boxes, predicate="intersects")[0])
    total = float(weight.sum())
    bw = (silverman(np.repeat(x, weight)) + silverman(np.repeat(y, weight))) / 2
    counts = np.histogram2d(x, y, bins=[xs, ys], weights=weight)[0].T
    # Binned Gaussian KDE: the counts per cell convolved with the kernel (sigma in cells).
    smooth = ndimage.gaussian_filter(counts, sigma=bw / size, mode="constant",
                                     truncate=KDE_TRUNCATE)
    density = smooth.ravel()[keep] / (size * size) * 1e6
    table = pl.DataFrame({"x": gx[keep], "y": gy[keep], "density": density,
                          "events": counts.ravel()[keep].astype(np.int64)})
    params = {"cell_size_m": size, "bandwidth_m": bw, "kernel": "gaussian",
              "estimator": "binned: events counted per cell, then convolved with the "
                           "Gaussian kernel (scipy.ndimage.gaussian_filter)",
              "kernel_truncated_at_sd": KDE_TRUNCATE, "cells": table.height,
              "grid_columns": nx, "grid_rows": ny, "points": len(x), "events": int(total)}
    return table, params


def kde_result(data: Data, points: pl.DataFrame) -> Result:
    from svduty.geography import boundaries

    layer = boundaries(Path(data.wh.path.parent), "lsoa21")
    layer = layer[layer["lad_code"].isin(data.scope.lad_codes)]
    table, params = kde_grid(points.get_column("x").to_numpy(),
                             points.get_column("y").to_numpy(),
                             points.get_column("events").to_numpy(), layer.geometry)
    meta = data.meta(
        "places-kde", "Density of serious violence (kernel density surface)",
        "Kernel density of serious violence locations (police.uk snap points or recorded "
        "coordinates, in British National Grid metres) on a square grid over the scope. "
        "Cell size follows sfhotspot: the shorter side of the area's extent divided into "
        f"{KDE_CELLS_SHORT_SIDE} cells, rounded down to a multiple of {KDE_ROUND_M} m. "
        "Gaussian kernel; bandwidth by Silverman's rule of thumb (1.06 min(sd, IQR/1.34) "
        "n^-1/5), averaged over the x and y directions. Binned estimate: events are counted "
        "per cell and the counts convolved with the kernel (cut at 4 standard deviations), "
        "which differs from the exact sum over points by less than half a cell in position. "
        "Only cells touching the scope's "
        "LSOAs are kept. density: estimated events per km² over the whole period; events: "
        "events whose point lies in the cell.",
        geography=geography(data, f"{params['cell_size_m']:.0f} m grid"),
        parameters=params | {"crs": "EPSG:27700"},
        caveats=["police.uk points are anonymised snap points (the centre of a street or a "
                 "named place), not exact locations.",
                 "Density near the edge of the area is underestimated: violence just outside "
                 "the scope is not included.",
                 "sfhotspot uses a quartic kernel; a Gaussian kernel gives a similar surface."])
    return Result(table, meta)


# ------------------------------------------------------------------------ concentration

def top_shares(counts: np.ndarray) -> list[tuple[str, int, int, float]]:
    """(measure, units, events, share) for the top 1/5/10% of units by count."""
    ordered = np.sort(counts)[::-1]
    total = max(int(ordered.sum()), 1)
    out = []
    for p in TOP_SHARES:
        k = max(1, math.ceil(p * len(ordered)))
        events = int(ordered[:k].sum())
        out.append((f"top {p:.0%}", k, events, events / total))
    return out


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of counts (0: even; 1: all in one unit)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def concentration_rows(unit: str, counts: np.ndarray) -> list[dict]:
    rows = [{"unit": unit, "measure": m, "units": k, "events": e, "value": s}
            for m, k, e, s in top_shares(counts)]
    rows.append({"unit": unit, "measure": "gini", "units": len(counts),
                 "events": int(counts.sum()), "value": gini(counts)})
    return rows


def repeat_rows(counts: np.ndarray) -> list[dict]:
    total = max(int(counts.sum()), 1)
    return [{"unit": "location", "measure": f"{k}+ events", "units": int((counts >= k).sum()),
             "events": int(counts[counts >= k].sum()),
             "value": float(counts[counts >= k].sum() / total)} for k in REPEAT_THRESHOLDS]


def concentration_results(data: Data, lsoas: pl.DataFrame, points: pl.DataFrame,
                          shared: list[str]) -> list[Result]:
    lsoa_n = lsoas.get_column("events").to_numpy()
    loc_n = points.get_column("events").to_numpy()
    rows = concentration_rows("LSOA", lsoa_n) + concentration_rows("location", loc_n)
    table = pl.DataFrame(rows + repeat_rows(loc_n))
    kind = ("police.uk snap point (its latitude and longitude; labelled by its street "
            "description)" if data.scope.proxy else "recorded easting and northing")
    unplaced = int(lsoa_n.sum() - loc_n.sum())
    caveats = ["Location shares are among locations with at least one event; places with "
               "none are unknown, so the location Gini is not comparable with the LSOA one."]
    if unplaced:
        caveats.append(f"{unplaced} events have no coordinates and are left out of the "
                       "location figures.")
    meta = data.meta(
        "places-concentration", "Concentration of serious violence in few places",
        "Share of serious violence in the top 1%, 5% and 10% of LSOAs (every LSOA, zeros "
        "included) and of locations (the top ceil(p x n) units by count), the Gini "
        f"coefficient of counts, and repeat locations with 2+, 5+ and 10+ events. A "
        f"location is a {kind}. value: share of events (Gini for measure 'gini').",
        geography=geography(data, "LSOA 2021 and locations"),
        parameters={"top_shares": list(TOP_SHARES), "repeat_thresholds":
                    list(REPEAT_THRESHOLDS), "location": kind, "lsoas": len(lsoa_n),
                    "locations": len(loc_n), "top_units": "ceil(p x n), at least 1"},
        caveats=caveats)
    meta.queries = [*shared, *meta.queries]
    top = (points.sort(["events", "location"], descending=[True, False]).head(TOP_LOCATIONS)
           .join(lsoas.select("lsoa21_code", "lsoa_name", "ward_name"), on="lsoa21_code",
                 how="left")
           .with_columns(pl.int_range(1, pl.len() + 1).alias("rank"),
                         (pl.col("events") / max(int(loc_n.sum()), 1)).alias("share_of_events"))
           .select("rank", "location", "lsoa21_code", "lsoa_name", "ward_name", "x", "y",
                   "events", "share_of_events"))
    repeat = data.meta(
        "places-repeat-locations", f"Top {TOP_LOCATIONS} locations for serious violence",
        f"The {TOP_LOCATIONS} locations with most serious violence in the period; a location "
        f"is a {kind}; x, y in British National Grid metres.",
        geography=geography(data, "locations"),
        parameters={"top": TOP_LOCATIONS, "location": kind}, caveats=caveats)
    repeat.queries = list(meta.queries)
    return [Result(table, meta), Result(top, repeat)]
