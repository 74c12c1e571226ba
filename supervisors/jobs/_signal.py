"""A level-triggered wake-up flag for one waiting task."""

from __future__ import annotations

import math

import trio


class Signal:
    """`set` wakes the task blocked in `wait`, or makes its next `wait` return at once.

    Several `set` calls before a `wait` count as one. Only one task may wait at a time.
    """

    __slots__ = ("_flag", "_task")

    def __init__(self) -> None:
        self._flag = False
        self._task: trio.lowlevel.Task | None = None
        """The task blocked in `wait`, until `set` reschedules it or its wait is aborted."""

    def set(self) -> None:
        self._flag = True
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)

    async def wait(self, max_wait: float = math.inf) -> bool:
        """Wait for `set` or ``max_wait`` seconds; return whether it was set (and clear it)."""
        if self._flag:
            await trio.lowlevel.checkpoint()
        elif max_wait == math.inf:
            self._task = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        else:
            with trio.move_on_after(max(0.0, max_wait)):
                self._task = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort)
        was_set = self._flag
        self._flag = False
        return was_set

    def _abort(self, _: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED
