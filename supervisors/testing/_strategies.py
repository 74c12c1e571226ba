"""Hypothesis strategies for supervision trees and fault plans."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from hypothesis import strategies as st

from .._spec import ChildSpec, Restart, Strategy, Supervisor, TreeSpec
from ._faults import Fault, FaultKind, FaultPlan, walk_paths
from ._scripted import Scripted

__all__ = ["fault_plans", "supervision_trees"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def supervision_trees(
    *,
    max_depth: int = 2,
    min_children: int = 1,
    max_children: int = 3,
    strategies: Sequence[Strategy] = tuple(Strategy),
    restarts: Sequence[Restart] = tuple(Restart),
    max_restarts: tuple[int, int] = (0, 4),
    shutdowns: Sequence[float] = (0.0, 1.0, 5.0),
    start_delays: Sequence[float] = (0.0, 0.5),
    stop_delays: Sequence[float] = (0.0, 0.5, 3.0),
) -> st.SearchStrategy[Supervisor]:
    """Random valid supervision trees of :class:`ScriptedActor` children.

    - ``max_depth`` (>= 1): levels of supervisors, the root included.
    - ``min_children`` / ``max_children`` (0 <= min <= max): children per supervisor.
    - ``strategies``, ``restarts``: the strategies and child restart types to draw from.
    - ``max_restarts``: inclusive range of each supervisor's intensity; ``within`` is drawn
      from 1, 5 and 30 s.
    - ``shutdowns``: actor graces; ``start_delays`` / ``stop_delays``: how long an actor
      takes to start and to stop (a stop delay longer than the grace gets it cancelled).

    Children are named ``c0``, ``c1``... and supervisors ``s0``, ``s1``... under a root named
    ``root``. Examples shrink towards shallow trees of few one-for-one, permanent children
    with no delays (the first element of each sequence).
    """
    _check(max_depth >= 1, f"'max_depth' must be >= 1 (got {max_depth})")
    _check(
        0 <= min_children <= max_children,
        f"need 0 <= min_children <= max_children (got {min_children}, {max_children})",
    )
    _check(bool(strategies) and bool(restarts), "'strategies' and 'restarts' must not be empty")
    _check(
        0 <= max_restarts[0] <= max_restarts[1],
        f"'max_restarts' must be a range (lo, hi) with 0 <= lo <= hi (got {max_restarts})",
    )
    _check(bool(shutdowns) and all(s >= 0 for s in shutdowns), "'shutdowns' must be non-empty and >= 0")

    def node(depth: int, name: str) -> st.SearchStrategy[TreeSpec]:
        actor = st.builds(
            lambda restart, shutdown, start, stop: ChildSpec(
                name=name, factory=Scripted(start, stop), restart=restart, shutdown=shutdown
            ),
            st.sampled_from(restarts),
            st.sampled_from(shutdowns),
            st.sampled_from(start_delays),
            st.sampled_from(stop_delays),
        )
        if depth >= max_depth:
            return actor
        return st.one_of(actor, supervisor(depth + 1, name, restart=st.sampled_from(restarts)))

    def supervisor(depth: int, name: str, restart: st.SearchStrategy[Restart]) -> st.SearchStrategy[TreeSpec]:
        @st.composite
        def build(draw: st.DrawFn) -> Supervisor:
            n = draw(st.integers(min_children, max_children))
            children = [draw(node(depth, f"c{i}")) for i in range(n)]
            children = [
                c if isinstance(c, ChildSpec) else _rename(c, f"s{i}") for i, c in enumerate(children)
            ]
            return Supervisor(
                name=name,
                children=children,
                strategy=draw(st.sampled_from(strategies)),
                max_restarts=draw(st.integers(*max_restarts)),
                within=draw(st.sampled_from((5.0, 1.0, 30.0))),
                restart=draw(restart),
            )

        return build()

    root = supervisor(1, "root", restart=st.just(Restart.PERMANENT))

    @st.composite
    def supervision_trees(draw: st.DrawFn, /, **shown: object) -> Supervisor:
        tree = draw(root)
        assert isinstance(tree, Supervisor)
        return tree

    # The repr shows how the strategy was built: supervision_trees(max_depth=3, ...).
    return supervision_trees(
        max_depth=max_depth, min_children=min_children, max_children=max_children,
        strategies=tuple(strategies), restarts=tuple(restarts), max_restarts=max_restarts,
    )


def _rename(spec: TreeSpec, name: str) -> TreeSpec:
    return attrs.evolve(spec, name=name)


def fault_plans(
    tree: Supervisor,
    *,
    max_faults: int = 4,
    horizon: float = 10.0,
    kinds: Sequence[FaultKind] = tuple(FaultKind),
) -> st.SearchStrategy[FaultPlan]:
    """Random fault plans for ``tree``: up to ``max_faults`` faults within ``horizon`` seconds.

    Crashes may hit actors and sub-supervisors; exits, messages and start failures hit actors;
    hangs on stop hit actors with a finite, non-zero grace (so the grace ends them). The tree
    is stopped at ``horizon``. Plans shrink towards fewer, earlier faults.
    """
    _check(max_faults >= 0, f"'max_faults' must be >= 0 (got {max_faults})")
    _check(horizon > 0, f"'horizon' must be > 0 (got {horizon})")
    _check(bool(kinds), "'kinds' must not be empty")
    paths = list(walk_paths(tree))
    actors = [p for p, s in paths if isinstance(s, ChildSpec)]
    subs = [p for p, s in paths[1:] if not isinstance(s, ChildSpec)]
    hangable = [p for p, s in paths if isinstance(s, ChildSpec) and 0 < s.shutdown < float("inf")]
    targets: dict[FaultKind, list[str]] = {
        FaultKind.CRASH: actors + subs,
        FaultKind.EXIT: actors,
        FaultKind.MESSAGE: actors,
        FaultKind.START_FAILURE: actors,
        FaultKind.HANG_ON_STOP: hangable,
    }
    usable = [k for k in kinds if targets[k]]
    if not usable or max_faults == 0:
        return st.just(FaultPlan(stop_at=horizon))

    @st.composite
    def fault(draw: st.DrawFn) -> Fault:
        kind = draw(st.sampled_from(usable))
        path = draw(st.sampled_from(targets[kind]))
        at = draw(st.integers(0, int(horizon * 10)).map(lambda t: t / 10)) if kind in (
            FaultKind.CRASH, FaultKind.EXIT, FaultKind.MESSAGE) else 0.0
        attempt = draw(st.integers(2, 3)) if kind is FaultKind.START_FAILURE else 1
        return Fault(kind=kind, path=path, at=at, attempt=attempt)

    def plan(faults: list[Fault]) -> FaultPlan:
        return FaultPlan(faults=tuple(faults), stop_at=horizon)

    return st.lists(fault(), max_size=max_faults).map(plan)
