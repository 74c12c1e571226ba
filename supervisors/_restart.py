"""The restart loop: carrying out ``_decide``'s plans within a supervisor's restart intensity.

Which children to stop, remove and start, and whether a restart is allowed, are decided in
``_decide``; this module only performs the decisions in Trio (stops, backoff delay, starts,
retries after a failed start) and gives up when the intensity is exceeded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

import trio

from ._decide import RestartPlan, RestartWindow, plan_restart, plan_retry
from ._errors import NormalExit, SupervisorGaveUp, gave_up_message
from ._events import ChildRestarting, GaveUp
from ._snapshot import ChildState
from ._spec import Restart, Strategy

if TYPE_CHECKING:
    from ._slot import Slot
    from ._supervisor import SupervisorCell

__all__ = ["NormalExit", "Restarter"]


class Restarter:
    """The restarts of one supervisor incarnation: its intensity window and the restart loop."""

    __slots__ = ("cell", "window")

    def __init__(self, cell: SupervisorCell) -> None:
        self.cell = cell
        self.window = RestartWindow(cell.spec.max_restarts, cell.spec.within)

    async def restart(self, failed: Slot, cause: BaseException) -> None:
        """Restart ``failed`` (already down) and the siblings its supervisor's strategy names.

        Each attempt counts toward the intensity; a start that fails is retried as
        ``plan_retry`` says. Gives up (raises :class:`SupervisorGaveUp`) when the window is full.
        """
        cell = self.cell
        strategy = cell.spec.strategy
        to_stop: list[Slot]
        to_remove: list[Slot]
        if strategy is Strategy.ONE_FOR_ONE and failed.spec.restart is not Restart.TEMPORARY:
            # plan_restart's answer for one_for_one, without O(children) work per restart
            to_stop, to_remove, to_start = [], [], [failed]
        else:
            slots = cell.slots
            plan = plan_restart(strategy, slots.index(failed), [s.spec.restart for s in slots],
                                [s.current is not None for s in slots])
            to_stop = [slots[i] for i in plan.stop]
            to_remove = [slots[i] for i in plan.remove]
            to_start = [slots[i] for i in plan.start]
        while True:
            now = trio.current_time()
            if not self.window.record(now):
                await self.give_up(cause, failed.path)
            delay = 0.0
            backoff = cell.spec.backoff
            if backoff is not None:
                delay = backoff.delay(len(self.window), cell.runtime.rng)
            bus = cell.runtime.bus
            report = bus.wants(logging.INFO)  # the events are built only if they would be seen
            for slot in to_start:
                slot.state = ChildState.RESTARTING
                if report:
                    bus.emit(ChildRestarting(path=slot.path, time=now, delay=delay,
                                             restarts=len(self.window), cause=failed.path))
            for slot in to_stop:
                await cell.stop_slot(slot, "restart")
                slot.state = ChildState.RESTARTING
            for slot in to_remove:
                cell.remove(slot, "a temporary child is not restarted by a group restart")
            to_remove = []
            if delay > 0:
                with trio.move_on_after(delay):
                    await cell.wait_stop_requested()
            if cell.stop_requested:
                for slot in to_start:
                    if slot.current is None:
                        slot.state = ChildState.STOPPED
                return
            failed_slot: Slot | None = None
            for slot in to_start:
                error = await cell.start_slot(slot)
                if error is not None:
                    failed_slot, cause = slot, error
                    break
            if failed_slot is None:
                return
            # A start failed: retry (each attempt counts toward intensity); plan_retry works on
            # indices into to_start.
            retry = plan_retry(
                strategy,
                to_start.index(failed_slot),
                RestartPlan(stop=(), remove=(), start=tuple(range(len(to_start)))),
            )
            to_stop = [to_start[i] for i in retry.stop]
            to_start = [to_start[i] for i in retry.start]
            failed = failed_slot

    async def give_up(self, cause: BaseException, child: str) -> NoReturn:
        """Stop every child in reverse order and fail with :class:`SupervisorGaveUp`.

        ``cause`` is the failure that needed the refused restart, ``child`` the path of the
        child whose exit it was.
        """
        cell = self.cell
        spec = cell.spec
        restarts = len(self.window)
        cell.runtime.bus.emit(GaveUp(path=cell.path, time=trio.current_time(),
                                     restarts=restarts, within=spec.within, error=cause, cause=child))
        await cell.stop_all("give_up")
        raise SupervisorGaveUp(
            gave_up_message(cell.path, spec.max_restarts, spec.within, child, cause),
            path=cell.path, restarts=restarts, within=spec.within, child=child,
        ) from cause
