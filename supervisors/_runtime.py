"""Tree-wide shared state: event bus, mailboxes and supervisors by path, system tasks."""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import trio

from actors import ActorRef
from actors.contract import Mailbox

from ._events import EventBus, MessagesDropped

if TYPE_CHECKING:
    from ._supervisor import SupervisorCell
    from ._tree import Tree

__all__ = ["Runtime", "current_tree_var"]

logger = logging.getLogger("supervisors")

current_tree_var: contextvars.ContextVar[Tree] = contextvars.ContextVar("supervisors.current_tree")


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
