"""The evidence table behind a local definition: the s.13(6) factors per candidate offence group.

For each offence group in the catalogue: the maximum penalty and statute (factor a), the local
count, rate per 1,000 residents and share of the area's violence (factor c, prevalence), the
trend against the previous 12 months with an exact test, and whether the current definition
includes it. Counts come from force-recorded offence codes where the area has any; otherwise
from the data.police.uk category the group falls in, labelled as a proxy (a police.uk category
is much wider than one offence group).

Row-level work runs in the engine through Ibis; one small aggregate (months x codes x
categories) comes back and the arithmetic is done here.
"""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from svduty.definition.catalogue import (
    OFFENCE_GROUPS,
    POLICE_UK_VIOLENCE,
    VIOLENCE_HO_GROUPS,
    load_catalogue,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from svduty.definition.rules import Definition
    from svduty.warehouse import Warehouse

BASIS_CODES = "police recorded (offence codes)"
BASIS_PROXY = "police.uk category (proxy)"
BASIS_NONE = "no data"
TOTAL_BANDS = ("all", "all ages", "total")


def definition_evidence(
    wh: Warehouse, lad_codes: list[str], period_end: date | None = None,
    *, definition: Definition | None = None,
) -> pl.DataFrame:
    """One row per offence group: penalty, local count, rate, share, trend, in definition.

    The period is the 12 months to `period_end` (default: the latest month with in-area
    events); the trend compares it with the 12 months before. `definition` defaults to the
    one last applied to the warehouse.
    """
    if definition is None:
        from svduty.definition.rules import current_definition

        definition = current_definition(wh)
    events = _area_events(wh, lad_codes)
    end = _month(period_end) if period_end else _latest_month(events)
    counts = _monthly_counts(events, end) if end else _empty_counts()
    residents = _residents(wh, lad_codes)
    frame = _group_rows(counts, _violence_codes(wh), residents)
    frame = frame.with_columns(
        pl.lit(_add_months(end, -11) if end else None, pl.Date).alias("period_start"),
        pl.lit(end, pl.Date).alias("period_end"),
    )
    return _with_definition(frame, definition)


# ---------------------------------------------------------------- engine queries


def _area_lsoas(wh: Warehouse, lad_codes: list[str]) -> ir.Table:
    areas = wh.ibis().table("areas")
    return areas.filter(areas.lsoa_vintage == 2021, areas.lad_code.isin(lad_codes)).select(
        "lsoa_code").distinct()


def _area_events(wh: Warehouse, lad_codes: list[str]) -> ir.Table:
    """In-area events in the given local authorities (by their 2021 LSOA)."""
    events = wh.ibis().table("events")
    lsoas = _area_lsoas(wh, lad_codes)
    inside = events.filter(events.in_area.fill_null(False))
    return inside.semi_join(lsoas, inside.lsoa21_code == lsoas.lsoa_code)


def _latest_month(events: ir.Table) -> date | None:
    value = events.month.max().to_pyarrow().as_py()
    return value if value is None else _month(value)


def _monthly_counts(events: ir.Table, end: date) -> pl.DataFrame:
    """Events per window, month, offence code and (for uncoded rows) police.uk category."""
    import ibis

    start = _add_months(end, -23)
    current_start = _add_months(end, -11)
    window = events.filter(events.month >= start, events.month <= end)
    keyed = window.select(
        ibis.ifelse(window.month >= current_start, "current", "previous").name("window"),
        window.month,
        window.offence_code,
        ibis.ifelse(window.offence_code.isnull(), window.police_uk_category,
                    ibis.null("string")).name("police_uk_category"),
    )
    agg = keyed.group_by(["window", "month", "offence_code", "police_uk_category"]).aggregate(
        n=keyed.count())
    return pl.from_arrow(agg.to_pyarrow())


def _empty_counts() -> pl.DataFrame:
    return pl.DataFrame(schema={"window": pl.String, "month": pl.Date, "offence_code": pl.String,
                                "police_uk_category": pl.String, "n": pl.Int64})


def _residents(wh: Warehouse, lad_codes: list[str]) -> int | None:
    """Usual residents of the area's 2021 LSOAs (an all-ages band if given, else the sum)."""
    pops = wh.ibis().table("populations")
    lsoas = _area_lsoas(wh, lad_codes)
    pops = pops.filter(pops.lsoa_vintage == 2021).semi_join(
        lsoas, pops.lsoa_code == lsoas.lsoa_code)
    total_band = pops.age_band.lower().strip().isin(TOTAL_BANDS)
    sums = pops.aggregate(
        total=pops.residents.sum(where=total_band),
        bands=pops.residents.sum(where=~total_band),
    ).to_pyarrow().to_pylist()[0]
    value = sums["total"] or sums["bands"]
    return int(value) if value else None


def _violence_codes(wh: Warehouse) -> set[str]:
    """Offence codes counted as violence (VAP, sexual offences, robbery) for the share."""
    catalogue = load_catalogue().filter(pl.col("ho_group").is_in(VIOLENCE_HO_GROUPS))
    codes = set(catalogue.get_column("code").to_list())
    table = wh.ibis().table("offence_codes")
    groups = [g.lower() for g in VIOLENCE_HO_GROUPS]
    extra = table.filter(table.offence_group.lower().isin(groups)).select("offence_code")
    return codes | set(extra.to_pyarrow().column(0).to_pylist())


# ---------------------------------------------------------------- arithmetic on aggregates


def _group_rows(counts: pl.DataFrame, violence_codes: set[str], residents: int | None,
                ) -> pl.DataFrame:
    coded = counts.filter(pl.col("offence_code").is_not_null())
    basis = BASIS_CODES if coded.height else (BASIS_PROXY if counts.height else BASIS_NONE)
    used = coded if basis == BASIS_CODES else counts.filter(pl.col("offence_code").is_null())
    months = {w: used.filter(pl.col("window") == w).get_column("month").n_unique()
              for w in ("current", "previous")}
    if basis == BASIS_CODES:
        is_violence = pl.col("offence_code").is_in(sorted(violence_codes))
    else:
        is_violence = pl.col("police_uk_category").is_in(POLICE_UK_VIOLENCE)
    violence = used.filter(is_violence & (pl.col("window") == "current")).get_column("n").sum()
    catalogue = load_catalogue()
    rows = [_group_row(group, catalogue.filter(pl.col("offence_group") == group), used, basis,
                       months, violence, residents) for group in OFFENCE_GROUPS]
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row")


_SCHEMA: dict[str, pl.DataType] = {
    "offence_group": pl.String, "codes": pl.String, "max_penalty": pl.String,
    "statute": pl.String, "max_penalty_offence": pl.String, "life": pl.Boolean,
    "max_penalty_years": pl.Float64,
    "css_weight_max": pl.Float64, "basis": pl.String, "proxy_category": pl.String,
    "count": pl.Int64, "previous_count": pl.Int64, "residents": pl.Int64,
    "rate_per_1000": pl.Float64, "share_of_violence_pct": pl.Float64, "change_pct": pl.Float64,
    "p_value": pl.Float64, "trend_note": pl.String,
}


def _group_row(group: str, rows: pl.DataFrame, used: pl.DataFrame, basis: str,
               months: dict[str, int], violence: int, residents: int | None) -> tuple:
    worst = rows.sort(["life", "max_penalty_years"], descending=True, nulls_last=True).row(
        0, named=True)
    codes = rows.get_column("code").to_list()
    categories = sorted(set(rows.get_column("police_uk_category").to_list()))
    if basis == BASIS_CODES:
        mine = used.filter(pl.col("offence_code").is_in(codes))
    else:
        mine = used.filter(pl.col("police_uk_category").is_in(categories))
    current = int(mine.filter(pl.col("window") == "current").get_column("n").sum())
    previous = int(mine.filter(pl.col("window") == "previous").get_column("n").sum())
    in_violence = bool(rows.get_column("ho_group").is_in(VIOLENCE_HO_GROUPS).any())
    change, p_value, note = _trend(current, previous, months)
    return (
        group, ", ".join(codes), worst["max_penalty"], worst["statute"],
        f"{worst['code']} {worst['description']}", worst["life"],
        worst["max_penalty_years"], rows.get_column("css_weight").max(), basis,
        "; ".join(categories) if basis == BASIS_PROXY else None, current, previous, residents,
        round(current / residents * 1000, 4) if residents else None,
        round(current / violence * 100, 2) if violence and in_violence else None,
        change, p_value, note,
    )


def _trend(current: int, previous: int, months: dict[str, int],
           ) -> tuple[float | None, float | None, str]:
    """% change and exact two-sided p-value, or why there is none."""
    if months["current"] < 12 or months["previous"] < 12:
        return None, None, (f"no trend: data for {months['current']} of the last 12 months and "
                            f"{months['previous']} of the 12 before")
    change = round((current - previous) / previous * 100, 1) if previous else None
    return change, rate_ratio_p_value(current, previous), "exact conditional (binomial) test"


def rate_ratio_p_value(current: int, previous: int) -> float | None:
    """Two-sided exact test that two Poisson counts over equal periods share one rate.

    Conditional on the total n, `current` ~ Binomial(n, 1/2). Uses scipy when installed;
    otherwise sums the same binomial tail here (identical for p = 1/2).
    """
    n = current + previous
    if n == 0:
        return None
    try:
        from scipy.stats import binomtest
    except ImportError:
        return _binomial_two_sided_half(min(current, previous), n)
    return float(binomtest(current, n, 0.5).pvalue)


def _binomial_two_sided_half(k: int, n: int) -> float:
    """2 * P(X <= k) for X ~ Binomial(n, 1/2), capped at 1 (k <= n/2)."""
    if 2 * k >= n:
        return 1.0
    log_half_n = n * math.log(2)
    log_fact_n = math.lgamma(n + 1)
    total = 0.0
    for i in range(k, -1, -1):
        term = math.exp(log_fact_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) - log_half_n)
        total += term
        if term < total * 1e-17:
            break
    return min(1.0, 2 * total)


# ---------------------------------------------------------------- definition coverage


def _with_definition(frame: pl.DataFrame, definition: Definition | None) -> pl.DataFrame:
    catalogue = load_catalogue()
    status, rules = [], []
    for group in frame.get_column("offence_group"):
        rows = catalogue.filter(pl.col("offence_group") == group)
        text, ids = _coverage(rows, definition)
        status.append(text)
        rules.append(ids)
    return frame.with_columns(pl.Series("in_definition", status, pl.String),
                              pl.Series("definition_rules", rules, pl.String))


def _coverage(rows: pl.DataFrame, definition: Definition | None) -> tuple[str, str]:
    """'yes', 'partly (...)', 'proxy only' or 'no' and the rule ids that select the group."""
    if definition is None:
        return "no definition applied", ""
    current = set(rows.filter(~pl.col("legacy")).get_column("code").to_list())
    categories = set(rows.get_column("police_uk_category").to_list())
    plain: set[str] = set()
    conditions: list[str] = []
    ids: list[str] = []
    proxy = False
    for rule in definition.rules:
        hit = current & set(rule.offence_codes)
        if hit:
            ids.append(rule.id)
            if rule.conditions:
                conditions += [c for c in rule.conditions if c not in conditions]
            else:
                plain |= hit
        elif categories & set(rule.police_uk_categories):
            ids.append(rule.id)
            proxy = True
    return _coverage_text(current, plain, conditions, proxy), ", ".join(ids)


def _coverage_text(current: set[str], plain: set[str], conditions: list[str], proxy: bool,
                   ) -> str:
    if current and plain >= current:
        return "yes"
    if plain or conditions:
        parts = (["some codes"] if plain else []) + conditions
        return f"partly ({'; '.join(parts)})"
    return "police.uk proxy only" if proxy else "no"


# ---------------------------------------------------------------- dates


def _month(value: date) -> date:
    return date(value.year, value.month, 1)


def _add_months(value: date, months: int) -> date:
    index = value.year * 12 + value.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
