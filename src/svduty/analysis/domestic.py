"""Domestic abuse and sexual violence within serious violence.

The Duty lets a partnership include domestic abuse and sexual violence in its definition,
and the SNA reports them apart: how much serious violence the force flagged as domestic
abuse, how much is rape or other sexual offending, the share of their victims who are
female, and the change on the year before. Needs the force's recorded-crime extract (the
domestic flag and victims); data.police.uk carries neither.
"""

from __future__ import annotations

import polars as pl
from scipy import stats as sps

from svduty.analysis import stats
from svduty.analysis.data import Data
from svduty.analysis.result import Result
from svduty.loads import month_range

SEXUAL = r"(?i)rape|sexual"
COLUMNS = {"measure": pl.String, "window": pl.String, "count": pl.Int64, "of": pl.Int64,
           "share": pl.Float64, "share_lower": pl.Float64, "share_upper": pl.Float64,
           "change_ratio": pl.Float64, "change_lower": pl.Float64, "change_upper": pl.Float64,
           "p_value": pl.Float64}


def analyse(data: Data) -> list[Result]:
    windows = latest_windows(data)
    if data.scope.proxy or windows is None:
        reason = ("data.police.uk has no domestic abuse flag and no victims, and 'Violence "
                  "and sexual offences' cannot be split" if data.scope.proxy
                  else "fewer than 24 months are in the period")
        return [Result(pl.DataFrame(schema=COLUMNS), data.meta(
            "domestic-sexual-violence", "Domestic abuse and sexual violence", METHOD,
            parameters={"sexual_categories": SEXUAL},
            caveats=[f"Not available: {reason}. Ask the force for its recorded-crime extract "
                     "(docs/data-formats.md)."]))]
    events = flagged(data, windows)
    rows = []
    for measure, part, whole in measures(events):
        rows += window_rows(measure, part, whole)
    return [Result(pl.DataFrame(rows, schema=COLUMNS), data.meta(
        "domestic-sexual-violence", "Domestic abuse and sexual violence", METHOD,
        parameters={"sexual_categories": SEXUAL, "latest": [str(m) for m in windows[1][::11]],
                    "previous": [str(m) for m in windows[0][::11]],
                    "confidence": stats.CONFIDENCE},
        caveats=["The domestic abuse flag is the force's; forces flag differently, so compare "
                 "shares over time rather than with other areas.",
                 "Under-reporting is high for both domestic abuse and sexual violence: a rise "
                 "can mean more confidence to report."]))]


METHOD = ("Serious violence under the local definition (police-recorded) in the latest 12 "
          "months and the 12 before: the number the force flagged as domestic abuse and its "
          "share of all serious violence; the number in the definition's rape and sexual "
          "offence categories; and the share of victims of each who were female. Shares have "
          "exact (Clopper-Pearson) 95% intervals; change on the year before is the exact "
          "conditional test for two Poisson counts.")


def latest_windows(data: Data) -> tuple[list, list] | None:
    months = month_range(data.scope.start, data.scope.end)
    if len(months) < 24:
        return None
    return months[-24:-12], months[-12:]


def flagged(data: Data, windows: tuple[list, list]) -> pl.DataFrame:
    """One row per serious violence event in the two windows, with its victims' sexes."""
    sv = data.sv()
    sv = sv.filter(sv.month >= windows[0][0])
    people = data.involvements(sv.select("event_id"))
    victims = people.filter(people.role == "victim")
    female = victims.group_by("event_id").aggregate(
        female=(victims.sex == "female").any(), victims=victims.count())
    joined = sv.select("event_id", "month", "sv_category", "domestic").left_join(
        female, "event_id")
    frame = data.fetch(joined.select("event_id", "month", "sv_category", "domestic",
                                     "female", "victims"))
    latest = windows[1][0]
    return frame.with_columns(
        pl.when(pl.col("month") >= latest).then(pl.lit("latest 12 months"))
        .otherwise(pl.lit("previous 12 months")).alias("window"),
        pl.col("domestic").fill_null(False), pl.col("female").fill_null(False),
        pl.col("sv_category").str.contains(SEXUAL).alias("sexual"))


def measures(events: pl.DataFrame) -> list[tuple[str, pl.DataFrame, pl.DataFrame]]:
    """(measure, the events counted, the events it is a share of)."""
    domestic = events.filter("domestic")
    sexual = events.filter("sexual")
    with_victims = pl.col("victims").fill_null(0) > 0
    return [
        ("serious violence flagged as domestic abuse", domestic, events),
        ("rape and sexual offences in the definition", sexual, events),
        ("domestic abuse: offences with a female victim", domestic.filter("female"),
         domestic.filter(with_victims)),
        ("sexual offences: offences with a female victim", sexual.filter("female"),
         sexual.filter(with_victims)),
    ]


def window_rows(measure: str, part: pl.DataFrame, whole: pl.DataFrame) -> list[dict]:
    counts = {w: part.filter(pl.col("window") == w).height
              for w in ("previous 12 months", "latest 12 months")}
    rows = []
    for window, count in counts.items():
        of = whole.filter(pl.col("window") == window).height
        low, high = share_interval(count, of)
        row = {"measure": measure, "window": window, "count": count, "of": of,
               "share": count / of if of else None, "share_lower": low, "share_upper": high}
        if window == "latest 12 months":
            c = stats.change(counts["previous 12 months"], count)
            row |= {"change_ratio": c.ratio, "change_lower": c.lower, "change_upper": c.upper,
                    "p_value": c.p_value}
        rows.append(row)
    return rows


def share_interval(count: int, of: int) -> tuple[float | None, float | None]:
    if not of:
        return None, None
    ci = sps.binomtest(count, of).proportion_ci(stats.CONFIDENCE, method="exact")
    return float(ci.low), float(ci.high)
