"""The supervision events and the one event stream of a tree.

Every transition of every child is one frozen ``attrs`` event. Logging, the testing toolkit,
the dashboard and metrics all read this stream; none of them re-derives state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from ._errors import StartFailed, SupervisorGaveUp, describe_exit

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
    "EventsDropped",
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
    """``count`` messages queued for the actor were dropped; ``reason`` says why.

    Either the actor stopped for good (calls among the queued messages were failed with
    :class:`~actors.ActorStopped`; the casts are counted here), or an incarnation ended with
    messages of its own timers still queued: timers belong to their incarnation, so those go
    with it, and the reason names the incarnation. Logged as a warning.
    """

    count: int
    reason: str


@attrs.frozen(kw_only=True)
class EventsDropped(Event):
    """``count`` events were dropped for one slow subscriber of :meth:`Tree.subscribe`.

    Not emitted on the bus: only the subscriber whose buffer was full receives it, in the place
    of the events it missed (``path`` is the tree's root, ``time`` that of the first one missed).
    """

    count: int


@attrs.frozen(kw_only=True)
class GaveUp(Event):
    """The supervisor exceeded its intensity: it stops its children next, then fails.

    Emitted when it decides to give up, before its children's ChildStopping / ChildStopped
    events. ``restarts`` is the count the refused restart would have made (so
    ``max_restarts + 1``); ``error`` the failure that needed it, and ``cause`` the path of the
    child whose exit that was.
    """

    restarts: int
    within: float
    error: BaseException
    cause: str = ""


@attrs.frozen(kw_only=True)
class TreeStarted(Event):
    """Every child of the tree has started."""


@attrs.frozen(kw_only=True)
class TreeStopping(Event):
    """The tree was asked to stop (signal, ``Tree.stop()`` or the end of ``open_tree``)."""


@attrs.frozen(kw_only=True)
class TreeStopped(Event):
    """Nothing of the tree runs any more; ``error`` is set if the root failed.

    ``cancelled`` is True if the stop did not complete gracefully: the tree was cancelled from
    outside (the host's deadline or second signal, an enclosing cancel scope) while running or
    stopping, so some children did not get their grace or ``on_stop``.
    """

    error: BaseException | None = None
    cancelled: bool = False


Subscriber = Callable[[Event], None]


DETAILED_EVENTS: tuple[type[Event], ...] = (ChildStarting, ChildStarted, ChildStopping, ChildStopped)
"""The frequent events, built only when a subscriber or DEBUG logging needs them."""


class EventBus:
    """Delivers each event synchronously to every subscriber, in subscription order.

    ``detailed`` is False while nobody needs the frequent events (starting, started, stopping,
    stopped): then the supervisor does not build them. ``wants(level)`` says whether an event
    logged at ``level`` is needed at all (a subscriber, or the logger writes that level). A
    subscriber that raises is logged and removed, so a broken observer cannot break supervision.
    """

    __slots__ = ("_detailed", "_entries", "_subscribers")

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, bool]] = []
        self._entries: tuple[tuple[Subscriber, bool], ...] = ()  # the list as it is now, to iterate
        self._detailed = False  # whether a subscriber wants the frequent events

    @property
    def detailed(self) -> bool:
        return self._detailed or logger.isEnabledFor(logging.DEBUG)

    def wants(self, level: int) -> bool:
        """Whether an event that is logged at ``level`` must be built: someone would see it."""
        return bool(self._entries) or logger.isEnabledFor(level)

    def subscribe(self, callback: Subscriber, *, detailed: bool = True) -> Callable[[], None]:
        """Call ``callback(event)`` for every later event; return a function that unsubscribes.

        With ``detailed=False`` the callback does not need the frequent events, so subscribing
        does not make the supervisors build them (it may still receive them if others do).
        """
        entry = (callback, detailed)
        self._subscribers.append(entry)
        self._changed()

        def unsubscribe() -> None:
            self._remove(entry)

        return unsubscribe

    def _remove(self, entry: tuple[Subscriber, bool]) -> None:
        if entry in self._subscribers:
            self._subscribers.remove(entry)
            self._changed()

    def _changed(self) -> None:
        self._entries = tuple(self._subscribers)
        self._detailed = any(detailed for _, detailed in self._subscribers)

    def emit(self, event: Event) -> None:
        log_event(event)
        for entry in self._entries:
            try:
                entry[0](event)
            except Exception:
                logger.exception("event subscriber %r raised; it is unsubscribed", entry[0])
                self._remove(entry)


def log_event(event: Event) -> None:
    """The logging subscriber: every crash with its traceback and path; nothing silent."""
    if isinstance(event, ChildCrashed):
        if isinstance(event.error, SupervisorGaveUp) and event.error.path == event.path:
            return  # a supervisor that gave up: its GaveUp line said so, and its parent acts next
        what = f" while handling {type(event.message).__qualname__}" if event.message is not None else ""
        logger.error("child %s crashed%s: %r", event.path, what, event.error, exc_info=event.error)
    elif isinstance(event, ChildStartFailed):
        if isinstance(event.error, StartFailed):
            return  # a subtree whose child failed to start: logged there, with its traceback
        logger.error("child %s failed to start: %r", event.path, event.error, exc_info=event.error)
    elif isinstance(event, GaveUp):
        # The failure itself was logged with its traceback when it happened.
        if isinstance(event.error, SupervisorGaveUp):
            last = event.error.chain
        else:
            last = f"{event.cause or 'a child'} {describe_exit(event.error)}"
        logger.error(
            "supervisor %s gave up: more than %d restart(s) within %g s (last: %s); stopping its "
            "children and failing (its parent decides next)",
            event.path, event.restarts - 1, event.within, last,
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
            "%d message(s) to %s were dropped (%s)", event.count, event.path, event.reason
        )
    elif isinstance(event, ChildRestarting):
        if logger.isEnabledFor(logging.INFO):
            logger.info("restarting %s (restart %d in window, delay %.3f s, cause %s)",
                        event.path, event.restarts, event.delay, event.cause)
    elif isinstance(event, ChildExited):
        if logger.isEnabledFor(logging.INFO):
            logger.info("child %s exited normally", event.path)
    elif isinstance(event, TreeStopped):
        if event.cancelled:
            logger.warning("tree %s was cancelled before its graceful stop completed", event.path)
        elif event.error is None:
            logger.info("tree %s stopped", event.path)
    elif isinstance(event, TreeStarted | TreeStopping):
        if logger.isEnabledFor(logging.INFO):
            logger.info("tree %s %s", event.path, "started" if isinstance(event, TreeStarted) else "stopping")
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", event)
