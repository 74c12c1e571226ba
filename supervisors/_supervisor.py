"""The Trio layer of supervision: nurseries, start/stop order, handling each child's exit.

Each supervisor runs in one task holding one nursery; each child incarnation runs in a task of
that nursery inside a cancel scope owned by the supervisor. The supervisor handles one child
exit at a time (like an OTP supervisor process handling its EXIT messages), so every decision
sees a consistent state. What to restart is decided in ``_decide`` and carried out by
``_restart``; a static :class:`Supervisor` and a :class:`DynamicSupervisor` (``_dynamic``)
differ only in what happens to a child that stops for good.

Invariants:
- ``slot.current`` is the running (or starting, or stopping) incarnation of a slot, or None.
- An exit notice whose incarnation is not ``slot.current`` is stale and ignored.
- Child tasks never raise ``Exception`` into the nursery: failures are recorded on the
  incarnation, so the nursery never wraps them in exception groups.
"""

from __future__ import annotations

import logging
import math
from collections import deque

import trio

from actors.contract import Call, StartStatus, actor_cell

from ._decide import ExitKind, needs_restart
from ._errors import ChildNotFound, NotRunning, StartFailed
from ._events import (
    ChildCrashed,
    ChildExited,
    ChildStartFailed,
    ChildStarting,
    ChildStopped,
    ChildStopping,
    MessagesDropped,
)
from ._inject import inject
from ._restart import NormalExit, Restarter
from ._runtime import Runtime, current_tree_var, interrupt_in
from ._slot import Incarnation, Slot, StartReporter
from ._snapshot import ChildKind, ChildSnapshot, ChildState, snapshot_of
from ._spec import ChildSpec, DynamicSupervisor, Restart, Supervisor, TreeSpec

__all__ = ["StaticSupervisorCell", "SupervisorCell", "supervisor_cell"]


def supervisor_cell(spec: Supervisor | DynamicSupervisor, path: str, runtime: Runtime) -> SupervisorCell:
    """A new incarnation of the supervisor ``spec`` at ``path``: static or dynamic by its type."""
    if isinstance(spec, DynamicSupervisor):
        from ._dynamic import DynamicSupervisorCell  # _dynamic builds on this module

        return DynamicSupervisorCell(spec, path, runtime)
    return StaticSupervisorCell(spec, path, runtime)


class SupervisorCell:
    """One incarnation of a supervisor; a :class:`~actors.contract.ChildCell` to its parent.

    Subclasses say what happens to a transient child that exits normally (:meth:`retire`) and
    whether another child may be added (:meth:`check_room`).
    """

    def __init__(self, spec: Supervisor | DynamicSupervisor, path: str, runtime: Runtime) -> None:
        self.spec = spec
        self.path = path
        self.runtime = runtime
        self.slots: list[Slot] = [Slot(child, f"{path}/{child.name}", runtime) for child in spec.children]
        self._nursery: trio.Nursery | None = None
        self._inbox: deque[tuple[Slot, Incarnation]] = deque()
        self._waiter: trio.lowlevel.Task | None = None  # the control loop, while it waits
        self._lock = trio.Lock()
        self._restarter = Restarter(self)
        self._names: dict[str, Slot] = {slot.spec.name: slot for slot in self.slots}
        self._stop_requested = False
        self._stop_event = trio.Event()
        self._injected: Exception | None = None
        self.running = False
        self.finished = False
        runtime.supervisors[path] = self

    # -- the ChildCell contract --------------------------------------------------------------

    @property
    def current(self) -> object:
        """Always None: a supervisor handles no messages."""
        return None

    def request_stop(self, *, immediate: bool, by_supervisor: bool = True) -> None:
        """Stop every child in reverse order, then return from :meth:`run`.

        ``immediate`` needs nothing more: the parent cancels the scope around :meth:`run`,
        which ends every child at once. A supervisor never exits normally of its own accord, so
        ``by_supervisor=False`` raises ``ValueError``.
        """
        if not by_supervisor:
            raise ValueError(f"{self.path!r} is a supervisor; a supervisor never exits normally")
        self._stop_requested = True
        self._stop_event.set()
        self._wake()

    async def run(self, task_status: StartStatus) -> None:
        failure: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    try:
                        await self._start_all()
                        self.running = True
                        task_status.started()
                        await self._control_loop()
                    except Exception as exc:  # gave up, failed to start, or an injected failure
                        failure = exc
                    await self.stop_all()
                except trio.Cancelled:  # a forced stop: the tree is cancelled around us
                    await self._report_forced_stop()
                    raise
        finally:
            self.running = False
            self.finished = True
            if self.runtime.supervisors.get(self.path) is self:
                del self.runtime.supervisors[self.path]
            # Children added at run time do not survive their supervisor: their mailboxes close.
            static = {child.name for child in self.spec.children}
            for slot in self.slots:
                if slot.spec.name not in static:
                    self.close(slot, "its supervisor stopped", forget=True)
        if failure is not None:
            raise failure

    @property
    def stop_requested(self) -> bool:
        """True once the parent asked this supervisor to stop."""
        return self._stop_requested

    async def wait_stop_requested(self) -> None:
        """Return once the parent asked this supervisor to stop."""
        await self._stop_event.wait()

    # -- what subclasses decide --------------------------------------------------------------

    def retire(self, slot: Slot, reason: str) -> None:
        """A transient child exited normally and is not restarted: keep or remove its slot."""
        raise NotImplementedError

    def check_room(self) -> None:
        """Raise if no further child may be added now."""

    # -- starting --------------------------------------------------------------------------

    async def _start_all(self) -> None:
        for slot in self.slots:
            error = await self.start_slot(slot)
            if error is not None:
                await self.stop_all()
                child, cause = slot.path, error
                if isinstance(error, StartFailed) and isinstance(error.__cause__, Exception):
                    child, cause = error.child or slot.path, error.__cause__
                raise StartFailed(
                    f"supervisor {self.path!r} could not start: child {child!r} failed to "
                    f"start with {type(cause).__name__}: {cause}; the children started before "
                    "it were stopped",
                    child=child,
                ) from cause

    def _new_incarnation(self, slot: Slot) -> Incarnation:
        slot.incarnations += 1
        spec = slot.spec
        if isinstance(spec, ChildSpec):
            assert slot.mailbox is not None
            assert slot.ref is not None
            slot.mailbox.reopen()
            cell = actor_cell(slot.path, spec.factory, slot.mailbox, slot.ref, self.runtime.spawn,
                              grace=spec.shutdown)
            return Incarnation(slot.incarnations, cell, None)
        supervisor = supervisor_cell(spec, slot.path, self.runtime)
        return Incarnation(slot.incarnations, supervisor, supervisor)

    async def start_slot(self, slot: Slot) -> Exception | None:
        """Start one incarnation of ``slot``; return the start failure, or None once started."""
        assert self._nursery is not None
        incarnation = self._new_incarnation(slot)
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
            self._drop_timer_messages(slot, incarnation)
            return error
        return None

    async def _child_main(
        self, slot: Slot, incarnation: Incarnation, task_status: trio.TaskStatus[Exception | None]
    ) -> None:
        tree = self.runtime.tree
        if tree is not None and current_tree_var.get(None) is not tree:
            current_tree_var.set(tree)  # started from a task outside this tree (start_child)
        interrupt: BaseException | None = None
        try:
            with incarnation.scope:
                await incarnation.cell.run(StartReporter(self.runtime.bus, slot, incarnation, task_status))
        except Exception as exc:
            incarnation.error = exc
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit...: the host's interrupt, not a crash to restart.
            # Cancelled (alone or in a group) is the cancellation of a scope: let it through.
            interrupt = interrupt_in(exc)
            if interrupt is None:
                raise
        finally:
            if incarnation.error is None and incarnation.injected is not None:
                incarnation.error = incarnation.injected
            incarnation.set_ended()
        if interrupt is not None:
            self._interrupted(slot, incarnation, interrupt)
        if not incarnation.started:
            task_status.started(incarnation.error or RuntimeError(
                f"{slot.path!r} was {'interrupted' if interrupt is not None else 'cancelled'} while starting"))
            return
        if interrupt is None and not incarnation.stopping:
            self._inbox.append((slot, incarnation))
            self._wake()

    def _interrupted(self, slot: Slot, incarnation: Incarnation, interrupt: BaseException) -> None:
        """A child raised an interrupt (not an Exception): report it, and stop the tree as a signal would.

        The child is not restarted; its siblings and the rest of the tree are stopped
        gracefully in reverse order by the tree's stop; ``open_tree`` then re-raises the
        interrupt. A child that was being stopped is reported by its stop, as usual.
        """
        if incarnation.started and not incarnation.stopping:
            slot.current = None
            slot.state = ChildState.DOWN
            slot.last_error = interrupt
            message = incarnation.cell.current
            if isinstance(message, Call):
                message = message.msg
            self.runtime.bus.emit(ChildCrashed(path=slot.path, time=trio.current_time(),
                                               incarnation=incarnation.number, error=interrupt, message=message))
            self._drop_timer_messages(slot, incarnation)
        self.runtime.interrupt(slot.path, interrupt)

    # -- stopping --------------------------------------------------------------------------

    async def stop_all(self, reason: str = "shutdown") -> None:
        """Stop every running child in reverse list order, one subtree at a time."""
        for slot in reversed(self.slots):
            await self.stop_slot(slot, reason)

    async def stop_slot(self, slot: Slot, reason: str) -> None:
        """Stop the running incarnation of ``slot`` within its grace; wait until it has ended."""
        incarnation = slot.current
        if incarnation is None:
            return
        if incarnation.ended:
            # It had already ended on its own (its exit notice is still queued, and now stale):
            # report that exit as what it was, a crash or a normal exit, not as a stop.
            slot.current = None
            slot.state = ChildState.STOPPED
            self._report_exit(slot, incarnation)
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
        await incarnation.wait_ended()
        # Killed whenever the graceful stop did not complete: an idle actor stopped with a grace
        # of 0 returns without seeing Cancelled, yet on_stop did not run.
        if grace == 0:
            how = "brutal_kill"
        elif incarnation.scope.cancel_called:
            how = "grace_expired"
        else:
            how = "graceful"
        self._record_stopped(slot, incarnation, how, grace)

    def _record_stopped(self, slot: Slot, incarnation: Incarnation, how: str, grace: float | None = None) -> None:
        """Record that the incarnation in ``slot`` ended after a stop; report how."""
        slot.current = None
        slot.state = ChildState.STOPPED
        killed = how != "graceful"
        if incarnation.error is not None:
            slot.last_error = incarnation.error
        bus = self.runtime.bus
        if bus.detailed or killed or incarnation.error is not None:
            bus.emit(ChildStopped(path=slot.path, time=trio.current_time(), incarnation=incarnation.number,
                                  cancelled=killed, error=incarnation.error, how=how, grace=grace))
        self._drop_timer_messages(slot, incarnation)

    async def _report_forced_stop(self) -> None:
        """The tree is being cancelled around this supervisor: report each child as it ends.

        Every child is being cancelled with us; wait (shielded: the nursery would wait for
        them anyway) for each started one to end, in reverse order, and report it killed.
        """
        with trio.CancelScope(shield=True):
            for slot in reversed(self.slots):
                incarnation = slot.current
                if incarnation is None:
                    continue
                await incarnation.wait_ended()
                if incarnation.started:
                    self._record_stopped(slot, incarnation, "forced")
                else:
                    slot.current = None
                    slot.state = ChildState.STOPPED

    def _drop_timer_messages(self, slot: Slot, incarnation: Incarnation) -> None:
        """Timers belong to their incarnation: discard its queued timer messages, and say so."""
        mailbox = slot.mailbox
        if mailbox is None:
            return
        count = mailbox.discard_timer_messages(incarnation.cell)
        if count:
            self.runtime.bus.emit(MessagesDropped(
                path=slot.path, time=trio.current_time(), count=count,
                reason=f"timer messages of incarnation {incarnation.number}, which has ended",
            ))

    # -- supervising -----------------------------------------------------------------------

    def _wake(self) -> None:
        """Make the control loop look at its inbox and flags again (if it is waiting)."""
        task = self._waiter
        if task is not None:
            self._waiter = None
            trio.lowlevel.reschedule(task)

    def _abort_wait(self, _: object) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def _control_loop(self) -> None:
        inbox = self._inbox
        while True:
            while not inbox and not self._stop_requested and self._injected is None:
                self._waiter = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort_wait)
            if self._injected is not None:
                await self.stop_all("give_up")
                raise self._injected
            if self._stop_requested:
                return
            slot, incarnation = inbox.popleft()
            lock = self._lock
            if lock.locked():
                async with lock:
                    await self._handle_exit(slot, incarnation)
            else:  # uncontended: take it without an extra trip through the scheduler
                lock.acquire_nowait()
                try:
                    await self._handle_exit(slot, incarnation)
                finally:
                    lock.release()

    async def _handle_exit(self, slot: Slot, incarnation: Incarnation) -> None:
        if slot.current is not incarnation:
            return  # stale: that incarnation was already stopped or replaced
        slot.current = None
        slot.state = ChildState.DOWN
        kind = self._report_exit(slot, incarnation)
        restart = slot.spec.restart
        if restart is Restart.TEMPORARY:
            self.remove(slot, "a temporary child exited")
            return
        if not needs_restart(restart, kind):
            self.retire(slot, "a transient child exited normally")
            return
        error = incarnation.error
        cause: BaseException = error if error is not None else NormalExit(slot.path)
        await self._restarter.restart(slot, cause)

    def _report_exit(self, slot: Slot, incarnation: Incarnation) -> ExitKind:
        """Emit ChildCrashed (with the message it crashed on) or ChildExited for an ended incarnation.

        Its queued timer messages go with it (reported after the exit's event).
        """
        error = incarnation.error
        bus = self.runtime.bus
        if error is None:
            if bus.wants(logging.INFO):  # built only if it would be seen
                bus.emit(ChildExited(path=slot.path, time=trio.current_time(), incarnation=incarnation.number))
            kind = ExitKind.NORMAL
        else:
            slot.last_error = error
            if bus.wants(logging.ERROR):  # built only if a subscriber or a log handler sees it
                message = incarnation.cell.current
                if isinstance(message, Call):
                    message = message.msg
                bus.emit(ChildCrashed(path=slot.path, time=trio.current_time(), incarnation=incarnation.number,
                                      error=error, message=message))
            kind = ExitKind.CRASH
        self._drop_timer_messages(slot, incarnation)
        return kind

    def remove(self, slot: Slot, reason: str) -> None:
        """Take ``slot`` out of the list for good; its mailboxes close and are forgotten."""
        self.slots.remove(slot)
        del self._names[slot.spec.name]
        self.close(slot, reason, forget=True)

    def close(self, slot: Slot, reason: str, *, forget: bool) -> None:
        """Close the slot's mailbox; a supervisor slot closes every mailbox under it too."""
        self.runtime.close_under(slot.path, reason, forget=forget, subtree=slot.kind is not ChildKind.ACTOR)

    # -- children added and removed at run time ----------------------------------------------

    async def start_child(self, spec: TreeSpec) -> Slot:
        if not isinstance(spec, ChildSpec | Supervisor | DynamicSupervisor):
            raise TypeError(f"start_child takes a ChildSpec, Supervisor or DynamicSupervisor (got {spec!r})")
        # The lock without `async with`: its schedule point after acquiring would cost a pass
        # of the scheduler per child; the start handshake below is this call's schedule point.
        await trio.lowlevel.checkpoint_if_cancelled()
        lock = self._lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            try:
                self._check_running()
                if spec.name in self._names:
                    raise ValueError(
                        f"a child named {spec.name!r} already exists under {self.path!r}; choose "
                        "another name or terminate it first"
                    )
                self.check_room()
            except Exception:
                await trio.lowlevel.cancel_shielded_checkpoint()  # a refusal is a checkpoint too
                raise
            slot = Slot(spec, f"{self.path}/{spec.name}", self.runtime)
            self.slots.append(slot)
            self._names[spec.name] = slot
            error = await self.start_slot(slot)
            if error is not None:
                self.remove(slot, "it failed to start")
                raise StartFailed(f"child {slot.path!r} failed to start: {error!r}", child=slot.path) from error
            return slot
        finally:
            lock.release()

    async def terminate_child(self, name: str) -> None:
        async with self._lock:
            self._check_running()
            slot = self.child_slot(name)
            await self.stop_slot(slot, "terminate")
            self.remove(slot, "it was terminated")

    def _check_running(self) -> None:
        if not self.running or self._stop_requested:
            raise NotRunning(f"supervisor {self.path!r} is not running; it cannot change its children")

    def child_slot(self, name: str) -> Slot:
        slot = self._names.get(name)
        if slot is not None:
            return slot
        raise ChildNotFound(f"{self.path!r} has no child named {name!r}; its children are "
                            f"{[s.spec.name for s in self.slots]}")

    # -- fault injection (Tree.inject_crash / inject_exit) -----------------------------------

    def inject_failure(self, error: Exception) -> None:
        """Make this supervisor fail as if it had given up: stop children in reverse, raise."""
        if self._injected is None:
            self._injected = error
            self._wake()

    def inject(self, slot: Slot, error: Exception | None) -> None:
        """Crash (``error``) or end normally (``None``) the running child in ``slot``."""
        inject(slot, error)

    # -- inspection ------------------------------------------------------------------------

    def snapshot_children(self) -> tuple[ChildSnapshot, ...]:
        return tuple(snapshot_of(slot) for slot in self.slots)


class StaticSupervisorCell(SupervisorCell):
    """A :class:`Supervisor`: its children are its spec's, plus any added at run time."""

    def retire(self, slot: Slot, reason: str) -> None:
        """The slot stays (shown as DOWN) and is started again by a group restart; its mailbox closes."""
        self.close(slot, reason, forget=False)
