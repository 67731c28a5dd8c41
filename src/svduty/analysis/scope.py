"""What an analysis run covers: the areas, the months, and which police source counts.

`svduty analyse DIR [--period START..END] [--area CODE]` resolves to one :class:`Scope`. The
areas are the partnership's CSPs (or one CSP or local authority of them); the comparison
geography is every local authority in the same police force areas. Serious violence is
counted from the force's recorded-crime extract (`police-recorded`, Home Office offence
codes) where the partnership has loaded one; otherwise from the data.police.uk files
(`police-uk`), whose categories are a labelled proxy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from svduty.loads import month_range
from svduty.partnership import Area, Partnership
from svduty.warehouse import Warehouse

PERIOD = re.compile(r"^(\d{4})-(\d{2})\.\.(\d{4})-(\d{2})$")
POLICE_SOURCES = ("police-recorded", "police-uk")


class ScopeError(ValueError):
    """The requested area or period cannot be analysed; the message says what to do."""


@dataclass(frozen=True)
class Scope:
    """Areas, months and police source of one analysis run."""

    label: str  # "Safer Anytown Partnership" or "Plymouth"
    lad_codes: tuple[str, ...]  # the areas analysed
    csp_codes: tuple[str, ...]
    pfa_codes: tuple[str, ...]
    force_lad_codes: tuple[str, ...]  # every LA in the same force areas (for comparison)
    start: date  # first month (month start)
    end: date  # last month (month start)
    police_source: str  # "police-recorded" or "police-uk"
    definition_version: str | None
    caveats: tuple[str, ...] = field(default=())

    @property
    def months(self) -> list[date]:
        return month_range(self.start, self.end)

    @property
    def proxy(self) -> bool:
        """True when serious violence is counted from police.uk categories (a proxy)."""
        return self.police_source == "police-uk"

    def describe(self) -> str:
        return (f"{self.label} ({', '.join(self.lad_codes)}), "
                f"{self.start:%b %Y} to {self.end:%b %Y}, {self.police_source}")


def parse_period(text: str) -> tuple[date, date]:
    """'2023-04..2025-03' -> (2023-04-01, 2025-03-01)."""
    found = PERIOD.match(text.strip())
    if not found:
        raise ScopeError(f"period '{text}' is not START..END in months, e.g. 2023-04..2025-03")
    y1, m1, y2, m2 = map(int, found.groups())
    if not (1 <= m1 <= 12 and 1 <= m2 <= 12) or (y1, m1) > (y2, m2):
        raise ScopeError(f"period '{text}' is not a valid range of months")
    return date(y1, m1, 1), date(y2, m2, 1)


def resolve_scope(partnership: Partnership, wh: Warehouse, area: str | None = None,
                  period: str | None = None) -> Scope:
    """The Scope for `svduty analyse` options (None: the whole partnership, every month)."""
    chosen, lads, label = choose_areas(partnership, area)
    if not lads:
        raise ScopeError("the partnership has no areas: run `svduty init` with --area")
    pfas = tuple(sorted({a.pfa_code for a in chosen}))
    force = force_lads(wh, pfas) or tuple(lads)
    source = police_source(wh, lads)
    start, end = months_covered(wh, source, lads)
    if period:
        start, end = parse_period(period)
    caveats = []
    if source == "police-uk":
        caveats.append("Serious violence is counted from data.police.uk categories, a proxy: "
                       "they carry no offence codes, weapons or ages, so categories are broader "
                       "than the local definition.")
    return Scope(label=label, lad_codes=tuple(lads),
                 csp_codes=tuple(sorted({a.csp_code for a in chosen})), pfa_codes=pfas,
                 force_lad_codes=force, start=start, end=end, police_source=source,
                 definition_version=definition_version(wh), caveats=tuple(caveats))


def choose_areas(partnership: Partnership, area: str | None
                 ) -> tuple[list[Area], list[str], str]:
    """The CSPs and local authorities `area` names (a force area, CSP or local authority, by
    code or name), and a label."""
    areas = partnership.config.areas
    if not area:
        return areas, [c for a in areas for c in a.lad_codes], partnership.config.name
    key = area.strip().lower()
    force = [a for a in areas if key in (a.pfa_code.lower(), a.pfa_name.lower())]
    if force:  # a force area: every CSP of the partnership in it
        return force, [c for a in force for c in a.lad_codes], force[0].pfa_name
    for a in areas:
        if key in (a.csp_code.lower(), a.csp_name.lower()):
            return [a], list(a.lad_codes), a.csp_name
        for code, name in zip(a.lad_codes, a.lad_names, strict=True):
            if key in (code.lower(), name.lower()):
                return [a], [code], name
    known = ", ".join(f"{a.csp_code} {a.csp_name}" for a in areas)
    raise ScopeError(f"area '{area}' is not one of this partnership's force areas, CSPs or "
                     f"local authorities ({known})")


def force_lads(wh: Warehouse, pfas: tuple[str, ...]) -> tuple[str, ...]:
    if not pfas:
        return ()
    rows = wh.con.execute(
        "SELECT DISTINCT lad_code FROM areas WHERE lsoa_vintage = 2021 AND pfa_code IN "
        f"({', '.join('?' * len(pfas))}) ORDER BY 1", list(pfas)).fetchall()
    return tuple(r[0] for r in rows if r[0])


def police_source(wh: Warehouse, lads: list[str]) -> str:
    """police-recorded where loaded for these areas, else police-uk."""
    for source in POLICE_SOURCES:
        found = wh.con.execute(f"""
            SELECT count(*) FROM events e JOIN areas a ON a.lsoa_code = e.lsoa21_code
            AND a.lsoa_vintage = 2021 WHERE e.source = ? AND a.lad_code IN
            ({', '.join('?' * len(lads))})""", [source, *lads]).fetchone()[0]
        if found:
            return source
    raise ScopeError("no police data is loaded for these areas: run `svduty ingest DIR "
                     "police-uk FILES` or `svduty ingest DIR police-recorded FILE` first")


def months_covered(wh: Warehouse, source: str, lads: list[str]) -> tuple[date, date]:
    first, last = wh.con.execute(f"""
        SELECT min(e.month), max(e.month) FROM events e JOIN areas a
        ON a.lsoa_code = e.lsoa21_code AND a.lsoa_vintage = 2021
        WHERE e.source = ? AND a.lad_code IN ({', '.join('?' * len(lads))})""",
                                 [source, *lads]).fetchone()
    return first, last


def definition_version(wh: Warehouse) -> str | None:
    """The version of the local definition `sv_events` follows (None if none applied)."""
    from svduty.definition.rules import applied_version

    return applied_version(wh.con)
