"""The bounded mailbox of a child slot.

A mailbox outlives the actor incarnations that read it: it belongs to the child slot, so
messages sent while a child restarts wait for the next incarnation. One task (the current
incarnation) receives; any number of tasks send.

Invariants:
- ``len(_queue) <= capacity`` for everything sent with :meth:`put` / :meth:`put_nowait`;
  only :meth:`put_unbounded` (timers, internal notices) may exceed it.
- ``_receiver`` is the parked receiving task or ``None``; it is rescheduled at most once.
- Once closed, nothing is enqueued until :meth:`reopen`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container
from typing import Any, Final

import outcome
import trio

from ._errors import ActorStopped, CallFailed, MailboxFull

__all__ = ["DEFAULT_MAILBOX_SIZE", "WAKE", "Call", "Mailbox"]

DEFAULT_MAILBOX_SIZE: Final = 1024
"""Default capacity of a mailbox, in messages."""


class _Wake:
    __slots__ = ()

    def __repr__(self) -> str:
        return "WAKE"


WAKE: Final = _Wake()
"""Returned by :meth:`Mailbox.receive` when the receiver was woken with nothing to read."""


class Call:
    """The envelope of a request sent with ``call``: the message and the parked caller."""

    __slots__ = ("msg", "task")

    def __init__(self, msg: object, task: trio.lowlevel.Task) -> None:
        self.msg = msg
        self.task: trio.lowlevel.Task | None = task

    def reply(self, value: object) -> None:
        """Wake the caller with ``value`` as the result of its ``call``; later replies are ignored."""
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task, outcome.Value(value))

    def fail(self, error: BaseException) -> None:
        """Wake the caller with ``error`` raised from its ``call``; ignored once answered."""
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task, outcome.Error(error))

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        """The abort function of the caller's wait: a reply that arrives later is dropped."""
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED


class Mailbox:
    """A bounded FIFO queue with one receiver; see the module docstring for invariants."""

    __slots__ = (
        "_closed_reason",
        "_queue",
        "_receiver",
        "_send_waiters",
        "accepted",
        "capacity",
        "handles",
        "path",
    )

    def __init__(self, path: str, capacity: int = DEFAULT_MAILBOX_SIZE) -> None:
        if capacity < 1:
            raise ValueError(f"'mailbox_size' must be >= 1 (got {capacity})")
        self.path = path
        self.capacity = capacity
        self._queue: deque[object] = deque()
        self._receiver: trio.lowlevel.Task | None = None
        self._send_waiters = trio.lowlevel.ParkingLot()
        self._closed_reason: str | None = None
        # Set by the current incarnation: maps a message type to whether it is handled.
        self.handles: Callable[[type], bool] | None = None
        # Set with ``handles``: message types already known to be handled, checked first by
        # senders (a dict lookup instead of a call on the hot path).
        self.accepted: Container[type] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """True between :meth:`close` and :meth:`reopen`."""
        return self._closed_reason is not None

    def stopped_error(self) -> ActorStopped:
        """The :class:`ActorStopped` raised to senders while the mailbox is closed."""
        return ActorStopped(
            f"actor {self.path!r} has stopped for good ({self._closed_reason}); "
            "nothing will read this message. Check that the child is running "
            "(Tree.snapshot()) or start it again before sending."
        )

    # -- sending ---------------------------------------------------------------------------

    def put_nowait(self, item: object) -> None:
        """Enqueue without yielding; raise :class:`MailboxFull` or :class:`ActorStopped`."""
        if self._closed_reason is not None:
            raise self.stopped_error()
        queue = self._queue
        if len(queue) >= self.capacity:
            raise MailboxFull(
                f"mailbox of actor {self.path!r} is full ({self.capacity} messages); "
                "use 'await ref.cast(msg)' to wait for room, or raise the child's mailbox_size"
            )
        queue.append(item)
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver)

    async def put(self, item: object) -> None:
        """Enqueue, waiting while the mailbox is full; raise :class:`ActorStopped` once closed."""
        await trio.lowlevel.checkpoint_if_cancelled()
        queue = self._queue
        while True:
            if self._closed_reason is not None:
                raise self.stopped_error()
            if len(queue) < self.capacity:
                queue.append(item)
                receiver = self._receiver
                if receiver is not None:
                    self._receiver = None
                    trio.lowlevel.reschedule(receiver)
                return
            await self._send_waiters.park()

    def put_unbounded(self, item: object) -> bool:
        """Enqueue past the capacity (timers); return False if the mailbox is closed."""
        if self._closed_reason is not None:
            return False
        self._queue.append(item)
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver)
        return True

    # -- receiving -------------------------------------------------------------------------

    async def receive(self) -> object:
        """Return the next item, or :data:`WAKE` if :meth:`wake` interrupted the wait.

        Returns at once, without yielding, while items are queued; the receiver yields to
        other tasks when the queue runs dry, so a burst is handled as one batch.
        """
        queue = self._queue
        if not queue:
            self._receiver = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_receive)
            if not queue:
                return WAKE
        item = queue.popleft()
        if self._send_waiters:
            self._send_waiters.unpark()
        return item

    def _abort_receive(self, _: Any) -> trio.lowlevel.Abort:
        self._receiver = None
        return trio.lowlevel.Abort.SUCCEEDED

    def wake(self) -> None:
        """Make a parked :meth:`receive` return (with :data:`WAKE` if nothing is queued)."""
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self, reason: str) -> int:
        """Refuse further messages; fail pending calls; return how many casts were dropped."""
        if self._closed_reason is not None:
            return 0
        self._closed_reason = reason
        dropped = 0
        queue = self._queue
        while queue:
            item = queue.popleft()
            if type(item) is Call:
                item.fail(self.stopped_error())
            else:
                dropped += 1
        self._send_waiters.unpark_all()
        self.wake()
        return dropped

    def reopen(self) -> None:
        """Accept messages again (the supervisor, before starting the next incarnation)."""
        self._closed_reason = None


def fail_call(item: object, message: str, cause: BaseException | None = None) -> None:
    """Fail ``item`` if it is a pending call; do nothing for a cast."""
    if type(item) is Call:
        error = CallFailed(message)
        error.__cause__ = cause
        item.fail(error)
