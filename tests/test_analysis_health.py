"""Health view: ED tables reconcile to event counts, admissions to the aggregates, and the
under-reporting gap recovers the demo's planted share."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from svduty.analysis import health
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership


@pytest.fixture(scope="module")
def demo(demo_partnership: Path):
    p = Partnership(demo_partnership)
    wh = p.warehouse(read_only=True)
    scope = resolve_scope(p, wh)
    results = {r.name: r for r in health.analyse(Data(wh, scope))}
    truth = json.loads((demo_partnership / "ground-truth.json").read_text())
    yield {"wh": wh, "scope": scope, "results": results, "truth": truth}
    wh.close()


def sql(demo: dict, query: str) -> list[tuple]:
    return demo["wh"].con.execute(query).fetchall()


def ed_in_period(demo: dict) -> str:
    s = demo["scope"]
    return (f"SELECT * FROM events WHERE source = 'ed-istv' "
            f"AND month BETWEEN DATE '{s.start}' AND DATE '{s.end}'")


def lads(demo: dict) -> str:
    return ", ".join(f"'{c}'" for c in demo["scope"].lad_codes)


def geocoded_sql(demo: dict) -> str:
    return f"""SELECT e.* FROM ({ed_in_period(demo)}) e JOIN areas a
               ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
               WHERE a.lad_code IN ({lads(demo)})"""


def test_ed_tables_reconcile_to_event_counts(demo):
    total = sql(demo, f"SELECT count(*) FROM ({ed_in_period(demo)})")[0][0]
    placed = sql(demo, f"SELECT count(*) FROM ({geocoded_sql(demo)})")[0][0]
    r = demo["results"]
    monthly = r["health-ed-monthly"].table
    assert monthly["attendances"].sum() == total
    assert monthly["geocoded_in_area"].sum() == placed
    assert (monthly["geocoded_in_area"] + monthly["geocoded_elsewhere"]
            + monthly["not_geocoded"] == monthly["attendances"]).all()
    assert r["health-ed-hour-weekday"].table["attendances"].sum() == total
    assert r["health-ed-lsoa"].table["attendances"].sum() == placed
    methods = r["health-ed-method"].table.group_by("dimension").agg(pl.col("attendances").sum())
    assert (methods["attendances"] == total).all() and methods.height == 3
    ages = r["health-ed-age-sex"].table
    assert ages.filter(pl.col("sex") == "all")["attendances"].sum() == total
    assert ages.filter(pl.col("sex") != "all")["attendances"].sum() == total
    assert r["health-ed-monthly"].meta.parameters["share_geocoded"] == pytest.approx(
        sql(demo, f"SELECT avg((lsoa21_code IS NOT NULL)::int) FROM ({ed_in_period(demo)})")
        [0][0], abs=1e-4)


def test_hour_weekday_matches_sql(demo):
    rows = sql(demo, f"""SELECT isodow(occurred_at), hour(occurred_at), count(*)
                         FROM ({ed_in_period(demo)}) GROUP BY ALL""")
    table = demo["results"]["health-ed-hour-weekday"].table
    assert table.height == 7 * 24
    got = {(w, h): n for w, _, h, n in table.iter_rows()}
    for w, h, n in rows:
        assert got[(w, h)] == n


def test_lsoa_counts_and_method_match_sql(demo):
    top = sql(demo, f"""SELECT lsoa21_code, count(*) FROM ({geocoded_sql(demo)})
                        GROUP BY 1 ORDER BY 2 DESC LIMIT 1""")[0]
    table = demo["results"]["health-ed-lsoa"].table
    assert table.row(0, named=True)["lsoa21_code"] == top[0]
    assert table.row(0, named=True)["attendances"] == top[1]
    knives = sql(demo, f"SELECT count(*) FROM ({ed_in_period(demo)}) "
                       "WHERE weapon = 'knife or sharp'")[0][0]
    methods = demo["results"]["health-ed-method"].table
    assert methods.filter((pl.col("dimension") == "weapon")
                          & (pl.col("category") == "knife or sharp"))["attendances"].item() \
        == knives


def test_admissions_reconcile_to_aggregates(demo):
    known, cells, suppressed = sql(demo, f"""
        SELECT coalesce(sum(value), 0), count(*), sum(suppressed::int) FROM aggregates g
        WHERE source = 'hospital-admissions'
          AND substr(icd10, 1, 3) BETWEEN 'X85' AND 'Y09'
          AND area_code IN (SELECT ward_code FROM areas WHERE lsoa_vintage = 2021
                            AND lad_code IN ({lads(demo)}))""")[0]
    table = demo["results"]["health-admissions"].table
    assert table["admissions_known"].sum() == known
    assert table["cells"].sum() == cells
    assert table["suppressed_cells"].sum() == suppressed
    assert (table["admissions_min"] <= table["admissions_max"]).all()
    assert all("X85" <= code[:3] <= "Y09" for code in table["icd10"])


def test_under_reporting_gap_recovers_planted_share(demo):
    table = demo["results"]["health-under-reporting"].table
    primary = table.filter("primary").row(0, named=True)
    planted = demo["truth"]["under_reporting"]["planted_unreported_share"]
    assert abs(primary["gap_adjusted"] - planted) <= 0.02
    assert primary["gap_adjusted_lower"] < primary["gap_adjusted"] < primary["gap_adjusted_upper"]
    # chance matches make the raw gap smaller than the truth
    assert primary["gap"] < planted
    for row in table.iter_rows(named=True):
        assert 0 <= row["chance_match_rate"] < 1
        assert row["matched"] + row["unmatched"] == row["attendances"]


def test_under_reporting_denominator_and_wilson_interval(demo):
    placed = sql(demo, f"SELECT count(*) FROM ({geocoded_sql(demo)})")[0][0]
    row = demo["results"]["health-under-reporting"].table.filter("primary").row(0, named=True)
    assert row["attendances"] == placed
    low, high = proportion_confint(row["unmatched"], row["attendances"], method="wilson")
    assert row["gap_lower"] == pytest.approx(low)
    assert row["gap_upper"] == pytest.approx(high)


def test_chance_match_rate_estimate_is_close_to_the_true_one(demo):
    """Among attendances the demo never reported, the share that still match a police record
    (a chance match) should be what the week-shift estimate says."""
    reported = demo["truth"]["under_reporting"]["reported_attendance_ids"]
    codes = ", ".join(f"'{c}'" for c in health.INJURY_CODES)
    true_rows = demo["wh"].con.execute(f"""
        WITH ed AS (
          SELECT e.event_id, e.source_record_id, e.lsoa21_code, e.occurred_at, i.sex,
                 CAST(regexp_extract(i.age_band, '^(\\d+)', 1) AS INT) AS lo,
                 coalesce(TRY_CAST(regexp_extract(i.age_band, '-(\\d+)$', 1) AS INT), 200) AS hi
          FROM ({geocoded_sql(demo)}) e JOIN involvements i USING (event_id)),
        po AS (
          SELECT e.lsoa21_code, e.occurred_at, i.sex, i.age FROM events e
          JOIN involvements i USING (event_id)
          WHERE e.source = 'police-recorded' AND i.role = 'victim'
            AND e.offence_code IN ({codes})),
        hit AS (
          SELECT DISTINCT ed.event_id FROM ed JOIN po ON po.lsoa21_code = ed.lsoa21_code
          AND abs(epoch(po.occurred_at) - epoch(ed.occurred_at)) <= 86400
          AND po.sex = ed.sex AND po.age BETWEEN ed.lo AND ed.hi)
        SELECT list_contains(?, source_record_id) AS reported,
               avg((hit.event_id IS NOT NULL)::int), count(*)
        FROM ed LEFT JOIN hit USING (event_id) GROUP BY 1""", [reported]).fetchall()
    rates = {r: (p, n) for r, p, n in true_rows}
    row = demo["results"]["health-under-reporting"].table.filter("primary").row(0, named=True)
    assert rates[True][0] > 0.95  # reported attendances find their police record
    assert row["chance_match_rate"] == pytest.approx(rates[False][0], abs=0.01)
    assert row["matched"] == round(rates[True][0] * rates[True][1]
                                   + rates[False][0] * rates[False][1])


def test_devon_without_health_data_has_no_health_results(devon_police_uk):
    p = Partnership(devon_police_uk)
    with p.warehouse(read_only=True) as wh:
        assert health.analyse(Data(wh, resolve_scope(p, wh))) == []
