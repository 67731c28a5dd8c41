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
