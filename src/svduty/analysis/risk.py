"""Risk factors: how serious violence across the scope's LSOAs is associated with deprivation
and other area indicators.

Deprivation (English Indices of Deprivation 2019) is published for 2011 LSOAs. Each 2021 LSOA
gets the population-weighted mean national rank of the 2011 LSOAs it was made from (weight =
the 2011 LSOA's share of residents that went into the 2021 LSOA x its 2011 residents), turned
into a "deprivation score" on a decile scale: 0 = least deprived in England, 10 = most.

Two statistics per indicator:

- Spearman rank correlation between the LSOA rate and the indicator, with a Fisher-z interval
  (Bonett-Wright standard error for Spearman's rho).
- Poisson and negative-binomial GLMs of LSOA counts with log(residents x years) as offset; the
  incidence rate ratio (IRR) is per national decile more deprived (per standard deviation for
  other indicators). Overdispersion is tested by a likelihood-ratio test of alpha = 0.

These are ecological associations between areas, not causes, and say nothing about people.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import ibis
import numpy as np
import polars as pl
from scipy import stats
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools.tools import add_constant

from svduty.analysis.data import Data
from svduty.analysis.result import Meta, Result

NATIONAL_LSOAS = 32_844  # LSOAs ranked in the English Indices of Deprivation 2019
TYPICAL_LSOA_RESIDENTS = 1_600  # weight for a 2011 LSOA whose residents are not loaded
CONFIDENCE = 0.95
DOMAINS: dict[str, str] = {
    "imd": "Index of Multiple Deprivation",
    "income": "Income deprivation",
    "employment": "Employment deprivation",
    "education": "Education, skills and training deprivation",
    "health": "Health deprivation and disability",
    "crime": "Crime domain (includes violence)",
    "barriers": "Barriers to housing and services",
    "living_environment": "Living environment deprivation",
}
CIRCULAR = {"crime"}
YOUNG_BANDS = ("Aged 16 to 24 years",)
OTHER: dict[str, str] = {
    "young_share": "Share of residents aged 16 to 24 (%)",
    "suspension_rate": "School suspensions and exclusions per 1,000 residents aged 15 and under "
                       "(by pupil's home LSOA)",
    "persistent_absence_rate": "Persistent absence (% of pupils, LSOA aggregates)",
}
DEPRIVATION_UNIT = "one national decile more deprived"
OTHER_UNIT = "one standard deviation higher"


# ------------------------------------------------------------------------ the LSOA frame


def deprivation_scores(data: Data, lsoas: list[str]) -> pl.DataFrame:
    """Per 2021 LSOA and domain: weighted national rank and a 0-10 deprivation score."""
    corr, dep = data.table("lsoa_correspondence"), data.table("deprivation")
    pop = data.table("populations")
    pop11 = (pop.filter((pop.lsoa_vintage == 2011) & (pop.age_band == "all"))
             .select(lsoa11_code=pop.lsoa_code, residents11=pop.residents))
    corr = corr.filter(corr.lsoa21_code.isin(lsoas))
    j = corr.inner_join(dep, "lsoa11_code").left_join(pop11, "lsoa11_code")
    share = ibis.coalesce(j.population_share, j.area_share, ibis.literal(1.0))
    weight = share * ibis.coalesce(j.residents11, TYPICAL_LSOA_RESIDENTS).cast("float64")
    j = j.mutate(w=weight)
    expr = j.group_by(["lsoa21_code", "domain"]).aggregate(
        wsum=j.w.sum(), wrank=(j.w * j["rank"]).sum())
    frame = data.fetch(expr)
    return frame.with_columns(
        rank=pl.col("wrank") / pl.col("wsum")).with_columns(
        score=10 * (1 - (pl.col("rank") - 0.5) / NATIONAL_LSOAS),
        decile=(pl.col("rank") / (NATIONAL_LSOAS / 10)).ceil().clip(1, 10).cast(pl.Int8),
    ).select("lsoa21_code", "domain", "rank", "score", "decile")


def sv_counts(data: Data) -> pl.DataFrame:
    """Serious violence per 2021 LSOA of the scope (LSOAs with none are added later)."""
    sv = data.sv()
    expr = sv.group_by("lsoa21_code").aggregate(sv_count=sv.event_id.count(),
                                                months=sv.month.nunique())
    return data.fetch(expr, sources=(data.scope.police_source,))


def months_with_data(data: Data) -> int:
    """Months of the scope period in which the police source has any event in the scope."""
    e = data.events(data.scope.police_source)
    frame = data.fetch(e.aggregate(months=e.month.nunique()))
    return int(frame["months"][0] or 0)


def school_rates(data: Data) -> pl.DataFrame:
    """Suspensions/exclusions by home LSOA and persistent absence from LSOA aggregates."""
    e = data.events("school")
    expr = e.group_by("lsoa21_code").aggregate(suspensions=e.event_id.count())
    susp = data.fetch(expr, sources=("school",) if has_school(data) else None)
    a = data.table("aggregates")
    a = a.filter((a.source == "school") & (a.measure == "persistent absence")
                 & (a.area_type == "lsoa") & a.lsoa21_code.notnull()
                 & (a.period_end >= data.scope.start)
                 & (a.period_start <= data.scope.end))
    expr = a.group_by("lsoa21_code").aggregate(pa=a.value.sum(), pupils=a.denominator.sum())
    absence = data.fetch(expr)
    absence = absence.with_columns(
        persistent_absence_rate=pl.when(pl.col("pupils") > 0)
        .then(100 * pl.col("pa") / pl.col("pupils"))).select("lsoa21_code",
                                                            "persistent_absence_rate")
    return susp.join(absence, "lsoa21_code", "full", coalesce=True)


def has_school(data: Data) -> bool:
    e = data.events("school")
    return bool(data.fetch(e.aggregate(n=e.count()))["n"][0])


def lsoa_frame(data: Data) -> tuple[pl.DataFrame, dict[str, int]]:
    """One row per scope LSOA: count, residents, rate and every indicator (wide)."""
    areas = data.areas()
    areas = areas.filter(areas.lad_code.isin(data.scope.lad_codes))
    base = data.fetch(areas.select("lsoa21_code", "lad_code"))
    pop = data.population("lsoa21_code")
    kids = young_band(data, ("Aged 15 years and under",))
    aged = young_band(data, YOUNG_BANDS)
    months = months_with_data(data)
    frame = (base.join(pop, "lsoa21_code", "left")
             .join(sv_counts(data).drop("months"), "lsoa21_code", "left")
             .join(aged.rename({"residents": "aged_16_24"}), "lsoa21_code", "left")
             .join(kids.rename({"residents": "aged_0_15"}), "lsoa21_code", "left")
             .with_columns(pl.col("sv_count").fill_null(0))
             .filter(pl.col("residents") > 0))
    years = max(months, 1) / 12
    frame = frame.with_columns(
        person_years=pl.col("residents") * years,
        rate_per_1000_per_year=pl.col("sv_count") / (pl.col("residents") * years) * 1000,
        young_share=100 * pl.col("aged_16_24") / pl.col("residents"))
    school = school_rates(data)
    frame = frame.join(school, "lsoa21_code", "left").with_columns(
        suspension_rate=pl.when(pl.col("aged_0_15") > 0).then(
            1000 * pl.col("suspensions").fill_null(0) / pl.col("aged_0_15")))
    if school["suspensions"].drop_nulls().sum() == 0:
        frame = frame.with_columns(suspension_rate=pl.lit(None, pl.Float64))
    scores = deprivation_scores(data, base["lsoa21_code"].to_list())
    wide = scores.pivot("domain", index="lsoa21_code", values="score")
    deciles = scores.pivot("domain", index="lsoa21_code", values="decile")
    deciles = deciles.rename({c: f"{c}_decile" for c in deciles.columns if c != "lsoa21_code"})
    frame = frame.join(wide, "lsoa21_code", "left").join(deciles, "lsoa21_code", "left")
    return frame.sort("lsoa21_code"), {"months_with_data": months,
                                        "lsoas": frame.height}


def young_band(data: Data, bands: tuple[str, ...]) -> pl.DataFrame:
    """Residents in `bands` per scope LSOA."""
    p = data.table("populations")
    p = p.filter((p.lsoa_vintage == 2021) & p.age_band.isin(bands))
    a = data.areas()
    a = a.filter(a.lad_code.isin(data.scope.lad_codes))
    j = p.inner_join(a, p.lsoa_code == a.lsoa21_code)
    expr = j.group_by("lsoa21_code").aggregate(residents=j.residents.sum())
    return data.fetch(expr).with_columns(
        pl.col("residents").cast(pl.Float64))


def indicators(frame: pl.DataFrame) -> list[tuple[str, str, str]]:
    """(column, label, unit) for every indicator with enough non-missing variation."""
    out = [(d, label, DEPRIVATION_UNIT) for d, label in DOMAINS.items()]
    out += [(c, label, OTHER_UNIT) for c, label in OTHER.items()]
    return [(c, lab, u) for c, lab, u in out if c in frame.columns
            and frame[c].drop_nulls().n_unique() > 2 and frame[c].drop_nulls().len() >= 10]


# ------------------------------------------------------------------------ statistics


def spearman(x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE
             ) -> tuple[float, float, float, float, int]:
    """Spearman's rho, Fisher-z interval (Bonett-Wright SE), p-value and n (pairs)."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    res = stats.spearmanr(x[ok], y[ok])
    rho = float(res.statistic)
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    se = np.sqrt((1 + rho ** 2 / 2) / (n - 3))
    q = stats.norm.ppf(1 - (1 - confidence) / 2)
    return rho, float(np.tanh(z - q * se)), float(np.tanh(z + q * se)), float(res.pvalue), n


@dataclass(frozen=True)
class Fit:
    """One count model of LSOA serious violence on one indicator."""

    model: str  # "poisson" or "negative binomial"
    irr: float
    lower: float
    upper: float
    p_value: float
    aic: float
    alpha: float | None
    dispersion: float  # Pearson chi-square / residual df


def design(frame: pl.DataFrame, column: str, scale: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y, X (constant + indicator / scale) and log exposure, rows with the indicator only."""
    sub = frame.filter(pl.col(column).is_not_null() & pl.col(column).is_finite())
    y = sub["sv_count"].to_numpy().astype(float)
    x = sub[column].to_numpy().astype(float) / scale
    offset = np.log(sub["person_years"].to_numpy().astype(float))
    return y, add_constant(x, has_constant="add"), offset


def fit_glms(frame: pl.DataFrame, column: str, scale: float = 1.0
             ) -> tuple[Any, Any, Any]:
    """The fitted Poisson GLM, NB2 GLM (alpha from ML) and the ML NB2 model itself."""
    y, X, offset = design(frame, column, scale)
    pois = GLM(y, X, family=families.Poisson(), offset=offset).fit()
    nbml = NegativeBinomial(y, X, offset=offset, loglike_method="nb2").fit(
        disp=0, maxiter=200, method="bfgs")
    alpha = float(max(nbml.params[-1], 1e-8))
    nb = GLM(y, X, family=families.NegativeBinomial(alpha=alpha), offset=offset).fit()
    return pois, nb, nbml


def fit_models(frame: pl.DataFrame, column: str, scale: float = 1.0
               ) -> tuple[Fit, Fit, float, float]:
    """Poisson and NB2 GLMs of sv_count on `column` / `scale`, offset log(person_years).
    Returns both fits, the LR statistic for alpha = 0 and its p-value (boundary: half chi2)."""
    pois, nb, nbml = fit_glms(frame, column, scale)
    alpha = float(max(nbml.params[-1], 1e-8))
    lr = max(2 * (float(nbml.llf) - float(pois.llf)), 0.0)
    p = 0.5 * float(stats.chi2.sf(lr, 1)) if lr > 0 else 1.0
    return (to_fit("poisson", pois, None), to_fit("negative binomial", nb, alpha, nbml.aic),
            lr, p)


def to_fit(model: str, res: Any, alpha: float | None, aic: float | None = None) -> Fit:
    ci = np.exp(res.conf_int(1 - CONFIDENCE))
    params, pvalues = res.params, res.pvalues
    dispersion = float(res.pearson_chi2 / res.df_resid)
    return Fit(model, float(np.exp(params[1])), float(ci[1, 0]), float(ci[1, 1]),
               float(pvalues[1]), float(aic if aic is not None else res.aic),
               alpha, dispersion)


def scale_of(frame: pl.DataFrame, column: str, unit: str) -> float:
    if unit == DEPRIVATION_UNIT:
        return 1.0
    sd = frame[column].drop_nulls().std()
    return float(sd) if sd else 1.0


# ------------------------------------------------------------------------ Results


def correlation_table(frame: pl.DataFrame) -> pl.DataFrame:
    rows = []
    rate = frame["rate_per_1000_per_year"].to_numpy().astype(float)
    for column, label, _ in indicators(frame):
        x = frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        rho, lo, hi, p, n = spearman(x, rate)
        rows.append({"indicator": column, "label": label, "lsoas": n, "spearman_rho": rho,
                     "ci_lower": lo, "ci_upper": hi, "p_value": p,
                     "circular": column in CIRCULAR, "direction": direction(rho, lo, hi)})
    return pl.DataFrame(rows, schema_overrides={"lsoas": pl.Int64})


def direction(rho: float, lower: float, upper: float) -> str:
    if lower > 0:
        return "higher rates where the indicator is higher"
    if upper < 0:
        return "lower rates where the indicator is higher"
    return "no clear association"


def model_table(frame: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for column, label, unit in indicators(frame):
        scale = scale_of(frame, column, unit)
        try:
            pois, nb, lr, p = fit_models(frame, column, scale)
        except (np.linalg.LinAlgError, ValueError) as exc:  # a model that cannot be fitted
            rows.append({"indicator": column, "label": label, "unit": unit, "scale": scale,
                         "model": f"not fitted: {exc}", "circular": column in CIRCULAR})
            continue
        chosen = "negative binomial" if p < 1 - CONFIDENCE and nb.aic < pois.aic else "poisson"
        n = frame[column].drop_nulls().len()
        for fit in (pois, nb):
            rows.append({"indicator": column, "label": label, "unit": unit, "scale": scale,
                         "model": fit.model, "lsoas": n, "irr": fit.irr,
                         "irr_lower": fit.lower, "irr_upper": fit.upper,
                         "p_value": fit.p_value, "aic": fit.aic, "alpha": fit.alpha,
                         "pearson_dispersion": fit.dispersion, "overdispersion_lr": lr,
                         "overdispersion_p": p, "chosen": fit.model == chosen,
                         "circular": column in CIRCULAR})
    return pl.DataFrame(rows, schema=MODEL_SCHEMA)


MODEL_SCHEMA: dict[str, type[pl.DataType]] = {
    "indicator": pl.String, "label": pl.String, "unit": pl.String, "scale": pl.Float64,
    "model": pl.String, "lsoas": pl.Int64, "irr": pl.Float64, "irr_lower": pl.Float64,
    "irr_upper": pl.Float64, "p_value": pl.Float64, "aic": pl.Float64, "alpha": pl.Float64,
    "pearson_dispersion": pl.Float64, "overdispersion_lr": pl.Float64,
    "overdispersion_p": pl.Float64, "chosen": pl.Boolean, "circular": pl.Boolean}


LSOA_COLUMNS = ("lsoa21_code", "lad_code", "residents", "sv_count", "person_years",
                "rate_per_1000_per_year", "young_share", "suspension_rate",
                "persistent_absence_rate")


def caveats(frame: pl.DataFrame) -> list[str]:
    out = [
        "These are associations between areas (ecological), not causes: a higher rate in more "
        "deprived LSOAs does not mean deprived people are more likely to be involved in "
        "violence (the ecological fallacy).",
        "The IMD crime domain counts recorded violence among other crime, so its association "
        "with serious violence is partly circular (flagged 'circular'); the overall IMD "
        "includes the crime domain at 9.3% weight.",
        "Deprivation is the English Indices of Deprivation 2019 on 2011 LSOAs, mapped to 2021 "
        "LSOAs by population-weighted mean rank; it describes areas around 2015-2017.",
        "Counts are placed at the offence location, rates use resident population: places "
        "with many visitors (town centres) have high rates that are not about residents.",
        "Domains are strongly correlated with each other, so each is modelled on its own; "
        "the IRRs are not independent effects and should not be added together.",
    ]
    if frame["suspension_rate"].drop_nulls().len() == 0:
        out.append("No school suspension or exclusion events are loaded for these areas, so "
                   "school indicators are not included.")
    if frame["persistent_absence_rate"].drop_nulls().len() == 0:
        out.append("Persistent absence is not loaded by pupil's home LSOA (only by school or "
                   "not at all), so it is not included as an area indicator.")
    return out


def analyse(data: Data) -> list[Result]:
    """Risk-factor associations: LSOA indicators, Spearman correlations, count models."""
    frame, info = lsoa_frame(data)
    keep = [c for c in (*LSOA_COLUMNS, *DOMAINS, *(f"{d}_decile" for d in DOMAINS))
            if c in frame.columns]
    params = {"deprivation_source": "English Indices of Deprivation 2019 (2011 LSOAs)",
              "lsoa_mapping": "population-weighted mean national rank: weight = "
                              "population_share (area_share if missing) x 2011 residents",
              "missing_2011_residents_weight": TYPICAL_LSOA_RESIDENTS,
              "national_lsoas": NATIONAL_LSOAS,
              "deprivation_score": "10 x (1 - (rank - 0.5) / 32,844): 0 least, 10 most "
                                   "deprived", "young_bands": list(YOUNG_BANDS),
              "confidence": CONFIDENCE, "police_source": data.scope.police_source, **info}
    geography = f"{data.scope.label}: 2021 LSOAs ({info['lsoas']})"
    lsoa = Result(frame.select(keep), data.meta(
        "risk-lsoa-indicators", "Serious violence and area indicators by LSOA",
        "One row per 2021 LSOA of the scope: serious violence count over the period, residents "
        "(Census 2021), rate per 1,000 residents per year (years = months with police data / "
        "12), deprivation score (0-10, 10 most deprived) and national decile (1 most deprived) "
        "per IoD domain, share of residents aged 16 to 24, and school indicators where loaded.",
        geography=geography, parameters=params, caveats=caveats(frame)))
    corr = Result(correlation_table(frame), like(
        lsoa.meta, "risk-correlation", "Rank correlation of serious violence rates with area "
        "indicators", "Spearman rank correlation (scipy.stats.spearmanr) between each LSOA's "
        "serious violence rate and each indicator, with a 95% interval from the Fisher z "
        "transform using the Bonett-Wright standard error sqrt((1 + rho^2/2) / (n - 3)).",
))
    models = Result(model_table(frame), like(
        lsoa.meta, "risk-models", "Count models of serious violence on area indicators",
        "For each indicator separately: a Poisson GLM and a negative-binomial (NB2) GLM of the "
        "LSOA serious violence count with offset log(residents x years) (statsmodels). The NB "
        "alpha is estimated by maximum likelihood (statsmodels NegativeBinomial) and the GLM "
        "refitted with it. Incidence rate ratios (IRR) are per national decile more deprived "
        "for deprivation domains and per standard deviation (column 'scale') for other "
        "indicators, with 95% Wald intervals. Overdispersion: likelihood-ratio test of alpha = "
        "0 (p-value halved for the boundary); the negative binomial is chosen when that test "
        "is significant at 5% and its AIC is lower, else the Poisson."))
    return [lsoa, corr, models]


def like(meta: Meta, name: str, title: str, method: str) -> Meta:
    """A Meta for another Result computed from the same fetched frame."""
    return replace(meta, name=name, title=title, method=method,
                   queries=list(meta.queries), caveats=list(meta.caveats))
