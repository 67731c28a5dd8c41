"""The partnership folder: `partnership.toml`, `definition.toml`, `inbox/` and the warehouse.

A partnership is one or several Community Safety Partnerships (CSPs) working together, for
example the four Cheshire CSPs under one force, or Plymouth alone. Areas are resolved at
`svduty init` against the bundled ONS local authority -> CSP -> police force lookup, so a
partnership can be set up offline before any reference data is imported.
"""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

import tomli_w
from pydantic import BaseModel, Field

PARTNERSHIP_FILE = "partnership.toml"
DEFINITION_FILE = "definition.toml"
WAREHOUSE_FILE = "warehouse.duckdb"


class PartnershipError(Exception):
    """A problem with the partnership folder or its configuration, explained for the user."""


class Area(BaseModel):
    """One CSP in the partnership and the local authorities it covers."""

    csp_code: str
    csp_name: str
    lad_codes: list[str]
    lad_names: list[str]
    pfa_code: str
    pfa_name: str


class Disclosure(BaseModel):
    """Disclosure-control thresholds for published outputs (per-source overrides allowed)."""

    suppress_below: int = Field(8, description="counts 1..suppress_below-1 are shown as '*'")
    rate_min_count: int = Field(10, description="rates are suppressed where the count is below")
    sources: dict[str, dict[str, int]] = Field(default_factory=dict)


class Gateway(BaseModel):
    """A lawful gateway recorded for a data flow (see docs/data-formats.md)."""

    source: str
    partner: str
    gateway: str
    level: str = "aggregate"
    note: str = ""


class Config(BaseModel):
    """The contents of partnership.toml."""

    name: str
    created: date
    areas: list[Area]
    reference_source: str | None = None
    key_file: str | None = None
    disclosure: Disclosure = Field(default_factory=Disclosure)
    gateways: list[Gateway] = Field(default_factory=list)
    synthetic: bool = Field(False, description="generated demonstration data, not real")

    @property
    def lad_codes(self) -> list[str]:
        return [code for area in self.areas for code in area.lad_codes]

    @property
    def pfa_codes(self) -> list[str]:
        return sorted({area.pfa_code for area in self.areas})


@dataclass(frozen=True)
class LocalAuthority:
    lad_code: str
    lad_name: str
    lad_active_code: str
    lad_active_name: str
    csp_code: str
    csp_name: str
    pfa_code: str
    pfa_name: str


@cache
def bundled_authorities() -> tuple[LocalAuthority, ...]:
    """Every local authority (old and current codes) with its current CSP and force area."""
    text = resources.files("svduty.reference").joinpath("areas.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return tuple(
        LocalAuthority(**{k: r[k] for k in LocalAuthority.__dataclass_fields__}) for r in rows
    )


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().replace("&", "and"))


def resolve_area(query: str) -> list[Area]:
    """Resolve an LA code, CSP code, force code, or a name of any of them to CSP areas.

    A force name or code (e.g. "Cheshire") gives every CSP in that force.
    """
    q = _norm(query)
    las = bundled_authorities()
    hits = [
        la for la in las
        if q in {_norm(la.lad_code), _norm(la.lad_active_code), _norm(la.csp_code),
                 _norm(la.lad_name), _norm(la.lad_active_name), _norm(la.csp_name)}
    ]
    if not hits:
        hits = [la for la in las if q in {_norm(la.pfa_code), _norm(la.pfa_name)}]
    if not hits:
        close = sorted({la.csp_name for la in las if q[:4] and q[:4] in _norm(la.csp_name)})
        hint = f" Did you mean: {', '.join(close[:8])}?" if close else ""
        raise PartnershipError(
            f"No local authority, CSP or police force area matches '{query}'.{hint} "
            "Use an ONS code (E06..., E07..., E08..., E09..., W06..., E22..., E23...) or a name."
        )
    return _group_by_csp(hits)


def _group_by_csp(las: list[LocalAuthority]) -> list[Area]:
    """Group local authorities by CSP, using current (active) LA codes."""
    current = {la.lad_active_code: la for la in bundled_authorities()}
    by_csp: dict[str, dict[str, LocalAuthority]] = {}
    for la in las:
        active = current.get(la.lad_active_code, la)
        by_csp.setdefault(la.csp_code, {})[active.lad_active_code] = active
    areas = []
    for csp_code, members in sorted(by_csp.items()):
        first = next(iter(members.values()))
        areas.append(Area(
            csp_code=csp_code, csp_name=first.csp_name,
            lad_codes=sorted(members),
            lad_names=[members[c].lad_active_name for c in sorted(members)],
            pfa_code=first.pfa_code, pfa_name=first.pfa_name,
        ))
    return areas


class Partnership:
    """A partnership folder on disk."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        config_path = self.root / PARTNERSHIP_FILE
        if not config_path.exists():
            raise PartnershipError(
                f"{self.root} is not a partnership folder (no {PARTNERSHIP_FILE}). "
                f"Create one with: svduty init {self.root} --area <LA, CSP or force>"
            )
        try:
            data = tomllib.loads(config_path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PartnershipError(f"{config_path} is not valid TOML: {exc}") from exc
        self.config = Config.model_validate(data)

    @property
    def warehouse_path(self) -> Path:
        return self.root / WAREHOUSE_FILE

    @property
    def definition_path(self) -> Path:
        return self.root / DEFINITION_FILE

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    def warehouse(self, read_only: bool = False):  # -> Warehouse (imported lazily: heavy)
        from svduty.warehouse import Warehouse

        if read_only and not self.warehouse_path.exists():
            raise PartnershipError(
                f"{self.root} has no warehouse yet. Import reference data first: "
                f"svduty reference import {self.root} <folder>"
            )
        return Warehouse(self.warehouse_path, read_only=read_only)

    def save(self) -> None:
        write_config(self.root, self.config)


def write_config(root: Path, config: Config) -> None:
    data = config.model_dump(mode="json", exclude_none=True)
    (root / PARTNERSHIP_FILE).write_text(_header() + tomli_w.dumps(data), "utf-8")


def _header() -> str:
    return (
        "# svduty partnership configuration. Edit with care; keep it under version control.\n"
        "# areas: the CSPs (and their local authorities) this partnership covers.\n"
        "# disclosure: thresholds for published outputs (counts below suppress_below are '*').\n\n"
    )


def init_partnership(
    root: Path, area_queries: list[str], name: str | None = None, template: str = "default"
) -> Partnership:
    """Create a partnership folder for one or several areas with a starting definition."""

    for existing in (PARTNERSHIP_FILE, DEFINITION_FILE):
        if (root / existing).exists():
            raise PartnershipError(
                f"{root} already holds a partnership ({existing} exists); nothing was changed.")
    if not area_queries:
        raise PartnershipError("Name at least one area with --area (LA, CSP or force).")
    areas: dict[str, Area] = {}
    for query in area_queries:
        for area in resolve_area(query):
            areas[area.csp_code] = area
    ordered = sorted(areas.values(), key=lambda a: a.csp_name)
    if name is None:
        forces = sorted({a.pfa_name for a in ordered})
        forces_text = ", ".join(forces[:-1]) + (" and " if len(forces) > 1 else "") + forces[-1]
        name = " and ".join(a.csp_name for a in ordered) if len(ordered) <= 3 else (
            f"{forces_text} partnership ({len(ordered)} CSPs)")
    return create_partnership(root, Config(name=name, created=date.today(), areas=ordered),
                              template)


def create_partnership(root: Path, config: Config, template: str = "default") -> Partnership:
    """Write a new partnership folder for a resolved configuration."""
    from svduty.definition.templates import write_template

    root.mkdir(parents=True, exist_ok=True)
    (root / "inbox").mkdir(exist_ok=True)
    write_template(root / DEFINITION_FILE, template, partnership_name=config.name)
    write_config(root, config)
    return Partnership(root)
