"""The warehouse as analyses see it: Ibis expressions for the row work, small Polars frames
back for the statistics.

Every expression an analysis runs goes through :meth:`Data.fetch`, which records its SQL and
the sources it read so the Result can say exactly what was asked of the warehouse. The same
expressions run on DuckDB (a laptop) or Spark (a national hub) because they are Ibis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import polars as pl

from svduty.analysis.result import Meta
from svduty.analysis.scope import Scope
from svduty.warehouse import Warehouse

AREA_COLUMNS = ("lsoa_code", "lsoa_name", "msoa_code", "ward_code", "ward_name", "lad_code",
                "lad_name", "csp_code", "csp_name", "pfa_code", "pfa_name")
UNDER_25_BANDS = ("Aged 15 years and under", "Aged 16 to 24 years")


@dataclass
class Data:
    """Ibis access to one partnership's warehouse for one Scope."""

    wh: Warehouse
    scope: Scope
    queries: list[str] = field(default_factory=list)
    views: dict[str, str] = field(default_factory=dict)  # view name -> its CREATE statement
    sources: set[str] = field(default_factory=set)
    loads: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.db = self.wh.ibis()

    # -------------------------------------------------------------------- tables

    def table(self, name: str) -> ir.Table:
        if name == "sv_events":
            return self.sv_events()
        return self.wh.table(name)

    def sv_events(self) -> ir.Table:
        """`sv_events` (the local definition compiled to a view over every event),
        materialised once per connection so analyses do not re-run the definition; the
        definition's SQL goes into the queries of every Result that reads it."""
        view = self.wh.con.execute("SELECT sql FROM duckdb_views() WHERE view_name = "
                                   "'sv_events' AND NOT temporary").fetchone()
        self.record(view[0] if view else "-- no local definition applied")
        return self.view(("sv_events",), lambda: self.wh.table("sv_events"), materialise=True)

    def areas(self) -> ir.Table:
        """2021 LSOAs with their ward, LA, CSP and force (`lsoa21_code` first)."""
        a = self.table("areas")
        return (a.filter(a.lsoa_vintage == 2021).select(*AREA_COLUMNS)
                .rename(lsoa21_code="lsoa_code"))

    def events(self, source: str | tuple[str, ...], force: bool = False,
               all_months: bool = False) -> ir.Table:
        """Events of `source` placed in the scope's areas (the force area with `force`),
        within the period unless `all_months`, with their area columns."""
        sources = (source,) if isinstance(source, str) else source

        def build() -> ir.Table:
            e = self.table("events")
            e = e.filter(e.source.isin(sources))
            if not all_months:
                e = e.filter((e.month >= self.scope.start) & (e.month <= self.scope.end))
            lads = self.scope.force_lad_codes if force else self.scope.lad_codes
            a = self.areas()
            return e.inner_join(a.filter(a.lad_code.isin(lads)), "lsoa21_code")

        return self.view(("events", sources, force, all_months), build)

    def sv(self, force: bool = False, all_months: bool = False) -> ir.Table:
        """Serious violence under the local definition, from the scope's police source: one
        row per event with its category, harm weight and area columns."""

        def build() -> ir.Table:
            e = self.events(self.scope.police_source, force, all_months)
            return e.inner_join(self.table("sv_events").drop("definition_version"), "event_id")

        return self.view(("sv", force, all_months), build)

    def view(self, key: tuple, build: Callable[[], ir.Table],
             materialise: bool = False) -> ir.Table:
        """A base relation as a temporary view (or table, with `materialise`), created once
        per connection and scope: analyses then compile small queries on top of it (Ibis
        compiles a deep join tree slowly). Its SQL goes into the queries of every Result that
        reads it."""
        name = f"_svduty_{abs(hash((self.scope, key))):x}"
        if name not in self.views:
            found = self.wh.con.execute(
                "SELECT sql FROM duckdb_views() WHERE view_name = ? AND temporary UNION ALL "
                "SELECT sql FROM duckdb_tables() WHERE table_name = ? AND temporary",
                [name, name]).fetchone()
            if found is None:
                kind = "TABLE" if materialise else "VIEW"
                sql = f"CREATE TEMP {kind} {name} AS {ibis.to_sql(build())}"
                self.wh.con.execute(sql)
            self.views[name] = found[0] if found else sql
        self.record(self.views[name])
        return self.wh.table(name)

    def record(self, sql: str) -> None:
        """Add a statement to the queries of the Results being made (once)."""
        if sql not in self.queries:
            self.queries.append(sql)

    def involvements(self, events: ir.Table) -> ir.Table:
        i = self.table("involvements").drop("load_id")
        return events.inner_join(i, "event_id")

    # -------------------------------------------------------------------- running

    def fetch(self, expr: ir.Table, sources: tuple[str, ...] | None = None) -> pl.DataFrame:
        """Run `expr` in the engine and return a Polars frame; record its SQL and loads."""
        sql = str(ibis.to_sql(expr))  # compiled once: what is recorded is what runs
        self.queries.append(sql)
        if expr.op().find(ops.InMemoryTable):  # Ibis registers memtables as it runs
            frame = expr.to_polars()
        else:
            frame = self.wh.con.sql(sql).pl().cast(expr.schema().to_polars())  # Ibis types
        if "load_id" in frame.columns:
            self.loads.update(frame.get_column("load_id").drop_nulls().unique().to_list())
        if "source" in frame.columns:
            self.sources.update(frame.get_column("source").drop_nulls().unique().to_list())
        elif sources:
            self.sources.update(sources)
        return frame

    def population(self, level: str = "lsoa21_code", force: bool = False,
                   under_25: bool = False) -> pl.DataFrame:
        """Census 2021 residents by `level` (lsoa21_code, ward_code, lad_code, csp_code,
        pfa_code): columns `<level>`, `residents`."""
        p = self.table("populations")
        p = p.filter(p.lsoa_vintage == 2021)
        if under_25:
            p = p.filter(p.age_band.isin(UNDER_25_BANDS))
        a = self.areas()
        a = a.filter(a.lad_code.isin(self.scope.force_lad_codes if force
                                      else self.scope.lad_codes))
        joined = p.inner_join(a, p.lsoa_code == a.lsoa21_code)
        expr = joined.group_by(level).aggregate(residents=joined.residents.sum())
        sql = str(ibis.to_sql(expr))
        self.queries.append(sql)
        return self.wh.con.sql(sql).pl().with_columns(pl.col("residents").cast(pl.Float64))

    def meta(self, name: str, title: str, method: str, *, geography: str = "",
             parameters: dict | None = None, caveats: list[str] | None = None) -> Meta:
        """A Meta with everything this Data recorded since the last call."""
        sources = sorted(self.sources) or [self.scope.police_source]
        meta = Meta(
            name=name, title=title, method=method, sources=sources,
            loads=sorted(self.loads) or self.load_ids(sources),
            definition_version=self.scope.definition_version,
            period=(self.scope.start, self.scope.end),
            geography=geography or f"{self.scope.label}: {', '.join(self.scope.lad_codes)}",
            parameters=parameters or {},
            caveats=[*self.scope.caveats, *(caveats or [])], queries=self.queries)
        self.queries, self.sources, self.loads = [], set(), set()
        return meta

    def load_ids(self, sources: list[str]) -> list[int]:
        """Current (not superseded) loads of `sources` whose period overlaps the scope's."""
        rows = self.wh.con.execute(
            f"""SELECT load_id FROM loads WHERE superseded_by IS NULL AND source IN
            ({', '.join('?' * len(sources))}) AND coalesce(period_end, DATE '9999-12-31')
            >= ? AND coalesce(period_start, DATE '0001-01-01') <= last_day(?::DATE)
            ORDER BY 1""", [*sources, self.scope.start, self.scope.end]).fetchall()
        return [r[0] for r in rows]
