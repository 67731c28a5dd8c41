"""The youth justice reader, end to end as a partner would use it: a raw YJS extract with fake
names, dates of birth and PNC ids is pseudonymised with the partnership key, then read and
ingested (CSV and XLSX); row and file problems; and no raw identifier reaches the warehouse."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from svduty.privacy.keys import load_key, new_key
from svduty.privacy.pseudonymise import pseudonymise
from svduty.sources import get_source
from svduty.sources.base import EVENT_COLUMNS, FileError, Parsed
from svduty.sources.contract import contract_problems
from svduty.sources.ingest import ingest
from svduty.sources.people import HOME_PLACE
from svduty.sources.youth_justice import OUTCOMES, SPEC, YouthJustice
from svduty.warehouse import connect

from .test_ingest import plymouth, query  # noqa: F401 - `plymouth` is a fixture

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources" / "youth-justice.md"
HEX64 = r"^[0-9a-f]{64}$"
# Real 2011 LSOAs in Plymouth, and one in Cornwall (same force, outside the partnership).
LSOAS = ["E01015023", "E01015024", "E01015025", "E01015165", "E01015147", "E01015143"]
CORNWALL = "E01018895"
FORENAMES = ["Kyle", "Jayden", "Tyler", "Lily", "Ruby", "Mason", "Kayla", "Rhys", "Jordan",
             "Mollie", "Owen", "Skye"]
SURNAMES = ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Hughes",
            "Murphy", "Price"]
NOT_HEX = "ghijklmnopqrstuvwxyz"  # suffixes from these letters never occur inside a token
OFFENCES = [
    ("105A", "Common assault"), ("8N", "Assault occasioning actual bodily harm"),
    ("10D", "Possession of a bladed article in a public place"),
    ("34B", "Robbery of personal property"), ("92D", "Possession of cannabis (class B)"),
    ("58C", "Criminal damage to a motor vehicle"), ("46", "Shoplifting"),
    ("", "Affray"), ("5D", "Wounding with intent (knife)"), ("81", ""),
    ("", "Theft from the person"), ("9A", "Section 4A public order"),
]
WRITTEN_OUTCOMES = ["Youth Caution", "Youth Conditional Caution", "Referral Order", "YRO",
                    "Detention and Training Order", "Community Resolution", "Outcome 22",
                    "Conditional discharge", ""]
ETHNICITIES = ["White British", "White Other", "Mixed", "Black British", "Asian British", ""]
RAW_COLUMNS = ["Forename", "Surname", "Date of Birth", "PNC ID", "Postcode", "Person ID"]


# ------------------------------------------------------------------------ generated data


def person(i: int, rng: random.Random, born: tuple[date, date]) -> dict[str, str]:
    """A fake person's identifiers as a case-management system holds them."""
    dob = born[0] + timedelta(days=rng.randrange((born[1] - born[0]).days))
    year = rng.randint(2018, 2024)
    return {
        "Forename": rng.choice(FORENAMES) + "".join(rng.choices(NOT_HEX, k=3)),
        "Surname": rng.choice(SURNAMES) + "-" + "".join(rng.choices(NOT_HEX, k=4)),
        "Date of Birth": dob.strftime("%d/%m/%Y") if i % 2 else dob.isoformat(),
        "PNC ID": f"{year}/{rng.randint(1, 999_999):07d}{rng.choice('ABCDEFGHJKLMNPQRTUVWXY')}",
        "Postcode": f"PL{rng.randint(1, 9)} {rng.randint(1, 9)}{rng.choice('ABDEHJLNPQRSTUWXYZ')}"
                    f"{rng.choice('ABDEHJLNPQRSTUWXYZ')}",
        "Person ID": f"YP{100_000 + i}",
        "Sex": rng.choice("MF"),
        "Ethnicity": rng.choice(ETHNICITIES),
        "Home LSOA": LSOAS[i % len(LSOAS)],
    }


def dob_of(p: dict[str, str]) -> date:
    text = p["Date of Birth"]
    return date.fromisoformat(text) if "-" in text else datetime.strptime(text, "%d/%m/%Y").date()


def age_on(dob: date, day: date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def young_people(n: int = 40, seed: int = 5) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [person(i, rng, (date(2006, 9, 1), date(2010, 6, 1))) for i in range(n)]


def offences(people: list[dict[str, str]], seed: int = 5) -> list[dict[str, str]]:
    """One row per offence x young person, 1-3 offences each, aged 10-17 at the offence."""
    rng = random.Random(seed)
    rows, n = [], 0
    for p in people:
        days = sorted(rng.sample(range(640), rng.randint(1, 3)))
        entered = False
        for d in days:
            on = date(2023, 4, 1) + timedelta(days=d)
            if not 10 <= age_on(dob_of(p), on) <= 17:
                continue
            written = WRITTEN_OUTCOMES[rng.randrange(len(WRITTEN_OUTCOMES))]
            substantive = written not in ("Community Resolution", "Outcome 22", "")
            fte = "Y" if substantive and not entered else "N"
            entered |= substantive
            n += 1
            rows.append(offence_row(p, on, n, written, fte))
    return rows


def offence_row(p: dict[str, str], on: date, n: int, written: str, fte: str) -> dict[str, str]:
    """One raw YJS row: the young person's identifiers and offence number `n`."""
    code, text = OFFENCES[n % len(OFFENCES)]
    return {
        **{c: p[c] for c in RAW_COLUMNS},
        "Offence ID": f"OFF-{20_000 + n}", "Offence Date": on.strftime("%d/%m/%Y"),
        "Offence Code": code, "Offence Description": text, "Outcome": written,
        "Outcome Date": (on + timedelta(days=30)).strftime("%d/%m/%Y") if written else "",
        "First Time Entrant": fte, "Age at Offence": str(age_on(dob_of(p), on)),
        "Sex": p["Sex"], "Ethnicity": p["Ethnicity"], "Home LSOA": p["Home LSOA"],
    }


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).write_csv(path)
    return path


def write_xlsx(path: Path, frame: pl.DataFrame, dates: tuple[str, ...],
               numbers: tuple[str, ...]) -> Path:
    """A workbook as Excel would save it: real date cells and number cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(frame.columns)
    for row in frame.iter_rows(named=True):
        sheet.append([excel_cell(k, v, dates, numbers) for k, v in row.items()])
    book.save(path)
    return path


def excel_cell(column: str, value: str | None, dates: tuple[str, ...],
               numbers: tuple[str, ...]) -> object:
    if not value:
        return None
    if column in dates:
        return datetime.strptime(value, "%d/%m/%Y")
    return int(value) if column in numbers else value


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> bytes:
    return load_key(new_key(tmp_path_factory.mktemp("key") / "partnership.key"))


def pseudonymised(folder: Path, rows: list[dict[str, str]], key: bytes, source: str,
                  name: str) -> Path:
    """Pseudonymise a raw extract exactly as the partner would; the output CSV."""
    raw = write_csv(folder / f"raw-{name}", rows)
    out = folder / name
    report = pseudonymise(raw, out, key, source)
    assert report.rows_written == len(rows) and not report.rows_rejected
    return out


def edited(path: Path, tmp: Path, name: str, row: int, **changes: str) -> Path:
    """A copy of a pseudonymised CSV with data row `row` (0-based) changed."""
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
        for c, v in changes.items())
    out = tmp / name
    frame.write_csv(out)
    return out


def needles(rows: list[dict[str, str]]) -> set[str]:
    """Every raw identifier string of the generated data, in the forms it could take."""
    found: set[str] = set()
    for r in rows:
        for name in (r["Forename"], r["Surname"]):
            found |= {name, name.upper(), name.replace("-", "").upper()}
        dob = dob_of(r)
        found |= {dob.isoformat(), dob.strftime("%d/%m/%Y")}
        pnc = r["PNC ID"]
        if pnc:
            found |= {pnc, f"{pnc[2:4]}/{int(pnc[5:12])}{pnc[-1]}"}
        found |= {r["Postcode"], r["Postcode"].replace(" ", ""), r["Person ID"]}
    return found - {""}


def raw_values_in_warehouse(root: Path, rows: list[dict[str, str]]) -> list[str]:
    """Raw identifiers found in any VARCHAR column of any warehouse table (should be none)."""
    con = connect(root / "warehouse.duckdb")
    try:
        columns = con.execute("""SELECT table_name, column_name FROM information_schema.columns
            WHERE data_type = 'VARCHAR' AND table_schema = 'main'""").fetchall()
        text = "\n".join(
            str(v) for table, column in columns for (v,) in con.execute(
                f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'
            ).fetchall())
    finally:
        con.close()
    return sorted(n for n in needles(rows) if n in text or n.upper() in text.upper())


def reconciles(parsed: Parsed) -> None:
    loaded = set(parsed.events["row_number"])
    quarantined = set(parsed.quarantine["row_number"])
    assert not loaded & quarantined
    assert loaded | quarantined == set(range(2, parsed.rows_read + 2))
    assert set(parsed.involvements["row_number"]) == loaded


@pytest.fixture(scope="module")
def extract(tmp_path_factory, key) -> tuple[list[dict[str, str]], Path]:
    """The raw offence rows and their pseudonymised CSV."""
    rows = offences(young_people())
    return rows, pseudonymised(tmp_path_factory.mktemp("yj"), rows, key, "youth-justice",
                               "yjs-offences.csv")


# ------------------------------------------------------------------------- good extracts


def test_pseudonymised_extract_reads_into_events_people_and_tokens(extract):
    rows, path = extract
    parsed = YouthJustice().read(path)
    assert parsed.quarantine.height == 0, parsed.quarantine.to_dicts()
    assert parsed.rows_read == parsed.events.height == parsed.involvements.height == len(rows)
    reconciles(parsed)
    assert contract_problems(parsed.events, parsed.involvements) == []
    assert parsed.events.columns == list(EVENT_COLUMNS)
    events, people = parsed.events, parsed.involvements
    assert events["source_record_id"].to_list() == [r["Offence ID"] for r in rows]
    assert set(events["location_type"]) == {HOME_PLACE}
    assert events["lsoa_code"].to_list() == [r["Home LSOA"] for r in rows]
    assert [d.strftime("%d/%m/%Y") for d in events["occurred_on"]] == [
        r["Offence Date"] for r in rows]
    assert set(events["outcome"].drop_nulls()) <= set(OUTCOMES)
    assert set(people["role"]) == {"young person"}
    assert people["person_key"].str.contains(HEX64).all()
    assert people["age"].to_list() == [int(r["Age at Offence"]) for r in rows]
    assert people["age_band"].is_in(["10-17"]).all()
    assert set(people["sex"]) <= {"male", "female"}
    # One key per young person (PNC ids are distinct, so keys are too).
    assert people["person_key"].n_unique() == len({r["PNC ID"] for r in rows})
    first = events.row(0, named=True)
    fte = rows[0]["First Time Entrant"]
    assert first["context"].startswith(f"fte={fte}")
    assert "fte_basis" not in first["context"]
    tokens = parsed.tokens
    assert set(tokens["field"]) >= {"dob_token", "pnc_id_token", "surname_token",
                                    "postcode_sector", "person_id_token", "dob_year"}
    assert tokens["token"].str.contains(HEX64).all()
    assert parsed.period == (date(2023, 4, 1), events["month"].max().replace(day=31))


def test_offence_groups_weapons_and_outcomes(extract):
    rows, path = extract
    events = YouthJustice().read(path).events
    by_code = {r["Offence Code"] or r["Offence Description"]: e for r, e in zip(
        rows, events.iter_rows(named=True), strict=True)}
    expected = {
        "105A": ("violence against the person", None), "8N": ("violence against the person",
                                                              None),
        "10D": ("possession of weapons", "knife or sharp"), "34B": ("robbery", None),
        "92D": ("drug offences", None), "58C": ("criminal damage", None),
        "46": ("theft", None), "Affray": ("public order", None),
        "5D": ("violence against the person", "knife or sharp"),
        "81": ("possession of weapons", "firearm"), "Theft from the person": ("theft", None),
        "9A": ("public order", None),
    }
    for key, (group, weapon) in expected.items():
        event = by_code[key]
        assert (event["source_category"], event["weapon"]) == (group, weapon), key
        assert event["offence_code"] == (key if key[0].isdigit() else None)


@pytest.mark.parametrize(("written", "normalised"), [
    ("Youth Caution", "youth caution"), ("YCC", "youth conditional caution"),
    ("Youth Conditional Caution", "youth conditional caution"),
    ("Referral Order (12 months)", "referral order"),
    ("YRO with ISS", "youth rehabilitation order"),
    ("DTO 4 months", "detention and training order"),
    ("Community Resolution", "community resolution"),
    ("Outcome 22 - deferred prosecution", "diversion"), ("Triage", "diversion"),
    ("S250 custody", "long-term detention"), ("Conditional Discharge", "fine or discharge"),
    ("Fine", "fine or discharge"), ("Reparation Order", "reparation order"),
    ("Dismissed", "other"), ("", None),
])
def test_outcome_spellings(extract, tmp_path, written, normalised):
    _, path = extract
    parsed = YouthJustice().read(edited(path, tmp_path, "o.csv", 0, Outcome=written))
    assert parsed.events["outcome"][0] == normalised


def test_first_time_entrant_is_derived_without_the_column(extract, tmp_path):
    rows, path = extract
    frame = pl.read_csv(path, infer_schema=False).drop("First Time Entrant")
    frame.write_csv(tmp_path / "no-fte.csv")
    parsed = YouthJustice().read(tmp_path / "no-fte.csv")
    assert parsed.quarantine.height == 0
    assert any("derived" in n for n in parsed.notes)
    got = parsed.events["context"].str.extract(r"fte=([YN])").to_list()
    expected = [r["First Time Entrant"] if r["Outcome"] else None for r in rows]
    assert got == expected
    assert parsed.events["context"].drop_nulls().str.contains("fte_basis=derived").any()


def test_xlsx_with_real_date_cells_reads_as_the_csv(extract, tmp_path):
    _, path = extract
    frame = pl.read_csv(path, infer_schema=False)
    book = write_xlsx(tmp_path / "yjs.xlsx", frame, ("Offence Date", "Outcome Date"),
                      ("Age at Offence",))
    from_csv, from_xlsx = YouthJustice().read(path), YouthJustice().read(book)
    assert from_xlsx.quarantine.height == 0
    assert from_xlsx.events.equals(from_csv.events)
    assert from_xlsx.involvements.equals(from_csv.involvements)
    assert from_xlsx.tokens.equals(from_csv.tokens)


def test_raw_xlsx_pseudonymised_gives_the_same_extract(extract, key, tmp_path):
    rows, path = extract
    raw = write_xlsx(tmp_path / "raw.xlsx", pl.DataFrame(rows), ("Offence Date",), ())
    pseudonymise(raw, tmp_path / "from-xlsx.csv", key, "youth-justice")
    parsed = YouthJustice().read(tmp_path / "from-xlsx.csv")
    assert parsed.involvements["person_key"].equals(
        YouthJustice().read(path).involvements["person_key"])


# -------------------------------------------------------------------------- row problems

ROW_PROBLEMS = [
    ("person_key", "01/123456A", "person_key", "[removed: 10 characters]",
     "not a pseudonymous key"),
    ("person_key", "", "person_key", None, "person key is empty"),
    ("Offence Date", "31/02/2024", "offence_date", "31/02/2024", "not a valid date"),
    ("Offence Date", "", "offence_date", None, "offence date is empty"),
    ("Offence Date", "01/01/2099", "offence_date", "01/01/2099", "in the future"),
    ("Age at Offence", "9", "age", "9", "outside 10 to 17"),
    ("Age at Offence", "18", "age", "18", "outside 10 to 17"),
    ("Age at Offence", "sixteen", "age", "sixteen", "not a whole number"),
    ("Age at Offence", "", "age", None, "age is empty"),
    ("Home LSOA", "PL1 2AB", "home_lsoa", "PL1 2AB", "not an England or Wales LSOA code"),
    ("Offence Code", "TH68010", "offence_code", "TH68010", "not a Home Office offence code"),
    ("Gender", "boy", "sex", "boy", "sex is not one of"),
    ("Outcome Date", "01/01/2023", "outcome_date", "01/01/2023", "before the offence date"),
    ("First Time Entrant", "maybe", "first_time_entrant", "maybe", "not Y, N or blank"),
    ("Offence ID", "OFF-20001", "offence_id", "OFF-20001", "already given on row 2"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ROW_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ROW_PROBLEMS])
def test_row_problem_is_quarantined_with_column_value_reason_and_fix(
        extract, tmp_path, changed, written, column, value, reason):
    _, path = extract
    frame = pl.read_csv(path, infer_schema=False).head(3).rename({"Sex": "Gender"})
    frame = frame.with_columns(pl.lit("05/04/2023").alias("Offence Date"),
                               pl.lit("15").alias("Age at Offence"),
                               pl.lit("06/05/2023").alias("Outcome Date"))
    frame.write_csv(tmp_path / "base.csv")
    changes = {changed: written}
    if changed == "Offence Date":  # so the outcome date is not also before it
        changes["Outcome Date"] = ""
    parsed = YouthJustice().read(edited(tmp_path / "base.csv", tmp_path, "bad.csv", 1,
                                        **changes))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert (line["column"], line["value"]) == (column, value)
    assert reason in line["reason"], line["reason"]
    assert line["fix"]
    assert "01/123456A" not in line["record"] and '"Offence ID"' in line["record"]
    assert parsed.events["row_number"].to_list() == [2, 4]
    reconciles(parsed)


def test_no_offence_code_nor_description(extract, tmp_path):
    _, path = extract
    bad = edited(path, tmp_path, "bad.csv", 0, **{"Offence Code": "", "Offence Description": ""})
    [line] = YouthJustice().read(bad).quarantine.to_dicts()
    assert (line["row_number"], line["column"]) == (2, "offence_code")
    assert "no offence" in line["reason"]


def test_bad_key_fix_says_to_pseudonymise(extract, tmp_path):
    _, path = extract
    bad = edited(path, tmp_path, "bad.csv", 0, person_key="Smith" + "a" * 59)
    [line] = YouthJustice().read(bad).quarantine.to_dicts()
    assert "svduty pseudonymise" in line["fix"]


# -------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> str:
    with pytest.raises(FileError) as info:
        YouthJustice().read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_raw_extract_with_identifiers_is_rejected(extract, tmp_path):
    rows, _ = extract
    raises(write_csv(tmp_path / "raw.csv", rows), "identify people directly",
           "Forename, Surname, Date of Birth, PNC ID", "svduty pseudonymise")


def test_local_id_passed_through_is_rejected(extract, tmp_path):
    _, path = extract
    frame = pl.read_csv(path, infer_schema=False).with_columns(pl.lit("YP100001").alias("YP ID"))
    frame.write_csv(tmp_path / "ypid.csv")
    raises(tmp_path / "ypid.csv", "identify people directly (YP ID)", "'person id'")


def test_missing_columns_no_offence_columns_empty_and_header_only(extract, tmp_path):
    _, path = extract
    frame = pl.read_csv(path, infer_schema=False)
    frame.drop("person_key", "Age at Offence").write_csv(tmp_path / "cols.csv")
    raises(tmp_path / "cols.csv", "required column(s) missing: person_key, age")
    frame.drop("Offence Code", "Offence Description").write_csv(tmp_path / "off.csv")
    raises(tmp_path / "off.csv", "no offence columns")
    (tmp_path / "empty.csv").write_bytes(b"")
    raises(tmp_path / "empty.csv", "the file is empty")
    frame.head(0).write_csv(tmp_path / "header.csv")
    raises(tmp_path / "header.csv", "header but no data rows", "offence x young person")


def test_docs_list_every_column_and_variant():
    text = DOCS.read_text().lower()
    assert "svduty pseudonymise" in text and "home lsoa (residence)" in text
    for canonical, column in SPEC.items():
        assert f"`{canonical}`" in text, canonical
        for alias in column.aliases:
            assert alias in text, alias


# -------------------------------------------------------------------------------- ingest


def test_ingest_reconciles_links_supersedes_and_keeps_no_raw_identifier(
        plymouth, extract, tmp_path):  # noqa: F811
    rows, path = extract
    source, partner = get_source("youth-justice"), "Plymouth Youth Justice Service"
    extra = edited(path, tmp_path, "a.csv", 0, **{"Home LSOA": "E01999999"})
    extra = edited(extra, tmp_path, "a.csv", 1, **{"Offence Code": "999Z"})
    extra = edited(extra, tmp_path, "a.csv", 2, **{"Home LSOA": CORNWALL})
    [first] = ingest(plymouth, source, [extra], partner=partner)
    assert first.status == "loaded", first.message
    assert first.rows_read == len(rows) == first.rows_loaded + first.rows_quarantined
    assert first.rows_quarantined == 2 and first.rows_out_of_area == 1
    lines = query(plymouth.root, "SELECT row_number, \"column\", value, reason, fix "
                                 "FROM quarantine ORDER BY row_number")
    assert [(r[0], r[1], r[2]) for r in lines] == [(2, "lsoa_code", "E01999999"),
                                                   (3, "offence_code", "999Z")]
    assert "not in the Home Office offence code list" in lines[1][3] and lines[1][4]
    counts = query(plymouth.root, """SELECT count(*), count(DISTINCT i.person_key),
        count(*) FILTER (WHERE e.location_type = 'home LSOA (residence)')
        FROM events e JOIN involvements i USING (event_id)
        WHERE e.source = 'youth-justice' AND i.role = 'young person'""")
    assert counts == [(len(rows) - 2, counts[0][1], len(rows) - 2)]
    keys = {k for (k,) in query(plymouth.root, "SELECT person_key FROM involvements")}
    tokens = query(plymouth.root, """SELECT count(DISTINCT person_key), count(*) FILTER
        (WHERE field = 'dob_token') FROM person_tokens WHERE source = 'youth-justice'""")
    assert tokens[0][0] == len(keys)
    assert query(plymouth.root, "SELECT count(*) FROM sv_events") == [(0,)]  # police only
    assert raw_values_in_warehouse(plymouth.root, rows) == []

    [again] = ingest(plymouth, source, [extra], partner=partner)
    assert again.status == "skipped"

    newer = edited(path, tmp_path, "b.csv", 5, Outcome="Referral Order")
    [second] = ingest(plymouth, source, [newer], partner=partner)
    assert second.status == "loaded" and second.superseded == [first.load_id]
    assert query(plymouth.root, "SELECT count(*), count(DISTINCT source_record_id) FROM events"
                 ) == [(len(rows), len(rows))]
    assert query(plymouth.root, "SELECT count(*) FROM involvements") == [(len(rows),)]
    status = dict(query(plymouth.root, "SELECT load_id, status FROM loads"))
    assert status == {first.load_id: "superseded", second.load_id: "active"}

    [rejected] = ingest(plymouth, source, [write_csv(tmp_path / "raw.csv", rows)],
                        partner=partner)
    assert rejected.status == "rejected" and "identify people directly" in rejected.message
    assert raw_values_in_warehouse(plymouth.root, rows) == []
