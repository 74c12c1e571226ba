"""The contract between :mod:`actors` and whatever supervises them, as types.

A supervisor runs every child, actor or nested supervisor, through the same :class:`ChildCell`
interface: it creates one cell per incarnation, runs :meth:`ChildCell.run` in a task of its own
nursery inside a cancel scope it controls, and asks the cell to end with
:meth:`ChildCell.request_stop`. :func:`actor_cell` makes the cell of an actor; a supervisor
package makes the cells of its supervisors and must satisfy the same protocol (mypy checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ._cell import ActorCell
from ._mailbox import Mailbox
from ._ref import ActorRef

__all__ = ["ChildCell", "StartStatus", "actor_cell"]


class StartStatus(Protocol):
    """What :meth:`ChildCell.run` reports its start to (a wrapper of ``trio.TaskStatus``)."""

    def started(self) -> None:
        """Report that the child has started (``on_start`` returned); called at most once."""


class ChildCell(Protocol):
    """One incarnation of a child of a supervisor: an actor, or a supervisor itself.

    The supervisor that owns the cell runs :meth:`run` in a task of its nursery, inside a
    cancel scope of its own, and is the only caller of :meth:`request_stop` (besides the
    actor's own :meth:`Actor.stop`).
    """

    @property
    def current(self) -> object:
        """The mailbox item whose handler is running (a message, or a :class:`Call` envelope).

        Read by the supervisor when :meth:`run` raised, to name the message that crashed the
        child; ``None`` between messages and always for a supervisor.
        """

    def request_stop(self, *, immediate: bool, by_supervisor: bool = True) -> None:
        """Ask the incarnation to end: gracefully, or at once if ``immediate``.

        ``immediate`` (a grace of 0) means the child's stop hooks must not run; the supervisor
        cancels the scope around :meth:`run` itself. ``by_supervisor=False`` is the child's own
        normal exit (``Actor.stop``), which a supervisor cell refuses. Never blocks.
        """

    async def run(self, task_status: StartStatus) -> None:
        """Run the incarnation: start it, report ``task_status.started()``, serve until it ends.

        Returns on a normal exit or a requested stop; raises the child's exception on a crash
        or a failed start (before ``started``).
        """


def actor_cell(
    path: str,
    factory: Callable[[], Any],
    mailbox: Mailbox,
    ref: ActorRef,
    spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], None],
    *,
    grace: float = math.inf,
) -> ChildCell:
    """A new incarnation of the actor child at ``path``.

    ``factory`` makes the :class:`Actor` (called by :meth:`ChildCell.run`); ``mailbox`` and
    ``ref`` belong to the child slot and outlive the incarnation; ``spawn`` starts its timers
    as system tasks that live as long as the tree (a ``nursery.start_soon``); ``grace`` bounds
    ``on_stop`` after an exit of the actor's own, counted from its start (default
    ``math.inf``, no limit; ``0``: ``on_stop`` is not called).
    """
    return ActorCell(path, factory, mailbox, ref, spawn, grace)
