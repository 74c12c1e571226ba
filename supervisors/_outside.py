"""Waits for work outside Trio (another thread): announced to a listener of the run's clock.

A mock clock that jumps ahead whenever every task is blocked also jumps while a task waits for
a thread, which works in real time: a lease or a timeout can expire in virtual time while the
thread is still busy. Code that waits for a thread says so with `outside_trio`; a test clock
registered with `listen_outside_work` (`supervisors.testing.thread_aware_clock`) then holds
virtual time still until the wait ends. Without a listener, `outside_trio` costs next to nothing.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Protocol, final

import trio

__all__ = ["OutsideWorkListener", "listen_outside_work", "outside_trio", "outside_work_listener"]


class OutsideWorkListener(Protocol):
    """Told when a task of a run begins and ends waiting in `outside_trio` (in the run's own
    thread, in that order, once each per wait; waits may overlap)."""

    def outside_work_began(self) -> None:
        """A task began waiting for work outside Trio."""

    def outside_work_ended(self) -> None:
        """A task's wait for work outside Trio ended (done, failed or cancelled)."""


_LISTENERS: weakref.WeakKeyDictionary[trio.abc.Clock, OutsideWorkListener] = weakref.WeakKeyDictionary()
_listening = False
"""Whether any clock has a listener (then `outside_trio` looks the run's clock up)."""


def listen_outside_work(clock: trio.abc.Clock, listener: OutsideWorkListener | None) -> None:
    """Tell ``listener`` about the waits in `outside_trio` of every run that uses ``clock``
    (replacing any listener it had); ``None`` removes it. Kept as long as ``clock`` lives."""
    global _listening
    if listener is None:
        _LISTENERS.pop(clock, None)
    else:
        _LISTENERS[clock] = listener
    _listening = bool(_LISTENERS)


_NOTHING = contextlib.nullcontext()


@final
class _Wait:
    __slots__ = ("_listener",)

    def __init__(self, listener: OutsideWorkListener) -> None:
        self._listener = listener

    def __enter__(self) -> None:
        self._listener.outside_work_began()

    def __exit__(self, *exc: object) -> None:
        self._listener.outside_work_ended()


def outside_work_listener() -> OutsideWorkListener | None:
    """The listener registered for the current run's clock (`listen_outside_work`), or None:
    for a wait on a hot path that calls ``outside_work_began()`` / ``outside_work_ended()``
    itself rather than enter `outside_trio` (a global check when no clock has a listener)."""
    if not _listening:
        return None
    return _LISTENERS.get(trio.lowlevel.current_clock())


def outside_trio() -> contextlib.AbstractContextManager[None]:
    """Wrap a wait, in a Trio task, for work done outside Trio: ``with outside_trio(): await
    trio.to_thread.run_sync(fn)``. The listener of the run's clock (`listen_outside_work`), if
    any, is told when the wait begins and ends; otherwise nothing happens (with no listener
    registered at all, not even a look-up of the clock)."""
    listener = outside_work_listener()
    return _NOTHING if listener is None else _Wait(listener)
