"""Police recorded crime for Anyshire, calibrated to real data, with planted hotspots.

Volumes per offence code follow the national rates in calibration.json (scaled to the
violence rate police.uk shows for comparable towns), seasonality follows 2025's monthly
pattern, and the spread across LSOAs follows deprivation plus smooth noise, giving about the
concentration seen in Plymouth, Liverpool and Milton Keynes. Three hotspots are planted:
the town-centre night-time economy and a deprived estate (persistent) and a third area whose
violence rises in the last twelve months (emerging).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources

import numpy as np
import polars as pl
import shapely

from svduty.demo.geography import Geography

START = date(2022, 4, 1)
MONTHS = 42  # April 2022 to September 2025: three financial years and a half
VIOLENCE_RATE = 42.0  # violence and sexual offences per 1,000 a year (Plymouth: 46)
DEPRIVATION_EFFECT = 0.45
# Relative risk of a planted hotspot LSOA, as a multiple of the median LSOA's risk. A level,
# not a lift on the LSOA's own risk: a lift on a low-risk centre LSOA would leave it
# unremarkable, and on the most deprived LSOA would dwarf every other cluster.
HOTSPOT_LEVEL = {"persistent-centre": 7.0, "persistent-estate": 6.0, "emerging": 8.0}
KNIFE = {"2": 0.35, "5D": 0.3, "5E": 0.2, "34B": 0.12, "34A": 0.15, "8N": 0.035, "9A": 0.04,
         "105A": 0.01, "1": 0.4, "10D": 1.0, "10C": 0.0}
FIREARM = {"2": 0.05, "5D": 0.02, "34B": 0.01, "1": 0.05, "10C": 0.0, "81": 1.0}
DOMESTIC = {"8N": 0.38, "105A": 0.35, "8L": 0.3, "8Q": 0.25, "9A": 0.4, "5D": 0.2,
            "19C": 0.3, "8R": 0.3, "1": 0.2}
VICTIMLESS = ("10A", "10C", "10D", "81", "92A", "92B", "92C", "92D", "8M")


def calibration() -> dict:
    text = resources.files("svduty.demo").joinpath("calibration.json").read_text("utf-8")
    return json.loads(text)


def months() -> list[date]:
    return [date(START.year + (START.month - 1 + i) // 12, (START.month - 1 + i) % 12 + 1, 1)
            for i in range(MONTHS)]


@dataclass
class Hotspots:
    """The planted hotspots: name -> LSOA codes."""

    areas: dict[str, list[str]]

    def risk(self, codes: np.ndarray, month_index: int, base: np.ndarray) -> np.ndarray:
        """`base` risk with each hotspot LSOA set to its level (x the median risk); the
        emerging one only in the last twelve months."""
        out, median = base.copy(), float(np.median(base))
        for name, members in self.areas.items():
            if name == "emerging" and month_index < MONTHS - 12:
                continue
            out[np.isin(codes, members)] = HOTSPOT_LEVEL[name] * median
        return out


def plant_hotspots(geo: Geography) -> Hotspots:
    """The centre LSOA and its neighbours; the most deprived estate; an emerging cluster."""
    town = geo.partnership_lsoas
    centre = town.sort("centre_distance")["code"][0]
    estate = town.filter(pl.col("centre_distance") > 0.35).sort(
        "deprivation", descending=True)["code"][0]
    far = town.filter((pl.col("centre_distance") > 0.45)
                      & (pl.col("deprivation").is_between(-0.3, 0.6)))
    estate_xy = town.filter(pl.col("code") == estate).select("x", "y").row(0)
    far = far.with_columns(((pl.col("x") - estate_xy[0]) ** 2 + (pl.col("y") - estate_xy[1]) ** 2)
                           .alias("_d")).sort("_d", descending=True)
    emerging = far["code"][0]
    return Hotspots({name: with_neighbours(geo, code, town["code"].to_list(), k)
                     for name, code, k in (("persistent-centre", centre, 3),
                                           ("persistent-estate", estate, 2),
                                           ("emerging", emerging, 2))})


def with_neighbours(geo: Geography, code: str, pool: list[str], k: int) -> list[str]:
    """An LSOA and its k most-bordering neighbours (by shared boundary length)."""
    shape = geo.polygons[code]
    shared = [(shapely.length(shapely.intersection(shape.boundary, geo.polygons[c].boundary)), c)
              for c in pool if c != code]
    return [code] + [c for length, c in sorted(shared, reverse=True)[:k] if length > 0]


def risk(geo: Geography, rng: np.random.Generator) -> np.ndarray:
    """Relative risk of violence by LSOA (population-weighted mean 1)."""
    from svduty.demo.geography import smooth_noise

    lsoas = geo.lsoas
    xy = lsoas.select("x", "y").to_numpy()
    raw = np.exp(DEPRIVATION_EFFECT * lsoas["deprivation"].to_numpy()
                 + 0.45 * smooth_noise(rng, xy, 1_200.0) + rng.normal(0, 0.25, lsoas.height))
    weights = lsoas["residents"].to_numpy()
    return raw / np.average(raw, weights=weights)


def generate_crimes(geo: Geography, rng: np.random.Generator, hotspots: Hotspots
                    ) -> pl.DataFrame:
    """One row per crime for both authorities: code, date, time, LSOA, point, flags."""
    cal = calibration()
    rates = cal["offence_mix"]["per_1000_year"]
    violence_codes = sum(v for c, v in rates.items() if not c.startswith(("92", "10", "81")))
    scale = VIOLENCE_RATE / violence_codes
    season = cal["seasonality"]["violence_2025"]
    lsoas = geo.lsoas
    codes = lsoas["code"].to_numpy()
    residents = lsoas["residents"].to_numpy()
    rr = risk(geo, rng)
    frames = []
    for m, month in enumerate(months()):
        trend = 1 + 0.02 * (m / 12)
        lift = hotspots.risk(codes, m, rr) * season[str(month.month)] * trend
        for offence, rate in rates.items():
            expected = rate * scale * residents / 1000 / 12 * lift
            counts = rng.poisson(expected)
            if counts.sum() == 0:
                continue
            frames.append(pl.DataFrame({
                "offence_code": offence, "month": month,
                "lsoa_code": np.repeat(codes, counts)}))
    crimes = pl.concat(frames)
    return add_details(crimes, geo, rng, hotspots)


def add_details(crimes: pl.DataFrame, geo: Geography, rng: np.random.Generator,
                hotspots: Hotspots) -> pl.DataFrame:
    n = crimes.height
    code = crimes["offence_code"].to_numpy()
    centre = np.isin(crimes["lsoa_code"].to_numpy(), hotspots.areas["persistent-centre"])
    domestic = rng.uniform(size=n) < np.vectorize(lambda c: DOMESTIC.get(c, 0.05))(code)
    nte = centre & ~domestic & (rng.uniform(size=n) < 0.7)
    when = timestamps(rng, crimes["month"].to_list(), nte, domestic)
    knife = rng.uniform(size=n) < np.vectorize(lambda c: KNIFE.get(c, 0.0))(code)
    firearm = ~knife & (rng.uniform(size=n) < np.vectorize(lambda c: FIREARM.get(c, 0.0))(code))
    alcohol = rng.uniform(size=n) < np.where(nte, 0.65, 0.18)
    county = np.char.startswith(code.astype(str), "92") & (rng.uniform(size=n) < 0.35)
    points = street_points(geo, rng, crimes["lsoa_code"].to_numpy())
    return crimes.with_columns(
        pl.Series("crime_reference", [f"AP/{22 + i % 4:02d}/{i + 100000:07d}" for i in range(n)]),
        pl.Series("occurred_at", when), pl.Series("domestic", domestic),
        pl.Series("night_time_economy", nte), pl.Series("knife", knife),
        pl.Series("firearm", firearm), pl.Series("alcohol", alcohol),
        pl.Series("county_lines", county), points["street"], points["x"], points["y"],
    ).sort("occurred_at")


def timestamps(rng: np.random.Generator, month_starts: list[date], nte: np.ndarray,
               domestic: np.ndarray) -> list[datetime]:
    """Dates in the month; hours peaking late evening, NTE at weekend nights 22:00-03:00."""
    n = len(month_starts)
    hours_general = np.array([3, 2, 1.5, 1, 0.7, 0.6, 0.8, 1.5, 2.5, 3, 3.5, 4, 4.5, 4.5, 4.8,
                              5.5, 6, 6.2, 6.2, 6.3, 6.5, 6.2, 5.5, 4.2])
    hours_nte = np.array([9, 8, 6, 3, .8, .3, .1, .1, .1, .1, .1, .2, .3, .3, .3, .4, .5, .7,
                          1, 1.5, 2.5, 4, 7, 9])
    hours_da = np.array([2.5, 2, 1.5, 1, .6, .5, .6, 1.2, 2, 2.5, 3, 3.5, 3.8, 4, 4.2, 4.8, 5.5,
                         6.5, 7.2, 7.5, 7.8, 7, 5.5, 3.8])
    out = []
    for i in range(n):
        start = month_starts[i]
        days = (date(start.year + start.month // 12, start.month % 12 + 1, 1) - start).days
        if nte[i]:
            profile = hours_nte
            while True:
                day = start + timedelta(days=int(rng.integers(0, days)))
                if day.weekday() in (4, 5, 6) or rng.uniform() < 0.25:
                    break
        else:
            profile = hours_da if domestic[i] else hours_general
            day = start + timedelta(days=int(rng.integers(0, days)))
        hour = int(rng.choice(24, p=profile / profile.sum()))
        out.append(datetime(day.year, day.month, day.day, hour, int(rng.integers(0, 60))))
    return out


def street_points(geo: Geography, rng: np.random.Generator, lsoa_codes: np.ndarray
                  ) -> dict[str, pl.Series]:
    """A street (and its snap point, as police.uk publishes) in each crime's LSOA."""
    grouped = geo.streets.group_by("lsoa_code", maintain_order=True).agg("street", "x", "y")
    index = {c: i for i, c in enumerate(grouped["lsoa_code"])}
    streets, xs, ys = grouped["street"].to_list(), grouped["x"].to_list(), grouped["y"].to_list()
    name, x, y = [], [], []
    for code in lsoa_codes:
        i = index[code]
        j = int(rng.integers(0, len(streets[i])))
        name.append(streets[i][j])
        x.append(xs[i][j] + rng.normal(0, 25))
        y.append(ys[i][j] + rng.normal(0, 25))
    return {"street": pl.Series("street", name), "x": pl.Series("x", x),
            "y": pl.Series("y", y)}
