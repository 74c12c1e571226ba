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
    """One run of a child: its cell, the cancel scope around it and how it ended."""

    __slots__ = ("cell", "done", "error", "injected", "number", "scope", "started", "stopping", "supervisor")

    def __init__(self, number: int, cell: ChildCell, supervisor: SupervisorCell | None) -> None:
        self.number = number
        self.cell = cell
        self.supervisor = supervisor
        self.scope = trio.CancelScope()
        self.done = trio.Event()
        self.error: Exception | None = None
        self.started = False
        self.stopping = False
        self.injected: Exception | None = None


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
        self.slot.state = ChildState.RUNNING
        self.slot.started_at = trio.current_time()
        if self.bus.detailed:
            self.bus.emit(ChildStarted(path=self.slot.path, time=trio.current_time(),
                                       incarnation=incarnation.number))
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
