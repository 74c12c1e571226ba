"""Timers that deliver messages to an actor's own mailbox."""

from __future__ import annotations

from typing import final

import trio

from ._mailbox import Mailbox, TimerMessage

__all__ = ["TimerHandle", "run_timer"]


@final
class TimerHandle:
    """A running timer; :meth:`cancel` stops it. Returned by ``send_after`` / ``send_every``."""

    __slots__ = ("_scope", "fired")

    def __init__(self) -> None:
        self._scope = trio.CancelScope()
        self.fired = 0
        """How many messages the timer has delivered so far."""

    def cancel(self) -> None:
        """Stop the timer; no message is delivered after this returns. Idempotent."""
        self._scope.cancel()

    @property
    def cancelled(self) -> bool:
        """True once the timer is over: cancelled, its incarnation ended, or (send_after) fired."""
        return self._scope.cancel_called


async def run_timer(
    handle: TimerHandle, mailbox: Mailbox, msg: object, delay: float, interval: float | None, owner: object
) -> None:
    """Deliver ``msg`` (wrapped as the timer message of ``owner``) until the handle is over."""
    envelope = TimerMessage(msg, owner)
    with handle._scope:
        deadline = trio.current_time() + delay
        while True:
            await trio.sleep_until(deadline)
            if handle._scope.cancel_called or not mailbox.put_unbounded(envelope):
                return
            handle.fired += 1
            if interval is None:
                handle._scope.cancel()
                return
            deadline += interval
