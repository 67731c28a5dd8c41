"""Risk factors: LSOA indicators, Spearman correlations and count models, checked against
direct SciPy / statsmodels calls and hand counts on real Devon data, and against the demo's
planted deprivation effect."""

from __future__ import annotations

import shutil
from datetime import date

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from svduty.analysis import risk
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership
from svduty.store import STORE_DIR
from svduty.warehouse import Warehouse

PLYMOUTH = "E06000026"


def open_data(root, area=None):
    p = Partnership(root)
    wh = p.warehouse(read_only=True)
    return wh, Data(wh, resolve_scope(p, wh, area))


@pytest.fixture(scope="module")
def plymouth(devon_police_uk):
    wh, data = open_data(devon_police_uk, "Plymouth")
    frame, info = risk.lsoa_frame(data)
    yield wh, data, frame, info
    wh.close()


@pytest.fixture(scope="module")
def demo(demo_partnership):
    wh, data = open_data(demo_partnership)
    results = {r.name: r for r in risk.analyse(data)}
    yield wh, results
    wh.close()


def test_lsoa_counts_and_residents_match_hand_counts(plymouth):
    wh, data, frame, info = plymouth
    s = data.scope
    lsoas = wh.con.execute("SELECT count(*) FROM areas WHERE lsoa_vintage = 2021 AND lad_code = ?",
                           [PLYMOUTH]).fetchone()[0]
    assert frame.height == lsoas == info["lsoas"]
    total = wh.con.execute("""
        SELECT count(*) FROM events e JOIN sv_events v USING (event_id)
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = 'police-uk' AND a.lad_code = ? AND e.month BETWEEN ? AND ?""",
                           [PLYMOUTH, s.start, s.end]).fetchone()[0]
    assert frame["sv_count"].sum() == total > 0
    residents = wh.con.execute("""
        SELECT sum(p.residents) FROM populations p JOIN areas a ON a.lsoa_code = p.lsoa_code
        AND a.lsoa_vintage = 2021 WHERE p.lsoa_vintage = 2021 AND a.lad_code = ?""",
                               [PLYMOUTH]).fetchone()[0]
    assert frame["residents"].sum() == residents
    months = wh.con.execute("""
        SELECT count(DISTINCT month) FROM events e JOIN areas a ON a.lsoa_code = e.lsoa21_code
        AND a.lsoa_vintage = 2021 WHERE e.source = 'police-uk' AND a.lad_code = ?""",
                            [PLYMOUTH]).fetchone()[0]
    assert info["months_with_data"] == months == 21  # Devon's police.uk months, gaps and all


def test_unchanged_lsoas_keep_their_2011_rank(plymouth):
    """A 2021 LSOA with a single 2011 parent carries that parent's IoD rank exactly."""
    wh, data, _, _ = plymouth
    single = wh.con.execute("""
        SELECT c.lsoa21_code, d.rank FROM lsoa_correspondence c
        JOIN deprivation d ON d.lsoa11_code = c.lsoa11_code AND d.domain = 'imd'
        JOIN areas a ON a.lsoa_code = c.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE a.lad_code = ? AND c.lsoa21_code IN (SELECT lsoa21_code FROM lsoa_correspondence
        GROUP BY 1 HAVING count(*) = 1)""", [PLYMOUTH]).fetchall()
    scores = risk.deprivation_scores(data, [r[0] for r in single]).filter(
        pl.col("domain") == "imd")
    got = dict(zip(scores["lsoa21_code"], scores["rank"], strict=True))
    assert len(single) > 100
    for code, rank in single:
        assert got[code] == pytest.approx(rank)
    # most deprived nationally scores near 10, least near 0; deciles follow IoD convention
    assert scores.filter(pl.col("rank") <= 3284)["decile"].to_list() == [1] * scores.filter(
        pl.col("rank") <= 3284).height


def test_spearman_matches_scipy_directly(plymouth):
    _, _, frame, _ = plymouth
    table = risk.correlation_table(frame)
    for column in ("imd", "income", "young_share"):
        row = table.filter(pl.col("indicator") == column).row(0, named=True)
        sub = frame.drop_nulls([column])
        direct = stats.spearmanr(sub[column].to_numpy(), sub["rate_per_1000_per_year"])
        assert row["spearman_rho"] == pytest.approx(direct.statistic, abs=1e-12)
        assert row["p_value"] == pytest.approx(direct.pvalue, rel=1e-9)
        n = sub.height
        se = np.sqrt((1 + direct.statistic ** 2 / 2) / (n - 3))
        z = np.arctanh(direct.statistic)
        assert row["ci_lower"] == pytest.approx(np.tanh(z - 1.959964 * se), abs=1e-5)
        assert row["ci_upper"] == pytest.approx(np.tanh(z + 1.959964 * se), abs=1e-5)
        assert row["lsoas"] == n
    assert table.filter(pl.col("indicator") == "crime")["circular"].item()


def test_glm_irr_matches_direct_statsmodels_fit(plymouth):
    _, _, frame, _ = plymouth
    pois, nb, lr, p = risk.fit_models(frame, "imd")
    df = frame.select("sv_count", "imd", "person_years").drop_nulls().to_pandas()
    direct = smf.glm("sv_count ~ imd", df, offset=np.log(df["person_years"]),
                     family=sm.families.Poisson()).fit()
    assert pois.irr == pytest.approx(np.exp(direct.params["imd"]), rel=1e-9)
    lo, hi = np.exp(direct.conf_int().loc["imd"])
    assert (pois.lower, pois.upper) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    assert pois.aic == pytest.approx(direct.aic)
    nbd = smf.negativebinomial("sv_count ~ imd", df, offset=np.log(df["person_years"])).fit(
        disp=0, maxiter=500)
    assert nb.alpha == pytest.approx(nbd.params["alpha"], rel=1e-3)
    assert nb.irr == pytest.approx(np.exp(nbd.params["imd"]), rel=1e-3)
    assert lr == pytest.approx(2 * (nbd.llf - direct.llf), rel=1e-4)
    assert p < 0.05 and nb.dispersion < pois.dispersion  # police.uk LSOA counts overdispersed


def test_offset_is_used_doubling_population_halves_the_fitted_rate(plymouth):
    _, _, frame, _ = plymouth
    doubled = frame.with_columns(pl.col("person_years") * 2)
    for a, b in zip(risk.fit_glms(frame, "imd")[:2], risk.fit_glms(doubled, "imd")[:2],
                    strict=True):
        assert np.exp(b.params[0]) == pytest.approx(np.exp(a.params[0]) / 2, rel=1e-6)
        assert b.params[1] == pytest.approx(a.params[1], rel=1e-6)
        assert np.allclose(a.fittedvalues, b.fittedvalues, rtol=1e-6)  # same expected counts


def test_demo_finds_the_planted_deprivation_effect(demo):
    _, results = demo
    corr = results["risk-correlation"].table
    imd = corr.filter(pl.col("indicator") == "imd").row(0, named=True)
    assert imd["spearman_rho"] > 0.3 and imd["ci_lower"] > 0
    assert imd["direction"].startswith("higher rates")
    models = results["risk-models"].table.filter(pl.col("indicator") == "imd")
    chosen = models.filter(pl.col("chosen")).row(0, named=True)
    assert chosen["model"] == "negative binomial" and chosen["alpha"] > 0
    assert chosen["irr_lower"] > 1  # more deprived LSOAs: higher rates
    assert models.filter(pl.col("model") == "poisson")["pearson_dispersion"].item() > 2
    lsoa = results["risk-lsoa-indicators"].table
    assert lsoa["suspension_rate"].drop_nulls().len() > 0  # school events loaded in the demo


def test_meta_words_it_as_association(demo):
    _, results = demo
    for r in results.values():
        text = " ".join(r.meta.caveats).lower()
        assert "not causes" in text and "ecological" in text and "circular" in text
        assert r.meta.queries and r.meta.parameters["lsoa_mapping"].startswith("population")
    assert results["risk-models"].meta.sources == ["police-recorded", "school"]


def test_persistent_absence_by_lsoa_is_used_where_loaded(demo_partnership, tmp_path):
    """On a copy of the demo with absence aggregates by home LSOA: the rate is value /
    denominator per LSOA, summed over the years in the period, and it gets a correlation."""
    shutil.copy(demo_partnership / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(demo_partnership / STORE_DIR, tmp_path / STORE_DIR)
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    try:
        lsoas = [r[0] for r in wh.con.execute(
            "SELECT lsoa_code FROM areas WHERE lsoa_vintage = 2021 AND lad_code = 'E06900001' "
            "ORDER BY 1").fetchall()]
        for i, code in enumerate(lsoas):
            for year, start in enumerate((date(2022, 9, 1), date(2023, 9, 1))):
                wh.con.execute("""INSERT INTO aggregates (source, load_id, measure, period_start,
                    period_end, area_type, area_code, lsoa21_code, value, denominator)
                    VALUES ('school', 54, 'persistent absence', ?, ?, 'lsoa', ?, ?, ?, 100)""",
                               [start, date(start.year + 1, 8, 31), code, code,
                                float(i % 17 + year)])
        data = Data(wh, resolve_scope(Partnership(demo_partnership), wh))
        frame, _ = risk.lsoa_frame(data)
    finally:
        wh.close()
    got = dict(zip(frame["lsoa21_code"], frame["persistent_absence_rate"], strict=True))
    for i, code in enumerate(lsoas):
        assert got[code] == pytest.approx(100 * (2 * (i % 17) + 1) / 200)
    table = risk.correlation_table(frame)
    assert "persistent_absence_rate" in table["indicator"].to_list()
    assert not any("Persistent absence is not loaded" in c for c in risk.caveats(frame))
