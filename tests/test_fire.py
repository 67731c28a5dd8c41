"""The fire and rescue incidents reader: generated extracts (CSV, gzip, XLSX), column-name
variants, incident-type spellings, every row problem and file problem, and one ingest."""

from __future__ import annotations

import gzip
import random
from datetime import date, datetime, time
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from svduty.sources import get_source
from svduty.sources.base import EVENT_COLUMNS, FileError, Parsed
from svduty.sources.contract import contract_problems
from svduty.sources.fire import SPEC, TYPES, Fire
from svduty.sources.ingest import ingest

from .test_ingest import plymouth, query  # noqa: F401 - `plymouth` is a fixture

DOCS = Path(__file__).resolve().parents[1] / "docs" / "data-formats.md"
# Real LSOA 2011 codes in Plymouth (E06000026).
LSOAS = ["E01015023", "E01015024", "E01015025", "E01015165", "E01015147", "E01015143"]
WRITTEN_TYPES = ["Primary fire - deliberate", "Secondary (deliberate)", "Violence to staff",
                 "Attack on firefighters", "Deliberate primary fire", "Other"]
PROPERTIES = ["Car", "Wheelie bin", "Dwelling", "Grassland", "Non-residential", "Refuse"]


def incident(i: int, rng: random.Random, grid_only: bool = False) -> dict[str, str]:
    day = date.fromordinal(date(2024, 1, 1).toordinal() + rng.randrange(366))
    grid = not grid_only and i % 3 == 0
    return {
        "incident_id": f"DSFRS/{240000 + i}",
        "incident_date": day.strftime("%d/%m/%Y"),
        "incident_time": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}",
        "incident_type": WRITTEN_TYPES[i % len(WRITTEN_TYPES)],
        "property_type": PROPERTIES[rng.randrange(len(PROPERTIES))],
        "lsoa_code": "" if grid_only else LSOAS[i % len(LSOAS)],
        "easting": str(rng.randrange(247_000, 250_000)) if grid or grid_only else "",
        "northing": str(rng.randrange(54_000, 57_000)) if grid or grid_only else "",
        "casualties": str(rng.choice([0, 0, 0, 1, 2])),
    }


def extract(n: int = 60, seed: int = 3, grid_only: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [incident(i, rng, grid_only=i < grid_only) for i in range(n)]


def write_csv(tmp_path: Path, rows: list[dict[str, str]], name: str = "fire.csv",
              rename: dict[str, str] | None = None) -> Path:
    path = tmp_path / name
    data = pl.DataFrame(rows, schema={c: pl.String for c in rows[0]}).rename(
        rename or {}).write_csv()
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data, "utf-8")
    return path


def write_xlsx(tmp_path: Path, rows: list[dict[str, str]], name: str = "fire.xlsx",
               above: list[list[str]] | None = None) -> Path:
    """An Excel workbook with real date, time and number cells."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Incidents"
    for line in above or []:
        ws.append(line)
    ws.append(list(rows[0]))
    for row in rows:
        ws.append([cell(k, v) for k, v in row.items()])
    path = tmp_path / name
    book.save(path)
    return path


def cell(column: str, value: str) -> object:
    if not value:
        return None
    if column == "incident_date":
        return datetime.strptime(value, "%d/%m/%Y")
    if column == "incident_time":
        return time.fromisoformat(value)
    if column in ("easting", "northing", "casualties"):
        return int(value)
    return value


def reconciles(parsed: Parsed) -> None:
    loaded = set(parsed.events["row_number"])
    quarantined = set(parsed.quarantine["row_number"])
    assert not loaded & quarantined
    assert loaded | quarantined == set(range(2, parsed.rows_read + 2))


# ------------------------------------------------------------------------- good extracts


def test_reads_a_realistic_csv_extract(tmp_path):
    rows = extract()
    parsed = Fire().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.rows_read == parsed.events.height == len(rows)
    reconciles(parsed)
    assert contract_problems(parsed.events, None) == []
    assert parsed.events.columns == list(EVENT_COLUMNS)
    assert set(parsed.events["source_category"]) == set(TYPES)
    first = parsed.events.row(0, named=True)
    assert first["source_record_id"] == "DSFRS/240000" and first["row_number"] == 2
    assert first["source_category"] == "deliberate primary fire"
    assert first["lsoa_code"] == "E01015023" and first["easting"] is not None
    assert first["occurred_on"].strftime("%d/%m/%Y") == rows[0]["incident_date"]
    assert first["occurred_at"].strftime("%H:%M") == rows[0]["incident_time"]
    assert first["month"] == first["occurred_on"].replace(day=1)
    assert first["location_type"] == rows[0]["property_type"]
    assert first["context"] == f"casualties={rows[0]['casualties']}"
    assert first["weapon"] is None and first["outcome"] is None
    assert parsed.period[0] >= date(2024, 1, 1) and parsed.period[1] <= date(2024, 12, 31)


def test_xlsx_with_real_cells_reads_as_the_csv(tmp_path):
    rows = extract(40)
    from_csv = Fire().read(write_csv(tmp_path, rows))
    from_xlsx = Fire().read(write_xlsx(tmp_path, rows))
    assert from_xlsx.quarantine.height == 0
    assert from_xlsx.events.equals(from_csv.events)


def test_gzipped_csv(tmp_path):
    rows = extract(30)
    parsed = Fire().read(write_csv(tmp_path, rows, name="fire.csv.gz"))
    assert parsed.events.height == 30


def test_column_name_variants(tmp_path):
    rows = extract(30)
    expected = Fire().read(write_csv(tmp_path, rows))
    parsed = Fire().read(write_csv(tmp_path, rows, name="v.csv", rename={
        "incident_id": "IRS ID", "incident_date": "Date of Call", "incident_time": "Time",
        "incident_type": "Incident Category", "property_type": "Property Category",
        "lsoa_code": "LSOA11CD", "easting": "Eastings", "northing": "Northings",
        "casualties": "Number of Casualties"}))
    assert parsed.events.equals(expected.events)
    assert any(n.startswith("columns read:") for n in parsed.notes)


@pytest.mark.parametrize(("written", "normalised"), [
    ("Primary fire - deliberate", "deliberate primary fire"),
    ("PRIMARY FIRE (DELIBERATE)", "deliberate primary fire"),
    ("Secondary (deliberate)", "deliberate secondary fire"),
    ("Deliberate secondary fire", "deliberate secondary fire"),
    ("Violence to staff", "attack on crew"),
    ("Attack on firefighters", "attack on crew"),
    ("attack on crew", "attack on crew"),
    ("Other", "other"),
])
def test_incident_type_spellings(tmp_path, written, normalised):
    rows = extract(2)
    rows[0]["incident_type"] = written
    parsed = Fire().read(write_csv(tmp_path, rows))
    assert parsed.events["source_category"][0] == normalised


def test_lsoa_only_file_and_no_casualties_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("easting", "northing", "casualties")}
            for r in extract(10)]
    parsed = Fire().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0 and parsed.events["context"].null_count() == 10


# -------------------------------------------------------------------------- row problems

ROW_PROBLEMS = [
    ("incident_id", "", "incident_id", None, "incident id is empty"),
    ("incident_date", "31/02/2024", "incident_date", "31/02/2024", "not a valid date"),
    ("incident_date", "", "incident_date", None, "incident date is empty"),
    ("incident_date", "01/01/2099", "incident_date", "01/01/2099", "in the future"),
    ("incident_date", "01/01/0024", "incident_date", "01/01/0024", "before 1990"),
    ("incident_time", "25:99", "incident_time", "25:99", "not a valid time"),
    ("incident_type", "Primary fire - accidental", "incident_type",
     "Primary fire - accidental", "deliberate primary fire, deliberate secondary fire, "
     "attack on crew, other"),
    ("incident_type", "", "incident_type", None, "incident type is empty"),
    ("lsoa_code", "Plymouth 001A", "lsoa_code", "Plymouth 001A",
     "not an England or Wales LSOA code"),
    ("easting", "-50.14", "easting", "-50.14,55000", "outside Great Britain"),
    ("easting", "abc", "easting", "abc", "easting is not a number"),
    ("casualties", "-1", "casualties", "-1", "not a whole number"),
    ("casualties", "two", "casualties", "two", "not a whole number"),
    ("casualties", "1.5", "casualties", "1.5", "not a whole number"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ROW_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ROW_PROBLEMS])
def test_row_problem_is_quarantined_with_column_value_reason_and_fix(
        tmp_path, changed, written, column, value, reason):
    rows = extract(3)
    rows[1] = {**rows[1], "easting": "248000", "northing": "55000", changed: written}
    parsed = Fire().read(write_csv(tmp_path, rows))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert line["column"] == column and line["value"] == value
    assert reason in line["reason"], line["reason"]
    assert line["fix"]
    assert line["record"].startswith("{") and '"incident_id"' in line["record"]
    assert parsed.events["row_number"].to_list() == [2, 4]
    reconciles(parsed)


def test_no_location(tmp_path):
    rows = extract(3)
    rows[1] |= {"lsoa_code": "", "easting": "", "northing": ""}
    parsed = Fire().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert line["row_number"] == 3 and line["column"] == "lsoa_code"
    assert "no location" in line["reason"]
    reconciles(parsed)


def test_incomplete_grid_reference(tmp_path):
    rows = extract(3)
    rows[1] |= {"lsoa_code": "", "easting": "248000", "northing": ""}
    parsed = Fire().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert line["column"] == "easting" and "incomplete" in line["reason"]


def test_duplicate_incident_id(tmp_path):
    rows = extract(4)
    rows[2]["incident_id"] = rows[0]["incident_id"]
    parsed = Fire().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert (line["row_number"], line["column"], line["value"]) == (4, "incident_id",
                                                                   "DSFRS/240000")
    assert line["reason"] == "incident id is already given on row 2"
    assert "delete the repeated row" in line["fix"]
    reconciles(parsed)


def test_duplicate_of_a_bad_row_is_loaded(tmp_path):
    """A corrected copy below a bad row is loaded; the bad row alone is quarantined."""
    rows = extract(3)
    rows[2] = {**rows[0]}
    rows[0]["incident_date"] = "not a date"
    parsed = Fire().read(write_csv(tmp_path, rows))
    assert parsed.quarantine["row_number"].to_list() == [2]
    assert parsed.events["row_number"].to_list() == [3, 4]


def test_several_problems_in_one_row_give_several_lines(tmp_path):
    rows = extract(3)
    rows[1] |= {"incident_date": "yesterday", "incident_type": "Chimney fire"}
    parsed = Fire().read(write_csv(tmp_path, rows))
    assert sorted(parsed.quarantine["column"]) == ["incident_date", "incident_type"]
    reconciles(parsed)


def test_file_with_no_good_rows_is_all_quarantined(tmp_path):
    rows = extract(5)
    for r in rows:
        r["incident_type"] = "Road traffic collision"
    parsed = Fire().read(write_csv(tmp_path, rows))
    assert parsed.events.height == 0 and parsed.quarantine.height == 5
    reconciles(parsed)


def test_reconciles_with_many_mixed_problems(tmp_path):
    rows = extract(200, seed=9)
    rng = random.Random(1)
    for r in rng.sample(rows, 40):
        field, bad = rng.choice([("incident_date", "32/13/2024"), ("incident_type", "Flood"),
                                 ("lsoa_code", "X"), ("casualties", "many"),
                                 ("incident_id", rows[0]["incident_id"])])
        r[field] = bad
    parsed = Fire().read(write_csv(tmp_path, rows))
    assert parsed.events.height + parsed.quarantine["row_number"].n_unique() == 200
    reconciles(parsed)


# -------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> str:
    with pytest.raises(FileError) as info:
        Fire().read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ")
    assert "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_empty_file(tmp_path):
    path = tmp_path / "fire.csv"
    path.write_bytes(b"")
    raises(path, "the file is empty")


def test_header_only(tmp_path):
    path = tmp_path / "fire.csv"
    path.write_text(",".join(SPEC) + "\n")
    raises(path, "header but no data rows", "one row per incident")


def test_missing_required_columns_with_suggestion(tmp_path):
    rows = [{("Incidnt Type" if k == "incident_type" else k): v for k, v in r.items()
             if k != "incident_id"} for r in extract(3)]
    raises(write_csv(tmp_path, rows), "required column(s) missing: incident_id, incident_type",
           "did you mean 'Incidnt Type'")


def test_missing_location_columns(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("lsoa_code", "northing")}
            for r in extract(3)]
    raises(write_csv(tmp_path, rows), "no location columns (found only easting)",
           "easting and northing")


def test_identifier_columns_refuse_the_file(tmp_path):
    rows = [r | {"Surname": "Bloggs", "DOB": "01/01/1990"} for r in extract(2)]
    raises(write_csv(tmp_path, rows), "identify people directly (Surname, DOB)",
           "raw identifiers must never be sent", "incident columns only")


def test_not_utf8(tmp_path):
    rows = extract(3)
    rows[1]["property_type"] = "Caf\xe9"
    path = tmp_path / "fire.csv"
    path.write_bytes(pl.DataFrame(rows).write_csv().encode("cp1252"))
    raises(path, "not UTF-8", "line 3", "CSV UTF-8")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "fire.csv.gz"
    path.write_bytes(gzip.compress(pl.DataFrame(extract(80)).write_csv().encode())[:-40])
    raises(path, "gzip file is truncated or corrupt")


def test_ragged_csv(tmp_path):
    path = tmp_path / "fire.csv"
    text = pl.DataFrame(extract(5)).write_csv().splitlines()
    text[2] += ",extra"
    path.write_text("\n".join(text) + "\n")
    raises(path, "line 3 has 10 fields but the header has 9")


def test_xlsx_with_notes_above_the_table(tmp_path):
    path = write_xlsx(tmp_path, extract(3), above=[
        ["Devon & Somerset FRS: deliberate fires"], ["Run 02/04/2025"], []])
    raises(path, "the table must start in row 1: found the header on row 4",
           "one incident per row below")


def test_docs_list_every_column_and_variant():
    text = DOCS.read_text().lower()
    assert "## 4. fire and rescue incidents (`fire`)" in text
    section = text.split("## 4. fire and rescue incidents")[1]
    for canonical, column in SPEC.items():
        assert f"`{canonical}`" in section, canonical
        for alias in column.aliases:
            assert alias in section, alias


# -------------------------------------------------------------------------------- ingest


def test_fire_extract_ingests_geocodes_grid_rows_and_marks_in_area(plymouth, tmp_path):  # noqa: F811
    rows = extract(60, seed=4, grid_only=10)
    rows[20]["incident_type"] = "Chimney fire"
    [result] = ingest(plymouth, get_source("fire"), [write_csv(tmp_path, rows)],
                      partner="Devon & Somerset Fire and Rescue Service")
    assert result.status == "loaded", result.message
    assert result.rows_read == 60 == result.rows_loaded + result.rows_quarantined
    assert result.rows_quarantined == 1
    grid_only = query(plymouth.root, """SELECT count(*), count(lsoa_code), count(lsoa21_code)
        FROM events WHERE source_record_id IN (SELECT 'DSFRS/' || (240000 + i)
        FROM range(10) t(i))""")
    assert grid_only == [(10, 10, 10)]
    in_area = query(plymouth.root, "SELECT in_area, count(*) FROM events GROUP BY ALL")
    assert in_area == [(True, 59)]
    categories = {r[0] for r in query(plymouth.root,
                                      "SELECT DISTINCT source_category FROM events")}
    assert categories <= set(TYPES)
