"""Apply a local definition to the warehouse: `sv_events` as a view compiled by Ibis.

`sv_events` is not stored: it is the definition's rules compiled to SQL over `events` and
`involvements`, so it is always in step with the data (a new load needs no re-derivation)
and a new definition takes effect at once. Analyses materialise it once per run. The view's
SQL is the definition's query of record; each row carries the definition version.

How the query is built (fast on ~1M events, see docs/decisions/0003-definition-rules.md):

1. Two small lookup tables (`definition_offence_masks`, `definition_category_masks`,
   written when the definition is applied) give, for each offence code and each police.uk
   category, a bit mask of the rules that select it (62 rules per BIGINT word).
   Inner-joining events to them keeps only candidate events and replaces one IN list per
   rule with one hash join; police.uk categories are looked up only for events without an
   offence code.
2. Where a rule uses ages, the youngest victim and suspect age per event come from
   `involvements` (one grouped pass) and are left-joined to the candidates.
3. Each rule's match is a bit test plus its flag and age conditions. The primary rule is the
   first match; `all_categories` lists each matched category once, in file order.
"""

from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING, Any

import ibis
import polars as pl

from svduty.definition.catalogue import css_weights

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis import BaseBackend

    from svduty.definition.rules import Definition, Rule
    from svduty.warehouse import Warehouse

BITS = 62
# The definition counts crimes recorded by the police. Other partners' events (ED
# attendances, youth-justice offences, ...) describe the same violence from another side and
# are analysed beside it, never added to it (that would count one assault twice).
POLICE_SOURCES = ("police-recorded", "police-uk")
SUSPECT_ROLES = ("suspect", "offender")
EVENT_COLUMNS = ("event_id", "offence_code", "police_uk_category", "weapon", "domestic",
                 "alcohol", "drugs_exploitation", "night_time_economy", "hate")


MASK_TABLES = {"offence_codes": "definition_offence_masks",
               "police_uk_categories": "definition_category_masks"}


def define_sv_events(wh: Warehouse, definition: Definition) -> None:
    """Make `sv_events` the view of the events `definition` selects (inside the caller's
    transaction): write the rule masks, compile the expression, replace the view."""
    for attribute, table in MASK_TABLES.items():
        wh.con.register("_masks", _masks(definition, attribute).to_arrow())
        wh.con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _masks")
        wh.con.unregister("_masks")
    sql = ibis.to_sql(_expression(wh.ibis(), definition), dialect="duckdb")
    wh.con.execute(f"CREATE OR REPLACE VIEW sv_events AS {sql}")


def sv_events_expr(wh: Warehouse, definition: Definition) -> ir.Table:
    """The Ibis expression for `sv_events` under `definition` (one row per matched event);
    the mask tables must hold this definition's masks (see :func:`define_sv_events`)."""
    return _expression(wh.ibis(), definition)


def _expression(backend: BaseBackend, definition: Definition) -> ir.Table:
    rules = definition.rules
    events = _candidates(backend, definition)
    matches = [_predicate(i, rule, events) for i, rule in enumerate(rules)]
    first = ibis.cases(*[(m, i) for i, m in enumerate(matches)])
    matched = events.filter(reduce(lambda a, b: a | b, matches))
    index = matched.mutate(_rule=first, _cats=_all_categories(matches, rules))
    return index.select(
        event_id=index.event_id,
        sv_category=_lookup(index._rule, [r.category for r in rules], "string"),
        rule_id=_lookup(index._rule, [r.id for r in rules], "string"),
        all_categories=index._cats,
        harm_weight=_harm(index, rules),
        proxy=_lookup(index._rule, [r.is_proxy for r in rules], "boolean"),
        definition_version=ibis.literal(definition.definition_version),
    )


# ---------------------------------------------------------------- candidate events


def _words(definition: Definition) -> list[str]:
    return [f"_w{k}" for k in range((len(definition.rules) - 1) // BITS + 1)]


def _masks(definition: Definition, attribute: str) -> pl.DataFrame:
    """key -> one bit per rule selecting it (`attribute`: offence_codes or
    police_uk_categories)."""
    words = _words(definition)
    masks: dict[str, list[int]] = {}
    for i, rule in enumerate(definition.rules):
        for key in set(getattr(rule, attribute)):
            masks.setdefault(key, [0] * len(words))[i // BITS] |= 1 << (i % BITS)
    data: dict[str, list[Any]] = {"_key": list(masks)}
    for k, word in enumerate(words):
        data[word] = [bits[k] for bits in masks.values()]
    return pl.DataFrame(data, schema={"_key": pl.String, **dict.fromkeys(words, pl.Int64)})


def _candidates(backend: BaseBackend, definition: Definition) -> ir.Table:
    """Events some rule could select, with rule bit masks and (if needed) youngest ages."""
    events = backend.table("events")
    events = events.filter(events.source.isin(POLICE_SOURCES)).select(*EVENT_COLUMNS)
    words = _words(definition)
    parts = []
    if any(r.offence_codes for r in definition.rules):
        table = backend.table(MASK_TABLES["offence_codes"])
        joined = events.join(table, events.offence_code == table._key)
        parts.append(joined.select(*EVENT_COLUMNS, *words))
    if any(r.police_uk_categories for r in definition.rules):
        table = backend.table(MASK_TABLES["police_uk_categories"])
        uncoded = events.filter(events.offence_code.isnull())
        joined = uncoded.join(table, uncoded.police_uk_category == table._key)
        parts.append(joined.select(*EVENT_COLUMNS, *words))
    candidates = reduce(lambda a, b: a.union(b, distinct=False), parts)
    if definition.uses_ages():
        candidates = _with_ages(backend, candidates, definition)
    return candidates


def _with_ages(backend: BaseBackend, events: ir.Table, definition: Definition) -> ir.Table:
    """Add `victim_min_age` and `suspect_min_age` (youngest victim / suspect or offender).

    Only people at or under the highest age limit in any rule matter, so the rest are
    dropped before grouping (a null age then means "no one young enough").
    """
    limit = max(a for r in definition.rules for a in (r.victim_max_age, r.suspect_max_age)
                if a is not None)
    inv = backend.table("involvements")
    inv = inv.filter(inv.age <= limit)
    role = inv.role.lower()
    ages = inv.group_by("event_id").aggregate(
        victim_min_age=inv.age.min(where=role == "victim"),
        suspect_min_age=inv.age.min(where=role.isin(SUSPECT_ROLES)),
    )
    joined = events.left_join(ages, events.event_id == ages.event_id)
    return joined.select(*[joined[c] for c in events.columns],
                         ibis._.victim_min_age, ibis._.suspect_min_age)


# ---------------------------------------------------------------- rule predicates


def _flag(events: ir.Table, name: str) -> ir.BooleanValue:
    """The flag as a never-null boolean (unknown counts as not flagged)."""
    if name == "knife":
        value = events.weapon == "knife or sharp"
    elif name == "firearm":
        value = events.weapon == "firearm"
    else:
        value = events[name]
    return ibis.coalesce(value, False)


def _predicate(i: int, rule: Rule, events: ir.Table) -> ir.BooleanValue:
    """True where rule `i` matches an event (never null)."""
    bit = ibis.literal(1 << (i % BITS), type="int64")
    parts = [(events[f"_w{i // BITS}"] & bit) != 0]
    if rule.police_uk_categories:
        parts.append(events.offence_code.isnull())
    parts += [_flag(events, f) == want for f, want in rule.flags.items()]
    parts += [_flag(events, f) != want for f, want in rule.exclude_flags.items()]
    if rule.victim_max_age is not None:
        parts.append(ibis.coalesce(events.victim_min_age <= rule.victim_max_age, False))
    if rule.suspect_max_age is not None:
        parts.append(ibis.coalesce(events.suspect_min_age <= rule.suspect_max_age, False))
    return reduce(lambda a, b: a & b, parts)


def _all_categories(matches: list[ir.BooleanValue], rules: list[Rule]) -> ir.ArrayValue:
    """Every category matched, once each, in file order."""
    by_category: dict[str, ir.BooleanValue] = {}
    for match, rule in zip(matches, rules, strict=True):
        prior = by_category.get(rule.category)
        by_category[rule.category] = match if prior is None else prior | match
    items = [ibis.ifelse(m, cat, ibis.null("string")) for cat, m in by_category.items()]
    return ibis.array(items).filter(lambda x: x.notnull())


def _lookup(index: ir.IntegerValue, values: list[Any], dtype: str) -> ir.Value:
    """`values[index]` in the engine (a CASE on the rule index)."""
    return index.substitute(dict(enumerate(values)), else_=ibis.null(dtype))


def _harm(index: ir.Table, rules: list[Rule]) -> ir.FloatingValue:
    """The primary rule's harm: the offence's CSS weight, a fixed number, or null."""
    css_rules = [i for i, r in enumerate(rules) if r.harm == "css"]
    fixed = {i: float(r.harm) for i, r in enumerate(rules) if isinstance(r.harm, float | int)}
    value = (index._rule.substitute(fixed, else_=ibis.null("float64")) if fixed
             else ibis.null("float64"))
    if not css_rules:
        return value
    css = index.offence_code.substitute(css_weights(), else_=ibis.null("float64"))
    return ibis.ifelse(index._rule.isin(css_rules), css, value)
