"""Data quality: what was loaded, what was set aside, how complete and timely it is, and which
data the Duty asks for is missing.

Everything is counted from the warehouse's own records: `loads` (one row per file; loads
replaced by a later file are left out), `quarantine` (rows set aside, with the reason),
`events`, `involvements` and `aggregates`. Completeness is the share of records with a field
filled in; a field the source never supplies (e.g. exact time in data.police.uk) is shown as
empty rather than 0%, so "not supplied" is not mistaken for "incomplete".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import ibis
import polars as pl

from svduty.analysis.data import Data
from svduty.analysis.result import Meta, Result
from svduty.analysis.scope import month_range
from svduty.sources import REGISTRY

TOP_REASONS = 10
FIELDS = ("lsoa", "occurred_at", "offence_code", "weapon", "age", "sex")
DUTY_ASKS: dict[str, str] = {
    "police-recorded": "Police recorded crime from the force (Home Office offence codes, "
                       "weapon and victim/suspect ages) is not loaded, so serious violence is "
                       "counted from data.police.uk categories: a broad proxy without offence "
                       "codes, weapons, ages or times of day.",
    "police-uk": "Street-level crime from data.police.uk is not loaded, so there is no "
                 "force-wide source to compare the partnership with the rest of the force.",
    "ed-istv": "Emergency department assault attendances (ISTV data sharing) are not loaded, "
               "so violence that is not reported to the police cannot be seen.",
    "hospital-admissions": "Hospital admissions for assault (ICD-10 X85-Y09) are not loaded, "
                           "so the most serious injuries are not counted from health data.",
    "ambulance": "Ambulance call-outs for assaults are not loaded, so incidents attended by "
                 "the ambulance service but not the police are missing.",
    "school": "School suspensions, exclusions and persistent absence are not loaded, so "
              "education risk factors for young people cannot be assessed.",
    "youth-justice": "Youth justice service data are not loaded, so the cohort of children "
                     "in the youth justice system cannot be described.",
    "probation": "Probation caseload data are not loaded, so adults under supervision for "
                 "violence cannot be described.",
    "fire": "Fire and rescue data (deliberate fires) are not loaded, so this community-harm "
            "indicator is missing.",
}
NO_READER = (
    "Children's social care data (children in need, looked after, exploitation referrals) "
    "cannot be loaded yet: svduty has no reader for it.",
    "Substance misuse treatment and housing data cannot be loaded yet: svduty has no reader "
    "for them.",
)


# ------------------------------------------------------------------------ fetching


def current_loads(data: Data) -> pl.DataFrame:
    t = data.table("loads")
    t = t.filter(t.superseded_by.isnull()).drop("file_path", "checksum")
    return data.fetch(t.order_by("load_id"))


def superseded_count(data: Data) -> int:
    t = data.table("loads")
    return int(data.fetch(t.filter(t.superseded_by.notnull()).aggregate(n=t.count()))["n"][0])


def event_months(data: Data) -> pl.DataFrame:
    """Per source and month: events, in-area, in-scope and filled-in counts of key fields."""
    e = data.table("events")
    loads = data.table("loads")
    e = e.semi_join(loads.filter(loads.superseded_by.isnull()), "load_id")
    a = data.areas()
    scope = a.filter(a.lad_code.isin(data.scope.lad_codes)).select("lsoa21_code",
                                                                    in_scope=ibis.literal(1))
    e = e.left_join(scope, "lsoa21_code")
    i = data.table("involvements")
    people = i.group_by("event_id").aggregate(
        people=i.count(), aged=(i.age.notnull() | i.age_band.notnull()).sum(),
        sexed=i.sex.notnull().sum())
    e = e.left_join(people, "event_id")
    expr = e.group_by(["source", "month"]).aggregate(
        events=e.count(), in_area=e.in_area.fill_null(False).sum(),
        in_scope=e.in_scope.notnull().sum(), lsoa=e.lsoa21_code.notnull().sum(),
        occurred_at=e.occurred_at.notnull().sum(), offence_code=e.offence_code.notnull().sum(),
        weapon=e.weapon.notnull().sum(), people=e.people.fill_null(0).sum(),
        age=e.aged.fill_null(0).sum(), sex=e.sexed.fill_null(0).sum())
    return data.fetch(expr)


def aggregate_periods(data: Data) -> pl.DataFrame:
    a = data.table("aggregates")
    expr = a.group_by(["source", "period_start", "period_end"]).aggregate(rows=a.count())
    return data.fetch(expr)


def quarantine_reasons(data: Data) -> pl.DataFrame:
    q = data.table("quarantine")
    loads = data.table("loads")
    q = q.semi_join(loads.filter(loads.superseded_by.isnull()), "load_id")
    expr = q.group_by(["source", "column", "reason"]).aggregate(rows=q.count())
    return data.fetch(expr)


def geocoding(data: Data) -> pl.DataFrame:
    """Per source: how events were placed (LSOA supplied, geocoded by method, not placed)."""
    e = data.table("events")
    loads = data.table("loads")
    e = e.semi_join(loads.filter(loads.superseded_by.isnull()), "load_id")
    how = ibis.cases(
        (e.location_desc.startswith("geocoded by "), e.location_desc.split(":")[0]),
        (e.lsoa21_code.notnull(), "LSOA or coordinates supplied"),
        else_="not placed")
    e = e.mutate(method=how)
    expr = e.group_by(["source", "method"]).aggregate(events=e.count())
    return data.fetch(expr)


# ------------------------------------------------------------------------ months


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def load_months(loads: pl.DataFrame) -> pl.DataFrame:
    """(source, month) for every month a current load's period covers."""
    rows = [{"source": r["source"], "month": m}
            for r in loads.iter_rows(named=True) if r["period_start"] and r["period_end"]
            for m in month_range(as_date(r["period_start"]), as_date(r["period_end"]))]
    return pl.DataFrame(rows, schema={"source": pl.String, "month": pl.Date}).unique()


def aggregate_months(periods: pl.DataFrame) -> pl.DataFrame:
    rows = [{"source": r["source"], "month": m, "rows": r["rows"]}
            for r in periods.iter_rows(named=True)
            for m in month_range(as_date(r["period_start"]), as_date(r["period_end"]))]
    frame = pl.DataFrame(rows, schema={"source": pl.String, "month": pl.Date,
                                       "rows": pl.Int64})
    return frame.group_by("source", "month").agg(aggregate_rows=pl.col("rows").sum())


def as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def ranges(months: list[date]) -> str:
    """'Mar 2019 to Dec 2023; May 2024 to Dec 2024' for a sorted list of months."""
    spans: list[list[date]] = []
    for m in sorted(months):
        if spans and months_between(spans[-1][1], m) == 1:
            spans[-1][1] = m
        else:
            spans.append([m, m])
    return "; ".join(f"{a:%b %Y}" if a == b else f"{a:%b %Y} to {b:%b %Y}" for a, b in spans)


# ------------------------------------------------------------------------ tables


def loads_table(loads: pl.DataFrame, data: Data) -> pl.DataFrame:
    start, end = data.scope.start, data.scope.end
    return loads.with_columns(
        period_start=pl.col("period_start").cast(pl.Date),
        period_end=pl.col("period_end").cast(pl.Date),
    ).with_columns(
        quarantine_share=pl.col("rows_quarantined") / pl.col("rows_read"),
        out_of_area_share=pl.col("rows_out_of_area") / pl.col("rows_loaded"),
        months_to_load=pl.struct("period_end", "loaded_at").map_elements(
            lambda s: months_between(s["period_end"], s["loaded_at"].date())
            if s["period_end"] else None, return_dtype=pl.Int32),
        in_period=(pl.col("period_start") <= end) & (pl.col("period_end") >= start),
    ).select("source", "load_id", "partner", "scope", "file_name", "period_start",
             "period_end", "in_period", "rows_read", "rows_loaded", "rows_quarantined",
             "quarantine_share", "rows_out_of_area", "out_of_area_share", "status",
             "loaded_at", "months_to_load", "definition_version")


def monthly_table(events: pl.DataFrame, loads: pl.DataFrame, aggs: pl.DataFrame,
                  data: Data) -> pl.DataFrame:
    """Every loaded source x every month of the scope period, zeros where nothing."""
    sources = sorted(set(loads["source"].to_list()))
    grid = pl.DataFrame({"source": sources}).join(
        pl.DataFrame({"month": data.scope.months}, schema={"month": pl.Date}), how="cross")
    covered = load_months(loads).with_columns(load=pl.lit(True))
    frame = (grid.join(covered, ["source", "month"], "left")
             .join(events.with_columns(pl.col("month").cast(pl.Date)), ["source", "month"],
                   "left")
             .join(aggregate_months(aggs), ["source", "month"], "left"))
    counts = ["events", "in_area", "in_scope", *FIELDS, "people", "aggregate_rows"]
    frame = frame.with_columns(pl.col(c).fill_null(0) for c in counts).with_columns(
        has_load=pl.col("load").fill_null(False),
        has_records=(pl.col("events") + pl.col("aggregate_rows")) > 0)
    supplied = supplied_fields(events)
    shares = [share(f, supplied) for f in FIELDS]
    in_area = pl.when(pl.col("events") > 0).then(pl.col("in_area") / pl.col("events"))
    return frame.with_columns(in_area.alias("in_area_share"), *shares).select(
        "source", "month", "has_load", "has_records", "events", "aggregate_rows",
        "in_scope", "in_area_share", *(f"{f}_share" for f in FIELDS)
    ).sort("source", "month")


def supplied_fields(events: pl.DataFrame) -> pl.DataFrame:
    """Per source: whether it ever fills each field in (else completeness is not shown)."""
    return events.group_by("source").agg(
        *(pl.col(f).sum().gt(0).alias(f"{f}_supplied") for f in FIELDS))


def share(field: str, supplied: pl.DataFrame) -> pl.Expr:
    base = "people" if field in ("age", "sex") else "events"
    flag = supplied.select("source", f"{field}_supplied")
    lookup = dict(zip(flag["source"], flag[f"{field}_supplied"], strict=True))
    known = [s for s, ok in lookup.items() if ok]
    return (pl.when(pl.col("source").is_in(known) & (pl.col(base) > 0))
            .then(pl.col(field) / pl.col(base)).alias(f"{field}_share"))


def sources_table(loads: pl.DataFrame, monthly: pl.DataFrame, events: pl.DataFrame,
                  superseded: pl.DataFrame, today: date) -> pl.DataFrame:
    rows = []
    for source in REGISTRY:
        mine = loads.filter(pl.col("source") == source)
        months = monthly.filter(pl.col("source") == source)
        ev = events.filter(pl.col("source") == source)
        rows.append(source_row(source, mine, months, ev, superseded, today))
    return pl.DataFrame(rows, infer_schema_length=None)


def source_row(source: str, loads: pl.DataFrame, monthly: pl.DataFrame, events: pl.DataFrame,
               superseded: pl.DataFrame, today: date) -> dict:
    read, quarantined = int(loads["rows_read"].sum()), int(loads["rows_quarantined"].sum())
    with_data = sorted(monthly.filter(pl.col("has_records"))["month"].to_list())
    no_load = monthly.filter(~pl.col("has_load"))["month"].to_list()
    no_records = monthly.filter(~pl.col("has_records"))["month"].to_list()
    last = max(as_date(d) for d in loads["period_end"]) if loads.height else None
    n = int(events["events"].sum()) if events.height else 0
    return {
        "source": source, "loaded": loads.height > 0, "loads": loads.height,
        "superseded_loads": int(superseded.filter(pl.col("source") == source).height),
        "rows_read": read, "rows_loaded": int(loads["rows_loaded"].sum()),
        "rows_quarantined": quarantined,
        "quarantine_share": quarantined / read if read else None,
        "events": n, "in_area_share": int(events["in_area"].sum()) / n if n else None,
        "first_month_in_period": with_data[0] if with_data else None,
        "last_month_in_period": with_data[-1] if with_data else None,
        "months_in_period": monthly.height if loads.height else 0,
        "months_with_records": len(with_data),
        "months_without_load": len(no_load) if loads.height else None,
        "months_without_records": len(no_records) if loads.height else None,
        "missing_months": ranges(no_records) if loads.height else "",
        "latest_period_end": last,
        "months_behind_today": months_between(last, today) if last else None,
        "median_months_to_load": loads["months_to_load"].median() if loads.height else None,
        "latest_loaded_at": loads["loaded_at"].max() if loads.height else None,
    }


def reasons_table(reasons: pl.DataFrame) -> pl.DataFrame:
    total = pl.col("rows").sum().over("source")
    return (reasons.with_columns(share_of_quarantined=pl.col("rows") / total,
                                 rank=pl.col("rows").rank("ordinal", descending=True)
                                 .over("source").cast(pl.Int32))
            .filter(pl.col("rank") <= TOP_REASONS).sort("source", "rank")
            .select("source", "rank", "column", "reason", "rows", "share_of_quarantined"))


def geocoding_table(geo: pl.DataFrame) -> pl.DataFrame:
    return geo.with_columns(share=pl.col("events") / pl.col("events").sum().over("source")
                            ).sort("source", "events", descending=[False, True])


def gaps_table(sources: pl.DataFrame, data: Data) -> pl.DataFrame:
    rows = [{"source": r["source"], "kind": "not loaded", "gap": DUTY_ASKS[r["source"]]}
            for r in sources.iter_rows(named=True)
            if not r["loaded"] and r["source"] in DUTY_ASKS]
    for r in sources.iter_rows(named=True):
        if r["loaded"] and r["months_without_records"]:
            rows.append({"source": r["source"], "kind": "months missing", "gap": (
                f"No {r['source']} records for {r['months_without_records']} of the "
                f"{r['months_in_period']} months from {data.scope.start:%b %Y} to "
                f"{data.scope.end:%b %Y}: {r['missing_months']}.")})
    rows += [{"source": None, "kind": "no reader", "gap": text} for text in NO_READER]
    return pl.DataFrame(rows, schema={"source": pl.String, "kind": pl.String,
                                      "gap": pl.String})


# ------------------------------------------------------------------------ analyse


def analyse(data: Data, today: date | None = None) -> list[Result]:
    """Loads, monthly completeness, per-source summary, quarantine reasons, geocoding, gaps."""
    today = today or date.today()
    loads = loads_table(current_loads(data), data)
    t = data.table("loads")
    superseded = data.fetch(t.filter(t.superseded_by.notnull()).select("source", "load_id"))
    events = event_months(data)
    aggs = aggregate_periods(data)
    monthly = monthly_table(events, loads, aggs, data)
    sources = sources_table(loads, monthly, events, superseded, today)
    reasons = reasons_table(quarantine_reasons(data))
    geo = geocoding_table(geocoding(data))
    meta = data.meta(
        "quality-sources", "Data quality by source",
        "Counted from the warehouse's load records (current loads only: loads replaced by a "
        "later file are left out), quarantine, events, involvements and aggregates. Quarantine "
        "share = rows quarantined / rows read. Completeness = share of events (or, for age and "
        "sex, of people involved) with the field filled in; empty where the source never "
        "supplies that field. Geocoding = how each event was placed (the 'geocoded by' method "
        "in location_desc, else LSOA or coordinates supplied, else not placed). Timeliness = "
        "whole months from the end of a file's period to when it was loaded, and from the "
        "latest period loaded to today. Months missing = months of the analysis period with "
        "no load covering them, or with no events or aggregate rows.",
        geography=f"{data.scope.label}: every record loaded (in_scope counts the scope's LSOAs)",
        parameters={"today": today.isoformat(), "top_reasons": TOP_REASONS,
                    "superseded_loads_excluded": superseded.height,
                    "fields": list(FIELDS), "sources_known": list(REGISTRY)},
        caveats=["Quality figures cover every record loaded, including records outside the "
                 "scope's areas; in_scope counts those placed in the scope.",
                 "A month with a load but no records can be a genuine zero for small "
                 "sources; a month with no load is missing data."])
    meta.sources = sorted(set(loads["source"].to_list())) or meta.sources
    meta.loads = sorted(loads["load_id"].to_list())
    return [
        Result(sources, meta),
        Result(loads, like(meta, "quality-loads", "Loads: rows read, loaded and quarantined")),
        Result(monthly, like(meta, "quality-monthly",
                             "Records and completeness by source and month")),
        Result(reasons, like(meta, "quality-quarantine-reasons",
                             "Top reasons rows were quarantined")),
        Result(geo, like(meta, "quality-geocoding", "How events were placed on the map")),
        Result(gaps_table(sources, data), like(meta, "quality-gaps",
                                               "Data the Duty asks for that is not loaded")),
    ]


def like(meta: Meta, name: str, title: str) -> Meta:
    """The same Meta under another name (the Results share one set of queries)."""
    return replace(meta, name=name, title=title, queries=list(meta.queries),
                   caveats=list(meta.caveats), parameters=dict(meta.parameters))
