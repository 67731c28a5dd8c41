"""Place free-text locations in LSOAs using only data held locally (no external geocoder).

A `Gazetteer` is built once per ingest run from:

* postcode lookups the partnership drops in `DIR/reference/postcodes/*.csv[.gz]` (ONSPD or
  NSPL style: a postcode column such as `pcds` and an LSOA column such as `lsoa21cd`);
* local place names in `DIR/reference/gazetteer/*.csv` (columns `name, lsoa_code`: pubs,
  clubs, schools, parks, shopping centres);
* street names from police.uk events already in the warehouse ("On or near Union Street"),
  each taking the LSOA where most of its in-area crimes fall;
* ward names (the ward's most populous 2021 LSOA, precision "ward") and district names
  (matched, but not placed in any one LSOA).

Matching (:meth:`Gazetteer.match`) is vectorised: texts are normalised (upper case,
punctuation to spaces, RD/AVE/LN/SQ expanded), a full postcode anywhere in the text wins,
else the longest place or street name found as whole words, else a ward, else a district.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from svduty.sources.base import LSOA_FORMAT, FileError, decode, open_text
from svduty.sources.columns import normalise_name

ABBREVIATIONS = {"RD": "ROAD", "AVE": "AVENUE", "LN": "LANE", "SQ": "SQUARE"}
POSTCODE = r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})\b"
# police.uk's anonymised map points that are not streets ("On or near Supermarket").
GENERIC = frozenset({
    "PARKING AREA", "SHOPPING AREA", "POLICE STATION", "PETROL STATION", "FERRY TERMINAL",
    "PEDESTRIAN SUBWAY", "SPORTS RECREATION AREA", "THEATRE CONCERT HALL", "BUS COACH STATION",
    "CONFERENCE EXHIBITION CENTRE", "PARK OPEN SPACE", "AIRPORT AIRFIELD AERODROME",
    "FURTHER HIGHER EDUCATIONAL BUILDING", "NIGHT CLUB", "TRAIN STATION", "RAILWAY STATION",
    "SHOPPING CENTRE", "BUS STATION", "HOSPITAL", "SUPERMARKET", "NIGHTCLUB", "PRISON",
})
TIER = {"place": 0, "street": 0, "ward": 1, "district": 2}  # a lower tier always wins
RANK = {"place": 0, "street": 1, "ward": 2, "district": 3}  # ties within a tier
MAX_WORDS = 8
POSTCODE_COLUMNS = ("pcds", "pcd", "pcd2", "pcd7", "pcd8", "postcode", "post code")
LSOA_COLUMNS = ("lsoa21cd", "lsoa21", "lsoa21code", "lsoa_code", "lsoacode", "lsoa",
                "lsoa11cd", "lsoa11", "lsoa11code")
NAME_COLUMNS = ("name", "place", "place name", "placename", "location", "site name")
MATCH_SCHEMA = {"lsoa_code": pl.String, "method": pl.String, "matched": pl.String}


def normalise(text: pl.Expr) -> pl.Expr:
    """Upper case, apostrophes dropped, & as AND, other punctuation to single spaces, common
    street abbreviations expanded."""
    out = (text.str.to_uppercase().str.replace_all(r"['’`]", "")
           .str.replace_all("&", " AND ", literal=True)
           .str.replace_all(r"[^A-Z0-9]+", " ").str.strip_chars())
    for short, long in ABBREVIATIONS.items():
        out = out.str.replace_all(rf"\b{short}\b", long)
    return out


@dataclass
class Gazetteer:
    """Names and postcodes with their LSOA, and a summary of what was loaded."""

    names: pl.DataFrame  # name (normalised), label, lsoa_code, method, words, chars
    postcodes: pl.DataFrame  # postcode (upper case, no spaces), lsoa_code
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, con: duckdb.DuckDBPyConnection, root: Path,
              lad_codes: list[str]) -> Gazetteer:
        """Build from the warehouse (`con`) and the partnership folder `root`."""
        known = con.execute("SELECT DISTINCT lsoa_code FROM areas").pl()
        parts = [local_places(root, known), streets(con), wards(con, lad_codes),
                 districts(con, lad_codes)]
        names = prepare_names(pl.concat(parts))
        postcodes = postcode_lookup(root, known)
        counts = names.group_by("method").len().sort("method").rows()
        summary = ", ".join(f"{method} {n:,}" for method, n in counts)
        return cls(names, postcodes, [
            f"gazetteer: {summary or 'no names'}; postcodes {postcodes.height:,}"])

    def match(self, texts: pl.Series) -> pl.DataFrame:
        """One row per text, in order: `lsoa_code`, `method` and `matched` (the gazetteer
        name; a postcode gives only its sector), null where nothing matched."""
        frame = pl.DataFrame({"text": texts.cast(pl.String)}).with_row_index("idx")
        norm = frame.select("idx", normalise(pl.col("text")).alias("norm")).filter(
            pl.col("norm").str.len_bytes() > 0)
        by_postcode = self.postcode_hits(norm)
        by_name = self.name_hits(norm.join(by_postcode.select("idx"), on="idx", how="anti"))
        hits = pl.concat([by_postcode, by_name])
        return (frame.select("idx").join(hits, on="idx", how="left", maintain_order="left")
                .select(pl.col(c).cast(t) for c, t in MATCH_SCHEMA.items()))

    def postcode_hits(self, norm: pl.DataFrame) -> pl.DataFrame:
        parts = pl.col("norm").str.extract_groups(POSTCODE)
        found = norm.select(
            "idx", parts.struct.field("1").alias("outward"),
            parts.struct.field("2").alias("inward"),
        ).drop_nulls().with_columns((pl.col("outward") + pl.col("inward")).alias("postcode"))
        return found.join(self.postcodes, on="postcode", how="inner").select(
            "idx", "lsoa_code", pl.lit("postcode").alias("method"),
            (pl.col("outward") + " " + pl.col("inward").str.slice(0, 1)).alias("matched"))

    def name_hits(self, norm: pl.DataFrame) -> pl.DataFrame:
        """The best name per text: lowest tier, most words, longest, earliest."""
        tokens = (norm.select("idx", pl.col("norm").str.split(" ").alias("word"))
                  .explode("word").with_row_index("pos"))
        longest = int(self.names.get_column("words").max() or 0)
        found = [self.ngram_hits(tokens, n) for n in range(1, min(longest, MAX_WORDS) + 1)]
        if not found:
            return pl.DataFrame(schema={"idx": pl.UInt32, **MATCH_SCHEMA})
        return (pl.concat(found)
                .sort("idx", "tier", "words", "chars", "rank", "pos",
                      descending=[False, False, True, True, False, False])
                .unique("idx", keep="first", maintain_order=True)
                .select("idx", "lsoa_code", "method", pl.col("label").alias("matched")))

    def ngram_hits(self, tokens: pl.DataFrame, n: int) -> pl.DataFrame:
        names = self.names.filter(pl.col("words") == n)
        same = pl.col("idx").shift(-(n - 1)) == pl.col("idx")
        gram = pl.concat_str([pl.col("word").shift(-k) for k in range(n)], separator=" ")
        grams = tokens.select("idx", "pos", pl.when(same).then(gram).alias("name"))
        return grams.join(names, on="name", how="inner")


def prepare_names(raw: pl.DataFrame) -> pl.DataFrame:
    """Normalise names; one entry per name (a place beats a street beats a ward). A name
    ending in STREET is also found as ST ('Union St')."""
    names = (raw.with_columns(normalise(pl.col("label")).alias("name"))
             .filter(pl.col("name").str.len_bytes() > 0))
    short = names.filter(pl.col("name").str.ends_with(" STREET")).with_columns(
        pl.col("name").str.replace(r" STREET$", " ST"))
    return (pl.concat([names, short])
            .with_columns(pl.col("name").str.count_matches(" ").add(1).alias("words"),
                          pl.col("name").str.len_chars().alias("chars"),
                          pl.col("method").replace_strict(TIER, return_dtype=pl.Int8)
                          .alias("tier"),
                          pl.col("method").replace_strict(RANK, return_dtype=pl.Int8)
                          .alias("rank"))
            .sort("rank", "label").unique("name", keep="first", maintain_order=True))


def streets(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Street names of in-area police.uk crimes, each with its most frequent 2021 LSOA.

    police.uk's generic map points ("Supermarket", "Parking Area"), road numbers and
    one-word names (too often ordinary words) are left out.
    """
    counts = con.execute("""
        SELECT regexp_replace(location_desc, '^On or near ', '') AS label,
               lsoa21_code AS lsoa_code, count(*) AS n
        FROM events
        WHERE source = 'police-uk' AND in_area AND lsoa21_code IS NOT NULL
          AND location_desc LIKE 'On or near %'
        GROUP BY ALL""").pl()
    name = normalise(pl.col("label"))
    return (counts.filter(~pl.col("label").str.contains("/", literal=True)
                          & ~name.is_in(list(GENERIC))
                          & ~name.str.contains(r"^[ABM][0-9]+(\([M]\))?$")
                          & name.str.contains(" "))
            .with_columns(name.alias("key"))
            .sort("key", "n", "lsoa_code", descending=[False, True, False])
            .unique("key", keep="first", maintain_order=True)
            .select("label", "lsoa_code", pl.lit("street").alias("method")))


def wards(con: duckdb.DuckDBPyConnection, lad_codes: list[str]) -> pl.DataFrame:
    """Ward names of the partnership, each with its most populous 2021 LSOA."""
    return con.execute("""
        SELECT a.ward_name AS label, a.lsoa_code, 'ward' AS method
        FROM areas a LEFT JOIN (
            SELECT lsoa_code, sum(residents) AS residents FROM populations
            WHERE lsoa_vintage = 2021 GROUP BY ALL) p USING (lsoa_code)
        WHERE a.lsoa_vintage = 2021 AND a.ward_name IS NOT NULL AND list_contains(?, a.lad_code)
        QUALIFY row_number() OVER (PARTITION BY a.ward_name
                                   ORDER BY p.residents DESC NULLS LAST, a.lsoa_code) = 1
        """, [lad_codes]).pl()


def districts(con: duckdb.DuckDBPyConnection, lad_codes: list[str]) -> pl.DataFrame:
    """District names: matched so the note can say so, but not placed in one LSOA."""
    return con.execute("""
        SELECT DISTINCT lad_name AS label, CAST(NULL AS VARCHAR) AS lsoa_code,
               'district' AS method
        FROM areas WHERE lad_name IS NOT NULL AND list_contains(?, lad_code)""",
                       [lad_codes]).pl()


def local_places(root: Path, known: pl.DataFrame) -> pl.DataFrame:
    """`name, lsoa_code` rows from DIR/reference/gazetteer/*.csv (unknown LSOAs dropped)."""
    files = sorted((root / "reference" / "gazetteer").glob("*.csv"))
    frames = [read_lookup(path, NAME_COLUMNS, "label") for path in files]
    if not frames:
        return pl.DataFrame(schema={"label": pl.String, "lsoa_code": pl.String,
                                    "method": pl.String})
    return (pl.concat(frames).join(known, on="lsoa_code", how="semi")
            .select("label", "lsoa_code", pl.lit("place").alias("method")))


def postcode_lookup(root: Path, known: pl.DataFrame) -> pl.DataFrame:
    """Postcode (no spaces) -> LSOA from DIR/reference/postcodes/*.csv[.gz]."""
    folder = root / "reference" / "postcodes"
    files = sorted({*folder.glob("*.csv"), *folder.glob("*.csv.gz")})
    frames = [read_lookup(path, POSTCODE_COLUMNS, "postcode") for path in files]
    if not frames:
        return pl.DataFrame(schema={"postcode": pl.String, "lsoa_code": pl.String})
    return (pl.concat(frames)
            .with_columns(pl.col("postcode").str.to_uppercase().str.replace_all(r"\s+", ""))
            .join(known, on="lsoa_code", how="semi")
            .unique("postcode", keep="first", maintain_order=True))


def read_lookup(path: Path, key_names: tuple[str, ...], key: str) -> pl.DataFrame:
    """Two text columns (`key`, lsoa_code) of a lookup CSV; FileError naming the file."""
    raw = open_text(path)
    if not raw.isascii():
        decode(path, raw)  # FileError naming the line when not UTF-8
    header = pl.read_csv(raw, n_rows=0).columns
    by_name = {normalise_name(h): h for h in header}
    key_col = next((by_name[normalise_name(k)] for k in key_names
                    if normalise_name(k) in by_name), None)
    lsoa_col = next((by_name[normalise_name(k)] for k in LSOA_COLUMNS
                     if normalise_name(k) in by_name), None)
    if key_col is None or lsoa_col is None:
        raise FileError(path, f"this lookup needs a {key} column and an LSOA column; found "
                        f"columns {header[:20]}",
                        f"a CSV with columns {key_names[0]} and lsoa_code (or lsoa21cd)")
    frame = pl.read_csv(raw, columns=[key_col, lsoa_col], infer_schema=False)
    return frame.select(pl.col(key_col).str.strip_chars().alias(key),
                        pl.col(lsoa_col).str.strip_chars().str.to_uppercase()
                        .alias("lsoa_code")).filter(
        pl.col(key).is_not_null() & pl.col("lsoa_code").str.contains(LSOA_FORMAT))
