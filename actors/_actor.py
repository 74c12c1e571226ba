"""The Actor base class, handler dispatch by message type, and BackgroundService."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from ._errors import ActorError

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._ref import ActorRef
    from ._timers import TimerHandle

__all__ = ["Actor", "BackgroundService", "handler"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__actor_handler__"
# (function, is_async): a plain ``def`` handler is called without creating a coroutine.
HandlerEntry = tuple[Callable[..., Any], bool]


class _Unresolved:
    __slots__ = ()


_UNRESOLVED = _Unresolved()


def _union_members(hint: object) -> tuple[object, ...] | None:
    """The members of ``X | Y`` or ``typing.Union[X, Y]`` / ``Optional[X]``; None otherwise."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return None


def _as_class(hint: object) -> type | None:
    """A class, or the origin class of a generic alias (``list[int]`` -> ``list``)."""
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        return origin
    return hint if isinstance(hint, type) else None


def _classes_of(hint: object) -> tuple[type, ...] | None:
    """The message classes an annotation (or ``@handler`` argument) stands for, or None."""
    members = _union_members(hint)
    if members is None:
        resolved = _as_class(hint)
        return None if resolved is None else (resolved,)
    classes = []
    for member in members:
        resolved = _as_class(member)
        if resolved is None:
            return None
        classes.append(resolved)
    return tuple(classes)


@overload
def handler(message_type: type | types.UnionType, /) -> Callable[[F], F]: ...
@overload
def handler(fn: F, /) -> F: ...
def handler(arg: Any, /) -> Any:
    """Mark a method as the handler of one message type.

    The type is read from the annotation of the method's message parameter::

        @handler
        async def increment(self, msg: Increment) -> None: ...

    or given explicitly, which is needed when the annotation cannot be resolved at class
    creation (a message class defined later or in a local scope)::

        @handler(Increment)
        async def increment(self, msg) -> None: ...

    A union (``A | B``, ``Optional[A]``, ``typing.Union[A, B]``), as the annotation or the
    explicit type, makes the method the handler of each member class (``None`` stands for
    ``NoneType``, so ``A | None`` also handles a ``None`` message).

    Handlers may be ``async def`` or plain ``def``. A message is dispatched to the handler of
    its exact type, else to the handler of its nearest base class (in MRO order). A handler's
    return value is the reply of a :meth:`ActorRef.call`; for a cast it is discarded.
    Subclasses inherit their bases' handlers; redefining a handler method in a subclass (with
    or without ``@handler``) replaces it, as for any method.
    """
    if isinstance(arg, type) or _union_members(arg) is not None:
        message_types = _classes_of(arg)
        if message_types is None:
            raise TypeError(
                f"@handler({arg!r}): every member must be a class; messages are dispatched "
                "by class"
            )

        def mark(fn: F) -> F:
            setattr(fn, _MARK, message_types)
            return fn

        return mark
    if callable(arg):
        setattr(arg, _MARK, _UNRESOLVED)
        return arg
    raise TypeError(f"@handler takes a method or a message type (got {arg!r})")


def _message_types(cls: type, name: str, fn: Callable[..., Any]) -> tuple[type, ...] | None:
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 2:
        raise TypeError(
            f"handler {cls.__qualname__}.{name} must take (self, msg) (it takes {len(params)} "
            "parameters)"
        )
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, AttributeError):
        return None
    hint = hints.get(params[1].name)
    if hint is None:
        raise TypeError(
            f"handler {cls.__qualname__}.{name} has no type annotation on {params[1].name!r}; "
            "annotate it with the message class, or write @handler(MessageClass)"
        )
    resolved = _classes_of(hint)
    if resolved is None:
        raise TypeError(
            f"handler {cls.__qualname__}.{name}: {hint!r} is not a class or a union of "
            "classes; messages are dispatched by class, so annotate with a class (or A | B) "
            "or write @handler(MessageClass)"
        )
    return resolved


def _unresolvable(fn: Callable[..., Any]) -> str:
    """Why the annotations of ``fn`` do not resolve, e.g. ``"name 'Ping' is not defined"``."""
    try:
        typing.get_type_hints(fn)
    except (NameError, AttributeError) as exc:
        return str(exc)
    return "its annotation did not resolve"  # pragma: no cover - it resolved on a second look


class Actor:
    """A hosted service that handles messages from its mailbox, one at a time, in order.

    Subclass it, keep state in attributes, and mark handlers with :func:`handler`. Start it
    as a child of a supervisor (``ChildSpec(name=..., factory=MyActor)``); the factory builds
    a new instance for every incarnation, so a restart starts from fresh state.

    Lifecycle of one incarnation:

    1. ``factory()`` builds the instance, then :meth:`on_start` runs. The child counts as
       started only when ``on_start`` returns; if either raises, the start failed.
    2. Messages are handled one at a time, in arrival order. A handler that raises crashes
       the incarnation; that message is not redelivered (it is reported in the crash event).
    3. The incarnation ends when its supervisor stops it (the handler in progress finishes,
       then the loop stops), when it calls :meth:`stop` (a normal exit), or when a handler
       raises (a crash). :meth:`on_stop` then runs, bounded by the child's shutdown grace
       (``ChildSpec.shutdown``) in every case (see :meth:`on_stop`). ``on_stop`` does not run
       when the child is cancelled: shutdown ``0``, a grace overrun, or the cancellation of
       an enclosing scope.

    Messages left in the mailbox stay there for the next incarnation, except the messages of
    this incarnation's own timers, which are discarded with it.
    """

    _handlers: ClassVar[dict[type, HandlerEntry]] = {}
    _unresolved: ClassVar[tuple[tuple[str, Callable[..., Any]], ...]] = ()
    _cell: ActorCell | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, HandlerEntry] = {}
        unresolved: list[tuple[str, Callable[..., Any]]] = []
        for base in reversed(cls.__mro__):
            for name, value in vars(base).items():
                mark = getattr(value, _MARK, None)
                if mark is None:
                    continue
                message_types = mark if isinstance(mark, tuple) else _message_types(cls, name, value)
                # The most derived definition of that method name handles it, marked or not,
                # so overriding a handler works as overriding any method does.
                current = getattr(cls, name)
                if message_types is None:
                    unresolved.append((name, current))
                else:
                    entry = (current, inspect.iscoroutinefunction(current))
                    for message_type in message_types:
                        table[message_type] = entry
        cls._handlers = table
        cls._unresolved = tuple(unresolved)

    @classmethod
    def _resolve_handlers(cls) -> None:
        """Resolve annotations that could not be resolved at class creation, or fail."""
        for name, fn in cls._unresolved:
            message_types = _message_types(cls, name, fn)
            if message_types is None:
                raise TypeError(
                    f"cannot resolve the message type of handler {cls.__qualname__}.{name} "
                    f"({_unresolvable(fn)}); define the message class at module level (or import "
                    "it there), or write @handler(MessageClass)"
                )
            entry = (fn, inspect.iscoroutinefunction(fn))
            for message_type in message_types:
                cls._handlers[message_type] = entry
        cls._unresolved = ()

    @classmethod
    def _lookup(cls, message_type: type) -> HandlerEntry | None:
        table = cls._handlers
        entry = table.get(message_type)
        if entry is None:
            for base in message_type.__mro__[1:]:
                entry = table.get(base)
                if entry is not None:
                    table[message_type] = entry
                    break
        return entry

    @classmethod
    def _accepts(cls, message_type: type) -> bool:
        return message_type in cls._handlers or cls._lookup(message_type) is not None

    @classmethod
    def _accepts_of_class(cls) -> Callable[[type], bool]:
        """``cls._accepts``, bound once per class (a mailbox holds it: not one per actor)."""
        bound: Callable[[type], bool] | None = cls.__dict__.get("_accepts_bound")
        if bound is None:
            bound = cls._accepts
            type.__setattr__(cls, "_accepts_bound", bound)
        return bound

    # -- hooks -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Called once per incarnation before any message; the start completes when it returns.

        Raising here fails the start (the supervisor counts it as a crash). Defaults to doing
        nothing.
        """

    async def on_stop(self) -> None:
        """Called once per incarnation when it ends after a successful start.

        Runs after a stop request, a normal exit and a crash, bounded by the child's shutdown
        grace; never with shutdown ``0``, and not when the child is cancelled. After a stop
        request the grace counts from the request. After an exit of the actor's own (a crash,
        ``stop()``, or ``execute()`` returning), ``on_stop`` runs before the supervisor learns
        of the exit, bounded by the child's shutdown grace counted from the start of
        ``on_stop``: if it has not finished by then, it is cancelled, a warning is logged, and
        the supervisor handles the exit (a restart goes ahead).

        If it raises after a stop request, the error is logged and reported in
        ``ChildStopped(error=...)`` (no restart); after a normal exit it turns the exit into a
        crash; after a crash it is logged and the crash stands. Defaults to doing nothing.
        """

    async def on_unhandled(self, msg: object) -> object:
        """Called for a message that has no handler; the default raises :class:`NoHandler`.

        Sends are checked at the call site once the actor has started, so this is reached only
        by messages sent before the first incarnation existed.
        """
        from ._errors import NoHandler

        raise NoHandler(
            f"{type(self).__qualname__} has no handler for {type(msg).__qualname__}; "
            f"it handles {_names(type(self))}"
        )

    # -- context ---------------------------------------------------------------------------

    def _require_cell(self) -> ActorCell:
        cell = self._cell
        if cell is None:
            raise ActorError(
                f"{type(self).__qualname__} is not running yet: ref, path, timers and stop() "
                "are available from on_start() on, not in __init__"
            )
        return cell

    @property
    def ref(self) -> ActorRef:
        """This actor's own reference (the same object its supervisor hands out)."""
        return self._require_cell().ref

    @property
    def path(self) -> str:
        """The child's path in its tree, e.g. ``"app/workers/mailer"``."""
        return self._require_cell().path

    def stop(self) -> None:
        """End this incarnation normally after the current message (or cancel ``execute``).

        Whether it is restarted then depends on the child's restart type: a permanent child
        is, a transient or temporary one is not.
        """
        self._require_cell().request_stop(immediate=False, by_supervisor=False)

    def send_after(self, delay: float, msg: object) -> TimerHandle:
        """Deliver ``msg`` to this actor's mailbox once, after ``delay`` seconds.

        Timer messages are enqueued even past the mailbox capacity (a timer never blocks).
        The timer belongs to this incarnation and is cancelled when it ends.
        """
        return self._require_cell().start_timer(msg, delay, None)

    def send_every(self, interval: float, msg: object, *, first: float | None = None) -> TimerHandle:
        """Deliver ``msg`` every ``interval`` seconds, first after ``first`` (default: interval).

        Deadlines are fixed-rate (``start + k * interval``), so delivery does not drift with a
        slow handler. Cancelled when the incarnation ends or with :meth:`TimerHandle.cancel`.
        """
        if interval <= 0:
            raise ValueError(f"'interval' must be > 0 (got {interval})")
        return self._require_cell().start_timer(msg, interval if first is None else first, interval)


def _names(cls: type[Actor]) -> str:
    names = sorted(t.__qualname__ for t in cls._handlers)
    return ", ".join(names) if names else "no messages"


class BackgroundService(Actor):
    """A hosted service written as one ``execute()`` loop (compare .NET ``BackgroundService``).

    Subclass and implement :meth:`execute`. It starts after :meth:`on_start` returns and is
    cancelled, Trio-style, when the supervisor stops the child: ``Cancelled`` is raised at its
    next checkpoint and its ``finally`` blocks run (use a shielded scope for async clean-up,
    or :meth:`on_stop`). If ``execute`` returns, the child exits normally; if it raises, the
    child crashes. A background service may also define message handlers; they are handled
    one at a time, concurrently with ``execute``.

    For a graceful drain (finish the work in hand, take no more), set the class attribute
    ``cancel_on_stop = False``: a stop request then does not cancel ``execute``; instead
    :attr:`stop_requested` becomes True and :meth:`wait_stop_requested` returns, and
    ``execute`` should return within the child's shutdown grace, after which it is cancelled
    as usual (compare .NET's ``stoppingToken``).
    """

    cancel_on_stop: ClassVar[bool] = True
    """Whether a stop request cancels ``execute`` at once (the default) or only signals it."""

    @property
    def stop_requested(self) -> bool:
        """True once the supervisor (or :meth:`stop`) asked this incarnation to stop."""
        return self._require_cell().stop_requested

    async def wait_stop_requested(self) -> None:
        """Return once a stop is requested (at once if it already was)."""
        await self._require_cell().wait_stop_requested()

    async def execute(self) -> None:
        """The service's body. Must be overridden."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement 'async def execute(self)'")


def has_hook(actor: Actor, name: str) -> Callable[[], Awaitable[None]] | None:
    """Return the bound hook unless it is Actor's no-op default (saves an await per actor).

    An override on the instance (as the testing toolkit installs) counts as well.
    """
    hook: Callable[[], Awaitable[None]] = getattr(actor, name)
    if getattr(hook, "__func__", None) is getattr(Actor, name):
        return None
    return hook
