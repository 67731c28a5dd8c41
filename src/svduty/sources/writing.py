"""Write prepared files into the warehouse inside the caller's transaction.

Events go to the Parquet store, one file per load (:mod:`svduty.store`), usually written
already by the thread that read the file and listed here; people, aggregates, tokens and
quarantine lines go to DuckDB tables, one bulk insert per table for a group of files. A
file that supersedes another file of the same batch (same source and scope, overlapping
period) starts a new group, so files still take effect in the order given.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers the `nchash` namespace)

from svduty.privacy import audit
from svduty.sources.base import (
    AGGREGATE_COLUMNS,
    INVOLVEMENT_COLUMNS,
    QUARANTINE_COLUMNS,
    TOKEN_COLUMNS,
    Parsed,
    conform,
    conforming,
)
from svduty.store import Store, StoredFile, polars_schema


def with_event_id(frame: pl.DataFrame) -> pl.DataFrame:
    """Add `event_id`, the event's warehouse key: XXH3-128 of source, scope and the source's
    record id in 32 hex digits (a specified, stable hash: the same record always gets the
    same key, so a newer extract replaces it)."""
    key = pl.concat_str([pl.col("source"), pl.col("scope").fill_null(""),
                         pl.col("source_record_id")], separator="|")
    hashed = frame.select(key.nchash.xxh3_128().alias("h"))
    halves = np.empty((frame.height, 2), dtype=">u8")  # big-endian: hex reads high to low
    halves[:, 0] = hashed.select(pl.col("h") // 2**64).to_series().cast(pl.UInt64).to_numpy()
    halves[:, 1] = hashed.select(pl.col("h") % 2**64).to_series().cast(pl.UInt64).to_numpy()
    digits = np.frombuffer(binascii.hexlify(halves.tobytes()), dtype="S32")
    return frame.with_columns(pl.Series("event_id", digits).cast(pl.String))


# Aggregates as stored: the reader's columns plus what ingest adds (2021 LSOA, in-area flag).
STORED_AGGREGATE = {**AGGREGATE_COLUMNS, "lsoa21_code": pl.String, "in_area": pl.Boolean}


@dataclass
class Prepared:
    """A file read, checked and harmonised, ready to write. Its events may already be on
    disk (`events_file`, written while other files were still being read, under the load id
    it was expected to get); they are listed only when the load is written."""

    path: Path
    digest: str  # SHA-256 of the file
    parsed: Parsed
    events_file: StoredFile | None = None


def groups(items: list[Prepared]) -> list[list[Prepared]]:
    """Split files so that no group holds two files of the same scope with overlapping periods."""
    out: list[list[Prepared]] = [[]]
    for item in items:
        parsed = item.parsed
        clash = any(other.parsed.scope == parsed.scope
                    and other.parsed.period[0] <= parsed.period[1]
                    and parsed.period[0] <= other.parsed.period[1] for other in out[-1])
        if clash:
            out.append([])
        out[-1].append(item)
    return [g for g in out if g]


def write_group(
    store: Store, source: str, group: list[Prepared], partner: str | None,
    definition_version: str | None,
) -> list[dict]:
    """Write loads, events, people and quarantine for a group; returns each file's figures."""
    con = store.con
    first_id = next_load_id(con)
    figures = [file_figures(item.parsed, first_id + i) for i, item in enumerate(group)]
    insert_loads(con, source, group, figures, partner, definition_version)
    superseded = supersede(store, source, group, first_id)
    store.list_files(events_files(store, source, group, figures))
    people = [stamp(conform(item.parsed.involvements, INVOLVEMENT_COLUMNS), item.parsed,
                    f["load_id"], source)
              for item, f in zip(group, figures, strict=True)
              if item.parsed.involvements is not None and item.parsed.involvements.height]
    if people:
        insert_frame(con, "involvements", with_event_id(pl.concat(people)), """
            SELECT event_id, person_key, role, age, age_band, sex, ethnicity, load_id
            FROM frame""")
    insert_aggregates(con, source, group, figures)
    insert_tokens(con, source, group, figures)
    lines = [stamp(conform(item.parsed.quarantine, QUARANTINE_COLUMNS), item.parsed,
                   f["load_id"], source).with_columns(pl.lit(item.path.name).alias("file_name"))
             for item, f in zip(group, figures, strict=True) if item.parsed.quarantine.height]
    if lines:
        insert_frame(con, "quarantine", pl.concat(lines), """
            SELECT load_id, source, file_name, row_number, "column", value, reason, fix, record
            FROM frame""")
    for f in figures:
        f["superseded"] = superseded.get(f["load_id"], [])
    return figures


def events_files(store: Store, source: str, group: list[Prepared],
                 figures: list[dict]) -> list[StoredFile]:
    """The group's events files: those written early under the load id each file now gets,
    and new ones where it got another (a file before it in the batch was rejected)."""
    ready, remake = [], []
    for item, f in zip(group, figures, strict=True):
        early = item.events_file
        if early is not None and early.load_id == f["load_id"]:
            ready.append(early)
        else:
            store.discard([early] if early else [])
            remake.append((partial(event_rows, item.parsed, f["load_id"], source), f["load_id"]))
    return ready + store.write_many("events", remake)


def insert_aggregates(con, source: str, group: list[Prepared], figures: list[dict]) -> None:
    frames = [stamp(conform(item.parsed.aggregates, STORED_AGGREGATE), item.parsed,
                    f["load_id"], source)
              for item, f in zip(group, figures, strict=True)
              if item.parsed.aggregates is not None and item.parsed.aggregates.height]
    if frames:
        insert_frame(con, "aggregates", pl.concat(frames), """
            SELECT source, scope, load_id, row_number, measure, period_start, period_end,
              period_type, area_type, area_code, area_name, lsoa21_code, in_area, category,
              icd10, age_band, sex, value, suppressed, denominator, context FROM frame""")


def insert_tokens(con, source: str, group: list[Prepared], figures: list[dict]) -> None:
    frames = [stamp(loaded_tokens(item.parsed), item.parsed, f["load_id"], source)
              for item, f in zip(group, figures, strict=True)
              if item.parsed.tokens is not None and item.parsed.tokens.height]
    if frames:
        insert_frame(con, "person_tokens", pl.concat(frames).unique(
            ["person_key", "field", "token"]), """
            SELECT source, person_key, field, token, load_id FROM frame
            WHERE NOT EXISTS (SELECT 1 FROM person_tokens t WHERE t.source = frame.source
              AND t.person_key = frame.person_key AND t.field = frame.field
              AND t.token = frame.token)""")


def loaded_tokens(parsed: Parsed) -> pl.DataFrame:
    """The file's linkage tokens, less those of rows quarantined (by the reader or by ingest,
    e.g. an unknown LSOA): nothing is kept about a person from a row that was not loaded."""
    quarantined = parsed.quarantine.get_column("row_number").implode()
    return conform(parsed.tokens, TOKEN_COLUMNS).filter(~pl.col("row_number").is_in(quarantined))


def file_figures(parsed: Parsed, load_id: int) -> dict:
    quarantined = parsed.quarantine.get_column("row_number").n_unique()
    out_of_area = parsed.events.filter(pl.col("in_area").not_()).height
    if parsed.aggregates is not None and "in_area" in parsed.aggregates.columns:
        out_of_area += parsed.aggregates.filter(pl.col("in_area").not_()).get_column(
            "row_number").n_unique()  # file rows: a wide row gives several aggregates
    return {
        "load_id": load_id, "rows_read": parsed.rows_read,
        "rows_loaded": parsed.rows_read - quarantined, "rows_quarantined": quarantined,
        "rows_out_of_area": out_of_area,
    }


def event_rows(parsed: Parsed, load_id: int, source: str) -> pl.DataFrame:
    """A file's events as stored (the store's columns, in one pass): stamped with the load
    and keyed."""
    identity = {"source": pl.lit(source, pl.String), "scope": pl.lit(parsed.scope, pl.String),
                "load_id": pl.lit(load_id, pl.Int32)}
    columns = conforming(tuple(parsed.events.columns), STORED_EVENT)
    return with_event_id(parsed.events.select(
        identity[name].alias(name) if name in identity else expr
        for (name, _), expr in zip(STORED_EVENT, columns, strict=True)))


# The store's event columns but the key (which `with_event_id` adds).
STORED_EVENT = tuple((name, dtype) for name, dtype in polars_schema("events").items()
                     if name != "event_id")


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    """The id the next load gets."""
    return con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchone()[0]


def stamp(frame: pl.DataFrame, parsed: Parsed, load_id: int, source: str) -> pl.DataFrame:
    """Add the load's identity: source, scope (one per load) and load id."""
    return frame.with_columns(pl.lit(source).alias("source"),
                              pl.lit(parsed.scope, pl.String).alias("scope"),
                              pl.lit(load_id, pl.Int32).alias("load_id"))


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame,
                 select: str, params: list | None = None) -> None:
    """Insert `select` (SQL over the frame, registered as `frame`) in one statement."""
    con.register("frame", frame.to_arrow())
    try:
        con.execute(f"INSERT INTO {table} {select}", params or [])
    finally:
        con.unregister("frame")


def insert_loads(con, source: str, group: list[Prepared], figures: list[dict],
                 partner: str | None, definition_version: str | None) -> None:
    """One `loads` row per file of the group, in one statement (DuckDB's executemany binds
    each row again, which costs more than the rest of a small load)."""
    now, actor = datetime.now(), audit.actor()
    rows = pl.DataFrame([
        {"load_id": f["load_id"], "source": source, "scope": item.parsed.scope,
         "partner": partner or item.parsed.partner, "file_name": item.path.name,
         "file_path": str(item.path.resolve()), "checksum": item.digest,
         "period_start": item.parsed.period[0], "period_end": item.parsed.period[1],
         "rows_read": f["rows_read"], "rows_loaded": f["rows_loaded"],
         "rows_quarantined": f["rows_quarantined"], "rows_out_of_area": f["rows_out_of_area"]}
        for item, f in zip(group, figures, strict=True)],
        schema={"load_id": pl.Int32, "source": pl.String, "scope": pl.String,
                "partner": pl.String, "file_name": pl.String, "file_path": pl.String,
                "checksum": pl.String, "period_start": pl.Date, "period_end": pl.Date,
                "rows_read": pl.Int64, "rows_loaded": pl.Int64, "rows_quarantined": pl.Int64,
                "rows_out_of_area": pl.Int64})
    insert_frame(con, "loads", rows, """
        SELECT load_id, source, scope, partner, file_name, file_path, checksum, period_start,
        period_end, rows_read, rows_loaded, rows_quarantined, rows_out_of_area, 'active', NULL,
        ?, ?, ? FROM frame ORDER BY load_id""", [definition_version, actor, now])


def supersede(store: Store, source: str, group: list[Prepared],
              first_id: int) -> dict[int, list[int]]:
    """Delete older rows the group replaces; mark older loads it fully covers as superseded.

    Replaced: rows of the same source and scope whose month falls in a new file's period,
    and any row whose event id a new file brings again. Nothing to do on a source's first load.
    """
    con = store.con
    earlier = con.execute("SELECT count(*) FROM loads WHERE source = ? AND load_id < ?",
                          [source, first_id]).fetchone()[0]
    if not earlier:
        return {}
    periods = pl.DataFrame({
        "scope": [item.parsed.scope for item in group],
        "start": [item.parsed.period[0] for item in group],
        "end": [item.parsed.period[1] for item in group],
        "load_id": [first_id + i for i in range(len(group))],
    }, schema={"scope": pl.String, "start": pl.Date, "end": pl.Date, "load_id": pl.Int32})
    ids = pl.concat([item.parsed.events.select("source_record_id").with_columns(
        pl.lit(item.parsed.scope, pl.String).alias("scope")) for item in group])
    incoming = with_event_id(ids.with_columns(pl.lit(source).alias("source"))).select(
        "event_id")
    con.register("periods", periods.to_arrow())
    con.register("incoming", incoming.to_arrow())
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE replaced AS
            SELECT e.event_id FROM events e JOIN periods p
              ON e.scope IS NOT DISTINCT FROM p.scope AND e.month BETWEEN p.start AND p."end"
            WHERE e.source = ? AND e.load_id < {first_id}
            UNION SELECT event_id FROM incoming WHERE event_id IN (
              SELECT event_id FROM events WHERE load_id < {first_id})""", [source])
        con.execute("DELETE FROM involvements WHERE event_id IN (SELECT event_id FROM replaced)")
        for table in ("sv_events", "events"):
            store.delete_where(table, "event_id IN (SELECT event_id FROM replaced)")
        con.execute(f"""
            DELETE FROM aggregates a USING periods p
            WHERE a.source = ? AND a.load_id < {first_id}
              AND a.scope IS NOT DISTINCT FROM p.scope
              AND a.period_start >= p.start AND a.period_end <= p."end" """, [source])
        covered = con.execute(f"""
            SELECT l.load_id, p.load_id FROM loads l JOIN periods p
              ON l.scope IS NOT DISTINCT FROM p.scope
             AND l.period_start >= p.start AND l.period_end <= p."end"
            WHERE l.source = ? AND l.status = 'active' AND l.load_id < {first_id}""",
            [source]).fetchall()
    finally:
        con.unregister("periods")
        con.unregister("incoming")
    by_new: dict[int, list[int]] = {}
    for old, new in covered:
        con.execute("UPDATE loads SET status = 'superseded', superseded_by = ? WHERE load_id = ?",
                    [new, old])
        by_new.setdefault(new, []).append(old)
    return by_new
