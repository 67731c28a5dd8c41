"""People and cohorts: who is harmed by serious violence and who is suspected of it.

Victim and suspect profiles by Census age band and sex (with the under-25 focus the Duty asks
for), repeat victims and repeat suspects, people who are both, and a cross-source cohort:
pupils suspended or excluded from school who later appear in youth-justice records or attend
the emergency department after an assault. People are counted by their pseudonymous
`person_key`; across sources they are linked by :mod:`svduty.linkage`.
"""

from __future__ import annotations

from dataclasses import replace

import ibis
import ibis.expr.types as ir
import numpy as np
import polars as pl
from scipy import stats as sps

from svduty import linkage
from svduty.analysis import stats
from svduty.analysis.data import Data
from svduty.analysis.result import Result

PER = 1000.0
# Census 2021 age bands (populations.age_band) and their short labels.
CENSUS_BANDS = (("0-15", 0, 15, "Aged 15 years and under"),
                ("16-24", 16, 24, "Aged 16 to 24 years"),
                ("25-34", 25, 34, "Aged 25 to 34 years"),
                ("35-49", 35, 49, "Aged 35 to 49 years"),
                ("50-64", 50, 64, "Aged 50 to 64 years"),
                ("65+", 65, 200, "Aged 65 years and over"))
UNKNOWN = "unknown"
REPEAT_BANDS = ("1", "2", "3", "4", "5+")
OVERLAP_GROUPS = ("victim only", "suspect only", "victim and suspect")
PUPIL, YOUNG_PERSON, VICTIM = "pupil", "young person", "victim"
VIOLENT_REASON = r"(?i)physical assault|offensive weapon"
OUTCOMES = (("youth_justice", "youth-justice", YOUNG_PERSON), ("ed", "ed-istv", VICTIM))
EITHER = "youth justice or ED assault attendance"
INTERVALS = ((0, 91, "under 3 months"), (91, 183, "3 to 6 months"),
             (183, 365, "6 to 12 months"), (365, 730, "1 to 2 years"),
             (730, 100_000, "2 years or more"))
PERSON_CAVEAT = ("Counts are of people and exact: small numbers can identify someone, so the "
                 "report applies disclosure control before publication.")


def analyse(data: Data) -> list[Result]:
    results: list[Result] = []
    inv = sv_involvements(data)
    if inv.height:
        results += [profile(data, inv), under_25(data, inv), repeats(data, inv),
                    overlap(data, inv)]
    else:
        data.queries, data.sources, data.loads = [], set(), set()  # nothing to report
    if has_tokens(data):
        link = linkage.link(data)
        results.append(linkage_result(data, link))
        pupils = cohort_pupils(data, link)
        if pupils.height:
            results += cohort_results(data, pupils, link)
    return results


# ------------------------------------------------------------------ police people


def sv_involvements(data: Data) -> pl.DataFrame:
    """Victims and suspects of serious violence in the scope and period (police source)."""
    i = data.involvements(data.sv())
    i = i.filter(i.role.isin(("victim", "suspect")))
    frame = data.fetch(i.select("event_id", "source", "person_key", "role", "age", "sex",
                                "sv_category", "month"))
    return frame.with_columns(band=age_band(pl.col("age")),
                              sex=pl.col("sex").fill_null(UNKNOWN))


def age_band(age: pl.Expr) -> pl.Expr:
    expr = pl.lit(UNKNOWN)
    for label, low, high, _ in reversed(CENSUS_BANDS):
        expr = pl.when(age.is_between(low, high)).then(pl.lit(label)).otherwise(expr)
    return expr


def residents_by_band(data: Data) -> pl.DataFrame:
    """Census 2021 residents of the scope's areas by age band (short label)."""
    p = data.table("populations")
    a = data.areas()
    a = a.filter(a.lad_code.isin(data.scope.lad_codes))
    p = p.filter(p.lsoa_vintage == 2021)
    j = p.inner_join(a, p.lsoa_code == a.lsoa21_code)
    frame = data.fetch(j.group_by("age_band").aggregate(residents=j.residents.sum()),
                       ("census-2021",))
    labels = {census: short for short, _, _, census in CENSUS_BANDS}
    return frame.with_columns(band=pl.col("age_band").replace_strict(labels, default=None)
                              ).drop_nulls("band").select("band", "residents")


def years(data: Data) -> float:
    return len(data.scope.months) / 12


def with_rates(frame: pl.DataFrame, count: str, exposure: pl.Series) -> pl.DataFrame:
    """Add involvements per 1,000 residents a year and its exact 95% interval."""
    value, low, high = stats.rate(frame[count].to_numpy(), exposure.to_numpy(), PER)
    return frame.with_columns(pl.Series("rate_per_1000_year", value),
                              pl.Series("rate_lower", low), pl.Series("rate_upper", high))


def profile(data: Data, inv: pl.DataFrame) -> Result:
    """Involvements and people by role, Census age band and sex, with rates by age band."""
    residents = residents_by_band(data)
    by_sex = inv.group_by("role", "band", "sex").agg(
        involvements=pl.len(), people=pl.col("person_key").n_unique())
    by_all = inv.group_by("role", "band").agg(
        involvements=pl.len(), people=pl.col("person_key").n_unique()
    ).with_columns(sex=pl.lit("all"))
    table = pl.concat([by_all, by_sex.select(by_all.columns)])
    table = table.with_columns(
        share_of_role=pl.col("involvements") / pl.col("involvements").filter(
            pl.col("sex") == "all").sum().over("role"))
    table = table.join(residents, on="band", how="left").with_columns(
        residents=pl.when(pl.col("sex") == "all").then(pl.col("residents")))
    table = with_rates(table, "involvements", table["residents"] * years(data))
    order = {label: i for i, (label, *_) in enumerate(CENSUS_BANDS)}
    table = table.rename({"band": "age_band"}).sort(
        "role", pl.col("age_band").replace_strict(order, default=99), "sex")
    meta = data.meta(
        "people-profile", "Victims and suspects of serious violence by age and sex",
        "Victim and suspect involvements in serious violence (local definition) from the "
        "police extract, by Census 2021 age band (age as recorded at the offence) and sex. "
        "People are distinct person keys within a band (a person can appear in two bands as "
        "they age). Rates (sex 'all' rows only; the Census bands carry no sex split here) "
        "are involvements per 1,000 residents of that age band a year, with exact Poisson "
        "95% intervals.",
        parameters={"age_bands": [b[0] for b in CENSUS_BANDS], "per": PER,
                    "years": years(data), "roles": ["victim", "suspect"]},
        caveats=["A person with several involvements counts once per involvement in "
                 "'involvements' and once in 'people'.",
                 "Ages missing from the police record are shown as 'unknown' and have no rate.",
                 PERSON_CAVEAT])
    return Result(table, meta)


def under_25(data: Data, inv: pl.DataFrame) -> Result:
    """The under-25 focus: involvements of 0-24-year-olds against 25 and over."""
    residents = residents_by_band(data).with_columns(
        group=pl.when(pl.col("band").is_in(("0-15", "16-24"))).then(pl.lit("under 25"))
        .otherwise(pl.lit("25 and over"))).group_by("group").agg(pl.col("residents").sum())
    grouped = inv.with_columns(group=pl.when(pl.col("age").is_null()).then(pl.lit(UNKNOWN))
                               .when(pl.col("age") < 25).then(pl.lit("under 25"))
                               .otherwise(pl.lit("25 and over")))
    table = grouped.group_by("role", "group").agg(
        involvements=pl.len(), people=pl.col("person_key").n_unique())
    known = pl.col("involvements").filter(pl.col("group") != UNKNOWN).sum().over("role")
    table = table.with_columns(share_of_known_age=pl.when(pl.col("group") != UNKNOWN)
                               .then(pl.col("involvements") / known))
    table = table.join(residents, on="group", how="left")
    table = with_rates(table, "involvements", table["residents"] * years(data)).sort(
        "role", "group")
    meta = data.meta(
        "people-under-25", "Serious violence involving under-25s",
        "Victim and suspect involvements in serious violence split at age 25 (age at the "
        "offence), with each group's share of involvements of known age and the rate per "
        "1,000 Census 2021 residents of that age a year (exact Poisson 95% interval).",
        parameters={"split_age": 25, "per": PER, "years": years(data)},
        caveats=[PERSON_CAVEAT])
    return Result(table, meta)


def repeats(data: Data, inv: pl.DataFrame) -> Result:
    """People by the number of serious-violence involvements they had in the period."""
    per = inv.drop_nulls("person_key").group_by("role", "person_key").agg(n=pl.len())
    per = per.with_columns(involvements_per_person=pl.when(pl.col("n") >= 5)
                           .then(pl.lit("5+")).otherwise(pl.col("n").cast(pl.String)))
    table = per.group_by("role", "involvements_per_person").agg(
        people=pl.len(), involvements=pl.col("n").sum())
    table = table.with_columns(
        share_of_people=pl.col("people") / pl.col("people").sum().over("role"),
        share_of_involvements=pl.col("involvements") / pl.col("involvements").sum()
        .over("role"),
        repeat=pl.col("involvements_per_person") != "1")
    order = {b: i for i, b in enumerate(REPEAT_BANDS)}
    table = table.sort("role", pl.col("involvements_per_person").replace_strict(order))
    missing = inv.filter(pl.col("person_key").is_null()).height
    meta = data.meta(
        "people-repeat", "Repeat victims and repeat suspects of serious violence",
        "Distinct person keys in the police extract by the number of serious-violence "
        "involvements (local definition) they had in the period, separately as victim and "
        "as suspect. A repeat victim (suspect) has two or more. 'share_of_involvements' is "
        "the share of the role's involvements that people in the row account for.",
        parameters={"repeat_threshold": 2, "bands": list(REPEAT_BANDS),
                    "involvements_without_person_key": missing},
        caveats=["People are matched by the police extract's person key only: the same person "
                 "recorded under two keys counts as two people, so repeats are a lower bound.",
                 "Involvements before the period are not counted.", PERSON_CAVEAT])
    return Result(table, meta)


def overlap(data: Data, inv: pl.DataFrame) -> Result:
    """People who were victims, suspects, or both, in serious violence in the period."""
    people = inv.drop_nulls("person_key").group_by("person_key").agg(
        victim=(pl.col("role") == "victim").any(), suspect=(pl.col("role") == "suspect").any(),
        under_25=(pl.col("age").min() < 25).fill_null(False))
    people = people.with_columns(group=pl.when(pl.col("victim") & pl.col("suspect"))
                                 .then(pl.lit("victim and suspect"))
                                 .when(pl.col("victim")).then(pl.lit("victim only"))
                                 .otherwise(pl.lit("suspect only")))
    parts = [people.with_columns(ages=pl.lit("all ages")),
             people.filter("under_25").with_columns(ages=pl.lit("under 25"))]
    counts = pl.concat(parts).group_by("ages", "group").agg(people=pl.len())
    grid = pl.DataFrame({"ages": ["all ages"] * 3 + ["under 25"] * 3,
                         "group": list(OVERLAP_GROUPS) * 2})
    table = grid.join(counts, on=["ages", "group"], how="left").with_columns(
        pl.col("people").fill_null(0))
    table = table.with_columns(share_of_people=pl.col("people") / pl.col("people").sum()
                               .over("ages"))
    meta = data.meta(
        "people-victim-suspect", "People who are both victims and suspects",
        "Distinct person keys in the police extract grouped by whether, in the period, they "
        "were a victim of serious violence, a suspect, or both. 'under 25' rows keep people "
        "whose youngest recorded age was under 25.",
        caveats=["Being both victim and suspect is an association in the records, not a "
                 "statement about any one incident.", PERSON_CAVEAT])
    return Result(table, meta)


# ----------------------------------------------------------------- linkage, cohort


def has_tokens(data: Data) -> bool:
    t = data.table("person_tokens")
    return bool(t.count().execute())


def linkage_result(data: Data, link: linkage.Linkage) -> Result:
    """Matched pairs by rule and source pair, and the people they make."""
    table = link.rule_counts()
    sizes = link.ids.group_by("person_id").agg(pl.col("source").n_unique().alias("n"))
    meta = data.meta(
        "people-linkage", "Linking people across partner sources",
        link.method + " Each row counts the pairs of keys a rule matched between two "
        "sources (a pair meeting several rules counts under each).",
        parameters={**link.parameters, "keys": link.ids.height,
                    "people": sizes.height,
                    "people_in_two_or_more_sources": sizes.filter(pl.col("n") >= 2).height},
        caveats=link.caveats)
    return Result(table, meta)


def person_events(data: Data, source: str, role: str, events: ir.Table | None = None
                  ) -> pl.DataFrame:
    """Every (person key, date) of `source` with `role` in the period, any area."""
    if events is None:
        e = data.table("events")
        events = e.filter((e.source == source) & (e.month >= data.scope.start)
                          & (e.month <= data.scope.end))
    i = data.involvements(events)
    i = i.filter((i.role == role) & i.person_key.notnull())
    day = ibis.coalesce(i.occurred_on, i.occurred_at.date(), i.month)
    return data.fetch(i.select("source", "person_key", "context", day=day))


def cohort_pupils(data: Data, link: linkage.Linkage) -> pl.DataFrame:
    """One row per pupil suspended or excluded in the period (school events in the scope's
    areas): first suspension, whether for violence, and the first youth-justice offence and
    ED assault attendance after it, with days between."""
    school = link.person_ids(person_events(data, "school", PUPIL, data.events("school")))
    school = school.with_columns(violent=pl.col("context").str.contains(VIOLENT_REASON)
                                 .fill_null(False))
    pupils = school.group_by("person_id").agg(
        first_exclusion=pl.col("day").min(), violent=pl.col("violent").any(),
        school_keys=pl.col("person_key").unique())
    for name, source, role in OUTCOMES:
        later = link.person_ids(person_events(data, source, role)).join(
            pupils.select("person_id", "first_exclusion"), on="person_id")
        later = later.filter(pl.col("day") > pl.col("first_exclusion")).group_by(
            "person_id").agg(pl.col("day").min().alias(f"first_{name}"))
        pupils = pupils.join(later, on="person_id", how="left").with_columns(
            (pl.col(f"first_{name}") - pl.col("first_exclusion")).dt.total_days()
            .alias(f"days_to_{name}"))
    return pupils.sort("first_exclusion", "person_id")


def cohort_results(data: Data, pupils: pl.DataFrame, link: linkage.Linkage) -> list[Result]:
    """The cohort summary (shares and time to first appearance) and its distribution."""
    pupils = pupils.with_columns(days_to_either=pl.min_horizontal(
        "days_to_youth_justice", "days_to_ed"))
    groups = (("all suspended or excluded pupils", pupils),
              ("suspended or excluded for violence", pupils.filter("violent")))
    outcomes = (("youth justice", "days_to_youth_justice"),
                ("ED assault attendance", "days_to_ed"), (EITHER, "days_to_either"))
    summary, timing = [], []
    for group, frame in groups:
        for outcome, column in outcomes:
            days = frame[column].drop_nulls().to_numpy()
            summary.append(summary_row(group, outcome, frame.height, days))
            timing += interval_rows(group, outcome, days)
    table = pl.DataFrame(summary)
    params = {"violent_reasons": VIOLENT_REASON, "linkage": "see people-linkage",
              "start": "first suspension or exclusion in the period (of any reason, also "
                       "for the violence group: pupils with any suspension for violence)",
              "later": "an event strictly after that date, in the period, in any area"}
    caveats = [*link.caveats, PERSON_CAVEAT,
               "Appearing later is an association: the cohort shows shared need, not that "
               "exclusion causes offending or harm.",
               "Pupils first excluded late in the period have less time to appear later."]
    method = ("Pupils with a suspension or permanent exclusion recorded in the period (school "
              "events placed in the scope's areas by home LSOA) are linked to youth-justice "
              "offences (role 'young person') and ED assault attendances (role victim) as "
              "people-linkage links them. For each pupil the first event of each "
              "kind after the first suspension counts; days between are summarised by median "
              "and quartiles. Shares have Wilson 95% intervals.")
    meta = data.meta("people-cohort", "Excluded pupils who later appear in youth justice "
                     "or the ED", method + " " + link.method, parameters=params,
                     caveats=caveats)
    timing_meta = replace(
        meta, name="people-cohort-timing",
        title="Time from first exclusion to first later appearance",
        method=method + " Rows count pupils by the time to their first later appearance. "
        + link.method, parameters=params | {"intervals": [i[2] for i in INTERVALS]})
    first, second = Result(table, meta), Result(pl.DataFrame(timing), timing_meta)
    return [first, second]


def summary_row(group: str, outcome: str, pupils: int, days: np.ndarray) -> dict:
    later = len(days)
    low, high = wilson(later, pupils)
    q1, median, q3 = (np.percentile(days, [25, 50, 75]) if later else (None,) * 3)
    return {"cohort": group, "outcome": outcome, "pupils": pupils, "later_appeared": later,
            "share": later / pupils if pupils else None, "share_lower": low,
            "share_upper": high, "median_days": _num(median), "q1_days": _num(q1),
            "q3_days": _num(q3)}


def interval_rows(group: str, outcome: str, days: np.ndarray) -> list[dict]:
    return [{"cohort": group, "outcome": outcome, "interval": label, "from_days": low,
             "to_days": high, "pupils": int(((days >= low) & (days < high)).sum())}
            for low, high, label in INTERVALS]


def wilson(k: int, n: int) -> tuple[float | None, float | None]:
    """Wilson score 95% interval for the proportion k/n (None when n is 0)."""
    if n == 0:
        return None, None
    ci = sps.binomtest(k, n).proportion_ci(stats.CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def _num(x: object) -> float | None:
    return None if x is None else float(x)
