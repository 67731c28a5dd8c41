"""Synthetic people with raw fake identifiers, as partners' systems would hold them.

Names come from short lists of common British names; dates of birth, NHS numbers (valid
Modulus 11 check digit), UPNs, PNC ids and postcodes have the real formats but are random.
None of it describes a real person. A small share of records are written with the errors
real systems have (a misspelt surname, day and month swapped) so linkage is realistic.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

FORENAMES_M = ("Oliver", "Jack", "Harry", "George", "Noah", "Charlie", "Jacob", "Alfie",
               "Freddie", "Oscar", "Leo", "Logan", "Archie", "Theo", "Thomas", "James",
               "Joshua", "Mason", "Ethan", "Lewis", "Kai", "Tyler", "Callum", "Connor",
               "Liam", "Reece", "Jordan", "Kyle", "Daniel", "Ryan", "Mohammed", "Adam")
FORENAMES_F = ("Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie",
               "Sophia", "Grace", "Freya", "Poppy", "Ella", "Evie", "Chloe", "Jessica",
               "Emily", "Ruby", "Megan", "Holly", "Lauren", "Chelsea", "Jade", "Leah",
               "Aaliyah", "Zara", "Sophie", "Hannah", "Amber", "Paige", "Niamh")
SURNAMES = ("Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson",
            "Thomas", "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker",
            "White", "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke",
            "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris",
            "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen", "James",
            "Scott", "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett", "Young",
            "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey",
            "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Khan",
            "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Begum", "Wilkinson",
            "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason", "Ali", "Hunt",
            "Hussain", "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes",
            "Knight", "Lloyd", "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins",
            "Murray", "Dixon", "Harvey", "Graham", "Pearson", "Ahmed", "Fletcher", "Walsh",
            "Kaur", "Gibson", "Howard", "Andrews", "Stewart", "Elliott", "Reynolds", "Saunders",
            "Payne", "Fox", "Ford", "Pearce", "Day", "Brooks", "West", "Lawrence", "Cole",
            "Atkinson", "Bradley", "Spencer", "Gill", "Dawson", "Ball", "Burton", "O'Brien")
ETHNICITIES = ("White", "White", "White", "White", "White", "White", "White", "White",
               "Asian", "Black", "Mixed", "Other")


def population(rng: np.random.Generator, n: int, lsoas: pl.DataFrame, postcodes: pl.DataFrame,
               born: tuple[date, date], weights: np.ndarray | None = None,
               prefix: str = "P") -> pl.DataFrame:
    """n people born in `born`, living in `lsoas` (chosen by `weights`), with identifiers."""
    codes = lsoas["code"].to_numpy()
    p = None if weights is None else weights / weights.sum()
    home = codes[rng.choice(len(codes), n, p=p)]
    sex = rng.choice(np.array(["M", "F"]), n)
    forename = np.where(sex == "M", rng.choice(np.array(FORENAMES_M), n),
                        rng.choice(np.array(FORENAMES_F), n))
    span = (born[1] - born[0]).days
    dob = [born[0] + timedelta(days=int(d)) for d in rng.integers(0, span, n)]
    frame = pl.DataFrame({
        "person": [f"{prefix}{i:07d}" for i in range(n)], "forename": forename,
        "surname": rng.choice(np.array(SURNAMES), n), "sex": sex, "dob": dob,
        "home_lsoa": home, "ethnicity": rng.choice(np.array(ETHNICITIES), n),
        "nhs_number": nhs_numbers(rng, n), "upn": upns(rng, n),
        "pnc_id": [f"{rng.integers(10, 25):02d}/{rng.integers(1, 999999):06d}"
                   f"{chr(65 + rng.integers(0, 26))}" for _ in range(n)],
    })
    return frame.join(postcode_for(rng, frame, postcodes), on="person")


def postcode_for(rng: np.random.Generator, people: pl.DataFrame,
                 postcodes: pl.DataFrame) -> pl.DataFrame:
    """A postcode in each person's home LSOA."""
    grouped = postcodes.group_by("lsoa_code").agg("postcode")
    lookup = dict(zip(grouped["lsoa_code"], grouped["postcode"], strict=True))
    chosen = [lookup[h][int(rng.integers(0, len(lookup[h])))] for h in people["home_lsoa"]]
    return pl.DataFrame({"person": people["person"], "postcode": chosen})


def nhs_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Ten-digit numbers with a valid Modulus 11 check digit (in the unissued 9xx range)."""
    out = []
    while len(out) < n:
        digits = [9, *rng.integers(0, 10, 8).tolist()]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            out.append("".join(map(str, digits)) + str(check))
    return out


def upns(rng: np.random.Generator, n: int) -> list[str]:
    """13-character UPNs: a check letter, LA number (999: not a real LA), then digits."""
    letters = "ABCDEFGHJKLMNPQRTUVWXYZ"
    return [f"{letters[rng.integers(0, len(letters))]}999{rng.integers(0, 10**9):09d}"
            for _ in range(n)]


def age_on(dob: pl.Expr, when: pl.Expr) -> pl.Expr:
    """Whole years between a date of birth and a date."""
    years = when.dt.year() - dob.dt.year()
    before = (when.dt.month() < dob.dt.month()) | (
        (when.dt.month() == dob.dt.month()) & (when.dt.day() < dob.dt.day()))
    return (years - before.cast(pl.Int32)).cast(pl.Int32)


def as_recorded(rng: np.random.Generator, people: pl.DataFrame, error: float = 0.03
                ) -> pl.DataFrame:
    """The identifiers as another system recorded them: some surnames misspelt, some dates
    of birth with day and month swapped (where that is still a date)."""
    n = people.height
    typo = rng.uniform(size=n) < error
    swap = rng.uniform(size=n) < error
    surnames = [misspell(rng, s) if t else s for s, t in zip(people["surname"], typo,
                                                             strict=True)]
    dobs = [swapped(d) if s else d for d, s in zip(people["dob"], swap, strict=True)]
    return people.with_columns(pl.Series("surname", surnames), pl.Series("dob", dobs))


def misspell(rng: np.random.Generator, name: str) -> str:
    if len(name) < 4:
        return name
    i = int(rng.integers(1, len(name) - 1))
    return name[:i] + name[i + 1] + name[i] + name[i + 2:]


def swapped(day: date) -> date:
    try:
        return date(day.year, day.day, day.month) if day.day <= 12 else day
    except ValueError:
        return day
