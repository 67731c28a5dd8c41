"""LSOA 2011 -> 2021 correspondence from the overlay of the two boundary sets.

Within the boundary coverage each 2011 LSOA is cut by the 2021 LSOAs. Pieces under
``SLIVER`` of the 2011 LSOA's area are dropped (they come from generalised boundaries and
tiny realignments) and the rest renormalised, so weights sum to 1 per 2011 LSOA.

``area_share``: share of the 2011 LSOA's area in each 2021 LSOA.
``population_share``: share of the 2011 LSOA's people in each piece, estimated from Census
2021: each piece gets the 2021 residents of its 2021 LSOA times the fraction of that 2021
LSOA's area it holds, normalised over the pieces (falls back to ``area_share`` without
population). ``best_fit``: the piece with the largest population share.
``method`` looks only at substantial links (at least ``MINOR`` of either LSOA's area; the
smaller pieces are boundary realignments and generalisation differences, kept as weights):
'unchanged' (one link, same code, that 2021 LSOA drawn from no other), 'split' (several
links, each 2021 LSOA drawn only from this one), 'merge' (one link, that 2021 LSOA also
drawn from others), 'complex' (anything else, including a one-to-one change of code).
Outside the coverage a 2011 code that still exists in 2021 maps to itself ('code-match').
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

SLIVER = 0.005
MINOR = 0.05  # a link under 5% of both LSOAs is a realignment, not a split or merge
COLUMNS = ["lsoa11_code", "lsoa21_code", "area_share", "population_share", "best_fit",
           "method"]


@dataclass
class CorrespondenceFigures:
    """How much of the 2011 geography the correspondence covers, and how."""

    lsoa11_in_coverage: int  # 2011 LSOAs with a boundary
    lsoa11_mapped_in_coverage: int  # ... of which mapped by the overlay
    area_share_mapped: float  # share of their area in kept pieces (before renormalising)
    population_share_mapped: float | None  # the same, weighted by 2011 population
    lsoa11_code_match: int  # 2011 LSOAs outside the coverage whose code exists in 2021
    lsoa11_unmapped: int  # 2011 LSOAs (national) with no correspondence row
    national_population_share_mapped: float | None  # 2011 residents in LSOAs with a row
    by_method: dict[str, int]  # 2011 LSOAs per method
    population_weights: str  # 'census2021' or 'area' (no population available)

    def as_dict(self) -> dict:
        return asdict(self)


def overlay_rows(pieces: pl.DataFrame, areas11: pl.DataFrame, areas21: pl.DataFrame,
                 pop21: pl.DataFrame | None) -> pl.DataFrame:
    """Correspondence rows within the coverage from intersection pieces.

    pieces: a_code (2011), b_code (2021), area. areas11/areas21: code, area.
    pop21: lsoa_code, residents (totals per 2021 LSOA).
    """
    frame = (pieces.rename({"a_code": "lsoa11_code", "b_code": "lsoa21_code"})
             .join(areas11.select("code", pl.col("area").alias("a11")),
                   left_on="lsoa11_code", right_on="code")
             .join(areas21.select("code", pl.col("area").alias("a21")),
                   left_on="lsoa21_code", right_on="code")
             .with_columns((pl.col("area") / pl.col("a11")).alias("raw_share"))
             .filter(pl.col("raw_share") >= SLIVER))
    pop = pop21 if pop21 is not None else pl.DataFrame(
        schema={"lsoa_code": pl.String, "residents": pl.Int64})
    by11 = pl.col("lsoa11_code")
    frame = (frame.join(pop.rename({"lsoa_code": "lsoa21_code"}), on="lsoa21_code", how="left")
             .with_columns(
                 (pl.col("raw_share") / pl.col("raw_share").sum().over(by11)).alias("area_share"),
                 (pl.col("residents").fill_null(0) * pl.col("area") / pl.col("a21"))
                 .alias("people"))
             .with_columns(
                 pl.when(pl.col("people").sum().over(by11) > 0)
                 .then(pl.col("people") / pl.col("people").sum().over(by11))
                 .otherwise(pl.col("area_share")).alias("population_share")))
    return with_method(with_best_fit(frame)).select([*COLUMNS, "raw_share"])


def with_best_fit(frame: pl.DataFrame) -> pl.DataFrame:
    ranked = frame.sort(["lsoa11_code", "population_share", "area_share", "lsoa21_code"],
                        descending=[False, True, True, False])
    return ranked.with_columns(
        (pl.int_range(pl.len()).over("lsoa11_code") == 0).alias("best_fit"))


def with_method(frame: pl.DataFrame) -> pl.DataFrame:
    """Classify each 2011 LSOA from its substantial links (``MINOR`` ignores realignments)."""
    links = frame.filter((pl.col("raw_share") >= MINOR) | (pl.col("area") / pl.col("a21") >= MINOR))
    links = links.with_columns(
        pl.len().over("lsoa11_code").alias("n21"),
        pl.col("lsoa11_code").n_unique().over("lsoa21_code").alias("n11"))
    per11 = links.group_by("lsoa11_code").agg(
        pl.len().alias("n21"), pl.col("n11").max().alias("n11"),
        (pl.col("lsoa21_code") == pl.col("lsoa11_code")).any().alias("same"))
    method = (
        pl.when((pl.col("n21") == 1) & (pl.col("n11") == 1) & pl.col("same"))
        .then(pl.lit("unchanged"))
        .when((pl.col("n21") > 1) & (pl.col("n11") == 1)).then(pl.lit("split"))
        .when((pl.col("n21") == 1) & (pl.col("n11") > 1)).then(pl.lit("merge"))
        .otherwise(pl.lit("complex")))
    return frame.join(per11.select("lsoa11_code", method.alias("method")), on="lsoa11_code",
                      how="left").with_columns(pl.col("method").fill_null("complex"))


def code_match_rows(codes11: pl.Series, covered: set[str], codes21: pl.Series) -> pl.DataFrame:
    """2011 codes outside the coverage that still exist in 2021 map to themselves."""
    outside = pl.DataFrame({"lsoa11_code": codes11}).filter(
        ~pl.col("lsoa11_code").is_in(list(covered))
        & pl.col("lsoa11_code").is_in(codes21.implode()))
    return outside.select(
        "lsoa11_code", pl.col("lsoa11_code").alias("lsoa21_code"),
        pl.lit(1.0).alias("area_share"), pl.lit(1.0).alias("population_share"),
        pl.lit(True).alias("best_fit"), pl.lit("code-match").alias("method"),
        pl.lit(1.0).alias("raw_share"))


def figures(rows: pl.DataFrame, areas11: pl.DataFrame, codes11: pl.Series,
            pop11: pl.DataFrame | None, weights: str) -> CorrespondenceFigures:
    """Summary figures for a built correspondence (rows still carry ``raw_share``)."""
    overlay = rows.filter(pl.col("method") != "code-match")
    mapped = overlay.group_by("lsoa11_code").agg(pl.col("raw_share").sum().alias("kept"))
    cover = areas11.select(pl.col("code").alias("lsoa11_code"), "area").join(
        mapped, on="lsoa11_code", how="left").with_columns(pl.col("kept").fill_null(0.0))
    area_share = (cover["area"] * cover["kept"]).sum() / max(cover["area"].sum(), 1e-9)
    pop_share = area_share
    national = None
    if pop11 is not None:
        weighted = cover.join(pop11.rename({"lsoa_code": "lsoa11_code"}), on="lsoa11_code",
                              how="left").with_columns(pl.col("residents").fill_null(0))
        total = weighted["residents"].sum()
        pop_share = (weighted["residents"] * weighted["kept"]).sum() / total if total else None
        with_row = pop11.filter(pl.col("lsoa_code").is_in(rows["lsoa11_code"].implode()))
        national = with_row["residents"].sum() / max(pop11["residents"].sum(), 1)
    methods = rows.filter(pl.col("best_fit")).group_by("method").len()
    all11 = set(codes11.to_list()) | set(areas11["code"].to_list())
    return CorrespondenceFigures(
        lsoa11_in_coverage=areas11.height,
        lsoa11_mapped_in_coverage=mapped.height,
        area_share_mapped=float(area_share),
        population_share_mapped=float(pop_share) if pop_share is not None else None,
        lsoa11_code_match=rows.filter(pl.col("method") == "code-match").height,
        lsoa11_unmapped=len(all11 - set(rows["lsoa11_code"].to_list())),
        national_population_share_mapped=float(national) if national is not None else None,
        by_method=dict(sorted(zip(methods["method"], methods["len"], strict=True))),
        population_weights=weights,
    )
