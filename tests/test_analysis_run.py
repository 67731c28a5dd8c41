"""The analysis framework: scope resolution, the Ibis data layer, exact statistics, Results
and their sidecars, and `svduty analyse` end to end on real police.uk data and the demo."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy import stats
from typer.testing import CliRunner

from svduty.analysis.data import Data
from svduty.analysis.result import Meta, Result, read_result
from svduty.analysis.run import ANALYSES
from svduty.analysis.scope import ScopeError, parse_period, resolve_scope
from svduty.analysis.stats import change, clopper_pearson, poisson_interval, rate
from svduty.cli import app
from svduty.partnership import Partnership

runner = CliRunner()
PLYMOUTH = "E06000026"


def sql(wh, query: str, params: list | None = None) -> list[tuple]:
    return wh.con.execute(query, params or []).fetchall()


@pytest.fixture
def devon(devon_police_uk):
    p = Partnership(devon_police_uk)
    with p.warehouse(read_only=True) as wh:
        yield p, wh


# ------------------------------------------------------------------------------- scope


def test_scope_defaults_to_the_whole_partnership_and_the_months_loaded(devon):
    p, wh = devon
    scope = resolve_scope(p, wh)
    assert scope.police_source == "police-uk" and scope.proxy
    assert (scope.start, scope.end) == (date(2018, 10, 1), date(2025, 12, 1))
    assert set(scope.lad_codes) == set(scope.force_lad_codes)  # all four CSPs = the force
    assert len(scope.csp_codes) == len(p.config.areas) == 8  # Devon districts: one CSP each
    assert scope.pfa_codes == ("E23000035",)
    assert any("proxy" in c for c in scope.caveats)


@pytest.mark.parametrize("area", ["Plymouth", PLYMOUTH, "plymouth"])
def test_scope_for_one_csp_or_authority(devon, area):
    p, wh = devon
    scope = resolve_scope(p, wh, area=area, period="2025-01..2025-06")
    assert scope.lad_codes == (PLYMOUTH,) and scope.label == "Plymouth"
    assert (scope.start, scope.end) == (date(2025, 1, 1), date(2025, 6, 1))
    assert len(scope.months) == 6 and PLYMOUTH in scope.force_lad_codes
    assert len(scope.force_lad_codes) == 12


def test_scope_for_a_force_area(devon):
    p, wh = devon
    scope = resolve_scope(p, wh, area="E23000035")
    assert len(scope.csp_codes) == 8 and len(scope.lad_codes) == 12


@pytest.mark.parametrize(("text", "message"), [
    ("2025-13..2025-14", "not a valid range"), ("2025-06..2025-01", "not a valid range"),
    ("2025", "START..END")])
def test_bad_periods_say_what_to_write(text, message):
    with pytest.raises(ScopeError, match=message):
        parse_period(text)


def test_unknown_area_lists_the_known_ones(devon):
    p, wh = devon
    with pytest.raises(ScopeError, match="Torbay"):
        resolve_scope(p, wh, area="Liverpool")


# -------------------------------------------------------------------------- data layer


def test_sv_counts_equal_a_direct_sql_count(devon):
    p, wh = devon
    scope = resolve_scope(p, wh, area="Plymouth", period="2025-01..2025-12")
    data = Data(wh, scope)
    sv = data.sv()
    got = data.fetch(sv.group_by("sv_category").aggregate(n=sv.count()))
    expected = dict(sql(wh, """
        SELECT s.sv_category, count(*) FROM sv_events s JOIN events e USING (event_id)
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = 'police-uk' AND a.lad_code = ? AND e.month BETWEEN '2025-01-01'
        AND '2025-12-01' GROUP BY 1""", [PLYMOUTH]))
    assert dict(got.iter_rows()) == expected and sum(expected.values()) > 5_000
    meta = data.meta("test", "test", "a count")
    assert meta.sources == ["police-uk"] and len(meta.loads) == 12
    assert meta.definition_version
    # the base relations (as temporary views) are recorded before the query that reads them
    assert meta.queries[0].startswith("CREATE TEMP VIEW") and "GROUP BY" in meta.queries[-1]
    assert any("sv_events" in q for q in meta.queries[:-1])


def test_population_matches_the_census(devon):
    p, wh = devon
    data = Data(wh, resolve_scope(p, wh, area="Plymouth"))
    total = data.population("lad_code")
    young = data.population("lad_code", under_25=True)
    [(census,)] = sql(wh, """SELECT sum(residents) FROM populations JOIN areas a
        USING (lsoa_code, lsoa_vintage) WHERE lsoa_vintage = 2021 AND a.lad_code = ?""",
                      [PLYMOUTH])
    assert total["residents"][0] == census and 250_000 < census < 280_000
    assert 0.2 < young["residents"][0] / census < 0.4


# -------------------------------------------------------------------------- statistics


def test_poisson_interval_is_garwood():
    lower, upper = poisson_interval(np.array([0, 3, 40]))
    assert lower[0] == 0 and upper[0] == pytest.approx(-np.log(0.025))
    assert lower[1] == pytest.approx(stats.chi2.ppf(0.025, 6) / 2)
    assert upper[2] == pytest.approx(stats.chi2.ppf(0.975, 82) / 2)
    r, lo, hi = rate(40, 20_000, per=1000)
    assert (r, lo, hi) == pytest.approx((2.0, lower[2] / 20, upper[2] / 20))


def test_change_is_the_exact_conditional_test():
    c = change(100, 130)
    assert c.p_value == pytest.approx(stats.binomtest(130, 230, 0.5).pvalue)
    assert c.ratio == pytest.approx(1.3) and c.lower < 1 < c.upper and not c.significant
    assert change(100, 160).significant
    # Unequal exposure: 10 months against 12 at the same monthly rate is no change.
    assert change(100, 120, 10, 12).ratio == pytest.approx(1.0)
    # The rate ratio's interval comes from the exact interval for the proportion after.
    ci = stats.binomtest(130, 230).proportion_ci(0.95, method="exact")
    assert (c.lower, c.upper) == pytest.approx(
        (ci.low / (1 - ci.low), ci.high / (1 - ci.high)), rel=1e-9)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 17), (1, 1), (3, 9), (250, 251),
                                      (1200, 5000), (4999, 5000)])
def test_clopper_pearson_is_scipys_exact_interval(k, n):
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-10)


# ------------------------------------------------------------------------------ Results


def test_result_round_trips_with_its_sidecar(tmp_path):
    meta = Meta(name="trend-test", title="A test", method="counted", sources=["police-uk"],
                loads=[1, 2], definition_version="0.1+abc",
                period=(date(2025, 1, 1), date(2025, 12, 1)), parameters={"window": 12},
                caveats=["proxy"], queries=["SELECT 1"])
    table = pl.DataFrame({"month": [date(2025, 1, 1)], "count": [4], "rate": [0.5]})
    csv, sidecar = Result(table, meta).write(tmp_path)
    body = json.loads(sidecar.read_text())
    assert body["period"] == ["2025-01-01", "2025-12-01"] and body["rows"] == 1
    assert body["parameters"] == {"window": 12} and body["queries"] == ["SELECT 1"]
    back = read_result(csv)
    assert back.meta.loads == [1, 2] and back.table["count"].to_list() == [4]


def test_every_analysis_module_exposes_analyse():
    import importlib

    for module, _ in ANALYSES:
        assert callable(importlib.import_module(f"svduty.analysis.{module}").analyse)


# --------------------------------------------------------------------- svduty analyse


def test_cli_analyse_writes_every_result_with_an_index(devon_police_uk, tmp_path):
    out = tmp_path / "results"
    done = runner.invoke(app, ["analyse", str(devon_police_uk), "--area", "Plymouth",
                               "--period", "2024-01..2025-12", "--out", str(out)])
    assert done.exit_code == 0, done.output
    index = json.loads((out / "index.json").read_text())
    assert index["failures"] == {} and len(index["results"]) >= 10
    for entry in index["results"]:
        result = read_result(out / f"{entry['name']}.csv")
        assert result.table.height == entry["rows"]
        assert result.meta.period == (date(2024, 1, 1), date(2025, 12, 1))
        assert result.meta.sources and result.meta.method
    audit = (devon_police_uk / "audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["action"] == "analyse"


def test_cli_analyse_refuses_an_unknown_area(devon_police_uk, tmp_path):
    done = runner.invoke(app, ["analyse", str(devon_police_uk), "--area", "Narnia",
                               "--out", str(tmp_path / "r")])
    assert done.exit_code != 0 and "Narnia" in done.output


def test_an_edited_definition_takes_effect_at_the_next_analysis(devon_police_uk, tmp_path):
    """No ingest needed: `sv_events` is the definition compiled to a view, and analyse
    applies definition.toml first when it has changed since it was last applied."""
    import shutil

    from svduty.analysis.run import analyse
    from svduty.definition.rules import load_definition
    from svduty.definition.templates import write_template

    root = tmp_path / "devon"
    shutil.copytree(devon_police_uk, root)
    p = Partnership(root)
    before = analyse(p, "Plymouth", only=("measures",)).scope.definition_version
    write_template(p.definition_path, "broad", partnership_name="Devon")
    wanted = load_definition(p.definition_path).definition_version
    assert wanted != before
    run = analyse(p, "Plymouth", only=("measures",))
    assert run.scope.definition_version == wanted
    with p.warehouse(read_only=True) as wh:
        versions = wh.con.execute("SELECT DISTINCT definition_version FROM sv_events").fetchall()
    assert versions == [(wanted,)]


def test_a_broken_definition_stops_the_analysis_with_its_problems(devon_police_uk, tmp_path):
    import shutil

    root = tmp_path / "devon"
    shutil.copytree(devon_police_uk, root)
    path = root / "definition.toml"
    path.write_text(path.read_text().replace('category = ', 'category_typo = ', 1))
    result = runner.invoke(app, ["analyse", str(root), "--area", "Plymouth",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    said = result.output.replace("\n", "")
    assert "definition.toml" in said and "unknown field 'category_typo'" in said
    assert not (tmp_path / "out").exists()


def test_each_analysis_hands_on_its_results_as_soon_as_they_are_made(devon_police_uk):
    """A build draws charts while the later analyses run: `made` gets each analysis's
    Results in turn, and together they are the run's Results."""
    from svduty.analysis.run import analyse

    handed: list[list[str]] = []
    run = analyse(Partnership(devon_police_uk), "Plymouth", only=("measures", "times"),
                  made=lambda results: handed.append([r.name for r in results]))
    assert len(handed) == 2
    assert [name for names in handed for name in names] == [r.name for r in run.results]
    assert all(name.startswith("measures") for name in handed[0])
    assert all(name.startswith("times") for name in handed[1])
