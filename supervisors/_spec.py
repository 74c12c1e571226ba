"""Child specifications: what to start, how to restart it, how to stop it."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from actors import DEFAULT_MAILBOX_SIZE

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


def _name(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(
            f"{attribute.name!r} must be a non-empty string without '/' (got {value!r})"
        )


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name!r} must be >= 0 (got {value!r})")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name!r} must be > 0 (got {value!r})")


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential delay before restarts (beyond OTP, which restarts at once).

    The delay before a restart is ``min(max, initial * factor ** (n - 1))`` where ``n`` is the
    number of restarts in the supervisor's intensity window including this one, multiplied by
    a random factor in ``[1 - jitter, 1 + jitter]``. So the delay grows while failures come
    quickly and falls back once they age out of the window. Defaults: ``initial=0.1`` s,
    ``factor=2.0``, ``max=30.0`` s, ``jitter=0.1``.
    """

    initial: float = attrs.field(default=0.1, validator=_non_negative)
    factor: float = attrs.field(default=2.0)
    max: float = attrs.field(default=30.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.1)

    @factor.validator
    def _check_factor(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= 1:
            raise ValueError(f"'factor' must be >= 1 (got {value!r})")

    @jitter.validator
    def _check_jitter(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 <= value <= 1:
            raise ValueError(f"'jitter' must be between 0 and 1 (got {value!r})")

    def delay(self, n: int, rng: random.Random) -> float:
        """The delay before the ``n``-th restart in the window (``n >= 1``)."""
        base = min(self.max, self.initial * self.factor ** max(0, n - 1))
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
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=attrs.validators.instance_of(Restart))
    shutdown: float = attrs.field(default=5.0, validator=_non_negative)
    mailbox_size: int = attrs.field(default=DEFAULT_MAILBOX_SIZE)

    @factory.validator
    def _check_factory(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not callable(value):
            raise TypeError(f"'factory' must be callable and return an Actor (got {value!r})")

    @mailbox_size.validator
    def _check_mailbox(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"'mailbox_size' must be an int >= 1 (got {value!r})")


def _children(value: Sequence[TreeSpec]) -> tuple[TreeSpec, ...]:
    return tuple(value)


def _check_children(instance: Any, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    seen: set[str] = set()
    for child in value:
        if not isinstance(child, ChildSpec | Supervisor | DynamicSupervisor):
            raise TypeError(
                "children must be ChildSpec, Supervisor or DynamicSupervisor instances "
                f"(got {child!r})"
            )
        if child.name in seen:
            raise ValueError(f"two children are named {child.name!r}; names must be unique")
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
    strategy: Strategy = attrs.field(default=Strategy.ONE_FOR_ONE, validator=attrs.validators.instance_of(Strategy))
    max_restarts: int = attrs.field(default=3, validator=_non_negative)
    within: float = attrs.field(default=5.0, validator=_positive)
    backoff: Backoff | None = attrs.field(default=None)
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=attrs.validators.instance_of(Restart))
    shutdown: float = attrs.field(default=math.inf, validator=_non_negative)


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
    max_children: int | None = attrs.field(default=None)
    max_restarts: int = attrs.field(default=3, validator=_non_negative)
    within: float = attrs.field(default=5.0, validator=_positive)
    backoff: Backoff | None = attrs.field(default=None)
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=attrs.validators.instance_of(Restart))
    shutdown: float = attrs.field(default=math.inf, validator=_non_negative)

    @max_children.validator
    def _check_max(self, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"'max_children' must be >= 1 or None (got {value!r})")

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
