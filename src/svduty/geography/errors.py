"""The one exception the geography package raises for problems a user can fix."""

from __future__ import annotations


class ReferenceError(Exception):
    """Reference data is missing, malformed or unreachable; the message says what to do."""
