"""The hospital admissions reader: generated aggregated extracts (long and wide, CSV and XLSX),
period, cause, age-band, sex and suppression spellings, every row problem and file problem,
and ingest into the warehouse `aggregates` table (harmonising, in-area, superseding)."""

from __future__ import annotations

import random
from datetime import date, datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from svduty.sources import get_source
from svduty.sources.base import AGGREGATE_COLUMNS, EVENT_COLUMNS, FileError, Parsed
from svduty.sources.contract import contract_problems
from svduty.sources.hospital_admissions import MEASURE, SPEC, HospitalAdmissions
from svduty.sources.ingest import ingest

from .test_ingest import plymouth, query  # noqa: F401 - `plymouth` is a fixture

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources" / "hospital-admissions.md"
PLYMOUTH = "E06000026"
LIVERPOOL = "E08000012"  # a local authority outside the Plymouth partnership
LSOAS = ["E01015023", "E01015024", "E01015025", "E01015165", "E01015147", "E01015143"]
LSOA_2011_ONLY = "E01015135"  # Plymouth 031A, split in 2021; best fit E01034157
LSOA_2011_BEST_FIT = "E01034157"
MONTHS = ["2024-04", "May-24", "June 2024", "2024-07", "Aug-24", "September 2024"]
CAUSES = ["X99", "Y04 Assault by bodily force", "Y00"]
BANDS = ["0-17", "18-24", "25+"]
MARKERS = ["*", "c", "x", "<5", "1-5", ":", "[c]"]


def count(rng: random.Random) -> str:
    n = rng.choice([0, 0, 1, 2, 3, 4, 6, 8, 9, 12, 15])
    return rng.choice(MARKERS) if 1 <= n <= 5 else str(n)


def long_rows(seed: int = 1, months: list[str] = MONTHS,
              areas: list[str] = LSOAS[:3]) -> list[dict[str, str]]:
    """One row per LSOA x month x cause x age band x sex."""
    rng = random.Random(seed)
    return [{"LSOA code": area, "Period": month, "ICD10": cause, "Age group": band,
             "Sex": sex, "Admissions": count(rng)}
            for month in months for area in areas for cause in CAUSES for band in BANDS
            for sex in ("Male", "Female")]


def wide_rows(seed: int = 2) -> list[dict[str, str]]:
    """Financial-year counts for the local authorities, one column per age band."""
    rng = random.Random(seed)
    return [{"Area Code": area, "Area Name": name, "Financial Year": year, "Cause": cause,
             "Sex": sex, "Age 0-17": count(rng), "Age 18-24": count(rng), "Age 25+": count(rng)}
            for area, name in ((PLYMOUTH, "Plymouth"), (LIVERPOOL, "Liverpool"))
            for year in ("2022/23", "2023/24") for cause in ("X99", "X85-Y09")
            for sex in ("Males", "Females", "Persons")]


def totals(rows: list[dict[str, str]], columns: list[str]) -> tuple[float, int]:
    """(sum of the counts, number of suppressed cells) written in `columns`."""
    cells = [r[c] for r in rows for c in columns]
    return (float(sum(int(c) for c in cells if c.isdigit())),
            sum(1 for c in cells if not c.isdigit()))


def write_csv(tmp_path: Path, rows: list[dict[str, str]], name: str = "admissions.csv") -> Path:
    path = tmp_path / name
    path.write_text(pl.DataFrame(rows, schema={c: pl.String for c in rows[0]}).write_csv(),
                    "utf-8")
    return path


def write_xlsx(tmp_path: Path, rows: list[dict[str, str]], name: str = "admissions.xlsx",
               above: list[list[str]] | None = None) -> Path:
    """A workbook with number cells for counts and date cells for ISO months."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Admissions"
    for line in above or []:
        ws.append(line)
    ws.append(list(rows[0]))
    for row in rows:
        ws.append([cell(v) for v in row.values()])
    path = tmp_path / name
    book.save(path)
    return path


def cell(value: str) -> object:
    if value.isdigit():
        return int(value)
    if len(value) == 7 and value[4] == "-" and value[:4].isdigit():
        return datetime(int(value[:4]), int(value[5:]), 1)
    return value


def read(path: Path) -> Parsed:
    return HospitalAdmissions().read(path)


def reconciles(parsed: Parsed) -> None:
    loaded = set(parsed.aggregates["row_number"])
    quarantined = set(parsed.quarantine["row_number"])
    assert not loaded & quarantined
    assert loaded | quarantined == set(range(2, parsed.rows_read + 2))


def one_row(tmp_path: Path, **changes: str) -> dict:
    """The single aggregate of a one-row file with `changes` applied."""
    row = {"area_code": LSOAS[0], "period": "2024-03", "cause": "X99", "age_band": "18-24",
           "sex": "Male", "count": "7"} | changes
    parsed = read(write_csv(tmp_path, [row]))
    assert parsed.quarantine.height == 0, parsed.quarantine.to_dicts()
    [aggregate] = parsed.aggregates.to_dicts()
    return aggregate


# ------------------------------------------------------------------------------ good files


def test_reads_a_realistic_long_csv_extract(tmp_path):
    rows = long_rows()
    parsed = read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.rows_read == parsed.aggregates.height == len(rows) == 324
    reconciles(parsed)
    assert parsed.events.height == 0 and parsed.events.columns == list(EVENT_COLUMNS)
    assert parsed.aggregates.columns == list(AGGREGATE_COLUMNS)
    assert contract_problems(parsed.events, None, parsed.aggregates) == []
    agg = parsed.aggregates
    expected_sum, expected_suppressed = totals(rows, ["Admissions"])
    assert agg["value"].sum() == expected_sum
    assert agg["suppressed"].sum() == expected_suppressed > 0
    assert agg.filter(pl.col("suppressed"))["value"].null_count() == expected_suppressed
    assert set(agg.filter(pl.col("suppressed"))["context"]) == {f"suppressed={m}"
                                                                 for m in MARKERS}
    assert agg.filter(~pl.col("suppressed"))["context"].null_count() == agg.height - \
        expected_suppressed
    assert set(agg["measure"]) == {MEASURE} and set(agg["area_type"]) == {"lsoa"}
    assert set(agg["period_type"]) == {"month"} and set(agg["sex"]) == {"M", "F"}
    assert set(agg["icd10"]) == {"X99", "Y04", "Y00"} and set(agg["age_band"]) == set(BANDS)
    assert set(agg["category"]) == {"assault by sharp object", "assault by bodily force",
                                    "assault by blunt object"}
    assert set(agg["period_start"]) == {date(2024, m, 1) for m in range(4, 10)}
    assert parsed.period == (date(2024, 4, 1), date(2024, 9, 30))
    first = agg.row(0, named=True)
    assert first["row_number"] == 2 and first["period_end"] == date(2024, 4, 30)


def test_xlsx_with_number_and_date_cells_reads_as_the_csv(tmp_path):
    rows = long_rows(months=["2024-04", "2024-05"])
    from_csv = read(write_csv(tmp_path, rows))
    from_xlsx = read(write_xlsx(tmp_path, rows))
    assert from_xlsx.quarantine.height == 0
    assert from_xlsx.aggregates.equals(from_csv.aggregates)


def test_wide_layout_is_unpivoted_keeping_source_row_numbers(tmp_path):
    rows = wide_rows()
    parsed = read(write_csv(tmp_path, rows))
    assert parsed.quarantine.height == 0
    assert parsed.rows_read == len(rows) == 24 and parsed.aggregates.height == 72
    reconciles(parsed)
    assert contract_problems(parsed.events, None, parsed.aggregates) == []
    agg = parsed.aggregates
    expected_sum, expected_suppressed = totals(rows, ["Age 0-17", "Age 18-24", "Age 25+"])
    assert agg["value"].sum() == expected_sum and agg["suppressed"].sum() == expected_suppressed
    first = agg.filter(pl.col("row_number") == 2)
    assert first["age_band"].to_list() == BANDS
    assert set(first["area_name"]) == {"Plymouth"} and set(first["sex"]) == {"M"}
    assert set(agg["area_type"]) == {"lad"} and set(agg["period_type"]) == {"financial year"}
    assert set(agg["icd10"]) == {"X99", "X85-Y09"}
    assert set(agg["category"]) == {"assault by sharp object", "all assault"}
    assert agg.filter(pl.col("sex").is_null()).height == 24  # 'Persons': all persons
    assert parsed.period == (date(2022, 4, 1), date(2024, 3, 31))
    assert any(n.startswith("wide layout") for n in parsed.notes)


def test_wide_xlsx_reads_as_the_wide_csv(tmp_path):
    rows = wide_rows()
    assert read(write_xlsx(tmp_path, rows)).aggregates.equals(
        read(write_csv(tmp_path, rows)).aggregates)


def test_wide_total_column_is_the_all_ages_band(tmp_path):
    rows = [{"la code": PLYMOUTH, "period": "2023/24", "icd10": "X99", "0-17": "6",
             "18 to 24": "9", "Under 25": "15", "65 and over": "*", "All ages": "40"}]
    parsed = read(write_csv(tmp_path, rows))
    assert parsed.aggregates["age_band"].to_list() == ["0-17", "18-24", "under 25", "65+", None]
    assert parsed.aggregates["value"].to_list() == [6.0, 9.0, 15.0, None, 40.0]


@pytest.mark.parametrize(("written", "start", "end", "kind"), [
    ("2024-03", date(2024, 3, 1), date(2024, 3, 31), "month"),
    ("Mar-24", date(2024, 3, 1), date(2024, 3, 31), "month"),
    ("March 2024", date(2024, 3, 1), date(2024, 3, 31), "month"),
    ("2024-02-01", date(2024, 2, 1), date(2024, 2, 29), "month"),
    ("01/02/2024", date(2024, 2, 1), date(2024, 2, 29), "month"),
    ("2023/24", date(2023, 4, 1), date(2024, 3, 31), "financial year"),
    ("2023-24", date(2023, 4, 1), date(2024, 3, 31), "financial year"),
    ("FY2023/24", date(2023, 4, 1), date(2024, 3, 31), "financial year"),
    ("FY 2023-2024", date(2023, 4, 1), date(2024, 3, 31), "financial year"),
    ("Q1 2024/25", date(2024, 4, 1), date(2024, 6, 30), "quarter"),
    ("2023/24 Q4", date(2024, 1, 1), date(2024, 3, 31), "quarter"),
    ("Q3 2023", date(2023, 7, 1), date(2023, 9, 30), "quarter"),
    ("2023", date(2023, 1, 1), date(2023, 12, 31), "calendar year"),
    ("2020/21 - 22/23", date(2020, 4, 1), date(2023, 3, 31), "other"),
])
def test_period_spellings(tmp_path, written, start, end, kind):
    aggregate = one_row(tmp_path, period=written)
    assert (aggregate["period_start"], aggregate["period_end"], aggregate["period_type"]) == (
        start, end, kind)


@pytest.mark.parametrize(("columns", "start", "end", "kind"), [
    ({"year": "2024", "month": "3"}, date(2024, 3, 1), date(2024, 3, 31), "month"),
    ({"year": "2024", "month": "March"}, date(2024, 3, 1), date(2024, 3, 31), "month"),
    ({"financial_year": "2023/24", "month": "Feb"}, date(2024, 2, 1), date(2024, 2, 29),
     "month"),
    ({"financial_year": "2024/25", "quarter": "2"}, date(2024, 7, 1), date(2024, 9, 30),
     "quarter"),
    ({"financial year": "2011-12"}, date(2011, 4, 1), date(2012, 3, 31), "financial year"),
    ({"Calendar Year": "2022"}, date(2022, 1, 1), date(2022, 12, 31), "calendar year"),
])
def test_period_from_separate_columns(tmp_path, columns, start, end, kind):
    row = {"area_code": PLYMOUTH, **columns, "cause": "X99", "count": "10"}
    [aggregate] = read(write_csv(tmp_path, [row])).aggregates.to_dicts()
    assert (aggregate["period_start"], aggregate["period_end"], aggregate["period_type"]) == (
        start, end, kind)


@pytest.mark.parametrize(("written", "icd10", "category"), [
    ("X99", "X99", "assault by sharp object"),
    ("x99.0", "X99", "assault by sharp object"),
    ("X99 Assault by sharp object", "X99", "assault by sharp object"),
    ("X85-Y09", "X85-Y09", "all assault"),
    ("X85–Y09 (all assault)", "X85-Y09", "all assault"),
    ("X85 to Y09", "X85-Y09", "all assault"),
    ("All assault", "X85-Y09", "all assault"),
    ("X93-X95", "X93-X95", "assault by firearm discharge"),
    ("Y04", "Y04", "assault by bodily force"),
    ("Y05", "Y05", "sexual assault by bodily force"),
    ("Assault by blunt object", "Y00", "assault by blunt object"),
])
def test_cause_spellings(tmp_path, written, icd10, category):
    aggregate = one_row(tmp_path, cause=written)
    assert (aggregate["icd10"], aggregate["category"]) == (icd10, category)


@pytest.mark.parametrize(("written", "band"), [
    ("0-17", "0-17"), ("18 to 24", "18-24"), ("Aged 25+", "25+"), ("25 and over", "25+"),
    ("under 25", "under 25"), ("<18", "under 18"), ("17 and under", "0-17"),
    ("18-24 years", "18-24"), ("All ages", None), ("", None),
])
def test_age_band_spellings(tmp_path, written, band):
    assert one_row(tmp_path, age_band=written)["age_band"] == band


@pytest.mark.parametrize(("written", "sex"), [
    ("Male", "M"), ("m", "M"), ("1", "M"), ("Female", "F"), ("FEMALES", "F"), ("2", "F"),
    ("Persons", None), ("All", None), ("", None), ("Not known", "U"),
])
def test_sex_spellings(tmp_path, written, sex):
    assert one_row(tmp_path, sex=written)["sex"] == sex


@pytest.mark.parametrize("marker", [*MARKERS, "<10", "1 to 7", "[x]"])
def test_suppression_markers_load_with_no_value(tmp_path, marker):
    aggregate = one_row(tmp_path, count=marker)
    assert aggregate["value"] is None and aggregate["suppressed"] is True
    assert aggregate["context"] == f"suppressed={marker}"


@pytest.mark.parametrize(("written", "value"), [("0", 0.0), ("12.0", 12.0), ("1,234", 1234.0)])
def test_counts(tmp_path, written, value):
    aggregate = one_row(tmp_path, count=written)
    assert aggregate["value"] == value and aggregate["suppressed"] is False


@pytest.mark.parametrize(("code", "area_type"), [
    ("E01015023", "lsoa"), ("e01015023", "lsoa"), ("E02003124", "msoa"), ("E05002078", "ward"),
    ("E06000026", "lad"), ("E07000045", "lad"), ("E08000012", "lad"), ("E09000001", "lad"),
    ("W06000015", "lad"), ("E22000056", "csp"), ("E23000035", "pfa"), ("W01000001", "lsoa"),
])
def test_area_type_from_the_code(tmp_path, code, area_type):
    aggregate = one_row(tmp_path, area_code=code)
    assert (aggregate["area_code"], aggregate["area_type"]) == (code.upper(), area_type)


def test_stated_area_type(tmp_path):
    assert one_row(tmp_path, area_code=PLYMOUTH, area_type="Local authority")["area_type"] == "lad"
    assert one_row(tmp_path, area_code="RK9", area_type="Provider")["area_type"] == "provider"


def test_column_name_variants(tmp_path):
    rows = long_rows(months=["2024-04"])
    renamed = [{"Residence LSOA": r["LSOA code"], "Time period": r["Period"],
                "External cause code": r["ICD10"], "age_band": r["Age group"],
                "Gender": r["Sex"], "Number of episodes": r["Admissions"]} for r in rows]
    parsed = read(write_csv(tmp_path, renamed, name="v.csv"))
    assert parsed.aggregates.equals(read(write_csv(tmp_path, rows)).aggregates)
    assert any(n.startswith("columns read:") for n in parsed.notes)


# ---------------------------------------------------------------------------- row problems

ROW_PROBLEMS = [
    ("area_code", "", "area_code", None, "area code is empty"),
    ("area_code", "Plymouth 003A", "area_code", "Plymouth 003A", "not an LSOA, MSOA, ward"),
    ("area_code", "E10000008", "area_code", "E10000008", "not an LSOA, MSOA, ward"),
    ("period", "", "period", None, "period is empty"),
    ("period", "2024-13", "period", "2024-13", "not a month, quarter or year"),
    ("period", "Spring", "period", "Spring", "not a month, quarter or year"),
    ("period", "17/03/2024", "period", "17/03/2024", "single day"),
    ("period", "2099-01", "period", "2099-01", "in the future"),
    ("cause", "", "cause", None, "cause (ICD-10 code) is empty"),
    ("cause", "stabbing", "cause", "stabbing", "not an ICD-10 code"),
    ("cause", "X78", "cause", "X78", "intentional self-harm"),
    ("cause", "W25", "cause", "W25", "an accident"),
    ("cause", "Y28", "cause", "Y28", "undetermined intent"),
    ("cause", "S21.1", "cause", "S21.1", "not an external cause of assault"),
    ("cause", "X60-Y09", "cause", "X60-Y09", "intentional self-harm"),
    ("count", "", "count", None, "count is empty"),
    ("count", "-3", "count", "-3", "negative or not a whole number"),
    ("count", "2.5", "count", "2.5", "negative or not a whole number"),
    ("count", "n/a", "count", "n/a", "not a number nor a suppression marker"),
    ("sex", "Q", "sex", "Q", "sex is not one we know"),
    ("age_band", "adults", "age_band", "adults", "age band is not one we can read"),
    ("age_band", "24-18", "age_band", "24-18", "age band is not one we can read"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ROW_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ROW_PROBLEMS])
def test_row_problem_is_quarantined_with_column_value_reason_and_fix(
        tmp_path, changed, written, column, value, reason):
    rows = [{"area_code": LSOAS[i], "period": "2024-03", "cause": "X99", "age_band": "18-24",
             "sex": "Male", "count": "7"} for i in range(3)]
    rows[1][changed] = written
    parsed = read(write_csv(tmp_path, rows))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert (line["column"], line["value"]) == (column, value)
    assert reason in line["reason"], line["reason"]
    assert line["fix"] and line["record"].startswith("{") and '"area_code"' in line["record"]
    assert parsed.aggregates["row_number"].to_list() == [2, 4]
    reconciles(parsed)


def test_non_assault_code_fix_says_to_send_assault_codes_only(tmp_path):
    rows = [{"area_code": PLYMOUTH, "period": "2023/24", "cause": c, "count": "9"}
            for c in ("X99", "X78", "W25")]
    lines = read(write_csv(tmp_path, rows)).quarantine.to_dicts()
    assert [line["value"] for line in lines] == ["X78", "W25"]
    for line in lines:
        assert "not assault" in line["reason"]
        assert "assault only" in line["fix"] and "X85-Y09" in line["fix"]


def test_area_type_problems(tmp_path):
    rows = [{"area_code": c, "area_type": t, "period": "2023/24", "cause": "X99", "count": "9"}
            for c, t in ((PLYMOUTH, "LAD"), (PLYMOUTH, "LSOA"), (PLYMOUTH, "county"))]
    lines = read(write_csv(tmp_path, rows)).quarantine.to_dicts()
    assert [(r["row_number"], r["column"], r["reason"]) for r in lines] == [
        (3, "area_type", "area type does not match the area code"),
        (4, "area_type", "area type is not one we know")]


def test_duplicate_rows_quarantine_the_later_one(tmp_path):
    rows = long_rows(months=["2024-04"])[:4]
    rows.append({**rows[1], "Period": "Apr-24"})  # the same month, written differently
    rows.append({**rows[2], "Admissions": "9"})  # the same breakdown, another count
    parsed = read(write_csv(tmp_path, rows))
    lines = parsed.quarantine.to_dicts()
    assert [(r["row_number"], r["column"]) for r in lines] == [(6, "area_code"),
                                                                (7, "area_code")]
    assert lines[0]["reason"] == ("area, period, cause, age band and sex are already given on "
                                  "row 3")
    assert lines[1]["reason"].endswith("row 4")
    assert lines[0]["value"] == "E01015023 | Apr-24 | X99 | 0-17 | Female"
    assert "delete the repeated row" in lines[0]["fix"]
    reconciles(parsed)


def test_wide_row_with_one_bad_cell_is_quarantined_whole(tmp_path):
    rows = wide_rows()[:3]
    rows[1]["Age 18-24"] = "-2"
    rows[2]["Age 0-17"] = ""
    parsed = read(write_csv(tmp_path, rows))
    lines = parsed.quarantine.to_dicts()
    assert [(r["row_number"], r["value"]) for r in lines] == [(3, "Age 18-24: -2"),
                                                              (4, "Age 0-17: (blank)")]
    assert set(parsed.aggregates["row_number"]) == {2}
    reconciles(parsed)


def test_wide_row_with_a_bad_area_gives_one_line(tmp_path):
    rows = wide_rows()[:2]
    rows[1]["Area Code"] = "Plymouth"
    parsed = read(write_csv(tmp_path, rows))
    assert parsed.quarantine.select("row_number", "column").rows() == [(3, "area_code")]


def test_reconciles_with_many_mixed_problems(tmp_path):
    rows = long_rows(seed=5)
    rng = random.Random(2)
    for r in rng.sample(rows, 60):
        column, bad = rng.choice([("Period", "Q5 2024"), ("ICD10", "X78"), ("LSOA code", "X"),
                                  ("Admissions", "-1"), ("Sex", "?"), ("Age group", "old")])
        r[column] = bad
    parsed = read(write_csv(tmp_path, rows))
    assert parsed.aggregates.height + parsed.quarantine["row_number"].n_unique() == len(rows)
    reconciles(parsed)


# --------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> str:
    with pytest.raises(FileError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_empty_file(tmp_path):
    path = tmp_path / "admissions.csv"
    path.write_bytes(b"")
    raises(path, "the file is empty")


def test_header_only(tmp_path):
    path = tmp_path / "admissions.csv"
    path.write_text("area_code,period,cause,count\n")
    raises(path, "header but no data rows")


def test_wrong_columns(tmp_path):
    rows = [{"Area": PLYMOUTH, "Period": "2023/24", "ICD 10 Cod": "X99", "Count": "4"}]
    raises(write_csv(tmp_path, rows), "required column(s) missing: cause",
           "did you mean 'ICD 10 Cod'")


def test_no_count_column(tmp_path):
    rows = [{"Area": PLYMOUTH, "Period": "2023/24", "Cause": "X99", "Rate": "4.1"}]
    raises(write_csv(tmp_path, rows), "no count column", "one count column per age band")


def test_no_period_column(tmp_path):
    rows = [{"Area": PLYMOUTH, "Cause": "X99", "Count": "4"}]
    raises(write_csv(tmp_path, rows), "no period column")


def test_both_layouts_at_once(tmp_path):
    rows = [{"Area": PLYMOUTH, "Period": "2023/24", "Cause": "X99", "Count": "4", "0-17": "1"}]
    raises(write_csv(tmp_path, rows), "cannot be both layouts")


@pytest.mark.parametrize("columns", [
    {"Episode ID": "123456"}, {"Patient ID": "P001"}, {"Admission date": "17/03/2024"},
    {"ADMIDATE": "2024-03-17"}, {"EPIKEY": "9"}, {"Postcode": "PL1 1AA"},
])
def test_person_level_file_is_rejected_citing_s16(tmp_path, columns):
    rows = [{**columns, "area_code": LSOAS[0], "period": "2024-03", "cause": "X99",
             "count": "1"}]
    raises(write_csv(tmp_path, rows), "looks like a person-level extract",
           f"columns {next(iter(columns))}", "s.16(4)", "aggregated counts only")


def test_person_level_hes_extract_without_our_columns_is_rejected_as_person_level(tmp_path):
    rows = [{"EPIKEY": "1", "ADMIDATE": "2024-03-17", "DIAG_01": "S21.1", "CAUSE": "X99",
             "LSOA11": LSOAS[0]}]
    raises(write_csv(tmp_path, rows), "person-level", "s.16(4)")


def test_identifier_columns_are_refused_asking_for_counts(tmp_path):
    rows = [{"area_code": LSOAS[0], "period": "2024-03", "cause": "X99", "count": "1",
             "Date of birth": "01/01/2000"}]
    raises(write_csv(tmp_path, rows), "identify people directly (Date of birth)",
           "aggregated counts only", "s.16(4)")


def test_every_period_a_single_day_means_one_row_per_admission(tmp_path):
    rows = [{"area_code": LSOAS[0], "period": f"{d:02d}/03/2024", "cause": "X99", "count": "1"}
            for d in (3, 9, 17)]
    raises(write_csv(tmp_path, rows), "every period in 'period' is a single day", "s.16(4)")


def test_not_utf8(tmp_path):
    rows = [{"area_code": PLYMOUTH, "area_name": "Plymouth", "period": "2023/24",
             "cause": "X99", "count": "4"}] * 2
    rows[1] = {**rows[1], "area_name": "Plymouth Caf\xe9"}
    path = tmp_path / "admissions.csv"
    path.write_bytes(pl.DataFrame(rows).write_csv().encode("cp1252"))
    raises(path, "not UTF-8", "line 3", "CSV UTF-8")


def test_xlsx_with_notes_above_the_table(tmp_path):
    path = write_xlsx(tmp_path, long_rows(months=["2024-04"])[:3], above=[
        ["Emergency admissions for assault, Plymouth residents"], ["Source: SUS"], []])
    raises(path, "the table must start in row 1: found the header on row 4")


def test_docs_list_every_column_and_variant():
    text = DOCS.read_text().lower()
    for canonical, column in SPEC.items():
        assert f"`{canonical}`" in text, canonical
        for alias in column.aliases:
            assert alias in text, alias
    for marker in MARKERS:
        assert f"`{marker}`" in text, marker
    assert "s.16(4)" in text and "x85" in text


# ---------------------------------------------------------------------------------- ingest


def aggregates(root: Path, where: str = "true") -> list[tuple]:
    return query(root, f"""SELECT count(*), sum(value), count(*) FILTER (suppressed)
        FROM aggregates WHERE {where}""")


def test_ingest_loads_aggregates_harmonised_and_marked(plymouth, tmp_path):  # noqa: F811
    rows = long_rows(areas=[*LSOAS[:2], LSOA_2011_ONLY], months=MONTHS[:3])
    rows[5]["ICD10"] = "X78"
    rows[9]["LSOA code"] = "E01999999"  # well-formed but in neither vintage
    path = write_csv(tmp_path, rows)
    [result] = ingest(plymouth, get_source("hospital-admissions"), [path],
                      partner="NHS Devon ICB")
    assert result.status == "loaded", result.message
    assert result.rows_read == len(rows) == result.rows_loaded + result.rows_quarantined
    assert result.rows_quarantined == 2 and result.rows_out_of_area == 0
    loaded = [r for i, r in enumerate(rows) if i not in (5, 9)]
    expected_sum, expected_suppressed = totals(loaded, ["Admissions"])
    assert aggregates(plymouth.root) == [(len(loaded), expected_sum, expected_suppressed)]
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(0,)]
    harmonised = query(plymouth.root, """SELECT DISTINCT area_code, lsoa21_code, in_area
        FROM aggregates ORDER BY 1""")
    assert harmonised == [(LSOAS[0], LSOAS[0], True), (LSOAS[1], LSOAS[1], True),
                          (LSOA_2011_ONLY, LSOA_2011_BEST_FIT, True)]
    lines = query(plymouth.root, """SELECT row_number, "column", value, reason, fix
        FROM quarantine ORDER BY row_number""")
    assert [line[:3] for line in lines] == [(7, "cause", "X78"),
                                            (11, "area_code", "E01999999")]
    assert "self-harm" in lines[0][3] and "not in the 2011 or 2021" in lines[1][3]
    assert all(line[4] for line in lines)
    assert query(plymouth.root, "SELECT rows_read, rows_loaded + rows_quarantined, scope "
                 "FROM loads") == [(len(rows), len(rows), "nhs-devon-icb")]


def test_ingest_wide_financial_years_marks_other_areas_out(plymouth, tmp_path):  # noqa: F811
    rows = wide_rows()
    [result] = ingest(plymouth, get_source("hospital-admissions"), [write_csv(tmp_path, rows)])
    assert result.status == "loaded", result.message
    assert result.rows_loaded == 24 and result.rows_out_of_area == 12  # rows, not values
    in_area = dict(query(plymouth.root, """SELECT area_code, bool_and(in_area)
        FROM aggregates GROUP BY ALL"""))
    assert in_area == {PLYMOUTH: True, LIVERPOOL: False}
    expected_sum, expected_suppressed = totals(rows, ["Age 0-17", "Age 18-24", "Age 25+"])
    assert aggregates(plymouth.root) == [(72, expected_sum, expected_suppressed)]
    assert query(plymouth.root, "SELECT DISTINCT lsoa21_code FROM aggregates") == [(None,)]


def test_reingest_changes_nothing_and_newer_file_supersedes(plymouth, tmp_path):  # noqa: F811
    source = get_source("hospital-admissions")
    rows = long_rows(months=["2024-04", "2024-05"])
    first = write_csv(tmp_path, rows, name="admissions-2024-05.csv")
    ingest(plymouth, source, [first])
    before = aggregates(plymouth.root)
    [again] = ingest(plymouth, source, [first])
    assert again.status == "skipped" and "already loaded as load 1" in again.message
    assert aggregates(plymouth.root) == before
    revised = [{**r, "Admissions": "10"} for r in rows[:-10]]  # re-issued, 10 rows fewer
    [result] = ingest(plymouth, source, [write_csv(tmp_path, revised, name="revised.csv")])
    assert result.status == "loaded" and result.superseded == [1]
    assert aggregates(plymouth.root) == [(len(revised), 10.0 * len(revised), 0)]
    assert query(plymouth.root, "SELECT DISTINCT load_id FROM aggregates") == [(2,)]
    status = dict(query(plymouth.root, "SELECT load_id, status FROM loads"))
    assert status == {1: "superseded", 2: "active"}


def test_a_later_month_adds_to_the_earlier_one(plymouth, tmp_path):  # noqa: F811
    source = get_source("hospital-admissions")
    ingest(plymouth, source, [write_csv(tmp_path, long_rows(months=["2024-04"]), "a.csv")])
    ingest(plymouth, source, [write_csv(tmp_path, long_rows(months=["2024-05"]), "b.csv")])
    months = query(plymouth.root, """SELECT period_start, count(*) FROM aggregates
        GROUP BY ALL ORDER BY 1""")
    assert months == [(date(2024, 4, 1), 54), (date(2024, 5, 1), 54)]


def test_rejected_file_loads_nothing(plymouth, tmp_path):  # noqa: F811
    rows = [{"Patient ID": "P1", "area_code": LSOAS[0], "period": "2024-03", "cause": "X99",
             "count": "1"}]
    [result] = ingest(plymouth, get_source("hospital-admissions"), [write_csv(tmp_path, rows)])
    assert result.status == "rejected" and "s.16(4)" in result.message
    assert query(plymouth.root, "SELECT (SELECT count(*) FROM aggregates), "
                 "(SELECT count(*) FROM loads), (SELECT count(*) FROM quarantine)") == [(0, 0, 0)]
