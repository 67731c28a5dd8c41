"""What else a published exhibit could give away once its counts are protected: the shares of
a group whose total is not shown, and a chart or map drawn from the unprotected Result."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl
import pytest

from svduty.assessment.build import exhibit
from svduty.assessment.contents import SECTIONS
from svduty.assessment.disclosure import STAR, blank_group_shares, protect_exhibit
from svduty.partnership import Partnership

EXHIBITS = {x.key: x for s in SECTIONS for x in s.exhibits}


def repeat_people() -> pl.DataFrame:
    """People by times involved: 3 suspects involved 5+ times, shares of each role's total."""
    rows = [("suspect", "1", 6120), ("suspect", "2", 797), ("suspect", "3", 95),
            ("suspect", "4", 16), ("suspect", "5+", 3), ("victim", "1", 6695),
            ("victim", "2", 1537), ("victim", "5+", 26)]
    table = pl.DataFrame(rows, schema=["role", "involvements_per_person", "people"],
                         orient="row")
    return table.with_columns(share_of_people=pl.col("people") / pl.col("people").sum()
                              .over("role"))


def totals(shown: pl.DataFrame, role: str) -> set[int]:
    """The attacker's reading of a role's total from each shown share and its count, as
    tables/*.csv publish them: total = people / share."""
    rows = shown.filter((pl.col("role") == role) & pl.col("share_of_people").is_not_null()
                        & (pl.col("people") != STAR))
    return {round(int(people) / share) for people, share
            in rows.select("people", "share_of_people").iter_rows()}


def test_shares_of_a_group_with_a_hidden_count_would_give_it_away_and_are_blanked():
    spec = EXHIBITS["people-repeat"]
    protected, _ = protect_exhibit(repeat_people(), spec.counts, spec.rates, None)
    assert protected.filter(pl.col("people") == STAR)["involvements_per_person"].to_list() \
        == ["5+"]
    shown = protected.filter((pl.col("people") != STAR) & (pl.col("role") == "suspect"))
    (total,) = totals(protected, "suspect")  # the attack on the table with its row blanked
    assert total - sum(int(v) for v in shown["people"]) == 3  # the hidden count, exactly
    blanked, n = blank_group_shares(protected, spec.shares, spec.rates)
    assert n == 4  # the four suspect rows still showing a share
    suspects = blanked.filter(pl.col("role") == "suspect")
    assert suspects["share_of_people"].is_null().all()
    assert totals(blanked, "suspect") == set()  # nothing left to work the total out from
    victims = blanked.filter(pl.col("role") == "victim")
    assert victims["share_of_people"].to_list() == \
        repeat_people().filter(pl.col("role") == "victim")["share_of_people"].to_list()


def test_a_hidden_month_blanks_every_seasonal_index():
    """Each month's seasonal index is its count over the mean month: any shown index gives
    the mean, so the total, so a hidden month; the whole table's indices go."""
    spec = EXHIBITS["times-month-of-year"]
    counts = [120, 95, 110, 130, 125, 90, 140, 150, 100, 105, 115, 5]
    table = pl.DataFrame({"month_name": [f"m{i}" for i in range(12)], "count": counts})
    mean = sum(counts) / 12
    table = table.with_columns(seasonal_index=pl.col("count") / mean,
                               index_lower=pl.col("count") * 0.9 / mean,
                               index_upper=pl.col("count") * 1.1 / mean)
    protected, _ = protect_exhibit(table, spec.counts, spec.rates, None)
    assert protected["count"][11] == STAR and protected["seasonal_index"][11] is None
    first = protected.row(0, named=True)  # the attack on the row-blanked table
    total = round(12 * int(first["count"]) / first["seasonal_index"])
    assert total - sum(int(c) for c in protected["count"][:11]) == 5
    blanked, n = blank_group_shares(protected, spec.shares, spec.rates)
    assert n == 3 * 11
    assert blanked.select(pl.col("seasonal_index", "index_lower", "index_upper")
                          .is_null().all()).row(0) == (True, True, True)
    assert blanked["count"].to_list() == protected["count"].to_list()


@pytest.mark.parametrize(("key", "group", "when"), [
    ("measures-core", {"measure": "homicide", "age_group": "all ages"}, "period"),
    ("domestic-sexual-violence", {"measure": "rape", "of": 900}, "window")])
def test_a_change_never_gives_away_the_hidden_count_it_compares_with(key, group, when):
    """A change ratio is the latest count over the previous one, so beside a shown latest
    count it gives a hidden previous count: the change goes with either count."""
    spec = EXHIBITS[key]
    rows = [{**group, when: "previous 12 months", "count": 3},
            {**group, when: "latest 12 months", "count": 12, "change_ratio": 4.0,
             "p_value": 0.03}]
    table = pl.DataFrame(rows)
    protected, _ = protect_exhibit(table, spec.counts, spec.rates, None)
    latest = protected.row(1, named=True)
    assert protected["count"].to_list() == [STAR, "12"] and latest["change_ratio"] == 4.0
    assert int(latest["count"]) / latest["change_ratio"] == 3  # the hidden count, exactly
    blanked, _ = blank_group_shares(protected, spec.shares, spec.rates)
    assert blanked["change_ratio"].is_null().all() and blanked["p_value"].is_null().all()


def test_every_exhibit_of_group_shares_names_their_group_and_count():
    declared = [x for x in EXHIBITS.values() if x.shares]
    assert {x.key for x in declared} >= {"people-repeat", "people-profile", "health-ed-method"}
    for x in declared:
        for share, group in x.shares.items():
            assert share in x.columns and set(group) <= set(x.columns), x.key
            assert share in x.rates, x.key  # the count it is worked out from


@pytest.fixture(scope="module")
def demo(demo_results, demo_partnership):
    return demo_results, Partnership(demo_partnership)


def test_no_published_share_sits_in_a_group_with_a_hidden_count(demo):
    """On the demo with counts under 40 hidden, every exhibit of group shares: a group
    with a hidden count shows no share (they are published to full precision)."""
    from svduty.assessment.disclosure import bases

    results, partnership = demo
    partnership = Partnership(partnership.root)  # a copy of the config to change
    partnership.config.disclosure.suppress_below = 40
    groups = 0
    for x in (x for x in EXHIBITS.values() if x.shares):
        table = exhibit(results, x, "published", partnership).table
        for share, group in x.shares.items():
            hidden = pl.any_horizontal(pl.col(c) == STAR for c in bases(x.rates[share]))
            for key, rows in table.group_by(list(group)):
                if rows.select(hidden.any()).item():
                    groups += 1
                    assert rows[share].is_null().all(), (x.key, key)
    assert groups >= 2  # suspects by times involved, ED attendances by a dimension


def joint_hiding(key: str, count: str, row: int) -> SimpleNamespace:
    """A joint protection that hides one (large) count of one exhibit, as complementary
    suppression for a small count in another table of the same events does."""
    return SimpleNamespace(shown={key: {count: {row: STAR}}})


def test_a_chart_is_withheld_where_protection_hides_a_count_that_is_not_small(demo):
    results, partnership = demo
    spec = EXHIBITS["times-month-of-year"]
    assert results[spec.result].table["count"].min() >= 8  # no small count to withhold for
    alone = exhibit(results, spec, "published", partnership)
    assert alone.chart is not None
    hidden = exhibit(results, spec, "published", partnership,
                     joint=joint_hiding(spec.key, "count", 0))
    assert hidden.table["count"][0] == STAR
    assert hidden.chart is None  # drawn from the Result, it would show the hidden count
    assert any("chart is withheld" in c for c in hidden.caveats)
    assert exhibit(results, spec, "restricted", partnership).chart is not None


def test_a_rate_map_moves_up_the_ladder_where_its_table_hides_a_count(demo):
    results, partnership = demo
    spec = EXHIBITS["places-ward-rates"]
    alone = exhibit(results, spec, "published", partnership)
    assert alone.disclosure["map_level"] == "ward" and alone.chart is not None
    hidden = exhibit(results, spec, "published", partnership,
                     joint=joint_hiding(spec.key, "events", 2))
    assert hidden.table["events"][2] == STAR
    assert hidden.disclosure["map_level"] != "ward"  # its rates would give the count away
    assert hidden.disclosure["map_reason"].startswith("Not drawn by ward")


def test_a_finding_quoting_a_count_its_table_hides_is_left_out(demo, monkeypatch):
    """Findings are written from the Results: one quoting a count that joint protection hides
    in the published table would give it away, so it is left out of that edition."""
    from svduty.analysis.run import Run
    from svduty.analysis.scope import resolve_scope
    from svduty.assessment import build, narrative

    results, partnership = demo
    monkeypatch.setattr(narrative, "write_templates", lambda *a: None)  # a shared folder
    with partnership.warehouse(read_only=True) as wh:
        run = Run(resolve_scope(partnership, wh), list(results.values()))

    def findings(edition) -> dict[str, dict]:
        return {f.key: f.figures for s in edition.sections for f in s.findings}

    before = build.prepare(partnership, run, results, "published")
    spec = EXHIBITS["trend-change"]
    table = next(x.table for s in before.sections for x in s.exhibits if x.spec is spec)
    quoted = {k: f for k, f in findings(before).items() if f.get("count_after", 0) >= 8
              and str(f["count_after"]) in table["count_after"].to_list()}
    key, figures = next(iter(quoted.items()))
    row = table["count_after"].to_list().index(str(figures["count_after"]))
    monkeypatch.setattr(build, "together", lambda *a: joint_hiding(spec.key, "count_after", row))
    after = build.prepare(partnership, run, results, "published")
    shown = next(x.table for s in after.sections for x in s.exhibits if x.spec is spec)
    assert shown["count_after"][row] == STAR
    assert key not in findings(after)  # it quotes the hidden count
    assert set(findings(after)) < set(findings(before))
    restricted = build.prepare(partnership, run, results, "restricted")
    assert key in findings(restricted)


# Numeric columns of count exhibits that are not worked out from their counts: Census
# residents, the hot spot periods, the hour of day, cells the source itself suppressed.
NOT_FROM_COUNTS = {"residents", "periods_hot", "periods", "hour", "suppressed_cells"}


def test_every_figure_worked_out_from_a_count_is_declared_with_it(demo):
    """Rates, shares, ratios, intervals, p-values and medians are blanked with the counts
    they come from only if declared (`Exhibit.rates`): every numeric column of a published
    count exhibit is a count, a declared figure of counts, or known not to come from them."""
    results, _ = demo
    checked = 0
    for x in (x for x in EXHIBITS.values() if x.counts and x.result in results):
        table = x.rows(results[x.result].table)
        for column in (c for c in x.columns if c in table.columns):
            if table.schema[column].is_numeric() and column not in x.counts:
                assert column in x.rates or column in NOT_FROM_COUNTS, (x.key, column)
                checked += 1
    assert checked >= 30
