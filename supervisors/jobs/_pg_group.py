"""Group commit for one kind of call: the calls waiting together share one attempt.

`Gather.submit` queues its item. A caller that finds no attempt under way leads one, in its
own task (no task is spawned): the attempt takes every item queued by the time it starts its
work (`take`, called when it has its connection, so the items that came while it waited for
one join too) and the leader hands each taken caller its own outcome. One attempt runs at a
time: the items queued meanwhile wait for it to end, and the first of them leads the next, so
the more callers, the bigger the group (one ``COMMIT`` each; attempts side by side on several
connections would split them into small groups that each wait for their own ``COMMIT``).

Cancellation: an item not taken yet is withdrawn and its caller raises `trio.Cancelled`
(nothing was written for it); a leader cancelled before it took the items passes the lead to
the next caller queued. Once taken, an item runs to the end and its outcome is delivered (as
for a call on a worker thread that is not abandoned). An attempt that fails before it takes
the items (no connection) fails them all: each caller decides whether to try again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import outcome
import trio

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")

LANES = 1
"""Attempts under way at once. One: 8 tasks enqueuing one job at a time made 306 commits for
1,600 jobs (groups of 8, and of 1 for the caller that runs ahead); with 2 lanes 500, with 4
860, which each pay their own ``COMMIT``."""

_LEAD: Any = object()
"""Delivered to a queued caller that is to lead the next attempt."""


class _Waiter(Generic[I, R]):
    __slots__ = ("item", "leading", "taken", "task")

    def __init__(self, item: I) -> None:
        self.item = item
        self.task = trio.lowlevel.current_task()
        self.taken = False
        self.leading = False


class Gather(Generic[I, R]):
    """Runs ``attempt(take)`` for the items submitted together: ``take()`` (to be called once,
    synchronously, when the attempt starts its work) returns the items queued so far, and
    ``attempt`` returns one outcome per item, in order; an exception it raises is each item's."""

    def __init__(
        self, attempt: Callable[[Callable[[], list[I]]], Awaitable[list[outcome.Outcome[R]]]], name: str
    ) -> None:
        self._attempt = attempt
        self._name = name
        self._queued: list[_Waiter[I, R]] = []
        self._running = 0
        """Attempts under way (each leader hands the lead on when its attempt ends)."""

    async def submit(self, item: I) -> R:
        """Run ``item`` with those submitted at the same time; its own result (or error)."""
        waiter: _Waiter[I, R] = _Waiter(item)
        self._queued.append(waiter)
        if self._running < LANES:
            self._running += 1
            return await self._lead(waiter)

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            if waiter.taken:
                return trio.lowlevel.Abort.FAILED
            self._queued.remove(waiter)
            return trio.lowlevel.Abort.SUCCEEDED

        result: Any = await trio.lowlevel.wait_task_rescheduled(abort)
        if result is _LEAD:
            return await self._lead(waiter)
        return result  # type: ignore[no-any-return]

    async def _lead(self, waiter: _Waiter[I, R]) -> R:
        """Run an attempt (counted in ``_running`` by the caller) and deliver its outcomes."""
        waiter.leading = True  # its item is its own attempt's, never another leader's
        batch: list[_Waiter[I, R]] = []

        def take() -> list[I]:
            left: list[_Waiter[I, R]] = []
            for each in self._queued:  # not the callers picked to lead the next attempts
                (left if each.leading and each is not waiter else batch).append(each)
            self._queued = left
            for each in batch:
                each.taken = True
            return [w.item for w in batch]

        try:
            results = await self._attempt(take)
        except BaseException as exc:
            if not waiter.taken and isinstance(exc, trio.Cancelled):  # the leader's own
                self._queued.remove(waiter)
                self._hand_on()
                raise
            if not waiter.taken:
                take()  # no connection: each caller gets the error and decides
            self._hand_on()
            for each in batch:
                if each is not waiter:
                    trio.lowlevel.reschedule(each.task, outcome.Error(exc))
            raise
        self._hand_on()
        mine: outcome.Outcome[R] | None = None
        for each, result in zip(batch, results, strict=True):
            if each is waiter:
                mine = result
            else:
                trio.lowlevel.reschedule(each.task, result)
        assert mine is not None
        return mine.unwrap()

    def _hand_on(self) -> None:
        """An attempt ended: the first caller queued (not already picked) leads the next."""
        self._running -= 1
        waiting = [w for w in self._queued if not w.leading]
        if waiting:
            waiting[0].leading = True
            self._running += 1
            trio.lowlevel.reschedule(waiting[0].task, outcome.Value(_LEAD))

    def __repr__(self) -> str:
        return f"Gather({self._name!r}, queued={len(self._queued)})"
