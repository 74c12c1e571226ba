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

import contextvars
import math
from collections import deque
from collections.abc import Callable, Container
from typing import Any, Final

import attrs
import outcome
import trio

from ._errors import ActorStopped, CallFailed, MailboxFull

__all__ = [
    "DEFAULT_MAILBOX_SIZE",
    "WAKE",
    "BlockedSend",
    "BlockedSendHook",
    "Call",
    "Mailbox",
    "TimerMessage",
    "sender_mailbox",
]

DEFAULT_MAILBOX_SIZE: Final = 1024
"""Default capacity of a mailbox, in messages."""

sender_mailbox: contextvars.ContextVar[Mailbox | None] = contextvars.ContextVar(
    "actors.sender_mailbox", default=None
)
"""The mailbox of the actor whose task (or a task it started) is running; None outside actors."""


@attrs.frozen(kw_only=True)
class BlockedSend:
    """A sender has waited ``waited`` seconds for room in the full mailbox of ``target``.

    ``sender`` is the path of the sending actor (``None`` for a task that is not an actor),
    ``sender_depth`` its own mailbox depth (``None`` likewise). ``cycle`` is non-empty when
    the waiting actors form a cycle: ``(sender, target, ...)``, each waiting for room in the
    mailbox of the next and the last in the sender's, so none of them can ever proceed.
    """

    target: str
    depth: int
    capacity: int
    sender: str | None
    sender_depth: int | None
    waited: float
    cycle: tuple[str, ...] = ()


BlockedSendHook = Callable[[BlockedSend], None]
"""Called once per send that has waited ``blocked_after`` seconds for room (see :class:`Mailbox`)."""


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


class TimerMessage:
    """The envelope of a timer's message: ``owner`` is the incarnation (cell) that started it."""

    __slots__ = ("msg", "owner")

    def __init__(self, msg: object, owner: object) -> None:
        self.msg = msg
        self.owner = owner


class Mailbox:
    """A bounded FIFO queue with one receiver; see the module docstring for invariants."""

    __slots__ = (
        "_closed_reason",
        "_queue",
        "_receiver",
        "_send_waiters",
        "_senders_waiting",
        "_timer_messages",
        "accepted",
        "blocked_after",
        "blocked_on",
        "capacity",
        "handles",
        "on_blocked",
        "path",
        "received",
    )

    def __init__(
        self,
        path: str,
        capacity: int = DEFAULT_MAILBOX_SIZE,
        *,
        on_blocked: BlockedSendHook | None = None,
        blocked_after: float = math.inf,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"'mailbox_size' must be >= 1 (got {capacity})")
        self.path = path
        self.capacity = capacity
        # A send that waits ``blocked_after`` seconds for room is reported once to on_blocked.
        self.on_blocked = on_blocked
        self.blocked_after = blocked_after
        # The mailbox that this mailbox's actor is waiting for room in, if any (cycle detection).
        self.blocked_on: Mailbox | None = None
        self._queue: deque[object] = deque()
        self._receiver: trio.lowlevel.Task | None = None
        # Senders waiting for room: made on the first wait. _senders_waiting counts those parked
        # and not woken yet (a plain int the receiver checks per message, instead of a call to
        # ParkingLot.__bool__): the waker subtracts the ones it wakes, a cancelled one itself.
        self._send_waiters: trio.lowlevel.ParkingLot | None = None
        self._senders_waiting = 0
        self._closed_reason: str | None = None
        # Whether a timer message may be queued (so discard_timer_messages must look).
        self._timer_messages = False
        # Set by the current incarnation: maps a message type to whether it is handled.
        self.handles: Callable[[type], bool] | None = None
        # Set with ``handles``: message types already known to be handled, checked first by
        # senders (a dict lookup instead of a call on the hot path).
        self.accepted: Container[type] | None = None
        # How many items receive() has returned (messages taken to be handled), for snapshots.
        self.received = 0

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
        """Enqueue ``item``, waiting for room while the mailbox is full; always a checkpoint.

        With room, this is Trio's own pattern for a send (as ``MemorySendChannel.send``):
        check for cancellation, enqueue, then yield without a second cancellation check, so
        the receiver (and every other ready task) runs before the sender goes on, and a
        message that was enqueued is never reported as cancelled. One yield per message,
        the least a checkpoint costs.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed_reason is None and len(self._queue) < self.capacity:
            self._append(item)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await self._wait_and_put(item)

    async def put_then_wait(self, item: object) -> None:
        """Enqueue ``item`` like :meth:`put`, but without the yield after enqueueing.

        For a call, whose caller yields next anyway (waiting for the reply). Checks for
        cancellation before enqueueing.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed_reason is None and len(self._queue) < self.capacity:
            self._append(item)
            return
        await self._wait_and_put(item)

    def _append(self, item: object) -> None:
        self._queue.append(item)
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver)

    async def _wait_and_put(self, item: object) -> None:
        if self.on_blocked is not None and self.blocked_after != math.inf:
            await self._wait_and_put_watched(item)
            return
        queue = self._queue
        while True:
            if self._closed_reason is not None:
                raise self.stopped_error()
            if len(queue) < self.capacity:
                self._append(item)
                return
            await self._park_sender()

    async def _park_sender(self) -> None:
        """Wait until a receiver (or close) wakes this sender; counted in ``_senders_waiting``."""
        lot = self._send_waiters
        if lot is None:
            lot = self._send_waiters = trio.lowlevel.ParkingLot()
        self._senders_waiting += 1
        try:
            await lot.park()
        except BaseException:
            self._senders_waiting -= 1  # not woken (cancelled): no waker counted it
            raise

    def _wake_sender(self) -> None:
        """Wake one sender waiting for room (the receiver, after taking an item)."""
        if self._send_waiters is not None:
            self._senders_waiting -= len(self._send_waiters.unpark())

    def _wake_all_senders(self) -> None:
        if self._send_waiters is not None:
            self._senders_waiting -= len(self._send_waiters.unpark_all())

    async def _wait_and_put_watched(self, item: object) -> None:
        """:meth:`_wait_and_put`, reporting once to ``on_blocked`` if it waits too long."""
        queue = self._queue
        sender = sender_mailbox.get()
        previous = None
        if sender is not None:
            previous, sender.blocked_on = sender.blocked_on, self
        since = trio.current_time()
        reported = False
        try:
            while True:
                if self._closed_reason is not None:
                    raise self.stopped_error()
                if len(queue) < self.capacity:
                    self._append(item)
                    return
                if reported:
                    await self._park_sender()
                    continue
                with trio.move_on_at(since + self.blocked_after) as waiting:
                    await self._park_sender()
                if waiting.cancelled_caught:
                    reported = True
                    hook = self.on_blocked
                    if hook is not None:
                        hook(self._blocked_report(sender, trio.current_time() - since))
        finally:
            if sender is not None and sender.blocked_on is self:
                sender.blocked_on = previous

    def _blocked_report(self, sender: Mailbox | None, waited: float) -> BlockedSend:
        cycle: tuple[str, ...] = ()
        if sender is not None:
            chain = [sender.path]
            seen = {id(sender)}
            box: Mailbox | None = self
            while box is not None and id(box) not in seen:
                seen.add(id(box))
                chain.append(box.path)
                box = box.blocked_on
            if box is sender:
                cycle = tuple(chain)
        return BlockedSend(
            target=self.path,
            depth=len(self._queue),
            capacity=self.capacity,
            sender=None if sender is None else sender.path,
            sender_depth=None if sender is None else len(sender),
            waited=waited,
            cycle=cycle,
        )

    def put_unbounded(self, item: object) -> bool:
        """Enqueue past the capacity (timers); return False if the mailbox is closed."""
        if self._closed_reason is not None:
            return False
        if type(item) is TimerMessage:
            self._timer_messages = True
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
        self.received += 1
        if self._senders_waiting:
            self._wake_sender()
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
        self._timer_messages = False
        self._wake_all_senders()
        self.wake()
        return dropped

    def discard_timer_messages(self, owner: object) -> int:
        """Remove the queued messages of the timers of ``owner``; return how many there were.

        A supervisor calls it when an incarnation (``owner``, its cell) has ended: timers
        belong to their incarnation, so their pending messages go with it. Costs nothing
        unless a timer message was enqueued since the last call.
        """
        if not self._timer_messages:
            return 0
        queue = self._queue
        kept = [item for item in queue if type(item) is not TimerMessage or item.owner is not owner]
        dropped = len(queue) - len(kept)
        if dropped:
            queue.clear()
            queue.extend(kept)
            if self._senders_waiting and len(queue) < self.capacity:
                self._wake_all_senders()
        self._timer_messages = any(type(item) is TimerMessage for item in kept)
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
