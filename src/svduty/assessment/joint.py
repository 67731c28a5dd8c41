"""Joint disclosure control of the published exhibits that count the same events.

The SNA shows the same serious violence events by month, month of the year, hour and day,
category, ward and hot spot LSOA; each table is safe on its own once small counts are
hidden, but they share their grand total (and windows of months, and wards made of LSOAs), so
a `*` in one can be worked out by differencing it against another. Each exhibit declares what
it tabulates (:class:`svduty.assessment.contents.Tabulation`); here the declared count columns
of every exhibit of one population become :class:`~svduty.assessment.disclosure.Table` s
linked by their shared dimensions:

* the margins of the dimensions a table lists in full (the hour x day totals, the sum of the
  months) are added as derived, unpublished counts, and the population's grand total is
  taken as known (the findings quote it);
* months are related to the windows other tables count (the whole period, the latest 12
  months, the months a change compares, each rolling 12 months) and to the months of the year
  by partitions built from `trend-monthly`; LSOAs nest in wards (`places-lsoa-rates`, whose
  full LSOA table is linked unpublished so hot spot LSOAs cannot be subtracted from a ward);
* the night-time economy count is the sum of the hour x day cells in its window
  (:func:`nte_split`: each hour x day cell also has an `nte` value, "night-time economy
  hours" or "other hours", and the count is the margin over weekday and hour of the
  first). The school term and holiday counts are not related to hour x day: they are
  counted by date (events with a date but no time too) and term is a set of dates, not of
  weekdays and hours, so no cell of one is a sum of cells of the other beyond the grand
  total they share;
* a table or relation that does not add up (e.g. a count leaving out untimed events) is not
  linked, so it is protected on its own rather than wrongly.

:func:`protect_together` runs secondary suppression over the joint system and its LP audit
(:func:`~svduty.assessment.disclosure.suppress`), which attacks all the tables at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import polars as pl

from svduty.analysis.result import Result
from svduty.analysis.times import WEEKDAYS, nte_cells
from svduty.assessment import disclosure
from svduty.assessment.contents import NTE, SECTIONS, SV, WHOLE, Exhibit, Tabulation
from svduty.partnership import Disclosure

TOTAL = "Total"
ROW = "__row"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
# every LSOA's count: derived, never shown
LSOAS = Tabulation(SV, "events", {"lsoa21_code": "area"}, complete=("area",))
HOUR_WEEKDAY = "times-hour-weekday"
OTHER_HOURS = "other hours"  # the `nte` value of the hour x day cells outside the window


@dataclass(frozen=True)
class Linked:
    """One declared count column of one exhibit in long form: shared dimensions, `count`,
    the exhibit row it came from, and `count_shown` where it was published."""

    key: str
    tab: Tabulation
    frame: pl.DataFrame
    published: bool = True

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(sorted({*self.tab.dims.values(), *self.tab.fixed}))

    def table(self, measure: str, name: str | None = None, **extra: Any) -> disclosure.Table:
        return disclosure.Table(name or f"{self.key}:{self.tab.count}", self.frame, self.dims,
                                measure=measure, published=self.published, **extra)


@dataclass
class Joint:
    """The linked tables of the published edition and what protecting them gave."""

    tables: list[disclosure.Table]
    limits: disclosure.Limits
    shown: dict[str, dict[str, dict[int, str | None]]]  # exhibit -> count -> row -> text
    unlinked: list[str]  # tables or relations left out because they did not add up


def exhibits() -> list[Exhibit]:
    """Every exhibit of the contents that declares what it tabulates."""
    return [x for s in SECTIONS for x in s.exhibits if x.tabulates]


# ------------------------------------------------------------------------------ long form


def tabulate(key: str, tab: Tabulation, rows: pl.DataFrame,
             shown: pl.DataFrame | None = None, published: bool = True) -> Linked | None:
    """The tabulation's cells from an exhibit's rows (every column); `shown` is the exhibit
    as published (same rows, count columns as text) to attach `count_shown`."""
    if tab.count not in rows.columns or any(c not in rows.columns for c in tab.dims):
        return None
    rows = rows.with_row_index(ROW)
    if shown is not None:
        rows = rows.with_columns(shown.get_column(tab.count).cast(pl.String)
                                 .alias("count_shown"))
    if tab.where is not None:
        rows = rows.filter(tab.where)
    columns = [_dimension(c, d, tab) for c, d in tab.dims.items()]
    columns += [pl.lit(v).alias(d) for d, v in tab.fixed.items()]
    keep = [ROW, *(["count_shown"] if shown is not None else [])]
    frame = rows.select(*columns, pl.col(tab.count).cast(pl.Int64).alias("count"), *keep)
    frame = frame.filter(pl.col("count").is_not_null())  # nothing shown: no cell
    return Linked(key, tab, frame, published)


def _dimension(column: str, dim: str, tab: Tabulation) -> pl.Expr:
    value = pl.col(column).cast(pl.String)
    if dim in tab.totals:
        value = pl.when(value == tab.totals[dim]).then(pl.lit(TOTAL)).otherwise(value)
    if dim in tab.label:
        value = pl.format(tab.label[dim], value)
    return value.alias(dim)


def margins(linked: Linked) -> Linked | None:
    """The totals of a table over the dimensions it lists in full (derived, unpublished)."""
    complete = [d for d in linked.tab.complete if d in linked.dims]
    if not complete:
        return None
    leaves = linked.frame.filter(*(pl.col(d) != TOTAL for d in complete))
    parts = []
    for mask in range(1, 1 << len(complete)):
        summed = [d for i, d in enumerate(complete) if mask >> i & 1]
        keep = [d for d in linked.dims if d not in summed]
        agg = (leaves.group_by(keep).agg(pl.col("count").sum()) if keep
               else leaves.select(pl.col("count").sum()))
        parts.append(agg.with_columns(pl.lit(TOTAL).alias(d) for d in summed)
                     .select(*linked.dims, "count"))
    frame = pl.concat(parts).with_columns(pl.lit(None, pl.UInt32).alias(ROW))
    return Linked(f"{linked.key}:margins", linked.tab, frame, published=False)


# ------------------------------------------------------------------------------ relations


def period_partitions(results: Mapping[str, Result]) -> list[dict[str, str | None]]:
    """How months add up to the windows other tables count, from `trend-monthly` (the
    partnership's monthly counts, complete months flagged): the whole period, each month of
    the year, the latest 12 months, the months a change compares (and the year before), and
    each rolling 12 months. A window's own value is its root (it has no parent)."""
    monthly = results.get("trend-monthly")
    if monthly is None or monthly.table.is_empty():
        return []
    t = monthly.table.filter((pl.col("level") == "partnership")
                             & (pl.col("sv_category") == "All serious violence")).sort("month")
    months = [str(m) for m in t.get_column("month").cast(pl.String)]
    complete = dict(zip(months, t.get_column("month_complete").to_list(), strict=True))
    dates = {m: date.fromisoformat(m[:10]) for m in months}
    by_date = {d: m for m, d in dates.items()}
    year_before = {m: by_date.get(date(d.year - 1, d.month, 1)) for m, d in dates.items()}
    latest = [m for m in months[-12:] if complete[m]]
    after = [m for m in latest if year_before[m] and complete[year_before[m]]]
    out: list[dict[str, str | None]] = [
        {m: None for m in months},
        {**{m: MONTHS[dates[m].month - 1] for m in months}, **dict.fromkeys(MONTHS)},
        dict.fromkeys(latest, "latest 12 months"),
        dict.fromkeys(after, "compared: after"),
        dict.fromkeys((year_before[m] for m in after), "compared: before")]
    for i in range(11, len(months)):
        out.append(dict.fromkeys(months[i - 11:i + 1], f"12 months to {months[i]}"))
    return [p for p in out if p]


def area_hierarchy(results: Mapping[str, Result]) -> dict[str, str]:
    """LSOA -> the (best-fit) ward its events are counted in, from `places-lsoa-rates`."""
    lsoas = results.get("places-lsoa-rates")
    if lsoas is None or "ward_code" not in lsoas.table.columns:
        return {}
    return dict(lsoas.table.select("lsoa21_code", "ward_code").drop_nulls().iter_rows())


def nte_split(linked: list[Linked]) -> list[Linked]:
    """Where a table counts events in night-time economy hours (a fixed `nte`), the full
    hour x day table (`times-hour-weekday`) gets a third dimension, `nte`: each cell marked
    "night-time economy hours" or "other hours" by the window the `times-night-time-economy`
    Result counts (:func:`svduty.analysis.times.nte_cells`), its margins taken over it too.
    The margin of the window's cells over weekday and hour is then the night-time economy
    count, and each cell sits in relations with the other cells of its own window, so a
    hidden cell is paired with one the count cannot tell apart from it. Both Results leave
    out events without a time; build_system links the count only where it adds up. Without
    a full hour x day table the counts by `nte` are dropped (protected on their own)."""
    at = next((i for i, x in enumerate(linked) if x.key == HOUR_WEEKDAY
               and {"weekday", "hour"} <= set(x.dims) and x.published), None)
    if at is None or not any("nte" in x.tab.fixed for x in linked):
        return [x for x in linked if "nte" not in x.tab.fixed]
    cells = linked[at]
    window = {(WEEKDAYS[d - 1], str(h)) for d, h in nte_cells()}
    where = [(w, h) in window for w, h in cells.frame.select("weekday", "hour").iter_rows()]
    frame = cells.frame.with_columns(pl.Series(
        "nte", [NTE if x else OTHER_HOURS for x in where], pl.String))
    tab = replace(cells.tab, dims={**cells.tab.dims, "nte": "nte"},
                  complete=(*cells.tab.complete, "nte"))
    split = replace(cells, tab=tab, frame=frame)
    return [y for i, x in enumerate(linked) if x.key != f"{HOUR_WEEKDAY}:margins"
            for y in ([split, *filter(None, [margins(split)])] if i == at else [x])]


def _single_csp(linked: list[Linked]) -> list[Linked]:
    """Where every table names one CSP, that CSP is the whole population."""
    names = {v for x in linked if "csp" in x.frame.columns
             for v in x.frame.get_column("csp").drop_nulls().unique()} - {TOTAL}
    if len(names) != 1:
        return linked
    return [replace(x, frame=x.frame.with_columns(pl.lit(TOTAL).alias("csp")))
            if "csp" in x.frame.columns else x for x in linked]


# ------------------------------------------------------------------------------ the system


def linked_tables(results: Mapping[str, Result],
                  published: Mapping[str, pl.DataFrame] | None = None,
                  specs: Sequence[Exhibit] | None = None) -> tuple[list[Linked], dict]:
    """Every declared tabulation of the exhibits with a Result (published ones carry
    `count_shown` from `published`, exhibit key -> its table as shown), their margins, the
    derived LSOA table, and the partitions and hierarchy that relate them."""
    linked: list[Linked] = []
    for spec in specs if specs is not None else exhibits():
        result = results.get(spec.result)
        if result is None or result.table.is_empty():
            continue
        rows = spec.rows(result.table)
        shown = published.get(spec.key) if published is not None else None
        if published is not None and shown is None:
            continue
        for tab in spec.tabulates:
            x = tabulate(spec.key, tab, rows, shown)
            if x is not None:
                linked += [x, *filter(None, [margins(x)])]
    linked = nte_split(linked)
    lsoas = results.get("places-lsoa-rates")
    if lsoas is not None and any(x.tab.dims.get("lsoa21_code") for x in linked):
        x = tabulate("places-lsoa-rates", LSOAS, lsoas.table, published=False)
        if x is not None:  # first, so wards are whole before hot spot LSOAs join them
            linked = [x, *filter(None, [margins(x)]), *linked]
    relations = {"hierarchy": {"area": area_hierarchy(results)},
                 "partitions": {"month": period_partitions(results)}}
    return _single_csp(linked), relations


def build_system(linked: list[Linked], relations: dict
                 ) -> tuple[list[disclosure.Table], list[str]]:
    """The joint system: tables of one population share a measure (their grand total) if
    they add up with the rest; one that does not gets a measure of its own, and a month
    partition that does not add up is left out (its window stands alone). An exhibit that
    does not add up with its population may add up with a table already standing alone
    (the night-time economy counts with an hour x day table that leaves out untimed events
    the grand total has): it then shares that table's measure."""
    limits, unlinked = disclosure.Limits(), []
    hierarchy, partitions = relations["hierarchy"], relations["partitions"]
    named = {v for p in partitions.get("month", []) for pair in p.items() for v in pair}
    base: list[disclosure.Table] = [  # months and windows kept out of the plain sum
        disclosure.Table("relations", pl.DataFrame({"count": []}, schema={"count": pl.Int64}),
                         (), hierarchy=hierarchy, published=False,
                         partitions={"month": [{v: ("alone", v) for v in named - {None}}]})]
    everything = [*base, *(x.table(x.tab.population) for x in linked), *(
        disclosure.Table(f"partition {i}", base[0].frame[:0], (), partitions={"month": [p]},
                         published=False) for i, p in enumerate(partitions.get("month", [])))]
    if disclosure.adds_up(everything, limits):  # the usual case: one check, no greedy linking
        total = _grand_total(everything)
        return ([*everything, total] if total is not None else everything), unlinked
    alone: list[str] = []  # the measures of tables standing alone, in order
    for exhibit in _by_exhibit(linked):
        populations = {x.tab.population for x in exhibit}
        tried = [None, *(m for m in alone if len(populations) == 1
                         and m.startswith(f"{min(populations)}:"))]
        measure = next((m for m in tried if disclosure.adds_up(
            [*base, *(x.table(m or x.tab.population) for x in exhibit)], limits)), "")
        if measure != "":
            base += [x.table(measure or x.tab.population) for x in exhibit]
            if measure:
                unlinked.append(f"{_exhibit(exhibit[0])} (with {measure})")
            continue
        for group in _with_margins(exhibit):  # link what adds up, one count at a time
            tables = [x.table(x.tab.population) for x in group]
            if not disclosure.adds_up([*base, *tables], limits):
                own = f"{group[0].tab.population}:{group[0].key}"
                tables = [x.table(own) for x in group]  # the count with its margins
                if not disclosure.adds_up([*base, *tables], limits):
                    tables = [x.table(f"{x.tab.population}:{x.key}") for x in group]
                unlinked.append(tables[0].name)
                alone.append(tables[0].measure or own)
            base += tables
    for p in partitions.get("month", []):
        trial = disclosure.Table(f"partition {len(base)}", base[0].frame[:0], (),
                                 partitions={"month": [p]}, published=False)
        if disclosure.adds_up([*base, trial], limits):
            base.append(trial)
        else:
            roots = {v for v in p.values() if v is not None}
            unlinked.append(f"months of {', '.join(sorted(roots)) or WHOLE}")
    total = _grand_total(base)
    return ([*base, total] if total is not None else base), unlinked


def _by_exhibit(linked: list[Linked]) -> list[list[Linked]]:
    """The tabulations of each exhibit, margins included, in order."""
    groups: dict[str, list[Linked]] = {}
    for x in linked:
        groups.setdefault(_exhibit(x), []).append(x)
    return list(groups.values())


def _exhibit(x: Linked) -> str:
    """The exhibit a linked table belongs to (its margins and derived tables with it)."""
    return x.key.split(":")[0]


def _with_margins(linked: list[Linked]) -> list[list[Linked]]:
    """Each tabulation with its margins (they link or stand alone together)."""
    groups: list[list[Linked]] = []
    for x in linked:
        if groups and x.key == f"{groups[-1][0].key}:margins":
            groups[-1].append(x)
        else:
            groups.append([x])
    return groups


def _grand_total(tables: list[disclosure.Table]) -> disclosure.Table | None:
    """The population's grand total as published (the findings quote it)."""
    for t in tables:
        if t.measure != SV or not t.dimensions:
            continue
        whole = t.frame.filter(*(pl.col(d) == TOTAL for d in t.dimensions))
        if whole.height:
            return disclosure.Table("grand total", whole.select("count").head(1), (),
                                    measure=SV)
    return None


def protect_together(results: Mapping[str, Result], disclosure_config: Disclosure | None
                     ) -> Joint | None:
    """Secondary suppression over every published exhibit of the same events at once, with
    the LP audit attacking them all together. None where nothing is declared or the system
    cannot be protected (the exhibits then fall back to protection one by one)."""
    linked, relations = linked_tables(results)
    if not any(x.published for x in linked):
        return None
    tables, unlinked = build_system(linked, relations)
    limits = disclosure.resolve_limits(disclosure_config, _sources(results, linked))
    try:
        out = disclosure.suppress(tables, limits)
    except disclosure.DisclosureError:
        return None
    return Joint(tables, limits, _shown_by_exhibit(linked, out), unlinked)


def _sources(results: Mapping[str, Result], linked: Iterable[Linked]) -> list[str]:
    names = {x.key for x in linked}
    return sorted({s for spec in exhibits() if spec.key in names
                   for s in results[spec.result].meta.sources})


def _shown_by_exhibit(linked: list[Linked], out: Mapping[str, pl.DataFrame]
                      ) -> dict[str, dict[str, dict[int, str | None]]]:
    """Exhibit -> count column -> exhibit row -> the text shown (None: no count)."""
    shown: dict[str, dict[str, dict[int, str | None]]] = {}
    for x in linked:
        if not x.published:
            continue
        column = shown.setdefault(x.key, {}).setdefault(x.tab.count, {})
        frame = out[f"{x.key}:{x.tab.count}"]
        for row, count, text in frame.select(ROW, "count", "count_shown").iter_rows():
            column[row] = None if count is None else text
    return shown
