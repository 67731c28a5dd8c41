"""``fetch_reference``: download the official reference files into a folder like shared/data.

The list of files lives in ``svduty/reference/fetch_sources.toml``. Everything is
downloaded into a temporary folder beside the destination and moved into place only when
every file has arrived, so a failed fetch leaves nothing half-written.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from svduty.geography.errors import ReferenceError

TIMEOUT_S = 60
PAGE = 2000  # ArcGIS features per request (servers cap it; paging continues regardless)
MAX_PAGES = 500
USER_AGENT = "svduty reference fetch (https://github.com/svduty)"
AGE_BANDS = ((0, 15, "Aged 15 years and under"), (16, 24, "Aged 16 to 24 years"),
             (25, 34, "Aged 25 to 34 years"), (35, 49, "Aged 35 to 49 years"),
             (50, 64, "Aged 50 to 64 years"), (65, 200, "Aged 65 years and over"))
OFFLINE_HINT = ("this machine looks offline. Copy the reference folder from a connected "
                "machine and run `svduty reference import DIR FOLDER`")


@dataclass(frozen=True)
class FetchSource:
    """One entry of fetch_sources.toml."""

    item: str
    kind: str
    url: str
    path: str
    publisher: str
    licence: str
    verified: bool = False
    member: str | None = None
    where: str = "1=1"


def load_sources(path: Path | None = None) -> list[FetchSource]:
    """The download list: the bundled fetch_sources.toml unless `path` is given."""
    if path is None:
        text = resources.files("svduty.reference").joinpath("fetch_sources.toml").read_text(
            "utf-8")
    else:
        text = Path(path).read_text("utf-8")
    try:
        entries = tomllib.loads(text).get("source", [])
        return [FetchSource(**entry) for entry in entries]
    except (tomllib.TOMLDecodeError, TypeError) as exc:
        raise ReferenceError(f"{path or 'fetch_sources.toml'}: not a valid list of "
                             f"[[source]] entries (item, kind, url, path, ...): {exc}") from exc


def fetch_reference(dest: Path, progress: Callable[[str], None] | None = None,
                    sources: list[FetchSource] | None = None) -> list[Path]:
    """Download every reference file into `dest`; returns the files written.

    Raises ReferenceError with one message when the network cannot be reached; nothing is
    written to `dest` unless every file arrived.
    """
    dest = Path(dest).expanduser().resolve()
    sources = load_sources() if sources is None else sources
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.incoming-", dir=dest.parent))
    try:
        for source in sources:
            if progress:
                progress(f"{source.item} from {urllib.parse.urlsplit(source.url).hostname}")
            target = staging / source.path
            target.parent.mkdir(parents=True, exist_ok=True)
            FETCHERS[source.kind](source, target)
        return publish(staging, dest, [s.path for s in sources])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, dest: Path, paths: list[str]) -> list[Path]:
    """Move every staged file into `dest` (same filesystem: each move is atomic)."""
    written = []
    for rel in paths:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).replace(target)
        written.append(target)
    return written


def download(url: str) -> bytes:
    """GET `url`, translating network failures into one clear ReferenceError."""
    host = urllib.parse.urlsplit(url).hostname or url
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise ReferenceError(
            f"{url}: the publisher answered HTTP {exc.code} ({exc.reason}). The file may have "
            "moved: update its address in svduty/reference/fetch_sources.toml.") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise ReferenceError(f"cannot reach {host}: {OFFLINE_HINT}") from exc


def fetch_file(source: FetchSource, target: Path) -> None:
    target.write_bytes(download(source.url))


def arcgis_pages(source: FetchSource, output: str) -> list[dict]:
    """All features of an ArcGIS layer, page by page (`output`: 'json' or 'geojson')."""
    features: list[dict] = []
    for page in range(MAX_PAGES):
        query = urllib.parse.urlencode({
            "where": source.where, "outFields": "*", "outSR": 4326, "f": output,
            "resultOffset": page * PAGE, "resultRecordCount": PAGE})
        body = download(f"{source.url}?{query}")
        try:
            batch = json.loads(body).get("features")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ReferenceError(f"{source.url}: expected ArcGIS {output}, got something "
                                 "else; check the address in fetch_sources.toml.") from exc
        if batch is None:
            raise ReferenceError(f"{source.url}: the server answered without features: "
                                 f"{body[:200]!r}")
        if not batch:
            break
        features.extend(batch)
    if not features:
        raise ReferenceError(f"{source.url}: the layer returned no features (where "
                             f"{source.where!r}).")
    return features


def fetch_arcgis_table(source: FetchSource, target: Path) -> None:
    rows = [f["attributes"] for f in arcgis_pages(source, "json")]
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def fetch_arcgis_geojson(source: FetchSource, target: Path) -> None:
    collection = {"type": "FeatureCollection", "features": arcgis_pages(source, "geojson")}
    target.write_text(json.dumps(collection), "utf-8")


def fetch_nomis_age6(source: FetchSource, target: Path) -> None:
    """Census 2021 single year of age (Nomis bulk) -> long CSV of the six age bands."""
    try:
        with zipfile.ZipFile(io.BytesIO(download(source.url))) as archive:
            text = archive.read(source.member or "").decode("utf-8-sig")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ReferenceError(f"{source.url}: expected a zip holding {source.member}: "
                             f"{exc}") from exc
    target.write_bytes(gzip.compress(age6_csv(text, source.url).encode("utf-8")))


def single_age(column: str) -> int | None:
    """'Age: Aged 4 years' -> 4, 'Age: Aged under 1 year' -> 0, 'Age: Total' -> None."""
    label = column.lower()
    if "total" in label:
        return None
    if "under 1" in label:
        return 0
    match = re.search(r"aged (\d+) years?", label)
    return int(match.group(1)) if match else None


def age6_csv(text: str, origin: str) -> str:
    """Rebuild a single-year-of-age table as lsoa21_code, lsoa21_name, age_group, residents."""
    reader = csv.DictReader(io.StringIO(text))
    fields = reader.fieldnames or []
    ages = {c: a for c in fields if (a := single_age(c)) is not None}
    if "geography code" not in fields or len(ages) < 90:
        raise ReferenceError(f"{origin}: expected Nomis columns 'geography code' and one per "
                             f"single year of age; found {', '.join(fields[:8])}.")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["lsoa21_code", "lsoa21_name", "age_group", "usual_residents"])
    for number, row in enumerate(reader, start=2):
        try:
            counts = {age: int(row[c]) for c, age in ages.items()}
        except (TypeError, ValueError) as exc:
            raise ReferenceError(f"{origin}: line {number} has a missing or non-numeric "
                                 f"count ({exc}).") from exc
        for low, high, label in AGE_BANDS:
            total = sum(n for age, n in counts.items() if low <= age <= high)
            writer.writerow([row["geography code"], row.get("geography", ""), label, total])
    return out.getvalue()


FETCHERS: dict[str, Callable[[FetchSource, Path], None]] = {
    "file": fetch_file,
    "arcgis-table": fetch_arcgis_table,
    "arcgis-geojson": fetch_arcgis_geojson,
    "nomis-age6": fetch_nomis_age6,
}
