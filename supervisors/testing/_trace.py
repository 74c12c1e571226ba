"""Trace: the recorded events of one run, with what the checkers need beside them."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .._events import Event
from .._spec import DynamicSupervisor, Supervisor
from ._faults import Fault, FaultPlan

__all__ = ["Trace", "describe"]


def describe(index: int, event: Event) -> str:
    """One readable line for an event: its index in the trace, time, type, path and details."""
    details = []
    for field in attrs.fields(type(event)):
        if field.name in ("path", "time"):
            continue
        value = getattr(event, field.name)
        if value is None:
            continue
        details.append(f"{field.name}={value!r}")
    extra = f" ({', '.join(details)})" if details else ""
    return f"[{index}] t={event.time:.3f} {type(event).__name__} {event.path}{extra}"


@attrs.frozen(kw_only=True)
class Trace:
    """What one run of a tree under a fault plan did.

    - ``spec``: the tree that was run; ``plan``: the fault plan applied.
    - ``events``: every event of the tree, from its start to its stop, in order.
    - ``error``: why the tree failed (``SupervisorGaveUp`` or ``StartFailed``), else None.
    - ``tasks_left``: names of tasks of the tree still alive after it stopped (should be none).
    - ``sent`` / ``received``: numbered messages accepted by / handled by each actor path.
    - ``complete``: True once the tree has stopped (a partial trace may have messages in flight).
    - ``skipped``: timed faults not applied: no running child at their path, or the tree had
      already failed.
    """

    spec: Supervisor | DynamicSupervisor
    plan: FaultPlan
    events: tuple[Event, ...]
    error: BaseException | None = None
    tasks_left: tuple[str, ...] = ()
    sent: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    received: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    skipped: tuple[Fault, ...] = ()
    complete: bool = False

    def of(self, *types: type[Event]) -> list[tuple[int, Event]]:
        """(index, event) for every event of the given types, in order."""
        return [(i, e) for i, e in enumerate(self.events) if isinstance(e, types)]

    def signature(self) -> list[tuple[str, str, float]]:
        """(type, path, time) of every event: equal signatures mean equal traces."""
        return [(type(e).__name__, e.path, e.time) for e in self.events]

    def format(self, indices: Iterable[int] | None = None) -> str:
        """The trace (or the events at ``indices``), one line per event."""
        chosen = range(len(self.events)) if indices is None else sorted(set(indices))
        return "\n".join(describe(i, self.events[i]) for i in chosen)

    def __repr__(self) -> str:
        return f"<Trace of {self.spec.name!r}: {len(self.events)} events, error={self.error!r}, plan: {self.plan}>"
