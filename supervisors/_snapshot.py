"""Snapshots of a running tree: the public types :class:`ChildSnapshot`, :class:`ChildState`, :class:`ChildKind`."""

from __future__ import annotations

import enum
import traceback
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._slot import Slot

__all__ = ["ChildKind", "ChildSnapshot", "ChildState", "snapshot_of"]


class ChildState(enum.Enum):
    """The state of a child slot, as shown by :meth:`Tree.snapshot`.

    ``STARTING`` (factory / ``on_start`` running), ``RUNNING``, ``STOPPING`` (stop requested,
    within its grace), ``RESTARTING`` (down, about to be started again, possibly after a
    backoff delay), ``DOWN`` (exited and not restarted: a transient child after a normal
    exit, or a child whose start failed), ``STOPPED`` (stopped by its supervisor, or not
    started yet).
    """

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    RESTARTING = "restarting"
    DOWN = "down"
    STOPPED = "stopped"


class ChildKind(enum.Enum):
    """What a child is: an actor (``ChildSpec``), a ``Supervisor`` or a ``DynamicSupervisor``."""

    ACTOR = "actor"
    SUPERVISOR = "supervisor"
    DYNAMIC_SUPERVISOR = "dynamic_supervisor"


@attrs.frozen(kw_only=True)
class ChildSnapshot:
    """One node of :meth:`Tree.snapshot`: a child slot at the moment of the snapshot.

    ``restarts`` counts the starts after the first; ``last_error`` is the ``repr`` of the last
    crash or start failure (``None`` if none) and ``last_traceback`` its formatted traceback;
    ``mailbox_depth`` is ``None`` for supervisors; ``children`` are in list order (for a
    dynamic supervisor, in order of addition). ``strategy`` is a supervisor's restart strategy
    (``"one_for_one"``...; ``None`` for an actor); ``started_at`` is the ``trio.current_time()``
    at which the current incarnation finished starting, while it is running or stopping (else
    ``None``), so its uptime is ``trio.current_time() - started_at``; ``messages_handled``
    counts the messages an actor has taken from its mailbox over all its incarnations (``None``
    for supervisors).
    """

    path: str
    name: str
    kind: ChildKind
    state: ChildState
    restarts: int
    last_error: str | None
    mailbox_depth: int | None
    children: tuple[ChildSnapshot, ...] = ()
    strategy: str | None = None
    started_at: float | None = None
    messages_handled: int | None = None
    last_traceback: str | None = None

    def find(self, path: str) -> ChildSnapshot | None:
        """The node at ``path`` (absolute, or relative to this node), or ``None``."""
        if path == self.path:
            return self
        if not path.startswith(self.path + "/"):
            path = f"{self.path}/{path}"
        for child in self.children:
            if path == child.path or path.startswith(child.path + "/"):
                return child.find(path)
        return None

    def walk(self) -> list[ChildSnapshot]:
        """This node and all below it, depth first, in list order."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


def snapshot_of(slot: Slot) -> ChildSnapshot:
    """The snapshot of one child slot now, with the children of a running supervisor."""
    children: tuple[ChildSnapshot, ...] = ()
    incarnation = slot.current
    if incarnation is not None and incarnation.supervisor is not None:
        children = incarnation.supervisor.snapshot_children()
    error = slot.last_error
    strategy = getattr(slot.spec, "strategy", None)
    return ChildSnapshot(
        path=slot.path,
        name=slot.spec.name,
        kind=slot.kind,
        state=slot.state,
        restarts=max(0, slot.incarnations - 1),
        last_error=None if slot.last_error is None else repr(slot.last_error),
        mailbox_depth=None if slot.mailbox is None else len(slot.mailbox),
        children=children,
        strategy=None if strategy is None else str(strategy.value),
        started_at=slot.started_at if slot.state in _UP else None,
        messages_handled=None if slot.mailbox is None else slot.mailbox.received,
        last_traceback=None if error is None else "".join(traceback.format_exception(error)),
    )


_UP = frozenset({ChildState.RUNNING, ChildState.STOPPING})
