"""Times analyses: hour x weekday, month and season, school term against holiday and the
night-time economy, each checked against an independent count (DuckDB SQL, SciPy) on the
demo and on real Devon & Cornwall police.uk data."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dateutil.easter import easter as dateutil_easter
from scipy import stats

from svduty.analysis import times
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership
from svduty.warehouse import connect


def sql(root, query: str, params: list | None = None) -> list[tuple]:
    with connect(root / "warehouse.duckdb") as con:
        return con.execute(query, params or []).fetchall()


def run(root):
    p = Partnership(root)
    with p.warehouse(read_only=True) as wh:
        scope = resolve_scope(p, wh)
        return scope, {r.name: r for r in times.analyse(Data(wh, scope))}


@pytest.fixture(scope="module")
def demo(demo_partnership):
    scope, results = run(demo_partnership)
    return demo_partnership, scope, results


@pytest.fixture(scope="module")
def devon(devon_police_uk):
    scope, results = run(devon_police_uk)
    return devon_police_uk, scope, results


def scoped(scope, source: str, sv: bool = True) -> tuple[str, list]:
    """FROM/WHERE for events of `source` in the scope (SV only with `sv`), and parameters."""
    lads = ", ".join("?" * len(scope.lad_codes))
    join = "JOIN sv_events s USING (event_id)" if sv else ""
    return (f"""FROM events e {join} JOIN areas a ON a.lsoa_code = e.lsoa21_code
                AND a.lsoa_vintage = 2021 WHERE e.source = ? AND a.lad_code IN ({lads})
                AND e.month BETWEEN ? AND ?""",
            [source, *scope.lad_codes, scope.start, scope.end])


# ------------------------------------------------------------------- hour x weekday


@pytest.mark.parametrize(("name", "source", "sv"), [
    ("times-hour-weekday", "police-recorded", True), ("times-ed-hour-weekday", "ed-istv", False)])
def test_hour_weekday_cells_equal_a_sql_count(demo, name, source, sv):
    root, scope, results = demo
    where, params = scoped(scope, source, sv)
    expected = {(wd, h): n for wd, h, n in sql(root, f"""
        SELECT isodow(e.occurred_at), hour(e.occurred_at), count(*) {where}
        AND e.occurred_at IS NOT NULL GROUP BY ALL""", params)}
    table = results[name].table
    assert table.height == 168 and table["count"].min() >= 0
    got = {(wd, h): n for wd, h, n in table.select("weekday", "hour", "count").iter_rows()}
    assert got == {cell: expected.get(cell, 0) for cell in got}
    assert table["count"].sum() == sum(expected.values()) > 1000
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.filter(table["weekday"] == 1)["weekday_name"].unique().to_list() == ["Monday"]


def test_ed_matrix_says_what_it_left_out(demo):
    root, scope, results = demo
    meta = results["times-ed-hour-weekday"].meta
    assert meta.sources == ["ed-istv"]
    left_out = sql(root, """SELECT count(*) FROM events WHERE source = 'ed-istv' AND
        lsoa21_code IS NULL AND month BETWEEN ? AND ?""", [scope.start, scope.end])[0][0]
    assert meta.parameters["ungeocoded_attendances_left_out"] == left_out > 0


def test_demo_hours_peak_in_the_evening_not_small_hours(demo):
    table = demo[2]["times-hour-weekday"].table
    by_hour = table.group_by("hour").agg(n=pl.col("count").sum()).sort("hour")["n"].to_numpy()
    assert by_hour[17:22].mean() > 3 * by_hour[4:7].mean()


# ------------------------------------------------------------------- month and season


def check_month_of_year(root, scope, result, source):
    where, params = scoped(scope, source)
    counts = dict(sql(root, f"SELECT month(e.month), count(*) {where} GROUP BY 1", params))
    where_all, _ = scoped(scope, source, sv=False)
    months = [m for (m,) in sql(root, f"SELECT DISTINCT e.month {where_all}", params)]
    overall = sum(counts.values()) / len(months)
    table = result.table
    assert table.height == 12 and table["months_covered"].sum() == len(months)
    for row in table.iter_rows(named=True):
        n = sum(1 for m in months if m.month == row["month_of_year"])
        assert row["months_covered"] == n and row["count"] == counts.get(row["month_of_year"], 0)
        assert row["seasonal_index"] == pytest.approx(row["count"] / n / overall)
        lower = stats.chi2.ppf(0.025, 2 * row["count"]) / 2 / n / overall
        assert row["index_lower"] == pytest.approx(lower)
        assert row["index_lower"] < row["seasonal_index"] < row["index_upper"]
    return months


def test_month_of_year_matches_sql_on_the_demo(demo):
    root, scope, results = demo
    months = check_month_of_year(root, scope, results["times-month-of-year"], "police-recorded")
    assert len(months) == 42


def test_devon_police_uk_gets_months_and_seasons_only(devon):
    root, scope, results = devon
    assert set(results) == {"times-month-of-year", "times-season"}
    months = check_month_of_year(root, scope, results["times-month-of-year"], "police-uk")
    assert len(months) == 21  # gaps in the loaded data are not read as zero months
    meta = results["times-month-of-year"].meta
    assert any("month only" in c and "were not run" in c for c in meta.caveats)
    assert any("proxy" in c for c in meta.caveats)
    season = results["times-season"].table
    assert season["season"].to_list() == ["winter", "spring", "summer", "autumn"]
    assert season["count"].sum() == results["times-month-of-year"].table["count"].sum()
    # real violence peaks in summer (calibration: Jul 1.11), winter lowest
    index = dict(season.select("season", "seasonal_index").iter_rows())
    assert index["summer"] > 1 > index["winter"]


def test_demo_summer_above_winter(demo):
    index = dict(demo[2]["times-season"].table.select("season", "seasonal_index").iter_rows())
    assert index["summer"] > index["winter"]


# ------------------------------------------------------------------- school terms


def test_easter_matches_dateutil():
    for year in range(1990, 2101):
        assert times.easter(year) == dateutil_easter(year)


@pytest.mark.parametrize(("day", "term"), [
    ("2024-09-02", False), ("2024-09-03", True), ("2024-10-25", True), ("2024-10-29", False),
    ("2024-11-04", True), ("2024-12-20", True), ("2024-12-25", False), ("2025-01-06", True),
    ("2025-02-18", False), ("2025-03-12", True), ("2025-04-15", False), ("2025-04-25", False),
    ("2025-04-28", True), ("2025-05-27", False), ("2025-06-10", True), ("2025-07-21", True),
    ("2025-07-22", False), ("2025-08-10", False), ("2024-03-27", False), ("2023-07-21", True)])
def test_default_terms_put_known_days_in_term_or_holiday(day, term):
    terms = times.load_terms(Path("/nonexistent"), date(2022, 4, 1), date(2025, 9, 1))
    assert terms.source == times.DEFAULT_TERM_RULE
    assert bool(terms.is_term([date.fromisoformat(day)])[0]) is term


def test_default_terms_have_about_190_weekdays_a_year():
    terms = times.Terms(times.default_terms(2024), "rule", None, None)
    days = [date(2024, 9, 1) + timedelta(days=i) for i in range(365)]
    weekdays = [d for d in days if d.weekday() < 5]
    assert 185 <= int(terms.is_term(weekdays).sum()) <= 200


@pytest.mark.parametrize("kind", ["csv", "toml"])
def test_term_dates_file_overrides_the_rule(tmp_path, kind):
    if kind == "csv":
        (tmp_path / "term-dates.csv").write_text(
            "start,end\n2024-09-04,2024-10-18\n2024-11-04,2024-12-19\n", "utf-8")
    else:
        (tmp_path / "term-dates.toml").write_text(
            "[[term]]\nstart = 2024-09-04\nend = 2024-10-18\n"
            "[[term]]\nstart = 2024-11-04\nend = \"2024-12-19\"\n", "utf-8")
    terms = times.load_terms(tmp_path, date(2024, 1, 1), date(2025, 1, 1))
    assert terms.source.endswith(f"term-dates.{kind}")
    days = [date(2024, 9, 3), date(2024, 9, 4), date(2024, 10, 18), date(2024, 10, 21),
            date(2024, 12, 19), date(2024, 12, 20)]
    assert terms.is_term(days).tolist() == [False, True, True, False, True, False]
    assert terms.known([date(2024, 9, 3), date(2024, 9, 4), date(2025, 1, 6)]).tolist() == [
        False, True, False]


def test_term_file_with_end_before_start_is_refused(tmp_path):
    (tmp_path / "term-dates.csv").write_text("start,end\n2024-10-18,2024-09-04\n", "utf-8")
    with pytest.raises(ValueError, match="starts after"):
        times.load_terms(tmp_path, date(2024, 1, 1), date(2025, 1, 1))


def daily_counts(root, scope, young: bool) -> dict[date, int]:
    where, params = scoped(scope, "police-recorded")
    if young:
        where = where.replace("WHERE", "JOIN involvements i USING (event_id) WHERE") + (
            " AND i.role IN ('victim', 'suspect') AND i.age < 18")
    return dict(sql(root, f"""SELECT coalesce(e.occurred_on, e.occurred_at::DATE),
        count(DISTINCT e.event_id) {where} GROUP BY 1""", params))


def test_term_and_holiday_rates_match_scipy(demo):
    root, scope, results = demo
    table = results["times-school-term"].table
    assert table.height == 4
    terms = times.load_terms(root, scope.start, scope.end)
    days = [scope.start + timedelta(days=i)
            for i in range((date(2025, 10, 1) - scope.start).days)]
    is_term = dict(zip(days, terms.is_term(days).tolist(), strict=True))
    for row in table.iter_rows(named=True):
        counts = daily_counts(root, scope, young=row["group"] != "all serious violence")
        keep = [d for d in days if row["days"] == "all days" or d.weekday() < 5]
        term_days = sum(is_term[d] for d in keep)
        t = sum(counts.get(d, 0) for d in keep if is_term[d])
        h = sum(counts.get(d, 0) for d in keep if not is_term[d])
        assert (row["term_days"], row["holiday_days"]) == (term_days, len(keep) - term_days)
        assert (row["term_count"], row["holiday_count"]) == (t, h)
        test = stats.binomtest(t, t + h, term_days / len(keep))
        assert row["p_value"] == pytest.approx(test.pvalue)
        ratio = (t / term_days) / (h / (len(keep) - term_days))
        assert row["rate_ratio"] == pytest.approx(ratio)
        assert row["lower"] < ratio < row["upper"]
    assert "victim or suspect under 18" in table["group"].to_list()
    meta = results["times-school-term"].meta
    assert meta.parameters["young_age_limit"] == 18
    assert any("approximate" in c for c in meta.caveats)


# ------------------------------------------------------------------- night-time economy


def test_nte_window_is_friday_and_saturday_nights():
    cells = times.nte_cells()
    assert len(cells) == 16
    assert (5, 20) in cells and (6, 3) in cells and (7, 3) in cells and (6, 20) in cells
    assert (5, 19) not in cells and (6, 4) not in cells and (1, 0) not in cells
    assert (7, 20) not in cells  # Sunday evening is not in the default window


def test_demo_nte_share_finds_the_planted_night_time_economy(demo):
    root, scope, results = demo
    table = results["times-night-time-economy"].table
    rows = {(r["measure"], r["events"]): r for r in table.iter_rows(named=True)}
    where, params = scoped(scope, "police-recorded")
    in_window = """((isodow(e.occurred_at) IN (5, 6) AND hour(e.occurred_at) >= 20)
                   OR (isodow(e.occurred_at) IN (6, 7) AND hour(e.occurred_at) < 4))"""
    n, total, flagged = sql(root, f"""SELECT count(*) FILTER ({in_window}), count(*),
        count(*) FILTER (e.night_time_economy) {where} AND e.occurred_at IS NOT NULL""",
                            params)[0]
    everything = rows[("in night-time economy hours", "all serious violence")]
    assert (everything["count"], everything["total"]) == (n, total)
    ci = stats.binomtest(n, total).proportion_ci(0.95, method="exact")
    assert (everything["lower"], everything["upper"]) == pytest.approx((ci.low, ci.high))
    assert rows[("flagged night-time economy", "all serious violence")]["count"] == flagged
    # planted: flagged NTE violence falls on weekend nights, the rest follows a general profile
    nte = rows[("in night-time economy hours", "flagged night-time economy")]
    other = rows[("in night-time economy hours", "not flagged night-time economy")]
    assert nte["share"] > 3 * other["share"] and nte["lower"] > other["upper"]
    assert nte["lower"] > nte["share_if_even"] == pytest.approx(16 / 168)
    assert nte["count"] + other["count"] == everything["count"]


def test_every_result_documents_itself(demo):
    for result in demo[2].values():
        assert result.name.startswith("times-") and result.meta.method
        assert result.meta.queries and result.meta.period == (demo[1].start, demo[1].end)
    assert np.isfinite(demo[2]["times-season"].table["seasonal_index"].to_numpy()).all()
