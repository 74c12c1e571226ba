"""Actor timers: send_after, send_every, and what becomes of the ticks of an incarnation that ends."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from _probes import Crash, Echo, Log, Tick, probe, tree_of

from actors import Actor, handler
from supervisors import ChildCrashed, ChildSpec, Event, MessagesDropped, Supervisor, open_tree


async def test_send_after_delivers_once_after_the_delay(autojump_clock: trio.testing.MockClock) -> None:
    """send_after delivers one message after the delay."""
    got: list[float] = []

    class Delayed(Actor):
        async def on_start(self) -> None:
            self.send_after(3.0, Tick())

        @handler
        async def tick(self, msg: Tick) -> None:
            got.append(trio.current_time())

    async with open_tree(tree_of(ChildSpec(name="d", factory=Delayed))):
        t0 = trio.current_time()
        await trio.sleep(10)
    assert got == [pytest.approx(t0 + 3.0)]


async def test_send_every_delivers_at_a_fixed_rate_until_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    """send_every ticks at start + k * interval; cancel() stops it."""
    got: list[float] = []

    class Periodic(Actor):
        async def on_start(self) -> None:
            self.timer = self.send_every(2.0, Tick())

        @handler
        async def tick(self, msg: Tick) -> None:
            got.append(trio.current_time())
            await trio.sleep(0.5)  # a slow handler does not make the timer drift
            if len(got) == 4:
                self.timer.cancel()

    async with open_tree(tree_of(ChildSpec(name="p", factory=Periodic))):
        t0 = trio.current_time()
        await trio.sleep(20)
    assert got == [pytest.approx(t0 + 2.0 * k) for k in (1, 2, 3, 4)]


async def test_timers_of_a_crashed_incarnation_are_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    """A timer belongs to its incarnation: after a crash the old one no longer fires."""
    ticks: list[int] = []
    incarnations: list[int] = []

    class Ticking(Actor):
        async def on_start(self) -> None:
            incarnations.append(len(incarnations))
            self.me = incarnations[-1]
            self.send_every(1.0, Tick())

        @handler
        async def tick(self, msg: Tick) -> None:
            ticks.append(self.me)
            if self.me == 0 and len(ticks) == 2:
                raise RuntimeError("crash after two ticks")

    async with open_tree(tree_of(ChildSpec(name="t", factory=Ticking))):
        await trio.sleep(5.5)
    assert ticks == [0, 0, 1, 1, 1]


async def test_timer_messages_queued_by_a_crashed_incarnation_do_not_reach_the_next_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Ticks still queued when an incarnation crashes are discarded with it; casts stay queued."""
    handled: list[tuple[int, float]] = []
    echoes: list[object] = []
    incarnations: list[int] = []

    class SlowTicker(Actor):
        async def on_start(self) -> None:
            self.me = len(incarnations)
            incarnations.append(self.me)
            self.send_every(1.0, Tick())

        @handler
        async def tick(self, msg: Tick) -> None:
            handled.append((self.me, trio.current_time()))
            if self.me == 0:
                await trio.sleep(3.5)  # ticks at t=2, 3, 4 queue up meanwhile
                raise RuntimeError("crash with three ticks queued")

        @handler
        def echo(self, msg: Echo) -> object:
            echoes.append((self.me, msg.value))
            return msg.value

    events: list[Event] = []
    async with open_tree(tree_of(ChildSpec(name="t", factory=SlowTicker))) as tree:
        tree.add_listener(events.append)
        await trio.sleep(1.5)
        await tree.ref("t").cast(Echo("queued before the crash"))
        await trio.sleep(5.0)  # crash at t=4.5; the new incarnation ticks at 5.5 and 6.5
    assert handled == [(0, 1.0), (1, 5.5), (1, 6.5)]
    assert echoes == [(1, "queued before the crash")]
    crash = next(i for i, e in enumerate(events) if isinstance(e, ChildCrashed))
    dropped = events[crash + 1]
    assert isinstance(dropped, MessagesDropped)
    assert (dropped.path, dropped.count) == ("app/t", 3)
    assert "timer messages of incarnation 1" in dropped.reason


async def test_timer_messages_still_queued_at_a_group_restart_go_with_the_stopped_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A sibling's crash restarts a busy ticker: its queued ticks are dropped, not handled later."""
    handled: list[tuple[int, float]] = []
    incarnations: list[int] = []

    class BusyTicker(Actor):
        async def on_start(self) -> None:
            self.me = len(incarnations)
            incarnations.append(self.me)
            if self.me == 0:
                self.send_every(1.0, Tick())

        @handler
        async def tick(self, msg: Tick) -> None:
            handled.append((self.me, trio.current_time()))
            await trio.sleep(2.5)  # slower than the timer: ticks queue up

    log = Log()
    spec = Supervisor(
        name="app", strategy="one_for_all",
        children=[ChildSpec(name="t", factory=BusyTicker), ChildSpec(name="p", factory=probe("p", log))],
    )
    events: list[Event] = []
    async with open_tree(spec) as tree:
        tree.add_listener(events.append)
        await trio.sleep(3.2)  # tick 1 handled from t=1; ticks at 2 and 3 queued
        await tree.ref("p").cast(Crash())
        await trio.sleep(5.0)
    assert handled == [(0, 1.0)]  # the second incarnation started no timer and got no tick
    dropped = [e for e in events if isinstance(e, MessagesDropped)]
    assert [(e.path, e.count) for e in dropped] == [("app/t", 2)]
