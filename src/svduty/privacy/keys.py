"""The partnership's secret pseudonymisation key: make one, and read one back.

A key file holds 32 random bytes (256 bits) as 64 lower-case hexadecimal characters, after a
short comment header (lines starting with '#'). Whoever holds the key can recompute the tokens
that `svduty pseudonymise` makes; without it nobody can, so the file is written readable by its
owner only (mode 0600) and is never overwritten.
"""

from __future__ import annotations

import os
import secrets
import string
from datetime import UTC, datetime
from pathlib import Path

KEY_BYTES = 32
HEADER = """\
# svduty pseudonymisation key (HMAC-SHA-256, 256 bits), made {made}.
# Keep this file secret. Whoever holds it can recompute the partnership's person tokens.
# Share it only by the route agreed in the information sharing agreement; never with the data.
"""


class KeyFileError(Exception):
    """A key file is missing, unreadable or not a key made by `svduty key new`."""


def new_key(path: Path) -> Path:
    """Write a new random key to `path` (mode 0600). Refuses to overwrite an existing file."""
    path = Path(path)
    if path.exists():
        raise KeyFileError(f"{path} already exists; svduty never overwrites a key file "
                           "(tokens made with it could no longer be matched). Choose a new name.")
    if not path.parent.is_dir():
        raise KeyFileError(f"folder {path.parent} does not exist")
    text = HEADER.format(made=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    text += secrets.token_bytes(KEY_BYTES).hex() + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; svduty never overwrites a key file") from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path


def load_key(path: Path) -> bytes:
    """The 32-byte key in `path`, or KeyFileError saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(f"key file {path} not found; make one with `svduty key new {path}` "
                           "or ask the partnership's data owner for the agreed key file")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {path} could not be read as text: {exc}") from exc
    body = "".join(line.strip() for line in text.splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))
    if not body:
        raise KeyFileError(f"key file {path} holds no key (only comments or blank lines)")
    if any(c not in string.hexdigits for c in body):
        raise KeyFileError(f"key file {path} is not a key: it should hold 64 hexadecimal "
                           "characters (0-9, a-f) after the '#' comment lines")
    if len(body) != KEY_BYTES * 2:
        raise KeyFileError(f"key file {path} holds {len(body)} hexadecimal characters, not "
                           f"{KEY_BYTES * 2} (a 256-bit key); it may be truncated or the wrong "
                           "file")
    return bytes.fromhex(body)
