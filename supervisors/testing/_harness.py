"""Run a tree under a fault plan on a MockClock and record its trace."""

from __future__ import annotations

import trio
import trio.testing

from .._spec import DynamicSupervisor, Supervisor
from ._faults import Fault, FaultPlan
from ._trace import Trace
from ._traced import recording

__all__ = ["record", "run_tree"]


async def record(
    spec: Supervisor | DynamicSupervisor, plan: FaultPlan | None = None, *, seed: int = 0
) -> Trace:
    """Run ``spec`` with ``plan`` in the current Trio run and return the recorded :class:`Trace`.

    Starts the tree (with the plan's start failures and hangs built into its factories),
    applies each timed fault at its time (letting the tree settle after each one), stops the
    tree at ``plan.stop_at`` and returns. A tree that fails (its root gives up, or it cannot
    start) is not an error here: the trace's ``error`` says so. Use inside a Trio test with an
    autojump ``MockClock``, or call :func:`run_tree`, which brings its own.
    """
    plan = plan if plan is not None else FaultPlan()
    skipped: list[Fault] = []
    t0 = trio.current_time()
    pending = plan.timed()
    with recording(spec, plan, seed) as traced:
        async with traced.open() as tree:
            traced.started(tree)
            while pending:
                fault = pending[0]
                await trio.sleep_until(t0 + fault.at)
                pending.pop(0)
                if not traced.apply(fault):
                    skipped.append(fault)
                await trio.testing.wait_all_tasks_blocked()
            await trio.sleep_until(t0 + max(plan.stop_at, 0.0))
    skipped.extend(pending)  # the tree failed before their time
    return traced.trace(tuple(skipped))


def run_tree(
    spec: Supervisor | DynamicSupervisor, plan: FaultPlan | None = None, *, seed: int = 0
) -> Trace:
    """Run ``spec`` under ``plan`` in a fresh ``trio.run`` on an autojump MockClock.

    Synchronous, so it works inside a plain ``@given`` test (no fixtures, no health-check
    trouble). Time is virtual: a plan spanning hours runs in milliseconds. The same spec,
    plan and seed give the same trace.
    """
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(lambda: record(spec, plan, seed=seed), clock=clock)


