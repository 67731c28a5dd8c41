"""A small content-addressed disk cache for rebuilds of the assessment.

Rendered charts (SVG, PNG) are kept under the hash of their Vega-Lite specification (data
included) and PDFs under the hash of the HTML they were made from, in
``<partnership>/assessment/cache/<kind>/``. A rebuild whose chart or edition has not changed
reuses the file instead of rendering it again; anything that changes (a figure, a font, the
library version) changes the hash, so a stale file is never used. The oldest files beyond
`keep` per kind are removed; deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

FOLDER = Path("assessment") / "cache"
KEEP = {"charts": 400, "pdf": 8}


def digest(*parts: Any) -> str:
    """A stable hash of text, bytes or JSON-able values."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, bytes):
            h.update(part)
        elif isinstance(part, str):
            h.update(part.encode("utf-8"))
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


class DiskCache:
    """Files of one kind (``charts``, ``pdf``) named by their key."""

    def __init__(self, root: Path, kind: str) -> None:
        self.folder = Path(root) / FOLDER / kind
        self.keep = KEEP.get(kind, 100)

    def path(self, key: str, suffix: str) -> Path:
        return self.folder / f"{key}.{suffix}"

    def get(self, key: str, suffix: str) -> bytes | None:
        """The cached bytes, or None (and the file's time is refreshed on a hit)."""
        path = self.path(key, suffix)
        try:
            data = path.read_bytes()
            os.utime(path)
        except OSError:
            return None
        return data

    def put(self, key: str, suffix: str, data: bytes) -> Path:
        """Store `data` (written to a temporary name first, so a reader never sees half a
        file); returns its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key, suffix)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    def prune(self) -> None:
        """Remove the least recently used files beyond `keep`."""
        if not self.folder.is_dir():
            return
        files = sorted((p for p in self.folder.iterdir() if p.is_file()),
                       key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[self.keep:]:
            old.unlink(missing_ok=True)
