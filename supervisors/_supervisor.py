"""The Trio layer of supervision: nurseries, start/stop order, carrying out ``_decide``'s plans.

Each supervisor runs in one task holding one nursery; each child incarnation runs in a task of
that nursery inside a cancel scope owned by the supervisor. The supervisor handles one child
exit at a time (like an OTP supervisor process handling its EXIT messages), so every decision
sees a consistent state.

Invariants:
- ``slot.current`` is the running (or starting, or stopping) incarnation of a slot, or None.
- An exit notice whose incarnation is not ``slot.current`` is stale and ignored.
- Child tasks never raise ``Exception`` into the nursery: failures are recorded on the
  incarnation, so the nursery never wraps them in exception groups.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import trio

from actors import ActorRef
from actors._cell import ActorCell
from actors._mailbox import Call, Mailbox

from ._decide import ExitKind, RestartPlan, RestartWindow, needs_restart, plan_restart, plan_retry
from ._errors import (
    ChildNotFound,
    NormalExit,
    NotRunning,
    StartFailed,
    SupervisionError,
    SupervisorGaveUp,
    gave_up_message,
)
from ._events import (
    ChildCrashed,
    ChildExited,
    ChildRestarting,
    ChildStarted,
    ChildStartFailed,
    ChildStarting,
    ChildStopped,
    ChildStopping,
    GaveUp,
)
from ._runtime import ChildKind, ChildSnapshot, ChildState, Runtime, current_tree_var
from ._spec import ChildSpec, DynamicSupervisor, Restart, Strategy, Supervisor, TreeSpec

__all__ = ["SupervisorCell"]


class _Incarnation:
    __slots__ = ("cell", "done", "error", "injected", "number", "scope", "started", "stopping")

    def __init__(self, number: int, cell: ActorCell | SupervisorCell) -> None:
        self.number = number
        self.cell = cell
        self.scope = trio.CancelScope()
        self.done = trio.Event()
        self.error: Exception | None = None
        self.started = False
        self.stopping = False
        self.injected: Exception | None = None


class _Status:
    """Wraps the real task status: marks the slot running the moment the child has started."""

    __slots__ = ("bus", "incarnation", "real", "slot")

    def __init__(
        self, bus: Any, slot: _Slot, incarnation: _Incarnation, real: trio.TaskStatus[Exception | None]
    ) -> None:
        self.bus = bus
        self.slot = slot
        self.incarnation = incarnation
        self.real = real

    def started(self, value: object = None) -> None:
        incarnation = self.incarnation
        incarnation.started = True
        self.slot.state = ChildState.RUNNING
        if self.bus.detailed:
            self.bus.emit(ChildStarted(path=self.slot.path, time=trio.current_time(),
                                       incarnation=incarnation.number))
        self.real.started(None)


class _Slot:
    __slots__ = ("current", "incarnations", "kind", "last_error", "mailbox", "path", "ref", "spec", "state")

    def __init__(self, spec: TreeSpec, path: str, runtime: Runtime) -> None:
        self.spec = spec
        self.path = path
        self.current: _Incarnation | None = None
        self.incarnations = 0
        self.state = ChildState.STOPPED
        self.last_error: BaseException | None = None
        self.mailbox: Mailbox | None = None
        self.ref: ActorRef | None = None
        if isinstance(spec, ChildSpec):
            self.kind = ChildKind.ACTOR
            self.mailbox, self.ref = runtime.mailbox(path, spec.mailbox_size)
        else:
            self.kind = ChildKind.SUPERVISOR if isinstance(spec, Supervisor) else ChildKind.DYNAMIC_SUPERVISOR


class SupervisorCell:
    """One incarnation of a supervisor (static or dynamic)."""

    def __init__(self, spec: Supervisor | DynamicSupervisor, path: str, runtime: Runtime) -> None:
        self.spec = spec
        self.path = path
        self.runtime = runtime
        self.dynamic = isinstance(spec, DynamicSupervisor)
        self.slots: list[_Slot] = [_Slot(child, f"{path}/{child.name}", runtime) for child in spec.children]
        self._nursery: trio.Nursery | None = None
        self._inbox: deque[tuple[_Slot, _Incarnation]] = deque()
        self._wakeup = trio.lowlevel.ParkingLot()
        self._lock = trio.Lock()
        self._window = RestartWindow(spec.max_restarts, spec.within)
        self._names: dict[str, _Slot] = {slot.spec.name: slot for slot in self.slots}
        self._stop_requested = False
        self._stop_event = trio.Event()
        self._injected: Exception | None = None
        self.running = False
        self.finished = False
        runtime.supervisors[path] = self

    # -- the ActorCell-like contract ---------------------------------------------------------

    def request_stop(self, *, immediate: bool, by_supervisor: bool = True) -> None:
        self._stop_requested = True
        self._stop_event.set()
        self._wakeup.unpark_all()

    async def run(self, task_status: Any) -> None:
        failure: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    await self._start_all()
                    self.running = True
                    task_status.started()
                    await self._control_loop()
                except Exception as exc:  # gave up, failed to start, or an injected failure
                    failure = exc
                await self._stop_all()
        finally:
            self.running = False
            self.finished = True
            if self.runtime.supervisors.get(self.path) is self:
                del self.runtime.supervisors[self.path]
            # Children added at run time do not survive their supervisor: their mailboxes close.
            static = {child.name for child in self.spec.children}
            for slot in self.slots:
                if slot.spec.name not in static:
                    self._close(slot, "its supervisor stopped", forget=True)
        if failure is not None:
            raise failure

    # -- starting --------------------------------------------------------------------------

    async def _start_all(self) -> None:
        for slot in self.slots:
            error = await self._start_slot(slot)
            if error is not None:
                await self._stop_all()
                raise StartFailed(
                    f"supervisor {self.path!r} could not start: child {slot.path!r} failed to "
                    f"start with {error!r}; the children started before it were stopped"
                ) from error

    def _new_cell(self, slot: _Slot) -> ActorCell | SupervisorCell:
        spec = slot.spec
        if isinstance(spec, ChildSpec):
            assert slot.mailbox is not None
            assert slot.ref is not None
            slot.mailbox.reopen()
            return ActorCell(slot.path, spec.factory, slot.mailbox, slot.ref, self.runtime.spawn, spec.shutdown)
        return SupervisorCell(spec, slot.path, self.runtime)

    async def _start_slot(self, slot: _Slot) -> Exception | None:
        """Start one incarnation of ``slot``; return the start failure, or None once started."""
        assert self._nursery is not None
        slot.incarnations += 1
        incarnation = _Incarnation(slot.incarnations, self._new_cell(slot))
        slot.current = incarnation
        slot.state = ChildState.STARTING
        bus = self.runtime.bus
        if bus.detailed:
            bus.emit(ChildStarting(path=slot.path, time=trio.current_time(), incarnation=incarnation.number,
                                   restart=slot.spec.restart.value))
        error: Exception | None = await self._nursery.start(self._child_main, slot, incarnation)
        if error is not None:
            slot.current = None
            slot.state = ChildState.DOWN
            slot.last_error = error
            bus.emit(ChildStartFailed(path=slot.path, time=trio.current_time(),
                                      incarnation=incarnation.number, error=error))
            return error
        return None

    async def _child_main(
        self, slot: _Slot, incarnation: _Incarnation, task_status: trio.TaskStatus[Exception | None]
    ) -> None:
        tree = self.runtime.tree
        if tree is not None:
            current_tree_var.set(tree)
        try:
            with incarnation.scope:
                await incarnation.cell.run(_Status(self.runtime.bus, slot, incarnation, task_status))
        except Exception as exc:
            incarnation.error = exc
        finally:
            if incarnation.error is None and incarnation.injected is not None:
                incarnation.error = incarnation.injected
            incarnation.done.set()
        if not incarnation.started:
            task_status.started(incarnation.error or RuntimeError(f"{slot.path!r} was cancelled while starting"))
            return
        if not incarnation.stopping:
            self._inbox.append((slot, incarnation))
            self._wakeup.unpark()

    # -- stopping --------------------------------------------------------------------------

    async def _stop_all(self, reason: str = "shutdown") -> None:
        """Stop every running child in reverse list order, one subtree at a time."""
        for slot in reversed(self.slots):
            await self._stop_slot(slot, reason)

    async def _stop_slot(self, slot: _Slot, reason: str) -> None:
        incarnation = slot.current
        if incarnation is None:
            return
        incarnation.stopping = True
        slot.state = ChildState.STOPPING
        grace = slot.spec.shutdown
        bus = self.runtime.bus
        if bus.detailed:
            bus.emit(ChildStopping(path=slot.path, time=trio.current_time(),
                                   incarnation=incarnation.number, grace=grace, reason=reason))
        incarnation.cell.request_stop(immediate=grace == 0)
        if grace == 0:
            incarnation.scope.cancel()
        elif grace != math.inf:
            incarnation.scope.deadline = trio.current_time() + grace
        await incarnation.done.wait()
        slot.current = None
        slot.state = ChildState.STOPPED
        cancelled = incarnation.scope.cancelled_caught
        if incarnation.error is not None:
            slot.last_error = incarnation.error
        if bus.detailed or cancelled or incarnation.error is not None:
            bus.emit(ChildStopped(path=slot.path, time=trio.current_time(), incarnation=incarnation.number,
                                  cancelled=cancelled, error=incarnation.error))

    # -- supervising -----------------------------------------------------------------------

    async def _control_loop(self) -> None:
        inbox = self._inbox
        while True:
            while not inbox and not self._stop_requested and self._injected is None:
                await self._wakeup.park()
            if self._injected is not None:
                await self._stop_all("give_up")
                raise self._injected
            if self._stop_requested:
                return
            slot, incarnation = inbox.popleft()
            async with self._lock:
                await self._handle_exit(slot, incarnation)

    async def _handle_exit(self, slot: _Slot, incarnation: _Incarnation) -> None:
        if slot.current is not incarnation:
            return  # stale: that incarnation was already stopped or replaced
        slot.current = None
        slot.state = ChildState.DOWN
        error = incarnation.error
        now = trio.current_time()
        bus = self.runtime.bus
        if error is not None:
            slot.last_error = error
            message = incarnation.cell.current if isinstance(incarnation.cell, ActorCell) else None
            if isinstance(message, Call):
                message = message.msg
            bus.emit(ChildCrashed(path=slot.path, time=now, incarnation=incarnation.number,
                                  error=error, message=message))
            kind = ExitKind.CRASH
        else:
            bus.emit(ChildExited(path=slot.path, time=now, incarnation=incarnation.number))
            kind = ExitKind.NORMAL
        restart = slot.spec.restart
        if restart is Restart.TEMPORARY:
            self._remove(slot, "a temporary child exited")
            return
        if not needs_restart(restart, kind):
            if self.dynamic:
                self._remove(slot, "a transient child exited normally")
            else:
                self._close(slot, "a transient child exited normally", forget=False)
            return
        cause: BaseException = error if error is not None else NormalExit(slot.path)
        await self._restart(slot, cause)

    def _remove(self, slot: _Slot, reason: str) -> None:
        self.slots.remove(slot)
        del self._names[slot.spec.name]
        self._close(slot, reason, forget=True)

    def _close(self, slot: _Slot, reason: str, *, forget: bool) -> None:
        """Close the slot's mailbox; a supervisor slot closes every mailbox under it too."""
        self.runtime.close_under(slot.path, reason, forget=forget, subtree=slot.kind is not ChildKind.ACTOR)

    async def _restart(self, failed: _Slot, cause: BaseException) -> None:
        slots = self.slots
        index = slots.index(failed)
        strategy = self.spec.strategy
        plan = plan_restart(strategy, index, [s.spec.restart for s in slots], [s.current is not None for s in slots])
        to_stop = [slots[i] for i in plan.stop]
        to_remove = [slots[i] for i in plan.remove]
        to_start = [slots[i] for i in plan.start]
        while True:
            if not self._window.record(trio.current_time()):
                await self._give_up(cause, failed.path)
            delay = 0.0
            backoff = self.spec.backoff
            if backoff is not None:
                delay = backoff.delay(len(self._window), self.runtime.rng)
            bus = self.runtime.bus
            now = trio.current_time()
            for slot in to_start:
                slot.state = ChildState.RESTARTING
                bus.emit(ChildRestarting(path=slot.path, time=now, delay=delay,
                                         restarts=len(self._window), cause=failed.path))
            for slot in to_stop:
                await self._stop_slot(slot, "restart")
                slot.state = ChildState.RESTARTING
            for slot in to_remove:
                self._remove(slot, "a temporary child is not restarted by a group restart")
            to_remove = []
            if delay > 0:
                with trio.move_on_after(delay):
                    await self._stop_event.wait()
            if self._stop_requested:
                for slot in to_start:
                    if slot.current is None:
                        slot.state = ChildState.STOPPED
                return
            failed_slot: _Slot | None = None
            for slot in to_start:
                error = await self._start_slot(slot)
                if error is not None:
                    failed_slot, cause = slot, error
                    break
            if failed_slot is None:
                return
            # A start failed: retry (each attempt counts toward intensity).
            # plan_retry works on indices into to_start
            retry = plan_retry(
                strategy if not self.dynamic else Strategy.ONE_FOR_ONE,
                to_start.index(failed_slot),
                RestartPlan(stop=(), remove=(), start=tuple(range(len(to_start)))),
            )
            to_stop = [to_start[i] for i in retry.stop]
            to_start = [to_start[i] for i in retry.start]
            failed = failed_slot

    async def _give_up(self, cause: BaseException, child: str) -> None:
        spec = self.spec
        restarts = len(self._window)
        self.runtime.bus.emit(GaveUp(path=self.path, time=trio.current_time(),
                                     restarts=restarts, within=spec.within, error=cause, cause=child))
        await self._stop_all("give_up")
        raise SupervisorGaveUp(
            gave_up_message(self.path, spec.max_restarts, spec.within, child, cause),
            path=self.path, restarts=restarts, within=spec.within, child=child,
        ) from cause

    # -- dynamic children ------------------------------------------------------------------

    async def start_child(self, spec: TreeSpec) -> _Slot:
        if not isinstance(spec, ChildSpec | Supervisor | DynamicSupervisor):
            raise TypeError(f"start_child takes a ChildSpec, Supervisor or DynamicSupervisor (got {spec!r})")
        async with self._lock:
            self._check_running()
            if spec.name in self._names:
                raise ValueError(
                    f"a child named {spec.name!r} already exists under {self.path!r}; choose "
                    "another name or terminate it first"
                )
            limit = getattr(self.spec, "max_children", None)
            if limit is not None and len(self.slots) >= limit:
                raise SupervisionError(
                    f"{self.path!r} already has max_children={limit} children; terminate one "
                    "first or raise max_children"
                )
            slot = _Slot(spec, f"{self.path}/{spec.name}", self.runtime)
            self.slots.append(slot)
            self._names[spec.name] = slot
            error = await self._start_slot(slot)
            if error is not None:
                self._remove(slot, "it failed to start")
                raise StartFailed(f"child {slot.path!r} failed to start: {error!r}") from error
            return slot

    async def terminate_child(self, name: str) -> None:
        async with self._lock:
            self._check_running()
            slot = self.child_slot(name)
            await self._stop_slot(slot, "terminate")
            self._remove(slot, "it was terminated")

    # -- fault injection (Tree.inject_crash / inject_exit) -----------------------------------

    def child_slot(self, name: str) -> _Slot:
        slot = self._names.get(name)
        if slot is not None:
            return slot
        raise ChildNotFound(f"{self.path!r} has no child named {name!r}; its children are "
                            f"{[s.spec.name for s in self.slots]}")

    def inject_failure(self, error: Exception) -> None:
        """Make this supervisor fail as if it had given up: stop children in reverse, raise."""
        if self._injected is None:
            self._injected = error
            self._wakeup.unpark_all()

    def inject(self, slot: _Slot, error: Exception | None) -> None:
        """Crash (``error``) or end normally (``None``) the running incarnation of ``slot``."""
        incarnation = slot.current
        if incarnation is None or not incarnation.started or incarnation.stopping:
            raise NotRunning(f"child {slot.path!r} is not running (state {slot.state.value}); nothing to inject")
        cell = incarnation.cell
        if error is None:
            if isinstance(cell, SupervisorCell):
                raise ValueError(f"{slot.path!r} is a supervisor; a supervisor never exits normally")
            cell.request_stop(immediate=False, by_supervisor=False)
        elif isinstance(cell, SupervisorCell):
            cell.inject_failure(error)
        else:
            incarnation.injected = error
            incarnation.scope.cancel()

    def _check_running(self) -> None:
        if not self.running or self._stop_requested:
            raise NotRunning(f"supervisor {self.path!r} is not running; it cannot change its children")

    # -- inspection ------------------------------------------------------------------------

    def snapshot_children(self) -> tuple[ChildSnapshot, ...]:
        return tuple(_snapshot(slot) for slot in self.slots)


def _snapshot(slot: _Slot) -> ChildSnapshot:
    children: tuple[ChildSnapshot, ...] = ()
    incarnation = slot.current
    if incarnation is not None and isinstance(incarnation.cell, SupervisorCell):
        children = incarnation.cell.snapshot_children()
    return ChildSnapshot(
        path=slot.path,
        name=slot.spec.name,
        kind=slot.kind,
        state=slot.state,
        restarts=max(0, slot.incarnations - 1),
        last_error=None if slot.last_error is None else repr(slot.last_error),
        mailbox_depth=None if slot.mailbox is None else len(slot.mailbox),
        children=children,
    )
