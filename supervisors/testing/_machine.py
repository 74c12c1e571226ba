"""SupervisionStateMachine: Hypothesis drives a running tree step by step and checks invariants.

The tree runs in a Trio run on a background thread with a MockClock. Virtual time moves only
inside a step (autojump is on while a step runs, off between steps), so a run is reproducible.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from .._snapshot import ChildKind, ChildState
from .._spec import ChildSpec, DynamicSupervisor, Supervisor
from .._tree import Tree
from ._checkers import (
    check_all,
    check_intensity,
    check_messages,
    check_restarts,
    check_start_order,
    check_stop_order,
)
from ._faults import Fault, FaultKind
from ._scripted import Scripted
from ._trace import Trace
from ._traced import TracedTree, open_traced_tree

__all__ = ["SupervisionStateMachine"]

class _Driver:
    """Owns the Trio thread; runs one step at a time in it."""

    def __init__(self, spec: Supervisor | DynamicSupervisor, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.clock = trio.testing.MockClock(autojump_threshold=math.inf)
        self.traced: TracedTree | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.finish: trio.Event | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._thread, name="supervision-state-machine", daemon=True)
        self.thread.start()
        self.ready.wait()
        if self.failure is not None:
            raise self.failure

    def _thread(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:
            self.failure = exc
            self.ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self.finish = trio.Event()
        self.clock.autojump_threshold = 0
        async with open_traced_tree(self.spec, seed=self.seed) as traced:
            self.traced = traced
            self.clock.autojump_threshold = math.inf
            self.ready.set()
            await self.finish.wait()
            self.clock.autojump_threshold = 0
        # If the tree failed on its own (its root gave up), stay up until close().
        await self.finish.wait()

    @property
    def running(self) -> bool:
        return self.traced is not None and not self.traced.stopped

    def step(self, fn: Callable[[Tree], Any]) -> Any:
        """Run ``fn(tree)`` (sync or async) in the Trio thread with time moving, then let the tree settle."""

        async def run() -> Any:
            assert self.traced is not None
            self.clock.autojump_threshold = 0
            try:
                result = fn(self.traced.tree)
                if isinstance(result, Awaitable):
                    result = await result
                await trio.testing.wait_all_tasks_blocked()
                return result
            finally:
                self.clock.autojump_threshold = math.inf

        assert self.token is not None
        return trio.from_thread.run(run, trio_token=self.token)

    def close(self) -> Trace:
        if self.token is not None and self.finish is not None and self.thread.is_alive():
            trio.from_thread.run_sync(self.finish.set, trio_token=self.token)
        self.thread.join(timeout=60)
        if self.failure is not None:
            raise self.failure
        assert self.traced is not None
        return self.traced.trace()


class SupervisionStateMachine(RuleBasedStateMachine):
    """A Hypothesis state machine over a running tree; subclass it with your tree.

    ::

        class MyTreeMachine(SupervisionStateMachine):
            spec = my_tree            # a Supervisor

        TestMyTree = MyTreeMachine.TestCase

    Rules: crash a running child (actor or supervisor), make an actor exit normally, cast a
    message (:meth:`message_for`; by default a numbered message, for trees of
    :class:`ScriptedActor`), start and terminate children of dynamic supervisors
    (:meth:`dynamic_child`), and let time pass. After every step the invariants that can be
    judged mid-run are checked (start order, stop order, restart semantics, intensity,
    messages); at teardown the tree is stopped and :func:`check_all` runs on the whole trace.
    """

    spec: ClassVar[Supervisor | DynamicSupervisor]
    seed: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.driver = _Driver(self.make_spec(), self.seed)
        self.dynamic_count = 0
        self.added: set[str] = set()  # paths of the children this machine added

    def make_spec(self) -> Supervisor | DynamicSupervisor:
        """The tree to run; defaults to the class attribute ``spec``."""
        return self.spec

    def message_for(self, path: str) -> Fault | None:
        """The message fault to apply to the actor at ``path``; None to send nothing."""
        return Fault(kind=FaultKind.MESSAGE, path=path)

    def dynamic_child(self, name: str) -> ChildSpec:
        """The spec of a child added to a dynamic supervisor; a :class:`ScriptedActor` by default."""
        return ChildSpec(name=name, factory=Scripted())

    # -- what is running -------------------------------------------------------------------

    def _nodes(self, kind: ChildKind | None = None) -> list[str]:
        def collect(tree: Tree) -> list[str]:
            return [
                n.path for n in tree.snapshot().walk()[1:]
                if n.state is ChildState.RUNNING and (kind is None or n.kind is kind)
            ]

        paths: list[str] = self.driver.step(collect)
        return paths

    # -- rules -----------------------------------------------------------------------------

    @precondition(lambda self: self.driver.running)
    @rule(data=st.data())
    def crash_a_child(self, data: st.DataObject) -> None:
        paths = self._nodes()
        if paths:
            path = data.draw(st.sampled_from(paths), label="crash")
            self.driver.step(lambda tree: tree.inject_crash(path))

    @precondition(lambda self: self.driver.running)
    @rule(data=st.data())
    def exit_an_actor(self, data: st.DataObject) -> None:
        paths = self._nodes(ChildKind.ACTOR)
        if paths:
            path = data.draw(st.sampled_from(paths), label="exit")
            self.driver.step(lambda tree: tree.inject_exit(path))

    @precondition(lambda self: self.driver.running)
    @rule(data=st.data())
    def send_a_message(self, data: st.DataObject) -> None:
        paths = self._nodes(ChildKind.ACTOR)
        if paths:
            fault = self.message_for(data.draw(st.sampled_from(paths), label="send to"))
            traced = self.driver.traced
            if fault is not None and traced is not None:
                self.driver.step(lambda tree: traced.apply(fault))

    @precondition(lambda self: self.driver.running)
    @rule(data=st.data())
    def start_a_dynamic_child(self, data: st.DataObject) -> None:
        sups = self._nodes(ChildKind.DYNAMIC_SUPERVISOR)
        if isinstance(self.driver.spec, DynamicSupervisor):
            sups.insert(0, self.driver.spec.name)
        if sups:
            path = data.draw(st.sampled_from(sups), label="add under")
            self.dynamic_count += 1
            spec = self.dynamic_child(f"d{self.dynamic_count}")

            async def start(tree: Tree) -> None:
                with contextlib.suppress(Exception):  # max_children, a failed start, a restarting parent
                    await tree.supervisor(path).start_child(spec)
                    self.added.add(f"{path}/{spec.name}")

            self.driver.step(start)

    @precondition(lambda self: self.driver.running)
    @rule(data=st.data())
    def terminate_a_dynamic_child(self, data: st.DataObject) -> None:
        children = [p for p in self._nodes() if p in self.added]
        if children:
            path = data.draw(st.sampled_from(children), label="terminate")
            parent, _, name = path.rpartition("/")

            async def terminate(tree: Tree) -> None:
                with contextlib.suppress(Exception):  # already gone with a restart of its parent
                    await tree.supervisor(parent).terminate_child(name)

            self.driver.step(terminate)

    @rule(seconds=st.sampled_from([0.1, 1.0, 5.0, 30.0]))
    def let_time_pass(self, seconds: float) -> None:
        """Let time pass (a no-op once the tree has failed: the only rule left then)."""
        if not self.driver.running:
            return

        async def wait(tree: Tree) -> None:
            await trio.sleep(seconds)

        self.driver.step(wait)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        traced = self.driver.traced
        if traced is None:
            return
        trace = self.driver.step(lambda tree: traced.trace()) if self.driver.running else traced.trace()
        for check in (check_start_order, check_stop_order, check_restarts, check_intensity, check_messages):
            check(trace)

    def teardown(self) -> None:
        check_all(self.driver.close())


