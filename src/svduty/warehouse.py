"""The partnership's analytical store: a DuckDB file, queried through Ibis.

Row-level work (filtering, joining, grouping events) runs in the engine. Python code gets an
Ibis backend from :func:`Warehouse.ibis` so the same expressions can run on Spark at national
scale. Writes (ingest, reference import) use the DuckDB connection directly inside one
transaction each, so nothing is ever half-loaded.

DuckDB is opened with extension auto-install off: council networks are closed, and an
auto-install attempt can hang on a network that drops packets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import ibis

from svduty.store import Store

SCHEMA_VERSION = 2  # 2: events and sv_events in Parquet (svduty.store)

# One DDL statement per table. Columns are documented in docs/data-formats.md.
# `events` is Parquet files under a view (see svduty.store); event_id uniqueness is enforced
# by ingest (a file's record ids are checked unique, and a load first deletes any event it
# replaces) and tested. `sv_events` is a view: the local definition compiled to SQL
# (svduty.definition.apply); until one is applied it is empty, with these columns.
TABLES: dict[str, str] = {
    "meta": """
        CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    # Reference geography: one row per LSOA code and vintage (2011 or 2021).
    "areas": """
        CREATE TABLE IF NOT EXISTS areas (
            lsoa_code VARCHAR NOT NULL, lsoa_vintage SMALLINT NOT NULL, lsoa_name VARCHAR,
            msoa_code VARCHAR, ward_code VARCHAR, ward_name VARCHAR, ward_vintage VARCHAR,
            lad_code VARCHAR, lad_name VARCHAR, csp_code VARCHAR, csp_name VARCHAR,
            pfa_code VARCHAR, pfa_name VARCHAR, region_code VARCHAR,
            has_boundary BOOLEAN DEFAULT FALSE,
            PRIMARY KEY (lsoa_code, lsoa_vintage))""",
    # LSOA 2011 -> 2021 correspondence from the boundary overlay (weights sum to 1 per lsoa11).
    "lsoa_correspondence": """
        CREATE TABLE IF NOT EXISTS lsoa_correspondence (
            lsoa11_code VARCHAR NOT NULL, lsoa21_code VARCHAR NOT NULL,
            area_share DOUBLE, population_share DOUBLE, best_fit BOOLEAN, method VARCHAR,
            PRIMARY KEY (lsoa11_code, lsoa21_code))""",
    "populations": """
        CREATE TABLE IF NOT EXISTS populations (
            lsoa_code VARCHAR NOT NULL, lsoa_vintage SMALLINT NOT NULL, age_band VARCHAR NOT NULL,
            residents INTEGER NOT NULL, source VARCHAR,
            PRIMARY KEY (lsoa_code, lsoa_vintage, age_band))""",
    "deprivation": """
        CREATE TABLE IF NOT EXISTS deprivation (
            lsoa11_code VARCHAR NOT NULL, domain VARCHAR NOT NULL, rank INTEGER, decile SMALLINT,
            source VARCHAR, PRIMARY KEY (lsoa11_code, domain))""",
    "offence_codes": """
        CREATE TABLE IF NOT EXISTS offence_codes (
            offence_code VARCHAR PRIMARY KEY, description VARCHAR, offence_group VARCHAR,
            offence_subgroup VARCHAR, police_uk_category VARCHAR, source VARCHAR)""",
    "reference_imports": """
        CREATE TABLE IF NOT EXISTS reference_imports (
            item VARCHAR, file VARCHAR, checksum VARCHAR, rows INTEGER, imported_at TIMESTAMP,
            note VARCHAR)""",
    # One row per ingested file.
    "loads": """
        CREATE TABLE IF NOT EXISTS loads (
            load_id INTEGER PRIMARY KEY, source VARCHAR NOT NULL, scope VARCHAR,
            partner VARCHAR, file_name VARCHAR NOT NULL, file_path VARCHAR,
            checksum VARCHAR NOT NULL, period_start DATE, period_end DATE,
            rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL,
            rows_quarantined BIGINT NOT NULL, rows_out_of_area BIGINT,
            status VARCHAR NOT NULL, superseded_by INTEGER,
            definition_version VARCHAR, loaded_by VARCHAR, loaded_at TIMESTAMP NOT NULL)""",
    "quarantine": """
        CREATE TABLE IF NOT EXISTS quarantine (
            load_id INTEGER NOT NULL, source VARCHAR, file_name VARCHAR, row_number BIGINT,
            "column" VARCHAR, value VARCHAR, reason VARCHAR, fix VARCHAR, record VARCHAR)""",
    "involvements": """
        CREATE TABLE IF NOT EXISTS involvements (
            event_id VARCHAR NOT NULL, person_key VARCHAR, role VARCHAR NOT NULL,
            age SMALLINT, age_band VARCHAR, sex VARCHAR, ethnicity VARCHAR,
            load_id INTEGER NOT NULL)""",
    # Counts partners send already aggregated (hospital admissions, school absence).
    "aggregates": """
        CREATE TABLE IF NOT EXISTS aggregates (
            source VARCHAR NOT NULL, scope VARCHAR, load_id INTEGER NOT NULL, row_number BIGINT,
            measure VARCHAR NOT NULL, period_start DATE NOT NULL, period_end DATE NOT NULL,
            period_type VARCHAR, area_type VARCHAR NOT NULL, area_code VARCHAR,
            area_name VARCHAR, lsoa21_code VARCHAR, in_area BOOLEAN, category VARCHAR,
            icd10 VARCHAR, age_band VARCHAR, sex VARCHAR, value DOUBLE, suppressed BOOLEAN,
            denominator DOUBLE, context VARCHAR)""",
    # Hashed linkage derivatives of pseudonymous people (one row per key, field and token).
    "person_tokens": """
        CREATE TABLE IF NOT EXISTS person_tokens (
            source VARCHAR NOT NULL, person_key VARCHAR NOT NULL, field VARCHAR NOT NULL,
            token VARCHAR NOT NULL, load_id INTEGER NOT NULL)""",
    "definitions": """
        CREATE TABLE IF NOT EXISTS definitions (
            definition_version VARCHAR PRIMARY KEY, version VARCHAR, content_hash VARCHAR,
            toml VARCHAR, first_used_at TIMESTAMP)""",
}

SV_EVENT_COLUMNS = {
    "event_id": "VARCHAR", "sv_category": "VARCHAR", "rule_id": "VARCHAR",
    "all_categories": "VARCHAR[]", "harm_weight": "DOUBLE", "proxy": "BOOLEAN",
    "definition_version": "VARCHAR",
}

EXPORTABLE = ("events", "involvements", "sv_events", "aggregates", "quarantine", "loads",
              "areas", "lsoa_correspondence", "populations", "deprivation", "offence_codes",
              "definitions")


class Warehouse:
    """A DuckDB warehouse file with the svduty schema."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.con = connect(self.path, read_only=read_only)
        self._ibis: ibis.BaseBackend | None = None
        self._tables: dict[str, ibis.Table] = {}
        self.store = Store(self.con, self.path.resolve().parent)
        if not read_only:
            self.create_schema()
            self.store.sweep()

    def create_schema(self) -> None:
        for ddl in TABLES.values():
            self.con.execute(ddl)
        self.store.create()
        self._sv_events_view()
        self.con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )

    def _sv_events_view(self) -> None:
        """An empty `sv_events` view until a definition is applied (a stored `sv_events`
        from before schema 2 is dropped; the next ingest or apply defines the view)."""
        kind = self.con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = 'sv_events' "
            "AND table_schema = 'main'").fetchone()
        if kind and kind[0] == "BASE TABLE":
            self.con.execute("DROP TABLE sv_events")
            self.con.execute("DELETE FROM meta WHERE key = 'definition_version'")
        columns = ", ".join(f'NULL::{t} AS "{c}"' for c, t in SV_EVENT_COLUMNS.items())
        self.con.execute(f"CREATE VIEW IF NOT EXISTS sv_events AS SELECT {columns} WHERE false")

    def ibis(self) -> ibis.BaseBackend:
        """An Ibis backend over the same connection (the query interface for analysis)."""
        if self._ibis is None:
            self._ibis = ibis.duckdb.from_connection(self.con)
        return self._ibis

    def table(self, name: str) -> ibis.Table:
        """An Ibis table; on a read-only warehouse each table's schema is read once (it
        cannot change under a read-only connection, and reading it is a query)."""
        if not self.read_only:
            return self.ibis().table(name)
        if name not in self._tables:
            self._tables[name] = self.ibis().table(name)
        return self._tables[name]

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block atomically: everything is written, or nothing."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            self.store.rolled_back()
            raise
        self.con.execute("COMMIT")
        self.store.committed()

    def count(self, table: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def has_reference(self) -> bool:
        return self.count("areas") > 0

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(path: Path, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to a warehouse file: extension auto-install off, and relative
    paths (the Parquet store's files) resolved against the partnership folder."""
    return duckdb.connect(str(path), read_only=read_only, config={
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "file_search_path": str(Path(path).resolve().parent)})


def export_table(wh: Warehouse, table: str, out: Path) -> int:
    """Write a warehouse table to CSV for checking by hand; returns the row count."""
    if table not in EXPORTABLE:
        raise ValueError(f"'{table}' cannot be exported; choose one of: {', '.join(EXPORTABLE)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    target = str(out).replace("'", "''")
    wh.con.execute(f"COPY (SELECT * FROM {table}) TO '{target}' (HEADER, DELIMITER ',')")
    return wh.count(table)
