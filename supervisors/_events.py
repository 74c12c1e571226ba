"""The supervision events and the one event stream of a tree.

Every transition of every child is one frozen ``attrs`` event. Logging, the testing toolkit,
the dashboard and metrics all read this stream; none of them re-derives state.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from ._errors import StartFailed

__all__ = [
    "ChildCrashed",
    "ChildExited",
    "ChildRestarting",
    "ChildStartFailed",
    "ChildStarted",
    "ChildStarting",
    "ChildStopped",
    "ChildStopping",
    "Event",
    "EventBus",
    "GaveUp",
    "MessagesDropped",
        "TreeStarted",
    "TreeStopped",
    "TreeStopping",
]

logger = logging.getLogger("supervisors")


@attrs.frozen(kw_only=True)
class Event:
    """Base of all events: ``path`` of the child (or tree root) and ``time`` (``trio.current_time()``)."""

    path: str
    time: float


@attrs.frozen(kw_only=True)
class ChildStarting(Event):
    """The supervisor is starting the child (its factory and ``on_start`` run next).

    ``restart`` is the child's restart type (``"permanent"``, ``"transient"`` or
    ``"temporary"``), so an observer can judge what its exits should lead to.
    """

    incarnation: int
    restart: str = "permanent"


@attrs.frozen(kw_only=True)
class ChildStarted(Event):
    """The child's ``on_start`` returned (for a supervisor: all its children started)."""

    incarnation: int


@attrs.frozen(kw_only=True)
class ChildStartFailed(Event):
    """The child's factory or ``on_start`` raised ``error``; this counts as a crash."""

    incarnation: int
    error: BaseException


@attrs.frozen(kw_only=True)
class ChildExited(Event):
    """The child returned normally on its own (not because its supervisor stopped it)."""

    incarnation: int


@attrs.frozen(kw_only=True)
class ChildCrashed(Event):
    """The child raised ``error``; ``message`` is the message whose handler raised, if any.

    That message is not redelivered.
    """

    incarnation: int
    error: BaseException
    message: object = None


@attrs.frozen(kw_only=True)
class ChildRestarting(Event):
    """The supervisor will start the child again after ``delay`` seconds (backoff).

    ``restarts`` is the number of restarts in the supervisor's intensity window, this one
    included; ``cause`` is the path of the child whose exit caused the restart (itself, or a
    sibling under ONE_FOR_ALL / REST_FOR_ONE).
    """

    delay: float
    restarts: int
    cause: str


@attrs.frozen(kw_only=True)
class ChildStopping(Event):
    """The supervisor asked the child to stop, with ``grace`` seconds before cancellation.

    ``reason``: ``"shutdown"`` (its supervisor is stopping), ``"restart"`` (a group restart),
    ``"give_up"`` (its supervisor gave up) or ``"terminate"`` (``terminate_child``).
    """

    incarnation: int
    grace: float
    reason: str = "shutdown"


@attrs.frozen(kw_only=True)
class ChildStopped(Event):
    """The child stopped after a stop request.

    ``cancelled`` is True if it did not finish within its grace (or the grace was 0) and was
    cancelled; ``error`` is set if it raised while stopping (logged as an error).
    """

    incarnation: int
    cancelled: bool
    error: BaseException | None = None


@attrs.frozen(kw_only=True)
class MessagesDropped(Event):
    """``count`` messages queued for the actor were dropped because it stopped for good.

    Calls among them were failed with :class:`~actors.ActorStopped`; the casts are counted here
    (and logged as a warning). ``reason`` says why the actor stopped for good.
    """

    count: int
    reason: str


@attrs.frozen(kw_only=True)
class GaveUp(Event):
    """The supervisor exceeded its intensity: it stops its children next, then fails.

    Emitted when it decides to give up, before its children's ChildStopping / ChildStopped
    events. ``restarts`` is the count the refused restart would have made (so
    ``max_restarts + 1``); ``error`` the failure that needed it.
    """

    restarts: int
    within: float
    error: BaseException


@attrs.frozen(kw_only=True)
class TreeStarted(Event):
    """Every child of the tree has started."""


@attrs.frozen(kw_only=True)
class TreeStopping(Event):
    """The tree was asked to stop (signal, ``Tree.stop()`` or the end of ``open_tree``)."""


@attrs.frozen(kw_only=True)
class TreeStopped(Event):
    """Nothing of the tree runs any more; ``error`` is set if the root failed."""

    error: BaseException | None = None


Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers each event synchronously to every subscriber, in subscription order.

    ``detailed`` is False while nobody needs the frequent events (starting, started, stopping,
    stopped): then the supervisor does not build them. A subscriber that raises is logged and
    removed, so a broken observer cannot break supervision.
    """

    __slots__ = ("_subscribers",)

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    @property
    def detailed(self) -> bool:
        return bool(self._subscribers) or logger.isEnabledFor(logging.DEBUG)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every later event; return a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: Event) -> None:
        log_event(event)
        for callback in tuple(self._subscribers):
            try:
                callback(event)
            except Exception:
                logger.exception("event subscriber %r raised; it is unsubscribed", callback)
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

    @asynccontextmanager
    async def stream(self, max_buffer: float = math.inf) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        send, receive = trio.open_memory_channel[Event](max_buffer)

        def forward(event: Event) -> None:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                send.send_nowait(event)

        unsubscribe = self.subscribe(forward)
        try:
            async with receive:
                yield receive
        finally:
            unsubscribe()
            send.close()


def log_event(event: Event) -> None:
    """The logging subscriber: every crash with its traceback and path; nothing silent."""
    if isinstance(event, ChildCrashed):
        what = f" while handling {type(event.message).__qualname__}" if event.message is not None else ""
        logger.error("child %s crashed%s: %r", event.path, what, event.error, exc_info=event.error)
    elif isinstance(event, ChildStartFailed):
        if isinstance(event.error, StartFailed):
            return  # a subtree whose child failed to start: logged there, with its traceback
        logger.error("child %s failed to start: %r", event.path, event.error, exc_info=event.error)
    elif isinstance(event, GaveUp):
        logger.error(
            "supervisor %s gave up: more than %d restarts within %s s; stopping its children "
            "and failing (its parent decides next)",
            event.path, event.restarts - 1, event.within, exc_info=event.error,
        )
    elif isinstance(event, ChildStopped):
        if event.error is not None:
            logger.error("child %s raised while stopping: %r", event.path, event.error,
                         exc_info=event.error)
        elif event.cancelled and logger.isEnabledFor(logging.WARNING):
            logger.warning("child %s did not stop within its shutdown grace and was cancelled", event.path)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("child %s stopped", event.path)
    elif isinstance(event, MessagesDropped):
        logger.warning(
            "%d message(s) to %s were dropped: it stopped for good (%s)", event.count, event.path, event.reason
        )
    elif isinstance(event, ChildRestarting):
        if logger.isEnabledFor(logging.INFO):
            logger.info("restarting %s (restart %d in window, delay %.3f s, cause %s)",
                        event.path, event.restarts, event.delay, event.cause)
    elif isinstance(event, ChildExited):
        if logger.isEnabledFor(logging.INFO):
            logger.info("child %s exited normally", event.path)
    elif isinstance(event, TreeStopped):
        if event.error is None:
            logger.info("tree %s stopped", event.path)
    elif isinstance(event, TreeStarted | TreeStopping):
        if logger.isEnabledFor(logging.INFO):
            logger.info("tree %s %s", event.path, "started" if isinstance(event, TreeStarted) else "stopping")
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", event)
