"""Build the bundled area list (src/svduty/reference/areas.csv) from ONS lookups.

Run once when ONS publishes new lookups:
    python scripts/bundle_areas.py ../shared/data/geography/lookups

The bundled file is small reference data (local authority -> CSP -> police force area, with
current codes after the 2019-2023 local government reorganisations) so that `svduty init`
can resolve area names offline, before any reference import. Source: ONS Open Geography
Portal, Open Government Licence v3.0.
"""

import sys
from pathlib import Path

import polars as pl

lookups = Path(sys.argv[1])
csp = pl.read_csv(lookups / "lad19_to_csp19_to_pfa19_lookup_ew.csv", infer_schema=False)
las = pl.read_csv(lookups / "la_all_codes.csv", infer_schema=False).select(
    lad_code="LADCD", lad_name="LADNM", lad_active_code="LADCD_ACTIVE",
    lad_active_name="LADNM_ACTIVE", region_code="RGNCD", region_name="RGNNM",
)
old = csp.select(lad19="LAD19CD", csp_code="CSP19CD", csp_name="CSP19NM",
                 pfa_code="PFA19CD", pfa_name="PFA19NM")
joined = las.join(old, left_on="lad_code", right_on="lad19", how="left")
# A current LAD inherits its CSP when all its 2019 predecessors shared one; where several CSPs
# merged into a new unitary authority, the new authority is its own CSP (code = LAD code).
by_active = (
    joined.filter(pl.col("csp_code").is_not_null())
    .group_by("lad_active_code")
    .agg(pl.col("csp_code").unique(), pl.col("csp_name").first(),
         pl.col("pfa_code").first(), pl.col("pfa_name").first())
)
active_csp = by_active.select(
    "lad_active_code",
    pl.when(pl.col("csp_code").list.len() == 1).then(pl.col("csp_code").list.first())
    .otherwise(pl.col("lad_active_code")).alias("csp_code_active"),
    pl.when(pl.col("csp_code").list.len() == 1).then(pl.col("csp_name"))
    .otherwise(pl.lit(None)).alias("csp_name_active"),
    pl.col("pfa_code").alias("pfa_code_active"), pl.col("pfa_name").alias("pfa_name_active"),
    (pl.col("csp_code").list.len() > 1).alias("csp_merged"),
)
out = (
    joined.join(active_csp, on="lad_active_code", how="left")
    .with_columns(
        pl.coalesce("csp_name_active", "lad_active_name").alias("csp_name_active"),
    )
    .select("lad_code", "lad_name", "lad_active_code", "lad_active_name",
            pl.col("csp_code_active").alias("csp_code"),
            pl.col("csp_name_active").alias("csp_name"),
            pl.col("pfa_code_active").alias("pfa_code"),
            pl.col("pfa_name_active").alias("pfa_name"),
            "region_code", "region_name", "csp_merged")
    .filter(pl.col("csp_code").is_not_null())
    .sort("lad_code")
)
dest = Path(__file__).resolve().parents[1] / "src/svduty/reference/areas.csv"
out.write_csv(dest)
print(f"wrote {out.height} local authorities to {dest}")
