"""Ingest rules on real police.uk files: reconciliation, out-of-area, idempotence,
superseding, vintages, rejection without half-loading, status and export."""

from __future__ import annotations

import gzip
import json
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from svduty.cli import app
from svduty.partnership import Partnership
from svduty.sources import get_source, writing
from svduty.sources.ingest import IngestError, ingest
from svduty.warehouse import connect

from .conftest import STREET

DC_2025_01 = STREET / "2025-01" / "2025-01-devon-and-cornwall-street.csv.gz"
DC_2018_10 = STREET / "2018-10" / "2018-10-devon-and-cornwall-street.csv.gz"
MERSEY_2025_01 = STREET / "2025-01" / "2025-01-merseyside-street.csv.gz"
runner = CliRunner()


def query(root, sql):
    con = connect(root / "warehouse.duckdb")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def plymouth(tmp_path, reference_partnership):
    """Plymouth alone, sharing the imported reference data."""
    root = tmp_path / "plymouth"
    shutil.copytree(reference_partnership, root)
    p = Partnership(root)
    p.config.areas = [a for a in p.config.areas if a.csp_name == "Plymouth"]
    p.save()
    return Partnership(root)


def test_every_row_is_loaded_or_quarantined(plymouth):
    results = ingest(plymouth, get_source("police-uk"), [DC_2025_01, MERSEY_2025_01])
    assert [r.status for r in results] == ["loaded", "loaded"]
    for r in results:
        assert r.rows_read == r.rows_loaded + r.rows_quarantined
    assert results[0].rows_read == 11_460
    loads = query(plymouth.root, "SELECT rows_read, rows_loaded + rows_quarantined FROM loads")
    assert all(a == b for a, b in loads)
    events = query(plymouth.root, "SELECT count(*) FROM events")[0][0]
    assert events == sum(r.rows_loaded for r in results)


def test_rows_outside_the_partnership_are_kept_and_marked(plymouth):
    [result] = ingest(plymouth, get_source("police-uk"), [DC_2025_01])
    rows = dict(query(plymouth.root, "SELECT in_area, count(*) FROM events GROUP BY ALL"))
    assert rows[True] > 1_000  # Plymouth is about a fifth of Devon & Cornwall
    assert rows[False] > rows[True]  # the rest of the force is kept, marked out of area
    assert result.rows_out_of_area == rows[False]
    lads = query(plymouth.root, """SELECT DISTINCT a.lad_code FROM events e JOIN areas a
        ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021 WHERE e.in_area""")
    assert lads == [("E06000026",)]


def test_reingesting_the_same_file_changes_nothing(plymouth):
    source = get_source("police-uk")
    ingest(plymouth, source, [DC_2025_01])
    before = query(plymouth.root, "SELECT count(*), sum(hash(event_id)) FROM events")
    [again] = ingest(plymouth, source, [DC_2025_01])
    assert again.status == "skipped" and "already loaded as load 1" in again.message
    assert query(plymouth.root, "SELECT count(*), sum(hash(event_id)) FROM events") == before
    assert query(plymouth.root, "SELECT count(*) FROM loads") == [(1,)]


def test_newer_extract_for_the_same_month_supersedes_without_duplicates(plymouth, tmp_path):
    source = get_source("police-uk")
    ingest(plymouth, source, [DC_2025_01])
    lines = gzip.decompress(DC_2025_01.read_bytes()).decode().splitlines()
    newer = tmp_path / "newer" / DC_2025_01.name.removesuffix(".gz")
    newer.parent.mkdir()
    newer.write_text("\n".join(lines[:-100]) + "\n")  # a re-issued month, 100 crimes fewer
    [result] = ingest(plymouth, source, [newer])
    assert result.superseded == [1]
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(result.rows_loaded,)]
    assert query(plymouth.root, "SELECT count(*) - count(DISTINCT event_id) FROM events") == [(0,)]
    status = dict(query(plymouth.root, "SELECT load_id, status FROM loads"))
    assert status == {1: "superseded", 2: "active"}


def test_2011_lsoa_codes_are_harmonised_to_2021(plymouth):
    ingest(plymouth, get_source("police-uk"), [DC_2018_10])
    vintages = dict(query(plymouth.root, """SELECT lsoa_vintage, count(*) FROM events
        WHERE lsoa_code IS NOT NULL GROUP BY ALL"""))
    assert vintages.get(2011, 0) > 0  # codes that only exist in 2011
    unmapped = query(plymouth.root, """SELECT count(*) FROM events
        WHERE lsoa_code IS NOT NULL AND lsoa21_code IS NULL AND in_area""")
    assert unmapped == [(0,)]


def test_unknown_lsoa_code_is_quarantined(plymouth, tmp_path):
    lines = gzip.decompress(DC_2025_01.read_bytes()).decode().splitlines()
    row = lines[1].split(",")
    lsoa_at = lines[0].split(",").index("LSOA code")
    row[lsoa_at] = "E01999999"
    path = tmp_path / DC_2025_01.name.removesuffix(".gz")
    path.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    [result] = ingest(plymouth, get_source("police-uk"), [path])
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    q = query(plymouth.root, """SELECT row_number, "column", value, reason FROM quarantine
        WHERE value = 'E01999999'""")
    assert q == [(2, "lsoa_code", "E01999999",
                  "LSOA code is not in the 2011 or 2021 reference geography")]


def test_a_wrong_file_is_rejected_and_nothing_of_it_is_loaded(plymouth, tmp_path):
    bad = tmp_path / "2025-02-devon-and-cornwall-street.csv.gz"
    bad.write_bytes(DC_2025_01.read_bytes()[:5000])  # truncated download
    results = ingest(plymouth, get_source("police-uk"), [bad, DC_2025_01])
    assert [r.status for r in results] == ["rejected", "loaded"]
    assert bad.name in results[0].message and "truncated" in results[0].message
    assert query(plymouth.root, "SELECT DISTINCT file_name FROM loads") == [(DC_2025_01.name,)]
    # the good file was read beside the bad one and its events written under the load id it
    # would have had (2); it got load 1, so they were written again: one file, right id
    assert query(plymouth.root, "SELECT DISTINCT load_id FROM events") == [(1,)]
    assert [f.name[:11] for f in event_files(plymouth)] == ["load-000001"]


def test_the_same_file_named_twice_loads_once(plymouth, tmp_path):
    copy = tmp_path / "copy" / DC_2025_01.name
    copy.parent.mkdir()
    shutil.copy(DC_2025_01, copy)
    results = ingest(plymouth, get_source("police-uk"), [DC_2025_01, copy, DC_2018_10])
    assert [r.status for r in results] == ["loaded", "skipped", "loaded"]
    assert results[1].message == f"same file as {DC_2025_01.name}; nothing changed"
    assert query(plymouth.root, "SELECT load_id, file_name FROM loads ORDER BY 1") == [
        (1, DC_2025_01.name), (2, DC_2018_10.name)]
    assert query(plymouth.root, "SELECT load_id, count(*) > 0 FROM events GROUP BY 1 "
                 "ORDER BY 1") == [(1, True), (2, True)]
    assert len(event_files(plymouth)) == 2


def test_progress_is_reported_as_each_file_is_read_before_the_batch_is_written(
        plymouth, monkeypatch):
    from svduty.sources import ingest as ingest_module

    seen, at_write = [], []
    write_batch = ingest_module.write_batch

    def note_progress(*args):
        at_write.append(list(seen))
        return write_batch(*args)

    monkeypatch.setattr(ingest_module, "write_batch", note_progress)
    files = [DC_2025_01, MERSEY_2025_01, DC_2018_10]
    ingest(plymouth, get_source("police-uk"), files, progress=seen.append)
    assert seen == files
    assert at_write == [files]  # one batch: every file reported before its commit


def event_files(partnership):
    return sorted((partnership.root / "warehouse-files" / "events").glob("*.parquet"))


def test_a_failure_while_writing_leaves_nothing_half_loaded(plymouth, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writing, "supersede", explode)
    with pytest.raises(RuntimeError):
        ingest(plymouth, get_source("police-uk"), [DC_2025_01])
    assert query(plymouth.root, "SELECT (SELECT count(*) FROM loads), "
                 "(SELECT count(*) FROM events), (SELECT count(*) FROM quarantine)") == [(0, 0, 0)]
    assert event_files(plymouth) == []  # written while reading, deleted with the load


def test_a_failure_while_reading_leaves_no_files(plymouth, monkeypatch):
    from svduty.sources import ingest as ingest_module

    harmonise = ingest_module.harmonise_geography

    def fail_on_the_old_file(parsed, *args):
        if parsed.period[0].year == 2018:
            raise RuntimeError("out of memory")
        return harmonise(parsed, *args)

    monkeypatch.setattr(ingest_module, "harmonise_geography", fail_on_the_old_file)
    with pytest.raises(RuntimeError, match="out of memory"):
        ingest(plymouth, get_source("police-uk"), [DC_2025_01, MERSEY_2025_01, DC_2018_10])
    assert query(plymouth.root, "SELECT count(*) FROM loads") == [(0,)]
    assert event_files(plymouth) == []


def test_ingest_needs_reference_data(tmp_path):
    from svduty.partnership import init_partnership

    p = init_partnership(tmp_path / "bare", ["Plymouth"])
    with pytest.raises(IngestError, match="reference import"):
        ingest(p, get_source("police-uk"), [DC_2025_01])


def test_cli_ingest_status_and_export(plymouth, tmp_path):
    root = str(plymouth.root)
    month_dirs = [str(STREET / m) for m in ("2025-06", "2025-08")]
    result = runner.invoke(app, ["ingest", root, "police-uk", *month_dirs])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["status", root, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["loads"]) == 6
    for load in report["loads"]:
        assert load["rows_read"] == load["rows_loaded"] + load["rows_quarantined"]
    tv = next(c for c in report["coverage"] if c["scope"] == "thames-valley")
    assert tv["missing"] == ["2025-07"]
    out = tmp_path / "events.csv"
    result = runner.invoke(app, ["export", root, "events", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_csv(out, infer_schema=False).height == report["totals"]["events"]
    audit = (plymouth.root / "audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["action"] == "export"


def test_cli_rejected_file_exits_non_zero(plymouth, tmp_path):
    bad = tmp_path / "notes.csv"
    bad.write_text("this is not a police.uk file\n")
    result = runner.invoke(app, ["ingest", str(plymouth.root), "police-uk", str(bad)])
    assert result.exit_code == 1
    assert "notes.csv" in result.output


def test_police_recorded_extract_ingests_with_people_and_definition(plymouth, tmp_path):
    from .test_police_recorded import extract, write_csv

    rows = extract(n_crimes=200, seed=11)
    rows[0]["offence_code"] = "999Z"  # well-formed but not a Home Office code
    path = write_csv(tmp_path, rows)
    [result] = ingest(plymouth, get_source("police-recorded"), [path],
                      partner="Devon & Cornwall Police")
    assert result.status == "loaded", result.message
    assert result.rows_read == len(rows)
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    reasons = [r[0] for r in query(plymouth.root, "SELECT reason FROM quarantine")]
    assert any("not in the Home Office offence code list" in r for r in reasons)
    people, orphans = query(plymouth.root, """SELECT count(*), count(*) FILTER
        (WHERE event_id NOT IN (SELECT event_id FROM events)) FROM involvements""")[0]
    assert people > 0 and orphans == 0
    version = query(plymouth.root, "SELECT DISTINCT definition_version FROM sv_events")
    loads_version = query(plymouth.root, "SELECT definition_version FROM loads")
    assert version == loads_version
    categories = {r[0] for r in query(plymouth.root, "SELECT sv_category FROM sv_events")}
    assert categories, "the default definition selects some of a realistic extract"


def test_force_extracts_supersede_only_within_the_same_force(plymouth, tmp_path):
    from .test_police_recorded import extract, write_csv

    source = get_source("police-recorded")
    rows = extract(n_crimes=120, seed=5)
    folders = {name: tmp_path / name for name in ("a", "b", "c")}
    for folder in folders.values():
        folder.mkdir()
    # Plymouth has one force, so an extract without --partner is Devon & Cornwall's
    [a] = ingest(plymouth, source, [write_csv(folders["a"], rows)])
    [b] = ingest(plymouth, source, [write_csv(folders["b"], extract(n_crimes=80, seed=6))],
                 partner="Thames Valley Police")
    assert a.superseded == [] and b.superseded == []
    scopes = dict(query(plymouth.root, "SELECT scope, count(*) FROM loads GROUP BY ALL"))
    assert scopes == {"devon-and-cornwall": 1, "thames-valley": 1}
    [c] = ingest(plymouth, source, [write_csv(folders["c"], rows[:-10])])
    assert c.superseded == [a.load_id]
    events = dict(query(plymouth.root, "SELECT scope, count(*) FROM events GROUP BY ALL"))
    crimes_b = query(plymouth.root, f"SELECT count(*) FROM events WHERE load_id = {b.load_id}")
    assert events["thames-valley"] == crimes_b[0][0] > 0  # untouched by c
    assert query(plymouth.root, "SELECT count(*) - count(DISTINCT event_id) FROM events") == [(0,)]
    orphans = query(plymouth.root, "SELECT count(*) FROM involvements WHERE event_id NOT IN "
                    "(SELECT event_id FROM events)")
    assert orphans == [(0,)]


def test_any_force_ingests_and_rows_outside_are_kept(plymouth):
    wy = STREET.parent / "street_samples_west_yorkshire" / "2018-07"
    [result] = ingest(plymouth, get_source("police-uk"), [wy])
    assert result.status == "loaded"
    assert result.rows_read == 31_635  # as published (data README)
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    placed = query(plymouth.root, "SELECT count(*) FROM events WHERE in_area IS NOT NULL")[0][0]
    assert result.rows_out_of_area == placed > 30_000  # all of it kept, none in Plymouth
    assert query(plymouth.root, "SELECT DISTINCT scope FROM events") == [("west-yorkshire",)]
