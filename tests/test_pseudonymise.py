"""`svduty pseudonymise` and `svduty key new`: no raw identifier leaves, tokens link people."""

from __future__ import annotations

import gzip
import random
import re
import stat
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from svduty.cli import app
from svduty.privacy.keys import KeyFileError, load_key, new_key
from svduty.privacy.pseudonymise import nhs_number_valid, pseudonymise, token

HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Every name has a letter outside a-f, so it cannot turn up inside a hex token by chance.
FORENAMES = ["John", "Mary", "José", "Anna", "Łukasz", "Zoë", "Ahmed", "Priya", "Tom", "Seán",
             "Oliver", "Grace", "Mohammed", "Siobhan", "Kwame", "Ying", "Rhys", "Niamh"]
SURNAMES = ["Smith", "Jones", "O'Brien", "Müller", "Smith-Jones", "Nowak", "Khan", "Patel",
            "Williams", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Walker"]
runner = CliRunner()


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        check = (11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def people(n: int = 2000, seed: int = 7) -> list[dict[str, str]]:
    """Fake people: names (with suffixes so most are distinct), DOB, postcode, NHS number."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 25_000))
        rows.append({
            "Forename": rng.choice(FORENAMES) + "xyz"[i % 3] * (i % 4),
            "Surname": rng.choice(SURNAMES) + "-" + "".join(rng.choices("ghijklmnopqrstuvwxyz",
                                                                        k=4)),
            "Date of Birth": born.isoformat() if i % 2 else born.strftime("%d/%m/%Y"),
            "NHS Number": nhs_number(rng),
            "Post code": (f"PL{rng.randint(1, 30)} {rng.randint(0, 9)}"
                          f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRTUXY')}"),
            "Offence": rng.choice(["assault", "robbery", "wounding"]),
            "Age": str(rng.randint(10, 80)),
        })
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pl.DataFrame(rows).write_csv(path)
    return path


@pytest.fixture(scope="module")
def key_path(tmp_path_factory) -> Path:
    return new_key(tmp_path_factory.mktemp("key") / "partnership.key")


@pytest.fixture(scope="module")
def run(tmp_path_factory, key_path):
    """The fake extract pseudonymised once: (people, input path, output path, report)."""
    folder = tmp_path_factory.mktemp("pseudo")
    rows = people()
    src = write_csv(folder / "extract.csv", rows)
    out = folder / "out.csv"
    report = pseudonymise(src, out, load_key(key_path), "police-recorded")
    return rows, src, out, report


def test_no_raw_identifier_anywhere_in_output(run):
    rows, _, out, report = run
    data = out.read_bytes().decode()
    assert report.rows_read == report.rows_written == len(rows)
    needles = set()
    for person in rows:
        for name in (person["Forename"], person["Surname"]):
            needles |= {name, name.upper()}
        born = person["Date of Birth"]
        on = (date.fromisoformat(born) if "-" in born
              else date(int(born[6:]), int(born[3:5]), int(born[:2])))
        needles |= {on.isoformat(), on.strftime("%d/%m/%Y")}
        postcode = person["Post code"]
        needles |= {postcode, postcode.replace(" ", "")}
    # Names, dates and postcodes hold characters that no hex token has (each name a letter
    # past f, each date a '-' or '/', each postcode 'PL'), so they can only be outside the
    # tokens; NHS numbers are all digits, so the whole output is searched for them.
    assert all(re.search(r"[^0-9a-fA-F]", n) for n in needles)
    rest = re.sub(r"[0-9a-f]{64}", "#", data)
    assert len(rest) < len(data) / 10
    for text in (rest, rest.upper()):
        assert not [n for n in needles if n in text]
    assert not [p["NHS Number"] for p in rows if p["NHS Number"] in data]
    header = data.splitlines()[0].split(",")
    assert not {"Forename", "Surname", "Date of Birth", "NHS Number", "Post code"} & set(header)
    assert {"Offence", "Age", "person_key", "dob_swapped", "surname_nysiis",
            "postcode_sector"} <= set(header)


def test_passthrough_columns_unchanged_and_person_key_is_hex(run):
    rows, _, out, report = run
    frame = pl.read_csv(out, infer_schema=False)
    assert frame["Offence"].to_list() == [r["Offence"] for r in rows]
    assert frame["Age"].to_list() == [r["Age"] for r in rows]
    assert all(HEX64.match(k) for k in frame["person_key"])  # police-recorded accepts it
    assert frame["person_key"].n_unique() == len(rows)
    assert report.passed_through == ["Offence", "Age"]
    assert set(report.identifiers) == {"forename", "surname", "dob", "nhs_number", "postcode"}
    assert not report.warnings


def test_deterministic_same_key_and_different_with_another(run, key_path, tmp_path):
    _, src, out, _ = run
    again = tmp_path / "again.csv"
    pseudonymise(src, again, load_key(key_path), "police-recorded")
    assert again.read_bytes() == out.read_bytes()
    other_key = load_key(new_key(tmp_path / "other.key"))
    other = tmp_path / "other.csv"
    pseudonymise(src, other, other_key, "police-recorded")
    a, b = pl.read_csv(out, infer_schema=False), pl.read_csv(other, infer_schema=False)
    for column in ("person_key", "surname_token", "dob_token", "nhs_number_token"):
        assert not set(a[column]) & set(b[column])


def test_spelling_variants_accents_and_swapped_dates_link(key_path, tmp_path):
    src = write_csv(tmp_path / "in.csv", [
        {"first name": "Ann", "Last Name": "smith", "DOB": "1990-03-04", "NHS No": ""},
        {"first name": "ANN ", "Last Name": "SMITH ", "DOB": "04/03/1990", "NHS No": ""},
        {"first name": "ann", "Last Name": "Smíth", "DOB": "1990-04-03", "NHS No": ""},
        {"first name": "Ann", "Last Name": "Smith", "DOB": "1990-03-04",
         "NHS No": "943 476 5919"},
    ])
    out = tmp_path / "out.csv"
    key = load_key(key_path)
    pseudonymise(src, out, key, "ae")
    frame = pl.read_csv(out, infer_schema=False)
    assert frame["surname_token"].n_unique() == 1
    assert frame["surname_token"][0] == token(key, "surname", "SMITH")
    assert frame["surname_soundex"].n_unique() == 1
    assert frame["forename_token"].n_unique() == 1
    assert frame["person_key"][0] == frame["person_key"][1] != frame["person_key"][2]
    # The third row's date is the first's with day and month swapped.
    assert frame["dob_swapped"][2] == frame["dob_token"][0]
    assert frame["dob_swapped"][0] == frame["dob_token"][2]
    assert frame["dob_year"].n_unique() == 1
    # NHS number wins over name + date of birth, and is field-specific.
    assert nhs_number_valid("9434765919")
    assert frame["person_key"][3] == token(key, "person_key", "nhs:9434765919")
    assert frame["nhs_number_token"][3] == token(key, "nhs_number", "9434765919")
    assert token(key, "forename", "SMITH") != token(key, "surname", "SMITH")


def test_invalid_date_of_birth_is_rejected_without_raw_value(key_path, tmp_path):
    rows = people(20)
    rows[4]["Date of Birth"] = "31/02/1990"
    rows[9]["Date of Birth"] = "someday"
    rows[11]["NHS Number"] = "1234567890"  # bad check digit: a warning, still tokenised
    out = tmp_path / "out.csv"
    report = pseudonymise(write_csv(tmp_path / "in.csv", rows), out, load_key(key_path), "x")
    assert report.rows_read == 20 and report.rows_written == 18 and report.rows_rejected == 2
    assert report.warnings["NHS number not 10 digits with a valid check digit"] == 1
    rejected = out.with_name("out.rejected.csv")
    assert report.rejected_path == rejected
    text = rejected.read_text()
    assert "31/02/1990" not in text and "someday" not in text
    frame = pl.read_csv(rejected, infer_schema=False)
    assert frame.columns == ["row", "reason"]
    assert frame["row"].to_list() == ["6", "11"]  # spreadsheet rows: row 1 is the header
    assert "date of birth" in frame["reason"][0]


def test_xlsx_gzip_and_windows_1252_inputs(key_path, tmp_path):
    rows = people(50)
    rows[0]["Surname"] = "Smíth"
    key = load_key(key_path)
    plain = tmp_path / "plain.csv"
    pseudonymise(write_csv(tmp_path / "in.csv", rows), plain, key, "x")
    expected = pl.read_csv(plain, infer_schema=False)

    pl.DataFrame(rows).write_excel(tmp_path / "in.xlsx")
    pseudonymise(tmp_path / "in.xlsx", tmp_path / "xlsx.csv", key, "x")
    assert pl.read_csv(tmp_path / "xlsx.csv", infer_schema=False).equals(expected)

    gz = tmp_path / "in.csv.gz"
    gz.write_bytes(gzip.compress((tmp_path / "in.csv").read_bytes()))
    pseudonymise(gz, tmp_path / "gz.csv", key, "x")
    assert (tmp_path / "gz.csv").read_bytes() == plain.read_bytes()

    cp = tmp_path / "cp1252.csv"
    cp.write_bytes("Surname,Offence\nSmíth,assault\n".encode("cp1252"))
    pseudonymise(cp, tmp_path / "cp.csv", key, "x")
    cp_out = pl.read_csv(tmp_path / "cp.csv", infer_schema=False)
    assert cp_out["surname_token"][0] == token(key, "surname", "SMITH")


def test_small_chunks_give_the_same_output(run, key_path, tmp_path):
    _, src, out, _ = run
    chunked = tmp_path / "chunked.csv"
    seen = []
    pseudonymise(src, chunked, load_key(key_path), "police-recorded", progress=seen.append,
                 chunk_rows=300)
    assert sum(seen) == 2000 and len(seen) > 1
    assert chunked.read_bytes() == out.read_bytes()


def test_other_identifier_columns_are_dropped(key_path, tmp_path):
    src = write_csv(tmp_path / "in.csv", [{"Surname": "Smith", "Address": "1 High St",
                                           "NI Number": "QQ123456C", "Offence": "assault"}])
    out = tmp_path / "out.csv"
    report = pseudonymise(src, out, load_key(key_path), "x")
    assert report.dropped == ["Address", "NI Number"]
    assert "High St" not in out.read_text() and "QQ123456C" not in out.read_text()


def test_key_new_refuses_overwrite_and_is_private(tmp_path):
    path = tmp_path / "k.key"
    result = runner.invoke(app, ["key", "new", str(path)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key(path)
    assert len(key) == 32
    result = runner.invoke(app, ["key", "new", str(path)])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert load_key(path) == key


@pytest.mark.parametrize(("content", "message"), [
    (None, "not found"),
    ("# comment only\n", "holds no key"),
    ("abcd" * 8 + "\n", "holds 32 hexadecimal characters, not 64"),
    ("zz" * 32 + "\n", "not a key"),
])
def test_bad_key_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        load_key(path)


def test_cli_pseudonymise(tmp_path, key_path):
    rows = people(30)
    rows[2]["Date of Birth"] = "1990-13-45"
    src = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["pseudonymise", "--key", str(key_path), "--source", "police",
                                 str(src), str(out)])
    assert result.exit_code == 0, result.output
    assert "rows read" in result.output and "30" in result.output
    assert "1 row(s) not processed" in result.output
    assert "1990-13-45" not in result.output
    assert out.exists() and (tmp_path / "out.rejected.csv").exists()

    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    result = runner.invoke(app, ["pseudonymise", "--key", str(short), "--source", "police",
                                 str(src), str(tmp_path / "o2.csv")])
    assert result.exit_code == 1
    assert "not 64" in result.output
    assert not (tmp_path / "o2.csv").exists()

    nothing = write_csv(tmp_path / "none.csv", [{"Offence": "assault"}])
    result = runner.invoke(app, ["pseudonymise", "--key", str(key_path), "--source", "x",
                                 str(nothing), str(tmp_path / "o3.csv")])
    assert result.exit_code == 1
    assert "no identifier column" in result.output


def test_full_name_gives_forename_and_surname_derivatives(key_path, tmp_path):
    src = write_csv(tmp_path / "in.csv", [
        {"Name": "  Zoë  O'Brien-Nowak ", "PNC ID": "2001/0012345A"},
        {"Name": "ZOE OBRIENNOWAK", "PNC ID": "01/12345a"}])
    out = tmp_path / "out.csv"
    key = load_key(key_path)
    pseudonymise(src, out, key, "x")
    frame = pl.read_csv(out, infer_schema=False)
    assert "Name" not in frame.columns and "PNC ID" not in frame.columns
    assert frame["name_token"].n_unique() == 1
    assert frame["forename_initial"][0] == token(key, "forename_initial", "Z")
    assert frame["surname_soundex"].n_unique() == 1
    assert frame["person_key"].n_unique() == 1
    assert frame["person_key"][0] == token(key, "person_key", "pnc:01/12345A")
