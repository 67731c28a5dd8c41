"""Shared fixtures: real open data from ../shared/data and partnerships built from it.

Session fixtures build an expensive thing once (a partnership with reference data imported);
tests that change a partnership take a private copy with `partnership_copy`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("SVDUTY_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = SHARED / "data"
STREET = DATA / "police_uk" / "street"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.exists():
        pytest.fail(f"shared test data not found at {DATA} (set SVDUTY_SHARED)")
    return DATA


@pytest.fixture(scope="session")
def reference_partnership(tmp_path_factory, shared_data) -> Path:
    """A partnership of every CSP in the three shared forces, reference data imported."""
    from svduty.geography import import_reference
    from svduty.partnership import init_partnership

    root = tmp_path_factory.mktemp("ref") / "three-forces"
    p = init_partnership(root, ["Devon & Cornwall", "Merseyside", "Thames Valley"])
    import_reference(p, shared_data)
    return root


@pytest.fixture
def partnership_copy(reference_partnership, tmp_path) -> Path:
    """A private copy of the reference partnership that a test may change."""
    dest = tmp_path / "partnership"
    shutil.copytree(reference_partnership, dest)
    return dest


@pytest.fixture(scope="session")
def demo_partnership(tmp_path_factory) -> Path:
    """The generated Anytown demo (seed 11), built once; tests must not change it.
    Set SVDUTY_TEST_DEMO to a demo already built with seed 11 to skip the build."""
    from svduty.demo.build import build_demo

    if os.environ.get("SVDUTY_TEST_DEMO"):
        return Path(os.environ["SVDUTY_TEST_DEMO"])

    root = tmp_path_factory.mktemp("demo") / "anytown"
    build_demo(root, seed=11)
    return root


@pytest.fixture(scope="session")
def devon_police_uk(request, tmp_path_factory) -> Path:
    """The four Devon & Cornwall CSPs with all 21 months of real police.uk street data
    (2018-10..2019-02, 2024-01..04, 2025-01..12); tests must not change it.
    Set SVDUTY_TEST_DEVON to a copy already built this way to skip the build."""
    if os.environ.get("SVDUTY_TEST_DEVON"):
        return Path(os.environ["SVDUTY_TEST_DEVON"])
    from svduty.partnership import Partnership
    from svduty.sources import get_source
    from svduty.sources.ingest import ingest

    root = tmp_path_factory.mktemp("devon") / "devon-and-cornwall"
    shutil.copytree(request.getfixturevalue("reference_partnership"), root)
    p = Partnership(root)
    p.config.areas = [a for a in p.config.areas if a.pfa_name.startswith("Devon")]
    p.config.name = "Devon & Cornwall partnership (8 CSPs)"
    p.save()
    p = Partnership(root)
    files = sorted(STREET.glob("*/*devon-and-cornwall-street.csv.gz"))
    results = ingest(p, get_source("police-uk"), files)
    assert all(r.status == "loaded" for r in results), [r.message for r in results]
    return root


@pytest.fixture(scope="session")
def demo_results(demo_partnership) -> dict:
    """Every Result for the whole demo partnership (name -> Result), computed once."""
    from svduty.analysis.run import analyse
    from svduty.partnership import Partnership

    run = analyse(Partnership(demo_partnership))
    assert not run.failures, run.failures
    return {r.name: r for r in run.results}


@pytest.fixture(scope="session")
def plymouth_results(devon_police_uk) -> dict:
    """Every Result for Plymouth CSP from the real police.uk data, computed once."""
    from svduty.analysis.run import analyse
    from svduty.partnership import Partnership

    run = analyse(Partnership(devon_police_uk), area="Plymouth")
    assert not run.failures, run.failures
    return {r.name: r for r in run.results}
