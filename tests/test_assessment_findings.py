"""Key findings, recommendations and narrative overrides of the SNA.

Findings are generated from real Results (the Anytown demo, police-recorded and every partner
source; Plymouth from real data.police.uk only) and every figure they state is checked
against the Result tables, computed independently here.
"""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from svduty.analysis.result import Meta, Result
from svduty.assessment import narrative
from svduty.assessment.findings import (
    Finding,
    change_text,
    key_findings,
    pct,
    recommendations,
    section_findings,
    words,
)

SECTIONS = ("summary", "problem-profile", "core-measures", "weapons", "places", "times",
            "people", "health", "risk", "comparison", "quality", "recommendations")


@pytest.fixture(scope="module")
def demo(demo_results) -> dict[str, Result]:
    return demo_results


@pytest.fixture(scope="module")
def plymouth(plymouth_results) -> dict[str, Result]:
    return plymouth_results


def by_key(results: dict[str, Result]) -> dict[str, Finding]:
    return {f.key: f for f in section_findings(results, "all")}


def numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d,]*(?:\.\d+)?%?", text)


def test_people_formatting():
    assert pct(0.1233) == "12%" and pct(0.0972) == "9.7%" and pct(0.6368) == "64%"
    assert words(4, True) == "Four" and words(0) == "no" and words(3716) == "3,716"


def test_every_finding_cites_an_existing_result(demo, plymouth):
    for results in (demo, plymouth):
        for section in SECTIONS:
            for f in section_findings(results, section):
                assert f.result in results, (section, f.key)
                assert f.text.endswith(".") and not f.text[0].islower(), f.text
        keys = [f.key for f in section_findings(results, "all")]
        assert len(keys) == len(set(keys))


def test_overall_change_states_the_table(demo):
    row = (demo["trend-change"].table
           .filter((pl.col("level") == "partnership")
                   & (pl.col("sv_category") == "All serious violence")).row(0, named=True))
    f = by_key(demo)["sv-change"]
    assert f.figures["count_after"] == row["count_after"] > 1000
    assert f.figures["count_before"] == row["count_before"]
    stated = numbers(f.text)
    assert f"{row['count_after']:,}" in stated and f"{row['count_before']:,}" in stated
    assert f"{round(abs(row['percent_change']))}%" in stated
    assert f"{row['ratio_lower']:.2f}" in stated and f"{row['ratio_upper']:.2f}" in stated
    # the demo's rise is significant by the exact test: its CI excludes 1
    assert row["ratio_lower"] > 1 and row["significant"]
    assert "rose" in f.text and "a statistically significant change" in f.text


def test_significant_and_non_significant_wording(demo, plymouth):
    for results in (demo, plymouth):
        for row in results["trend-change"].table.iter_rows(named=True):
            text = change_text(row["sv_category"], row)
            excludes_one = row["ratio_lower"] > 1 or row["ratio_upper"] < 1
            assert row["significant"] == excludes_one
            if row["significant"]:
                assert ("rose" if row["ratio"] > 1 else "fell") in text
                assert "no statistically significant" not in text
            else:
                assert "no statistically significant change" in text
                assert "rose" not in text and "fell" not in text
    # a non-significant change in the demo's weapons section is worded as such
    firearms = by_key(demo)["change-firearm-offences"]
    assert not firearms.figures["significant"]
    assert "no statistically significant change" in firearms.text


def test_core_measures_state_the_table(demo):
    t = demo["measures-core"].table.filter(pl.col("period") == "latest 12 months")
    found = by_key(demo)
    for key, age in (("knife-all-ages", "all ages"), ("knife-under-25", "under 25")):
        row = t.filter(pl.col("measure").str.starts_with("knife")
                       & (pl.col("age_group") == age)).row(0, named=True)
        f = found[key]
        assert f.figures["count"] == row["count"]
        assert f"{row['count']:,}" in numbers(f.text)
        assert f"{row['rate_per_100k']:.1f}" in numbers(f.text)
        wording = ("a statistically significant change" if row["significant"]
                   else "no statistically significant change")
        assert wording in f.text
    assert "against under-25s" in found["knife-under-25"].text
    assert found["homicide"].text.startswith("There were no non-domestic homicides")


def test_hotspots_state_the_table_and_the_planted_clusters(demo, demo_partnership):
    t = demo["places-hotspot-classes"].table
    f = by_key(demo)["hotspots"]
    persistent = t.filter(pl.col("category") == "persistent hot spot")
    emerging = t.filter(pl.col("category") == "emerging hot spot")
    assert sorted(f.figures["persistent_codes"]) == sorted(persistent["lsoa21_code"])
    assert f.text.startswith(f"{words(persistent.height, True)} LSOAs are persistent hot spots")
    assert f"{words(emerging.height)} are emerging hot spots" in f.text
    for ward in persistent["ward_name"].unique():
        assert ward in f.text
    truth = json.loads((demo_partnership / "ground-truth.json").read_text())["hotspots"]
    for cluster in ("persistent-centre", "persistent-estate"):  # most of each planted one
        members = truth["detail"][cluster]
        assert len(set(members) & set(f.figures["persistent_codes"])) >= len(members) / 2
    assert set(truth["emerging"]) <= set(f.figures["emerging_codes"])
    assert "Northgate" in f.text  # the emerging cluster's ward


def test_concentration_matches_an_independent_count(demo):
    rates = demo["places-lsoa-rates"].table
    f = by_key(demo)["concentration"]
    top = rates.sort("events", descending=True).head(f.figures["top_lsoas"])["events"].sum()
    total = rates["events"].sum()
    assert f.figures["lsoas"] == rates.height
    assert (f.figures["top_count"], f.figures["total_count"]) == (top, total)
    assert f.text.startswith(f"{round(100 * top / total)}% of serious violence happened in 5%")
    assert f"{top:,} of {total:,} offences" in f.text


def test_people_cohort_and_health_state_the_tables(demo):
    found = by_key(demo)
    row = (demo["people-cohort"].table
           .filter((pl.col("cohort") == "suspended or excluded for violence")
                   & (pl.col("outcome") == "youth justice")).row(0, named=True))
    assert found["cohort"].text.startswith(
        f"{row['later_appeared']:,} of {row['pupils']:,} pupils suspended or excluded for "
        "violence")
    assert found["cohort"].figures["appeared"] == row["later_appeared"]
    under = demo["people-under-25"].table
    victims = under.filter(pl.col("role") == "victim")
    young = victims.filter(pl.col("group") == "under 25").row(0, named=True)
    share = young["involvements"] / victims["involvements"].sum()
    assert found["under-25"].text.startswith(
        f"Under-25s were {pct(share)} of victims where the age was recorded "
        f"({young['people']:,} different people)")
    gap = demo["health-under-reporting"].table.filter(pl.col("primary")).row(0, named=True)
    text = found["cardiff-gap"].text
    assert text.startswith(f"About {round(100 * gap['gap_adjusted'])}% (95% CI "
                           f"{round(100 * gap['gap_adjusted_lower'])}% to "
                           f"{round(100 * gap['gap_adjusted_upper'])}%)")
    assert f"{gap['unmatched']:,} of {gap['attendances']:,}" in text


def test_peak_times_match_a_hand_count(demo):
    t = demo["times-hour-weekday"].table
    f = by_key(demo)["peak-times"]
    day = t.group_by("weekday_name").agg(pl.col("count").sum()).sort("count").row(-1)
    assert f"most frequent on {day[0]}s ({pct(day[1] / t['count'].sum())}" in f.text
    cell = t.sort("count").row(-1, named=True)
    assert f"({cell['count']:,} offences)" in f.text


def test_risk_and_comparison_are_associations(demo):
    found = by_key(demo)
    assert "not evidence of cause" in found["risk-association"].text
    assert "cause" not in found["risk-association"].text.replace("not evidence of cause", "")
    rho = demo["risk-correlation"].table.filter(~pl.col("circular"))
    best = rho.sort(pl.col("spearman_rho").abs()).row(-1, named=True)
    assert f"{best['spearman_rho']:.2f}" in found["risk-association"].text
    [comparison] = [f for f in found.values() if f.section == "comparison"]
    row = (demo["comparison-force"].table
           .filter(pl.col("in_scope") & (pl.col("level") == "csp")
                   & (pl.col("category") == "All serious violence")).row(0, named=True))
    assert f"{row['rate_per_1000_per_year']:.1f} offences per 1,000" in comparison.text
    assert "significantly higher" in comparison.text and row["rr_lower"] > 1


def test_police_uk_proxy_gives_data_gaps_not_knife_or_people(plymouth):
    found = by_key(plymouth)
    assert not any(k.startswith(("knife-", "under-25", "cohort", "repeat-", "peak-times",
                                 "cardiff")) for k in found)
    assert "data.police.uk carries no weapon flag" in found["gap-core-measures"].text
    assert found["gap-people"].section == "people"
    assert "not loaded" in found["data-gaps"].text
    assert section_findings(plymouth, "people") == [found["gap-people"]]
    change = found["sv-change"]
    assert change.figures["months_compared"] == 4 and "latest 4 months" in change.text
    summary = {f.key for f in key_findings(plymouth)}
    assert {"sv-change", "gap-core-measures", "gap-people", "data-gaps"} <= summary
    recs = " ".join(f.text for f in section_findings(plymouth, "recommendations"))
    assert "recorded-crime extract" in recs


def test_empty_or_missing_results_give_no_finding(demo):
    cut = dict(demo)
    cohort = demo["people-cohort"]
    cut["people-cohort"] = Result(cohort.table.clear(), cohort.meta)
    del cut["health-under-reporting"]
    keys = {f.key for f in section_findings(cut, "all")}
    assert "cohort" not in keys and "cardiff-gap" not in keys
    assert "under-25" in keys  # the rest still come
    assert section_findings({}, "all") == [] and section_findings(demo, "scope") == []


def test_recommendations_rest_on_findings(demo):
    found = by_key(demo)
    recs = recommendations(found.values())
    assert recs and all(r.key.startswith("rec:") and r.section == "recommendations"
                        for r in recs)
    for r in recs:
        assert r.result == found[r.key.removeprefix("rec:")].result
    text = {r.key: r.text for r in recs}
    assert "Abbey" in text["rec:hotspots"] and "Northgate" in text["rec:hotspots"]
    unplaced = found["geocoding-ed-istv"].figures["share"]
    assert text["rec:geocoding-ed-istv"] == (
        f"Improve ED geocoding: {pct(unplaced)} of attendances could not be placed.")


def test_override_round_trip(tmp_path):
    result = Result(pl.DataFrame({"x": [1]}), Meta(name="trend-change", title="t", method="m"))
    blocks = {"summary.intro": "Generated intro.", "finding:sv-change": "Generated finding."}
    generated = narrative.write_templates(tmp_path, blocks)
    assert (generated / "finding--sv-change.md").is_file()
    # an analyst copies the generated block up one level and edits it
    mine = narrative.folder(tmp_path) / "finding--sv-change.md"
    mine.write_text("<!-- checked with the VRU -->\nOur own words,\nover two lines.\n\n"
                    "A second paragraph.\n", "utf-8")
    (narrative.folder(tmp_path) / "places.intro.md").write_text("\n", "utf-8")  # emptied
    # rebuild: the generated text changes and one block goes away
    narrative.write_templates(tmp_path, {"finding:sv-change": "New generated finding."})
    assert mine.read_text("utf-8").startswith("<!-- checked with the VRU -->")
    assert not (generated / "summary.intro.md").exists()
    assert "New generated finding." in (generated / "finding--sv-change.md").read_text()
    overrides = narrative.load_overrides(tmp_path)
    assert overrides == {"finding:sv-change": "Our own words, over two lines.\n\n"
                                              "A second paragraph."}
    assert narrative.apply("finding:sv-change", "New generated finding.", overrides) == (
        "Our own words, over two lines.\n\nA second paragraph.", True)
    assert narrative.apply("places.intro", "Gen.", overrides) == ("Gen.", False)
    # the builder's idiom keeps a Finding whole with the analyst's text
    f = Finding("sv-change", "problem-profile", "Generated finding.", result.name, {"n": 1})
    kept = f.__class__(**{**f.__dict__, "text": narrative.apply(
        f"finding:{f.key}", f.text, overrides)[0]})
    assert kept.text.startswith("Our own words") and kept.figures == {"n": 1}
    assert narrative.load_overrides(tmp_path / "nowhere") == {}
    with pytest.raises(ValueError):
        narrative.file_name("../escape")


def test_domestic_findings_state_the_table(demo, plymouth):
    row = demo["domestic-sexual-violence"].table.filter(
        (pl.col("measure") == "serious violence flagged as domestic abuse")
        & (pl.col("window") == "latest 12 months")).row(0, named=True)
    [f, _] = section_findings(demo, "domestic")
    assert f.result == "domestic-sexual-violence" and f.figures["count"] == row["count"]
    assert f"{row['count']:,}" in numbers(f.text)
    assert f"{round(row['share'] * 100)}%" in numbers(f.text)
    assert section_findings(plymouth, "domestic") == []  # police.uk: not available


def test_findings_cite_their_evidence_in_words(demo, plymouth):
    """Findings carry the cited Result's title for the report to quote (the id stays in
    `result` for the manifest and the methods appendix)."""
    for results in (demo, plymouth):
        for section in SECTIONS:
            for f in section_findings(results, section):
                assert f.source == results[f.result].meta.title, (section, f.key)
                assert f.source and f.source != f.result
