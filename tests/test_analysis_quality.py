"""Data quality: load, quarantine and event counts reconciled with the warehouse tables; the
real Devon police.uk gaps reported as missing months; unloaded sources listed as gaps."""

from __future__ import annotations

import shutil
from datetime import date

import polars as pl
import pytest

from svduty.analysis import quality
from svduty.analysis.data import Data
from svduty.analysis.scope import resolve_scope
from svduty.partnership import Partnership
from svduty.sources import REGISTRY
from svduty.store import STORE_DIR
from svduty.warehouse import Warehouse

TODAY = date(2026, 6, 15)


def results_for(p: Partnership, wh: Warehouse) -> dict:
    data = Data(wh, resolve_scope(p, wh))
    return {r.name: r for r in quality.analyse(data, today=TODAY)}


@pytest.fixture(scope="module")
def devon(devon_police_uk):
    p = Partnership(devon_police_uk)
    wh = p.warehouse(read_only=True)
    yield wh, results_for(p, wh)
    wh.close()


def test_devon_counts_reconcile_with_loads_and_events(devon):
    wh, r = devon
    src = r["quality-sources"].table.filter(pl.col("source") == "police-uk").row(0, named=True)
    read, loaded, quarantined, n = wh.con.execute("""
        SELECT sum(rows_read), sum(rows_loaded), sum(rows_quarantined), count(*) FROM loads
        WHERE source = 'police-uk' AND superseded_by IS NULL""").fetchone()
    assert (src["rows_read"], src["rows_loaded"], src["rows_quarantined"], src["loads"]) == (
        read, loaded, quarantined, n)
    events, in_area = wh.con.execute("""SELECT count(*), count(*) FILTER (WHERE in_area)
        FROM events WHERE source = 'police-uk'""").fetchone()
    assert src["events"] == events and src["in_area_share"] == pytest.approx(in_area / events)
    monthly = r["quality-monthly"].table.filter(pl.col("source") == "police-uk")
    assert monthly["events"].sum() == events
    placed = wh.con.execute("SELECT count(lsoa21_code) FROM events WHERE source = 'police-uk' "
                            "AND month = DATE '2025-06-01'").fetchone()[0]
    june = monthly.filter(pl.col("month") == date(2025, 6, 1)).row(0, named=True)
    assert june["lsoa_share"] == pytest.approx(placed / june["events"])
    # police.uk never gives times, offence codes or weapons: "not supplied", not 0%
    assert june["occurred_at_share"] is None and june["offence_code_share"] is None
    assert r["quality-loads"].table.height == n == 21


def test_devon_missing_months_are_the_real_gaps(devon):
    _, r = devon
    src = r["quality-sources"].table.filter(pl.col("source") == "police-uk").row(0, named=True)
    assert src["missing_months"] == "Mar 2019 to Dec 2023; May 2024 to Dec 2024"
    assert src["months_in_period"] == 87 and src["months_with_records"] == 21
    assert src["months_without_load"] == src["months_without_records"] == 58 + 8
    assert src["months_behind_today"] == 6  # Dec 2025 -> Jun 2026
    monthly = r["quality-monthly"].table.filter(pl.col("source") == "police-uk")
    missing = monthly.filter(~pl.col("has_load"))["month"].to_list()
    assert date(2019, 3, 1) in missing and date(2024, 12, 1) in missing
    assert date(2019, 2, 1) not in missing and date(2025, 1, 1) not in missing


def test_devon_gaps_list_every_unloaded_source(devon):
    _, r = devon
    gaps = r["quality-gaps"].table
    not_loaded = set(gaps.filter(pl.col("kind") == "not loaded")["source"])
    assert not_loaded == set(REGISTRY) - {"police-uk"}
    text = " ".join(gaps["gap"])
    assert "Ambulance" in text and "social care" in text
    assert "Mar 2019 to Dec 2023" in text
    for sentence in gaps["gap"]:
        assert sentence.endswith(".") and sentence[0].isupper()


def test_quarantine_and_superseded_loads_reconcile(demo_partnership, tmp_path):
    """On a copy of the demo: quarantined rows are counted per reason from `quarantine`, and
    a superseded load (and its quarantine rows) is left out."""
    shutil.copy(demo_partnership / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(demo_partnership / STORE_DIR, tmp_path / STORE_DIR)
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    try:
        con = wh.con
        load = con.execute("SELECT min(load_id) FROM loads WHERE source = 'ed-istv'").fetchone()[0]
        reasons = {"age is not a number": 7, "date is in the future": 3, "unknown LSOA": 2}
        for reason, n in reasons.items():
            for i in range(n):
                con.execute("INSERT INTO quarantine VALUES (?, 'ed-istv', 'f.csv', ?, 'x', "
                            "'v', ?, 'fix it', '{}')", [load, i + 2, reason])
        con.execute("UPDATE loads SET rows_quarantined = 12, rows_read = rows_read + 12 "
                    "WHERE load_id = ?", [load])
        new_id = con.execute("SELECT max(load_id) + 1 FROM loads").fetchone()[0]
        con.execute("""INSERT INTO loads SELECT ? AS load_id, source, scope, partner, 'old.csv',
            file_path, checksum, period_start, period_end, 100, 50, 50, 0, 'superseded',
            load_id, definition_version, loaded_by, loaded_at FROM loads WHERE load_id = ?""",
                    [new_id, load])
        con.execute("INSERT INTO quarantine VALUES (?, 'ed-istv', 'old.csv', 2, 'x', 'v', "
                    "'old reason', 'fix', '{}')", [new_id])
        r = results_for(Partnership(demo_partnership), wh)
    finally:
        wh.close()
    top = r["quality-quarantine-reasons"].table.filter(pl.col("source") == "ed-istv")
    assert dict(zip(top["reason"], top["rows"], strict=True)) == reasons
    assert top["rank"].to_list() == [1, 2, 3]
    assert top["share_of_quarantined"].to_list()[0] == pytest.approx(7 / 12)
    ed = r["quality-sources"].table.filter(pl.col("source") == "ed-istv").row(0, named=True)
    assert ed["rows_quarantined"] == 12 and ed["superseded_loads"] == 1
    assert new_id not in r["quality-loads"].table["load_id"].to_list()
    assert r["quality-sources"].meta.parameters["superseded_loads_excluded"] == 1
    load_row = r["quality-loads"].table.filter(pl.col("load_id") == load).row(0, named=True)
    assert load_row["quarantine_share"] == pytest.approx(12 / load_row["rows_read"])


def test_demo_geocoding_and_completeness(demo_partnership):
    p = Partnership(demo_partnership)
    with p.warehouse(read_only=True) as wh:
        r = results_for(p, wh)
        ed_total, ed_placed = wh.con.execute("SELECT count(*), count(lsoa21_code) FROM events "
                                             "WHERE source = 'ed-istv'").fetchone()
    geo = r["quality-geocoding"].table.filter(pl.col("source") == "ed-istv")
    methods = dict(zip(geo["method"], geo["events"], strict=True))
    assert sum(methods.values()) == ed_total
    assert methods["not placed"] == ed_total - ed_placed
    assert {"geocoded by postcode", "geocoded by street"} <= set(methods)
    assert 0.6 < ed_placed / ed_total < 0.8  # the demo geocodes about 70%
    gaps = r["quality-gaps"].table
    assert gaps.filter(pl.col("kind") == "not loaded").height == 0  # demo loads every source
    monthly = r["quality-monthly"].table
    pr = monthly.filter(pl.col("source") == "police-recorded")
    assert (pr["offence_code_share"] == 1).all() and (pr["age_share"] > 0.9).all()
