"""pytest fixtures for supervision trees (enabled automatically by the package's entry point).

- ``autojump_clock``: a ``MockClock(autojump_threshold=0)``; request it in a Trio test and
  time costs nothing.
- ``thread_aware_clock``: the same, except that it holds still while a task waits for a thread
  (`thread_aware_clock`): for tests with a file-backed SQLite store or sync jobs.
- ``tree_spec``: override it in your tests (``@pytest.fixture def tree_spec(): return my_tree``).
- ``traced_tree``: the running ``tree_spec`` as a :class:`TracedTree` (the tree, its events
  so far, ``trace()``); stopped after the test, then every invariant is checked.
- ``tree_events``: the live list of the traced tree's events.

These are function-scoped: with ``@given``, call :func:`run_tree` instead of using them
(Hypothesis cannot reset function-scoped fixtures between examples).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio.testing

from .._events import Event
from .._spec import DynamicSupervisor, Supervisor
from ._checkers import check_all
from ._clock import thread_aware_clock as _thread_aware_clock
from ._traced import TracedTree, open_traced_tree


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """A MockClock that jumps whenever every task is blocked."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def thread_aware_clock() -> trio.testing.MockClock:
    """A MockClock that jumps whenever every task is blocked, but not while a task waits for a
    thread (`supervisors.testing.thread_aware_clock`)."""
    return _thread_aware_clock()


@pytest.fixture
def tree_spec() -> Supervisor | DynamicSupervisor:
    """The tree that ``traced_tree`` runs; override this fixture."""
    raise pytest.UsageError("define a 'tree_spec' fixture returning your Supervisor to use 'traced_tree'")


@pytest.fixture
async def traced_tree(tree_spec: Supervisor | DynamicSupervisor) -> AsyncIterator[TracedTree]:
    """``tree_spec`` running, recorded from its start; checked with check_all after the test."""
    async with open_traced_tree(tree_spec) as traced:
        yield traced
    check_all(traced.trace())


@pytest.fixture
def tree_events(traced_tree: TracedTree) -> list[Event]:
    """The live list of events of ``traced_tree``."""
    return traced_tree.events
