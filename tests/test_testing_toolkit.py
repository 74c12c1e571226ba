"""supervisors.testing: strategies, harness, checkers, state machine, fixtures."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from supervisors import (
    ChildCrashed,
    ChildRestarting,
    ChildSpec,
    ChildStarted,
    ChildStarting,
    ChildStopped,
    ChildStopping,
    DynamicSupervisor,
    Restart,
    Strategy,
    Supervisor,
    TreeStopping,
    listen_outside_work,
    outside_trio,
)
from supervisors.testing import (
    Fault,
    FaultKind,
    FaultPlan,
    InvariantViolation,
    Scripted,
    SupervisionStateMachine,
    Trace,
    TracedTree,
    check_all,
    check_intensity,
    check_messages,
    check_restarts,
    check_start_order,
    check_stop_order,
    fault_plans,
    run_tree,
    supervision_trees,
    thread_aware_clock,
)


@given(tree=supervision_trees(max_depth=3, max_children=3), data=st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_every_generated_tree_obeys_the_semantics_under_any_fault_plan(tree: Supervisor, data: st.DataObject) -> None:
    """Random trees under random fault plans: every invariant checker passes."""
    plan = data.draw(fault_plans(tree, max_faults=6))
    check_all(run_tree(tree, plan))


def test_same_seed_gives_the_same_trace() -> None:
    """Running the same tree and plan twice gives identical traces."""
    tree = Supervisor(
        name="root",
        strategy=Strategy.ONE_FOR_ALL,
        children=[
            ChildSpec(name="a", factory=Scripted(0.5, 1.0)),
            Supervisor(
                name="s",
                strategy=Strategy.REST_FOR_ONE,
                children=[
                    ChildSpec(name="b", factory=Scripted(), shutdown=0.5),
                    ChildSpec(name="c", factory=Scripted(0, 2.0), shutdown=1.0),
                ],
            ),
        ],
    )
    plan = FaultPlan(
        faults=[
            Fault(kind=FaultKind.CRASH, path="root/s/b", at=1.0),
            Fault(kind=FaultKind.MESSAGE, path="root/a", at=1.5),
            Fault(kind=FaultKind.START_FAILURE, path="root/s/c", attempt=2),
            Fault(kind=FaultKind.CRASH, path="root/s", at=4.0),
        ],
        stop_at=8.0,
    )
    first, second = run_tree(tree, plan, seed=3), run_tree(tree, plan, seed=3)
    assert first.signature() == second.signature()
    assert len(first.events) > 20
    check_all(first)


def test_hang_on_stop_is_cancelled_after_the_grace() -> None:
    """A child whose on_stop hangs is cancelled after its grace; the trace shows it."""
    tree = Supervisor(name="root", children=[ChildSpec(name="a", factory=Scripted(), shutdown=2.0)])
    trace = run_tree(tree, FaultPlan(faults=[Fault(kind=FaultKind.HANG_ON_STOP, path="root/a")], stop_at=1.0))
    stopped = [e for _, e in trace.of(ChildStopped)]
    assert stopped[0].cancelled
    assert stopped[0].time == pytest.approx(3.0)
    check_all(trace)


def test_messages_survive_restarts_except_the_crashed_one() -> None:
    """Numbered messages sent around crashes are all handled once, in order."""
    tree = Supervisor(name="root", children=[ChildSpec(name="a", factory=Scripted(start_delay=1.0))])
    faults = [Fault(kind=FaultKind.MESSAGE, path="root/a", at=t / 10) for t in range(10, 60)]
    faults.append(Fault(kind=FaultKind.CRASH, path="root/a", at=2.05))
    trace = run_tree(tree, FaultPlan(faults=faults, stop_at=10.0))
    assert len(trace.received["root/a"]) == len(trace.sent["root/a"]) == 50
    check_all(trace)


def test_root_that_gives_up_is_recorded_as_the_trace_error() -> None:
    """When the root gives up, the run ends with trace.error set and the checks still pass."""
    tree = Supervisor(name="root", max_restarts=1, children=[ChildSpec(name="a", factory=Scripted())])
    plan = FaultPlan(faults=[Fault(kind=FaultKind.CRASH, path="root/a", at=t) for t in (1, 2, 3)])
    trace = run_tree(tree, plan)
    assert type(trace.error).__name__ == "SupervisorGaveUp"
    assert len(trace.skipped) == 1
    check_all(trace)


def test_start_failure_at_tree_start_is_recorded() -> None:
    """A first start that fails makes the run end with StartFailed, children stopped in reverse."""
    tree = Supervisor(
        name="root",
        children=[
            ChildSpec(name="a", factory=Scripted()),
            ChildSpec(name="b", factory=Scripted()),
        ],
    )
    trace = run_tree(tree, FaultPlan(faults=[Fault(kind=FaultKind.START_FAILURE, path="root/b")]))
    assert type(trace.error).__name__ == "StartFailed"
    check_all(trace)


# -- the checkers catch what they should ---------------------------------------------------

TREE = Supervisor(
    name="r",
    strategy=Strategy.ONE_FOR_ALL,
    max_restarts=1,
    within=5.0,
    children=[
        ChildSpec(name="a", factory=Scripted()),
        ChildSpec(name="b", factory=Scripted()),
        ChildSpec(name="t", factory=Scripted(), restart=Restart.TEMPORARY),
    ],
)


def fake(*events: object) -> Trace:
    return Trace(spec=TREE, plan=FaultPlan(), events=tuple(events))  # type: ignore[arg-type]


def started(path: str, t: float = 0.0) -> list[object]:
    restart = "temporary" if path == "r/t" else "permanent"
    return [
        ChildStarting(path=path, time=t, incarnation=1, restart=restart),
        ChildStarted(path=path, time=t, incarnation=1),
    ]


def test_start_order_checker_names_the_out_of_order_events() -> None:
    """A sibling started before an earlier one is reported with both events."""
    trace = fake(*started("r/b"), *started("r/a"), *started("r/t"))
    with pytest.raises(InvariantViolation, match=r"did not start in list order") as info:
        check_start_order(trace)
    assert "ChildStarting r/b" in str(info.value)


def test_stop_order_checker_rejects_forward_order() -> None:
    """Stopping a before b (list order instead of reverse) is a violation."""
    trace = fake(
        *started("r/a"),
        *started("r/b"),
        TreeStopping(path="r", time=1),
        ChildStopping(path="r/a", time=1, incarnation=1, grace=5),
        ChildStopped(path="r/a", time=1, incarnation=1, cancelled=False),
        ChildStopping(path="r/b", time=1, incarnation=1, grace=5),
        ChildStopped(path="r/b", time=1, incarnation=1, cancelled=False),
    )
    with pytest.raises(InvariantViolation, match="not stopped in reverse list order"):
        check_stop_order(trace)


def test_stop_order_checker_sees_through_a_crash_found_by_the_stop() -> None:
    """A sibling's crash reported in the middle of a stop does not hide a forward stop order."""
    trace = fake(
        *started("r/a"),
        *started("r/b"),
        *started("r/t"),
        TreeStopping(path="r", time=1),
        ChildStopping(path="r/a", time=1, incarnation=1, grace=5),
        ChildStopped(path="r/a", time=1, incarnation=1, cancelled=False),
        ChildCrashed(path="r/b", time=1, incarnation=1, error=RuntimeError("x")),
        ChildStopping(path="r/t", time=1, incarnation=1, grace=5),
        ChildStopped(path="r/t", time=1, incarnation=1, cancelled=False),
    )
    with pytest.raises(InvariantViolation, match="not stopped in reverse list order"):
        check_stop_order(trace)


def test_restart_checker_rejects_a_one_for_one_restart_under_one_for_all() -> None:
    """Under ONE_FOR_ALL, restarting only the crashed child is a violation."""
    trace = fake(
        *started("r/a"),
        *started("r/b"),
        *started("r/t"),
        ChildCrashed(path="r/a", time=1, incarnation=1, error=RuntimeError("x")),
        ChildRestarting(path="r/a", time=1, delay=0, restarts=1, cause="r/a"),
    )
    with pytest.raises(InvariantViolation, match=r"should restart \['r/a', 'r/b'\]"):
        check_restarts(trace)


def test_restart_checker_rejects_restarting_a_temporary_child() -> None:
    """A temporary child restarted after its exit is a violation."""
    trace = fake(
        *started("r/a"),
        *started("r/b"),
        *started("r/t"),
        ChildCrashed(path="r/t", time=1, incarnation=1, error=RuntimeError("x")),
        ChildRestarting(path="r/t", time=1, delay=0, restarts=1, cause="r/t"),
    )
    with pytest.raises(InvariantViolation, match="temporary"):
        check_restarts(trace)


def test_restart_checker_accepts_a_crash_reported_by_the_group_restart_that_stops_it() -> None:
    """A sibling's crash found by the ONE_FOR_ALL stop under way needs no restart of its own."""
    trace = fake(
        *started("r/a"),
        *started("r/b"),
        *started("r/t"),
        ChildCrashed(path="r/a", time=1, incarnation=1, error=RuntimeError("x")),
        ChildRestarting(path="r/a", time=1, delay=0, restarts=1, cause="r/a"),
        ChildRestarting(path="r/b", time=1, delay=0, restarts=1, cause="r/a"),
        ChildStopping(path="r/t", time=1, incarnation=1, grace=5, reason="restart"),
        ChildStopped(path="r/t", time=1, incarnation=1, cancelled=False),
        ChildCrashed(path="r/b", time=1, incarnation=1, error=RuntimeError("y")),
        ChildStarting(path="r/a", time=1, incarnation=2, restart="permanent"),
        ChildStarted(path="r/a", time=1, incarnation=2),
        ChildStarting(path="r/b", time=1, incarnation=2, restart="permanent"),
        ChildStarted(path="r/b", time=1, incarnation=2),
    )
    check_restarts(trace)
    check_intensity(trace)
    late = attrs.evolve(trace, events=(*trace.events, ChildCrashed(path="r/b", time=2, incarnation=2,
                                                                   error=RuntimeError("z")),
                                       ChildRestarting(path="r/b", time=2, delay=0, restarts=2, cause="r/b")))
    with pytest.raises(InvariantViolation, match=r"should restart \['r/a', 'r/b'\]"):
        check_restarts(late)


def test_restart_checker_accepts_a_crash_found_first_by_its_supervisor_stopping_everything() -> None:
    """A crash that a failing supervisor's stop finds before stopping anything needs no restart."""
    def found_by(reason: str) -> Trace:
        return fake(
            *started("r/a"),
            *started("r/b"),
            ChildCrashed(path="r/b", time=1, incarnation=1, error=RuntimeError("x")),
            ChildStopping(path="r/a", time=1, incarnation=1, grace=5, reason=reason),
            ChildStopped(path="r/a", time=1, incarnation=1, cancelled=False),
        )

    check_restarts(found_by("give_up"))
    with pytest.raises(InvariantViolation, match=r"should restart \['r/a', 'r/b'\], restarted \[\]"):
        check_restarts(found_by("terminate"))


def test_intensity_checker_rejects_too_many_restarts() -> None:
    """Two restart decisions within the window with max_restarts=1 is a violation."""
    trace = fake(
        ChildRestarting(path="r/a", time=1, delay=0, restarts=1, cause="r/a"),
        ChildStarting(path="r/a", time=1, incarnation=2),
        ChildRestarting(path="r/a", time=2, delay=0, restarts=2, cause="r/a"),
    )
    with pytest.raises(InvariantViolation, match=r"made 2 restarts within 5\.0 s"):
        check_intensity(trace)


def test_message_checker_rejects_a_lost_message() -> None:
    """A gap in handled messages not explained by a crash or a drop is a violation."""
    trace = attrs.evolve(fake(), sent={"r/a": (1, 2, 3)}, received={"r/a": (1, 3)})
    with pytest.raises(InvariantViolation, match=r"lost messages \[2\]"):
        check_messages(trace)


def test_message_checker_rejects_a_duplicate() -> None:
    """A message handled twice is a violation."""
    trace = attrs.evolve(fake(), sent={"r/a": (1, 2)}, received={"r/a": (1, 1, 2)})
    with pytest.raises(InvariantViolation, match="twice"):
        check_messages(trace)


# -- strategies ----------------------------------------------------------------------------


def test_strategy_arguments_are_validated() -> None:
    """Bad strategy arguments raise ValueError at once, naming the argument."""
    with pytest.raises(ValueError, match="max_depth"):
        supervision_trees(max_depth=0)
    with pytest.raises(ValueError, match="min_children"):
        supervision_trees(min_children=3, max_children=1)
    with pytest.raises(ValueError, match="horizon"):
        fault_plans(TREE, horizon=0)


def test_strategy_repr_shows_how_it_was_built() -> None:
    """The repr names the strategy and its arguments."""
    assert repr(supervision_trees(max_depth=3)).startswith("supervision_trees(")
    assert "max_depth=3" in repr(supervision_trees(max_depth=3))


def test_trees_shrink_to_a_minimal_example() -> None:
    """Asked for a tree with a nested supervisor, Hypothesis shrinks to the smallest one."""
    smallest = find(
        supervision_trees(max_depth=3),
        lambda t: any(isinstance(c, Supervisor) for c in t.children),
        settings=settings(database=None, max_examples=500),
    )
    assert len(smallest.children) == 1
    sub = smallest.children[0]
    assert isinstance(sub, Supervisor)
    assert len(sub.children) == 1
    assert isinstance(sub.children[0], ChildSpec)


# -- the state machine ---------------------------------------------------------------------


class DemoTreeMachine(SupervisionStateMachine):
    spec = Supervisor(
        name="app",
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=3,
        within=5.0,
        children=[
            ChildSpec(name="a", factory=Scripted(stop_delay=0.5)),
            Supervisor(
                name="s",
                strategy=Strategy.ONE_FOR_ALL,
                children=[
                    ChildSpec(name="b", factory=Scripted(), restart=Restart.TRANSIENT),
                    ChildSpec(name="c", factory=Scripted(start_delay=0.2), shutdown=1.0),
                ],
            ),
            DynamicSupervisor(name="pool", max_children=3),
        ],
    )


TestDemoTreeMachine = DemoTreeMachine.TestCase
TestDemoTreeMachine.settings = settings(stateful_step_count=15)  # examples: the profile's


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def tree_spec() -> Supervisor:
    return Supervisor(name="fx", children=[ChildSpec(name="a", factory=Scripted(stop_delay=1.0))])


async def test_traced_tree_fixture_records_the_run(
    autojump_clock: trio.testing.MockClock, traced_tree: TracedTree
) -> None:
    """The traced_tree fixture runs tree_spec and records its events from the start."""
    assert [type(e).__name__ for e in traced_tree.events][:2] == ["ChildStarting", "ChildStarted"]
    traced_tree.apply(Fault(kind=FaultKind.CRASH, path="fx/a"))
    await trio.testing.wait_all_tasks_blocked()
    assert any(isinstance(e, ChildRestarting) for e in traced_tree.events)
    assert math.isfinite(trio.current_time())


_PROJECT_WITHOUT_HYPOTHESIS = '''
import pytest
import trio
from actors import Actor
from supervisors import ChildSpec, Supervisor
from supervisors.testing import TracedTree


@pytest.fixture
def tree_spec():
    return Supervisor(name="app", children=[ChildSpec(name="a", factory=Actor)])


def test_the_clock_fixture_is_offered(autojump_clock):
    assert autojump_clock.autojump_threshold == 0


@pytest.mark.trio
async def test_the_traced_tree_fixture_runs(traced_tree: TracedTree):
    await trio.sleep(1)
    assert traced_tree.tree.name == "app"


def test_the_hypothesis_names_say_which_extra_to_install():
    with pytest.raises(ImportError, match="testing extra"):
        from supervisors.testing import fault_plans  # noqa: F401
'''

# Hypothesis made unimportable before pytest loads its plugins from entry points (a conftest
# would come too late); Hypothesis's own pytest plugin is left out, as in a project without it.
_RUN_WITHOUT_HYPOTHESIS = """
import sys

class NoHypothesis:
    def find_spec(self, name, path=None, target=None):
        if name == "hypothesis" or name.startswith("hypothesis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoHypothesis())
import pytest
sys.exit(pytest.main(["-q", "-p", "no:hypothesispytest", "-p", "no:cacheprovider", sys.argv[1]]))
"""


@pytest.mark.slow
def test_pytest_plugin_loads_and_serves_fixtures_without_hypothesis(tmp_path: Path) -> None:
    """In a project with pytest but without Hypothesis, the plugin loads and its fixtures work."""
    (tmp_path / "test_app.py").write_text(_PROJECT_WITHOUT_HYPOTHESIS)
    done = subprocess.run(
        [sys.executable, "-c", _RUN_WITHOUT_HYPOTHESIS, str(tmp_path / "test_app.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


async def test_the_thread_aware_clock_holds_still_while_a_task_waits_for_a_thread(
    thread_aware_clock: trio.testing.MockClock,
) -> None:
    """Under `thread_aware_clock`, virtual time does not pass while a task waits in
    `outside_trio` (a timer due meanwhile waits too), and jumps again once the wait ended."""
    fired: list[float] = []

    async def timer() -> None:
        await trio.sleep(1.0)
        fired.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer)
        await trio.testing.wait_all_tasks_blocked()
        with outside_trio():
            await trio.to_thread.run_sync(time.sleep, 0.05)  # real time, with every task blocked
        assert (trio.current_time(), fired) == (0.0, [])
        assert thread_aware_clock.autojump_threshold == 0.0
    assert fired == [1.0]


def test_a_plain_autojump_clock_jumps_while_a_thread_works_and_a_removed_listener_hears_nothing() -> None:
    """The contrast: with the listener removed (`listen_outside_work(clock, None)`), the same
    wait lets the clock jump past the timer while the thread works."""
    clock = thread_aware_clock()
    listen_outside_work(clock, None)

    async def main() -> float:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 1.0)
            await trio.testing.wait_all_tasks_blocked()
            with outside_trio():
                await trio.to_thread.run_sync(time.sleep, 0.05)
            return trio.current_time()

    assert trio.run(main, clock=clock) == 1.0
