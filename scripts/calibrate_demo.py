"""Measure the figures the demo partnership is calibrated to, from real police.uk data.

Reads the data.police.uk street-level files and Census 2021 population in ../shared/data
(never copied into the repository) and writes only summary figures to
src/svduty/demo/calibration.json: crime mix, rates per 1,000 residents, monthly
seasonality and how concentrated violence is across LSOAs, for the three urban unitary
authorities the files cover (Plymouth, Liverpool, Milton Keynes) and their forces.

    .venv/bin/python scripts/calibrate_demo.py [SHARED_DATA_DIR]
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "svduty" / "demo" / "calibration.json"
# Urban unitary authorities with complete police.uk coverage in the shared files.
AREAS = {"E06000026": "Plymouth", "E08000012": "Liverpool", "E06000042": "Milton Keynes"}
VIOLENCE = "Violence and sexual offences"


def main(shared: Path) -> None:
    files = sorted((shared / "police_uk" / "street").glob("*/*.csv.gz"))
    crimes = pl.concat([pl.read_csv(f, infer_schema=False, columns=[
        "Crime ID", "Month", "LSOA code", "Crime type"]) for f in files])
    crimes = crimes.filter(pl.col("Month") >= "2024-01")  # 2021 LSOA codes throughout
    population = read_population(shared)
    lsoas = lsoa_lads(shared)
    crimes = crimes.rename({"LSOA code": "lsoa_code"}).join(lsoas, on="lsoa_code")
    months = crimes.get_column("Month").n_unique()
    figures = {
        "provenance": {
            "files": len(files), "months": sorted(crimes.get_column("Month").unique()),
            "areas": AREAS, "measured_on": date.today().isoformat(),
            "source": "data.police.uk street-level crime (OGL v3); ONS Census 2021 usual "
                      "residents by LSOA. Figures only: no rows are copied.",
        },
        "mix": mix(crimes),
        "rate_per_1000_year": rates(crimes, population.join(lsoas, on="lsoa_code"), months),
        "seasonality": seasonality(crimes),
        "concentration": concentration(crimes, population.join(lsoas, on="lsoa_code")),
        "offence_mix": offence_mix(shared),
        "outcomes_note": "police.uk has months only: times of day, weekdays and ages in the "
                         "demo follow published patterns (see docs/demo.md), not this data.",
    }
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "provenance"}, indent=2))
    print(f"written {OUT}")


def read_population(shared: Path) -> pl.DataFrame:
    path = shared / "population" / "census2021_lsoa21_usual_residents_by_age6.csv.gz"
    frame = pl.read_csv(path, infer_schema=False)
    return frame.group_by(pl.col("lsoa21_code").alias("lsoa_code")).agg(
        pl.col("usual_residents").cast(pl.Int64).sum().alias("residents"))


def lsoa_lads(shared: Path) -> pl.DataFrame:
    """2021 LSOA -> LAD for the calibration areas, from the boundary files."""
    import pyogrio

    parts = []
    for lad in AREAS:
        frame = pyogrio.read_dataframe(
            shared / "geography" / "boundaries" / "lsoa21" / f"{lad}.geojson",
            read_geometry=False, use_arrow=True)
        parts.append(pl.DataFrame({"lsoa_code": frame["LSOA21CD"].astype(str).tolist()})
                     .with_columns(pl.lit(lad).alias("lad_code")))
    return pl.concat(parts)


def mix(crimes: pl.DataFrame) -> dict[str, float]:
    shares = crimes.group_by("Crime type").len().with_columns(
        (pl.col("len") / pl.col("len").sum()).round(4).alias("share")).sort("share",
                                                                              descending=True)
    return dict(zip(shares["Crime type"], shares["share"], strict=True))


def rates(crimes: pl.DataFrame, population: pl.DataFrame, months: int) -> dict:
    residents = population.group_by("lad_code").agg(pl.sum("residents"))
    counts = crimes.group_by("lad_code", "Crime type").len().join(residents, on="lad_code")
    counts = counts.with_columns(
        (pl.col("len") / pl.col("residents") * 1000 * 12 / months).round(2).alias("rate"))
    out: dict[str, dict[str, float]] = {}
    for lad, kind, rate in counts.select("lad_code", "Crime type", "rate").iter_rows():
        out.setdefault(AREAS[lad], {})[kind] = rate
    return out


def seasonality(crimes: pl.DataFrame) -> dict:
    """Violence per calendar month of 2025 relative to each area's 2025 monthly mean,
    averaged over the areas with all twelve months (Thames Valley lacks 2025-07)."""
    year = crimes.filter(pl.col("Month").str.starts_with("2025")
                         & (pl.col("Crime type") == VIOLENCE))
    by = year.group_by("lad_code", pl.col("Month").str.slice(5, 2).cast(pl.Int32).alias("m")) \
        .len().filter(pl.len().over("lad_code") == 12)
    index = by.with_columns((pl.col("len") / pl.col("len").mean().over("lad_code"))
                            .alias("index")).group_by("m").agg(
        pl.col("index").mean().round(3), pl.col("lad_code").n_unique().alias("areas")).sort("m")
    return {"violence_2025": dict(zip(index["m"].cast(pl.String), index["index"], strict=True)),
            "areas": int(index["areas"].max())}


def concentration(crimes: pl.DataFrame, population: pl.DataFrame) -> dict:
    """Share of violence in the top 1/5/10% of LSOAs, and the spread of LSOA rates."""
    violence = crimes.filter(pl.col("Crime type") == VIOLENCE)
    out = {}
    for lad, name in AREAS.items():
        lsoas = population.filter(pl.col("lad_code") == lad)
        counts = lsoas.join(violence.group_by("lsoa_code").len(), on="lsoa_code", how="left") \
            .with_columns(pl.col("len").fill_null(0))
        ranked = counts.sort("len", descending=True).get_column("len").to_list()
        total, n = sum(ranked), len(ranked)
        rate = (counts["len"] / counts["residents"])
        out[name] = {
            "lsoas": n,
            **{f"top_{p}pct_share": round(sum(ranked[:max(1, round(n * p / 100))]) / total, 4)
               for p in (1, 5, 10)},
            "rate_cv": round(float(rate.std() / rate.mean()), 3),
        }
    return out


def offence_mix(shared: Path) -> dict:
    """Offences per 1,000 residents a year by Home Office code in England and Wales
    (police recorded crime 2017/18, all forces but Action Fraud and the BTP), for the codes
    the demo's force extract carries."""
    import csv

    from svduty.definition.catalogue import load_catalogue
    from svduty.geography import normalise_offence_code

    path = shared / "home_office" / "prc_pfa_2017_18_quarterly_by_offence_code.csv"
    codes = set(load_catalogue().get_column("code").to_list())
    totals: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Force_Name"] in ("Action Fraud", "British Transport Police", "CIFAS",
                                     "UK Finance"):
                continue
            code = normalise_offence_code(row["Offence_Code"])
            if code in codes:
                totals[code] = totals.get(code, 0) + int(row["Number_of_Offences"] or 0)
    population_2017 = 58_744_600  # ONS mid-2017 estimate, England and Wales
    return {"per_1000_year": {c: round(n / population_2017 * 1000, 4)
                              for c, n in sorted(totals.items()) if n},
            "source": "Home Office police recorded crime by offence code, 2017/18 (OGL v3); "
                      "ONS mid-2017 population of England and Wales 58.7m"}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
