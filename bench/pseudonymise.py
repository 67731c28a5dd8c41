"""Partner-side pseudonymisation speed and memory on 1M generated people.

    .venv/bin/python bench/pseudonymise.py [--rows 1000000]

Generates a CSV of fake people (forename, surname, date of birth dd/mm/yyyy, NHS number with a
valid check digit, postcode, person id, two pass-through columns), then times
`svduty.privacy.pseudonymise` on it. Prints wall time, rows/s and peak resident memory.
Target (issue 3): 1M rows in under 60 s with bounded memory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from svduty.privacy.keys import load_key, new_key
from svduty.privacy.pseudonymise import pseudonymise

FORENAMES = ["Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy"]
SURNAMES = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas"]


def nhs_numbers(n: int, rng: np.random.Generator) -> list[str]:
    digits = rng.integers(0, 10, size=(n * 2, 9))
    check = (11 - (digits * np.arange(10, 1, -1)).sum(axis=1) % 11) % 11
    keep = check != 10
    full = np.column_stack([digits[keep], check[keep]])[:n]
    return ["".join(map(str, row)) for row in full]


def people(n: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    born = np.datetime64("1950-01-01") + rng.integers(0, 25_000, n).astype("timedelta64[D]")
    return pl.DataFrame({
        "Person ID": [f"P{i:08d}" for i in range(n)],
        "Forename": np.array(FORENAMES)[rng.integers(0, len(FORENAMES), n)],
        "Surname": [f"{s}{i % 5000}" for i, s in enumerate(
            np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)])],
        "Date of birth": pl.Series(born).dt.strftime("%d/%m/%Y"),
        "NHS Number": nhs_numbers(n, rng),
        "Postcode": [f"PL{d} {u}A{chr(65 + v)}" for d, u, v in zip(
            rng.integers(1, 30, n), rng.integers(0, 10, n), rng.integers(0, 26, n), strict=True)],
        "Attendance": rng.integers(0, 200, n),
        "Outcome": np.array(["suspended", "none", "excluded"])[rng.integers(0, 3, n)],
    })


def write_people(rows: int, path: Path) -> None:
    people(rows).write_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory(prefix="svduty-bench-") as tmp:
        work = Path(tmp)
        src = work / "people.csv"
        maker = multiprocessing.get_context("spawn").Process(target=write_people,
                                                             args=(rows, src))
        maker.start()  # generated in a child process, so peak memory below is the run's own
        maker.join()
        key = load_key(new_key(work / "partnership.key"))
        start = time.perf_counter()
        report = pseudonymise(src, work / "out.csv", key, source="bench")
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows {rows:,}: {seconds:.1f} s ({rows / seconds:,.0f} rows/s), "
          f"rows written {report.rows_written:,}, peak resident memory {peak:,.0f} MiB "
          "(target: 1M rows under 60 s, bounded memory)")


if __name__ == "__main__":
    main()
