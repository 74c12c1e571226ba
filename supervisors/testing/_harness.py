"""Run a tree under a fault plan on a MockClock and record its trace."""

from __future__ import annotations

import trio
import trio.testing

from actors import ActorStopped, MailboxFull, NoHandler

from .._errors import ChildNotFound, NotRunning, StartFailed, SupervisorGaveUp
from .._events import Event
from .._spec import DynamicSupervisor, Supervisor
from .._tree import Tree, open_tree
from ._faults import Fault, FaultKind, FaultPlan, instrument
from ._scripted import Ledger, Numbered, ledgers
from ._trace import Trace

__all__ = ["TaskTracker", "record", "run_tree"]


class TaskTracker(trio.abc.Instrument):
    """A Trio instrument that knows which tasks spawned since it was added are still alive.

    Trio's system tasks (children of the root task, e.g. ``trio.from_thread`` calls) are not
    the tree's and are ignored.
    """

    def __init__(self) -> None:
        self.live: dict[trio.lowlevel.Task, None] = {}
        self.root = trio.lowlevel.current_root_task()

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        nursery = task.parent_nursery
        if nursery is not None and nursery.parent_task is self.root:
            return
        self.live[task] = None

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.live.pop(task, None)


def apply_fault(tree: Tree, fault: Fault, ledger: Ledger) -> bool:
    """Apply one timed fault now; False if there was no running target for it."""
    try:
        if fault.kind is FaultKind.CRASH:
            tree.inject_crash(fault.path)
        elif fault.kind is FaultKind.EXIT:
            tree.inject_exit(fault.path)
        elif fault.kind is FaultKind.MESSAGE:
            seq = ledger.take_seq()
            tree.ref(fault.path).cast_nowait(Numbered(seq))
            ledger.sent[fault.path].append(seq)
        else:
            return False
    except (ChildNotFound, NotRunning, ActorStopped, MailboxFull, NoHandler, ValueError):
        return False
    return True


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
    events: list[Event] = []
    ledger = Ledger()
    tracker = TaskTracker()
    trio.lowlevel.add_instrument(tracker)
    error: BaseException | None = None
    skipped: list[Fault] = []
    t0 = trio.current_time()
    pending = plan.timed()
    try:
        async with open_tree(instrument(spec, plan), seed=seed, listeners=[events.append]) as tree:
            ledgers[tree] = ledger
            while pending:
                fault = pending[0]
                await trio.sleep_until(t0 + fault.at)
                pending.pop(0)
                if not apply_fault(tree, fault, ledger):
                    skipped.append(fault)
                await trio.testing.wait_all_tasks_blocked()
            await trio.sleep_until(t0 + max(plan.stop_at, 0.0))
    except (SupervisorGaveUp, StartFailed) as exc:
        error = exc
        skipped.extend(pending)  # the tree failed before their time
    finally:
        trio.lowlevel.remove_instrument(tracker)
    return Trace(
        spec=spec,
        plan=plan,
        events=tuple(events),
        error=error,
        tasks_left=tuple(task.name for task in tracker.live),
        sent={k: tuple(v) for k, v in ledger.sent.items()},
        received={k: tuple(v) for k, v in ledger.received.items()},
        skipped=tuple(skipped),
        complete=True,
    )


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


