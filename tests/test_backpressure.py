"""Backpressure that lasts: a send waiting too long for room is reported, and so is a deadlock."""

from __future__ import annotations

import logging
import math

import attrs
import pytest
import trio
import trio.testing
from _probes import Log, Sleep, probe

from actors import Actor, handler
from supervisors import ChildSpec, Event, MailboxBlocked, Supervisor, current_tree, open_tree


@attrs.frozen
class Ping:
    hops: int


class Bouncer(Actor):
    """Answers every ping with three pings to its peer, through await cast."""

    def __init__(self, peer: str) -> None:
        self.peer = peer

    @handler
    async def ping(self, msg: Ping) -> None:
        peer = current_tree().ref(self.peer)
        for _ in range(3):
            await peer.cast(Ping(msg.hops + 1))


class Producer(Actor):
    """Casts ``n`` sleeps to the consumer when told to."""

    @handler
    async def produce(self, msg: Ping) -> None:
        consumer = current_tree().ref("consumer")
        for _ in range(msg.hops):
            await consumer.cast(Sleep(100.0))


def blocked(events: list[Event]) -> list[MailboxBlocked]:
    return [e for e in events if isinstance(e, MailboxBlocked)]


async def test_two_actors_casting_to_each_other_through_full_mailboxes_are_reported_as_a_deadlock(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutual backpressure: after the threshold each blocked actor is reported, with the cycle."""
    events: list[Event] = []
    spec = Supervisor(name="app", children=[
        ChildSpec(name="a", factory=lambda: Bouncer("b"), mailbox_size=4),
        ChildSpec(name="b", factory=lambda: Bouncer("a"), mailbox_size=4),
    ])
    async with open_tree(spec, listeners=[events.append]) as tree:
        await tree.ref("a").cast(Ping(0))
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        assert blocked(events) == []
        await trio.sleep(10.0)
        reports = blocked(events)
        assert sorted((e.sender, e.path) for e in reports) == [("app/a", "app/b"), ("app/b", "app/a")]
        for e in reports:
            assert e.time == pytest.approx(t0 + 5.0)
            assert (e.depth, e.capacity, e.sender_depth) == (4, 4, 4)
            assert e.cycle == (e.sender, e.path)
        with trio.move_on_after(1.0):  # the tree cannot stop them gracefully either
            await tree.stop()
    assert "deadlock: app/a" in caplog.text
    assert "app/a -> app/b -> app/a" in caplog.text


async def test_a_slow_consumer_is_reported_without_a_cycle(autojump_clock: trio.testing.MockClock) -> None:
    """An actor waiting on a busy consumer's full mailbox: one report naming both, no cycle."""
    events: list[Event] = []
    spec = Supervisor(name="app", children=[
        ChildSpec(name="consumer", factory=probe("consumer", Log()), mailbox_size=2, shutdown=0),
        ChildSpec(name="producer", factory=Producer, shutdown=0),
    ])
    async with open_tree(spec, listeners=[events.append]) as tree:
        await tree.ref("producer").cast(Ping(4))  # one handled, two queued, the fourth waits
        await trio.sleep(20.0)
    (report,) = blocked(events)
    assert (report.sender, report.path, report.cycle) == ("app/producer", "app/consumer", ())
    assert (report.depth, report.capacity, report.sender_depth) == (2, 2, 0)
    assert report.waited == pytest.approx(5.0)


async def test_a_blocked_sender_outside_the_tree_is_named_so(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A task that is not an actor, waiting on a full mailbox: sender None, logged as outside the tree."""
    events: list[Event] = []
    spec = Supervisor(name="app", children=[ChildSpec(name="c", factory=probe("c", Log()), mailbox_size=1)])
    async with open_tree(spec, listeners=[events.append], blocked_send_warning=2.0) as tree:
        ref = tree.ref("c")
        await ref.cast(Sleep(30.0))
        await trio.testing.wait_all_tasks_blocked()
        await ref.cast(Sleep(0.0))
        t0 = trio.current_time()
        await ref.cast(Sleep(0.0))  # waits 30 s for room; reported after 2 s
        assert trio.current_time() - t0 == pytest.approx(30.0)
    (report,) = blocked(events)
    assert (report.sender, report.sender_depth, report.path, report.cycle) == (None, None, "app/c", ())
    assert report.waited == pytest.approx(2.0)
    assert "a task outside the tree's actors has waited 2 s for room in the full mailbox of app/c (1/1)" in caplog.text


async def test_an_actor_casting_to_its_own_full_mailbox_is_a_cycle_of_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An actor waiting for room in its own mailbox can never proceed: reported as a cycle of itself."""

    class SelfFeeder(Actor):
        @handler
        async def ping(self, msg: Ping) -> None:
            for n in range(3):
                await self.ref.cast(Ping(n))

    events: list[Event] = []
    spec = Supervisor(name="app", children=[ChildSpec(name="s", factory=SelfFeeder, mailbox_size=2, shutdown=0)])
    async with open_tree(spec, listeners=[events.append]) as tree:
        await tree.ref("s").cast(Ping(0))
        await trio.sleep(6.0)
    (report,) = blocked(events)
    assert (report.sender, report.path, report.cycle) == ("app/s", "app/s", ("app/s",))


async def test_the_blocked_send_warning_can_be_turned_off(autojump_clock: trio.testing.MockClock) -> None:
    """blocked_send_warning=math.inf: a long wait for room is not reported; 0 is refused."""
    events: list[Event] = []
    spec = Supervisor(name="app", children=[ChildSpec(name="c", factory=probe("c", Log()), mailbox_size=1)])
    async with open_tree(spec, listeners=[events.append], blocked_send_warning=math.inf) as tree:
        ref = tree.ref("c")
        await ref.cast(Sleep(30.0))
        await trio.testing.wait_all_tasks_blocked()
        await ref.cast(Sleep(0.0))
        await ref.cast(Sleep(0.0))
    assert blocked(events) == []
    with pytest.raises(ValueError, match="'blocked_send_warning' must be > 0 seconds"):
        async with open_tree(spec, blocked_send_warning=0):
            pass


def test_mailbox_blocked_is_logged_at_warning() -> None:
    """The event is a warning on the supervisors logger (nothing hangs silently)."""
    from supervisors._events import log_event

    records: list[logging.LogRecord] = []
    handler_ = logging.Handler()
    handler_.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("supervisors")
    logger.addHandler(handler_)
    try:
        log_event(MailboxBlocked(path="app/b", time=0.0, depth=4, capacity=4, sender="app/a", sender_depth=4,
                                 waited=5.0, cycle=("app/a", "app/b")))
    finally:
        logger.removeHandler(handler_)
    assert [r.levelno for r in records] == [logging.WARNING]
