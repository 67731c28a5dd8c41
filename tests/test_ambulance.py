"""The ambulance call-outs reader: generated CAD extracts (CSV, gzip, XLSX), column-name
variants, chief complaint, category and age spellings, every row problem and file problem,
and ingest (reconciliation, re-ingest, superseding)."""

from __future__ import annotations

import gzip
import random
from datetime import date, datetime, time
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from svduty.sources import get_source
from svduty.sources.ambulance import AGE_BANDS, CATEGORIES, SPEC, Ambulance
from svduty.sources.base import EVENT_COLUMNS, WEAPONS, FileError, Parsed
from svduty.sources.contract import contract_problems
from svduty.sources.ingest import ingest

from .test_ingest import plymouth, query  # noqa: F401 - `plymouth` is a fixture

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources" / "ambulance.md"
TRUST = "South Western Ambulance Service NHS Foundation Trust"
# Real LSOA 2011 codes in Plymouth (E06000026).
LSOAS = ["E01015023", "E01015024", "E01015025", "E01015165", "E01015147", "E01015143"]
COMPLAINTS = ["04D01A", "Assault/Sexual assault", "Stab/Gunshot/Penetrating trauma",
              "Assault - knife", "27D03G", "Sexual assault", "27B01S", "Other"]
CATEGORY_SPELLINGS = ["Cat 1", "C2", "Category 3", "C4", "2", "C1T"]
AGES = ["18-24", "25", "65+", "35-44", "16", "unknown", ""]
PLACES = ["Street", "Home", "Licensed premises", "Public place", "Transport hub"]


def callout(i: int, rng: random.Random, grid_only: bool = False) -> dict[str, str]:
    day = date.fromordinal(date(2024, 1, 2).toordinal() + rng.randrange(363))
    day = {0: date(2024, 1, 2), 1: date(2024, 12, 30)}.get(i, day)  # the same period always
    grid = not grid_only and i % 3 == 0
    return {
        "incident_id": f"CAD{2400000 + i}",
        "call_date": day.strftime("%d/%m/%Y"),
        "call_time": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}",
        "category": CATEGORY_SPELLINGS[i % len(CATEGORY_SPELLINGS)],
        "chief_complaint": COMPLAINTS[i % len(COMPLAINTS)],
        "age_band": AGES[i % len(AGES)],
        "sex": rng.choice(["M", "M", "F", "Unknown"]),
        "lsoa_code": "" if grid_only else LSOAS[i % len(LSOAS)],
        "easting": str(rng.randrange(247_000, 250_000)) if grid or grid_only else "",
        "northing": str(rng.randrange(54_000, 57_000)) if grid or grid_only else "",
        "location_type": rng.choice(PLACES),
        "conveyed": rng.choice(["Y", "N"]),
    }


def extract(n: int = 60, seed: int = 3, grid_only: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [callout(i, rng, grid_only=i < grid_only) for i in range(n)]


def write_csv(tmp_path: Path, rows: list[dict[str, str]], name: str = "ambulance.csv",
              rename: dict[str, str] | None = None) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = pl.DataFrame(rows, schema={c: pl.String for c in rows[0]}).rename(
        rename or {}).write_csv()
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data, "utf-8")
    return path


def write_xlsx(tmp_path: Path, rows: list[dict[str, str]], name: str = "ambulance.xlsx",
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
    if column == "call_date":
        return datetime.strptime(value, "%d/%m/%Y")
    if column == "call_time":
        return time.fromisoformat(value)
    if column in ("easting", "northing") or (column == "age_band" and value.isdigit()):
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
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.rows_read == parsed.events.height == len(rows)
    reconciles(parsed)
    assert contract_problems(parsed.events, None) == []
    assert parsed.events.columns == list(EVENT_COLUMNS)
    assert set(parsed.events["source_category"]) == set(CATEGORIES)
    assert set(parsed.events["weapon"]) <= set(WEAPONS)
    first = parsed.events.row(0, named=True)
    assert first["source_record_id"] == "CAD2400000" and first["row_number"] == 2
    assert (first["source_category"], first["weapon"]) == ("assault", "unknown")
    assert first["lsoa_code"] == "E01015023" and first["easting"] is not None
    assert first["occurred_on"] == date(2024, 1, 2)
    assert first["occurred_at"].strftime("%H:%M") == rows[0]["call_time"]
    assert first["month"] == date(2024, 1, 1)
    assert first["location_type"] == rows[0]["location_type"]
    sex = {"M": "male", "F": "female", "Unknown": "unknown"}[rows[0]["sex"]]
    conveyed = {"Y": "yes", "N": "no"}[rows[0]["conveyed"]]
    assert first["context"] == f"category=C1; age_band=18-24; sex={sex}; conveyed={conveyed}"
    assert parsed.period == (date(2024, 1, 1), date(2024, 12, 31))


def test_weapons_follow_the_complaint(tmp_path):
    parsed = Ambulance().read(write_csv(tmp_path, extract(8)))
    pairs = list(zip(parsed.events["source_category"], parsed.events["weapon"], strict=True))
    assert pairs == [
        ("assault", "unknown"), ("assault", "unknown"), ("stab or penetrating wound", "unknown"),
        ("assault", "knife or sharp"), ("gunshot wound", "firearm"),
        ("sexual assault", "unknown"), ("stab or penetrating wound", "knife or sharp"),
        ("other", "unknown")]


def test_xlsx_with_real_cells_reads_as_the_csv(tmp_path):
    rows = extract(40)
    from_csv = Ambulance().read(write_csv(tmp_path, rows))
    from_xlsx = Ambulance().read(write_xlsx(tmp_path, rows))
    assert from_xlsx.quarantine.height == 0
    assert from_xlsx.events.equals(from_csv.events)


def test_gzipped_csv(tmp_path):
    parsed = Ambulance().read(write_csv(tmp_path, extract(30), name="ambulance.csv.gz"))
    assert parsed.events.height == 30 and parsed.quarantine.height == 0


def test_column_name_variants(tmp_path):
    rows = extract(30)
    expected = Ambulance().read(write_csv(tmp_path, rows))
    parsed = Ambulance().read(write_csv(tmp_path, rows, name="v.csv", rename={
        "incident_id": "CAD Number", "call_date": "Date of Call", "call_time": "Time of Call",
        "category": "Response Category", "chief_complaint": "AMPDS Determinant",
        "age_band": "Patient Age", "sex": "Gender", "lsoa_code": "LSOA21CD",
        "easting": "Eastings", "northing": "Northings",
        "location_type": "Location Category", "conveyed": "Conveyed to Hospital"}))
    assert parsed.events.equals(expected.events)
    assert any(n.startswith("columns read:") for n in parsed.notes)


def test_combined_date_time_column(tmp_path):
    rows = [{"Job Number": "J1", "Call Received": "05/03/2024 14:22:10",
             "Nature of Call": "Stabbing", "LSOA": "E01015023"},
            {"Job Number": "J2", "Call Received": "2024-03-06T01:05",
             "Nature of Call": "Gunshot wound", "LSOA": "E01015024"}]
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.events["occurred_at"].to_list() == [datetime(2024, 3, 5, 14, 22, 10),
                                                      datetime(2024, 3, 6, 1, 5)]
    assert parsed.events["context"].to_list() == [None, None]


def test_blank_time_falls_back_to_the_time_in_the_date(tmp_path):
    rows = extract(2)
    rows[0] |= {"call_date": "02/01/2024 23:59", "call_time": ""}
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.events["occurred_at"][0] == datetime(2024, 1, 2, 23, 59)


@pytest.mark.parametrize(("written", "category", "weapon"), [
    ("04D01", "assault", "unknown"),
    ("4-D-1", "assault", "unknown"),
    ("04B01S", "sexual assault", "unknown"),
    ("04D01T", "assault", "other"),
    ("27B01", "stab or penetrating wound", "unknown"),
    ("27D03S", "stab or penetrating wound", "knife or sharp"),
    ("27D04G", "gunshot wound", "firearm"),
    ("27B01P Penetrating trauma", "stab or penetrating wound", "unknown"),
    ("Assault/Sexual assault", "assault", "unknown"),
    ("ASSAULT - KNIFE", "assault", "knife or sharp"),
    ("Stab wound", "stab or penetrating wound", "knife or sharp"),
    ("Stab/Gunshot/Penetrating trauma", "stab or penetrating wound", "unknown"),
    ("Gunshot wound", "gunshot wound", "firearm"),
    ("Assault with firearm", "assault", "firearm"),
    ("Sexual assault", "sexual assault", "unknown"),
    ("Rape", "sexual assault", "unknown"),
    ("Other", "other", "unknown"),
])
def test_chief_complaint_spellings(tmp_path, written, category, weapon):
    rows = extract(2)
    rows[0]["chief_complaint"] = written
    event = Ambulance().read(write_csv(tmp_path, rows)).events.row(0, named=True)
    assert (event["source_category"], event["weapon"]) == (category, weapon)


@pytest.mark.parametrize(("written", "band"), [
    ("0", "0-9"), ("9", "0-9"), ("Under 10", "0-9"), ("10-17", "10-17"), ("16-17", "10-17"),
    ("17", "10-17"), ("18 - 24", "18-24"), ("18 to 24", "18-24"), ("25.0", "25-34"),
    ("35-44", "35-44"), ("45-54", "45-54"), ("55-64", "55-64"), ("65+", "65+"),
    ("85+", "65+"), ("70-79", "65+"), ("65 and over", "65+"), ("120", "65+"),
])
def test_age_bands(tmp_path, written, band):
    rows = extract(2)
    rows[0]["age_band"] = written
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert f"age_band={band};" in parsed.events["context"][0]
    assert band in AGE_BANDS


@pytest.mark.parametrize(("written", "normalised"), [
    ("Cat 1", "C1"), ("C1", "C1"), ("Category 1", "C1"), ("CAT2", "C2"), ("3", "C3"),
    ("C1T", "C1"), ("Category 2 - Emergency", "C2"), ("c4", "C4")])
def test_response_category_spellings(tmp_path, written, normalised):
    rows = extract(2)
    rows[0]["category"] = written
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.events["context"][0].startswith(f"category={normalised};")


def test_unknown_details_are_left_out_of_the_context(tmp_path):
    rows = extract(2)
    rows[0] |= {"category": "", "age_band": "Not known", "sex": "", "conveyed": "unknown"}
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0 and parsed.events["context"][0] is None


def test_lsoa_only_file_without_optional_columns(tmp_path):
    keep = ("incident_id", "call_date", "chief_complaint", "lsoa_code")
    rows = [{k: v for k, v in r.items() if k in keep} for r in extract(10)]
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0 and parsed.events["context"].null_count() == 10
    assert parsed.events["occurred_at"].null_count() == 10


# -------------------------------------------------------------------------- row problems

ROW_PROBLEMS = [
    ("incident_id", "", "incident_id", None, "incident id is empty"),
    ("call_date", "31/02/2024", "call_date", "31/02/2024", "not a valid date"),
    ("call_date", "", "call_date", None, "call date is empty"),
    ("call_date", "01/01/2099", "call_date", "01/01/2099", "in the future"),
    ("call_date", "01/01/0024", "call_date", "01/01/0024", "before 1990"),
    ("call_time", "25:99", "call_time", "25:99", "not a valid time"),
    ("chief_complaint", "Falls", "chief_complaint", "Falls",
     "assault, stab or penetrating wound, gunshot wound, sexual assault, other"),
    ("chief_complaint", "17A01", "chief_complaint", "17A01", "not assault-related"),
    ("chief_complaint", "", "chief_complaint", None, "chief complaint is empty"),
    ("age_band", "15-19", "age_band", "15-19", "nor an age band"),
    ("age_band", "130", "age_band", "130", "not a whole number of years"),
    ("age_band", "adult", "age_band", "adult", "not a whole number of years"),
    ("sex", "Q", "sex", "Q", "sex is not one of the accepted values"),
    ("category", "C5", "category", "C5", "not C1, C2, C3 or C4"),
    ("conveyed", "maybe", "conveyed", "maybe", "conveyed is not Y or N"),
    ("lsoa_code", "Plymouth 001A", "lsoa_code", "Plymouth 001A",
     "not an England or Wales LSOA code"),
    ("easting", "-50.14", "easting", "-50.14,55000", "outside Great Britain"),
    ("easting", "abc", "easting", "abc", "easting is not a number"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ROW_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ROW_PROBLEMS])
def test_row_problem_is_quarantined_with_column_value_reason_and_fix(
        tmp_path, changed, written, column, value, reason):
    rows = extract(3)
    rows[1] = {**rows[1], "easting": "248000", "northing": "55000", changed: written}
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert line["column"] == column and line["value"] == value
    assert reason in line["reason"], line["reason"]
    assert line["fix"]
    assert line["record"].startswith("{") and '"incident_id"' in line["record"]
    assert parsed.events["row_number"].to_list() == [2, 4]
    reconciles(parsed)


def test_fixes_name_the_accepted_values(tmp_path):
    rows = extract(3)
    rows[1] |= {"chief_complaint": "Chest pain", "age_band": "15-19"}
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    fixes = dict(zip(parsed.quarantine["column"], parsed.quarantine["fix"], strict=True))
    assert "04D01" in fixes["chief_complaint"] and "'chief_complaint'" in fixes["chief_complaint"]
    assert ", ".join(AGE_BANDS) in fixes["age_band"]


def test_no_location(tmp_path):
    rows = extract(3)
    rows[1] |= {"lsoa_code": "", "easting": "", "northing": ""}
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert line["row_number"] == 3 and line["column"] == "lsoa_code"
    assert "no location" in line["reason"]
    reconciles(parsed)


def test_incomplete_grid_reference(tmp_path):
    rows = extract(3)
    rows[1] |= {"lsoa_code": "", "easting": "248000", "northing": ""}
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert line["column"] == "easting" and "incomplete" in line["reason"]


def test_duplicate_incident_id(tmp_path):
    rows = extract(4)
    rows[2]["incident_id"] = rows[0]["incident_id"]
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert (line["row_number"], line["column"], line["value"]) == (4, "incident_id",
                                                                   "CAD2400000")
    assert line["reason"] == "incident id is already given on row 2"
    assert "delete the repeated row" in line["fix"]
    reconciles(parsed)


def test_duplicate_of_a_bad_row_is_loaded(tmp_path):
    """A corrected copy below a bad row is loaded; the bad row alone is quarantined."""
    rows = extract(3)
    rows[2] = {**rows[0]}
    rows[0]["call_date"] = "not a date"
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.quarantine["row_number"].to_list() == [2]
    assert parsed.events["row_number"].to_list() == [3, 4]


def test_several_problems_in_one_row_give_several_lines(tmp_path):
    rows = extract(3)
    rows[1] |= {"call_date": "yesterday", "chief_complaint": "Breathing problems"}
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert sorted(parsed.quarantine["column"]) == ["call_date", "chief_complaint"]
    reconciles(parsed)


def test_reconciles_with_many_mixed_problems(tmp_path):
    rows = extract(200, seed=9)
    rng = random.Random(1)
    for r in rng.sample(rows, 40):
        field, bad = rng.choice([("call_date", "32/13/2024"), ("chief_complaint", "Fall"),
                                 ("lsoa_code", "X"), ("age_band", "teen"), ("sex", "?"),
                                 ("incident_id", rows[0]["incident_id"])])
        r[field] = bad
    parsed = Ambulance().read(write_csv(tmp_path, rows))
    assert parsed.events.height + parsed.quarantine["row_number"].n_unique() == 200
    reconciles(parsed)


# -------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> str:
    with pytest.raises(FileError) as info:
        Ambulance().read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ")
    assert "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_empty_file(tmp_path):
    path = tmp_path / "ambulance.csv"
    path.write_bytes(b"")
    raises(path, "the file is empty")


def test_header_only(tmp_path):
    path = tmp_path / "ambulance.csv"
    path.write_text(",".join(SPEC) + "\n")
    raises(path, "header but no data rows", "one row per incident")


def test_wrong_columns_with_suggestion(tmp_path):
    rows = [{("Chief Complant" if k == "chief_complaint" else k): v for k, v in r.items()
             if k != "incident_id"} for r in extract(3)]
    raises(write_csv(tmp_path, rows),
           "required column(s) missing: incident_id, chief_complaint",
           "did you mean 'Chief Complant'")


def test_a_different_file_altogether(tmp_path):
    path = tmp_path / "ambulance.csv"
    path.write_text("Month,Reported by,Crime type\n2024-01,Devon & Cornwall,Robbery\n")
    raises(path, "required column(s) missing: incident_id, call_date, chief_complaint")


def test_missing_location_columns(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("lsoa_code", "northing")}
            for r in extract(3)]
    raises(write_csv(tmp_path, rows), "no location columns (found only easting)",
           "easting and northing")


@pytest.mark.parametrize("column", ["Patient Name", "Surname", "DOB", "NHS Number",
                                    "Patient Date of Birth", "Caller Phone"])
def test_identifying_columns_refuse_the_file(tmp_path, column):
    rows = [r | {column: "x"} for r in extract(2)]
    raises(write_csv(tmp_path, rows), f"identify people directly ({column})",
           "raw identifiers must never be sent", "no patient or caller details")


def test_not_utf8(tmp_path):
    rows = extract(3)
    rows[1]["location_type"] = "Caf\xe9"
    path = tmp_path / "ambulance.csv"
    path.write_bytes(pl.DataFrame(rows).write_csv().encode("cp1252"))
    raises(path, "not UTF-8", "line 3", "CSV UTF-8")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "ambulance.csv.gz"
    path.write_bytes(gzip.compress(pl.DataFrame(extract(80)).write_csv().encode())[:-40])
    raises(path, "gzip file is truncated or corrupt")


def test_xlsx_with_notes_above_the_table(tmp_path):
    path = write_xlsx(tmp_path, extract(3), above=[
        ["SWASFT: assault-related incidents"], ["Run 02/04/2025"], []])
    raises(path, "the table must start in row 1: found the header on row 4")


@pytest.mark.parametrize("problem", ["empty", "identifier", "not utf-8"])
def test_rejected_file_loads_nothing(plymouth, tmp_path, problem):  # noqa: F811
    path = tmp_path / "ambulance.csv"
    if problem == "empty":
        path.write_bytes(b"")
    elif problem == "identifier":
        path = write_csv(tmp_path, [r | {"Patient Name": "A Person"} for r in extract(3)])
    else:
        rows = extract(3)
        rows[1]["location_type"] = "Caf\xe9"
        path.write_bytes(pl.DataFrame(rows).write_csv().encode("cp1252"))
    [result] = ingest(plymouth, get_source("ambulance"), [path], partner=TRUST)
    assert result.status == "rejected" and result.message.count("Expected: ") == 1
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(0,)]
    assert query(plymouth.root, "SELECT count(*) FROM loads WHERE status = 'active'") == [(0,)]


def test_docs_list_every_column_variant_and_category():
    text = DOCS.read_text().lower()
    for canonical, column in SPEC.items():
        assert f"`{canonical}`" in text, canonical
        for alias in column.aliases:
            assert alias in text, alias
    for value in (*CATEGORIES, *AGE_BANDS):
        assert f"`{value}`" in text, value


# -------------------------------------------------------------------------------- ingest


def test_ingest_reconciles_is_idempotent_and_superseded(plymouth, tmp_path):  # noqa: F811
    source = get_source("ambulance")
    rows = extract(60, seed=4, grid_only=10)
    rows[20]["chief_complaint"] = "Chest pain"
    [first] = ingest(plymouth, source, [write_csv(tmp_path, rows)], partner=TRUST)
    assert first.status == "loaded", first.message
    assert first.rows_read == 60 == first.rows_loaded + first.rows_quarantined
    assert first.rows_quarantined == 1
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(59,)]
    assert query(plymouth.root, "SELECT count(*), count(lsoa21_code) FROM events WHERE "
                                "source_record_id < 'CAD2400010'") == [(10, 10)]
    assert query(plymouth.root, "SELECT in_area, count(*) FROM events GROUP BY ALL") == [
        (True, 59)]

    before = query(plymouth.root, "SELECT count(*), sum(hash(event_id)) FROM events")
    [again] = ingest(plymouth, source, [tmp_path / "ambulance.csv"], partner=TRUST)
    assert again.status == "skipped", again.message
    assert query(plymouth.root, "SELECT count(*), sum(hash(event_id)) FROM events") == before

    newer = write_csv(tmp_path, rows[:-5], name="newer/ambulance.csv")  # 5 call-outs fewer
    [result] = ingest(plymouth, source, [newer], partner=TRUST)
    assert result.status == "loaded" and result.superseded == [first.load_id]
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(54,)]
    assert query(plymouth.root, "SELECT count(*) - count(DISTINCT source_record_id) "
                                "FROM events") == [(0,)]
    status = dict(query(plymouth.root, "SELECT load_id, status FROM loads"))
    assert status == {first.load_id: "superseded", result.load_id: "active"}
