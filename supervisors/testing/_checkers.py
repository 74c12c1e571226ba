"""Invariant checkers over a recorded :class:`Trace`.

Each checker raises :class:`InvariantViolation` (an ``AssertionError``) whose message names the
rule of ``docs/semantics.md`` that was broken and lists the offending events with their index
in the trace. The checkers rebuild the tree's state from the trace and the spec, and ask the
pure rules of ``supervisors._decide`` (which siblings a restart involves, whether a child is
restarted, the intensity window) what should have happened: the rules live in one place, and
the checkers judge whether the Trio layer carried them out. ``tests/test_decide.py`` checks
those rules against the semantics page independently.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable

import attrs

from .._decide import ExitKind, needs_restart, plan_restart, record_restart
from .._errors import SupervisorGaveUp
from .._events import (
    ChildCrashed,
    ChildExited,
    ChildRestarting,
    ChildStarted,
    ChildStartFailed,
    ChildStarting,
    ChildStopped,
    ChildStopping,
    Event,
    GaveUp,
    MessagesDropped,
    TreeStarted,
    TreeStopped,
    TreeStopping,
)
from .._spec import DynamicSupervisor, Restart, Strategy, Supervisor, TreeSpec
from ._faults import walk_paths
from ._trace import Trace

__all__ = [
    "InvariantViolation",
    "check_all",
    "check_intensity",
    "check_messages",
    "check_no_tasks_left",
    "check_restarts",
    "check_start_order",
    "check_stop_order",
]


class InvariantViolation(AssertionError):
    """A trace broke a rule of the supervision semantics; the message shows the events."""


def _fail(trace: Trace, rule: str, indices: Iterable[int], detail: str = "") -> None:
    shown = trace.format(indices)
    raise InvariantViolation(f"{rule}{': ' + detail if detail else ''}\n{shown}\n(plan: {trace.plan})")


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


@attrs.frozen
class _Specs:
    """The static structure: supervisors by path and each child's spec by path."""

    supervisors: dict[str, Supervisor | DynamicSupervisor]
    specs: dict[str, TreeSpec]

    @classmethod
    def of(cls, root: Supervisor | DynamicSupervisor) -> _Specs:
        specs = dict(walk_paths(root))
        sups = {p: s for p, s in specs.items() if isinstance(s, Supervisor | DynamicSupervisor)}
        return cls(sups, specs)

    def order(self, parent: str) -> list[str]:
        spec = self.supervisors.get(parent)
        return [f"{parent}/{c.name}" for c in spec.children] if spec is not None else []


def _position(specs: _Specs, trace: Trace) -> Callable[[str, int], tuple[int, int]]:
    """List position of a child at event index ``at``: spec order, then order of addition.

    A child added at run time (dynamic, or start_child) sits where its latest addition (its
    latest first incarnation before ``at``) put it.
    """
    additions: dict[str, list[int]] = defaultdict(list)
    for i, event in enumerate(trace.events):
        if isinstance(event, ChildStarting) and event.incarnation == 1:
            additions[event.path].append(i)

    def position(path: str, at: int) -> tuple[int, int]:
        order = specs.order(_parent(path))
        if path in order:
            return (0, order.index(path))
        added = [i for i in additions.get(path, ()) if i < at]
        return (1, added[-1] if added else len(trace.events))

    return position


def check_start_order(trace: Trace) -> None:
    """Rule 1: within each start of a supervisor, children start in list order, one at a time."""
    specs = _Specs.of(trace.spec)
    events = trace.events
    for parent in specs.supervisors:
        order = specs.order(parent)
        if not order:
            continue
        # windows: from the supervisor's ChildStarting (or the trace's start, for the root)
        # to its ChildStarted / ChildStartFailed (or TreeStarted).
        windows: list[tuple[int, int]] = []
        if parent == trace.spec.name:
            end = next((i for i, e in enumerate(events) if isinstance(e, TreeStarted)), len(events))
            windows.append((0, end))
        else:
            start = None
            for i, e in enumerate(events):
                if e.path != parent:
                    continue
                if isinstance(e, ChildStarting):
                    start = i
                elif isinstance(e, ChildStarted | ChildStartFailed) and start is not None:
                    windows.append((start, i))
                    start = None
        for lo, hi in windows:
            starting = [(i, e) for i, e in enumerate(events[lo:hi], lo)
                        if isinstance(e, ChildStarting) and _parent(e.path) == parent]
            paths = [e.path for _, e in starting]
            if paths != order[: len(paths)]:
                _fail(trace, f"children of {parent} did not start in list order {order}", [i for i, _ in starting])
            for (i, e), (j, _) in itertools.pairwise(starting):
                done = [k for k in range(i, j) if isinstance(events[k], ChildStarted) and events[k].path == e.path]
                if not done:
                    _fail(trace, f"{e.path} had not started when its next sibling began starting", [i, j])


def _stop_phases(trace: Trace, parent: str) -> list[list[int]]:
    """Indices of ChildStopping events of parent's children, grouped into stop operations.

    A ChildStopping continues the previous one's operation when it has the same reason and
    nothing but that sibling's own subtree (and dropped-message notices, and the exits of
    siblings that the operation found already ended, rule 10) happened since that sibling's
    ChildStopped. Each ``terminate`` is an operation of its own.
    """
    events = trace.events

    def aside(k: int) -> bool:
        event = events[k]
        return isinstance(event, MessagesDropped) or (
            isinstance(event, ChildCrashed | ChildExited) and _parent(event.path) == parent
        )

    phases: list[list[int]] = []
    for j, e in enumerate(events):
        if not (isinstance(e, ChildStopping) and _parent(e.path) == parent):
            continue
        k = j - 1
        while k >= 0 and aside(k):
            k -= 1
        previous = phases[-1][-1] if phases else None
        if previous is not None:
            sibling = events[previous].path
            while k > previous and (events[k].path.startswith(sibling + "/") or aside(k)):
                k -= 1
            same = e.reason == events[previous].reason != "terminate"  # type: ignore[attr-defined]
            if same and k > previous and isinstance(events[k], ChildStopped) and events[k].path == sibling:
                phases[-1].append(j)
                continue
        phases.append([j])
    return [p for p in phases if len(p) > 1]


def check_stop_order(trace: Trace) -> None:
    """Rules 5-6: siblings stop in reverse list order, each subtree before its previous sibling.

    Also: after the tree was asked to stop, every child that was running was stopped.
    """
    specs = _Specs.of(trace.spec)
    position = _position(specs, trace)
    events = trace.events
    parents = set(specs.supervisors) | {_parent(e.path) for e in events if isinstance(e, ChildStarting)}
    for parent in parents:
        for phase in _stop_phases(trace, parent):
            for i, j in itertools.pairwise(phase):
                a, b = events[i], events[j]
                if position(a.path, j) <= position(b.path, j):
                    _fail(trace, f"children of {parent} were not stopped in reverse list order", [i, j])
                finished = [k for k in range(i, j) if isinstance(events[k], ChildStopped) and events[k].path == a.path]
                if not finished:
                    _fail(trace, f"{b.path} was asked to stop before {a.path}'s subtree had stopped", [i, j])
                late = [k for k in range(j, len(events))
                        if events[k].path.startswith(a.path + "/") and isinstance(events[k], ChildStopped)
                        and not any(isinstance(events[m], ChildStarting) and events[m].path == a.path
                                    for m in range(j, k))]
                if late:
                    _fail(trace, f"part of {a.path}'s subtree stopped after its previous sibling was asked to stop",
                          [i, j, *late])
    stopping = next((i for i, e in enumerate(events) if isinstance(e, TreeStopping)), None)
    if stopping is not None and trace.error is None:
        running: dict[str, int] = {}
        for i, e in enumerate(events[:stopping]):
            if isinstance(e, ChildStarted):
                running[e.path] = i
            elif isinstance(e, ChildStopped | ChildCrashed | ChildExited | ChildStartFailed):
                running.pop(e.path, None)
        stopped = {e.path for e in events[stopping:] if isinstance(e, ChildStopped | ChildCrashed | ChildExited)}
        restarted_parent = {e.path for e in events[stopping:] if isinstance(e, ChildStopped)}
        missing = [i for p, i in running.items() if p not in stopped
                   and not any(p.startswith(q + "/") for q in restarted_parent)]
        if missing:
            _fail(trace, "children running when the tree was asked to stop were never stopped", missing)


@attrs.define
class _Incarnation:
    """The checker's own model of one supervisor incarnation's children (static order)."""

    members: list[str]
    restarts: dict[str, Restart]
    down_for_good: set[str] = attrs.field(factory=set)


def _expected_restart(strategy: Strategy, failed: str, members: list[str], restarts: dict[str, Restart]) -> list[str]:
    """The children ``_decide.plan_restart`` starts again, in order, after ``failed`` exited."""
    kinds = [restarts.get(p, Restart.PERMANENT) for p in members]
    plan = plan_restart(strategy, members.index(failed), kinds, [p != failed for p in members])
    return [members[i] for i in plan.start]


def _group_removed(strategy: Strategy, failed: str, members: list[str], restarts: dict[str, Restart]) -> list[str]:
    """The temporary siblings ``_decide.plan_restart`` removes in the restart after ``failed`` exited."""
    kinds = [restarts.get(p, Restart.PERMANENT) for p in members]
    plan = plan_restart(strategy, members.index(failed), kinds, [p != failed for p in members])
    return [members[i] for i in plan.remove]


def _restart_of(spec: TreeSpec) -> Restart:
    return spec.restart


def _found_by_stop(trace: Trace, i: int, parent: str) -> bool:
    """Whether the exit at ``i`` was found by a stop of all of ``parent``'s children.

    Such a stop (a shutdown, a give-up, an injected failure of the parent) may find the child
    ended before it emits anything else: then what follows, among the events of the parent and
    its children, is the next sibling's ChildStopping for that stop, or the parent's own end.
    """
    events = trace.events
    for k in range(i + 1, len(events)):
        event = events[k]
        if event.path == parent:
            if isinstance(event, ChildStopping | ChildStopped | ChildCrashed | ChildExited | TreeStopped):
                return True
            continue
        if _parent(event.path) != parent or isinstance(event, MessagesDropped | ChildCrashed | ChildExited):
            continue  # elsewhere in the tree, or more of the same stop's findings
        return isinstance(event, ChildStopping) and event.reason in ("shutdown", "give_up")
    return not trace.complete


def check_restarts(trace: Trace) -> None:
    """Rules 11-19: after each exit, exactly the children its strategy and type call for restart.

    Temporary children are never restarted and are removed; transient children are not
    restarted after a normal exit; permanent ones always are; ONE_FOR_ALL restarts every
    non-temporary child, REST_FOR_ONE those from the failed one on. A give-up is accepted in
    place of a restart (``check_intensity`` judges it). An exit reported while its supervisor
    was already stopping that child (a group restart under way that names it, or the supervisor
    itself stopping, failing or giving up) calls for no reaction of its own (rule 10).
    """
    specs = _Specs.of(trace.spec)
    events = trace.events
    models: dict[str, _Incarnation] = {}
    pending: dict[str, set[str]] = defaultdict(set)  # by parent: named by a restart, not started yet
    stopping: set[str] = set()  # supervisors asked to stop (or giving up) and not started again

    def model(parent: str) -> _Incarnation:
        if parent not in models:
            order = specs.order(parent)
            models[parent] = _Incarnation(order, {p: _restart_of(specs.specs[p]) for p in order})
        return models[parent]

    for i, e in enumerate(events):
        if isinstance(e, ChildStarting):
            if e.path in specs.supervisors:
                models.pop(e.path, None)  # a (re)started supervisor: fresh model
                pending.pop(e.path, None)
            stopping.discard(e.path)
            pending[_parent(e.path)].discard(e.path)
            m = model(_parent(e.path))
            if e.path not in m.members:
                m.members.append(e.path)
            m.restarts[e.path] = Restart(e.restart)
            continue
        if isinstance(e, ChildRestarting):
            pending[_parent(e.path)].add(e.path)
            continue
        if isinstance(e, ChildStopping | GaveUp):
            stopping.add(e.path)
            if isinstance(e, ChildStopping) and e.reason in ("shutdown", "give_up"):
                stopping.add(_parent(e.path))  # the parent is stopping all its children
            continue
        if isinstance(e, TreeStopping):
            stopping.add(trace.spec.name)
            continue
        if not isinstance(e, ChildCrashed | ChildExited):
            continue
        parent = _parent(e.path)
        if parent in stopping or e.path in pending[parent] or _found_by_stop(trace, i, parent):
            continue  # reported in place of a stop: the stop under way is the reaction
        sup = specs.supervisors.get(parent)
        m = model(parent)
        restart = m.restarts.get(e.path, Restart.PERMANENT)
        # the reaction: events of parent's children until its next exit is handled
        window: list[int] = []
        for k in range(i + 1, len(events)):
            ev = events[k]
            if isinstance(ev, ChildCrashed | ChildExited) and _parent(ev.path) == parent:
                break
            if (isinstance(ev, GaveUp) and ev.path == parent) or isinstance(ev, TreeStopping):
                window.append(k)
                break
            if isinstance(ev, ChildStopping) and ev.path == parent:
                break
            window.append(k)
        restarting = [k for k in window if isinstance(events[k], ChildRestarting) and _parent(events[k].path) == parent]
        gave_up = [k for k in window if isinstance(events[k], GaveUp) and events[k].path == parent]
        kind = ExitKind.CRASH if isinstance(e, ChildCrashed) else ExitKind.NORMAL
        if not needs_restart(restart, kind):
            if restarting and events[restarting[0]].cause == e.path:  # type: ignore[attr-defined]
                _fail(trace, f"{e.path} ({restart.value}) was restarted after {type(e).__name__}", [i, *restarting])
            if restart is Restart.TEMPORARY and e.path in m.members:
                m.members.remove(e.path)
            continue
        if gave_up or not window or isinstance(events[window[-1]], TreeStopping):
            continue
        strategy = Strategy.ONE_FOR_ONE if sup is None else sup.strategy
        first = _batch(events, restarting[0]) if restarting else []
        got = [events[k].path for k in first]
        expected = _expected_restart(strategy, e.path, m.members, m.restarts)
        if got != expected:
            _fail(trace, f"{strategy.value} after {type(e).__name__} of {e.path} should restart {expected}, "
                         f"restarted {got}", [i, *first])
        for p in _group_removed(strategy, e.path, m.members, m.restarts):
            m.members.remove(p)


def _batch(events: tuple[Event, ...], start: int) -> list[int]:
    """The run of consecutive ChildRestarting events from ``start``: one restart decision."""
    end = start
    while end < len(events) and isinstance(events[end], ChildRestarting):
        end += 1
    return list(range(start, end))


def check_intensity(trace: Trace) -> None:
    """Rules 20-24: a supervisor restarts at most max_restarts times within any `within` s.

    Each restart decision (a batch of ChildRestarting with the same cause and time) counts
    once, in the window ``_decide`` keeps; a GaveUp happens exactly when one more restart would
    exceed the limit. A restarted supervisor counts from zero.
    """
    specs = _Specs.of(trace.spec)
    events = trace.events
    decisions: dict[str, tuple[float, ...]] = defaultdict(tuple)
    for i, e in enumerate(events):
        if isinstance(e, ChildStarting) and e.path in specs.supervisors:
            decisions.pop(e.path, None)
        elif isinstance(e, ChildRestarting):
            if i > 0 and isinstance(events[i - 1], ChildRestarting):
                continue  # the same decision as the previous event
            parent = _parent(e.path)
            sup = specs.supervisors.get(parent)
            if sup is None:
                continue
            allowed, decisions[parent] = record_restart(decisions[parent], e.time, sup.max_restarts, sup.within)
            if not allowed:
                _fail(trace, f"{parent} made {len(decisions[parent])} restarts within {sup.within} s "
                             f"(max_restarts={sup.max_restarts}) instead of giving up", [i])
        elif isinstance(e, GaveUp):
            sup = specs.supervisors.get(e.path)
            if sup is None:
                continue
            allowed, window = record_restart(decisions[e.path], e.time, sup.max_restarts, sup.within)
            if allowed:
                _fail(trace, f"{e.path} gave up with only {len(window) - 1} restarts in its window "
                             f"(max_restarts={sup.max_restarts})", [i])
            # the parent sees the failure as a crash (ChildCrashed, also when it was about to
            # stop that child anyway), or, if it gave up while being stopped, in ChildStopped
            crashed = [k for k in range(i, len(events))
                       if events[k].path == e.path and (isinstance(events[k], ChildCrashed) or (
                           isinstance(events[k], ChildStopped) and events[k].error is not None))]  # type: ignore[attr-defined]
            if e.path != trace.spec.name and not crashed and trace.complete:  # mid-run: may be under way
                _fail(trace, f"{e.path} gave up but its parent never saw it crash (escalation)", [i])
            if e.path != trace.spec.name and crashed:
                error = events[crashed[0]].error  # type: ignore[attr-defined]
                if not isinstance(error, SupervisorGaveUp):
                    _fail(trace, f"{e.path} gave up but crashed in its parent with {error!r}", [i, crashed[0]])
    if trace.complete and any(isinstance(e, GaveUp) and e.path == trace.spec.name for e in events) and not isinstance(
        trace.error, SupervisorGaveUp
    ):
        _fail(trace, "the root gave up but the run did not fail with SupervisorGaveUp", [])


def check_no_tasks_left(trace: Trace) -> None:
    """Rule 9: after the tree stopped, no task of it is alive."""
    if trace.tasks_left:
        raise InvariantViolation(f"tasks of the tree still alive after it stopped: {list(trace.tasks_left)}")


def check_messages(trace: Trace) -> None:
    """Rules 36-37: across restarts no numbered message is lost or handled twice.

    The only gaps allowed are the messages whose handler crashed (reported in ChildCrashed)
    and messages dropped because the actor stopped for good (reported in MessagesDropped).
    """
    crashed: dict[str, list[int]] = defaultdict(list)
    dropped: dict[str, int] = defaultdict(int)
    for e in trace.events:
        if isinstance(e, ChildCrashed) and e.message is not None and hasattr(e.message, "seq"):
            crashed[e.path].append(e.message.seq)
        elif isinstance(e, MessagesDropped):
            dropped[e.path] += e.count
    for path, sent in trace.sent.items():
        received = trace.received.get(path, ())
        if len(set(received)) != len(received):
            raise InvariantViolation(f"{path} handled a message twice: received {list(received)}")
        if list(received) != sorted(received):
            raise InvariantViolation(f"{path} handled messages out of order: {list(received)}")
        handled = set(received)
        last = max(received, default=0)
        missing = [s for s in sent if s not in handled]
        if not trace.complete:  # later messages may still be queued: only gaps count
            missing = [s for s in missing if s < last]
        unexplained = [s for s in missing if s not in crashed[path]]
        if len(unexplained) > dropped[path]:
            raise InvariantViolation(
                f"{path} lost messages {unexplained}: sent {list(sent)}, handled {list(received)}, "
                f"crashed on {crashed[path]}, {dropped[path]} reported dropped"
            )


CHECKERS = (
    check_start_order,
    check_stop_order,
    check_restarts,
    check_intensity,
    check_no_tasks_left,
    check_messages,
)


def check_all(trace: Trace) -> None:
    """Run every checker on ``trace``; the first violation is raised."""
    for checker in CHECKERS:
        checker(trace)

