"""The ``areas`` table: one row per LSOA code and vintage, with ward, MSOA, LAD, CSP, force.

Local authorities are always the *current* ones (via the bundled ONS table), so a 2011
LSOA in Aylesbury Vale is in Buckinghamshire (E06000060) like its 2021 successor.
"""

from __future__ import annotations

import polars as pl

from svduty.geography.readers import bundled_areas

AREA_COLUMNS = ["lsoa_code", "lsoa_vintage", "lsoa_name", "msoa_code", "ward_code",
                "ward_name", "ward_vintage", "lad_code", "lad_name", "csp_code", "csp_name",
                "pfa_code", "pfa_name", "region_code", "has_boundary"]
STR = pl.String
BASE_SCHEMA = {"lsoa_code": STR, "lsoa_name": STR, "ward_code": STR, "ward_name": STR,
               "lad_src": STR, "lad_src_name": STR}


def norm_name(expr: pl.Expr) -> pl.Expr:
    """A local authority name reduced for matching ('Bristol, City of' -> 'bristol')."""
    return (expr.str.to_lowercase().str.replace(r",\s*(city|county) of$", "")
            .str.replace_all("&", "and", literal=True).str.replace_all(r"[^a-z0-9]", ""))


def name_index() -> pl.DataFrame:
    """LA names (old and current, normalised) -> current LA code; ambiguous names dropped."""
    las = bundled_areas()
    names = pl.concat([
        las.select(pl.col("lad_name").alias("name"), "lad_active_code"),
        las.select(pl.col("lad_active_name").alias("name"), "lad_active_code"),
    ]).with_columns(norm_name(pl.col("name")).alias("key")).unique(["key", "lad_active_code"])
    return names.filter(pl.len().over("key") == 1).select(
        "key", pl.col("lad_active_code").alias("lad_by_name"))


def lad_from_name(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``lad_by_name`` from the LSOA name's prefix ('Plymouth 003A' -> E06000026)."""
    key = norm_name(pl.col("lsoa_name").str.replace(r"\s+\d{3}[A-Z]$", ""))
    return frame.with_columns(key.alias("key")).join(name_index(), on="key", how="left").drop(
        "key")


def to_current(frame: pl.DataFrame) -> pl.DataFrame:
    """Resolve ``lad_src`` to the current LA and add its CSP, force area and region."""
    las = bundled_areas().select(
        pl.col("lad_code").alias("lad_src"), pl.col("lad_active_code").alias("lad_code"),
        pl.col("lad_active_name").alias("lad_name"), "csp_code", "csp_name", "pfa_code",
        "pfa_name", "region_code")
    return (frame.join(las, on="lad_src", how="left")
            .with_columns(pl.coalesce("lad_code", "lad_src").alias("lad_code"),
                          pl.coalesce("lad_name", "lad_src_name").alias("lad_name")))


def areas_2011(lookup: pl.DataFrame | None, msoa: pl.DataFrame | None,
               boundary: pl.DataFrame | None, wards: pl.DataFrame | None,
               ward_vintage: str) -> pl.DataFrame:
    """2011 LSOAs: the national lookup (WD19 wards) plus any LSOA only in the boundaries.

    boundary: code, name, lad_code of the held 2011 polygons; wards: code, fit_code,
    fit_name (best-fit ward of each held polygon).
    """
    base = pl.DataFrame(schema=BASE_SCHEMA)
    if lookup is not None:
        base = lookup.select(
            pl.col("LSOA11CD").alias("lsoa_code"), pl.col("LSOA11NM").alias("lsoa_name"),
            pl.col("WD19CD").alias("ward_code"), pl.col("WD19NM").alias("ward_name"),
            pl.col("LAD19CD").alias("lad_src"), pl.col("LAD19NM").alias("lad_src_name"))
    base = base.with_columns(pl.lit("WD19").alias("ward_vintage"))
    frame = with_boundaries(base, boundary, wards, ward_vintage)
    if msoa is not None:
        frame = frame.join(msoa, on="lsoa_code", how="left")
    return finish(frame, 2011)


def areas_2021(names: pl.DataFrame | None, lookup: pl.DataFrame | None,
               boundary: pl.DataFrame | None, wards: pl.DataFrame | None, ward_vintage: str,
               msoas: pl.DataFrame | None) -> pl.DataFrame:
    """2021 LSOAs from the census list (and boundaries). LAD from the boundary, else the
    same 2011 code's LAD, else the LSOA name; ward best-fit where held, else the WD19 ward
    of the same 2011 code.

    names: lsoa_code, lsoa_name; msoas: code, fit_code (best-fit MSOA 2021).
    """
    base = names if names is not None else pl.DataFrame(schema={"lsoa_code": STR,
                                                                "lsoa_name": STR})
    if lookup is not None:
        same = lookup.select(
            pl.col("LSOA11CD").alias("lsoa_code"), pl.col("WD19CD").alias("ward_code"),
            pl.col("WD19NM").alias("ward_name"), pl.col("LAD19CD").alias("lad_src"))
        base = base.join(same, on="lsoa_code", how="left")
    else:
        base = base.with_columns(pl.lit(None, STR).alias(c)
                                 for c in ("ward_code", "ward_name", "lad_src"))
    base = lad_from_name(base).with_columns(
        pl.coalesce("lad_src", "lad_by_name").alias("lad_src"),
        pl.lit(None, STR).alias("lad_src_name"),
        pl.when(pl.col("ward_code").is_not_null()).then(pl.lit("WD19")).alias("ward_vintage"),
    ).drop("lad_by_name")
    frame = with_boundaries(base, boundary, wards, ward_vintage)
    if msoas is not None:
        frame = frame.join(msoas.select(pl.col("code").alias("lsoa_code"),
                                        pl.col("fit_code").alias("msoa_code")),
                           on="lsoa_code", how="left")
    return finish(frame, 2021)


def with_boundaries(base: pl.DataFrame, boundary: pl.DataFrame | None,
                    wards: pl.DataFrame | None, ward_vintage: str) -> pl.DataFrame:
    """Add LSOAs held only as polygons, prefer the boundary's LAD and the best-fit ward."""
    if boundary is None:
        return base.with_columns(pl.lit(False).alias("has_boundary"))
    held = boundary.select(pl.col("code").alias("lsoa_code"), pl.col("name").alias("b_name"),
                           pl.col("lad_code").alias("b_lad"))
    frame = base.join(held, on="lsoa_code", how="full", coalesce=True).with_columns(
        pl.coalesce("lsoa_name", "b_name").alias("lsoa_name"),
        pl.coalesce("b_lad", "lad_src").alias("lad_src"),
        pl.col("b_name").is_not_null().alias("has_boundary"),
    ).drop("b_name", "b_lad")
    if wards is None:
        return frame
    fit = wards.select(pl.col("code").alias("lsoa_code"), "fit_code", "fit_name")
    return frame.join(fit, on="lsoa_code", how="left").with_columns(
        pl.coalesce("fit_code", "ward_code").alias("ward_code"),
        pl.coalesce("fit_name", "ward_name").alias("ward_name"),
        pl.when(pl.col("fit_code").is_not_null()).then(pl.lit(ward_vintage))
        .otherwise(pl.col("ward_vintage")).alias("ward_vintage"),
    ).drop("fit_code", "fit_name")


def finish(frame: pl.DataFrame, vintage: int) -> pl.DataFrame:
    if "msoa_code" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, STR).alias("msoa_code"))
    frame = to_current(frame).with_columns(pl.lit(vintage, pl.Int16).alias("lsoa_vintage"))
    return frame.select(AREA_COLUMNS).unique("lsoa_code", keep="first").sort("lsoa_code")


def with_local_authorities(areas: pl.DataFrame, local: pl.DataFrame | None) -> pl.DataFrame:
    """Fill the LA, CSP and force of LSOAs whose LA the bundled table does not know."""
    if local is None:
        return areas
    extra = local.rename({c: f"_{c}" for c in local.columns if c != "lad_code"})
    joined = areas.join(extra, on="lad_code", how="left")
    return joined.with_columns(
        pl.coalesce(c, f"_{c}").alias(c) for c in local.columns if c != "lad_code"
    ).select(AREA_COLUMNS)
