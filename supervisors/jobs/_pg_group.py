"""Group commit for one kind of call: the calls waiting together share one attempt.

`Gather.submit` queues its item. The first caller to find no attempt gathering leads one, in
its own task (no task is spawned): the attempt takes every item queued by the time it starts
its work (`take`, called when it has its connection, so the items that came while it waited
for one join too) and the leader hands each taken caller its own outcome. Once an attempt has
taken its items, the next caller leads the next one, so attempts overlap up to the connections
the attempt function can get.

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

_LEAD: Any = object()
"""Delivered to a queued caller that is to lead the next attempt."""


class _Waiter(Generic[I, R]):
    __slots__ = ("item", "taken", "task")

    def __init__(self, item: I) -> None:
        self.item = item
        self.task = trio.lowlevel.current_task()
        self.taken = False


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
        self._gathering = False
        """Whether an attempt is under way that has not taken its items yet."""

    async def submit(self, item: I) -> R:
        """Run ``item`` with those submitted at the same time; its own result (or error)."""
        waiter: _Waiter[I, R] = _Waiter(item)
        self._queued.append(waiter)
        if not self._gathering:
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
        self._gathering = True
        batch: list[_Waiter[I, R]] = []

        def take() -> list[I]:
            batch.extend(self._queued)
            self._queued = []
            self._gathering = False
            for each in batch:
                each.taken = True
            return [w.item for w in batch]

        try:
            results = await self._attempt(take)
        except BaseException as exc:
            if not waiter.taken:  # before it took the items
                self._gathering = False
                if isinstance(exc, trio.Cancelled):  # the leader's own cancellation
                    self._queued.remove(waiter)
                    if self._queued:
                        self._gathering = True
                        trio.lowlevel.reschedule(self._queued[0].task, outcome.Value(_LEAD))
                    raise
                take()  # no connection: each caller gets the error and decides
            for each in batch:
                if each is not waiter:
                    trio.lowlevel.reschedule(each.task, outcome.Error(exc))
            raise
        mine: outcome.Outcome[R] | None = None
        for each, result in zip(batch, results, strict=True):
            if each is waiter:
                mine = result
            else:
                trio.lowlevel.reschedule(each.task, result)
        assert mine is not None
        return mine.unwrap()

    def __repr__(self) -> str:
        return f"Gather({self._name!r}, queued={len(self._queued)})"
