"""Property-test the demo application's tree with supervisors.testing.

    python -m pytest examples/test_demo_tree.py

Hypothesis draws fault plans for the demo tree (which child crashes when, which fails to
start, which hangs on stop, which exits), runs the tree under each on a MockClock (an hour
of virtual time costs milliseconds) and checks every supervision invariant on the recorded
trace; then a state machine drives the running tree step by step. The tree is the real one
from examples/demo.py, on an in-memory job store and a job clock that follows Trio's clock.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from demo import build_tree

from supervisors import ChildCrashed, Supervisor
from supervisors.jobs import InMemoryStore, TrioWallClock
from supervisors.testing import FaultKind, SupervisionStateMachine, check_all, fault_plans, run_tree

FAULTS = [FaultKind.CRASH, FaultKind.EXIT, FaultKind.START_FAILURE, FaultKind.HANG_ON_STOP]


def demo_tree() -> Supervisor:
    """A fresh demo tree (fresh job system and store) for one run."""
    return build_tree(InMemoryStore(), clock=TrioWallClock(datetime(2026, 1, 1, tzinfo=UTC)))


@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_demo_tree_recovers_from_any_fault_plan(data: st.DataObject) -> None:
    """Whatever crashes, fails to start or hangs, the demo tree obeys every invariant."""
    tree = demo_tree()
    plan = data.draw(fault_plans(tree, max_faults=5, horizon=30.0, kinds=FAULTS), label="plan")
    trace = run_tree(tree, plan)
    check_all(trace)
    if trace.error is None:  # it survived: then every crash was followed by a restart
        assert all(e.path != "demo" for _, e in trace.of(ChildCrashed))


def test_resizer_bug_is_contained_by_its_supervisor() -> None:
    """With no injected faults, the resizer's own crashes never take the tree down."""
    trace = run_tree(demo_tree())
    crashes = [e for _, e in trace.of(ChildCrashed)]
    assert trace.error is None
    assert crashes
    assert {e.path for e in crashes} == {"demo/pipeline/resizer"}
    check_all(trace)


class DemoTreeMachine(SupervisionStateMachine):
    """Crash, exit and wait in any order on the running demo tree; invariants after each step."""

    def make_spec(self) -> Supervisor:
        return demo_tree()

    def message_for(self, path: str) -> None:
        return None  # the demo's actors take their own messages, not the toolkit's


TestDemoTreeMachine = DemoTreeMachine.TestCase
TestDemoTreeMachine.settings = settings(stateful_step_count=10)
