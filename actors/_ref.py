"""ActorRef: the handle through which messages reach an actor's mailbox."""

from __future__ import annotations

import math
from typing import TypeVar, final

import trio

from ._deadlines import add_deadline
from ._errors import CallTimeout, NoHandler
from ._mailbox import Call, Mailbox
from ._message import Request

__all__ = ["ActorRef"]

R = TypeVar("R")


@final
class ActorRef:
    """A reference to a child slot's mailbox; valid across restarts of the child.

    Refs are handed out by the tree (``tree.ref(path)``, ``SupervisorRef.start_child``) and
    by an actor itself (``self.ref``); there is no public constructor. Two refs to the same
    slot compare equal.
    """

    __slots__ = ("_mailbox",)

    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    def __repr__(self) -> str:
        return f"<ActorRef {self._mailbox.path!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._mailbox is self._mailbox

    def __hash__(self) -> int:
        return id(self._mailbox)

    @property
    def path(self) -> str:
        """The child's path in its tree, e.g. ``"app/workers/mailer"``."""
        return self._mailbox.path

    @property
    def mailbox_depth(self) -> int:
        """How many messages wait in the mailbox now."""
        return len(self._mailbox)

    def _check(self, msg: object) -> None:
        mailbox = self._mailbox
        accepted = mailbox.accepted
        if accepted is not None and type(msg) in accepted:
            return
        handles = mailbox.handles
        if handles is not None and not handles(type(msg)):
            if isinstance(msg, type):
                raise NoHandler(
                    f"actor {self.path!r} was sent the class {msg.__qualname__} itself; send an "
                    f"instance of it, {msg.__qualname__}(...)"
                )
            raise NoHandler(
                f"actor {self.path!r} has no handler for {type(msg).__qualname__}; "
                "send a message type it handles (see its @handler methods)"
            )

    async def cast(self, msg: object) -> None:
        """Send ``msg`` one way; wait for room while the mailbox is full (backpressure).

        Always a Trio checkpoint: it checks for cancellation before enqueueing (a cancelled
        cast enqueues nothing) and yields to other tasks after, so a sender casting in a loop
        lets the receiver and every other task run between messages. Once ``msg`` is
        enqueued, the cast is not cancelled. Use :meth:`cast_nowait` to enqueue a batch
        without yielding. Raises :class:`NoHandler` if the running actor has no handler for
        the message's type and :class:`ActorStopped` if the actor has stopped for good.
        """
        self._check(msg)
        await self._mailbox.put(msg)

    def cast_nowait(self, msg: object) -> None:
        """Send ``msg`` one way without waiting or yielding; raise :class:`MailboxFull` if full.

        Not a checkpoint: the fast path for enqueueing a batch. A task that sends many
        messages this way should yield now and then (``await trio.sleep(0)``) so the receiver
        runs.
        """
        mailbox = self._mailbox
        accepted = mailbox.accepted
        if accepted is None or type(msg) not in accepted:
            self._check(msg)
        # Mailbox.put_nowait's common case inlined (open, room left); put_nowait raises otherwise.
        queue = mailbox._queue
        if mailbox._closed_reason is not None or len(queue) >= mailbox.capacity:
            mailbox.put_nowait(msg)
            return
        queue.append(msg)
        receiver = mailbox._receiver
        if receiver is not None:
            mailbox._receiver = None
            trio.lowlevel.reschedule(receiver)

    async def call(self, msg: Request[R], *, timeout: float | None = 5.0) -> R:
        """Send a request and wait for the handler's return value.

        ``timeout`` (seconds, default 5.0; ``None`` or ``math.inf`` waits forever) covers both
        waiting for mailbox room and waiting for the reply; when it expires
        :class:`CallTimeout` names the actor and the message type, and a reply that arrives
        later is dropped. If the handler raises, :class:`CallFailed` is raised here, chained to
        the handler's exception, and the actor crashes. If the actor stops for good before the
        request is handled, :class:`ActorStopped` is raised.
        """
        self._check(msg)
        envelope = Call(msg, trio.lowlevel.current_task())
        mailbox = self._mailbox
        if timeout is None or timeout == math.inf:
            await mailbox.put_then_wait(envelope)
            result: R = await trio.lowlevel.wait_task_rescheduled(envelope._abort)
            return result
        try:
            fast = timeout > 0 and len(mailbox) < mailbox.capacity
        except TypeError:
            raise self._bad_timeout(msg, timeout) from None
        if fast:
            # There is room, so put_then_wait() does not wait: only the wait for the reply
            # needs the timeout, which add_deadline enforces without a cancel scope (a scope
            # costs more than the rest of the round trip; see _deadlines).
            await mailbox.put_then_wait(envelope)
            add_deadline(timeout, envelope, lambda: self._timeout_error(msg, timeout))
            return await trio.lowlevel.wait_task_rescheduled(envelope._abort)  # type: ignore[no-any-return]
        if not timeout >= 0:  # negative or NaN
            raise self._bad_timeout(msg, timeout)
        with trio.move_on_after(timeout):
            await mailbox.put_then_wait(envelope)
            return await trio.lowlevel.wait_task_rescheduled(envelope._abort)  # type: ignore[no-any-return]
        envelope.task = None
        raise self._timeout_error(msg, timeout)

    def _bad_timeout(self, msg: object, timeout: object) -> ValueError | TypeError:
        error = ValueError if isinstance(timeout, int | float) else TypeError
        return error(
            f"call {type(msg).__qualname__} to actor {self.path!r}: 'timeout' must be a number of "
            f"seconds >= 0, or None to wait forever (got {timeout!r}); nothing was sent"
        )

    def _timeout_error(self, msg: object, timeout: float) -> CallTimeout:
        return CallTimeout(
            f"call {type(msg).__qualname__} to actor {self.path!r} got no reply within "
            f"{timeout} s; the actor may be busy, blocked or restarting. Pass a larger "
            "timeout= (or timeout=None to wait forever)."
        )
