"""Worker processes for the slow, independent steps of a build: charts (SVG and PNG, by
vl-convert) and PDFs (WeasyPrint).

`svduty assess` starts a small pool (two processes by default) before it runs the analyses.
The workers import WeasyPrint and vl-convert and make a tiny chart and PDF while the main
process analyses, so that later the charts of an edition are drawn two at a time and each
edition's PDF is written while the main process goes on with the Word document and the next
edition. The pool is optional: with ``SVDUTY_WORKERS=0``, or where processes cannot be
started, every step runs in the calling process and the outputs are the same.

This module imports nothing heavy itself, so a worker holds only what its jobs need.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_WORKERS = 2
WARM_WAIT_S = 20  # a worker waits at most this long for the one warming up before it


class Workers:
    """A pool of worker processes; jobs run in this process where there is none, or where
    the pool has broken (a worker could not start or died), so a build never fails for it."""

    def __init__(self, pool: ProcessPoolExecutor | None) -> None:
        self.pool = pool
        self.peak_mib = 0.0  # the largest peak resident memory any worker reported
        self.pending: list[Future] = []
        self.jobs: dict[Future, tuple[Callable[..., Any], tuple[Any, ...]]] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Start ``fn(*args)`` in a worker (or run it here); ask :meth:`get` for its result."""
        if self.pool is not None:
            try:
                future = self.pool.submit(_job, fn, *args)
                self.jobs[future] = (fn, args)
                return future
            except (BrokenProcessPool, RuntimeError):
                self.pool = None
        return self._here(fn, args)

    @staticmethod
    def _here(fn: Callable[..., Any], args: tuple[Any, ...]) -> Future:
        future: Future = Future()
        try:
            future.set_result((fn(*args), 0.0))
        except Exception as exc:  # raised by get()
            future.set_exception(exc)
        return future

    def get(self, future: Future) -> Any:
        """The job's result (its exception raised); a job lost with a broken pool is run
        again here."""
        try:
            value, peak = future.result()
        except BrokenProcessPool:
            self.pool = None
            fn, args = self.jobs[future]
            value, peak = self._here(fn, args).result()
        self.jobs.pop(future, None)
        self.peak_mib = max(self.peak_mib, peak)
        return value

    def later(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Like :meth:`submit`, and :meth:`wait` waits for it."""
        future = self.submit(fn, *args)
        self.pending.append(future)
        return future

    def wait(self) -> None:
        """Wait for every job started with :meth:`later`; raise the first failure."""
        pending, self.pending = self.pending, []
        for future in pending:
            self.get(future)


@contextmanager
def workers(size: int | None = None, eager: bool = False) -> Iterator[Workers]:
    """A pool of `size` worker processes (``SVDUTY_WORKERS``, default 2) for the duration of
    a build, started (and warmed, one after another) at once if `eager`, else at the first
    job; no pool (everything in this process) for 0 or where processes cannot be started."""
    size = int(os.environ.get("SVDUTY_WORKERS", DEFAULT_WORKERS)) if size is None else size
    pool = None
    if size > 0:
        try:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(size, mp_context=context, initializer=warm,
                                       initargs=(context.Lock(),))
            for _ in range(size if eager else 0):
                pool.submit(int)  # starts a worker now (workers start when jobs arrive)
        except (OSError, ValueError, ImportError, RuntimeError):  # run in-process instead
            pool = None
    try:
        yield Workers(pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def warm(turn: Any = None) -> None:
    """Set the worker up (:func:`svduty.runtime.as_worker`: a lower priority than the
    analyses) and load WeasyPrint's fonts and vl-convert's JavaScript engine once per
    worker, one worker at a time (`turn`, a lock the workers share). Each warm-up takes
    about 1 s of a core; on two cores, both at once slowed a CSP's analyses from 3.8 s (no
    workers) to 5.0 s, one after the other to about 4.5 s."""
    from svduty.runtime import as_worker

    as_worker()
    mine = turn is not None and turn.acquire(timeout=WARM_WAIT_S)
    try:
        import vl_convert
        from weasyprint import HTML

        HTML(string="<p style='font-family: Arial, sans-serif'>x <b>y</b></p>").write_pdf()
        vl_convert.vegalite_to_svg({"mark": "point", "data": {"values": [{"a": 1}]},
                                    "encoding": {"x": {"field": "a", "type": "quantitative"}}})
    finally:
        if mine:
            turn.release()


def _job(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Run a job in a worker and report the worker's peak memory with its result."""
    return fn(*args), peak_mib()


def peak_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM; 0 where /proc is not there)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0.0
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def draw_chart(spec: dict[str, Any], vl_version: str, scale: float) -> tuple[str, bytes]:
    """A chart's SVG (vl-convert) and the PNG rasterised from it at `scale` (resvg)."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec, vl_version)
    return svg, vl_convert.svg_to_png(svg, scale=scale)


def write_pdf(html_text: str, path: Path, keep_as: Path | None = None) -> None:
    """A4 PDF from the report's HTML; tagged PDF/UA-1 where WeasyPrint manages it. A copy is
    kept as `keep_as` (the disk cache) where given."""
    import shutil

    from weasyprint import HTML

    document = HTML(string=html_text, base_url=str(path.parent))
    try:
        document.write_pdf(path, pdf_variant="pdf/ua-1", pdf_tags=True)
    except Exception:  # PDF/UA refused (e.g. an image without alt): a tagged plain PDF
        document.write_pdf(path, pdf_tags=True)
    if keep_as is not None:
        tmp = keep_as.with_name(f".{keep_as.name}.{os.getpid()}.tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(keep_as)
