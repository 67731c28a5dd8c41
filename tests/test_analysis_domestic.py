"""Domestic abuse and sexual violence: counts equal a hand count in SQL on the demo, shares
and intervals agree with SciPy, and police.uk data gives a clear 'not available'."""

from __future__ import annotations

import pytest
from scipy import stats

from svduty.analysis import domestic
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership


@pytest.fixture(scope="module")
def demo(demo_partnership):
    p = Partnership(demo_partnership)
    with p.warehouse(read_only=True) as wh:
        data = Data(wh, resolve_scope(p, wh))
        yield wh, data.scope, domestic.analyse(data)[0]


def test_domestic_counts_equal_a_hand_count(demo):
    wh, scope, result = demo
    table = {(r["measure"], r["window"]): r for r in result.table.iter_rows(named=True)}
    [(domestic_latest, all_latest)] = wh.con.execute("""
        SELECT count(*) FILTER (WHERE e.domestic), count(*) FROM sv_events s
        JOIN events e USING (event_id) JOIN areas a ON a.lsoa_code = e.lsoa21_code
        AND a.lsoa_vintage = 2021 WHERE e.source = 'police-recorded'
        AND a.lad_code IN ('E06900001') AND e.month > ?::DATE - INTERVAL 12 MONTH""",
                                                     [scope.end]).fetchall()
    row = table[("serious violence flagged as domestic abuse", "latest 12 months")]
    assert (row["count"], row["of"]) == (domestic_latest, all_latest) and all_latest > 1000
    ci = stats.binomtest(row["count"], row["of"]).proportion_ci(method="exact")
    assert (row["share_lower"], row["share_upper"]) == pytest.approx((ci.low, ci.high))
    sexual = table[("rape and sexual offences in the definition", "latest 12 months")]
    [(rape,)] = wh.con.execute("""SELECT count(*) FROM sv_events s JOIN events e
        USING (event_id) JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = 'police-recorded' AND a.lad_code = 'E06900001'
        AND regexp_matches(s.sv_category, '(?i)rape|sexual')
        AND e.month > ?::DATE - INTERVAL 12 MONTH""", [scope.end]).fetchall()
    assert sexual["count"] == rape > 0
    assert 0 < table[("domestic abuse: offences with a female victim",
                      "latest 12 months")]["share"] < 1


def test_police_uk_says_not_available(devon_police_uk):
    p = Partnership(devon_police_uk)
    with p.warehouse(read_only=True) as wh:
        [result] = domestic.analyse(Data(wh, resolve_scope(p, wh, area="Plymouth")))
    assert result.table.is_empty()
    assert any(c.startswith("Not available: data.police.uk") for c in result.meta.caveats)
