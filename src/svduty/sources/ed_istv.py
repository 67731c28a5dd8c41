"""Emergency department assault attendances: the NHS ISTV minimum data set (DCB1594).

Anonymised, one row per assault attendance, from an ED's information team. Accepted forms:

* CSV (UTF-8, plain or gzipped) or XLSX (the sheet named `assaults`, else the first), read
  by the shared table reader; columns are matched by name ignoring case, spaces and
  punctuation, with the NHS data dictionary names, snake_case and ECDS-style variants in
  `SPEC`;
* the ISTV XML submission: a header (reporting period, SITE CODE (OF TREATMENT)) and repeated
  assault elements whose children are named like the data elements (`AssaultDateTime`,
  `AssaultMethod`, ...), in any namespace. Its assaults become the same text table as a CSV,
  so one normaliser and one set of checks serve both. The row number of an XML assault is
  its 1-based position among the assaults plus 1 (as if the header were row 1).

The free-text ASSAULT LOCATION DESCRIPTION (and ASSAULT METHOD OTHER DESCRIPTION) often holds
names or addresses, so it is never stored: the reader keeps it only in memory
(`IstvParsed.free_text`); ingest calls :meth:`EdIstv.locate`, which places it in an LSOA with
the local gazetteer and keeps only the LSOA, the method and the gazetteer name matched.
Quarantined rows keep their other columns, with the free text replaced by a marker.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from xml.etree import ElementTree

import polars as pl

from svduty.sources.base import (
    EVENT_COLUMNS,
    INVOLVEMENT_COLUMNS,
    LSOA_FORMAT,
    QUARANTINE_COLUMNS,
    Check,
    FileError,
    Parsed,
    conform,
    empty_quarantine,
    open_text,
    person_tokens,
    run_checks,
)
from svduty.sources.columns import (
    AGE_UNKNOWN,
    ColumnSpec,
    age_band,
    normalise_name,
    parse_age,
    parse_date,
    parse_sex,
    parse_time,
)
from svduty.sources.people import PERSON, PERSON_KEY, bad_key
from svduty.sources.tables import (
    EARLIEST,
    NO_RECORD,
    TOKEN_SPEC,
    Layout,
    Table,
    check_header,
    column_notes,
    finish,
    location_checks,
    period_of,
    raw,
    read_table,
    repeated_rows,
)

if TYPE_CHECKING:
    from svduty.geography.gazetteer import Gazetteer

LSOA_ALIASES = ("lsoa", "lsoa11cd", "lsoa21cd", "lsoa11", "lsoa21", "lsoa 2011 code",
                "lsoa 2021 code", "lsoa of assault", "assault lsoa")
SPEC: dict[str, ColumnSpec] = {
    "attendance_id": ColumnSpec(False, (
        "attendance id", "attendance identifier", "attendance number", "attendance no",
        "attendance ref", "attendance reference", "ae attendance number",
        "ed attendance id", "ecds attendance id", "emergency care attendance identifier",
        "istv id", "istv reference", "record id")),
    "site_code": ColumnSpec(False, (
        "SITE CODE (OF TREATMENT)", "SiteCodeOfTreatment", "site code", "site",
        "treatment site", "treatment site code", "site id", "ed site",
        "organisation site identifier (of treatment)", "OrganisationSiteIdentifierOfTreatment")),
    "arrival_datetime": ColumnSpec(False, (
        "ARRIVAL DATE AND TIME AT ACCIDENT AND EMERGENCY DEPARTMENT",
        "ArrivalDateTimeAtAccidentAndEmergencyDepartment", "arrival date and time",
        "ArrivalDateTime", "arrival date time", "emergency care arrival date and time",
        "attendance date and time", "attendance datetime")),
    "arrival_date": ColumnSpec(False, (
        "arrival date", "date of arrival", "attendance date", "ed arrival date",
        "emergency care arrival date")),
    "arrival_time": ColumnSpec(False, (
        "arrival time", "time of arrival", "attendance time", "emergency care arrival time")),
    "assault_datetime": ColumnSpec(False, (
        "ASSAULT DATE AND TIME", "AssaultDateTime", "assault date time",
        "date and time of assault", "injury date and time", "incident date and time")),
    "assault_date": ColumnSpec(False, (
        "assault date", "date of assault", "injury date", "date of injury", "incident date")),
    "assault_time": ColumnSpec(False, (
        "assault time", "time of assault", "injury time", "time of injury", "incident time")),
    "assault_method": ColumnSpec(True, (
        "ASSAULT METHOD", "method of assault", "method", "weapon", "weapon used",
        "assault weapon", "assault mechanism")),
    "assault_method_other": ColumnSpec(False, (
        "ASSAULT METHOD OTHER DESCRIPTION", "assault method other", "other method",
        "other method description", "method other description", "other weapon")),
    "assault_location_type": ColumnSpec(True, (
        "ASSAULT LOCATION TYPE", "location type", "type of location", "place type",
        "assault location category", "location category")),
    "assault_location_description": ColumnSpec(False, (
        "ASSAULT LOCATION DESCRIPTION", "location description", "assault location",
        "location of assault", "location", "place of assault", "where assaulted",
        "assault place", "location free text", "assault location free text")),
    "age_band": ColumnSpec(False, ("age band", "age group", "age range", "patient age band")),
    "age": ColumnSpec(False, ("age at attendance", "age on arrival", "patient age")),
    "sex": ColumnSpec(False, (
        "gender", "patient sex", "person stated gender code", "stated gender", "gender code",
        "sex code")),
    "lsoa_code": ColumnSpec(False, LSOA_ALIASES),
    "easting": ColumnSpec(False, ("x", "grid x", "eastings", "x coordinate", "os easting")),
    "northing": ColumnSpec(False, ("y", "grid y", "northings", "y coordinate", "os northing")),
    # Person-level mode (only under a recorded lawful gateway): `svduty pseudonymise` output.
    "person_key": ColumnSpec(False, PERSON["person_key"].aliases),
    **TOKEN_SPEC,
}
FREE_TEXT = ("assault_location_description", "assault_method_other")
WITHHELD = "[free text withheld]"
UNKNOWN = r"^(unknown|not known|n ?k|not stated|unspecified|not recorded)$"
# (category, weapon, pattern on the lower-cased text), first match wins.
METHODS: tuple[tuple[str, str, str], ...] = (
    ("firearm", "firearm", r"\b(guns?|firearms?|shot|shooting|pistol|rifle|shotgun|handgun|"
                           r"airgun|air rifle|bb gun)\b"),
    ("knife or sharp object", "knife or sharp",
     r"\b(knife|knives|knifed|blades?|bladed|sharp|stab|stabbed|stabbing|machete|sword|"
     r"razor|scissors|dagger|slash|slashed|screwdriver)\b"),
    ("glass/bottle", "knife or sharp", r"\b(glass|glassed|glassing|bottles?|bottled)\b"),
    ("corrosive", "corrosive", r"\b(corrosive|acid|alkali|bleach|ammonia|noxious|chemicals?)\b"),
    ("blunt object", "blunt", r"\b(blunt|bat|baseball|club|hammer|stick|pole|bar|brick|stone|"
                              r"rock|object|crowbar|cosh|truncheon|iron)\b"),
    ("body (fist/feet)", "none", r"\b(body|fists?|feet|foot|kick|kicked|kicking|punch|punched|"
                                 r"punching|hands?|head|headbutt|headbutted|bite|bitten|slap|"
                                 r"slapped|strangled?|strangulation|pushed|elbow|knee|unarmed|"
                                 r"bodily|stamp|stamped|stamping)\b"),
    ("other", "other", r"^(other|other method|other weapon|others)$"),
    ("unknown", "unknown", UNKNOWN),
)
LOCATIONS: tuple[tuple[str, str], ...] = (
    ("public transport", r"\b(bus|buses|train|trains|railway|rail|station|taxi|tram|metro|"
                         r"underground|transport|coach)\b"),
    ("licensed premises (pub/club/bar)", r"\b(pubs?|club|clubs|nightclub|bars?|licensed|"
                                         r"licenced|inn|tavern|disco)\b"),
    ("school/college", r"\b(school|college|university|academy|educational|education)\b"),
    ("home", r"\b(home|house|dwelling|residence|residential|flat|private address|domestic)\b"),
    ("workplace", r"\b(work|workplace|office|shop|store|employment|job)\b"),
    ("street/public place", r"\b(street|road|public|park|outside|outdoors|open space|alley|"
                            r"pavement|highway|town centre|beach)\b"),
    ("other", r"^(other|other location|elsewhere)$"),
    ("unknown", UNKNOWN),
)
# NHS PERSON STATED GENDER CODE values, then the shared spellings.
GENDER_CODES = {"1": "male", "2": "female", "9": "indeterminate", "0": "not known"}
ZONE = r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})$"
HEADER_ELEMENTS = {
    "start": {"reportingperiodstartdate", "reportingperiodstart", "periodstartdate"},
    "end": {"reportingperiodenddate", "reportingperiodend", "periodenddate"},
}
TABLE_SUFFIXES = (".csv", ".gz", ".xlsx", ".xlsm", ".xls")
ASSAULT_KEYS = ("assault_datetime", "assault_date", "assault_method", "assault_location_type")


def check_groups(path: Path, header: list[str], columns: dict[str, str]) -> None:
    """An assault date (or date and time), and a location description, LSOA or grid."""
    if not {"assault_datetime", "assault_date"} & set(columns):
        raise FileError(path, f"no assault date column; found columns {header[:40]}",
                        "an ASSAULT DATE AND TIME column (or assault date and assault time)")
    grid = {"easting", "northing"} & set(columns)
    if not {"assault_location_description", "lsoa_code"} & set(columns) and len(grid) < 2:
        raise FileError(path, f"no location columns; found columns {header[:40]}",
                        "an ASSAULT LOCATION DESCRIPTION column, or an LSOA code, or easting "
                        "and northing (British National Grid)")


LAYOUT = Layout(
    spec=SPEC, sheet="assaults", unit="assault attendance",
    allowed=("the anonymised ISTV minimum data set only (no names, dates of birth, NHS numbers "
             "or addresses of patients); delete the identifying columns and ask the sender to "
             "delete this copy"),
    groups=check_groups,
)


@dataclass
class IstvParsed(Parsed):
    """Parsed plus the free-text descriptions of loaded rows, held in memory only until
    :meth:`EdIstv.locate` turns them into LSOAs (`row_number`, `text`)."""

    free_text: pl.DataFrame | None = None


class EdIstv:
    """Reader for ED ISTV extracts (CSV, CSV.gz, XLSX or ISTV XML)."""

    name: ClassVar[str] = "ed-istv"
    description: ClassVar[str] = (
        "emergency department assault attendances (ISTV minimum data set), anonymised")
    # Anonymised as the ISTV data set is; a file carrying person keys is person-level health
    # data and needs a recorded lawful gateway (checked by ingest after reading).
    person_level_health: ClassVar[bool] = False
    health_or_care: ClassVar[bool] = True

    def read(self, path: Path) -> IstvParsed:
        path = Path(path)
        table, header = load(path)
        work = normalise(table)
        lines = run_checks(work, checks(table))
        bad = lines.get_column("row_number").unique().implode()
        dupes = duplicates(work.filter(~pl.col("row_number").is_in(bad)), table)
        quarantine = pl.concat([lines, dupes]).sort("row_number", maintain_order=True)
        bad = quarantine.get_column("row_number").unique().implode()
        rows = work.filter(~pl.col("row_number").is_in(bad))
        return IstvParsed(
            events=to_events(rows),
            involvements=patients(rows),
            tokens=tokens_of(rows, table),
            quarantine=conform(quarantine, QUARANTINE_COLUMNS),
            rows_read=work.height,
            period=header.get("period") or file_period(rows, work),
            scope=scope_of(rows),
            notes=[*column_notes(table), *header.get("notes", []), *value_notes(rows),
                   *key_notes(rows, table)],
            free_text=rows.select("row_number", pl.col("__text").alias("text")),
        )

    def locate(self, parsed: Parsed, gazetteer: Gazetteer) -> Parsed:
        """Place rows without an LSOA or grid reference by their free-text description; the
        text itself is dropped. Adds a note with the share placed."""
        free = getattr(parsed, "free_text", None)
        if free is None:
            return parsed
        events = parsed.events
        todo = (events.filter(pl.col("lsoa_code").is_null() & pl.col("easting").is_null())
                .select("row_number").join(free, on="row_number", how="left",
                                           maintain_order="left"))
        found = pl.concat([todo.select("row_number"), gazetteer.match(todo["text"])],
                          how="horizontal")
        events = events.join(found, on="row_number", how="left", maintain_order="left")
        placed = events.with_columns(
            pl.coalesce("lsoa_code", pl.col("lsoa_code_right")).alias("lsoa_code"),
            described(pl.col("method"), pl.col("matched")).alias("location_desc"),
        ).select(parsed.events.columns)
        note = geocode_note(found, events.height)
        return replace(parsed, events=placed, free_text=None,
                       notes=[*parsed.notes, *gazetteer.notes, note])


def described(method: pl.Expr, matched: pl.Expr) -> pl.Expr:
    """The only location text stored: how the row was placed and the gazetteer name."""
    return (pl.when(method == "district")
            .then(pl.format("district only (no LSOA): {}", matched))
            .when(method.is_not_null()).then(pl.format("geocoded by {}: {}", method, matched)))


def geocode_note(found: pl.DataFrame, total: int) -> str:
    """'assault location geocoded for 812 of 1,000 attendances (81.2%): postcode 120, ...'."""
    n = found.height
    if n == 0:
        return f"assault location: all {total:,} attendances came with an LSOA or grid reference"
    placed = found.filter(pl.col("lsoa_code").is_not_null())
    counts = dict(placed.group_by("method").len().rows())
    parts = ", ".join(f"{m} {counts.get(m, 0):,}" for m in ("postcode", "street", "place",
                                                             "ward"))
    note = (f"assault location geocoded for {placed.height:,} of {n:,} attendances "
            f"({100 * placed.height / n:.1f}%): "
            f"{parts}; {n - placed.height:,} not geocoded")
    district = found.filter(pl.col("method") == "district").height
    if district:
        note += f" ({district:,} of them named only the district)"
    if total > n:
        note += f"; {total - n:,} more came with an LSOA or grid reference"
    return note


# --------------------------------------------------------------------------- reading files


def load(path: Path) -> tuple[Table, dict]:
    """The file as a text table, and what an XML submission header says (else {})."""
    suffix = path.suffix.lower()
    if suffix == ".xml" or (suffix not in TABLE_SUFFIXES and open_text(path).lstrip(
            b"\xef\xbb\xbf \t\r\n").startswith(b"<")):
        return read_xml(path)
    return read_table(path, LAYOUT), {}


def read_xml(path: Path) -> tuple[Table, dict]:
    """An ISTV XML submission as a text table (one row per assault element)."""
    root = parse_xml(path)
    index = {normalise_name(n): c for c, s in SPEC.items() for n in (c, *s.aliases)}
    assaults = [el for el in root.iter()
                if any(index.get(key(child)) in ASSAULT_KEYS for child in el)]
    if not assaults:
        raise FileError(path, "no assault records found in the XML",
                        "an ISTV XML submission with one element per assault, holding "
                        "AssaultDateTime, AssaultMethod and AssaultLocationType")
    inside = {id(child) for el in assaults for child in el}
    values = header_values(root, inside, index)
    rows = [{local(child.tag): text_of(child) for child in el} for el in assaults]
    names = list(dict.fromkeys(name for row in rows for name in row))
    frame = pl.DataFrame(rows, schema={n: pl.String for n in names})
    if values.get("site") and not any(index.get(normalise_name(n)) == "site_code"
                                      for n in names):
        frame = frame.with_columns(pl.lit(values["site"]).alias("site_code"))
    header = frame.columns
    try:
        columns = check_header(path, header, [header], [1], LAYOUT)
    except FileError as exc:
        raise FileError(path, exc.problem.replace("column", "element"),
                        "assault elements with AssaultDateTime, AssaultMethod, "
                        "AssaultLocationType and AssaultLocationDescription children (see "
                        "docs/sources/ed-istv.md)") from exc
    table = Table(finish(path, frame, columns, LAYOUT), columns, False,
                  [h for h in header if h not in columns.values()])
    return table, submission(values)


def parse_xml(path: Path) -> ElementTree.Element:
    """Parse without DTDs or entities (refused); FileError naming the line if malformed."""
    data = open_text(path)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise FileError(path, "the XML declares a DTD or entities, which are not accepted",
                        "a plain ISTV XML submission without <!DOCTYPE> or <!ENTITY>")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        line, column = exc.position
        problem = str(exc).split(":")[0]
        raise FileError(path, f"the XML is malformed or truncated ({problem}) at line {line}, "
                        f"column {column}", "a complete ISTV XML submission; export it "
                        "again") from exc


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def key(element: ElementTree.Element) -> str:
    return normalise_name(local(element.tag)) if isinstance(element.tag, str) else ""


def text_of(element: ElementTree.Element) -> str | None:
    """An element's text, or its children's text, or a code/value attribute."""
    text = "".join(element.itertext()).strip()
    if text:
        return text
    return next((v.strip() for k, v in element.attrib.items()
                 if local(k).lower() in ("code", "value")), None)


def header_values(root: ElementTree.Element, inside: set[int],
                  index: dict[str, str]) -> dict[str, str]:
    """Reporting period start and end and the site code, from outside the assaults."""
    found: dict[str, str] = {}
    for el in root.iter():
        if id(el) in inside:
            continue
        name = key(el)
        slot = next((s for s, names in HEADER_ELEMENTS.items() if name in names), None)
        if slot is None and index.get(name) == "site_code":
            slot = "site"
        value = text_of(el)
        if slot and value:
            found.setdefault(slot, value)
    return found


def submission(values: dict[str, str]) -> dict:
    """The header's period (when both dates read) and a note describing the header."""
    dates = pl.DataFrame({"v": [values.get("start"), values.get("end")]},
                         schema={"v": pl.String}).select(
        parse_date(clean_datetime(pl.col("v")))[0]).to_series().to_list()
    period = (dates[0], dates[1]) if None not in dates and dates[0] <= dates[1] else None
    parts = [f"site {values['site']}" if values.get("site") else None,
             f"reporting period {dates[0]} to {dates[1]}" if period else None]
    text = ", ".join(p for p in parts if p)
    return {"period": period, "notes": [f"submission header: {text}"] if text else []}


# ----------------------------------------------------------------------------- normalising


def clean_datetime(value: pl.Expr) -> pl.Expr:
    """Drop an XML time zone ('2024-03-02T01:10:00Z' -> '2024-03-02T01:10:00')."""
    return value.str.replace(ZONE, "$1")


def date_time(table: Table, stem: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(raw value, date, time) of `stem`_datetime, or `stem`_date with `stem`_time."""
    value = clean_datetime(pl.coalesce(raw(table, f"{stem}_datetime"), raw(table, f"{stem}_date")))
    on, at = parse_date(value, table.excel)
    if f"{stem}_time" in table.columns:
        at = pl.coalesce(parse_time(raw(table, f"{stem}_time"), table.excel), at)
    return value, on, at


def category(text: pl.Expr, rules: tuple[tuple[str, str], ...]) -> pl.Expr:
    """The first rule whose pattern matches the lower-cased text; null if none does."""
    low = text.str.to_lowercase().str.strip_chars()
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for name, pattern in rules:
        expr = expr.when(low.str.contains(pattern)).then(pl.lit(name))
    return expr.otherwise(pl.lit(None, pl.String))


def method_of(table: Table) -> pl.Expr:
    """The method's category; a specific 'other description' refines 'other' or unknown."""
    rules = tuple((c, p) for c, _, p in METHODS)
    given = category(raw(table, "assault_method"), rules)
    other = category(raw(table, "assault_method_other"), rules)
    vague = given.is_null() | given.is_in(["other", "unknown"])
    specific = other.is_not_null() & ~other.is_in(["other", "unknown"])
    return pl.when(vague & specific).then(other).otherwise(given)


def band_of(value: pl.Expr) -> pl.Expr:
    """'18-24', '18 to 24', '65+', '65 and over', 'under 10' -> '18-24', '65+', '0-9'."""
    low = value.str.to_lowercase().str.strip_chars()
    span = low.str.extract_groups(r"^(\d{1,3})\s*(?:-|–|to)\s*(\d{1,3})$")
    plus = low.str.extract(r"^(\d{1,3})\s*(?:\+|and over|or over|plus|and above)$", 1)
    under = low.str.extract(r"^(?:under|<)\s*(\d{1,3})$", 1).cast(pl.Int64)
    return (pl.when(span.struct.field("1").is_not_null())
            .then(pl.format("{}-{}", span.struct.field("1").cast(pl.Int64),
                            span.struct.field("2").cast(pl.Int64)))
            .when(plus.is_not_null()).then(pl.format("{}+", plus.cast(pl.Int64)))
            .when(under.is_not_null()).then(pl.format("0-{}", under - 1)))


def normalise(table: Table) -> pl.DataFrame:
    """The raw text columns plus `record` (free text withheld) and parsed `__` columns."""
    _, on, at = date_time(table, "assault")
    _, arrival_on, arrival_at = date_time(table, "arrival")
    sex = raw(table, "sex").str.to_lowercase().replace(GENDER_CODES)
    frame = table.frame
    return frame.with_columns(
        record(table),
        on.alias("__on"), at.alias("__at"),
        arrival_on.alias("__arr_on"), arrival_at.alias("__arr_at"),
        raw(table, "site_code").str.to_uppercase().alias("__site"),
        method_of(table).alias("__method"),
        category(raw(table, "assault_location_type"), LOCATIONS).alias("__loctype"),
        raw(table, "assault_location_description").alias("__text"),
        raw(table, "lsoa_code").str.to_uppercase().alias("__lsoa"),
        raw(table, "easting").cast(pl.Float64, strict=False).alias("__e"),
        raw(table, "northing").cast(pl.Float64, strict=False).alias("__n"),
        pl.coalesce(band_of(raw(table, "age_band")),
                    age_band(parse_age(raw(table, "age")))).alias("__band"),
        parse_sex(sex).alias("__sex"),
        parse_age(raw(table, "age")).alias("__age"),
        raw(table, "person_key").str.strip_chars().str.to_lowercase().alias("__key"),
    ).with_columns(record_id(table).alias("__id"))


def record(table: Table) -> pl.Expr:
    """Each row as JSON for quarantine, with any free text replaced by a marker."""
    free = {table.columns[c] for c in FREE_TEXT if c in table.columns}
    key = table.columns.get("person_key")
    own = [c for c in table.frame.columns if c != "row_number"]

    def shown(c: str) -> pl.Expr:
        if c in free:
            return pl.when(pl.col(c).is_not_null()).then(pl.lit(WITHHELD)).alias(c)
        if c == key:  # a raw identifier sent in place of a key is never kept
            bad = pl.col(c).is_not_null() & ~pl.col(c).str.strip_chars().str.to_lowercase()\
                .str.contains(PERSON_KEY)
            return pl.when(bad).then(pl.lit("[removed]")).otherwise(pl.col(c)).alias(c)
        return pl.col(c)
    return pl.struct([shown(c) for c in own]).struct.json_encode().alias("record")


def record_id(table: Table) -> pl.Expr:
    """The attendance id, else site : arrival (or assault) date and time : row number."""
    when = pl.coalesce(pl.col("__arr_on").dt.combine(pl.col("__arr_at")).dt.strftime(
        "%Y-%m-%dT%H:%M"), pl.col("__arr_on").dt.strftime("%Y-%m-%d"))
    built = pl.format("{}:{}:row{}", pl.col("__site").fill_null("-"), when.fill_null("-"),
                      pl.col("row_number"))
    return pl.coalesce(raw(table, "attendance_id"), built)


# ---------------------------------------------------------------------------------- checks


def checks(table: Table) -> list[Check]:
    grid = {"lsoa_code", "easting", "northing"} & set(table.columns)
    located = [c for c in location_checks(table, pl.col("__lsoa").str.contains(LSOA_FORMAT),
                                          "assault")
               if not c.reason.startswith("no location")] if grid else []
    return (date_checks(table) + arrival_checks(table) + coded_checks(table)
            + person_checks(table) + key_checks(table) + located + [no_location(table)])


def own(table: Table, *canonical: str) -> str:
    """The file's own name for the first of `canonical` it has."""
    return next(table.columns[c] for c in canonical if c in table.columns)


def date_checks(table: Table) -> list[Check]:
    name = own(table, "assault_datetime", "assault_date")
    value, on = date_time(table, "assault")[0], pl.col("__on")
    fix = f"give the date of the assault in '{name}' as dd/mm/yyyy or yyyy-mm-dd (with HH:MM)"
    checks = [
        Check(value.is_null(), "assault_date", "assault date is empty (it is mandatory)", fix,
              NO_RECORD),
        Check(value.is_not_null() & on.is_null(), "assault_date",
              "assault date is not a valid date", fix, value),
        Check(on > date.today(), "assault_date", "assault date is in the future",
              f"check the date in '{name}' (day and month the right way round?)", value),
        Check(on < EARLIEST, "assault_date", "assault date is before 1990",
              f"check the date in '{name}'; a year such as 0024 means it was cut short", value),
    ]
    if "assault_time" in table.columns:
        time = raw(table, "assault_time")
        checks.append(Check(time.is_not_null() & parse_time(time, table.excel).is_null(),
                            "assault_time", "assault time is not a valid time of day",
                            f"give the time in '{table.columns['assault_time']}' as HH:MM "
                            "(24-hour), blank when unknown", time))
    return checks


def arrival_checks(table: Table) -> list[Check]:
    if not {"arrival_datetime", "arrival_date"} & set(table.columns):
        return []
    name = own(table, "arrival_datetime", "arrival_date")
    value = date_time(table, "arrival")[0]
    on, at, arrival_on, arrival_at = (pl.col(c) for c in ("__on", "__at", "__arr_on",
                                                          "__arr_at"))
    later = (pl.when(at.is_not_null() & arrival_at.is_not_null())
             .then(on.dt.combine(at) > arrival_on.dt.combine(arrival_at))
             .otherwise(on > arrival_on)) & (on <= date.today())  # else: 'in the future'
    both = pl.concat_str([date_time(table, "assault")[0], value], separator=" > ")
    checks = [
        Check(value.is_not_null() & arrival_on.is_null(), "arrival_date",
              "arrival date is not a valid date",
              f"give the arrival date and time in '{name}' as dd/mm/yyyy HH:MM", value),
        Check(later, "assault_date", "the assault is dated after the arrival at the ED",
              "check the assault and arrival dates and times (day and month the right way "
              "round?)", both),
    ]
    if "arrival_time" in table.columns:
        time = raw(table, "arrival_time")
        checks.append(Check(time.is_not_null() & parse_time(time, table.excel).is_null(),
                            "arrival_time", "arrival time is not a valid time of day",
                            f"give the time in '{table.columns['arrival_time']}' as HH:MM",
                            time))
    return checks


def coded_checks(table: Table) -> list[Check]:
    """ASSAULT METHOD and ASSAULT LOCATION TYPE are mandatory; unrecognised values load as
    'unknown' (see `value_notes`)."""
    return [
        Check(raw(table, "assault_method").is_null(), "assault_method",
              "assault method is empty (it is mandatory)",
              f"give the method in '{table.columns['assault_method']}' (e.g. knife, fist/feet, "
              "blunt object, bottle/glass, firearm, other, unknown)", NO_RECORD),
        Check(raw(table, "assault_location_type").is_null(), "assault_location_type",
              "assault location type is empty (it is mandatory)",
              f"give the location type in '{table.columns['assault_location_type']}' (e.g. "
              "home, street, pub/club, school, workplace, public transport, other, unknown)",
              NO_RECORD),
    ]


def person_checks(table: Table) -> list[Check]:
    checks = []
    if "age_band" in table.columns:
        value = raw(table, "age_band")
        checks.append(Check(
            value.is_not_null() & band_of(value).is_null()
            & ~value.str.to_lowercase().is_in(AGE_UNKNOWN), "age_band",
            "age band is not a range of years",
            f"give the band in '{table.columns['age_band']}' like 18-24 or 65+, or unknown",
            value))
    if "age" in table.columns:
        value = raw(table, "age")
        checks.append(Check(
            value.is_not_null() & parse_age(value).is_null()
            & ~value.str.to_lowercase().is_in(AGE_UNKNOWN), "age",
            "age is not a whole number of years (0-120)",
            f"give the age in '{table.columns['age']}' in whole years, blank if unknown", value))
    if "sex" in table.columns:
        value = raw(table, "sex")
        checks.append(Check(value.is_not_null() & pl.col("__sex").is_null(), "sex",
                            "sex is not one of male, female, other, unknown",
                            f"give M, F, U (or the NHS codes 1, 2, 9, X) in "
                            f"'{table.columns['sex']}'", value))
    return checks


def key_checks(table: Table) -> list[Check]:
    """A person key, where the file has them, must be a `svduty pseudonymise` token. An empty
    key is allowed: the attendance loads without a person (see `key_notes`)."""
    if "person_key" not in table.columns:
        return []
    return [Check(
        bad_key(), "person_key",
        "not a pseudonymous key (64 lower-case hexadecimal characters from `svduty "
        "pseudonymise`): raw identifiers must never be sent",
        "run `svduty pseudonymise --source ed-istv` on the extract before sending it and send "
        "its output; delete this copy",
        pl.format("[removed: {} characters]", pl.col("__key").str.len_chars()))]


def no_location(table: Table) -> Check:
    return Check(
        pl.col("__text").is_null() & pl.col("__lsoa").is_null() & pl.col("__e").is_null()
        & raw(table, "easting").is_null(), "assault_location_description",
        "no location: the location description, LSOA code and grid reference are all empty",
        "describe where the assault happened (the street, the name of the pub, club, school "
        "or park) in the location description, or give the LSOA code", NO_RECORD)


def duplicates(work: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Rows repeating an attendance id already given on an earlier (loadable) row."""
    if "attendance_id" not in table.columns:
        return empty_quarantine()
    return repeated_rows(work, "__id", "attendance_id", "attendance id",
                         f"give each attendance one row and its own id in "
                         f"'{table.columns['attendance_id']}'; delete the repeated row")


# --------------------------------------------------------------------------------- results


def weapon_of(method: pl.Expr) -> pl.Expr:
    return method.replace_strict({c: w for c, w, _ in METHODS}, default="unknown",
                                 return_dtype=pl.String)


def context_of() -> pl.Expr:
    """'arrival=2024-03-02T01:10; site=RK950; age_band=18-24; sex=male' (known parts)."""
    arrival = pl.coalesce(
        pl.col("__arr_on").dt.combine(pl.col("__arr_at")).dt.strftime("%Y-%m-%dT%H:%M"),
        pl.col("__arr_on").dt.strftime("%Y-%m-%d"))
    parts = [("arrival", arrival), ("site", pl.col("__site")), ("age_band", pl.col("__band")),
             ("sex", pl.col("__sex"))]
    text = pl.concat_str([pl.lit(f"{k}=") + v for k, v in parts], separator="; ",
                         ignore_nulls=True)
    return pl.when(text.str.len_bytes() > 0).then(text)


def to_events(rows: pl.DataFrame) -> pl.DataFrame:
    events = rows.select(
        pl.col("__id").alias("source_record_id"),
        "row_number",
        pl.col("__on").dt.month_start().alias("month"),
        pl.col("__on").alias("occurred_on"),
        pl.col("__on").dt.combine(pl.col("__at"), time_unit="us").alias("occurred_at"),
        pl.col("__lsoa").alias("lsoa_code"),
        pl.col("__e").alias("easting"),
        pl.col("__n").alias("northing"),
        pl.col("__loctype").fill_null("unknown").alias("location_type"),
        pl.col("__method").fill_null("unknown").alias("source_category"),
        weapon_of(pl.col("__method").fill_null("unknown")).alias("weapon"),
        context_of().alias("context"),
    )
    return conform(events, EVENT_COLUMNS)


def patients(rows: pl.DataFrame) -> pl.DataFrame:
    """One involvement per attendance: the patient, a victim of assault. The person key is
    present only in person-level files received under a recorded lawful gateway."""
    return conform(rows.select(
        pl.col("__id").alias("source_record_id"),
        "row_number",
        pl.col("__key").alias("person_key"),
        pl.lit("victim").alias("role"),
        pl.col("__age").alias("age"),
        pl.coalesce("__band", age_band(pl.col("__age"))).alias("age_band"),
        pl.col("__sex").alias("sex"),
    ), INVOLVEMENT_COLUMNS)


def tokens_of(rows: pl.DataFrame, table: Table) -> pl.DataFrame | None:
    """Linkage tokens of person-level files (none for anonymised files)."""
    if "person_key" not in table.columns:
        return None
    return person_tokens(rows.with_columns(pl.col("__key").alias("person_key")), table.columns)


def key_notes(rows: pl.DataFrame, table: Table) -> list[str]:
    if "person_key" not in table.columns:
        return []
    keyed = rows.filter(pl.col("__key").is_not_null()).height
    return [f"person-level file: {keyed:,} of {rows.height:,} attendances carry a person key "
            "(the rest load without one)"]


def file_period(rows: pl.DataFrame, work: pl.DataFrame) -> tuple[date, date]:
    """The months of arrival (the attendances the file reports), else of the assaults."""
    when = pl.coalesce("__arr_on", "__on")
    return period_of(rows.select(when.dt.month_start()).to_series(),
                     work.select(when).to_series())


def scope_of(rows: pl.DataFrame) -> str | None:
    """The site code(s) of the loaded rows, so two EDs' files never supersede each other."""
    sites = sorted(rows.get_column("__site").drop_nulls().unique().to_list())
    return "+".join(sites) or None


def value_notes(rows: pl.DataFrame) -> list[str]:
    """Counts (never the values) of methods and location types not recognised."""
    notes = []
    for column, what in (("__method", "assault methods"), ("__loctype", "location types")):
        unknown = rows.filter(pl.col(column).is_null()).height
        if unknown:
            notes.append(f"{unknown:,} {what} were not recognised and are loaded as 'unknown'")
    return notes
