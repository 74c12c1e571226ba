"""An autojump mock clock that holds still while a task waits for a thread."""

from __future__ import annotations

import math
from typing import final

import trio.testing

from .. import listen_outside_work


@final
class _Hold:
    """Sets the clock's ``autojump_threshold`` to infinity while any wait in `outside_trio` is
    under way, and back to its earlier value when the last one ends."""

    def __init__(self, clock: trio.testing.MockClock) -> None:
        self._clock = clock
        self._waits = 0
        self._threshold = clock.autojump_threshold

    def outside_work_began(self) -> None:
        if self._waits == 0:
            self._threshold = self._clock.autojump_threshold
            self._clock.autojump_threshold = math.inf
        self._waits += 1

    def outside_work_ended(self) -> None:
        self._waits -= 1
        if self._waits == 0:
            self._clock.autojump_threshold = self._threshold


def thread_aware_clock(autojump_threshold: float = 0.0) -> trio.testing.MockClock:
    """A `trio.testing.MockClock` that jumps to the next deadline whenever every task has been
    blocked for ``autojump_threshold`` real seconds (default 0: at once), except while a task
    waits in `supervisors.outside_trio`: then virtual time stands still and the run waits, in
    real time, for that wait to end.

    The job system's waits for real-time work are marked that way: a SQLite store's writer
    thread, the threads of plain ``def`` jobs, and a PostgreSQL store's calls (from the query
    sent to the answer, and its connects), but not its wait for notifications, which may last
    for ever. So no lease, heartbeat or timeout expires in virtual time while a thread or the
    database server works.
    Wrap your own thread waits in ``with supervisors.outside_trio():`` to get the same.

    Virtual time does not pass during such a wait, so a thread must not wait for something
    the test does only after a ``trio.sleep``: it would wait for ever (use the plain autojump
    clock there). While a wait is under way the clock's ``autojump_threshold`` reads infinity;
    set it between waits only. Pass the clock to ``trio.run(..., clock=)`` or return it from a
    fixture the test requests (the plugin's ``thread_aware_clock`` fixture)."""
    clock = trio.testing.MockClock(autojump_threshold=autojump_threshold)
    listen_outside_work(clock, _Hold(clock))
    return clock
