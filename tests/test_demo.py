"""`svduty demo`: the synthetic partnership builds from nothing, every source loads, no raw
identifier reaches the warehouse, and the planted structure is in the data."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from svduty.demo.build import PERSON_LEVEL
from svduty.partnership import Partnership
from svduty.sources import REGISTRY
from svduty.warehouse import connect


@pytest.fixture
def demo(demo_partnership: Path) -> Path:
    return demo_partnership  # the session's demo (conftest.py), built once


def sql(root: Path, query: str) -> pl.DataFrame:
    with connect(root / "warehouse.duckdb") as con:
        return con.sql(query).pl()


def test_every_source_loads_and_reconciles(demo: Path) -> None:
    loads = sql(demo, "SELECT source, sum(rows_read) r, sum(rows_loaded) l, "
                      "sum(rows_quarantined) q FROM loads GROUP BY source")
    assert set(loads["source"]) == set(REGISTRY)
    assert (loads["r"] == loads["l"] + loads["q"]).all()
    assert (loads["l"] > 0).all()


def test_marked_synthetic(demo: Path) -> None:
    config = Partnership(demo).config
    assert config.synthetic and "SYNTHETIC" in config.name
    assert "SYNTHETIC" in (demo / "README-SYNTHETIC.txt").read_text()
    assert all(p.name.startswith("SYNTHETIC") or p.parent.name == "police-uk"
               for p in (demo / "inbox").rglob("*.csv"))


def test_no_raw_identifier_in_warehouse(demo: Path) -> None:
    """Names, dates of birth, NHS numbers, UPNs and PNC ids from the partners' raw files."""
    raw = pl.concat([pl.read_csv(p, infer_schema=False).select(
        pl.col(c) for c in ("forename", "surname", "date_of_birth", "nhs_number", "upn",
                            "pnc_id") if c in pl.read_csv(p, n_rows=1).columns)
        for s in PERSON_LEVEL for p in (demo / "partner-side" / s).glob("*.csv")
        if "absence" not in p.name], how="diagonal")
    needles = set()
    for column in ("nhs_number", "upn", "pnc_id", "date_of_birth"):
        needles |= set(raw.get_column(column).drop_nulls().sample(200, seed=1).to_list())
    full_names = raw.select(pl.concat_str("forename", "surname", separator=" ")).to_series()
    needles |= set(full_names.drop_nulls().sample(200, seed=1).to_list())
    with connect(demo / "warehouse.duckdb") as con:
        columns = con.sql("SELECT table_name, column_name FROM information_schema.columns "
                          "WHERE data_type = 'VARCHAR'").fetchall()
        for table, column in columns:
            values = {v for (v,) in con.execute(
                f'SELECT DISTINCT "{column}" FROM {table}').fetchall() if v}
            hits = [n for n in needles if any(n in v for v in values)]
            assert not hits, f"{table}.{column} holds raw identifiers, e.g. {hits[:3]}"


def test_planted_hotspots_stand_out(demo: Path) -> None:
    truth = json.loads((demo / "ground-truth.json").read_text())
    persistent = truth["hotspots"]["persistent"]
    emerging = truth["hotspots"]["emerging"]
    rates = sql(demo, """
        SELECT e.lsoa21_code AS lsoa, e.month >= DATE '2024-10-01' AS last_year,
               count(*) / any_value(p.residents)
                 / count(DISTINCT e.month) AS rate
        FROM events e
        JOIN (SELECT lsoa_code, sum(residents) residents FROM populations
              WHERE lsoa_vintage = 2021 GROUP BY 1) p ON p.lsoa_code = e.lsoa21_code
        WHERE e.source = 'police-recorded' GROUP BY 1, 2""")

    def median(subset: pl.DataFrame) -> float:
        return float(subset.get_column("rate").median())
    others = rates.filter(~pl.col("lsoa").is_in(persistent + emerging))
    assert median(rates.filter(pl.col("lsoa").is_in(persistent))) > 2 * median(others)
    before = median(rates.filter(pl.col("lsoa").is_in(emerging) & ~pl.col("last_year")))
    after = median(rates.filter(pl.col("lsoa").is_in(emerging) & pl.col("last_year")))
    assert after > 2 * before


def test_cohort_and_under_reporting_recorded(demo: Path) -> None:
    truth = json.loads((demo / "ground-truth.json").read_text())
    ids = truth["cohort"]["exclusion_ids"]
    assert len(ids) >= 140
    found = sql(demo, "SELECT source, source_record_id FROM events "
                      "WHERE source IN ('school', 'youth-justice')")
    assert set(ids) <= set(found.filter(pl.col("source") == "school")["source_record_id"])
    yj = set(truth["cohort"]["youth_justice_offence_ids"])
    assert len(yj) >= 40
    assert yj <= set(found.filter(pl.col("source") == "youth-justice")["source_record_id"])
    share = truth["under_reporting"]["planted_unreported_share"]
    assert 0.6 < share < 0.7


def test_cohort_ed_attendances_link_to_their_school_records(demo: Path) -> None:
    """The ED file is person-level under the recorded gateway: the planted cohort's
    attendances carry keys whose tokens (date of birth and surname) match the pupils' own."""
    truth = json.loads((demo / "ground-truth.json").read_text())
    ed_ids = truth["cohort"]["ed_attendance_ids"]
    assert len(ed_ids) >= truth["cohort"]["planted_in_ed"] == 30
    linked = sql(demo, f"""
        WITH ed AS (SELECT DISTINCT e.source_record_id, i.person_key FROM events e
                    JOIN involvements i USING (event_id)
                    WHERE e.source = 'ed-istv' AND e.source_record_id IN
                    ({", ".join(f"'{i}'" for i in ed_ids)})),
        pupils AS (SELECT DISTINCT i.person_key FROM events e JOIN involvements i
                   USING (event_id) WHERE e.source = 'school' AND e.source_record_id IN
                   ({", ".join(f"'{i}'" for i in truth["cohort"]["exclusion_ids"])})),
        tok AS (SELECT source, person_key, field, token FROM person_tokens
                WHERE field IN ('dob_token', 'surname_token'))
        SELECT ed.source_record_id, ed.person_key IS NOT NULL AS keyed,
               count(DISTINCT p.person_key) AS matches
        FROM ed
        LEFT JOIN tok a ON a.source = 'ed-istv' AND a.person_key = ed.person_key
                       AND a.field = 'dob_token'
        LEFT JOIN tok b ON b.source = 'ed-istv' AND b.person_key = ed.person_key
                       AND b.field = 'surname_token'
        LEFT JOIN tok c ON c.source = 'school' AND c.field = 'dob_token' AND c.token = a.token
        LEFT JOIN tok d ON d.source = 'school' AND d.field = 'surname_token'
                       AND d.token = b.token AND d.person_key = c.person_key
        LEFT JOIN pupils p ON p.person_key = d.person_key
        GROUP BY ALL""")
    assert linked.height == len(ed_ids) and linked["keyed"].all()
    # Recording errors (1-3% per field) may break an exact match for a few.
    assert (linked["matches"] >= 1).sum() >= 0.9 * len(ed_ids)


def test_calibrated_concentration(demo: Path) -> None:
    """Violence is about as concentrated across LSOAs as in real towns (top 10% of LSOAs
    hold 32-34% in Plymouth, Liverpool and Milton Keynes; planted hotspots add a little)."""
    counts = sql(demo, """
        SELECT e.lsoa21_code, count(*) n FROM sv_events JOIN events e USING (event_id)
        WHERE e.source = 'police-recorded' GROUP BY 1 ORDER BY n DESC""")["n"].to_list()
    top = sum(counts[: round(len(counts) * 0.1)]) / sum(counts)
    assert 0.25 < top < 0.45
