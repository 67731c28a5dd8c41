"""The force recorded-crime reader: generated extracts (CSV, gzip, XLSX), column-name variants,
every row problem and every file problem, and the offence-code check the framework runs."""

from __future__ import annotations

import gzip
import hashlib
import random
import zipfile
from datetime import date, datetime, time
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from svduty.sources.base import EVENT_COLUMNS, INVOLVEMENT_COLUMNS, FileError, Parsed, conform
from svduty.sources.columns import ColumnSpec, age_band, resolve_columns
from svduty.sources.contract import contract_problems
from svduty.sources.police_recorded import SPEC, PoliceRecorded, validate_offence_codes

DOCS = Path(__file__).resolve().parents[1] / "docs" / "data-formats.md"
# Real LSOA 2011 codes in Plymouth (E06000026).
LSOAS = ["E01015023", "E01015025", "E01015165", "E01015147", "E01015143", "E01015102",
         "E01015040", "E01015101", "E01015118", "E01015108", "E01015174", "E01015152"]
CODES = ["8N", "5D", "105A", "4.1", "34B", "10D", "3B", "8L", "19C", "56A", "1", "2"]
HEADER = ["crime_reference", "offence_code", "offence_date", "offence_time", "lsoa_code",
          "easting", "northing", "location_type", "knife_sharp_instrument", "firearm",
          "domestic_abuse", "alcohol", "county_lines", "hate", "night_time_economy", "outcome",
          "role", "person_key", "age", "sex", "ethnicity"]
ROLES = ["victim", "victim", "suspect", "offender"]
KEY = hashlib.sha256(b"person-1").hexdigest()


def person_key(n: int) -> str:
    return hashlib.sha256(f"person-{n}".encode()).hexdigest()


def crime(i: int, rng: random.Random) -> dict[str, str]:
    day = date(2024, 1, 1).toordinal() + rng.randrange(366)
    knife = rng.random() < 0.15
    return {
        "crime_reference": f"DC/24/{100000 + i}",
        "offence_code": rng.choice(CODES),
        "offence_date": date.fromordinal(day).strftime("%d/%m/%Y"),
        "offence_time": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}" if i % 9 else "",
        "lsoa_code": rng.choice(LSOAS),
        "easting": str(247_000 + rng.randrange(5000)),
        "northing": str(54_000 + rng.randrange(5000)),
        "location_type": rng.choice(["Street", "Dwelling", "Licensed premises"]),
        "knife_sharp_instrument": ("Y" if knife else "N") if i % 7 else "",
        "firearm": "N",
        "domestic_abuse": rng.choice(["Y", "N", "N"]),
        "alcohol": rng.choice(["Yes", "No", ""]),
        "county_lines": "N",
        "hate": "N",
        "night_time_economy": rng.choice(["Y", "N"]),
        "outcome": rng.choice(["Charged", "Under investigation", "Evidential difficulties"]),
    }


def person(n: int, rng: random.Random, role: str) -> dict[str, str]:
    return {"role": role, "person_key": person_key(n), "age": str(rng.randrange(8, 80)),
            "sex": rng.choice(["M", "F", "Male", "Female", "U"]),
            "ethnicity": rng.choice(["W1", "A1", "B2", ""])}


def extract(n_crimes: int = 300, seed: int = 7) -> list[dict[str, str]]:
    """Rows of a realistic extract: 0 to 3 people per crime, crime columns repeated."""
    rng, rows, n = random.Random(seed), [], 0
    for i in range(n_crimes):
        c = crime(i, rng)
        people = rng.choice([0, 1, 1, 2, 3])
        if people == 0:
            rows.append({**c, "role": "", "person_key": "", "age": "", "sex": "",
                         "ethnicity": ""})
        for p in range(people):
            n += 1
            rows.append({**c, **person(n, rng, ROLES[p % len(ROLES)] if p else "victim")})
    return rows


def frame(rows: list[dict[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={c: pl.String for c in rows[0]})


def write_csv(tmp_path: Path, rows: list[dict[str, str]], name: str = "crimes.csv",
              rename: dict[str, str] | None = None) -> Path:
    path = tmp_path / name
    data = frame(rows).rename(rename or {}).write_csv()
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data, "utf-8")
    return path


def write_xlsx(tmp_path: Path, rows: list[dict[str, str]], name: str = "crimes.xlsx",
               above: list[list[str]] | None = None, sheet: str = "Sheet1",
               native: bool = True) -> Path:
    """An Excel workbook as Excel users make them: real date, time and number cells."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for line in above or []:
        ws.append(line)
    header = list(rows[0])
    ws.append(header)
    for row in rows:
        ws.append([excel_cell(k, v) if native else v for k, v in row.items()])
    path = tmp_path / name
    book.save(path)
    return path


def excel_cell(column: str, value: str) -> object:
    if not value:
        return None
    if column == "offence_date":
        return datetime.strptime(value, "%d/%m/%Y")
    if column == "offence_time":
        return time.fromisoformat(value)
    if column in ("easting", "northing", "age"):
        return int(value)
    return value


def reconciles(parsed: Parsed) -> None:
    """Every data row is loaded (event or involvement) or quarantined, never both."""
    loaded = set(parsed.events["row_number"]) | set(parsed.involvements["row_number"])
    quarantined = set(parsed.quarantine["row_number"])
    assert not loaded & quarantined
    assert loaded | quarantined == set(range(2, parsed.rows_read + 2))


def lines(parsed: Parsed, row: int) -> list[dict]:
    return parsed.quarantine.filter(pl.col("row_number") == row).to_dicts()


# ------------------------------------------------------------------------- good extracts


def test_reads_a_realistic_csv_extract(tmp_path):
    rows = extract()
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.rows_read == len(rows)
    assert parsed.quarantine.height == 0
    assert parsed.events.height == 300
    assert parsed.involvements.height == sum(1 for r in rows if r["role"])
    reconciles(parsed)
    assert contract_problems(conform(parsed.events, EVENT_COLUMNS),
                             conform(parsed.involvements, INVOLVEMENT_COLUMNS)) == []
    assert parsed.events.schema == conform(parsed.events, EVENT_COLUMNS).select(
        parsed.events.columns).schema
    assert parsed.period[0] == date(2024, 1, 1) and parsed.period[1] == date(2024, 12, 31)
    first = parsed.events.row(0, named=True)
    assert first["source_record_id"] == "DC/24/100000" and first["row_number"] == 2
    assert first["month"] == date(first["occurred_on"].year, first["occurred_on"].month, 1)
    assert first["occurred_at"] is None  # crime 0 has no time
    timed = parsed.events.filter(pl.col("occurred_at").is_not_null())
    assert timed.height == sum(1 for i in range(300) if i % 9)
    assert timed["occurred_at"].dt.date().to_list() == timed["occurred_on"].to_list()


def test_event_and_person_values(tmp_path):
    rows = extract(60)
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    first_rows = {r["crime_reference"]: r for r in reversed(rows)}
    for event in parsed.events.to_dicts():
        src = first_rows[event["source_record_id"]]
        knife = src["knife_sharp_instrument"]
        assert event["weapon"] == {"Y": "knife or sharp", "N": "none", "": "unknown"}[knife]
        assert event["domestic"] == (src["domestic_abuse"] == "Y")
        assert event["alcohol"] == {"Yes": True, "No": False, "": None}[src["alcohol"]]
        assert event["drugs_exploitation"] is False and event["hate"] is False
        assert event["lsoa_code"] == src["lsoa_code"]
        assert event["easting"] == float(src["easting"])
        assert event["outcome"] == src["outcome"]
    people = parsed.involvements
    assert set(people["role"]) <= {"victim", "suspect", "offender"}
    assert set(people["sex"]) <= {"male", "female", "unknown"}
    assert people.schema["age"] == pl.Int16
    assert people["age_band"].null_count() == 0
    assert people["person_key"].str.len_chars().min() == 64


def test_xlsx_with_real_date_and_number_cells_reads_as_the_csv(tmp_path):
    rows = extract(80)
    from_csv = PoliceRecorded().read(write_csv(tmp_path, rows))
    from_xlsx = PoliceRecorded().read(write_xlsx(tmp_path, rows))
    assert from_xlsx.quarantine.height == 0
    assert from_xlsx.events.equals(from_csv.events)
    assert from_xlsx.involvements.equals(from_csv.involvements)
    assert from_xlsx.rows_read == from_csv.rows_read


def test_xlsx_excel_serial_dates_and_fractional_times(tmp_path):
    rows = extract(5)
    serials = [{**r, "offence_date": str((datetime.strptime(r["offence_date"], "%d/%m/%Y")
                                           - datetime(1899, 12, 30)).days),
                "offence_time": "0.75"} for r in rows]
    parsed = PoliceRecorded().read(write_xlsx(tmp_path, serials, native=False))
    expected = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.events["occurred_on"].equals(expected.events["occurred_on"])
    assert set(parsed.events["occurred_at"].dt.time()) == {time(18, 0)}


def test_xlsx_uses_the_sheet_named_crimes(tmp_path):
    path = write_xlsx(tmp_path, extract(4), sheet="crimes")
    book = openpyxl.load_workbook(path)
    notes = book.create_sheet("Notes", 0)
    notes["A1"] = "Extract for Safer Plymouth, OFFICIAL-SENSITIVE"
    book.save(path)
    assert PoliceRecorded().read(path).events.height == 4


def test_gzipped_csv(tmp_path):
    parsed = PoliceRecorded().read(write_csv(tmp_path, extract(20), name="crimes.csv.gz"))
    assert parsed.events.height == 20 and parsed.quarantine.height == 0


VARIANTS = {
    "crime_reference": "Crime No", "offence_code": "HO Code", "offence_date": "Committed Date",
    "offence_time": "Committed Time", "lsoa_code": "LSOA11CD", "easting": "Grid X",
    "northing": "Grid Y", "location_type": "Location Type",
    "knife_sharp_instrument": "Knife/Sharp Instrument", "firearm": "Firearm",
    "domestic_abuse": "DA Flag", "alcohol": "Alcohol Related", "county_lines": "County Lines",
    "hate": "Hate Crime", "night_time_economy": "NTE", "outcome": "Outcome",
    "role": "Person Role", "person_key": "Person Key", "age": "Age at Offence",
    "sex": "Gender", "ethnicity": "Ethnicity",
}


@pytest.mark.parametrize("style", [
    VARIANTS,
    {k: v.upper().replace(" ", "_") for k, v in VARIANTS.items()},
    {k: f" {v.lower()} " for k, v in VARIANTS.items()},
    {"crime_reference": "Occurrence Number", "offence_code": "Home Office Offence Code",
     "offence_date": "Date From", "offence_time": "Start Time", "lsoa_code": "LSOA",
     "easting": "Eastings", "northing": "Northings", "knife_sharp_instrument": "Knife Flag",
     "domestic_abuse": "Domestic", "county_lines": "CL Flag", "role": "Involvement",
     "age": "Victim Age"},
])
def test_column_name_variants(tmp_path, style):
    rows = extract(30)
    expected = PoliceRecorded().read(write_csv(tmp_path, rows))
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows, name="v.csv", rename=style))
    assert parsed.events.equals(expected.events)
    assert parsed.involvements.equals(expected.involvements)
    assert any(n.startswith("columns read:") for n in parsed.notes)


def test_single_datetime_column_and_grid_only_location(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("offence_time", "lsoa_code")}
            | {"offence_date": "2024-03-01 22:15" if i else "2024-03-02"}
            for i, r in enumerate(extract(10))]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows, rename={
        "offence_date": "Offence Date Time"}))
    assert parsed.quarantine.height == 0
    events = parsed.events
    assert events["lsoa_code"].null_count() == events.height
    assert events.filter(pl.col("source_record_id") == "DC/24/100001")["occurred_at"][0] == \
        datetime(2024, 3, 1, 22, 15)
    assert events.filter(pl.col("source_record_id") == "DC/24/100000")["occurred_at"][0] is None


@pytest.mark.parametrize(("written", "normalised"), [
    ("8N", "8N"), ("008N", "8N"), (" 08n ", "8N"), ("4/1", "4.1"), ("004/10", "4.10"),
    ("008/01", "8.1"), ("105a", "105A"), ("37.1", "37.1"), ("1", "1")])
def test_offence_codes_are_normalised(tmp_path, written, normalised):
    rows = [{**r, "offence_code": written} for r in extract(1)]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.events["offence_code"].to_list() == [normalised]


def test_flag_spellings(tmp_path):
    values = ["Y", "yes", "TRUE", "1", "n", "No", "false", "0", "", "Unknown", "u"]
    rows = [{**r, "knife_sharp_instrument": values[i], "firearm": "N"}
            for i, r in enumerate(single_person_rows(len(values)))]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.events["weapon"].to_list() == ["knife or sharp"] * 4 + ["none"] * 4 + [
        "unknown"] * 3


# --------------------------------------------------------------------------- row problems


def single_person_rows(n: int) -> list[dict[str, str]]:
    """n crimes of one victim each (row i + 2 is crime i)."""
    rng = random.Random(3)
    return [{**crime(i, rng), **person(i, rng, "victim")} for i in range(n)]


ROW_PROBLEMS = [
    # (column changed, written value, quarantine column, quarantine value, reason fragment)
    ("offence_date", "32/01/2024", "offence_date", "32/01/2024", "not a valid date"),
    ("offence_date", "01/01/2099", "offence_date", "01/01/2099", "in the future"),
    ("offence_date", "01/01/1985", "offence_date", "01/01/1985", "before 1990"),
    ("offence_date", "", "offence_date", None, "offence date is empty"),
    ("offence_time", "25:61", "offence_time", "25:61", "not a valid time"),
    ("offence_code", "ABH", "offence_code", "ABH", "not a Home Office offence code"),
    ("offence_code", "", "offence_code", None, "offence code is empty"),
    ("lsoa_code", "Plymouth 001A", "lsoa_code", "Plymouth 001A", "not an England or Wales"),
    ("easting", "east", "easting", "east", "easting is not a number"),
    ("northing", "9999999", "easting", "248000,9999999", "outside Great Britain"),
    ("northing", "", "easting", "248000", "grid reference is incomplete"),
    ("knife_sharp_instrument", "maybe", "knife_sharp_instrument", "maybe", "not Y, N or blank"),
    ("domestic_abuse", "DA", "domestic_abuse", "DA", "not Y, N or blank"),
    ("age", "200", "age", "200", "not a whole number of years"),
    ("age", "twelve", "age", "twelve", "not a whole number of years"),
    ("person_key", "John Smith 01/02/1990", "person_key", "[removed: 21 characters]",
     "raw identifiers must never be sent"),
    ("role", "witness", "role", "witness", "unknown role"),
    ("role", "", "role", None, "person details are given but the role is empty"),
    ("sex", "Q", "sex", "Q", "sex is not one of"),
    ("crime_reference", "", "crime_reference", None, "crime reference is empty"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ROW_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ROW_PROBLEMS])
def test_row_problem_is_quarantined_with_column_value_reason_and_fix(
        tmp_path, changed, written, column, value, reason):
    rows = single_person_rows(3)
    rows[1] = {**rows[1], "easting": "248000", changed: written}
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    found = lines(parsed, 3)
    assert len(found) == 1, found
    line = found[0]
    assert line["column"] == column and line["value"] == value
    assert reason in line["reason"]
    assert line["fix"]
    assert parsed.events["row_number"].to_list() == [2, 4]
    reconciles(parsed)
    if changed == "person_key":
        assert "John Smith" not in line["record"] and "[removed]" in line["record"]
    else:
        assert line["record"].startswith("{") and '"crime_reference"' in line["record"]


def test_person_problem_keeps_the_crime(tmp_path):
    """The crime of a row with a bad person is still loaded, from another row if needed."""
    rows = single_person_rows(1)
    rows = [{**rows[0], "age": "200"}, {**rows[0], **person(99, random.Random(1), "suspect")}]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.events["row_number"].to_list() == [3]
    assert parsed.involvements["row_number"].to_list() == [3]
    assert lines(parsed, 2)[0]["column"] == "age"
    reconciles(parsed)


def test_no_location_at_all(tmp_path):
    rows = single_person_rows(2)
    rows[1] = {**rows[1], "lsoa_code": "", "easting": "", "northing": ""}
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    (line,) = lines(parsed, 3)
    assert line["column"] == "lsoa_code" and line["value"] is None
    assert "no location" in line["reason"]


def test_no_location_in_an_lsoa_only_file(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("easting", "northing")}
            for r in single_person_rows(2)]
    rows[0]["lsoa_code"] = ""
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    (line,) = lines(parsed, 2)
    assert "no location" in line["reason"]


def test_several_problems_in_one_row_give_several_lines(tmp_path):
    rows = single_person_rows(2)
    rows[0] = {**rows[0], "offence_code": "??", "lsoa_code": "X", "age": "-4"}
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert sorted(x["column"] for x in lines(parsed, 2)) == ["age", "lsoa_code", "offence_code"]
    assert parsed.quarantine["row_number"].n_unique() == 1
    reconciles(parsed)


def test_conflicting_crime_fields(tmp_path):
    rows = extract(1)
    base = {**rows[0], "role": "victim", "person_key": person_key(1)}
    rows = [base, {**base, "person_key": person_key(2), "offence_code": "5D",
                   "lsoa_code": LSOAS[-1]}, {**base, "person_key": person_key(3)}]
    rows[0]["offence_code"] = "8N"
    rows[2]["offence_code"] = "8N"
    rows[0]["lsoa_code"] = rows[2]["lsoa_code"] = LSOAS[0]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    (line,) = lines(parsed, 3)
    assert line["reason"] == ("conflicts with row 2 of the same crime "
                              "(different offence_code, lsoa_code)")
    assert line["column"] == "offence_code" and line["value"] == "5D"
    assert parsed.involvements["row_number"].to_list() == [2, 4]
    reconciles(parsed)


def test_first_row_bad_later_row_carries_the_crime(tmp_path):
    rows = single_person_rows(1)
    good = {**rows[0], "person_key": person_key(5)}
    rows = [{**rows[0], "offence_date": "yesterday"}, good, {**good, "person_key": KEY}]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.events["row_number"].to_list() == [3]
    assert parsed.involvements["row_number"].to_list() == [3, 4]
    assert lines(parsed, 2)[0]["column"] == "offence_date"
    reconciles(parsed)


def test_crime_with_every_row_bad_has_no_event(tmp_path):
    rows = single_person_rows(2)
    rows = [rows[0], {**rows[1], "lsoa_code": "bad"}, {**rows[1], "lsoa_code": "bad",
                                                        "person_key": KEY}]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.events["source_record_id"].to_list() == [rows[0]["crime_reference"]]
    assert parsed.quarantine["row_number"].to_list() == [3, 4]
    reconciles(parsed)


def test_repeated_rows_are_quarantined_not_lost(tmp_path):
    rows = single_person_rows(1)
    nobody = {**rows[0], "role": "", "person_key": "", "age": "", "sex": "", "ethnicity": ""}
    rows = [rows[0], rows[0], nobody]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.events["row_number"].to_list() == [2]
    assert parsed.involvements["row_number"].to_list() == [2]
    assert "already listed for this crime in row 2" in lines(parsed, 3)[0]["reason"]
    assert "repeats a crime already loaded from row 2" in lines(parsed, 4)[0]["reason"]
    reconciles(parsed)


def test_unknown_age_and_sex_are_blank_not_errors(tmp_path):
    rows = [{**r, "age": "Unknown", "sex": "not known"} for r in single_person_rows(2)]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.involvements["age"].to_list() == [None, None]
    assert parsed.involvements["sex"].to_list() == ["unknown", "unknown"]


def test_conflict_in_a_datetime_file_names_the_datetime_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "offence_time"} for r in single_person_rows(1)]
    rows = [{**rows[0], "offence_date": "2024-03-01 22:15"},
            {**rows[0], "offence_date": "2024-03-01 22:45", "person_key": KEY}]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows, rename={
        "offence_date": "offence_datetime"}))
    (line,) = lines(parsed, 3)
    assert line["column"] == "offence_datetime" and line["value"] == "2024-03-01 22:45"
    assert line["reason"] == "conflicts with row 2 of the same crime (different offence_datetime)"


def test_people_without_keys_are_all_kept(tmp_path):
    rows = single_person_rows(1)
    rows = [{**rows[0], "person_key": ""}, {**rows[0], "person_key": ""}]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.involvements.height == 2 and parsed.quarantine.height == 0


def test_uppercase_hex_keys_are_accepted(tmp_path):
    rows = [{**r, "person_key": KEY.upper()} for r in single_person_rows(1)]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.involvements["person_key"].to_list() == [KEY]


def test_file_with_no_good_rows_is_all_quarantined(tmp_path):
    rows = [{**r, "offence_code": "XYZ"} for r in single_person_rows(3)]
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert parsed.events.height == 0 and parsed.involvements.height == 0
    assert parsed.quarantine["row_number"].to_list() == [2, 3, 4]
    assert parsed.period[0].year == 2024
    reconciles(parsed)


def test_blank_rows_are_skipped_and_row_numbers_match_the_file(tmp_path):
    rows = single_person_rows(3)
    path = write_csv(tmp_path, rows)
    text = path.read_text().splitlines()
    path.write_text("\n".join([*text[:2], "", "," * 20, *text[2:], ""]) + "\n")
    parsed = PoliceRecorded().read(path)
    assert parsed.events["row_number"].to_list() == [2, 5, 6]
    assert parsed.rows_read == 3


def test_extra_columns_are_ignored_and_not_stored(tmp_path):
    rows = [{**r, "MO notes": "entered via rear door"} for r in single_person_rows(2)]
    rows[0]["lsoa_code"] = "bad"
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    assert "MO notes" not in lines(parsed, 2)[0]["record"]
    assert "columns ignored (not loaded or stored): MO notes" in parsed.notes


# -------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> str:
    with pytest.raises(FileError) as info:
        PoliceRecorded().read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ")
    assert "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def csv_text(rows: list[dict[str, str]]) -> str:
    return frame(rows).write_csv()


@pytest.mark.parametrize(("separator", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_not_comma_separated(tmp_path, separator, name):
    path = tmp_path / "crimes.csv"
    path.write_text(frame(extract(3)).write_csv(separator=separator))
    raises(path, f"separated by {name}, not commas")


def test_empty_file(tmp_path):
    path = tmp_path / "crimes.csv"
    path.write_bytes(b"")
    raises(path, "the file is empty", "a header row")


def test_header_only(tmp_path):
    path = tmp_path / "crimes.csv"
    path.write_text(",".join(HEADER) + "\n")
    raises(path, "header but no data rows")


def test_header_only_xlsx(tmp_path):
    path = write_xlsx(tmp_path, extract(1))
    book = openpyxl.load_workbook(path)
    book.active.delete_rows(2, 10)
    book.save(path)
    raises(path, "header but no data rows")


def test_not_utf8(tmp_path):
    path = tmp_path / "crimes.csv"
    rows = single_person_rows(3)
    rows[0]["location_type"] = "Stra\xdfe"
    text = csv_text(rows)
    path.write_bytes(text.encode("cp1252"))
    raises(path, "not UTF-8", "line 2", "CSV UTF-8")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "crimes.csv.gz"
    path.write_bytes(gzip.compress(csv_text(extract(50)).encode())[:-40])
    raises(path, "gzip file is truncated or corrupt")


def test_missing_required_columns_with_suggestion(tmp_path):
    rows = [{("Crime Refrence" if k == "crime_reference" else k): v for k, v in r.items()
             if k != "offence_code"} for r in extract(3)]
    message = raises(write_csv(tmp_path, rows), "required column(s) missing: crime_reference, "
                     "offence_code", "found columns", "did you mean 'Crime Refrence'",
                     "crime_reference, offence_code")
    assert "ho code" not in message.lower() or "data-formats" in message


def test_missing_date_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "offence_date"} | {"Ofence Date": "01/01/2024"}
            for r in extract(2)]
    raises(write_csv(tmp_path, rows), "offence_date", "did you mean 'Ofence Date'",
           "offence_datetime")


def test_missing_location_columns(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("lsoa_code", "northing")}
            for r in extract(2)]
    raises(write_csv(tmp_path, rows), "no location columns (found only easting)",
           "lsoa_code", "easting and northing")


def test_two_columns_for_one_field(tmp_path):
    rows = [r | {"Crime No": "x", "Crime Number": "y"} for r in extract(2)]
    rows = [{k: v for k, v in r.items() if k != "crime_reference"} for r in rows]
    raises(write_csv(tmp_path, rows), "'Crime No', 'Crime Number'", "look like crime_reference")


def test_identifier_columns_refuse_the_file(tmp_path):
    rows = [r | {"Victim Name": "Jo Bloggs", "DOB": "01/01/1990"} for r in extract(2)]
    raises(write_csv(tmp_path, rows), "identify people directly (Victim Name, DOB)",
           "raw identifiers must never be sent", "svduty pseudonymise")


def test_xlsx_with_title_rows_above_the_table(tmp_path):
    path = write_xlsx(tmp_path, extract(3), above=[
        ["Devon & Cornwall Police: serious violence extract"], ["Run 02/04/2025"], []])
    raises(path, "the table must start in row 1: found the header on row 4; delete the rows "
           "above it")


def test_xlsx_with_blank_rows_above_the_table(tmp_path):
    path = write_xlsx(tmp_path, extract(3), above=[[], []])
    book = openpyxl.load_workbook(path)
    book.active["A1"].font = openpyxl.styles.Font(bold=True)  # formatted but empty
    book.save(path)
    raises(path, "found the header on row 3")


def test_csv_with_title_rows_above_the_table(tmp_path):
    path = tmp_path / "crimes.csv"
    path.write_text("Serious violence extract\nRun on 02/04/2025\n" + csv_text(extract(3)))
    raises(path, "found the header on row 3; delete the rows above it")


def test_xlsx_that_is_not_a_zip(tmp_path):
    path = tmp_path / "crimes.xlsx"
    path.write_text(csv_text(extract(2)))
    raises(path, "not a readable Excel workbook", "UTF-8 CSV")


def test_zip_that_is_not_excel(tmp_path):
    path = tmp_path / "crimes.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("crimes.csv", csv_text(extract(2)))
    raises(path, "not a readable Excel workbook")


def test_excel_workbook_named_csv_is_read_as_excel(tmp_path):
    path = write_xlsx(tmp_path, extract(3))
    renamed = path.rename(tmp_path / "crimes.csv")
    assert PoliceRecorded().read(renamed).events.height == 3


def test_ragged_csv_line_with_too_many_fields(tmp_path):
    path = tmp_path / "crimes.csv"
    text = csv_text(single_person_rows(5)).splitlines()
    text[3] += ",extra"
    path.write_text("\n".join(text) + "\n")
    raises(path, "line 4 has 22 fields but the header has 21")


def test_truncated_csv(tmp_path):
    path = tmp_path / "crimes.csv"
    text = csv_text(single_person_rows(5))
    path.write_text(text[: len(text) - 60])
    raises(path, "line 6 has", "fields but the header has 21", "truncated")


def test_unterminated_quote(tmp_path):
    path = tmp_path / "crimes.csv"
    path.write_text(csv_text(single_person_rows(3)) + 'DC/1,"8N\n')
    raises(path, "a quoted value opened on line 5 is never closed", "truncated")


# ------------------------------------------------------------------ offence code validation


def test_validate_offence_codes_moves_unknown_crimes_with_their_people(tmp_path):
    rows = extract(200)
    parsed = PoliceRecorded().read(write_csv(tmp_path, rows))
    known = {c for c in CODES if c != "8N"} | {"4/1"}
    checked = validate_offence_codes(parsed, known - {"4.1"})
    assert "8N" not in set(checked.events["offence_code"])
    assert "4.1" in set(checked.events["offence_code"])
    moved = {r["crime_reference"] for r in rows if r["offence_code"] == "8N"}
    assert not moved & set(checked.involvements["source_record_id"])
    q = checked.quarantine
    reasons = set(q["reason"])
    assert "offence code 8N is not in the Home Office offence code list" in reasons
    assert any(r.startswith("belongs to crime DC/24/") for r in reasons)
    assert q["column"].unique().to_list() == ["offence_code"]
    assert q.height == sum(1 for r in rows if r["offence_code"] == "8N")
    reconciles(checked)
    assert validate_offence_codes(parsed, set(CODES)) is parsed


# --------------------------------------------------------------------------------- helpers


def test_resolve_columns():
    spec = {"crime_reference": ColumnSpec(True, ("crime no",)), "age": ColumnSpec(False, ())}
    assert resolve_columns(Path("x.csv"), ["CRIME-NO", "Age", "Other"], spec) == {
        "crime_reference": "CRIME-NO", "age": "Age"}
    with pytest.raises(FileError, match="did you mean 'crimeno2'"):
        resolve_columns(Path("x.csv"), ["crimeno2"], spec)


def test_age_band():
    ages = pl.Series([0, 9, 10, 17, 18, 24, 25, 34, 35, 49, 50, 64, 65, 120, None],
                     dtype=pl.Int16)
    bands = pl.select(age_band(pl.lit(ages))).to_series().to_list()
    assert bands == ["0-9", "0-9", "10-17", "10-17", "18-24", "18-24", "25-34", "25-34",
                     "35-49", "35-49", "50-64", "50-64", "65+", "65+", None]


def test_docs_describe_every_column_and_name():
    text = DOCS.read_text()
    for canonical, column in SPEC.items():
        assert f"`{canonical}`" in text, canonical
        for alias in column.aliases:
            assert alias in text, f"{canonical}: {alias}"


def test_docs_example_reads_cleanly(tmp_path):
    text = DOCS.read_text()
    example = text.split("```csv\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.csv"
    path.write_text(example)
    parsed = PoliceRecorded().read(path)
    assert parsed.quarantine.height == 0
    assert parsed.events["source_record_id"].to_list() == [
        "DC/24/100231", "DC/24/100232", "DC/24/100233"]
    assert parsed.events["weapon"].to_list() == ["knife or sharp", "none", "none"]
    assert parsed.involvements.height == 3
