"""Readers for the tabular reference files: each checks its file and returns a polars frame.

Every reader raises :class:`ReferenceError` naming the file and what was expected when the
file is not what it claims to be. File paths are relative to a reference folder laid out
like ``shared/data`` (see docs/reference-data.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import polars as pl

from svduty.checksum import sha256
from svduty.geography.errors import ReferenceError

FILES: dict[str, str] = {
    "lsoa11_lookup": "geography/lookups/lsoa11_to_ward19_lad19_lookup_ew.csv",
    "lsoa11_msoa": "geography/lookups/lsoa11_to_msoa11_lad_police_force_england.csv",
    "population21": "population/census2021_lsoa21_usual_residents_by_age6.csv.gz",
    "population11": "population/census2011_lsoa11_population_households.csv",
    "deprivation": "deprivation/iod2019_lsoa11_domain_ranks_deciles_england.csv",
    "offence_codes": "home_office/offence_code_to_policeuk_category.csv",
    "offence_counts": "home_office/prc_pfa_2017_18_quarterly_by_offence_code.csv",
    "local_authorities": "geography/lookups/local_authorities.csv",
}
LSOA_PATTERN = r"^[EW]01\d{6}$"
DOMAINS: dict[str, str] = {  # IoD2019 column prefix -> domain
    "index_of_multiple_deprivation_imd": "imd",
    "income": "income",
    "employment": "employment",
    "education_skills_and_training": "education",
    "health_deprivation_and_disability": "health",
    "crime": "crime",
    "barriers_to_housing_and_services": "barriers",
    "living_environment": "living_environment",
}


@dataclass
class FileRecord:
    """One reference file read: a row of ``reference_imports``."""

    item: str
    file: str
    checksum: str
    rows: int
    imported_at: datetime
    note: str = ""


@dataclass
class Source:
    """A reference folder: finds files, records what was read and what was missing."""

    root: Path
    records: list[FileRecord] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    def path(self, item: str, optional: bool = False) -> Path | None:
        """The file for `item`, or None (noted as missing unless optional) when absent."""
        path = self.root / FILES[item]
        if path.is_file():
            return path
        if not optional:
            self.missing.append(f"{item}: {FILES[item]}")
        return None

    def record(self, item: str, path: Path, rows: int, note: str = "") -> None:
        self.records.append(FileRecord(
            item, path.relative_to(self.root).as_posix(), sha256(path), rows, self.started,
            note))


def read_table(path: Path, expected: list[str], what: str, **options: object) -> pl.DataFrame:
    """Read a CSV (plain or gzip) as strings and check it has the `expected` columns."""
    try:
        frame = pl.read_csv(path, infer_schema=False, **options)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise ReferenceError(
            f"{path}: could not be read as {what} (a CSV file with columns "
            f"{', '.join(expected)}): {exc}") from exc
    absent = [c for c in expected if c not in frame.columns]
    if absent or frame.height == 0:
        found = ", ".join(frame.columns[:12]) or "nothing"
        problem = f"missing column(s) {', '.join(absent)}" if absent else "no rows"
        raise ReferenceError(
            f"{path}: not {what}: {problem}. Expected a CSV with columns "
            f"{', '.join(expected)}; found {found}.")
    return frame


def check_codes(frame: pl.DataFrame, column: str, path: Path, what: str) -> None:
    """Every value of `column` must look like an LSOA code (E01/W01 and six digits)."""
    bad = frame.with_row_index("_row").filter(
        ~pl.col(column).fill_null("").str.contains(LSOA_PATTERN))
    if bad.height:
        first = bad.row(0, named=True)
        raise ReferenceError(
            f"{path}: {bad.height:,} row(s) of {what} have a malformed LSOA code in "
            f"'{column}' (first: data row {first['_row'] + 1}, value {first[column]!r}); "
            "expected codes like E01012345 or W01000123.")


def to_int(frame: pl.DataFrame, column: str, path: Path, what: str) -> pl.Expr:
    """`column` as integers (thousands separators allowed); raise naming the first bad value."""
    expr = pl.col(column).str.replace_all(r"[,\s]", "").cast(pl.Int64, strict=False)
    bad = frame.filter(expr.is_null())
    if bad.height:
        raise ReferenceError(
            f"{path}: {what} column '{column}' must hold whole numbers; "
            f"found {bad[column][0]!r} ({bad.height:,} such row(s)).")
    return expr


def read_lsoa11_lookup(source: Source) -> pl.DataFrame | None:
    """LSOA 2011 -> ward (Dec 2019) -> LAD 2019, England and Wales."""
    path = source.path("lsoa11_lookup")
    if path is None:
        return None
    cols = ["LSOA11CD", "LSOA11NM", "WD19CD", "WD19NM", "LAD19CD", "LAD19NM"]
    frame = read_table(path, cols, "the ONS LSOA 2011 to ward and LAD lookup").select(cols)
    check_codes(frame, "LSOA11CD", path, "the LSOA 2011 lookup")
    frame = frame.unique("LSOA11CD", keep="first", maintain_order=True)
    source.record("lsoa11_lookup", path, frame.height)
    return frame


def read_lsoa11_msoa(source: Source) -> pl.DataFrame | None:
    """LSOA 2011 -> MSOA 2011 (England; ONS's OA11_LSOA11_MSOA11 lookup also accepted)."""
    path = source.path("lsoa11_msoa")
    if path is None:
        return None
    what = "the LSOA 2011 to MSOA 2011 lookup"
    frame = read_table(path, [], what)
    lsoa = pick(frame, ["LSOA Code", "LSOA11CD"], path, what)
    msoa = pick(frame, ["MSOA Code", "MSOA11CD"], path, what)
    frame = frame.select(pl.col(lsoa).alias("lsoa_code"), pl.col(msoa).alias("msoa_code"))
    check_codes(frame, "lsoa_code", path, what)
    frame = frame.unique("lsoa_code", keep="first")
    source.record("lsoa11_msoa", path, frame.height)
    return frame


def pick(frame: pl.DataFrame, candidates: list[str], path: Path, what: str) -> str:
    """The first of `candidates` that is a column of `frame` (else a ReferenceError)."""
    for name in candidates:
        if name in frame.columns:
            return name
    raise ReferenceError(
        f"{path}: not {what}: no column {' or '.join(repr(c) for c in candidates)}; "
        f"found {', '.join(frame.columns[:12]) or 'nothing'}.")


def slug(name: str) -> str:
    """'Income Rank (where 1 is most deprived)' -> 'income_rank_where_1_is_most_deprived'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def read_population21(source: Source) -> pl.DataFrame | None:
    """Census 2021 usual residents by 2021 LSOA and six age bands (long format)."""
    path = source.path("population21")
    if path is None:
        return None
    cols = ["lsoa21_code", "lsoa21_name", "age_group", "usual_residents"]
    what = "Census 2021 usual residents by LSOA and age"
    frame = read_table(path, cols, what)
    check_codes(frame, "lsoa21_code", path, what)
    frame = frame.select(
        pl.col("lsoa21_code").alias("lsoa_code"), pl.col("lsoa21_name").alias("lsoa_name"),
        pl.col("age_group").alias("age_band"),
        to_int(frame, "usual_residents", path, what).alias("residents"))
    dupes = frame.select(pl.struct("lsoa_code", "age_band").is_duplicated().sum()).item()
    if dupes:
        raise ReferenceError(f"{path}: {dupes:,} rows repeat an LSOA and age group; "
                             "expected one row per LSOA and age group.")
    source.record("population21", path, frame.height)
    return frame


def read_population11(source: Source) -> pl.DataFrame | None:
    """Census 2011 usual residents per 2011 LSOA: the ONS table with a messy header, or a
    Nomis KS101EW bulk CSV ('geography code', 'Variable: All usual residents...')."""
    path = source.path("population11")
    if path is None:
        return None
    what = "the Census 2011 LSOA population table"
    raw = read_table(path, [], what, has_header=False)
    header = [str(v or "").strip() for v in raw.row(0)]
    nomis = [i for i, h in enumerate(header) if h.lower().startswith("variable: all usual")]
    if "geography code" in header and nomis:
        code, persons = raw.columns[header.index("geography code")], raw.columns[nomis[0]]
    elif "LSOA Code" in header and "Persons" in header:
        code, persons = raw.columns[header.index("LSOA Code")], raw.columns[header.index("Persons")]
    else:
        raise ReferenceError(
            f"{path}: not {what}: the first row should hold the column names, including "
            f"'LSOA Code' and 'Persons' (usual residents), or Nomis's 'geography code' and "
            f"'Variable: All usual residents'; found {', '.join(header[:10])}.")
    body = raw.slice(1).filter(pl.col(code).is_not_null())
    check_codes(body, code, path, what)
    frame = body.select(pl.col(code).alias("lsoa_code"),
                        to_int(body, persons, path, what).alias("residents"))
    source.record("population11", path, frame.height, "usual residents")
    return frame


def read_deprivation(source: Source) -> pl.DataFrame | None:
    """IoD2019 ranks and deciles per 2011 LSOA, long format: one row per LSOA and domain.

    Reads the short column names of shared/data (``income_rank``) or MHCLG's File 7
    (``Income Rank (where 1 is most deprived)``).
    """
    path = source.path("deprivation")
    if path is None:
        return None
    what = "IoD2019 domain ranks and deciles by LSOA"
    frame = read_table(path, [], what)
    slugs = {slug(c): c for c in frame.columns}
    code = pick(frame, ["lsoa11_code", "LSOA code (2011)"], path, what)
    frame = frame.rename({code: "lsoa11_code"})
    check_codes(frame, "lsoa11_code", path, what)
    parts = []
    for prefix, domain in DOMAINS.items():
        rank, decile = (domain_column(slugs, f"{prefix}_{k}", path, what)
                        for k in ("rank", "decile"))
        parts.append(frame.select(
            "lsoa11_code", pl.lit(domain).alias("domain"),
            to_int(frame, rank, path, what).cast(pl.Int32).alias("rank"),
            to_int(frame, decile, path, what).cast(pl.Int16).alias("decile")))
    long = pl.concat(parts)
    source.record("deprivation", path, frame.height, f"{len(DOMAINS)} domains")
    return long


def domain_column(slugs: dict[str, str], key: str, path: Path, what: str) -> str:
    for name, column in slugs.items():
        if name == key or name.startswith(f"{key}_"):
            return column
    raise ReferenceError(f"{path}: not {what}: no column for '{key}' (expected e.g. "
                         f"'{key}' or MHCLG File 7's long names).")


def normalise_offence_code(code: str) -> str:
    """A Home Office offence code in one canonical form ('008N' -> '8N', '4/1' -> '4.1').

    Spaces are removed, letters upper-cased, '/' read as '.', and leading zeros of the
    numeric part dropped. A list of codes such as '1/4.1/4.10/4.2' (homicide) keeps its '/'
    separators, each code normalised.
    """
    text = re.sub(r"\s+", "", str(code)).upper()
    if "/" in text and "." in text:
        return "/".join(normalise_offence_code(part) for part in text.split("/"))
    text = text.replace("/", ".")
    match = re.match(r"^(\d+)(.*)$", text)
    if match:
        text = str(int(match.group(1))) + match.group(2)
    return text


def read_offence_codes(source: Source) -> pl.DataFrame | None:
    """Home Office offence codes: the police.uk mapping unioned with the PRC table's codes."""
    frames = []
    specs = (
        ("offence_codes", "Police.uk_Cat", "the Home Office offence code to police.uk mapping"),
        ("offence_counts", "Policeuk_Cat", "the Home Office police recorded crime table"),
    )
    for item, category, what in specs:
        path = source.path(item)
        if path is None:
            continue
        cols = ["Offence_Code", "Offence_Description", "Offence_Group", "Offence_Subgroup",
                category]
        raw = read_table(path, cols, what)
        frame = raw.unique("Offence_Code", keep="first", maintain_order=True).select(
            pl.col("Offence_Code").map_elements(normalise_offence_code, pl.String)
            .alias("offence_code"),
            pl.col("Offence_Description").alias("description"),
            pl.col("Offence_Group").alias("offence_group"),
            pl.col("Offence_Subgroup").alias("offence_subgroup"),
            pl.col(category).alias("police_uk_category"),
            pl.lit(f"Home Office ({FILES[item]})").alias("source"),
        ).filter(pl.col("offence_code") != "")
        frames.append(frame.unique("offence_code", keep="first", maintain_order=True))
        source.record(item, path, raw.height)
    if not frames:
        return None
    codes = pl.concat(frames)
    return pl.concat([codes, split_code_lists(codes)]).unique(
        "offence_code", keep="first", maintain_order=True)


def split_code_lists(codes: pl.DataFrame) -> pl.DataFrame:
    """One row per member of a listed code ('1/4.1/4.10/4.2' also gives '1', '4.1', ...)."""
    lists = codes.filter(pl.col("offence_code").str.contains("/", literal=True))
    return (lists.with_columns(pl.col("offence_code").str.split("/"))
            .explode("offence_code")
            .with_columns(pl.col("source") + pl.lit(" (member of a listed code)")))


def bundled_areas() -> pl.DataFrame:
    """The bundled ONS LA -> current LA -> CSP -> police force table (incl. region)."""
    text = resources.files("svduty.reference").joinpath("areas.csv").read_bytes()
    return pl.read_csv(text, infer_schema=False)


LOCAL_AUTHORITY_COLUMNS = ["lad_code", "lad_name", "csp_code", "csp_name", "pfa_code",
                           "pfa_name", "region_code"]


def read_local_authorities(source: Source) -> pl.DataFrame | None:
    """Optional: local authorities -> CSP -> police force area, for LAs the bundled table
    does not know (a new authority before svduty's next release, or a synthetic area)."""
    path = source.path("local_authorities", optional=True)
    if path is None:
        return None
    frame = read_table(path, LOCAL_AUTHORITY_COLUMNS,
                       "the local authority to CSP and force lookup").select(
        LOCAL_AUTHORITY_COLUMNS)
    source.record("local_authorities", path, frame.height)
    return frame
