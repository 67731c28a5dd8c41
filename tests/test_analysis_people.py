"""People and cohorts: profiles against DuckDB SQL, repeats against a hand count, and the
demo's planted cohort found by cross-source linkage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from svduty import linkage
from svduty.analysis import people
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership

BAND_SQL = """CASE WHEN age IS NULL THEN 'unknown' WHEN age <= 15 THEN '0-15'
  WHEN age <= 24 THEN '16-24' WHEN age <= 34 THEN '25-34' WHEN age <= 49 THEN '35-49'
  WHEN age <= 64 THEN '50-64' ELSE '65+' END"""


@pytest.fixture(scope="module")
def demo(demo_partnership: Path):
    p = Partnership(demo_partnership)
    wh = p.warehouse(read_only=True)
    scope = resolve_scope(p, wh)
    results = {r.name: r for r in people.analyse(Data(wh, scope))}
    data = Data(wh, scope)
    link = linkage.link(data)
    pupils = people.cohort_pupils(data, link)
    truth = json.loads((demo_partnership / "ground-truth.json").read_text())["cohort"]
    yield {"wh": wh, "scope": scope, "results": results, "link": link, "pupils": pupils,
           "truth": truth}
    wh.close()


def sv_people_sql(demo: dict) -> str:
    """Serious-violence victims and suspects in scope and period, written in plain SQL."""
    s = demo["scope"]
    lads = ", ".join(f"'{c}'" for c in s.lad_codes)
    return f"""
        SELECT i.person_key, i.role, i.age, i.sex FROM events e
        JOIN sv_events v USING (event_id)
        JOIN areas a ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        JOIN involvements i USING (event_id)
        WHERE e.source = '{s.police_source}' AND a.lad_code IN ({lads})
          AND e.month BETWEEN DATE '{s.start}' AND DATE '{s.end}'
          AND i.role IN ('victim', 'suspect')"""


def keys_of(demo: dict, source: str, ids: list[str]) -> set[str]:
    rows = demo["wh"].con.execute(
        "SELECT DISTINCT person_key FROM involvements JOIN events USING (event_id) "
        "WHERE source = ? AND source_record_id IN (SELECT unnest(?))", [source, ids]).fetchall()
    return {r[0] for r in rows}


def test_profile_matches_sql(demo):
    table = demo["results"]["people-profile"].table.filter(pl.col("sex") == "all")
    sql = f"""SELECT role, {BAND_SQL} AS age_band, count(*) AS n,
                     count(DISTINCT person_key) AS people
              FROM ({sv_people_sql(demo)}) GROUP BY ALL"""
    expected = pl.from_arrow(demo["wh"].con.execute(sql).arrow())
    got = table.join(expected, on=["role", "age_band"], how="full", coalesce=True)
    assert got.height == expected.height == table.height
    assert (got["involvements"] == got["n"]).all()
    assert (got["people"] == got["people_right"]).all()
    # sex rows add up to the 'all' rows
    full = demo["results"]["people-profile"].table
    by_sex = full.filter(pl.col("sex") != "all").group_by("role", "age_band").agg(
        pl.col("involvements").sum().alias("s"))
    check = table.join(by_sex, on=["role", "age_band"])
    assert (check["s"] == check["involvements"]).all()


def test_rates_use_census_band_residents(demo):
    s = demo["scope"]
    lads = ", ".join(f"'{c}'" for c in s.lad_codes)
    residents = demo["wh"].con.execute(f"""
        SELECT sum(residents) FROM populations p JOIN areas a ON a.lsoa_code = p.lsoa_code
        AND a.lsoa_vintage = 2021 WHERE p.lsoa_vintage = 2021 AND a.lad_code IN ({lads})
        AND p.age_band = 'Aged 16 to 24 years'""").fetchone()[0]
    row = demo["results"]["people-profile"].table.filter(
        (pl.col("sex") == "all") & (pl.col("role") == "victim") & (pl.col("age_band") == "16-24")
    ).row(0, named=True)
    years = len(s.months) / 12
    assert row["residents"] == residents
    assert row["rate_per_1000_year"] == pytest.approx(row["involvements"] / residents / years
                                                      * 1000)
    assert row["rate_lower"] < row["rate_per_1000_year"] < row["rate_upper"]


def test_under_25_is_the_sum_of_young_bands(demo):
    profile = demo["results"]["people-profile"].table.filter(
        (pl.col("sex") == "all") & pl.col("age_band").is_in(["0-15", "16-24"]))
    young = demo["results"]["people-under-25"].table.filter(pl.col("group") == "under 25")
    for role in ("victim", "suspect"):
        total = profile.filter(pl.col("role") == role)["involvements"].sum()
        assert young.filter(pl.col("role") == role)["involvements"].item() == total


def test_repeat_victims_against_a_hand_count(demo):
    counts = demo["wh"].con.execute(f"""
        SELECT role, person_key, count(*) AS n FROM ({sv_people_sql(demo)})
        WHERE person_key IS NOT NULL GROUP BY ALL""").fetchall()
    table = demo["results"]["people-repeat"].table
    for role in ("victim", "suspect"):
        ns = [n for r, _, n in counts if r == role]
        repeat = table.filter((pl.col("role") == role) & pl.col("repeat"))
        assert repeat["people"].sum() == sum(1 for n in ns if n >= 2)
        assert repeat["involvements"].sum() == sum(n for n in ns if n >= 2)
        five = table.filter((pl.col("role") == role)
                            & (pl.col("involvements_per_person") == "5+"))
        assert five["people"].sum() == sum(1 for n in ns if n >= 5)
    assert table.filter(pl.col("repeat") & (pl.col("role") == "victim"))["people"].sum() > 0


def test_victim_suspect_overlap_against_sql(demo):
    both = demo["wh"].con.execute(f"""
        SELECT count(*) FROM (SELECT person_key FROM ({sv_people_sql(demo)})
        WHERE person_key IS NOT NULL GROUP BY 1 HAVING count(DISTINCT role) = 2)""").fetchone()
    total = demo["wh"].con.execute(f"""
        SELECT count(DISTINCT person_key) FROM ({sv_people_sql(demo)})""").fetchone()[0]
    table = demo["results"]["people-victim-suspect"].table.filter(pl.col("ages") == "all ages")
    assert table.filter(pl.col("group") == "victim and suspect")["people"].item() == both[0]
    assert table["people"].sum() == total
    assert table.height == 3


def test_components_join_chains_of_pairs():
    keys = pl.DataFrame({"source": ["a", "b", "c", "d"], "person_key": ["1", "2", "3", "4"]})
    pairs = pl.DataFrame({"source_a": ["a", "b"], "key_a": ["1", "2"],
                          "source_b": ["b", "c"], "key_b": ["2", "3"], "rule": ["x", "y"]})
    ids = linkage.components(keys, pairs)
    assert ids["person_id"].to_list() == ["a:1", "a:1", "a:1", "d:4"]


def test_linkage_recovers_planted_cohort_keys(demo):
    """Precision and recall of the links from planted pupils to their youth-justice and ED
    records (ground truth lists the records; keys come from the warehouse)."""
    truth, ids = demo["truth"], demo["link"].ids
    pupils = keys_of(demo, "school", truth["exclusion_ids"])
    assert len(pupils) == truth["pupils"]
    pid = {(s, k): p for s, k, p in ids.iter_rows()}
    planted = {pid[("school", k)] for k in pupils}
    others = {p for (s, k), p in pid.items() if s == "school" and k not in pupils}
    for source, ids_ in (("youth-justice", truth["youth_justice_offence_ids"]),
                         ("ed-istv", truth["ed_attendance_ids"])):
        real = keys_of(demo, source, ids_)
        linked = {k for (s, k), p in pid.items() if s == source and p in planted}
        recall = len(real & linked) / len(real)
        precision = len(real & linked) / len(linked)
        assert recall >= 0.9, (source, recall)
        assert precision >= 0.9, (source, precision)
        wrong = {k for k in real if pid.get((source, k)) in others}
        assert len(wrong) <= 1, source


def test_cohort_finds_planted_pupils_later_in_yj_and_ed(demo):
    truth, pupils = demo["truth"], demo["pupils"]
    school = keys_of(demo, "school", truth["exclusion_ids"])
    is_planted = pl.col("school_keys").list.eval(pl.element().is_in(list(school))).list.any()
    planted = pupils.filter(is_planted)
    assert planted.height == truth["pupils"]
    later_yj = planted["days_to_youth_justice"].is_not_null().sum()
    later_ed = planted["days_to_ed"].is_not_null().sum()
    assert later_yj >= 0.9 * truth["planted_in_youth_justice"]
    assert later_ed >= 0.9 * truth["planted_in_ed"]
    # few pupils outside the planted cohort are found (the demo plants no others)
    for column in ("days_to_youth_justice", "days_to_ed"):
        found = pupils.filter(pl.col(column).is_not_null())
        assert found.filter(is_planted).height / found.height >= 0.9
        assert (found[column] > 0).all()


def test_cohort_result_summarises_the_pupils(demo):
    pupils, table = demo["pupils"], demo["results"]["people-cohort"].table
    row = table.filter((pl.col("cohort") == "all suspended or excluded pupils")
                       & (pl.col("outcome") == "youth justice")).row(0, named=True)
    days = pupils["days_to_youth_justice"].drop_nulls().to_numpy()
    assert row["pupils"] == pupils.height
    assert row["later_appeared"] == len(days)
    assert row["median_days"] == pytest.approx(float(np.median(days)))
    assert row["q1_days"] <= row["median_days"] <= row["q3_days"]
    assert row["share_lower"] < row["share"] < row["share_upper"]
    timing = demo["results"]["people-cohort-timing"].table.filter(
        (pl.col("cohort") == row["cohort"]) & (pl.col("outcome") == "youth justice"))
    assert timing["pupils"].sum() == len(days)
    meta = demo["results"]["people-cohort"].meta
    assert "Splink" in meta.method and any("disclosure" in c for c in meta.caveats)


def test_linkage_result_counts_rules(demo):
    result = demo["results"]["people-linkage"]
    assert set(result.table["rule"]) <= set(linkage.RULES)
    assert result.table["pairs"].sum() == demo["link"].pairs.height
    assert result.meta.parameters["people_in_two_or_more_sources"] > 0


def test_devon_police_uk_has_no_people_results(devon_police_uk):
    p = Partnership(devon_police_uk)
    with p.warehouse(read_only=True) as wh:
        results = people.analyse(Data(wh, resolve_scope(p, wh)))
    assert results == []
