"""The local definition: catalogue, templates, validation, versioning, sv_events and evidence."""

from __future__ import annotations

import json
import math
import tomllib
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from svduty.definition.catalogue import OFFENCE_GROUPS, load_catalogue, normalise_code
from svduty.definition.cli import app as definition_app
from svduty.definition.evidence import (
    BASIS_CODES,
    BASIS_PROXY,
    definition_evidence,
    rate_ratio_p_value,
)
from svduty.definition.rules import (
    FACTORS,
    DefinitionError,
    apply_definition,
    current_definition,
    load_definition,
    parse_definition,
)
from svduty.definition.templates import TEMPLATES, load_template, template_text, write_template
from svduty.warehouse import Warehouse

AREA_LAD = "E06000026"
IN_LSOA, OUT_LSOA = "E01000001", "E01000002"

RATIONALE = """
[rules.rationale]
maximum_penalty = "life"
victim_impact = "serious"
prevalence = "some"
community_impact = "fear"
"""


def rule_toml(body: str, rationale: str = RATIONALE) -> str:
    return f'[definition]\nname = "T"\nversion = "1.0"\n\n[[rules]]\n{body}\n{rationale}'


# ---------------------------------------------------------------- catalogue


def test_catalogue_covers_reference_codes_with_penalties():
    cat = load_catalogue()
    codes = set(cat.get_column("code"))
    reference = {"1", "4.1", "4.2", "4.10", "2", "5D", "5E", "8N", "8P", "8S", "4.3", "4.4",
                 "4.6", "4.7", "4.8", "4.9", "37.1", "3A", "3B", "105A", "105B", "104", "11A",
                 "13", "36", "106", "8L", "8M", "8Q", "34A", "34B", "10A", "10B", "10C", "10D",
                 "81", "90", "19C", "19D", "19E", "19F", "19G", "19H", "17A", "17B", "20A", "20B",
                 "22A", "56A", "56B", "29A", "31A", "9A", "9B", "62A", "92A",
                 "5A", "5B", "5C", "8F", "8G", "8H", "8J", "8K"}
    assert reference <= codes
    assert cat.get_column("code").is_unique().all()
    assert set(cat.get_column("offence_group")) == set(OFFENCE_GROUPS)
    assert cat.filter(pl.col("statute").is_null() | pl.col("max_penalty").is_null()).is_empty()
    # life is `life = true` with no years; everything else custodial has years
    assert cat.filter(pl.col("life") & pl.col("max_penalty_years").is_not_null()).is_empty()
    assert cat.filter(pl.col("verified").str.contains("legislation.gov.uk").not_()).is_empty()
    assert set(cat.filter(pl.col("legacy")).get_column("code")) == {
        "5A", "5B", "5C", "8F", "8G", "8H", "8J", "8K"}


def test_catalogue_penalties_and_weights():
    cat = {r["code"]: r for r in load_catalogue().iter_rows(named=True)}
    assert cat["1"]["life"] and "1965 s.1(1)" in cat["1"]["statute"]
    assert cat["5D"]["life"] and "s.18" in cat["5D"]["statute"]
    assert cat["3B"]["max_penalty_years"] == 10 and "s.16" in cat["3B"]["statute"]
    assert cat["10D"]["max_penalty_years"] == 4 and "s.139(6)" in cat["10D"]["statute"]
    assert cat["8Q"]["max_penalty_years"] == 10 and "s.4A(5)" in cat["8Q"]["statute"]
    assert cat["34B"]["police_uk_category"] == "Robbery"
    assert cat["10D"]["police_uk_category"] == "Possession of weapons"
    assert cat["1"]["css_weight"] == 7979 and cat["8N"]["css_weight"] == 184
    assert "UNVERIFIED" in cat["1"]["css_source"]
    assert cat["34B"]["css_weight"] is None


@pytest.mark.parametrize(("raw", "code"), [("4/1", "4.1"), ("004/10", "4.10"), (" 8n ", "8N"),
                                          ("034B", "34B"), ("105A", "105A")])
def test_normalise_code(raw, code):
    assert normalise_code(raw) == code


# ---------------------------------------------------------------- templates


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_load_with_full_rationale(name, tmp_path):
    path = tmp_path / "definition.toml"
    write_template(path, name, partnership_name='Safer "Quoted" — Town')
    d = load_definition(path)
    assert d.meta.name == 'Safer "Quoted" — Town'
    assert d.meta.template == name and d.meta.status == "draft"
    assert d.rules and len({r.id for r in d.rules}) == len(d.rules)
    for rule in d.rules:
        values = rule.rationale.model_dump()
        assert set(values) == set(FACTORS)
        assert all(len(text) > 10 for text in values.values()), rule.id
    assert "terrorism" in (d.meta.description + path.read_text()).lower()
    # every code used by a template is in the catalogue (no unknown-code warnings)
    assert not [w for w in d.warnings if "offence code" in w]
    assert d.offence_codes <= set(load_catalogue().get_column("code"))


def test_template_specifics():
    default = load_template("default")
    assert [r.id for r in default.rules if r.is_proxy] == [
        "police-uk-violence-proxy", "police-uk-robbery-proxy", "police-uk-weapons-proxy"]
    assert all("proxy" in r.category for r in default.rules if r.is_proxy)
    home = load_template("home-office")
    assert {r.id for r in home.rules} == {"homicide", "knife-enabled"}
    assert "hospital" in home.meta.description.lower()
    london = load_template("london-vru")
    assert {"young-people-under-25", "domestic-abuse", "sexual-violence"} <= {
        r.id for r in london.rules}
    assert "under the\nage of 25" in london.meta.description
    broad = load_template("broad")
    assert {"56A", "29A", "31A", "4.4", "10D", "62A"} <= broad.offence_codes


def test_write_template_rejects_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="default, home-office, london-vru, broad"):
        write_template(tmp_path / "d.toml", "norfolk", partnership_name="X")
    assert not (tmp_path / "d.toml").exists()


def test_template_name_is_escaped():
    text = template_text("default", 'A "B" \\ C')
    assert tomllib.loads(text)["definition"]["name"] == 'A "B" \\ C'


# ---------------------------------------------------------------- validation errors


def problems_of(text: str, **kwargs) -> str:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, "definition.toml", **kwargs)
    return str(info.value)


def test_missing_rationale_factor_is_named():
    rationale = RATIONALE.replace('community_impact = "fear"\n', "")
    message = problems_of(rule_toml('id = "gbh"\ncategory = "GBH"\noffence_codes = ["5D"]',
                                    rationale))
    assert "definition.toml" in message
    assert "rule 'gbh' (rule 1)" in message and "community_impact" in message
    assert "s.13(6)(d)" in message


def test_missing_rationale_table():
    message = problems_of('[definition]\nname="T"\nversion="1"\n[[rules]]\nid="a"\n'
                          'category="A"\noffence_codes=["1"]\n')
    assert "rule 'a'" in message and "no [rules.rationale]" in message


def test_blank_rationale_is_an_error():
    message = problems_of(rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1"]',
                                    RATIONALE.replace('"some"', '"  "')))
    assert "rationale.prevalence" in message and "empty" in message


def test_duplicate_ids_unknown_flag_and_field():
    text = rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1"]') + (
        '\n[[rules]]\nid = "a"\ncategory = "B"\noffence_codes = ["2"]\n'
        'flags = { knfe = true }\n' + RATIONALE)
    message = problems_of(text)
    assert "duplicate rule id 'a'" in message
    assert "unknown flag(s) knfe" in message and "knife" in message
    message = problems_of(rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1"]\n'
                                    "victim_age = 24"))
    assert "unknown field 'victim_age'" in message


def test_unknown_offence_code_warns_or_fails_when_strict():
    text = rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1", "ZZ9"]')
    d = parse_definition(text)
    assert len(d.warnings) == 1 and "ZZ9" in d.warnings[0] and "rule 'a'" in d.warnings[0]
    assert "ZZ9" in problems_of(text, strict=True)
    # a code the warehouse knows is fine
    assert parse_definition(text, known_codes={"ZZ9"}).warnings == []


def test_proxy_rule_problems():
    msg = problems_of(rule_toml('id = "p"\ncategory = "P"\n'
                                'police_uk_categories = ["Violence and sexual offences"]\n'
                                "flags = { knife = true }"))
    assert "cannot use flags or ages" in msg
    msg = problems_of(rule_toml('id = "p"\ncategory = "P"\npolice_uk_categories = ["Knives"]'))
    assert "unknown 'Knives'" in msg and "Possession of weapons" in msg
    msg = problems_of(rule_toml('id = "p"\ncategory = "P"\noffence_codes = ["1"]\n'
                                'police_uk_categories = ["Robbery"]'))
    assert "separate rule" in msg
    msg = problems_of(rule_toml('id = "p"\ncategory = "P"\npolice_uk_categories = ["Robbery"]\n'
                                "proxy = false"))
    assert "set proxy = true" in msg
    # case-insensitive category names are normalised
    d = parse_definition(rule_toml('id = "p"\ncategory = "P"\npolice_uk_categories = ["robbery"]'))
    assert d.rules[0].police_uk_categories == ["Robbery"] and d.rules[0].is_proxy


def test_other_errors():
    assert "not valid TOML" in problems_of("[definition\nname=")
    assert "selects nothing" in problems_of(rule_toml('id = "a"\ncategory = "A"'))
    assert "use \"css\" or a number" in problems_of(
        rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1"]\nharm = "severe"'))
    approved = rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1"]').replace(
        'version = "1.0"', 'version = "1.0"\nstatus = "approved"')
    message = problems_of(approved)
    assert "approved_by is empty" in message and "approved_on is empty" in message
    with pytest.raises(DefinitionError, match="does not exist"):
        load_definition(Path("/nonexistent/definition.toml"))


def test_approved_template_with_placeholders_is_refused():
    text = template_text("home-office").replace('status = "draft"', 'status = "approved"')
    text = text.replace('approved_by = ""', 'approved_by = "Board"').replace(
        'approved_on = ""', "approved_on = 2025-03-31")
    assert "TO COMPLETE" in problems_of(text)


# ---------------------------------------------------------------- versioning


def test_version_hash_tracks_rule_changes():
    base = rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1", "4.1"]')
    v0 = parse_definition(base).definition_version
    assert v0.startswith("1.0+") and len(v0) == len("1.0+") + 8
    changed = parse_definition(base.replace('["1", "4.1"]', '["1", "4.2"]'))
    assert changed.definition_version != v0
    assert changed.definition_version.startswith("1.0+")
    # reordering codes or editing rationale text does not change what is counted
    assert parse_definition(base.replace('["1", "4.1"]', '["4.1", "1"]')).definition_version == v0
    assert parse_definition(base.replace('"fear"', '"more fear"')).definition_version == v0
    assert parse_definition(base.replace('"1.0"', '"1.1"')).definition_version.startswith("1.1+")
    flagged = base.replace('["1", "4.1"]', '["1", "4.1"]\nflags = { knife = true }')
    assert parse_definition(flagged).definition_version != v0


# ---------------------------------------------------------------- apply_definition


def add_events(wh: Warehouse, rows: list[dict]) -> None:
    frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.lit("police-recorded").alias("source"), pl.lit(1).alias("load_id"),
        pl.col("event_id").alias("source_record_id"))
    with wh.transaction():
        wh.store.add("events", frame, 1)


def add_people(wh: Warehouse, rows: list[tuple[str, str, int]]) -> None:
    frame = pl.DataFrame(rows, schema={"event_id": pl.String, "role": pl.String,
                                       "age": pl.Int16}, orient="row")
    frame = frame.with_columns(pl.lit(1).alias("load_id"))
    wh.con.register("new_people", frame)
    wh.con.execute("INSERT INTO involvements BY NAME SELECT * FROM new_people")
    wh.con.unregister("new_people")


def event(event_id: str, code: str | None, month: date = date(2025, 6, 1), **extra) -> dict:
    return {"event_id": event_id, "offence_code": code, "month": month,
            "lsoa21_code": IN_LSOA, "in_area": True, "weapon": None, "domestic": None,
            "police_uk_category": None, **extra}


@pytest.fixture
def small_wh(tmp_path) -> Warehouse:
    wh = Warehouse(tmp_path / "w.duckdb")
    add_events(wh, [
        event("knife-gbh", "5D", weapon="knife or sharp"),
        event("dom-abh", "8N", domestic=True, police_uk_category="Violence and sexual offences"),
        event("puk-violence", None, police_uk_category="Violence and sexual offences"),
        event("burglary", "28E"),
        event("young-abh", "8N"),
        event("suspect-young", "8N", domestic=False),
    ])
    add_people(wh, [("knife-gbh", "victim", 19), ("knife-gbh", "suspect", 30),
                    ("dom-abh", "Victim", 40), ("young-abh", "victim", 19),
                    ("suspect-young", "victim", 30), ("suspect-young", "suspect", 19)])
    yield wh
    wh.close()


def sv(wh: Warehouse) -> dict[str, dict]:
    rows = wh.con.execute("SELECT * FROM sv_events").pl().iter_rows(named=True)
    return {r["event_id"]: r for r in rows}


def test_apply_default_template(small_wh):
    d = load_template("default")
    assert apply_definition(small_wh, d) == 3
    got = sv(small_wh)
    assert set(got) == {"knife-gbh", "puk-violence", "young-abh"}
    knife = got["knife-gbh"]
    assert knife["rule_id"] == "attempted-murder-gbh-intent"
    assert knife["sv_category"] == "Attempted murder and GBH with intent"
    assert knife["all_categories"] == ["Attempted murder and GBH with intent",
                                       "Knife or sharp instrument enabled violence"]
    assert knife["harm_weight"] == 1965.0 and knife["proxy"] is False
    assert knife["definition_version"] == d.definition_version
    young = got["young-abh"]
    assert young["rule_id"] == "under-25-violence-with-injury" and young["harm_weight"] == 184.0
    proxy = got["puk-violence"]
    assert proxy["proxy"] is True and proxy["rule_id"] == "police-uk-violence-proxy"
    assert proxy["harm_weight"] is None
    # the force-recorded ABH carries a police.uk category but must not match the proxy rule
    assert "dom-abh" not in got
    row = small_wh.con.execute("SELECT version, content_hash, toml FROM definitions").fetchall()
    assert row == [("0.1", d.content_hash, d.source_text)]


def test_apply_london_vru_and_reapply(small_wh):
    assert apply_definition(small_wh, load_template("london-vru")) == 4
    got = sv(small_wh)
    assert got["dom-abh"]["sv_category"] == "Domestic abuse"  # role 'Victim' any case
    assert got["knife-gbh"]["rule_id"] == "young-people-under-25"
    assert got["young-abh"]["all_categories"] == ["Violence affecting young people under 25"]
    assert "suspect-young" not in got and "burglary" not in got
    # re-applying another definition replaces sv_events and adds a definitions row
    d = load_template("home-office")
    assert apply_definition(small_wh, d) == 1
    assert set(sv(small_wh)) == {"knife-gbh"}
    assert small_wh.count("definitions") == 2
    assert current_definition(small_wh).definition_version == d.definition_version


def test_apply_custom_rules(small_wh):
    text = rule_toml('id = "young-suspects"\ncategory = "Y"\noffence_codes = ["8N"]\n'
                     "suspect_max_age = 24\nharm = 2.5") + (
        '\n[[rules]]\nid = "non-dom"\ncategory = "ND"\noffence_codes = ["8N", "5D"]\n'
        "exclude_flags = { domestic = true }\nharm = \"css\"\n" + RATIONALE)
    d = parse_definition(text)
    assert apply_definition(small_wh, d) == 3
    got = sv(small_wh)
    assert got["suspect-young"]["rule_id"] == "young-suspects"
    assert got["suspect-young"]["harm_weight"] == 2.5
    assert got["suspect-young"]["all_categories"] == ["Y", "ND"]
    assert got["young-abh"]["rule_id"] == "non-dom" and got["young-abh"]["harm_weight"] == 184.0
    assert got["knife-gbh"]["sv_category"] == "ND"
    assert "dom-abh" not in got


def test_apply_more_rules_than_one_mask_word(small_wh):
    # 70 rules, one code each: rule masks span two 62-bit words
    codes = load_catalogue().get_column("code").to_list()[:70]
    assert codes.index("8N") < 62 < len(codes)
    blocks = [f'[[rules]]\nid = "r{i}"\ncategory = "C{i}"\noffence_codes = ["{c}"]\n' + RATIONALE
              for i, c in enumerate(codes)]
    text = '[definition]\nname = "T"\nversion = "1"\n\n' + "\n".join(blocks)
    text += ('\n[[rules]]\nid = "late"\ncategory = "Late"\noffence_codes = ["5D"]\n'
             "flags = { knife = true }\n" + RATIONALE)
    d = parse_definition(text)
    assert len(d.rules) == 71
    assert apply_definition(small_wh, d) == 4  # one 5D and three 8N
    got = sv(small_wh)
    knife = got["knife-gbh"]
    assert knife["rule_id"] == f"r{codes.index('5D')}" and knife["all_categories"][-1] == "Late"
    assert got["dom-abh"]["rule_id"] == f"r{codes.index('8N')}"


def test_apply_proxy_only_definition(small_wh):
    d = parse_definition(rule_toml('id = "p"\ncategory = "P"\n'
                                   'police_uk_categories = ["Violence and sexual offences"]'))
    assert apply_definition(small_wh, d) == 1
    assert sv(small_wh)["puk-violence"]["proxy"] is True


# ---------------------------------------------------------------- evidence


def months(start: date, count: int) -> list[date]:
    index = start.year * 12 + start.month - 1
    return [date((index + i) // 12, (index + i) % 12 + 1, 1) for i in range(count)]


@pytest.fixture
def evidence_wh(tmp_path) -> Warehouse:
    wh = Warehouse(tmp_path / "e.duckdb")
    wh.con.execute("INSERT INTO areas (lsoa_code, lsoa_vintage, lad_code) VALUES "
                   f"('{IN_LSOA}', 2021, '{AREA_LAD}'), ('{OUT_LSOA}', 2021, 'E06000027')")
    wh.con.execute("INSERT INTO populations VALUES "
                   f"('{IN_LSOA}', 2021, '0 to 15', 1500, 't'), "
                   f"('{IN_LSOA}', 2021, '16 to 24', 500, 't'), "
                   f"('{OUT_LSOA}', 2021, '16 to 24', 9999, 't')")
    current, previous = months(date(2025, 1, 1), 12), months(date(2024, 1, 1), 12)
    rows = [event(f"burg-{m}", "28E", m) for m in previous + current]
    rows += [event(f"abh-c{i}", "8N", current[i % 12]) for i in range(20)]
    rows += [event(f"abh-p{i}", "8N", previous[i % 12]) for i in range(10)]
    rows += [event(f"gbh-c{i}", "5D", current[i]) for i in range(3)]
    rows += [event(f"rob-c{i}", "34B", current[i]) for i in range(5)]
    rows += [event(f"rob-p{i}", "34B", previous[i]) for i in range(5)]
    rows += [event(f"out-{i}", "8N", current[i], lsoa21_code=OUT_LSOA, in_area=False)
             for i in range(7)]
    rows += [event(f"old-{i}", "8N", date(2023, 6, 1)) for i in range(4)]  # before both windows
    rows += [event(f"puk-{i}", None, current[i], police_uk_category="Robbery")
             for i in range(4)]
    add_events(wh, rows)
    yield wh
    wh.close()


def by_group(frame: pl.DataFrame) -> dict[str, dict]:
    return {r["offence_group"]: r for r in frame.iter_rows(named=True)}


def test_evidence_counts_rates_share_and_trend(evidence_wh):
    frame = definition_evidence(evidence_wh, [AREA_LAD], definition=load_template("default"))
    assert frame.get_column("offence_group").to_list() == list(OFFENCE_GROUPS)
    rows = by_group(frame)
    wound = rows["Wounding, GBH and ABH (violence with injury)"]
    assert wound["basis"] == BASIS_CODES and wound["proxy_category"] is None
    assert (wound["count"], wound["previous_count"], wound["residents"]) == (20, 10, 2000)
    assert wound["rate_per_1000"] == pytest.approx(10.0)
    assert wound["share_of_violence_pct"] == pytest.approx(round(20 / 28 * 100, 2))
    assert wound["change_pct"] == pytest.approx(100.0)
    expected_p = 2 * sum(math.comb(30, i) for i in range(11)) / 2**30
    assert wound["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert wound["period_start"] == date(2025, 1, 1) and wound["period_end"] == date(2025, 12, 1)
    assert wound["in_definition"].startswith("partly (")
    assert "victim aged 24 or under" in wound["in_definition"]
    robbery = rows["Robbery"]
    assert (robbery["count"], robbery["previous_count"], robbery["change_pct"]) == (5, 5, 0.0)
    assert robbery["p_value"] == pytest.approx(1.0)
    assert robbery["in_definition"] == "partly (some codes; knife; firearm)"
    assert robbery["max_penalty"] == "Life imprisonment" and "s.8(2)" in robbery["statute"]
    gbh = rows["Attempted murder and GBH with intent"]
    assert gbh["count"] == 3 and gbh["previous_count"] == 0 and gbh["change_pct"] is None
    assert gbh["in_definition"] == "partly (some codes; knife; firearm)"  # 3A not in default
    homicide = rows["Homicide"]
    assert homicide["count"] == 0 and homicide["p_value"] is None
    assert homicide["in_definition"] == "yes" and homicide["definition_rules"] == (
        "homicide, police-uk-violence-proxy")
    assert rows["Assault without injury"]["in_definition"] == "police.uk proxy only"
    assert rows["Public order and violent disorder"]["in_definition"] == "no"
    # weapons are not violence: no share of violence
    assert rows["Possession of weapons: knife or blade"]["share_of_violence_pct"] is None


def test_evidence_period_end_and_incomplete_window(evidence_wh):
    frame = definition_evidence(evidence_wh, [AREA_LAD], period_end=date(2025, 6, 15))
    wound = by_group(frame)["Wounding, GBH and ABH (violence with injury)"]
    # 2024-07..2025-06 vs 2023-07..2024-06: the earlier window has only 6 months of data
    assert wound["period_start"] == date(2024, 7, 1)
    # ABH: 12 in Jan-Jun 2025 (i = 0-5 and 12-17) + 4 in Jul-Oct 2024; 6 in Jan-Jun 2024
    assert (wound["count"], wound["previous_count"]) == (16, 6)
    assert wound["change_pct"] is None and wound["p_value"] is None
    assert "6 of the 12 before" in wound["trend_note"]
    assert wound["in_definition"] == "no definition applied"


def test_evidence_police_uk_proxy_basis(tmp_path):
    wh = Warehouse(tmp_path / "p.duckdb")
    wh.con.execute(f"INSERT INTO areas (lsoa_code, lsoa_vintage, lad_code) VALUES "
                   f"('{IN_LSOA}', 2021, '{AREA_LAD}')")
    wh.con.execute(f"INSERT INTO populations VALUES ('{IN_LSOA}', 2021, 'All ages', 4000, 't'),"
                   f"('{IN_LSOA}', 2021, '16 to 24', 700, 't')")
    current = months(date(2025, 1, 1), 12)
    rows = [event(f"v{i}", None, current[i % 12], police_uk_category="Violence and sexual offences")
            for i in range(30)]
    rows += [event(f"r{i}", None, current[i], police_uk_category="Robbery") for i in range(6)]
    rows += [event(f"b{i}", None, current[i], police_uk_category="Burglary") for i in range(9)]
    add_events(wh, rows)
    d = load_template("default")
    apply_definition(wh, d)
    rows_ = by_group(definition_evidence(wh, [AREA_LAD]))  # definition from the warehouse
    homicide, robbery = rows_["Homicide"], rows_["Robbery"]
    assert homicide["basis"] == BASIS_PROXY
    assert homicide["proxy_category"] == "Violence and sexual offences" and homicide["count"] == 30
    assert robbery["count"] == 6 and robbery["residents"] == 4000
    assert robbery["rate_per_1000"] == pytest.approx(1.5)
    assert robbery["share_of_violence_pct"] == pytest.approx(round(6 / 36 * 100, 2))
    assert rows_["Aggravated burglary"]["count"] == 9
    assert "no trend" in robbery["trend_note"]
    assert rows_["Assault without injury"]["in_definition"] == "police.uk proxy only"
    wh.close()


def test_rate_ratio_p_value():
    assert rate_ratio_p_value(0, 0) is None
    assert rate_ratio_p_value(7, 7) == 1.0
    assert rate_ratio_p_value(10, 0) == pytest.approx(2 / 2**10)
    exact = 2 * sum(math.comb(200, i) for i in range(81)) / 2**200
    assert rate_ratio_p_value(120, 80) == pytest.approx(exact, rel=1e-9)
    assert rate_ratio_p_value(80, 120) == pytest.approx(exact, rel=1e-9)


# ---------------------------------------------------------------- command line


def test_cli_check_show_and_evidence(tmp_path):
    from svduty.partnership import init_partnership

    root = tmp_path / "plymouth"
    p = init_partnership(root, ["Plymouth"], name="Safer Plymouth", template="london-vru")
    assert load_definition(p.definition_path).meta.name == "Safer Plymouth"
    lad = p.config.lad_codes[0]
    with p.warehouse() as wh:
        wh.con.execute(f"INSERT INTO areas (lsoa_code, lsoa_vintage, lad_code) VALUES "
                       f"('{IN_LSOA}', 2021, '{lad}')")
        wh.con.execute(f"INSERT INTO populations VALUES ('{IN_LSOA}', 2021, '16 to 24', 100, 't')")
        add_events(wh, [event(f"r{i}", "34B") for i in range(3)])
    runner = CliRunner()
    result = runner.invoke(definition_app, ["check", str(root)])
    assert result.exit_code == 0, result.output
    assert "version" in result.output and "0.1+" in result.output
    strict = runner.invoke(definition_app, ["check", str(root), "--strict"])
    assert strict.exit_code == 1
    shown = runner.invoke(definition_app, ["show", str(root)])
    assert shown.exit_code == 0 and "s.13(6) factors" in shown.output
    assert "Domestic" in shown.output and "Safer Plymouth" in shown.output
    out = tmp_path / "evidence.json"
    result = runner.invoke(definition_app, ["evidence", str(root), "--format", "json",
                                            "--out", str(out)])
    assert result.exit_code == 0, result.output
    robbery = next(r for r in json.loads(out.read_text()) if r["offence_group"] == "Robbery")
    assert robbery["count"] == 3 and robbery["rate_per_1000"] == pytest.approx(30.0)
    table = runner.invoke(definition_app, ["evidence", str(root)])
    assert table.exit_code == 0 and "Robbery" in table.output
    (root / "definition.toml").write_text(
        rule_toml('id = "a"\ncategory = "A"\noffence_codes = ["1"]').replace("victim_impact",
                                                                          "victim_impakt"))
    bad = runner.invoke(definition_app, ["check", str(root)])
    assert bad.exit_code == 1
