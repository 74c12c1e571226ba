"""Shutdown specs: the grace of each child, 0 (brutal kill) and unbounded, and how each stop is
reported (graceful, grace expired, killed, forced), for actors and background services alike."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from _probes import Log, Sleep, probe

from actors import BackgroundService
from supervisors import ChildSpec, ChildStopped, Event, Supervisor, open_tree


async def test_child_overrunning_its_grace_is_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    """After `shutdown` seconds the child is cancelled; the stop event says so."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(
        name="app",
        children=[
            ChildSpec(name="slow", factory=probe("slow", log, stop_takes=60.0), shutdown=2.0),
        ],
    )
    async with open_tree(spec) as tree:
        tree.add_listener(events.append)
        t0 = trio.current_time()
    assert trio.current_time() - t0 == pytest.approx(2.0)
    assert "stop slow" not in log
    stopped = [e for e in events if isinstance(e, ChildStopped)]
    assert stopped[0].cancelled


async def test_grace_is_waited_for_a_child_that_stops_in_time(autojump_clock: trio.testing.MockClock) -> None:
    """A child that finishes on_stop within its grace is not cancelled."""
    log = Log()
    spec = Supervisor(
        name="app",
        children=[
            ChildSpec(name="slow", factory=probe("slow", log, stop_takes=3.0), shutdown=5.0),
        ],
    )
    async with open_tree(spec):
        t0 = trio.current_time()
    assert trio.current_time() - t0 == pytest.approx(3.0)
    assert log.of("stop") == ["slow"]


async def test_zero_shutdown_cancels_at_once_without_on_stop(autojump_clock: trio.testing.MockClock) -> None:
    """shutdown=0 cancels the child immediately; on_stop is not called (brutal_kill)."""
    log = Log()
    spec = Supervisor(name="app", children=[ChildSpec(name="a", factory=probe("a", log), shutdown=0)])
    async with open_tree(spec) as tree:
        await tree.ref("a").cast(Sleep(math.inf))
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
    assert trio.current_time() == t0
    assert log == ["start a"]


async def test_infinite_shutdown_waits_as_long_as_it_takes(autojump_clock: trio.testing.MockClock) -> None:
    """shutdown=math.inf waits for the child however long it takes."""
    log = Log()
    spec = Supervisor(
        name="app",
        children=[
            ChildSpec(name="a", factory=probe("a", log, stop_takes=1000.0), shutdown=math.inf),
        ],
    )
    async with open_tree(spec):
        t0 = trio.current_time()
    assert trio.current_time() - t0 == pytest.approx(1000.0)
    assert log.of("stop") == ["a"]


class _SlowStopService(BackgroundService):
    """A background service whose on_stop takes ``stop_takes`` seconds and is logged."""

    def __init__(self, name: str, log: Log, stop_takes: float) -> None:
        self.name = name
        self.log = log
        self.stop_takes = stop_takes

    async def execute(self) -> None:
        await trio.sleep_forever()

    async def on_stop(self) -> None:
        await trio.sleep(self.stop_takes)
        self.log.append(f"stop {self.name}")


def _child(kind: str, name: str, log: Log, *, stop_takes: float, shutdown: float) -> ChildSpec:
    if kind == "actor":
        return ChildSpec(name=name, factory=probe(name, log, stop_takes=stop_takes), shutdown=shutdown)
    return ChildSpec(name=name, factory=lambda: _SlowStopService(name, log, stop_takes), shutdown=shutdown)


KINDS = ["actor", "background_service"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stop_with_shutdown_0_is_reported_as_a_brutal_kill(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    """An idle child stopped with a grace of 0: on_stop does not run and ChildStopped says it was killed."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(name="app", children=[_child(kind, "k", log, stop_takes=0.0, shutdown=0)])
    async with open_tree(spec, listeners=[events.append]):
        await trio.testing.wait_all_tasks_blocked()
    stopped = [e for e in events if isinstance(e, ChildStopped)]
    assert [(e.cancelled, e.how) for e in stopped] == [(True, "brutal_kill")]
    assert "stop k" not in log


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stop_that_overruns_its_grace_is_reported_as_grace_expired(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    """on_stop still running when the grace ends: cancelled, and ChildStopped says so."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(name="app", children=[_child(kind, "k", log, stop_takes=60.0, shutdown=2.0)])
    async with open_tree(spec, listeners=[events.append]):
        pass
    stopped = [e for e in events if isinstance(e, ChildStopped)]
    assert [(e.cancelled, e.how, e.grace) for e in stopped] == [(True, "grace_expired", 2.0)]
    assert "stop k" not in log


async def test_a_stop_that_overruns_its_grace_is_logged_naming_the_child_and_what_to_change(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning of an expired grace names the child, the grace, and says what to do about it."""
    spec = Supervisor(name="app", children=[_child(KINDS[0], "k", Log(), stop_takes=60.0, shutdown=2.0)])
    async with open_tree(spec):
        pass
    assert "child app/k did not stop within its shutdown grace of 2 s and was cancelled; make its on_stop (or the " \
        "handler in progress) finish sooner, or raise its shutdown= grace" in caplog.text


@pytest.mark.parametrize("kind", KINDS)
async def test_a_tree_cancelled_during_its_graceful_stop_reports_each_child_as_forced(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    """A cancel scope fires mid-stop: the stopping child and those not yet asked are reported killed."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(
        name="app",
        children=[
            _child(kind, "first", log, stop_takes=0.0, shutdown=5.0),
            _child(kind, "last", log, stop_takes=60.0, shutdown=30.0),
        ],
    )
    with trio.move_on_after(10.0) as outer:
        async with open_tree(spec, listeners=[events.append]) as tree:
            await trio.sleep(8.0)
            tree.request_stop()  # "last" stops first and is still in on_stop when the scope fires
    assert outer.cancelled_caught
    stopped = [(e.path, e.cancelled, e.how) for e in events if isinstance(e, ChildStopped)]
    assert stopped == [("app/last", True, "forced"), ("app/first", True, "forced")]
    assert log.of("stop") == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stop_that_completes_within_its_grace_is_reported_graceful(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    """on_stop finishing within the grace: ChildStopped(cancelled=False, how="graceful")."""
    log = Log()
    events: list[Event] = []
    spec = Supervisor(name="app", children=[_child(kind, "k", log, stop_takes=1.0, shutdown=2.0)])
    async with open_tree(spec, listeners=[events.append]):
        pass
    stopped = [e for e in events if isinstance(e, ChildStopped)]
    assert [(e.cancelled, e.how) for e in stopped] == [(False, "graceful")]
    assert log.of("stop") == ["k"]
