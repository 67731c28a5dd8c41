"""The contract every reader's output meets before it reaches the warehouse (pandera).

Row-level problems in partner files are quarantined by each reader with reasons a partner can
act on; this contract is the last line of defence: if a reader ever produces rows that break
it (a bug, not bad input), the file is rejected whole rather than loaded wrongly.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from svduty.sources.base import AREA_TYPES, LSOA_FORMAT, PERIOD_TYPES, WEAPONS


class EventContract(pa.DataFrameModel):
    """Normalised events from one file."""

    source_record_id: pl.String = pa.Field(nullable=False)
    row_number: pl.Int64 = pa.Field(ge=2)
    month: pl.Date = pa.Field(nullable=False)
    lsoa_code: pl.String = pa.Field(nullable=True, str_matches=LSOA_FORMAT)
    weapon: pl.String = pa.Field(nullable=True, isin=list(WEAPONS))
    easting: pl.Float64 = pa.Field(nullable=True, ge=0, le=700_000)
    northing: pl.Float64 = pa.Field(nullable=True, ge=0, le=1_300_000)

    class Config:
        strict = False


class InvolvementContract(pa.DataFrameModel):
    """Normalised people involved in events from one file."""

    source_record_id: pl.String = pa.Field(nullable=False)
    row_number: pl.Int64 = pa.Field(ge=2)
    role: pl.String = pa.Field(nullable=False)
    person_key: pl.String = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{32,128}$")
    age: pl.Int16 = pa.Field(nullable=True, ge=0, le=120)

    class Config:
        strict = False


class AggregateContract(pa.DataFrameModel):
    """Counts from an aggregate source (hospital admissions, school absence)."""

    row_number: pl.Int64 = pa.Field(ge=2)
    measure: pl.String = pa.Field(nullable=False)
    period_start: pl.Date = pa.Field(nullable=False)
    period_end: pl.Date = pa.Field(nullable=False)
    period_type: pl.String = pa.Field(nullable=True, isin=list(PERIOD_TYPES))
    area_type: pl.String = pa.Field(nullable=False, isin=list(AREA_TYPES))
    value: pl.Float64 = pa.Field(nullable=True, ge=0)
    denominator: pl.Float64 = pa.Field(nullable=True, ge=0)

    class Config:
        strict = False

    @pa.dataframe_check
    def period_in_order(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("period_start") <= pl.col("period_end"))

    @pa.dataframe_check
    def suppressed_has_no_value(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            ~(pl.col("suppressed").fill_null(False) & pl.col("value").is_not_null()))


def contract_problems(events: pl.DataFrame, involvements: pl.DataFrame | None,
                      aggregates: pl.DataFrame | None = None) -> list[str]:
    """Human-readable contract failures (empty when the frames are sound)."""
    problems = []
    frames = [(EventContract, events)]
    if involvements is not None and involvements.height:
        frames.append((InvolvementContract, involvements))
    if aggregates is not None and aggregates.height:
        frames.append((AggregateContract, aggregates))
    for model, frame in frames:
        try:
            model.validate(frame, lazy=True)
        except SchemaErrors as exc:
            cases = exc.failure_cases.select("column", "check").unique(maintain_order=True)
            found = "; ".join(f"{c} fails {k}" for c, k in cases.iter_rows())
            problems.append(f"{model.__name__}: {found[:300]}")
        except SchemaError as exc:
            problems.append(f"{model.__name__}: {str(exc).splitlines()[0][:300]}")
    return problems
