"""Places: rates, Gi* hot spots, KDE, classification over time and concentration, checked
against independent computations (direct esda calls, DuckDB SQL) on real Devon police.uk data
and against the planted structure of the demo."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import polars as pl
import pytest
from esda import G_Local

from svduty.analysis import hotspots as hs
from svduty.analysis import places
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership


def open_data(root, area=None) -> Data:
    p = Partnership(root)
    wh = p.warehouse(read_only=True)
    return Data(wh, resolve_scope(p, wh, area))


@pytest.fixture(scope="module")
def plymouth(devon_police_uk):
    data = open_data(devon_police_uk, "Plymouth")
    return data, {r.name: r for r in places.analyse(data)}


@pytest.fixture(scope="module")
def demo(demo_partnership):
    data = open_data(demo_partnership)
    return data, {r.name: r for r in places.analyse(data)}


def sv_lsoa_sql(data: Data) -> str:
    """Hand-written SQL: serious violence per scope LSOA, zeros included (Gini over the
    cross join: sum |a - b| / (2 n sum x), and sum(a.n) there is n sum x)."""
    s = data.scope
    lads = ", ".join(f"'{c}'" for c in s.lad_codes)
    return f"""
        WITH a AS (SELECT lsoa_code FROM areas WHERE lsoa_vintage = 2021
                   AND lad_code IN ({lads})),
        c AS (SELECT e.lsoa21_code, count(*) AS n FROM events e
              JOIN sv_events v ON v.event_id = e.event_id
              WHERE e.source = '{s.police_source}'
              AND e.month BETWEEN DATE '{s.start}' AND DATE '{s.end}' GROUP BY 1)
        SELECT a.lsoa_code, coalesce(c.n, 0) AS n FROM a LEFT JOIN c
        ON c.lsoa21_code = a.lsoa_code"""


def test_lsoa_rates_reconcile_with_totals(plymouth):
    data, res = plymouth
    lsoa, ward = res["places-lsoa-rates"].table, res["places-ward-rates"].table
    hand = data.wh.con.execute(f"SELECT count(*), sum(n) FROM ({sv_lsoa_sql(data)})").fetchone()
    assert lsoa.height == hand[0]
    assert lsoa["events"].sum() == hand[1] == ward["events"].sum() > 1000
    assert (lsoa["events"] == 0).sum() == data.wh.con.execute(
        f"SELECT count(*) FROM ({sv_lsoa_sql(data)}) WHERE n = 0").fetchone()[0]
    row = lsoa.filter(pl.col("residents") > 0).row(0, named=True)
    assert row["rate_per_1000"] == pytest.approx(row["events"] / row["residents"] * 1000)
    assert row["rate_lower"] < row["rate_per_1000"] < row["rate_upper"]
    assert lsoa["rank_rate"].min() == 1
    assert res["places-lsoa-rates"].meta.parameters["events"] == hand[1]


def direct_gi(data: Data, codes: list[str], counts: np.ndarray) -> G_Local:
    """Gi* straight from esda on independently built Queen weights."""
    from libpysal.weights import KNN, Queen
    from libpysal.weights.util import attach_islands

    from svduty.geography import boundaries

    layer = boundaries(data.wh.path.parent, "lsoa21")
    layer = layer[layer["lsoa21_code"].isin(codes)].set_index("lsoa21_code").loc[codes]
    layer = layer.reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(layer, ids=codes, use_index=False)
        if w.islands:
            pts = layer.set_geometry(layer.centroid)
            w = attach_islands(w, KNN.from_dataframe(pts, ids=codes, use_index=False, k=1))
        return G_Local(counts.astype(np.float64), w, transform="B", star=True,
                       permutations=hs.PERMUTATIONS, seed=hs.SEED, n_jobs=1)


def test_gi_star_equals_direct_esda_call(plymouth):
    data, res = plymouth
    gi = res["places-gi-star"].table.sort("lsoa21_code")
    hand = pl.from_arrow(data.wh.con.execute(sv_lsoa_sql(data)).arrow()).sort("lsoa_code")
    hand = hand.filter(pl.col("lsoa_code").is_in(gi["lsoa21_code"].to_list()))
    assert hand["lsoa_code"].to_list() == gi["lsoa21_code"].to_list()
    assert gi["events"].to_list() == hand["n"].to_list()
    direct = direct_gi(data, hand["lsoa_code"].to_list(), hand["n"].to_numpy())
    np.testing.assert_allclose(gi["z_score"].to_numpy(), direct.Zs, rtol=1e-10)
    np.testing.assert_allclose(gi["p_sim"].to_numpy(), direct.p_sim)
    hot = gi.filter(pl.col("class") == hs.HOT)
    assert hot.height > 0 and (hot["z_score"] > 0).all() and (hot["p_fdr"] < hs.ALPHA).all()
    assert (gi["p_fdr"] >= gi["p_sim"] - 1e-12).all()
    params = res["places-gi-star"].meta.parameters
    assert params["permutations"] == 999 and params["seed"] == hs.SEED


def test_integer_counts_are_converted(plymouth):
    data, res = plymouth
    gi = res["places-gi-star"].table.sort("lsoa21_code")
    weights = hs.lsoa_weights(data.wh.path.parent, gi["lsoa21_code"].to_list())
    as_int = pl.Series(gi["events"].to_list(), dtype=pl.Int64).to_numpy()
    ours = hs.gi_star(as_int, weights)
    direct = direct_gi(data, weights.codes, as_int.astype(np.float64))
    np.testing.assert_allclose(ours["z_score"].to_numpy(), direct.Zs, rtol=1e-10)
    np.testing.assert_allclose(ours["p_sim"].to_numpy(), direct.p_sim)


def test_concentration_equals_sql_hand_count(plymouth):
    data, res = plymouth
    table = res["places-concentration"].table
    con = data.wh.con
    for p in places.TOP_SHARES:
        share = con.execute(f"""
            WITH c AS ({sv_lsoa_sql(data)}), r AS (
              SELECT n, row_number() OVER (ORDER BY n DESC) AS k, count(*) OVER () AS m
              FROM c)
            SELECT sum(n) FILTER (WHERE k <= ceil({p} * m)) / sum(n) FROM r""").fetchone()[0]
        row = table.filter((pl.col("unit") == "LSOA") & (pl.col("measure") == f"top {p:.0%}"))
        assert row["value"][0] == pytest.approx(share)
    gini = con.execute(f"""
        WITH c AS ({sv_lsoa_sql(data)})
        SELECT sum(abs(a.n - b.n)) / (2 * sum(a.n)) FROM c a, c b""").fetchone()[0]
    row = table.filter((pl.col("unit") == "LSOA") & (pl.col("measure") == "gini"))
    assert row["value"][0] == pytest.approx(gini)


def test_repeat_locations_equal_sql_hand_count(plymouth):
    data, res = plymouth
    s = data.scope
    lads = ", ".join(f"'{c}'" for c in s.lad_codes)
    points = f"""
        SELECT e.latitude, e.longitude, count(*) AS n FROM events e
        JOIN sv_events v ON v.event_id = e.event_id
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = 'police-uk' AND a.lad_code IN ({lads})
        AND e.month BETWEEN DATE '{s.start}' AND DATE '{s.end}' AND e.latitude IS NOT NULL
        GROUP BY 1, 2"""
    table = res["places-concentration"].table
    for k in places.REPEAT_THRESHOLDS:
        units, events = data.wh.con.execute(
            f"SELECT count(*), sum(n) FROM ({points}) WHERE n >= {k}").fetchone()
        row = table.filter(pl.col("measure") == f"{k}+ events").row(0, named=True)
        assert (row["units"], row["events"]) == (units, events)
    top = data.wh.con.execute(f"SELECT max(n) FROM ({points})").fetchone()[0]
    assert res["places-repeat-locations"].table["events"][0] == top


def test_kde_grid_counts_and_density(plymouth):
    _, res = plymouth
    kde = res["places-kde"]
    params = kde.meta.parameters
    total = res["places-lsoa-rates"].table["events"].sum()
    assert kde.table["events"].sum() <= params["events"] <= total
    assert kde.table["events"].sum() >= 0.99 * params["events"]
    assert params["cell_size_m"] % 100 == 0 and params["bandwidth_m"] > 0
    # density integrates (approximately) to the events placed near the area
    mass = kde.table["density"].sum() * (params["cell_size_m"] / 1000) ** 2
    assert 0.7 * params["events"] < mass < 1.05 * params["events"]
    top = kde.table.sort("density", descending=True).row(0, named=True)
    assert top["events"] > kde.table["events"].mean()


def test_silverman_and_gini_helpers():
    values = np.random.default_rng(3).normal(0, 10, 500)
    iqr = np.subtract(*np.quantile(values, [0.75, 0.25]))
    expected = 1.06 * min(values.std(ddof=1), iqr / 1.34) * 500 ** -0.2
    assert places.silverman(values) == pytest.approx(expected)
    assert places.gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)
    assert places.gini(np.array([3, 3, 3])) == pytest.approx(0.0)
    assert places.top_shares(np.array([5, 1, 1, 1, 1, 1]))[0] == ("top 1%", 1, 5, 0.5)
    assert math.isnan(places.gini(np.zeros(3)))


def test_classification_follows_sfhotspot_rules():
    rows = []
    # 10 periods, 2 recent: persistent, emerging, former, intermittent, no pattern
    patterns = {"P": [1] * 10, "E": [0] * 8 + [1, 1], "F": [1, 1] + [0] * 8,
                "I": [0, 1, 0, 0, 1, 0, 0, 0, 1, 0], "N": [0] * 10}
    for code, hot in patterns.items():
        rows += [{"lsoa21_code": code, "period": i, "events": 1,
                  "class": hs.HOT if h else hs.NONE} for i, h in enumerate(hot)]
    out = hs.classify(pl.DataFrame(rows), 2)
    got = dict(zip(out["lsoa21_code"], out["category"], strict=True))
    assert got == {"P": "persistent hot spot", "E": "emerging hot spot",
                   "F": "former hot spot", "I": "intermittent hot spot", "N": "no pattern"}


def test_demo_planted_hotspots_are_classified(demo):
    """Each planted cluster is found with the right class: most of each persistent cluster
    persistent, every emerging LSOA emerging; anything else so classed borders a planted
    LSOA (Gi* counts neighbours, so a cluster's edge can light up too)."""
    data, res = demo
    truth = json.loads((data.wh.path.parent / "ground-truth.json").read_text())["hotspots"]
    classes = res["places-hotspot-classes"]
    params = classes.meta.parameters
    assert params["periods"] == 7 and params["recent_periods"] == 2
    assert params["period_starts"][-2] == truth["emerging_from"]
    got = dict(classes.table.select("lsoa21_code", "category").iter_rows())
    for name in ("persistent-centre", "persistent-estate"):
        members = truth["detail"][name]
        found = [c for c in members if got[c] == "persistent hot spot"]
        assert len(found) >= 2 / 3 * len(members), (name, {c: got[c] for c in members})
    assert all(got[c] == "emerging hot spot" for c in truth["emerging"])
    planted = set(truth["persistent"]) | set(truth["emerging"])
    weights = hs.lsoa_weights(data.wh.path.parent, list(got))
    near = planted | {n for c in planted for n in weights.w.neighbors[c]}
    flagged = {c for c, k in got.items() if k in ("persistent hot spot", "emerging hot spot")}
    assert flagged <= near


def test_every_result_reports_its_parameters(demo):
    _, res = demo
    assert set(res) == {"places-lsoa-rates", "places-ward-rates", "places-gi-star",
                        "places-gi-star-periods", "places-hotspot-classes", "places-kde",
                        "places-concentration", "places-repeat-locations"}
    for r in res.values():
        assert r.meta.method and r.meta.parameters and r.meta.queries, r.name
        assert r.table.height > 0, r.name
