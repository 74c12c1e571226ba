"""Shared helpers for the benchmark suite: metrics, timing, statistics, runtime probing.

Every workload module in ``benchmarks/workloads`` exposes

* ``NAME``, ``TITLE``, ``DESCRIPTION`` and ``BASELINE`` (text for the README / output),
* ``N`` (full-size count) and ``QUICK_N`` (``--quick`` count),
* ``METRICS``: a list of :class:`Metric`,
* ``raw_trio(n)`` and ``ours(n)``, and optionally ``peer_<name>(n)`` functions.

Each implementation function performs **one** repetition (running its own fresh
``trio.run`` where Trio is involved) and returns ``{metric_key: value}``.  It may
raise :class:`NotApplicable` (the implementation cannot do this workload) or
:class:`RuntimeUnavailable` (our runtime / a peer library cannot be imported).

Memory metrics are only taken from a separate repetition run under ``tracemalloc``
(see :func:`traced_memory`), so that the tracing overhead never pollutes timings.
"""

from __future__ import annotations

import gc
import logging
import math
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

perf_counter = time.perf_counter

#: Mailbox capacity assumed for our runtime until ``actors.DEFAULT_MAILBOX_SIZE`` exists.
FALLBACK_MAILBOX_SIZE = 1024

#: Hard per-repetition deadline (seconds) inside every ``trio.run``; a hung runtime
#: turns into a reported error instead of a hung benchmark.
REP_TIMEOUT = 300.0


class NotApplicable(Exception):
    """This implementation cannot run this workload (printed as ``n/a``)."""


class RuntimeUnavailable(Exception):
    """The library needed by this implementation cannot be imported."""


@attrs.frozen
class Metric:
    key: str
    unit: str
    #: "cost" (lower is better: ratio = ours / raw) or
    #: "rate" (higher is better: ratio = raw / ours, so > 1 still means we are slower)
    kind: str = "cost"
    #: taken from the tracemalloc repetition only
    memory: bool = False
    #: how many decimals to print
    digits: int = 2
    #: short name of the raw-Trio design this row compares against (the table's "baseline"
    #: column); every workload states each design in one sentence in benchmarks/README.md
    baseline: str = ""
    #: read our / the peers' figure from this key instead of ``key`` (a second row for the
    #: same measurement against another, labelled raw design)
    ours_key: str | None = None
    #: read the raw figure from this key instead of ``key``
    raw_key: str | None = None

    @property
    def our_source(self) -> str:
        return self.ours_key or self.key

    @property
    def raw_source(self) -> str:
        return self.raw_key or self.key

    def ratio(self, ours: float | None, raw: float | None) -> float | None:
        if ours is None or raw is None:
            return None
        if self.kind == "rate":
            return raw / ours if ours else math.inf
        return ours / raw if raw else math.inf


# --------------------------------------------------------------------------- stats


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) - no interpolation, so p99 is a real sample."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(samples_s: Sequence[float], prefix: str) -> dict[str, float]:
    """Median and p99 of per-operation samples (seconds) in microseconds."""
    return {
        f"{prefix}_median": median(samples_s) * 1e6,
        f"{prefix}_p99": percentile(samples_s, 99) * 1e6,
    }


# --------------------------------------------------------------------------- timing


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.elapsed`` (seconds, perf_counter)."""

    elapsed: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._t0 = perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = perf_counter() - self._t0


def run_trio(async_fn: Callable[..., Awaitable[Any]], *args: Any,
             timeout: float = REP_TIMEOUT) -> Any:
    """One fresh ``trio.run`` with a hard deadline."""
    import trio

    async def main() -> Any:
        with trio.fail_after(timeout):
            return await async_fn(*args)

    return trio.run(main)


# --------------------------------------------------------------------------- memory


def memory_mark() -> int | None:
    """Bytes currently traced by tracemalloc, or None when this is not a memory repetition."""
    if not tracemalloc.is_tracing():
        return None
    return tracemalloc.get_traced_memory()[0]


def memory_per_item(before: int | None, n: int) -> dict[str, float]:
    """``{"mem_per_actor": bytes}`` when tracing, else ``{}``; call while the n items are alive."""
    after = memory_mark()
    if before is None or after is None:
        return {}
    return {"mem_per_actor": (after - before) / n}


@contextmanager
def traced_memory() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- environment


def prepare_repetition() -> None:
    """Identical GC state before every repetition of every implementation:
    a full collection, automatic GC left enabled with the interpreter's default thresholds."""
    gc.enable()
    gc.collect()


@contextmanager
def silenced_loggers(*names: str) -> Iterator[None]:
    """Attach a NullHandler and set propagate=False on the given loggers for the duration."""
    saved = []
    handler = logging.NullHandler()
    for name in names:
        lg = logging.getLogger(name)
        saved.append((lg, lg.propagate))
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, propagate in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate


# --------------------------------------------------------------------------- our runtime


def runtime() -> tuple[Any, Any]:
    """Import our runtime (``actors``, ``supervisors``) or raise RuntimeUnavailable."""
    try:
        import actors
        import supervisors
    except Exception as exc:  # ImportError, or a half-written package
        raise RuntimeUnavailable(f"runtime not available ({type(exc).__name__}: {exc})") from exc
    missing = [name for name in ("Actor", "handler", "Request") if not hasattr(actors, name)]
    missing += [name for name in ("open_tree", "Supervisor", "ChildSpec")
                if not hasattr(supervisors, name)]
    if missing:
        raise RuntimeUnavailable(f"runtime not available (missing: {', '.join(missing)})")
    return actors, supervisors


def mailbox_size() -> tuple[int, str]:
    """Our default mailbox capacity and where the number came from."""
    try:
        import actors

        return int(actors.DEFAULT_MAILBOX_SIZE), "actors.DEFAULT_MAILBOX_SIZE"
    except Exception:
        return FALLBACK_MAILBOX_SIZE, "assumed (actors.DEFAULT_MAILBOX_SIZE not importable)"
