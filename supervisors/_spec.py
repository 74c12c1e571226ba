"""Child specifications: what to start, how to restart it, how to stop it."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import attrs

from actors import DEFAULT_MAILBOX_SIZE, Actor

__all__ = [
    "Backoff",
    "ChildSpec",
    "DynamicSupervisor",
    "Restart",
    "Strategy",
    "Supervisor",
    "TreeSpec",
]


class Restart(enum.Enum):
    """When a child that exited is started again.

    - ``PERMANENT``: always, whether it crashed or returned normally.
    - ``TRANSIENT``: only after a crash; a normal exit leaves it down.
    - ``TEMPORARY``: never; it is removed from its supervisor when it exits.
    """

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them must be restarted.

    - ``ONE_FOR_ONE``: only that child.
    - ``ONE_FOR_ALL``: all children: the others are stopped in reverse start order, then all
      are started again in list order.
    - ``REST_FOR_ONE``: that child and the children after it in the list: those after it are
      stopped in reverse order, then all of them are started again in order.
    """

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


def _got(value: object) -> str:
    return f"got {value!r} of type {type(value).__name__}"


def _name(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name!r} must be a non-empty string without '/' ({_got(value)})")
    if not value or "/" in value:
        raise ValueError(f"{attribute.name!r} must be a non-empty string without '/' (got {value!r})")


_E = TypeVar("_E", bound=enum.Enum)


def _member(kind: type[_E], field: str, value: object) -> _E:
    """``value`` as a ``kind`` member: a member, or its value's string (as written in a config file)."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    values = ", ".join(repr(member.value) for member in kind)
    error = ValueError if isinstance(value, str) else TypeError
    raise error(f"{field!r} must be a {kind.__name__} or one of {values} ({_got(value)})")


def _restart(value: Restart | str) -> Restart:
    return _member(Restart, "restart", value)


def _strategy(value: Strategy | str) -> Strategy:
    return _member(Strategy, "strategy", value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds(minimum: float, *, inclusive: bool = True, infinite: bool = True) -> Callable[[Any, Any, Any], None]:
    """A validator for a real number ``>= minimum`` (``> minimum`` unless ``inclusive``)."""
    bound = f"{'>=' if inclusive else '>'} {minimum:g}" + (" (math.inf allowed)" if infinite else "")

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not _is_number(value):
            raise TypeError(f"{attribute.name!r} must be a number {bound} ({_got(value)})")
        ok = value >= minimum if inclusive else value > minimum
        if not ok or math.isnan(value) or (not infinite and math.isinf(value)):
            raise ValueError(f"{attribute.name!r} must be a number {bound} (got {value!r})")

    return check


def _count(minimum: int, *, optional: bool = False) -> Callable[[Any, Any, Any], None]:
    """A validator for an ``int >= minimum`` (or None when ``optional``)."""
    expected = f"an int >= {minimum}" + (" or None" if optional else "")

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{attribute.name!r} must be {expected} ({_got(value)})")
        if value < minimum:
            raise ValueError(f"{attribute.name!r} must be {expected} (got {value!r})")

    return check


def _backoff(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Backoff):
        raise TypeError(f"{attribute.name!r} must be a Backoff or None ({_got(value)})")


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential delay before restarts (beyond OTP, which restarts at once).

    The delay before a restart is ``min(max, initial * factor ** (n - 1))`` where ``n`` is the
    number of restarts in the supervisor's intensity window including this one, multiplied by
    a random factor in ``[1 - jitter, 1 + jitter]``. So the delay grows while failures come
    quickly and falls back once they age out of the window. Defaults: ``initial=0.1`` s,
    ``factor=2.0``, ``max=30.0`` s, ``jitter=0.1``.
    """

    initial: float = attrs.field(default=0.1, validator=_seconds(0, infinite=False))
    factor: float = attrs.field(default=2.0, validator=_seconds(1, infinite=False))
    max: float = attrs.field(default=30.0, validator=_seconds(0))
    jitter: float = attrs.field(default=0.1)

    @jitter.validator
    def _check_jitter(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not _is_number(value):
            raise TypeError(f"'jitter' must be a number between 0 and 1 ({_got(value)})")
        if not 0 <= value <= 1:
            raise ValueError(f"'jitter' must be a number between 0 and 1 (got {value!r})")

    def delay(self, n: int, rng: random.Random) -> float:
        """The delay before the ``n``-th restart in the window (``n >= 1``).

        Saturates at ``max`` for any ``n``, however large (the growth is computed without
        overflowing).
        """
        try:
            grown = self.initial * float(self.factor) ** max(0, n - 1)
        except OverflowError:  # factor ** (n - 1) is beyond a float: far past any finite max
            grown = math.inf if self.initial else 0.0
        base = min(self.max, grown)
        if self.jitter:
            base *= rng.uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, base)


@attrs.frozen(kw_only=True)
class ChildSpec:
    """How to run one actor child.

    - ``name``: unique among its siblings, no ``/``; the child's path is its parent's path,
      ``/``, and the name.
    - ``factory``: a zero-argument callable that returns a new :class:`actors.Actor` (usually
      the class itself, or ``functools.partial(MyActor, ...)``); called once per incarnation.
    - ``restart``: :class:`Restart`, default ``PERMANENT``.
    - ``shutdown``: the grace, in seconds, between the stop request and the cancellation of
      the child; ``0`` cancels at once (``on_stop`` is not called); ``math.inf`` waits as long
      as it takes. Default 5.0.
    - ``mailbox_size``: capacity of the child's mailbox, default
      :data:`actors.DEFAULT_MAILBOX_SIZE` (1024).
    """

    name: str = attrs.field(validator=_name)
    factory: Callable[[], Any] = attrs.field()
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_restart)
    shutdown: float = attrs.field(default=5.0, validator=_seconds(0))
    mailbox_size: int = attrs.field(default=DEFAULT_MAILBOX_SIZE, validator=_count(1))

    @factory.validator
    def _check_factory(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not callable(value):
            hint = ""
            if isinstance(value, Actor):
                hint = f"; pass the class, factory={type(value).__qualname__}, not an instance"
            raise TypeError(
                f"'factory' of child {self.name!r} must be callable and return an Actor "
                f"(got {value!r}){hint}"
            )


def _children(value: Sequence[TreeSpec]) -> tuple[TreeSpec, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(
            f"'children' must be a sequence of ChildSpec, Supervisor or DynamicSupervisor ({_got(value)})"
        )
    return tuple(value)


def _check_children(instance: Any, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    seen: set[str] = set()
    for child in value:
        if not isinstance(child, ChildSpec | Supervisor | DynamicSupervisor):
            hint = ""
            if isinstance(child, type) and issubclass(child, Actor):
                hint = f"; wrap an actor class in ChildSpec(name=..., factory={child.__qualname__})"
            raise TypeError(
                f"'children' of supervisor {instance.name!r} must be ChildSpec, Supervisor or "
                f"DynamicSupervisor instances ({_got(child)}){hint}"
            )
        if child.name in seen:
            raise ValueError(
                f"supervisor {instance.name!r} has two children named {child.name!r}; sibling "
                "names must be unique"
            )
        seen.add(child.name)


@attrs.frozen(kw_only=True)
class Supervisor:
    """A supervisor and its children; the root of a tree or a child of another supervisor.

    - ``name``: as for :class:`ChildSpec`; default ``"root"``.
    - ``children``: started in list order, each started before the next begins; stopped in
      reverse order.
    - ``strategy``: :class:`Strategy`, default ``ONE_FOR_ONE``.
    - ``max_restarts`` / ``within``: the restart intensity. If more than ``max_restarts``
      restarts would happen within any ``within`` seconds, the supervisor stops all its
      children in reverse order and fails with :class:`SupervisorGaveUp` instead of
      restarting. Defaults 3 and 5.0 (Elixir's; OTP's are 1 and 5).
    - ``backoff``: optional :class:`Backoff` delay before each restart; default ``None``
      (restart at once, as OTP does).
    - ``restart`` / ``shutdown``: how *its parent* treats it; defaults ``PERMANENT`` and
      ``math.inf`` (a supervisor gets all the time its children's graces need).
    """

    name: str = attrs.field(default="root", validator=_name)
    children: tuple[TreeSpec, ...] = attrs.field(default=(), converter=_children, validator=_check_children)
    strategy: Strategy = attrs.field(default=Strategy.ONE_FOR_ONE, converter=_strategy)
    max_restarts: int = attrs.field(default=3, validator=_count(0))
    within: float = attrs.field(default=5.0, validator=_seconds(0, inclusive=False))
    backoff: Backoff | None = attrs.field(default=None, validator=_backoff)
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_restart)
    shutdown: float = attrs.field(default=math.inf, validator=_seconds(0))


@attrs.frozen(kw_only=True)
class DynamicSupervisor:
    """A one-for-one supervisor whose children are added and removed at run time.

    It starts with no children; add them with :meth:`SupervisorRef.start_child` and remove
    them with :meth:`SupervisorRef.terminate_child`. Children are stopped in reverse order of
    addition. A child that stops for good (temporary, transient after a normal exit, or
    terminated) is removed. When the dynamic supervisor itself restarts, it starts empty.

    - ``max_children``: at most this many children at once; ``None`` (default) for no limit.
    - ``max_restarts``, ``within``, ``backoff``, ``restart``, ``shutdown``: as for
      :class:`Supervisor`.
    """

    name: str = attrs.field(validator=_name)
    max_children: int | None = attrs.field(default=None, validator=_count(1, optional=True))
    max_restarts: int = attrs.field(default=3, validator=_count(0))
    within: float = attrs.field(default=5.0, validator=_seconds(0, inclusive=False))
    backoff: Backoff | None = attrs.field(default=None, validator=_backoff)
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_restart)
    shutdown: float = attrs.field(default=math.inf, validator=_seconds(0))

    @property
    def children(self) -> tuple[TreeSpec, ...]:
        """Always empty: a dynamic supervisor starts with no children."""
        return ()

    @property
    def strategy(self) -> Strategy:
        """Always ``ONE_FOR_ONE``."""
        return Strategy.ONE_FOR_ONE


TreeSpec = ChildSpec | Supervisor | DynamicSupervisor
"""Anything that can be a child of a supervisor (and, for the supervisors, a tree's root)."""
