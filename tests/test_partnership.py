"""Creating partnership folders for one or several CSPs, offline."""

from __future__ import annotations

import tomllib

import pytest
from typer.testing import CliRunner

from svduty.cli import app
from svduty.partnership import Partnership, PartnershipError, init_partnership, resolve_area

runner = CliRunner()


def test_plymouth_alone_by_name_or_code(tmp_path):
    by_name = resolve_area("Plymouth")
    assert [(a.csp_name, a.lad_codes, a.pfa_name) for a in by_name] == [
        ("Plymouth", ["E06000026"], "Devon & Cornwall")]
    assert resolve_area("E06000026") == by_name


def test_a_force_name_gives_its_four_cheshire_csps():
    names = sorted(a.csp_name for a in resolve_area("Cheshire"))
    assert names == ["Cheshire East", "Cheshire West and Chester", "Halton", "Warrington"]


def test_merged_authority_uses_current_codes():
    [bucks] = resolve_area("Aylesbury Vale")  # a 2019 district, now Buckinghamshire
    assert bucks.lad_codes == ["E06000060"] and bucks.csp_name == "Buckinghamshire"


def test_unknown_area_suggests_names():
    with pytest.raises(PartnershipError, match="Did you mean"):
        resolve_area("Plymuoth")


@pytest.mark.parametrize("template", ["default", "home-office", "london-vru", "broad"])
def test_cli_init_writes_the_folder(tmp_path, template):
    root = tmp_path / "p"
    result = runner.invoke(app, ["init", str(root), "--area", "Halton", "--area", "Warrington",
                                 "--definition", template])
    assert result.exit_code == 0, result.output
    config = tomllib.loads((root / "partnership.toml").read_text())
    assert [a["csp_name"] for a in config["areas"]] == ["Halton", "Warrington"]
    assert (root / "inbox").is_dir()
    definition = tomllib.loads((root / "definition.toml").read_text())
    assert definition["definition"]["template"] == template
    assert Partnership(root).config.lad_codes == ["E06000006", "E06000007"]


def test_init_never_overwrites(tmp_path):
    init_partnership(tmp_path / "p", ["Plymouth"])
    with pytest.raises(PartnershipError, match="already holds"):
        init_partnership(tmp_path / "p", ["Torbay"])
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "definition.toml").write_text("# the partnership's own\n")
    with pytest.raises(PartnershipError, match=r"definition\.toml exists"):
        init_partnership(tmp_path / "q", ["Torbay"])
    assert (tmp_path / "q" / "definition.toml").read_text() == "# the partnership's own\n"


def test_not_a_partnership_folder(tmp_path):
    with pytest.raises(PartnershipError, match="svduty init"):
        Partnership(tmp_path)
