"""Reference import on the real open data: areas, the LSOA 2011 -> 2021 correspondence,
populations, deprivation, offence codes, lookups, geocoding, bad files and offline fetch."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import threading
import zipfile
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import polars as pl
import pytest
from pyproj import Transformer
from typer.testing import CliRunner

from svduty.geography import (
    ReferenceError,
    boundaries,
    correspondence_figures,
    geocode_points,
    import_reference,
    lsoa_lookup,
    normalise_offence_code,
)
from svduty.geography import fetch as fetch_module
from svduty.geography.cli import app
from svduty.geography.readers import FILES, Source, read_population21
from svduty.partnership import Partnership, init_partnership
from svduty.warehouse import Warehouse, connect

from .conftest import DATA

LOOKUPS = DATA / "geography" / "lookups"
PLYMOUTH, BUCKS, DERBY = "E06000026", "E06000060", "E06000015"
runner = CliRunner()


def query(root, sql, params=None):
    con = connect(root / "warehouse.duckdb")
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def frame(root, sql):
    con = connect(root / "warehouse.duckdb")
    try:
        return con.execute(sql).pl()
    finally:
        con.close()


@pytest.fixture(scope="module")
def lookup_2011() -> pl.DataFrame:
    return pl.read_csv(LOOKUPS / "lsoa11_to_ward19_lad19_lookup_ew.csv", infer_schema=False)


# ---------------------------------------------------------------- areas


def test_areas_hold_every_lsoa_of_both_vintages(reference_partnership):
    counts = dict(query(reference_partnership,
                        "SELECT lsoa_vintage, count(*) FROM areas GROUP BY 1"))
    assert counts == {2011: 34_753, 2021: 35_672}
    # no 2011 code beyond the last 2011 code; 2021 adds new ones
    assert query(reference_partnership, "SELECT max(lsoa_code) FROM areas "
                 "WHERE lsoa_vintage = 2011 AND lsoa_code LIKE 'E%'")[0][0] == "E01033768"
    assert query(reference_partnership, "SELECT count(*) FROM areas WHERE lsoa_vintage = 2021 "
                 "AND lsoa_code > 'E01033768' AND lsoa_code LIKE 'E%'")[0][0] > 1_000
    held = dict(query(reference_partnership, "SELECT lsoa_vintage, count(*) FROM areas "
                      "WHERE has_boundary GROUP BY 1"))
    assert held == {2011: 3_359, 2021: 3_474}
    # every LSOA resolves to a current LA with a CSP and a force
    assert query(reference_partnership, "SELECT count(*) FROM areas WHERE csp_code IS NULL "
                 "OR pfa_code IS NULL OR lad_code IS NULL")[0][0] == 0


def test_plymouth_lsoas_are_in_plymouth_csp(reference_partnership, lookup_2011):
    codes = lookup_2011.filter(pl.col("LAD19CD") == PLYMOUTH)["LSOA11CD"].to_list()
    rows = query(reference_partnership, "SELECT DISTINCT lad_code, lad_name, csp_name, pfa_name "
                 "FROM areas WHERE lsoa_vintage = 2011 AND list_contains(?, lsoa_code)", [codes])
    assert rows == [(PLYMOUTH, "Plymouth", "Plymouth", "Devon & Cornwall")]
    n21 = query(reference_partnership, "SELECT count(*) FROM areas WHERE lsoa_vintage = 2021 "
                f"AND lad_code = '{PLYMOUTH}' AND csp_name = 'Plymouth'")[0][0]
    assert len(codes) == 161 and n21 == 164


def test_old_buckinghamshire_districts_map_to_the_unitary(reference_partnership, lookup_2011):
    old = ["E07000004", "E07000005", "E07000006", "E07000007"]
    codes = lookup_2011.filter(pl.col("LAD19CD").is_in(old))["LSOA11CD"].to_list()
    rows = query(reference_partnership, "SELECT lad_code, csp_code, pfa_name, count(*) FROM areas "
                 "WHERE lsoa_vintage = 2011 AND list_contains(?, lsoa_code) GROUP BY ALL",
                 [codes])
    assert rows == [(BUCKS, BUCKS, "Thames Valley", len(codes))]
    assert len(codes) > 300


def test_wards_are_best_fit_may_2025_where_boundaries_are_held(reference_partnership):
    rows = dict(query(reference_partnership, "SELECT ward_vintage, count(*) FROM areas "
                      "WHERE has_boundary GROUP BY 1"))
    assert rows == {"WD25": 3_359 + 3_474}
    elsewhere = query(reference_partnership, "SELECT DISTINCT ward_vintage FROM areas "
                      "WHERE NOT has_boundary AND lsoa_vintage = 2011")
    assert elsewhere == [("WD19",)]
    # Plymouth 003A lies in Budshead ward and MSOA Plymouth 003 in both vintages
    assert query(reference_partnership, "SELECT lsoa_vintage, ward_name, msoa_code FROM areas "
                 "WHERE lsoa_code = 'E01015023' ORDER BY 1") == [
        (2011, "Budshead", "E02003124"), (2021, "Budshead", "E02003124")]
    assert query(reference_partnership, "SELECT count(*) FROM areas WHERE lsoa_vintage = 2021 "
                 "AND has_boundary AND msoa_code IS NULL")[0][0] == 0


# ---------------------------------------------------------------- correspondence


def test_correspondence_weights_sum_to_one_with_one_best_fit(reference_partnership):
    bad = query(reference_partnership, """
        SELECT lsoa11_code FROM lsoa_correspondence GROUP BY 1
        HAVING abs(sum(area_share) - 1) > 1e-9 OR abs(sum(population_share) - 1) > 1e-9
            OR count(*) FILTER (WHERE best_fit) <> 1""")
    assert bad == []
    assert query(reference_partnership, "SELECT min(area_share) FROM lsoa_correspondence")[0][0] \
        > 0.005


def test_a_known_split_and_merge_are_found(reference_partnership):
    split = query(reference_partnership, "SELECT lsoa21_code, best_fit, method FROM "
                  "lsoa_correspondence WHERE lsoa11_code = 'E01006441' ORDER BY 1")
    assert split == [("E01034832", False, "split"), ("E01034833", True, "split")]
    merge = query(reference_partnership, "SELECT lsoa11_code, method FROM lsoa_correspondence "
                  "WHERE lsoa21_code = 'E01034401' ORDER BY 1")
    assert merge == [("E01006720", "merge"), ("E01006752", "merge")]
    # E01034401 (2021) does not exist in 2011
    assert query(reference_partnership, "SELECT count(*) FROM areas WHERE lsoa_code = "
                 "'E01034401' AND lsoa_vintage = 2011")[0][0] == 0


def test_correspondence_figures_are_recorded(reference_partnership):
    with Warehouse(reference_partnership / "warehouse.duckdb", read_only=True) as wh:
        f = correspondence_figures(wh)
    assert f.lsoa11_in_coverage == f.lsoa11_mapped_in_coverage == 3_359
    assert f.area_share_mapped > 0.995 and f.population_share_mapped > 0.995
    assert f.by_method["unchanged"] / f.lsoa11_in_coverage > 0.95
    assert {"split", "merge", "code-match"} <= set(f.by_method)
    assert sum(n for m, n in f.by_method.items() if m != "code-match") == 3_359
    assert f.lsoa11_code_match + 3_359 + f.lsoa11_unmapped == 34_753
    assert 0 < f.lsoa11_unmapped < 1_106  # codes gone in 2021 outside the boundary coverage
    assert f.population_weights == "census2021"


# ---------------------------------------------------------------- other tables


def test_populations_and_deprivation(reference_partnership):
    pops = dict(query(reference_partnership, "SELECT lsoa_vintage, sum(residents) "
                      "FROM populations GROUP BY 1"))
    assert pops == {2021: 59_597_114, 2011: 56_075_912}
    bands = query(reference_partnership, "SELECT count(DISTINCT age_band) FROM populations "
                  "WHERE lsoa_vintage = 2021")[0][0]
    assert bands == 6
    dep = query(reference_partnership, "SELECT count(*), count(DISTINCT lsoa11_code), "
                "count(DISTINCT domain), min(decile), max(decile) FROM deprivation")[0]
    assert dep == (32_844 * 8, 32_844, 8, 1, 10)


def test_offence_codes_are_normalised(reference_partnership):
    codes = {r[0] for r in query(reference_partnership, "SELECT offence_code FROM offence_codes")}
    assert {"8N", "8L", "37.1", "4.10", "1", "105A"} <= codes
    assert not any(c[0] == "0" for c in codes)
    assert len(codes) >= 132
    assert normalise_offence_code(" 008n ") == "8N"
    assert normalise_offence_code("4/1") == "4.1"
    assert normalise_offence_code("037.1") == "37.1"
    assert normalise_offence_code("1/4.1/4.10/4.2") == "1/4.1/4.10/4.2"


def test_import_is_recorded(reference_partnership):
    rows = frame(reference_partnership, "SELECT * FROM reference_imports")
    files = rows.filter(pl.col("item") != "lsoa_correspondence")
    assert files["file"].n_unique() == files.height == 7 + 4 * 30
    assert files["checksum"].str.contains(r"^[0-9a-f]{64}$").all()
    assert rows.filter(pl.col("item") == "population21")["rows"].item() == 214_032
    assert Partnership(reference_partnership).config.reference_source == str(DATA.resolve())


# ---------------------------------------------------------------- lookups


def test_lsoa_lookup(reference_partnership):
    lads = Partnership(reference_partnership).config.lad_codes
    with Warehouse(reference_partnership / "warehouse.duckdb", read_only=True) as wh:
        table = lsoa_lookup(wh, lads)
    assert table.schema == pl.Schema({"lsoa_code": pl.String, "lsoa_vintage": pl.Int16,
                                      "lsoa21_code": pl.String, "lad_code": pl.String,
                                      "in_area": pl.Boolean})
    assert table["lsoa_code"].is_unique().all()
    row = {r["lsoa_code"]: r for r in table.filter(pl.col("lsoa_code").is_in(
        ["E01015023", "E01013453", "E01006441", "E01034833"])).to_dicts()}
    assert row["E01015023"] == {"lsoa_code": "E01015023", "lsoa_vintage": 2021,
                                "lsoa21_code": "E01015023", "lad_code": PLYMOUTH,
                                "in_area": True}
    assert (row["E01013453"]["lad_code"], row["E01013453"]["in_area"]) == (DERBY, False)
    assert (row["E01006441"]["lsoa_vintage"], row["E01006441"]["lsoa21_code"]) == \
        (2011, "E01034833")
    assert row["E01034833"]["lsoa_vintage"] == 2021
    assert table.filter(pl.col("in_area")).height == 3_474 + table.filter(
        pl.col("in_area") & (pl.col("lsoa_vintage") == 2011)).height


def test_geocode_points_finds_the_lsoa_of_its_centroid(reference_partnership):
    held = [r[0] for r in query(reference_partnership, "SELECT lsoa_code FROM areas "
                                "WHERE lsoa_vintage = 2021 AND has_boundary")]
    centroids = pl.read_csv(LOOKUPS / "lsoa_centroids_latlong_2011_2021.csv").filter(
        pl.col("LSOACD").is_in(held))
    lon, lat = centroids["longitude"].to_numpy(), centroids["latitude"].to_numpy()
    found = geocode_points(reference_partnership, lon, lat, crs="EPSG:4326")
    expected = centroids["LSOACD"].to_numpy()
    assert len(found) == len(held) == 3_474
    # the published (population-weighted) centroids mostly lie in the generalised polygons
    assert (found == expected).mean() > 0.96  # 97.0% on the shared data
    for code in ("E01034833", "E01035243", "E01017796", "E01015024"):
        assert found[expected == code][0] == code
    east, north = Transformer.from_crs(4326, 27700, always_xy=True).transform(lon, lat)
    assert (geocode_points(reference_partnership, east, north) == found).all()
    # the sea, a point outside the held boundaries (Derby) and a missing coordinate
    outside = geocode_points(reference_partnership, np.array([-5.5, -1.47, np.nan]),
                             np.array([49.5, 52.92, 50.4]), crs="EPSG:4326")
    assert list(outside) == [None, None, None]


def test_boundaries_are_geoparquet_in_british_national_grid(reference_partnership):
    lsoa21 = boundaries(reference_partnership, "lsoa21")
    assert lsoa21.crs.to_epsg() == 27700
    assert len(lsoa21) == 3_474 and lsoa21["lsoa21_code"].is_unique
    assert len(boundaries(reference_partnership, "ward")) == 730
    with pytest.raises(ReferenceError, match="unknown boundary layer"):
        boundaries(reference_partnership, "county")


# ---------------------------------------------------------------- bad and partial sources


def partial_source(tmp_path, *items):
    """A reference folder holding only `items` (symlinks to the shared files)."""
    root = tmp_path / "reference"
    for item in items:
        target = root / FILES[item]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(DATA / FILES[item])
    return root


def test_missing_optional_files_are_reported(tmp_path):
    source = partial_source(tmp_path, "lsoa11_lookup", "lsoa11_msoa")
    p = init_partnership(tmp_path / "p", ["Plymouth"])
    report = import_reference(p, source)
    assert report.rows["areas"] == 34_753 and report.rows["lsoa_correspondence"] == 0
    assert report.boundaries == {} and report.correspondence.lsoa11_unmapped == 34_753
    missing = " ".join(report.missing)
    for item in ("population21", "deprivation", "offence_codes", "boundaries-lsoa21"):
        assert item in missing
    assert not (p.root / "reference" / "boundaries").exists()


def test_reimport_replaces_everything(partnership_copy, tmp_path):
    source = partial_source(tmp_path, "lsoa11_lookup")
    report = import_reference(Partnership(partnership_copy), source)
    assert query(partnership_copy, "SELECT lsoa_vintage, count(*) FROM areas GROUP BY 1") == [
        (2011, 34_753)]
    for table in ("populations", "deprivation", "offence_codes"):
        assert query(partnership_copy, f"SELECT count(*) FROM {table}")[0][0] == 0
    assert query(partnership_copy, "SELECT item, file FROM reference_imports ORDER BY 1") == [
        ("lsoa11_lookup", FILES["lsoa11_lookup"]),
        ("lsoa_correspondence", "derived from lsoa11_lookup")]
    assert list((partnership_copy / "reference" / "boundaries").glob("*")) == []
    # no 2021 LSOA list in the folder: nothing can be matched
    assert report.correspondence.by_method == {}
    assert report.correspondence.lsoa11_unmapped == 34_753


def test_a_malformed_file_is_rejected_naming_it(partnership_copy, tmp_path):
    source = partial_source(tmp_path, "lsoa11_lookup", "population21")
    bad = source / FILES["population21"]
    bad.unlink()
    bad.write_bytes(gzip.compress(b"code,age,people\nE01000001,all,12\n"))
    before = query(partnership_copy, "SELECT count(*) FROM areas")[0][0]
    with pytest.raises(ReferenceError) as caught:
        import_reference(Partnership(partnership_copy), source)
    assert str(bad) in str(caught.value) and "lsoa21_code" in str(caught.value)
    assert query(partnership_copy, "SELECT count(*) FROM areas")[0][0] == before

    lookup = source / FILES["lsoa11_lookup"]
    lookup.unlink()
    lookup.write_text("FID,LSOA11CD,LSOA11NM,WD19CD,WD19NM,LAD19CD,LAD19NM\n"
                      "1,E0100000X,Somewhere 001A,E05000001,Ward,E06000026,Plymouth\n")
    with pytest.raises(ReferenceError, match=r"lsoa11_to_ward19.*malformed LSOA code.*E0100000X"):
        import_reference(Partnership(partnership_copy), source)

    lookup.unlink()
    bad.unlink()
    broken = source / "geography" / "boundaries" / "lsoa21" / "E06000026.geojson"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(ReferenceError, match=r"E06000026\.geojson: could not be read as a lsoa21"):
        import_reference(Partnership(partnership_copy), source)
    assert query(partnership_copy, "SELECT count(*) FROM areas")[0][0] == before


def test_cli_import_needs_a_source(tmp_path):
    init_partnership(tmp_path / "p", ["Plymouth"])
    result = runner.invoke(app, ["import", str(tmp_path / "p")])
    assert result.exit_code == 1
    assert "Name the reference folder" in result.output


# ---------------------------------------------------------------- fetch


def test_fetch_offline_raises_one_clear_error_and_writes_nothing(tmp_path):
    dest = tmp_path / "downloads"
    sources = fetch_module.load_sources()
    assert {s.item for s in sources} >= {"lsoa11_lookup", "deprivation", "boundaries-lsoa21"}
    for url in ("http://127.0.0.1:9/file.csv", "https://svduty.invalid/file.csv"):
        broken = [dataclasses.replace(sources[4], url=url)]
        with pytest.raises(ReferenceError) as caught:
            fetch_module.fetch_reference(dest, sources=broken)
        host = urlsplit(url).hostname
        assert str(caught.value).startswith(f"cannot reach {host}: this machine looks offline")
        assert "svduty reference import" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_fetch_offline_fails_cleanly(tmp_path, monkeypatch):
    init_partnership(tmp_path / "p", ["Plymouth"])
    broken = dataclasses.replace(fetch_module.load_sources()[0], url="https://svduty.invalid/x")
    monkeypatch.setattr(fetch_module, "load_sources", lambda: [broken])
    result = runner.invoke(app, ["fetch", str(tmp_path / "p"), "--dest", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "cannot reach svduty.invalid" in " ".join(result.output.split())
    assert not (tmp_path / "d").exists()
    assert not (tmp_path / "p" / "warehouse.duckdb").exists()


class Publisher(BaseHTTPRequestHandler):
    """A stand-in publisher on 127.0.0.1: an ArcGIS table in pages, a file and a Nomis zip."""

    def do_GET(self):
        url = urlsplit(self.path)
        offset = int(parse_qs(url.query).get("resultOffset", ["0"])[0])
        if url.path == "/table":
            rows = [{"LSOA11CD": f"E0100000{i}", "MSOA11CD": "E02000001"} for i in (1, 2)]
            features = [{"attributes": r} for r in rows[offset:offset + 1]]
            body = json.dumps({"features": features}).encode()
        elif url.path == "/ts007.zip":
            body = nomis_zip()
        else:
            body = b"lsoa11_code\nE01000001\n"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def nomis_zip() -> bytes:
    ages = ["Age: Aged under 1 year"] + [f"Age: Aged {a} years" for a in range(1, 100)]
    header = ["date", "geography", "geography code", "Age: Total", *ages,
              "Age: Aged 100 years and over"]
    values = ["2021", "Plymouth 003A", "E01015023", "101", *["1"] * 101]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("census2021-ts007-lsoa.csv",
                         ",".join(f'"{h}"' for h in header) + "\n" + ",".join(values) + "\n")
    return out.getvalue()


@pytest.fixture
def publisher():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Publisher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_moves_files_into_place_only_when_all_arrived(tmp_path, publisher, monkeypatch):
    monkeypatch.setattr(fetch_module, "PAGE", 1)
    source = partial(fetch_module.FetchSource, publisher="test", licence="OGL")
    sources = [
        source(item="lsoa11_msoa", kind="arcgis-table", url=f"{publisher}/table",
               path=FILES["lsoa11_msoa"]),
        source(item="population21", kind="nomis-age6", url=f"{publisher}/ts007.zip",
               member="census2021-ts007-lsoa.csv", path=FILES["population21"]),
    ]
    dest = tmp_path / "downloads"
    unreachable = source(item="x", kind="file", url="http://127.0.0.1:9/x", path="x.csv")
    with pytest.raises(ReferenceError, match=r"cannot reach 127\.0\.0\.1"):
        fetch_module.fetch_reference(dest, sources=[*sources, unreachable])
    assert list(tmp_path.iterdir()) == []

    written = fetch_module.fetch_reference(dest, sources=sources)
    assert written == [dest / s.path for s in sources]
    table = pl.read_csv(written[0])
    assert table["LSOA11CD"].to_list() == ["E01000001", "E01000002"]
    population = read_population21(Source(dest))
    assert population["residents"].to_list() == [16, 9, 10, 15, 15, 36]
    assert population["residents"].sum() == 101
