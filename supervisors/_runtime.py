"""Tree-wide shared state: event bus, mailboxes and supervisors by path, system tasks."""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import trio

from actors import ActorRef
from actors.contract import BlockedSend, Mailbox

from ._events import EventBus, MailboxBlocked, MessagesDropped

if TYPE_CHECKING:
    from ._supervisor import SupervisorCell
    from ._tree import Tree

__all__ = ["DEFAULT_BLOCKED_SEND_WARNING", "Runtime", "current_tree_var", "interrupt_in"]

DEFAULT_BLOCKED_SEND_WARNING = 5.0
"""Seconds a send may wait for room in a full mailbox before a MailboxBlocked warning."""

logger = logging.getLogger("supervisors")

current_tree_var: contextvars.ContextVar[Tree] = contextvars.ContextVar("supervisors.current_tree")


def interrupt_in(error: BaseException) -> BaseException | None:
    """The interrupt in ``error``: a ``BaseException`` that is neither an ``Exception`` nor ``Cancelled``.

    Looks inside exception groups (a nursery wraps what its tasks raise); returns None when
    there is none (an ``Exception``, a ``Cancelled``, or groups of those).
    """
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = interrupt_in(inner)
            if found is not None:
                return found
        return None
    if isinstance(error, Exception | trio.Cancelled):
        return None
    return error


class Runtime:
    """Everything the supervisors of one tree share."""

    __slots__ = (
        "_on_blocked", "blocked_send_warning", "bus", "interrupted", "mailboxes", "refs", "rng", "spawn", "stopped",
        "supervisors", "tree",
    )

    def __init__(
        self,
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], None],
        seed: int | None,
        *,
        blocked_send_warning: float = DEFAULT_BLOCKED_SEND_WARNING,
    ) -> None:
        self.bus = EventBus()
        self.blocked_send_warning = blocked_send_warning
        # The first interrupt (KeyboardInterrupt, SystemExit...) raised by a child, and its path.
        self.interrupted: tuple[str, BaseException] | None = None
        self.spawn = spawn
        self.mailboxes: dict[str, Mailbox] = {}
        self.refs: dict[str, ActorRef] = {}
        self.supervisors: dict[str, SupervisorCell] = {}
        self.rng = random.Random(seed)
        self.stopped = False
        self.tree: Tree | None = None
        self._on_blocked = self._report_blocked  # bound once: every mailbox holds it

    def mailbox(self, path: str, capacity: int) -> tuple[Mailbox, ActorRef]:
        mailbox = self.mailboxes.get(path)
        if mailbox is None or mailbox.capacity != capacity:
            if mailbox is not None:
                mailbox.capacity = capacity
            else:
                mailbox = self.mailboxes[path] = Mailbox(
                    path, capacity, on_blocked=self._on_blocked, blocked_after=self.blocked_send_warning
                )
                self.refs[path] = ActorRef(mailbox)
        return mailbox, self.refs[path]

    def interrupt(self, path: str, interrupt: BaseException) -> None:
        """The child at ``path`` raised ``interrupt`` (KeyboardInterrupt...): stop the tree gracefully.

        The first interrupt is kept (``open_tree`` re-raises it once the tree has stopped);
        later ones are only logged by their crash events.
        """
        if self.interrupted is not None:
            return
        self.interrupted = (path, interrupt)
        interrupt.add_note(f"raised in {path!r}: the tree was stopped gracefully, then this was re-raised")
        if self.tree is not None:
            self.tree.request_stop()

    def _report_blocked(self, report: BlockedSend) -> None:
        """The mailboxes' hook: a send waited too long for room; emit MailboxBlocked."""
        self.bus.emit(MailboxBlocked(
            path=report.target, time=trio.current_time(), depth=report.depth, capacity=report.capacity,
            sender=report.sender, sender_depth=report.sender_depth, waited=report.waited, cycle=report.cycle,
        ))

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
