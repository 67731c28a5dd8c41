"""Run every analysis for one Scope and write the Results (`svduty analyse`).

Each analysis module exposes ``analyse(data: Data) -> list[Result]``. They run in the order
below; one failing analysis is reported and the others still run, so a partnership without
(say) ED data still gets everything else.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from svduty.analysis.data import Data
from svduty.analysis.result import Result
from svduty.analysis.scope import Scope, resolve_scope
from svduty.partnership import Partnership

# (module, what it covers): one module per section of the Strategic Needs Assessment.
ANALYSES: tuple[tuple[str, str], ...] = (
    ("measures", "Home Office core measures"),
    ("trend", "volume and trend"),
    ("places", "places and hotspots"),
    ("times", "times"),
    ("people", "people and cohorts"),
    ("domestic", "domestic abuse and sexual violence"),
    ("health", "health view and under-reporting"),
    ("risk", "risk factors"),
    ("near_repeat", "near repeats"),
    ("comparison", "comparison with the force area"),
    ("quality", "data quality"),
)


@dataclass
class Run:
    """What `analyse` produced: the Results, failures and timings per analysis."""

    scope: Scope
    results: list[Result] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    made: dict[str, int] = field(default_factory=dict)  # Results per analysis


def analyse(partnership: Partnership, area: str | None = None, period: str | None = None,
            only: tuple[str, ...] = (), progress: Callable[[str], None] | None = None,
            made: Callable[[list[Result]], None] | None = None) -> Run:
    """Run the analyses (all, or those named in `only`) for the resolved Scope, under the
    local definition in `definition.toml` (applied first if it changed). `made` is given
    each analysis's Results as soon as they are made (a build starts drawing charts)."""
    from svduty.definition.rules import keep_current

    keep_current(partnership)
    with partnership.warehouse(read_only=True) as wh:
        scope = resolve_scope(partnership, wh, area, period)
        run = Run(scope)
        for module, what in ANALYSES:
            if only and module not in only:
                continue
            if progress:
                progress(what)
            started = time.perf_counter()
            try:
                analysis = importlib.import_module(f"svduty.analysis.{module}")
                results = analysis.analyse(Data(wh, scope))
                run.results += results
                run.made[module] = len(results)
            except Exception as exc:  # reported per analysis; the rest still run
                run.failures[module] = f"{type(exc).__name__}: {exc}"
                results = []
            run.seconds[module] = round(time.perf_counter() - started, 3)
            if made and results:
                made(results)
    return run


def write_run(run: Run, out: Path) -> Path:
    """Every Result as CSV + JSON sidecar, and `index.json` listing them."""
    out.mkdir(parents=True, exist_ok=True)
    for result in run.results:
        result.write(out)
    index = {
        "scope": run.scope.describe(), "definition_version": run.scope.definition_version,
        "police_source": run.scope.police_source,
        "period": [run.scope.start.isoformat(), run.scope.end.isoformat()],
        "results": [{"name": r.name, "title": r.meta.title, "rows": r.table.height}
                    for r in run.results],
        "failures": run.failures, "seconds": run.seconds, "made": run.made,
    }
    path = out / "index.json"
    path.write_text(json.dumps(index, indent=2) + "\n", "utf-8")
    return path
