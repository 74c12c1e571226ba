"""Tree-wide shared state: event bus, mailboxes and supervisors by path, system tasks."""

from __future__ import annotations

import contextvars
import enum
import logging
import random
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors import ActorRef
from actors._mailbox import Mailbox

from ._events import EventBus, MessagesDropped

if TYPE_CHECKING:
    from ._supervisor import SupervisorCell
    from ._tree import Tree

__all__ = ["ChildKind", "ChildSnapshot", "ChildState", "Runtime", "current_tree_var"]

logger = logging.getLogger("supervisors")

current_tree_var: contextvars.ContextVar[Tree] = contextvars.ContextVar("supervisors.current_tree")


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
    crash or start failure (``None`` if none); ``mailbox_depth`` is ``None`` for supervisors;
    ``children`` are in list order (for a dynamic supervisor, in order of addition).
    """

    path: str
    name: str
    kind: ChildKind
    state: ChildState
    restarts: int
    last_error: str | None
    mailbox_depth: int | None
    children: tuple[ChildSnapshot, ...] = ()

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


class Runtime:
    """Everything the supervisors of one tree share."""

    __slots__ = ("bus", "mailboxes", "refs", "rng", "spawn", "stopped", "supervisors", "tree")

    def __init__(self, spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], None], seed: int | None) -> None:
        self.bus = EventBus()
        self.spawn = spawn
        self.mailboxes: dict[str, Mailbox] = {}
        self.refs: dict[str, ActorRef] = {}
        self.supervisors: dict[str, SupervisorCell] = {}
        self.rng = random.Random(seed)
        self.stopped = False
        self.tree: Tree | None = None

    def mailbox(self, path: str, capacity: int) -> tuple[Mailbox, ActorRef]:
        mailbox = self.mailboxes.get(path)
        if mailbox is None or mailbox.capacity != capacity:
            if mailbox is not None:
                mailbox.capacity = capacity
            else:
                mailbox = self.mailboxes[path] = Mailbox(path, capacity)
                self.refs[path] = ActorRef(mailbox)
        return mailbox, self.refs[path]

    def close_under(self, path: str, reason: str, *, forget: bool, subtree: bool = True) -> None:
        """Close the mailbox at ``path`` (and, with ``subtree``, all under it); report drops."""
        if subtree:
            prefix = path + "/"
            keys = [k for k in self.mailboxes if k == path or k.startswith(prefix)]
        else:
            keys = [path] if path in self.mailboxes else []
        for key in keys:
            dropped = self.mailboxes[key].close(reason)
            if dropped:
                self.bus.emit(MessagesDropped(path=key, time=trio.current_time(), count=dropped, reason=reason))
            if forget:
                del self.mailboxes[key]
                del self.refs[key]

    def now(self) -> float:
        return trio.current_time()
