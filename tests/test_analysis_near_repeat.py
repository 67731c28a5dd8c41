"""Knox test for near repeats: pair counts against a brute-force count of every pair, band
edges, seeded Monte Carlo reproducible and equal to a direct re-run, a planted near-repeat
pattern found, the demo run end to end and police.uk declined."""

from __future__ import annotations

from datetime import date
from itertools import pairwise

import numpy as np
import pytest

from svduty.analysis import near_repeat as nr
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership
from svduty.warehouse import connect

SPACE, TIME = nr.SPACE_EDGES_M, nr.TIME_EDGES_DAYS


def brute_force(xy: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Every pair (i < j) counted directly from the full distance and gap matrices."""
    dx = xy[:, None, 0] - xy[None, :, 0]
    dy = xy[:, None, 1] - xy[None, :, 1]
    dist = np.sqrt(dx * dx + dy * dy)
    gap = np.abs(days[:, None] - days[None, :])
    upper = np.triu(np.ones(dist.shape, dtype=bool), k=1)
    s_edges, t_edges = [0, *SPACE], [0, *TIME]
    out = np.zeros((len(SPACE) + 1, len(TIME) + 1), dtype=np.int64)
    for s in range(len(SPACE) + 1):
        near = dist >= 0 if s == 0 else dist > s_edges[s]
        if s < len(SPACE):
            near &= dist <= SPACE[s]
        for t in range(len(TIME) + 1):
            soon = gap >= (0 if t == 0 else t_edges[t] + 1)
            if t < len(TIME):
                soon &= gap <= TIME[t]
            out[s, t] = int((near & soon & upper).sum())
    return out


def sample(n: int = 300, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 3000, (n, 2))
    xy[:20] = xy[20:40]  # repeat locations (police points are often shared)
    return xy, rng.integers(0, 120, n)


def test_observed_counts_equal_a_brute_force_count_of_every_pair():
    xy, days = sample()
    k = nr.knox(xy, days, iterations=9)
    expected = brute_force(xy, days)
    assert expected[:-1].sum() > 1000 and expected[0, 0] > 0  # the sample exercises cells
    np.testing.assert_array_equal(k.observed, expected)
    assert k.observed.sum() == k.all_pairs == 300 * 299 // 2
    assert k.close_pairs == expected[:-1].sum()


def test_close_pairs_are_every_pair_within_the_distance():
    xy, _ = sample(250, seed=9)
    i, j, dist = nr.close_pairs(xy, 500.0)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    bi, bj = np.nonzero(np.triu(d <= 500.0, k=1))
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == set(
        zip(bi.tolist(), bj.tolist(), strict=True))
    np.testing.assert_allclose(dist, d[i, j])


@pytest.mark.parametrize(("metres", "band"), [
    (0.0, 0), (199.99, 0), (200.0, 0), (200.01, 1), (400.0, 1), (999.99, 4), (1000.0, 4),
    (1000.01, 5), (5000.0, 5)])
def test_a_pair_on_a_space_edge_lands_in_the_documented_band(metres, band):
    # (0, 0) and a point `metres` away along a 3-4-5 diagonal: exact in floating point for
    # the edges (e.g. 120, 160 -> 200)
    xy = np.array([[0.0, 0.0], [metres * 0.6, metres * 0.8]])
    k = nr.knox(xy, np.array([0, 3]), iterations=1)
    assert k.observed.sum() == 1 and k.observed[band, 0] == 1
    table = nr.knox_table(k)
    row = table.filter(table["observed"] == 1).row(0, named=True)
    assert row["space_from_m"] <= metres
    assert row["space_to_m"] is None or metres <= row["space_to_m"]
    if band == 0:
        assert row["space_band"] == "0 to 200 m inclusive"


@pytest.mark.parametrize(("gap", "band"), [(0, 0), (7, 0), (8, 1), (14, 1), (15, 2), (28, 3),
                                           (29, 4), (400, 4)])
def test_a_pair_on_a_time_edge_lands_in_the_documented_band(gap, band):
    k = nr.knox(np.array([[0.0, 0.0], [0.0, 50.0]]), np.array([100, 100 + gap]),
                iterations=1)
    assert k.observed[0, band] == 1 and k.observed.sum() == 1


def test_band_labels_do_not_overlap_or_leave_gaps():
    table = nr.knox_table(nr.knox(*sample(50), iterations=1))
    space = table.select("space_band", "space_from_m", "space_to_m").unique(
        maintain_order=True).rows()
    assert [s[0] for s in space] == [
        "0 to 200 m inclusive", "over 200 m to 400 m inclusive", "over 400 m to 600 m inclusive",
        "over 600 m to 800 m inclusive", "over 800 m to 1000 m inclusive", "over 1000 m"]
    assert all(a[2] == b[1] for a, b in pairwise(space))
    time = table.select("time_band", "time_from_days", "time_to_days").unique(
        maintain_order=True).rows()
    assert [t[0] for t in time] == ["0 to 7 days inclusive", "8 to 14 days inclusive",
                                    "15 to 21 days inclusive", "22 to 28 days inclusive",
                                    "29 days or more"]
    assert all(a[2] + 1 == b[1] for a, b in pairwise(time))
    assert time[-1][2] is None and space[-1][2] is None


def test_monte_carlo_is_reproducible_and_equals_a_direct_rerun():
    xy, days = sample()
    a, b = nr.knox(xy, days, iterations=49, seed=7), nr.knox(xy, days, iterations=49, seed=7)
    np.testing.assert_array_equal(a.at_least, b.at_least)
    np.testing.assert_array_equal(a.p_value, b.p_value)
    other = nr.knox(xy, days, iterations=49, seed=8)
    assert not np.array_equal(a.expected, other.expected)
    # the same shuffles done by hand with brute force counting
    rng = np.random.default_rng(7)
    sims = np.array([brute_force(xy, rng.permutation(days)) for _ in range(49)])
    np.testing.assert_allclose(a.expected, sims.mean(axis=0))
    np.testing.assert_array_equal(a.at_least, (sims >= a.observed).sum(axis=0))
    np.testing.assert_allclose(a.p_value, (1 + a.at_least) / 50)
    assert a.p_value.min() >= 1 / 50 and a.p_value.max() <= 1


def test_a_planted_near_repeat_pattern_is_found():
    rng = np.random.default_rng(3)
    xy, days = rng.uniform(0, 6000, (400, 2)), rng.integers(0, 365, 400)
    # 60 offences each followed by a repeat within 100 m and 5 days
    follow = xy[:60] + rng.uniform(-70, 70, (60, 2))
    xy = np.vstack([xy, follow])
    days = np.concatenate([days, days[:60] + rng.integers(0, 6, 60)])
    k = nr.knox(xy, days, iterations=199, seed=1)
    assert k.ratio[0, 0] > 2 and k.p_value[0, 0] == pytest.approx(1 / 200)
    assert k.p_value[3:5, 2:4].min() > 0.01  # far cells show no pattern


@pytest.fixture(scope="module")
def demo(demo_partnership):
    p = Partnership(demo_partnership)
    with p.warehouse(read_only=True) as wh:
        scope = resolve_scope(p, wh)
        return demo_partnership, scope, nr.analyse(Data(wh, scope))


def test_demo_knox_table_uses_the_latest_twelve_months(demo):
    root, scope, results = demo
    [result] = results
    assert result.name == "near-repeat-knox" and result.table.height == 30
    params = result.meta.parameters
    assert params["window_start"] == "2024-10-01" and scope.end == date(2025, 9, 1)
    lads = ", ".join("?" * len(scope.lad_codes))
    with connect(root / "warehouse.duckdb") as con:
        n = con.execute(f"""SELECT count(*) FROM events e JOIN sv_events s USING (event_id)
            JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
            WHERE e.source = 'police-recorded' AND a.lad_code IN ({lads})
            AND e.month BETWEEN '2024-10-01' AND ? AND e.easting IS NOT NULL
            AND coalesce(e.occurred_on, e.occurred_at::DATE) IS NOT NULL""",
                        [*scope.lad_codes, scope.end]).fetchone()[0]
    assert params["events"] == n > 1000 and not params["capped"]
    assert result.table["observed"].sum() == params["all_pairs"] == n * (n - 1) // 2
    assert params["seed"] == nr.SEED and params["iterations"] in (nr.ITERATIONS,
                                                                  nr.FEW_ITERATIONS)
    assert str(params["iterations"]) in result.meta.method
    p = result.table["p_value"].to_numpy()
    assert ((p >= 1 / (1 + params["iterations"])) & (p <= 1)).all()
    ratio = result.table["knox_ratio"].to_numpy()
    assert (np.abs(ratio - 1) < 0.25).all()  # no near repeats were planted in the demo


def test_police_uk_is_declined_with_a_caveat(devon_police_uk):
    p = Partnership(devon_police_uk)
    with p.warehouse(read_only=True) as wh:
        [result] = nr.analyse(Data(wh, resolve_scope(p, wh)))
    assert result.table.height == 0 and "not run" in result.meta.title
    assert any("month only" in c for c in result.meta.caveats)
    assert list(result.table.columns) == list(nr.COLUMNS)
