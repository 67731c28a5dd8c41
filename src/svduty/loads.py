"""What has been loaded: each load's figures, months covered and missing, quarantine reasons.

Queries run through Ibis so they work on any engine the warehouse runs on.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis
import polars as pl

from svduty.warehouse import Warehouse


def load_table(wh: Warehouse) -> pl.DataFrame:
    """One row per load with its reconciliation figures, newest first."""
    loads = wh.ibis().table("loads")
    return loads.order_by(ibis.desc("load_id")).to_polars()


def coverage(wh: Warehouse) -> pl.DataFrame:
    """Months covered and missing per source and scope (gaps inside the covered range)."""
    events = wh.ibis().table("events")
    months = (events.group_by(["source", "scope", "month"])
              .aggregate(events=events.count()).to_polars())
    rows = []
    for (source, scope), group in months.group_by(["source", "scope"], maintain_order=True):
        present = sorted(group.get_column("month").to_list())
        expected = month_range(present[0], present[-1])
        missing = [m for m in expected if m not in set(present)]
        rows.append({
            "source": source, "scope": scope, "first_month": present[0],
            "last_month": present[-1], "months_covered": len(present),
            "months_missing": len(missing),
            "missing": [m.strftime("%Y-%m") for m in missing],
            "events": int(group.get_column("events").sum()),
        })
    return pl.DataFrame(rows).sort(["source", "scope"]) if rows else pl.DataFrame()


def quarantine_reasons(wh: Warehouse) -> pl.DataFrame:
    """Quarantined rows by source, column and reason (active loads only)."""
    con = wh.ibis()
    q, loads = con.table("quarantine"), con.table("loads")
    active = q.join(loads.filter(loads.status == "active"), q.load_id == loads.load_id)
    return (active.group_by([q.source, q.column, q.reason])
            .aggregate(rows=q.row_number.nunique(), example=q.value.arbitrary())
            .order_by(ibis.desc("rows")).to_polars())


def status(wh: Warehouse) -> dict[str, Any]:
    """Everything `svduty status` shows, as plain data (JSON-serialisable)."""
    return {
        "loads": load_table(wh).to_dicts(),
        "coverage": coverage(wh).to_dicts(),
        "quarantine": quarantine_reasons(wh).to_dicts(),
        "totals": {t: wh.count(t) for t in ("events", "involvements", "sv_events", "quarantine")},
    }


def month_range(first: date, last: date) -> list[date]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
