"""The catalogue of candidate serious-violence offences (bundled `offence_catalogue.csv`).

One row per Home Office offence code that a partnership might put in its local definition
(current codes from the offence hierarchy plus the legacy HOCR 2010 codes 5A/5B/5C/8F/8G/8H/8J/
8K), with what s.13(6)(a) of the PCSC Act 2022 asks a partnership to weigh first: the maximum
penalty, with the statute that sets it.

Columns:

- `code`, `description`: Home Office offence code (dotted form, e.g. `4.1`) and label.
- `offence_group`: the group used by the evidence table (one of :data:`OFFENCE_GROUPS`).
- `ho_group`, `ho_subgroup`: Home Office offence group and subgroup (open data).
- `police_uk_category`: the data.police.uk `Crime type` the code falls in.
- `legacy`: a HOCR 2010 code kept for long time series.
- `knife_collection`: an offence in the Home Office knife or sharp instrument collection
  (attempted murder, GBH, ABH, robbery, threats to kill, sexual assault, rape).
- `max_penalty` (text), `life`, `max_penalty_years`, `statute`: the maximum penalty on
  indictment. **Life is `life = true` with `max_penalty_years` null**; non-custodial maxima
  (corporate manslaughter) are `life = false` with `max_penalty_years` null; six months is 0.5.
- `verified`: compiled from legislation from memory, offline. Check against
  legislation.gov.uk before an SNA relies on it.
- `css_weight`, `css_source`: ONS Crime Severity Score weight where the reference gives one
  (a third-party transcription of unknown vintage: UNVERIFIED).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import polars as pl

CATALOGUE_FILE = "offence_catalogue.csv"

OFFENCE_GROUPS: tuple[str, ...] = (
    "Homicide",
    "Attempted murder and GBH with intent",
    "Wounding, GBH and ABH (violence with injury)",
    "Threats to kill",
    "Assault without injury",
    "Robbery",
    "Possession of weapons: knife or blade",
    "Possession of weapons: firearm",
    "Possession of weapons: other",
    "Rape",
    "Other sexual offences",
    "Arson endangering life",
    "Arson not endangering life",
    "Aggravated burglary",
    "Kidnapping and abduction",
    "Modern slavery",
    "Stalking and harassment",
    "Public order and violent disorder",
    "Drug trafficking (county lines)",
    "Cruelty to children",
    "Death or serious injury by driving",
)

# Home Office offence groups that make up "all violence" for the share-of-violence column.
VIOLENCE_HO_GROUPS: tuple[str, ...] = (
    "Violence against the person", "Sexual offences", "Robbery",
)

# data.police.uk `Crime type` values (current, then the pre-2013 legacy ones).
POLICE_UK_CATEGORIES: tuple[str, ...] = (
    "Anti-social behaviour", "Bicycle theft", "Burglary", "Criminal damage and arson", "Drugs",
    "Other theft", "Possession of weapons", "Public order", "Robbery", "Shoplifting",
    "Theft from the person", "Vehicle crime", "Violence and sexual offences", "Other crime",
    "Violent crime", "Public disorder and weapons",
)
POLICE_UK_VIOLENCE: tuple[str, ...] = ("Violence and sexual offences", "Violent crime", "Robbery")

_SCHEMA: dict[str, pl.DataType] = {
    "legacy": pl.Boolean, "knife_collection": pl.Boolean, "life": pl.Boolean,
    "max_penalty_years": pl.Float64, "css_weight": pl.Float64,
}


@cache
def _catalogue() -> pl.DataFrame:
    text = resources.files("svduty.definition").joinpath(CATALOGUE_FILE).read_bytes()
    frame = pl.read_csv(text, infer_schema=False)
    return frame.with_columns(
        pl.col(name).str.to_lowercase().eq("true") if dtype == pl.Boolean
        else pl.col(name).cast(dtype)
        for name, dtype in _SCHEMA.items()
    )


def load_catalogue() -> pl.DataFrame:
    """The bundled offence catalogue, one row per offence code (see module docstring)."""
    return _catalogue().clone()


def normalise_code(code: str) -> str:
    """Home Office code in catalogue form: `004/01` or `4/1` -> `4.1`, ` 8n ` -> `8N`.

    The same rule as the police recorded-crime reader, so rules and events agree.
    """
    text = re.sub(r"\s+", "", str(code)).upper().replace("/", ".")
    parts = [re.sub(r"^0+(?=\d)", "", part) for part in text.split(".")]
    return ".".join(parts)


def catalogue_codes() -> frozenset[str]:
    """Every offence code in the catalogue."""
    return frozenset(_catalogue().get_column("code").to_list())


def css_weights() -> dict[str, float]:
    """Offence code -> CSS weight for the codes that have one (vintage UNVERIFIED)."""
    rows = _catalogue().filter(pl.col("css_weight").is_not_null())
    return dict(zip(rows.get_column("code"), rows.get_column("css_weight"), strict=True))


def group_codes() -> dict[str, list[str]]:
    """Offence group -> its codes, in catalogue order."""
    out: dict[str, list[str]] = {group: [] for group in OFFENCE_GROUPS}
    for code, group in _catalogue().select("code", "offence_group").iter_rows():
        out[group].append(code)
    return out
