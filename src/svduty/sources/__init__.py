"""Partner-data sources: one module per source, each a reader into events and involvements.

`SOURCES` maps the name used on the command line (`svduty ingest DIR <source> FILE...`) to the
reader class. Sources know nothing of analysis.
"""

from __future__ import annotations

from importlib import import_module

from svduty.sources.base import Source

# name -> "module:Class"; imported on use so one broken reader cannot break the others.
REGISTRY: dict[str, str] = {
    "police-uk": "svduty.sources.police_uk:PoliceUK",
    "police-recorded": "svduty.sources.police_recorded:PoliceRecorded",
    "fire": "svduty.sources.fire:Fire",
    "ed-istv": "svduty.sources.ed_istv:EdIstv",
    "hospital-admissions": "svduty.sources.hospital_admissions:HospitalAdmissions",
    "ambulance": "svduty.sources.ambulance:Ambulance",
    "school": "svduty.sources.school:School",
    "youth-justice": "svduty.sources.youth_justice:YouthJustice",
    "probation": "svduty.sources.probation:Probation",
}


def get_source(name: str) -> Source:
    """The reader for a source name, or ValueError listing the known sources."""
    if name not in REGISTRY:
        raise ValueError(f"unknown source '{name}'; known sources: {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(import_module(module), cls)()
