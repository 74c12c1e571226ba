"""Wall-clock time for the job system, injectable so that tests run under `trio.testing.MockClock`.

Waiting is always done with Trio (``trio.sleep``), so only the reading of "now" needs a seam.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol, final, runtime_checkable

import trio

from ._model import to_timestamp


@runtime_checkable
class Clock(Protocol):
    """Gives the current wall-clock time in seconds since the Unix epoch (UTC)."""

    def now(self) -> float:
        """The current time in seconds since the Unix epoch."""
        ...


@final
class SystemClock:
    """The real wall clock: `time.time`. The default clock of `JobSystem` and `JobClient`."""

    def now(self) -> float:
        """The current time in seconds since the Unix epoch."""
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


@final
class TrioWallClock:
    """Wall time that follows Trio's clock: ``start`` plus the Trio time elapsed since the origin.

    Under ``trio.testing.MockClock`` the wall time advances exactly as the mock clock does, so
    cron schedules, backoffs and leases can be tested without real waiting. The origin is the Trio
    time of the first call to `now` (or of `reset`); calling `now` outside ``trio.run`` raises
    ``RuntimeError``.
    """

    def __init__(self, start: datetime) -> None:
        self._start = to_timestamp(start)
        self._origin: float | None = None

    def reset(self) -> None:
        """Make the current Trio time correspond to ``start`` again."""
        self._origin = trio.current_time()

    def now(self) -> float:
        """``start`` plus the Trio time elapsed since the origin, in epoch seconds."""
        current: float = trio.current_time()
        if self._origin is None:
            self._origin = current
        return self._start + (current - self._origin)

    def __repr__(self) -> str:
        return f"TrioWallClock(start={self._start!r})"
