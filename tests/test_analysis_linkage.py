"""Person linkage: Splink against the demo's planted cohort and the deterministic rules, shared
identifiers against a hand join in SQL, repeatability, and the fallback on small input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from svduty import linkage
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership

OUTCOMES = (("youth-justice", "youth_justice_offence_ids"), ("ed-istv", "ed_attendance_ids"))


@pytest.fixture(scope="module")
def demo(demo_partnership: Path):
    p = Partnership(demo_partnership)
    wh = p.warehouse(read_only=True)
    data = Data(wh, resolve_scope(p, wh))
    splink = linkage.link(data)
    rules = linkage.deterministic(data.table("person_tokens"), data.fetch)
    truth = json.loads((demo_partnership / "ground-truth.json").read_text())["cohort"]
    yield {"wh": wh, "data": data, "splink": splink, "rules": rules, "truth": truth}
    wh.close()


def keys_of(wh, source: str, record_ids: list[str]) -> set[str]:
    rows = wh.con.execute(
        "SELECT DISTINCT person_key FROM involvements JOIN events USING (event_id) "
        "WHERE source = ? AND source_record_id IN (SELECT unnest(?))",
        [source, record_ids]).fetchall()
    return {r[0] for r in rows}


def cohort_scores(demo: dict, link: linkage.Linkage) -> dict[str, tuple[float, float]]:
    """(recall, precision) of each outcome source's keys linked to the planted pupils."""
    truth = demo["truth"]
    pupils = keys_of(demo["wh"], "school", truth["exclusion_ids"])
    assert len(pupils) == truth["pupils"]
    pid = {(s, k): p for s, k, p in link.ids.iter_rows()}
    planted = {pid[("school", k)] for k in pupils}
    scores = {}
    for source, field in OUTCOMES:
        real = keys_of(demo["wh"], source, truth[field])
        linked = {k for (s, k), p in pid.items() if s == source and p in planted}
        hit = len(real & linked)
        scores[source] = (hit / len(real), hit / len(linked) if linked else 0.0)
    return scores


def test_splink_is_used_on_the_demo(demo):
    link = demo["splink"]
    assert "Splink" in link.method and link.parameters["threshold"] == linkage.THRESHOLD
    assert not any("not used" in c for c in link.caveats)
    assert (link.pairs["match_probability"] >= linkage.THRESHOLD).all()
    assert set(link.pairs["rule"]) <= set(linkage.RULES)
    counts = link.parameters["pairs_at_threshold"]
    assert counts[str(linkage.THRESHOLD)] == link.pairs.height
    assert counts["0.5"] >= counts["0.95"] >= counts["0.99"]


def test_splink_recovers_planted_cohort_at_least_as_well_as_rules(demo):
    splink, rules = cohort_scores(demo, demo["splink"]), cohort_scores(demo, demo["rules"])
    for source, (recall, precision) in splink.items():
        assert recall >= 0.95, (source, recall)
        assert precision >= 0.98, (source, precision)
        assert recall >= rules[source][0], (source, recall, rules[source])
        assert precision >= rules[source][1] - 0.01, (source, precision, rules[source])


def test_keys_sharing_a_pnc_id_are_one_person(demo):
    """Youth-justice and probation keys with the same PNC id token, joined in plain SQL,
    get the same person id."""
    rows = demo["wh"].con.execute("""
        SELECT a.person_key, b.person_key FROM person_tokens a JOIN person_tokens b
          ON a.field = 'pnc_id_token' AND b.field = 'pnc_id_token' AND a.token = b.token
         WHERE a.source = 'probation' AND b.source = 'youth-justice'""").fetchall()
    assert rows
    pid = {(s, k): p for s, k, p in demo["splink"].ids.iter_rows()}
    same = sum(pid[("probation", a)] == pid[("youth-justice", b)] for a, b in rows)
    assert same / len(rows) >= 0.95


def test_every_key_gets_one_id_and_clusters_span_sources(demo):
    ids = demo["splink"].ids
    n_keys = demo["wh"].con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT source, person_key FROM person_tokens)"
    ).fetchone()[0]
    assert ids.height == n_keys == ids.select("source", "person_key").unique().height
    sizes = ids.group_by("person_id").agg(pl.col("source").n_unique().alias("n"))
    assert sizes.filter(pl.col("n") >= 2).height > 0


def test_same_clusters_twice(demo):
    again = linkage.link(demo["data"])
    first = demo["splink"]
    assert again.ids.sort("source", "person_key").equals(first.ids.sort("source", "person_key"))
    assert again.pairs.select("source_a", "key_a", "source_b", "key_b").equals(
        first.pairs.select("source_a", "key_a", "source_b", "key_b"))


def tiny_tokens() -> pl.DataFrame:
    """Three people in two sources; the school pupil Ann has her dob day and month swapped."""
    rows = []
    people = (("school", "s1", "ann", "lee", "d1", "d1x"), ("ed-istv", "e1", "ann", "lee",
              "d1x", "d1"), ("school", "s2", "bob", "ray", "d2", None),
              ("ed-istv", "e2", "bob", "ray", "d2", None), ("ed-istv", "e3", "cal", "ray",
              "d3", None))
    for source, key, forename, surname, dob, swapped in people:
        fields = {"forename_token": forename, "surname_token": surname, "dob_token": dob,
                  "forename_soundex": forename[0], "surname_soundex": surname[0],
                  "dob_swapped": swapped}
        rows += [(source, key, f, t) for f, t in fields.items() if t]
    return pl.DataFrame(rows, schema=["source", "person_key", "field", "token"], orient="row")


def test_fallback_on_tiny_input():
    link = linkage.link_tokens(tiny_tokens())
    assert link.method == linkage.FALLBACK_METHOD
    assert "too few keys" in link.caveats[0]
    pid = {(s, k): p for s, k, p in link.ids.iter_rows()}
    assert pid[("school", "s1")] == pid[("ed-istv", "e1")]
    assert pid[("school", "s2")] == pid[("ed-istv", "e2")] != pid[("ed-istv", "e3")]
    assert set(link.pairs["rule"]) == {"dob + forename + surname",
                                       "swapped dob + forename + surname"}


def test_fallback_on_a_single_source_and_on_failure(monkeypatch, demo):
    tokens = demo["data"].fetch(demo["data"].table("person_tokens").select(
        "source", "person_key", "field", "token"))
    one = linkage.link_tokens(tokens.filter(pl.col("source") == "youth-justice"))
    assert one.method == linkage.FALLBACK_METHOD and "single source" in one.caveats[0]
    assert one.pairs.height == 0

    def broken(wide: pl.DataFrame) -> linkage.Linkage:
        raise RuntimeError("EM did not converge")

    monkeypatch.setattr(linkage, "splink_link", broken)
    sample = tokens.filter(pl.col("source").is_in(("youth-justice", "probation")))
    failed = linkage.link_tokens(sample)
    assert "training failed" in failed.caveats[0] and "EM did not converge" in failed.caveats[0]
    assert failed.pairs.filter(pl.col("rule") == "shared identifier").height > 0


def test_a_tied_token_goes_to_the_value_other_keys_corroborate():
    """A key seen once with each of two dates of birth takes the one another source also
    recorded, whichever hashes smaller; a clear majority still wins."""
    def rows(source, key, dobs):
        return [(source, key, "dob_token", d) for d in dobs]
    for typo, true in (("a-typo", "z-true"), ("z-typo", "a-true")):
        tokens = pl.DataFrame(
            rows("ed-istv", "e1", [typo, true]) + rows("school", "s1", [true])
            + rows("ed-istv", "e2", [typo, typo, true]),
            schema=["source", "person_key", "field", "token"], orient="row")
        wide = {r["person_key"]: r["dob_token"] for r in linkage.records(tokens).iter_rows(
            named=True)}
        assert wide == {"e1": true, "s1": true, "e2": typo}
