"""A level-triggered wake-up flag for one waiting task."""

from __future__ import annotations

import math

import trio


class Signal:
    """`set` wakes the task blocked in `wait`, or makes its next `wait` return at once.

    Several `set` calls before a `wait` count as one. Only one task may wait at a time.
    """

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: trio.Event | None = None

    def set(self) -> None:
        self._flag = True
        event = self._event
        if event is not None:
            event.set()

    async def wait(self, max_wait: float = math.inf) -> bool:
        """Wait for `set` or ``max_wait`` seconds; return whether it was set (and clear it)."""
        if not self._flag:
            event = self._event = trio.Event()
            with trio.move_on_after(max(0.0, max_wait)):
                await event.wait()
            self._event = None
        else:
            await trio.lowlevel.checkpoint()
        was_set = self._flag
        self._flag = False
        return was_set
