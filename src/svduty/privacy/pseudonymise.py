"""Replace a partner extract's personal identifiers with keyed hashes, on the partner's machine.

`pseudonymise` reads a CSV (plain or .gz) or XLSX file, recognises identifier columns by name
(forename, surname, full name, date of birth, NHS number, UPN, PNC id, postcode, a local person
id), normalises each value and replaces it with HMAC-SHA-256(key, "<field>:<value>") written as
64 lower-case hex characters. The field name is part of the message, so the same text in two
fields gives two different tokens. It adds hashed derivatives for fuzzy-tolerant linkage
(`person_key`, `dob_year`, `dob_swapped`, Soundex and NYSIIS codes, forename initial, postcode
sector). The raw identifier columns are never written; other columns pass through unchanged.

CSV is processed in chunks of `CHUNK_ROWS` rows, each written as it is done, so memory stays
bounded; each chunk hashes only its distinct values. Rows that cannot be processed (a date of
birth that cannot be read) are left out and listed in `<OUT>.rejected.csv` by row number and
reason only, never with the raw value.
"""

from __future__ import annotations

import codecs
import gzip
import hmac
import os
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO

import jellyfish
import polars as pl

from svduty.sources.base import FileError
from svduty.sources.columns import (
    IDENTIFIER_COLUMNS,
    ColumnSpec,
    alias_index,
    normalise_name,
    parse_date,
    resolve_columns,
)

CHUNK_ROWS = 100_000
EARLIEST_DOB = date(1900, 1, 1)

# Identifier columns that are pseudonymised, with the other names they go by.
IDENTIFIERS: dict[str, ColumnSpec] = {
    "forename": ColumnSpec(False, ("first name", "given name", "forenames", "first names",
                                   "given names", "christian name")),
    "surname": ColumnSpec(False, ("last name", "family name")),
    "full_name": ColumnSpec(False, ("name", "person name")),
    "dob": ColumnSpec(False, ("date of birth", "birth date", "birthdate")),
    "nhs_number": ColumnSpec(False, ("nhs no", "nhs", "nhs num")),
    "upn": ColumnSpec(False, ("unique pupil number", "pupil number")),
    "pnc_id": ColumnSpec(False, ("pnc", "pnc number", "pnc no")),
    "postcode": ColumnSpec(False, ("post code", "postal code", "home postcode")),
    "person_id": ColumnSpec(False, ("nominal id", "client id", "subject id", "nominal number",
                                    "client number", "nominal ref")),
}
# Other columns that name a person directly: dropped (never written), not pseudonymised.
DROPPED = IDENTIFIER_COLUMNS | {
    "address", "addressline1", "addressline2", "addressline3", "street", "homeaddress",
    "telephone", "phone", "phonenumber", "mobile", "mobilenumber", "email", "emailaddress",
    "victimaddress", "offenderaddress",
}
REJECT_DOB = "date of birth could not be read (use yyyy-mm-dd or dd/mm/yyyy, 1900 to today)"
_POSTCODE = r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9])[A-Z]{2}$"
_PNC = r"^(\d{2}|\d{4})/0*(\d+)([A-Z])$"
_UPN = r"^[A-Z][0-9]{11}[0-9A-Z]$"


@dataclass
class Report:
    """What a run did: counts, reasons and which columns were identifiers."""

    source: str
    identifiers: dict[str, str] = field(default_factory=dict)  # field -> file column
    dropped: list[str] = field(default_factory=list)
    passed_through: list[str] = field(default_factory=list)
    output_columns: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_written: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_rows: list[int] = field(default_factory=list)  # the first few, for the message
    warnings: Counter[str] = field(default_factory=Counter)
    rejected_path: Path | None = None

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())


def token(key: bytes, field_name: str, value: str) -> str:
    """HMAC-SHA-256(key, "<field>:<value>") as 64 lower-case hex characters."""
    return hmac.digest(key, f"{field_name}:{value}".encode(), "sha256").hex()


def normalise_person_name(value: str) -> str:
    """Upper case, accents stripped, letters only: ' Smíth ' -> 'SMITH', "O'Neil" -> 'ONEIL'."""
    return "".join(c for c in _name_text(value) if c.isalpha())


def _name_text(value: str) -> str:
    """Upper case, accents stripped, keeping letters, spaces, hyphens and apostrophes."""
    text = unicodedata.normalize("NFKD", value).upper()
    return "".join(c for c in text if c.isalpha() or c in " -'")


def nhs_number_valid(digits: str) -> bool:
    """Whether a 10-digit NHS number has a valid Modulus 11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    check = (11 - sum(int(d) * (10 - i) for i, d in enumerate(digits[:9])) % 11) % 11
    return check != 10 and check == int(digits[9])


def output_name(field_name: str) -> str:
    """The output column holding a field's token: 'surname' -> 'surname_token'."""
    return "name_token" if field_name == "full_name" else f"{field_name}_token"


DERIVED = ("dob_year", "dob_swapped", "forename_soundex", "forename_initial", "surname_soundex",
           "surname_nysiis", "postcode_sector")


def pseudonymise(src: Path, out: Path, key: bytes, source: str,
                 progress: Callable[[int], None] | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> Report:
    """Pseudonymise `src` into `out` (CSV); rejected rows go to `<out>.rejected.csv`.

    Raises FileError when the file cannot be read or has no identifier column.
    """
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise FileError(src, "file not found", "a CSV (.csv, .csv.gz) or Excel (.xlsx) file")
    if out.exists() and out.resolve() == src.resolve():
        raise FileError(out, "the output would overwrite the input",
                        "a different output file name")
    report = Report(source=source.strip().lower())
    rejected_path = rejected_file(out)
    excel = src.suffix.lower() in (".xlsx", ".xlsm")
    out_tmp = out.with_name(out.name + ".partial")
    rej_tmp = rejected_path.with_name(rejected_path.name + ".partial")
    try:
        with _chunks(src, excel, chunk_rows) as (header, chunks):
            plan = _plan(src, header, report)
            with out_tmp.open("wb") as out_handle, rej_tmp.open("wb") as rej_handle:
                first_row = 2  # spreadsheet numbering: row 1 is the header
                for chunk in chunks:
                    done, bad = _process(chunk, plan, key, report, first_row, excel)
                    first_row += chunk.height
                    report.rows_read += chunk.height
                    done.write_csv(out_handle, include_header=out_handle.tell() == 0)
                    report.rows_written += done.height
                    if bad.height:
                        bad.write_csv(rej_handle, include_header=rej_handle.tell() == 0)
                    if progress:
                        progress(chunk.height)
                if out_handle.tell() == 0:  # no rows at all: still write the header
                    pl.DataFrame(schema=dict.fromkeys(report.output_columns, pl.String)
                                 ).write_csv(out_handle)
        os.replace(out_tmp, out)
        if report.rows_rejected:
            os.replace(rej_tmp, rejected_path)
            report.rejected_path = rejected_path
        else:
            rej_tmp.unlink()
            rejected_path.unlink(missing_ok=True)  # a stale list from an earlier run
    finally:
        out_tmp.unlink(missing_ok=True)
        rej_tmp.unlink(missing_ok=True)
    return report


def rejected_file(out: Path) -> Path:
    """'extract.csv' -> 'extract.rejected.csv'."""
    stem = out.name[:-4] if out.name.lower().endswith(".csv") else out.name
    return out.with_name(f"{stem}.rejected.csv")


@dataclass
class _Plan:
    identifiers: dict[str, str]
    passed: list[str]
    columns: list[str]


def _plan(src: Path, header: list[str], report: Report) -> _Plan:
    """Which header columns are identifiers, which are dropped and which pass through."""
    cols = resolve_columns(src, header, IDENTIFIERS)
    index = alias_index(IDENTIFIERS)
    passed = [h for h in header if h not in cols.values()
              and normalise_name(h) not in DROPPED and normalise_name(h) not in index]
    made = {"person_key", *(output_name(f) for f in IDENTIFIERS), *DERIVED}
    passed = [h for h in passed if h not in made]  # an old token column would clash
    dropped = [h for h in header if h not in cols.values() and h not in passed]
    if not cols:
        names = ", ".join(sorted({n for s in IDENTIFIERS.values() for n in s.aliases}))
        raise FileError(src, f"no identifier column recognised among {header[:40]}",
                        f"columns such as forename, surname, date of birth, NHS number, "
                        f"postcode or {names}")
    fields = set(cols)
    if "full_name" in fields:
        fields |= {"forename", "surname"}
    out = ["person_key", *passed, *(output_name(f) for f in IDENTIFIERS if f in cols)]
    out += [d for d in DERIVED if _derived_available(d, fields)]
    report.identifiers, report.dropped, report.passed_through = cols, dropped, passed
    report.output_columns = out
    return _Plan(cols, passed, out)


def _derived_available(name: str, fields: set[str]) -> bool:
    return name.split("_")[0] in {f.split("_")[0] for f in fields}


@contextmanager
def _chunks(src: Path, excel: bool, chunk_rows: int
            ) -> Iterator[tuple[list[str], Iterator[pl.DataFrame]]]:
    """The header and the file's rows in chunks, every column as text."""
    if excel:
        try:
            frame = pl.read_excel(src, engine="calamine", infer_schema_length=0)
        except Exception as exc:  # calamine raises its own error types
            raise FileError(src, f"could not be read as an Excel workbook ({exc})",
                            "an .xlsx file with a header row in row 1") from exc
        frame = frame.with_columns(pl.all().cast(pl.String))
        yield frame.columns, iter(frame.iter_slices(chunk_rows))
        return
    with _utf8_csv(src) as path:
        lazy = pl.scan_csv(path, infer_schema=False)
        try:
            header = lazy.collect_schema().names()
        except (pl.exceptions.NoDataError, pl.exceptions.ComputeError) as exc:
            raise FileError(src, f"could not be read as CSV ({exc})",
                            "a CSV file with a header row in row 1") from exc
        yield header, _csv_batches(src, lazy, chunk_rows)


def _csv_batches(src: Path, lazy: pl.LazyFrame, chunk_rows: int) -> Iterator[pl.DataFrame]:
    try:
        yield from lazy.collect_batches(chunk_size=chunk_rows)
    except pl.exceptions.ComputeError as exc:
        raise FileError(src, f"could not be read as CSV ({exc})",
                        "a CSV file with the same number of columns on every row") from exc


@contextmanager
def _utf8_csv(src: Path) -> Iterator[Path]:
    """`src` itself when it is plain UTF-8, else a temporary UTF-8 copy (gunzipped, or
    converted from Windows-1252, which is what Excel writes for 'CSV')."""
    gz = src.suffix.lower() == ".gz"

    def opener() -> IO[bytes]:
        return gzip.open(src, "rb") if gz else src.open("rb")

    encoding = "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with opener() as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        encoding = "cp1252"
    except (OSError, EOFError) as exc:
        raise FileError(src, f"could not be read ({exc})", "a CSV or gzipped CSV file") from exc
    if not gz and encoding == "utf-8-sig":
        yield src
        return
    fd, name = tempfile.mkstemp(suffix=".csv", prefix="svduty-")
    os.chmod(name, 0o600)  # holds raw identifiers while it exists
    try:
        reader = codecs.getincrementaldecoder(encoding)(errors="replace")
        with opener() as handle, os.fdopen(fd, "wb") as target:
            for block in iter(lambda: handle.read(1 << 20), b""):
                target.write(reader.decode(block).encode())
            target.write(reader.decode(b"", final=True).encode())
        yield Path(name)
    finally:
        with suppress(OSError):
            os.unlink(name)


def _process(chunk: pl.DataFrame, plan: _Plan, key: bytes, report: Report, first_row: int,
             excel: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One chunk -> (pseudonymised rows, rejected rows as row number and reason)."""
    ids = plan.identifiers
    raw = {f: chunk.get_column(c).str.strip_chars().replace("", None) for f, c in ids.items()}
    tokens: dict[str, pl.Series] = {}
    keep = pl.Series([True] * chunk.height)
    norm: dict[str, pl.Series] = {}

    forename = _map(raw["forename"], normalise_person_name) if "forename" in raw else None
    surname = _map(raw["surname"], normalise_person_name) if "surname" in raw else None
    if "full_name" in raw:
        text = _map(raw["full_name"], _name_text)
        words = text.str.replace_all(r"[^A-Z ]", "").str.strip_chars().str.split(" ")
        whole = text.str.replace_all(r"[^A-Z]", "").replace("", None)
        tokens["full_name"] = _hmac(whole, "name", key)
        first = words.list.first().replace("", None)
        last = words.list.eval(pl.element().filter(pl.element() != "")).list.last()
        forename = first if forename is None else forename.fill_null(first)
        surname = last if surname is None else surname.fill_null(last)
    if forename is not None:
        forename = forename.replace("", None)
        norm["forename"] = forename
        if "forename" in raw:
            tokens["forename"] = _hmac(forename, "forename", key)
        tokens["forename_soundex"] = _hmac(_map(forename, jellyfish.soundex), "forename_soundex",
                                           key)
        tokens["forename_initial"] = _hmac(forename.str.slice(0, 1), "forename_initial", key)
    if surname is not None:
        surname = surname.replace("", None)
        norm["surname"] = surname
        if "surname" in raw:
            tokens["surname"] = _hmac(surname, "surname", key)
        tokens["surname_soundex"] = _hmac(_map(surname, jellyfish.soundex), "surname_soundex",
                                          key)
        tokens["surname_nysiis"] = _hmac(_map(surname, jellyfish.nysiis), "surname_nysiis", key)

    if "dob" in raw:
        parsed = pl.DataFrame({"v": raw["dob"]}).select(
            parse_date(pl.col("v"), excel=excel)[0].alias("d")).to_series()
        parsed = parsed.set(~parsed.is_between(EARLIEST_DOB, date.today()).fill_null(True), None)
        bad = raw["dob"].is_not_null() & parsed.is_null()
        keep = keep & ~bad
        if bad.any():
            rows = (pl.int_range(first_row, first_row + chunk.height, eager=True)
                    .filter(bad))
            report.rejected[REJECT_DOB] += rows.len()
            report.rejected_rows.extend(rows.head(20 - len(report.rejected_rows)).to_list())
        iso = parsed.dt.strftime("%Y-%m-%d")
        norm["dob"] = iso
        tokens["dob"] = _hmac(iso, "dob", key)
        tokens["dob_year"] = _hmac(parsed.dt.year().cast(pl.String), "dob_year", key)
        swapped = pl.DataFrame({"d": parsed}).select(pl.concat_str([
            pl.col("d").dt.year().cast(pl.String),
            pl.col("d").dt.day().cast(pl.String).str.zfill(2),
            pl.col("d").dt.month().cast(pl.String).str.zfill(2)], separator="-")
            .str.to_date("%Y-%m-%d", strict=False).dt.strftime("%Y-%m-%d")).to_series()
        tokens["dob_swapped"] = _hmac(swapped, "dob", key)

    if "nhs_number" in raw:
        digits = raw["nhs_number"].str.replace_all(r"\D", "").replace("", None)
        valid = _map(digits, lambda d: "1" if nhs_number_valid(d) else "0") == "1"
        invalid = int((digits.is_not_null() & ~valid.fill_null(False)).sum())
        if invalid:
            report.warnings["NHS number not 10 digits with a valid check digit"] += invalid
        tokens["nhs_number"] = _hmac(digits, "nhs_number", key)
        norm["nhs_number"] = digits.set(~valid.fill_null(False), None)
    if "upn" in raw:
        upn = raw["upn"].str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "").replace("", None)
        ok = upn.str.contains(_UPN)
        invalid = int((upn.is_not_null() & ~ok.fill_null(False)).sum())
        if invalid:
            report.warnings["UPN not 13 characters (a letter, 11 digits, a digit or letter)"] \
                += invalid
        tokens["upn"] = _hmac(upn, "upn", key)
        norm["upn"] = upn.set(~ok.fill_null(False), None)
    if "pnc_id" in raw:
        pnc = raw["pnc_id"].str.to_uppercase().str.replace_all(r"\s", "").replace("", None)
        parts = pnc.str.extract_groups(_PNC)
        canonical = pl.DataFrame({"p": parts}).select(pl.concat_str([
            pl.col("p").struct.field("1").str.slice(-2), pl.lit("/"),
            pl.col("p").struct.field("2"), pl.col("p").struct.field("3")])).to_series()
        pnc = canonical.fill_null(pnc)
        tokens["pnc_id"] = _hmac(pnc, "pnc_id", key)
        norm["pnc_id"] = pnc
    if "postcode" in raw:
        postcode = (raw["postcode"].str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")
                    .replace("", None))
        parts = postcode.str.extract_groups(_POSTCODE)
        outward, sector = parts.struct.field("1"), parts.struct.field("2")
        invalid = int((postcode.is_not_null() & outward.is_null()).sum())
        if invalid:
            report.warnings["postcode not in UK format"] += invalid
        tokens["postcode"] = _hmac(postcode, "postcode", key)
        tokens["postcode_sector"] = _hmac(outward + " " + sector, "postcode_sector", key)
    if "person_id" in raw:
        person_id = raw["person_id"].str.to_uppercase()
        tokens["person_id"] = _hmac(person_id, f"person_id:{report.source}", key)
        norm["person_id"] = person_id

    tokens["person_key"] = _hmac(_person_basis(norm, report.source, chunk.height), "person_key",
                                 key)
    columns = {"person_key": tokens["person_key"]}
    for name in plan.columns[1:]:
        if name in plan.passed:
            columns[name] = chunk.get_column(name)
        else:
            fname = next((f for f in IDENTIFIERS if output_name(f) == name), name)
            columns[name] = tokens[fname]
    done = pl.DataFrame(columns).filter(keep)
    rows = pl.int_range(first_row, first_row + chunk.height, eager=True).filter(~keep)
    bad = pl.DataFrame({"row": rows, "reason": pl.Series([REJECT_DOB] * rows.len(),
                                                         dtype=pl.String)})
    return done, bad


def _person_basis(norm: dict[str, pl.Series], source: str, height: int) -> pl.Series:
    """The strongest identifier each row has, labelled: NHS number, else UPN, else PNC id,
    else forename + surname + date of birth, else the source's own person id."""
    frame = pl.DataFrame({k: v for k, v in norm.items()}, schema=dict.fromkeys(norm, pl.String))
    if not norm:
        return pl.Series([None] * height, dtype=pl.String)
    choices = []
    for name, label in (("nhs_number", "nhs"), ("upn", "upn"), ("pnc_id", "pnc")):
        if name in norm:
            choices.append(pl.lit(f"{label}:") + pl.col(name))
    if {"forename", "surname", "dob"} <= set(norm):
        choices.append(pl.concat_str([pl.lit("name_dob:"), pl.col("forename"), pl.lit("|"),
                                      pl.col("surname"), pl.lit("|"), pl.col("dob")]))
    if "person_id" in norm:
        choices.append(pl.lit(f"person_id:{source}:") + pl.col("person_id"))
    if not choices:
        return pl.Series([None] * height, dtype=pl.String)
    return frame.select(pl.coalesce(choices)).to_series()


def _map(series: pl.Series, fn: Callable[[str], str]) -> pl.Series:
    """`fn` applied to each distinct non-null value, mapped back onto the series."""
    unique = series.drop_nulls().unique()
    if unique.is_empty():
        return pl.Series(series.name, [None] * series.len(), dtype=pl.String)
    mapped = pl.Series([fn(v) for v in unique.to_list()], dtype=pl.String)
    return series.replace_strict(unique, mapped, default=None, return_dtype=pl.String)


def _hmac(series: pl.Series, field_name: str, key: bytes) -> pl.Series:
    """HMAC token of each distinct non-null value; null stays null."""
    prefix = f"{field_name}:".encode()
    return _map(series, lambda v: hmac.digest(key, prefix + v.encode(), "sha256").hex())
