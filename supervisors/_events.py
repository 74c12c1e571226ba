"""The supervision events and the one event stream of a tree.

Every transition of every child is one frozen ``attrs`` event. Logging, the testing toolkit,
the dashboard and metrics all read this stream; none of them re-derives state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from ._errors import ConfigurationError, StartFailed, SupervisorGaveUp, describe_exit

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
    "MailboxBlocked",
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

    That message is not redelivered. An ``error`` that is not an ``Exception``
    (``KeyboardInterrupt``, ``SystemExit``) is the host's interrupt: the child is not
    restarted, the tree stops gracefully and ``open_tree`` re-raises it.
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
    """The child stopped after a stop request, or was cancelled with its tree.

    ``how`` says how it ended: ``"graceful"`` (its graceful stop completed: the handler in
    progress, ``on_stop``, a draining ``execute()``), ``"brutal_kill"`` (shutdown ``0``:
    cancelled at once, ``on_stop`` not called), ``"grace_expired"`` (cancelled when its grace
    ran out) or ``"forced"`` (an enclosing cancel scope cancelled the tree, e.g. the host's
    deadline or a second signal, before its graceful stop completed). ``cancelled`` is True
    whenever the child was killed, that is whenever ``how`` is not ``"graceful"``. ``error`` is
    set if it raised while stopping (logged as an error). ``grace`` is the grace in seconds its
    supervisor gave it (its spec's ``shutdown``), ``None`` for a ``"forced"`` stop.
    """

    incarnation: int
    cancelled: bool
    error: BaseException | None = None
    how: str = "graceful"
    grace: float | None = None


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
class MailboxBlocked(Event):
    """A send has waited ``waited`` seconds for room in the full mailbox of the actor at ``path``.

    Emitted once per waiting send (``cast``, or ``call`` waiting for room), when it has waited
    the tree's ``blocked_send_warning`` (default 5.0 s), and logged as a warning; the send goes
    on waiting. ``depth`` / ``capacity`` are that mailbox's. ``sender`` is the path of the
    sending actor, or ``None`` for a task outside the tree's actors; ``sender_depth`` is the
    sender's own mailbox depth (``None`` likewise). ``cycle`` is non-empty when the waiting
    actors form a cycle, ``(sender, path, ...)``, each waiting for room in the next one's
    mailbox and the last in the sender's: a deadlock that nothing inside the cycle can end.
    """

    depth: int
    capacity: int
    sender: str | None
    sender_depth: int | None
    waited: float
    cycle: tuple[str, ...] = ()


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
    """Nothing of the tree runs any more; ``error`` is set if the root failed or was interrupted.

    After an interrupt (a child raised ``KeyboardInterrupt``...), ``error`` is that interrupt.

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
        """Whether an event that is logged at ``level`` must be built: someone would see it
        (a subscriber, or a log record at ``level`` would reach a handler, see :func:`logged`)."""
        return bool(self._entries) or logged(level)

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


def logged(level: int) -> bool:
    """Whether a record at ``level`` on the ``supervisors`` logger would reach a handler.

    False when the logger does not log ``level`` (``isEnabledFor``), or when every handler
    the record would reach is a plain :class:`logging.NullHandler`, which discards it unread
    (the usual way to silence a library's logger): building that record (the caller lookup,
    the traceback) would be wasted. A filter on the logger, a custom record factory (either
    may act on every record) or no handler at all (then :data:`logging.lastResort` writes
    to stderr) count as reaching one.
    """
    if not logger.isEnabledFor(level):
        return False
    if logger.filters or logging.getLogRecordFactory() is not logging.LogRecord:
        return True
    found = False
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            if type(handler) is not logging.NullHandler and level >= handler.level:
                return True
            found = True
        node = node.parent if node.propagate else None
    return not found


def log_event(event: Event) -> None:
    """The logging subscriber: every crash with its traceback and path; nothing silent."""
    if isinstance(event, ChildCrashed):
        if not logged(logging.ERROR):
            return  # no handler would see the record: do not build it (the traceback is costly)
        if isinstance(event.error, SupervisorGaveUp) and event.error.path == event.path:
            return  # a supervisor that gave up: its GaveUp line said so, and its parent acts next
        what = f" while handling {type(event.message).__qualname__}" if event.message is not None else ""
        if not isinstance(event.error, Exception):
            logger.error(
                "child %s was interrupted by %s%s: the host's interrupt, not a crash; the tree stops "
                "gracefully (as for a signal) and the interrupt is re-raised",
                event.path, type(event.error).__name__, what, exc_info=event.error,
            )
            return
        logger.error("child %s crashed%s: %r", event.path, what, event.error, exc_info=event.error)
    elif isinstance(event, ChildStartFailed):
        if isinstance(event.error, StartFailed):
            return  # a subtree whose child failed to start: logged there, with its traceback
        if isinstance(event.error, ConfigurationError):
            # Its message says all; a traceback would only show our own start-up path.
            logger.error("child %s failed to start: %s: %s", event.path, type(event.error).__name__, event.error)
            return
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
        elif event.how == "grace_expired":
            within = "its shutdown grace" if event.grace is None else f"its shutdown grace of {event.grace:g} s"
            logger.warning(
                "child %s did not stop within %s and was cancelled; make its on_stop "
                "(or the handler in progress) finish sooner, or raise its shutdown= grace", event.path, within,
            )
        elif event.how == "forced":
            logger.warning("child %s was cancelled before it had stopped: its tree was cancelled (forced stop)",
                           event.path)
        elif event.how == "brutal_kill":
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("child %s was killed at once (shutdown 0, on_stop not called)", event.path)
        elif event.cancelled:
            logger.warning("child %s was cancelled before its graceful stop completed", event.path)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("child %s stopped gracefully", event.path)
    elif isinstance(event, MailboxBlocked):
        sender = "a task outside the tree's actors" if event.sender is None else (
            f"{event.sender} (its own mailbox {event.sender_depth} deep)")
        if event.cycle:
            ring = " -> ".join((*event.cycle, event.cycle[0]))
            logger.warning(
                "deadlock: %s has waited %g s for room in the full mailbox of %s (%d/%d), and "
                "the actors %s each wait for room in the next one's mailbox; none can proceed. "
                "Break the cycle: reply with call(), send back with cast_nowait(), or size the "
                "mailboxes for the traffic in flight",
                sender, event.waited, event.path, event.depth, event.capacity, ring,
            )
        else:
            logger.warning(
                "%s has waited %g s for room in the full mailbox of %s (%d/%d); that actor is "
                "not keeping up (or is blocked). Send with cast_nowait() to shed load, or give "
                "it a larger mailbox_size",
                sender, event.waited, event.path, event.depth, event.capacity,
            )
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
        elif not isinstance(event.error, Exception):
            logger.warning("tree %s stopped after an interrupt (%s); open_tree re-raises it", event.path,
                           type(event.error).__name__)
    elif isinstance(event, TreeStarted | TreeStopping):
        if logger.isEnabledFor(logging.INFO):
            logger.info("tree %s %s", event.path, "started" if isinstance(event, TreeStarted) else "stopping")
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", event)
