"""Disclosure control for the published edition: primary and secondary suppression of counts,
and an attacker that checks no suppressed cell can be worked out from what is published.

A published table is described by a :class:`Table`: a Polars frame in long form (dimension
columns and one count column, optional rate columns tied to that count). A total is a row
whose value in a dimension is null or the table's `total` label ("Total"); a dimension a table
does not have counts as its total. Tables published together are linked by their dimension
columns: a ward table and an LSOA table that both use `area` with an LSOA -> ward
`hierarchy` share the ward and grand totals, so differencing one against the other is an
attack the suppression must resist. A table marked `published=False` holds counts that are
not shown but can be derived (e.g. the subgroup left out of a "without knife crime" table).

* **Primary suppression**: counts from 1 to `suppress_below - 1` are shown as ``*`` (zero too
  where `suppress_zero`); rates are blanked where their count is suppressed or under
  `rate_min_count`.
* **Secondary suppression**: every additive relation (a total and the cells it sums, in each
  dimension and at each level of a hierarchy) with a hidden cell gets further cells hidden
  until the hidden cells can move far enough: each small count can range over at least
  `suppress_below - 1` values and no hidden cell is fixed. The complementary cell is the
  smallest non-zero shown cell in the same relation that is large enough, else the largest;
  the total only when no cell is left. Then the attacker (:func:`audit_tables`) solves the
  linear programme of every published cell and relation; any cell it can still narrow gets
  another complementary cell beside it, until none can.
* **Audit**: :func:`audit_tables` bounds each hidden cell by minimising and maximising it
  subject to every published cell, total and margin (HiGHS through SciPy; integers with
  `integer=True`), one connected block of hidden cells at a time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_array

from svduty.partnership import Disclosure

TOTAL: Any = "\x00total"  # internal key of a total in any dimension
STAR = "*"


class DisclosureError(ValueError):
    """The tables cannot be protected as described (not additive, or still exposed)."""


@dataclass(frozen=True)
class Limits:
    """Thresholds for one set of tables: counts below `suppress_below` are hidden; rates need
    `rate_min_count` events; hidden small counts must range over `protection` values."""

    suppress_below: int = 8
    rate_min_count: int = 10
    suppress_zero: bool = False
    protection: int | None = None  # width of the attacker's interval; default suppress_below-1

    @property
    def floor(self) -> int:
        """The least a `*` can be: 1 where zeros are shown (a * is never zero), else 0."""
        return 0 if self.suppress_zero else 1

    @property
    def width(self) -> int:
        return self.suppress_below - 1 if self.protection is None else self.protection

    def sensitive(self, value: int) -> bool:
        return (value == 0 and self.suppress_zero) or 1 <= value < self.suppress_below


def resolve_limits(disclosure: Disclosure | None = None, sources: Iterable[str] = (), *,
                   suppress_zero: bool = False, protection: int | None = None) -> Limits:
    """The thresholds for a table drawn from `sources`: the partnership's own, raised by any
    per-source override in partnership.toml (the strictest wins)."""
    d = disclosure or Disclosure()
    low, rate = d.suppress_below, d.rate_min_count
    for source in sources:
        override = d.sources.get(source, {})
        low = max(low, override.get("suppress_below", low))
        rate = max(rate, override.get("rate_min_count", rate))
    return Limits(low, rate, suppress_zero, protection)


@dataclass(frozen=True)
class Table:
    """One table to publish (or, with `published=False`, counts that can be derived)."""

    name: str
    frame: pl.DataFrame
    dimensions: tuple[str, ...]
    count: str = "count"
    rates: tuple[str, ...] = ()
    measure: str | None = None  # tables link only where their measures match (default count)
    total: str = "Total"
    hierarchy: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)  # child -> parent
    published: bool = True
    # dimension -> further groupings of its values (child -> parent; a parent None or the
    # total label is the total), each one additive relation set of its own: e.g. months ->
    # month of the year, or the months of a rolling 12-month window -> that window. Values a
    # grouping does not name are left out of it, and a parent it does not map is its root.
    partitions: Mapping[str, Sequence[Mapping[Any, Any]]] = field(default_factory=dict)

    @property
    def shown_column(self) -> str:
        return f"{self.count}_shown"


@dataclass(frozen=True)
class Exposure:
    """A hidden cell the attacker can pin down: its feasible range is narrower than needed."""

    table: str
    cell: dict[str, Any]
    value: int
    reason: str  # primary / secondary / unpublished
    low: float
    high: float
    required: int

    def describe(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.cell.items())
        return (f"{self.table} [{where}] ({self.reason}, {self.value}) can be worked out to "
                f"{self.low:g}..{self.high:g}; needs a range of {self.required}")


# ------------------------------------------------------------------------------ cells


@dataclass
class _Cells:
    """The union of every table's cells, and the additive relations between them."""

    limits: Limits
    dims: tuple[str, ...]
    keys: list[tuple] = field(default_factory=list)
    index: dict[tuple, int] = field(default_factory=dict)
    value: list[int] = field(default_factory=list)
    shown: list[bool] = field(default_factory=list)  # in a published table
    hidden: list[bool] = field(default_factory=list)  # shown as * (or not published)
    reason: list[str | None] = field(default_factory=list)
    where: list[tuple[str, dict]] = field(default_factory=list)
    groups: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)
    member_of: list[list[int]] = field(default_factory=list)

    def add(self, key: tuple, value: int, table: Table, cell: dict) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.keys)
            self.keys.append(key)
            self.value.append(value)
            self.shown.append(False)
            self.hidden.append(False)
            self.reason.append(None)
            self.where.append((table.name, cell))
            self.member_of.append([])
        elif self.value[i] != value:
            raise DisclosureError(f"{table.name} {cell}: {value} differs from {self.value[i]} "
                                  f"for the same cell in {self.where[i][0]}")
        if table.published and not self.shown[i]:
            self.shown[i] = True
            self.where[i] = (table.name, cell)
        return i

    def unknown(self, i: int) -> bool:
        return self.hidden[i] or not self.shown[i]

    def floor(self, i: int) -> int:
        return self.limits.floor if self.shown[i] else 0

    def required(self, i: int) -> int:
        """How wide the attacker's interval for cell i must be (0: no need)."""
        if self.limits.sensitive(self.value[i]) and self.unknown(i):
            return max(self.limits.width, 1)
        return 1 if self.hidden[i] else 0


def _key(value: Any, total: str) -> Any:
    return TOTAL if value is None or value == total else value


def _collect(tables: Sequence[Table], limits: Limits, use_shown: bool) -> tuple[_Cells, list]:
    """Every table's cells in one union; returns the union and each table's row -> cell."""
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise DisclosureError(f"table names must be unique: {names}")
    dims = tuple(sorted({d for t in tables for d in t.dimensions}))
    cells = _Cells(limits, dims)
    rows, starred, numbered = [], set(), set()
    for t in tables:
        frame = t.frame
        values = frame.get_column(t.count).fill_null(0).cast(pl.Int64).to_list()
        stars = (frame.get_column(t.shown_column).eq(STAR).to_list()
                 if use_shown and t.shown_column in frame.columns else [False] * frame.height)
        columns = [frame.get_column(d).to_list() if d in t.dimensions else None for d in dims]
        own = [(d, columns[dims.index(d)]) for d in t.dimensions]
        measure = t.measure or t.count
        index = []
        for r, v in enumerate(values):
            coord = tuple(TOTAL if col is None else _key(col[r], t.total) for col in columns)
            cell = {d: col[r] for d, col in own}
            i = cells.add((measure, coord), v, t, cell)
            if t.published:
                (starred if stars[r] else numbered).add(i)
            index.append(i)
        rows.append(index)
    for i in starred - numbered:  # a cell shown as a number anywhere is known
        cells.hidden[i] = True
    _relate(cells, _hierarchies(tables), _partitions(tables))
    return cells, rows


def _hierarchies(tables: Sequence[Table]) -> dict[str, dict[Any, Any]]:
    merged: dict[str, dict[Any, Any]] = defaultdict(dict)
    for t in tables:
        for dim, parents in t.hierarchy.items():
            merged[dim].update({c: _key(p, t.total) for c, p in parents.items()})
    return merged


def _partitions(tables: Sequence[Table]) -> dict[str, list[dict[Any, Any]]]:
    """Every table's extra groupings by dimension (duplicates once)."""
    merged: dict[str, list[dict[Any, Any]]] = defaultdict(list)
    for t in tables:
        for dim, groupings in t.partitions.items():
            for grouping in groupings:
                parents = {_key(c, t.total): _key(p, t.total) for c, p in grouping.items()}
                if parents not in merged[dim]:
                    merged[dim].append(parents)
    return merged


def _relate(cells: _Cells, hierarchy: dict[str, dict[Any, Any]],
            partitions: Mapping[str, list[dict[Any, Any]]] | None = None) -> None:
    """Find every additive relation: in each dimension, with the other dimensions fixed, a
    present total (or parent) equals the sum of its nearest present descendants. A
    dimension with partitions is related by each of them (strictly: values a partition does
    not name are not in it) besides its hierarchy, which then holds only the values no
    partition names."""
    seen = set()
    partitions = partitions or {}
    for d, dim in enumerate(cells.dims):
        buckets: dict[tuple, dict[Any, int]] = defaultdict(dict)
        for i, (measure, coord) in enumerate(cells.keys):
            buckets[(measure, coord[:d] + coord[d + 1:])][coord[d]] = i
        groupings = _groupings(hierarchy.get(dim, {}), partitions.get(dim, []))
        for present in buckets.values():
            for grouping in groupings:
                for total, members in _bucket_groups(present, grouping):
                    key = (total, frozenset(members))
                    if key not in seen:
                        seen.add(key)
                        _add_group(cells, total, tuple(sorted(members)))


@dataclass(frozen=True)
class _Grouping:
    """One way of summing a dimension's values: child -> parent. Loose (a hierarchy): any
    value not named sits under the total, bar those in `exclude`. Strict (a partition): only
    the values named are in it."""

    parents: Mapping[Any, Any]
    strict: bool = False
    exclude: frozenset = frozenset()


def _groupings(parents: dict[Any, Any], partitions: list[dict[Any, Any]]) -> list[_Grouping]:
    """The dimension's hierarchy and its partitions. Where partitions exist the hierarchy
    gives up the values they name, so a month of the year is not taken for one more month."""
    named = frozenset(v for p in partitions for pair in p.items() for v in pair) - {TOTAL}
    return [_Grouping(parents, False, named), *(_Grouping(p, True) for p in partitions)]


def _bucket_groups(present: dict[Any, int], grouping: _Grouping
                   ) -> Iterable[tuple[int, list[int]]]:
    parents, strict = grouping.parents, grouping.strict
    if grouping.exclude:
        present = {v: i for v, i in present.items() if v not in grouping.exclude}
    if len(present) < 2:
        return
    children: dict[Any, set] = defaultdict(set)
    for v in present:
        if strict and v not in parents:
            continue
        while (v in parents) if strict else (v != TOTAL):
            up = parents.get(v, TOTAL)
            children[up].add(v)
            v = up
    for node, i in present.items():
        if node in children:
            members = _nearest(node, present, children)
            if members:
                yield i, members


def _nearest(node: Any, present: dict[Any, int], children: dict[Any, set]) -> list[int]:
    found, stack = [], list(children[node])
    while stack:
        v = stack.pop()
        if v in present:
            found.append(present[v])
        else:
            stack.extend(children.get(v, ()))
    return found


def _add_group(cells: _Cells, total: int, members: tuple[int, ...]) -> None:
    summed = sum(cells.value[m] for m in members)
    if summed != cells.value[total]:
        table, cell = cells.where[total]
        raise DisclosureError(f"{table} {cell}: total {cells.value[total]} is not the sum of its "
                              f"{len(members)} cells ({summed}); list every cell of a total "
                              "(zeros may be left out) or mark derived counts published=False")
    g = len(cells.groups)
    cells.groups.append((total, members))
    for i in (total, *members):
        cells.member_of[i].append(g)


# ------------------------------------------------------------------------------ suppression


def _primary(cells: _Cells) -> None:
    for i, v in enumerate(cells.value):
        if cells.shown[i] and cells.limits.sensitive(v):
            cells.hidden[i], cells.reason[i] = True, "primary"


def _deficit(cells: _Cells, g: int) -> int:
    """How much more hidden mass relation g needs (0: none) so that each hidden cell in it
    can move as far as it must, judging the relation on its own."""
    total, members = cells.groups[g]
    unknown = [i for i in (total, *members) if cells.unknown(i)]
    need = max((cells.required(i) for i in unknown), default=0)
    if need == 0:
        return 0
    if len(unknown) == 1:
        return need
    if total in unknown:
        return 0  # the hidden total leaves every hidden cell free to rise
    mass = sum(cells.value[i] - cells.floor(i) for i in unknown)
    return max(0, need - mass)


def _complement(cells: _Cells, g: int, deficit: int) -> int | None:
    """The cell to hide next in relation g: the smallest shown non-zero cell that covers the
    deficit, else the largest; the total only when no cell is left."""
    total, members = cells.groups[g]
    candidates = [i for i in members if cells.shown[i] and not cells.hidden[i]
                  and cells.value[i] > 0]
    if not candidates:
        return total if cells.shown[total] and not cells.hidden[total] else None
    enough = [i for i in candidates if cells.value[i] - cells.floor(i) >= deficit]
    if enough:
        return min(enough, key=lambda i: (cells.value[i], i))
    return max(candidates, key=lambda i: (cells.value[i], -i))


def _secondary(cells: _Cells, groups: Iterable[int]) -> None:
    """Hide complementary cells until no relation has a hidden cell it would give away."""
    work = list(groups)
    queued = set(work)
    while work:
        g = work.pop()
        queued.discard(g)
        deficit = _deficit(cells, g)
        if deficit == 0:
            continue
        i = _complement(cells, g, deficit)
        if i is None:
            continue  # nothing left to hide: the audit reports it
        cells.hidden[i], cells.reason[i] = True, "secondary"
        for h in (*cells.member_of[i], g):
            if h not in queued:
                queued.add(h)
                work.append(h)


def _repair(cells: _Cells, exposed: Sequence[int]) -> bool:
    """Hide one more cell beside each exposed cell; False when there is nothing left."""
    changed = []
    for e in exposed:
        i = _nearest_free(cells, e)
        if i is not None and not cells.hidden[i]:
            cells.hidden[i], cells.reason[i] = True, "secondary"
            changed.append(i)
    _secondary(cells, {g for i in changed for g in cells.member_of[i]})
    return bool(changed)


def _nearest_free(cells: _Cells, e: int) -> int | None:
    """A shown non-zero cell related to e (else to the hidden cells related to e, and so
    on): the smallest at or above the threshold, else the largest."""
    frontier, seen = [e], {e}
    while frontier:
        near = {i for c in frontier for g in cells.member_of[c]
                for i in (cells.groups[g][0], *cells.groups[g][1])} - seen
        free = [i for i in near if cells.shown[i] and not cells.hidden[i] and cells.value[i] > 0]
        if free:
            big = [i for i in free if cells.value[i] >= cells.limits.suppress_below]
            return min(big, key=lambda i: (cells.value[i], i)) if big else max(
                free, key=lambda i: (cells.value[i], -i))
        seen |= near
        frontier = [i for i in near if cells.unknown(i)]
    return None


def adds_up(tables: Sequence[Table], limits: Limits) -> bool:
    """Whether the tables' cells, totals and relations are consistent (every total is the
    sum of its parts), without protecting them: the check joint protection makes before
    linking a table."""
    try:
        _collect(tables, limits, use_shown=False)
    except DisclosureError:
        return False
    return True


def suppress(tables: Sequence[Table], limits: Limits, *, secondary: bool = True,
             audit: bool = True, integer: bool = False, max_rounds: int = 100,
             round_to: int | None = None) -> dict[str, pl.DataFrame]:
    """Protect tables published together. Returns each table's frame (by name) with
    `<count>_shown` ('*' or the count), `suppressed`, `reason` and its rates blanked.

    `secondary=False` gives primary suppression only (unsafe where totals are shown);
    `audit=False` the quick complementary rule only (fast, not guaranteed). With `audit`,
    the attacker is run and more cells hidden until it finds nothing; raises
    DisclosureError if cells are still exposed after `max_rounds`. `round_to` (e.g. 5) shows
    the counts left visible rounded to the nearest multiple (halves up); the suppression and
    its audit use exact counts, so rounding can only widen what an attacker can infer."""
    cells, rows = _collect(tables, limits, use_shown=False)
    _primary(cells)
    if secondary:
        _secondary(cells, range(len(cells.groups)))
    if secondary and audit:
        safe: set[int] = set()  # hiding more only widens ranges: safe cells stay safe
        for _ in range(max_rounds):
            exposed = _exposures(cells, integer, safe)
            if not exposed or not _repair(cells, [i for i, *_ in exposed]):
                break
        exposed = _exposures(cells, integer, safe)
        if exposed:
            raise DisclosureError("cells still exposed: " + "; ".join(
                _exposure(cells, *x).describe() for x in exposed[:5]))
    return {t.name: _frame(t, cells, r, round_to) for t, r in zip(tables, rows, strict=True)}


def _frame(table: Table, cells: _Cells, rows: list[int], round_to: int | None = None
           ) -> pl.DataFrame:
    hidden = [cells.hidden[i] if table.published else True for i in rows]
    reason = [cells.reason[i] if table.published else "unpublished" for i in rows]
    base = round_to or 1
    shown = [STAR if h else str((cells.value[i] + base // 2) // base * base)
             for h, i in zip(hidden, rows, strict=True)]
    frame = table.frame.with_columns(
        pl.Series(table.shown_column, shown, pl.String),
        pl.Series("suppressed", hidden, pl.Boolean),
        pl.Series("reason", reason, pl.String))
    low = pl.col("suppressed") | (pl.col(table.count).fill_null(0) < cells.limits.rate_min_count)
    return frame.with_columns(pl.when(low).then(None).otherwise(pl.col(r)).alias(r)
                              for r in table.rates)


# ------------------------------------------------------------------------------ the attacker


def audit_tables(tables: Sequence[Table], limits: Limits, *, integer: bool = False
                 ) -> list[Exposure]:
    """Attack the published tables: every hidden cell (`<count>_shown` == '*', and every
    cell of a `published=False` table) is bounded by linear programming subject to every
    shown cell and every total and margin between them. A cell is exposed where its range is
    under `limits.width` (a small count) or under 1 (any other hidden cell: fixed exactly).
    Tables without a `<count>_shown` column are taken as shown in full."""
    cells, _ = _collect(tables, limits, use_shown=True)
    for i, v in enumerate(cells.value):
        if cells.hidden[i]:
            cells.reason[i] = "primary" if limits.sensitive(v) else "secondary"
    return [_exposure(cells, *x) for x in _exposures(cells, integer, set())]


def _exposure(cells: _Cells, i: int, low: float, high: float) -> Exposure:
    table, cell = cells.where[i]
    return Exposure(table, cell, cells.value[i], cells.reason[i] or "unpublished", low, high,
                    cells.required(i))


def _exposures(cells: _Cells, integer: bool, safe: set[int]) -> list[tuple[int, float, float]]:
    """(cell, low, high) of every hidden cell whose feasible range is too narrow; the cells
    found wide enough are added to `safe` and not attacked again."""
    found = []
    for block in _blocks(cells):
        if all(i in safe or not cells.required(i) for i in block):
            continue
        exposed = _attack(cells, block, integer, safe)
        safe.update(i for i in block if cells.required(i)
                    and i not in {e for e, *_ in exposed})
        found.extend(exposed)
    return sorted(found)


def _blocks(cells: _Cells) -> list[list[int]]:
    """Connected sets of unknown cells (linked by relations)."""
    parent = {i: i for i in range(len(cells.keys)) if cells.unknown(i)}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for total, members in cells.groups:
        unknown = [i for i in (total, *members) if i in parent]
        for i in unknown[1:]:
            parent[root(i)] = root(unknown[0])
    blocks: dict[int, list[int]] = defaultdict(list)
    for i in parent:
        blocks[root(i)].append(i)
    return [b for b in blocks.values() if any(cells.required(i) for i in b)]


def _attack(cells: _Cells, block: list[int], integer: bool, safe: set[int]
            ) -> list[tuple[int, float, float]]:
    col = {i: k for k, i in enumerate(block)}
    groups = sorted({g for i in block for g in cells.member_of[i]})
    data, rows, cols, rhs = [], [], [], []
    for r, g in enumerate(groups):
        total, members = cells.groups[g]
        known = 0
        for i, sign in ((total, 1), *((m, -1) for m in members)):
            if i in col:
                data.append(sign)
                rows.append(r)
                cols.append(col[i])
            else:
                known += sign * cells.value[i]
        rhs.append(-known)
    a = csr_array((data, (rows, cols)), shape=(len(groups), len(block)))
    lp = _Programme(a, np.array(rhs, float), np.array([cells.floor(i) for i in block], float),
                    integer)
    found = []
    for i in block:
        need = cells.required(i)
        k = col[i]
        if need == 0 or i in safe or lp.seen_high[k] - lp.seen_low[k] >= need:
            continue  # two feasible solutions already this far apart: protected
        high = lp.bound(k, -1)
        if high == math.inf or high - lp.seen_low[k] >= need:
            continue
        low = lp.bound(k, 1)
        if high - low < need - 1e-6:
            found.append((i, low, high))
    return found


class _Programme:
    """The attacker's linear programme for one block: A x = rhs, x >= lower. Every solution
    found is a feasible point, so the spread of solutions seen so far proves a cell's range is
    at least that wide without solving for it (most cells are cleared this way)."""

    def __init__(self, a: csr_array, rhs: np.ndarray, lower: np.ndarray, integer: bool):
        self.a, self.rhs, self.lower, self.integer = a, rhs, lower, integer
        self.seen_low = np.full(a.shape[1], np.inf)
        self.seen_high = np.full(a.shape[1], -np.inf)

    def bound(self, k: int, sign: int) -> float:
        """min (sign 1) or max (sign -1) of x_k; +-inf where unbounded."""
        c = np.zeros(self.a.shape[1])
        c[k] = sign
        if self.a.shape[0] == 0:
            return self.lower[k] if sign > 0 else math.inf
        if self.integer:
            res = milp(c, constraints=LinearConstraint(self.a, self.rhs, self.rhs),
                       integrality=np.ones_like(c), bounds=Bounds(self.lower, np.inf))
        else:
            res = linprog(c, A_eq=self.a, b_eq=self.rhs, method="highs",
                          bounds=np.column_stack([self.lower, np.full_like(self.lower, np.inf)]))
        if res.status == 3:
            return -sign * math.inf
        if res.status != 0:
            raise DisclosureError(f"the attack's linear programme failed: {res.message}")
        self.seen_low = np.minimum(self.seen_low, res.x)
        self.seen_high = np.maximum(self.seen_high, res.x)
        return sign * float(res.fun)


# ------------------------------------------------------------------------------ exhibits


def bases(of: str | Sequence[str]) -> tuple[str, ...]:
    """The count column(s) a rate is worked out from (a change needs two)."""
    return (of,) if isinstance(of, str) else tuple(of)


def protect_exhibit(table: pl.DataFrame, counts: Sequence[str],
                    rates: Mapping[str, str | Sequence[str]], disclosure: Disclosure | None,
                    sources: Iterable[str] = ()) -> tuple[pl.DataFrame, list[str]]:
    """Primary suppression of a report exhibit with no declared totals: each count column
    becomes text ('*' or the count, null kept), each rate (rate column -> its count column
    or columns) is blanked where any of its counts is hidden or under rate_min_count. Returns
    the table and the caveats to print under it. Exhibits whose rows add up to a total shown
    elsewhere must go through :func:`suppress` with their totals declared instead."""
    limits = resolve_limits(disclosure, sources)
    out, hidden, blanked, few = table, 0, 0, {}
    for count in counts:
        if count not in table.columns:
            continue
        values = table.get_column(count).cast(pl.Float64)
        star = (((values >= 1) & (values < limits.suppress_below))
                | ((values == 0) & limits.suppress_zero)).fill_null(False)
        hidden += int(star.sum())
        few[count] = star | (values.fill_null(0) < limits.rate_min_count)
        text = pl.Series(count, [None if v is None else STAR if s else _number(v)
                                 for v, s in zip(values.to_list(), star.to_list(), strict=True)],
                         pl.String)
        out = out.with_columns(text)
    for rate, of in rates.items():
        masks = [few[c] for c in bases(of) if c in few]
        if rate in out.columns and masks:
            mask = pl.DataFrame(masks).select(pl.any_horizontal(pl.all())).to_series()
            blanked += int((mask & out.get_column(rate).is_not_null()).sum())
            out = out.with_columns(pl.when(mask).then(None).otherwise(pl.col(rate)).alias(rate))
    notes = []
    if hidden:
        notes.append(f"{hidden} count(s) from 1 to {limits.suppress_below - 1} are shown as *.")
    if blanked:
        notes.append(f"{blanked} rate(s) are not shown because fewer than "
                     f"{limits.rate_min_count} events underlie them.")
    return out, notes


def blank_rates(out: pl.DataFrame, rates: Mapping[str, str | Sequence[str]]) -> pl.DataFrame:
    """Blank each rate where any count it is worked out from is shown as *."""
    for rate, of in rates.items():
        hidden = [pl.col(c) == STAR for c in bases(of) if c in out.columns]
        if rate in out.columns and hidden:
            out = out.with_columns(pl.when(pl.any_horizontal(hidden)).then(None)
                                   .otherwise(pl.col(rate)).alias(rate))
    return out


def blank_group_shares(out: pl.DataFrame, shares: Mapping[str, Sequence[str]],
                       rates: Mapping[str, str | Sequence[str]]) -> tuple[pl.DataFrame, int]:
    """Blank every share of a group (share column -> the columns naming its group; none:
    the whole table) in which a count the share is worked out from is shown as *: the
    group's other shares give its total, and the total less the shown counts is the hidden
    one. Returns the table and how many shares were blanked."""
    blanked = 0
    for share, group in shares.items():
        hidden = [pl.col(c) == STAR for c in bases(rates.get(share, ())) if c in out.columns]
        if share not in out.columns or not hidden:
            continue
        mask = pl.any_horizontal(hidden).fill_null(False).any()
        mask = mask.over(list(group)) if group else mask
        blanked += out.select((mask & pl.col(share).is_not_null()).sum()).item()
        out = out.with_columns(pl.when(mask).then(None).otherwise(pl.col(share)).alias(share))
    return out, blanked


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
