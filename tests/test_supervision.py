"""The supervision semantics of docs/semantics.md, one behaviour per test."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from _probes import Crash, Echo, Exit, Log, Sleep, probe

from supervisors import (
    Backoff,
    ChildCrashed,
    ChildRestarting,
    ChildSpec,
    ChildState,
    ChildStopped,
    DynamicSupervisor,
    Event,
    GaveUp,
    NotRunning,
    Restart,
    StartFailed,
    Strategy,
    SupervisionError,
    Supervisor,
    SupervisorGaveUp,
    open_tree,
)


def children(log: Log, *names: str, **kwargs: object) -> list[ChildSpec]:
    return [ChildSpec(name=n, factory=probe(n, log), **kwargs) for n in names]  # type: ignore[arg-type]


async def crash(tree: object, path: str) -> None:
    await tree.ref(path).cast(Crash())  # type: ignore[attr-defined]
    await trio.testing.wait_all_tasks_blocked()


async def test_children_start_in_list_order_and_stop_in_reverse(autojump_clock: trio.testing.MockClock) -> None:
    """Start is left to right, each started before the next; stop is right to left."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=children(log, "a", "b", "c"))):
        assert log == ["start a", "start b", "start c"]
    assert log.of("stop") == ["c", "b", "a"]


async def test_nested_subtree_stops_whole_before_previous_sibling(autojump_clock: trio.testing.MockClock) -> None:
    """A child's whole subtree is stopped before its previous sibling is asked to stop."""
    log = Log()
    spec = Supervisor(
        name="app",
        children=[
            *children(log, "a"),
            Supervisor(name="sub", children=children(log, "s1", "s2")),
            *children(log, "z"),
        ],
    )
    async with open_tree(spec):
        assert log.of("start") == ["a", "s1", "s2", "z"]
    assert log.of("stop") == ["z", "s2", "s1", "a"]


async def test_one_for_one_restarts_only_the_failed_child(autojump_clock: trio.testing.MockClock) -> None:
    """ONE_FOR_ONE restarts the crashed child and touches no sibling."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=children(log, "a", "b", "c"))) as tree:
        log.clear()
        await crash(tree, "b")
        assert log == ["stop b", "start b"]
        assert tree.snapshot().find("b").restarts == 1  # type: ignore[union-attr]


async def test_one_for_all_stops_others_in_reverse_then_starts_all_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """ONE_FOR_ALL: the others stop in reverse order, then all start in list order."""
    log = Log()
    spec = Supervisor(name="app", strategy=Strategy.ONE_FOR_ALL, children=children(log, "a", "b", "c", "d"))
    async with open_tree(spec) as tree:
        log.clear()
        await crash(tree, "b")
        # on_stop of b runs after its crash; then d, c, a stop; then all start in order.
        assert log == ["stop b", "stop d", "stop c", "stop a", "start a", "start b", "start c", "start d"]


async def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """REST_FOR_ONE: children after the failed one stop in reverse, then restart in order."""
    log = Log()
    spec = Supervisor(name="app", strategy=Strategy.REST_FOR_ONE, children=children(log, "a", "b", "c", "d"))
    async with open_tree(spec) as tree:
        log.clear()
        await crash(tree, "b")
        assert log == ["stop b", "stop d", "stop c", "start b", "start c", "start d"]


async def test_restarted_child_keeps_its_place_in_stop_order(autojump_clock: trio.testing.MockClock) -> None:
    """Stop order is list order reversed, whatever was restarted when (as in OTP)."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=children(log, "a", "b", "c"))) as tree:
        await crash(tree, "b")
        log.clear()
    assert log == ["stop c", "stop b", "stop a"]


async def test_three_restarts_survive_and_the_fourth_gives_up(autojump_clock: trio.testing.MockClock) -> None:
    """Intensity counts the restart that would exceed it: max_restarts=3 allows three."""
    log = Log()
    spec = Supervisor(name="app", max_restarts=3, within=5.0, children=children(log, "a", "b"))
    events: list[Event] = []
    with pytest.raises(SupervisorGaveUp) as info:
        async with open_tree(spec) as tree:
            tree.add_listener(events.append)
            for _ in range(3):
                await crash(tree, "b")
            assert tree.snapshot().find("b").restarts == 3  # type: ignore[union-attr]
            log.clear()
            await crash(tree, "b")
            await trio.sleep_forever()  # cancelled when the root gives up
    assert "more than 3 restart(s) within 5 s" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)
    # The failed child is not stopped again; the others stop in reverse order.
    assert log == ["stop b", "stop a"]
    assert [type(e).__name__ for e in events if isinstance(e, GaveUp | ChildRestarting)][-1] == "GaveUp"


async def test_zero_max_restarts_gives_up_on_the_first_crash(autojump_clock: trio.testing.MockClock) -> None:
    """max_restarts=0: the first exit that needs a restart makes the supervisor give up."""
    log = Log()
    with pytest.raises(SupervisorGaveUp):
        async with open_tree(Supervisor(name="app", max_restarts=0, children=children(log, "a"))) as tree:
            await crash(tree, "a")
            await trio.sleep_forever()
    assert log.of("start") == ["a"]


async def test_restarts_outside_the_window_do_not_count(autojump_clock: trio.testing.MockClock) -> None:
    """The window slides: restarts older than `within` seconds are forgotten."""
    log = Log()
    spec = Supervisor(name="app", max_restarts=1, within=5.0, children=children(log, "a"))
    async with open_tree(spec) as tree:
        for _ in range(5):
            await crash(tree, "a")
            await trio.sleep(5.001)
        assert tree.snapshot().find("a").restarts == 5  # type: ignore[union-attr]


async def test_restart_exactly_at_the_window_edge_still_counts(autojump_clock: trio.testing.MockClock) -> None:
    """A restart exactly `within` seconds ago is still in the window (edge included, as OTP)."""
    log = Log()
    spec = Supervisor(name="app", max_restarts=1, within=5.0, children=children(log, "a"))
    with pytest.raises(SupervisorGaveUp):
        async with open_tree(spec) as tree:
            await crash(tree, "a")
            await trio.sleep(5.0)
            await crash(tree, "a")
            await trio.sleep_forever()


async def test_transient_child_returning_normally_is_not_restarted_and_does_not_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A transient child's normal exit leaves it down and spends no intensity."""
    log = Log()
    spec = Supervisor(name="app", max_restarts=0, children=children(log, "a", restart=Restart.TRANSIENT))
    async with open_tree(spec) as tree:
        await tree.ref("a").cast(Exit())
        await trio.testing.wait_all_tasks_blocked()
        assert tree.snapshot().find("a").state is ChildState.DOWN  # type: ignore[union-attr]
    assert log == ["start a", "stop a"]


async def test_transient_child_that_crashes_is_restarted(autojump_clock: trio.testing.MockClock) -> None:
    """A transient child is restarted after a crash."""
    log = Log()
    spec = Supervisor(name="app", children=children(log, "a", restart=Restart.TRANSIENT))
    async with open_tree(spec) as tree:
        await crash(tree, "a")
        assert log.of("start") == ["a", "a"]


async def test_down_transient_child_is_started_again_by_a_group_restart(autojump_clock: trio.testing.MockClock) -> None:
    """ONE_FOR_ALL starts again a transient child that was down after a normal exit (OTP)."""
    log = Log()
    spec = Supervisor(
        name="app",
        strategy=Strategy.ONE_FOR_ALL,
        children=[
            *children(log, "t", restart=Restart.TRANSIENT),
            *children(log, "p"),
        ],
    )
    async with open_tree(spec) as tree:
        await tree.ref("t").cast(Exit())
        await trio.testing.wait_all_tasks_blocked()
        log.clear()
        await crash(tree, "p")
        assert log == ["stop p", "start t", "start p"]
        assert await tree.ref("t").call(Echo(1)) == 1


async def test_permanent_child_returning_normally_is_restarted_and_counts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A permanent child that returns normally is restarted like a crash, and counts."""
    log = Log()
    spec = Supervisor(name="app", max_restarts=1, children=children(log, "a"))
    with pytest.raises(SupervisorGaveUp):
        async with open_tree(spec) as tree:
            await tree.ref("a").cast(Exit())
            await trio.testing.wait_all_tasks_blocked()
            assert log.of("start") == ["a", "a"]
            await tree.ref("a").cast(Exit())
            await trio.sleep_forever()


async def test_temporary_child_is_never_restarted_and_is_removed(autojump_clock: trio.testing.MockClock) -> None:
    """A temporary child's crash restarts nothing and spends no intensity; it is removed."""
    log = Log()
    spec = Supervisor(
        name="app",
        strategy=Strategy.ONE_FOR_ALL,
        max_restarts=0,
        children=[
            *children(log, "a"),
            *children(log, "tmp", restart=Restart.TEMPORARY),
        ],
    )
    async with open_tree(spec) as tree:
        await crash(tree, "tmp")
        assert [c.name for c in tree.snapshot().children] == ["a"]
        assert log.of("start") == ["a", "tmp"]


async def test_group_restart_stops_temporary_siblings_for_good(autojump_clock: trio.testing.MockClock) -> None:
    """A group restart stops temporary siblings and does not start them again."""
    log = Log()
    spec = Supervisor(
        name="app",
        strategy=Strategy.ONE_FOR_ALL,
        children=[
            *children(log, "a"),
            *children(log, "tmp", restart=Restart.TEMPORARY),
            *children(log, "c"),
        ],
    )
    async with open_tree(spec) as tree:
        log.clear()
        await crash(tree, "a")
        assert log == ["stop a", "stop c", "stop tmp", "start a", "start c"]
        assert [c.name for c in tree.snapshot().children] == ["a", "c"]


async def test_start_failure_during_tree_start_stops_started_children_in_reverse(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A child that fails to start: those started are stopped in reverse; the start fails."""
    log = Log()
    spec = Supervisor(
        name="app",
        children=[
            *children(log, "a", "b"),
            ChildSpec(name="bad", factory=probe("bad", log, fail_start=lambda: True)),
            *children(log, "never"),
        ],
    )
    with pytest.raises(StartFailed) as info:
        async with open_tree(spec):
            pytest.fail("the body must not run")
    assert log == ["start a", "start b", "startfail bad", "stop b", "stop a"]
    assert "app/bad" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_start_failure_during_restart_is_retried_and_each_attempt_counts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failed start during a restart is retried at once; every attempt counts (OTP)."""
    log = Log()
    failures = iter([False, True, True, False])
    spec = Supervisor(
        name="app",
        max_restarts=3,
        children=[
            ChildSpec(name="a", factory=probe("a", log, fail_start=lambda: next(failures, False))),
        ],
    )
    async with open_tree(spec) as tree:
        log.clear()
        await crash(tree, "a")
        assert log == ["stop a", "startfail a", "startfail a", "start a"]
    failures = iter([False, True, True, True])
    log.clear()
    with pytest.raises(SupervisorGaveUp):
        spec2 = Supervisor(
            name="app",
            max_restarts=2,
            children=[
                ChildSpec(name="a", factory=probe("a", log, fail_start=lambda: next(failures, False))),
            ],
        )
        async with open_tree(spec2) as tree:
            await crash(tree, "a")
            await trio.sleep_forever()


async def test_one_for_all_retry_restarts_the_whole_group(autojump_clock: trio.testing.MockClock) -> None:
    """ONE_FOR_ALL: after a failed start, the siblings just started stop again and all retry."""
    log = Log()
    failures = iter([False, True])  # first start ok, first restart fails, then ok
    spec = Supervisor(
        name="app",
        strategy=Strategy.ONE_FOR_ALL,
        children=[
            *children(log, "a"),
            ChildSpec(name="b", factory=probe("b", log, fail_start=lambda: next(failures, False))),
            *children(log, "c"),
        ],
    )
    async with open_tree(spec) as tree:
        log.clear()
        await crash(tree, "c")
        assert log == [
            "stop c",
            "stop b",
            "stop a",
            "start a",
            "startfail b",
            "stop a",
            "start a",
            "start b",
            "start c",
        ]


async def test_rest_for_one_retry_starts_from_the_failed_child(autojump_clock: trio.testing.MockClock) -> None:
    """REST_FOR_ONE: after a failed start, it retries from the child that failed."""
    log = Log()
    failures = iter([False, True])
    spec = Supervisor(
        name="app",
        strategy=Strategy.REST_FOR_ONE,
        children=[
            *children(log, "a", "b"),
            ChildSpec(name="c", factory=probe("c", log, fail_start=lambda: next(failures, False))),
            *children(log, "d"),
        ],
    )
    async with open_tree(spec) as tree:
        log.clear()
        await crash(tree, "b")
        assert log == ["stop b", "stop d", "stop c", "start b", "startfail c", "start c", "start d"]


async def test_nested_supervisor_that_gives_up_escalates_as_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    """A sub-supervisor that gives up crashes in its parent, which restarts it fresh."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(
        name="app",
        children=[
            *children(log, "a"),
            Supervisor(name="sub", max_restarts=0, children=children(log, "s1", "s2")),
        ],
    )
    async with open_tree(spec) as tree:
        tree.add_listener(events.append)
        log.clear()
        await crash(tree, "sub/s1")
        assert log == ["stop s1", "stop s2", "start s1", "start s2"]
        crashed = [e for e in events if isinstance(e, ChildCrashed)]
        assert [e.path for e in crashed] == ["app/sub/s1", "app/sub"]
        assert isinstance(crashed[1].error, SupervisorGaveUp)
        # The restarted sub-supervisor counts from zero again.
        await crash(tree, "sub/s2")
        assert tree.snapshot().find("sub").restarts == 2  # type: ignore[union-attr]


async def test_backoff_delays_restarts_exponentially_with_a_cap(autojump_clock: trio.testing.MockClock) -> None:
    """With Backoff, the n-th restart in the window waits initial * factor**(n-1), capped."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(
        name="app",
        max_restarts=100,
        within=1000.0,
        backoff=Backoff(initial=1.0, factor=2.0, max=5.0, jitter=0.0),
        children=children(log, "a"),
    )
    async with open_tree(spec) as tree:
        tree.add_listener(events.append)
        for _ in range(5):
            t0 = trio.current_time()
            await crash(tree, "a")
            await tree.ref("a").call(Echo(None), timeout=None)
            assert trio.current_time() > t0
    delays = [e.delay for e in events if isinstance(e, ChildRestarting)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_backoff_jitter_is_reproducible_with_a_seed(autojump_clock: trio.testing.MockClock) -> None:
    """The same seed gives the same jittered delays."""

    async def delays(seed: int) -> list[float]:
        log = Log()
        events: list[Event] = []
        spec = Supervisor(
            name="app",
            max_restarts=100,
            within=1000.0,
            backoff=Backoff(initial=1.0, jitter=0.5),
            children=children(log, "a"),
        )
        async with open_tree(spec, seed=seed) as tree:
            tree.add_listener(events.append)
            for _ in range(3):
                await crash(tree, "a")
                await trio.sleep(10)
        return [e.delay for e in events if isinstance(e, ChildRestarting)]

    first, second = await delays(7), await delays(7)
    assert first == second
    assert len(set(first)) == 3


async def test_stop_during_backoff_does_not_restart(autojump_clock: trio.testing.MockClock) -> None:
    """A stop request during the backoff delay cancels the pending restart."""
    log = Log()
    spec = Supervisor(name="app", backoff=Backoff(initial=100.0, jitter=0.0), children=children(log, "a", "b"))
    async with open_tree(spec) as tree:
        await crash(tree, "b")
        t0 = trio.current_time()
        log.clear()
    assert trio.current_time() - t0 < 100.0
    assert log == ["stop a"]


async def test_dynamic_supervisor_adds_and_removes_children(autojump_clock: trio.testing.MockClock) -> None:
    """start_child adds and starts; terminate_child stops and removes; stop is reverse order."""
    log = Log()
    spec = Supervisor(name="app", children=[DynamicSupervisor(name="pool", max_children=2)])
    async with open_tree(spec) as tree:
        pool = tree.supervisor("pool")
        ref1 = await pool.start_child(ChildSpec(name="w1", factory=probe("w1", log)))
        await pool.start_child(ChildSpec(name="w2", factory=probe("w2", log)))
        with pytest.raises(SupervisionError, match="max_children=2"):
            await pool.start_child(ChildSpec(name="w3", factory=probe("w3", log)))
        with pytest.raises(ValueError, match="already exists"):
            await pool.start_child(ChildSpec(name="w2", factory=probe("w2", log)))
        assert await ref1.call(Echo("hi")) == "hi"  # type: ignore[union-attr]
        await pool.terminate_child("w1")
        assert [c.name for c in pool.children()] == ["w2"]
        await pool.start_child(ChildSpec(name="w4", factory=probe("w4", log)))
        log.clear()
    assert log == ["stop w4", "stop w2"]


async def test_dynamic_child_that_fails_to_start_is_not_added(autojump_clock: trio.testing.MockClock) -> None:
    """start_child raises StartFailed and leaves no trace of the child."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=[DynamicSupervisor(name="pool")])) as tree:
        pool = tree.supervisor("pool")
        with pytest.raises(StartFailed):
            await pool.start_child(ChildSpec(name="bad", factory=probe("bad", log, fail_start=lambda: True)))
        assert pool.children() == ()


async def test_dynamic_transient_child_is_removed_after_normal_exit(autojump_clock: trio.testing.MockClock) -> None:
    """A dynamic child that stops for good is removed from its supervisor."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=[DynamicSupervisor(name="pool")])) as tree:
        pool = tree.supervisor("pool")
        ref = await pool.start_child(ChildSpec(name="t", factory=probe("t", log), restart=Restart.TRANSIENT))
        await ref.cast(Exit())  # type: ignore[union-attr]
        await trio.testing.wait_all_tasks_blocked()
        assert pool.children() == ()


async def test_changing_children_of_a_stopped_supervisor_raises(autojump_clock: trio.testing.MockClock) -> None:
    """start_child on a supervisor that is no longer running raises NotRunning."""
    async with open_tree(Supervisor(name="app", children=[DynamicSupervisor(name="pool")])) as tree:
        pool = tree.supervisor("pool")
    with pytest.raises(NotRunning):
        await pool.start_child(ChildSpec(name="x", factory=probe("x", Log())))


async def test_start_child_is_a_checkpoint_whether_it_starts_or_refuses(autojump_clock: trio.testing.MockClock) -> None:
    """start_child checks for cancellation and yields both when it starts the child and when it refuses it."""
    async with open_tree(Supervisor(name="app", children=[DynamicSupervisor(name="pool")])) as tree:
        pool = tree.supervisor("pool")
        with trio.testing.assert_checkpoints():
            await pool.start_child(ChildSpec(name="w", factory=probe("w", Log())))
        with trio.testing.assert_checkpoints(), pytest.raises(ValueError, match="already exists"):
            await pool.start_child(ChildSpec(name="w", factory=probe("w", Log())))


async def test_cancelled_start_child_adds_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """A start_child whose caller is cancelled raises Cancelled before the child is added or built."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=[DynamicSupervisor(name="pool")])) as tree:
        pool = tree.supervisor("pool")
        with trio.CancelScope() as scope:
            scope.cancel()
            await pool.start_child(ChildSpec(name="w", factory=probe("w", log)))
        assert scope.cancelled_caught
        assert pool.children() == ()
    assert log == []


async def test_no_task_of_the_tree_is_left_after_stop(autojump_clock: trio.testing.MockClock) -> None:
    """After open_tree exits, every task the tree spawned has exited (structured concurrency)."""

    class Tasks(trio.abc.Instrument):
        def __init__(self) -> None:
            self.live: set[trio.lowlevel.Task] = set()
            self.spawned = 0

        def task_spawned(self, task: trio.lowlevel.Task) -> None:
            self.live.add(task)
            self.spawned += 1

        def task_exited(self, task: trio.lowlevel.Task) -> None:
            self.live.discard(task)

    log = Log()
    tasks = Tasks()
    trio.lowlevel.add_instrument(tasks)
    spec = Supervisor(
        name="app",
        children=[
            *children(log, "a", "b"),
            Supervisor(name="s", children=children(log, "c")),
        ],
    )
    async with open_tree(spec) as tree:
        await crash(tree, "s/c")
        assert len(tasks.live) >= 5
    trio.lowlevel.remove_instrument(tasks)
    assert tasks.spawned >= 6
    assert tasks.live == set()


async def test_snapshot_shows_state_restarts_last_error_and_mailbox_depth(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The snapshot has one node per child with its state, restarts, last error and depth."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=children(log, "a", "b"))) as tree:
        await crash(tree, "a")
        await tree.ref("b").cast(Sleep(10))
        await tree.ref("b").cast(Echo(1))
        await trio.testing.wait_all_tasks_blocked()
        snap = tree.snapshot()
        a, b = snap.children
        assert (a.state, a.restarts, a.last_error) == (ChildState.RUNNING, 1, "RuntimeError('boom')")
        assert (b.state, b.restarts, b.last_error, b.mailbox_depth) == (ChildState.RUNNING, 0, None, 1)
        assert [n.path for n in snap.walk()] == ["app", "app/a", "app/b"]


async def test_crash_while_stopping_is_logged_and_reported_without_restart(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A child whose on_stop raises during a stop: error logged, ChildStopped(error=...), no restart."""
    from actors import Actor

    class BadStop(Actor):
        async def on_stop(self) -> None:
            raise OSError("disk gone")

    events: list[Event] = []
    async with open_tree(Supervisor(name="app", children=[ChildSpec(name="b", factory=BadStop)])) as tree:
        tree.add_listener(events.append)
    stopped = [e for e in events if isinstance(e, ChildStopped)]
    assert isinstance(stopped[0].error, OSError)
    assert not [e for e in events if isinstance(e, ChildRestarting)]
    assert "child app/b raised while stopping" in caplog.text


async def test_children_crashing_at_once_under_one_for_all_are_each_reported_as_crashed(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every child that crashed before the group restart stopped it gets its own ChildCrashed and crash log line."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(name="app", strategy=Strategy.ONE_FOR_ALL, children=children(log, "a", "b", "c"))
    async with open_tree(spec, listeners=[events.append]) as tree:
        for name in ("a", "b", "c"):
            tree.ref(name).cast_nowait(Crash(f"{name} failed"))
        await trio.testing.wait_all_tasks_blocked()
        assert [n.state for n in tree.snapshot().children] == [ChildState.RUNNING] * 3
    crashed = [e for e in events if isinstance(e, ChildCrashed)]
    assert sorted((e.path, str(e.error), e.message) for e in crashed) == [
        (f"app/{n}", f"{n} failed", Crash(f"{n} failed")) for n in ("a", "b", "c")
    ]
    assert not [e for e in events if isinstance(e, ChildStopped) and e.error is not None]
    restarting = [e for e in events if isinstance(e, ChildRestarting)]
    assert [e.path for e in restarting] == ["app/a", "app/b", "app/c"]  # one decision, counted once
    assert {e.restarts for e in restarting} == {1}
    assert "raised while stopping" not in caplog.text
    assert sorted(n for n in ("a", "b", "c") if f"child app/{n} crashed while handling Crash" in caplog.text) == [
        "a", "b", "c"
    ]


async def test_sibling_raising_in_on_stop_during_a_group_restart_is_reported_as_raising_while_stopping(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A sibling stopped by a ONE_FOR_ALL restart whose on_stop raises: ChildStopped(error=...), not a crash."""
    from actors import Actor

    class BadStop(Actor):
        async def on_stop(self) -> None:
            raise OSError("disk gone")

    log = Log()
    events: list[Event] = []
    spec = Supervisor(name="app", strategy=Strategy.ONE_FOR_ALL,
                      children=[*children(log, "a"), ChildSpec(name="b", factory=BadStop)])
    async with open_tree(spec, listeners=[events.append]) as tree:
        await crash(tree, "a")
        assert [e.path for e in events if isinstance(e, ChildCrashed)] == ["app/a"]
        stopped = [e for e in events if isinstance(e, ChildStopped) and e.path == "app/b"]
        assert [type(e.error) for e in stopped] == [OSError]
        assert "child app/b raised while stopping" in caplog.text
        assert "child app/b crashed" not in caplog.text


async def test_static_supervisor_accepts_start_child_appended_last(autojump_clock: trio.testing.MockClock) -> None:
    """start_child on a static supervisor appends the child; it stops first."""
    log = Log()
    async with open_tree(Supervisor(name="app", children=children(log, "a"))) as tree:
        await tree.supervisor().start_child(ChildSpec(name="b", factory=probe("b", log)))
        assert [c.name for c in tree.snapshot().children] == ["a", "b"]
    assert log.of("stop") == ["b", "a"]


async def test_down_transient_child_refuses_messages_until_started_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A transient child that exited normally is down: sends raise ActorStopped."""
    from actors import ActorStopped

    log = Log()
    spec = Supervisor(name="app", children=children(log, "t", restart=Restart.TRANSIENT))
    async with open_tree(spec) as tree:
        await tree.ref("t").cast(Exit())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ActorStopped, match="transient child exited normally"):
            await tree.ref("t").call(Echo(1))


async def test_restarted_dynamic_supervisor_starts_empty(autojump_clock: trio.testing.MockClock) -> None:
    """When a dynamic supervisor restarts, its former children are gone and their refs refuse."""
    from actors import ActorStopped

    log = Log()
    spec = Supervisor(
        name="app", strategy=Strategy.ONE_FOR_ALL, children=[*children(log, "a"), DynamicSupervisor(name="pool")]
    )
    async with open_tree(spec) as tree:
        ref = await tree.supervisor("pool").start_child(ChildSpec(name="w", factory=probe("w", log)))
        await crash(tree, "a")
        assert tree.supervisor("pool").children() == ()
        with pytest.raises(ActorStopped):
            await ref.cast(Echo(1))  # type: ignore[union-attr]


async def test_injected_crash_of_a_supervisor_stops_its_children_and_escalates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """inject_crash on a sub-supervisor: it stops its children in reverse, crashes, restarts."""
    from supervisors import InjectedFault

    log = Log()
    events: list[Event] = []
    spec = Supervisor(name="app", children=[Supervisor(name="sub", children=children(log, "x", "y"))])
    async with open_tree(spec) as tree:
        tree.add_listener(events.append)
        log.clear()
        tree.inject_crash("sub")
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["stop y", "stop x", "start x", "start y"]
    crashed = [e for e in events if isinstance(e, ChildCrashed)]
    assert [(e.path, type(e.error)) for e in crashed] == [("app/sub", InjectedFault)]


async def test_child_added_to_a_static_supervisor_is_gone_after_it_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A start_child addition does not survive its supervisor's restart; its ref refuses messages."""
    from actors import ActorStopped

    log = Log()
    spec = Supervisor(name="app", children=[Supervisor(name="sub", children=children(log, "x"))])
    async with open_tree(spec) as tree:
        ref = await tree.supervisor("sub").start_child(ChildSpec(name="extra", factory=probe("extra", log)))
        tree.inject_crash("sub")
        await trio.testing.wait_all_tasks_blocked()
        assert [c.name for c in tree.snapshot().find("sub").children] == ["x"]  # type: ignore[union-attr]
        with pytest.raises(ActorStopped):
            await ref.call(Echo(1))  # type: ignore[union-attr]


