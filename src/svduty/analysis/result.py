"""What every analysis returns: a tidy table plus the metadata that makes it traceable.

A :class:`Result` holds the table (Polars) and a :class:`Meta`: the sources and loads it used,
the definition version, the period and geography, the method and every parameter chosen, the
caveats, and the SQL the engine ran. ``write`` saves it as ``<name>.csv`` with a
``<name>.json`` sidecar; the SNA report reads these and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl


@dataclass
class Meta:
    """Where a Result came from and how it was made."""

    name: str  # file stem and citation key, e.g. "trend-monthly"
    title: str  # one line for people, e.g. "Serious violence by month"
    method: str  # plain-language description of the computation
    sources: list[str] = field(default_factory=list)
    loads: list[int] = field(default_factory=list)
    definition_version: str | None = None
    period: tuple[date, date] | None = None  # first and last month (month starts)
    geography: str = ""  # e.g. "Plymouth CSP (E22000...): LSOA 2021"
    parameters: dict[str, Any] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)  # SQL the engine ran
    created_at: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.period:
            out["period"] = [d.isoformat() for d in self.period]
        return out


@dataclass
class Result:
    """A tidy table and its metadata."""

    table: pl.DataFrame
    meta: Meta

    @property
    def name(self) -> str:
        return self.meta.name

    def write(self, out: Path) -> tuple[Path, Path]:
        """Write ``<name>.csv`` and ``<name>.json`` into `out`; returns both paths."""
        out.mkdir(parents=True, exist_ok=True)
        csv, sidecar = out / f"{self.name}.csv", out / f"{self.name}.json"
        flat = self.table.with_columns(
            pl.col(c).cast(pl.String) for c, t in self.table.schema.items()
            if t.is_nested() or t == pl.Object)
        flat.write_csv(csv)
        body = self.meta.to_json() | {"rows": self.table.height,
                                      "columns": dict(zip(self.table.columns,
                                                          map(str, self.table.dtypes),
                                                          strict=True))}
        sidecar.write_text(json.dumps(body, indent=2, default=str) + "\n", "utf-8")
        return csv, sidecar


def read_result(csv: Path) -> Result:
    """Read a Result written by :meth:`Result.write` (for reports and tests)."""
    body = json.loads(csv.with_suffix(".json").read_text("utf-8"))
    dtypes = {c: t for c, t in body.pop("columns").items()}
    body.pop("rows")
    period = body.pop("period")
    meta = Meta(**body, period=tuple(date.fromisoformat(p) for p in period) if period else None)
    table = pl.read_csv(csv, infer_schema_length=None)
    if table.height == 0:
        table = pl.DataFrame(schema=dict.fromkeys(dtypes, pl.String))
    return Result(table, meta)
