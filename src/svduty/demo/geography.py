"""Anyshire: a synthetic force area of two local authorities, written as a reference folder.

Anytown (urban, the demo partnership) and Eastbrook (its rural neighbour) are cut into
LSOA-like areas by Voronoi cells of seeded points (denser in the town centre), grouped into
MSOAs and wards. Every code is in a range no real area uses (E01900001..., E05900001...,
E06900001...) and every name says it is synthetic. The folder is laid out like
``shared/data`` so ``svduty reference import`` reads it unchanged.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import shapely
from shapely.geometry import Point, mapping

FORCE = ("E23900001", "Anyshire")
REGION = "E12900001"
# code, name, CSP code, CSP name, centre (BNG), radius (m), LSOAs, centre density
AUTHORITIES = (
    ("E06900001", "Anytown", "E22900001", "Safer Anytown Partnership", (452_000, 262_000),
     7_500, 170, 3.0),
    ("E06900002", "Eastbrook", "E22900002", "Eastbrook Community Safety Partnership",
     (470_500, 262_000), 11_000, 70, 1.0),
)
AGE_BANDS = ("Aged 15 years and under", "Aged 16 to 24 years", "Aged 25 to 34 years",
             "Aged 35 to 49 years", "Aged 50 to 64 years", "Aged 65 years and over")
AGE_SHARES = (0.185, 0.115, 0.135, 0.185, 0.19, 0.19)
STREET_STEMS = (
    "High", "Station", "Church", "Mill", "Park", "Victoria", "Albert", "Queen", "King",
    "London", "Market", "Bridge", "North", "South", "West", "East", "Chapel", "Castle",
    "School", "Manor", "Grove", "Orchard", "Meadow", "Oak", "Elm", "Ash", "Beech", "Cedar",
    "Willow", "Rose", "Hill", "Green", "Spring", "Brook", "River", "Canal", "Forge", "Tanners",
    "Weavers", "Coopers", "Harbour", "Quarry", "Abbey", "Priory", "Union", "Nelson",
    "Wellington", "Trafalgar", "Windsor", "York", "Lancaster", "Stanley", "Clarence", "Cecil",
    "Belmont", "Fairfield", "Highfield", "Westfield", "Ashfield", "Brookfield", "Greenway",
    "Kingsway", "Hawthorn", "Holly", "Laurel", "Rowan", "Sycamore", "Poplar", "Larch",
    "Juniper", "Heather", "Bracken", "Foxglove", "Primrose", "Bluebell", "Sandpiper",
    "Kestrel", "Heron", "Swallow", "Linnet", "Wren", "Lark", "Falcon", "Osprey", "Plover",
    "Curlew", "Dunlin", "Merlin", "Raven", "Rook", "Thrush", "Finch", "Starling", "Martin",
)
STREET_KINDS = ("Street", "Road", "Lane", "Avenue", "Close", "Way", "Crescent", "Drive",
                "Gardens", "Terrace", "Place", "Walk")
WARD_NAMES = (
    "Central", "Harbourside", "St Mary's", "Northgate", "Southgate", "Westfield", "Eastwood",
    "Millbrook", "Castle", "Riverside", "Abbey", "Parkside", "Hillcrest", "Fairview",
    "Meadowbank", "Oakwood", "Kingsmead", "Queensway", "Ashgrove", "Brookside", "Highfield",
    "Stonebridge", "Greenacre", "Thornbury", "Longmoor", "Hatherley", "Redcliffe", "Whitehill",
    "Coldharbour", "Sandford",
)
PLACE_KINDS = ("The Red Lion", "The Crown", "The George", "Club Neon", "The Vaults",
               "Bus Station", "Railway Station", "Retail Park", "Recreation Ground",
               "Leisure Centre", "Shopping Centre", "Skate Park", "Community Centre",
               "Kebab House", "Food Bank", "Youth Centre")


@dataclass
class Geography:
    """The synthetic areas, as frames the generators use."""

    lsoas: pl.DataFrame   # code, name, lad_code, lad_name, msoa_code, ward_code, ward_name,
    #                        x, y (centroid), residents, deprivation (z), urban (0..1), ...
    polygons: dict[str, shapely.Geometry]
    streets: pl.DataFrame  # lsoa_code, street, x, y
    places: pl.DataFrame   # name, kind, lsoa_code, x, y
    postcodes: pl.DataFrame  # postcode, lsoa_code, x, y

    @property
    def partnership_lsoas(self) -> pl.DataFrame:
        return self.lsoas.filter(pl.col("lad_code") == AUTHORITIES[0][0])


def build(rng: np.random.Generator) -> Geography:
    """Generate both authorities: polygons, codes, names, population, deprivation."""
    frames, polygons = [], {}
    first = 1
    for index, spec in enumerate(AUTHORITIES):
        frame, polys = authority(rng, index, spec, first)
        frames.append(frame)
        polygons.update(polys)
        first += frame.height
    lsoas = pl.concat(frames)
    lsoas = with_wards_and_msoas(rng, lsoas)
    lsoas = with_population_and_deprivation(rng, lsoas)
    streets = make_streets(rng, lsoas, polygons)
    return Geography(lsoas, polygons, streets, make_places(rng, lsoas, polygons),
                     make_postcodes(rng, lsoas, polygons, streets))


def authority(rng: np.random.Generator, index: int, spec: tuple, first: int
              ) -> tuple[pl.DataFrame, dict[str, shapely.Geometry]]:
    code, name, csp, csp_name, centre, radius, n, density = spec
    outline = blob(rng, centre, radius)
    if index == 1:  # Eastbrook borders Anytown: remove the overlap
        outline = outline.difference(blob(np.random.default_rng(0), AUTHORITIES[0][4],
                                          AUTHORITIES[0][5]))
        outline = max(getattr(outline, "geoms", [outline]), key=lambda g: g.area)
    points = seed_points(rng, outline, centre, radius, n, density)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=outline)
    parts = [shapely.intersection(c, outline) for c in cells.geoms]
    parts = [p for p in parts if not p.is_empty and p.area > 0]
    codes = [f"E01{900000 + first + i:06d}" for i in range(len(parts))]
    cx = np.array([p.centroid.x for p in parts])
    cy = np.array([p.centroid.y for p in parts])
    distance = np.hypot(cx - centre[0], cy - centre[1]) / radius
    frame = pl.DataFrame({
        "code": codes, "lad_code": code, "lad_name": name, "csp_code": csp,
        "csp_name": csp_name, "x": cx, "y": cy, "centre_distance": distance,
        "area_km2": [p.area / 1e6 for p in parts],
    })
    return frame, dict(zip(codes, parts, strict=True))


def blob(rng: np.random.Generator, centre: tuple[float, float], radius: float
         ) -> shapely.Geometry:
    """An irregular, roughly round outline."""
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + 0.12 * np.sin(3 * angles + rng.uniform(0, 6)) + rng.normal(0, 0.03, 48)
    xs = centre[0] + radius * wobble * np.cos(angles)
    ys = centre[1] + radius * 0.85 * wobble * np.sin(angles)
    return shapely.Polygon(np.column_stack([xs, ys])).buffer(0)


def seed_points(rng: np.random.Generator, outline: shapely.Geometry, centre, radius: float,
                n: int, density: float) -> np.ndarray:
    """n points inside the outline, denser towards the centre when density > 1."""
    out = []
    minx, miny, maxx, maxy = outline.bounds
    while len(out) < n:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        d = np.hypot(x - centre[0], y - centre[1]) / radius
        if rng.uniform() < np.exp(-density * d * 1.2) + 0.08 and outline.contains(Point(x, y)):
            out.append((x, y))
    return np.array(out)


def kmeans(rng: np.random.Generator, xy: np.ndarray, k: int, rounds: int = 25) -> np.ndarray:
    """Cluster labels (plain Lloyd's algorithm; a few hundred points)."""
    centres = xy[rng.choice(len(xy), k, replace=False)]
    labels = np.zeros(len(xy), dtype=int)
    for _ in range(rounds):
        labels = np.argmin(((xy[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        centres = np.array([xy[labels == j].mean(0) if (labels == j).any() else centres[j]
                            for j in range(k)])
    return labels


def with_wards_and_msoas(rng: np.random.Generator, lsoas: pl.DataFrame) -> pl.DataFrame:
    parts, ward_no, msoa_no, names = [], 1, 1, iter(WARD_NAMES)
    for lad in lsoas.partition_by("lad_code", maintain_order=True):
        xy = lad.select("x", "y").to_numpy()
        wards = kmeans(rng, xy, max(2, lad.height // 8))
        msoas = kmeans(rng, xy, max(2, lad.height // 5))
        order = np.argsort(np.argsort(-lad["y"].to_numpy() + lad["x"].to_numpy() * 1e-3))
        ward_codes = {w: f"E05{900000 + ward_no + i:06d}" for i, w in enumerate(np.unique(wards))}
        ward_names = {w: next(names) for w in np.unique(wards)}
        msoa_codes = {m: (f"E02{900000 + msoa_no + i:06d}", i + 1)
                      for i, m in enumerate(np.unique(msoas))}
        ward_no += len(ward_codes)
        msoa_no += len(msoa_codes)
        lad_name = lad["lad_name"][0]
        letters = {}
        names_out = []
        for m in msoas:
            letters[m] = letters.get(m, -1) + 1
            names_out.append(f"{lad_name} {msoa_codes[m][1]:03d}{chr(65 + letters[m])}")
        parts.append(lad.with_columns(
            pl.Series("ward_code", [ward_codes[w] for w in wards]),
            pl.Series("ward_name", [ward_names[w] for w in wards]),
            pl.Series("msoa_code", [msoa_codes[m][0] for m in msoas]),
            pl.Series("msoa_name", [f"{lad_name} {msoa_codes[m][1]:03d}" for m in msoas]),
            pl.Series("name", names_out), pl.Series("_order", order)))
    return pl.concat(parts).drop("_order")


def with_population_and_deprivation(rng: np.random.Generator,
                                    lsoas: pl.DataFrame) -> pl.DataFrame:
    """About 1,600 residents an LSOA; deprivation highest in the centre and two estates."""
    n = lsoas.height
    d = lsoas["centre_distance"].to_numpy()
    xy = lsoas.select("x", "y").to_numpy()
    urban = lsoas["lad_code"].to_numpy() == AUTHORITIES[0][0]
    estates = xy[urban][np.argsort(np.abs(d[urban] - 0.55))[:2]]
    near = sum(np.exp(-((xy - e) ** 2).sum(1) / (2 * 900.0 ** 2)) for e in estates)
    smooth = smooth_noise(rng, xy, 1_500.0)
    score = 1.2 * np.exp(-2.5 * d) * urban + 1.4 * near + 0.6 * smooth - 0.4 * ~urban
    score = (score - score.mean()) / score.std()
    residents = rng.normal(1_600, 230, n).clip(1_000, 2_600).round().astype(int)
    young = (0.10 + 0.05 * (np.exp(-3 * d) * urban)).clip(0.08, 0.2)
    return lsoas.with_columns(pl.Series("residents", residents),
                              pl.Series("deprivation", score),
                              pl.Series("young_share", young),
                              pl.Series("urban", urban))


def smooth_noise(rng: np.random.Generator, xy: np.ndarray, scale: float) -> np.ndarray:
    """Spatially smooth standard-normal noise (a Gaussian-kernel average of white noise)."""
    weights = np.exp(-((xy[:, None] - xy[None]) ** 2).sum(-1) / (2 * scale ** 2))
    values = weights @ rng.normal(size=len(xy))
    return (values - values.mean()) / values.std()


def random_points_in(rng: np.random.Generator, polygon: shapely.Geometry, k: int) -> np.ndarray:
    minx, miny, maxx, maxy = polygon.bounds
    out = []
    while len(out) < k:
        xs = rng.uniform(minx, maxx, 4 * k)
        ys = rng.uniform(miny, maxy, 4 * k)
        inside = shapely.contains_xy(polygon, xs, ys)
        out.extend(zip(xs[inside], ys[inside], strict=True))
    return np.array(out[:k])


def make_streets(rng: np.random.Generator, lsoas: pl.DataFrame,
                 polygons: dict[str, shapely.Geometry]) -> pl.DataFrame:
    """Four to seven streets an LSOA, each name unique within its authority."""
    rows = []
    for lad in lsoas.partition_by("lad_code", maintain_order=True):
        names = [f"{s} {k}" for s in STREET_STEMS for k in STREET_KINDS]
        rng.shuffle(names)
        pool = iter(names)
        for code in lad["code"]:
            k = int(rng.integers(4, 8))
            for (x, y) in random_points_in(rng, polygons[code], k):
                rows.append((code, next(pool), float(x), float(y)))
    return pl.DataFrame(rows, schema=["lsoa_code", "street", "x", "y"], orient="row")


def make_places(rng: np.random.Generator, lsoas: pl.DataFrame,
                polygons: dict[str, shapely.Geometry]) -> pl.DataFrame:
    """Pubs, clubs, stations, parks...: mostly in the town centre."""
    town = lsoas.filter(pl.col("urban")).sort("centre_distance")
    rows = []
    for i, kind in enumerate(PLACE_KINDS):
        code = town["code"][min(i // 2 + (0 if i < 8 else int(rng.integers(5, 60))),
                                town.height - 1)]
        x, y = random_points_in(rng, polygons[code], 1)[0]
        rows.append((kind, kind.split()[-1].lower(), code, float(x), float(y)))
    return pl.DataFrame(rows, schema=["name", "kind", "lsoa_code", "x", "y"], orient="row")


def make_postcodes(rng: np.random.Generator, lsoas: pl.DataFrame,
                   polygons: dict[str, shapely.Geometry], streets: pl.DataFrame
                   ) -> pl.DataFrame:
    """About ten postcodes an LSOA in the format of real ones, outward codes AT1-AT9 and
    EB1-EB6 (no real postcode area uses AT or EB)."""
    rows = []
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    for lad_index, lad in enumerate(lsoas.partition_by("lad_code", maintain_order=True)):
        area = ("AT", "EB")[lad_index]
        for code, ward in lad.select("code", "ward_code").iter_rows():
            district = int(ward[-2:]) % 9 + 1
            for (x, y) in random_points_in(rng, polygons[code], 10):
                a, b = rng.choice(list(letters), 2)
                unit = f"{rng.integers(1, 10)}{a}{b}"
                rows.append((f"{area}{district} {unit}", code, float(x), float(y)))
    return pl.DataFrame(rows, schema=["postcode", "lsoa_code", "x", "y"],
                        orient="row").unique("postcode", keep="first", maintain_order=True)


# ------------------------------------------------------------------ the reference folder


def write_reference(geo: Geography, folder: Path) -> None:
    """Write the reference folder ``svduty reference import`` reads (shared/data layout)."""
    lookups = folder / "geography" / "lookups"
    lookups.mkdir(parents=True, exist_ok=True)
    lsoas = geo.lsoas
    lsoas.select(
        pl.int_range(1, pl.len() + 1).alias("FID"), pl.col("code").alias("LSOA11CD"),
        pl.col("name").alias("LSOA11NM"), pl.col("ward_code").alias("WD19CD"),
        pl.col("ward_name").alias("WD19NM"), pl.col("lad_code").alias("LAD19CD"),
        pl.col("lad_name").alias("LAD19NM")).write_csv(
        lookups / "lsoa11_to_ward19_lad19_lookup_ew.csv")
    lsoas.select(pl.col("code").alias("LSOA11CD"), pl.col("msoa_code").alias("MSOA11CD")
                 ).write_csv(lookups / "lsoa11_to_msoa11_lad_police_force_england.csv")
    lsoas.select("lad_code", "lad_name", "csp_code", "csp_name").unique(
        maintain_order=True).with_columns(
        pl.lit(FORCE[0]).alias("pfa_code"), pl.lit(FORCE[1]).alias("pfa_name"),
        pl.lit(REGION).alias("region_code")).write_csv(lookups / "local_authorities.csv")
    write_population(lsoas, folder)
    write_deprivation(lsoas, folder)
    write_boundaries(geo, folder)


def write_population(lsoas: pl.DataFrame, folder: Path) -> None:
    rows = []
    for code, name, residents, young in lsoas.select(
            "code", "name", "residents", "young_share").iter_rows():
        shares = np.array(AGE_SHARES)
        shares[1] = young
        shares = shares / shares.sum()
        counts = np.floor(shares * residents).astype(int)
        counts[-1] += residents - counts.sum()
        rows += [(code, name, band, int(c)) for band, c in zip(AGE_BANDS, counts, strict=True)]
    out = folder / "population"
    out.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(rows, schema=["lsoa21_code", "lsoa21_name", "age_group",
                                       "usual_residents"], orient="row")
    (out / "census2021_lsoa21_usual_residents_by_age6.csv.gz").write_bytes(
        gzip.compress(frame.write_csv().encode()))
    pl.DataFrame({"LSOA Code": lsoas["code"], "Persons": lsoas["residents"]}).write_csv(
        out / "census2011_lsoa11_population_households.csv")


DOMAINS = ("index_of_multiple_deprivation_imd", "income", "employment",
           "education_skills_and_training", "health_deprivation_and_disability", "crime",
           "barriers_to_housing_and_services", "living_environment")
NATIONAL_LSOAS = 32_844


def write_deprivation(lsoas: pl.DataFrame, folder: Path) -> None:
    """IoD-style ranks (1 = most deprived of 32,844) from the latent deprivation score."""
    rng = np.random.default_rng(7)
    score = lsoas["deprivation"].to_numpy()
    columns = {"lsoa11_code": lsoas["code"], "lsoa11_name": lsoas["name"],
               "lad19_code": lsoas["lad_code"], "lad19_name": lsoas["lad_name"]}
    ranks = {}
    for i, domain in enumerate(DOMAINS):
        noisy = score + rng.normal(0, 0.0 if i == 0 else 0.45, len(score))
        quantile = 1 - (np.argsort(np.argsort(noisy)) + 0.5) / len(noisy)
        # the town spans most of the national distribution, skewed towards deprived
        rank = np.clip((quantile ** 1.3) * NATIONAL_LSOAS, 1, NATIONAL_LSOAS).astype(int)
        ranks[domain] = rank
        columns[f"{domain}_rank"] = rank
    for domain in DOMAINS:
        columns[f"{domain}_decile"] = np.minimum(ranks[domain] * 10 // NATIONAL_LSOAS + 1, 10)
    out = folder / "deprivation"
    out.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(columns).write_csv(out / "iod2019_lsoa11_domain_ranks_deciles_england.csv")


def write_boundaries(geo: Geography, folder: Path) -> None:
    """GeoJSON in EPSG:27700 (named in the file), one file per authority and layer."""
    lsoas = geo.lsoas
    for lad in lsoas.partition_by("lad_code", maintain_order=True):
        lad_code = lad["lad_code"][0]
        for layer, key, name in (("lsoa21", "LSOA21", "name"), ("lsoa11", "LSOA11", "name")):
            features = [feature(geo.polygons[c], {f"{key}CD": c, f"{key}NM": n,
                                                   "LADCD_ACTIVE": lad_code})
                        for c, n in lad.select("code", name).iter_rows()]
            write_geojson(folder / "geography" / "boundaries" / layer / f"{lad_code}.geojson",
                          features)
        for layer, code_col, name_col, out_code, out_name in (
                ("ward", "ward_code", "ward_name", "WD25CD", "WD25NM"),
                ("msoa21", "msoa_code", "msoa_name", "MSOA21CD", "MSOA21NM")):
            features = []
            for group in lad.partition_by(code_col, maintain_order=True):
                shape = shapely.union_all([geo.polygons[c] for c in group["code"]])
                features.append(feature(shape, {out_code: group[code_col][0],
                                                out_name: group[name_col][0],
                                                "LADCD_ACTIVE": lad_code}))
            write_geojson(folder / "geography" / "boundaries" / layer / f"{lad_code}.geojson",
                          features)


def feature(shape: shapely.Geometry, properties: dict) -> dict:
    return {"type": "Feature", "properties": properties,
            "geometry": mapping(shapely.set_precision(shape, 0.1))}


def write_geojson(path: Path, features: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}},
        "features": features}))
