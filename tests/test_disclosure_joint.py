"""Joint protection of the published tables that count the same events, and maps drawn at
the smallest level of the geography ladder that does not disclose."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy.optimize import linprog

from svduty.analysis.result import Meta, Result
from svduty.analysis.times import WEEKDAYS, nte_cells
from svduty.assessment import joint
from svduty.assessment.build import jointly
from svduty.assessment.disclosure import (
    STAR,
    Limits,
    Table,
    audit_tables,
    protect_exhibit,
    suppress,
)
from svduty.partnership import Partnership

LIMITS = Limits()


def two_tables() -> tuple[Table, Table, Table]:
    """Events by day (no total shown) and the same events by month (all large): each safe
    alone once the 3 is hidden, but the months give the total and the total gives the 3."""
    day = pl.DataFrame({"day": ["Mon", "Tue", "Wed"], "count": [3, 50, 60]})
    month = pl.DataFrame({"month": ["Jan", "Feb"], "count": [50, 63]})
    total = pl.DataFrame({"day": ["Total"], "count": [113]})  # derived, never shown
    return (Table("day", day, ("day",), measure="sv"),
            Table("month", month, ("month",), measure="sv"),
            Table("day-total", total, ("day",), measure="sv", published=False))


def interval(day_shown: pl.DataFrame, month_shown: pl.DataFrame, cell: str
             ) -> tuple[float, float]:
    """Independent attacker: the day cells and the month cells both sum to one total."""
    days = dict(day_shown.select("day", "count_shown").iter_rows())
    months = dict(month_shown.select("month", "count_shown").iter_rows())
    unknown = [("d", k) for k, v in days.items() if v == STAR] + [
        ("m", k) for k, v in months.items() if v == STAR]
    col = {u: i for i, u in enumerate(unknown)}
    row = np.zeros(len(unknown))  # sum(days) - sum(months) = 0
    rhs = 0.0
    for side, values, sign in (("d", days, 1.0), ("m", months, -1.0)):
        for k, v in values.items():
            if v == STAR:
                row[col[(side, k)]] += sign
            else:
                rhs -= sign * int(v)
    c = np.zeros(len(unknown))
    c[col[("d", cell)]] = 1
    lo = linprog(c, A_eq=[row], b_eq=[rhs], bounds=(1, None), method="highs")
    hi = linprog(-c, A_eq=[row], b_eq=[rhs], bounds=(1, None), method="highs")
    return lo.fun, (np.inf if hi.status == 3 else -hi.fun)


def test_two_tables_safe_alone_disclose_together_and_are_protected():
    day, month, total = two_tables()
    alone = {t.name: suppress([t], LIMITS)[t.name] for t in (day, month)}
    seen = [Table(t.name, alone[t.name], t.dimensions, measure="sv") for t in (day, month)]
    assert audit_tables(seen[:1], LIMITS) == [] and audit_tables(seen[1:], LIMITS) == []
    hits = audit_tables([*seen, total], LIMITS)
    assert [(h.table, h.low, h.high) for h in hits] == [("day", 3, 3)]
    assert interval(alone["day"], alone["month"], "Mon") == (3, 3)

    out = suppress([day, month, total], LIMITS)
    shown = [Table(t.name, out[t.name], t.dimensions, measure="sv") for t in (day, month)]
    assert audit_tables([*shown, total], LIMITS) == []
    low, high = interval(out["day"], out["month"], "Mon")
    assert high - low >= LIMITS.width


def test_partition_relates_months_to_windows():
    """A month partition (months -> a 3-month window) is one more additive relation."""
    months = pl.DataFrame({"month": ["m1", "m2", "m3", "m4"], "count": [2, 40, 41, 50]})
    window = pl.DataFrame({"month": ["q"], "count": [83]})
    part = {"month": [{"m1": "q", "m2": "q", "m3": "q"}]}
    tables = [Table("months", months, ("month",), partitions=part),
              Table("window", window, ("month",), partitions=part)]
    naive = suppress(tables, LIMITS, secondary=False)
    seen = [Table(t.name, naive[t.name], t.dimensions, partitions=part) for t in tables]
    assert [h.cell for h in audit_tables(seen, LIMITS)] == [{"month": "m1"}]
    safe = suppress(tables, LIMITS)
    seen = [Table(t.name, safe[t.name], t.dimensions, partitions=part) for t in tables]
    assert audit_tables(seen, LIMITS) == [] and safe["months"]["suppressed"].sum() >= 2


# ----------------------------------------------------------------------------- real data


def published_frames(results: dict, partnership: Partnership, together: bool
                     ) -> dict[str, pl.DataFrame]:
    """Each tabulated exhibit as the published edition shows it (before any pivot): joint
    protection, or (`together=False`) primary suppression one exhibit at a time."""
    protection = joint.protect_together(results, partnership.config.disclosure)
    assert protection is not None
    frames = {}
    for spec in joint.exhibits():
        result = results.get(spec.result)
        if result is None or result.table.is_empty():
            continue
        table = spec.rows(result.table).select(
            [c for c in spec.columns if c in result.table.columns])
        if together:
            frames[spec.key] = jointly(table, spec, result, partnership,
                                       protection.shown.get(spec.key, {}))[0]
        else:
            frames[spec.key] = protect_exhibit(table, list(spec.counts), dict(spec.rates),
                                               partnership.config.disclosure,
                                               result.meta.sources)[0]
    return frames


def attack_all(results: dict, frames: dict[str, pl.DataFrame]) -> tuple[list, list]:
    """The LP attack on every published table at once (every cell, total and margin)."""
    linked, relations = joint.linked_tables(results, published=frames)
    tables, _ = joint.build_system(linked, relations)
    limits = joint.protect_together(results, None).limits
    return audit_tables(tables, limits), tables


@pytest.mark.parametrize("which", ["demo", "plymouth"])
def test_published_edition_resists_the_joint_attack(which, request):
    results = request.getfixturevalue(f"{which}_results")
    root = request.getfixturevalue("demo_partnership" if which == "demo"
                                   else "devon_police_uk")
    partnership = Partnership(root)
    protection = joint.protect_together(results, partnership.config.disclosure)
    assert protection is not None and protection.unlinked == [], protection.unlinked
    linked = {t.name.split(":")[0] for t in protection.tables if t.published}
    assert {"trend-monthly", "trend-harm", "places-ward-rates", "times-month-of-year"} <= linked

    frames = published_frames(results, partnership, together=True)
    exposed, tables = attack_all(results, frames)
    assert exposed == [], [e.describe() for e in exposed[:5]]
    stars = sum(int((f.get_column(c) == STAR).sum()) for k, f in frames.items()
                for c in f.columns if c in next(x.counts for x in joint.exhibits() if x.key == k))
    if which == "demo":  # the NTE count is tied to the hour x day cells in its window
        assert "times-night-time-economy:count" in {t.name for t in protection.tables}
        assert any("nte" in t.dimensions for t in protection.tables)
    if which == "demo":  # the hour x day table has small counts: hidden, and safe jointly
        assert stars >= 2
        naive = published_frames(results, partnership, together=False)
        assert stars >= sum(int((f.get_column(c) == STAR).sum()) for k, f in naive.items()
                            for c in f.columns if c in next(
                                x.counts for x in joint.exhibits() if x.key == k))
        assert audit_tables(tables, protection.limits, integer=True) == []


@pytest.fixture(scope="module")
def devon_robbery(devon_police_uk) -> tuple[Partnership, pl.DataFrame]:
    """Robbery in 2025 by LSOA across the eight Devon & Cornwall CSPs (every LSOA, zeros
    included), with the geography ladder: counts are small by ward."""
    from svduty.analysis.data import Data
    from svduty.analysis.scope import resolve_scope
    from svduty.assessment import levels

    p = Partnership(devon_police_uk)
    with p.warehouse(read_only=True) as wh:
        data = Data(wh, resolve_scope(p, wh))
        events = data.fetch(data.sv().select("month", "sv_category", "lsoa21_code"))
        lsoas = [r[0] for r in wh.con.execute(
            "SELECT lsoa_code FROM areas WHERE lsoa_vintage = 2021 AND csp_code IN "
            "(SELECT unnest(?))", [[a.csp_code for a in p.config.areas]]).fetchall()]
    robbery = events.filter(pl.col("sv_category").str.starts_with("Robbery")
                            & (pl.col("month") >= date(2025, 1, 1)))
    rows = (pl.DataFrame({"lsoa21_code": lsoas})
            .join(robbery.group_by("lsoa21_code").agg(events=pl.len()), on="lsoa21_code",
                  how="left").fill_null(0))
    return p, rows.join(levels.ladder(p, lsoas), on="lsoa21_code")


def test_map_of_small_ward_counts_is_drawn_at_a_larger_level(devon_robbery):
    from svduty.assessment import levels, maps

    p, rows = devon_robbery
    wards = levels.aggregate(rows, "ward_code", "ward_name")
    assert (wards["events"].is_between(1, 7)).mean() > levels.MAX_SHARE  # wards disclose
    level = levels.choose(rows, LIMITS, "ward")
    assert level is not None and level.level in ("local authority", "CSP")
    assert "rather than by ward" in level.reason and "wards have fewer than 8" in level.reason
    assert level.suppressed <= levels.MAX_SHARE * level.areas.height
    assert set(level.members) == set(rows["lsoa21_code"])
    shown = level.areas.filter(~pl.col("suppressed"))
    assert not shown["events"].is_between(1, 7).any()
    lsoa = levels.choose(rows, LIMITS, "LSOA")
    assert lsoa is not None and lsoa.reason.startswith(f"Drawn by {lsoa.level} rather than by "
                                                       "LSOA")
    residents = rows.with_columns(residents=pl.lit(1500.0))
    chart = maps.level_map(levels.choose(residents, LIMITS, "ward"), p.root)
    assert chart is not None and level.level in chart.to_dict()["title"]["text"]


# ----------------------------------------------------------------------------- night-time economy


def hour_weekday_and_nte(untimed: int = 0, nte_extra: int = 0) -> dict[str, Result]:
    """Results for hour x day (20 a cell, but 3 on Friday 20:00 and 9 on Monday 20:00) and the
    night-time economy count (the sum of the cells in its window, plus `nte_extra`); with
    `untimed`, a month of the year table counting events without a time too."""
    rows = [(d + 1, WEEKDAYS[d], h, 3 if (d, h) == (4, 20) else 9 if (d, h) == (0, 20) else 20)
            for d in range(7) for h in range(24)]
    cells = pl.DataFrame(rows, schema=["weekday", "weekday_name", "hour", "count"],
                         orient="row")
    window = nte_cells()
    count = sum(n for d, h, n in cells.select("weekday", "hour", "count").iter_rows()
                if (d, h) in window) + nte_extra
    total = int(cells["count"].sum())
    nte = pl.DataFrame({"measure": ["in night-time economy hours"],
                        "events": ["all serious violence"], "count": [count], "total": [total],
                        "share": [count / total], "lower": [None], "upper": [None]})
    results = {"times-hour-weekday": cells, "times-night-time-economy": nte}
    if untimed:
        months = [total // 12] * 11 + [total - total // 12 * 11 + untimed]
        results["times-month-of-year"] = pl.DataFrame({"month_name": list(joint.MONTHS),
                                                       "count": months})
    return {k: Result(t, Meta(k, k, "hand-built")) for k, t in results.items()}


def shown_frames(results: dict[str, Result], protection: joint.Joint
                 ) -> dict[str, pl.DataFrame]:
    """Each exhibit's rows with its count columns as the joint protection shows them."""
    frames = {}
    for spec in joint.exhibits():
        if spec.result not in results:
            continue
        frame = spec.rows(results[spec.result].table)
        for c in spec.counts:
            text = [str(v) for v in frame.get_column(c).to_list()]
            for row, value in protection.shown.get(spec.key, {}).get(c, {}).items():
                text[row] = value if value is not None else text[row]
            frame = frame.with_columns(pl.Series(c, text, pl.String))
        frames[spec.key] = frame
    return frames


def joint_attack(results: dict[str, Result], frames: dict[str, pl.DataFrame]) -> list:
    linked, relations = joint.linked_tables(results, published=frames)
    return audit_tables(joint.build_system(linked, relations)[0], LIMITS)


def nte_interval(frames: dict[str, pl.DataFrame], day: str, hour: int) -> tuple[float, float]:
    """Independent attacker: the shown hour x day cells, the NTE count (the sum of the cells
    in its window) and the total (the sum of them all)."""
    cells = frames["times-hour-weekday"].select("weekday", "hour", "count").rows()
    nte = frames["times-night-time-economy"].row(0, named=True)
    window = nte_cells()
    unknown = [(d, h) for d, h, v in cells if v == STAR]
    a, rhs = np.zeros((2, len(unknown))), [float(nte["total"]), float(nte["count"])]
    for d, h, v in cells:
        rows = (0, 1) if (d, h) in window else (0,)
        for r in rows:
            if v == STAR:
                a[r, unknown.index((d, h))] = 1
            else:
                rhs[r] -= int(v)
    c = np.zeros(len(unknown))
    c[unknown.index((WEEKDAYS.index(day) + 1, hour))] = 1
    lo = linprog(c, A_eq=a, b_eq=rhs, bounds=(1, None), method="highs")
    hi = linprog(-c, A_eq=a, b_eq=rhs, bounds=(1, None), method="highs")
    return lo.fun, (np.inf if hi.status == 3 else -hi.fun)


def test_nte_count_pins_a_hidden_hour_x_day_cell_unless_protected_together():
    results = hour_weekday_and_nte()
    alone = {}
    for key, result in results.items():
        protection = joint.protect_together({key: result}, None)
        assert protection is not None
        frames = shown_frames({key: result}, protection)
        assert joint_attack({key: result}, frames) == []  # each safe on its own
        alone |= frames
    hidden = alone["times-hour-weekday"].filter(pl.col("count") == STAR)
    assert hidden.select("weekday_name", "hour").rows() == [("Monday", 20), ("Friday", 20)]
    assert alone["times-night-time-economy"]["count"].to_list() == ["303"]
    # Friday 20:00 is in the window, Monday 20:00 is not: the NTE count gives Friday away
    hits = joint_attack(results, alone)
    assert {(h.cell["weekday"], h.cell["hour"], h.low, h.high) for h in hits
            if h.table == "times-hour-weekday:count"} >= {("Friday", "20", 3, 3)}
    assert nte_interval(alone, "Friday", 20) == (3, 3)

    protection = joint.protect_together(results, None)
    assert protection is not None and protection.unlinked == []
    together = shown_frames(results, protection)
    assert joint_attack(results, together) == []
    low, high = nte_interval(together, "Friday", 20)
    assert high - low >= LIMITS.width
    hidden = together["times-hour-weekday"].filter(pl.col("count") == STAR)
    window = nte_cells()
    inside = [(WEEKDAYS.index(d) + 1, h) in window
              for d, h in hidden.select("weekday_name", "hour").rows()]
    assert sum(inside) >= 2 and len(inside) - sum(inside) >= 2 and len(inside) <= 6
    assert together["times-night-time-economy"]["count"].to_list() == ["303"]


def test_nte_count_links_only_where_it_adds_up():
    # a count that is not the sum of its cells (e.g. untimed events in it) stands alone
    protection = joint.protect_together(hour_weekday_and_nte(nte_extra=5), None)
    assert protection is not None
    assert protection.unlinked == ["times-night-time-economy:count"]
    # untimed events in the grand total: hour x day stands apart from it, with the NTE counts
    results = hour_weekday_and_nte(untimed=40)
    protection = joint.protect_together(results, None)
    assert protection is not None
    assert protection.unlinked == ["times-hour-weekday:count",
                                   "times-night-time-economy (with sv:times-hour-weekday)"]
    frames = shown_frames(results, protection)
    assert joint_attack(results, frames) == []
    low, high = nte_interval(frames, "Friday", 20)
    assert high - low >= LIMITS.width
