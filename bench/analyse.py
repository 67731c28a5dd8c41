"""Analysis speed and memory: each police.uk force area in ../shared/data, one CSP, and the
demo partnership.

    .venv/bin/python bench/analyse.py [--shared ../shared] [--skip-demo]

Builds a partnership of the three forces (reference import + ingest of every police.uk
street file), then runs `svduty analyse` (every analysis) for each force area, for Plymouth
CSP alone, and for the Anytown demo, each in a fresh process so its peak memory is its own.
Targets (issue 4): a force area under 45 s, a single CSP under 10 s, peak memory under 4 GiB.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path

FORCES = ("Devon & Cornwall", "Merseyside", "Thames Valley")


def measure(root: Path, area: str | None, queue: mp.Queue) -> None:
    from svduty.analysis.run import analyse, write_run
    from svduty.partnership import Partnership

    start = time.perf_counter()
    run = analyse(Partnership(root), area=area)
    seconds = time.perf_counter() - start
    write_run(run, root / "bench-results" / (area or "all").replace(" ", "-"))
    peak = peak_mib()
    queue.put((seconds, peak, len(run.results), run.failures, run.seconds))


def peak_mib() -> float:
    """This process's own peak resident memory (VmHWM). Not ru_maxrss: Linux carries the
    parent's peak across fork and exec into a spawned child's ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(root: Path, area: str | None) -> tuple:
    queue: mp.Queue = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=measure, args=(root, area, queue))
    child.start()
    out = queue.get()
    child.join()
    return out


def three_forces(data: Path, workdir: Path) -> Path:
    from svduty.geography import import_reference
    from svduty.partnership import init_partnership
    from svduty.sources import get_source
    from svduty.sources.ingest import ingest

    p = init_partnership(workdir / "forces", list(FORCES))
    import_reference(p, data)
    files = sorted((data / "police_uk" / "street").glob("*/*-street.csv.gz"))
    ingest(p, get_source("police-uk"), files)
    return p.root


def report(label: str, figures: tuple, target: float) -> None:
    seconds, peak, results, failures, parts = figures
    slowest = ", ".join(f"{k} {v:.1f}" for k, v in sorted(parts.items(),
                                                          key=lambda kv: -kv[1])[:3])
    flag = "ok" if seconds < target and peak < 4096 else "OVER TARGET"
    print(f"{label:<28} {seconds:6.1f} s  peak {peak:6.0f} MiB  {results:3d} Results  "
          f"[{flag}; slowest: {slowest}]" + (f"  FAILED: {sorted(failures)}" if failures
                                             else ""))


def arguments(doc: str | None) -> argparse.Namespace:
    """--shared (the shared data folder) and --skip-demo, for the benchmarks that build the
    demo too."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2]
                        / "shared")
    parser.add_argument("--skip-demo", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__)
    workdir = Path(tempfile.mkdtemp(prefix="svduty-bench-"))
    try:
        start = time.perf_counter()
        root = three_forces(args.shared / "data", workdir)
        print(f"three-force partnership built in {time.perf_counter() - start:.0f} s")
        for force in FORCES:
            report(f"force area: {force}", timed(root, force), 45)
        report("CSP: Plymouth", timed(root, "Plymouth"), 10)
        if not args.skip_demo:
            from svduty.demo.build import build_demo

            build_demo(workdir / "demo", seed=2024)
            report("demo CSP: Anytown", timed(workdir / "demo", "E22900001"), 10)
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
