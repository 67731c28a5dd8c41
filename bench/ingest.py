"""Ingest speed and memory: all police.uk street files in ../shared/data against a raw read.

    .venv/bin/python bench/ingest.py [--shared ../shared] [--runs 3]

Imports the reference geography once into a partnership covering the three forces (as
`svduty reference import` does), then, `--runs` times: a raw `polars.read_csv` of every file
(the floor), and `svduty ingest` of the same files into a fresh copy of that partnership, each
in a fresh process of its own (as the command runs: both start cold, and the peak memory is
the ingest's own). Prints each run's
seconds, rows/s, ingest/raw throughput ratio and peak resident memory, then the median ratio.
Target (issue 2): ingest at least half the raw read's throughput, peak memory under 2 GiB.

For scale it also times reading the files and writing their rows straight back as Parquet,
in the ingest's reader threads and with nothing else (no rule, lookup, key or commit): what
any ingest that stores the rows costs at least.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from analyse import peak_mib  # bench/analyse.py


def ingest_once(root: Path, files: list[Path], queue: mp.Queue) -> None:
    from svduty.partnership import Partnership
    from svduty.sources import get_source
    from svduty.sources.ingest import ingest

    start = time.perf_counter()
    results = ingest(Partnership(root), get_source("police-uk"), files)
    seconds = time.perf_counter() - start
    queue.put((seconds, sum(r.rows_read for r in results), sum(r.rows_loaded for r in results),
               peak_mib()))


def read_once(files: list[Path], queue: mp.Queue) -> None:
    start = time.perf_counter()
    rows = sum(pl.read_csv(f, infer_schema=False).height for f in files)
    queue.put((time.perf_counter() - start, rows))


def read_and_write_once(files: list[Path], out: Path, queue: mp.Queue) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from svduty.sources.base import open_text
    from svduty.sources.ingest import READERS

    def copy(item: tuple[int, Path]) -> None:
        frame = pl.read_csv(open_text(item[1]), infer_schema=False)
        frame.write_parquet(out / f"{item[0]}.parquet", compression="uncompressed")

    out.mkdir()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        list(pool.map(copy, enumerate(files)))
    queue.put((time.perf_counter() - start,))


def in_own_process(target, *args) -> tuple:
    """Run `target(*args, queue)` in a fresh (spawned) process and return what it puts."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    out = queue.get()
    child.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2]
                        / "shared")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from svduty.definition.rules import keep_current
    from svduty.geography import import_reference
    from svduty.partnership import init_partnership

    data = args.shared / "data"
    files = sorted((data / "police_uk" / "street").glob("*/*-street.csv.gz"))
    workdir = Path(tempfile.mkdtemp(prefix="svduty-bench-"))
    try:
        template = init_partnership(workdir / "template",
                                    ["Devon & Cornwall", "Merseyside", "Thames Valley"])
        start = time.perf_counter()
        import_reference(template, data)
        keep_current(template)  # as `svduty reference import` does: the warehouse starts defined
        print(f"reference import (one-off): {time.perf_counter() - start:.1f} s")
        ratios = []
        for run in range(1, args.runs + 1):
            raw_s, raw_rows = in_own_process(read_once, files)
            root = workdir / f"run-{run}"
            shutil.copytree(template.root, root)
            os.sync()  # the copy is set-up: its write-back must not land in the timing
            ingest_s, rows, loaded, peak = in_own_process(ingest_once, root, files)
            shutil.rmtree(root)
            (copy_s,) = in_own_process(read_and_write_once, files, workdir / f"copy-{run}")
            ratios.append(raw_s / ingest_s)
            print(f"run {run}: {len(files)} files, rows read {rows:,} (raw {raw_rows:,}), "
                  f"loaded {loaded:,}")
            print(f"  raw polars.read_csv : {raw_s:6.2f} s  {raw_rows / raw_s:>10,.0f} rows/s")
            print(f"  svduty ingest       : {ingest_s:6.2f} s  {rows / ingest_s:>10,.0f} rows/s,"
                  f" peak resident memory {peak:,.0f} MiB (target < 2048)")
            print(f"  ingest/raw throughput ratio: {ratios[-1]:.2f} (target >= 0.50)")
            print(f"  for scale, read and write back only: {copy_s:.2f} s (raw/that "
                  f"{raw_s / copy_s:.2f})", flush=True)
        print(f"median ratio over {len(ratios)} runs: {statistics.median(ratios):.2f}")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
