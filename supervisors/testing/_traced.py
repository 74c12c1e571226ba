"""Recording a tree's run: the shared machinery of record, run_tree and open_traced_tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager

import attrs
import trio

from actors import ActorStopped, MailboxFull, NoHandler

from .._errors import ChildNotFound, NotRunning, StartFailed, SupervisorGaveUp
from .._events import Event
from .._spec import DynamicSupervisor, Supervisor
from .._tree import Tree, open_tree
from ._faults import Fault, FaultKind, FaultPlan, instrument
from ._scripted import Ledger, Numbered, ledgers
from ._trace import Trace

__all__ = ["TaskTracker", "TracedTree", "apply_fault", "open_traced_tree", "recording"]


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


@attrs.define(eq=False)
class TracedTree:
    """A tree being recorded and what it has done so far; handed out by :func:`open_traced_tree`.

    ``tree`` is the running :class:`Tree` (None only before it has started).
    """

    spec: Supervisor | DynamicSupervisor
    plan: FaultPlan
    seed: int = 0
    events: list[Event] = attrs.Factory(list)
    ledger: Ledger = attrs.Factory(Ledger)
    tracker: TaskTracker = attrs.Factory(TaskTracker)
    error: BaseException | None = None
    stopped: bool = False
    _tree: Tree | None = None

    @property
    def tree(self) -> Tree:
        """The running :class:`Tree`."""
        if self._tree is None:
            raise RuntimeError("the tree has not started (yet)")
        return self._tree

    def open(self) -> AbstractAsyncContextManager[Tree]:
        """``open_tree`` of the instrumented spec, recording every event from the start."""
        return open_tree(instrument(self.spec, self.plan), seed=self.seed, listeners=[self.events.append])

    def started(self, tree: Tree) -> None:
        """Record that ``tree`` (from :meth:`open`) has started."""
        self._tree = tree
        ledgers[tree] = self.ledger

    def apply(self, fault: Fault) -> bool:
        """Apply a timed fault now (crash, exit, numbered message); False if it had no target."""
        return apply_fault(self.tree, fault, self.ledger)

    def trace(self, skipped: tuple[Fault, ...] = ()) -> Trace:
        """The trace so far (after the run: the whole run, with the tasks left alive)."""
        return Trace(
            spec=self.spec,
            plan=self.plan,
            events=tuple(self.events),
            error=self.error,
            tasks_left=tuple(t.name for t in self.tracker.live) if self.stopped else (),
            sent={k: tuple(v) for k, v in self.ledger.sent.items()},
            received={k: tuple(v) for k, v in self.ledger.received.items()},
            skipped=skipped,
            complete=self.stopped,
        )


@contextmanager
def recording(spec: Supervisor | DynamicSupervisor, plan: FaultPlan, seed: int) -> Iterator[TracedTree]:
    """Track the tasks spawned meanwhile; a failure of the tree is recorded, not raised."""
    traced = TracedTree(spec, plan, seed)
    trio.lowlevel.add_instrument(traced.tracker)
    try:
        yield traced
    except (SupervisorGaveUp, StartFailed) as exc:
        traced.error = exc
    finally:
        trio.lowlevel.remove_instrument(traced.tracker)
        traced.stopped = True


@asynccontextmanager
async def open_traced_tree(
    spec: Supervisor | DynamicSupervisor, *, plan: FaultPlan | None = None, seed: int = 0
) -> AsyncIterator[TracedTree]:
    """Like :func:`supervisors.open_tree`, recording every event from the start.

    The plan's start failures and hangs are built in; apply timed faults with
    :meth:`TracedTree.apply` or the tree's ``inject_*`` methods. A tree that gives up does not
    raise here: ``traced.error`` says so (check it, or call ``check_all(traced.trace())`` after
    the block). A tree that cannot start raises :class:`StartFailed`.
    """
    with recording(spec, plan if plan is not None else FaultPlan(), seed) as traced:
        async with traced.open() as tree:
            traced.started(tree)
            yield traced
    if traced._tree is None and traced.error is not None:
        raise traced.error  # it never started: there is nothing to hand out
