"""Disclosure control: primary and secondary suppression, and attacks on what is published.

The attacks solve the published totals and margins by linear programming. Besides the
module's own attacker (`audit_tables`), the 2-D and ward/LSOA cases are attacked by an
independent one written here from the table's layout (row, column and ward sums).
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy.optimize import linprog

from svduty.assessment.disclosure import (
    STAR,
    DisclosureError,
    Limits,
    Table,
    audit_tables,
    protect_exhibit,
    resolve_limits,
    suppress,
)
from svduty.partnership import Disclosure

LIMITS = Limits()
TOTAL = "Total"


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def plymouth(devon_police_uk) -> pl.DataFrame:
    """Serious violence (police.uk proxy) in Plymouth: one row per event with ward, LSOA,
    category and month, read straight from the warehouse."""
    from svduty.analysis.data import Data
    from svduty.analysis.scope import resolve_scope
    from svduty.partnership import Partnership

    p = Partnership(devon_police_uk)
    with p.warehouse(read_only=True) as wh:
        data = Data(wh, resolve_scope(p, wh, area="Plymouth"))
        sv = data.sv()
        return data.fetch(sv.select("event_id", "month", "sv_category", "lsoa21_code",
                                    "ward_code"))


def with_margins(cells: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """A long table of `cells` (dims + count) with a Total for every subset of dims."""
    parts = [cells]
    for k in range(1, len(dims) + 1):
        for mask in range(1 << len(dims)):
            totalled = [d for i, d in enumerate(dims) if mask >> i & 1]
            if len(totalled) != k:
                continue
            keep = [d for d in dims if d not in totalled]
            agg = (cells.group_by(keep).agg(pl.col("count").sum()) if keep
                   else cells.select(pl.col("count").sum()))
            parts.append(agg.with_columns(pl.lit(TOTAL).alias(d) for d in totalled)
                         .select(cells.columns))
    return pl.concat(parts)


def ward_by_category(events: pl.DataFrame, month: date) -> pl.DataFrame:
    """Counts by ward x category in one month, zeros included, with both margins."""
    m = events.filter(pl.col("month") == month)
    grid = (m.select("ward_code").unique().join(m.select("sv_category").unique(), how="cross"))
    counts = m.group_by("ward_code", "sv_category").agg(count=pl.len().cast(pl.Int64))
    cells = grid.join(counts, on=["ward_code", "sv_category"], how="left").fill_null(0)
    return with_margins(cells, ["ward_code", "sv_category"])


def attack_2d(frame: pl.DataFrame, rows: str, cols: str) -> dict[tuple, tuple[float, float]]:
    """Independent attacker: bounds of every '*' cell of a 2-D table with margins, from the
    row sums, column sums and grand total; published cells fixed; a '*' is at least 1."""
    shown = frame.select(rows, cols, "count", "count_shown").rows()
    value = {(r, c): (None if s == STAR else int(s)) for r, c, _, s in shown}
    unknown = [k for k, v in value.items() if v is None]
    col = {k: i for i, k in enumerate(unknown)}
    keys_r = sorted({r for r, _ in value})
    keys_c = sorted({c for _, c in value})
    a, b = [], []
    lines = [[(r, c) for c in keys_c if c != TOTAL] + [(r, TOTAL)] for r in keys_r]
    lines += [[(r, c) for r in keys_r if r != TOTAL] + [(TOTAL, c)] for c in keys_c]
    for line in lines:
        *inner, total = line
        row, rhs = np.zeros(len(unknown)), 0.0
        for k, sign in [*((k, 1.0) for k in inner), (total, -1.0)]:
            if value.get(k) is None and k in col:
                row[col[k]] += sign
            else:
                rhs -= sign * (value.get(k) or 0)
        if row.any():
            a.append(row)
            b.append(rhs)
    found = {}
    for k, i in col.items():
        c = np.zeros(len(unknown))
        c[i] = 1
        lo = linprog(c, A_eq=np.array(a), b_eq=b, bounds=(1, None), method="highs")
        hi = linprog(-c, A_eq=np.array(a), b_eq=b, bounds=(1, None), method="highs")
        found[k] = (lo.fun, np.inf if hi.status == 3 else -hi.fun)
    return found


# ----------------------------------------------------------------------------- thresholds


def test_resolve_limits_takes_the_strictest_source():
    d = Disclosure(suppress_below=8, rate_min_count=10,
                   sources={"ed-istv": {"suppress_below": 11},
                            "hospital-admissions": {"rate_min_count": 20, "suppress_below": 6}})
    assert resolve_limits(d, ["police-uk"]) == Limits(8, 10)
    assert resolve_limits(d, ["police-uk", "ed-istv"]) == Limits(11, 10)
    assert resolve_limits(d, ["ed-istv", "hospital-admissions"]) == Limits(11, 20)
    assert resolve_limits(None, []).suppress_below == 8
    assert resolve_limits(d, [], suppress_zero=True).floor == 0


def test_primary_suppression_and_rates():
    frame = pl.DataFrame({"ward": ["A", "B", "C", "D", "E", "F"],
                          "count": [0, 1, 7, 8, 9, 10],
                          "rate": [0.0, 0.1, 0.7, 0.8, 0.9, 1.0]})
    out = suppress([Table("t", frame, ("ward",), rates=("rate",))], LIMITS)["t"]
    assert out["count_shown"].to_list() == ["0", STAR, STAR, "8", "9", "10"]
    assert out["reason"].to_list() == [None, "primary", "primary", None, None, None]
    assert out["rate"].to_list() == [None, None, None, None, None, 1.0]
    zero = suppress([Table("t", frame, ("ward",))], Limits(suppress_zero=True))["t"]
    assert zero["count_shown"].to_list()[:3] == [STAR, STAR, STAR]


def test_protect_exhibit_for_the_report():
    frame = pl.DataFrame({"name": ["a", "b", "c"], "count": [3, 12, None],
                          "rate": [1.5, 2.0, None], "other": [1, 2, 3]})
    d = Disclosure(sources={"ed-istv": {"rate_min_count": 15}})
    out, notes = protect_exhibit(frame, ["count"], {"rate": "count"}, d, ["ed-istv"])
    assert out["count"].to_list() == [STAR, "12", None]
    assert out["rate"].to_list() == [None, None, None]  # 12 < 15 for ed-istv
    assert out["other"].to_list() == [1, 2, 3]
    assert len(notes) == 2 and "1 to 7" in notes[0] and "15" in notes[1]
    floats = pl.DataFrame({"count": [1234567.0, 2.0, 0.0]})
    out, _ = protect_exhibit(floats, ["count"], {}, None)
    assert out["count"].to_list() == ["1234567", STAR, "0"]


# ----------------------------------------------------------------------------- 1-D


def test_one_way_total_gives_away_a_lone_star_and_secondary_fixes_it():
    frame = pl.DataFrame({"ward": ["A", "B", "C", "D", TOTAL], "count": [3, 12, 40, 9, 64]})
    table = Table("w", frame, ("ward",))
    naive = suppress([table], LIMITS, secondary=False)["w"]
    [hit] = audit_tables([Table("w", naive, ("ward",))], LIMITS)
    assert hit.cell == {"ward": "A"} and hit.low == hit.high == 64 - 12 - 40 - 9 == hit.value
    safe = suppress([table], LIMITS)["w"]
    assert safe.filter(pl.col("suppressed"))["ward"].to_list() == ["A", "D"]  # D: 9 covers it
    assert audit_tables([Table("w", safe, ("ward",))], LIMITS) == []


def test_two_small_stars_in_a_row_are_not_enough():
    """3 and 2 hidden beside a shown total: each lies in 1..4, narrower than 1..8."""
    frame = pl.DataFrame({"ward": ["A", "B", "C", "D", TOTAL], "count": [3, 2, 40, 30, 75]})
    table = Table("w", frame, ("ward",))
    naive = suppress([table], LIMITS, secondary=False)["w"]
    hits = audit_tables([Table("w", naive, ("ward",))], LIMITS)
    assert {(h.value, h.low, h.high) for h in hits} == {(3, 1, 4), (2, 1, 4)}
    safe = suppress([table], LIMITS)["w"]
    assert safe["suppressed"].sum() == 3
    assert audit_tables([Table("w", safe, ("ward",))], LIMITS) == []


def test_a_cell_shown_in_another_table_is_known():
    frame = pl.DataFrame({"ward": ["A", "B", "C", "D", TOTAL], "count": [3, 12, 40, 9, 64]})
    safe = suppress([Table("w", frame, ("ward",))], LIMITS)["w"]
    other = pl.DataFrame({"ward": ["D"], "count": [9]})  # ward D shown on its own elsewhere
    [hit] = audit_tables([Table("w", safe, ("ward",)), Table("d", other, ("ward",))], LIMITS)
    assert hit.cell == {"ward": "A"} and hit.low == hit.high == 3
    both = suppress([Table("w", frame, ("ward",)), Table("d", other, ("ward",))], LIMITS)
    assert both["d"]["count_shown"].to_list() == [STAR]  # hidden in both tables alike
    seen = [Table("w", both["w"], ("ward",)), Table("d", both["d"], ("ward",))]
    assert audit_tables(seen, LIMITS) == []


def test_rounding_shows_multiples_and_keeps_the_audit_exact():
    frame = pl.DataFrame({"ward": ["A", "B", "C", "D", "E", TOTAL],
                          "count": [3, 12, 42, 9, 0, 66]})
    out = suppress([Table("w", frame, ("ward",))], LIMITS, round_to=5)["w"]
    assert out["count_shown"].to_list() == [STAR, "10", "40", STAR, "0", "65"]
    assert out["count"].to_list() == frame["count"].to_list()
    assert audit_tables([Table("w", out, ("ward",))], LIMITS) == []


def test_errors():
    bad = pl.DataFrame({"ward": ["A", "B", TOTAL], "count": [3, 12, 16]})
    with pytest.raises(DisclosureError, match="not the sum"):
        suppress([Table("w", bad, ("ward",))], LIMITS)
    a = pl.DataFrame({"ward": ["A"], "count": [3]})
    b = pl.DataFrame({"ward": ["A"], "count": [4]})
    with pytest.raises(DisclosureError, match="differs"):
        suppress([Table("a", a, ("ward",)), Table("b", b, ("ward",))], LIMITS)


# ----------------------------------------------------------------------------- hierarchy


def test_hierarchy_needs_a_second_lsoa_in_the_same_ward():
    lsoas = pl.DataFrame({"area": ["L1", "L2", "L3", "L4", "L5", "L6"],
                          "count": [2, 30, 25, 9, 20, 40]})
    parent = {"L1": "W1", "L2": "W1", "L3": "W1", "L4": "W2", "L5": "W2", "L6": "W2"}
    wards = pl.DataFrame({"area": ["W1", "W2", TOTAL], "count": [57, 69, 126]})
    tables = [Table("lsoa", lsoas, ("area",), hierarchy={"area": parent}),
              Table("ward", wards, ("area",), hierarchy={"area": parent})]
    out = suppress(tables, LIMITS)
    hidden = out["lsoa"].filter(pl.col("suppressed"))["area"].to_list()
    assert hidden == ["L1", "L3"]  # L4 (9) is smaller but in the other ward
    assert not out["ward"]["suppressed"].any()
    protected = [Table(t.name, out[t.name], ("area",), hierarchy={"area": parent})
                 for t in tables]
    assert audit_tables(protected, LIMITS) == []


# ----------------------------------------------------------------------------- real data


def test_plymouth_ward_by_category_naive_is_broken_secondary_holds(plymouth):
    table = ward_by_category(plymouth, date(2025, 6, 1))
    assert table.filter(pl.col("count").is_between(1, 7)).height >= 10  # real small counts
    dims = ("ward_code", "sv_category")
    naive = suppress([Table("t", table, dims)], LIMITS, secondary=False)["t"]
    hits = audit_tables([Table("t", naive, dims)], LIMITS)
    ranges = attack_2d(naive, *dims)
    exact = {k for k, (lo, hi) in ranges.items() if hi - lo < 1e-6}
    assert exact  # the independent attacker recovers cells exactly ...
    assert exact <= {(h.cell["ward_code"], h.cell["sv_category"]) for h in hits}
    truth = dict(zip(zip(naive["ward_code"], naive["sv_category"], strict=True),
                     naive["count"], strict=True))
    assert all(abs(ranges[k][0] - truth[k]) < 1e-6 for k in exact)  # ... to their true value

    safe = suppress([Table("t", table, dims)], LIMITS)["t"]
    assert audit_tables([Table("t", safe, dims)], LIMITS) == []
    assert audit_tables([Table("t", safe, dims)], LIMITS, integer=True) == []
    for key, (lo, hi) in attack_2d(safe, *dims).items():
        need = LIMITS.width if truth[key] < LIMITS.suppress_below else 1
        assert lo <= truth[key] <= hi and hi - lo >= need - 1e-6, key
    small = safe.filter(pl.col("count").is_between(1, 7))
    assert small["suppressed"].all() and (small["reason"] == "primary").all()
    assert (safe.filter(pl.col("reason") == "secondary")["count"] > 0).all()
    assert not safe.filter((pl.col("ward_code") == TOTAL)
                           & (pl.col("sv_category") == TOTAL))["suppressed"].any()


def ward_and_lsoa_tables(events: pl.DataFrame, category: str) -> tuple[Table, Table, dict]:
    """The same year's count published by ward and by LSOA (each with the grand total), the
    LSOA codes nested in wards through `area`."""
    e = events.filter((pl.col("month") >= date(2025, 1, 1)) & (pl.col("sv_category") == category))
    nest = dict(events.select("lsoa21_code", "ward_code").unique().iter_rows())
    lsoa = (pl.DataFrame({"area": sorted(nest)})
            .join(e.group_by(area="lsoa21_code").agg(count=pl.len().cast(pl.Int64)), on="area",
                  how="left").fill_null(0))
    ward = lsoa.with_columns(area=pl.col("area").replace_strict(nest)).group_by("area").agg(
        pl.col("count").sum())
    grand = pl.DataFrame({"area": [TOTAL], "count": [lsoa["count"].sum()]})
    return (Table("ward", pl.concat([ward, grand]), ("area",), hierarchy={"area": nest}),
            Table("lsoa", pl.concat([lsoa, grand]), ("area",), hierarchy={"area": nest}), nest)


def attack_nested(ward: pl.DataFrame, lsoa: pl.DataFrame, nest: dict
                  ) -> dict[str, tuple[float, float]]:
    """Independent attacker for a ward table and an LSOA table: each ward is the sum of its
    LSOAs, the grand total the sum of the wards; shown cells fixed; a '*' is at least 1."""
    shown = dict(ward.select("area", "count_shown").iter_rows())
    shown |= dict(lsoa.select("area", "count_shown").iter_rows())
    unknown = sorted(k for k, v in shown.items() if v == STAR)
    col = {k: i for i, k in enumerate(unknown)}
    sums = [(w, [c for c, p in nest.items() if p == w]) for w in set(nest.values())]
    sums.append((TOTAL, sorted(set(nest.values()))))
    sums.append((TOTAL, sorted(nest)))
    a, b = [], []
    for total, parts in sums:
        row, rhs = np.zeros(len(unknown)), 0.0
        for k, sign in [(total, -1.0), *((k, 1.0) for k in parts)]:
            if k in col:
                row[col[k]] += sign
            else:
                rhs -= sign * int(shown[k])
        a.append(row)
        b.append(rhs)
    found = {}
    for k, i in col.items():
        c = np.zeros(len(unknown))
        c[i] = 1
        lo = linprog(c, A_eq=np.array(a), b_eq=b, bounds=(1, None), method="highs")
        hi = linprog(-c, A_eq=np.array(a), b_eq=b, bounds=(1, None), method="highs")
        found[k] = (lo.fun, np.inf if hi.status == 3 else -hi.fun)
    return found


def narrow(ranges: dict, truth: dict) -> set:
    """Cells whose range is narrower than they need (small counts: 7 values; others: 1)."""
    return {k for k, (lo, hi) in ranges.items()
            if hi - lo < (LIMITS.width if LIMITS.sensitive(truth[k]) else 1) - 1e-6}


@pytest.mark.parametrize("category", ["Robbery", "Possession of weapons"])
def test_plymouth_ward_and_lsoa_tables_differencing(plymouth, category):
    cat = next(c for c in plymouth["sv_category"].unique() if c.startswith(category))
    ward, lsoa, nest = ward_and_lsoa_tables(plymouth, cat)
    truth = dict(pl.concat([ward.frame, lsoa.frame]).iter_rows())
    alone = {t.name: suppress([t], LIMITS)[t.name] for t in (ward, lsoa)}  # each on its own
    seen = [Table(t.name, alone[t.name], t.dimensions, hierarchy=t.hierarchy)
            for t in (ward, lsoa)]
    assert audit_tables(seen[:1], LIMITS) == [] and audit_tables(seen[1:], LIMITS) == []
    hits = audit_tables(seen, LIMITS)  # ... but together the ward totals give LSOAs away
    assert hits
    independent = attack_nested(alone["ward"], alone["lsoa"], nest)
    assert {h.cell["area"] for h in hits} == narrow(independent, truth)
    assert all(lo - 1e-6 <= truth[k] <= hi + 1e-6 for k, (lo, hi) in independent.items())

    out = suppress([ward, lsoa], LIMITS)
    together = [Table(t.name, out[t.name], t.dimensions, hierarchy=t.hierarchy)
                for t in (ward, lsoa)]
    assert audit_tables(together, LIMITS) == []
    assert narrow(attack_nested(out["ward"], out["lsoa"], nest), truth) == set()
    small = pl.concat([out["ward"], out["lsoa"]]).filter(pl.col("count").is_between(1, 7))
    assert small["suppressed"].all()


def test_plymouth_table_without_a_subgroup(plymouth):
    """All serious violence by ward, and the same without weapons possession: their
    difference is weapons possession by ward, which is never shown but must be protected."""
    e = plymouth.filter(pl.col("month") >= date(2025, 1, 1)).with_columns(
        group=pl.when(pl.col("sv_category").str.starts_with("Possession"))
        .then(pl.lit("weapons")).otherwise(pl.lit("other")))
    cells = (e.select("ward_code").unique().join(e.select("group").unique(), how="cross")
             .join(e.group_by("ward_code", "group").agg(count=pl.len().cast(pl.Int64)),
                   on=["ward_code", "group"], how="left").fill_null(0))
    full = with_margins(cells, ["ward_code", "group"])
    dims = ("ward_code", "group")
    tables = [Table("all", full.filter(pl.col("group") == TOTAL), dims),
              Table("without-weapons", full.filter(pl.col("group") == "other"), dims),
              Table("weapons", full.filter(pl.col("group") == "weapons"), dims, published=False)]
    assert full.filter((pl.col("group") == "weapons") & pl.col("count").is_between(1, 7)).height
    naive = suppress(tables, LIMITS, secondary=False)
    seen = [Table(t.name, naive[t.name], dims, published=t.published) for t in tables]
    hits = audit_tables(seen, LIMITS)
    assert any(h.table == "weapons" and h.low == h.high == h.value for h in hits)
    safe = suppress(tables, LIMITS)
    seen = [Table(t.name, safe[t.name], dims, published=t.published) for t in tables]
    assert audit_tables(seen, LIMITS) == []
    assert safe["weapons"]["suppressed"].all()  # never shown


def test_plymouth_ward_category_month_cube(plymouth):
    """A 3-D table (ward x category x month, all margins) of a year: every small count
    is hidden and the attacker pins none down; suppression itself is quick."""
    e = plymouth.filter(pl.col("month") >= date(2025, 1, 1)).with_columns(
        pl.col("month").cast(pl.String))
    dims = ["ward_code", "sv_category", "month"]
    grid = e.select(dims[0]).unique().join(e.select(dims[1]).unique(), how="cross").join(
        e.select(dims[2]).unique(), how="cross")
    cells = grid.join(e.group_by(dims).agg(count=pl.len().cast(pl.Int64)), on=dims,
                      how="left").fill_null(0)
    cube = with_margins(cells, dims)
    assert cube.height > 1000
    started = time.perf_counter()
    fast = suppress([Table("cube", cube, tuple(dims))], LIMITS, audit=False)["cube"]
    heuristic_seconds = time.perf_counter() - started
    safe = suppress([Table("cube", cube, tuple(dims))], LIMITS)["cube"]
    assert audit_tables([Table("cube", safe, tuple(dims))], LIMITS) == []
    assert safe.filter(pl.col("count").is_between(1, 7))["suppressed"].all()
    assert safe["suppressed"].sum() >= fast["suppressed"].sum()
    print(f"\ncube: {cube.height} cells, heuristic {heuristic_seconds:.3f}s, "
          f"{safe['suppressed'].sum()} hidden")


def test_a_change_is_blanked_where_either_count_it_compares_is_hidden():
    """percent_change = after / before - 1 gives a hidden count back from the other one."""
    from svduty.assessment.disclosure import blank_rates, protect_exhibit

    table = pl.DataFrame({"category": ["knife", "firearm", "all"],
                          "count_before": [40, 3, 400], "count_after": [50, 12, 420]})
    table = table.with_columns(
        (pl.col("count_after") / pl.col("count_before") * 100 - 100).alias("percent_change"))
    rates = {"percent_change": ("count_before", "count_after")}
    out, notes = protect_exhibit(table, ["count_before", "count_after"], rates, None)
    assert out.get_column("count_before").to_list() == ["40", "*", "400"]
    assert out.get_column("percent_change").is_null().to_list() == [False, True, False]
    assert any("rate(s) are not shown" in n for n in notes)
    starred = table.with_columns(pl.col("count_before").cast(pl.String),
                                 pl.col("count_after").cast(pl.String))
    starred = starred.with_columns(pl.when(pl.col("category") == "all").then(pl.lit("*"))
                                   .otherwise(pl.col("count_after")).alias("count_after"))
    assert blank_rates(starred, rates).get_column("percent_change").is_null().to_list() == [
        False, False, True]
