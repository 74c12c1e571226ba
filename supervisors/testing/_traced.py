"""open_traced_tree: a running tree that records its trace (for fixtures and state machines)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from .._errors import StartFailed, SupervisorGaveUp
from .._events import Event
from .._spec import DynamicSupervisor, Supervisor
from .._tree import Tree, open_tree
from ._faults import Fault, FaultPlan, instrument
from ._harness import TaskTracker, apply_fault
from ._scripted import Ledger, ledgers
from ._trace import Trace

__all__ = ["TracedTree", "open_traced_tree"]


@attrs.define(eq=False)
class TracedTree:
    """A running tree and what it has done so far; handed out by :func:`open_traced_tree`."""

    tree: Tree
    spec: Supervisor | DynamicSupervisor
    plan: FaultPlan
    events: list[Event]
    ledger: Ledger
    tracker: TaskTracker
    error: BaseException | None = None
    stopped: bool = False

    def apply(self, fault: Fault) -> bool:
        """Apply a timed fault now (crash, exit, numbered message); False if it had no target."""
        return apply_fault(self.tree, fault, self.ledger)

    def trace(self) -> Trace:
        """The trace so far (after the block: the whole run, with the tasks left alive)."""
        return Trace(
            spec=self.spec,
            plan=self.plan,
            events=tuple(self.events),
            error=self.error,
            tasks_left=tuple(t.name for t in self.tracker.live) if self.stopped else (),
            sent={k: tuple(v) for k, v in self.ledger.sent.items()},
            received={k: tuple(v) for k, v in self.ledger.received.items()},
            complete=self.stopped,
        )


@asynccontextmanager
async def open_traced_tree(
    spec: Supervisor | DynamicSupervisor, *, plan: FaultPlan | None = None, seed: int = 0
) -> AsyncIterator[TracedTree]:
    """Like :func:`supervisors.open_tree`, recording every event from the start.

    The plan's start failures and hangs are built in; apply timed faults with
    :meth:`TracedTree.apply` or the tree's ``inject_*`` methods. A tree that gives up or
    cannot start does not raise here: ``traced.error`` says so (check it, or call
    ``check_all(traced.trace())`` after the block).
    """
    plan = plan if plan is not None else FaultPlan()
    events: list[Event] = []
    ledger = Ledger()
    tracker = TaskTracker()
    trio.lowlevel.add_instrument(tracker)
    traced: TracedTree | None = None
    try:
        async with open_tree(instrument(spec, plan), seed=seed, listeners=[events.append]) as tree:
            traced = TracedTree(tree, spec, plan, events, ledger, tracker)
            ledgers[tree] = ledger
            yield traced
    except (SupervisorGaveUp, StartFailed) as exc:
        if traced is None:
            raise
        traced.error = exc
    finally:
        trio.lowlevel.remove_instrument(tracker)
        if traced is not None:
            traced.stopped = True
