"""Volume and trend: checked against hand counts in SQL, SciPy, and the demo's planted
seasonality; missing months in the real Devon data must be reported, never filled."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from svduty.analysis import trend
from svduty.analysis.data import Data
from svduty.analysis.scope import month_range, resolve_scope
from svduty.partnership import Partnership


def run(root, period=None):
    p = Partnership(root)
    wh = p.warehouse(read_only=True)
    scope = resolve_scope(p, wh, period=period)
    results = {r.name: r for r in trend.analyse(Data(wh, scope))}
    return wh, scope, results


@pytest.fixture(scope="module")
def devon(devon_police_uk):
    wh, scope, results = run(devon_police_uk)
    yield wh, scope, results
    wh.close()


@pytest.fixture(scope="module")
def demo(demo_partnership):
    wh, scope, results = run(demo_partnership)
    yield wh, scope, results
    wh.close()


def lads(scope) -> str:
    return ", ".join(f"'{c}'" for c in scope.lad_codes)


def sql_months_with_events(wh, scope) -> set[date]:
    rows = wh.con.execute(f"""
        SELECT DISTINCT e.month FROM events e JOIN areas a ON a.lsoa_code = e.lsoa21_code
        AND a.lsoa_vintage = 2021 WHERE e.source = '{scope.police_source}'
        AND a.lad_code IN ({lads(scope)})""").fetchall()
    return {r[0] for r in rows}


def sql_sv_count(wh, scope, months: list[date]) -> int:
    return wh.con.execute(f"""
        SELECT count(*) FROM events e JOIN sv_events s ON s.event_id = e.event_id
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = '{scope.police_source}' AND a.lad_code IN ({lads(scope)})
        AND e.month IN ({", ".join(f"DATE '{m}'" for m in months)})""").fetchone()[0]


def partnership_all(results) -> pl.DataFrame:
    m = results["trend-monthly"].table
    return m.filter((pl.col("level") == "partnership")
                    & (pl.col("sv_category") == trend.ALL)).sort("month")


def test_devon_gaps_are_reported_as_missing_not_zero(devon):
    wh, scope, results = devon
    expected = [m for m in scope.months if m not in sql_months_with_events(wh, scope)]
    assert expected  # the real data has gaps
    assert trend.runs(expected) == [(date(2019, 3, 1), date(2023, 12, 1)),
                                    (date(2024, 5, 1), date(2024, 12, 1))]
    part = partnership_all(results)
    missing = part.filter(~pl.col("month_complete"))
    assert missing["month"].to_list() == expected
    assert missing["count"].is_null().all() and missing["rate_per_1000"].is_null().all()
    breaks = results["trend-breaks"].table.filter(pl.col("kind") == "missing months")
    assert list(zip(breaks["first_month"], breaks["last_month"], strict=True)) == \
        trend.runs(expected)
    # rolling 12-month totals never span a missing month
    assert part.filter(pl.col("month") < date(2025, 12, 1))["rolling_12m"].is_null().all()
    assert part.filter(pl.col("month") == date(2025, 12, 1))["rolling_12m"].item() == \
        sql_sv_count(wh, scope, month_range(date(2025, 1, 1), date(2025, 12, 1)))


def test_devon_year_on_year_change_matches_a_hand_count(devon):
    wh, scope, results = devon
    after = month_range(date(2025, 1, 1), date(2025, 4, 1))  # complete in both years
    before = month_range(date(2024, 1, 1), date(2024, 4, 1))
    n_after, n_before = sql_sv_count(wh, scope, after), sql_sv_count(wh, scope, before)
    r = results["trend-change"].table.filter(
        (pl.col("level") == "partnership") & (pl.col("sv_category") == trend.ALL)).to_dicts()[0]
    assert (r["count_before"], r["count_after"], r["months_compared"]) == \
        (n_before, n_after, 4)
    test = sps.binomtest(n_after, n_after + n_before, 0.5)
    assert r["p_value"] == pytest.approx(test.pvalue, abs=1e-12)
    assert r["ratio"] == pytest.approx(n_after / n_before)
    ci = test.proportion_ci(0.95, method="exact")
    assert r["ratio_upper"] == pytest.approx(ci.high / (1 - ci.high))
    assert any("compares those months only" in c for c in results["trend-change"].meta.caveats)


def test_devon_seasonality_declines_and_outlook_uses_2025_only(devon):
    _, _, results = devon
    stl = results["trend-seasonality"]
    assert stl.table.height == 0
    assert any("Seasonality not estimated" in c for c in stl.meta.caveats)
    out = results["trend-outlook"]
    observed = out.table.filter(pl.col("kind") == "observed")
    assert set(observed["month"]) == set(month_range(date(2025, 1, 1), date(2025, 12, 1)))
    assert out.meta.parameters["run"][0] == "2025-01-01"
    assert any("no seasonal term" in c for c in out.meta.caveats)


def test_devon_vintage_change_is_annotated(devon):
    _, _, results = devon
    kinds = results["trend-breaks"].table
    vintage = kinds.filter(pl.col("kind") == "LSOA vintage change")
    assert vintage.height == 1 and vintage["first_month"].item() == date(2024, 1, 1)


def test_monthly_rate_interval_matches_scipy(devon):
    _, _, results = devon
    r = partnership_all(results).filter(pl.col("month_complete")).row(0, named=True)
    k, pop = r["count"], r["residents"]
    assert r["rate_per_1000"] == pytest.approx(k / pop * 1000)
    assert r["rate_lower"] == pytest.approx(sps.chi2.ppf(0.025, 2 * k) / 2 / pop * 1000)
    assert r["rate_upper"] == pytest.approx(sps.chi2.ppf(0.975, 2 * k + 2) / 2 / pop * 1000)


def test_demo_seasonal_peak_is_in_summer(demo):
    _, _, results = demo
    stl = results["trend-seasonality"].table.filter(pl.col("sv_category") == trend.ALL)
    assert stl.height >= 24
    by_month = (stl.with_columns(cal=pl.col("month").dt.month()).group_by("cal")
                .agg(pl.col("seasonal").mean()).sort("cal"))
    seasonal = dict(zip(by_month["cal"], by_month["seasonal"], strict=True))
    # planted: January 0.92 .. July 1.11 of the mean; one 42-month run is noisy month by
    # month, so compare the seasons: summer (May-August) above winter (November-February)
    summer = np.mean([seasonal[m] for m in (5, 6, 7, 8)])
    winter = np.mean([seasonal[m] for m in (11, 12, 1, 2)])
    assert summer > winter + 10
    assert seasonal[7] > seasonal[1] and seasonal[7] > seasonal[2]


def test_demo_outlook_intervals_widen_and_cover_held_out_months(demo, demo_partnership):
    _, _, full = demo
    wh, _, fit = run(demo_partnership, period="2022-04..2024-09")
    wh.close()
    fc = fit["trend-outlook"].table.filter((pl.col("kind") == "forecast")
                                           & (pl.col("sv_category") == trend.ALL))
    assert fc.height == 12
    width = (fc["pi_upper"] - fc["pi_lower"]).to_numpy()
    assert np.all(np.diff(width) >= -1e-9) and width[-1] > width[0]
    actual = partnership_all(full).select("month", "count")
    both = fc.join(actual, on="month")
    assert both.height == 12
    inside = ((both["count_right"] >= both["pi_lower"])
              & (both["count_right"] <= both["pi_upper"])).sum()
    assert inside >= 9  # 95% intervals; a non-seasonal model may miss a peak month
    assert fit["trend-outlook"].meta.parameters["chosen"][trend.ALL]["model"].startswith("ETS")


def test_harm_weight_totals_and_missing_weights(demo):
    wh, scope, results = demo
    harm = results["trend-harm"].table.filter((pl.col("window") == "whole period")
                                              & (pl.col("sv_category") == trend.ALL)).row(
        0, named=True)
    total, unweighted = wh.con.execute(f"""
        SELECT sum(s.harm_weight), count(*) FILTER (WHERE s.harm_weight IS NULL)
        FROM events e JOIN sv_events s ON s.event_id = e.event_id
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = '{scope.police_source}' AND a.lad_code IN ({lads(scope)})""").fetchone()
    assert harm["harm_weight_total"] == pytest.approx(total)
    assert harm["events_without_weight"] == unweighted > 0


def test_results_write_and_read_back(devon, tmp_path):
    from svduty.analysis.result import read_result

    _, _, results = devon
    for result in results.values():
        assert result.name.startswith("trend-")
        csv, _ = result.write(tmp_path)
        back = read_result(csv)
        assert back.table.height == result.table.height
        assert back.meta.sources == ["police-uk"] and back.meta.queries
