"""Actors: hosted services with a mailbox, typed messages, ``cast`` and ``call``, and timers.

An actor is a Trio task that handles messages from a bounded mailbox one at a time. Actors are
run by the supervision trees of the :mod:`supervisors` package; this package knows nothing of
them. See ``docs/semantics.md`` for the precise rules.
"""

from ._actor import Actor as Actor
from ._actor import BackgroundService as BackgroundService
from ._actor import handler as handler
from ._errors import ActorError as ActorError
from ._errors import ActorStopped as ActorStopped
from ._errors import CallFailed as CallFailed
from ._errors import CallTimeout as CallTimeout
from ._errors import MailboxFull as MailboxFull
from ._errors import NoHandler as NoHandler
from ._mailbox import DEFAULT_MAILBOX_SIZE as DEFAULT_MAILBOX_SIZE
from ._message import Request as Request
from ._ref import ActorRef as ActorRef
from ._timers import TimerHandle as TimerHandle

__all__ = [
    "DEFAULT_MAILBOX_SIZE",
    "Actor",
    "ActorError",
    "ActorRef",
    "ActorStopped",
    "BackgroundService",
    "CallFailed",
    "CallTimeout",
    "MailboxFull",
    "NoHandler",
    "Request",
    "TimerHandle",
    "handler",
]
