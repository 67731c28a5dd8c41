"""``import_reference``: a local reference folder -> the partnership's warehouse.

Everything is read and built in memory first, then written in one transaction (the previous
reference contents are replaced); boundaries are written as GeoParquet next to temporary
names and moved into place only once the warehouse has committed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from svduty.geography import areas as A
from svduty.geography import correspondence as C
from svduty.geography import readers as R
from svduty.geography.errors import ReferenceError
from svduty.partnership import Partnership
from svduty.warehouse import TABLES as SCHEMA

BOUNDARY_FOLDER = ("reference", "boundaries")
STEPS = ("Reading lookups and population", "Reading deprivation and offence codes",
         "Reading boundaries", "Overlaying LSOA 2011 and 2021 boundaries",
         "Assigning wards and MSOAs", "Writing the warehouse", "Writing boundaries")
TABLES = ("areas", "lsoa_correspondence", "populations", "deprivation", "offence_codes",
          "reference_imports")
CENSUS_2021 = "ONS Census 2021 usual residents"
CENSUS_2011 = "ONS Census 2011 usual residents"
IOD_2019 = "MHCLG English Indices of Deprivation 2019"

Progress = Callable[[str], None]


@dataclass
class ImportReport:
    """What an import loaded, what it could not find, and the correspondence figures."""

    source: Path
    rows: dict[str, int]
    boundaries: dict[str, int]
    correspondence: C.CorrespondenceFigures | None
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Built:
    """Everything to write, built before the transaction starts."""

    tables: dict[str, pl.DataFrame]
    layers: dict  # layer name -> spatial.Layer
    figures: C.CorrespondenceFigures | None
    notes: list[str]


def import_reference(partnership: Partnership, source: Path,
                     progress: Progress | None = None) -> ImportReport:
    """Load reference data from a folder laid out like ``shared/data`` (see
    docs/reference-data.md) into the partnership's warehouse, replacing what was there."""
    start = time.perf_counter()
    source = Path(source).expanduser().resolve()
    if not source.is_dir():
        raise ReferenceError(f"{source}: no such folder. Give the folder holding the "
                             "reference files (geography/, population/, deprivation/, ...).")
    step = progress or (lambda _: None)
    folder = R.Source(source)
    built = build(folder, step)
    step(STEPS[5])
    targets = stage_boundaries(partnership.root, built.layers)
    try:
        with partnership.warehouse() as wh:
            write_tables(wh, built, str(source))
    except BaseException:
        for staged, _ in targets:
            staged.unlink(missing_ok=True)
        raise
    step(STEPS[6])
    publish_boundaries(partnership.root, targets)
    partnership.config.reference_source = str(source)
    partnership.save()
    report = ImportReport(
        source, {t: built.tables[t].height for t in TABLES if t in built.tables},
        {name: len(layer.frame) for name, layer in built.layers.items()},
        built.figures, folder.missing, built.notes, time.perf_counter() - start)
    audit(partnership, report)
    return report


def build(folder: R.Source, step: Progress) -> Built:
    """Read every file and build all reference tables (nothing written yet)."""
    from svduty.geography import spatial

    step(STEPS[0])
    lookup, msoa = R.read_lsoa11_lookup(folder), R.read_lsoa11_msoa(folder)
    pop21, pop11 = R.read_population21(folder), R.read_population11(folder)
    step(STEPS[1])
    deprivation, offences = R.read_deprivation(folder), R.read_offence_codes(folder)
    step(STEPS[2])
    layers = {name: layer for name in spatial.LAYERS
              if (layer := spatial.read_layer(folder, name)) is not None}
    if lookup is None and pop21 is None and "lsoa21" not in layers:
        raise ReferenceError(
            f"{folder.root}: no list of LSOAs found. Expected at least one of "
            f"{R.FILES['lsoa11_lookup']}, {R.FILES['population21']} or "
            "geography/boundaries/lsoa21/*.geojson.")
    totals21 = pop21.group_by("lsoa_code").agg(pl.col("residents").sum()) if pop21 is not None \
        else None
    step(STEPS[3])
    corr, figures = build_correspondence(layers, lookup, totals21, pop11)
    step(STEPS[4])
    areas = A.with_local_authorities(build_areas(layers, lookup, msoa, pop21),
                                     R.read_local_authorities(folder))
    tables = {"areas": areas, "lsoa_correspondence": corr,
              "populations": build_populations(pop21, pop11)}
    if deprivation is not None:
        tables["deprivation"] = deprivation.with_columns(pl.lit(IOD_2019).alias("source"))
    if offences is not None:
        tables["offence_codes"] = offences
    built = Built(tables, layers, figures, notes(areas, figures))
    tables["reference_imports"] = import_records(folder.records + derived(built, folder))
    return built


def build_correspondence(layers: dict, lookup: pl.DataFrame | None,
                         totals21: pl.DataFrame | None, pop11: pl.DataFrame | None,
                         ) -> tuple[pl.DataFrame, C.CorrespondenceFigures | None]:
    """Overlay rows where both boundary sets are held, code matches elsewhere."""
    from svduty.geography import spatial

    codes11 = lookup["LSOA11CD"] if lookup is not None else pl.Series([], dtype=pl.String)
    codes21 = totals21["lsoa_code"] if totals21 is not None else pl.Series([], dtype=pl.String)
    parts, covered = [], set()
    t11 = pl.DataFrame(schema={"code": pl.String, "area": pl.Float64})
    if "lsoa11" in layers and "lsoa21" in layers:
        t11 = spatial.layer_table(layers["lsoa11"])
        t21 = spatial.layer_table(layers["lsoa21"])
        codes21 = pl.concat([codes21, t21["code"]]).unique()
        pieces = spatial.intersections(layers["lsoa11"], layers["lsoa21"])
        parts.append(C.overlay_rows(pieces, t11, t21, totals21))
        covered = set(t11["code"].to_list())
    parts.append(C.code_match_rows(codes11, covered, codes21))
    rows = pl.concat(parts)
    if codes11.len() == 0 and not covered:
        return rows.select(C.COLUMNS), None
    weights = "census2021" if totals21 is not None else "area"
    figures = C.figures(rows, t11.select("code", "area"), codes11, pop11, weights)
    return rows.select(C.COLUMNS), figures


def build_areas(layers: dict, lookup: pl.DataFrame | None, msoa: pl.DataFrame | None,
                pop21: pl.DataFrame | None) -> pl.DataFrame:
    """Both vintages of ``areas``, with best-fit wards and MSOAs where polygons are held."""
    from svduty.geography import spatial

    lsoa11, lsoa21, ward = layers.get("lsoa11"), layers.get("lsoa21"), layers.get("ward")
    ward_vintage = ward.vintage if ward is not None else "WD19"

    def held(layer):
        return spatial.layer_table(layer) if layer is not None else None

    def wards(layer):
        return spatial.best_fit(layer, ward) if layer is not None and ward is not None else None

    msoas = spatial.nest(lsoa21, layers["msoa21"]) \
        if lsoa21 is not None and "msoa21" in layers else None
    names = pop21.select("lsoa_code", "lsoa_name").unique("lsoa_code") \
        if pop21 is not None else None
    return pl.concat([
        A.areas_2011(lookup, msoa, held(lsoa11), wards(lsoa11), ward_vintage),
        A.areas_2021(names, lookup, held(lsoa21), wards(lsoa21), ward_vintage, msoas),
    ])


def build_populations(pop21: pl.DataFrame | None, pop11: pl.DataFrame | None) -> pl.DataFrame:
    parts = [pl.DataFrame(schema={"lsoa_code": pl.String, "lsoa_vintage": pl.Int16,
                                  "age_band": pl.String, "residents": pl.Int64,
                                  "source": pl.String})]
    if pop21 is not None:
        parts.append(pop21.select("lsoa_code", pl.lit(2021, pl.Int16).alias("lsoa_vintage"),
                                  "age_band", "residents", pl.lit(CENSUS_2021).alias("source")))
    if pop11 is not None:
        parts.append(pop11.select("lsoa_code", pl.lit(2011, pl.Int16).alias("lsoa_vintage"),
                                  pl.lit("all").alias("age_band"), "residents",
                                  pl.lit(CENSUS_2011).alias("source")))
    return pl.concat(parts)


def notes(areas: pl.DataFrame, figures: C.CorrespondenceFigures | None) -> list[str]:
    """Plain-language caveats about the built tables."""
    out = []
    no_lad = areas.filter(pl.col("csp_code").is_null())
    if no_lad.height:
        out.append(f"{no_lad.height:,} LSOA(s) have no current CSP in the bundled table "
                   f"(e.g. {no_lad['lsoa_code'][0]}, LA {no_lad['lad_code'][0]}).")
    for vintage in (2011, 2021):
        rows = areas.filter(pl.col("lsoa_vintage") == vintage)
        if rows.height and (gaps := rows.filter(pl.col("ward_code").is_null()).height):
            out.append(f"{gaps:,} {vintage} LSOA(s) have no ward (no polygon and no 2011 "
                       "code to take the 2019 ward from).")
    if figures is not None and figures.lsoa11_unmapped:
        out.append(f"{figures.lsoa11_unmapped:,} 2011 LSOA(s) have no 2021 equivalent: they "
                   "changed outside the boundary coverage, so events coded to them keep "
                   "lsoa21_code empty.")
    return out


def import_records(records: list[R.FileRecord]) -> pl.DataFrame:
    """The ``reference_imports`` rows: one per file read (plus the derived correspondence)."""
    return pl.DataFrame([vars(r) for r in records], schema={
        "item": pl.String, "file": pl.String, "checksum": pl.String, "rows": pl.Int32,
        "imported_at": pl.Datetime("us"), "note": pl.String})


def write_tables(wh, built: Built, source: str) -> None:
    """Replace every reference table in one transaction."""
    meta = {"reference_source": source,
            "reference_correspondence": json.dumps(built.figures.as_dict())
            if built.figures else ""}
    with wh.transaction() as con:
        for table in TABLES:
            # drop and recreate: DuckDB re-inserting deleted primary keys is very slow
            con.execute(f"DROP TABLE IF EXISTS {table}")
            con.execute(SCHEMA[table])
            frame = built.tables.get(table)
            if frame is not None and frame.height:
                con.register("_incoming", frame.to_arrow())
                columns = ", ".join(f'"{c}"' for c in frame.columns)
                con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _incoming")
                con.unregister("_incoming")
        for key, value in meta.items():
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])


def derived(built: Built, folder: R.Source) -> list[R.FileRecord]:
    """A record for the correspondence: its inputs, their combined checksum, its figures."""
    if built.figures is None:
        return []
    used = ("lsoa11_lookup", "population21", "boundaries-lsoa11", "boundaries-lsoa21")
    inputs = [r for r in folder.records if r.item in used]
    digest = hashlib.sha256("".join(r.checksum for r in inputs).encode()).hexdigest()
    items = ", ".join(dict.fromkeys(r.item for r in inputs))
    return [R.FileRecord(
        "lsoa_correspondence", f"derived from {items}", digest,
        built.tables["lsoa_correspondence"].height, folder.started,
        json.dumps(built.figures.as_dict()))]


def boundary_dir(root: Path) -> Path:
    return Path(root).joinpath(*BOUNDARY_FOLDER)


def stage_boundaries(root: Path, layers: dict) -> list[tuple[Path, Path]]:
    """Write each layer to a temporary name beside its target; returns (staged, target)."""
    from svduty.geography import spatial

    out = []
    for name, layer in layers.items():
        target = boundary_dir(root) / f"{name}.parquet"
        staged = target.with_name(f".{name}.parquet.incoming")
        spatial.write_layer(layer, staged)
        out.append((staged, target))
    return out


def publish_boundaries(root: Path, targets: list[tuple[Path, Path]]) -> None:
    """Move staged layers into place and remove layers this import no longer holds."""
    keep = {target for _, target in targets}
    folder = boundary_dir(root)
    for old in folder.glob("*.parquet") if folder.exists() else []:
        if old not in keep:
            old.unlink()
    for staged, target in targets:
        staged.replace(target)


def audit(partnership: Partnership, report: ImportReport) -> None:
    from svduty.privacy import audit as log

    log.record(partnership.root, "reference-import", source=str(report.source),
               rows=report.rows, boundaries=report.boundaries, missing=report.missing)
