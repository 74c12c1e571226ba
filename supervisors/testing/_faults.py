"""Fault plans: which child crashes when, fails to start, hangs on stop, exits, gets messages."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import trio

from actors import Actor

from .._errors import InjectedFault
from .._spec import ChildSpec, DynamicSupervisor, Supervisor, TreeSpec

__all__ = ["Fault", "FaultKind", "FaultPlan", "instrument", "walk_paths"]


class FaultKind(enum.Enum):
    """What a :class:`Fault` does to the child at its path.

    - ``CRASH`` (at ``at``): the child crashes (:meth:`Tree.inject_crash`).
    - ``EXIT`` (at ``at``): an actor exits normally (:meth:`Tree.inject_exit`).
    - ``MESSAGE`` (at ``at``): a numbered message is cast to the actor (generated trees count
      them, so the message checker can prove none is lost or duplicated).
    - ``START_FAILURE``: the child's ``attempt``-th start raises (its factory fails).
    - ``HANG_ON_STOP``: every incarnation's ``on_stop`` hangs until the grace cancels it.
    """

    CRASH = "crash"
    EXIT = "exit"
    MESSAGE = "message"
    START_FAILURE = "start_failure"
    HANG_ON_STOP = "hang_on_stop"


TIMED = frozenset({FaultKind.CRASH, FaultKind.EXIT, FaultKind.MESSAGE})


@attrs.frozen(kw_only=True)
class Fault:
    """One fault: ``kind`` at ``path`` (absolute, e.g. ``"root/s0/c1"``).

    ``at`` is the time in seconds after the tree started (timed kinds); ``attempt`` the start
    that fails, counting from 1 (``START_FAILURE``).
    """

    kind: FaultKind
    path: str
    at: float = 0.0
    attempt: int = 1

    def __str__(self) -> str:
        if self.kind in TIMED:
            return f"{self.kind.value} {self.path} at {self.at:g}s"
        if self.kind is FaultKind.START_FAILURE:
            return f"start #{self.attempt} of {self.path} fails"
        return f"{self.path} hangs on stop"


def _to_tuple(faults: Iterable[Fault]) -> tuple[Fault, ...]:
    return tuple(faults)


@attrs.frozen(kw_only=True)
class FaultPlan:
    """A schedule of faults for one run, and when the tree is stopped (``stop_at`` seconds)."""

    faults: tuple[Fault, ...] = attrs.field(default=(), converter=_to_tuple)
    stop_at: float = 10.0

    def timed(self) -> list[Fault]:
        """The timed faults in the order they are applied (by time, then plan order)."""
        return sorted((f for f in self.faults if f.kind in TIMED), key=lambda f: f.at)

    def __str__(self) -> str:
        lines = [str(f) for f in self.faults] or ["no faults"]
        return "; ".join(lines) + f"; stop at {self.stop_at:g}s"


def walk_paths(spec: TreeSpec, prefix: str = "") -> Iterator[tuple[str, TreeSpec]]:
    """Every (path, spec) of a tree spec, depth first, in list order; the root first."""
    path = f"{prefix}/{spec.name}" if prefix else spec.name
    yield path, spec
    if not isinstance(spec, ChildSpec):
        for child in spec.children:
            yield from walk_paths(child, path)


async def _hang() -> None:
    await trio.sleep_forever()


@attrs.define
class _FaultyFactory:
    inner: Callable[[], Any]
    path: str
    fail_attempts: frozenset[int]
    hang_on_stop: bool
    starts: int = 0

    def __call__(self) -> Any:
        self.starts += 1
        if self.starts in self.fail_attempts:
            raise InjectedFault(f"start #{self.starts} of {self.path!r} fails (fault plan)")
        actor = self.inner()
        if self.hang_on_stop and isinstance(actor, Actor):
            actor.on_stop = _hang  # type: ignore[method-assign]
        return actor


def instrument(spec: Supervisor | DynamicSupervisor, plan: FaultPlan) -> Supervisor | DynamicSupervisor:
    """A copy of ``spec`` whose factories carry the plan's start failures and hangs.

    Fresh per call: the start counters of one run never leak into another.
    """
    fails: dict[str, set[int]] = {}
    hangs: set[str] = set()
    for fault in plan.faults:
        if fault.kind is FaultKind.START_FAILURE:
            fails.setdefault(fault.path, set()).add(fault.attempt)
        elif fault.kind is FaultKind.HANG_ON_STOP:
            hangs.add(fault.path)

    def rebuild(node: TreeSpec, prefix: str) -> TreeSpec:
        path = f"{prefix}/{node.name}" if prefix else node.name
        if isinstance(node, ChildSpec):
            if path in fails or path in hangs:
                factory = _FaultyFactory(node.factory, path, frozenset(fails.get(path, ())), path in hangs)
                return attrs.evolve(node, factory=factory)
            return node
        if isinstance(node, Supervisor):
            return attrs.evolve(node, children=[rebuild(c, path) for c in node.children])
        return node

    result = rebuild(spec, "")
    assert isinstance(result, Supervisor | DynamicSupervisor)
    return result


def finite(x: float) -> bool:
    return x != math.inf
