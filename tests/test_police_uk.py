"""The data.police.uk street-level reader on real files and on every kind of bad file."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from svduty.sources.base import FileError
from svduty.sources.police_uk import HEADER, PoliceUK

from .conftest import STREET

GOOD_ROW = ("abc123,2025-01,Devon & Cornwall Police,Devon & Cornwall Police,-4.1427,50.3755,"
            "On or near Royal Parade,E01015023,Plymouth 003A,Violence and sexual offences,"
            "Under investigation,")


def write(tmp_path: Path, rows: list[str], name="2025-01-devon-and-cornwall-street.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([",".join(HEADER), *rows]) + "\n", "utf-8")
    return path


def test_real_file_reconciles():
    path = STREET / "2018-10" / "2018-10-devon-and-cornwall-street.csv.gz"
    parsed = PoliceUK().read(path)
    assert parsed.rows_read == 12_703  # as published (data README)
    loaded = parsed.events.height
    quarantined = parsed.quarantine.get_column("row_number").n_unique()
    assert loaded + quarantined == parsed.rows_read
    assert parsed.scope == "devon-and-cornwall"
    assert parsed.period[0].isoformat() == "2018-10-01"
    assert parsed.period[1].isoformat() == "2018-10-31"
    # rows with no location are loaded, without an LSOA (544 in this month per the data README)
    assert parsed.events.filter(pl.col("lsoa_code").is_null()).height == 544
    ids = parsed.events.get_column("source_record_id")
    assert ids.n_unique() == ids.len()


def test_bad_rows_are_quarantined_with_column_value_and_reason(tmp_path):
    rows = [
        GOOD_ROW,
        GOOD_ROW.replace("abc123", "r2").replace("E01015023", "X123"),
        GOOD_ROW.replace("abc123", "r3").replace(",2025-01,", ",2025-13,"),
        GOOD_ROW.replace("abc123", "r4").replace(",2025-01,", ",2025-02,"),
        GOOD_ROW.replace("abc123", "r5").replace("Violence and sexual offences", "Jaywalking"),
        GOOD_ROW.replace("abc123", "r6").replace("-4.1427,50.3755", "-74.0060,40.7128"),
        GOOD_ROW.replace("abc123", "r7").replace("-4.1427", "west"),
        GOOD_ROW,  # duplicate Crime ID abc123
    ]
    parsed = PoliceUK().read(write(tmp_path, rows))
    q = parsed.quarantine
    by_row = {r["row_number"]: r for r in q.to_dicts()}
    assert parsed.rows_read == 8
    assert parsed.events.get_column("row_number").to_list() == [2]
    assert by_row[3]["column"] == "LSOA code" and by_row[3]["value"] == "X123"
    assert by_row[4]["column"] == "Month" and by_row[4]["value"] == "2025-13"
    assert "differs from the file's month" in by_row[5]["reason"]
    assert by_row[6]["column"] == "Crime type" and by_row[6]["value"] == "Jaywalking"
    assert "outside Great Britain" in by_row[7]["reason"]
    assert by_row[7]["value"] == "-74.0060,40.7128"
    assert q.filter(pl.col("row_number") == 8).get_column("reason").to_list()[0].startswith(
        "coordinate is not a number")
    assert "repeated" in by_row[9]["reason"]
    assert all(r["fix"] for r in q.to_dicts())
    assert '"Crime ID":"r2"' in by_row[3]["record"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (",".join(HEADER).encode() + b"\n", "no rows"),
        (b"Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,"
         b"LSOA name,Outcome type\n1,2025-01,a,b,1,50,c,E01015023,d,e\n", "outcomes file"),
        (b"Crime ID,Month,Force\n1,2025-01,x\n", "missing"),
        (",".join(HEADER).encode() + b"\n" + GOOD_ROW.replace("Royal", "R\xf6yal").encode(
            "latin-1") + b"\n", "not UTF-8"),
    ],
)
def test_wrong_files_are_rejected_whole(tmp_path, content, expected):
    path = tmp_path / "2025-01-devon-and-cornwall-street.csv"
    path.write_bytes(content)
    with pytest.raises(FileError) as info:
        PoliceUK().read(path)
    assert expected in str(info.value)
    assert path.name in str(info.value)
    assert "Expected" in str(info.value)


def test_truncated_gzip_is_rejected(tmp_path):
    real = (STREET / "2025-01" / "2025-01-merseyside-street.csv.gz").read_bytes()
    path = tmp_path / "2025-01-merseyside-street.csv.gz"
    path.write_bytes(real[: len(real) // 2])
    with pytest.raises(FileError, match="truncated or corrupt"):
        PoliceUK().read(path)


def test_short_row_is_quarantined_as_incomplete(tmp_path):
    parsed = PoliceUK().read(write(tmp_path, [GOOD_ROW, "a,2025-01,b"]))
    assert parsed.events.height == 1
    assert parsed.quarantine.get_column("reason").str.contains("incomplete").any()


def test_long_row_is_rejected(tmp_path):
    path = write(tmp_path, [GOOD_ROW, GOOD_ROW + ",extra,fields"])
    with pytest.raises(FileError, match="malformed or truncated"):
        PoliceUK().read(path)


def test_gzip_and_plain_give_the_same_events(tmp_path):
    plain = write(tmp_path, [GOOD_ROW])
    zipped = tmp_path / "2025-01-devon-and-cornwall-street.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    assert PoliceUK().read(plain).events.equals(PoliceUK().read(zipped).events)
