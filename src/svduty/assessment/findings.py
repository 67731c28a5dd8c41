"""Key findings of the Strategic Needs Assessment: plain sentences drawn from the Results.

Each :class:`Finding` is one sentence (or two) an analyst can read out, with the figures it
quotes (``figures``, taken straight from the Result's table) and the name of the Result it came
from (``result``), so every number in the report can be traced. A finding is only written
where its Result has the rows it needs; where the data cannot answer the question (say
data.police.uk carries no weapon flag) a data-gap sentence says so instead.

Figures that are counts of offences or people have keys ending ``_count``, ``people``,
``pupils`` or ``appeared`` so the published edition can withhold findings that quote small
numbers. Changes are called statistically significant only where the Result's own test says
so; associations are worded as associations, never as causes.

``section_findings(results, section)`` gives the findings of one section (``summary``,
``problem-profile``, ``core-measures``, ``weapons``, ``places``, ``times``, ``people``,
``health``, ``risk``, ``comparison``, ``quality``, ``recommendations`` or ``all``);
``key_findings`` the headline ones; ``recommendations`` drafts for analysts to edit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from svduty.analysis.result import Result

Results = dict[str, Result]

WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve")
SOURCE_LABELS = {
    "police-recorded": "police recorded crime", "police-uk": "data.police.uk",
    "ed-istv": "emergency department assault attendance", "hospital-admissions":
    "hospital admission", "ambulance": "ambulance call-out", "school": "school",
    "youth-justice": "youth justice", "probation": "probation", "fire": "fire and rescue"}
WEAPON_WORDS = ("knife", "weapon", "firearm", "sharp")


@dataclass(frozen=True)
class Finding:
    """One key finding: the sentence, its section, the Result it cites and its figures."""

    key: str  # stable id, e.g. "sv-change"; narrative overrides use "finding:<key>"
    section: str  # the report section it belongs to (its home section in key_findings)
    text: str
    result: str  # the cited Result's name (kept in the manifest and the methods appendix)
    figures: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the cited Result's title in words, as the report cites it


# -- numbers for people -------------------------------------------------------------------

def words(n: int, capital: bool = False) -> str:
    """Small counts as words ("four"), larger ones with thousands separators."""
    text = WORDS[n] if 0 <= n < len(WORDS) else f"{n:,}"
    return text[:1].upper() + text[1:] if capital else text


def pct(share: float, dp: int | None = None) -> str:
    """A share (0.123) as a percentage: whole numbers from 10%, one decimal below."""
    value = share * 100
    if dp is None:
        dp = 0 if abs(value) >= 9.95 else 1
    return f"{value:.{dp}f}%"


def pct_ci(share: float, lower: float, upper: float) -> str:
    """A share and its 95% interval to the same precision: "9.7%, 95% CI 7.9% to 11.9%"
    (one decimal where whole numbers would hide the interval)."""
    whole = [round(v * 100) for v in (share, lower, upper)]
    dp = 0 if abs(share * 100) >= 9.95 and len(set(whole)) == 3 else 1
    return f"{pct(share, dp)}, 95% CI {pct(lower, dp)} to {pct(upper, dp)}"


def ci(lower: float, upper: float, dp: int = 2) -> str:
    return f"95% CI {lower:.{dp}f} to {upper:.{dp}f}"


def plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")


def listing(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- reading Results ----------------------------------------------------------------------

def table(results: Results, name: str) -> pl.DataFrame | None:
    """The Result's table, or None where it is missing or empty."""
    result = results.get(name)
    if result is None or result.table.is_empty():
        return None
    return result.table


def first(frame: pl.DataFrame | None, where: pl.Expr | None = None) -> dict[str, Any] | None:
    if frame is None:
        return None
    if where is not None:
        frame = frame.filter(where)
    return frame.row(0, named=True) if frame.height else None


def present(value: Any) -> bool:
    return value is not None and value == value  # not null, not NaN


def police_recorded(results: Results) -> bool:
    """Whether serious violence was counted from the force's recorded-crime extract."""
    return any("police-recorded" in r.meta.sources for r in results.values())


def cite(results: Results, *names: str) -> str | None:
    """The first of `names` that is a Result (for data-gap sentences)."""
    return next((n for n in names if n in results), None)


# -- problem profile and weapons ------------------------------------------------------------

def change_text(subject: str, row: dict[str, Any]) -> str:
    """'X rose 12% in the latest 12 months (…; rate ratio …; a statistically significant
    change).' or '… showed no statistically significant change …'."""
    months = row["months_compared"]
    window = ("in the latest 12 months" if months == 12 else
              f"in the latest {months} months that have the same months a year earlier")
    counts = (f"{row['count_after']:,} {plural(row['count_after'], 'offence')} against "
              f"{row['count_before']:,}")
    ratio = f"rate ratio {row['ratio']:.2f}, {ci(row['ratio_lower'], row['ratio_upper'])}"
    if row["significant"]:
        verb = "rose" if row["ratio"] > 1 else "fell"
        return (f"{subject} {verb} {pct(abs(row['percent_change']) / 100)} {window} "
                f"({counts}; {ratio}; a statistically significant change).")
    signed = f"{row['percent_change']:+.0f}%" if abs(row["percent_change"]) >= 9.95 else \
        f"{row['percent_change']:+.1f}%"
    return (f"{subject} showed no statistically significant change {window} "
            f"({counts}, {signed}; {ratio}).")


def change_figures(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("count_after", "count_before", "percent_change", "ratio", "ratio_lower",
            "ratio_upper", "p_value", "significant", "months_compared")
    return {k: row[k] for k in keys}


def change_rows(results: Results) -> pl.DataFrame | None:
    frame = table(results, "trend-change")
    if frame is None:
        return None
    level = "partnership" if (frame["level"] == "partnership").any() else frame["level"][0]
    return frame.filter(pl.col("level") == level)


def is_weapon(category: str) -> bool:
    return any(w in category.lower() for w in WEAPON_WORDS)


def problem_profile(results: Results) -> list[Finding]:
    """Overall change, then each category that changed significantly (weapons aside)."""
    frame = change_rows(results)
    if frame is None:
        return []
    out = []
    overall = first(frame, pl.col("sv_category") == "All serious violence")
    if overall:
        out.append(Finding("sv-change", "problem-profile",
                           change_text("Serious violence", overall), "trend-change",
                           change_figures(overall)))
    for row in frame.filter(pl.col("significant") & (pl.col("sv_category")
                                                     != "All serious violence")).iter_rows(
            named=True):
        if not is_weapon(row["sv_category"]):
            out.append(Finding(f"change-{slug(row['sv_category'])}", "problem-profile",
                               change_text(row["sv_category"], row), "trend-change",
                               change_figures(row)))
    return out


def weapons(results: Results) -> list[Finding]:
    """Change in each weapon category (knife, possession, firearm), significant or not."""
    frame = change_rows(results)
    if frame is None:
        return []
    return [Finding(f"change-{slug(row['sv_category'])}", "weapons",
                    change_text(row["sv_category"], row), "trend-change", change_figures(row))
            for row in frame.iter_rows(named=True) if is_weapon(row["sv_category"])]


# -- Home Office core measures ------------------------------------------------------------

KNIFE = "knife or sharp-instrument enabled serious violence"
HOMICIDE = "non-domestic homicide"
KNIFE_HOMICIDE = "non-domestic homicide involving a knife or sharp instrument"
ADMISSIONS = "hospital admissions for assault by knife or sharp object (ICD-10 X99)"


def measure_text(subject: str, row: dict[str, Any]) -> str:
    text = (f"{subject}: {row['count']:,} {plural(row['count'], 'offence')} in the latest "
            f"12 months ({row['rate_per_100k']:.1f} per 100,000 residents, "
            f"{ci(row['rate_lower'], row['rate_upper'], 1)})")
    if not present(row["change_ratio"]):
        return text + "."
    ratio = (f"rate ratio {row['change_ratio']:.2f}, "
             f"{ci(row['change_lower'], row['change_upper'])}")
    if row["significant"]:
        way = "up" if row["change_ratio"] > 1 else "down"
        return (f"{text}, {way} {pct(abs(row['change_ratio'] - 1))} on the previous 12 months "
                f"({ratio}; a statistically significant change).")
    return f"{text}: no statistically significant change on the previous 12 months ({ratio})."


def no_age_note(note: Any) -> str:
    match = re.match(r"(\d+) event", note or "")
    if not match:
        return ""
    n = int(match.group(1))
    return (f" A further {n:,} {plural(n, 'offence')} with no recorded victim age "
            f"{plural(n, 'is', 'are')} not counted here.")


def knife_findings(frame: pl.DataFrame) -> list[Finding]:
    out = []
    for age, key, subject in (
            ("all ages", "knife-all-ages", "Knife or sharp-instrument enabled serious violence"),
            ("under 25", "knife-under-25",
             "Knife or sharp-instrument enabled serious violence against under-25s")):
        row = first(frame, (pl.col("measure") == KNIFE) & (pl.col("age_group") == age)
                    & (pl.col("period") == "latest 12 months") & pl.col("available"))
        if not row or not present(row["count"]) or not present(row["rate_per_100k"]):
            continue
        figures = {k: row[k] for k in ("count", "rate_per_100k", "rate_lower", "rate_upper",
                                       "change_ratio", "change_lower", "change_upper",
                                       "p_value", "significant")}
        text = measure_text(subject, row) + (no_age_note(row["note"]) if age != "all ages"
                                             else "")
        out.append(Finding(key, "core-measures", text, "measures-core", figures))
    return out


def homicide_finding(frame: pl.DataFrame) -> Finding | None:
    latest = (pl.col("age_group") == "all ages") & (pl.col("period") == "latest 12 months") \
        & pl.col("available")
    row = first(frame, latest & (pl.col("measure") == HOMICIDE))
    knife = first(frame, latest & (pl.col("measure") == KNIFE_HOMICIDE))
    if not row or not present(row["count"]):
        return None
    n = row["count"]
    text = (f"There {plural(n, 'was', 'were')} {words(n)} non-domestic "
            f"{plural(n, 'homicide')} in the latest 12 months")
    figures = {"homicide_count": n}
    if knife and present(knife["count"]) and n:
        text += f", {words(knife['count'])} involving a knife or sharp instrument"
        figures["knife_homicide_count"] = knife["count"]
    return Finding("homicide", "core-measures", text + ".", "measures-core", figures)


def admissions_finding(frame: pl.DataFrame) -> Finding:
    end = first(frame, pl.col("period") == "latest 12 months")
    rows = frame.filter((pl.col("measure") == ADMISSIONS) & (pl.col("age_group") == "all ages")
                        & pl.col("count").is_not_null()).sort("period_start")
    within = rows.filter(pl.col("period_end") <= end["period_end"]) if end else rows
    rows = within if within.height else rows
    subject = "Hospital admissions for assault by a knife or sharp object (ICD-10 X99)"
    if not rows.height:
        return Finding("gap-admissions", "core-measures",
                       f"{subject} cannot be reported: no admissions data cover the period.",
                       "measures-core")
    row = rows.row(-1, named=True)
    figures = {"admissions_count": row["count"], "suppressed_cells": row["suppressed_cells"],
               "period": row["period"]}
    if row["suppressed_cells"]:
        text = (f"{subject}: at least {row['count']:,} in {row['period']} "
                f"({row['suppressed_cells']} small cells are suppressed in the source, so this "
                "is a lower bound and no rate is given).")
    else:
        text = f"{subject}: {row['count']:,} in {row['period']}."
    return Finding("admissions-knife", "core-measures", text, "measures-core", figures)


def measures_gap(frame: pl.DataFrame) -> Finding | None:
    """One sentence for the core measures these data cannot give."""
    gone = frame.filter(~pl.col("available")).unique("measure", maintain_order=True)
    if not gone.height:
        return None
    names = gone["measure"].to_list()
    reason = (gone["note"][0] or "").removeprefix("unavailable: ")
    text = (f"{sentence(listing(names))} cannot be measured from the data loaded"
            + (f": {reason}." if reason else "."))
    return Finding("gap-core-measures", "core-measures", text, "measures-core",
                   {"measures": names})


def core_measures(results: Results) -> list[Finding]:
    frame = table(results, "measures-core")
    if frame is None:
        return []
    out = knife_findings(frame)
    out += [f for f in (homicide_finding(frame), admissions_finding(frame),
                        measures_gap(frame)) if f]
    return out


# -- places -------------------------------------------------------------------------------

def ward_order(frame: pl.DataFrame) -> list[str]:
    """Wards by their number of LSOAs in `frame`, most first."""
    wards = frame.group_by("ward_name").len().sort(["len", "ward_name"],
                                                   descending=[True, False])
    return wards["ward_name"].to_list()


def ward_counts(frame: pl.DataFrame) -> str:
    wards = (frame.group_by("ward_name").len().sort(["len", "ward_name"],
                                                    descending=[True, False]))
    parts = [f"{w} ({n})" for w, n in wards.iter_rows()]
    return f"in {listing(parts)} {plural(wards.height, 'ward')}"


def hotspots(results: Results) -> Finding | None:
    frame = table(results, "places-hotspot-classes")
    if frame is None:
        return None
    parts, figures = [], {}
    for kind in ("persistent", "emerging", "former"):
        rows = frame.filter(pl.col("category") == f"{kind} hot spot")
        figures[f"{kind}_lsoas"] = rows.height
        figures[f"{kind}_codes"] = rows["lsoa21_code"].to_list()
        figures[f"{kind}_wards"] = ward_order(rows)
        if rows.height:
            noun = f" {plural(rows.height, 'LSOA')}" if not parts else ""
            where = f", {ward_counts(rows)}" if kind != "former" else ""
            parts.append(f"{words(rows.height)}{noun} {plural(rows.height, 'is', 'are')} "
                         f"{kind} hot {plural(rows.height, 'spot')}{where}")
    text = (sentence("; ".join(parts)) + "." if parts else
            "No LSOA was a persistent, emerging or former hot spot of serious violence.")
    return Finding("hotspots", "places", text, "places-hotspot-classes", figures)


def concentration(results: Results) -> Finding | None:
    frame = table(results, "places-concentration")
    top = first(frame, (pl.col("unit") == "LSOA") & (pl.col("measure") == "top 5%"))
    gini = first(frame, (pl.col("unit") == "LSOA") & (pl.col("measure") == "gini"))
    if not top or not gini or not gini["events"]:
        return None
    text = (f"{pct(top['value'])} of serious violence happened in 5% of LSOAs "
            f"({top['events']:,} of {gini['events']:,} offences in {top['units']} of "
            f"{gini['units']} LSOAs; Gini coefficient {gini['value']:.2f}).")
    figures = {"share": top["value"], "top_count": top["events"], "total_count": gini["events"],
               "top_lsoas": top["units"], "lsoas": gini["units"], "gini": gini["value"]}
    return Finding("concentration", "places", text, "places-concentration", figures)


def top_ward(results: Results) -> Finding | None:
    frame = table(results, "places-ward-rates")
    row = first(frame, pl.col("rank_rate") == 1)
    most = first(frame, pl.col("rank_events") == 1)
    if not row or not most:
        return None
    text = (f"{row['ward_name']} ward had the highest rate of serious violence: "
            f"{row['rate_per_1000']:.1f} per 1,000 residents over the period "
            f"({ci(row['rate_lower'], row['rate_upper'], 1)}), with {row['events']:,} offences "
            f"({pct(row['share_of_events'])} of the total)")
    figures = {"ward": row["ward_name"], "rate_per_1000": row["rate_per_1000"],
               "rate_lower": row["rate_lower"], "rate_upper": row["rate_upper"],
               "ward_count": row["events"], "share": row["share_of_events"]}
    if most["ward_code"] != row["ward_code"]:
        text += f"; {most['ward_name']} had the most offences ({most['events']:,})"
        figures |= {"most_ward": most["ward_name"], "most_ward_count": most["events"]}
    return Finding("top-ward", "places", text + ".", "places-ward-rates", figures)


def near_repeats(results: Results) -> Finding | None:
    frame = table(results, "near-repeat-knox")
    row = first(frame, (pl.col("space_from_m") == 0) & (pl.col("time_from_days") == 0))
    if not row:
        return None
    close = f"within {row['space_to_m']:.0f} m and {row['time_to_days']} days of each other"
    if row["p_value"] < 0.05 and row["knox_ratio"] > 1:
        text = (f"Serious violence clusters in space and time: pairs of offences {close} were "
                f"{row['knox_ratio']:.2f} times as common as chance would give (Knox test, "
                f"p = {row['p_value']:.3f}); an association, not evidence that one led to "
                "another.")
    else:
        text = (f"There is no sign of near repeats: pairs of offences {close} were no more "
                f"common than chance would give (Knox ratio {row['knox_ratio']:.2f}, "
                f"p = {row['p_value']:.2f}).")
    figures = {k: row[k] for k in ("observed", "expected", "knox_ratio", "p_value")}
    return Finding("near-repeats", "places", text, "near-repeat-knox", figures)


def places(results: Results) -> list[Finding]:
    return [f for f in (hotspots(results), concentration(results), top_ward(results),
                        near_repeats(results)) if f]


# -- times --------------------------------------------------------------------------------

DAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


def hour_span(hour: int) -> str:
    return f"{hour:02d}:00 to {hour:02d}:59"


def peak_times(results: Results) -> Finding | None:
    frame = table(results, "times-hour-weekday")
    if frame is None or not frame["count"].sum():
        return None
    total = frame["count"].sum()
    day = frame.group_by("weekday").agg(pl.col("count").sum()).sort("count").row(-1)
    hour = frame.group_by("hour").agg(pl.col("count").sum()).sort("count").row(-1)
    cell = frame.sort("count").row(-1, named=True)
    text = (f"Serious violence was most frequent on {DAYS[day[0] - 1]} ({pct(day[1] / total)} "
            f"of offences, against {pct(1 / 7)} if spread evenly) and "
            f"in the hour {hour_span(hour[0])} ({pct(hour[1] / total)}); the busiest hour of "
            f"the week was {cell['weekday_name']} {hour_span(cell['hour'])} "
            f"({cell['count']:,} offences).")
    if 0 in (hour[0], cell["hour"]):
        text += " Offences with an unknown time are often recorded at midnight."
    figures = {"peak_weekday": DAYS[day[0] - 1], "weekday_count": day[1],
               "peak_hour": hour[0], "hour_count": hour[1], "total_count": total,
               "cell_weekday": cell["weekday_name"], "cell_hour": cell["hour"],
               "cell_count": cell["count"]}
    return Finding("peak-times", "times", text, "times-hour-weekday", figures)


def night_time_economy(results: Results) -> Finding | None:
    frame = table(results, "times-night-time-economy")
    row = first(frame, (pl.col("measure") == "in night-time economy hours")
                & (pl.col("events") == "all serious violence"))
    if not row or not row["total"]:
        return None
    even = row["share_if_even"]
    compare = ("more than" if row["lower"] > even else "less than" if row["upper"] < even
               else "about what")
    text = (f"{pct(row['share'])} of serious violence ({row['count']:,} of {row['total']:,} "
            f"offences; {pct_ci(row['share'], row['lower'], row['upper']).split(', ')[1]}) "
            "happened in night-time economy "
            f"hours (Friday and Saturday 20:00 to 03:59): {compare} an even spread across the "
            f"week would give ({pct(even)}).")
    figures = {k: row[k] for k in ("count", "share", "lower", "upper", "share_if_even")}
    figures["total_count"] = row["total"]
    return Finding("night-time-economy", "times", text, "times-night-time-economy", figures)


def season(results: Results) -> Finding | None:
    frame = table(results, "times-season")
    if frame is None:
        return None
    top = frame.sort("seasonal_index").row(-1, named=True)
    low = frame.sort("seasonal_index").row(0, named=True)
    index = (f"seasonal index {top['seasonal_index']:.2f}, "
             f"{ci(top['index_lower'], top['index_upper'])}")
    if top["index_lower"] > 1:
        text = (f"Serious violence peaked in {top['season']}: {pct(top['seasonal_index'] - 1)} "
                f"above the average month ({index})")
        if low["index_upper"] < 1:
            text += (f", and was lowest in {low['season']} ({pct(1 - low['seasonal_index'])} "
                     "below)")
    else:
        text = ("Serious violence showed no clear seasonal peak: no season was significantly "
                f"above the average month (highest {top['season']}, {index})")
    months = int(frame["months_covered"].sum())
    if months < 24:
        text += (f". Only {months} months are covered, so this mixes season with change over "
                 "time")
    figures = {"season": top["season"], "seasonal_index": top["seasonal_index"],
               "index_lower": top["index_lower"], "index_upper": top["index_upper"],
               "months_covered": months}
    return Finding("season", "times", text + ".", "times-season", figures)


def school_term(results: Results) -> Finding | None:
    frame = table(results, "times-school-term")
    row = first(frame, (pl.col("group") == "all serious violence")
                & (pl.col("days") == "Monday to Friday"))
    if not row:
        return None
    rates = (f"{row['term_per_day']:.1f} against {row['holiday_per_day']:.1f} offences a day; "
             f"rate ratio {row['rate_ratio']:.2f}, {ci(row['lower'], row['upper'])}")
    if row["p_value"] < 0.05:
        way = "higher" if row["rate_ratio"] > 1 else "lower"
        text = (f"Serious violence was {pct(abs(row['rate_ratio'] - 1))} {way} on school-term "
                f"weekdays than on weekdays in the school holidays ({rates}; statistically "
                "significant); an association with the calendar, not a cause.")
    else:
        text = ("Serious violence on school-term weekdays did not differ significantly from "
                f"weekdays in the school holidays ({rates}).")
    figures = {k: row[k] for k in ("term_per_day", "holiday_per_day", "rate_ratio", "lower",
                                   "upper", "p_value")}
    return Finding("school-term", "times", text, "times-school-term", figures)


def times(results: Results) -> list[Finding]:
    out = [f for f in (peak_times(results), night_time_economy(results), season(results),
                       school_term(results)) if f]
    name = cite(results, "times-season", "times-month-of-year", "trend-monthly")
    if table(results, "times-hour-weekday") is None and not police_recorded(results) and name:
        out.insert(0, Finding("gap-times", "times", "Times of day and days of the week cannot "
                              "be shown: data.police.uk gives the month of each crime only.",
                              name))
    return out


# -- people -------------------------------------------------------------------------------

def under_25(results: Results) -> Finding | None:
    frame = table(results, "people-under-25")
    victim = first(frame, (pl.col("role") == "victim") & (pl.col("group") == "under 25"))
    older = first(frame, (pl.col("role") == "victim") & (pl.col("group") == "25 and over"))
    suspect = first(frame, (pl.col("role") == "suspect") & (pl.col("group") == "under 25"))
    if not victim or not older or not suspect:
        return None
    text = (f"Under-25s were {pct(victim['share_of_known_age'])} of victims where the age was "
            f"recorded ({victim['people']:,} different people) and "
            f"{pct(suspect['share_of_known_age'])} of suspects ({suspect['people']:,} people); "
            "the victimisation rate of under-25s was "
            f"{victim['rate_per_1000_year']:.1f} per 1,000 residents a year "
            f"({ci(victim['rate_lower'], victim['rate_upper'], 1)}), against "
            f"{older['rate_per_1000_year']:.1f} for those aged 25 and over.")
    figures = {"victim_share": victim["share_of_known_age"], "victim_people": victim["people"],
               "suspect_share": suspect["share_of_known_age"],
               "suspect_people": suspect["people"],
               "victim_rate": victim["rate_per_1000_year"],
               "older_victim_rate": older["rate_per_1000_year"]}
    return Finding("under-25", "people", text, "people-under-25", figures)


def repeat_victims(results: Results) -> Finding | None:
    frame = table(results, "people-repeat")
    if frame is None:
        return None
    victims = frame.filter(pl.col("role") == "victim")
    repeat = victims.filter(pl.col("repeat"))
    if not victims.height or not repeat.height:
        return None
    people, total = int(repeat["people"].sum()), int(victims["people"].sum())
    share_inv = float(repeat["share_of_involvements"].sum())
    text = (f"{people:,} {plural(people, 'victim')} ({pct(people / total)} of victims) "
            f"{plural(people, 'was', 'were')} recorded as a victim more than once, accounting "
            f"for {pct(share_inv)} of victim involvements.")
    figures = {"repeat_people": people, "victim_people": total, "share_of_involvements":
               share_inv}
    return Finding("repeat-victims", "people", text, "people-repeat", figures)


def cohort(results: Results) -> Finding | None:
    frame = table(results, "people-cohort")
    violent = pl.col("cohort") == "suspended or excluded for violence"
    row = first(frame, violent & (pl.col("outcome") == "youth justice"))
    either = first(frame, violent & (pl.col("outcome")
                                     == "youth justice or ED assault attendance"))
    if not row or not row["pupils"]:
        return None
    text = (f"{row['later_appeared']:,} of {row['pupils']:,} pupils suspended or excluded for "
            f"violence ({pct_ci(row['share'], row['share_lower'], row['share_upper'])}) later "
            "appeared in youth justice records")
    if present(row["median_days"]):
        text += f", a median of {row['median_days']:.0f} days later"
    figures = {"appeared": row["later_appeared"], "pupils": row["pupils"],
               "share": row["share"], "median_days": row["median_days"]}
    if either:
        text += (f"; {either['later_appeared']:,} ({pct(either['share'])}) appeared in youth "
                 "justice or as an ED assault attendance")
        figures["either_appeared"] = either["later_appeared"]
    return Finding("cohort", "people", text + ".", "people-cohort", figures)


def victim_suspect(results: Results) -> Finding | None:
    row = first(table(results, "people-victim-suspect"),
                (pl.col("ages") == "all ages") & (pl.col("group") == "victim and suspect"))
    if not row or not row["people"]:
        return None
    text = (f"{row['people']:,} {plural(row['people'], 'person', 'people')} "
            f"({pct(row['share_of_people'])} of those involved) "
            f"{plural(row['people'], 'was', 'were')} recorded both as a victim and as a "
            "suspect; an association in the records, not a statement about any one incident.")
    return Finding("victim-suspect", "people", text, "people-victim-suspect",
                   {"people": row["people"], "share": row["share_of_people"]})


def people(results: Results) -> list[Finding]:
    out = [f for f in (under_25(results), repeat_victims(results), victim_suspect(results),
                       cohort(results)) if f]
    name = cite(results, "quality-gaps", "measures-core")
    if not out and not police_recorded(results) and name:
        out.append(Finding("gap-people", "people", "Victims and suspects cannot be described: "
                           "data.police.uk records carry no people or ages. Loading the force's "
                           "recorded-crime extract would allow it.", name))
    return out


# -- health -------------------------------------------------------------------------------

def cardiff_gap(results: Results) -> Finding | None:
    row = first(table(results, "health-under-reporting"), pl.col("primary"))
    if not row or not row["attendances"]:
        return None
    gap = pct_ci(row["gap_adjusted"], row["gap_adjusted_lower"], row["gap_adjusted_upper"])
    gap = gap.replace(", ", " (", 1) + ")"
    text = (f"About {gap} of ED assault attendances had no matching police record, after "
            f"allowing for chance matches ({row['unmatched']:,} of {row['attendances']:,} geocoded "
            "attendances had no police record of injury violence or robbery in the same LSOA "
            "within 24 hours).")
    figures = {"gap": row["gap_adjusted"], "gap_lower": row["gap_adjusted_lower"],
               "gap_upper": row["gap_adjusted_upper"], "unmatched_count": row["unmatched"],
               "attendances_count": row["attendances"], "raw_gap": row["gap"]}
    return Finding("cardiff-gap", "health", text, "health-under-reporting", figures)


def ed_volume(results: Results) -> Finding | None:
    frame = table(results, "health-ed-monthly")
    if frame is None or not frame["attendances"].sum():
        return None
    total, months = int(frame["attendances"].sum()), frame.height
    text = (f"The emergency department recorded {total:,} assault attendances over "
            f"{months} months (about {total / months:,.0f} a month).")
    return Finding("ed-attendances", "health", text, "health-ed-monthly",
                   {"attendances_count": total, "months": months})


def health(results: Results) -> list[Finding]:
    out = [f for f in (ed_volume(results), cardiff_gap(results)) if f]
    gap = first(table(results, "quality-gaps"), pl.col("source") == "ed-istv")
    if not out and gap:
        out.append(Finding("gap-health", "health", gap["gap"], "quality-gaps"))
    return out


# -- risk ---------------------------------------------------------------------------------

def label(text: str) -> str:
    """An indicator's label inside a sentence: "income deprivation", "the Index of Multiple
    Deprivation" (proper names keep their capitals)."""
    text = text.removesuffix(" (%)")
    if any(w[:1].isupper() for w in text.split()[1:]):
        return f"the {text}"
    return text[:1].lower() + text[1:]


def risk_association(results: Results) -> Finding | None:
    frame = table(results, "risk-correlation")
    if frame is None:
        return None
    found = frame.filter(~pl.col("circular") & (pl.col("p_value") < 0.05))
    if not found.height:
        return Finding("risk-association", "risk", "No area indicator was significantly "
                       "associated with rates of serious violence across LSOAs.",
                       "risk-correlation", {})
    row = found.sort(pl.col("spearman_rho").abs()).row(-1, named=True)
    way = "higher" if row["spearman_rho"] > 0 else "lower"
    text = (f"LSOAs scoring higher on {label(row['label'])} had {way} rates of "
            f"serious violence (Spearman's rho {row['spearman_rho']:.2f}, "
            f"{ci(row['ci_lower'], row['ci_upper'])}; {row['lsoas']} LSOAs): an association "
            "between areas, not evidence of cause.")
    others = found.height - 1
    if others:
        text += (f" {words(others, True)} other {plural(others, 'indicator')} "
                 f"{plural(others, 'was', 'were')} also significantly associated.")
    figures = {"indicator": row["indicator"], "label": label(row["label"]),
               "rho": row["spearman_rho"], "rho_lower": row["ci_lower"],
               "rho_upper": row["ci_upper"], "lsoas": row["lsoas"], "other_indicators": others}
    return Finding("risk-association", "risk", text, "risk-correlation", figures)


def risk_model(results: Results, indicator: str) -> Finding | None:
    row = first(table(results, "risk-models"),
                (pl.col("indicator") == indicator) & pl.col("chosen"))
    if not row or row["p_value"] >= 0.05:
        return None
    way = "higher" if row["irr"] > 1 else "lower"
    text = (f"In a {row['model']} count model, rates were {pct(abs(row['irr'] - 1))} {way} "
            f"for each {row['unit'].removeprefix('one ')} on {label(row['label'])} "
            "(incidence rate ratio "
            f"{row['irr']:.2f}, {ci(row['irr_lower'], row['irr_upper'])}); again an "
            "association, not a cause.")
    figures = {k: row[k] for k in ("indicator", "model", "irr", "irr_lower", "irr_upper",
                                   "p_value")}
    return Finding("risk-model", "risk", text, "risk-models", figures)


def risk(results: Results) -> list[Finding]:
    found = risk_association(results)
    if not found:
        return []
    model = risk_model(results, found.figures["indicator"]) if found.figures else None
    return [f for f in (found, model) if f]


# -- comparison ---------------------------------------------------------------------------

def comparison(results: Results) -> list[Finding]:
    frame = table(results, "comparison-force")
    if frame is None:
        return []
    rows = frame.filter(pl.col("in_scope") & (pl.col("category") == "All serious violence"))
    level = "csp" if (rows["level"] == "csp").any() else "la"
    force = first(frame, pl.col("level") == "pfa")
    out = []
    for row in rows.filter(pl.col("level") == level).iter_rows(named=True):
        out.append(compare_area(row, force["name"] if force else "the force area"))
    return out


def compare_area(row: dict[str, Any], force: str) -> Finding:
    per_year = row["force_rate_per_1000"] * 12 / row["months_with_data"]
    rates = (f"{row['rate_per_1000_per_year']:.1f} offences per 1,000 residents a year "
             f"against {per_year:.1f} across {force}")
    test = f"rate ratio {row['rr_vs_rest']:.2f}, {ci(row['rr_lower'], row['rr_upper'])}"
    if row["significant"]:
        way = "higher" if row["rr_vs_rest"] > 1 else "lower"
        text = (f"{row['name']} had a significantly {way} rate of serious violence than the "
                f"rest of the force area ({rates}; {test})")
    else:
        text = (f"{row['name']}'s rate of serious violence did not differ significantly from "
                f"the rest of the force area ({rates}; {test})")
    unit = "CSPs" if row["level"] == "csp" else "local authorities"
    text += f", ranking {row['rank']} of {row['areas_ranked']} {unit}"
    if row["proxy"]:
        text += " (counted from data.police.uk categories)"
    figures = {k: row[k] for k in ("name", "count", "rate_per_1000_per_year", "rr_vs_rest",
                                   "rr_lower", "rr_upper", "significant", "rank",
                                   "areas_ranked")}
    figures["force_rate_per_1000_per_year"] = per_year
    return Finding(f"comparison-{row['code']}", "comparison", text + ".", "comparison-force",
                   figures)


# -- data quality -------------------------------------------------------------------------

def data_gaps(results: Results) -> list[Finding]:
    frame = table(results, "quality-gaps")
    if frame is None:
        return []
    out = [gaps_summary(frame)]
    for i, row in enumerate(frame.iter_rows(named=True)):
        out.append(Finding(f"gap-{slug(row['source'] or 'reader')}-{i}", "quality",
                           row["gap"], "quality-gaps", {"source": row["source"],
                                                        "kind": row["kind"]}))
    return out


def gaps_summary(frame: pl.DataFrame) -> Finding:
    """One sentence on every gap: sources not loaded, months missing, data with no reader."""
    def of(kind: str) -> list[str]:
        return frame.filter(pl.col("kind") == kind)["source"].to_list()

    missing, months, readers = of("not loaded"), of("months missing"), of("no reader")
    parts = []
    if missing:
        parts.append(f"{words(len(missing))} of the data sources the Duty asks for "
                     f"{plural(len(missing), 'is', 'are')} not loaded "
                     f"({listing([SOURCE_LABELS.get(s, s) for s in missing])} data)")
    if months:
        parts.append(f"{listing([SOURCE_LABELS.get(s, s) for s in months])} records have "
                     "missing months")
    if readers:
        parts.append(f"{words(len(readers))} other kinds of data the Duty asks for cannot be "
                     "loaded yet")
    text = sentence("; ".join(parts)) + "." if parts else "No gaps in the data were found."
    if "police-recorded" in missing:
        text += (" Without the force's recorded-crime extract, serious violence is counted "
                 "from data.police.uk categories, a broad proxy.")
    figures = {"sources_missing": missing, "sources_months_missing": months,
               "no_reader": len(readers)}
    return Finding("data-gaps", "quality", text, "quality-gaps", figures)


def geocoding(results: Results) -> list[Finding]:
    frame = table(results, "quality-geocoding")
    if frame is None:
        return []
    out = []
    rows = frame.filter((pl.col("method") == "not placed") & (pl.col("share") >= 0.05))
    for row in rows.iter_rows(named=True):
        label = SOURCE_LABELS.get(row["source"], row["source"])
        text = (f"{pct(row['share'])} of {label} records ({row['events']:,}) could not be "
                "placed on the map, so maps and tables by place leave them out.")
        out.append(Finding(f"geocoding-{row['source']}", "quality", text, "quality-geocoding",
                           {"source": row["source"], "share": row["share"],
                            "unplaced_count": row["events"]}))
    return out


def quarantine(results: Results) -> list[Finding]:
    frame = table(results, "quality-sources")
    if frame is None:
        return []
    rows = frame.filter(pl.col("quarantine_share") >= 0.01)
    return [Finding(f"quarantine-{row['source']}", "quality",
                    f"{pct(row['quarantine_share'])} of "
                    f"{SOURCE_LABELS.get(row['source'], row['source'])} rows "
                    f"({row['rows_quarantined']:,} of {row['rows_read']:,}) failed checks and "
                    "were quarantined.", "quality-sources",
                    {"share": row["quarantine_share"],
                     "quarantined_count": row["rows_quarantined"]})
            for row in rows.iter_rows(named=True)]


def domestic(results: Results) -> list[Finding]:
    """Domestic abuse share of serious violence and sexual offences, with change."""
    frame = table(results, "domestic-sexual-violence")
    out = []
    for key, measure, subject in (
            ("domestic", "serious violence flagged as domestic abuse",
             "Serious violence flagged as domestic abuse"),
            ("sexual", "rape and sexual offences in the definition",
             "Rape and sexual offences")):
        row = first(frame, (pl.col("measure") == measure)
                    & (pl.col("window") == "latest 12 months"))
        if not row or not row["of"]:
            continue
        text = (f"{subject}: {row['count']:,} {plural(row['count'], 'offence')} in the latest "
                f"12 months, {pct(row['share'])} of serious violence (95% CI "
                f"{pct(row['share_lower'])} to {pct(row['share_upper'])})")
        if present(row["p_value"]):
            significant = row["p_value"] < 0.05
            text += (f"; rate ratio on the year before {row['change_ratio']:.2f}, "
                     f"{ci(row['change_lower'], row['change_upper'])} ("
                     + ("a statistically significant change" if significant
                        else "no statistically significant change") + ")")
        out.append(Finding(f"domestic-{key}", "domestic", text + ".",
                           "domestic-sexual-violence",
                           {"count": row["count"], "of": row["of"], "share": row["share"]}))
    return out


def quality(results: Results) -> list[Finding]:
    return data_gaps(results) + geocoding(results) + quarantine(results)


# -- sections -----------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Results], list[Finding]]] = {
    "problem-profile": problem_profile, "core-measures": core_measures, "weapons": weapons,
    "places": places, "times": times, "people": people, "domestic": domestic,
    "health": health, "risk": risk, "comparison": comparison, "quality": quality}
KEY = ("sv-change", "knife-all-ages", "knife-under-25", "gap-core-measures", "hotspots",
       "concentration", "peak-times", "gap-times", "under-25", "cohort", "gap-people",
       "cardiff-gap", "risk-association", "comparison-", "data-gaps")


def all_findings(results: Results) -> list[Finding]:
    """Every section's findings, in report order."""
    return [f for make in SECTIONS.values() for f in make(results)]


def key_findings(results: Results) -> list[Finding]:
    """The headline findings for the executive summary (each keeps its home section)."""
    found = all_findings(results)
    return [f for key in KEY for f in found
            if f.key == key or (key.endswith("-") and f.key.startswith(key))]


def section_findings(results: Results, section: str) -> list[Finding]:
    """The findings of one report section ("all" for every section's; [] if none), each with
    the title of the Result it cites (``source``)."""
    if section == "summary":
        found = key_findings(results)
    elif section == "all":
        found = all_findings(results)
    elif section == "recommendations":
        found = recommendations(all_findings(results))
    else:
        make = SECTIONS.get(section)
        found = make(results) if make else []
    return [titled(f, results) for f in found]


def titled(finding: Finding, results: Results) -> Finding:
    """The finding with its cited Result's title in words (kept if it has one already)."""
    result = results.get(finding.result)
    if finding.source or result is None:
        return finding
    return replace(finding, source=result.meta.title)


# -- recommendations ----------------------------------------------------------------------

def _rise(f: Finding, what: str) -> str | None:
    fig = f.figures
    if fig.get("significant") and fig.get("ratio", fig.get("change_ratio", 1)) > 1:
        return (f"Examine what is driving the {what} and review the partnership's response to "
                "it.")
    return None


def _rec_change(f: Finding) -> str | None:
    rise = f.figures.get("percent_change", 0)
    return _rise(f, f"{rise:.0f}% rise in serious violence")


def _rec_knife(f: Finding) -> str | None:
    if f.figures.get("significant") and f.figures["change_ratio"] > 1:
        who = " against under-25s" if f.key.endswith("under-25") else ""
        return (f"Prioritise knife crime prevention{who}: knife or sharp-instrument enabled "
                f"serious violence{who} rose {pct(f.figures['change_ratio'] - 1)} on the "
                "previous 12 months.")
    return None


def _rec_hotspots(f: Finding) -> str | None:
    fig, parts = f.figures, []
    if fig["persistent_lsoas"]:
        parts.append(f"Focus place-based prevention on the {words(fig['persistent_lsoas'])} "
                     f"persistent hot {plural(fig['persistent_lsoas'], 'spot')} in "
                     f"{listing(fig['persistent_wards'])} "
                     f"{plural(len(fig['persistent_wards']), 'ward')}.")
    if fig["emerging_lsoas"]:
        parts.append(f"Act early in the {words(fig['emerging_lsoas'])} emerging hot "
                     f"{plural(fig['emerging_lsoas'], 'spot')} in "
                     f"{listing(fig['emerging_wards'])} "
                     f"{plural(len(fig['emerging_wards']), 'ward')} before "
                     f"{plural(fig['emerging_lsoas'], 'it becomes', 'they become')} persistent.")
    return " ".join(parts) or None


def _rec_nte(f: Finding) -> str | None:
    if f.figures["lower"] > f.figures["share_if_even"]:
        return (f"Work with licensing and night-time economy partners: {pct(f.figures['share'])} "
                "of serious violence happens on Friday and Saturday nights.")
    return None


def _rec_under_25(f: Finding) -> str | None:
    if f.figures["victim_rate"] > f.figures["older_victim_rate"]:
        return (f"Target early intervention at young people: under-25s were "
                f"{pct(f.figures['victim_share'])} of victims where the age was recorded.")
    return None


def _rec_gaps(f: Finding) -> str | None:
    missing, months = f.figures["sources_missing"], f.figures["sources_months_missing"]
    parts = []
    if "police-recorded" in missing:
        parts.append("Obtain the force's recorded-crime extract, so that weapons, ages and times "
                     "of day can be analysed.")
    others = [SOURCE_LABELS.get(s, s) for s in missing if s != "police-recorded"]
    if others:
        parts.append(f"Agree data sharing for the sources not yet loaded: {listing(others)}.")
    if months:
        parts.append("Load the missing months of "
                     f"{listing([SOURCE_LABELS.get(s, s) for s in months])} records.")
    return " ".join(parts) or None


REC_RULES: tuple[tuple[str, Callable[[Finding], str | None]], ...] = (
    ("sv-change", _rec_change),
    ("knife-", _rec_knife),
    ("hotspots", _rec_hotspots),
    ("night-time-economy", _rec_nte),
    ("under-25", _rec_under_25),
    ("cohort", lambda f: (
        "Use suspension or exclusion for violence as an early-warning flag for support: "
        f"{pct(f.figures['share'])} of those pupils later appeared in youth justice records.")
        if f.figures["appeared"] else None),
    ("cardiff-gap", lambda f: (
        "Share emergency department assault data with the police and partners routinely "
        f"(the Cardiff Model): about {pct(f.figures['gap'])} of ED assault attendances had no "
        "police record.")),
    ("geocoding-ed-istv", lambda f: (
        f"Improve ED geocoding: {pct(f.figures['share'])} of attendances could not be placed.")),
    ("risk-association", lambda f: (
        "Weight prevention towards the areas that score highest on "
        f"{f.figures['label']}, recognising that this is an "
        "association, not a cause.") if f.figures else None),
    ("data-gaps", _rec_gaps),
)


def recommendations(findings: Iterable[Finding]) -> list[Finding]:
    """Draft recommendations from the findings, for analysts to edit; each cites the Result
    of the finding it rests on (key ``rec:<finding key>``)."""
    out = []
    for f in findings:
        rule = next((make for prefix, make in REC_RULES
                     if f.key == prefix or (prefix.endswith("-") and f.key.startswith(prefix))),
                    None)
        text = rule(f) if rule else None
        if text:
            out.append(replace(f, key=f"rec:{f.key}", section="recommendations", text=text))
    return out
