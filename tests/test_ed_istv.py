"""The ED ISTV reader: generated CSV, XLSX and XML submissions, column-name variants, method
and location spellings, every row and file problem, and ingest with free-text geocoding that
never stores the free text."""

from __future__ import annotations

import gzip
import json
import random
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from svduty.cli import app
from svduty.geography.gazetteer import Gazetteer, normalise
from svduty.sources import get_source
from svduty.sources.base import EVENT_COLUMNS, WEAPONS, FileError, Parsed
from svduty.sources.contract import contract_problems
from svduty.sources.ed_istv import SPEC, WITHHELD, EdIstv
from svduty.sources.ingest import ingest
from svduty.warehouse import connect

from .test_ingest import DC_2025_01, plymouth, query  # noqa: F401 - `plymouth` is a fixture

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources" / "ed-istv.md"
SITE = "RK950"  # University Hospitals Plymouth, Derriford ED
# Real 2021 LSOAs in Plymouth (E06000026).
LSOAS = ["E01015023", "E01015024", "E01015025"]
METHODS = ["Knife", "Fist/feet", "Blunt object", "Bottle/glass", "Firearm", "Other",
           "Unknown", "Kicked", "Acid attack"]
LOCATION_TYPES = ["Street", "Home", "Pub/club", "Public transport", "School", "Workplace",
                  "Other", "Unknown"]
# Free text as receptionists type it; some hold personal details that must never be stored.
DESCRIPTIONS = [
    "Outside the Walkabout on Union Street",
    "Royal Parade bus stop",
    "near John Smith's house, Mutley Plain",
    "pl1 2ab outside flat 3",
    "in the Dolphin Hotel, Barbican",
    "Drake Circus shopping centre",
    "Honicknowle, by the shops",
    "at a friend's house",
    "Old Town St by the phone box",
    "somewhere in Plymouth city centre",
]
OTHER_METHOD = "hit by Gary Jones with a bottle"
SECRETS = ["John Smith", "Gary Jones", "friend's house", "Walkabout", "flat 3",
           "phone box", "by the shops"]
BANDS = ["18-24", "25 to 34", "65+", "10-17", "Unknown"]
SEXES = ["M", "F", "1", "2", "U"]
PLACES = {"The Dolphin Hotel": LSOAS[0], "Drake Circus": LSOAS[1],
          "Devonport High School for Boys": LSOAS[2]}
POSTCODES = {"PL1 2AB": LSOAS[2], "PL4 8AA": LSOAS[0]}
XML_TAGS = {
    "attendance_id": "AttendanceIdentifier",
    "arrival_datetime": "ArrivalDateTimeAtAccidentAndEmergencyDepartment",
    "assault_datetime": "AssaultDateTime",
    "assault_method": "AssaultMethod",
    "assault_method_other": "AssaultMethodOtherDescription",
    "assault_location_type": "AssaultLocationType",
    "assault_location_description": "AssaultLocationDescription",
    "age_band": "AgeBand",
    "sex": "PersonStatedGenderCode",
}
runner = CliRunner()


def attendance(i: int, rng: random.Random) -> dict[str, str]:
    assault = datetime(2024, 3, 1) + timedelta(minutes=rng.randrange(27 * 24 * 60))
    arrival = assault + timedelta(minutes=rng.randrange(20, 600))
    method = METHODS[i % len(METHODS)]
    return {
        "attendance_id": f"{SITE}-{240000 + i}",
        "site_code": SITE,
        "arrival_datetime": arrival.strftime("%d/%m/%Y %H:%M"),
        "assault_datetime": assault.strftime("%d/%m/%Y %H:%M"),
        "assault_method": method,
        "assault_method_other": OTHER_METHOD if method == "Other" else "",
        "assault_location_type": LOCATION_TYPES[i % len(LOCATION_TYPES)],
        "assault_location_description": DESCRIPTIONS[i % len(DESCRIPTIONS)],
        "age_band": BANDS[i % len(BANDS)],
        "sex": SEXES[i % len(SEXES)],
    }


def extract(n: int = 60, seed: int = 5) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [attendance(i, rng) for i in range(n)]


def write_csv(tmp_path: Path, rows: list[dict[str, str]], name: str = "istv.csv",
              rename: dict[str, str] | None = None) -> Path:
    path = tmp_path / name
    data = pl.DataFrame(rows, schema={c: pl.String for c in rows[0]}).rename(
        rename or {}).write_csv()
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data, "utf-8")
    return path


def write_xlsx(tmp_path: Path, rows: list[dict[str, str]], name: str = "istv.xlsx") -> Path:
    """A workbook with real date-time cells."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Assaults"
    ws.append(list(rows[0]))
    for row in rows:
        ws.append([datetime.strptime(v, "%d/%m/%Y %H:%M") if k.endswith("datetime") and v
                   else (v or None) for k, v in row.items()])
    path = tmp_path / name
    book.save(path)
    return path


def iso(value: str) -> str:
    return datetime.strptime(value, "%d/%m/%Y %H:%M").strftime("%Y-%m-%dT%H:%M:%S")


def xml_text(rows: list[dict[str, str]], site: str = SITE) -> str:
    """An ISTV XML submission: header, then one <Assault> per row (site in the header)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<ISTVSubmission xmlns="http://www.datadictionary.nhs.uk/messages/ISTV-v1-0">',
             "  <SubmissionHeader>",
             "    <ReportingPeriodStartDate>2024-03-01</ReportingPeriodStartDate>",
             "    <ReportingPeriodEndDate>2024-03-31</ReportingPeriodEndDate>",
             f"    <SiteCodeOfTreatment>{site}</SiteCodeOfTreatment>",
             "  </SubmissionHeader>", "  <Assaults>"]
    for row in rows:
        lines.append("    <Assault>")
        for column, tag in XML_TAGS.items():
            value = row.get(column, "")
            if value:
                value = iso(value) if column.endswith("datetime") else value
                lines.append(f"      <{tag}>{escape(value)}</{tag}>")
        lines.append("    </Assault>")
    lines += ["  </Assaults>", "</ISTVSubmission>"]
    return "\n".join(lines) + "\n"


def write_xml(tmp_path: Path, rows: list[dict[str, str]], name: str = "istv.xml") -> Path:
    path = tmp_path / name
    path.write_text(xml_text(rows), "utf-8")
    return path


def reconciles(parsed: Parsed) -> None:
    loaded = set(parsed.events["row_number"])
    quarantined = set(parsed.quarantine["row_number"])
    assert not loaded & quarantined
    assert loaded | quarantined == set(range(2, parsed.rows_read + 2))


def no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret.lower() not in text.lower(), secret


# ------------------------------------------------------------------------- good extracts


def test_reads_a_realistic_csv_extract(tmp_path):
    rows = extract()
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.rows_read == parsed.events.height == len(rows)
    reconciles(parsed)
    assert contract_problems(parsed.events, None) == []
    assert parsed.events.columns == list(EVENT_COLUMNS)
    assert set(parsed.events["weapon"]) <= set(WEAPONS)
    assert parsed.scope == SITE and parsed.period == (date(2024, 3, 1), date(2024, 3, 31))
    first = parsed.events.row(0, named=True)
    assert first["source_record_id"] == f"{SITE}-240000" and first["row_number"] == 2
    assert (first["source_category"], first["weapon"]) == ("knife or sharp object",
                                                           "knife or sharp")
    assert first["location_type"] == "street/public place"
    assert first["occurred_at"].strftime("%d/%m/%Y %H:%M") == rows[0]["assault_datetime"]
    assert first["month"] == date(2024, 3, 1)
    arrival = datetime.strptime(rows[0]["arrival_datetime"], "%d/%m/%Y %H:%M")
    assert first["context"] == (f"arrival={arrival:%Y-%m-%dT%H:%M}; site={SITE}; "
                                "age_band=18-24; sex=male")
    # The free text stays in memory for `locate`, never in the events.
    assert parsed.events["location_desc"].null_count() == len(rows)
    assert parsed.free_text["text"][0] == DESCRIPTIONS[0]
    assert parsed.events["lsoa_code"].null_count() == len(rows)


def test_methods_map_to_categories_and_weapons(tmp_path):
    parsed = EdIstv().read(write_csv(tmp_path, extract(9)))
    pairs = list(zip(parsed.events["source_category"], parsed.events["weapon"], strict=True))
    assert pairs == [
        ("knife or sharp object", "knife or sharp"), ("body (fist/feet)", "none"),
        ("blunt object", "blunt"), ("glass/bottle", "knife or sharp"), ("firearm", "firearm"),
        ("glass/bottle", "knife or sharp"),  # 'Other', refined by the other description
        ("unknown", "unknown"), ("body (fist/feet)", "none"), ("corrosive", "corrosive")]


@pytest.mark.parametrize(("written", "category", "weapon"), [
    ("Stabbed", "knife or sharp object", "knife or sharp"),
    ("KNIFE OR SHARP OBJECT", "knife or sharp object", "knife or sharp"),
    ("Punched", "body (fist/feet)", "none"),
    ("Baseball bat", "blunt object", "blunt"),
    ("Glassed", "glass/bottle", "knife or sharp"),
    ("Shot", "firearm", "firearm"),
    ("Noxious substance / acid", "corrosive", "corrosive"),
    ("Other", "other", "other"),
    ("Not known", "unknown", "unknown"),
    ("Z99", "unknown", "unknown"),  # not recognised: kept as unknown
])
def test_method_spellings(tmp_path, written, category, weapon):
    rows = extract(2)
    rows[0] |= {"assault_method": written, "assault_method_other": ""}
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    assert parsed.events.row(0, named=True)["source_category"] == category
    assert parsed.events.row(0, named=True)["weapon"] == weapon
    assert parsed.quarantine.height == 0


@pytest.mark.parametrize(("written", "normalised"), [
    ("Street", "street/public place"), ("Public place - park", "street/public place"),
    ("Own home", "home"), ("Private dwelling", "home"),
    ("Pub", "licensed premises (pub/club/bar)"), ("Nightclub", "licensed premises (pub/club/bar)"),
    ("Bus", "public transport"), ("Railway station", "public transport"),
    ("School", "school/college"), ("College", "school/college"),
    ("Place of work", "workplace"), ("Other", "other"), ("Unknown", "unknown"),
    ("Spaceship", "unknown"),
])
def test_location_type_spellings(tmp_path, written, normalised):
    rows = extract(2)
    rows[0]["assault_location_type"] = written
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    assert parsed.events["location_type"][0] == normalised


def test_unrecognised_codes_are_counted_in_notes_without_their_values(tmp_path):
    rows = extract(4)
    rows[0]["assault_method"] = "Mr Smith's fist"  # recognised (fist)
    rows[1]["assault_method"] = "Z99"
    rows[2]["assault_location_type"] = "Spaceship"
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    assert "1 assault methods were not recognised and are loaded as 'unknown'" in parsed.notes
    assert "1 location types were not recognised and are loaded as 'unknown'" in parsed.notes
    assert not any("Z99" in n or "Spaceship" in n for n in parsed.notes)


def test_xlsx_with_real_cells_reads_as_the_csv(tmp_path):
    rows = extract(40)
    from_csv = EdIstv().read(write_csv(tmp_path, rows))
    from_xlsx = EdIstv().read(write_xlsx(tmp_path, rows))
    assert from_xlsx.quarantine.height == 0
    assert from_xlsx.events.equals(from_csv.events)
    assert from_xlsx.free_text.equals(from_csv.free_text)


def test_xml_submission_reads_as_the_csv(tmp_path):
    rows = extract(40)
    from_csv = EdIstv().read(write_csv(tmp_path, rows))
    from_xml = EdIstv().read(write_xml(tmp_path, [
        {k: v for k, v in r.items() if k != "site_code"} for r in rows]))
    assert from_xml.quarantine.height == 0 and from_xml.rows_read == 40
    assert from_xml.events.equals(from_csv.events)  # row numbers: position + 1
    assert from_xml.free_text.equals(from_csv.free_text)
    assert from_xml.scope == SITE
    assert from_xml.period == (date(2024, 3, 1), date(2024, 3, 31))
    assert f"submission header: site {SITE}, reporting period 2024-03-01 to 2024-03-31" in (
        from_xml.notes)


def test_xml_without_namespace_with_codes_in_attributes_and_time_zones(tmp_path):
    text = """<?xml version="1.0"?>
<istv><header><reporting_period_start_date>2024-03-01</reporting_period_start_date>
<reporting_period_end_date>2024-03-31</reporting_period_end_date>
<site_code>RK950</site_code></header>
<assault><ArrivalDateAndTime>2024-03-02T01:10:00Z</ArrivalDateAndTime>
<AssaultDateTime>2024-03-02T00:30:00+00:00</AssaultDateTime>
<AssaultMethod code="Knife"/><AssaultLocationType><Code>Street</Code></AssaultLocationType>
<AssaultLocationDescription>Union Street</AssaultLocationDescription></assault>
</istv>"""
    path = tmp_path / "istv.xml"
    path.write_text(text)
    parsed = EdIstv().read(path)
    assert parsed.quarantine.height == 0
    event = parsed.events.row(0, named=True)
    assert event["occurred_at"] == datetime(2024, 3, 2, 0, 30)
    assert event["source_category"] == "knife or sharp object"
    assert event["location_type"] == "street/public place"
    assert event["source_record_id"] == "RK950:2024-03-02T01:10:row2"
    assert event["context"] == "arrival=2024-03-02T01:10; site=RK950"


def test_gzipped_csv(tmp_path):
    parsed = EdIstv().read(write_csv(tmp_path, extract(30), name="istv.csv.gz"))
    assert parsed.events.height == 30


def test_data_dictionary_names_and_separate_dates_and_times(tmp_path):
    rows = extract(20)
    expected = EdIstv().read(write_csv(tmp_path, rows))
    split = []
    for r in rows:
        arrival, assault = r["arrival_datetime"].split(), r["assault_datetime"].split()
        split.append({
            "Attendance ID": r["attendance_id"], "SITE CODE (OF TREATMENT)": r["site_code"],
            "Arrival Date": arrival[0], "Arrival Time": arrival[1],
            "Assault Date": assault[0], "Assault Time": assault[1],
            "ASSAULT METHOD": r["assault_method"],
            "ASSAULT METHOD OTHER DESCRIPTION": r["assault_method_other"],
            "ASSAULT LOCATION TYPE": r["assault_location_type"],
            "ASSAULT LOCATION DESCRIPTION": r["assault_location_description"],
            "Age Group": r["age_band"], "Gender": r["sex"]})
    parsed = EdIstv().read(write_csv(tmp_path, split, name="dd.csv"))
    assert parsed.events.equals(expected.events)
    assert any(n.startswith("columns read:") for n in parsed.notes)


def test_no_attendance_id_builds_one_from_site_arrival_and_row(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "attendance_id"} for r in extract(3)]
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    arrival = datetime.strptime(rows[1]["arrival_datetime"], "%d/%m/%Y %H:%M")
    assert parsed.events["source_record_id"][1] == f"{SITE}:{arrival:%Y-%m-%dT%H:%M}:row3"


def test_nhs_side_lsoa_and_grid_are_used(tmp_path):
    rows = extract(3)
    for r in rows:
        r["assault_location_description"] = ""
    rows[0] |= {"lsoa_code": LSOAS[0], "easting": "", "northing": ""}
    rows[1] |= {"lsoa_code": "", "easting": "248000", "northing": "55000"}
    rows[2] |= {"lsoa_code": "e01015024", "easting": "", "northing": ""}
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.events["lsoa_code"].to_list() == [LSOAS[0], None, LSOAS[1]]
    assert parsed.events["easting"].to_list() == [None, 248000.0, None]


# -------------------------------------------------------------------------- row problems

ROW_PROBLEMS = [
    ("assault_datetime", "", "assault_date", None, "assault date is empty"),
    ("assault_datetime", "31/02/2024 10:00", "assault_date", "31/02/2024 10:00",
     "not a valid date"),
    ("assault_datetime", "01/01/2099 10:00", "assault_date", "01/01/2099 10:00",
     "in the future"),
    ("assault_datetime", "01/01/0024 10:00", "assault_date", "01/01/0024 10:00",
     "before 1990"),
    ("assault_datetime", "20/03/2024 23:00", "assault_date",
     "20/03/2024 23:00 > 20/03/2024 22:00", "dated after the arrival"),
    ("arrival_datetime", "yesterday", "arrival_date", "yesterday", "arrival date is not"),
    ("assault_method", "", "assault_method", None, "assault method is empty"),
    ("assault_location_type", "", "assault_location_type", None,
     "assault location type is empty"),
    ("age_band", "young", "age_band", "young", "not a range of years"),
    ("sex", "Q", "sex", "Q", "sex is not one of"),
    ("lsoa_code", "Plymouth 001A", "lsoa_code", "Plymouth 001A",
     "not an England or Wales LSOA code"),
    ("easting", "-50", "easting", "-50,55000", "outside Great Britain"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ROW_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ROW_PROBLEMS])
def test_row_problem_is_quarantined_with_column_value_reason_and_fix(
        tmp_path, changed, written, column, value, reason):
    rows = [r | {"lsoa_code": "", "easting": "", "northing": ""} for r in extract(3)]
    rows[1] |= {"arrival_datetime": "20/03/2024 22:00", "assault_datetime": "20/03/2024 21:00",
                changed: written}
    if changed == "easting":
        rows[1]["northing"] = "55000"
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert line["column"] == column and line["value"] == value
    assert reason in line["reason"], line["reason"]
    assert line["fix"]
    record = json.loads(line["record"])
    assert record["attendance_id"] == rows[1]["attendance_id"]
    assert record["assault_location_description"] == WITHHELD
    assert parsed.events["row_number"].to_list() == [2, 4]
    reconciles(parsed)


def test_quarantine_never_holds_the_free_text(tmp_path):
    rows = extract(10)
    for r in rows:
        r["assault_method"] = ""
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    assert parsed.events.height == 0 and parsed.quarantine.height == 10
    text = parsed.quarantine.write_csv()
    no_secrets(text)
    assert WITHHELD in text
    assert parsed.free_text.height == 0  # nothing kept for rows not loaded


def test_no_location_at_all(tmp_path):
    rows = extract(3)
    rows[1]["assault_location_description"] = ""
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert (line["row_number"], line["column"]) == (3, "assault_location_description")
    assert "no location" in line["reason"] and line["value"] is None


def test_arrival_long_after_the_assault_is_fine(tmp_path):
    rows = extract(2)
    rows[0] |= {"assault_datetime": "01/01/2024 10:00", "arrival_datetime": "20/03/2024 10:00"}
    assert EdIstv().read(write_csv(tmp_path, rows)).quarantine.height == 0


def test_duplicate_attendance_id(tmp_path):
    rows = extract(4)
    rows[2]["attendance_id"] = rows[0]["attendance_id"]
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.to_dicts()
    assert (line["row_number"], line["column"], line["value"]) == (4, "attendance_id",
                                                                   f"{SITE}-240000")
    assert line["reason"] == "attendance id is already given on row 2"
    reconciles(parsed)


def test_reconciles_with_many_mixed_problems(tmp_path):
    rows = extract(200, seed=9)
    rng = random.Random(1)
    for r in rng.sample(rows, 40):
        field, bad = rng.choice([("assault_datetime", "32/13/2024"), ("assault_method", ""),
                                 ("sex", "?"), ("attendance_id", rows[0]["attendance_id"]),
                                 ("assault_location_description", "")])
        r[field] = bad
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    assert parsed.events.height + parsed.quarantine["row_number"].n_unique() == 200
    reconciles(parsed)


# -------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> str:
    with pytest.raises(FileError) as info:
        EdIstv().read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message
    no_secrets(message)
    return message


def test_empty_file(tmp_path):
    path = tmp_path / "istv.csv"
    path.write_bytes(b"")
    raises(path, "the file is empty")


def test_header_only(tmp_path):
    path = tmp_path / "istv.csv"
    path.write_text(",".join(extract(1)[0]) + "\n")
    raises(path, "header but no data rows", "one row per assault attendance")


def test_missing_mandatory_columns(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("assault_method", "assault_location_type")}
            for r in extract(3)]
    raises(write_csv(tmp_path, rows),
           "required column(s) missing: assault_method, assault_location_type")


def test_no_assault_date_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "assault_datetime"} for r in extract(3)]
    raises(write_csv(tmp_path, rows), "no assault date column", "ASSAULT DATE AND TIME")


def test_no_location_columns(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "assault_location_description"}
            for r in extract(3)]
    raises(write_csv(tmp_path, rows), "no location columns", "ASSAULT LOCATION DESCRIPTION")


def test_identifier_columns_refuse_the_file(tmp_path):
    rows = [r | {"NHS Number": "9434765919", "Surname": "Smith"} for r in extract(2)]
    raises(write_csv(tmp_path, rows), "identify people directly (NHS Number, Surname)",
           "anonymised ISTV minimum data set only")


def test_not_utf8(tmp_path):
    rows = extract(3)
    rows[1]["assault_location_type"] = "Caf\xe9"
    path = tmp_path / "istv.csv"
    path.write_bytes(pl.DataFrame(rows).write_csv().encode("cp1252"))
    raises(path, "not UTF-8", "line 3")


def test_truncated_xml_names_the_line(tmp_path):
    path = tmp_path / "istv.xml"
    text = xml_text(extract(5))
    path.write_text(text[: text.index("<Assault>", 2000)] + "<Assault><AssaultMeth")
    message = raises(path, "the XML is malformed or truncated", "line ")
    assert "complete ISTV XML submission" in message


def test_xml_with_no_assaults(tmp_path):
    path = tmp_path / "istv.xml"
    path.write_text(xml_text([]))
    raises(path, "no assault records found in the XML")


def test_xml_without_a_mandatory_element(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "assault_location_type"} for r in extract(3)]
    raises(write_xml(tmp_path, rows), "required element(s) missing: assault_location_type",
           "AssaultLocationType")


def test_xml_with_identifying_elements(tmp_path):
    text = xml_text(extract(2)).replace("<AssaultMethod>", "<NHSNumber>9434765919</NHSNumber>"
                                        "<AssaultMethod>")
    path = tmp_path / "istv.xml"
    path.write_text(text)
    raises(path, "identify people directly (NHSNumber)")


def test_xml_with_entities_is_refused(tmp_path):
    path = tmp_path / "istv.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    raises(path, "DTD or entities")


def test_docs_list_every_column_and_variant():
    text = DOCS.read_text().lower()
    for canonical, column in SPEC.items():
        assert f"`{canonical}`" in text, canonical
        for alias in column.aliases:
            assert alias.lower() in text, alias


# ---------------------------------------------------------------------- gazetteer matching


def small_gazetteer() -> Gazetteer:
    names = pl.DataFrame({
        "label": ["Union Street", "Mutley Plain", "Mutley Plain Lane", "Drake Circus",
                  "Drake", "Plymouth", "Embankment Road"],
        "lsoa_code": ["E01015155", "E01015032", "E01015033", LSOAS[1], LSOAS[2], None,
                      LSOAS[0]],
        "method": ["street", "street", "street", "place", "ward", "district", "street"]})
    from svduty.geography.gazetteer import prepare_names

    postcodes = pl.DataFrame({"postcode": ["PL12AB"], "lsoa_code": [LSOAS[2]]})
    return Gazetteer(prepare_names(names), postcodes)


@pytest.mark.parametrize(("text", "lsoa", "method", "matched"), [
    ("outside 3 union st.", "E01015155", "street", "Union Street"),
    ("Mutley Plain Lane, behind the bank", "E01015033", "street", "Mutley Plain Lane"),
    ("MUTLEY PLAIN", "E01015032", "street", "Mutley Plain"),
    ("Drake Circus car park", LSOAS[1], "place", "Drake Circus"),
    ("drake ward somewhere", LSOAS[2], "ward", "Drake"),
    ("PL12AB Union Street", LSOAS[2], "postcode", "PL1 2"),
    ("pl1 2ab", LSOAS[2], "postcode", "PL1 2"),
    ("Embankment Rd", LSOAS[0], "street", "Embankment Road"),
    ("Plymouth", None, "district", "Plymouth"),
    ("Union Streetwise", None, None, None),  # whole words only
    ("", None, None, None),
    (None, None, None, None),
])
def test_gazetteer_matching(text, lsoa, method, matched):
    found = small_gazetteer().match(pl.Series([text, "nothing here"], dtype=pl.String))
    assert found.row(0) == (lsoa, method, matched)
    assert found.row(1) == (None, None, None)


def test_normalise_expands_abbreviations_and_punctuation():
    out = pl.select(normalise(pl.lit("St. Martin's Ave & Old Rd, PL4"))).item()
    assert out == "ST MARTINS AVENUE AND OLD ROAD PL4"


def test_gazetteer_speed():
    """100,000 descriptions against a gazetteer of 5,000 names: a few seconds."""
    rng = random.Random(2)
    words = ["ROYAL", "UNION", "OLD", "TOWN", "MARKET", "NEW", "GEORGE", "HIGH", "CHURCH",
             "MILL", "PARK", "STATION", "QUEEN", "KING", "NORTH", "SOUTH", "HILL", "GREEN"]
    kinds = ["STREET", "ROAD", "AVENUE", "LANE", "CLOSE", "WAY", "TERRACE", "PLACE"]
    labels = sorted({f"{rng.choice(words)} {rng.choice(words)} {rng.choice(kinds)}"
                     for _ in range(20_000)} | {f"{w} {k}" for w in words for k in kinds})
    names = pl.DataFrame({"label": labels, "lsoa_code": [LSOAS[i % 3] for i in range(
        len(labels))], "method": ["street"] * len(labels)})
    from svduty.geography.gazetteer import prepare_names

    gazetteer = Gazetteer(prepare_names(names), pl.DataFrame(
        {"postcode": ["PL12AB"], "lsoa_code": [LSOAS[0]]}))
    texts = pl.Series([f"outside no {i} {rng.choice(labels).lower()} near the shop by "
                       f"{rng.choice(words).lower()}" for i in range(100_000)])
    start = time.perf_counter()
    found = gazetteer.match(texts)
    seconds = time.perf_counter() - start
    print(f"gazetteer: {len(texts) / seconds:,.0f} descriptions/s")
    assert found.height == 100_000 and found["lsoa_code"].null_count() == 0
    assert seconds < 20


# -------------------------------------------------------------------------------- ingest


@pytest.fixture
def ready(plymouth):  # noqa: F811
    """Plymouth with police.uk streets, a postcode lookup and local place names."""
    [result] = ingest(plymouth, get_source("police-uk"), [DC_2025_01])
    assert result.status == "loaded"
    ref = plymouth.root / "reference"
    (ref / "postcodes").mkdir(parents=True, exist_ok=True)
    (ref / "gazetteer").mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"pcds": list(POSTCODES), "oa21cd": ["E00000001"] * len(POSTCODES),
                  "lsoa21cd": list(POSTCODES.values())}).write_csv(
        ref / "postcodes" / "nspl_pl.csv")
    pl.DataFrame({"name": list(PLACES), "lsoa_code": list(PLACES.values())}).write_csv(
        ref / "gazetteer" / "places.csv")
    return plymouth


def street_lsoa(root: Path, street: str) -> str:
    return query(root, f"""SELECT lsoa21_code FROM events WHERE source = 'police-uk'
        AND in_area AND location_desc = 'On or near {street}'
        GROUP BY ALL ORDER BY count(*) DESC, lsoa21_code LIMIT 1""")[0][0]


def test_ingest_geocodes_free_text_and_reports_the_share(ready, tmp_path):
    rows = extract(100)
    rows[7]["assault_method"] = ""  # one quarantined row
    [result] = ingest(ready, get_source("ed-istv"), [write_csv(tmp_path, rows)])
    assert result.status == "loaded", result.message
    assert result.rows_read == 100 == result.rows_loaded + result.rows_quarantined
    assert result.rows_quarantined == 1
    placed = dict(query(ready.root, """SELECT location_desc, lsoa21_code FROM events
        WHERE source = 'ed-istv' GROUP BY ALL"""))
    assert placed["geocoded by street: Union Street"] == street_lsoa(ready.root, "Union Street")
    assert placed["geocoded by street: Royal Parade"] == street_lsoa(ready.root, "Royal Parade")
    assert placed["geocoded by street: Mutley Plain"] == street_lsoa(ready.root, "Mutley Plain")
    assert placed["geocoded by street: Old Town Street"] == street_lsoa(ready.root,
                                                                       "Old Town Street")
    assert placed["geocoded by postcode: PL1 2"] == POSTCODES["PL1 2AB"]
    assert placed["geocoded by place: The Dolphin Hotel"] == PLACES["The Dolphin Hotel"]
    assert placed["geocoded by place: Drake Circus"] == PLACES["Drake Circus"]
    assert placed["geocoded by ward: Honicknowle"].startswith("E01")
    assert placed["district only (no LSOA): Plymouth"] is None
    assert placed[None] is None  # "at a friend's house"
    [note] = [n for n in result.notes if n.startswith("assault location geocoded")]
    assert note == ("assault location geocoded for 80 of 99 attendances (80.8%): postcode 10, "
                    "street 40, place 20, ward 10; 19 not geocoded (10 of them named only the "
                    "district)"), note
    in_area = query(ready.root, """SELECT count(*) FROM events WHERE source = 'ed-istv'
        AND in_area""")[0][0]
    assert in_area == 80


def test_ingest_without_street_data_or_local_files(plymouth, tmp_path):  # noqa: F811
    rows = [r | {"lsoa_code": ""} for r in extract(20)]
    rows[0]["lsoa_code"] = LSOAS[0]
    [result] = ingest(plymouth, get_source("ed-istv"), [write_csv(tmp_path, rows)])
    assert result.status == "loaded", result.message
    assert ("assault location geocoded for 4 of 19 attendances (21.1%): postcode 0, street 0, "
            "place 0, ward 4; 15 not geocoded (2 of them named only the district); 1 more came "
            "with an LSOA or grid reference") in result.notes
    assert any(n.startswith("gazetteer: district 1, ward 20; postcodes 0") for n in result.notes)


def test_reingest_is_idempotent_and_another_site_does_not_supersede(ready, tmp_path):
    source = get_source("ed-istv")
    path = write_csv(tmp_path, extract(30))
    ingest(ready, source, [path])
    before = query(ready.root, "SELECT count(*), sum(hash(event_id)) FROM events")
    [again] = ingest(ready, source, [path])
    assert again.status == "skipped"
    assert query(ready.root, "SELECT count(*), sum(hash(event_id)) FROM events") == before
    other = [r | {"site_code": "RA701", "attendance_id": "X" + r["attendance_id"]}
             for r in extract(20)]
    [second] = ingest(ready, source, [write_csv(tmp_path, other, name="other.csv")])
    assert second.status == "loaded" and second.superseded == []
    assert query(ready.root, "SELECT scope, count(*) FROM events WHERE source = 'ed-istv' "
                 "GROUP BY ALL ORDER BY 1") == [("RA701", 20), (SITE, 30)]


def test_xml_and_xlsx_ingest(ready, tmp_path):
    rows = extract(20)
    results = ingest(ready, get_source("ed-istv"), [write_xml(tmp_path, rows)])
    assert [r.status for r in results] == ["loaded"]
    assert results[0].rows_loaded == 20
    [xlsx] = ingest(ready, get_source("ed-istv"), [write_xlsx(tmp_path, rows)])
    assert xlsx.status == "loaded"  # same ids: replaces the XML's rows
    assert query(ready.root, "SELECT count(*) FROM events WHERE source = 'ed-istv'") == [(20,)]


def test_no_free_text_anywhere_in_the_warehouse_or_audit_log(ready, tmp_path):
    rows = extract(60)
    bad = extract(6, seed=8)
    for r in bad:
        r["assault_method"] = ""  # quarantined with their records
    files = [write_csv(tmp_path, rows), write_csv(tmp_path, bad, name="bad.csv"),
             write_xml(tmp_path, extract(10, seed=3), name="sub.xml")]
    broken = tmp_path / "broken.xml"
    broken.write_text(xml_text(extract(3))[:-40])
    results = ingest(ready, get_source("ed-istv"), [*files, broken])
    assert [r.status for r in results] == ["loaded", "loaded", "loaded", "rejected"]
    con = connect(ready.root / "warehouse.duckdb")
    try:
        columns = con.execute("""SELECT table_name, column_name FROM information_schema.columns
            WHERE data_type = 'VARCHAR' AND table_schema = 'main'""").fetchall()
        assert len(columns) > 30
        for table, column in columns:
            for secret in SECRETS:
                hits = con.execute(f'SELECT count(*) FROM "{table}" WHERE '
                                   f'contains(lower("{column}"), lower(?))', [secret]).fetchone()
                assert hits == (0,), (table, column, secret)
        withheld = con.execute("SELECT count(*) FROM quarantine WHERE contains(record, ?)",
                               [WITHHELD]).fetchone()[0]
        assert withheld == 6
    finally:
        con.close()
    assert "ingest-rejected" in (ready.root / "audit.jsonl").read_text()
    for log in ready.root.rglob("*"):
        if log.is_file() and log.suffix in (".jsonl", ".log", ".json", ".txt", ".csv", ".toml"):
            if log.parent.name in ("gazetteer", "postcodes"):
                continue
            no_secrets(log.read_text(errors="replace"))
    for r in results:
        no_secrets(r.message + " ".join(r.notes))


def test_cli_prints_the_geocoding_note(ready, tmp_path):
    path = write_csv(tmp_path, extract(20))
    out = runner.invoke(app, ["ingest", str(ready.root), "ed-istv", str(path)])
    assert out.exit_code == 0, out.output
    assert "assault location geocoded for" in out.output
    no_secrets(out.output)


# ------------------------------------------------------------ person-level (under a gateway)


def pseudonymised(tmp_path: Path, n: int = 20) -> Path:
    """An extract with patient identifiers, through `svduty pseudonymise` as the trust would."""
    from svduty.privacy.keys import load_key, new_key
    from svduty.privacy.pseudonymise import pseudonymise

    rows = [r | {"forename": f"Pat{i % 7}", "surname": "Example",
                 "date_of_birth": f"2001-0{1 + i % 7}-15",
                 "nhs_number": "9434765919" if i % 7 == 0 else ""}
            for i, r in enumerate(extract(n))]
    raw = write_csv(tmp_path, rows, name="raw-istv.csv")
    out = tmp_path / "istv-pseudonymised.csv"
    pseudonymise(raw, out, load_key(new_key(tmp_path / "trust.key")), "ed-istv")
    return out


def record_gateway(partnership, level: str = "person") -> None:
    from svduty.partnership import Gateway, Partnership

    partnership.config.gateways.append(Gateway(
        source="ed-istv", partner="University Hospitals Plymouth", level=level,
        gateway="Crime and Disorder Act 1998 s.115 with Caldicott Guardian approval"))
    partnership.save()
    return Partnership(partnership.root)


def test_person_level_file_is_refused_without_a_gateway(ready, tmp_path):
    path = pseudonymised(tmp_path)
    [result] = ingest(ready, get_source("ed-istv"), [path])
    assert result.status == "rejected"
    assert "s.16(4)" in result.message and 'level = "person"' in result.message
    assert query(ready.root, "SELECT count(*) FROM events WHERE source = 'ed-istv'") == [(0,)]
    # A gateway for aggregate data only does not cover person-level data.
    [again] = ingest(record_gateway(ready, level="aggregate"), get_source("ed-istv"), [path])
    assert again.status == "rejected"


def test_person_level_file_loads_patients_and_tokens_under_a_gateway(ready, tmp_path):
    path = pseudonymised(tmp_path)
    [result] = ingest(record_gateway(ready), get_source("ed-istv"), [path])
    assert result.status == "loaded", result.message
    assert result.rows_loaded == 20
    assert "person-level file: 20 of 20 attendances carry a person key" in " ".join(
        result.notes)
    people = query(ready.root, """SELECT count(*), count(DISTINCT person_key),
        min(length(person_key)), any_value(role) FROM involvements i JOIN events e
        USING (event_id) WHERE e.source = 'ed-istv'""")
    assert people == [(20, 7, 64, "victim")]  # 7 distinct names x birth dates
    tokens = dict(query(ready.root, """SELECT field, count(*) FROM person_tokens
        WHERE source = 'ed-istv' GROUP BY ALL"""))
    # One token per person and field: person 0's NHS number, everyone's date of birth.
    assert tokens["nhs_number_token"] == 1 and tokens["dob_token"] == 7
    assert {"forename_soundex", "surname_token", "dob_year"} <= set(tokens)
    text = path.read_text()
    assert "Example" not in text and "9434765919" not in text


def test_a_raw_identifier_in_the_key_column_is_quarantined_and_removed(tmp_path):
    rows = [r | {"person_key": "a" * 64} for r in extract(5)]
    rows[1]["person_key"] = "Jane Smith 01/02/2003"
    rows[2]["person_key"] = ""
    parsed = EdIstv().read(write_csv(tmp_path, rows))
    [line] = parsed.quarantine.iter_rows(named=True)
    assert (line["row_number"], line["column"]) == (3, "person_key")
    assert "Jane" not in line["record"] and "Jane" not in (line["value"] or "")
    assert parsed.involvements["person_key"].to_list() == ["a" * 64, None, "a" * 64, "a" * 64]
    reconciles(parsed)


def test_anonymised_file_has_patients_without_keys(tmp_path):
    parsed = EdIstv().read(write_csv(tmp_path, extract(10)))
    assert parsed.involvements.height == 10
    assert parsed.involvements["person_key"].null_count() == 10
    assert parsed.involvements["age_band"][0] == "18-24" and parsed.tokens is None
