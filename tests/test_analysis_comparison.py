"""Comparison with the force area: counts, rates, exact tests and ranks checked against hand
counts in DuckDB SQL on real Devon & Cornwall police.uk data, and the police.uk fallback on
the demo (whose recorded-crime extract covers Anytown only)."""

from __future__ import annotations

import polars as pl
import pytest
from scipy import stats

from svduty.analysis import comparison
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership

PLYMOUTH_LA, PLYMOUTH_CSP, FORCE = "E06000026", "E22000056", "E23000035"
ALL = comparison.ALL


def run(root, area=None):
    p = Partnership(root)
    wh = p.warehouse(read_only=True)
    data = Data(wh, resolve_scope(p, wh, area))
    return wh, data, comparison.analyse(data)


@pytest.fixture(scope="module")
def plymouth(devon_police_uk):
    wh, data, results = run(devon_police_uk, "Plymouth")
    yield wh, data, results[0]
    wh.close()


def hand_counts(wh, data) -> dict[str, int]:
    """Serious violence per CSP of the force, by SQL."""
    rows = wh.con.execute("""
        SELECT a.csp_code, count(*) FROM events e JOIN sv_events v USING (event_id)
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = 'police-uk' AND a.pfa_code = ? AND e.month BETWEEN ? AND ?
        GROUP BY 1""", [FORCE, data.scope.start, data.scope.end]).fetchall()
    return dict(rows)


def hand_residents(wh) -> dict[str, float]:
    rows = wh.con.execute("""
        SELECT a.csp_code, sum(p.residents) FROM populations p JOIN areas a
        ON a.lsoa_code = p.lsoa_code AND a.lsoa_vintage = 2021
        WHERE p.lsoa_vintage = 2021 AND a.pfa_code = ? GROUP BY 1""", [FORCE]).fetchall()
    return {k: float(v) for k, v in rows}


def row(table: pl.DataFrame, level: str, code: str, category: str = ALL) -> dict:
    return table.filter((pl.col("level") == level) & (pl.col("code") == code)
                        & (pl.col("category") == category)).row(0, named=True)


def test_plymouth_against_force_matches_sql(plymouth):
    wh, data, result = plymouth
    t = result.table
    counts, residents = hand_counts(wh, data), hand_residents(wh)
    ply, force = row(t, "csp", PLYMOUTH_CSP), row(t, "pfa", FORCE)
    assert ply["count"] == counts[PLYMOUTH_CSP] > 0
    assert force["count"] == sum(counts.values())
    assert ply["residents"] == residents[PLYMOUTH_CSP]
    assert force["residents"] == sum(residents.values())
    assert ply["rate_per_1000"] == pytest.approx(
        counts[PLYMOUTH_CSP] / residents[PLYMOUTH_CSP] * 1000)
    lo = stats.chi2.ppf(0.025, 2 * ply["count"]) / 2 / ply["residents"] * 1000
    assert ply["rate_lower"] == pytest.approx(lo)
    # exact conditional test against the rest of the force, done by hand
    rest = force["count"] - ply["count"]
    rest_pop = force["residents"] - ply["residents"]
    test = stats.binomtest(ply["count"], force["count"],
                           ply["residents"] / force["residents"])
    assert ply["p_value"] == pytest.approx(test.pvalue)
    assert ply["rr_vs_rest"] == pytest.approx(
        (ply["count"] / ply["residents"]) / (rest / rest_pop))
    assert ply["rr_lower"] < ply["rr_vs_rest"] < ply["rr_upper"]
    assert ply["ratio_to_force"] == pytest.approx(ply["rate_per_1000"]
                                                 / force["rate_per_1000"])
    assert ply["in_scope"] and ply["source"] == "police-uk" and ply["proxy"]
    assert ply["months_with_data"] == 21
    # the local authority row for a one-LA CSP is the same count
    assert row(t, "la", PLYMOUTH_LA)["count"] == ply["count"]


def test_ranks_among_the_force_csps_match_sql(plymouth):
    wh, data, result = plymouth
    counts, residents = hand_counts(wh, data), hand_residents(wh)
    rates = {c: counts.get(c, 0) / residents[c] for c in residents}
    order = sorted(rates, key=rates.get, reverse=True)
    csps = result.table.filter((pl.col("level") == "csp") & (pl.col("category") == ALL))
    assert csps.height == len(residents) == 8
    got = dict(zip(csps["code"], csps["rank"], strict=True))
    assert [got[c] for c in order] == list(range(1, 9))
    assert csps.filter(pl.col("in_scope"))["code"].to_list() == [PLYMOUTH_CSP]


def test_categories_add_up_and_match_sql(plymouth):
    wh, data, result = plymouth
    t = result.table
    by_cat = dict(wh.con.execute("""
        SELECT v.sv_category, count(*) FROM events e JOIN sv_events v USING (event_id)
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = 'police-uk' AND a.lad_code = ? AND e.month BETWEEN ? AND ?
        GROUP BY 1""", [PLYMOUTH_LA, data.scope.start, data.scope.end]).fetchall())
    for category, n in by_cat.items():
        assert row(t, "csp", PLYMOUTH_CSP, category)["count"] == n
    sums = (t.filter(pl.col("category") != ALL).group_by("level", "code")
            .agg(pl.col("count").sum()).join(t.filter(pl.col("category") == ALL)
                                            .select("level", "code", total="count"),
                                            ["level", "code"]))
    assert (sums["count"] == sums["total"]).all()


def test_meta_says_england_comparison_is_not_possible(plymouth):
    _, _, result = plymouth
    text = " ".join(result.meta.caveats)
    assert "England" in text and "not possible" in text and "proxy" in text
    assert result.meta.parameters["comparison_source"] == "police-uk"
    assert result.meta.sources == ["police-uk"] and result.meta.queries


def test_demo_falls_back_to_police_uk_for_the_force_comparison(demo_partnership):
    wh, data, results = run(demo_partnership)
    try:
        t = results[0].table
        assert data.scope.police_source == "police-recorded"
        assert set(t["source"]) == {"police-uk"} and t["proxy"].all()
        assert "does not cover" in results[0].meta.parameters["source_choice"]
        csps = t.filter((pl.col("level") == "csp") & (pl.col("category") == ALL))
        assert csps.height == 2  # Anytown and Eastbrook
        anytown = csps.filter(pl.col("in_scope")).row(0, named=True)
        n = wh.con.execute("""
            SELECT count(*) FROM events e JOIN sv_events v USING (event_id)
            JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
            WHERE e.source = 'police-uk' AND a.csp_code = ?""", [anytown["code"]]).fetchone()[0]
        assert anytown["count"] == n
        # the demo's town (deprivation effect, hotspots) has the higher rate
        assert anytown["rank"] == 1 and anytown["comparison"].startswith("higher")
        assert any("like-for-like" in c for c in results[0].meta.caveats)
    finally:
        wh.close()
