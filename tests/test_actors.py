"""Actors: messages, cast/call, errors at the call site, lifecycle hooks (timers: test_timers.py)."""

from __future__ import annotations

import math
from typing import Literal, Optional, Union

import attrs
import pytest
import trio
import trio.testing
from _probes import Crash, Echo, Exit, Log, Probe, Sleep, Tick, Ticker, probe, tree_of

from actors import (
    Actor,
    ActorStopped,
    BackgroundService,
    CallFailed,
    CallTimeout,
    MailboxFull,
    NoHandler,
    Request,
    handler,
)
from supervisors import ChildCrashed, ChildSpec, Event, Restart, StartFailed, Supervisor, open_tree


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Total(Request[int]):
    pass


@attrs.frozen
class Ping:
    hops: int


class Counter(Actor):
    def __init__(self) -> None:
        self.total = 0
        self.order: list[int] = []

    @handler
    async def add(self, msg: Add) -> None:
        self.total += msg.n
        self.order.append(msg.n)

    @handler
    def get(self, msg: Total) -> int:  # a plain def handler
        return self.total


class Base:
    pass


@attrs.frozen
class Derived(Base):
    pass


class Catcher(Actor):
    @handler
    def base(self, msg: Base) -> str:
        return "base"


async def test_casts_are_handled_one_at_a_time_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    """Every cast is handled exactly once, in the order sent."""
    async with open_tree(tree_of(ChildSpec(name="c", factory=Counter))) as tree:
        ref = tree.ref("c")
        for i in range(3000):
            await ref.cast(Add(i))
        assert await ref.call(Total()) == sum(range(3000))


async def test_call_returns_the_handlers_value(autojump_clock: trio.testing.MockClock) -> None:
    """call() returns what the handler returned."""
    async with open_tree(tree_of(ChildSpec(name="c", factory=Counter))) as tree:
        await tree.ref("c").cast(Add(5))
        assert await tree.ref("c").call(Total()) == 5


async def test_message_is_dispatched_to_the_handler_of_its_nearest_base(autojump_clock: trio.testing.MockClock) -> None:
    """A message of a subclass goes to the handler of its nearest base class."""
    async with open_tree(tree_of(ChildSpec(name="c", factory=Catcher))) as tree:
        assert await tree.ref("c").call(Derived()) == "base"  # type: ignore[arg-type]


async def test_message_without_handler_is_refused_at_the_call_site(autojump_clock: trio.testing.MockClock) -> None:
    """Sending a type the actor does not handle raises NoHandler and enqueues nothing."""
    async with open_tree(tree_of(ChildSpec(name="c", factory=Counter))) as tree:
        with pytest.raises(NoHandler, match="no handler for Tick"):
            await tree.ref("c").cast(Tick())
        with pytest.raises(NoHandler):
            tree.ref("c").cast_nowait(Tick())
        assert tree.ref("c").mailbox_depth == 0


async def test_cast_nowait_raises_mailbox_full_and_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """A full mailbox refuses cast_nowait with MailboxFull; what was enqueued is handled."""
    log = Log()
    spec = tree_of(ChildSpec(name="p", factory=probe("p", log), mailbox_size=2))
    async with open_tree(spec) as tree:
        ref = tree.ref("p")
        await ref.cast(Sleep(10))
        await trio.testing.wait_all_tasks_blocked()
        ref.cast_nowait(Echo(1))
        ref.cast_nowait(Echo(2))
        with pytest.raises(MailboxFull, match="mailbox of actor 'app/p' is full"):
            ref.cast_nowait(Echo(3))
        assert await ref.call(Echo(4), timeout=None) == 4


async def test_cast_waits_for_room_when_the_mailbox_is_full(autojump_clock: trio.testing.MockClock) -> None:
    """cast blocks while the mailbox is full and proceeds once the actor takes a message."""
    log = Log()
    spec = tree_of(ChildSpec(name="p", factory=probe("p", log), mailbox_size=1))
    async with open_tree(spec) as tree:
        ref = tree.ref("p")
        await ref.cast(Sleep(10))
        await trio.testing.wait_all_tasks_blocked()
        await ref.cast(Echo(1))
        t0 = trio.current_time()
        await ref.cast(Echo(2))  # waits until the 10 s sleep ends and Echo(1) is taken
        assert trio.current_time() - t0 == pytest.approx(10)


async def test_a_sender_cancelled_while_waiting_for_room_does_not_hold_back_the_next_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Of two senders waiting for room, the cancelled one enqueues nothing and the other is woken once there is room."""
    seen: list[int] = []

    class Slow(Actor):
        @handler
        async def add(self, msg: Add) -> None:
            await trio.sleep(10)
            seen.append(msg.n)

    async with open_tree(tree_of(ChildSpec(name="s", factory=Slow, mailbox_size=1))) as tree:
        ref = tree.ref("s")
        await ref.cast(Add(1))  # taken at once: the handler sleeps 10 s
        await trio.testing.wait_all_tasks_blocked()
        await ref.cast(Add(2))  # fills the mailbox
        async with trio.open_nursery() as nursery:
            cancelled = trio.CancelScope()

            async def first() -> None:
                with cancelled:
                    await ref.cast(Add(3))

            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ref.cast, Add(4))
            await trio.testing.wait_all_tasks_blocked()
            cancelled.cancel()
        assert trio.current_time() == pytest.approx(10)  # Add(4) got in when Add(2) was taken
        await trio.sleep(20)
    assert seen == [1, 2, 4]


async def test_call_timeout_names_the_actor_and_the_message_type(autojump_clock: trio.testing.MockClock) -> None:
    """A call that gets no reply in time raises CallTimeout naming actor and message."""
    log = Log()
    async with open_tree(tree_of(ChildSpec(name="p", factory=probe("p", log)))) as tree:
        await tree.ref("p").cast(Sleep(math.inf))
        t0 = trio.current_time()
        with pytest.raises(CallTimeout, match=r"call Echo to actor 'app/p' got no reply within 5.0 s"):
            await tree.ref("p").call(Echo(1))
        assert trio.current_time() - t0 == pytest.approx(5.0)


async def test_call_whose_handler_raises_fails_in_the_caller_chained_to_the_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """CallFailed is raised in the caller with the handler's exception as __cause__."""

    @attrs.frozen
    class Bad(Request[None]):
        pass

    class Fragile(Actor):
        @handler(Bad)
        async def bad(self, msg: Bad) -> None:
            raise KeyError("missing")

    events: list[Event] = []
    async with open_tree(tree_of(ChildSpec(name="f", factory=Fragile))) as tree:
        tree.add_listener(events.append)
        with pytest.raises(CallFailed, match="raised KeyError") as info:
            await tree.ref("f").call(Bad())
        assert isinstance(info.value.__cause__, KeyError)
        await trio.testing.wait_all_tasks_blocked()
    crashed = [e for e in events if isinstance(e, ChildCrashed)]
    assert crashed[0].message == Bad()
    assert crashed[0].error is info.value.__cause__


async def test_ref_stays_valid_across_restarts_and_messages_wait_for_the_new_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Messages sent while the child restarts are delivered to the next incarnation."""
    from supervisors import Backoff

    log = Log()
    spec = Supervisor(
        name="app", backoff=Backoff(initial=1.0, jitter=0.0), children=[ChildSpec(name="p", factory=probe("p", log))]
    )
    async with open_tree(spec) as tree:
        ref = tree.ref("p")
        await ref.cast(Crash())
        await trio.testing.wait_all_tasks_blocked()  # crashed; restart waits 1 s of backoff
        assert log.of("start") == ["p"]
        await ref.cast(Echo("during restart"))
        assert await ref.call(Echo("after"), timeout=None) == "after"
        assert log.of("start") == ["p", "p"]
        assert tree.ref("p") == ref


async def test_crashed_message_is_reported_not_redelivered(autojump_clock: trio.testing.MockClock) -> None:
    """The message whose handler crashed is in the crash event and is not handled again."""
    events: list[Event] = []
    log = Log()
    instances: list[Probe] = []

    def factory() -> Probe:
        instances.append(Probe("p", log))
        return instances[-1]

    async with open_tree(tree_of(ChildSpec(name="p", factory=factory))) as tree:
        tree.add_listener(events.append)
        await tree.ref("p").cast(Crash("once"))
        await tree.ref("p").cast(Echo(1))
        await tree.ref("p").call(Echo(2))
    assert [e.message for e in events if isinstance(e, ChildCrashed)] == [Crash("once")]
    assert instances[1].seen == [1, 2]


async def test_sending_to_an_actor_stopped_for_good_raises(autojump_clock: trio.testing.MockClock) -> None:
    """A temporary child that exited, or a stopped tree, refuses messages with ActorStopped."""
    log = Log()
    spec = tree_of(ChildSpec(name="t", factory=probe("t", log), restart=Restart.TEMPORARY))
    async with open_tree(spec) as tree:
        ref = tree.ref("t")
        await ref.cast(Exit())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ActorStopped, match="actor 'app/t' has stopped for good"):
            await ref.cast(Echo(1))
    async with open_tree(tree_of(ChildSpec(name="c", factory=Counter))) as tree:
        ref = tree.ref("c")
    with pytest.raises(ActorStopped, match="its tree has stopped"):
        await ref.call(Total())


async def test_pending_call_fails_when_the_actor_stops_for_good(autojump_clock: trio.testing.MockClock) -> None:
    """A call still in the mailbox when the actor stops for good raises ActorStopped."""
    log = Log()
    spec = tree_of(ChildSpec(name="p", factory=probe("p", log), shutdown=0))
    result: list[BaseException] = []
    async with open_tree(spec) as tree:
        ref = tree.ref("p")
        await ref.cast(Sleep(math.inf))

        async def caller() -> None:
            try:
                await ref.call(Echo(1), timeout=None)
            except Exception as exc:
                result.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
            await tree.stop()
    assert isinstance(result[0], ActorStopped)


async def test_call_interrupted_by_stop_fails_instead_of_hanging(autojump_clock: trio.testing.MockClock) -> None:
    """A call whose handler is cancelled by a stop raises CallFailed in the caller."""
    log = Log()
    spec = tree_of(ChildSpec(name="p", factory=probe("p", log), shutdown=1.0))

    @attrs.frozen
    class SlowEcho(Request[None]):
        pass

    result: list[BaseException] = []
    async with open_tree(spec) as tree:
        ref = tree.ref("p")

        async def caller() -> None:
            try:
                await ref.call(Sleep(math.inf), timeout=None)  # type: ignore[arg-type]
            except Exception as exc:
                result.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
            await tree.stop()
    assert isinstance(result[0], CallFailed)
    assert "stopped before replying" in str(result[0])


async def test_on_start_runs_before_messages_and_on_stop_after_the_last(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """on_start precedes every message; on_stop follows the message in progress at stop."""
    order: list[str] = []

    class Hooked(Actor):
        async def on_start(self) -> None:
            order.append("on_start")

        async def on_stop(self) -> None:
            order.append("on_stop")

        @handler
        async def sleep(self, msg: Sleep) -> None:
            await trio.sleep(msg.seconds)
            order.append("handled")

    async with open_tree(tree_of(ChildSpec(name="h", factory=Hooked))) as tree:
        await tree.ref("h").cast(Sleep(1.0))
        await trio.testing.wait_all_tasks_blocked()
    assert order == ["on_start", "handled", "on_stop"]


async def test_actor_context_is_not_available_in_init(autojump_clock: trio.testing.MockClock) -> None:
    """Touching ref/path/timers in __init__ fails with a clear message."""
    from actors import ActorError

    class Early(Actor):
        def __init__(self) -> None:
            self.path_seen = self.path


    with pytest.raises(StartFailed) as info:
        async with open_tree(tree_of(ChildSpec(name="e", factory=Early))):
            pass
    assert isinstance(info.value.__cause__, ActorError)
    assert "not in __init__" in str(info.value.__cause__)


async def test_background_service_is_cancelled_on_stop_and_its_finally_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """execute() is cancelled Trio-style on stop; its finally block runs."""
    log = Log()
    async with open_tree(tree_of(ChildSpec(name="t", factory=lambda: Ticker("t", log)))):
        await trio.sleep(1)
    assert log == ["start t", "stop t"]


async def test_background_service_that_returns_exits_normally(autojump_clock: trio.testing.MockClock) -> None:
    """A transient background service whose execute() returns is not restarted."""
    runs: list[int] = []

    class OneShot(BackgroundService):
        async def execute(self) -> None:
            runs.append(1)

    spec = tree_of(ChildSpec(name="o", factory=OneShot, restart=Restart.TRANSIENT))
    async with open_tree(spec) as tree:
        await trio.testing.wait_all_tasks_blocked()
        assert tree.snapshot().find("o").state.value == "down"  # type: ignore[union-attr]
    assert runs == [1]


async def test_background_service_can_also_handle_messages(autojump_clock: trio.testing.MockClock) -> None:
    """Handlers of a background service run concurrently with execute()."""

    class Poller(BackgroundService):
        polls = 0

        async def execute(self) -> None:
            while True:
                self.polls += 1
                await trio.sleep(1)

        @handler
        def count(self, msg: Total) -> int:
            return self.polls

    async with open_tree(tree_of(ChildSpec(name="p", factory=Poller))) as tree:
        await trio.sleep(2.5)
        assert await tree.ref("p").call(Total()) == 3


async def test_background_service_crash_in_execute_is_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    """An exception from execute() crashes the child and it is restarted."""
    starts: list[int] = []
    events: list[Event] = []

    class Flaky(BackgroundService):
        async def execute(self) -> None:
            starts.append(1)
            await trio.sleep(1)
            if len(starts) == 1:
                raise ValueError("flaky")
            await trio.sleep_forever()

    async with open_tree(tree_of(ChildSpec(name="f", factory=Flaky))) as tree:
        tree.add_listener(events.append)
        await trio.sleep(5)
    assert len(starts) == 2
    assert [type(e.error) for e in events if isinstance(e, ChildCrashed)] == [ValueError]


async def test_mutual_casts_through_full_mailboxes_can_deadlock_but_cast_nowait_reports_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two actors casting to each other through full mailboxes block; cast_nowait raises instead.

    This is the documented hazard of bounded mailboxes: keep request/reply cycles on call()
    or cast_nowait(), or size the mailboxes for the traffic in flight.
    """

    class Bouncer(Actor):
        def __init__(self, peer: str, nowait: bool) -> None:
            self.peer = peer
            self.nowait = nowait
            self.dropped = 0

        @handler
        async def ping(self, msg: Ping) -> None:
            from supervisors import current_tree

            if msg.hops >= 30:
                return
            peer = current_tree().ref(self.peer)
            for _ in range(3):  # each ping fans out: traffic grows until mailboxes fill
                if self.nowait:
                    try:
                        peer.cast_nowait(Ping(msg.hops + 1))
                    except MailboxFull:
                        self.dropped += 1
                else:
                    await peer.cast(Ping(msg.hops + 1))

        @handler
        def dropped_count(self, msg: Total) -> int:
            return self.dropped

    def spec(nowait: bool) -> Supervisor:
        return tree_of(
            ChildSpec(name="a", factory=lambda: Bouncer("b", nowait), mailbox_size=4),
            ChildSpec(name="b", factory=lambda: Bouncer("a", nowait), mailbox_size=4),
        )

    async with open_tree(spec(nowait=False)) as tree:
        await tree.ref("a").cast(Ping(0))
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(CallTimeout):  # both are blocked in cast: a deadlock
            await tree.ref("a").call(Total(), timeout=1.0)
        depth = tree.ref("a").mailbox_depth + tree.ref("b").mailbox_depth
        assert depth == 8
    async with open_tree(spec(nowait=True)) as tree:
        await tree.ref("a").cast(Ping(0))
        await trio.testing.wait_all_tasks_blocked()  # the storm dies out: nobody is stuck
        assert await tree.ref("a").call(Total(), timeout=1.0) > 0  # type: ignore[operator]


async def test_handler_annotation_that_is_not_a_class_is_refused() -> None:
    """@handler needs a message class; a bad annotation fails at class creation."""
    with pytest.raises(TypeError, match="has no type annotation"):

        class NoAnnotation(Actor):
            @handler
            async def h(self, msg) -> None:  # type: ignore[no-untyped-def]
                pass


async def test_a_handler_annotation_that_never_resolves_fails_the_start_naming_the_missing_name() -> None:
    """An annotation naming a class that does not exist (a local class, a typo) fails the child's
    start; the message names the handler and the name that did not resolve."""

    class Lost(Actor):
        @handler
        async def h(self, msg: NoSuchMessage) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

    with pytest.raises(StartFailed) as info:
        async with open_tree(tree_of(ChildSpec(name="lost", factory=Lost))):
            pytest.fail("the tree must not start")
    cause = info.value.__cause__
    assert isinstance(cause, TypeError)
    assert str(cause).startswith(
        "cannot resolve the message type of handler "
        "test_a_handler_annotation_that_never_resolves_fails_the_start_naming_the_missing_name.<locals>.Lost.h "
        "(name 'NoSuchMessage' is not defined); define the message class at module level"
    )


async def test_sending_a_message_class_instead_of_an_instance_says_so(autojump_clock: trio.testing.MockClock) -> None:
    """``cast(Add)`` (the class, not ``Add(1)``) is refused at the call site with a message that
    says to send an instance; nothing is enqueued."""
    async with open_tree(tree_of(ChildSpec(name="c", factory=Counter))) as tree:
        sent_the_class = r"actor 'app/c' was sent the class Add itself; send an instance of it, Add\(...\)"
        with pytest.raises(NoHandler, match=sent_the_class):
            await tree.ref("c").cast(Add)
        assert tree.ref("c").mailbox_depth == 0


async def test_redefining_a_handler_in_a_subclass_overrides_it(autojump_clock: trio.testing.MockClock) -> None:
    """A subclass's redefinition of a handler method replaces it, with or without @handler."""

    class Doubler(Counter):
        def get(self, msg: Total) -> int:  # no @handler: still the handler of Total
            return self.total * 2

    async with open_tree(tree_of(ChildSpec(name="d", factory=Doubler))) as tree:
        await tree.ref("d").cast(Add(21))
        assert await tree.ref("d").call(Total()) == 42


async def test_on_stop_after_a_crash_is_bounded_by_the_grace(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After a crash, a hanging on_stop is cancelled after the child's grace; the restart follows."""
    starts: list[float] = []

    class SlowCleanup(Actor):
        async def on_start(self) -> None:
            starts.append(trio.current_time())

        async def on_stop(self) -> None:
            await trio.sleep(100)

        @handler
        async def crash(self, msg: Crash) -> None:
            raise RuntimeError("boom")

    async with open_tree(tree_of(ChildSpec(name="s", factory=SlowCleanup, shutdown=2.0))) as tree:
        await tree.ref("s").cast(Crash())
        await trio.sleep(10)
        assert starts == [0.0, pytest.approx(2.0)]
        tree.inject_crash("s")  # cancelled: on_stop is not called, so no delay
        await trio.sleep(1)
        assert starts[-1] == pytest.approx(10.0)  # injected at t=10: no on_stop, restarted at once
    assert "did not finish within its 2.0 s shutdown grace" in caplog.text


async def test_background_service_can_drain_gracefully_instead_of_being_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With cancel_on_stop = False, execute() sees the stop request and finishes its work."""
    done: list[int] = []

    class Drainer(BackgroundService):
        cancel_on_stop = False

        async def execute(self) -> None:
            n = 0
            while not self.stop_requested:
                n += 1
                await trio.sleep(1.0)  # one unit of work, never cut short
                done.append(n)

    async with open_tree(tree_of(ChildSpec(name="d", factory=Drainer, shutdown=5.0))):
        await trio.sleep(2.5)
        t0 = trio.current_time()
    assert done == [1, 2, 3]  # the third unit, in progress at the stop, was finished
    assert trio.current_time() - t0 == pytest.approx(0.5)


async def test_draining_background_service_is_still_cancelled_after_its_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A draining execute() that does not return in time is cancelled when the grace ends."""

    class Stubborn(BackgroundService):
        cancel_on_stop = False

        async def execute(self) -> None:
            await self.wait_stop_requested()
            await trio.sleep(100)

    events: list[Event] = []
    async with open_tree(tree_of(ChildSpec(name="s", factory=Stubborn, shutdown=2.0))) as tree:
        tree.add_listener(events.append)
        t0 = trio.current_time()
    assert trio.current_time() - t0 == pytest.approx(2.0)
    from supervisors import ChildStopped

    assert [e.cancelled for e in events if isinstance(e, ChildStopped)] == [True]


async def test_a_cast_loop_lets_the_receiver_and_other_tasks_run_between_casts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """await cast is a checkpoint even with room: the receiver keeps pace with a casting loop."""
    seen: list[int] = []
    bystander_runs: list[int] = []

    class Recorder(Actor):
        @handler
        def add(self, msg: Add) -> None:
            seen.append(msg.n)

    async def bystander() -> None:
        while True:
            bystander_runs.append(len(seen))
            await trio.lowlevel.checkpoint()

    async with open_tree(tree_of(ChildSpec(name="r", factory=Recorder))) as tree:
        ref = tree.ref("r")
        lag: list[int] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bystander)
            await trio.lowlevel.checkpoint()
            runs_before = len(bystander_runs)
            for i in range(200):
                await ref.cast(Add(i))
                lag.append(i + 1 - len(seen))
            assert len(bystander_runs) - runs_before >= 199  # the bystander ran between casts
            nursery.cancel_scope.cancel()
    assert max(lag) <= 2  # never more than two messages behind (the mailbox holds 1024)
    assert seen == list(range(200))


async def test_snapshot_counts_every_message_taken_whether_queued_in_a_batch_or_one_by_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """messages_handled counts each message taken from the mailbox, also those taken from a queued batch."""
    seen: list[int] = []

    class Recorder(Actor):
        @handler
        def add(self, msg: Add) -> None:
            seen.append(msg.n)

    async with open_tree(tree_of(ChildSpec(name="r", factory=Recorder))) as tree:
        ref = tree.ref("r")
        for i in range(50):
            ref.cast_nowait(Add(i))  # a batch: taken without waiting
        await trio.testing.wait_all_tasks_blocked()
        for i in range(50, 60):
            await ref.cast(Add(i))  # one by one: each taken after a wait
            await trio.testing.wait_all_tasks_blocked()
        assert seen == list(range(60))
        assert tree.snapshot().find("r").messages_handled == 60  # type: ignore[union-attr]


async def test_cast_nowait_enqueues_a_batch_without_yielding(autojump_clock: trio.testing.MockClock) -> None:
    """cast_nowait is not a checkpoint: a batch is enqueued before the receiver runs."""
    seen: list[int] = []

    class Recorder(Actor):
        @handler
        def add(self, msg: Add) -> None:
            seen.append(msg.n)

    async with open_tree(tree_of(ChildSpec(name="r", factory=Recorder))) as tree:
        ref = tree.ref("r")
        for i in range(100):
            ref.cast_nowait(Add(i))
        assert seen == []
        assert ref.mailbox_depth == 100
        await trio.testing.wait_all_tasks_blocked()
        assert seen == list(range(100))


async def test_cast_is_cancellable_and_a_cancelled_cast_enqueues_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cast in a cancelled scope raises Cancelled, with room or waiting for it; nothing is sent."""
    log = Log()
    spec = tree_of(ChildSpec(name="p", factory=probe("p", log), mailbox_size=1))
    async with open_tree(spec) as tree:
        ref = tree.ref("p")
        with trio.CancelScope() as scope:
            scope.cancel()
            await ref.cast(Echo("with room"))
        assert scope.cancelled_caught
        assert ref.mailbox_depth == 0
        await ref.cast(Sleep(10))
        await trio.testing.wait_all_tasks_blocked()
        await ref.cast(Echo("fills the mailbox"))
        with trio.move_on_after(1.0) as waiting:
            await ref.cast(Echo("waits for room"))
        assert waiting.cancelled_caught
        assert ref.mailbox_depth == 1
        assert await ref.call(Echo("after"), timeout=None) == "after"
    probes_seen = [entry for entry in log if entry.startswith("start")]
    assert probes_seen == ["start p"]


@attrs.frozen
class Seen(Request[list[object]]):
    pass


class EitherAddOrTick(Actor):
    def __init__(self) -> None:
        self.seen: list[object] = []

    @handler
    def either(self, msg: Add | Tick) -> None:
        self.seen.append(msg)

    @handler
    def maybe(self, msg: Ping | None) -> None:  # Optional[Ping]: also handles a None message
        self.seen.append(msg)

    @handler
    def seen_so_far(self, msg: Seen) -> list[object]:
        return self.seen


async def test_handler_annotated_with_a_union_handles_each_member(autojump_clock: trio.testing.MockClock) -> None:
    """A handler annotated X | Y (or X | None) is the handler of each member of the union."""
    async with open_tree(tree_of(ChildSpec(name="e", factory=EitherAddOrTick))) as tree:
        ref = tree.ref("e")
        await ref.cast(Add(1))
        await ref.cast(Tick())
        await ref.cast(Ping(2))
        await ref.cast(None)
        with pytest.raises(NoHandler, match="no handler for Derived"):
            await ref.cast(Derived())
        assert await ref.call(Seen()) == [Add(1), Tick(), Ping(2), None]


def test_typing_union_and_optional_annotations_register_each_member() -> None:
    """typing.Union[X, Y], Optional[X] and @handler(X | Y) register every member class."""
    class Old(Actor):
        @handler
        def either(self, msg: Union[Add, Tick]) -> None:  # noqa: UP007 - the typing spelling on purpose
            pass

        @handler
        def maybe(self, msg: Optional[Ping]) -> None:  # noqa: UP045 - the typing spelling on purpose
            pass

        @handler(Derived | Total)
        def explicit(self, msg: object) -> None:
            pass

    assert set(Old._handlers) == {Add, Tick, Ping, type(None), Derived, Total}


def test_union_with_a_member_that_is_not_a_class_is_refused_at_class_creation() -> None:
    """A union with a non-class member (a Literal) raises TypeError naming the handler."""
    with pytest.raises(TypeError, match=r"handler .*Bad\.h: .* is not a class or a union of classes"):

        class Bad(Actor):
            @handler
            def h(self, msg: Add | Literal["x"]) -> None:
                pass


async def test_on_stop_after_a_normal_exit_is_cancelled_at_the_grace_and_the_restart_follows(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After stop(), a hung on_stop is cut off at the grace (from its start); the permanent child restarts."""
    starts: list[float] = []
    stops_begun: list[float] = []

    class HungCleanup(Actor):
        async def on_start(self) -> None:
            starts.append(trio.current_time())

        async def on_stop(self) -> None:
            stops_begun.append(trio.current_time())
            await trio.sleep_forever()

        @handler
        async def exit(self, msg: Exit) -> None:
            await trio.sleep(1.0)  # the grace is not counted from the message
            self.stop()

    async with open_tree(tree_of(ChildSpec(name="h", factory=HungCleanup, shutdown=3.0))) as tree:
        await tree.ref("h").cast(Exit())
        await trio.sleep(10)
        assert starts == [0.0, 4.0]  # on_stop from t=1 cancelled at t=4, then restarted
        assert stops_begun == [1.0]
    assert "on_stop of app/h did not finish within its 3.0 s shutdown grace" in caplog.text


async def test_on_stop_is_not_called_after_a_crash_when_the_shutdown_is_0(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """shutdown=0 means on_stop never runs, also after an exit of the actor's own."""
    log = Log()
    spec = tree_of(ChildSpec(name="p", factory=probe("p", log), shutdown=0))
    async with open_tree(spec) as tree:
        await tree.ref("p").cast(Crash())
        assert await tree.ref("p").call(Echo(1)) == 1
    assert log == ["start p", "start p"]
