"""The Home Office core measures of success (VRU primary measures), all ages and under 25:

1. Hospital admissions for assault by a knife or sharp object: ICD-10 external cause X99
   ("assault by sharp object"), from the hospital-admissions aggregates (age at admission).
2. Knife or sharp-instrument enabled serious violence: police-recorded offences flagged with
   a knife or sharp instrument that fall under the local definition (victim age at offence).
3. Non-domestic homicide: Home Office offence codes in the Homicide group of the offence
   catalogue (1 murder, 4.1 manslaughter, 4.2 infanticide, 4.10 corporate manslaughter), with
   the knife-involved subset.

Each is counted for the latest 12 months, the 12 before, and each financial year, with rates
per 100,000 residents (exact intervals) and an exact test of change against the period before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import polars as pl

from svduty.analysis import stats
from svduty.analysis.data import Data
from svduty.analysis.result import Result
from svduty.analysis.scope import month_range
from svduty.analysis.trend import coverage, shift
from svduty.definition.catalogue import load_catalogue, normalise_code

PER = 100_000.0
KNIFE = "knife or sharp"
X99 = "X99"
HOSPITAL = "hospital-admissions"
POLICE = "police-recorded"
ADMISSIONS = "hospital admissions for assault by knife or sharp object (ICD-10 X99)"
KNIFE_SV = "knife or sharp-instrument enabled serious violence"
HOMICIDE = "non-domestic homicide"
KNIFE_HOMICIDE = "non-domestic homicide involving a knife or sharp instrument"
AGE_GROUPS = ("all ages", "under 25")
BAND = re.compile(r"^\s*(\d+)\s*(?:-|to)\s*(\d+)\s*$")


@dataclass(frozen=True)
class Window:
    """A reporting period and the one it is compared with."""

    label: str
    start: date
    end: date  # last month (month start)
    before: str | None = None  # label of the comparison window

    @property
    def months(self) -> list[date]:
        return month_range(self.start, self.end)


def windows(end: date, start: date) -> list[Window]:
    """Latest 12 months, the 12 before, and every financial year the scope touches."""
    out = [Window("latest 12 months", shift(end, -11), end, "previous 12 months"),
           Window("previous 12 months", shift(end, -23), shift(end, -12))]
    first = start.year - (1 if start.month < 4 else 0)
    last = end.year - (1 if end.month < 4 else 0)
    for y in range(first, last + 1):
        before = f"FY {y - 1}/{y % 100:02d}" if y > first else None
        out.append(Window(f"FY {y}/{(y + 1) % 100:02d}", date(y, 4, 1), date(y + 1, 3, 1),
                          before))
    return out


# ------------------------------------------------------------------------ police measures


def homicide_codes(data: Data) -> list[str]:
    """Offence codes in the Homicide group: the warehouse's offence_codes table, else the
    bundled catalogue; codes normalised as the recorded-crime reader does (004/01 -> 4.1)."""
    t = data.table("offence_codes")
    hom = t.filter((t.offence_group == "Homicide") | (t.offence_subgroup == "Homicide"))
    codes = data.fetch(hom.select("offence_code"))["offence_code"].drop_nulls().to_list()
    if codes:
        return sorted({normalise_code(c) for c in codes})
    cat = load_catalogue().filter(pl.col("offence_group") == "Homicide")
    return sorted(normalise_code(c) for c in cat["code"].to_list())


def with_victim_age(data: Data, events) -> pl.DataFrame:
    """One row per event: month, whether any victim was under 25, whether any age known."""
    i = data.table("involvements")
    v = i.filter(i.role == "victim")
    ages = v.group_by("event_id").aggregate(
        under_25=(v.age < 25).any(), age_known=v.age.notnull().any())
    e = events.select("event_id", "month", "load_id", "source")
    joined = e.left_join(ages, "event_id").select("event_id", "month", "load_id", "source",
                                                  "under_25", "age_known")
    return data.fetch(joined).with_columns(pl.col("under_25").fill_null(False),
                                           pl.col("age_known").fill_null(False))


def police_events(data: Data) -> dict[str, pl.DataFrame]:
    """Event rows for the police-based measures (police-recorded only)."""
    sv = data.sv()
    knife = sv.filter(sv.weapon == KNIFE)
    codes = homicide_codes(data)
    e = data.events(POLICE)
    hom = e.filter(e.offence_code.isin(codes) & ~e.domestic.fill_null(False))
    return {KNIFE_SV: with_victim_age(data, knife), HOMICIDE: with_victim_age(data, hom),
            KNIFE_HOMICIDE: with_victim_age(data, hom.filter(hom.weapon == KNIFE))}


def police_rows(events: dict[str, pl.DataFrame], wins: list[Window], complete: set[date]
                ) -> list[dict]:
    rows = []
    for measure, frame in events.items():
        for w in wins:
            months = [m for m in w.months if m in complete]
            inside = frame.filter(pl.col("month").is_in(months))
            for age in AGE_GROUPS:
                picked = inside if age == "all ages" else inside.filter(pl.col("under_25"))
                unknown = inside.filter(~pl.col("age_known")).height
                note = (f"{unknown} event(s) with no victim age are not in the under-25 count"
                        if age == "under 25" and unknown else None)
                rows.append(row(measure, age, w, len(months), picked.height, 0, note))
    return rows


def unavailable_rows(wins: list[Window]) -> list[dict]:
    note = ("unavailable: data.police.uk carries no weapon flag, offence code or victim age; "
            "load the force's recorded-crime extract (police-recorded)")
    return [row(m, age, w, 0, None, 0, note, available=False)
            for m in (KNIFE_SV, HOMICIDE, KNIFE_HOMICIDE) for w in wins for age in AGE_GROUPS]


# ------------------------------------------------------------------------ hospital measure


def hospital_rows_in_scope(data: Data) -> pl.DataFrame:
    """X99 aggregate rows placed in the scope's areas (by LSOA, or by ward/LA/CSP code)."""
    a = data.areas()
    a = a.filter(a.lad_code.isin(data.scope.lad_codes))
    codes = data.fetch(a.select("lsoa21_code", "ward_code", "lad_code", "csp_code"))
    lsoas = sorted(codes["lsoa21_code"].to_list())
    others = sorted({x for col in ("ward_code", "lad_code", "csp_code")
                     for x in codes[col].drop_nulls().to_list()})
    g = data.table("aggregates")
    g = g.filter((g.source == HOSPITAL) & g.icd10.upper().strip().startswith(X99))
    g = g.filter(g.lsoa21_code.isin(lsoas) | (g.lsoa21_code.isnull() & g.area_code.isin(others)))
    return data.fetch(g.select("source", "load_id", "period_start", "period_end", "area_type",
                               "area_code", "lsoa21_code", "age_band", "sex", "value",
                               "suppressed"))


def under_25_band(band: str | None) -> bool | None:
    """True for a band wholly under 25, False wholly 25+, None for all ages or straddling."""
    if band is None or band.strip().lower() in ("", "all", "all ages"):
        return None
    text = band.strip().lower()
    if text.endswith("+"):
        return False if int(re.sub(r"\D", "", text) or 0) >= 25 else None
    found = BAND.match(text)
    if not found:
        return None
    low, high = map(int, found.groups())
    return True if high < 25 else (False if low >= 25 else None)


def hospital_rows(frame: pl.DataFrame, wins: list[Window]) -> tuple[list[dict], list[str]]:
    caveats = []
    f = frame.with_columns(
        under_25=pl.col("age_band").map_elements(under_25_band, return_dtype=pl.Boolean),
        first=pl.col("period_start").dt.truncate("1mo"),
        last=pl.col("period_end").dt.truncate("1mo"))
    totals = f.filter(pl.col("sex").is_null() | pl.col("sex").str.to_lowercase().is_in(
        ["all", "persons", "p"]))
    if totals.height:
        f = totals
    straddle = f.filter(pl.col("under_25").is_null() & pl.col("age_band").is_not_null()
                        & ~pl.col("age_band").str.to_lowercase().is_in(["all", "all ages"]))
    if straddle.height:
        caveats.append(f"{straddle.height} admission rows have an age band that spans age 25 "
                       "and count only towards all ages.")
    rows = []
    for w in wins:
        inside = f.filter((pl.col("first") >= w.start) & (pl.col("last") <= w.end))
        months = {m for s, t in inside.select("first", "last").iter_rows()
                  for m in month_range(s, t)}
        for age in AGE_GROUPS:
            rows.append(hospital_row(inside, age, w, len(months)))
    return rows, caveats


def hospital_row(inside: pl.DataFrame, age: str, w: Window, months: int) -> dict:
    if age == "under 25":
        picked = inside.filter(pl.col("under_25").fill_null(False))
    else:
        whole = inside.filter(pl.col("age_band").is_null()
                              | pl.col("age_band").str.to_lowercase().is_in(["all", "all ages"]))
        picked = whole if whole.height else inside
    hidden = int(picked["suppressed"].fill_null(False).sum())
    count = int(picked["value"].fill_null(0).sum()) if months else None
    note = (f"{hidden} suppressed cell(s): the count is the published values only (a lower "
            "bound); no rate or change is given" if hidden else None)
    if not months:
        note = "no admission rows cover exactly this period"
    return row(ADMISSIONS, age, w, months, count, hidden, note)


# ------------------------------------------------------------------------ table


def row(measure: str, age: str, w: Window, months: int, count: int | None, suppressed: int,
        note: str | None, available: bool = True) -> dict:
    return {"measure": measure, "age_group": age, "period": w.label, "period_start": w.start,
            "period_end": w.end, "compared_with": w.before, "months_with_data": months,
            "count": count, "suppressed_cells": suppressed, "available": available,
            "note": note}


def add_rates(rows: list[dict], residents: dict[str, float]) -> pl.DataFrame:
    """Rates per 100,000 with exact intervals, and the exact test against the period before;
    only for complete 12-month periods without suppressed cells."""
    by_key = {(r["measure"], r["age_group"], r["period"]): r for r in rows}
    out = []
    for r in rows:
        usable = usable_row(r)
        pop = residents[r["age_group"]]
        rate, low, high = stats.rate(r["count"], pop, PER) if usable else (None,) * 3
        prior = by_key.get((r["measure"], r["age_group"], r["compared_with"]))
        c = (stats.change(prior["count"], r["count"], prior["months_with_data"],
                          r["months_with_data"]) if usable and prior and usable_row(prior)
             else None)
        out.append(r | {"residents": pop, "rate_per_100k": _f(rate), "rate_lower": _f(low),
                        "rate_upper": _f(high), "change_ratio": _f(c and c.ratio),
                        "change_lower": _f(c and c.lower), "change_upper": _f(c and c.upper),
                        "p_value": c.p_value if c else None,
                        "significant": c.significant if c else None})
    return pl.DataFrame(out, infer_schema_length=None)


def usable_row(r: dict) -> bool:
    return (r["available"] and r["count"] is not None and r["suppressed_cells"] == 0
            and r["months_with_data"] == 12)


def _f(x: object) -> float | None:
    if x is None:
        return None
    value = float(x)
    return None if value != value else value


COLUMNS = ("measure", "age_group", "period", "period_start", "period_end", "months_with_data",
           "count", "suppressed_cells", "residents", "rate_per_100k", "rate_lower",
           "rate_upper", "compared_with", "change_ratio", "change_lower", "change_upper",
           "p_value", "significant", "available", "note")


def analyse(data: Data) -> list[Result]:
    scope = data.scope
    wins = windows(scope.end, scope.start)
    residents = {"all ages": float(data.population("lad_code")["residents"].sum()),
                 "under 25": float(data.population("lad_code", under_25=True)["residents"]
                                   .sum())}
    caveats = ["Homicide for the Home Office measure comes from the Homicide Index; the police "
               "recorded count here is the local equivalent and may differ.",
               "Rates are per 100,000 residents (Census 2021) for every measure (homicide is "
               "usually quoted per million: multiply by 10). Periods with fewer than 12 "
               "months of data get no rate or change."]
    if scope.proxy:
        rows = unavailable_rows(wins)
        caveats.append("Knife-enabled serious violence and homicide are unavailable: the "
                       "police source is data.police.uk, which has no weapon flag, offence "
                       "codes or victim ages; load the force's recorded-crime extract "
                       "(police-recorded) to count them.")
        codes: list[str] = homicide_codes(data)
    else:
        cov = coverage(data, POLICE)
        complete = {m for m, ok in cov.complete.items() if ok}
        rows = police_rows(police_events(data), wins, complete)
        codes = homicide_codes(data)
    hospital, more = hospital_rows(hospital_rows_in_scope(data), wins)
    rows += hospital
    caveats += more
    if any(r["period_end"] > scope.end and r["months_with_data"] for r in hospital):
        caveats.append("Some hospital admission periods run past the last month of the "
                       f"analysis ({scope.end:%b %Y}); they are reported as supplied.")
    if not any(r["months_with_data"] for r in hospital):
        caveats.append("No hospital admissions (X99) rows are loaded for these areas.")
    table = add_rates(rows, residents).select(COLUMNS)
    return [Result(table, data.meta(
        "measures-core", "Home Office core measures of serious violence",
        "Counts for the latest 12 months, the 12 before and each financial year (April to "
        "March), for all ages and victims under 25. Admissions: sum of the published values "
        f"of hospital-admissions rows with ICD-10 {X99} in the scope's LSOAs, wards, local "
        "authorities or CSPs (age at admission; suppressed cells counted, never estimated). "
        "Knife-enabled serious violence: police-recorded events under the local definition "
        f"with weapon '{KNIFE}'. Non-domestic homicide: police-recorded offences with codes "
        f"{', '.join(codes)} not flagged domestic. Under 25: an event with at least one victim "
        "aged under 25 at the offence. Rates per 100,000 residents with exact (Garwood) 95% "
        "intervals; change against the period before by the exact conditional binomial test "
        "for two Poisson rates (same residents, exposure = months with data).",
        parameters={"admissions_icd10": [X99], "knife_weapon_value": KNIFE,
                    "homicide_codes": codes, "homicide_excludes": "domestic = true",
                    "under_25_rule": "any victim aged < 25 (police); age band wholly < 25 "
                                     "(hospital)",
                    "per": PER, "confidence": stats.CONFIDENCE,
                    "periods": [w.label for w in wins],
                    "residents": residents}, caveats=caveats))]
