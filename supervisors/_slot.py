"""Child slots and their incarnations: the state a supervisor keeps per child.

A slot is a child's place in its supervisor's list; it outlives the incarnations that run in it
(an actor slot owns the mailbox and ref). Invariants:
- ``slot.current`` is the running (or starting, or stopping) incarnation, or None.
- ``incarnation.supervisor`` is the cell itself when the child is a supervisor, else None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from actors import ActorRef
from actors.contract import ChildCell, Mailbox

from ._events import ChildStarted, EventBus
from ._snapshot import ChildKind, ChildState
from ._spec import ChildSpec, Supervisor, TreeSpec

if TYPE_CHECKING:
    from ._runtime import Runtime
    from ._supervisor import SupervisorCell

__all__ = ["Incarnation", "Slot", "StartReporter"]


class Incarnation:
    """One run of a child: its cell, the cancel scope around it and how it ended.

    ``ended`` becomes True once its task has finished running the cell; :meth:`wait_ended`
    waits for that (the event behind it is made only when someone waits).
    """

    __slots__ = (
        "_ended_event", "cell", "ended", "error", "injected", "number", "scope", "started", "stopping", "supervisor",
    )

    def __init__(self, number: int, cell: ChildCell, supervisor: SupervisorCell | None) -> None:
        self.number = number
        self.cell = cell
        self.supervisor = supervisor
        self.scope = trio.CancelScope()
        self.ended = False
        self._ended_event: trio.Event | None = None
        self.error: Exception | None = None
        self.started = False
        self.stopping = False
        self.injected: Exception | None = None

    def set_ended(self) -> None:
        """Record that the incarnation's task has finished running its cell; wake the waiters."""
        self.ended = True
        if self._ended_event is not None:
            self._ended_event.set()

    async def wait_ended(self) -> None:
        """Return once :attr:`ended` is True (a checkpoint, like ``trio.Event.wait``)."""
        event = self._ended_event
        if event is None:
            event = self._ended_event = trio.Event()
            if self.ended:
                event.set()
        await event.wait()


class StartReporter:
    """Wraps the real task status: marks the slot running the moment the child has started."""

    __slots__ = ("bus", "incarnation", "real", "slot")

    def __init__(
        self, bus: EventBus, slot: Slot, incarnation: Incarnation, real: trio.TaskStatus[Exception | None]
    ) -> None:
        self.bus = bus
        self.slot = slot
        self.incarnation = incarnation
        self.real = real

    def started(self) -> None:
        incarnation = self.incarnation
        incarnation.started = True
        slot = self.slot
        slot.state = ChildState.RUNNING
        slot.started_at = now = trio.current_time()
        if self.bus.detailed:
            self.bus.emit(ChildStarted(path=slot.path, time=now, incarnation=incarnation.number))
        self.real.started(None)


class Slot:
    """A child's place in its supervisor (see the module docstring)."""

    __slots__ = (
        "current", "incarnations", "kind", "last_error", "mailbox", "path", "ref", "spec", "started_at", "state",
    )

    def __init__(self, spec: TreeSpec, path: str, runtime: Runtime) -> None:
        self.spec = spec
        self.path = path
        self.current: Incarnation | None = None
        self.incarnations = 0
        self.state = ChildState.STOPPED
        self.last_error: BaseException | None = None
        self.started_at: float | None = None  # trio.current_time() when the current incarnation started
        self.mailbox: Mailbox | None = None
        self.ref: ActorRef | None = None
        if isinstance(spec, ChildSpec):
            self.kind = ChildKind.ACTOR
            self.mailbox, self.ref = runtime.mailbox(path, spec.mailbox_size)
        else:
            self.kind = ChildKind.SUPERVISOR if isinstance(spec, Supervisor) else ChildKind.DYNAMIC_SUPERVISOR
