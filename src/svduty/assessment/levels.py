"""The geography ladder for maps in the published edition: LSOA -> MSOA -> ward -> local
authority -> CSP. A map of counts (or rates drawn from counts) is drawn at the smallest level
at which it does not disclose: no area with a count from 1 to `suppress_below - 1`, or at
most `max_share` of the areas with one, which are then shown as "suppressed" with a legend
entry of their own. Every level is built from whole LSOAs (best fit for wards, as the counts
are), so the outlines are the LSOAs dissolved by the level's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from svduty.assessment.disclosure import Limits

LADDER: tuple[tuple[str, str, str], ...] = (  # level, code column, name column
    ("LSOA", "lsoa21_code", "lsoa_name"),
    ("MSOA", "msoa_code", "msoa_code"),
    ("ward", "ward_code", "ward_name"),
    ("local authority", "lad_code", "lad_name"),
    ("CSP", "csp_code", "csp_name"),
)
PLURAL = {"local authority": "local authorities"}
MAX_SHARE = 0.1  # at most one area in ten suppressed on a map


@dataclass(frozen=True)
class Level:
    """The level a map is drawn at, its areas and why it was chosen."""

    level: str
    areas: pl.DataFrame  # code, name, events, residents, rate_per_1000, suppressed
    members: dict[str, str]  # LSOA -> the area it is drawn in
    reason: str
    below: int  # areas with fewer events than this (and more than none) are suppressed

    @property
    def suppressed(self) -> int:
        return int(self.areas.get_column("suppressed").sum())


def ladder(partnership, lsoas: Sequence[str]) -> pl.DataFrame:
    """Every level's code and name for each LSOA (2021) from the warehouse's areas."""
    with partnership.warehouse(read_only=True) as wh:
        frame = wh.con.execute("""SELECT lsoa_code AS lsoa21_code, lsoa_name, msoa_code,
            ward_code, ward_name, lad_code, lad_name, csp_code, csp_name FROM areas
            WHERE lsoa_vintage = 2021 AND lsoa_code IN (SELECT unnest(?))""",
                               [list(lsoas)]).pl()
    return frame


def aggregate(rows: pl.DataFrame, code: str, name: str) -> pl.DataFrame:
    """LSOA rows (events, residents, and the level's code and name) summed to the level."""
    residents = pl.col("residents").sum() if "residents" in rows.columns else pl.lit(None)
    return (rows.filter(pl.col(code).is_not_null())
            .group_by(pl.col(code).alias("code"))
            .agg(pl.col(name).first().alias("name"), pl.col("events").sum(),
                 residents.cast(pl.Float64).alias("residents"))
            .with_columns((1000 * pl.col("events") / pl.col("residents")).alias("rate_per_1000"))
            .sort("code"))


def choose(rows: pl.DataFrame, limits: Limits, start: str = "ward",
           max_share: float = MAX_SHARE) -> Level | None:
    """The smallest level from `start` up at which the map does not disclose. `rows`: one per
    LSOA with `events` (and `residents`) and the ladder's code and name columns (see
    :func:`ladder`). None where every level would disclose or shows a single area."""
    levels = [x for x in LADDER if x[1] in rows.columns]
    names = [x[0] for x in levels]
    skipped = []
    for level, code, name in levels[names.index(start) if start in names else 0:]:
        areas = aggregate(rows, code, name)
        small = areas.get_column("events").map_elements(limits.sensitive, pl.Boolean)
        areas = areas.with_columns(small.alias("suppressed"))
        share = areas.height and float(small.sum()) / areas.height
        if areas.height < 2:
            skipped.append(f"a single {level}")
            break
        if share <= max_share:
            return Level(level, areas, _members(rows, code),
                         _reason(level, start, skipped, int(small.sum()), areas.height, limits),
                         limits.suppress_below)
        skipped.append(f"{int(small.sum())} of {areas.height} {PLURAL.get(level, level + 's')} "
                       f"have fewer than "
                       f"{limits.suppress_below} events")
    return None


def _members(rows: pl.DataFrame, code: str) -> dict[str, str]:
    return dict(rows.select("lsoa21_code", code).drop_nulls().iter_rows())


def _reason(level: str, start: str, skipped: list[str], small: int, areas: int,
            limits: Limits) -> str:
    """Why the map is drawn at this level, for the caption and the manifest."""
    text = f"Drawn by {level}"
    if skipped:
        text += f" rather than by {start}: " + "; ".join(skipped)
    text += "."
    if small:
        text += (f" {small} of {areas} areas with fewer than {limits.suppress_below} events "
                 "are shown as suppressed.")
    return text
