"""Person linkage across partner sources, from the hashed tokens in `person_tokens`.

Each source builds its `person_key` from its own strongest identifier (NHS number in health,
UPN in schools, PNC id in youth justice and probation), so one person has a different key in
each source. This module links keys across sources with deterministic rules on the hashed
linkage tokens and joins the links into one cross-source person id (connected components,
union-find). A pair of keys is linked when any rule holds:

- ``shared identifier``: the same NHS number, UPN or PNC id token;
- ``dob + forename + surname``: the same date of birth, forename and surname tokens;
- ``dob + forename soundex + surname soundex``: the same date of birth and Soundex codes of
  both names (catches misspelt names);
- ``swapped dob + forename + surname``: one record's date of birth with day and month swapped
  equals the other's, and forename and surname tokens agree (catches transposed dates).

Splink (probabilistic linkage, the project's intended tool) is not installed; these rules are
its deterministic stand-in and say so in every Result that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import polars as pl

from svduty.analysis.data import Data

IDENTIFIER_FIELDS = ("nhs_number_token", "upn_token", "pnc_id_token")
NAME_FIELDS = ("forename_token", "surname_token", "forename_soundex", "surname_soundex")
RULES = {
    "shared identifier": "the same NHS number, UPN or PNC id token",
    "dob + forename + surname": "the same date of birth, forename and surname tokens",
    "dob + forename soundex + surname soundex":
        "the same date of birth and the same Soundex codes of forename and surname",
    "swapped dob + forename + surname":
        "one date of birth equals the other with day and month swapped; forename and surname "
        "tokens agree",
}
METHOD = ("Deterministic multi-rule record linkage on hashed tokens (Splink, the intended "
          "probabilistic tool, is not installed). Keys from different sources are linked when "
          "any rule holds: " + "; ".join(f"{k} ({v})" for k, v in RULES.items())
          + ". Linked keys are joined into one person (connected components).")
CAVEATS = [
    "People are linked across sources by deterministic rules on hashed identifiers, not by "
    "probabilistic (Splink) linkage: records with two errors at once (say a misspelt surname "
    "and a swapped date of birth) are missed, and two different people who share a date of "
    "birth and name would be wrongly joined.",
    "Sources with no linkage tokens (the police extract carries person keys only) cannot be "
    "linked to other sources; keys within one source are not merged.",
]


@dataclass
class Linkage:
    """Cross-source person ids and the matched pairs behind them."""

    ids: pl.DataFrame  # source, person_key, person_id (every key with tokens)
    pairs: pl.DataFrame  # source_a, key_a, source_b, key_b, rule

    def person_ids(self, keys: pl.DataFrame) -> pl.DataFrame:
        """`keys` (columns source, person_key, ...) with `person_id`; keys without tokens
        keep an id of their own."""
        joined = keys.join(self.ids, on=["source", "person_key"], how="left")
        own = pl.concat_str([pl.col("source"), pl.lit(":"), pl.col("person_key")])
        return joined.with_columns(pl.col("person_id").fill_null(own))

    def rule_counts(self) -> pl.DataFrame:
        """Matched pairs by rule and pair of sources (a pair can meet several rules)."""
        return (self.pairs.group_by("rule", "source_a", "source_b").len("pairs")
                .sort("rule", "source_a", "source_b"))


def link(data: Data) -> Linkage:
    """Link every key in `person_tokens` across sources; run once and reuse."""
    t = data.table("person_tokens").select("source", "person_key", "field", "token")
    frames = [data.fetch(identifier_pairs(t), ("person_tokens",)),
              data.fetch(name_pairs(t), ("person_tokens",))]
    pairs = ordered(pl.concat([f.select("source_a", "key_a", "source_b", "key_b", "rule")
                               for f in frames])).unique()
    keys = data.fetch(t.select("source", "person_key").distinct(), ("person_tokens",))
    return Linkage(components(keys, pairs), pairs)


def ordered(pairs: pl.DataFrame) -> pl.DataFrame:
    """Each pair written with the alphabetically first source (then key) as `a`."""
    flip = (pl.col("source_a") > pl.col("source_b")) | (
        (pl.col("source_a") == pl.col("source_b")) & (pl.col("key_a") > pl.col("key_b")))
    return pairs.select(
        *(pl.when(flip).then(pl.col(f"{c}_b")).otherwise(pl.col(f"{c}_a")).alias(f"{c}_a")
          for c in ("source", "key")),
        *(pl.when(flip).then(pl.col(f"{c}_a")).otherwise(pl.col(f"{c}_b")).alias(f"{c}_b")
          for c in ("source", "key")),
        "rule")


def _side(t: ir.Table, suffix: str) -> ir.Table:
    return t.rename({f"source_{suffix}": "source", f"key_{suffix}": "person_key",
                     f"field_{suffix}": "field", f"token_{suffix}": "token"})


def identifier_pairs(t: ir.Table) -> ir.Table:
    """Key pairs from different sources sharing an NHS number, UPN or PNC id token."""
    ids = t.filter(t.field.isin(IDENTIFIER_FIELDS))
    a, b = _side(ids, "a"), _side(ids, "b")
    j = a.inner_join(b, [a.field_a == b.field_b, a.token_a == b.token_b,
                         a.source_a < b.source_b])
    return j.select("source_a", "key_a", "source_b", "key_b",
                    rule=ibis.literal("shared identifier")).distinct()


def name_pairs(t: ir.Table) -> ir.Table:
    """Key pairs blocked on date of birth (or swapped date of birth) whose names agree."""
    dob = t.filter(t.field == "dob_token")
    either = t.filter(t.field.isin(("dob_token", "dob_swapped")))
    a, b = _side(dob, "a"), _side(either, "b")
    block = a.inner_join(b, [a.token_a == b.token_b, a.source_a != b.source_b])
    block = block.filter((block.field_b == "dob_swapped") | (block.source_a < block.source_b))
    cand = block.select("source_a", "key_a", "source_b", "key_b",
                        swapped=block.field_b == "dob_swapped").distinct()
    names = t.filter(t.field.isin(NAME_FIELDS))
    na = _side(names, "a").select("source_a", "key_a", "field_a", "token_a")
    nb = _side(names, "b").select("source_b", "key_b", "field_b", "token_b")
    j = cand.inner_join(na, ["source_a", "key_a"])
    j = j.inner_join(nb, [j.source_b == nb.source_b, j.key_b == nb.key_b,
                          j.field_a == nb.field_b, j.token_a == nb.token_b])
    agree = j.group_by("source_a", "key_a", "source_b", "key_b", "swapped").aggregate(
        forename=(j.field_a == "forename_token").any(),
        surname=(j.field_a == "surname_token").any(),
        forename_sx=(j.field_a == "forename_soundex").any(),
        surname_sx=(j.field_a == "surname_soundex").any())
    exact = agree.forename & agree.surname
    sounds = agree.forename_sx & agree.surname_sx
    rule = (ibis.cases((~agree.swapped & exact, "dob + forename + surname"),
                       (~agree.swapped & sounds, "dob + forename soundex + surname soundex"),
                       (agree.swapped & exact, "swapped dob + forename + surname"),
                       else_=None))
    out = agree.select("source_a", "key_a", "source_b", "key_b", rule=rule)
    return out.filter(out.rule.notnull())


def components(keys: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Union-find over linked pairs: each key's person id is the smallest member of its
    component, written `source:person_key`."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for sa, ka, sb, kb in pairs.select("source_a", "key_a", "source_b", "key_b").iter_rows():
        ra, rb = find(f"{sa}:{ka}"), find(f"{sb}:{kb}")
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members = keys.with_columns(
        pl.concat_str([pl.col("source"), pl.lit(":"), pl.col("person_key")]).alias("member"))
    ids = [find(m) for m in members.get_column("member").to_list()]
    return members.select("source", "person_key", pl.Series("person_id", ids, pl.String))
