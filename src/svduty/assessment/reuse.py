"""Reuse the analysis Results of the last build when none of their inputs has changed.

A rebuild after editing narrative overrides (or a second build the same day) need not run
the analyses again: the Results are kept as Parquet (exact types) with their metadata in
``<partnership>/assessment/cache/results/<key>/``, where the key is a hash of everything
they are made from: the warehouse file and its event files (size and modification time, so
any ingest changes it), ``partnership.toml``, ``definition.toml``, the reference files, the
area and period asked for, the analysis code and the date (the cache is per day). The latest
:data:`KEEP` runs are kept; delete the folder to force a fresh analysis.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, fields
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from svduty.analysis.result import Meta, Result
from svduty.assessment.cache import FOLDER, digest
from svduty.partnership import Partnership
from svduty.store import STORE_DIR

KEEP = 2


def inputs_key(partnership: Partnership, area: str | None, period: str | None) -> str:
    """A hash of every input of the analyses (see the module notes)."""
    import svduty

    root = Path(partnership.root)
    watched = [root / "warehouse.duckdb", root / "warehouse.duckdb.wal"]
    watched += sorted((root / STORE_DIR).rglob("*.parquet"))  # the events (svduty.store)
    watched += sorted(p for p in (root / "reference").rglob("*") if p.is_file())
    stats = [(p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
             for p in watched if p.exists()]
    configs = [p.read_bytes() for p in (root / "partnership.toml", root / "definition.toml")
               if p.exists()]
    code = Path(svduty.__file__).parent / "analysis"
    sources = [p.read_bytes() for p in sorted(code.rglob("*.py"))]
    return digest(stats, *configs, *sources, area or "", period or "",
                  getattr(svduty, "__version__", ""), date.today().isoformat())


def folder(partnership: Partnership) -> Path:
    return Path(partnership.root) / FOLDER / "results"


def load(partnership: Partnership, key: str) -> Any | None:
    """The analysis Run kept under `key`, or None (also where it cannot be read)."""
    from svduty.analysis.run import Run
    from svduty.analysis.scope import Scope

    where = folder(partnership) / key
    try:
        body = json.loads((where / "run.json").read_text("utf-8"))
        scope = body["scope"] | {"start": date.fromisoformat(body["scope"]["start"]),
                                 "end": date.fromisoformat(body["scope"]["end"])}
        scope = Scope(**{f.name: tuple(v) if isinstance(v, list) else v
                         for f in fields(Scope) for v in [scope[f.name]]})
        results = [Result(pl.read_parquet(where / f"{i}.parquet"), _meta(meta))
                   for i, meta in enumerate(body["results"])]
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError):
        return None
    return Run(scope, results, body["failures"], body["seconds"], body["made"])


def _meta(body: dict[str, Any]) -> Meta:
    period = body.pop("period")
    return Meta(**body, period=tuple(date.fromisoformat(p) for p in period) if period else None)


def save(partnership: Partnership, key: str, run: Any) -> None:
    """Keep the Run under `key` (nothing is kept where a table cannot be stored exactly)."""
    where = folder(partnership) / key
    tmp = where.with_name(f".{key}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for i, result in enumerate(run.results):
            result.table.write_parquet(tmp / f"{i}.parquet")
    except (pl.exceptions.PolarsError, TypeError, ValueError):  # e.g. an Object column
        shutil.rmtree(tmp, ignore_errors=True)
        return
    scope = {k: (v.isoformat() if isinstance(v, date) else v)
             for k, v in asdict(run.scope).items()}
    body = {"scope": scope, "results": [r.meta.to_json() for r in run.results],
            "failures": run.failures, "seconds": run.seconds, "made": run.made}
    (tmp / "run.json").write_text(json.dumps(body, default=str), "utf-8")
    shutil.rmtree(where, ignore_errors=True)
    tmp.rename(where)
    prune(partnership)


def prune(partnership: Partnership) -> None:
    """Keep the latest :data:`KEEP` runs."""
    runs = sorted((p for p in folder(partnership).iterdir()
                   if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def kept(partnership: Partnership, area: str | None, period: str | None
         ) -> tuple[str, Any | None]:
    """The inputs' key and the Run kept for it (None where there is none)."""
    key = inputs_key(partnership, area, period)
    return key, load(partnership, key)


def analyse(partnership: Partnership, key: str, area: str | None, period: str | None,
            progress: Any = None, made: Any = None) -> Any:
    """Run the analyses and keep the Run under `key` for the next build (`progress`, `made`:
    as :func:`svduty.analysis.run.analyse` takes them)."""
    from svduty.analysis.run import analyse as run_analyses

    run = run_analyses(partnership, area, period, progress=progress, made=made)
    save(partnership, key, run)
    return run
