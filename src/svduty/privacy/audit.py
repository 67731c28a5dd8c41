"""Append-only, tamper-evident audit log of every ingest, import, export and report build.

Each line of `audit.jsonl` is a JSON object holding the SHA-256 of the previous line, so an
edited or deleted line breaks the chain and :func:`verify` reports where.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64


def record(root: Path, action: str, **details: Any) -> dict[str, Any]:
    """Append one entry for `action` by the current user."""
    path = Path(root) / AUDIT_FILE
    previous = _last_hash(path)
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "actor": actor(),
        "action": action,
        "details": details,
        "previous": previous,
    }
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
    return entry


def entries(root: Path) -> list[dict[str, Any]]:
    path = Path(root) / AUDIT_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def verify(root: Path) -> int | None:
    """Return the 1-based line number where the chain breaks, or None if intact."""
    path = Path(root) / AUDIT_FILE
    if not path.exists():
        return None
    previous = GENESIS
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if json.loads(line).get("previous") != previous:
            return number
        previous = hashlib.sha256(line.encode("utf-8")).hexdigest()
    return None


def _last_hash(path: Path) -> str:
    if not path.exists() or path.stat().st_size == 0:
        return GENESIS
    last = path.read_text("utf-8").rstrip("\n").rsplit("\n", 1)[-1]
    return hashlib.sha256(last.encode("utf-8")).hexdigest()


def actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
