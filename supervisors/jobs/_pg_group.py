"""Group commit for one kind of call: the calls waiting together share one attempt.

`Gather.submit` queues its item; the first item queued when none waits starts an attempt (a
system task of the run), which takes every item queued by the time it runs (`Gather.take`,
called when the attempt has its connection, so the items that came while it waited for one
join too) and delivers each item's own outcome. An attempt that fails before it takes the items
(no connection) fails them all: each caller decides whether to try again. Attempts overlap up to the connections the
attempt function can get.

Cancellation: an item not taken yet is withdrawn and its caller raises `trio.Cancelled`
(nothing was written for it); once taken it runs to the end and its outcome is delivered (as
for a call on a worker thread that is not abandoned).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import outcome
import trio

from ._errors import StoreError

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")


class _Waiter(Generic[I, R]):
    __slots__ = ("item", "result", "taken", "task")

    def __init__(self, item: I) -> None:
        self.item = item
        self.task = trio.lowlevel.current_task()
        self.taken = False
        self.result: outcome.Outcome[R] | None = None


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

    async def submit(self, item: I) -> R:
        """Run ``item`` with those submitted at the same time; its own result (or error)."""
        waiter: _Waiter[I, R] = _Waiter(item)
        self._queued.append(waiter)
        if len(self._queued) == 1:
            trio.lowlevel.spawn_system_task(self._run, name=self._name)

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            if waiter.taken:
                return trio.lowlevel.Abort.FAILED
            self._queued.remove(waiter)
            return trio.lowlevel.Abort.SUCCEEDED

        result: R = await trio.lowlevel.wait_task_rescheduled(abort)
        return result

    async def _run(self) -> None:
        batch: list[_Waiter[I, R]] = []
        took = False

        def take() -> list[I]:
            nonlocal took
            took = True
            batch.extend(self._queued)
            self._queued = []
            for waiter in batch:
                waiter.taken = True
            return [w.item for w in batch]

        try:
            results = await self._attempt(take)
        except BaseException as exc:  # each taken item's error; the system task never fails
            if isinstance(exc, trio.Cancelled):  # the run is ending; not the callers' scope
                exc = StoreError(f"{self._name}: the Trio run ended during the call")
            if not took:  # failed before it took them (no connection): they get the error
                take()
            for waiter in batch:
                waiter.result = outcome.Error(exc)
        else:
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
        for waiter in batch:
            assert waiter.result is not None
            trio.lowlevel.reschedule(waiter.task, waiter.result)

    def __repr__(self) -> str:
        return f"Gather({self._name!r}, queued={len(self._queued)})"
