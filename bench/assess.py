"""Assessment build speed and memory: both editions in HTML, PDF and DOCX, analysis included.

    .venv/bin/python bench/assess.py [--shared ../shared] [--skip-demo]

Builds a Devon & Cornwall partnership from the police.uk files in ../shared/data (all but
the latest month), then in a fresh process each: the force-area SNA, Plymouth CSP's SNA,
Plymouth again with nothing changed (charts and PDFs come from the disk cache), and Plymouth
again after ingesting the latest month (the monthly rebuild); then the demo. Each line gives
the wall time, the peak memory of the building process and that of its largest worker
process (charts and PDFs are drawn in two workers: see svduty.assessment.workers).
Targets (issue 5): force area under 60 s, a CSP under 15 s, a rebuild after adding one
month under 10 s.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path

from analyse import arguments, peak_mib  # bench/analyse.py


def measure(root: Path, area: str | None, queue: mp.Queue) -> None:
    from svduty.assessment.build import assess
    from svduty.partnership import Partnership

    start = time.perf_counter()
    assess(Partnership(root), root / "sna" / (area or "all").replace(" ", "-"), area=area)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    queue.put((time.perf_counter() - start, peak_mib(), workers))


def timed(root: Path, area: str | None) -> tuple[float, float, float]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=measure, args=(root, area, queue))
    child.start()
    out = queue.get()
    child.join()
    return out


def devon(data: Path, workdir: Path) -> tuple[Path, Path]:
    from svduty.geography import import_reference
    from svduty.partnership import init_partnership
    from svduty.sources import get_source
    from svduty.sources.ingest import ingest

    p = init_partnership(workdir / "devon", ["Devon & Cornwall"])
    import_reference(p, data)
    files = sorted((data / "police_uk" / "street").glob("*/*devon-and-cornwall-street.csv.gz"))
    ingest(p, get_source("police-uk"), files[:-1])
    return p.root, files[-1]


def report(label: str, figures: tuple[float, float, float], target: float | None) -> None:
    seconds, peak, workers = figures
    flag = "" if target is None else \
        f"  [{'ok' if seconds < target else 'OVER TARGET'}: target {target} s]"
    print(f"{label:<44} {seconds:6.1f} s  peak {peak:6.0f} MiB, workers {workers:5.0f} MiB"
          f"{flag}", flush=True)


def main() -> None:
    args = arguments(__doc__)
    workdir = Path(tempfile.mkdtemp(prefix="svduty-bench-"))
    try:
        root, latest = devon(args.shared / "data", workdir)
        report("force area: Devon & Cornwall", timed(root, None), 60)
        report("CSP: Plymouth", timed(root, "Plymouth"), 15)
        report("CSP: Plymouth, rebuild with nothing changed", timed(root, "Plymouth"), None)
        from svduty.partnership import Partnership
        from svduty.sources import get_source
        from svduty.sources.ingest import ingest

        ingest(Partnership(root), get_source("police-uk"), [latest])
        report("CSP: Plymouth, rebuild after one month", timed(root, "Plymouth"), 10)
        if not args.skip_demo:
            from svduty.demo.build import build_demo

            build_demo(workdir / "demo", seed=2024)
            report("demo CSP: Anytown (all sources)", timed(workdir / "demo", None), 15)
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
