"""The Parquet event store under the warehouse: all-or-nothing loads, moves, migration."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import polars as pl
import pytest

from svduty.store import STORE_DIR, StoreError
from svduty.warehouse import Warehouse, connect


def events(ids: list[str], month: date = date(2025, 1, 1)) -> pl.DataFrame:
    return pl.DataFrame({"event_id": ids, "source": "police-uk", "source_record_id": ids,
                         "month": [month] * len(ids), "load_id": 1})


def files(root) -> set[str]:
    return {p.name for p in (root / STORE_DIR / "events").glob("*.parquet")}


def test_a_committed_load_is_read_through_the_view(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        with wh.transaction():
            wh.store.add("events", events(["a", "b"]), 1)
        assert wh.count("events") == 2
    assert len(files(tmp_path)) == 1


def test_a_failed_load_leaves_no_rows_and_no_files(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        with pytest.raises(RuntimeError), wh.transaction():
            wh.store.add("events", events(["a"]), 1)
            raise RuntimeError("write failed half way")
        assert wh.count("events") == 0
    assert files(tmp_path) == set()


def test_stray_files_from_a_crash_are_swept_on_open(tmp_path):
    Warehouse(tmp_path / "warehouse.duckdb").close()
    stray = tmp_path / STORE_DIR / "events" / "stray.parquet"
    stray.parent.mkdir(parents=True, exist_ok=True)
    events(["x"]).write_parquet(stray)
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        assert wh.count("events") == 0
    assert not stray.exists()


def test_delete_rewrites_files_and_removes_the_old_ones_after_commit(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        with wh.transaction():
            wh.store.add("events", events(["a", "b", "c"]), 1)
        before = files(tmp_path)
        with wh.transaction():
            assert wh.store.delete_where("events", "event_id = ?", ["b"]) == 1
        ids = [r[0] for r in wh.con.execute("SELECT event_id FROM events ORDER BY 1").fetchall()]
        assert ids == ["a", "c"]
        assert files(tmp_path).isdisjoint(before)
        with pytest.raises(RuntimeError), wh.transaction():  # a rolled-back delete keeps all
            wh.store.delete_where("events", "event_id = ?", ["a"])
            raise RuntimeError
        assert wh.count("events") == 2


def test_the_partnership_folder_can_be_moved(tmp_path):
    (tmp_path / "a").mkdir()
    with Warehouse(tmp_path / "a" / "warehouse.duckdb") as wh, wh.transaction():
        wh.store.add("events", events(["a"]), 1)
    shutil.move(tmp_path / "a", tmp_path / "b")
    with connect(tmp_path / "b" / "warehouse.duckdb") as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_a_warehouse_copied_without_its_files_says_so(tmp_path):
    (tmp_path / "a").mkdir()
    with Warehouse(tmp_path / "a" / "warehouse.duckdb") as wh, wh.transaction():
        wh.store.add("events", events(["a"]), 1)
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "warehouse.duckdb", tmp_path / "b" / "warehouse.duckdb")
    with pytest.raises(StoreError, match="warehouse-files"):
        Warehouse(tmp_path / "b" / "warehouse.duckdb")


def test_a_warehouse_with_stored_events_migrates(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:  # schema 1: events and sv_events stored natively
        con.execute("CREATE TABLE events (event_id VARCHAR, source VARCHAR, "
                    "source_record_id VARCHAR, load_id INTEGER, month DATE)")
        con.execute("INSERT INTO events VALUES ('a', 'police-uk', 'a', 1, DATE '2025-01-01')")
        con.execute("CREATE TABLE sv_events (event_id VARCHAR)")
    with Warehouse(path) as wh:
        assert wh.con.execute("SELECT event_id, month FROM events").fetchall() == [
            ("a", date(2025, 1, 1))]
        assert wh.count("sv_events") == 0
        kinds = dict(wh.con.execute("SELECT table_name, table_type FROM "
                                    "information_schema.tables").fetchall())
        assert kinds["events"] == kinds["sv_events"] == "VIEW"


def test_a_written_file_is_on_disk_but_unseen_until_listed(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        early = wh.store.write("events", events(["a", "b"]), 1)  # as a reader thread does
        other = wh.store.write("events", events(["c"]), 2)
        assert (early.load_id, early.rows) == (1, 2)
        assert len(files(tmp_path)) == 2 and wh.count("events") == 0
        wh.store.discard([other])  # e.g. its file broke the reader contract
        with wh.transaction():
            wh.store.list_files([early])
        assert wh.count("events") == 2
        assert wh.con.execute("SELECT file, load_id, rows FROM store_files").fetchall() == [
            (early.name, 1, 2)]
    assert files(tmp_path) == {early.name.rsplit("/", 1)[1]}


def test_a_written_file_is_deleted_when_the_load_rolls_back(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        early = wh.store.write("events", events(["a"]), 1)
        with pytest.raises(RuntimeError), wh.transaction():
            wh.store.list_files([early])
            raise RuntimeError("the load failed after its files were written")
        assert wh.count("events") == 0
    assert files(tmp_path) == set()
