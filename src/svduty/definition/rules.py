"""The local definition (`definition.toml`): load, validate, version and apply it.

A definition is an ordered list of rules. Each rule selects events by Home Office offence code
(force-recorded crime) or by data.police.uk category (a labelled proxy: police.uk rows carry no
offence code, weapon, flag or age), optionally narrowed by flags and victim or suspect age. An
event is serious violence when any rule matches; its primary category is the first matching rule
in file order, and `all_categories` lists every category it matched.

Every rule carries a rationale against the four s.13(6) factors. The `definition_version` is
`<version>+<first 8 hex of the content hash>`, so an edit to the counting rules without a version
bump still changes the version recorded on every output.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from svduty.definition.catalogue import (
    POLICE_UK_CATEGORIES,
    catalogue_codes,
    normalise_code,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from svduty.partnership import Partnership
    from svduty.warehouse import Warehouse

# Flag name -> how it reads on `events` (weapon value, or a boolean column of the same name).
FLAGS: dict[str, str] = {
    "knife": "weapon = 'knife or sharp'",
    "firearm": "weapon = 'firearm'",
    "domestic": "domestic",
    "alcohol": "alcohol",
    "drugs_exploitation": "drugs_exploitation",
    "night_time_economy": "night_time_economy",
    "hate": "hate",
}
FACTORS: dict[str, str] = {
    "maximum_penalty": "s.13(6)(a) the maximum penalty for the offence",
    "victim_impact": "s.13(6)(b) the impact on any victim",
    "prevalence": "s.13(6)(c) the prevalence in the area",
    "community_impact": "s.13(6)(d) the impact on the community in the area",
}
PLACEHOLDER = "TO COMPLETE"
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class DefinitionError(Exception):
    """The definition file has problems; `problems` lists each one for the user."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the definition:\n{lines}")


class Rationale(BaseModel):
    """Why the rule is serious violence, against the four s.13(6) factors."""

    model_config = ConfigDict(extra="forbid")

    maximum_penalty: str
    victim_impact: str
    prevalence: str
    community_impact: str

    @field_validator("*")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty: write the partnership's reasoning")
        return value.strip()


class Rule(BaseModel):
    """One selection of events with its category and rationale."""

    model_config = ConfigDict(extra="forbid")

    id: str
    category: str
    description: str = ""
    offence_codes: list[str] = Field(default_factory=list)
    police_uk_categories: list[str] = Field(default_factory=list)
    proxy: bool | None = None
    flags: dict[str, bool] = Field(default_factory=dict)
    exclude_flags: dict[str, bool] = Field(default_factory=dict)
    victim_max_age: int | None = Field(None, ge=0, le=120)
    suspect_max_age: int | None = Field(None, ge=0, le=120)
    harm: str | float | None = None
    rationale: Rationale

    @field_validator("offence_codes")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        return [normalise_code(c) for c in codes]

    @field_validator("police_uk_categories")
    @classmethod
    def _categories(cls, names: list[str]) -> list[str]:
        canonical = {c.lower(): c for c in POLICE_UK_CATEGORIES}
        return [canonical.get(n.strip().lower(), n) for n in names]

    @property
    def is_proxy(self) -> bool:
        return bool(self.proxy) or bool(self.police_uk_categories)

    @property
    def conditions(self) -> list[str]:
        """Plain-words conditions beyond the offence selection (flags, ages)."""
        out = [f"{k}" if v else f"not {k}" for k, v in self.flags.items()]
        out += [f"excluding {k}" if v else f"excluding not {k}" for k, v in
                self.exclude_flags.items()]
        if self.victim_max_age is not None:
            out.append(f"victim aged {self.victim_max_age} or under")
        if self.suspect_max_age is not None:
            out.append(f"suspect aged {self.suspect_max_age} or under")
        return out

    def canonical(self) -> dict[str, Any]:
        """The fields that decide which events match and how (no rationale text)."""
        return {
            "id": self.id, "category": self.category,
            "offence_codes": sorted(set(self.offence_codes)),
            "police_uk_categories": sorted(set(self.police_uk_categories)),
            "proxy": self.is_proxy, "flags": dict(sorted(self.flags.items())),
            "exclude_flags": dict(sorted(self.exclude_flags.items())),
            "victim_max_age": self.victim_max_age, "suspect_max_age": self.suspect_max_age,
            "harm": self.harm,
        }


class Meta(BaseModel):
    """The `[definition]` table: name, version and approval."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    status: Literal["draft", "approved", "superseded"] = "draft"
    approved_by: str = ""
    approved_on: date | str = ""
    template: str = ""
    description: str = ""


class Definition(BaseModel):
    """A loaded, validated local definition."""

    meta: Meta = Field(alias="definition")
    rules: list[Rule]
    source_text: str = Field("", exclude=True)
    warnings: list[str] = Field(default_factory=list, exclude=True)

    model_config = ConfigDict(populate_by_name=True)

    @property
    def content_hash(self) -> str:
        canonical = json.dumps([r.canonical() for r in self.rules], sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def definition_version(self) -> str:
        return f"{self.meta.version}+{self.content_hash[:8]}"

    @property
    def offence_codes(self) -> set[str]:
        return {code for rule in self.rules for code in rule.offence_codes}

    def uses_ages(self) -> bool:
        return any(r.victim_max_age is not None or r.suspect_max_age is not None
                   for r in self.rules)


# ---------------------------------------------------------------- loading and validation


def load_definition(
    path: Path | str, known_codes: Iterable[str] = (), strict: bool = False
) -> Definition:
    """Read and validate a definition.toml; raise :class:`DefinitionError` listing problems.

    Offence codes in neither the catalogue nor `known_codes` (e.g. the warehouse
    `offence_codes` table) are warnings (`Definition.warnings`), or errors when `strict`.
    """
    path = Path(path)
    if not path.exists():
        raise DefinitionError(str(path), ["the file does not exist; create one with "
                                          "`svduty init` or copy a template"])
    return parse_definition(path.read_text("utf-8"), str(path), known_codes, strict)


def parse_definition(
    text: str, source: str = "<definition>", known_codes: Iterable[str] = (),
    strict: bool = False,
) -> Definition:
    """Validate definition TOML text (see :func:`load_definition`)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(source, [f"not valid TOML: {exc}"]) from exc
    raw_rules = raw.get("rules") if isinstance(raw.get("rules"), list) else []
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as exc:
        raise DefinitionError(source, [_explain(e, raw_rules) for e in exc.errors()]) from exc
    problems, warnings = _check(definition, set(known_codes) | catalogue_codes())
    if strict:
        problems, warnings = problems + warnings, []
    if problems:
        raise DefinitionError(source, problems)
    definition.source_text = text
    definition.warnings = warnings
    return definition


def _where(loc: tuple[Any, ...], raw_rules: list[Any]) -> tuple[str, list[str]]:
    """'rule 'x' (rule 3)' and the remaining field path for a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        raw = raw_rules[loc[1]] if loc[1] < len(raw_rules) else {}
        rule_id = raw.get("id", "?") if isinstance(raw, dict) else "?"
        return f"rule '{rule_id}' (rule {loc[1] + 1})", [str(p) for p in loc[2:]]
    if loc and loc[0] == "definition":
        return "[definition]", [str(p) for p in loc[1:]]
    return "file", [str(p) for p in loc]


def _explain(error: dict[str, Any], raw_rules: list[Any]) -> str:
    where, fields = _where(tuple(error["loc"]), raw_rules)
    field = ".".join(fields) or "(table)"
    name = fields[-1] if fields else ""
    if error["type"] == "missing" and len(fields) == 2 and fields[0] == "rationale":
        return (f"{where}: [rules.rationale] lacks '{name}' ({FACTORS[name]}); every rule needs "
                f"all four s.13(6) factors: {', '.join(FACTORS)}")
    if error["type"] == "missing" and name == "rationale":
        return (f"{where}: no [rules.rationale]; every rule needs the four s.13(6) factors: "
                f"{', '.join(FACTORS)}")
    if error["type"] == "missing":
        return f"{where}: field '{field}' is missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field '{field}' (check the spelling; see docs/definition.md)"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: field '{field}': {message}"


def _check(definition: Definition, known: set[str]) -> tuple[list[str], list[str]]:
    """Problems (errors) and warnings that pydantic types cannot express."""
    problems: list[str] = []
    warnings: list[str] = []
    if not definition.rules:
        problems.append("no [[rules]]: a definition needs at least one rule")
    seen: set[str] = set()
    for n, rule in enumerate(definition.rules, start=1):
        where = f"rule '{rule.id}' (rule {n})"
        if rule.id in seen:
            problems.append(f"{where}: duplicate rule id '{rule.id}'; ids must be unique")
        seen.add(rule.id)
        problems += [f"{where}: {p}" for p in _rule_problems(rule)]
        unknown = sorted({c for c in rule.offence_codes if c not in known})
        if unknown:
            warnings.append(
                f"{where}: offence code(s) {', '.join(unknown)} are in neither the offence "
                "catalogue nor the warehouse offence_codes table; they will match nothing "
                "unless the force extract uses them")
        for factor, text in rule.rationale.model_dump().items():
            if PLACEHOLDER in text:
                warnings.append(f"{where}: rationale.{factor} still says '{PLACEHOLDER}'")
    problems += _approval_problems(definition.meta, warnings)
    return problems, warnings


def _rule_problems(rule: Rule) -> list[str]:
    problems: list[str] = []
    if not RULE_ID.match(rule.id):
        problems.append("field 'id': use lower-case letters, digits, '-' or '_' (e.g. 'knife-gbh')")
    if not rule.category.strip():
        problems.append("field 'category' is empty")
    problems += _selection_problems(rule)
    for field in ("flags", "exclude_flags"):
        bad = sorted(set(getattr(rule, field)) - set(FLAGS))
        if bad:
            problems.append(f"field '{field}': unknown flag(s) {', '.join(bad)}; "
                            f"valid flags: {', '.join(FLAGS)}")
    if isinstance(rule.harm, str) and rule.harm != "css":
        problems.append(f"field 'harm': '{rule.harm}' is not allowed; use \"css\" or a number")
    if isinstance(rule.harm, float | int) and rule.harm < 0:
        problems.append("field 'harm': a harm weight cannot be negative")
    return problems


def _selection_problems(rule: Rule) -> list[str]:
    if rule.offence_codes and rule.police_uk_categories:
        return ["has both offence_codes and police_uk_categories; put the police.uk proxy in a "
                "separate rule (police.uk rows have no offence codes)"]
    if not rule.offence_codes and not rule.police_uk_categories:
        return ["selects nothing: give offence_codes (Home Office codes) or "
                "police_uk_categories (a proxy)"]
    if not rule.police_uk_categories:
        return []
    problems = []
    bad = [c for c in rule.police_uk_categories if c not in POLICE_UK_CATEGORIES]
    if bad:
        problems.append(f"field 'police_uk_categories': unknown {', '.join(map(repr, bad))}; "
                        f"valid: {', '.join(POLICE_UK_CATEGORIES)}")
    if rule.proxy is False:
        problems.append("field 'proxy': a police.uk category rule is always a proxy; "
                        "set proxy = true")
    if rule.flags or rule.exclude_flags or rule.victim_max_age is not None or (
            rule.suspect_max_age is not None):
        problems.append("a police.uk proxy rule cannot use flags or ages: police.uk rows carry "
                        "no weapon, flags or ages, so the rule would match nothing")
    return problems


def _approval_problems(meta: Meta, warnings: list[str]) -> list[str]:
    if meta.status != "approved":
        return []
    problems = []
    if not meta.approved_by.strip():
        problems.append("[definition]: status is 'approved' but approved_by is empty")
    if not str(meta.approved_on).strip():
        problems.append("[definition]: status is 'approved' but approved_on is empty")
    if any(PLACEHOLDER in w for w in warnings):
        problems.append(f"[definition]: status is 'approved' but rationale text still says "
                        f"'{PLACEHOLDER}'")
    return problems


# ---------------------------------------------------------------- applying to the warehouse


def apply_definition(wh: Warehouse, definition: Definition, count: bool = True) -> int | None:
    """Make `sv_events` the events `definition` selects (a view compiled through Ibis) and
    record it in `definitions`.

    One row per event any rule matches (in area or not: analyses filter `in_area`). Atomic:
    on any error the previous `sv_events` stays. Returns the row count (`count`: counting
    runs the view).
    """
    from svduty.definition.apply import define_sv_events

    with wh.transaction() as con:
        define_sv_events(wh, definition)
        _record(con, definition)
    return wh.count("sv_events") if count else None


def sv_events_expr(wh: Warehouse, definition: Definition) -> ir.Table:
    """The Ibis expression for `sv_events` under `definition` (see :mod:`.apply`)."""
    from svduty.definition.apply import sv_events_expr as build

    return build(wh, definition)


def _record(con: Any, definition: Definition) -> None:
    """Upsert the `definitions` row and mark this version as the current one."""
    con.execute(
        """INSERT INTO definitions VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (definition_version) DO UPDATE SET toml = excluded.toml""",
        [definition.definition_version, definition.meta.version, definition.content_hash,
         definition.source_text, datetime.now()],
    )
    con.execute("INSERT OR REPLACE INTO meta VALUES ('definition_version', ?)",
                [definition.definition_version])


def apply_if_changed(wh: Warehouse, definition: Definition | None) -> bool:
    """Apply `definition` unless it is the one `sv_events` already follows (True if applied):
    a new warehouse, or `definition.toml` edited since the last reference import, ingest or
    analysis."""
    if definition is None or applied_version(wh.con) == definition.definition_version:
        return False
    apply_definition(wh, definition, count=False)
    return True


def keep_current(partnership: Partnership) -> bool:
    """Apply the partnership's `definition.toml` to its warehouse if it changed since it was
    last applied, so analyses always count under the definition on disk (True if applied)."""
    from svduty.warehouse import connect

    path = partnership.definition_path
    if not path.exists() or not partnership.warehouse_path.exists():
        return False
    definition = load_definition(path)
    with connect(partnership.warehouse_path) as con:  # read-only: the usual case, no change
        applied = applied_version(con)
    if applied == definition.definition_version:
        return False
    with partnership.warehouse() as wh:
        return apply_if_changed(wh, definition)


def applied_version(con: Any) -> str | None:
    """The version of the definition `sv_events` was last defined under (None if never), read
    on a warehouse connection (read-only or not)."""
    row = con.execute("SELECT value FROM meta WHERE key = 'definition_version'").fetchone()
    return row[0] if row else None


def current_definition(wh: Warehouse) -> Definition | None:
    """The definition last applied to this warehouse (from `meta` and `definitions`)."""
    row = wh.con.execute(
        "SELECT d.toml FROM meta m JOIN definitions d ON d.definition_version = m.value "
        "WHERE m.key = 'definition_version'").fetchone()
    if row is None or not row[0]:
        return None
    return parse_definition(row[0], "warehouse definitions table")
