"""The health view of violence: emergency department (ED) assault attendances, hospital
admissions for assault, and the Cardiff Model under-reporting gap.

ED attendances (ISTV extract, `ed-istv`) are counted by month, hour and weekday of the
assault, place (LSOA where the free-text location was geocoded), method and weapon, location
type, age band and sex. Admissions come as aggregates (ICD-10 X85-Y09, X99) with small counts
suppressed. The under-reporting gap is the share of geocoded ED assault attendances with no
matching police record, corrected for chance matches (see :func:`under_reporting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import polars as pl

from svduty.analysis import stats
from svduty.analysis.data import Data
from svduty.analysis.people import wilson
from svduty.analysis.result import Result
from svduty.analysis.scope import month_range

ED = "ed-istv"
ADMISSIONS = "hospital-admissions"
PER = 1000.0
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ICD10_ASSAULT = ("X85", "Y09")  # assault: X85-Y09 (X99 = sharp object lies inside)
SUPPRESSED_RANGE = (1, 5)  # NHS small-number rule: suppressed cells hold 1 to 5
# Home Office offence codes of injury violence (homicide, attempted murder, wounding, GBH,
# assault with injury, incl. on a constable or racially aggravated) and robbery, whose
# victims are the assaults an ED sees.
INJURY_CODES = ("1", "2", "4.1", "5A", "5D", "5E", "8N", "8P", "8S", "34A", "34B")
POLICE_UK_INJURY = ("violence and sexual offences", "violent crime", "robbery")
CHANCE_SHIFTS = (-16, -12, -8, -4, 4, 8, 12, 16)  # weeks
WINDOW_HOURS = 24
WEEK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Matching:
    """One definition of 'the ED assault has a police record'."""

    name: str
    description: str
    window: str  # "hours", "week" or "month"
    person: bool  # victim sex and age band must agree
    primary: bool


MATCHINGS = (
    Matching("same LSOA, within 24 hours, same victim sex and age band",
             f"a police-recorded injury violence or robbery offence in the same LSOA, "
             f"occurring within {WINDOW_HOURS} hours of the assault time the ED recorded, "
             f"with a victim of the same sex whose age falls in the ED age band",
             "hours", True, True),
    Matching("same LSOA and ISO week",
             "a police-recorded injury violence or robbery offence in the same LSOA in the "
             "same ISO week (Monday to Sunday)", "week", False, False),
)
PROXY_MATCHING = Matching(
    "same LSOA and month (police.uk)",
    "a data.police.uk violence or robbery record in the same LSOA and month", "month", False,
    True)


def analyse(data: Data) -> list[Result]:
    results: list[Result] = []
    ed = ed_attendances(data)
    if ed.height:
        results += [ed_monthly(data, ed), ed_hour_weekday(data, ed), ed_places(data, ed),
                    ed_methods(data, ed), ed_age_sex(data, ed), under_reporting(data)]
    admissions = hospital_admissions(data)
    if admissions is not None:
        results.append(admissions)
    return results


# ------------------------------------------------------------------ ED attendances


def ed_expr(data: Data) -> ir.Table:
    """ED assault attendances in the period, wherever (or whether) they were geocoded, with
    the victim's age band and sex and a flag for placement in the scope's areas."""
    e = data.table("events")
    e = e.filter((e.source == ED) & (e.month >= data.scope.start)
                 & (e.month <= data.scope.end))
    i = data.table("involvements")
    i = i.filter(i.role == "victim").select("event_id", "age_band", "sex")
    a = data.areas()
    a = a.filter(a.lad_code.isin(data.scope.lad_codes)).select("lsoa21_code", "lsoa_name",
                                                               "ward_code", "ward_name")
    j = e.left_join(i, "event_id").left_join(a, "lsoa21_code")
    return j.select("event_id", "source", "load_id", "month", "occurred_at", "lsoa21_code",
                    "lsoa_name", "ward_code", "ward_name", "source_category", "weapon",
                    "location_type", "age_band", "sex",
                    in_scope=j.ward_code.notnull())


def ed_attendances(data: Data) -> pl.DataFrame:
    frame = data.fetch(ed_expr(data))
    return frame.unique("event_id", keep="first", maintain_order=True)


def ed_monthly(data: Data, ed: pl.DataFrame) -> Result:
    placed = ed.with_columns(
        place=pl.when(pl.col("in_scope")).then(pl.lit("in_area"))
        .when(pl.col("lsoa21_code").is_not_null()).then(pl.lit("elsewhere"))
        .otherwise(pl.lit("not_geocoded")))
    counts = placed.group_by("month").agg(
        attendances=pl.len(),
        geocoded_in_area=(pl.col("place") == "in_area").sum(),
        geocoded_elsewhere=(pl.col("place") == "elsewhere").sum(),
        not_geocoded=(pl.col("place") == "not_geocoded").sum())
    months = pl.DataFrame({"month": month_range(data.scope.start, data.scope.end)})
    table = months.join(counts, on="month", how="left").fill_null(0).with_columns(
        share_geocoded=(pl.col("geocoded_in_area") + pl.col("geocoded_elsewhere"))
        / pl.col("attendances"))
    meta = data.meta(
        "health-ed-monthly", "ED assault attendances by month",
        "Assault attendances in the ED extract (ISTV) by month of the assault, split by "
        "whether the free-text location was geocoded to an LSOA in the scope's areas, "
        "elsewhere, or not at all.",
        parameters={"source": ED, **geocoded(ed)},
        caveats=ed_caveats(ed))
    return Result(table, meta)


def geocoded(ed: pl.DataFrame) -> dict:
    n = ed.height
    placed = ed.filter(pl.col("lsoa21_code").is_not_null()).height
    return {"attendances": n, "geocoded": placed,
            "share_geocoded": round(placed / n, 4) if n else None,
            "geocoded_in_area": int(ed["in_scope"].sum())}


def ed_caveats(ed: pl.DataFrame) -> list[str]:
    share = geocoded(ed)["share_geocoded"]
    return [f"Only {share:.0%} of attendances could be placed in an LSOA from the free-text "
            "location; tables by place use those only.",
            "The ED sees the assaults whose victims attend that department: those treated "
            "elsewhere, or not at all, are missing."]


def ed_hour_weekday(data: Data, ed: pl.DataFrame) -> Result:
    timed = ed.drop_nulls("occurred_at").with_columns(
        weekday=pl.col("occurred_at").dt.weekday().cast(pl.Int8),
        hour=pl.col("occurred_at").dt.hour().cast(pl.Int8))
    counts = timed.group_by("weekday", "hour").agg(attendances=pl.len())
    grid = pl.DataFrame({"weekday": [d for d in range(1, 8) for _ in range(24)],
                         "hour": list(range(24)) * 7}).cast({"weekday": pl.Int8, "hour": pl.Int8})
    table = grid.join(counts, on=["weekday", "hour"], how="left").with_columns(
        pl.col("attendances").fill_null(0),
        day=pl.col("weekday").replace_strict(dict(enumerate(WEEKDAYS, 1)))).select(
        "weekday", "day", "hour", "attendances")
    meta = data.meta(
        "health-ed-hour-weekday", "ED assault attendances by hour and weekday",
        "Assault attendances by the hour and ISO weekday (1 = Monday) of the assault time "
        "the ED recorded (not the arrival time).",
        parameters={"untimed_attendances": ed.height - timed.height},
        caveats=ed_caveats(ed))
    return Result(table, meta)


def ed_places(data: Data, ed: pl.DataFrame) -> Result:
    counts = ed.filter("in_scope").group_by("lsoa21_code").agg(attendances=pl.len())
    a = data.areas()
    names = data.fetch(a.filter(a.lad_code.isin(data.scope.lad_codes)).select(
        "lsoa21_code", "lsoa_name", "ward_code", "ward_name"))
    table = names.join(data.population("lsoa21_code"), on="lsoa21_code", how="left").join(
        counts, on="lsoa21_code", how="left").with_columns(pl.col("attendances").fill_null(0))
    value, low, high = stats.rate(table["attendances"].to_numpy(),
                                  table["residents"].to_numpy() * years(data), PER)
    table = table.with_columns(
        pl.Series("rate_per_1000_year", value), pl.Series("rate_lower", low),
        pl.Series("rate_upper", high)).sort("attendances", "lsoa21_code",
                                            descending=[True, False])
    meta = data.meta(
        "health-ed-lsoa", "ED assault attendances by place of assault (LSOA)",
        "Geocoded assault attendances by the LSOA of the assault location, with the rate "
        "per 1,000 Census 2021 residents a year (exact Poisson 95% interval). The rate is "
        "by where the assault happened, not where the victim lives.",
        parameters={"per": PER, "years": years(data), **geocoded(ed)},
        caveats=ed_caveats(ed))
    return Result(table, meta)


def years(data: Data) -> float:
    return len(data.scope.months) / 12


def ed_methods(data: Data, ed: pl.DataFrame) -> Result:
    parts = []
    for dimension, column in (("method", "source_category"), ("weapon", "weapon"),
                              ("location type", "location_type")):
        counts = ed.group_by(pl.col(column).fill_null("not recorded").alias("category")).agg(
            attendances=pl.len()).with_columns(dimension=pl.lit(dimension))
        parts.append(counts.sort("attendances", descending=True))
    table = pl.concat(parts).with_columns(
        share=pl.col("attendances") / pl.col("attendances").sum().over("dimension")
    ).select("dimension", "category", "attendances", "share")
    meta = data.meta(
        "health-ed-method", "ED assault attendances by method, weapon and location type",
        "Assault attendances by assault method (as the ED extract categorises it), the "
        "weapon group derived from it, and the location type. Each dimension sums to all "
        "attendances.", parameters={"attendances": ed.height}, caveats=ed_caveats(ed))
    return Result(table, meta)


def ed_age_sex(data: Data, ed: pl.DataFrame) -> Result:
    frame = ed.with_columns(pl.col("age_band").fill_null("unknown"),
                            pl.col("sex").fill_null("unknown"))
    by_sex = frame.group_by("age_band", "sex").agg(attendances=pl.len())
    by_all = frame.group_by("age_band").agg(attendances=pl.len()).with_columns(
        sex=pl.lit("all")).select(by_sex.columns)
    table = pl.concat([by_all, by_sex]).with_columns(
        share=pl.col("attendances") / ed.height,
        under_25=pl.col("age_band").map_elements(band_under_25, pl.Boolean)
    ).sort("age_band", "sex")
    meta = data.meta(
        "health-ed-age-sex", "ED assault attendances by age band and sex",
        "Assault attendances by the victim's age band (as the ED records it) and sex; 'all' "
        "rows sum over sex. 'under_25' marks bands wholly under 25.",
        parameters={"attendances": ed.height}, caveats=ed_caveats(ed))
    return Result(table, meta)


def band_under_25(band: str) -> bool | None:
    """True when an age band like '18-24' lies wholly under 25 (None if unreadable)."""
    bounds = band_bounds(band)
    return None if bounds is None else bounds[1] < 25


def band_bounds(band: str) -> tuple[int, int] | None:
    text = band.strip().replace(" ", "")
    if text.endswith("+") and text[:-1].isdigit():
        return int(text[:-1]), 200
    low, _, high = text.partition("-")
    return (int(low), int(high)) if low.isdigit() and high.isdigit() else None


# --------------------------------------------------------------------- admissions


def hospital_admissions(data: Data) -> Result | None:
    """Admissions for assault by period, cause and age band, over the scope's areas."""
    g = data.table("aggregates")
    code3 = g.icd10.substr(0, 3)
    g = g.filter((g.source == ADMISSIONS) & (code3 >= ICD10_ASSAULT[0])
                 & (code3 <= ICD10_ASSAULT[1]) & (g.period_end >= data.scope.start)
                 & (g.period_start <= last_day(data.scope.end)))
    g = g.filter(in_scope_area(data, g))
    expr = g.group_by("period_start", "period_end", "period_type", "icd10", "category",
                      "age_band").aggregate(
        admissions_known=g.value.sum(), cells=g.count(),
        suppressed_cells=g.suppressed.cast("int64").sum())
    frame = data.fetch(expr, (ADMISSIONS,))
    if not frame.height:
        data.queries, data.sources, data.loads = [], set(), set()
        return None
    low, high = SUPPRESSED_RANGE
    table = frame.with_columns(pl.col("admissions_known").fill_null(0)).with_columns(
        admissions_min=pl.col("admissions_known") + low * pl.col("suppressed_cells"),
        admissions_max=pl.col("admissions_known") + high * pl.col("suppressed_cells")
    ).sort("period_start", "icd10", "age_band")
    meta = data.meta(
        "health-admissions", "Hospital admissions for assault",
        "Admissions for assault (ICD-10 X85 to Y09, X99 sharp object included) from the "
        "hospital aggregates, for areas in the scope, summed by period, cause and age band. "
        "Suppressed cells are counted, not guessed: admissions_known sums published cells, "
        f"admissions_min and admissions_max add {low} and {high} per suppressed cell.",
        parameters={"icd10_range": list(ICD10_ASSAULT), "suppressed_range":
                    list(SUPPRESSED_RANGE)},
        caveats=["Periods are those the hospital data uses (often financial years) and may "
                 "run past the analysis period.",
                 "Counts are admissions (episodes), not people."])
    return Result(table, meta)


def last_day(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def in_scope_area(data: Data, g: ir.Table) -> ir.BooleanValue:
    """Aggregate rows whose area (LSOA, ward, LA or CSP) lies in the scope's areas."""
    a = data.areas()
    a = a.filter(a.lad_code.isin(data.scope.lad_codes))
    lsoas, wards = a.lsoa21_code, a.ward_code
    return ibis.cases(
        (g.area_type.lower().isin(("lsoa", "lsoa21")), g.area_code.isin(lsoas)),
        (g.area_type.lower() == "ward", g.area_code.isin(wards)),
        (g.area_type.lower().isin(("lad", "la", "local authority")),
         g.area_code.isin(data.scope.lad_codes)),
        (g.area_type.lower() == "csp", g.area_code.isin(data.scope.csp_codes)),
        else_=g.lsoa21_code.isin(lsoas))


# ----------------------------------------------------------------- under-reporting


def police_injury(data: Data) -> ir.Table:
    """Police records an ED assault could match: injury violence and robbery in the force
    area (victims for the recorded source; records for police.uk)."""
    if data.scope.proxy:
        e = data.events("police-uk", force=True, all_months=True)
        e = e.filter(e.police_uk_category.lower().replace("-", " ").isin(POLICE_UK_INJURY))
        return e.select("lsoa21_code", "month", t=e.month.cast("timestamp"),
                        sex=ibis.null("string"), age=ibis.null("int64"))
    e = data.events("police-recorded", force=True, all_months=True)
    e = e.filter(e.offence_code.isin(INJURY_CODES) & e.occurred_at.notnull())
    i = data.table("involvements")
    i = i.filter(i.role == "victim").select("event_id", "sex", "age")
    return e.left_join(i, "event_id").select("lsoa21_code", "month", t=e.occurred_at,
                                             sex=i.sex, age=i.age.cast("int64"))


def ed_geocoded(data: Data) -> ir.Table:
    """Geocoded ED attendances in the scope's areas, with age band bounds."""
    e = data.events(ED)
    e = e.filter(e.occurred_at.notnull())
    i = data.table("involvements")
    i = i.filter(i.role == "victim").select("event_id", "sex", "age_band")
    j = e.left_join(i, "event_id")
    low = j.age_band.re_extract(r"^\s*(\d+)", 1).nullif("").cast("int64")
    high = ibis.coalesce(j.age_band.re_extract(r"-\s*(\d+)\s*$", 1).nullif("").cast("int64"),
                         ibis.literal(200))
    return j.select("event_id", "lsoa21_code", t=j.occurred_at, sex=j.sex, low=low, high=high)


def matched_by_shift(data: Data, matching: Matching) -> pl.DataFrame:
    """For each shift (0 = the real match; others shift ED times by whole weeks to measure
    chance matching): ED attendances considered and those with a matching police record."""
    shifts = ibis.memtable({"shift": [0, *chance_shifts(matching)]})
    ed = ed_geocoded(data).cross_join(shifts)
    ts = ed.t.epoch_seconds() + ed["shift"] * WEEK_SECONDS
    ed = ed.mutate(ts=ts, when=ed.t + (ed["shift"] * 7).as_interval("D"))
    start, end = data.scope.start, last_day(data.scope.end)
    ed = ed.filter((ed.when >= start) & (ed.when < end))
    po = police_injury(data)
    po = po.mutate(ps=po.t.epoch_seconds())
    preds = [ed.lsoa21_code == po.lsoa21_code]
    if matching.window == "hours":
        preds += [po.ps >= ed.ts - WINDOW_HOURS * 3600, po.ps <= ed.ts + WINDOW_HOURS * 3600]
    elif matching.window == "week":
        preds.append(po.t.truncate("W") == ed.when.truncate("W"))
    else:
        preds.append(po.month == ed.when.truncate("M").date())
    if matching.person:
        preds += [po.sex == ed.sex, po.age >= ed.low, po.age <= ed.high]
    hits = ed.inner_join(po, preds).select("event_id", "shift").distinct()
    hits = hits.group_by("shift").aggregate(matched=hits.count())
    totals = ed.group_by("shift").aggregate(attendances=ed.event_id.nunique())
    out = totals.left_join(hits, "shift").select(totals.shift, totals.attendances,
                                                 matched=hits.matched.fill_null(0))
    return data.fetch(out, (ED, data.scope.police_source))


def chance_shifts(matching: Matching) -> list[int]:
    """Week shifts that always leave the matching window (5+ weeks always change month)."""
    return [k for k in CHANCE_SHIFTS if matching.window != "month" or abs(k) >= 5]


def under_reporting(data: Data) -> Result:
    """The Cardiff Model gap: geocoded ED assault attendances with no matching police
    record, raw and corrected for chance matches."""
    matchings = (PROXY_MATCHING,) if data.scope.proxy else MATCHINGS
    rows = [gap_row(m, matched_by_shift(data, m)) for m in matchings]
    table = pl.DataFrame(rows)
    meta = data.meta(
        "health-under-reporting", "ED assaults with no police record (Cardiff Model gap)",
        UNDER_REPORTING_METHOD,
        parameters={"injury_offence_codes": list(INJURY_CODES),
                    "police_uk_categories": list(POLICE_UK_INJURY),
                    "window_hours": WINDOW_HOURS, "chance_shifts_weeks": list(CHANCE_SHIFTS),
                    "matchings": {m.name: m.description for m in matchings},
                    "denominator": "ED assault attendances geocoded to an LSOA in the "
                                   "scope's areas, with an assault time, in the period",
                    "confidence": stats.CONFIDENCE},
        caveats=UNDER_REPORTING_CAVEATS + ([PROXY_CAVEAT] if data.scope.proxy else []))
    return Result(table, meta)


def gap_row(matching: Matching, counts: pl.DataFrame) -> dict:
    real = counts.filter(pl.col("shift") == 0)
    n = int(real["attendances"].sum()) if real.height else 0
    m = int(real["matched"].sum()) if real.height else 0
    shifted = counts.filter(pl.col("shift") != 0)
    chance = (shifted["matched"].sum() / shifted["attendances"].sum()
              if shifted["attendances"].sum() else None)
    low, high = wilson(m, n)
    gap = (n - m) / n if n else None

    def corrected(p: float | None) -> float | None:
        if p is None or chance is None or chance >= 1:
            return None
        return 1 - min(1.0, max(0.0, (p - chance) / (1 - chance)))

    share = m / n if n else None
    return {"matching": matching.name, "primary": matching.primary, "attendances": n,
            "matched": m, "unmatched": n - m, "gap": gap,
            "gap_lower": None if high is None else 1 - high,
            "gap_upper": None if low is None else 1 - low,
            "chance_match_rate": chance, "gap_adjusted": corrected(share),
            "gap_adjusted_lower": corrected(high), "gap_adjusted_upper": corrected(low)}


UNDER_REPORTING_METHOD = (
    "Cardiff Model under-reporting gap. Denominator: ED assault attendances in the period "
    "whose free-text location was geocoded to an LSOA in the scope's areas. An attendance is "
    "matched when there is a police record of the kind each row names (injury violence: Home "
    "Office codes " + ", ".join(INJURY_CODES) + ", i.e. homicide, attempted murder, wounding "
    "and GBH, assault with injury, and robbery; assaults without injury are left out to keep "
    "chance matches down). 'gap' is the unmatched share with a Wilson 95% interval. Busy "
    "areas have other assaults in the same place and time, so some attendances match a "
    "different assault by chance: the chance-match rate is measured by shifting each "
    "attendance's time by whole weeks (" + ", ".join(map(str, CHANCE_SHIFTS)) + ") and "
    "matching again (the same place, the same time of week and season, but not the same "
    "assault). 'gap_adjusted' removes it: reported share = (matched share - chance rate) / "
    "(1 - chance rate), gap = 1 - reported share; its interval transforms the Wilson "
    "interval's ends the same way (treating the chance rate as known). The row marked "
    "primary is the headline figure.")
UNDER_REPORTING_CAVEATS = [
    "The gap assumes an attendance that was reported has its police record in the same LSOA "
    "(and, for the primary matching, within 24 hours with a victim of the same sex and age "
    "band); a mis-geocoded ED location or a police record placed elsewhere counts as "
    "unreported, so the gap is an upper bound where geocoding is poor.",
    "Only geocoded attendances are used; if the ungeocoded ones differ (say more domestic "
    "assaults at home addresses), the gap for all attendances differs too.",
    "Area-and-week matching without victim details matches many attendances by chance in "
    "busy areas; its raw gap is far too small and only the chance-adjusted figure is usable.",
    "Matching is on place and time, not on the person: it says whether the police recorded "
    "such an assault, not whether this victim reported it.",
]
PROXY_CAVEAT = ("No police-recorded crime extract is loaded, so attendances are matched to "
                "data.police.uk records by LSOA and month only: almost every attendance "
                "matches some record by chance, and the adjusted gap is very uncertain (its "
                "interval ignores the uncertainty in the chance rate). Load the force's "
                "recorded-crime extract for a usable figure.")
