"""The errors raised by actors and their references."""

from __future__ import annotations

__all__ = [
    "ActorError",
    "ActorStopped",
    "CallFailed",
    "CallTimeout",
    "MailboxFull",
    "NoHandler",
]


class ActorError(Exception):
    """Base class of every error raised by the :mod:`actors` package."""


class ActorStopped(ActorError):
    """The actor has stopped for good, so it cannot take a message.

    Raised by :meth:`ActorRef.cast`, :meth:`ActorRef.cast_nowait` and :meth:`ActorRef.call`
    while the actor's child slot is down without a restart under way: it was removed (a
    temporary child that exited, a terminated child, a child of a stopped dynamic supervisor),
    it is a transient child that returned normally (a later group restart of a sibling starts
    it again and its mailbox reopens), or its tree has stopped. Also raised in a caller whose
    pending :meth:`~ActorRef.call` was still in the mailbox when that happened.
    """


class MailboxFull(ActorError):
    """:meth:`ActorRef.cast_nowait` found the mailbox full; nothing was enqueued.

    Use ``await ref.cast(msg)`` to wait for room instead, or give the child a larger
    ``mailbox_size``.
    """


class CallTimeout(ActorError, TimeoutError):
    """A :meth:`ActorRef.call` got no reply within its timeout.

    The request may still be handled later; its reply is then dropped.
    """


class CallFailed(ActorError):
    """The handler of a :meth:`ActorRef.call` raised, or its actor stopped before replying.

    When the handler raised, that exception is this error's ``__cause__`` and the actor
    crashed (its supervisor decides what happens next).
    """


class NoHandler(ActorError, TypeError):
    """The actor has no handler for the type of a message that was sent to it.

    Raised at the call site by :meth:`ActorRef.cast`, :meth:`ActorRef.cast_nowait` and
    :meth:`ActorRef.call`, before anything is enqueued.
    """
