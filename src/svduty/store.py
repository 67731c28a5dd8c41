"""The warehouse's largest table (`events`) kept as Parquet files under a view.

Writing hundreds of thousands of rows into DuckDB's own storage costs more than reading them
(compression and checkpointing of many distinct strings), so the table that grows with every
load is stored as append-only Parquet files, one per load, in
`<partnership>/warehouse-files/events/`. Everything else stays in the DuckDB file.

Queries see an ordinary table: a DuckDB view lists the table's files (the store is generic:
any table named in COLUMNS is kept this way). The list lives in the
`store_files` table and the view is re-created from it in the same transaction as the load
that adds or replaces files, so a load is all or nothing: a file written by a load that then
fails is never listed, and a file a load replaces stays listed until the load commits.
Files no longer listed are deleted after the commit (or, after a crash, the next time the
warehouse is opened for writing). Paths are relative to the partnership folder (DuckDB's
`file_search_path`), so the folder can be moved or copied.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

STORE_DIR = "warehouse-files"

# Columns of the Parquet tables (DuckDB types), in order. Documented in docs/data-formats.md.
COLUMNS: dict[str, dict[str, str]] = {
    # One row per incident or episode from any source.
    "events": {
        "event_id": "VARCHAR", "source": "VARCHAR", "scope": "VARCHAR",
        "source_record_id": "VARCHAR", "load_id": "INTEGER", "row_number": "BIGINT",
        "month": "DATE", "occurred_on": "DATE", "occurred_at": "TIMESTAMP",
        "lsoa_code": "VARCHAR", "lsoa_vintage": "SMALLINT", "lsoa21_code": "VARCHAR",
        "in_area": "BOOLEAN", "easting": "DOUBLE", "northing": "DOUBLE",
        "longitude": "DOUBLE", "latitude": "DOUBLE", "location_desc": "VARCHAR",
        "location_type": "VARCHAR", "offence_code": "VARCHAR", "police_uk_category": "VARCHAR",
        "icd10": "VARCHAR", "source_category": "VARCHAR", "weapon": "VARCHAR",
        "domestic": "BOOLEAN", "alcohol": "BOOLEAN", "drugs_exploitation": "BOOLEAN",
        "night_time_economy": "BOOLEAN", "hate": "BOOLEAN", "outcome": "VARCHAR",
        "context": "VARCHAR",
    },
}

POLARS_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(), "INTEGER": pl.Int32(), "BIGINT": pl.Int64(), "DATE": pl.Date(),
    "TIMESTAMP": pl.Datetime("us"), "SMALLINT": pl.Int16(), "BOOLEAN": pl.Boolean(),
    "DOUBLE": pl.Float64(), "VARCHAR[]": pl.List(pl.String()),
}

MANIFEST = """
    CREATE TABLE IF NOT EXISTS store_files (
        table_name VARCHAR NOT NULL, file VARCHAR NOT NULL, load_id INTEGER, rows BIGINT)"""


def polars_schema(table: str) -> dict[str, pl.DataType]:
    return {c: POLARS_TYPES[t] for c, t in COLUMNS[table].items()}


@dataclass(frozen=True)
class StoredFile:
    """A file written for a table: its path relative to the partnership folder, the load it
    belongs to and its row count (what `store_files` lists)."""

    table: str
    name: str
    load_id: int | None
    rows: int


class StoreError(Exception):
    """The warehouse's files are not where its list says."""


class Store:
    """The Parquet tables of one warehouse: write files, list them, keep the views current.

    `pending` collects files to delete after the transaction commits (replaced files) and
    `written` the files to delete if it rolls back (files of the failed load).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, root: Path) -> None:
        self.con = con
        self.root = root
        self.pending: list[Path] = []
        self.written: list[Path] = []

    # ------------------------------------------------------------------ setup

    def create(self) -> None:
        """Create the manifest and the views (moving rows of older, native tables in)."""
        self.con.execute(MANIFEST)
        self.check_files()
        for table in COLUMNS:
            self._adopt_native(table)
            self.refresh_view(table)

    def _adopt_native(self, table: str) -> None:
        """Warehouses from before the Parquet store held these tables natively: move the
        rows into a Parquet file, then drop the table (the view takes its name)."""
        kind = self.con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = ? "
            "AND table_schema = 'main'", [table]).fetchone()
        if not kind or kind[0] != "BASE TABLE":
            return
        present = {r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            [table]).fetchall()}
        select = ", ".join(f'"{c}"' if c in present else f'NULL::{t} AS "{c}"'
                           for c, t in COLUMNS[table].items())
        frame = self.con.execute(f"SELECT {select} FROM {table}").pl()
        self.con.execute(f"DROP TABLE {table}")
        if frame.height:
            self.add(table, frame)

    def check_files(self) -> None:
        """StoreError naming the first listed file that is missing (a partnership folder
        copied without its `warehouse-files/`)."""
        for (file,) in self.con.execute("SELECT file FROM store_files").fetchall():
            if not (self.root / file).exists():
                raise StoreError(
                    f"{self.root / file} is missing: the warehouse lists it but it is not "
                    f"there. Copy or restore the whole partnership folder, including "
                    f"{STORE_DIR}/, not warehouse.duckdb alone.")

    # ------------------------------------------------------------------ reading

    def files(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(
            "SELECT file FROM store_files WHERE table_name = ? ORDER BY file", [table]
        ).fetchall()]

    def refresh_view(self, table: str) -> None:
        """(Re)create the view over the table's listed files (typed and empty if none)."""
        columns = COLUMNS[table]
        files = self.files(table)
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            select = ", ".join(f'"{c}"' for c in columns)
            body = f"SELECT {select} FROM read_parquet([{listed}])"
        else:
            body = "SELECT " + ", ".join(f'NULL::{t} AS "{c}"' for c, t in columns.items())
            body += " WHERE false"
        self.con.execute(f"CREATE OR REPLACE VIEW {table} AS {body}")

    # ------------------------------------------------------------------ writing

    def add(self, table: str, frame: pl.DataFrame, load_id: int | None = None) -> str | None:
        """Write `frame` (conformed to the table's columns) as a new file and list it."""
        written = self.write(table, frame, load_id)
        if written:
            self.list_files([written])
        return written.name if written else None

    def add_many(self, table: str,
                 makers: list[tuple[Callable[[], pl.DataFrame], int | None]]) -> None:
        """Make, write and list several frames (each with its load id); one view refresh."""
        self.list_files(self.write_many(table, makers))

    def write_many(self, table: str, makers: list[tuple[Callable[[], pl.DataFrame], int | None]]
                   ) -> list[StoredFile]:
        """Make and write several frames (each with its load id) as files, two at a time;
        not yet listed."""
        from concurrent.futures import ThreadPoolExecutor

        def write(item: tuple[Callable[[], pl.DataFrame], int | None]) -> StoredFile | None:
            return self.write(table, item[0](), item[1])  # polars works without the GIL

        with ThreadPoolExecutor(max_workers=2) as pool:
            return [w for w in pool.map(write, makers) if w]

    def write(self, table: str, frame: pl.DataFrame, load_id: int | None) -> StoredFile | None:
        """Write a frame as a new file (`load-<id>-<unique>.parquet`), on disk before this
        returns, but not yet listed: :meth:`list_files` lists it, inside the caller's
        transaction. Safe to call from several threads at once. None for no rows."""
        if frame.height == 0:
            return None
        folder = self.root / STORE_DIR / table
        folder.mkdir(parents=True, exist_ok=True)
        prefix = f"load-{load_id:06d}" if load_id is not None else "rows"
        name = f"{STORE_DIR}/{table}/{prefix}-{uuid.uuid4().hex[:12]}.parquet"
        path = self.root / name
        self.written.append(path)
        if list(frame.schema.items()) != list(polars_schema(table).items()):
            frame = conform(frame, table)
        frame.write_parquet(path, compression="uncompressed", statistics=True)
        with path.open("rb+") as file:  # durable before any transaction lists it
            os.fsync(file.fileno())
        return StoredFile(table, name, load_id, frame.height)

    def list_files(self, files: list[StoredFile]) -> None:
        """List written files (so queries see their rows) and refresh the tables' views."""
        if not files:
            return
        listed = pl.DataFrame([(f.table, f.name, f.load_id, f.rows) for f in files],
                              schema={"table_name": pl.String, "file": pl.String,
                                      "load_id": pl.Int32, "rows": pl.Int64}, orient="row")
        self.con.register("listed", listed.to_arrow())  # one statement: executemany binds
        try:  # each row again, which costs more than the rest of a small load
            self.con.execute("INSERT INTO store_files SELECT * FROM listed")
        finally:
            self.con.unregister("listed")
        for table in sorted({f.table for f in files}):
            self.refresh_view(table)

    def discard(self, files: list[StoredFile]) -> None:
        """Delete written files that will not be listed after all."""
        paths = [self.root / f.name for f in files]
        remove(paths)
        self.written = [p for p in self.written if p not in paths]

    def delete_where(self, table: str, predicate: str, params: list | None = None) -> int:
        """Remove rows matching `predicate` (SQL over the table's columns): each file holding
        any is rewritten without them. Returns the number of rows removed."""
        paths, params = self._paths(table), params or []
        if not paths:
            return 0
        touched = self.con.execute(
            f"SELECT filename, count(*) FROM read_parquet(?, filename = true) WHERE {predicate} "
            "GROUP BY filename", [paths, *params]).fetchall()
        rewritten = []
        for path, _ in touched:
            file = self._relative(path)
            kept = self.con.execute(
                f"SELECT * FROM read_parquet(?) WHERE NOT coalesce(({predicate}), false)",
                [path, *params]).pl()
            load_id = self.con.execute(
                "SELECT max(load_id) FROM store_files WHERE file = ?", [file]).fetchone()[0]
            self._unlist(table, file)
            rewritten.append((lambda kept=kept: kept, load_id))
        if touched:
            self.add_many(table, rewritten)
            self.refresh_view(table)  # also when every row of a file went
        return sum(count for _, count in touched)

    def _unlist(self, table: str, file: str) -> None:
        self.con.execute("DELETE FROM store_files WHERE table_name = ? AND file = ?",
                         [table, file])
        self.pending.append(self.root / file)

    def _paths(self, table: str) -> list[str]:
        return [str(self.root / f) for f in self.files(table)]

    def _relative(self, path: str) -> str:
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    # ------------------------------------------------------------------ transactions

    def committed(self) -> None:
        """After a commit: delete the files it replaced."""
        remove(self.pending)
        self.pending, self.written = [], []

    def rolled_back(self) -> None:
        """After a rollback: delete the files it wrote; the replaced ones stay listed."""
        remove(self.written)
        self.pending, self.written = [], []

    def sweep(self) -> int:
        """Delete files no transaction lists (left by a crash between write and commit)."""
        listed = {self.root / r[0] for r in self.con.execute(
            "SELECT file FROM store_files").fetchall()}
        strays = [p for p in (self.root / STORE_DIR).glob("*/*.parquet") if p not in listed]
        remove(strays)
        return len(strays)


def conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """The table's columns in order and type; columns the frame lacks are null."""
    schema = polars_schema(table)
    return frame.select([
        (pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t)).alias(c)
        for c, t in schema.items()])


def remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)

