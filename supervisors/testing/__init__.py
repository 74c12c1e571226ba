"""Property-based testing of shutdown and recovery for your own supervision trees.

- :func:`supervision_trees` and :func:`fault_plans`: Hypothesis strategies.
- :func:`run_tree` (synchronous, own MockClock) and :func:`record` (inside a Trio test): run a
  tree under a :class:`FaultPlan` and get its :class:`Trace`. Same spec, plan, seed: same trace.
- ``check_*`` and :func:`check_all`: invariant checkers that raise :class:`InvariantViolation`
  naming the offending events.
- :class:`SupervisionStateMachine`: a Hypothesis ``RuleBasedStateMachine`` that drives a running
  tree (crash, exit, send, add/remove dynamic children, advance time, stop) and checks the
  invariants after every step.
- :func:`thread_aware_clock`: an autojump ``MockClock`` that holds still while a task waits
  for a thread (a SQLite store's writer, a sync job), so no lease expires meanwhile.
- pytest fixtures (``autojump_clock``, ``thread_aware_clock``, ``traced_tree``) come with the plugin
  ``supervisors.testing.pytest_plugin``, enabled automatically when this package is installed.

Needs the ``testing`` extra (``hypothesis``, ``pytest``, ``pytest-trio``). Without Hypothesis,
everything but :func:`supervision_trees`, :func:`fault_plans` and
:class:`SupervisionStateMachine` still imports (so the pytest plugin loads in any project);
those three raise ``ImportError`` naming the extra when used. Uses the public API of
:mod:`supervisors` only. See ``docs/testing.md``.
"""

from typing import TYPE_CHECKING, Any

from ._checkers import InvariantViolation as InvariantViolation
from ._checkers import check_all as check_all
from ._checkers import check_intensity as check_intensity
from ._checkers import check_messages as check_messages
from ._checkers import check_no_tasks_left as check_no_tasks_left
from ._checkers import check_restarts as check_restarts
from ._checkers import check_start_order as check_start_order
from ._checkers import check_stop_order as check_stop_order
from ._clock import thread_aware_clock as thread_aware_clock
from ._faults import Fault as Fault
from ._faults import FaultKind as FaultKind
from ._faults import FaultPlan as FaultPlan
from ._harness import record as record
from ._harness import run_tree as run_tree
from ._scripted import Numbered as Numbered
from ._scripted import Scripted as Scripted
from ._scripted import ScriptedActor as ScriptedActor
from ._trace import Trace as Trace
from ._traced import TracedTree as TracedTree
from ._traced import open_traced_tree as open_traced_tree

try:
    import hypothesis as _hypothesis
except ImportError:  # the testing extra is not installed: the names below fail when used
    _hypothesis = None  # type: ignore[assignment]

if TYPE_CHECKING or _hypothesis is not None:
    from ._machine import SupervisionStateMachine as SupervisionStateMachine
    from ._strategies import fault_plans as fault_plans
    from ._strategies import supervision_trees as supervision_trees
else:
    _NEED_HYPOTHESIS = frozenset({"SupervisionStateMachine", "fault_plans", "supervision_trees"})

    def __getattr__(name: str) -> Any:
        if name in _NEED_HYPOTHESIS:
            raise ImportError(
                f"supervisors.testing.{name} needs Hypothesis, which is not installed; "
                "install the testing extra: pip install 'trio-supervisors[testing]'"
            )
        raise AttributeError(f"module 'supervisors.testing' has no attribute {name!r}")

__all__ = [
    "Fault",
    "FaultKind",
    "FaultPlan",
    "InvariantViolation",
    "Numbered",
    "Scripted",
    "ScriptedActor",
    "SupervisionStateMachine",
    "Trace",
    "TracedTree",
    "check_all",
    "check_intensity",
    "check_messages",
    "check_no_tasks_left",
    "check_restarts",
    "check_start_order",
    "check_stop_order",
    "fault_plans",
    "open_traced_tree",
    "record",
    "run_tree",
    "supervision_trees",
    "thread_aware_clock",
]
