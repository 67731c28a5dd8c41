"""The school reader: suspensions and exclusions pseudonymised as a partner would, persistent
absence by school and by LSOA (CSV and XLSX), every row and file problem, and ingest."""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from svduty.privacy.keys import load_key, new_key
from svduty.privacy.pseudonymise import pseudonymise, token
from svduty.sources import get_source
from svduty.sources.base import AGGREGATE_COLUMNS, EVENT_COLUMNS, FileError, Parsed
from svduty.sources.contract import contract_problems
from svduty.sources.ingest import ingest
from svduty.sources.school import ABSENCE_SPEC, EXCLUSION_SPEC, REASONS, School, parse_period
from svduty.warehouse import connect

from .test_ingest import plymouth, query  # noqa: F401 - `plymouth` is a fixture

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources" / "school.md"
HEX64 = re.compile(r"[0-9a-f]{64}")
# Real LSOA 2011 codes in Plymouth (E06000026).
LSOAS = ["E01015023", "E01015024", "E01015025", "E01015165", "E01015147", "E01015143"]
SCHOOLS = {"113512": "Tamar Valley Community College", "136987": "Hoe Park Academy",
           "140214": "Stonehouse Creek School"}
# Every name has a letter past f, so it cannot turn up inside a hex token by chance.
FORENAMES = ["Jayden", "Olivia", "Kacper", "Amelia", "Tyler", "Ruby", "Mohammed", "Lily"]
SURNAMES = ["Smith", "Jones", "O'Brien", "Nowak", "Khan", "Williams", "Taylor", "Wilson"]
CATEGORIES = ["Suspension", "Fixed-term exclusion", "FIXD", "Permanent exclusion", "PERM"]
WRITTEN_REASONS = ["PP", "Physical assault against an adult",
                   "Verbal abuse/threatening behaviour against a pupil", "VA", "OW",
                   "Drug and alcohol related", "PD", "Bullying", "RA", "SM", "DM", "TH", "MT",
                   "Other"]


# ---------------------------------------------------------------------------- generating


def pupils(n: int = 30, seed: int = 11) -> list[dict[str, str]]:
    """Fake pupils: names, dates of birth (2008-2013), UPNs (first letter past f)."""
    rng = random.Random(seed)
    return [{
        "Forename": rng.choice(FORENAMES),
        "Surname": f"{rng.choice(SURNAMES)}-{''.join(rng.choices('ghijkmnpqrstuvwxyz', k=4))}",
        "Date of Birth": (date(2008, 1, 1) + timedelta(days=rng.randrange(2190)))
        .strftime("%d/%m/%Y"),
        "UPN": rng.choice("GHJKLMNPQRTUVWXYZ") + "".join(rng.choices("0123456789", k=11))
        + rng.choice("0123456789A"),
    } for _ in range(n)]


def raw_extract(n: int = 80, seed: int = 5) -> list[dict[str, str]]:
    """What the LA's education system exports: one row per suspension or exclusion."""
    rng = random.Random(seed)
    people = pupils()
    rows = []
    for i in range(n):
        person = people[rng.randrange(len(people))]  # many pupils are suspended repeatedly
        start = date(2023, 9, 4) + timedelta(days=rng.randrange(300))
        born = datetime.strptime(person["Date of Birth"], "%d/%m/%Y").date()
        urn = rng.choice(list(SCHOOLS))
        cat = CATEGORIES[i % len(CATEGORIES)]
        rows.append(person | {
            "Exclusion ID": f"EX{24000 + i}",
            "Start Date": start.strftime("%d/%m/%Y"),
            "Category": cat,
            "Reason": WRITTEN_REASONS[i % len(WRITTEN_REASONS)],
            "Sessions": "" if "erm" in cat.lower() else str(rng.choice([1, 2, 3, 5, 10])),
            "URN": urn,
            "School Name": SCHOOLS[urn],
            "Age": str((start - born).days // 365),
            "Sex": rng.choice(["M", "F"]),
            "Ethnicity": rng.choice(["WBRI", "WOTH", "MWBC", "AOTH", "BAFR"]),
            "SEN": rng.choice(["N", "K", "E"]),
            "FSM": rng.choice(["Y", "N"]),
            "Home LSOA": LSOAS[i % len(LSOAS)],
        })
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pl.DataFrame(rows, schema={c: pl.String for c in rows[0]}).write_csv(path)
    return path


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> bytes:
    return load_key(new_key(tmp_path_factory.mktemp("key") / "partnership.key"))


@pytest.fixture(scope="module")
def sent(tmp_path_factory, key):
    """The raw extract, pseudonymised on the LA's machine: (raw rows, output CSV path)."""
    folder = tmp_path_factory.mktemp("school")
    rows = raw_extract()
    src = write_csv(folder / "exclusions-raw.csv", rows)
    out = folder / "exclusions-2023-24.csv"
    report = pseudonymise(src, out, key, "education")
    assert report.rows_written == len(rows) and set(report.identifiers) == {
        "forename", "surname", "dob", "upn"}
    return rows, out


def sent_rows(out: Path) -> list[dict[str, str]]:
    return pl.read_csv(out, infer_schema=False).fill_null("").to_dicts()


def as_xlsx(path: Path, rows: list[dict[str, str]], sheet: str = "Exclusions") -> Path:
    """The same rows as an Excel workbook with real date and number cells."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(list(rows[0]))
    for row in rows:
        ws.append([cell(k, v) for k, v in row.items()])
    book.save(path)
    return path


def cell(column: str, value: str) -> object:
    if not value:
        return None
    if column == "Start Date":
        return datetime.strptime(value, "%d/%m/%Y")
    if column in ("URN", "Sessions", "Age", "school_urn", "enrolments"):
        return int(value)
    return value


def reconciles(parsed: Parsed) -> None:
    loaded = set(parsed.events["row_number"])
    if parsed.aggregates is not None:
        loaded |= set(parsed.aggregates["row_number"])
    quarantined = set(parsed.quarantine["row_number"])
    assert not loaded & quarantined
    assert loaded | quarantined == set(range(2, parsed.rows_read + 2))


def absence_by_school() -> list[dict[str, str]]:
    """DfE-style school-level persistent absence, with suppressed cells."""
    rows = []
    for period, ident in (("202223", "Full academic year"), ("202324", "Full academic year"),
                          ("202324", "Autumn term")):
        for urn, name in SCHOOLS.items():
            rows.append({"time_period": period, "time_identifier": ident,
                         "geographic_level": "School", "new_la_code": "E06000026",
                         "la_name": "Plymouth", "school_urn": urn, "school_name": name,
                         "enrolments": "1012", "enrolments_pa_10_exact": "231",
                         "enrolments_pa_50_exact": "24"})
    rows[2] |= {"enrolments_pa_50_exact": "c"}
    return rows


def absence_by_lsoa() -> list[dict[str, str]]:
    return [{"Academic Year": year, "LSOA": lsoa, "Year Group": group, "Pupils": "120",
             "PA count": str(20 + i), "Severe absentees": "x" if i % 5 == 0 else "3"}
            for i, (year, lsoa, group) in enumerate(
                (y, lsoa, g) for y in ("2022/23", "2023-24") for lsoa in LSOAS
                for g in ("Year 9", "Year 10"))]


# ------------------------------------------------------------------ suspensions, exclusions


def test_pseudonymised_extract_reads_into_events_pupils_and_tokens(sent, key):
    rows, out = sent
    parsed = School().read(out)
    assert parsed.quarantine.height == 0, parsed.quarantine.to_dicts()
    assert parsed.rows_read == parsed.events.height == parsed.involvements.height == len(rows)
    reconciles(parsed)
    assert contract_problems(parsed.events, parsed.involvements) == []
    assert parsed.events.columns == list(EVENT_COLUMNS)
    assert parsed.scope == "suspensions-exclusions"
    events = parsed.events.to_dicts()
    first = events[0]
    assert first["source_record_id"] == "EX24000"
    assert first["occurred_on"].strftime("%d/%m/%Y") == rows[0]["Start Date"]
    assert first["month"] == first["occurred_on"].replace(day=1)
    assert first["lsoa_code"] == rows[0]["Home LSOA"]
    assert first["location_type"] == "home LSOA (residence)"
    assert first["source_category"] == "suspension"
    assert first["context"] == (f"reason=Physical assault against a pupil; urn={rows[0]['URN']}; "
                                f"sessions={rows[0]['Sessions']}; school={rows[0]['School Name']}; "
                                f"sen={rows[0]['SEN']}; fsm={rows[0]['FSM']}")
    assert {e["source_category"] for e in events} == {"suspension", "permanent exclusion"}
    assert events[3]["source_category"] == "permanent exclusion"  # "Permanent exclusion"
    weapons = {e["context"].split(";")[0]: e["weapon"] for e in events}
    assert weapons[f"reason={REASONS['OW']}"] == "other"
    assert sum(w == "other" for w in weapons.values()) == 1
    reasons = {e["context"].split(";")[0].removeprefix("reason=") for e in events}
    assert reasons == {REASONS[c] for c in ("PP", "PA", "VP", "VA", "OW", "DA", "PD", "BU",
                                            "RA", "SM", "DM", "TH", "MT", "OT")}
    pupil = parsed.involvements.row(0, named=True)
    upn = rows[0]["UPN"]
    assert pupil["person_key"] == token(key, "person_key", f"upn:{upn}")
    assert pupil["role"] == "pupil" and pupil["age"] == int(rows[0]["Age"])
    assert pupil["age_band"] == "10-17" and pupil["sex"] in ("male", "female")
    assert pupil["ethnicity"] == rows[0]["Ethnicity"]


def test_person_tokens_are_kept_for_linkage(sent, key):
    rows, out = sent
    tokens = School().read(out).tokens
    assert set(tokens["field"]) == {"forename_token", "surname_token", "dob_token", "upn_token",
                                    "dob_year", "dob_swapped", "forename_soundex",
                                    "forename_initial", "surname_soundex", "surname_nysiis"}
    assert tokens["token"].str.contains(r"^[0-9a-f]{64}$").all()
    first = tokens.filter(pl.col("row_number") == 2)
    upn = first.filter(pl.col("field") == "upn_token")["token"].item()
    assert upn == token(key, "upn", rows[0]["UPN"])
    assert first["person_key"].unique().to_list() == [token(key, "person_key",
                                                            f"upn:{rows[0]['UPN']}")]


def test_xlsx_with_real_cells_reads_as_the_csv(sent, tmp_path):
    _, out = sent
    from_csv = School().read(out)
    from_xlsx = School().read(as_xlsx(tmp_path / "exclusions.xlsx", sent_rows(out)))
    assert from_xlsx.quarantine.height == 0, from_xlsx.quarantine.to_dicts()
    assert from_xlsx.events.equals(from_csv.events)
    assert from_xlsx.involvements.equals(from_csv.involvements)
    assert from_xlsx.tokens.equals(from_csv.tokens)


def test_without_exclusion_id_the_id_is_built_and_repeats_are_caught(sent, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "Exclusion ID"} for r in sent_rows(sent[1])]
    rows[5] = dict(rows[1])
    parsed = School().read(write_csv(tmp_path / "noid.csv", rows))
    [line] = parsed.quarantine.to_dicts()
    assert line["row_number"] == 7 and line["column"] == "person_key"
    assert line["reason"] == ("the same pupil, start date, category and reason are already "
                              "given on row 3")
    first = parsed.events.row(0, named=True)
    key = parsed.involvements["person_key"][0]
    assert first["source_record_id"] == f"{key[:16]}/{first['occurred_on']:%Y%m%d}/2"
    reconciles(parsed)


@pytest.mark.parametrize(("written", "label"), [
    *[(code, label) for code, label in REASONS.items()],
    *[(code.lower(), label) for code, label in REASONS.items()],
    ("Verbal Abuse / Threatening Behaviour against an Adult", REASONS["VA"]),
    ("Physical assault against pupil", REASONS["PP"]),
    ("DRUG & ALCOHOL RELATED", REASONS["DA"]),
    ("Use, or threat of use, of an offensive weapon or prohibited item", REASONS["OW"]),
])
def test_reason_codes_and_labels(sent, tmp_path, written, label):
    rows = sent_rows(sent[1])[:2]
    rows[0]["Reason"] = written
    parsed = School().read(write_csv(tmp_path / "r.csv", rows))
    assert parsed.events["context"][0].startswith(f"reason={label};")
    assert (parsed.events["weapon"][0] == "other") == (label == REASONS["OW"])


@pytest.mark.parametrize(("written", "category"), [
    ("Suspension", "suspension"), ("fixed term exclusion", "suspension"),
    ("Fixed-period exclusion", "suspension"), ("FIXD", "suspension"),
    ("Permanent Exclusion", "permanent exclusion"), ("PERM", "permanent exclusion"),
    ("permanent", "permanent exclusion"),
])
def test_category_spellings(sent, tmp_path, written, category):
    rows = sent_rows(sent[1])[:2]
    rows[0]["Category"] = written
    parsed = School().read(write_csv(tmp_path / "c.csv", rows))
    assert parsed.events["source_category"][0] == category


EXCLUSION_PROBLEMS = [
    ("Exclusion ID", "", "exclusion_id", None, "exclusion id is empty"),
    ("person_key", "", "person_key", None, "person key is empty"),
    ("person_key", "K801200345678", "person_key", "[removed: 13 characters]",
     "not a pseudonymous person key"),
    ("Start Date", "31/02/2024", "start_date", "31/02/2024", "not a valid date"),
    ("Start Date", "", "start_date", None, "start date is empty"),
    ("Start Date", "01/01/2099", "start_date", "01/01/2099", "in the future"),
    ("Start Date", "01/01/0024", "start_date", "01/01/0024", "before 1990"),
    ("Category", "Internal exclusion", "category", "Internal exclusion",
     "not suspension or permanent exclusion"),
    ("Category", "", "category", None, "category is empty"),
    ("Reason", "Being late", "reason", "Being late", "not a DfE exclusion reason"),
    ("Reason", "", "reason", None, "reason is empty"),
    ("Sessions", "-2", "sessions", "-2", "not a number of sessions"),
    ("Sessions", "two", "sessions", "two", "not a number of sessions"),
    ("URN", "11351", "school_urn", "11351", "not a school URN"),
    ("Age", "3", "age", "3", "not a school age"),
    ("Age", "25", "age", "25", "not a school age"),
    ("Age", "12.5", "age", "12.5", "not a school age"),
    ("Sex", "Q", "sex", "Q", "sex is not one of"),
    ("FSM", "maybe", "fsm", "maybe", "free school meals is not Y, N or blank"),
    ("Home LSOA", "", "home_lsoa", None, "home LSOA is empty"),
    ("Home LSOA", "PL1 2AB", "home_lsoa", "PL1 2AB", "not an England or Wales LSOA code"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"),
                         EXCLUSION_PROBLEMS, ids=[f"{p[0]}={p[1]!r}" for p in EXCLUSION_PROBLEMS])
def test_exclusion_row_problem_is_quarantined(sent, tmp_path, changed, written, column, value,
                                              reason):
    rows = sent_rows(sent[1])[:3]
    rows[1][changed] = written
    parsed = School().read(write_csv(tmp_path / "x.csv", rows))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert line["column"] == column and line["value"] == value
    assert reason in line["reason"], line["reason"]
    assert line["fix"] and line["record"].startswith("{")
    assert "K801200345678" not in line["record"]
    assert parsed.events["row_number"].to_list() == [2, 4]
    assert parsed.involvements["row_number"].to_list() == [2, 4]
    assert set(parsed.tokens["row_number"]) == {2, 4}
    reconciles(parsed)


def test_unknown_age_is_loaded_without_age(sent, tmp_path):
    rows = sent_rows(sent[1])[:2]
    rows[0]["Age"] = "Not known"
    parsed = School().read(write_csv(tmp_path / "a.csv", rows))
    assert parsed.quarantine.height == 0 and parsed.involvements["age"][0] is None


def test_duplicate_exclusion_id_names_the_earlier_row(sent, tmp_path):
    rows = sent_rows(sent[1])[:4]
    rows[2]["Exclusion ID"] = rows[0]["Exclusion ID"]
    parsed = School().read(write_csv(tmp_path / "d.csv", rows))
    [line] = parsed.quarantine.to_dicts()
    assert (line["row_number"], line["column"], line["value"]) == (4, "exclusion_id", "EX24000")
    assert line["reason"] == "exclusion id is already given on row 2"
    reconciles(parsed)


# ------------------------------------------------------------------------ persistent absence


def test_absence_by_school_dfe_style(tmp_path):
    rows = absence_by_school()
    parsed = School().read(write_csv(tmp_path / "absence.csv", rows))
    assert parsed.quarantine.height == 0 and parsed.events.height == 0
    assert parsed.scope == "persistent-absence-school"
    agg = parsed.aggregates
    assert agg.columns == list(AGGREGATE_COLUMNS)
    assert contract_problems(parsed.events, None, agg) == []
    reconciles(parsed)
    assert agg.height == 2 * len(rows)
    assert agg.group_by("measure").len().sort("measure").rows() == [
        ("persistent absence", 9), ("severe absence", 9)]
    first = agg.row(0, named=True)
    assert (first["area_type"], first["area_code"], first["area_name"]) == (
        "school", "113512", SCHOOLS["113512"])
    assert (first["period_start"], first["period_end"], first["period_type"]) == (
        date(2022, 9, 1), date(2023, 8, 31), "academic year")
    assert (first["value"], first["denominator"], first["suppressed"]) == (231.0, 1012.0, False)
    hidden = agg.filter(pl.col("row_number") == 4, pl.col("measure") == "severe absence")
    assert hidden.select("value", "suppressed").row(0) == (None, True)
    autumn = agg.filter(pl.col("row_number") == 8).row(0, named=True)
    assert (autumn["period_start"], autumn["period_end"], autumn["period_type"]) == (
        date(2023, 9, 1), date(2023, 12, 31), "school term")
    assert parsed.period == (date(2022, 9, 1), date(2024, 8, 31))


def test_absence_by_lsoa_with_year_groups_csv_and_xlsx(tmp_path):
    rows = absence_by_lsoa()
    parsed = School().read(write_csv(tmp_path / "lsoa.csv", rows))
    assert parsed.quarantine.height == 0
    agg = parsed.aggregates
    assert set(agg["area_type"]) == {"lsoa"} and set(agg["area_code"]) == set(LSOAS)
    assert set(agg["category"]) == {"Year 9", "Year 10"}
    assert agg.filter(pl.col("measure") == "persistent absence").height == len(rows)
    assert agg.filter(pl.col("suppressed")).height == 5
    assert agg["value"].sum() == sum(int(r["PA count"]) for r in rows) + 3 * (len(rows) - 5)
    from_xlsx = School().read(as_xlsx(tmp_path / "lsoa.xlsx", rows, sheet="Absence"))
    assert from_xlsx.aggregates.equals(agg)


@pytest.mark.parametrize(("written", "start", "end", "kind"), [
    ("202324", date(2023, 9, 1), date(2024, 8, 31), "academic year"),
    ("2023/24", date(2023, 9, 1), date(2024, 8, 31), "academic year"),
    ("2023-24", date(2023, 9, 1), date(2024, 8, 31), "academic year"),
    ("2023/2024", date(2023, 9, 1), date(2024, 8, 31), "academic year"),
    ("Autumn 2023", date(2023, 9, 1), date(2023, 12, 31), "school term"),
    ("Spring term 2024", date(2024, 1, 1), date(2024, 3, 31), "school term"),
    ("Summer 2024", date(2024, 4, 1), date(2024, 8, 31), "school term"),
    ("202324 Autumn and spring term", date(2023, 9, 1), date(2024, 3, 31), "other"),
])
def test_period_spellings(written, start, end, kind):
    assert parse_period(written) == (start, end, kind)


@pytest.mark.parametrize("written", ["2023", "202325", "Winter 2023", "23/24", "last year"])
def test_unreadable_periods(written):
    assert parse_period(written) is None


ABSENCE_PROBLEMS = [
    ("Academic Year", "2023/25", "time_period", "2023/25", "not an academic year"),
    ("Academic Year", "", "time_period", None, "period is empty"),
    ("Academic Year", "2098/99", "time_period", "2098/99", "in the future"),
    ("LSOA", "Plymouth 001A", "area_code", "Plymouth 001A", "not an area code"),
    ("LSOA", "879", "area_code", "879", "not an area code"),
    ("LSOA", "E10000008", "area_code", "E10000008", "not an area code"),
    ("LSOA", "", "area_code", None, "no school or area"),
    ("Pupils", "-5", "enrolments", "-5", "not a whole number"),
    ("Pupils", "", "enrolments", None, "enrolments is empty"),
    ("PA count", "2.5", "persistent_absentees", "2.5", "not a whole number"),
    ("PA count", "lots", "persistent_absentees", "lots", "not a whole number"),
    ("PA count", "121", "persistent_absentees", "121 of 120", "more persistent absentees than"),
    ("Severe absentees", "130", "severe_absentees", "130 of 120", "than pupils enrolled"),
    ("Severe absentees", "25", "severe_absentees", "25 of 21",
     "more severe absentees than persistent absentees"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ABSENCE_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ABSENCE_PROBLEMS])
def test_absence_row_problem_is_quarantined(tmp_path, changed, written, column, value, reason):
    rows = absence_by_lsoa()[:3]
    rows[1][changed] = written
    parsed = School().read(write_csv(tmp_path / "a.csv", rows))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert line["column"] == column and line["value"] == value
    assert reason in line["reason"], line["reason"]
    assert line["fix"] and line["record"].startswith("{")
    assert parsed.aggregates["row_number"].unique().sort().to_list() == [2, 4]
    reconciles(parsed)


def test_bad_urn_in_a_school_file(tmp_path):
    rows = absence_by_school()[:3]
    rows[1]["school_urn"] = "ABC123"
    parsed = School().read(write_csv(tmp_path / "u.csv", rows))
    [line] = parsed.quarantine.to_dicts()
    assert (line["row_number"], line["column"], line["value"]) == (3, "school_urn", "ABC123")


def test_duplicate_absence_row_names_the_earlier_row(tmp_path):
    rows = absence_by_lsoa()[:4]
    rows[3] = dict(rows[1]) | {"Academic Year": "202223"}  # same year written differently
    parsed = School().read(write_csv(tmp_path / "d.csv", rows))
    [line] = parsed.quarantine.to_dicts()
    assert line["row_number"] == 5 and line["column"] == "area_code"
    assert "already given on row 3" in line["reason"]
    reconciles(parsed)


# -------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> str:
    with pytest.raises(FileError) as info:
        School().read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_raw_extract_is_refused_before_pseudonymising(tmp_path):
    raises(write_csv(tmp_path / "raw.csv", raw_extract(3)),
           "identify people directly (Forename, Surname, Date of Birth, UPN)",
           "svduty pseudonymise")


def test_columns_fitting_neither_kind_list_both(tmp_path):
    path = write_csv(tmp_path / "w.csv", [{"pupil": "1", "score": "2"}])
    message = raises(path, "fit neither kind of school file",
                     "as suspensions and permanent exclusions: required column(s) missing: "
                     "person_key, start_date, category, reason, home_lsoa",
                     "as persistent absence counts: required column(s) missing: time_period, "
                     "enrolments, persistent_absentees")
    assert "for persistent absence counts, a header row" in message


def test_near_miss_column_names_are_suggested(sent, tmp_path):
    rows = [{("Home LSAO" if k == "Home LSOA" else k): v for k, v in r.items()}
            for r in sent_rows(sent[1])[:2]]
    raises(write_csv(tmp_path / "n.csv", rows), "did you mean 'Home LSAO' for home_lsoa")


def test_absence_without_school_or_area_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "LSOA"} for r in absence_by_lsoa()[:2]]
    raises(write_csv(tmp_path / "n.csv", rows), "no school or area column")


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    raises(empty, "the file is empty")
    header = tmp_path / "h.csv"
    header.write_text("time_period,school_urn,enrolments,persistent_absentees\n")
    raises(header, "header but no data rows")


def test_docs_list_every_column_and_variant():
    text = DOCS.read_text().lower()
    for spec in (EXCLUSION_SPEC, ABSENCE_SPEC):
        for canonical, column in spec.items():
            if canonical.endswith(("_token", "_soundex", "_nysiis", "_initial", "_sector",
                                   "_year", "_swapped")):
                continue
            assert f"`{canonical}`" in text, canonical
            for alias in column.aliases:
                assert alias in text, alias
    for code in REASONS:
        assert f"{code.lower()} " in text, code


# -------------------------------------------------------------------------------- ingest


PARTNER_TABLES = ["events", "involvements", "aggregates", "person_tokens", "quarantine",
                  "loads", "sv_events"]


def warehouse_text(root: Path, tables: list[str] | None = None) -> str:
    """Every value of the warehouse's tables (default: all of them), as text."""
    con = connect(root / "warehouse.duckdb")
    try:
        names = tables or [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables()").fetchall()]
        return "\n".join(str(row) for name in names
                         for row in con.execute(f"SELECT * FROM {name}").fetchall())
    finally:
        con.close()


def test_exclusions_ingest_reingest_supersede_and_no_raw_identifier(
        plymouth, sent, tmp_path):  # noqa: F811
    rows, out = sent
    pasted = sent_rows(out)
    pasted.append(pasted[0] | {"Exclusion ID": "EX99999", "person_key": rows[0]["UPN"]})
    csv = write_csv(tmp_path / "exclusions.csv", pasted)
    source = get_source("school")
    [result] = ingest(plymouth, source, [csv], partner="Plymouth City Council")
    assert result.status == "loaded", result.message
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        len(rows) + 1, len(rows), 1)
    n = len(rows)
    assert query(plymouth.root, "SELECT count(*), count(DISTINCT event_id), count(lsoa21_code), "
                 "count(*) FILTER (in_area) FROM events") == [(n, n, n, n)]
    assert query(plymouth.root, "SELECT DISTINCT source, scope FROM events") == [
        ("school", "suspensions-exclusions")]
    assert query(plymouth.root, "SELECT count(*), count(DISTINCT person_key), min(role), "
                 "max(role) FROM involvements") == [
        (n, len({r["UPN"] for r in rows}), "pupil", "pupil")]
    fields = dict(query(plymouth.root, "SELECT field, count(*) FROM person_tokens GROUP BY ALL"))
    assert fields["upn_token"] == len({r["UPN"] for r in rows})
    assert query(plymouth.root, "SELECT count(*) FROM person_tokens WHERE person_key NOT IN "
                 "(SELECT person_key FROM involvements)") == [(0,)]
    assert query(plymouth.root, """SELECT "column", value FROM quarantine""") == [
        ("person_key", "[removed: 13 characters]")]

    [again] = ingest(plymouth, source, [csv])
    assert again.status == "skipped"
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(n,)]

    newer = as_xlsx(tmp_path / "exclusions-reissued.xlsx", pasted[:-6])
    [second] = ingest(plymouth, source, [newer], partner="Plymouth City Council")
    assert second.status == "loaded", second.message
    assert second.superseded == [1]
    assert query(plymouth.root, "SELECT count(*), count(DISTINCT event_id) FROM events") == [
        (n - 5, n - 5)]
    assert query(plymouth.root, "SELECT count(*) FROM involvements") == [(n - 5,)]
    assert dict(query(plymouth.root, "SELECT load_id, status FROM loads")) == {
        1: "superseded", 2: "active"}

    text = warehouse_text(plymouth.root)
    rest = HEX64.sub("#", text)
    needles = set()
    for row in rows:
        born = datetime.strptime(row["Date of Birth"], "%d/%m/%Y").date()
        needles |= {row["UPN"], row["UPN"].lower(), row["Surname"], row["Surname"].upper(),
                    row["Date of Birth"], born.isoformat()}
    assert not [x for x in needles if x in rest or x in text]
    # Forenames alone are also place names in the reference data: search the partner data.
    partner = HEX64.sub("#", warehouse_text(plymouth.root, PARTNER_TABLES))
    assert not [f for f in FORENAMES if f in partner or f.upper() in partner]


def test_absence_ingests_by_school_and_lsoa_each_superseding_its_own_kind(
        plymouth, sent, tmp_path):  # noqa: F811
    source = get_source("school")
    [excl] = ingest(plymouth, source, [sent[1]])
    by_school = write_csv(tmp_path / "absence-schools.csv", absence_by_school())
    by_lsoa = as_xlsx(tmp_path / "absence-lsoa.xlsx", absence_by_lsoa(), sheet="Absence")
    results = ingest(plymouth, source, [by_school, by_lsoa])
    assert [r.status for r in results] == ["loaded", "loaded"], [r.message for r in results]
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(excl.rows_loaded,)]
    assert query(plymouth.root, "SELECT load_id, scope, status FROM loads ORDER BY 1") == [
        (1, "suspensions-exclusions", "active"), (2, "persistent-absence-school", "active"),
        (3, "persistent-absence-area", "active")]
    lsoa = query(plymouth.root, """SELECT count(*), count(lsoa21_code),
        count(*) FILTER (in_area), sum(value) FROM aggregates
        WHERE area_type = 'lsoa' AND measure = 'persistent absence'""")
    rows = absence_by_lsoa()
    assert lsoa == [(len(rows), len(rows), len(rows), sum(int(r["PA count"]) for r in rows))]
    assert query(plymouth.root, "SELECT count(*), count(in_area) FROM aggregates "
                 "WHERE area_type = 'school'") == [(18, 0)]

    newer = absence_by_school()[3:]
    for row in newer:
        row["enrolments_pa_10_exact"] = "240"
    [again] = ingest(plymouth, source, [write_csv(tmp_path / "absence-schools-2.csv", newer)])
    assert again.status == "loaded", again.message
    schools = query(plymouth.root, """SELECT period_start, value, count(*) FROM aggregates
        WHERE area_type = 'school' AND measure = 'persistent absence' GROUP BY ALL ORDER BY 1""")
    assert schools == [(date(2022, 9, 1), 231.0, 3), (date(2023, 9, 1), 240.0, 6)]
    assert query(plymouth.root, "SELECT count(*) FROM aggregates WHERE area_type = 'lsoa'") \
        == [(2 * len(rows),)]
    assert query(plymouth.root, "SELECT count(*) FROM events") == [(excl.rows_loaded,)]
