"""Ingest speed and memory: all police.uk street files in ../shared/data against a raw read.

    .venv/bin/python bench/ingest.py [--shared ../shared]

Runs, in one process and in this order: a raw `polars.read_csv` of every file (the floor),
then `svduty ingest` of the same files into a fresh partnership covering the three forces.
Prints rows, seconds, rows/s, the ingest/raw throughput ratio and peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from svduty.definition.rules import keep_current
from svduty.geography import import_reference
from svduty.partnership import init_partnership
from svduty.sources import get_source
from svduty.sources.ingest import ingest


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2]
                        / "shared")
    args = parser.parse_args()
    data = args.shared / "data"
    files = sorted((data / "police_uk" / "street").glob("*/*-street.csv.gz"))

    start = time.perf_counter()
    raw_rows = sum(pl.read_csv(f, infer_schema=False).height for f in files)
    raw_s = time.perf_counter() - start

    workdir = Path(tempfile.mkdtemp(prefix="svduty-bench-"))
    try:
        p = init_partnership(workdir / "p", ["Devon & Cornwall", "Merseyside", "Thames Valley"])
        start = time.perf_counter()
        import_reference(p, data)
        keep_current(p)  # as `svduty reference import` does: the warehouse starts defined
        reference_s = time.perf_counter() - start
        start = time.perf_counter()
        results = ingest(p, get_source("police-uk"), files)
        ingest_s = time.perf_counter() - start
    finally:
        shutil.rmtree(workdir)
    rows = sum(r.rows_read for r in results)
    loaded = sum(r.rows_loaded for r in results)
    print(f"files {len(files)}, rows read {rows:,} (raw {raw_rows:,}), loaded {loaded:,}")
    print(f"raw polars.read_csv : {raw_s:6.2f} s  {raw_rows / raw_s:>10,.0f} rows/s")
    print(f"svduty ingest       : {ingest_s:6.2f} s  {rows / ingest_s:>10,.0f} rows/s")
    print(f"ingest/raw throughput ratio: {raw_s / ingest_s:.2f} (target >= 0.50)")
    print(f"reference import (one-off): {reference_s:.1f} s")
    print(f"peak resident memory: {peak_rss_mib():,.0f} MiB (target < 2048)")


if __name__ == "__main__":
    main()
