"""Ingest partner files into the warehouse under the same rules for every source.

For each file: checksum (re-ingesting the same file changes nothing), read with the source's
reader (a wrong file is rejected whole with one message), harmonise LSOAs to the 2021 vintage,
mark rows outside the partnership, check that every row read is loaded or quarantined, then
write load, events, involvements and quarantine in one transaction. A newer extract for the
same source, scope and period supersedes the older one: the older rows in that period go.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from svduty.partnership import Partnership
from svduty.privacy import audit
from svduty.sources.base import (
    AGGREGATE_COLUMNS,
    EVENT_COLUMNS,
    INVOLVEMENT_COLUMNS,
    QUARANTINE_COLUMNS,
    FileError,
    Parsed,
    Source,
    conform,
)
from svduty.sources.contract import contract_problems
from svduty.sources.writing import (
    Prepared,
    event_rows,
    groups,
    next_load_id,
    write_group,
)
from svduty.store import Store
from svduty.warehouse import Warehouse

if TYPE_CHECKING:
    from svduty.definition.rules import Definition
    from svduty.geography.gazetteer import Gazetteer

FILE_PATTERNS = ("*.csv", "*.csv.gz", "*.xlsx", "*.xml")


@dataclass
class FileResult:
    """What happened to one file."""

    path: Path
    status: str  # loaded | skipped | rejected
    message: str = ""
    load_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_out_of_area: int = 0
    superseded: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digest: str = ""  # SHA-256 of the file


class IngestError(Exception):
    """The ingest cannot start (no reference data, unknown source...)."""


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, plus data files found (recursively) in folders named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = {f for pattern in FILE_PATTERNS for f in path.rglob(pattern)}
            files.extend(sorted(found))
        elif path.exists():
            files.append(path)
        else:
            raise IngestError(f"{path} does not exist")
    return files


def checksum(path: Path) -> str:
    from svduty.checksum import sha256

    return sha256(path)


BATCH_ROWS = 2_000_000  # rows held in memory between the read and write phases
READERS = 4  # files prepared at once: more than two cores, so one file's waits (the disk,
# Python's own steps) are filled by another file's work


def ingest(
    partnership: Partnership,
    source: Source,
    paths: Iterable[Path],
    progress: Callable[[Path], None] | None = None,
    partner: str | None = None,
    link_people: bool = True,
) -> list[FileResult]:
    """Ingest files for one source; returns a result per file (loaded, skipped or rejected).

    Files are taken in batches of bounded size. Within a batch, files are read, checked,
    harmonised and their events written to the Parquet store several at a time, in threads
    (:meth:`Run.prepare`); the reader contract is checked once per batch, then the batch
    is committed in one transaction with one bulk insert per table (see
    :mod:`svduty.sources.writing`). A file is never half-loaded: if anything fails, the
    batch's files are deleted and nothing is listed. `progress` is called with each file as
    it is read and checked, in the order given. After a person-level load, people are
    linked across partners and the links cached (`link_people`; the demo links once, at the
    end).
    """
    files = expand(paths)
    partner = partner or default_partner(partnership, source)
    results: list[FileResult] = []
    with partnership.warehouse() as wh:
        if not wh.has_reference():
            raise IngestError(
                "No reference geography in this partnership yet, so LSOA codes cannot be "
                f"checked. Run first: svduty reference import {partnership.root} <folder>")
        loaded = loaded_files(wh, source)
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            run = Run(partnership, wh, source, partner, pool,
                      pool.submit(Context.build, partnership, wh), progress)
            for batch in batches(files):
                done = run.ingest_batch(batch, loaded)
                for result in done:
                    if result.status == "loaded":
                        loaded[result.digest] = (result.load_id, datetime.now())
                    audit_result(partnership, source, result)
                results.extend(done)
            if any(r.status == "loaded" for r in results):
                refresh_definition(wh, run.context)
                if link_people:
                    link_people_now(wh, source)
    return results


def loaded_files(wh: Warehouse, source: Source) -> dict[str, tuple[int, datetime]]:
    """Checksum -> (load id, when) of every file of this source already loaded."""
    rows = wh.con.execute("SELECT checksum, load_id, loaded_at FROM loads WHERE source = ?",
                          [source.name]).fetchall()
    return {digest: (load_id, when) for digest, load_id, when in rows}


def link_people_now(wh: Warehouse, source: Source) -> None:
    """After a person-level load, link people across partners (Splink on the tokens) and
    cache the result for analyses. A linkage failure never fails the load: the analyses
    link again and report why."""
    found = wh.con.execute("SELECT count(*) FROM person_tokens WHERE source = ?",
                           [source.name]).fetchone()[0]
    if not found:
        return
    from svduty.linkage import link_warehouse

    try:
        link_warehouse(wh)
    except Exception:  # reported by the analysis that needs the links
        return


def batches(files: list[Path]) -> Iterable[list[Path]]:
    """Groups of files of bounded total size (so memory stays bounded for any ingest)."""
    batch: list[Path] = []
    size = 0
    for path in files:
        batch.append(path)
        size += path.stat().st_size
        if size > BATCH_ROWS * 20:  # ~20 bytes a compressed row: a conservative bound
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@dataclass
class Context:
    """Lookups shared by every file of one ingest run."""

    lsoas: pl.DataFrame
    offence_codes: set[str]
    definition: Definition | None
    area_codes: dict[str, set[str]] = field(default_factory=dict)  # area type -> in-area codes
    _gazetteer: Gazetteer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def definition_version(self) -> str | None:
        return self.definition.definition_version if self.definition else None

    def gazetteer(self, partnership: Partnership, wh: Warehouse) -> Gazetteer:
        """The free-text location gazetteer, built on first use (once per ingest run)."""
        from svduty.geography.gazetteer import Gazetteer

        with self._lock:
            if self._gazetteer is None:
                self._gazetteer = Gazetteer.build(wh.con.cursor(), partnership.root,
                                                  partnership.config.lad_codes)
            return self._gazetteer

    @classmethod
    def build(cls, partnership: Partnership, wh: Warehouse) -> Context:
        """The lookups, read through a cursor of their own (so a reader thread can build
        them while the caller's connection is busy)."""
        from svduty.geography import lsoa_lookup

        cursor = wh.con.cursor()
        codes = {r[0] for r in cursor.execute("SELECT offence_code FROM offence_codes")
                 .fetchall()}
        return cls(
            lsoas=lsoa_lookup(wh, partnership.config.lad_codes).select(
                "lsoa_code", "lsoa_vintage", "lsoa21_code", "in_area"),
            offence_codes=codes | catalogue_codes(),
            definition=current_definition(partnership),
            area_codes=partnership_area_codes(wh, partnership.config.lad_codes),
        )


Outcome = Prepared | FileResult  # a file ready to write, or a skip / rejection


@dataclass
class Run:
    """One ingest command: what every batch shares (the warehouse, the readers' threads,
    the lookups being built)."""

    partnership: Partnership
    wh: Warehouse
    source: Source
    partner: str | None
    pool: Executor
    lookups: Future[Context]  # built while the first files are read
    progress: Callable[[Path], None] | None = None  # called as each file is read and checked

    @property
    def context(self) -> Context:
        return self.lookups.result()

    def ingest_batch(self, batch: list[Path],
                     loaded: dict[str, tuple[int, datetime]]) -> list[FileResult]:
        """Prepare and write one batch; on any failure its written files are deleted."""
        futures: list[Future[Outcome]] = []
        try:
            digests = list(self.pool.map(checksum, batch))
            for path, digest, plan in plan_batch(batch, digests, loaded, next_load_id(self.wh.con)):
                futures.append(self.pool.submit(self.prepare, path, digest, plan)
                               if isinstance(plan, int) else done_future(plan))
            prepared = check_contract(self.wh.store, [self.finished(f) for f in futures])
            return write_batch(self.wh, self.context, self.source, prepared, self.partner)
        except BaseException:
            for future in futures:
                future.cancel()
            wait(futures)  # no reader may still be writing a file when they are deleted
            self.wh.store.rolled_back()
            raise

    def finished(self, future: Future[Outcome]) -> Outcome:
        """A file's outcome, once its reader is done (reported to `progress`, in order)."""
        outcome = future.result()
        if self.progress:
            self.progress(outcome.path)
        return outcome

    def prepare(self, path: Path, digest: str, load_id: int) -> Outcome:
        """Read, check and harmonise one file, then write its events (not yet listed) under
        the load id it is expected to get."""
        outcome = read_file(self, path, digest)
        if isinstance(outcome, FileResult):
            return outcome
        events = self.wh.store.write("events", event_rows(outcome, load_id, self.source.name),
                                     load_id)
        return Prepared(path, digest, outcome, events)


def plan_batch(
    batch: list[Path], digests: list[str], loaded: dict[str, tuple[int, datetime]],
    next_id: int,
) -> list[tuple[Path, str, int | FileResult]]:
    """Each file with the load id it should get, or why it is skipped (already loaded, or
    named twice in this command)."""
    plans: list[tuple[Path, str, int | FileResult]] = []
    seen: dict[str, Path] = {}
    for path, digest in zip(batch, digests, strict=True):
        earlier = loaded.get(digest)
        if earlier:
            plan: int | FileResult = FileResult(
                path, "skipped", f"already loaded as load {earlier[0]} on "
                f"{earlier[1]:%Y-%m-%d %H:%M}; nothing changed", digest=digest)
        elif digest in seen:
            plan = FileResult(path, "skipped", f"same file as {seen[digest].name}; "
                              "nothing changed", digest=digest)
        else:
            seen[digest] = path
            plan, next_id = next_id, next_id + 1
        plans.append((path, digest, plan))
    return plans


def done_future(value: Outcome) -> Future[Outcome]:
    future: Future[Outcome] = Future()
    future.set_result(value)
    return future


def read_file(run: Run, path: Path, digest: str) -> Parsed | FileResult:
    """The file read by its source, located, checked and harmonised; or why it is rejected."""
    partnership, source = run.partnership, run.source
    try:
        check_gateway(partnership, source, path)
        parsed = source.read(path)
        if carries_people(source, parsed):  # e.g. an ED file with person keys
            check_gateway(partnership, source, path, person_level=True)
        context = run.context
        locate = getattr(source, "locate", None)
        if locate is not None:  # readers of free-text locations (ED ISTV)
            parsed = locate(parsed, context.gazetteer(partnership, run.wh))
        check_codes = getattr(source, "check_offence_codes", None)
        if check_codes is not None:  # readers of Home Office-coded data
            parsed = check_codes(parsed, context.offence_codes)
        if parsed.scope is None and run.partner:
            parsed = _replace(parsed, scope=scope_name(run.partner))
        parsed = harmonise_geography(parsed, context.lsoas, partnership.root)
        parsed = harmonise_aggregates(parsed, context)
        reconcile(path, parsed)
    except FileError as exc:
        return FileResult(path, "rejected", str(exc), digest=digest)
    return parsed


def check_contract(store: Store, prepared: list[Outcome]) -> list[Outcome]:
    """Check every parsed file of the batch against the reader contract in one pandera pass;
    a file that breaks it is rejected (and its events file deleted)."""
    ready = [(i, o) for i, o in enumerate(prepared) if isinstance(o, Prepared)]
    if not ready:
        return prepared
    events = pl.concat([o.parsed.events.select(CONTRACT_EVENT_COLUMNS) for _, o in ready])
    people = [conform(o.parsed.involvements, INVOLVEMENT_COLUMNS) for _, o in ready
              if o.parsed.involvements is not None]
    counts = [conform(o.parsed.aggregates, AGGREGATE_COLUMNS) for _, o in ready
              if o.parsed.aggregates is not None]
    if not contract_problems(events, pl.concat(people) if people else None,
                             pl.concat(counts) if counts else None):
        return prepared
    checked = list(prepared)
    for i, item in ready:  # rare: find which file broke it
        parsed = item.parsed
        problems = contract_problems(parsed.events, parsed.involvements, parsed.aggregates)
        if problems:
            store.discard([item.events_file] if item.events_file else [])
            checked[i] = FileResult(item.path, "rejected", str(FileError(
                item.path, "svduty's reader produced rows that break the warehouse contract ("
                + "; ".join(problems) + ")", "this is a bug in svduty; please report it")),
                digest=item.digest)
    return checked


CONTRACT_EVENT_COLUMNS = ["source_record_id", "row_number", "month", "lsoa_code", "weapon",
                          "easting", "northing"]


def write_batch(
    wh: Warehouse, context: Context, source: Source, prepared: list[Outcome],
    partner: str | None,
) -> list[FileResult]:
    """Write the batch's prepared files in one transaction; results in the order given."""
    ready = [o for o in prepared if isinstance(o, Prepared)]
    loaded: dict[Path, FileResult] = {}
    with wh.transaction():
        for group in groups(ready):
            figures = write_group(wh.store, source.name, group, partner,
                                  context.definition_version)
            for item, result in zip(group, figures, strict=True):
                loaded[item.path] = FileResult(item.path, "loaded", **result,
                                               notes=list(item.parsed.notes),
                                               digest=item.digest)
    return [loaded[o.path] if isinstance(o, Prepared) else o for o in prepared]


def audit_result(partnership: Partnership, source: Source, result: FileResult) -> None:
    if result.status == "rejected":
        audit.record(partnership.root, "ingest-rejected", source=source.name,
                     file=str(result.path), checksum=result.digest, reason=result.message)
    elif result.status == "loaded":
        audit.record(partnership.root, "ingest", source=source.name, file=str(result.path),
                     checksum=result.digest, load_id=result.load_id, rows_read=result.rows_read,
                     rows_loaded=result.rows_loaded, rows_quarantined=result.rows_quarantined,
                     superseded=result.superseded)


def carries_people(source: Source, parsed: Parsed) -> bool:
    """Whether a health or social-care file turned out to be person-level (keys present)."""
    people = parsed.involvements
    return (getattr(source, "health_or_care", False) and people is not None
            and people.get_column("person_key").is_not_null().any())


def check_gateway(partnership: Partnership, source: Source, path: Path,
                  person_level: bool = False) -> None:
    """Refuse person-level health or social-care data without a recorded lawful gateway for
    person-level data from that source."""
    if not (person_level or getattr(source, "person_level_health", False)):
        return
    if any(g.source == source.name and g.level.startswith("person")
           for g in partnership.config.gateways):
        return
    raise FileError(
        path,
        "person-level health or social-care data cannot be shared under the Serious Violence "
        "Duty: s.16(4) of the Police, Crime, Sentencing and Courts Act 2022 does not let these "
        "bodies disclose personal information under the Duty",
        "aggregated or anonymised data; or record another lawful gateway for this flow in "
        f"partnership.toml ([[gateways]] source = \"{source.name}\", partner, gateway, "
        'level = "person")',
    )


def harmonise_geography(parsed: Parsed, lsoas: pl.DataFrame, root: Path) -> Parsed:
    """Check LSOA codes against the reference, add the 2021 code and the in-area flag.

    Rows with an LSOA code unknown in both vintages are quarantined (with their people).
    Rows without an LSOA but with coordinates are placed by point-in-polygon where
    boundaries are held.
    """
    events = geocode_missing(conform(parsed.events, EVENT_COLUMNS), root)
    events = events.hstack(lookup_lsoas(events.get_column("lsoa_code"), lsoas))
    unknown = pl.col("lsoa_code").is_not_null() & pl.col("lsoa_vintage").is_null()
    bad = events.filter(unknown)
    if bad.height == 0:
        return _replace(parsed, events=events)
    lines = bad.select(
        "row_number", pl.lit("lsoa_code").alias("column"), pl.col("lsoa_code").alias("value"),
        pl.lit("LSOA code is not in the 2011 or 2021 reference geography").alias("reason"),
        pl.lit("check the code; import current reference data if it is new").alias("fix"),
        pl.lit(None, pl.String).alias("record"))
    dropped = bad.get_column("source_record_id")
    involvements = parsed.involvements
    if involvements is not None and involvements.height:
        gone = involvements.filter(pl.col("source_record_id").is_in(dropped.implode())
                                   & ~pl.col("row_number").is_in(lines["row_number"].implode()))
        lines = pl.concat([lines, gone.select(
            "row_number", pl.lit("lsoa_code").alias("column"),
            pl.col("source_record_id").alias("value"),
            pl.lit("belongs to a crime whose LSOA code is not in the reference geography")
            .alias("reason"), pl.lit("fix the crime's LSOA code").alias("fix"),
            pl.lit(None, pl.String).alias("record"))])
        involvements = involvements.filter(~pl.col("source_record_id").is_in(dropped.implode()))
    return _replace(
        parsed, events=events.filter(~unknown), involvements=involvements,
        quarantine=pl.concat([conform(parsed.quarantine, QUARANTINE_COLUMNS),
                              conform(lines, QUARANTINE_COLUMNS)]),
    )


def lookup_lsoas(codes: pl.Series, lsoas: pl.DataFrame) -> list[pl.Series]:
    """Each code's vintage, 2021 code and in-area flag (null where unknown), row for row.

    The lookup (one row per code, every LSOA held) is first cut to the file's own codes:
    hashing the file's few distinct codes costs far less than hashing the whole lookup for
    every file. Only the codes are joined, so an event's other columns are not copied.
    """
    found = lsoas.join(codes.unique().to_frame("lsoa_code"), on="lsoa_code", how="semi")
    return (codes.to_frame("lsoa_code")
            .join(found, on="lsoa_code", how="left", maintain_order="left")
            .drop("lsoa_code").get_columns())


def harmonise_aggregates(parsed: Parsed, context: Context) -> Parsed:
    """Give LSOA-level aggregates their 2021 code, and every aggregate its in-area flag.

    An LSOA code unknown in both vintages quarantines the row; other area types are marked
    in the area when their code is one of the partnership's (LAD, CSP, ward, MSOA, force).
    """
    if parsed.aggregates is None or parsed.aggregates.height == 0:
        return parsed
    frame = conform(parsed.aggregates, AGGREGATE_COLUMNS)
    lsoas = context.lsoas.select(pl.col("lsoa_code").alias("area_code"), "lsoa21_code",
                                 pl.col("in_area").alias("_lsoa_in"),
                                 pl.lit("lsoa").alias("area_type"))
    frame = frame.join(lsoas, on=["area_type", "area_code"], how="left")
    codes = [(kind, sorted(found)) for kind, found in context.area_codes.items()]
    known = pl.lit(None, pl.Boolean)
    for kind, found in codes:
        known = pl.when(pl.col("area_type") == kind).then(
            pl.col("area_code").is_in(found)).otherwise(known)
    frame = frame.with_columns(pl.coalesce("_lsoa_in", known).alias("in_area")).drop("_lsoa_in")
    unknown = (pl.col("area_type") == "lsoa") & pl.col("lsoa21_code").is_null()
    bad = frame.filter(unknown)
    lines = bad.select(
        "row_number", pl.lit("area_code").alias("column"), pl.col("area_code").alias("value"),
        pl.lit("LSOA code is not in the 2011 or 2021 reference geography").alias("reason"),
        pl.lit("check the code; import current reference data if it is new").alias("fix"),
        pl.lit(None, pl.String).alias("record"))
    return _replace(parsed, aggregates=frame.filter(~unknown), quarantine=pl.concat([
        conform(parsed.quarantine, QUARANTINE_COLUMNS), conform(lines, QUARANTINE_COLUMNS)]))


def partnership_area_codes(wh: Warehouse, lad_codes: list[str]) -> dict[str, set[str]]:
    """The partnership's own codes for each area type aggregates may use."""
    frame = wh.con.cursor().execute(
        "SELECT DISTINCT lad_code, csp_code, ward_code, msoa_code, pfa_code FROM areas "
        "WHERE lad_code IN (SELECT unnest(?))", [list(lad_codes)]).pl()
    return {kind: set(frame.get_column(f"{kind}_code").drop_nulls().to_list())
            for kind in ("lad", "csp", "ward", "msoa", "pfa")}


def geocode_missing(events: pl.DataFrame, root: Path) -> pl.DataFrame:
    """Fill a missing LSOA from grid references or longitude/latitude, where possible."""
    from svduty.geography import geocode_points

    needs = events.filter(pl.col("lsoa_code").is_null() & (
        pl.col("easting").is_not_null() | pl.col("longitude").is_not_null()))
    if needs.height == 0:
        return events
    grid = needs.filter(pl.col("easting").is_not_null() & pl.col("northing").is_not_null())
    lonlat = needs.filter(pl.col("easting").is_null() & pl.col("longitude").is_not_null())
    found = []
    for subset, xs, ys, crs in ((grid, "easting", "northing", "EPSG:27700"),
                                (lonlat, "longitude", "latitude", "EPSG:4326")):
        if subset.height and (root / "reference" / "boundaries" / "lsoa21.parquet").exists():
            codes = geocode_points(root, subset[xs].to_numpy(), subset[ys].to_numpy(), crs=crs)
            found.append(pl.DataFrame({"row_number": subset["row_number"],
                                       "_geocoded": pl.Series(list(codes), dtype=pl.String)}))
    if not found:
        return events
    geocoded = pl.concat(found)
    return (events.join(geocoded, on="row_number", how="left")
            .with_columns(pl.coalesce("lsoa_code", "_geocoded").alias("lsoa_code"))
            .drop("_geocoded"))


def reconcile(path: Path, parsed: Parsed) -> None:
    """Every row read is loaded or quarantined, never both, never neither."""
    frames = [f for f in (parsed.events, parsed.involvements, parsed.aggregates)
              if f is not None]
    loaded = pl.concat([f.get_column("row_number") for f in frames]).unique()
    quarantined = parsed.quarantine.get_column("row_number").unique()
    both = int(loaded.is_in(quarantined.implode()).sum()) if quarantined.len() else 0
    lost = parsed.rows_read - (loaded.len() + quarantined.len() - both)
    ids = parsed.events.get_column("source_record_id")
    if ids.n_unique() != ids.len():
        raise FileError(path, "internal reconciliation failed (a record id appears twice)",
                        "this is a bug in svduty: please report it with the file's checksum")
    if both or lost:
        raise FileError(
            path, f"internal reconciliation failed ({both} rows both loaded and "
            f"quarantined, {lost} rows unaccounted for); nothing was loaded",
            "this is a bug in svduty: please report it with the file's checksum")


def default_partner(partnership: Partnership, source: Source) -> str | None:
    """A force extract comes from the partnership's force when there is only one."""
    forces = {a.pfa_name for a in partnership.config.areas}
    if source.name == "police-recorded" and len(forces) == 1:
        return f"{forces.pop()} Police"
    return None


def scope_name(partner: str) -> str:
    """The scope a partner's extracts supersede within: 'Devon & Cornwall Police' ->
    'devon-and-cornwall' (the same slug police.uk file names use)."""
    from svduty.sources.police_uk import slug

    return slug(partner) or partner


def refresh_definition(wh: Warehouse, context: Context) -> None:
    """Apply the local definition if `definition.toml` changed since it was last applied
    (`sv_events` is a view over the events, so new loads need nothing more)."""
    from svduty.definition.rules import apply_if_changed

    apply_if_changed(wh, context.definition)


def current_definition(partnership: Partnership) -> Definition | None:
    from svduty.definition.rules import load_definition

    if not partnership.definition_path.exists():
        return None
    return load_definition(partnership.definition_path)


def catalogue_codes() -> set[str]:
    from svduty.definition.catalogue import load_catalogue

    return set(load_catalogue().get_column("code").to_list())


def _replace(parsed: Parsed, **changes) -> Parsed:
    from dataclasses import replace

    return replace(parsed, **changes)
