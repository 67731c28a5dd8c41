"""Volume and trend of serious violence: monthly counts and rates, rolling 12-month totals,
year-on-year change, seasonality, a 12-month outlook, and the series breaks behind them.

Months with no police data (no load covers them, or no events were loaded for the scope's
areas) are reported as missing, never filled in. Seasonality (STL) and the outlook use only
the longest contiguous run of complete months, and say which months that is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import STL

from svduty.analysis import stats
from svduty.analysis.data import Data
from svduty.analysis.result import Result
from svduty.analysis.scope import month_range

ALL = "All serious violence"
PER = 1000.0
STL_MIN_MONTHS = 24
SEASONAL_MIN_MONTHS = 24
# Seasonal ETS is tried only where a category averages this many a month: below it the
# seasonal terms are noise, and each seasonal fit costs about a second.
SEASONAL_MIN_MEAN = 100.0
OUTLOOK_MIN_MEAN = 5.0  # categories rarer than this a month get no outlook (too few)
FORECAST_MIN_MONTHS = 12
HORIZON = 12
MIN_SMOOTHING_LEVEL = 0.05
LEVELS = (("partnership", None), ("lad", "lad_code"), ("csp", "csp_code"))


# ------------------------------------------------------------------------ months


@dataclass(frozen=True)
class Coverage:
    """Which months of the scope have police data, and the longest complete run."""

    months: list[date]
    complete: dict[date, bool]
    loaded: dict[date, bool]
    events: dict[date, int]

    @property
    def missing(self) -> list[date]:
        return [m for m in self.months if not self.complete[m]]

    def longest_run(self) -> list[date]:
        """The longest run of consecutive complete months (the latest if tied)."""
        best: list[date] = []
        run: list[date] = []
        for m in self.months:
            run = [*run, m] if self.complete[m] else []
            if len(run) >= len(best):
                best = run
        return best


def coverage(data: Data, source: str | None = None) -> Coverage:
    """Months of the scope covered by a current load of `source` and holding its events."""
    source = source or data.scope.police_source
    months = data.scope.months
    loads = data.table("loads")
    loads = loads.filter((loads.source == source) & loads.superseded_by.isnull())
    spans = data.fetch(loads.select("load_id", "period_start", "period_end"), (source,))
    e = data.events(source)
    counts = data.fetch(e.group_by("month").aggregate(n=e.count()), (source,))
    found = {r["month"]: int(r["n"]) for r in counts.iter_rows(named=True)}
    loaded = {m: any(_covers(s, t, m) for _, s, t in spans.iter_rows()) for m in months}
    events = {m: found.get(m, 0) for m in months}
    complete = {m: loaded[m] and events[m] > 0 for m in months}
    return Coverage(months, complete, loaded, events)


def _covers(start: date | None, end: date | None, month: date) -> bool:
    if start is None or end is None:
        return False
    return date(start.year, start.month, 1) <= month <= end


def runs(months: list[date]) -> list[tuple[date, date]]:
    """Consecutive months grouped into (first, last) runs."""
    out: list[tuple[date, date]] = []
    for m in months:
        if out and month_range(out[-1][1], m)[1:] == [m]:
            out[-1] = (out[-1][0], m)
        else:
            out.append((m, m))
    return out


def span(months: list[date]) -> str:
    return ", ".join(f"{a:%Y-%m}..{b:%Y-%m}" if a != b else f"{a:%Y-%m}" for a, b in runs(months))


def shift(month: date, by: int) -> date:
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


# ------------------------------------------------------------------------ monthly counts


def monthly_counts(data: Data) -> pl.DataFrame:
    """Serious violence by month, category and LA/CSP, with harm-weight totals."""
    sv = data.sv()
    expr = sv.group_by("month", "sv_category", "lad_code", "lad_name", "csp_code",
                       "csp_name").aggregate(
        count=sv.count(), harm_weight_total=sv.harm_weight.sum(),
        events_without_weight=sv.harm_weight.isnull().sum())
    return data.fetch(expr).with_columns(pl.col("count").cast(pl.Int64),
                                         pl.col("events_without_weight").cast(pl.Int64))


def by_level(counts: pl.DataFrame) -> pl.DataFrame:
    """Counts per (level, area, category, month), with the all-category total added."""
    frames = []
    for level, col in LEVELS:
        keys = ["month", "sv_category"]
        area = ([pl.lit("all").alias("area_code"), pl.lit("all").alias("area_name")]
                if col is None else [pl.col(col).alias("area_code"),
                                     pl.col(col.replace("code", "name")).alias("area_name")])
        framed = counts.with_columns(*area)
        for cat in (None, ALL):
            f = framed if cat is None else framed.with_columns(sv_category=pl.lit(ALL))
            frames.append(f.group_by([*keys, "area_code", "area_name"]).agg(
                pl.col("count").sum(), pl.col("harm_weight_total").sum(),
                pl.col("events_without_weight").sum()).with_columns(level=pl.lit(level)))
    return pl.concat(frames, how="diagonal_relaxed")


def residents(data: Data) -> pl.DataFrame:
    total = data.population("lad_code")["residents"].sum()
    frames = [pl.DataFrame({"level": ["partnership"], "area_code": ["all"],
                            "residents": [total]})]
    for level, col in LEVELS[1:]:
        p = data.population(col).rename({col: "area_code"})
        frames.append(p.with_columns(level=pl.lit(level)).select("level", "area_code",
                                                                  "residents"))
    return pl.concat(frames)


def monthly_table(data: Data, counts: pl.DataFrame, cov: Coverage) -> pl.DataFrame:
    """Every scope month for every (level, area, category): missing months have null counts,
    complete months with no events count zero."""
    grouped = by_level(counts)
    combos = grouped.select("level", "area_code", "area_name", "sv_category").unique()
    months = pl.DataFrame({"month": cov.months,
                           "month_complete": [cov.complete[m] for m in cov.months]})
    grid = combos.join(months, how="cross")
    t = grid.join(grouped.drop("area_name"), on=["level", "area_code", "sv_category", "month"],
                  how="left")
    t = t.with_columns(
        pl.when(pl.col("month_complete")).then(pl.col(c).fill_null(0)).otherwise(None)
        for c in ("count", "events_without_weight"))
    t = t.join(residents(data), on=["level", "area_code"], how="left")
    t = t.sort("level", "area_code", "sv_category", "month")
    roll = (pl.col("count").rolling_sum(12, min_samples=12)
            .over(["level", "area_code", "sv_category"]))
    t = t.with_columns(rolling_12m=roll)
    rate, lower, upper = stats.rate(t["count"].fill_null(np.nan).to_numpy(),
                                    t["residents"].fill_null(0).to_numpy(), PER)
    known = pl.col("count").is_not_null()
    t = t.with_columns(pl.when(known).then(pl.Series(name, values).fill_nan(None))
                       for name, values in (("rate_per_1000", rate), ("rate_lower", lower),
                                            ("rate_upper", upper)))
    return t.select("level", "area_code", "area_name", "sv_category", "month",
                    "month_complete", "count", "residents", "rate_per_1000", "rate_lower",
                    "rate_upper", "rolling_12m", "harm_weight_total", "events_without_weight")


# ------------------------------------------------------------------------ change


def matched_months(cov: Coverage) -> tuple[list[date], list[date]]:
    """Months of the latest 12 that are complete, with the same month a year before also
    complete (so the comparison is like for like)."""
    end = cov.months[-1]
    after = [shift(end, -i) for i in range(11, -1, -1)]
    pairs = [(shift(m, -12), m) for m in after
             if cov.complete.get(m) and cov.complete.get(shift(m, -12))]
    return [b for b, _ in pairs], [a for _, a in pairs]


def change_table(monthly: pl.DataFrame, cov: Coverage) -> pl.DataFrame:
    """Latest 12 months against the 12 before, per level, area and category."""
    before, after = matched_months(cov)
    keys = ["level", "area_code", "area_name", "sv_category"]
    sums = monthly.group_by(keys).agg(
        count_before=pl.col("count").filter(pl.col("month").is_in(before)).sum(),
        count_after=pl.col("count").filter(pl.col("month").is_in(after)).sum(),
        residents=pl.col("residents").first())
    rows = []
    for r in sums.sort(keys).iter_rows(named=True):
        c = stats.change(int(r["count_before"]), int(r["count_after"]),
                         max(len(before), 1), max(len(after), 1))
        rows.append(r | {"months_compared": len(after), "ratio": c.ratio, "ratio_lower": c.lower,
                         "ratio_upper": c.upper, "percent_change": c.percent,
                         "p_value": c.p_value,
                         "significant": c.significant if after else None})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(pl.col(c).fill_nan(None) for c in
                              ("ratio", "ratio_lower", "ratio_upper", "percent_change"))


# ------------------------------------------------------------------------ seasonality


def series(monthly: pl.DataFrame, months: list[date]) -> dict[str, pd.Series]:
    """Partnership monthly counts per category over `months`."""
    part = monthly.filter((pl.col("level") == "partnership") & pl.col("month").is_in(months))
    out = {}
    index = pd.PeriodIndex([pd.Period(m, "M") for m in months])
    for cat in sorted(part["sv_category"].unique().to_list()):
        got = part.filter(pl.col("sv_category") == cat).sort("month")
        out[cat] = pd.Series(got["count"].cast(pl.Float64).to_numpy(), index=index)
    return out


def seasonality(monthly: pl.DataFrame, run: list[date]) -> pl.DataFrame:
    """STL (period 12, robust) per category on a run of >= 24 complete months."""
    frames = []
    if len(run) < STL_MIN_MONTHS:
        return pl.DataFrame(schema={"sv_category": pl.String, "month": pl.Date,
                                    "observed": pl.Float64, "trend": pl.Float64,
                                    "seasonal": pl.Float64, "resid": pl.Float64})
    for cat, y in series(monthly, run).items():
        fit = STL(y.to_timestamp(), period=12, robust=True).fit()
        frames.append(pl.DataFrame({"sv_category": cat, "month": run, "observed": y.to_numpy(),
                                    "trend": fit.trend.to_numpy(),
                                    "seasonal": fit.seasonal.to_numpy(),
                                    "resid": fit.resid.to_numpy()}))
    return pl.concat(frames)


# ------------------------------------------------------------------------ outlook


def candidates(n: int, mean: float = SEASONAL_MIN_MEAN) -> list[tuple[str, dict]]:
    """ETS candidates the run length and volume support (additive error throughout)."""
    out = [("ETS(A,N,N)", {"trend": None, "seasonal": None}),
           ("ETS(A,Ad,N)", {"trend": "add", "damped_trend": True, "seasonal": None})]
    if n >= SEASONAL_MIN_MONTHS and mean >= SEASONAL_MIN_MEAN:
        out += [("ETS(A,N,A)", {"trend": None, "seasonal": "add", "seasonal_periods": 12}),
                ("ETS(A,Ad,A)", {"trend": "add", "damped_trend": True, "seasonal": "add",
                                 "seasonal_periods": 12})]
    return out


def fit_best(y: pd.Series) -> tuple[str, object, dict[str, float]]:
    """The candidate with the lowest AICc, and every candidate's AICc."""
    fits, scores = {}, {}
    for name, spec in candidates(len(y), float(y.mean())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ETSModel(y, error="add", **spec,
                             bounds={"smoothing_level": (MIN_SMOOTHING_LEVEL, 0.9999)})
            fit = model.fit(disp=False)
        if np.isfinite(fit.aicc):
            fits[name], scores[name] = fit, float(fit.aicc)
    best = min(scores, key=scores.get)
    return best, fits[best], scores


def outlook(monthly: pl.DataFrame, run: list[date]) -> tuple[pl.DataFrame, dict]:
    """12-month forecast with 95% prediction intervals per category (partnership level)."""
    rows, chosen = [], {}
    if len(run) < FORECAST_MIN_MONTHS:
        return pl.DataFrame(schema=OUTLOOK_SCHEMA), chosen
    for cat, y in series(monthly, run).items():
        if y.mean() < OUTLOOK_MIN_MEAN:
            continue
        name, fit, scores = fit_best(y)
        frame = fit.get_prediction(start=len(y), end=len(y) + HORIZON - 1).summary_frame(
            alpha=1 - stats.CONFIDENCE)
        params = dict(zip(fit.model.param_names, map(float, fit.params), strict=True))
        chosen[cat] = {"model": name, "aicc": scores,
                       "parameters": {k: v for k, v in params.items()
                                      if not k.startswith("initial_seasonal")},
                       "sigma2": float(fit.mse)}
        for m, obs in zip(run, y.to_numpy(), strict=True):
            rows.append({"sv_category": cat, "month": m, "kind": "observed", "count": obs})
        for h, (_, f) in enumerate(frame.iterrows(), start=1):
            rows.append({"sv_category": cat, "month": shift(run[-1], h), "kind": "forecast",
                         "horizon": h, "forecast": f["mean"],
                         "pi_lower": max(f["pi_lower"], 0.0), "pi_upper": f["pi_upper"],
                         "model": name})
    return pl.DataFrame(rows, schema=OUTLOOK_SCHEMA), chosen


OUTLOOK_SCHEMA = {"sv_category": pl.String, "month": pl.Date, "kind": pl.String,
                  "count": pl.Float64, "horizon": pl.Int64, "forecast": pl.Float64,
                  "pi_lower": pl.Float64, "pi_upper": pl.Float64, "model": pl.String}


# ------------------------------------------------------------------------ breaks


def breaks(data: Data, cov: Coverage) -> pl.DataFrame:
    """Missing months, LSOA vintage changes, late-starting sources and definition changes."""
    rows = [{"kind": "missing months", "first_month": a, "last_month": b,
             "detail": f"no {data.scope.police_source} data for {n} month(s): "
                       + ("no load covers them" if not any(cov.loaded[m] for m in ms)
                          else "no events loaded for these areas")}
            for a, b in runs(cov.missing)
            for ms in [month_range(a, b)] for n in [len(ms)]]
    rows += vintage_breaks(data)
    rows += late_sources(data)
    rows += definition_breaks(data)
    return pl.DataFrame(rows, schema={"kind": pl.String, "first_month": pl.Date,
                                      "last_month": pl.Date, "detail": pl.String})


def vintage_breaks(data: Data) -> list[dict]:
    e = data.events(data.scope.police_source)
    expr = e.group_by("month").aggregate(n=e.count(), old=(e.lsoa_vintage == 2011).sum())
    got = data.fetch(expr).sort("month")
    old = got.filter(pl.col("old") > 0)["month"].to_list()
    new = got.filter(pl.col("old") == 0)["month"].to_list()
    if not old or not new or max(old) > min(new):
        return []
    return [{"kind": "LSOA vintage change", "first_month": min(new), "last_month": min(new),
             "detail": f"events to {max(old):%Y-%m} were located by 2011 LSOAs (mapped to "
                       f"2021 LSOAs by best fit); from {min(new):%Y-%m} by 2021 LSOAs"}]


def late_sources(data: Data) -> list[dict]:
    e = data.events(tuple(sorted(_sources(data))))
    got = data.fetch(e.group_by("source").aggregate(first=e.month.min()))
    return [{"kind": "source starts late", "first_month": r["first"],
             "last_month": r["first"],
             "detail": f"{r['source']} has no events before {r['first']:%Y-%m} "
                       f"(the period starts {data.scope.start:%Y-%m})"}
            for r in got.sort("source").iter_rows(named=True) if r["first"] > data.scope.start]


def _sources(data: Data) -> list[str]:
    """Sources with a current load (the events of each are then placed in the scope)."""
    loads = data.table("loads")
    got = data.fetch(loads.filter(loads.superseded_by.isnull()).select("source").distinct())
    return got["source"].to_list() or [data.scope.police_source]


def definition_breaks(data: Data) -> list[dict]:
    sv = data.table("sv_events")
    e = data.events(data.scope.police_source)
    j = e.inner_join(sv, "event_id")
    got = data.fetch(j.group_by("definition_version").aggregate(
        first=j.month.min(), last=j.month.max())).sort("first")
    if got.height <= 1:
        return []
    return [{"kind": "definition version change", "first_month": r["first"],
             "last_month": r["last"],
             "detail": f"events classified under definition {r['definition_version']}"}
            for r in got.iter_rows(named=True)]


# ------------------------------------------------------------------------ results


def harm_table(monthly: pl.DataFrame, cov: Coverage) -> pl.DataFrame:
    """Harm-weighted totals per category, whole period and latest 12 months."""
    part = monthly.filter(pl.col("level") == "partnership")
    latest = [m for m in cov.months[-12:] if cov.complete[m]]
    frames = []
    whole = [m for m in cov.months if cov.complete[m]]
    for label, months in (("whole period", whole), ("latest 12 months", latest)):
        f = part.filter(pl.col("month").is_in(months)).group_by("sv_category").agg(
            count=pl.col("count").sum(), harm_weight_total=pl.col("harm_weight_total").sum(),
            events_without_weight=pl.col("events_without_weight").sum())
        unweighted = pl.col("events_without_weight") == pl.col("count")
        f = f.with_columns(harm_weight_total=pl.when(unweighted & (pl.col("count") > 0))
                           .then(None).otherwise(pl.col("harm_weight_total")))
        frames.append(f.with_columns(window=pl.lit(label), complete_months=len(months)))
    return pl.concat(frames).sort("window", "sv_category").select(
        "window", "complete_months", "sv_category", "count", "harm_weight_total",
        "events_without_weight")


def coverage_caveats(data: Data, cov: Coverage, run: list[date]) -> list[str]:
    out = []
    if cov.missing:
        out.append(f"Months with no {data.scope.police_source} data are shown as missing "
                   f"(null), not zero, and are never interpolated: {span(cov.missing)}.")
    if run:
        out.append(f"Seasonality and the outlook use only the longest run of consecutive "
                   f"complete months: {span(run)} ({len(run)} months).")
    return out


def analyse(data: Data) -> list[Result]:
    cov = coverage(data)
    counts = monthly_counts(data)
    monthly = monthly_table(data, counts, cov)
    run = cov.longest_run()
    base = coverage_caveats(data, cov, run)
    missing_weight = int(counts["events_without_weight"].sum())
    params = {"per_residents": PER, "confidence": stats.CONFIDENCE,
              "complete_month_rule": "a current load covers the month and the scope's areas "
                                     "have at least one event of the police source in it",
              "missing_months": span(cov.missing),
              "complete_run": [run[0].isoformat(), run[-1].isoformat()] if run else None}
    results = [Result(monthly, data.meta(
        "trend-monthly", "Serious violence by month",
        "Events under the local definition counted per month by category for the partnership, "
        "each local authority and each CSP. Rates per 1,000 residents (Census 2021) with exact "
        "(Garwood) 95% intervals. Rolling 12-month totals need 12 complete months in the "
        "window (null otherwise). Harm-weighted totals sum harm_weight where an event has one.",
        parameters=params,
        caveats=[*base, f"{missing_weight} event(s) have no harm weight and add nothing to the "
                        "harm-weighted totals."]))]
    derived = change_results(data, monthly, cov, base)
    derived += seasonal_results(data, monthly, run, base)
    derived.append(Result(harm_table(monthly, cov), data.meta(
        "trend-harm", "Harm-weighted serious violence by category",
        "Sum of each event's harm weight (from the local definition) per category, over the "
        "whole period and the latest 12 months, with the number of events lacking a weight.",
        parameters=params, caveats=[*base, "Events without a weight are counted but add no "
                                           "harm; compare harm totals only between categories "
                                           "whose events all carry weights."])))
    for result in derived:  # computed from the monthly counts: cite the queries behind them
        result.meta.queries = list(results[0].meta.queries)
        result.meta.loads = list(results[0].meta.loads)
    results += derived
    results.append(Result(breaks(data, cov), data.meta(
        "trend-breaks", "Series breaks and missing months",
        "Missing months from the loads table and event counts; LSOA vintage changes from the "
        "events' lsoa_vintage; sources whose first event is after the period start; more than "
        "one definition version among serious-violence events.", parameters=params,
        caveats=base)))
    return results


def change_results(data: Data, monthly: pl.DataFrame, cov: Coverage,
                   base: list[str]) -> list[Result]:
    before, after = matched_months(cov)
    caveats = list(base)
    if len(after) < 12:
        caveats.append(f"Only {len(after)} of the latest 12 months have the same month a year "
                       f"earlier complete, so the change compares those months only: "
                       f"{span(after) or 'none'} against {span(before) or 'none'}.")
    table = change_table(monthly, cov)
    return [Result(table, data.meta(
        "trend-change", "Year-on-year change in serious violence",
        "Latest 12 months against the 12 months before, using only months complete in both "
        "years (like for like). Exact conditional binomial test for the ratio of two Poisson "
        "rates with a Clopper-Pearson interval for the rate ratio; the same residents "
        "(Census 2021) in both years. An association over time, not evidence of cause.",
        parameters={"months_after": [m.isoformat() for m in after],
                    "months_before": [m.isoformat() for m in before],
                    "test": "exact conditional binomial (Poisson rate ratio)",
                    "confidence": stats.CONFIDENCE}, caveats=caveats))]


def seasonal_results(data: Data, monthly: pl.DataFrame, run: list[date],
                     base: list[str]) -> list[Result]:
    caveats = list(base)
    if len(run) < STL_MIN_MONTHS:
        caveats.append(f"Seasonality not estimated: the longest run of complete months is "
                       f"{len(run)} (STL needs at least {STL_MIN_MONTHS}).")
    stl = Result(seasonality(monthly, run), data.meta(
        "trend-seasonality", "Seasonal pattern of serious violence",
        "STL decomposition (statsmodels, period 12, robust fitting, default seasonal and "
        "trend smoothers) of partnership monthly counts per category into trend, seasonal "
        "and remainder components.",
        parameters={"period": 12, "robust": True, "min_months": STL_MIN_MONTHS,
                    "run": [m.isoformat() for m in run]}, caveats=caveats))
    table, chosen = outlook(monthly, run)
    caveats = list(base)
    if len(run) < FORECAST_MIN_MONTHS:
        caveats.append(f"No outlook: the longest run of complete months is {len(run)} "
                       f"(at least {FORECAST_MIN_MONTHS} needed).")
    floored = [c for c, v in chosen.items()
               if v["parameters"].get("smoothing_level", 1.0) <= MIN_SMOOTHING_LEVEL + 1e-6]
    if floored:
        caveats.append(f"For {', '.join(floored)} the fitted smoothing level sits at its floor "
                       f"({MIN_SMOOTHING_LEVEL}): the data suggest a stable level, and the "
                       "widening of the intervals with the horizon comes from that floor.")
    if FORECAST_MIN_MONTHS <= len(run) < SEASONAL_MIN_MONTHS:
        caveats.append(f"The outlook has no seasonal term: {len(run)} complete months are too "
                       f"few to estimate one ({SEASONAL_MIN_MONTHS} needed).")
    fc = Result(table, data.meta(
        "trend-outlook", "12-month outlook for serious violence",
        "Exponential smoothing state-space models (statsmodels ETSModel, additive errors) "
        "fitted to partnership monthly counts per category; the candidate with the lowest "
        "AICc is used, and its analytic 95% prediction intervals are reported (lower limits "
        "floored at zero). The smoothing level is kept at or above "
        f"{MIN_SMOOTHING_LEVEL} so the outlook allows the level to drift and intervals widen "
        "with the horizon. Seasonal candidates are tried only for categories averaging "
        f"{SEASONAL_MIN_MEAN:.0f} or more a month, and categories averaging fewer than "
        f"{OUTLOOK_MIN_MEAN:.0f} a month get no outlook. A projection of the recent pattern, "
        "not a prediction of the effect of any action.",
        parameters={"horizon": HORIZON, "run": [m.isoformat() for m in run],
                    "candidates": [n for n, _ in candidates(len(run))],
                    "seasonal_candidates_min_monthly_mean": SEASONAL_MIN_MEAN,
                    "outlook_min_monthly_mean": OUTLOOK_MIN_MEAN,
                    "min_smoothing_level": MIN_SMOOTHING_LEVEL, "chosen": chosen},
        caveats=caveats))
    return [stl, fc]
