"""Call timeouts without a cancel scope per call.

A ``call`` that found room in the mailbox registers its deadline here and parks in
``wait_task_rescheduled``; one system task per ``trio.run`` sleeps until the earliest
registered deadline and fails the calls still waiting at that time with their timeout error.
Entering and leaving a ``trio.CancelScope`` with a deadline costs more than the rest of a call
round trip together, which is why calls do not use one on this path.

Invariants:
- ``_heap`` holds ``(deadline, seq, envelope, error)``; an entry whose ``envelope.task`` is
  ``None`` was answered, failed or aborted and is dropped lazily.
- The timer task sleeps until at most the earliest deadline in ``_heap`` (``_scope.deadline``),
  or is parked when ``_heap`` is empty.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import outcome
import trio

from ._mailbox import Call

__all__ = ["add_deadline"]


class _Deadlines:
    __slots__ = ("_heap", "_lot", "_scope", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Call, Callable[[], BaseException]]] = []
        self._seq = itertools.count()
        self._lot = trio.lowlevel.ParkingLot()
        self._scope: trio.CancelScope | None = None

    def add(self, deadline: float, envelope: Call, error: Callable[[], BaseException]) -> None:
        heap = self._heap
        while heap and heap[0][2].task is None:  # answered calls at the front go first
            heapq.heappop(heap)
        heapq.heappush(heap, (deadline, next(self._seq), envelope, error))
        scope = self._scope
        if scope is None:
            self._lot.unpark()
        elif deadline < scope.deadline:
            scope.deadline = deadline

    async def run(self) -> None:
        heap = self._heap
        while True:
            while heap and heap[0][2].task is None:
                heapq.heappop(heap)
            if not heap:
                await self._lot.park()
                continue
            deadline = heap[0][0]
            if deadline <= trio.current_time():
                _, _, envelope, error = heapq.heappop(heap)
                task = envelope.task
                if task is not None:
                    envelope.task = None
                    trio.lowlevel.reschedule(task, outcome.Error(error()))
                continue
            with trio.CancelScope(deadline=deadline) as scope:
                self._scope = scope
                try:
                    await trio.sleep_forever()
                finally:
                    self._scope = None


_deadlines: trio.lowlevel.RunVar[_Deadlines] = trio.lowlevel.RunVar("actors_call_deadlines")


def add_deadline(timeout: float, envelope: Call, error: Callable[[], BaseException]) -> None:
    """Fail ``envelope``'s waiting task with ``error()`` if it is still waiting in ``timeout`` s."""
    try:
        deadlines = _deadlines.get()
    except LookupError:
        deadlines = _Deadlines()
        _deadlines.set(deadlines)
        trio.lowlevel.spawn_system_task(deadlines.run, name="actors call deadlines")
    deadline = trio.current_time() + timeout
    if not math.isnan(deadline):
        deadlines.add(deadline, envelope, error)
