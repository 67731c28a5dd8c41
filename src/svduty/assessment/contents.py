"""What the Strategic Needs Assessment contains: its sections, in the order councils and VRUs
use, and the exhibits (a table, usually with a chart) each section draws from the Results.

An exhibit names the Result it shows, the rows and columns to show, which columns are counts
(suppressed in the published edition) and which rates belong to which count, and whether
a chart (:data:`svduty.assessment.charts.CHARTS`) or map (:data:`svduty.assessment.maps.MAPS`)
is drawn from the Result.

Exhibits that count the same events along different dimensions (by month, by month of the
year, by hour and day, by category, by ward, ...) declare it with :class:`Tabulation`: the
published edition then protects them together (:mod:`svduty.assessment.joint`), so that no
suppressed cell in one can be worked out from another's totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

SV = "sv"  # the serious violence events of the assessment (police), its whole period
WHOLE = "whole period"  # the label every SV table uses for the whole period
NTE = "night-time economy hours"  # the `nte` value of the (weekday, hour) cells in the window


@dataclass(frozen=True)
class Tabulation:
    """Which events an exhibit's count column counts, and along which shared dimensions.

    `population` names the events (tables of one population share their grand total);
    `dims` maps exhibit columns to shared dimensions (`month`, `hour`, `weekday`,
    `category`, `area`, `csp`, `term`, `nte`: in night-time economy hours or not);
    `totals` gives the label that means "all" in a
    dimension; `fixed` the value every row has in a dimension the table does not show (e.g.
    the 12 months a change compares); `complete` the dimensions whose rows list every value,
    so that summing them gives the total; `label` formats a dimension's values (a rolling
    total is "12 months to <month>"); `where` limits the rows tabulated."""

    population: str
    count: str
    dims: Mapping[str, str] = field(default_factory=dict)
    totals: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, str] = field(default_factory=dict)
    complete: tuple[str, ...] = ()
    label: Mapping[str, str] = field(default_factory=dict)
    where: pl.Expr | None = None


@dataclass(frozen=True)
class Exhibit:
    """One table (and chart) in a section, drawn from one Result."""

    key: str  # file stem of tables/<key>.csv and the manifest entry
    result: str  # the Result's name
    title: str
    columns: tuple[str, ...]
    counts: tuple[str, ...] = ()  # count columns: suppressed in the published edition
    # rate column -> its count column(s): rates, shares, gaps, changes and their bounds,
    # anything from which a count could be worked out, are blanked where a count is hidden
    rates: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    # column -> the columns naming the group of rows whose counts it is worked out from
    # together (a share of the group's total, a change from one period to the next): where
    # a count of a group is hidden, the column is blanked in every row of the group, since
    # the rest would give that count away
    shares: dict[str, tuple[str, ...]] = field(default_factory=dict)
    where: pl.Expr | None = None
    sort: tuple[str, ...] = ()
    limit: int | None = None
    chart: str | None = None  # "chart" (assessment.charts) or "map" (assessment.maps)
    # (dimensions, total label) where the rows hold their own total (e.g. "All serious
    # violence" beside each category): the published edition then adds secondary
    # suppression so no hidden cell can be worked out from the total.
    total: tuple[tuple[str, ...], str] | None = None
    # (index, columns, values): shown as a cross-table after protection (e.g. hour x day)
    pivot: tuple[str, str, str] | None = None
    note: str = ""
    tabulates: tuple[Tabulation, ...] = ()  # linked to other exhibits of the same events

    def count_columns(self, shown: list[str]) -> set[str]:
        """The columns of the table as shown that hold counts (every cell of a cross-table
        of counts)."""
        if self.pivot is not None and self.pivot[2] in self.counts:
            return {c for c in shown if c != self.pivot[0]}
        return {c for c in shown if c in self.counts}

    def rows(self, table: pl.DataFrame) -> pl.DataFrame:
        """The Result's rows this exhibit shows (filtered, sorted, limited), every column."""
        if self.where is not None:
            table = table.filter(self.where)
        if self.sort:
            table = table.sort(list(self.sort))
        return table.head(self.limit) if self.limit else table


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str
    exhibits: tuple[Exhibit, ...] = ()


ALL = pl.col("sv_category") == "All serious violence"
CHANGE = tuple(  # the counts a change compares: the latest 12 months and the year before
    Tabulation(SV, f"count_{when}", {"area_name": "csp", "sv_category": "category"},
               totals={"category": "All serious violence"}, fixed={"month": f"compared: {when}"})
    for when in ("before", "after"))
SECTIONS: tuple[Section, ...] = (
    Section("summary", "Executive summary and key findings",
            "The main findings of this assessment, each drawn from a named analysis."),
    Section("scope", "Scope, local definition and method",
            "What this assessment covers: the partnership's areas, the period, the local "
            "definition of serious violence it counts, and the data each partner shared."),
    Section("problem-profile", "The problem profile: volume, trend, mix and harm",
            "How much serious violence there is, how it is changing and what kinds it is.",
            (Exhibit("trend-change", "trend-change", "Change in the latest 12 months",
                     ("area_name", "sv_category", "count_before", "count_after",
                      "percent_change", "ratio_lower", "ratio_upper", "p_value"),
                     counts=("count_before", "count_after"),
                     rates=dict.fromkeys(("percent_change", "ratio_lower", "ratio_upper",
                                          "p_value"), ("count_before", "count_after")),
                     where=pl.col("level") == "csp", chart="chart",
                     total=(("area_name", "sv_category"), "All serious violence"),
                     tabulates=CHANGE),
             Exhibit("trend-monthly", "trend-monthly", "Serious violence by month",
                     ("month", "count", "rolling_12m", "rate_per_1000"),
                     counts=("count", "rolling_12m"), rates={"rate_per_1000": "count"},
                     where=(pl.col("level") == "partnership") & ALL
                     & pl.col("count").is_not_null(), sort=("month",),
                     note="Months with no data are left out of the table (the chart shows "
                          "them as gaps).",
                     chart="chart", tabulates=(
                         Tabulation(SV, "count", {"month": "month"}, complete=("month",)),
                         Tabulation(SV, "rolling_12m", {"month": "month"},
                                    label={"month": "12 months to {}"}))),
             Exhibit("trend-harm", "trend-harm", "Harm-weighted serious violence",
                     ("window", "sv_category", "count", "harm_weight_total",
                      "events_without_weight"),
                     counts=("count", "events_without_weight"),
                     rates={"harm_weight_total": "count"}, tabulates=(Tabulation(
                         SV, "count", {"window": "month", "sv_category": "category"},
                         totals={"month": WHOLE, "category": "All serious violence"}),)),
             Exhibit("trend-outlook", "trend-outlook", "Outlook for the next 12 months",
                     ("month", "forecast", "pi_lower", "pi_upper"),
                     where=ALL & (pl.col("kind") == "forecast"), sort=("month",),
                     chart="chart"))),
    Section("core-measures", "Home Office core measures",
            "The measures the Home Office asks every partnership to track.",
            (Exhibit("measures-core", "measures-core",
                     "Core measures in the latest 12 months, with change on the 12 before",
                     ("measure", "age_group", "period", "count", "rate_per_100k",
                      "rate_lower", "rate_upper", "change_ratio", "p_value"),
                     where=pl.col("period").is_in(["latest 12 months", "previous 12 months"]),
                     counts=("count",), rates=dict.fromkeys(
                         ("rate_per_100k", "rate_lower", "rate_upper", "change_ratio",
                          "p_value"), "count"),
                     # a change compares the two periods' counts: both shown and protected
                     shares=dict.fromkeys(("change_ratio", "p_value"),
                                          ("measure", "age_group"))),)),
    Section("places", "Places",
            "Where serious violence happens: rates by area, hot spots and how they change, "
            "and how concentrated it is.",
            (Exhibit("places-ward-rates", "places-ward-rates", "Serious violence by ward",
                     ("ward_name", "events", "residents", "rate_per_1000"),
                     counts=("events",), rates={"rate_per_1000": "events"},
                     sort=("ward_name",), chart="map", tabulates=(Tabulation(
                         SV, "events", {"ward_code": "area"}, complete=("area",)),)),
             Exhibit("places-hotspot-classes", "places-hotspot-classes",
                     "Hot spots over time",
                     ("lsoa21_code", "lsoa_name", "ward_name", "category", "periods_hot",
                      "periods", "events"), counts=("events",),
                     where=pl.col("category").str.contains("hot spot"),
                     sort=("category", "lsoa21_code"), chart="map", tabulates=(Tabulation(
                         SV, "events", {"lsoa21_code": "area"}),)),
             Exhibit("places-concentration", "places-concentration",
                     "Concentration in few places", ("unit", "measure", "units", "value"),
                     chart="chart"))),
    Section("times", "Times",
            "When serious violence happens: by season, day and hour, school term and "
            "night-time economy hours.",
            (Exhibit("times-month-of-year", "times-month-of-year", "By month of the year",
                     ("month_name", "count", "seasonal_index", "index_lower", "index_upper"),
                     counts=("count",),
                     rates=dict.fromkeys(("seasonal_index", "index_lower", "index_upper"),
                                         "count"),
                     shares=dict.fromkeys(("seasonal_index", "index_lower", "index_upper"),
                                          ()),  # of the mean of every month
                     chart="chart", tabulates=(Tabulation(
                         SV, "count", {"month_name": "month"}, complete=("month",)),)),
             Exhibit("times-hour-weekday", "times-hour-weekday", "By hour and day",
                     ("weekday_name", "hour", "count"), counts=("count",),
                     sort=("weekday", "hour"), chart="chart",
                     pivot=("hour", "weekday_name", "count"), tabulates=(Tabulation(
                         SV, "count", {"weekday_name": "weekday", "hour": "hour"},
                         complete=("weekday", "hour")),)),
             Exhibit("times-night-time-economy", "times-night-time-economy",
                     "Night-time economy hours",
                     ("measure", "count", "total", "share", "lower", "upper"),
                     counts=("count", "total"),
                     rates={"share": "count", "lower": "count", "upper": "count"},
                     # the total, and the count in the window: the sum of the hour x day
                     # cells in it (joint.nte_split relates them; left out without them)
                     tabulates=(Tabulation(
                         SV, "total", where=pl.col("events") == "all serious violence"),
                         Tabulation(SV, "count", fixed={"nte": NTE}, where=(
                             pl.col("measure") == "in night-time economy hours")
                             & (pl.col("events") == "all serious violence")))),
             # term and holiday are sets of dates, counted by the day an event occurred
             # (untimed events too): not sums of hour x day cells, so linked only through
             # the grand total (the Monday to Friday rows are protected on their own)
             Exhibit("times-school-term", "times-school-term", "School term and holidays",
                     ("group", "days", "term_count", "holiday_count", "rate_ratio", "lower",
                      "upper", "p_value"), counts=("term_count", "holiday_count"),
                     rates=dict.fromkeys(("rate_ratio", "lower", "upper", "p_value"),
                                         ("term_count", "holiday_count")),
                     tabulates=tuple(Tabulation(
                         SV, f"{term}_count", fixed={"term": term}, where=(
                             pl.col("group") == "all serious violence")
                         & (pl.col("days") == "all days")) for term in ("term", "holiday"))))),
    Section("people", "People and cohorts",
            "Who is harmed and who harms: ages, sex, repeat victims and suspects, and young "
            "people known to several partners.",
            (Exhibit("people-profile", "people-profile", "Victims and suspects by age",
                     ("role", "age_band", "people", "involvements", "share_of_role",
                      "rate_per_1000_year"), counts=("people", "involvements"),
                     rates={"rate_per_1000_year": "involvements",
                            "share_of_role": "involvements"},
                     shares={"share_of_role": ("role",)},
                     where=pl.col("sex") == "all", chart="chart"),
             Exhibit("people-repeat", "people-repeat", "Repeat victims and suspects",
                     ("role", "involvements_per_person", "people", "share_of_people"),
                     counts=("people",), rates={"share_of_people": "people"},
                     shares={"share_of_people": ("role",)}),
             Exhibit("people-cohort", "people-cohort",
                     "Pupils suspended or excluded who later appear elsewhere",
                     ("cohort", "outcome", "pupils", "later_appeared", "share", "median_days"),
                     counts=("pupils", "later_appeared"),  # a median of a few people's days
                     rates={"share": ("pupils", "later_appeared"),  # is theirs, near enough
                            "median_days": "later_appeared"}))),
    Section("domestic", "Domestic abuse and sexual violence",
            "Serious violence the force flagged as domestic abuse, and rape and sexual "
            "offences within the local definition.",
            (Exhibit("domestic-sexual-violence", "domestic-sexual-violence",
                     "Domestic abuse and sexual violence",
                     ("measure", "window", "count", "of", "share", "share_lower",
                      "share_upper", "change_ratio", "p_value"), counts=("count", "of"),
                     rates=dict.fromkeys(("share", "share_lower", "share_upper",
                                          "change_ratio", "p_value"), ("count", "of")),
                     # a change is the latest window's count over the previous one's
                     shares=dict.fromkeys(("change_ratio", "p_value"), ("measure",))),)),
    Section("weapons", "Weapons",
            "Knives, firearms and other weapons in serious violence.",
            (Exhibit("weapons-categories", "trend-change", "Weapon categories, latest 12 "
                     "months", ("sv_category", "count_before", "count_after", "percent_change"),
                     counts=("count_before", "count_after"),
                     rates={"percent_change": ("count_before", "count_after")},
                     where=(pl.col("level") == "csp") & pl.col("sv_category").str.contains(
                         "(?i)knife|firearm|weapon"), tabulates=CHANGE),)),
    Section("health", "The health view and the under-reporting gap",
            "Assaults seen by the emergency department and hospitals, and how many never "
            "reach the police (the Cardiff Model).",
            (Exhibit("health-under-reporting", "health-under-reporting",
                     "ED assaults with no police record",
                     ("matching", "attendances", "matched", "gap", "gap_adjusted",
                      "gap_adjusted_lower", "gap_adjusted_upper"),
                     counts=("attendances", "matched"),
                     rates={"gap": "matched", "gap_adjusted": "matched",
                            "gap_adjusted_lower": "matched", "gap_adjusted_upper": "matched"},
                     chart="chart"),
             Exhibit("health-ed-method", "health-ed-method", "ED assaults by method",
                     ("dimension", "category", "attendances", "share"),
                     counts=("attendances",), rates={"share": "attendances"},
                     shares={"share": ("dimension",)}, chart="chart"),
             Exhibit("health-admissions", "health-admissions", "Hospital admissions for assault",
                     ("period", "icd10", "age_band", "admissions_known", "suppressed_cells"),
                     counts=("admissions_known",)))),
    Section("risk", "Risk and protective factors",
            "How serious violence is associated with deprivation and other features of "
            "areas. These are associations, not causes.",
            (Exhibit("risk-correlation", "risk-correlation", "Rank correlations",
                     ("label", "lsoas", "spearman_rho", "ci_lower", "ci_upper", "p_value"),
                     chart="chart"),
             Exhibit("risk-models", "risk-models", "Count models (incidence rate ratios)",
                     ("label", "model", "irr", "irr_lower", "irr_upper", "p_value"),
                     where=pl.col("chosen") == True))),  # noqa: E712 - a Polars expression
    Section("comparison", "Comparison with the force area",
            "How the partnership compares with the rest of its police force area.",
            (Exhibit("comparison-force", "comparison-force", "Rates compared with the force",
                     ("level", "name", "count", "rate_per_1000", "rate_lower", "rate_upper",
                      "ratio_to_force", "p_value"),
                     counts=("count",), rates=dict.fromkeys(
                         ("rate_per_1000", "rate_lower", "rate_upper", "ratio_to_force",
                          "p_value"), "count"),
                     where=pl.col("category") == "All serious violence",
                     chart="chart"),)),
    Section("quality", "Data quality, gaps and limitations",
            "How complete and timely each partner's data is, and what is missing.",
            (Exhibit("quality-sources", "quality-sources", "Data quality by source",
                     ("source", "loads", "rows_read", "rows_loaded", "rows_quarantined",
                      "missing_months")),
             Exhibit("quality-gaps", "quality-gaps", "Gaps", ("source", "kind", "gap")))),
    Section("recommendations", "Recommendations",
            "Drafted from the findings for the partnership's analysts to edit."),
)
