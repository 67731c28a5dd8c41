"""Hot and cold spots of serious violence by LSOA: Getis-Ord Gi* and its classification over
time (persistent, emerging, intermittent, former), as sfhotspot's ``hotspot_classify`` does.

Gi* runs on event counts (cast to float64: esda needs real numbers) with Queen-contiguity
weights built from the 2021 LSOA boundaries. Significance comes from conditional
permutations with a fixed seed, and the false discovery rate is controlled across LSOAs
(Benjamini-Hochberg), so "hot spot" means the same on the map and in every period.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import polars as pl
from esda import G_Local
from libpysal.weights import KNN, Queen, W
from libpysal.weights.util import attach_islands
from scipy import stats
from statsmodels.stats.multitest import multipletests

PERMUTATIONS = 999
SEED = 20250401
ALPHA = 0.05
FDR_METHOD = "fdr_bh"
HOT, COLD, NONE = "hot spot", "cold spot", "not significant"
# hotspot_classify thresholds (sfhotspot defaults, except that "recent" is the last 12 months)
# Periods of six months: a CSP's serious violence is a handful of events per LSOA a quarter,
# too few for Gi* to separate a real cluster from noise after FDR control.
PERIOD_MONTHS = 6
# Per period, significance as sfhotspot's hotspot_classify takes it: the normal p-value of
# the z-score (FDR-controlled); conditional-permutation p-values floor at 1/(permutations+1)
# and with short periods almost nothing survives FDR control.
PERIOD_INFERENCE = "normal"
RECENT_MONTHS = 12
HOTSPOT_PROP = 0.1
PERSISTENT_PROP = 0.8
RECENT_PROP_FALLBACK = 0.2


@dataclass
class Weights:
    """Queen contiguity of the scope's LSOAs (islands joined to their nearest LSOA)."""

    w: W
    codes: list[str]  # LSOAs in weights order
    islands: list[str]  # LSOAs that touched no other and were joined to their nearest
    missing: list[str]  # scope LSOAs without a boundary (left out of Gi*)
    components: int


def lsoa_weights(root: Path, codes: list[str]) -> Weights:
    """Queen weights for `codes` from ``reference/boundaries/lsoa21.parquet``."""
    from svduty.geography import boundaries

    layer = boundaries(root, "lsoa21")
    layer = layer[layer["lsoa21_code"].isin(codes)].sort_values("lsoa21_code")
    layer = layer.drop_duplicates("lsoa21_code").reset_index(drop=True)
    ids = layer["lsoa21_code"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(layer, ids=ids, use_index=False, silence_warnings=True)
        islands = sorted(w.islands)
        if islands:
            points = gpd.GeoDataFrame({"code": ids}, geometry=layer.centroid, crs=layer.crs)
            w = attach_islands(w, KNN.from_dataframe(points, ids=ids, use_index=False, k=1))
    return Weights(w, ids, islands, sorted(set(codes) - set(ids)), int(w.n_components))


def gi_star(counts: np.ndarray, weights: Weights, seed: int = SEED,
            inference: str = "permutation") -> pl.DataFrame:
    """Gi* of `counts` (in ``weights.codes`` order): gi_star, z_score, p_sim, p_norm, p_fdr,
    class. `inference` "permutation" controls the FDR on the conditional-permutation p_sim;
    "normal" on the two-sided normal p-value of the z-score (as sfhotspot does per period)."""
    y = np.asarray(counts, dtype=np.float64)
    n = len(weights.codes)
    if y.sum() <= 0 or np.all(y == y[0]):
        nan = np.full(n, np.nan)
        return pl.DataFrame({"lsoa21_code": weights.codes, "gi_star": nan, "z_score": nan,
                             "p_sim": nan, "p_norm": nan, "p_fdr": nan, "class": [NONE] * n})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = G_Local(y, weights.w, transform="B", star=True,
                    permutations=PERMUTATIONS if inference == "permutation" else 0,
                    seed=seed, n_jobs=1, keep_simulations=False)
    p_norm = 2 * stats.norm.sf(np.abs(g.Zs))
    p_sim = g.p_sim if inference == "permutation" else np.full(n, np.nan)
    p_fdr = multipletests(p_sim if inference == "permutation" else p_norm, alpha=ALPHA,
                          method=FDR_METHOD)[1]
    significant = p_fdr < ALPHA
    cls = np.where(significant & (g.Zs > 0), HOT, np.where(significant, COLD, NONE))
    return pl.DataFrame({"lsoa21_code": weights.codes, "gi_star": g.Gs, "z_score": g.Zs,
                         "p_sim": p_sim, "p_norm": p_norm, "p_fdr": p_fdr, "class": cls})


def gi_star_periods(period_counts: pl.DataFrame, weights: Weights) -> pl.DataFrame:
    """Gi* per period; `period_counts`: period, lsoa21_code, events (zeros may be absent).
    Periods with no events are left out, as sfhotspot does."""
    codes = pl.DataFrame({"lsoa21_code": weights.codes})
    frames = []
    for period in sorted(period_counts.get_column("period").unique().to_list()):
        one = period_counts.filter(pl.col("period") == period).drop("period")
        one = codes.join(one, on="lsoa21_code", how="left").fill_null(0)
        if one.get_column("events").sum() == 0:
            continue
        result = gi_star(one.get_column("events").to_numpy(), weights, SEED + period,
                         inference=PERIOD_INFERENCE)
        frames.append(result.with_columns(pl.lit(period).alias("period"),
                                          one.get_column("events").alias("events")))
    return pl.concat(frames) if frames else pl.DataFrame()


def recent_periods(starts: list, recent_from) -> tuple[int, str]:
    """How many of the (sorted) period starts count as recent, and the rule that chose it."""
    recent = sum(1 for s in starts if s >= recent_from)
    if 1 <= recent < len(starts):
        return recent, f"periods starting in the last {RECENT_MONTHS} months"
    recent = max(1, int(np.floor(RECENT_PROP_FALLBACK * len(starts))))
    return recent, f"the last {RECENT_PROP_FALLBACK:.0%} of periods (sfhotspot's default)"


def classify(periods: pl.DataFrame, n_recent: int) -> pl.DataFrame:
    """hotspot_classify's categories per LSOA from per-period Gi* classes (sfhotspot 0.9)."""
    order = sorted(periods.get_column("period").unique().to_list())
    recent = set(order[len(order) - n_recent:])
    n, n_older = len(order), len(order) - n_recent
    recent_prop = n_recent / n
    flags = periods.with_columns(
        (pl.col("class") == HOT).alias("hot"), (pl.col("class") == COLD).alias("cold"),
        pl.col("period").is_in(list(recent)).alias("recent"))
    out = flags.group_by("lsoa21_code").agg(
        pl.len().alias("periods"), pl.col("hot").sum().alias("periods_hot"),
        pl.col("cold").sum().alias("periods_cold"),
        pl.col("hot").filter(pl.col("recent")).sum().alias("recent_hot"),
        pl.col("cold").filter(pl.col("recent")).sum().alias("recent_cold"),
        pl.col("events").sum().alias("events"))
    out = out.with_columns(
        (pl.col("periods_hot") / n).alias("share_hot"),
        (pl.col("periods_cold") / n).alias("share_cold"),
        (pl.col("recent_hot") / n_recent).alias("share_recent_hot"),
        ((pl.col("periods_hot") - pl.col("recent_hot")) / n_older).alias("share_older_hot"),
        (pl.col("recent_cold") / n_recent).alias("share_recent_cold"),
        ((pl.col("periods_cold") - pl.col("recent_cold")) / n_older).alias("share_older_cold"))
    hot = _category("hot", recent_prop).alias("hot_category")
    cold = _category("cold", recent_prop).alias("cold_category")
    out = out.with_columns(hot, cold).with_columns(
        pl.when((pl.col("hot_category") != "no pattern")
                & (pl.col("cold_category") != "no pattern")).then(pl.lit("mixed hot/cold spot"))
        .when(pl.col("hot_category") != "no pattern").then(pl.col("hot_category"))
        .otherwise(pl.col("cold_category")).alias("category"))
    return out.drop("hot_category", "cold_category").sort("lsoa21_code")


def _category(kind: str, recent_prop: float) -> pl.Expr:
    share = pl.col(f"share_{kind}")
    older, recent = pl.col(f"share_older_{kind}"), pl.col(f"share_recent_{kind}")
    label = "hot spot" if kind == "hot" else "cold spot"
    return (pl.when(share >= PERSISTENT_PROP).then(pl.lit(f"persistent {label}"))
            .when((older < HOTSPOT_PROP) & (recent >= recent_prop))
            .then(pl.lit(f"emerging {label}"))
            .when((older >= HOTSPOT_PROP) & (recent < HOTSPOT_PROP))
            .then(pl.lit(f"former {label}"))
            .when(share >= HOTSPOT_PROP).then(pl.lit(f"intermittent {label}"))
            .otherwise(pl.lit("no pattern")))


def weights_caveats(weights: Weights) -> list[str]:
    out = []
    if weights.islands:
        out.append(f"{len(weights.islands)} LSOA(s) share no boundary with another "
                   f"({', '.join(weights.islands)}); each was joined to its nearest LSOA by "
                   "centroid distance so it has neighbours.")
    if weights.missing:
        out.append(f"{len(weights.missing)} LSOA(s) have no boundary held and are left out "
                   f"of Gi*: {', '.join(weights.missing[:10])}.")
    return out


def gi_parameters(weights: Weights) -> dict:
    return {"statistic": "Getis-Ord Gi* (esda.G_Local, star=True)", "variable": "event count",
            "weights": "Queen contiguity of 2021 LSOA boundaries, binary, self included",
            "islands": "joined to nearest LSOA by centroid (k=1)",
            "islands_joined": weights.islands, "components": weights.components,
            "lsoas": len(weights.codes), "permutations": PERMUTATIONS, "seed": SEED,
            "inference": "conditional permutation (pseudo p-value, p_sim)",
            "multiple_testing": "Benjamini-Hochberg false discovery rate across LSOAs "
                                "(statsmodels multipletests fdr_bh)", "alpha": ALPHA}
