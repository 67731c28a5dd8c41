"""Starting definitions a partnership copies into its folder as `definition.toml`.

- `default`: homicide, attempted murder and GBH with intent, knife- and firearm-enabled
  violence, possession of weapons, personal robbery, under-25 violence with injury, county lines
  supply and rape, plus labelled police.uk proxy rules.
- `home-office`: the Home Office core measures only (homicide; knife-enabled serious violence).
- `london-vru`: the London VRU minimum standard (under-25s, domestic abuse, sexual violence,
  exploitation).
- `broad`: a Norfolk-style broad definition.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from svduty.definition.rules import Definition, parse_definition

TEMPLATES: tuple[str, ...] = ("default", "home-office", "london-vru", "broad")
NAME_PLACEHOLDER = '"{{partnership_name}}"'


def template_text(template: str, partnership_name: str = "Partnership") -> str:
    """The TOML text of a template with the partnership's name filled in."""
    if template not in TEMPLATES:
        raise ValueError(
            f"unknown definition template '{template}'; choose one of: {', '.join(TEMPLATES)}")
    text = resources.files("svduty.definition").joinpath(
        "templates", f"{template}.toml").read_text("utf-8")
    # A JSON string (ensure_ascii off) is a valid TOML basic string.
    return text.replace(NAME_PLACEHOLDER, json.dumps(partnership_name, ensure_ascii=False), 1)


def write_template(path: Path, template: str, partnership_name: str) -> None:
    """Write a template to `path` (normally `<partnership>/definition.toml`)."""
    text = template_text(template, partnership_name)
    Path(path).write_text(text, "utf-8")


def load_template(template: str, partnership_name: str = "Partnership") -> Definition:
    """A template parsed and validated, as a :class:`Definition`."""
    return parse_definition(template_text(template, partnership_name), f"template '{template}'")
