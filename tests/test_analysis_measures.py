"""Home Office core measures: checked against direct SQL counts and SciPy."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from scipy import stats as sps

from svduty.analysis import measures
from svduty.analysis.data import Data
from svduty.analysis.scope import month_range, resolve_scope
from svduty.partnership import Partnership


def run(root):
    p = Partnership(root)
    wh = p.warehouse(read_only=True)
    scope = resolve_scope(p, wh)
    (result,) = measures.analyse(Data(wh, scope))
    return wh, scope, result


@pytest.fixture(scope="module")
def demo(demo_partnership):
    wh, scope, result = run(demo_partnership)
    yield wh, scope, result
    wh.close()


@pytest.fixture(scope="module")
def devon(devon_police_uk):
    wh, scope, result = run(devon_police_uk)
    yield wh, scope, result
    wh.close()


def pick(table: pl.DataFrame, measure: str, age: str, period: str) -> dict:
    rows = table.filter((pl.col("measure") == measure) & (pl.col("age_group") == age)
                        & (pl.col("period") == period)).to_dicts()
    assert len(rows) == 1
    return rows[0]


def lads(scope) -> str:
    return ", ".join(f"'{c}'" for c in scope.lad_codes)


def knife_sql(wh, scope, first: date, last: date, under_25: bool) -> int:
    young = ("AND EXISTS (SELECT 1 FROM involvements i WHERE i.event_id = e.event_id "
             "AND i.role = 'victim' AND i.age < 25)") if under_25 else ""
    return wh.con.execute(f"""
        SELECT count(DISTINCT e.event_id) FROM events e
        JOIN sv_events s ON s.event_id = e.event_id
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = 'police-recorded' AND e.weapon = 'knife or sharp'
          AND a.lad_code IN ({lads(scope)}) AND e.month BETWEEN ? AND ? {young}""",
                          [first, last]).fetchone()[0]


def test_knife_enabled_counts_equal_a_direct_sql_count(demo):
    wh, scope, result = demo
    table = result.table
    checked = 0
    for r in table.filter(pl.col("measure") == measures.KNIFE_SV).to_dicts():
        expected = knife_sql(wh, scope, max(r["period_start"], scope.start),
                             min(r["period_end"], scope.end), r["age_group"] == "under 25")
        assert r["count"] == expected, r
        checked += 1
    assert checked == table.filter(pl.col("measure") == measures.KNIFE_SV).height >= 8
    latest = pick(table, measures.KNIFE_SV, "all ages", "latest 12 months")
    assert latest["count"] > 100 and latest["months_with_data"] == 12


def test_x99_admissions_equal_a_direct_sum_of_the_aggregates(demo):
    wh, scope, result = demo
    table = result.table
    rows = wh.con.execute(f"""
        SELECT g.period_start, sum(g.value) FILTER (WHERE NOT g.suppressed),
               count(*) FILTER (WHERE g.suppressed),
               sum(g.value) FILTER (WHERE NOT g.suppressed AND g.age_band = '0-24'),
               count(*) FILTER (WHERE g.suppressed AND g.age_band = '0-24')
        FROM aggregates g WHERE g.source = 'hospital-admissions' AND g.icd10 = 'X99'
          AND g.area_code IN (SELECT ward_code FROM areas WHERE lsoa_vintage = 2021
                              AND lad_code IN ({lads(scope)}))
        GROUP BY 1 ORDER BY 1""").fetchall()
    assert rows
    for start, total, hidden, young, young_hidden in rows:
        label = f"FY {start.year}/{(start.year + 1) % 100:02d}"
        every = pick(table, measures.ADMISSIONS, "all ages", label)
        under = pick(table, measures.ADMISSIONS, "under 25", label)
        assert every["count"] == (total or 0) and every["suppressed_cells"] == hidden
        assert under["count"] == (young or 0) and under["suppressed_cells"] == young_hidden
        if hidden:  # a count with suppressed cells is a lower bound: no rate is invented
            assert every["rate_per_100k"] is None and "suppressed" in every["note"]


def test_rate_interval_and_change_match_scipy(demo):
    _, _, result = demo
    r = pick(result.table, measures.KNIFE_SV, "all ages", "latest 12 months")
    prev = pick(result.table, measures.KNIFE_SV, "all ages", "previous 12 months")
    k, pop = r["count"], r["residents"]
    assert r["rate_per_100k"] == pytest.approx(k / pop * 1e5)
    assert r["rate_lower"] == pytest.approx(sps.chi2.ppf(0.025, 2 * k) / 2 / pop * 1e5)
    assert r["rate_upper"] == pytest.approx(sps.chi2.ppf(0.975, 2 * k + 2) / 2 / pop * 1e5)
    test = sps.binomtest(k, k + prev["count"], 0.5)
    assert r["p_value"] == pytest.approx(test.pvalue)
    assert r["change_ratio"] == pytest.approx(k / prev["count"])
    ci = test.proportion_ci(0.95, method="exact")
    assert r["change_lower"] == pytest.approx(ci.low / (1 - ci.low))
    assert r["significant"] == (test.pvalue < 0.05)


def test_homicide_uses_the_catalogue_codes(demo):
    wh, scope, result = demo
    codes = result.meta.parameters["homicide_codes"]
    assert {"1", "4.1", "4.2", "4.10"} <= set(codes)
    expected = wh.con.execute(f"""
        SELECT count(*) FROM events e JOIN areas a ON a.lsoa_code = e.lsoa21_code
        AND a.lsoa_vintage = 2021 WHERE e.source = 'police-recorded'
        AND e.offence_code IN ({", ".join(f"'{c}'" for c in codes)})
        AND NOT coalesce(e.domestic, false) AND a.lad_code IN ({lads(scope)})
        AND e.month BETWEEN ? AND ?""", [month_range(scope.start, scope.end)[-12],
                                        scope.end]).fetchone()[0]
    assert pick(result.table, measures.HOMICIDE, "all ages",
                "latest 12 months")["count"] == expected


def test_police_uk_proxy_gives_no_fake_knife_or_homicide_figures(devon):
    _, _, result = devon
    police = result.table.filter(pl.col("measure") != measures.ADMISSIONS)
    assert police.height > 0
    assert police["count"].is_null().all() and police["rate_per_100k"].is_null().all()
    assert not police["available"].any()
    assert any("unavailable" in c for c in result.meta.caveats)
    assert set(result.table["age_group"]) == {"all ages", "under 25"}


def test_result_writes_with_its_codes_documented(demo, tmp_path):
    from svduty.analysis.result import read_result

    _, _, result = demo
    csv, _ = result.write(tmp_path)
    back = read_result(csv)
    assert back.table.height == result.table.height
    assert back.meta.parameters["admissions_icd10"] == ["X99"]
    assert {"hospital-admissions", "police-recorded"} <= set(back.meta.sources)
