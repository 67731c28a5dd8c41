"""Emergency hospital admissions for assault, sent as counts (never one row per patient).

One row per area x period x cause (x age band x sex) with a count ("long"), or the same with one
count column per age band ("wide", unpivoted here); CSV (UTF-8, plain or gzipped) or XLSX (the
sheet named `admissions`, else the first), read by the shared table reader
(:mod:`svduty.sources.tables`). Every loaded row becomes an aggregate (`Parsed.aggregates`);
the file has no events. Suppressed small counts ("*", "<5", "[c]"...) load with a null value
and `suppressed` set. A file that looks person-level (episode or patient ids, admission dates,
dates of birth) is rejected: s.16(4) of the Police, Crime, Sentencing and Courts Act 2022 does
not let health bodies disclose personal information under the Serious Violence Duty.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import ClassVar, NamedTuple

import polars as pl

from svduty.sources.base import (
    AGGREGATE_COLUMNS,
    EVENT_COLUMNS,
    QUARANTINE_COLUMNS,
    Check,
    FileError,
    Parsed,
    conform,
    empty_quarantine,
    run_checks,
)
from svduty.sources.columns import ColumnSpec, normalise_name
from svduty.sources.tables import NO_RECORD, Layout, Table, column_notes, raw, read_table

MEASURE = "emergency admissions for assault"
SHEET, UNIT = "admissions", "area x period x cause x age band x sex"
SPEC: dict[str, ColumnSpec] = {
    "area_code": ColumnSpec(True, (
        "area", "geography code", "lsoa code", "lsoa", "lsoa11cd", "lsoa21cd", "lsoa11",
        "lsoa21", "lsoa 2011 code", "lsoa 2021 code", "residence lsoa", "lsoa of residence",
        "msoa code", "msoa11cd", "msoa21cd", "ward code", "wd22cd", "wd23cd", "la code",
        "local authority code", "lad code", "lad22cd", "lad23cd", "lad24cd", "ltla code",
        "utla code", "csp code", "pfa code")),
    "area_name": ColumnSpec(False, (
        "area description", "geography name", "lsoa name", "lsoa11nm", "lsoa21nm",
        "msoa name", "ward name", "la name", "local authority name", "local authority",
        "lad name", "csp name")),
    "area_type": ColumnSpec(False, (
        "area level", "geography type", "geography level", "geography", "geography level name")),
    "period": ColumnSpec(False, (
        "time period", "reporting period", "period name", "time period name", "date period")),
    "financial_year": ColumnSpec(False, ("financial year", "fin year", "fyear", "fy")),
    "year": ColumnSpec(False, ("calendar year", "yr", "admission year")),
    "quarter": ColumnSpec(False, ("qtr", "financial quarter", "admission quarter")),
    "month": ColumnSpec(False, ("month name", "admission month", "month of admission")),
    "cause": ColumnSpec(True, (
        "icd10", "icd 10", "icd10 code", "icd-10 code", "cause code", "external cause",
        "external cause code", "cause of injury", "injury cause", "diagnosis",
        "diagnosis code", "assault type", "cause group", "mechanism")),
    "age_band": ColumnSpec(False, ("age group", "age range", "age", "age category")),
    "sex": ColumnSpec(False, ("gender", "sex code", "sex description", "person sex")),
    "count": ColumnSpec(False, (
        "number", "admissions", "episodes", "value", "n", "number of admissions",
        "admission count", "admissions count", "emergency admissions", "number of episodes",
        "spells", "numerator", "frequency")),
}
PERIOD_PARTS = ("period", "financial_year", "year", "quarter", "month")
# Header names (normalised) that mean one row per admission or patient, not counts.
PERSON_LEVEL = frozenset({
    "episodeid", "episodekey", "epikey", "episodenumber", "epiorder", "spellid", "spellnumber",
    "hesid", "patientid", "patientnumber", "localpatientid", "localpatientidentifier", "mrn",
    "hospitalnumber", "admissiondate", "admidate", "dateofadmission", "admitdate",
    "admissiondatetime", "episodestartdate", "epistart", "episodeenddate", "epiend",
    "dischargedate", "disdate", "dateofdischarge", "arrivaldate", "attendancedate",
    "startage", "ageatadmission", "ageonadmission", "postcode", "patientpostcode",
    "homepostcode", "admimeth", "classpat", "diag01", "diag401", "diag4concat",
})
S16 = ("s.16(4) of the Police, Crime, Sentencing and Courts Act 2022 does not let health "
       "bodies disclose personal information under the Serious Violence Duty")
ASK_FOR_COUNTS = (
    "aggregated counts only: one row per area x period x cause (x age band x sex) with the "
    "number of emergency admissions, small numbers suppressed (docs/sources/"
    "hospital-admissions.md); ask the sender to delete this copy")
LAYOUT_ALLOWED = f"{ASK_FOR_COUNTS}; {S16}"
AREA_PATTERNS = (
    ("lsoa", r"^[EW]01\d{6}$"), ("msoa", r"^[EW]02\d{6}$"), ("ward", r"^[EW]05\d{6}$"),
    ("lad", r"^(E0[6-9]|W06)\d{6}$"), ("csp", r"^[EW]22\d{6}$"), ("pfa", r"^(E23|W15)\d{6}$"))
PROVIDER = r"^[A-Z0-9]{3,5}$"  # an NHS trust or site code, with area type 'provider'
AREA_TYPE_NAMES = {
    "lsoa": ("lsoa", "lsoa11", "lsoa21", "lower layer super output area"),
    "msoa": ("msoa", "msoa11", "msoa21", "middle layer super output area"),
    "ward": ("ward", "electoral ward", "ward of residence"),
    "lad": ("lad", "la", "local authority", "local authority district", "district", "ltla",
            "utla", "unitary authority", "lower tier local authority",
            "upper tier local authority"),
    "csp": ("csp", "community safety partnership"),
    "pfa": ("pfa", "police force area", "force", "police force"),
    "provider": ("provider", "trust", "nhs trust", "hospital", "hospital trust", "site"),
}
SEXES = {"m": "M", "male": "M", "males": "M", "1": "M", "f": "F", "female": "F",
         "females": "F", "2": "F", "u": "U", "unknown": "U", "not known": "U", "0": "U",
         "9": "U", "not specified": "U", "indeterminate": "U", "persons": None,
         "person": None, "p": None, "all": None, "all persons": None, "both": None,
         "total": None, "all sexes": None}
SUPPRESSED = r"(?i)^(\*|c|x|:|~|\[[a-z]\]|supp|suppressed|<\s*\d+|\d+\s*(-|–|to)\s*\d+)$"
ALL_AGES = ("all ages", "all", "total", "all age", "persons", "all persons")
FIRST_YEAR, LAST_YEAR = 1990, 2100


# ------------------------------------------------------------------------------- the reader


class HospitalAdmissions:
    """Reader for aggregated emergency admissions for assault (CSV, CSV.gz or XLSX)."""

    name: ClassVar[str] = "hospital-admissions"
    description: ClassVar[str] = (
        "emergency hospital admissions for assault (ICD-10 X85-Y09), aggregated counts by "
        "area, period, cause, age band and sex")
    person_level_health: ClassVar[bool] = False  # counts only; person-level files are refused

    def read(self, path: Path) -> Parsed:
        path = Path(path)
        header = peek_header(path)
        check_person_level(path, header)
        bands = band_columns(header, SPEC)
        table = read_table(path, layout(bands))
        work = normalise(table, bands)
        check_day_dates(path, table, work)
        lines = run_checks(work, checks(table, bands)).unique(maintain_order=True)
        bad = lines.get_column("row_number").unique().implode()
        dupes = duplicates(work.filter(~pl.col("row_number").is_in(bad)))
        quarantine = pl.concat([lines, dupes]).sort("row_number", maintain_order=True)
        bad = quarantine.get_column("row_number").unique().implode()
        aggregates = to_aggregates(work.filter(~pl.col("row_number").is_in(bad)))
        return Parsed(
            events=pl.DataFrame(schema=EVENT_COLUMNS),
            quarantine=conform(quarantine, QUARANTINE_COLUMNS),
            rows_read=table.frame.height,
            period=file_period(aggregates, work),
            aggregates=aggregates,
            notes=notes(table, bands, aggregates),
        )


# ------------------------------------------------------------------------------ the header


class _Header(Exception):
    """Carries the header row out of a peek (internal)."""

    def __init__(self, header: list[str]) -> None:
        super().__init__("header")
        self.header = header


def peek_header(path: Path) -> list[str]:
    """The file's header row, after the shared checks (empty, UTF-8, identifiers...)."""
    def stop(_path: Path, header: list[str], _columns: dict[str, str]) -> None:
        raise _Header(header)

    spec = {name: ColumnSpec(False, column.aliases) for name, column in SPEC.items()}
    try:
        read_table(path, Layout(spec, SHEET, UNIT, LAYOUT_ALLOWED, groups=stop))
    except _Header as found:
        return found.header
    raise FileError(path, "the file has no header row", "column names in row 1")


def check_person_level(path: Path, header: list[str]) -> None:
    """FileError when the header shows one row per admission or patient."""
    found = [h for h in header if normalise_name(h) in PERSON_LEVEL]
    if found:
        raise FileError(
            path, f"this looks like a person-level extract (columns {', '.join(found)}: one "
            f"row per admission or patient); {S16}, so nothing from this file was loaded",
            ASK_FOR_COUNTS)


def band_columns(header: list[str], spec: dict[str, ColumnSpec]) -> dict[str, str | None]:
    """Wide layout: header name -> age band, for columns named like '18-24' or 'Age 25+'.

    An 'All ages' or 'Total' column counts as the all-ages band (None), but only beside real
    bands; a file with no band columns is in the long layout ({}).
    """
    known = {normalise_name(n) for c, s in spec.items() for n in (c, *s.aliases)}
    found = {h: parse_band(h) for h in header if normalise_name(h) not in known}
    bands = {h: band for h, (band, ok) in found.items() if ok and band is not None}
    if not bands:
        return {}
    return {h: band for h, (band, ok) in found.items() if ok}


def layout(bands: dict[str, str | None]) -> Layout:
    """The table layout: SPEC, plus the wide layout's band columns."""
    spec = {**SPEC, **{own: ColumnSpec(False, ()) for own in bands}}

    def groups(path: Path, header: list[str], columns: dict[str, str]) -> None:
        check_period_columns(path, header, columns)
        check_count_columns(path, columns, bands)

    return Layout(spec, SHEET, UNIT, LAYOUT_ALLOWED, groups=groups)


def check_period_columns(path: Path, header: list[str], columns: dict[str, str]) -> None:
    if not set(PERIOD_PARTS) & set(columns):
        raise FileError(path, f"no period column; found columns {header[:40]}",
                        "a period column (e.g. 2024-03, Q1 2024/25, 2023/24), or "
                        "financial_year or year, with month or quarter if the counts are for "
                        "months or quarters")


def check_count_columns(path: Path, columns: dict[str, str],
                        bands: dict[str, str | None]) -> None:
    wide = list(bands)
    if not wide and "count" not in columns:
        raise FileError(path, "no count column", "a count column (count, admissions, number, "
                        "episodes or value), or one count column per age band such as "
                        "'0-17', '18-24', '25+'")
    if wide and ("count" in columns or "age_band" in columns):
        own = columns.get("count") or columns["age_band"]
        raise FileError(
            path, f"the file has both '{own}' and age-band count columns ({', '.join(wide)}); "
            "it cannot be both layouts",
            "either one count column with an age_band column (long), or one count column per "
            "age band (wide)")


# --------------------------------------------------------------------------- normalising


def normalise(table: Table, bands: dict[str, str | None]) -> pl.DataFrame:
    """One row per count (wide files unpivoted), with `record` and parsed `__` columns."""
    frame = table.frame
    own = [c for c in frame.columns if c != "row_number"]
    frame = frame.with_columns(
        pl.struct(own).struct.json_encode().alias("record"),
        raw(table, "area_code").str.to_uppercase().str.replace_all(" ", "").alias("__area"),
        raw(table, "area_name").alias("__area_name"),
        raw(table, "area_type").alias("__stated_type"),
        period_text(table).alias("__period_text"),
        raw(table, "cause").alias("__cause_text"),
        raw(table, "sex").alias("__sex_text"),
    )
    frame = unpivot_bands(frame, bands) if bands else frame.with_columns(
        raw(table, "age_band").alias("__band_text"), pl.lit(None, pl.String).alias("__band_col"),
        raw(table, "count").alias("__count_text"))
    fiscal = "period" not in table.columns and "financial_year" in table.columns
    frame = parse_unique(frame, "__period_text", lambda t: parse_period(t, fiscal), PERIOD_SCHEMA)
    frame = parse_unique(frame, "__cause_text", parse_cause, CAUSE_SCHEMA)
    frame = parse_unique(frame, "__band_text", parse_band, BAND_SCHEMA)
    return frame.sort("row_number", maintain_order=True).with_columns(
        area_type().alias("__type"), stated_type().alias("__stated"),
        count_number().alias("__number"),
        pl.col("__count_text").str.contains(SUPPRESSED).fill_null(False).alias("__suppressed"),
        sex().alias("__sex"))


def unpivot_bands(frame: pl.DataFrame, bands: dict[str, str | None]) -> pl.DataFrame:
    """One row per source row and band column; every value keeps its source row number."""
    index = [c for c in frame.columns if c not in bands]
    long = frame.unpivot(on=list(bands), index=index, variable_name="__band_col",
                         value_name="__count_text")
    return long.with_columns(pl.col("__band_col").alias("__band_text"))


def period_text(table: Table) -> pl.Expr:
    """The period as one text: the period column, or month/quarter joined to the year."""
    if "period" in table.columns:
        return raw(table, "period")
    quarter = raw(table, "quarter")
    quarter = pl.when(quarter.str.contains(r"^\d$")).then("Q" + quarter).otherwise(quarter)
    part = pl.coalesce(raw(table, "month"), quarter)
    year = pl.coalesce(raw(table, "financial_year"), raw(table, "year"))
    return pl.concat_str([part, year], separator=" ", ignore_nulls=True)


def period_column(table: Table) -> str:
    """The column(s) a period problem is reported against."""
    if "period" in table.columns:
        return "period"
    return ", ".join(c for c in PERIOD_PARTS if c in table.columns)


def area_type() -> pl.Expr:
    """The area type an ONS code's prefix gives (null when the code is no ONS area code)."""
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for kind, pattern in AREA_PATTERNS:
        expr = expr.when(pl.col("__area").str.contains(pattern)).then(pl.lit(kind))
    return expr.otherwise(pl.lit(None, pl.String))


def stated_type() -> pl.Expr:
    """The area type a column states ('Local authority' -> 'lad'); '?' when unreadable."""
    names = {n: kind for kind, spellings in AREA_TYPE_NAMES.items() for n in spellings}
    text = pl.col("__stated_type").str.to_lowercase().str.replace_all(r"[^a-z0-9 ]", " ")
    text = text.str.replace_all(r"\s+", " ").str.strip_chars()
    text = text.str.replace(r"^(\w+) (20)?\d\d$", "$1")  # 'LSOA 2021', 'LAD 23'
    return text.replace_strict(names, default="?", return_dtype=pl.String)


def sex() -> pl.Expr:
    """'Male' -> M, 'Female' -> F, 'Not known' -> U, 'Persons' -> null; '?' when unreadable."""
    text = pl.col("__sex_text")
    return pl.when(text.is_not_null()).then(text.str.to_lowercase().replace_strict(
        SEXES, default="?", return_dtype=pl.String))


def count_number() -> pl.Expr:
    """The count as a number ('1,234' allowed); null when not a number."""
    text = pl.col("__count_text").str.replace_all(r"^(\d{1,3}),(\d{3})$", "$1$2")
    return text.cast(pl.Float64, strict=False)


def parse_unique(frame: pl.DataFrame, column: str, parse: Callable[[str], tuple],
                 schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Join the parse of each distinct text of `column` (few distinct values, any file size)."""
    texts = frame.get_column(column).drop_nulls().unique().to_list()
    parsed = pl.DataFrame([(t, *parse(t)) for t in texts], schema={column: pl.String, **schema},
                          orient="row")
    return frame.join(parsed, on=column, how="left", maintain_order="left")


# --------------------------------------------------------------------------------- periods


class Period(NamedTuple):
    start: date | None
    end: date | None
    kind: str | None  # a PERIOD_TYPES value, 'day' for a single date, None when unreadable


PERIOD_SCHEMA = {"__start": pl.Date, "__end": pl.Date, "__period_type": pl.String}
MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m} | {"sept": 9}
MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r"|\d{1,2})"
FY = r"(?:fy\s*)?(\d{4}|\d{2})\s*[/-]\s*(\d{4}|\d{2})(?:\s*fy)?"
NONE = Period(None, None, None)


def parse_period(text: str, fiscal: bool = False) -> Period:
    """'2024-03', 'Mar-24', 'March 2024' (month); 'Q1 2024/25' (quarter); '2023/24',
    'FY2023-24' (financial year); '2024' (calendar year); '2020/21 - 22/23' (other)."""
    t = re.sub(r"\s+", " ", text.strip().lower().replace("–", "-").replace("—", "-"))
    t = re.sub(r"^(financial year|calendar year|cy)\s*", "", re.sub(r"\.0$", "", t))
    for parse in (day_period, pooled_period, quarter_period):
        found = parse(t)
        if found.kind:
            return found
    if (start := fy_start(t, fiscal)) is not None:
        return Period(date(start, 4, 1), date(start + 1, 3, 31), "financial year")
    found = month_period(t)
    if found.kind:
        return found
    if re.fullmatch(r"\d{4}", t) and FIRST_YEAR <= int(t) <= LAST_YEAR:
        return Period(date(int(t), 1, 1), date(int(t), 12, 31), "calendar year")
    return NONE


def day_period(t: str) -> Period:
    """An ISO or dd/mm/yyyy date (Excel date cells read so): its month when on the 1st."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ t][\d:.]+)?", t)
    n = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", t)
    if not (m or n):
        return NONE
    y, mo, d = (int(g) for g in m.groups()) if m else (int(g) for g in n.groups()[::-1])
    on = make_date(y, mo, d)
    if on is None:
        return NONE
    return month_of(y, mo) if d == 1 else Period(on, on, "day")


def pooled_period(t: str) -> Period:
    """Several financial years pooled, as PHOF writes them: '2020/21 - 22/23'."""
    m = re.fullmatch(rf"({FY})\s*-\s*({FY})", t)
    if not m:
        return NONE
    first, last = fy_start(m.group(1), True), fy_start(m.group(4), True)
    if first is None or last is None or last < first:
        return NONE
    return Period(date(first, 4, 1), date(last + 1, 3, 31), "other")


def quarter_period(t: str) -> Period:
    """'Q1 2024/25' or '2024/25 Q1' (financial quarters), 'Q1 2024' (calendar quarter)."""
    m = (re.fullmatch(r"(?:q|quarter ?)([1-4]) ?(.+)", t)
         or re.fullmatch(r"(.+?) ?(?:q|quarter ?)([1-4])", t))
    if not m:
        return NONE
    q, rest = (m.group(1), m.group(2)) if m.group(1).isdigit() else (m.group(2), m.group(1))
    q = int(q)
    start = fy_start(rest, True)
    if start is not None:
        first = date(start + (q == 4), (4, 7, 10, 1)[q - 1], 1)
    elif re.fullmatch(r"\d{4}", rest) and FIRST_YEAR <= int(rest) <= LAST_YEAR:
        first = date(int(rest), 3 * q - 2, 1)
    else:
        return NONE
    return Period(first, add_months(first, 3) - timedelta(days=1), "quarter")


def fy_start(t: str, fiscal: bool) -> int | None:
    """The first year of a financial year '2023/24', '2023-2024', 'FY23/24', '202324'.

    With a dash and a second part that could be a month ('2011-12'), the text is a month
    unless the column is a financial year column (`fiscal`).
    """
    m = re.fullmatch(FY, t) or re.fullmatch(r"(\d{4})(\d{2})", t)
    if not m:
        return None
    first, second = m.group(1), m.group(2)
    year = int(first) if len(first) == 4 else 2000 + int(first)
    follows = int(second) in ((year + 1) % 100, year + 1)
    if not follows or not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    if "-" in t and len(second) == 2 and int(second) <= 12 and not fiscal:
        return None
    return year


def month_period(t: str) -> Period:
    """'2024-03', '03/2024', 'Mar-24', 'March 2024', '2024 Mar', '3 2024', 'Mar 2023/24'."""
    patterns = ((rf"{MONTH}[ -/]?(\d{{4}}|\d{{2}})", 0, 1), (rf"(\d{{4}})[ -/]{MONTH}", 1, 0))
    for pattern, mi, yi in patterns:
        m = re.fullmatch(pattern, t)
        if m:
            month, year = month_number(m.group(mi + 1)), int(m.group(yi + 1))
            year += 2000 if year < 100 else 0
            if month and FIRST_YEAR <= year <= LAST_YEAR:
                return month_of(year, month)
    m = re.fullmatch(rf"{MONTH} ({FY})", t)
    start = fy_start(m.group(2), True) if m else None
    month = month_number(m.group(1)) if m else None
    if start is None or not month:
        return NONE
    return month_of(start + (month < 4), month)


def month_number(text: str) -> int | None:
    number = int(text) if text.isdigit() else MONTHS.get(text, 0)
    return number if 1 <= number <= 12 else None


def month_of(year: int, month: int) -> Period:
    first = date(year, month, 1)
    return Period(first, add_months(first, 1) - timedelta(days=1), "month")


def add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# ----------------------------------------------------------------------------- ICD-10 codes

TITLES = {
    "X85": "assault by drugs, medicaments and biological substances",
    "X86": "assault by corrosive substance", "X87": "assault by pesticides",
    "X88": "assault by gases and vapours",
    "X89": "assault by other specified chemicals and noxious substances",
    "X90": "assault by unspecified chemical or noxious substance",
    "X91": "assault by hanging, strangulation and suffocation",
    "X92": "assault by drowning and submersion", "X93": "assault by handgun discharge",
    "X94": "assault by rifle, shotgun and larger firearm discharge",
    "X95": "assault by other and unspecified firearm discharge",
    "X96": "assault by explosive material", "X97": "assault by smoke, fire and flames",
    "X98": "assault by steam, hot vapours and hot objects", "X99": "assault by sharp object",
    "Y00": "assault by blunt object", "Y01": "assault by pushing from high place",
    "Y02": "assault by pushing or placing victim before moving object",
    "Y03": "assault by crashing of motor vehicle", "Y04": "assault by bodily force",
    "Y05": "sexual assault by bodily force", "Y06": "neglect and abandonment",
    "Y07": "other maltreatment syndromes", "Y08": "assault by other specified means",
    "Y09": "assault by unspecified means",
}
RANGES = {"X85-Y09": "all assault", "X93-X95": "assault by firearm discharge"}
BY_TITLE = {title: code for code, title in TITLES.items()} | {
    "all assault": "X85-Y09", "all assaults": "X85-Y09", "assault": "X85-Y09",
    "assault (all)": "X85-Y09", "violence": "X85-Y09"}
CODE = r"([A-Z]\d{2})(?:\.?\d)?"
CAUSE_SCHEMA = {"__icd10": pl.String, "__category": pl.String, "__cause_kind": pl.String}
NOT_ASSAULT = {  # kind -> the reason's words
    "self-harm": "intentional self-harm (X60-X84, e.g. X78 self-harm by sharp object)",
    "accident": "an accident (V01-X59, e.g. W25 contact with sharp glass)",
    "undetermined": "an event of undetermined intent (Y10-Y34, e.g. Y28 sharp object)",
    "other": "not an external cause of assault (X85-Y09)",
}


def parse_cause(text: str) -> tuple[str | None, str | None, str]:
    """(icd10, category, kind): 'X99 Assault by sharp object' -> ('X99', 'assault by sharp
    object', 'assault'); 'X78' -> (None, None, 'self-harm'); kind 'unreadable' if no code."""
    t = re.sub(r"\s+", " ", text.strip().upper().replace("–", "-").replace("—", "-"))
    m = re.match(rf"{CODE}\s*(?:-|TO)\s*{CODE}(?![0-9A-Z])", t)
    if m:
        return cause_range(m.group(1), m.group(2))
    m = re.match(rf"{CODE}(?![0-9A-Z])", t)
    if m:
        return cause_range(m.group(1), m.group(1))
    code = BY_TITLE.get(t.lower().rstrip("."))
    if code:
        return cause_range(*code.split("-")) if "-" in code else cause_range(code, code)
    return None, None, "unreadable"


def cause_range(first: str, last: str) -> tuple[str | None, str | None, str]:
    for code in (first, last):
        if cause_kind(code) != "assault":
            return None, None, cause_kind(code)
    if code_key(last) < code_key(first):
        return None, None, "unreadable"
    if first == last:
        return first, TITLES[first], "assault"
    icd10 = f"{first}-{last}"
    return icd10, RANGES.get(icd10, f"assault ({icd10})"), "assault"


def code_key(code: str) -> tuple[str, int]:
    return code[0], int(code[1:3])


def cause_kind(code: str) -> str:
    """'assault' for X85-Y09; else which kind of other cause the code is."""
    letter, number = code_key(code)
    if ("X", 85) <= (letter, number) <= ("Y", 9):
        return "assault"
    if letter == "X" and 60 <= number <= 84:
        return "self-harm"
    if letter in "VW" or (letter == "X" and number < 60):
        return "accident"
    if letter == "Y" and 10 <= number <= 34:
        return "undetermined"
    return "other"


# ------------------------------------------------------------------------------- age bands

BAND_SCHEMA = {"__band": pl.String, "__band_ok": pl.Boolean}


def parse_band(text: str) -> tuple[str | None, bool]:
    """(band, recognised): '18 to 24' -> '18-24', 'Aged 25+' -> '25+', 'Under 25' ->
    'under 25', '17 and under' -> '0-17', 'All ages' -> (None, True)."""
    t = re.sub(r"\s+", " ", text.strip().lower().replace("–", "-").replace("—", "-"))
    if t in ALL_AGES:
        return None, True
    t = re.sub(r"^(age[ds]?|age band|age group)[ :_]*", "", t)
    t = re.sub(r"[ _]*(years old|years|year|yrs|yr|y)$", "", t).strip()
    patterns = (
        (r"(\d{1,3}) ?(?:-|to|_) ?(\d{1,3})", "{0}-{1}"),
        (r"(\d{1,3}) ?(?:\+|plus|and over|and above|or over|or older|and older)", "{0}+"),
        (r"(?:under|<|less than|below) ?(\d{1,3})", "under {0}"),
        (r"(\d{1,3}) ?(?:and under|or under|or younger|and younger)", "0-{0}"),
    )
    for pattern, form in patterns:
        m = re.fullmatch(pattern, t)
        ages = [int(g) for g in m.groups()] if m else []
        if m and all(a <= 120 for a in ages) and ages == sorted(ages):
            return form.format(*ages), True
    return None, False


# ---------------------------------------------------------------------------------- checks


def checks(table: Table, bands: dict[str, str | None]) -> list[Check]:
    return (area_checks(table) + period_checks(table) + cause_checks(table)
            + breakdown_checks(table, bands) + count_checks(table, bands))


def area_checks(table: Table) -> list[Check]:
    own = table.columns["area_code"]
    value, kind, stated = raw(table, "area_code"), pl.col("__type"), pl.col("__stated")
    provider = (stated == "provider") & pl.col("__area").str.contains(PROVIDER)
    fix = (f"give ONS area codes in '{own}', such as E01015023 (LSOA), E02003124 (MSOA), "
           "E05002078 (ward), E06000026 (local authority), E22000056 (CSP) or E23000035 "
           "(police force area), not area names")
    checks = [
        Check(value.is_null(), "area_code", "area code is empty", fix, NO_RECORD),
        Check(value.is_not_null() & kind.is_null() & ~provider, "area_code",
              "area code is not an LSOA, MSOA, ward, local authority, CSP or police force area "
              "code", fix, value)]
    if "area_type" in table.columns:
        text = raw(table, "area_type")
        types = ", ".join(AREA_TYPE_NAMES)
        checks += [
            Check(text.is_not_null() & (stated == "?"), "area_type",
                  "area type is not one we know", f"use one of {types} in "
                  f"'{table.columns['area_type']}', or leave it blank", text),
            Check(text.is_not_null() & kind.is_not_null() & (stated != "?") & (stated != kind),
                  "area_type", "area type does not match the area code",
                  f"check the code in '{own}' and the type in '{table.columns['area_type']}' "
                  "(E01 codes are LSOAs, E02 MSOAs, E05 wards, E06-E09 local authorities)",
                  pl.concat_str([text, value], separator=": "))]
    return checks


def period_checks(table: Table) -> list[Check]:
    column, text, start = period_column(table), pl.col("__period_text"), pl.col("__start")
    fix = (f"give the period in '{period_own(table)}' as a month (2024-03, Mar-24, March 2024), "
           "a quarter (Q1 2024/25), a financial year (2023/24) or a calendar year (2024)")
    return [
        Check(text.is_null(), column, "period is empty", fix, NO_RECORD),
        Check(text.is_not_null() & start.is_null(), column,
              "period is not a month, quarter or year we can read", fix, text),
        Check(pl.col("__period_type") == "day", column,
              "period is a single day, not a month, quarter or year",
              f"{fix}; send counts for the period, not one row per admission", text),
        Check(start > date.today(), column, "period is in the future",
              f"check the period in '{period_own(table)}'", text),
    ]


def period_own(table: Table) -> str:
    return "', '".join(table.columns[c] for c in PERIOD_PARTS if c in table.columns)


def cause_checks(table: Table) -> list[Check]:
    own = table.columns["cause"]
    text, kind = pl.col("__cause_text"), pl.col("__cause_kind")
    fix = (f"send emergency admissions for assault only: ICD-10 external cause codes X85-Y09 "
           f"in '{own}' (a code such as X99, or the range X85-Y09); leave this row out")
    checks = [
        Check(text.is_null(), "cause", "cause (ICD-10 code) is empty",
              f"give the ICD-10 code or range in '{own}', e.g. X99 or X85-Y09", NO_RECORD),
        Check(kind == "unreadable", "cause", "cause is not an ICD-10 code, range or title",
              f"give the ICD-10 code (e.g. X99, Y04) or range (X85-Y09) in '{own}', "
              "optionally followed by its title", text)]
    return checks + [Check(kind == k, "cause", f"ICD-10 code is {words}, not assault", fix, text)
                     for k, words in NOT_ASSAULT.items()]


def breakdown_checks(table: Table, bands: dict[str, str | None]) -> list[Check]:
    checks = []
    if "sex" in table.columns:
        own = table.columns["sex"]
        checks.append(Check(
            pl.col("__sex_text").is_not_null() & (pl.col("__sex") == "?"), "sex",
            "sex is not one we know", f"use Male, Female or Persons (all) in '{own}' (M/F, "
            "1/2, Unknown are understood)", pl.col("__sex_text")))
    if "age_band" in table.columns and not bands:
        own = table.columns["age_band"]
        checks.append(Check(
            pl.col("__band_text").is_not_null() & ~pl.col("__band_ok"), "age_band",
            "age band is not one we can read",
            f"write age bands in '{own}' as 0-17, 18-24, 25+ or under 25; 'All ages' for the "
            "total", pl.col("__band_text")))
    return checks


def count_checks(table: Table, bands: dict[str, str | None]) -> list[Check]:
    text, number = pl.col("__count_text"), pl.col("__number")
    value = pl.format("{}: {}", "__band_col", text) if bands else text
    where = "each age-band column" if bands else f"'{table.columns['count']}'"
    fix = (f"give the number of admissions in {where} as a whole number (0 or more), or a "
           "suppression marker (*, c, x, <5, [c]) for a small count")
    marker = pl.col("__suppressed")
    return [
        Check(text.is_null(), "count", "count is empty", f"{fix}; write 0 for none",
              pl.format("{}: (blank)", "__band_col") if bands else NO_RECORD),
        Check(text.is_not_null() & ~marker & number.is_null(), "count",
              "count is not a number nor a suppression marker", fix, value),
        Check(~marker & ((number < 0) | (number != number.floor())), "count",
              "count is negative or not a whole number", fix, value),
    ]


KEY = ["__area", "__start", "__end", "__icd10", "__band", "__sex"]


def duplicates(work: pl.DataFrame) -> pl.DataFrame:
    """Later rows repeating the area, period, cause, age band and sex of an earlier row."""
    first = work.group_by(KEY, maintain_order=True).agg(pl.col("row_number").min().alias(
        "__first"))
    later = work.join(first, on=KEY, how="left", nulls_equal=True, maintain_order="left")
    later = later.filter(pl.col("row_number") != pl.col("__first"))
    if later.height == 0:
        return empty_quarantine()
    value = pl.concat_str([pl.col("__area"), pl.col("__period_text"), pl.col("__cause_text"),
                           pl.col("__band"), pl.col("__sex_text")], separator=" | ",
                          ignore_nulls=True)
    return later.unique("row_number", keep="first", maintain_order=True).select(
        "row_number", pl.lit("area_code").alias("column"), value.alias("value"),
        pl.format("area, period, cause, age band and sex are already given on row {}",
                  "__first").alias("reason"),
        pl.lit("give each area, period, cause, age band and sex one row; delete the repeated "
               "row (or correct its breakdown)").alias("fix"),
        "record")


def check_day_dates(path: Path, table: Table, work: pl.DataFrame) -> None:
    """FileError when every period is a single day: one row per admission, not counts."""
    types = work.get_column("__period_type")
    if work.height > 1 and (types == "day").fill_null(False).all():
        raise FileError(
            path, f"every period in '{period_own(table)}' is a single day, as in one row per "
            f"admission; {S16}, so nothing from this file was loaded", ASK_FOR_COUNTS)


# ---------------------------------------------------------------------------------- output


def to_aggregates(rows: pl.DataFrame) -> pl.DataFrame:
    suppressed = pl.col("__suppressed")
    frame = rows.select(
        "row_number",
        pl.lit(MEASURE).alias("measure"),
        pl.col("__start").alias("period_start"),
        pl.col("__end").alias("period_end"),
        pl.col("__period_type").alias("period_type"),
        pl.coalesce("__type", pl.when(pl.col("__stated") == "provider").then(pl.col("__stated")))
        .alias("area_type"),
        pl.col("__area").alias("area_code"),
        pl.col("__area_name").alias("area_name"),
        pl.col("__category").alias("category"),
        pl.col("__icd10").alias("icd10"),
        pl.col("__band").alias("age_band"),
        pl.col("__sex").alias("sex"),
        pl.when(~suppressed).then(pl.col("__number")).alias("value"),
        suppressed.alias("suppressed"),
        pl.when(suppressed).then(pl.format("suppressed={}", "__count_text")).alias("context"),
    )
    return conform(frame, AGGREGATE_COLUMNS)


def file_period(aggregates: pl.DataFrame, work: pl.DataFrame) -> tuple[date, date]:
    """Earliest period start to latest period end: of loaded rows, else of all rows."""
    frame = aggregates.select(pl.col("period_start").alias("s"), pl.col("period_end").alias("e"))
    if frame.height == 0:
        frame = work.select(pl.col("__start").alias("s"), pl.col("__end").alias("e")).drop_nulls()
    if frame.height == 0:
        today = date.today()
        return month_of(today.year, today.month)[:2]
    return frame.get_column("s").min(), frame.get_column("e").max()


def notes(table: Table, bands: dict[str, str | None], aggregates: pl.DataFrame) -> list[str]:
    out = column_notes(table)
    if bands:
        out.append(f"wide layout: age-band columns unpivoted ({', '.join(bands)})")
    hidden = aggregates.get_column("suppressed").sum()
    if hidden:
        out.append(f"{hidden} suppressed counts loaded with no value")
    return out
