"""Comparison with the force area: each CSP and local authority against the whole force area
and against the other CSPs in it, overall and by serious violence category.

Rates are per 1,000 residents (Census 2021) over the period, with exact (Garwood) intervals.
Each area is tested against the rest of the force area (the force without that area, so the
two counts are independent) with the exact conditional binomial test for two Poisson rates
(`stats.change`, exposures = residents); the ratio to the whole force rate is also given.

Comparing like with like needs one police source for every CSP in the force. Where the scope
counts from the force's recorded-crime extract but that extract does not cover every local
authority in the force, the comparison uses the data.police.uk categories (which cover the
whole force) for every row, and says so in the `source` and `proxy` columns.
"""

from __future__ import annotations

import ibis.expr.types as ir
import numpy as np
import polars as pl

from svduty.analysis import stats
from svduty.analysis.data import Data
from svduty.analysis.result import Result

ALL = "All serious violence"
LEVELS = {"pfa": ("pfa_code", "pfa_name"), "csp": ("csp_code", "csp_name"),
          "la": ("lad_code", "lad_name")}


def covered_lads(data: Data, source: str) -> set[str]:
    """Force-area local authorities with any event of `source` in the period."""
    e = data.events(source, force=True)
    frame = data.fetch(e.select("lad_code").distinct())
    return set(frame["lad_code"].drop_nulls().to_list())


def choose_source(data: Data) -> tuple[str, str]:
    """The police source for the comparison and why."""
    force = set(data.scope.force_lad_codes)
    own = data.scope.police_source
    if force <= covered_lads(data, own):
        return own, f"{own} covers every local authority in the force area"
    if own != "police-uk" and force <= covered_lads(data, "police-uk"):
        return "police-uk", (f"{own} does not cover every local authority in the force area, "
                             "so data.police.uk categories (which do) are used for every row")
    return own, (f"{own} does not cover every local authority in the force area; areas "
                 "without data show no count")


def sv_of(data: Data, source: str) -> ir.Table:
    """Serious violence events of `source` in the force area with their area columns."""
    if source == data.scope.police_source:
        return data.sv(force=True)
    e = data.events(source, force=True)
    return e.inner_join(data.table("sv_events").drop("definition_version"), "event_id")


def counts(data: Data, source: str) -> tuple[pl.DataFrame, int]:
    """Counts by LA x category (with CSP and force columns), and months with data."""
    sv = sv_of(data, source)
    keys = ["pfa_code", "pfa_name", "csp_code", "csp_name", "lad_code", "lad_name",
            "sv_category", "proxy"]
    frame = data.fetch(sv.group_by(keys).aggregate(count=sv.event_id.count()),
                       sources=(source,))
    e = data.events(source, force=True)
    months = data.fetch(e.aggregate(months=e.month.nunique()))["months"][0] or 0
    return frame, int(months)


def area_names(data: Data) -> pl.DataFrame:
    a = data.areas()
    a = a.filter(a.lad_code.isin(data.scope.force_lad_codes))
    return data.fetch(a.select("pfa_code", "pfa_name", "csp_code", "csp_name", "lad_code",
                               "lad_name").distinct())


def populations(data: Data) -> pl.DataFrame:
    """Residents per area code at every level (columns code, residents)."""
    frames = [data.population(col, force=True).rename({col: "code"})
              for col, _ in LEVELS.values()]
    return pl.concat(frames)


def area_rows(raw: pl.DataFrame, names: pl.DataFrame) -> pl.DataFrame:
    """Counts per level x area x category (plus an all-categories row), zeros included."""
    categories = [ALL, *sorted(raw["sv_category"].unique().to_list())]
    out = []
    for level, (code, name) in LEVELS.items():
        areas = names.select(pl.col(code).alias("code"), pl.col(name).alias("name")).unique()
        grid = areas.join(pl.DataFrame({"category": categories}), how="cross")
        by_cat = raw.group_by(code, "sv_category").agg(pl.col("count").sum()).rename(
            {code: "code", "sv_category": "category"})
        total = raw.group_by(code).agg(pl.col("count").sum()).rename({code: "code"})
        both = pl.concat([by_cat, total.with_columns(category=pl.lit(ALL))
                          .select("code", "category", "count")])
        out.append(grid.join(both, ["code", "category"], "left")
                   .with_columns(level=pl.lit(level), count=pl.col("count").fill_null(0)))
    return pl.concat(out, how="diagonal")


def with_statistics(rows: pl.DataFrame, pops: pl.DataFrame, months: int) -> pl.DataFrame:
    """Rates, exact intervals, tests against the rest of the force area, and ranks."""
    rows = rows.join(pops, "code", "left")
    force = rows.filter(pl.col("level") == "pfa").group_by("category").agg(
        force_count=pl.col("count").sum(), force_residents=pl.col("residents").sum())
    rows = rows.join(force, "category", "left")
    k = rows["count"].to_numpy().astype(float)
    pop = rows["residents"].to_numpy().astype(float)
    rate, lo, hi = stats.rate(k, pop)
    years = max(months, 1) / 12
    tests = [test(r) for r in rows.iter_rows(named=True)]
    force_rate = rows["force_count"].to_numpy() / rows["force_residents"].to_numpy() * 1000
    rows = rows.with_columns(
        rate_per_1000=rate, rate_lower=lo, rate_upper=hi,
        rate_per_1000_per_year=rate / years,
        force_rate_per_1000=force_rate, ratio_to_force=rate / force_rate,
        rr_vs_rest=pl.Series([t[0] for t in tests], dtype=pl.Float64),
        rr_lower=pl.Series([t[1] for t in tests], dtype=pl.Float64),
        rr_upper=pl.Series([t[2] for t in tests], dtype=pl.Float64),
        p_value=pl.Series([t[3] for t in tests], dtype=pl.Float64))
    rows = rows.with_columns(
        significant=pl.col("p_value") < 1 - stats.CONFIDENCE,
        rank=pl.col("rate_per_1000").rank("min", descending=True)
        .over("level", "category").cast(pl.Int32),
        areas_ranked=pl.len().over("level", "category").cast(pl.Int32))
    return rows.with_columns(comparison=pl.struct("ratio_to_force", "significant", "level")
                             .map_elements(wording, return_dtype=pl.String))


def test(row: dict) -> tuple[float, float, float, float]:
    """Exact test of the area's rate against the rest of the force area."""
    if row["level"] == "pfa" or not row["residents"]:
        return (np.nan, np.nan, np.nan, np.nan)
    rest = int(row["force_count"] - row["count"])
    rest_pop = float(row["force_residents"] - row["residents"])
    if rest_pop <= 0:
        return (np.nan, np.nan, np.nan, np.nan)
    c = stats.change(rest, int(row["count"]), rest_pop, float(row["residents"]))
    return c.ratio, c.lower, c.upper, c.p_value


def wording(s: dict) -> str:
    if s["level"] == "pfa":
        return "force area"
    if s["significant"] is None or s["ratio_to_force"] is None:
        return "not tested"
    if not s["significant"]:
        return "similar to the rest of the force area"
    return ("higher than the rest of the force area" if s["ratio_to_force"] > 1
            else "lower than the rest of the force area")


COLUMNS = ("level", "code", "name", "in_scope", "category", "count", "residents",
           "rate_per_1000", "rate_lower", "rate_upper", "rate_per_1000_per_year",
           "force_count", "force_residents", "force_rate_per_1000", "ratio_to_force",
           "rr_vs_rest", "rr_lower", "rr_upper", "p_value", "significant", "comparison",
           "rank", "areas_ranked", "months_with_data", "source", "proxy")


def caveats(source: str, why: str, months: int, data: Data) -> list[str]:
    out = [
        "A comparison with England (or most similar areas) is not possible from local data: "
        "it needs national counts by the same local definition. Use ONS/Home Office "
        "published tables for that.",
        f"Source for every row: {source} ({why}).",
        "Rates use Census 2021 residents at the place of the offence; areas with many "
        "visitors (city centres, night-time economy) have higher rates per resident.",
        "Each area is tested against the rest of the force area; with many areas and "
        "categories some 'significant' differences are expected by chance (no multiple-"
        "comparison adjustment).",
        f"Rates per year use the {months} months with police data in the period.",
    ]
    if source == "police-uk":
        out.append("data.police.uk categories are a proxy for serious violence: 'Violence and "
                   "sexual offences' includes common assault and harassment. Do not compare "
                   "these rates with recorded-crime (offence code) rates.")
    if source != data.scope.police_source:
        out.append(f"The scope's own counts elsewhere in this assessment come from "
                   f"{data.scope.police_source}; the numbers here differ because they use "
                   f"{source} for a like-for-like comparison.")
    return out


def analyse(data: Data) -> list[Result]:
    """Each CSP and local authority against the force area, overall and by category."""
    source, why = choose_source(data)
    raw, months = counts(data, source)
    names = area_names(data)
    table = with_statistics(area_rows(raw, names), populations(data), months)
    scope_codes = {*data.scope.lad_codes, *data.scope.csp_codes}
    table = table.with_columns(
        in_scope=pl.col("code").is_in(list(scope_codes)), months_with_data=pl.lit(months),
        source=pl.lit(source), proxy=pl.lit(source == "police-uk"))
    order = pl.col("level").replace_strict({"pfa": 0, "csp": 1, "la": 2}, return_dtype=pl.Int8)
    table = table.sort(order, pl.col("category") != ALL, "category", "rank").select(COLUMNS)
    meta = data.meta(
        "comparison-force", "Serious violence compared with the force area",
        "Counts of serious violence (local definition) per force area, CSP and local authority "
        "in the force area, overall and by category. Rate per 1,000 Census 2021 residents "
        "over the period with exact Garwood 95% intervals. Each CSP or local authority is "
        "compared with the rest of the force area (force minus that area) by the exact "
        "conditional binomial test for two Poisson rates with residents as exposures "
        "(rr_vs_rest, with Clopper-Pearson-based interval); ratio_to_force is the area's rate "
        "divided by the whole force rate. Rank 1 = highest rate among CSPs (or local "
        "authorities) of the force area for that category.",
        geography=f"{data.scope.label} within force area(s) {', '.join(data.scope.pfa_codes)}",
        parameters={"comparison_source": source, "source_choice": why,
                    "scope_police_source": data.scope.police_source,
                    "months_with_data": months, "per": 1000,
                    "confidence": stats.CONFIDENCE, "test": "exact conditional binomial vs "
                    "rest of force area", "force_lad_codes": list(data.scope.force_lad_codes)},
        caveats=caveats(source, why, months, data))
    return [Result(table, meta)]
