"""Times: when serious violence happens (hour and weekday, month and season, school term
against holiday, night-time economy hours) and when ED assault attendances happen.

Counting runs in the engine (events grouped by weekday and hour, by month, by day); the
statistics run on those small tables. data.police.uk publishes the month only, so with that
source only the month-of-year and season Results can be made; the others need the force's
recorded-crime times and are left out with a caveat saying so.

School terms come from `<partnership>/term-dates.toml` (``[[term]]`` tables with ``start``
and ``end`` dates) or `term-dates.csv` (``start,end`` rows, ISO dates, both ends inclusive)
where the partnership has one; otherwise from a rule giving approximate English term dates
(see :func:`default_terms`).
"""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import polars as pl
from scipy import stats as sps

from svduty.analysis.data import Data
from svduty.analysis.result import Result
from svduty.analysis.stats import CONFIDENCE, change, poisson_interval

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
           6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
SEASON_ORDER = ("winter", "spring", "summer", "autumn")
NTE_NIGHTS = (4, 5)  # the nights starting Friday and Saturday (Monday = 0)
NTE_START_HOUR, NTE_END_HOUR = 20, 4  # 20:00 to 03:59 the next morning
YOUNG_AGE = 18  # victims or suspects under this age (25 where only coarser bands exist)
ED = "ed-istv"
TERM_FILES = ("term-dates.toml", "term-dates.csv")
BAND = re.compile(r"^\s*(\d+)\s*(?:-|to)\s*(\d+)\s*$")
UNDER = re.compile(r"^\s*under\s*(\d+)\s*$", re.IGNORECASE)
DEFAULT_TERM_RULE = (
    "Approximate English school terms built by rule (local authorities' dates differ by a "
    "few days): autumn term from the first weekday on or after 3 September to the weekday on "
    "or before 20 December, with half term the week (Monday to Sunday) starting the last "
    "Monday of October; spring term from the first weekday on or after 4 January to the "
    "Friday nine days before Easter Sunday, with half term the week starting the Monday on "
    "or after 12 February; Easter holiday the two weeks from the Monday before Easter "
    "Sunday; summer term from the Monday after Easter week to the weekday on or before 21 "
    "July, with half term the week starting the last Monday of May. The weekends either "
    "side of a break count as holiday; bank holidays and in-service training days inside "
    "terms count as term days.")


def analyse(data: Data) -> list[Result]:
    """Every times Result the scope's sources allow."""
    results = [month_of_year(data), seasons(data)]
    if not data.scope.proxy:
        results += [hour_weekday(data), school_term(data), night_time_economy(data)]
    ed = ed_hour_weekday(data)
    return results + ([ed] if ed is not None else [])


# ------------------------------------------------------------------- month and season


def monthly(data: Data) -> pl.DataFrame:
    """Serious violence per month, for months with any police data (the months covered)."""
    src = data.events(data.scope.police_source)
    covered = data.fetch(src.group_by("month").aggregate(events=src.count()))
    sv = data.sv()
    counts = data.fetch(sv.group_by("month").aggregate(count=sv.count()))
    return (covered.select("month").join(counts, on="month", how="left")
            .with_columns(pl.col("count").fill_null(0)).sort("month"))


def seasonal_table(counts: pl.DataFrame, key: str) -> pl.DataFrame:
    """Counts, months covered and the seasonal index (with its exact 95% interval) by `key`:
    each group's mean per month over the overall mean per month."""
    overall = counts["count"].sum() / max(counts.height, 1)
    grouped = (counts.group_by(key).agg(months_covered=pl.len(), count=pl.col("count").sum())
               .sort(key))
    k, n = grouped["count"].to_numpy(), grouped["months_covered"].to_numpy()
    lower, upper = poisson_interval(k)
    scale = n * overall if overall else np.full(len(n), np.nan)
    return grouped.with_columns(
        mean_per_month=pl.Series(k / n, dtype=pl.Float64),
        seasonal_index=pl.Series(k / scale, dtype=pl.Float64),
        index_lower=pl.Series(lower / scale, dtype=pl.Float64),
        index_upper=pl.Series(upper / scale, dtype=pl.Float64))


SEASONAL_METHOD = (
    "Serious violence under the local definition counted by calendar month in the engine. "
    "Only months with any police data for these areas count as covered (gaps in loaded data "
    "are not read as zero). The seasonal index is the mean count per covered month of "
    "that {what} divided by the overall mean per covered month (1 = average; 1.2 = 20% "
    "above). Its 95% interval is the exact Poisson interval of the {what}'s count divided "
    "the same way (the overall mean is treated as fixed).")


def month_of_year(data: Data) -> Result:
    counts = monthly(data).with_columns(month_of_year=pl.col("month").dt.month())
    table = seasonal_table(counts, "month_of_year").with_columns(
        month_name=pl.col("month_of_year").map_elements(lambda m: MONTHS[m - 1],
                                                        return_dtype=pl.String),
        season=pl.col("month_of_year").replace_strict(SEASONS, return_dtype=pl.String))
    table = table.select("month_of_year", "month_name", "season", pl.exclude(
        "month_of_year", "month_name", "season"))
    caveats = seasonal_caveats(data, counts)
    meta = data.meta("times-month-of-year", "Serious violence by month of the year",
                     SEASONAL_METHOD.format(what="month"),
                     parameters={"months_covered": counts.height,
                                 "confidence": CONFIDENCE}, caveats=caveats)
    return Result(table, meta)


def seasons(data: Data) -> Result:
    counts = monthly(data).with_columns(
        season=pl.col("month").dt.month().replace_strict(SEASONS, return_dtype=pl.String))
    table = seasonal_table(counts, "season").with_columns(
        order=pl.col("season").replace_strict({s: i for i, s in enumerate(SEASON_ORDER)},
                                              return_dtype=pl.Int8)).sort("order").drop("order")
    meta = data.meta("times-season", "Serious violence by season",
                     SEASONAL_METHOD.format(what="season"),
                     parameters={"seasons": {s: [MONTHS[m - 1] for m in SEASONS
                                                 if SEASONS[m] == s] for s in SEASON_ORDER},
                                 "months_covered": counts.height, "confidence": CONFIDENCE},
                     caveats=seasonal_caveats(data, counts))
    return Result(table, meta)


def seasonal_caveats(data: Data, counts: pl.DataFrame) -> list[str]:
    caveats = ["Months of the year are covered unequally when the period is not whole years; "
               "the index uses means per covered month so this is allowed for, but a trend "
               "over the period can still show as a seasonal pattern."]
    if counts.height < 24:
        caveats.append(f"Only {counts.height} months are covered: each month of the year is "
                       "seen once or twice, so the index mixes season with chance and trend.")
    if data.scope.proxy:
        caveats.append("data.police.uk gives the month only: hour-of-day, weekday, school "
                       "term and night-time economy analyses need the force's recorded-crime "
                       "extract (police-recorded) with offence times and were not run.")
    return caveats


# ------------------------------------------------------------------- hour x weekday


def hour_weekday_counts(data: Data, events: ir.Table, *extra: str,
                        sources: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Counts by ISO weekday (1 = Monday) and hour of `events` with a time, plus `extra`
    grouping columns, over the full 7 x 24 grid (zeros filled)."""
    timed = events.filter(events.occurred_at.notnull())
    grouped = timed.group_by(
        weekday=timed.occurred_at.day_of_week.index() + 1, hour=timed.occurred_at.hour(),
        **{c: timed[c] for c in extra}).aggregate(count=timed.count())
    counts = data.fetch(grouped, sources).with_columns(pl.col("weekday", "hour").cast(pl.Int8))
    grid = pl.DataFrame({"weekday": np.repeat(np.arange(1, 8), 24).astype(np.int8),
                         "hour": np.tile(np.arange(24), 7).astype(np.int8)})
    if extra:
        grid = grid.join(counts.select(*extra).unique(), how="cross")
    return (grid.join(counts, on=["weekday", "hour", *extra], how="left")
            .with_columns(pl.col("count").fill_null(0)).sort("weekday", "hour", *extra))


def matrix_table(counts: pl.DataFrame) -> pl.DataFrame:
    total = counts["count"].sum()
    return counts.select(
        "weekday", pl.col("weekday").map_elements(lambda d: WEEKDAYS[d - 1],
                                                  return_dtype=pl.String).alias("weekday_name"),
        "hour", "count", share=pl.col("count") / total if total else pl.lit(None, pl.Float64))


def untimed(data: Data, events: ir.Table, sources: tuple[str, ...] | None = None) -> int:
    counted = data.fetch(events.aggregate(n=events.occurred_at.isnull().sum()), sources)
    return int(counted["n"][0] or 0)


MATRIX_METHOD = (
    "{what} counted by weekday (1 = Monday) and hour of the day it occurred (0 = 00:00 to "
    "00:59), local clock time as recorded, over the full 7 x 24 grid with zeros shown. "
    "Records without a time are left out (their number is in the parameters).")


def hour_weekday(data: Data) -> Result:
    sv = data.sv()
    missing = untimed(data, sv)
    table = matrix_table(hour_weekday_counts(data, sv))
    meta = data.meta(
        "times-hour-weekday", "Serious violence by hour and day of the week",
        MATRIX_METHOD.format(what="Serious violence under the local definition"),
        parameters={"events_with_time": int(table["count"].sum()),
                    "events_without_time": missing},
        caveats=["Offences recorded at exactly 00:00 or on the hour are often a default or "
                 "an estimate when the time is unknown, so midnight and round hours can be "
                 "over-counted.",
                 "The time is when the offence occurred (or its recorded start), not when it "
                 "was reported."])
    return Result(table, meta)


def ed_hour_weekday(data: Data) -> Result | None:
    """ED assault attendances geocoded to the scope's areas by hour and weekday."""
    ed, sources = data.events(ED), (ED,)
    if not data.fetch(ed.aggregate(n=ed.count()), sources)["n"][0]:
        data.queries, data.sources, data.loads = [], set(), set()  # nothing to report
        return None
    missing = untimed(data, ed, sources)
    table = matrix_table(hour_weekday_counts(data, ed, sources=sources))
    ungeocoded = not_placed(data)
    meta = data.meta(
        "times-ed-hour-weekday", "Emergency department assault attendances by hour and day",
        MATRIX_METHOD.format(what="Emergency department attendances after an assault "
                                  "(ED ISTV)"),
        parameters={"attendances_with_time": int(table["count"].sum()),
                    "attendances_without_time": missing,
                    "ungeocoded_attendances_left_out": ungeocoded},
        caveats=[f"Only attendances whose incident location was geocoded to these areas are "
                 f"counted; {ungeocoded} attendances in the period had no usable location "
                 "and are left out (their times may differ).",
                 "The time is the incident time the patient gave, not the arrival time; "
                 "patients do not always know or give it."])
    return Result(table, meta)


def not_placed(data: Data) -> int:
    e = data.table("events")
    e = e.filter((e.source == ED) & e.lsoa21_code.isnull()
                 & (e.month >= data.scope.start) & (e.month <= data.scope.end))
    return int(data.fetch(e.aggregate(n=e.count()), (ED,))["n"][0])


# ------------------------------------------------------------------- night-time economy


def nte_cells(nights: tuple[int, ...] = NTE_NIGHTS, start: int = NTE_START_HOUR,
              end: int = NTE_END_HOUR) -> set[tuple[int, int]]:
    """(ISO weekday, hour) cells of the night-time economy window: from `start` on each night
    in `nights` (Monday = 0) to `end` (exclusive) the next morning."""
    cells = set()
    for night in nights:
        cells |= {(night + 1, h) for h in range(start, 24)}
        cells |= {((night + 1) % 7 + 1, h) for h in range(end)}
    return cells


def share_row(measure: str, events: str, count: int, total: int,
              uniform: float | None = None) -> dict:
    ci = (sps.binomtest(count, total).proportion_ci(CONFIDENCE, method="exact")
          if total else None)
    return {"measure": measure, "events": events, "count": count, "total": total,
            "share": count / total if total else None,
            "lower": float(ci.low) if ci else None, "upper": float(ci.high) if ci else None,
            "share_if_even": uniform}


def night_time_economy(data: Data) -> Result:
    sv = data.sv()
    sv = sv.mutate(flag=sv.night_time_economy.fill_null(False),
                   recorded=sv.night_time_economy.notnull())
    counts = hour_weekday_counts(data, sv, "flag", "recorded")
    cells = nte_cells()
    counts = counts.with_columns(in_window=pl.struct("weekday", "hour").map_elements(
        lambda r: (r["weekday"], r["hour"]) in cells, return_dtype=pl.Boolean))
    has_flag = counts.filter(pl.col("recorded"))["count"].sum() > 0
    parts = [("all serious violence", counts)]
    if has_flag:
        parts += [("flagged night-time economy", counts.filter(pl.col("flag"))),
                  ("not flagged night-time economy", counts.filter(~pl.col("flag")))]
    rows = [share_row("in night-time economy hours", label,
                      int(part.filter(pl.col("in_window"))["count"].sum()),
                      int(part["count"].sum()), len(cells) / 168) for label, part in parts]
    if has_flag:
        rows.append(share_row("flagged night-time economy", "all serious violence",
                              int(counts.filter(pl.col("flag"))["count"].sum()),
                              int(counts["count"].sum())))
    caveats = ["The night-time economy flag is set by the recording officer and is used "
               "unevenly; a missing flag is read as not flagged." if has_flag else
               "The police extract carries no night-time economy flag: only the share in "
               "night-time economy hours is given.",
               "Being in night-time economy hours is an association with the time of day, "
               "not evidence that the night-time economy caused the violence."]
    meta = data.meta(
        "times-night-time-economy", "Serious violence in night-time economy hours",
        "Share of serious violence (with a recorded time) falling in night-time economy "
        "hours, with an exact (Clopper-Pearson) 95% interval, for all serious violence and "
        "separately for offences the force flagged as night-time economy and those it did "
        "not; and the share flagged. share_if_even is the share the window would hold if "
        "violence were spread evenly over the 168 hours of the week.",
        parameters={"nights": [WEEKDAYS[n] for n in NTE_NIGHTS],
                    "window": f"{NTE_START_HOUR:02d}:00 to {NTE_END_HOUR - 1:02d}:59 the next "
                              "morning", "hours_per_week": len(cells),
                    "confidence": CONFIDENCE},
        caveats=caveats)
    return Result(pl.DataFrame(rows, infer_schema_length=None), meta)


# ------------------------------------------------------------------- school terms


def easter(year: int) -> date:
    """Easter Sunday (the Meeus/Jones/Butcher Gregorian algorithm)."""
    a, (b, c) = year % 19, divmod(year, 100)
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    month, day = divmod(h + ell - 7 * ((a + 11 * h + 22 * ell) // 451) + 114, 31)
    return date(year, month, day + 1)


def weekday_on_or_after(d: date) -> date:
    return d + timedelta(days=max(0, 7 - d.weekday()) if d.weekday() >= 5 else 0)


def weekday_on_or_before(d: date) -> date:
    return d - timedelta(days=d.weekday() - 4 if d.weekday() >= 5 else 0)


def monday_on_or_after(d: date) -> date:
    return d + timedelta(days=(7 - d.weekday()) % 7)


def last_monday(year: int, month: int) -> date:
    end = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return end - timedelta(days=end.weekday())


def default_terms(academic_year: int) -> list[tuple[date, date]]:
    """Approximate English term-time spans (inclusive) of the school year starting in
    September of `academic_year`, half terms cut out (the rule is DEFAULT_TERM_RULE)."""
    y, n = academic_year, academic_year + 1
    october = last_monday(y, 10)
    february = monday_on_or_after(date(n, 2, 12))
    sunday = easter(n)
    easter_start, easter_end = sunday - timedelta(days=6), sunday + timedelta(days=7)
    may = last_monday(n, 5)
    friday, monday = timedelta(days=3), timedelta(days=7)  # before / after a break
    return [(weekday_on_or_after(date(y, 9, 3)), october - friday),
            (october + monday, weekday_on_or_before(date(y, 12, 20))),
            (weekday_on_or_after(date(n, 1, 4)), february - friday),
            (february + monday, easter_start - friday),
            (easter_end + timedelta(days=1), may - friday),
            (may + monday, weekday_on_or_before(date(n, 7, 21)))]


@dataclass(frozen=True)
class Terms:
    """Term-time spans (inclusive), where they came from, and the days they are known for."""

    spans: list[tuple[date, date]]
    source: str  # a file path or DEFAULT_TERM_RULE
    known_from: date | None  # days outside [known_from, known_to] are neither term nor
    known_to: date | None  # holiday (a file only covers the years it lists)

    def is_term(self, days: list[date]) -> np.ndarray:
        starts = np.array([s for s, _ in self.spans], dtype="datetime64[D]")
        ends = np.array([e for _, e in self.spans], dtype="datetime64[D]")
        d = np.array(days, dtype="datetime64[D]")[:, None]
        return ((d >= starts) & (d <= ends)).any(axis=1)

    def known(self, days: list[date]) -> np.ndarray:
        if self.known_from is None or self.known_to is None:
            return np.ones(len(days), dtype=bool)
        d = np.array(days, dtype="datetime64[D]")
        return (d >= np.datetime64(self.known_from)) & (d <= np.datetime64(self.known_to))


def load_terms(root: Path, start: date, end: date) -> Terms:
    """Term dates from `<root>/term-dates.toml` or `.csv` if there is one, else the rule."""
    for name in TERM_FILES:
        path = root / name
        if path.exists():
            spans = read_term_file(path)
            if not spans:
                raise ValueError(f"{path} lists no terms: give start,end rows (ISO dates)")
            return Terms(sorted(spans), str(path), min(s for s, _ in spans),
                         max(e for _, e in spans))
    years = range(start.year - 1, end.year + 1)
    return Terms([s for y in years for s in default_terms(y)], DEFAULT_TERM_RULE, None, None)


def read_term_file(path: Path) -> list[tuple[date, date]]:
    """`[[term]]` tables (start, end) from TOML, or start,end rows from CSV."""
    if path.suffix == ".toml":
        rows = tomllib.loads(path.read_text("utf-8")).get("term", [])
    else:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    spans = []
    for row in rows:
        s, e = (v if isinstance(v, date) else date.fromisoformat(str(v).strip())
                for v in (row["start"], row["end"]))
        if e < s:
            raise ValueError(f"{path}: term ending {e} starts after it ({s})")
        spans.append((s, e))
    return spans


def young_bands(data: Data, sv: ir.Table) -> tuple[int, list[str], bool]:
    """The age threshold (18, or 25 where only coarser bands are known), the age bands that
    lie wholly under it (used where the exact age is missing), and whether any age exists."""
    people = data.involvements(sv)
    people = people.filter(people.role.isin(("victim", "suspect")))
    bands = data.fetch(people.group_by("age_band").aggregate(
        n=people.count(), aged=people.age.count()))
    with_age = int(bands["aged"].sum())
    uppers = {b: band_upper(b) for b in bands["age_band"].drop_nulls().to_list()}
    for limit in (YOUNG_AGE, 25):
        chosen = [b for b, u in uppers.items() if u is not None and u < limit]
        if with_age or chosen:
            return limit, chosen, True
    return YOUNG_AGE, [], False


def band_upper(band: str) -> int | None:
    """Highest age in a band like '10-17', '10 to 17' or 'Under 18'; None if open or
    unreadable."""
    if m := BAND.match(band):
        return int(m.group(2))
    if m := UNDER.match(band):
        return int(m.group(1)) - 1
    return None


def daily(data: Data, events: ir.Table) -> pl.DataFrame:
    day = events.occurred_on.fill_null(events.occurred_at.date())
    events = events.filter(day.notnull()).mutate(day=day)
    return data.fetch(events.group_by("day").aggregate(count=events.event_id.nunique()))


def daily_young(data: Data, sv: ir.Table, limit: int, bands: list[str]) -> pl.DataFrame:
    people = data.involvements(sv)
    young = people.role.isin(("victim", "suspect")) & ibis.ifelse(
        people.age.notnull(), people.age < limit, people.age_band.isin(bands or [""]))
    return daily(data, people.filter(young))


def covered_days(covered_months: list[date]) -> list[date]:
    """Every day of the covered months."""
    days = []
    for m in covered_months:
        end = date(m.year + m.month // 12, m.month % 12 + 1, 1)
        days += [m + timedelta(days=i) for i in range((end - m).days)]
    return days


def term_rows(group: str, counts: pl.DataFrame, days: list[date], term: np.ndarray,
              known: np.ndarray) -> list[dict]:
    per_day = dict(zip(counts["day"].to_list(), counts["count"].to_list(), strict=True))
    k = np.array([per_day.get(d, 0) for d in days])
    weekday = np.array([d.weekday() < 5 for d in days])
    rows = []
    for label, keep in (("all days", known), ("Monday to Friday", known & weekday)):
        t_days, h_days = int((keep & term).sum()), int((keep & ~term).sum())
        t, h = int(k[keep & term].sum()), int(k[keep & ~term].sum())
        if not (t_days and h_days):
            continue  # term dates that leave no holiday (or no term) days: nothing to compare
        c = change(h, t, h_days, t_days)
        rows.append({"group": group, "days": label, "term_days": t_days,
                     "holiday_days": h_days, "term_count": t, "holiday_count": h,
                     "term_per_day": t / t_days, "holiday_per_day": h / h_days,
                     "rate_ratio": c.ratio, "lower": c.lower, "upper": c.upper,
                     "p_value": c.p_value})
    return rows


def school_term(data: Data) -> Result:
    months = monthly(data)["month"].to_list()
    days = covered_days(months)
    terms = load_terms(data.wh.path.parent, data.scope.start, data.scope.end)
    term, known = terms.is_term(days), terms.known(days)
    sv = data.sv()
    limit, bands, any_age = young_bands(data, sv)
    rows = term_rows("all serious violence", daily(data, sv), days, term, known)
    caveats = [
        "School holidays differ from term in more than school: the long summer holiday is "
        "also the warmest, lightest part of the year, so a difference is an association "
        "with the calendar, not evidence that school attendance itself protects or harms.",
        "The Monday to Friday rows compare school weekdays with weekdays in the holidays "
        "and are the fairer comparison; 'all days' includes term-time weekends."]
    if any_age:
        young = daily_young(data, sv, limit, bands)
        rows += term_rows(f"victim or suspect under {limit}", young, days, term, known)
    else:
        caveats.append("No victim or suspect ages are recorded: only all serious violence is "
                       "compared.")
    if limit != YOUNG_AGE:
        caveats.append(f"Ages are recorded only in bands that do not split at {YOUNG_AGE}; "
                       f"people under {limit} are compared instead.")
    if terms.source == DEFAULT_TERM_RULE:
        caveats.append("Term dates are approximate (built by a rule, not the local "
                       "authority's calendar): put the real dates in term-dates.toml or "
                       "term-dates.csv in the partnership folder.")
    meta = data.meta(
        "times-school-term", "Serious violence in school term and holidays",
        "Serious violence per day in school term and in school holidays, counted by the day "
        "it occurred, over the days of every month with police data. The rate ratio is the "
        "term rate over the holiday rate, tested with the exact conditional binomial test "
        "for two Poisson rates (exposure = days) with its exact 95% interval. Offences "
        f"involving a victim or suspect under {limit} are counted once each (by exact age, "
        "or by an age band wholly under the limit where the age is missing).",
        parameters={"term_dates": terms.source, "young_age_limit": limit,
                    "age_bands_counted_as_young": bands, "roles": ["victim", "suspect"],
                    "days_covered": int(known.sum()), "confidence": CONFIDENCE},
        caveats=caveats)
    return Result(pl.DataFrame(rows, infer_schema_length=None), meta)
