"""Every partner's extract for the demo, written as the partner's own system would export it.

Person-level extracts carry raw fake identifiers (names, dates of birth, NHS numbers, UPNs,
PNC ids, postcodes) and are pseudonymised by :mod:`svduty.demo.build` exactly as a partner
would before sending. Planted structure: a cohort of suspended pupils who later appear in
youth-justice and emergency-department data, and assaults seen by the emergency department
that were never reported to the police.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from svduty.demo import people as P
from svduty.demo.crime import MONTHS, START, months
from svduty.demo.geography import Geography

END = months()[-1].replace(day=28)
INJURY_CODES = ("1", "2", "5D", "5E", "8N", "8S", "8P", "34A", "34B")
ED_SHARE_OF_INJURY = 0.22  # police-recorded injury assaults whose victim attends the ED
UNREPORTED_SHARE = 0.65  # ED assault attendances never reported to the police (planted)
COHORT_SIZE = 150
COHORT_YJ = 45
COHORT_ED = 30
SYNTHETIC = "SYNTHETIC"


@dataclass
class Truth:
    """What was planted, for tests and the demo's README."""

    figures: dict = field(default_factory=dict)


def financial_year(day: date) -> str:
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return path


def by_financial_year(frame: pl.DataFrame, date_column: str, folder: Path, stem: str
                      ) -> list[Path]:
    """One file per financial year, as most partners send."""
    out = []
    years = frame.with_columns(pl.col(date_column).map_elements(
        lambda d: financial_year(d if isinstance(d, date) else d.date()), pl.String)
        .alias("_fy"))
    for part in years.partition_by("_fy", maintain_order=True):
        out.append(write_csv(part.drop("_fy"), folder / f"{SYNTHETIC}-{stem}-{part['_fy'][0]}.csv"))
    return out


# ----------------------------------------------------------------------------- people


def pick_by_age(rng: np.random.Generator, pool: pl.DataFrame, when: list[datetime],
                ages: np.ndarray) -> np.ndarray:
    """Row indices of pool people roughly `ages` old on `when` (nearby DOBs: repeats occur)."""
    dobs = pool["dob"].to_numpy().astype("datetime64[D]").astype(np.int64)
    order = np.argsort(dobs)
    sorted_dobs = dobs[order]
    target = (np.array(when, dtype="datetime64[D]").astype(np.int64)
              - (ages * 365.25 + rng.uniform(0, 365, len(ages))).astype(np.int64))
    spot = np.searchsorted(sorted_dobs, target)
    spot = np.clip(spot + rng.integers(-40, 40, len(spot)), 0, len(order) - 1)
    return order[spot]


def victim_ages(rng: np.random.Generator, n: int, nte: np.ndarray) -> np.ndarray:
    general = np.clip(rng.gamma(4.0, 8.5, n) + 4, 5, 90)
    young = np.clip(rng.normal(23, 5, n), 16, 45)
    return np.where(nte, young, general).astype(int)


def suspect_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.gamma(3.2, 9.0, n) + 10, 10, 80).astype(int)


# -------------------------------------------------------------- police recorded crime


def police_people(rng: np.random.Generator, crimes: pl.DataFrame, pool: pl.DataFrame
                  ) -> pl.DataFrame:
    """Victim and suspect rows (crime_reference, role, person row index, age)."""
    from svduty.demo.crime import VICTIMLESS

    has_victim = ~crimes["offence_code"].is_in(VICTIMLESS).to_numpy()
    when = crimes["occurred_at"].to_list()
    nte = crimes["night_time_economy"].to_numpy()
    rows = []
    v = np.flatnonzero(has_victim)
    v_idx = pick_by_age(rng, pool, [when[i] for i in v], victim_ages(rng, len(v), nte[v]))
    rows.append(pl.DataFrame({"crime": v, "role": "victim", "who": v_idx}))
    known = np.flatnonzero(rng.uniform(size=crimes.height) < 0.62)
    s_idx = pick_by_age(rng, pool, [when[i] for i in known], suspect_ages(rng, len(known)))
    rows.append(pl.DataFrame({"crime": known, "role": "suspect", "who": s_idx}))
    return pl.concat(rows)


def police_extract(crimes: pl.DataFrame, links: pl.DataFrame, pool: pl.DataFrame,
                   rng: np.random.Generator) -> pl.DataFrame:
    """The force's crime x person extract with raw identifiers (before pseudonymising)."""
    crimes = crimes.with_row_index("crime").with_columns(pl.col("crime").cast(pl.Int64))
    people = pool.with_row_index("who").with_columns(pl.col("who").cast(pl.Int64))
    recorded = P.as_recorded(rng, people, 0.02)
    outcome = rng.choice(np.array([
        "Charged/summonsed", "Evidential difficulties: victim does not support action",
        "Investigation complete: no suspect identified", "Community resolution"]),
        crimes.height, p=[0.12, 0.5, 0.33, 0.05])
    crimes = crimes.with_columns(pl.Series("outcome", outcome))
    rows = crimes.join(links.with_columns(pl.col("crime").cast(pl.Int64),
                                          pl.col("who").cast(pl.Int64)),
                       on="crime", how="left").join(recorded, on="who", how="left")
    flag = {True: "Y", False: "N"}
    return rows.select(
        "crime_reference", "offence_code",
        pl.col("occurred_at").dt.strftime("%d/%m/%Y").alias("offence_date"),
        pl.col("occurred_at").dt.strftime("%H:%M").alias("offence_time"),
        "lsoa_code", pl.col("x").round(0).cast(pl.Int64).alias("easting"),
        pl.col("y").round(0).cast(pl.Int64).alias("northing"),
        *[pl.col(c).replace_strict(flag, return_dtype=pl.String).alias(name)
          for c, name in (("knife", "knife_sharp_instrument"), ("firearm", "firearm"),
                          ("domestic", "domestic_abuse"), ("alcohol", "alcohol"),
                          ("county_lines", "county_lines"),
                          ("night_time_economy", "night_time_economy"))],
        "outcome", "role", "forename", "surname",
        pl.col("dob").alias("date_of_birth"),
        pl.when(pl.col("role") == "suspect").then(pl.col("pnc_id")).alias("pnc_id"),
        P.age_on(pl.col("dob"), pl.col("occurred_at").dt.date()).alias("age"),
        "sex", "ethnicity",
    )


def police_uk_files(crimes: pl.DataFrame, geo: Geography, rng: np.random.Generator,
                    folder: Path) -> list[Path]:
    """data.police.uk street-level files: one per month for the force, every category."""
    from pyproj import Transformer

    from svduty.definition.catalogue import load_catalogue
    from svduty.demo.crime import calibration

    category = dict(load_catalogue().select("code", "police_uk_category").iter_rows())
    rates = calibration()["rate_per_1000_year"]["Plymouth"]
    own = {"Violence and sexual offences", "Robbery", "Possession of weapons", "Drugs"}
    extra = other_crime(rng, geo, {k: v for k, v in rates.items() if k not in own})
    ours = crimes.select(
        "month", "lsoa_code", "street", "x", "y",
        pl.col("offence_code").replace_strict(category, default="Other crime")
        .alias("crime_type"))
    rows = pl.concat([ours, extra]).join(
        geo.lsoas.select(pl.col("code").alias("lsoa_code"), pl.col("name").alias("lsoa_name")),
        on="lsoa_code")
    lon, lat = Transformer.from_crs(27700, 4326, always_xy=True).transform(
        rows["x"].to_numpy(), rows["y"].to_numpy())
    ids = [f"{rng.integers(0, 2**63):016x}{rng.integers(0, 2**63):016x}" * 2
           for _ in range(rows.height)]
    frame = rows.with_columns(
        pl.Series("Longitude", np.round(lon, 6)), pl.Series("Latitude", np.round(lat, 6)),
        pl.Series("Crime ID", ids))
    out = []
    for month in months():
        part = frame.filter(pl.col("month") == month)
        table = part.select(
            pl.when(pl.col("crime_type") == "Anti-social behaviour")
            .then(pl.lit(None, pl.String)).otherwise(pl.col("Crime ID")).alias("Crime ID"),
            pl.col("month").dt.strftime("%Y-%m").alias("Month"),
            pl.lit("Anyshire Police").alias("Reported by"),
            pl.lit("Anyshire Police").alias("Falls within"), "Longitude", "Latitude",
            (pl.lit("On or near ") + pl.col("street")).alias("Location"),
            pl.col("lsoa_code").alias("LSOA code"), pl.col("lsoa_name").alias("LSOA name"),
            pl.col("crime_type").alias("Crime type"),
            pl.lit("Status update unavailable").alias("Last outcome category"),
            pl.lit(None, pl.String).alias("Context"))
        stamp = month.strftime("%Y-%m")
        out.append(write_csv(table, folder / stamp / f"{stamp}-anyshire-street.csv"))
    return out


def other_crime(rng: np.random.Generator, geo: Geography, rates: dict[str, float]
                ) -> pl.DataFrame:
    """Crime the force extract does not carry (ASB, burglary, theft...), for police.uk."""
    from svduty.demo.crime import street_points

    lsoas = geo.lsoas
    weight = np.exp(0.35 * lsoas["deprivation"].to_numpy())
    weight = weight / weight.mean()
    residents = lsoas["residents"].to_numpy()
    codes = lsoas["code"].to_numpy()
    frames = []
    for month in months():
        for kind, rate in rates.items():
            counts = rng.poisson(rate * residents / 1000 / 12 * weight)
            frames.append(pl.DataFrame({"month": month, "lsoa_code": np.repeat(codes, counts),
                                        "crime_type": kind}))
    frame = pl.concat(frames)
    points = street_points(geo, rng, frame["lsoa_code"].to_numpy())
    return frame.with_columns(points["street"], points["x"], points["y"]).select(
        "month", "lsoa_code", "street", "x", "y", "crime_type")


# ------------------------------------------------------------ school and the cohort


def schools(geo: Geography, rng: np.random.Generator) -> pl.DataFrame:
    """Secondary schools (URNs 9xxxxx: unused by real schools), each serving nearby LSOAs."""
    town = geo.partnership_lsoas
    picks = town.sample(12, seed=int(rng.integers(0, 2**31)))
    return picks.select(pl.Series("school_urn", [f"{990001 + i}" for i in range(12)]),
                        pl.col("code").alias("school_lsoa"), "x", "y")


def nearest_school(people: pl.DataFrame, geo: Geography, schools_: pl.DataFrame) -> list[str]:
    xy = geo.lsoas.select("code", "x", "y")
    homes = people.select("home_lsoa").join(xy, left_on="home_lsoa", right_on="code",
                                            how="left")
    sx, sy = schools_["x"].to_numpy(), schools_["y"].to_numpy()
    d = (homes["x"].to_numpy()[:, None] - sx) ** 2 + (homes["y"].to_numpy()[:, None] - sy) ** 2
    return schools_["school_urn"].to_numpy()[np.argmin(d, axis=1)].tolist()


REASONS = (("Persistent disruptive behaviour", 0.36, False),
           ("Verbal abuse or threatening behaviour against an adult", 0.16, False),
           ("Physical assault against a pupil", 0.15, True),
           ("Physical assault against an adult", 0.05, True),
           ("Verbal abuse or threatening behaviour against a pupil", 0.07, False),
           ("Drug and alcohol related", 0.04, False),
           ("Use or threat of use of an offensive weapon or prohibited item", 0.02, True),
           ("Damage", 0.03, False), ("Bullying", 0.03, False), ("Other", 0.09, False))


def school_extracts(rng: np.random.Generator, geo: Geography, pupils: pl.DataFrame,
                    cohort: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Suspensions and permanent exclusions (raw identifiers) and absence by school."""
    schools_ = schools(geo, rng)
    urn = nearest_school(pupils, geo, schools_)
    dep = pupils.join(geo.lsoas.select(pl.col("code").alias("home_lsoa"), "deprivation"),
                      on="home_lsoa", how="left")["deprivation"].to_numpy()
    weight = np.exp(0.8 * dep)
    n = int(pupils.height * 0.09 * MONTHS / 12)
    who = rng.choice(pupils.height, n, p=weight / weight.sum())
    days = np.array([(START + timedelta(days=int(d))) for d in rng.integers(0, MONTHS * 30, n)])
    # the cohort: suspended for violence in the 2022/23 school year
    c_days = np.array([date(2022, 9, 5) + timedelta(days=int(d))
                       for d in rng.integers(0, 290, len(cohort))])
    who = np.concatenate([who, cohort])
    days = np.concatenate([days, c_days])
    names, probs, violent = zip(*REASONS, strict=True)
    reason = rng.choice(np.array(names), len(who), p=np.array(probs) / sum(probs))
    violent_reasons = np.array([r for r, v in zip(names, violent, strict=True) if v])
    reason[-len(cohort):] = rng.choice(violent_reasons, len(cohort))
    frame = P.as_recorded(rng, pupils, 0.01)[who.tolist()].with_columns(
        pl.Series("start_date", days.tolist(), dtype=pl.Date),
        pl.Series("reason", reason), pl.Series("school_urn", [urn[i] for i in who]))
    frame = frame.with_columns(P.age_on(pl.col("dob"), pl.col("start_date")).alias("age"))
    frame = frame.filter(pl.col("age").is_between(11, 16) & (pl.col("start_date") <= END))
    perm = rng.uniform(size=frame.height) < 0.012
    exclusions = frame.with_row_index("i").select(
        (pl.lit("EX") + pl.col("i").cast(pl.String).str.zfill(6)).alias("exclusion_id"),
        "forename", "surname", pl.col("dob").alias("date_of_birth"), "upn",
        pl.col("start_date").dt.strftime("%d/%m/%Y").alias("start_date"),
        pl.Series("category", np.where(perm, "Permanent exclusion", "Suspension")),
        "reason", pl.Series("sessions", rng.integers(1, 10, frame.height)),
        "school_urn", "age", "sex", "ethnicity", pl.col("home_lsoa"))
    absence = absence_counts(rng, schools_, pupils, urn)
    return exclusions, absence


def absence_counts(rng: np.random.Generator, schools_: pl.DataFrame, pupils: pl.DataFrame,
                   urn: list[str]) -> pl.DataFrame:
    rolls = pl.DataFrame({"school_urn": urn}).group_by("school_urn").len()
    rows = []
    for year in ("202223", "202324", "202425"):
        for school, roll in rolls.iter_rows():
            enrol = int(roll * 0.75)
            rate = rng.uniform(0.14, 0.32)
            rows.append((year, school, enrol, int(enrol * rate), int(enrol * rate * 0.09)))
    return pl.DataFrame(rows, schema=["time_period", "school_urn", "enrolments",
                                      "persistent_absentees", "severe_absentees"], orient="row")


# ------------------------------------------------------------- youth justice, probation


OUTCOMES_YJ = ("Youth caution", "Youth conditional caution", "Referral order",
               "Youth rehabilitation order", "Community resolution",
               "Detention and training order")
ORDERS = ("Community order", "Suspended sentence order", "Licence", "Post-sentence supervision")


def youth_justice_extract(rng: np.random.Generator, suspects: pl.DataFrame) -> pl.DataFrame:
    """Offences by 10-17-year-olds that reached a formal outcome (from police suspects)."""
    young = suspects.filter(pl.col("age").is_between(10, 17))
    keep = young.filter(pl.col("cohort") | (pl.Series(rng.uniform(size=young.height)) < 0.45))
    outcome = rng.choice(np.array(OUTCOMES_YJ), keep.height,
                         p=[0.2, 0.15, 0.3, 0.15, 0.15, 0.05])
    delay = rng.integers(20, 120, keep.height)
    return P.as_recorded(rng, keep, 0.02).with_row_index("i").select(
        (pl.lit("YJ") + pl.col("i").cast(pl.String).str.zfill(6)).alias("offence_id"),
        "forename", "surname", pl.col("dob").alias("date_of_birth"), "pnc_id",
        pl.col("occurred_at").dt.strftime("%Y-%m-%d").alias("offence_date"), "offence_code",
        pl.Series("outcome", outcome),
        (pl.col("occurred_at").dt.date() + pl.duration(days=pl.Series(delay)))
        .dt.strftime("%Y-%m-%d").alias("outcome_date"),
        "age", "sex", "ethnicity", "home_lsoa")


def probation_extract(rng: np.random.Generator, suspects: pl.DataFrame) -> pl.DataFrame:
    adults = suspects.filter(pl.col("age") >= 18)
    keep = adults.filter(pl.Series(rng.uniform(size=adults.height)) < 0.12)
    start = [d.date() + timedelta(days=int(k)) for d, k in zip(
        keep["occurred_at"], rng.integers(60, 240, keep.height), strict=True)]
    length = rng.integers(180, 720, keep.height)
    end = [s + timedelta(days=int(k)) if s + timedelta(days=int(k)) < END else None
           for s, k in zip(start, length, strict=True)]
    frame = P.as_recorded(rng, keep, 0.02).with_columns(
        pl.Series("start_date", start), pl.Series("end_date", end, dtype=pl.Date))
    frame = frame.filter(pl.col("start_date") <= END)
    return frame.with_row_index("i").select(
        (pl.lit("PR") + pl.col("i").cast(pl.String).str.zfill(6)).alias("supervision_id"),
        "forename", "surname", pl.col("dob").alias("date_of_birth"), "pnc_id",
        pl.col("start_date").dt.strftime("%Y-%m-%d"), pl.col("end_date").dt.strftime("%Y-%m-%d"),
        pl.Series("order_type", rng.choice(np.array(ORDERS), frame.height)),
        pl.col("offence_code").alias("index_offence"),
        pl.Series("risk_of_serious_harm", rng.choice(np.array(["Low", "Medium", "High"]),
                                                     frame.height, p=[0.45, 0.43, 0.12])),
        P.age_on(pl.col("dob"), pl.col("start_date")).alias("age"),
        "sex", "ethnicity", "home_lsoa")


# -------------------------------------------------------- emergency department and health

METHOD = {"knife": "Knife or sharp object", "blunt": "Blunt object", "body": "Fist or feet",
          "glass": "Glass or bottle", "other": "Other"}
ICD10 = {"knife": "X99", "blunt": "Y00", "body": "Y04", "glass": "X99", "other": "Y09"}


def ed_attendances(rng: np.random.Generator, geo: Geography, crimes: pl.DataFrame,
                   victims: pl.DataFrame, pool: pl.DataFrame, cohort_people: pl.DataFrame,
                   truth: Truth) -> pl.DataFrame:
    """Assault attendances at Anytown General's ED: some reported to police, most not."""
    injury = victims.filter(pl.col("offence_code").is_in(INJURY_CODES)
                            & pl.col("in_partnership"))
    reported = injury.filter(pl.Series(rng.uniform(size=injury.height)) < ED_SHARE_OF_INJURY)
    n_unreported = round(reported.height * UNREPORTED_SHARE / (1 - UNREPORTED_SHARE))
    template = injury.sample(n_unreported - COHORT_ED, with_replacement=True,
                             seed=int(rng.integers(0, 2**31)))
    shift = rng.integers(-200, 200, template.height)  # another assault, another day
    unreported = template.with_columns(
        (pl.col("occurred_at") + pl.duration(days=pl.Series(shift))).alias("occurred_at"))
    unreported = unreported.filter(pl.col("occurred_at").dt.date().is_between(START, END))
    people_u = pick_by_age(rng, pool, unreported["occurred_at"].to_list(),
                           victim_ages(rng, unreported.height,
                                       unreported["night_time_economy"].to_numpy()))
    unreported = unreported.drop(pool.columns, strict=False).hstack(pool[people_u.tolist()])
    cohort = cohort_ed(rng, injury, cohort_people)
    frame = pl.concat([reported.with_columns(pl.lit(True).alias("reported")),
                       unreported.with_columns(pl.lit(False).alias("reported")),
                       cohort.with_columns(pl.lit(False).alias("reported"))],
                      how="diagonal_relaxed")
    truth.figures["ed"] = {
        "attendances": frame.height, "reported_to_police": reported.height,
        "planted_unreported_share": round(1 - reported.height / frame.height, 4),
        "cohort_attendances": cohort.height,
    }
    return frame.with_columns(pl.Series("method", method_of(rng, frame)))


def cohort_ed(rng: np.random.Generator, injury: pl.DataFrame, cohort_people: pl.DataFrame
              ) -> pl.DataFrame:
    """Cohort members assaulted after their suspension (attend ED, not reported)."""
    chosen = cohort_people.sample(COHORT_ED, seed=int(rng.integers(0, 2**31)))
    places = injury.sample(COHORT_ED, seed=int(rng.integers(0, 2**31)))
    when = [datetime(2023, 6, 1) + timedelta(days=int(d), hours=int(h)) for d, h in
            zip(rng.integers(0, 800, COHORT_ED), rng.integers(0, 24, COHORT_ED), strict=True)]
    return places.drop(chosen.columns, strict=False).hstack(chosen).with_columns(
        pl.Series("occurred_at", when))


def method_of(rng: np.random.Generator, frame: pl.DataFrame) -> list[str]:
    knife = frame["knife"].fill_null(False).to_numpy()
    other = rng.choice(np.array(["body", "blunt", "glass", "other"]), frame.height,
                       p=[0.68, 0.14, 0.1, 0.08])
    return np.where(knife, "knife", other).tolist()


def describe_location(rng: np.random.Generator, geo: Geography, frame: pl.DataFrame
                      ) -> tuple[list[str], list[str]]:
    """Free text as receptionists type it, and the location type."""
    places = geo.places.group_by("lsoa_code").agg("name")
    place_of = dict(zip(places["lsoa_code"], places["name"], strict=True))
    postcodes = geo.postcodes.group_by("lsoa_code").agg("postcode")
    postcode_of = dict(zip(postcodes["lsoa_code"], postcodes["postcode"], strict=True))
    texts, kinds = [], []
    for lsoa, street, domestic, nte in frame.select(
            "lsoa_code", "street", "domestic", "night_time_economy").iter_rows():
        roll = rng.uniform()
        if domestic:
            texts.append(rng.choice(["at home", "home address", "partner's flat",
                                     f"home {rng.choice(postcode_of[lsoa])}"]))
            kinds.append("Home")
        elif nte and lsoa in place_of and roll < 0.6:
            texts.append(f"outside {rng.choice(place_of[lsoa])}, {street.lower()}")
            kinds.append("Licensed premises")
        elif roll < 0.45:
            texts.append(rng.choice([street, f"near {street}", f"{street.upper()} by the shops",
                                     f"st - {street}"]))
            kinds.append("Street or public place")
        elif roll < 0.6:
            texts.append(f"{rng.choice(postcode_of[lsoa])}")
            kinds.append("Street or public place")
        elif roll < 0.7:
            texts.append(rng.choice(["in town", "dont know", "park", "friends house",
                                     "near John Smith's house"]))
            kinds.append("Other")
        else:
            texts.append(f"{rng.choice(['by', 'on', 'in'])} {street} near the co-op")
            kinds.append("Street or public place")
    return texts, kinds


def ed_extract(rng: np.random.Generator, geo: Geography, ed: pl.DataFrame) -> pl.DataFrame:
    texts, kinds = describe_location(rng, geo, ed)
    arrival = [t + timedelta(minutes=int(m)) for t, m in
               zip(ed["occurred_at"], rng.integers(20, 360, ed.height), strict=True)]
    recorded = P.as_recorded(rng, ed.select(
        "forename", "surname", "dob", "sex", "nhs_number", "postcode"), 0.02)
    return recorded.with_row_index("i").select(
        (pl.lit("ATG") + pl.col("i").cast(pl.String).str.zfill(7)).alias("attendance_id"),
        pl.lit("RAT01").alias("site_code"),
        pl.Series("arrival_datetime", arrival).dt.strftime("%Y-%m-%d %H:%M"),
        ed["occurred_at"].dt.strftime("%Y-%m-%d %H:%M").alias("assault_datetime"),
        pl.Series("assault_method", ed["method"].replace_strict(METHOD)),
        pl.Series("assault_location_type", kinds),
        pl.Series("assault_location_description", texts),
        pl.Series("age_band", age_bands(P.age_on(ed["dob"], ed["occurred_at"].dt.date()))),
        "sex", "forename", "surname", pl.col("dob").alias("date_of_birth"), "nhs_number")


def age_bands(ages: pl.Series) -> pl.Series:
    edges = [(0, 9, "0-9"), (10, 17, "10-17"), (18, 24, "18-24"), (25, 34, "25-34"),
             (35, 44, "35-44"), (45, 54, "45-54"), (55, 64, "55-64")]
    expr = pl.lit("65+")
    for low, high, label in reversed(edges):
        expr = pl.when(pl.col("a").is_between(low, high)).then(pl.lit(label)).otherwise(expr)
    return pl.DataFrame({"a": ages}).select(expr.alias("age_band")).to_series()


def hospital_admissions(rng: np.random.Generator, geo: Geography, ed: pl.DataFrame
                        ) -> pl.DataFrame:
    """Emergency admissions for assault by ward, financial year, cause and age band, with
    counts of 1-5 suppressed by the sender (as HES outputs are)."""
    admitted = ed.filter(pl.Series(rng.uniform(size=ed.height))
                         < np.where(ed["method"] == "knife", 0.45, 0.1))
    frame = admitted.join(geo.lsoas.select(pl.col("code").alias("lsoa_code"), "ward_code"),
                          on="lsoa_code").with_columns(
        pl.col("occurred_at").dt.date().map_elements(financial_year, pl.String)
        .str.replace("-", "/").alias("period"),
        pl.col("method").replace_strict(ICD10).alias("cause"),
        pl.when(P.age_on(pl.col("dob"), pl.col("occurred_at").dt.date()) < 25)
        .then(pl.lit("0-24")).otherwise(pl.lit("25+")).alias("age_band"))
    counts = frame.group_by("ward_code", "period", "cause", "age_band").len().sort(
        "ward_code", "period", "cause", "age_band")
    return counts.select(
        pl.col("ward_code").alias("area_code"), "period", "cause", "age_band",
        pl.when(pl.col("len") <= 5).then(pl.lit("*")).otherwise(pl.col("len").cast(pl.String))
        .alias("admissions"))


# ------------------------------------------------------------------ fire and ambulance


def fire_extract(rng: np.random.Generator, geo: Geography) -> pl.DataFrame:
    from svduty.demo.crime import street_points

    town = geo.partnership_lsoas
    weight = np.exp(0.7 * town["deprivation"].to_numpy())
    rows = []
    for month in months():
        lift = 1.6 if month.month in (3, 4, 10, 11) else 1.0
        n = rng.poisson(2.2 * town["residents"].sum() / 1000 / 12 * lift)
        rows.append(pl.DataFrame({
            "month": month, "lsoa_code": town["code"].to_numpy()[
                rng.choice(town.height, n, p=weight / weight.sum())]}))
    frame = pl.concat(rows)
    points = street_points(geo, rng, frame["lsoa_code"].to_numpy())
    kind = rng.choice(np.array(["Secondary fire - deliberate", "Primary fire - deliberate",
                                "Attack on firefighters"]), frame.height, p=[0.7, 0.28, 0.02])
    day = [m + timedelta(days=int(d)) for m, d in
           zip(frame["month"], rng.integers(0, 28, frame.height), strict=True)]
    return frame.with_row_index("i").select(
        (pl.lit("AFRS/") + pl.col("i").cast(pl.String).str.zfill(6)).alias("incident_id"),
        pl.Series("incident_date", day).dt.strftime("%d/%m/%Y"),
        pl.Series("incident_time", [f"{h:02d}:{m:02d}" for h, m in zip(
            rng.choice(24, frame.height), rng.integers(0, 60, frame.height), strict=True)]),
        pl.Series("incident_type", kind),
        pl.Series("property_type", rng.choice(np.array(["Refuse", "Car", "Grassland",
                                                        "Dwelling", "Wheelie bin"]),
                                              frame.height)),
        points["x"].round(0).cast(pl.Int64).alias("easting"),
        points["y"].round(0).cast(pl.Int64).alias("northing"),
        pl.Series("casualties", rng.choice([0, 0, 0, 0, 1], frame.height)))


def ambulance_extract(rng: np.random.Generator, ed: pl.DataFrame) -> pl.DataFrame:
    calls = ed.filter(pl.Series(rng.uniform(size=ed.height)) < 0.55)
    complaint = np.where(calls["method"] == "knife", "27B01 Stab/Gunshot/Penetrating trauma",
                         "04B01 Assault/Sexual assault")
    return calls.with_row_index("i").select(
        (pl.lit("CAD") + pl.col("i").cast(pl.String).str.zfill(7)).alias("incident_id"),
        pl.col("occurred_at").dt.strftime("%d/%m/%Y").alias("call_date"),
        pl.col("occurred_at").dt.strftime("%H:%M").alias("call_time"),
        pl.Series("category", rng.choice(np.array(["C1", "C2", "C3"]), calls.height,
                                         p=[0.15, 0.6, 0.25])),
        pl.Series("chief_complaint", complaint),
        age_bands(P.age_on(calls["dob"], calls["occurred_at"].dt.date())),
        pl.col("sex"),
        pl.col("x").round(0).cast(pl.Int64).alias("easting"),
        pl.col("y").round(0).cast(pl.Int64).alias("northing"),
        pl.Series("conveyed", rng.choice(np.array(["Y", "N"]), calls.height, p=[0.7, 0.3])))
