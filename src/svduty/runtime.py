"""How a long build shares the machine: fewer garbage collections, and worker processes
that give way to the process on the critical path.

A build makes millions of short-lived Python objects (Ibis expressions, WeasyPrint boxes).
With the default thresholds Python's cycle collector runs every 700 allocations and scans
the young objects each time, which costs a PDF about 6% of its time; raising the first
threshold keeps that work to a few collections. A worker process draws charts and writes
PDFs while the building process runs the analyses, which are what the build waits for, so
workers run at a lower scheduling priority: the analyses get the cores first and the
workers have the rest. And a worker leaves at once when the build is done: its results are
already sent, and tearing down WeasyPrint's and vl-convert's state took a quarter of a second
at the end of every build.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

THRESHOLDS = (50_000, 20, 20)  # gen 0 allocations, gen 1 and gen 2 collections (700, 10, 10)
WORKER_NICENESS = 10  # added to the worker's nice value (0 to 19: higher gives way more)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the garbage collector's thresholds for the block, and restore them after."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def as_worker() -> None:
    """Set up a worker process for good: fewer collections, a lower priority (where the
    system has one: not on Windows) and a quick exit."""
    gc.set_threshold(*THRESHOLDS)
    atexit.register(_leave_now)
    with suppress(AttributeError, OSError):  # no os.nice (Windows), or not allowed
        os.nice(WORKER_NICENESS)


def _leave_now() -> None:
    """End the worker at exit without finalising the interpreter (exit handlers registered
    after this one, by modules imported later, have run already)."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(0)
