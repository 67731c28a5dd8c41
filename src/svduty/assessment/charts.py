"""Charts for the Strategic Needs Assessment, one specification for every format.

Each function takes a Result (or its table) and returns an Altair chart with a title, axis
titles, a colour-blind-safe palette (Okabe-Ito for categories, viridis for sequences) and a
``description`` that is the chart's text alternative, in the document's font (:data:`FONT`).
``render`` turns the same Vega-Lite specification into SVG (HTML and PDF) offline with
vl-convert, and rasterises that SVG to PNG (DOCX); with a disk cache a chart is drawn again
only when its specification or data change, and ``render_soon`` draws charts in worker
processes. A function returns None when its table has nothing to draw.
"""

from __future__ import annotations

import re
from datetime import date
from html import escape
from typing import TYPE_CHECKING, Any, Literal

import altair as alt
import polars as pl
import vl_convert as vlc

from svduty.analysis.result import Result
from svduty.assessment.cache import DiskCache, digest

if TYPE_CHECKING:
    from svduty.assessment.workers import Workers

ALL = "All serious violence"
VL_VERSION = "6.4"
PNG_SCALE = 2.0  # PNG pixels per SVG pixel (the Word document's charts)
# Okabe & Ito (2008): distinguishable with the common colour-vision deficiencies.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9",
             "green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
             "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#999999"}
# The report's one font, in the document (HTML, PDF), every chart and map, and Word (Arial):
# Arial where it is installed, else its metric twin Liberation Sans (as on Linux servers).
FONT = "Arial, 'Liberation Sans', Helvetica, sans-serif"
WIDTH, HEIGHT = 560, 280
CONFIG: dict[str, Any] = {
    "font": FONT, "background": "white", "view": {"stroke": None},
    "title": {"fontSize": 15, "anchor": "start", "subtitleFontSize": 12,
              "subtitleColor": "#333333", "offset": 10},
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "labelColor": "#222222",
             "titleColor": "#222222", "gridColor": "#e6e6e6"},
    "legend": {"labelFontSize": 11, "titleFontSize": 12, "orient": "bottom"},
    "header": {"labelFontSize": 12, "titleFontSize": 12},
}

Table = Result | pl.DataFrame
_CAPITALISE = ("upper(slice(datum.label || datum.value, 0, 1)) + "
               "slice(datum.label || datum.value, 1)")


def table_of(source: Table) -> pl.DataFrame:
    """The table of a Result, or the table itself."""
    return source.table if isinstance(source, Result) else source


def _titled(chart: alt.TopLevelMixin, title: str, description: str,
            subtitle: str | list[str] | None = None) -> Any:
    head = alt.Title(title, subtitle=subtitle) if subtitle else alt.Title(title)
    return chart.properties(title=head, description=description)


def _data(frame: pl.DataFrame) -> dict[str, list[dict]]:
    """Inline data for a spec: dates as ISO text, NaN as null (valid JSON). A plain
    ``{"values": ...}`` rather than ``alt.Data``: Altair moves it to the spec's top-level
    ``datasets`` untouched, where it walks every value of an ``alt.Data`` (for a map, every
    coordinate: 0.4 s a map)."""
    frame = frame.with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t.is_temporal()]
        + [pl.col(c).fill_nan(None) for c, t in frame.schema.items() if t.is_float()])
    return {"values": frame.to_dicts()}


def _month_label(d: date) -> str:
    return d.strftime("%b %Y")


def _months(frame: pl.DataFrame, column: str = "month") -> pl.DataFrame:
    if frame.schema[column] != pl.Date:
        frame = frame.with_columns(pl.col(column).cast(pl.String).str.to_date())
    return frame


def _band_key(band: str) -> tuple[int, str]:
    """Age bands in numeric order ('0-15' < '16-24' < '65+'), anything else last."""
    digits = re.match(r"\d+", band)
    return (int(digits.group()) if digits else 10**6, band)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


# -- trends ---------------------------------------------------------------------------------

def _trend_rows(source: Table, category: str, level: str) -> pl.DataFrame:
    frame = table_of(source)
    if frame.is_empty():
        return frame
    frame = _months(frame.filter((pl.col("level") == level) & (pl.col("sv_category") == category)))
    return frame.sort("month")


def monthly_trend(source: Table, category: str = ALL, level: str = "partnership") -> Any:
    """Monthly count with the 12-month rolling average (trend-monthly)."""
    rows = _trend_rows(source, category, level)
    if rows.is_empty() or rows["count"].drop_nulls().is_empty():
        return None
    long = pl.concat([
        rows.select("month", pl.lit("Monthly count").alias("series"),
                    pl.col("count").cast(pl.Float64).alias("value")),
        rows.select("month", pl.lit("12-month average").alias("series"),
                    (pl.col("rolling_12m").cast(pl.Float64) / 12).alias("value")),
    ]).filter(pl.col("value").is_not_null().any().over("series"))
    series = alt.Scale(domain=["Monthly count", "12-month average"],
                       range=[OKABE_ITO["blue"], OKABE_ITO["vermillion"]])
    base = alt.Chart(_data(long)).encode(
        x=alt.X("month:T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=0)),
        y=alt.Y("value:Q", title="Offences per month", scale=alt.Scale(zero=True)),
        tooltip=[alt.Tooltip("month:T", format="%B %Y"), "series:N",
                 alt.Tooltip("value:Q", format=",.0f")])
    lines = base.mark_line(strokeWidth=2).encode(
        color=alt.Color("series:N", scale=series, title=None),
        strokeDash=alt.StrokeDash("series:N", title=None, scale=alt.Scale(
            domain=["Monthly count", "12-month average"], range=[[1, 0], [6, 3]])))
    # small dots so a month between two gaps still shows
    dots = base.mark_point(size=12, filled=True).encode(
        color=alt.Color("series:N", scale=series, legend=None))
    chart = (lines + dots).resolve_legend(color="independent", strokeDash="independent")
    chart = chart.properties(
        width=WIDTH, height=HEIGHT)
    known = rows.drop_nulls("count")
    first, last = known["month"][0], known["month"][-1]
    gaps = rows.height - known.height
    text = (f"Line chart of {category.lower()} each month from {_month_label(first)} to "
            f"{_month_label(last)}, with a dashed line for the rolling 12-month average. "
            f"Monthly counts range from {known['count'].min():,} to {known['count'].max():,}.")
    if gaps:
        text += f" {gaps} month(s) without complete data are left as gaps in the line."
    return _titled(chart, f"{category}: offences by month", text,
                   "Monthly count and rolling 12-month average")


def category_mix(source: Table, level: str = "partnership", months: int = 12) -> Any:
    """Offences by category in the latest `months` months (trend-monthly)."""
    frame = table_of(source)
    if frame.is_empty():
        return None
    rows = _months(frame.filter((pl.col("level") == level) & (pl.col("sv_category") != ALL)))
    rows = rows.drop_nulls("count")
    if rows.is_empty():
        return None
    last = rows["month"].max()
    start = date(last.year - (1 if last.month < months else 0), (last.month - months) % 12 + 1, 1)
    mix = (rows.filter(pl.col("month") >= start).group_by("sv_category")
           .agg(pl.col("count").sum()).sort("count", descending=True))
    base = alt.Chart(_data(mix)).encode(
        y=alt.Y("sv_category:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("count:Q", title=f"Offences, {_month_label(start)} to {_month_label(last)}"),
        tooltip=[alt.Tooltip("sv_category:N", title="Category"),
                 alt.Tooltip("count:Q", format=",")])
    chart = (base.mark_bar(color=OKABE_ITO["blue"])
             + base.mark_text(align="left", dx=3, fontSize=11).encode(
                 text=alt.Text("count:Q", format=","))).properties(width=WIDTH - 120)
    top = mix.row(0, named=True)
    text = (f"Bar chart of serious violence by category from {_month_label(start)} to "
            f"{_month_label(last)}. The largest category is {top['sv_category']} "
            f"({top['count']:,} offences). An offence can fall in more than one category.")
    return _titled(chart, f"Serious violence by category, latest {months} months", text)


def outlook(source: Table, category: str = ALL) -> Any:
    """Observed months and the 12-month outlook with its 95% prediction interval."""
    frame = table_of(source)
    if frame.is_empty():
        return None
    rows = _months(frame.filter(pl.col("sv_category") == category)).sort("month")
    fc = rows.filter(pl.col("kind") == "forecast")
    if fc.is_empty():
        return None
    base = alt.Chart(_data(rows)).encode(
        x=alt.X("month:T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=0)))
    band = base.transform_filter("datum.kind == 'forecast'").mark_area(
        opacity=0.3, color=OKABE_ITO["sky_blue"]).encode(
        y=alt.Y("pi_lower:Q", title="Offences per month"), y2="pi_upper:Q")
    seen = base.transform_filter("datum.kind == 'observed'").mark_line(
        color=OKABE_ITO["black"], strokeWidth=1.5).encode(y="count:Q")
    ahead = base.transform_filter("datum.kind == 'forecast'").mark_line(
        color=OKABE_ITO["blue"], strokeDash=[6, 3], strokeWidth=2).encode(
        y="forecast:Q", tooltip=[alt.Tooltip("month:T", format="%B %Y"),
                                 alt.Tooltip("forecast:Q", format=",.0f"),
                                 alt.Tooltip("pi_lower:Q", format=",.0f"),
                                 alt.Tooltip("pi_upper:Q", format=",.0f")])
    chart = (band + seen + ahead).properties(width=WIDTH, height=HEIGHT)
    model = fc["model"][0]
    text = (f"Line chart of {category.lower()} per month (solid line, observed) and a "
            f"{fc.height}-month outlook (dashed line) from {_month_label(fc['month'][0])} to "
            f"{_month_label(fc['month'][-1])}, with a shaded 95% prediction interval from "
            f"about {fc['pi_lower'].min():,.0f} to {fc['pi_upper'].max():,.0f} a month. "
            f"Model: {model}. A projection of the recent pattern, not a prediction of the "
            "effect of any action.")
    return _titled(chart, f"{category}: 12-month outlook", text,
                   "Observed (solid), outlook (dashed) and 95% prediction interval (shaded)")


# -- times ----------------------------------------------------------------------------------

def seasonality(source: Table) -> Any:
    """Seasonal index by month of the year with its 95% interval (times-month-of-year)."""
    rows = table_of(source)
    if rows.is_empty() or rows["seasonal_index"].drop_nulls().is_empty():
        return None
    rows = rows.sort("month_of_year").with_columns(
        pl.col("month_name").str.slice(0, 3).alias("month"))
    order = rows["month"].to_list()
    base = alt.Chart(_data(rows)).encode(
        x=alt.X("month:N", sort=order, title="Month of the year", axis=alt.Axis(labelAngle=0)))
    bars = base.mark_rule(color=OKABE_ITO["blue"], strokeWidth=2).encode(
        y=alt.Y("index_lower:Q", title="Seasonal index (1 = average month)",
                scale=alt.Scale(zero=False)), y2="index_upper:Q")
    points = base.mark_point(filled=True, size=60, color=OKABE_ITO["blue"]).encode(
        y="seasonal_index:Q", tooltip=["month_name:N", alt.Tooltip("seasonal_index:Q",
                                                                   format=".2f"),
                                       alt.Tooltip("index_lower:Q", format=".2f"),
                                       alt.Tooltip("index_upper:Q", format=".2f")])
    one = alt.Chart({"values": [{"y": 1}]}).mark_rule(
        color=OKABE_ITO["grey"], strokeDash=[4, 4]).encode(y="y:Q")
    chart = (one + bars + points).properties(width=WIDTH, height=HEIGHT)
    hi, lo = rows.sort("seasonal_index").row(-1, named=True), rows.sort("seasonal_index").row(
        0, named=True)
    text = (f"Dot chart of the seasonal index for each month of the year with 95% intervals; "
            f"1 is an average month. Highest: {hi['month_name']} ({hi['seasonal_index']:.2f}); "
            f"lowest: {lo['month_name']} ({lo['seasonal_index']:.2f}).")
    return _titled(chart, "Serious violence by month of the year", text,
                   "Seasonal index with 95% interval")


def hour_weekday(source: Table) -> Any:
    """Heat map of offences by hour of the day and day of the week (times-hour-weekday)."""
    rows = table_of(source)
    if rows.is_empty() or not rows["count"].drop_nulls().sum():
        return None
    days = rows.sort("weekday")["weekday_name"].unique(maintain_order=True).to_list()
    chart = alt.Chart(_data(rows)).mark_rect().encode(
        x=alt.X("hour:O", title="Hour of the day (0 = midnight to 00:59)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("weekday_name:N", sort=days, title=None),
        color=alt.Color("count:Q", title="Offences", scale=alt.Scale(scheme="viridis",
                                                                      reverse=True),
                        legend=alt.Legend(orient="right", gradientLength=160)),
        tooltip=["weekday_name:N", "hour:O", alt.Tooltip("count:Q", format=",")],
    ).properties(width=WIDTH, height=200)
    top = rows.sort("count").row(-1, named=True)
    by_day = rows.group_by("weekday_name").agg(pl.col("count").sum()).sort("count")
    text = (f"Heat map of serious violence by hour of the day (columns) and day of the week "
            f"(rows); darker cells have more offences. The busiest hour is "
            f"{top['weekday_name']} {top['hour']:02d}:00 to {top['hour']:02d}:59; the busiest "
            f"day is {by_day['weekday_name'][-1]}.")
    return _titled(chart, "Serious violence by hour and day of the week", text)


# -- people and health ----------------------------------------------------------------------

SEX_COLOURS = {"female": OKABE_ITO["orange"], "male": OKABE_ITO["blue"],
               "unknown": OKABE_ITO["grey"]}


def age_sex(source: Table) -> Any:
    """Victims and suspects by age band and sex (people-profile)."""
    rows = table_of(source)
    if rows.is_empty():
        return None
    rows = rows.filter(pl.col("sex") != "all").drop_nulls("involvements")
    if rows.is_empty():
        return None
    sexes = [s for s in SEX_COLOURS if s in set(rows["sex"])] + sorted(
        set(rows["sex"]) - set(SEX_COLOURS))
    colours = [SEX_COLOURS.get(s, OKABE_ITO["purple"]) for s in sexes]
    bands = sorted(set(rows["age_band"]), key=_band_key)
    chart = alt.Chart(_data(rows)).mark_bar().encode(
        x=alt.X("age_band:N", sort=bands, title="Age band", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("sex:N", sort=sexes),
        y=alt.Y("involvements:Q", title="Involvements"),
        color=alt.Color("sex:N", sort=sexes, title="Sex",
                        scale=alt.Scale(domain=sexes, range=colours),
                        legend=alt.Legend(labelExpr=_CAPITALISE)),
        column=alt.Column("role:N", title=None,
                          header=alt.Header(labelExpr=_CAPITALISE + " + 's'")),
        tooltip=["role:N", "age_band:N", "sex:N", alt.Tooltip("involvements:Q", format=",")],
    ).properties(width=WIDTH // 2 - 20, height=HEIGHT - 40)
    peak = rows.group_by("role", "age_band").agg(pl.col("involvements").sum())
    parts = [f"{r}s peak at {peak.filter(pl.col('role') == r).sort('involvements')['age_band'][-1]}"
             for r in sorted(set(peak["role"]), reverse=True)]
    text = ("Grouped bar chart of involvements in serious violence by age band, one bar per "
            "sex, in a panel per role. " + "; ".join(parts).capitalize() + ".")
    return _titled(chart, "Victims and suspects by age and sex", text)


def ed_methods(source: Table, dimension: str = "method") -> Any:
    """Emergency department assault attendances by method of injury (health-ed-method)."""
    rows = table_of(source)
    if rows.is_empty():
        return None
    rows = rows.filter(pl.col("dimension") == dimension).drop_nulls("share")
    if rows.is_empty():
        return None
    base = alt.Chart(_data(rows)).encode(
        y=alt.Y("category:N", sort="-x", title=None, axis=alt.Axis(labelLimit=300)),
        x=alt.X("share:Q", title="Share of assault attendances", axis=alt.Axis(format="%")),
        tooltip=["category:N", alt.Tooltip("attendances:Q", format=","),
                 alt.Tooltip("share:Q", format=".1%")])
    chart = (base.mark_bar(color=OKABE_ITO["green"])
             + base.mark_text(align="left", dx=3, fontSize=11).encode(
                 text=alt.Text("share:Q", format=".0%"))).properties(width=WIDTH - 140)
    top = rows.sort("share").row(-1, named=True)
    text = (f"Bar chart of emergency department assault attendances by {dimension}. The most "
            f"common is {top['category']} ({_pct(top['share'])} of attendances).")
    return _titled(chart, f"Assault attendances at emergency departments by {dimension}", text)


def under_reporting(source: Table) -> Any:
    """Share of ED assault attendances with no matching police record (health-under-reporting)."""
    rows = table_of(source)
    if rows.is_empty() or rows["gap"].drop_nulls().is_empty():
        return None
    long = pl.concat([
        rows.select("matching", pl.lit("As matched").alias("estimate"), pl.col("gap"),
                    pl.col("gap_lower").alias("lower"), pl.col("gap_upper").alias("upper")),
        rows.select("matching", pl.lit("Allowing for chance matches").alias("estimate"),
                    pl.col("gap_adjusted").alias("gap"),
                    pl.col("gap_adjusted_lower").alias("lower"),
                    pl.col("gap_adjusted_upper").alias("upper")),
    ]).drop_nulls("gap")
    kinds = ["As matched", "Allowing for chance matches"]
    palette = alt.Scale(domain=kinds, range=[OKABE_ITO["vermillion"], OKABE_ITO["blue"]])
    enc = {"y": alt.Y("matching:N", title=None, axis=alt.Axis(labelLimit=420)),
           "yOffset": alt.YOffset("estimate:N", sort=kinds)}
    base = alt.Chart(_data(long))
    estimate = {"field": "estimate", "type": "nominal", "sort": kinds, "title": None}
    colour = alt.Color(**estimate, scale=palette)  # colour and shape share one legend (their
    shape = alt.Shape(**estimate, scale=alt.Scale(domain=kinds))  # scales' domains match)
    ci = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("lower:Q", title="Attendances with no matching police record",
                axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])), x2="upper:Q",
        color=colour, **enc)
    dots = base.mark_point(filled=True, size=70).encode(
        x="gap:Q", shape=shape, color=colour, **enc,
        tooltip=["matching:N", "estimate:N", alt.Tooltip("gap:Q", format=".1%"),
                 alt.Tooltip("lower:Q", format=".1%"), alt.Tooltip("upper:Q", format=".1%")])
    chart = (ci + dots).properties(width=WIDTH - 200, height=60 * rows.height)
    main = rows.sort("primary", descending=True).row(0, named=True)
    text = (f"Dot chart with 95% intervals of the share of emergency department assault "
            f"attendances that match no police record, for each matching rule. Main rule "
            f"({main['matching']}): {_pct(main['gap'])} unmatched"
            + (f", {_pct(main['gap_adjusted'])} allowing for chance matches."
               if main.get("gap_adjusted") is not None else "."))
    return _titled(chart, "Violence seen by hospitals but not recorded by the police", text)


# -- comparison and risk --------------------------------------------------------------------

def force_comparison(source: Table, category: str = ALL, level: str = "csp") -> Any:
    """Rates per 1,000 residents a year with 95% intervals for each area of the force."""
    rows = table_of(source)
    if rows.is_empty():
        return None
    rows = rows.filter((pl.col("level") == level) & (pl.col("category") == category))
    rows = rows.drop_nulls("rate_per_1000").filter(pl.col("rate_per_1000") > 0)
    if rows.is_empty():
        return None
    factor = pl.col("rate_per_1000_per_year") / pl.col("rate_per_1000")
    rows = rows.with_columns(
        (pl.col("rate_lower") * factor).alias("lower"), (pl.col("rate_upper") * factor)
        .alias("upper"), (pl.col("force_rate_per_1000") * factor).alias("force_rate"),
        pl.when(pl.col("in_scope")).then(pl.lit("This partnership"))
        .otherwise(pl.lit("Elsewhere in the force area")).alias("area"))
    order = rows.sort("rate_per_1000_per_year", descending=True)["name"].to_list()
    kinds = ["This partnership", "Elsewhere in the force area"]
    colour = alt.Scale(domain=kinds, range=[OKABE_ITO["vermillion"], OKABE_ITO["blue"]])
    enc = {"y": alt.Y("name:N", sort=order, title=None, axis=alt.Axis(labelLimit=300))}
    base = alt.Chart(_data(rows))
    ci = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("lower:Q", title="Offences per 1,000 residents a year (95% interval)"),
        x2="upper:Q", color=alt.Color("area:N", scale=colour, legend=None), **enc)
    dots = base.mark_point(filled=True, size=70).encode(
        x="rate_per_1000_per_year:Q",
        color=alt.Color("area:N", sort=kinds, title=None, scale=colour),
        shape=alt.Shape("area:N", sort=kinds, title=None,
                        scale=alt.Scale(domain=kinds, range=["diamond", "circle"])), **enc,
        tooltip=["name:N", alt.Tooltip("rate_per_1000_per_year:Q", format=".1f"),
                 alt.Tooltip("lower:Q", format=".1f"), alt.Tooltip("upper:Q", format=".1f")])
    force = base.mark_rule(color=OKABE_ITO["grey"], strokeDash=[4, 4]).encode(
        x=alt.X("mean(force_rate):Q"))
    chart = (force + ci + dots).resolve_legend(color="independent", shape="independent")
    chart = chart.properties(width=WIDTH - 200, height=max(22 * rows.height, 80))
    ours = rows.filter(pl.col("in_scope"))
    force_rate = rows["force_rate"][0]
    text = (f"Dot chart of {category.lower()} per 1,000 residents a year with 95% intervals for "
            f"each {level.upper()} in the force area; the dashed line is the force-wide rate "
            f"({force_rate:.1f}).")
    for r in ours.iter_rows(named=True):
        text += (f" {r['name']}: {r['rate_per_1000_per_year']:.1f}, ranked {r['rank']} of "
                 f"{r['areas_ranked']}.")
    return _titled(chart, f"{category}: comparison with the rest of the force area", text)


def risk_correlation(source: Table) -> Any:
    """Spearman's rho between LSOA rates and each indicator, with 95% intervals."""
    rows = table_of(source)
    if rows.is_empty() or rows["spearman_rho"].drop_nulls().is_empty():
        return None
    rows = rows.drop_nulls("spearman_rho").with_columns(
        pl.when(pl.col("circular").cast(pl.Boolean))
        .then(pl.col("label") + " (partly counts violence)").otherwise(pl.col("label"))
        .alias("indicator_label"),
        pl.when(pl.col("circular").cast(pl.Boolean)).then(pl.lit("Partly counts violence"))
        .otherwise(pl.lit("Independent of the count")).alias("kind"))
    kinds = ["Independent of the count", "Partly counts violence"]
    order = rows.sort("spearman_rho", descending=True)["indicator_label"].to_list()
    enc = {"y": alt.Y("indicator_label:N", sort=order, title=None,
                      axis=alt.Axis(labelLimit=420))}
    colour = alt.Scale(domain=kinds, range=[OKABE_ITO["blue"], OKABE_ITO["grey"]])
    base = alt.Chart(_data(rows))
    ci = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("ci_lower:Q", title="Spearman's rank correlation with the LSOA rate",
                scale=alt.Scale(domain=[-1, 1])), x2="ci_upper:Q",
        color=alt.Color("kind:N", scale=colour, legend=None), **enc)
    dots = base.mark_point(size=70, filled=True).encode(
        x="spearman_rho:Q", color=alt.Color("kind:N", sort=kinds, title=None, scale=colour),
        shape=alt.Shape("kind:N", sort=kinds, title=None, scale=alt.Scale(
            domain=kinds, range=["circle", "triangle-up"])), **enc,
        tooltip=["label:N", alt.Tooltip("spearman_rho:Q", format=".2f"),
                 alt.Tooltip("ci_lower:Q", format=".2f"), alt.Tooltip("ci_upper:Q",
                                                                      format=".2f")])
    zero = alt.Chart({"values": [{"x": 0}]}).mark_rule(color=OKABE_ITO["grey"]).encode(
        x="x:Q")
    chart = (zero + ci + dots).resolve_legend(color="independent", shape="independent")
    chart = chart.properties(width=WIDTH - 260, height=22 * rows.height)
    top = rows.sort("spearman_rho").row(-1, named=True)
    text = (f"Dot chart of Spearman's rank correlation between each LSOA indicator and the "
            f"LSOA rate of serious violence, with 95% intervals; 0 means no association. "
            f"Strongest positive: {top['label']} (rho {top['spearman_rho']:.2f}). "
            "These are associations, not causes.")
    return _titled(chart, "Area characteristics associated with serious violence", text)


# -- places ---------------------------------------------------------------------------------

def concentration(source: Table) -> Any:
    """Share of offences in the top 1, 5 and 10% of LSOAs and locations."""
    rows = table_of(source)
    if rows.is_empty():
        return None
    rows = rows.filter(pl.col("measure").str.starts_with("top")).drop_nulls("value")
    if rows.is_empty():
        return None
    rows = rows.with_columns(pl.col("unit").replace({"LSOA": "LSOAs", "location": "Locations"}),
                             ("Top " + pl.col("measure").str.slice(4)).alias("measure"))
    units = rows["unit"].unique(maintain_order=True).to_list()
    measures = rows["measure"].unique(maintain_order=True).to_list()
    colours = [OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"]][:len(units)]
    base = alt.Chart(_data(rows)).encode(
        y=alt.Y("measure:N", sort=measures, title="Places with the most offences"),
        yOffset=alt.YOffset("unit:N", sort=units),
        x=alt.X("value:Q", title="Share of all offences",
                axis=alt.Axis(format="%", values=[0, 0.2, 0.4, 0.6, 0.8, 1]),
                scale=alt.Scale(domain=[0, 1])),
        tooltip=["unit:N", "measure:N", alt.Tooltip("value:Q", format=".1%"),
                 alt.Tooltip("events:Q", format=",")])
    bars = base.mark_bar().encode(color=alt.Color("unit:N", sort=units, title=None,
                                                  scale=alt.Scale(domain=units,
                                                                  range=colours)))
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(
        text=alt.Text("label:N")).transform_calculate(
        label="datum.unit + ' ' + format(datum.value, '.0%')")
    chart = (bars + labels).properties(width=WIDTH - 160, height=45 * len(measures))
    parts = [f"the top {r['measure'][4:]} of {r['unit'].replace('Loc', 'loc')} hold "
             f"{_pct(r['value'])}"
             for r in rows.iter_rows(named=True)]
    text = ("Bar chart of the share of all serious violence in the places with the most "
            "offences: " + "; ".join(parts) + ".")
    return _titled(chart, "How concentrated serious violence is in few places", text)


def knox(source: Table, alpha: float = 0.05) -> Any:
    """Knox ratios of near-repeat offences as a heat table (near-repeat-knox)."""
    rows = table_of(source)
    if rows.is_empty() or rows["knox_ratio"].drop_nulls().is_empty():
        return None
    rows = rows.with_columns(
        (pl.col("knox_ratio").map_elements(lambda x: f"{x:.2f}", return_dtype=pl.String)
         + pl.when(pl.col("p_value") < alpha).then(pl.lit("*")).otherwise(pl.lit("")))
        .alias("label"),
        pl.col("time_band", "space_band").str.replace(" inclusive", "").str.replace(
            "over ", "> "),
        ((pl.col("knox_ratio") - 1).abs() > 0.35).alias("dark"))
    spaces = rows.sort("space_from_m")["space_band"].unique(maintain_order=True).to_list()
    times = rows.sort("time_from_days")["time_band"].unique(maintain_order=True).to_list()
    base = alt.Chart(_data(rows)).encode(
        x=alt.X("time_band:N", sort=times, title="Days between offences",
                axis=alt.Axis(labelAngle=0, labelLimit=120)),
        y=alt.Y("space_band:N", sort=spaces, title="Distance between offences"))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("knox_ratio:Q", title="Knox ratio", scale=alt.Scale(
            scheme="blueorange", domainMid=1, domain=[0.4, 1.6], clamp=True),
            legend=alt.Legend(orient="right")),
        tooltip=["space_band:N", "time_band:N", alt.Tooltip("observed:Q", format=","),
                 alt.Tooltip("expected:Q", format=",.1f"),
                 alt.Tooltip("knox_ratio:Q", format=".2f"), alt.Tooltip("p_value:Q",
                                                                        format=".3f")])
    text = base.mark_text(fontSize=11).encode(
        text="label:N", color=alt.condition("datum.dark", alt.value("white"),
                                            alt.value("black")))
    chart = (cells + text).properties(width=WIDTH - 80, height=28 * len(spaces))
    near = rows.filter((pl.col("p_value") < alpha) & (pl.col("knox_ratio") > 1))
    text_alt = ("Heat table of Knox ratios: observed pairs of offences close in space and time "
                "divided by the number expected by chance; above 1 (orange) means more "
                "near-repeats than chance, * marks p < " + f"{alpha}. ")
    text_alt += (f"{near.height} of {rows.height} cells show significantly more pairs than "
                 "expected." if near.height else "No cell shows significantly more pairs than "
                 "expected by chance.")
    return _titled(chart, "Near-repeat pattern of serious violence (Knox test)", text_alt,
                   "Ratio of observed to expected pairs; * p < " + f"{alpha}")


# -- output ---------------------------------------------------------------------------------

_DICTS: dict[int, tuple[Any, dict[str, Any]]] = {}  # id -> (chart, its dict), recent only


def as_dict(chart: Any) -> dict[str, Any]:
    """`chart.to_dict()` once per chart (schema validation is the slow part of rendering)."""
    hit = _DICTS.get(id(chart))
    if hit is None or hit[0] is not chart:
        hit = (chart, chart.to_dict(validate=False))  # the tests validate every chart
        _DICTS[id(chart)] = hit
        while len(_DICTS) > 64:
            _DICTS.pop(next(iter(_DICTS)))
    return hit[1]


def spec(chart: Any) -> dict[str, Any]:
    """The Vega-Lite specification with the house style and no schema URL (works offline)."""
    out = dict(as_dict(chart))
    out.pop("$schema", None)
    out["config"] = CONFIG | out.get("config", {})
    return out


_RENDERED: dict[tuple[int, str, float], tuple[Any, str | bytes]] = {}
_HASHES: dict[int, tuple[Any, str]] = {}  # id -> (chart, spec_hash), recent only
_PENDING: dict[int, tuple[Any, Any, Workers, DiskCache | None]] = {}  # drawing in a worker


def spec_hash(chart: Any) -> str:
    """The hash of everything a render depends on: the specification with its data, the
    house style and the Vega-Lite and vl-convert versions."""
    hit = _HASHES.get(id(chart))
    if hit is None or hit[0] is not chart:
        hit = (chart, digest(spec(chart), VL_VERSION, _vl_convert_version()))
        _HASHES[id(chart)] = hit
        while len(_HASHES) > 64:
            _HASHES.pop(next(iter(_HASHES)))
    return hit[1]


def _vl_convert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vl-convert-python")
    except PackageNotFoundError:
        return "unknown"


def render(chart: Any, fmt: Literal["svg", "png", "pdf"] = "svg", scale: float = PNG_SCALE,
           cache: DiskCache | None = None) -> str | bytes:
    """SVG text (HTML, PDF) or PNG bytes (DOCX, at `scale` times) rendered offline, once per
    chart and format in a build (both editions share a chart where it is the same) and, with
    a `cache`, once for as long as the chart's specification and data do not change."""
    key = (id(chart), fmt, scale)
    hit = _RENDERED.get(key)
    if hit is None or hit[0] is not chart:
        drawn = _collect(chart) if fmt == "svg" else None
        hit = (chart, drawn if drawn is not None else _render(chart, fmt, scale, cache))
        _remember(key, hit)
    return hit[1]


def _remember(key: tuple[int, str, float], hit: tuple[Any, str | bytes]) -> None:
    _RENDERED[key] = hit
    while len(_RENDERED) > 128:
        _RENDERED.pop(next(iter(_RENDERED)))


def _render(chart: Any, fmt: str, scale: float, cache: DiskCache | None) -> str | bytes:
    if fmt == "pdf":
        return vlc.vegalite_to_pdf(spec(chart), vl_version=VL_VERSION)
    if fmt not in ("svg", "png"):
        raise ValueError(f"unknown chart format {fmt!r}: use svg, png or pdf")
    name, suffix = spec_hash(chart), "svg" if fmt == "svg" else f"{scale:g}x.png"
    stored = cache.get(name, suffix) if cache else None
    if stored is not None:
        return stored.decode("utf-8") if fmt == "svg" else stored
    if fmt == "svg":
        out: str | bytes = _labelled(vlc.vegalite_to_svg(spec(chart), vl_version=VL_VERSION),
                                     chart)
    else:  # rasterise the SVG (resvg) rather than run Vega again
        svg = render(chart, "svg", cache=cache)
        drawn = _RENDERED.get((id(chart), "png", scale))  # by a worker, with the SVG
        out = drawn[1] if drawn and drawn[0] is chart else vlc.svg_to_png(svg, scale=scale)
    if cache:
        cache.put(name, suffix, out.encode("utf-8") if isinstance(out, str) else out)
    return out


def render_soon(charts: list[Any], workers: Workers, cache: DiskCache | None = None) -> None:
    """Start drawing the SVG and PNG of every chart not yet drawn (nor cached) in the worker
    processes, several at a time, without waiting; :func:`render` collects each one."""
    from svduty.assessment.workers import draw_chart

    for chart in charts:
        hit = _RENDERED.get((id(chart), "svg", PNG_SCALE))
        waiting = _PENDING.get(id(chart))
        if (hit is not None and hit[0] is chart) or (waiting and waiting[0] is chart) or (
                cache and cache.path(spec_hash(chart), "svg").exists()):
            continue
        future = workers.submit(draw_chart, spec(chart), VL_VERSION, PNG_SCALE)
        _PENDING[id(chart)] = (chart, future, workers, cache)


def render_all(charts: list[Any], workers: Workers, cache: DiskCache | None = None) -> None:
    """Draw the SVG of every chart in the worker processes and wait for them all."""
    render_soon(charts, workers, cache)
    for chart in charts:
        render(chart, "svg", cache=cache)


def _collect(chart: Any) -> str | None:
    """The SVG a worker drew for the chart, or None if none is due; the SVG and the PNG drawn
    with it are kept (in the disk cache too, where there is one)."""
    waiting = _PENDING.pop(id(chart), None)
    if waiting is None or waiting[0] is not chart:
        return None
    _, future, workers, cache = waiting
    svg, png = workers.get(future)
    svg = _labelled(svg, chart)
    _remember((id(chart), "png", PNG_SCALE), (chart, png))
    if cache:
        cache.put(spec_hash(chart), "svg", svg.encode("utf-8"))
        cache.put(spec_hash(chart), f"{PNG_SCALE:g}x.png", png)
    return svg


_ID_REFS = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def _own_ids(svg: str, prefix: str) -> str:
    """Vega numbers its ids (``gradient_0``) per process: name them after the chart instead,
    so the same chart always gives the same SVG and no two charts in a page share an id."""
    names: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        name = names.setdefault(match.group(2), f"{prefix}-{len(names)}")
        return match.group(1) + name

    return _ID_REFS.sub(rename, svg)


def _labelled(svg: str, chart: Any) -> str:
    """The SVG with role img, a <title> and a <desc> (the text alternative) for screen
    readers, and ids of its own."""
    svg = _own_ids(svg, f"c{spec_hash(chart)[:12]}")
    body = as_dict(chart)
    title = body.get("title", "")
    title = title.get("text", "") if isinstance(title, dict) else title
    head, rest = svg.split(">", 1)
    return (f'{head} role="img" aria-label="{escape(str(title), quote=True)}">'
            f"<title>{escape(str(title))}</title>"
            f"<desc>{escape(text_alternative(chart))}</desc>{rest}")


def text_alternative(chart: Any) -> str:
    """The chart's text alternative: its description, or its title where it has none."""
    body = as_dict(chart)
    if body.get("description"):
        return str(body["description"])
    title = body.get("title", "")
    return str(title.get("text", "") if isinstance(title, dict) else title)


CHARTS = {
    "trend-monthly": monthly_trend, "trend-outlook": outlook,
    "times-month-of-year": seasonality, "times-hour-weekday": hour_weekday,
    "people-profile": age_sex, "health-ed-method": ed_methods,
    "health-under-reporting": under_reporting, "comparison-force": force_comparison,
    "risk-correlation": risk_correlation, "places-concentration": concentration,
    "near-repeat-knox": knox,
}
"""The chart drawn from each Result by default (category_mix also reads trend-monthly)."""
