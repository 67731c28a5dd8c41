"""Near repeats: does serious violence cluster in space and time more than chance (Knox test)?

Every pair of offences is placed in a distance band and a days-apart band. Pairs closer than
the largest finite distance band are found with a k-d tree (scipy ``cKDTree.query_pairs``),
never an all-pairs matrix, so memory grows with the number of close pairs only; pairs
further apart are counted per time band from the sorted dates (all pairs minus close pairs).
Significance is by Monte Carlo: the dates are shuffled among the places (seeded) and the
pairs recounted; the Knox ratio is observed over the mean of the shuffles.

Needs exact dates and coordinates (the force's recorded-crime extract): data.police.uk has
months and snapped points only, so with it the test is declined with a caveat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from svduty.analysis.data import Data
from svduty.analysis.result import Result

SPACE_EDGES_M = (200.0, 400.0, 600.0, 800.0, 1000.0)  # upper ends, inclusive
TIME_EDGES_DAYS = (7, 14, 21, 28)  # upper ends, inclusive
ITERATIONS = 199  # p-values down to 1/200; enough for a 0.05 or 0.01 decision
FEW_ITERATIONS = 99  # used instead when there are more than PAIR_BUDGET close pairs
PAIR_BUDGET = 600_000  # keeps the shuffles to seconds
SEED = 20240401
WINDOW_MONTHS = 12  # the latest months of the period
MAX_EVENTS = 8000  # the latest offences kept when the window holds more
COLUMNS = {"space_band": pl.String, "space_from_m": pl.Float64, "space_to_m": pl.Float64,
           "time_band": pl.String, "time_from_days": pl.Int64, "time_to_days": pl.Int64,
           "observed": pl.Int64, "expected": pl.Float64, "knox_ratio": pl.Float64,
           "simulations_at_least_observed": pl.Int64, "p_value": pl.Float64}
METHOD = (
    "Knox test. Every pair of serious violence offences is classed by the straight-line "
    "distance between their recorded locations (British National Grid metres) and by the "
    "whole days between the dates they occurred. Distance bands: 0 to 200 m inclusive, then "
    "over 200 m up to and including 400 m, and so on to 1000 m, then over 1000 m; time "
    "bands: 0 to 7 days inclusive (same day included), 8 to 14, 15 to 21, 22 to 28, and 29 "
    "days or more; bands do not overlap and leave no gaps. Observed pair counts per cell "
    "are compared with {iterations} Monte Carlo shuffles of the dates among the locations "
    "(random seed {seed}): expected = mean shuffled count, Knox ratio = observed / expected "
    "(above 1: more pairs close in both space and time than chance, a near-repeat pattern), "
    "one-sided p = (1 + shuffles with a count at least the observed) / (1 + shuffles).")


@dataclass(frozen=True)
class Knox:
    """Knox table: rows are distance bands (last: beyond the largest edge), columns are time
    bands (last: beyond the largest edge)."""

    observed: np.ndarray
    expected: np.ndarray
    at_least: np.ndarray  # shuffles with a count >= observed, per cell
    iterations: int
    seed: int
    close_pairs: int  # pairs within the largest distance edge
    all_pairs: int

    @property
    def p_value(self) -> np.ndarray:
        return (1 + self.at_least) / (1 + self.iterations)

    @property
    def ratio(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.expected > 0, self.observed / self.expected, np.nan)


def band_of(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Band index: 0 for values <= edges[0], i for edges[i-1] < value <= edges[i], and
    len(edges) beyond the last edge."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")


def close_pairs(xy: np.ndarray, max_distance: float) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Index pairs (i < j) at most `max_distance` apart and their distances, from a k-d tree
    (the tree radius is padded by a hair, then distances are recomputed and cut exactly)."""
    tree = cKDTree(xy)
    pairs = tree.query_pairs(max_distance * (1 + 1e-9), output_type="ndarray")
    i, j = pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)
    d = xy[i] - xy[j]
    dist = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
    keep = dist <= max_distance
    return i[keep], j[keep], dist[keep]


def pairs_by_time_band(days: np.ndarray, time_edges: tuple[int, ...]) -> np.ndarray:
    """Number of all pairs in each time band, from the sorted days (no pair list)."""
    s = np.sort(days)
    idx = np.arange(len(s))
    within = [int((np.searchsorted(s, s + edge, side="right") - idx - 1).sum())
              for edge in time_edges]
    total = len(s) * (len(s) - 1) // 2
    return np.diff(np.array([0, *within, total]))


def knox(xy: np.ndarray, days: np.ndarray, space_edges: tuple[float, ...] = SPACE_EDGES_M,
         time_edges: tuple[int, ...] = TIME_EDGES_DAYS, iterations: int | None = None,
         seed: int = SEED) -> Knox:
    """Knox table of events at `xy` (metres) on `days` (integer day numbers); `iterations`
    None: ITERATIONS, or FEW_ITERATIONS beyond PAIR_BUDGET close pairs."""
    days = np.asarray(days, dtype=np.int64)
    i, j, dist = close_pairs(np.asarray(xy, dtype=np.float64), space_edges[-1])
    if iterations is None:
        iterations = ITERATIONS if len(i) <= PAIR_BUDGET else FEW_ITERATIONS
    ns, nt = len(space_edges) + 1, len(time_edges) + 1
    small = np.uint8 if ns * nt < 256 else np.int64  # compact cells are faster to count
    base = (band_of(dist, space_edges) * nt).astype(small)
    lookup = band_of(np.arange(time_edges[-1] + 2), time_edges).astype(small)
    cap = time_edges[-1] + 1
    span = int(days.max() - days.min()) if len(days) else 0
    compact = (days - (days.min() if len(days) else 0)).astype(
        np.int16 if span < 2**15 else np.int64)

    def close_counts(d: np.ndarray) -> np.ndarray:
        gap = d[i]
        gap -= d[j]
        np.abs(gap, out=gap)
        np.minimum(gap, cap, out=gap)
        cell = lookup[gap]
        cell += base
        return np.bincount(cell, minlength=(ns - 1) * nt).reshape(ns - 1, nt)

    by_time = pairs_by_time_band(days, time_edges)  # unchanged by shuffling the dates

    def all_counts(d: np.ndarray) -> np.ndarray:
        close = close_counts(d)
        return np.vstack([close, by_time - close.sum(axis=0)])  # far row: the rest

    observed = all_counts(compact)
    rng = np.random.default_rng(seed)
    total, at_least = np.zeros((ns, nt)), np.zeros((ns, nt), dtype=np.int64)
    for _ in range(iterations):
        sim = all_counts(rng.permutation(compact))
        total += sim
        at_least += sim >= observed
    return Knox(observed, total / max(iterations, 1), at_least, iterations, seed, len(i),
                len(days) * (len(days) - 1) // 2)


def band_labels(edges: tuple[float, ...], unit: str, whole: bool) -> list[tuple[str, float,
                                                                                  float | None]]:
    """(label, from, to) per band: first closed at 0, then (previous, edge], then open."""
    out, previous = [], None
    for edge in edges:
        if previous is None:
            out.append((f"0 to {edge:g} {unit} inclusive", 0, edge))
        elif whole:
            out.append((f"{previous + 1:g} to {edge:g} {unit} inclusive", previous + 1, edge))
        else:
            out.append((f"over {previous:g} {unit} to {edge:g} {unit} inclusive", previous,
                        edge))
        previous = edge
    last = (f"{previous + 1:g} {unit} or more", previous + 1, None) if whole else (
        f"over {previous:g} {unit}", previous, None)
    return [*out, last]


def knox_table(k: Knox, space_edges: tuple[float, ...] = SPACE_EDGES_M,
               time_edges: tuple[int, ...] = TIME_EDGES_DAYS) -> pl.DataFrame:
    rows = []
    p, ratio = k.p_value, k.ratio
    for s, (s_label, s_from, s_to) in enumerate(band_labels(space_edges, "m", False)):
        for t, (t_label, t_from, t_to) in enumerate(band_labels(time_edges, "days", True)):
            rows.append({"space_band": s_label, "space_from_m": float(s_from),
                         "space_to_m": None if s_to is None else float(s_to),
                         "time_band": t_label, "time_from_days": int(t_from),
                         "time_to_days": None if t_to is None else int(t_to),
                         "observed": int(k.observed[s, t]), "expected": float(k.expected[s, t]),
                         "knox_ratio": float(ratio[s, t]),
                         "simulations_at_least_observed": int(k.at_least[s, t]),
                         "p_value": float(p[s, t])})
    return pl.DataFrame(rows, schema=COLUMNS)


# ------------------------------------------------------------------- the analysis


def window_start(end: date, months: int) -> date:
    index = end.year * 12 + end.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


def offences(data: Data) -> tuple[pl.DataFrame, date]:
    """Serious violence with a date and coordinates in the latest WINDOW_MONTHS."""
    start = max(window_start(data.scope.end, WINDOW_MONTHS), data.scope.start)
    sv = data.sv()
    day = sv.occurred_on.fill_null(sv.occurred_at.date())
    sv = sv.filter((sv.month >= start) & day.notnull() & sv.easting.notnull()
                   & sv.northing.notnull())
    picked = sv.select("event_id", "easting", "northing", day=day)
    expr = picked.order_by([picked.day.desc(), "event_id"]).limit(MAX_EVENTS)
    return data.fetch(expr), start


def analyse(data: Data) -> list[Result]:
    if data.scope.proxy:
        return [declined(data)]
    events, start = offences(data)
    xy = events.select("easting", "northing").to_numpy()
    day0 = date(1970, 1, 1)
    days = np.array([(d - day0).days for d in events["day"].to_list()], dtype=np.int64)
    k = knox(xy, days)
    capped = events.height >= MAX_EVENTS
    meta = data.meta(
        "near-repeat-knox", "Near repeats of serious violence (Knox test)",
        METHOD.format(iterations=k.iterations, seed=k.seed) + f" {ITERATIONS} shuffles are "
        f"run, or {FEW_ITERATIONS} where there are more than {PAIR_BUDGET:,} close pairs "
        "(so the run takes seconds; p-values then resolve to 0.01).",
        parameters={"space_bands_m": list(SPACE_EDGES_M), "time_bands_days":
                    list(TIME_EDGES_DAYS), "iterations": k.iterations, "seed": k.seed,
                    "pair_budget": PAIR_BUDGET,
                    "window_months": WINDOW_MONTHS, "window_start": start.isoformat(),
                    "max_events": MAX_EVENTS, "events": events.height, "capped": capped,
                    "close_pairs": k.close_pairs, "all_pairs": k.all_pairs},
        caveats=caveats(capped, events))
    return [Result(knox_table(k), meta)]


def caveats(capped: bool, events: pl.DataFrame) -> list[str]:
    out = ["A Knox ratio above 1 says offences happened close together in space and time "
           "more often than chance; it does not say one offence led to another.",
           "Recorded locations are often a street or a snapped point, so distances under "
           "about 100 m are approximate.",
           "p-values are per cell; with 30 cells tested, about one in twenty may fall under "
           "0.05 by chance alone."]
    if capped:
        out.append(f"The window held more offences than the cap: only the latest "
                   f"{events.height} were used (from {min(events['day'])}).")
    return out


def declined(data: Data) -> Result:
    meta = data.meta(
        "near-repeat-knox", "Near repeats of serious violence (Knox test): not run",
        "Not run: the Knox test needs the date and location of each offence.",
        parameters={"space_bands_m": list(SPACE_EDGES_M),
                    "time_bands_days": list(TIME_EDGES_DAYS)},
        caveats=["data.police.uk gives the month only and moves each location to a snap "
                 "point, so near repeats cannot be tested; load the force's recorded-crime "
                 "extract (police-recorded) to run it."])
    meta.queries = []
    return Result(pl.DataFrame(schema=COLUMNS), meta)
