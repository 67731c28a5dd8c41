"""Reference geography: import, the LSOA 2011 -> 2021 correspondence, lookups and fetch.

Public API (imported lazily, so ``normalise_offence_code`` does not pull in geopandas)::

    import_reference(partnership, source, progress=None) -> ImportReport
    fetch_reference(dest, progress=None) -> list[Path]
    lsoa_lookup(wh, lad_codes) -> polars.DataFrame
    geocode_points(root, x, y, crs="EPSG:27700") -> numpy.ndarray
    boundaries(root, layer) -> geopandas.GeoDataFrame
    correspondence_figures(wh) -> CorrespondenceFigures | None
    normalise_offence_code(code) -> str
    ReferenceError
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from svduty.geography.errors import ReferenceError
from svduty.geography.readers import normalise_offence_code

if TYPE_CHECKING:
    from svduty.geography.correspondence import CorrespondenceFigures
    from svduty.geography.fetch import fetch_reference
    from svduty.geography.importer import ImportReport, import_reference
    from svduty.geography.lookup import (
        boundaries,
        correspondence_figures,
        geocode_points,
        lsoa_lookup,
    )

_LAZY = {
    "import_reference": "importer", "ImportReport": "importer",
    "fetch_reference": "fetch",
    "lsoa_lookup": "lookup", "geocode_points": "lookup", "boundaries": "lookup",
    "correspondence_figures": "lookup", "CorrespondenceFigures": "correspondence",
}

__all__ = ["CorrespondenceFigures", "ImportReport", "ReferenceError", "boundaries",
           "correspondence_figures", "fetch_reference", "geocode_points", "import_reference",
           "lsoa_lookup", "normalise_offence_code"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"svduty.geography.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'svduty.geography' has no attribute '{name}'")
