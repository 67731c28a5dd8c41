"""The probation reader, end to end as a partner would use it: a raw supervision extract with
fake names, dates of birth, PNC ids and CRNs is pseudonymised with the partnership key, then
read and ingested (CSV and XLSX); the same person in the youth justice and probation files
links; row and file problems; and no raw identifier reaches the warehouse."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from svduty.sources import get_source
from svduty.sources.base import EVENT_COLUMNS, FileError
from svduty.sources.contract import contract_problems
from svduty.sources.ingest import ingest
from svduty.sources.people import HOME_PLACE
from svduty.sources.probation import ORDER_TYPES, SPEC, Probation

from .test_ingest import plymouth, query  # noqa: F401 - `plymouth` is a fixture
from .test_youth_justice import (
    CORNWALL,
    HEX64,
    RAW_COLUMNS,
    age_on,
    dob_of,
    edited,
    key,  # noqa: F401 - a fixture
    offence_row,
    person,
    pseudonymised,
    raw_values_in_warehouse,
    reconciles,
    write_csv,
    write_xlsx,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources" / "probation.md"
ORDERS = ["Community Order", "Suspended Sentence Order", "Licence", "Post Sentence Supervision",
          "CO", "SSO", "Determinate licence", "PSS"]
INDEX_OFFENCES = [("8N", "Assault occasioning actual bodily harm"), ("34B", "Robbery"),
                  ("92A", "Supply of a controlled drug of class A"),
                  ("10D", "Having a bladed article in a public place"),
                  ("", "Possession of a firearm with intent"), ("28E", ""),
                  ("5D", "Section 18 wounding with intent")]
ROSH = ["Low", "Medium", "High", "Very High", "", "M", "H"]


def adults(n: int, seed: int, born: tuple[date, date]) -> list[dict[str, str]]:
    rng = random.Random(seed)
    people = [person(1000 + i, rng, born) for i in range(n)]
    for p in people:
        p["Person ID"] = f"X{rng.randint(100_000, 999_999)}"  # the CRN, renamed 'Person ID'
    return people


def period_row(p: dict[str, str], start: date, n: int, rng: random.Random) -> dict[str, str]:
    """One raw probation row: the person's identifiers and supervision period `n`."""
    code, text = INDEX_OFFENCES[n % len(INDEX_OFFENCES)]
    end = start + timedelta(days=rng.choice([180, 365, 730]))
    return {
        **{c: p[c] for c in RAW_COLUMNS},
        "Supervision ID": f"SUP-{50_000 + n}", "Start Date": start.strftime("%d/%m/%Y"),
        "End Date": end.strftime("%d/%m/%Y") if end < date.today() else "",
        "Order Type": ORDERS[n % len(ORDERS)], "Index Offence Code": code,
        "Index Offence": text, "RoSH": ROSH[n % len(ROSH)],
        "Age at Start": str(age_on(dob_of(p), start)), "Sex": p["Sex"],
        "Ethnicity": p["Ethnicity"], "Home LSOA": p["Home LSOA"],
    }


def supervision(people: list[dict[str, str]], seed: int = 8) -> list[dict[str, str]]:
    """One row per person x supervision period (1-2 each), starting April 2023 to 2024."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    for p in people:
        for d in sorted(rng.sample(range(600), rng.randint(1, 2))):
            rows.append(period_row(p, date(2023, 4, 1) + timedelta(days=d), len(rows), rng))
    return rows


@pytest.fixture(scope="module")
def extract(tmp_path_factory, key) -> tuple[list[dict[str, str]], Path]:  # noqa: F811
    rows = supervision(adults(40, 3, (date(1975, 1, 1), date(2004, 1, 1))))
    return rows, pseudonymised(tmp_path_factory.mktemp("prob"), rows, key, "probation",
                               "probation-periods.csv")


# ------------------------------------------------------------------------- good extracts


def test_pseudonymised_extract_reads_into_events_people_and_tokens(extract):
    rows, path = extract
    parsed = Probation().read(path)
    assert parsed.quarantine.height == 0, parsed.quarantine.to_dicts()
    assert parsed.rows_read == parsed.events.height == len(rows)
    reconciles(parsed)
    assert contract_problems(parsed.events, parsed.involvements) == []
    assert parsed.events.columns == list(EVENT_COLUMNS)
    events, people = parsed.events, parsed.involvements
    assert events["source_record_id"].to_list() == [r["Supervision ID"] for r in rows]
    assert [d.strftime("%d/%m/%Y") for d in events["occurred_on"]] == [
        r["Start Date"] for r in rows]
    assert (events["month"] == events["occurred_on"].dt.month_start()).all()
    assert set(events["location_type"]) == {HOME_PLACE}
    assert events["outcome"].null_count() == len(rows)
    assert set(people["role"]) == {"person on probation"}
    assert people["person_key"].str.contains(HEX64).all()
    assert (people["age"] >= 18).all()
    first, row = events.row(0, named=True), rows[0]
    assert first["context"].startswith("end_date=")
    assert "order_type=" in first["context"]
    orders = events["context"].str.extract(r"order_type=([^;]+)")
    assert set(orders) <= set(ORDER_TYPES) and orders.null_count() == 0
    assert set(events["context"].str.extract(r"rosh=([^;]+)").drop_nulls()) <= {
        "low", "medium", "high", "very high"}
    open_periods = [r["Supervision ID"] for r in rows if not r["End Date"]]
    assert set(events.filter(pl.col("context").str.contains("end_date=open"))[
        "source_record_id"]) == set(open_periods)
    assert {"dob_token", "pnc_id_token", "person_id_token"} <= set(parsed.tokens["field"])
    groups = dict(zip(events["source_record_id"], events["source_category"], strict=True))
    weapons = dict(zip(events["source_record_id"], events["weapon"], strict=True))
    by_text = {r["Index Offence Code"] or r["Index Offence"]: r["Supervision ID"] for r in rows}
    assert groups[by_text["28E"]] == "theft"
    assert groups[by_text["Possession of a firearm with intent"]] == "possession of weapons"
    assert weapons[by_text["Possession of a firearm with intent"]] == "firearm"
    assert weapons[by_text["10D"]] == "knife or sharp"
    assert groups[by_text["92A"]] == "drug offences"
    assert row["Start Date"] == first["occurred_on"].strftime("%d/%m/%Y")


def test_xlsx_with_real_date_cells_reads_as_the_csv(extract, tmp_path):
    _, path = extract
    frame = pl.read_csv(path, infer_schema=False)
    book = write_xlsx(tmp_path / "prob.xlsx", frame, ("Start Date", "End Date"),
                      ("Age at Start",))
    from_csv, from_xlsx = Probation().read(path), Probation().read(book)
    assert from_xlsx.quarantine.height == 0
    assert from_xlsx.events.equals(from_csv.events)
    assert from_xlsx.involvements.equals(from_csv.involvements)


@pytest.mark.parametrize(("written", "normalised"), [
    ("Community Order", "community order"), ("ORA Community Order", "community order"),
    ("SSO", "suspended sentence order"), ("Suspended Sentence Order", "suspended sentence order"),
    ("Licence", "licence"), ("Life License", "licence"), ("PSS", "post-sentence supervision"),
    ("Post-sentence supervision", "post-sentence supervision"), ("Bail", "other"),
])
def test_order_type_spellings(extract, tmp_path, written, normalised):
    _, path = extract
    parsed = Probation().read(edited(path, tmp_path, "o.csv", 0, **{"Order Type": written}))
    assert f"order_type={normalised}" in parsed.events["context"][0]


# -------------------------------------------------------------------------- row problems

ROW_PROBLEMS = [
    ("person_key", "X123456", "person_key", "[removed: 7 characters]", "not a pseudonymous key"),
    ("Supervision ID", "", "supervision_id", None, "supervision id is empty"),
    ("Supervision ID", "SUP-1", "supervision_id", "SUP-1", "already given on row 2"),
    ("Start Date", "", "start_date", None, "start date is empty"),
    ("Start Date", "2024-13-01", "start_date", "2024-13-01", "not a valid date"),
    ("End Date", "01/01/2023", "end_date", "01/01/2023", "before the start date"),
    ("End Date", "soon", "end_date", "soon", "not a valid date"),
    ("Age at Start", "17", "age", "17", "outside 18 to 120"),
    ("Home LSOA", "Plymouth 001A", "home_lsoa", "Plymouth 001A", "not an England or Wales"),
    ("Index Offence Code", "CJ88116", "index_offence_code", "CJ88116",
     "not a Home Office offence code"),
    ("RoSH", "critical", "risk_of_serious_harm", "critical", "not low, medium, high"),
]


@pytest.mark.parametrize(("changed", "written", "column", "value", "reason"), ROW_PROBLEMS,
                         ids=[f"{p[0]}={p[1]!r}" for p in ROW_PROBLEMS])
def test_row_problem_is_quarantined_with_column_value_reason_and_fix(
        extract, tmp_path, changed, written, column, value, reason):
    _, path = extract
    frame = pl.read_csv(path, infer_schema=False).head(3).with_columns(
        pl.Series("Supervision ID", ["SUP-1", "SUP-2", "SUP-3"]),
        pl.lit("01/06/2023").alias("Start Date"), pl.lit("30/11/2023").alias("End Date"),
        pl.lit("30").alias("Age at Start"))
    frame.write_csv(tmp_path / "base.csv")
    changes = {changed: written}
    if changed == "Start Date":  # so the end date is not also before it
        changes["End Date"] = ""
    parsed = Probation().read(edited(tmp_path / "base.csv", tmp_path, "bad.csv", 1, **changes))
    found = parsed.quarantine.filter(pl.col("row_number") == 3).to_dicts()
    assert len(found) == 1, found
    line = found[0]
    assert (line["column"], line["value"]) == (column, value)
    assert reason in line["reason"], line["reason"]
    assert line["fix"]
    assert "X123456" not in line["record"]
    assert parsed.events["row_number"].to_list() == [2, 4]
    reconciles(parsed)


# -------------------------------------------------------------------------- file problems


def raises(path: Path, *fragments: str) -> None:
    with pytest.raises(FileError) as info:
        Probation().read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "Expected: " in message
    for fragment in fragments:
        assert fragment in message, message


def test_file_problems_reject_the_whole_file(extract, tmp_path):
    rows, path = extract
    raises(write_csv(tmp_path / "raw.csv", rows), "identify people directly",
           "Forename, Surname, Date of Birth, PNC ID")
    frame = pl.read_csv(path, infer_schema=False)
    frame.with_columns(pl.lit("X123456").alias("CRN")).write_csv(tmp_path / "crn.csv")
    raises(tmp_path / "crn.csv", "identify people directly (CRN)", "'person id'")
    frame.drop("Start Date").write_csv(tmp_path / "cols.csv")
    raises(tmp_path / "cols.csv", "required column(s) missing: start_date")
    frame.drop("Index Offence Code", "Index Offence").write_csv(tmp_path / "off.csv")
    raises(tmp_path / "off.csv", "no offence columns")
    (tmp_path / "empty.csv").write_bytes(b"")
    raises(tmp_path / "empty.csv", "the file is empty")
    frame.head(0).write_csv(tmp_path / "header.csv")
    raises(tmp_path / "header.csv", "header but no data rows", "supervision period")


def test_docs_list_every_column_and_variant():
    text = DOCS.read_text().lower()
    assert "svduty pseudonymise" in text and "home lsoa (residence)" in text
    for canonical, column in SPEC.items():
        assert f"`{canonical}`" in text, canonical
        for alias in column.aliases:
            assert alias in text, alias


# -------------------------------------------------------------------------------- ingest


def crossover(n: int = 6) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Young adults known to both services: a YJS offence at 17 and probation from 18.

    The first has no PNC id in the YJS file, so the two files give them different keys.
    """
    people = adults(n, 11, (date(2005, 1, 1), date(2006, 6, 1)))
    rng = random.Random(2)
    yj = [offence_row(p, dob_of(p) + timedelta(days=17 * 365 + 40), 900 + i, "Referral Order",
                      "Y") for i, p in enumerate(people)]
    yj[0]["PNC ID"] = ""
    probation = [period_row(p, dob_of(p) + timedelta(days=18 * 366 + 30), 900 + i, rng)
                 for i, p in enumerate(people)]
    return yj, probation


def test_ingest_links_people_across_files_and_keeps_no_raw_identifier(
        plymouth, extract, key, tmp_path):  # noqa: F811
    rows, _ = extract
    yj_rows, cross_rows = crossover()
    all_rows = rows + cross_rows
    prob_path = pseudonymised(tmp_path, all_rows, key, "probation", "periods.csv")
    prob_path = edited(prob_path, tmp_path, "periods.csv", 0, **{"Home LSOA": "E01999999"})
    prob_path = edited(prob_path, tmp_path, "periods.csv", 1, **{"Home LSOA": CORNWALL})
    prob_path = edited(prob_path, tmp_path, "periods.csv", 2, **{"Index Offence Code": "999Z"})
    yj_path = pseudonymised(tmp_path, yj_rows, key, "youth-justice", "yjs.csv")
    [yj] = ingest(plymouth, get_source("youth-justice"), [yj_path], partner="Plymouth YJS")
    [prob] = ingest(plymouth, get_source("probation"), [prob_path],
                    partner="Probation Service South West")
    assert (yj.status, prob.status) == ("loaded", "loaded"), (yj.message, prob.message)
    assert prob.rows_read == len(all_rows) == prob.rows_loaded + prob.rows_quarantined
    assert prob.rows_quarantined == 2 and prob.rows_out_of_area == 1
    lines = query(plymouth.root, """SELECT row_number, "column", value FROM quarantine
        WHERE source = 'probation' ORDER BY row_number""")
    assert lines == [(2, "lsoa_code", "E01999999"), (4, "offence_code", "999Z")]
    linked = query(plymouth.root, """SELECT count(DISTINCT a.person_key) FROM involvements a
        JOIN involvements b USING (person_key)
        WHERE a.role = 'young person' AND b.role = 'person on probation'""")
    assert linked == [(len(yj_rows) - 1,)]  # all but the one without a PNC id in the YJS file
    # That one still links through the tokens both files carry (name and date of birth).
    tokens = query(plymouth.root, """SELECT count(DISTINCT a.person_key) FROM person_tokens a
        JOIN person_tokens b ON a.field = b.field AND a.token = b.token
        WHERE a.source = 'youth-justice' AND b.source = 'probation'
          AND a.field IN ('dob_token', 'surname_token')
        GROUP BY a.field ORDER BY a.field""")
    assert tokens == [(len(yj_rows),), (len(yj_rows),)]
    assert raw_values_in_warehouse(plymouth.root, all_rows + yj_rows) == []

    [again] = ingest(plymouth, get_source("probation"), [prob_path],
                     partner="Probation Service South West")
    assert again.status == "skipped"
    newer = edited(prob_path, tmp_path, "newer.csv", 4, **{"End Date": "31/03/2025"})
    [second] = ingest(plymouth, get_source("probation"), [newer],
                      partner="Probation Service South West")
    assert second.status == "loaded" and second.superseded == [prob.load_id]
    assert query(plymouth.root, """SELECT count(*), count(DISTINCT source_record_id)
        FROM events WHERE source = 'probation'""") == [(len(all_rows) - 2,) * 2]
    assert query(plymouth.root, "SELECT context FROM events WHERE source_record_id = "
                 f"'{all_rows[4]['Supervision ID']}'")[0][0].startswith("end_date=2025-03-31")
    [rejected] = ingest(plymouth, get_source("probation"),
                        [write_csv(tmp_path / "raw.csv", all_rows)])
    assert rejected.status == "rejected"
    assert raw_values_in_warehouse(plymouth.root, all_rows + yj_rows) == []
