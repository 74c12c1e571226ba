"""The event stream of a tree: bounded subscriptions that count what they miss, events built lazily."""

from __future__ import annotations

import logging
import math

import pytest
import trio
import trio.testing
from _probes import Log, probe

from supervisors import (
    DEFAULT_EVENT_BUFFER,
    ChildCrashed,
    ChildSpec,
    ChildStarted,
    Event,
    EventsDropped,
    EventStream,
    GaveUp,
    Supervisor,
    Tree,
    open_tree,
)


def _spec(log: Log) -> Supervisor:
    return Supervisor(name="app", max_restarts=1_000_000, children=[ChildSpec(name="a", factory=probe("a", log))])


async def _exits(tree: Tree, times: int) -> None:
    """Make the permanent child ``a`` exit and be restarted ``times`` times (four events each)."""
    for _ in range(times):
        tree.inject_exit("a")
        await trio.testing.wait_all_tasks_blocked()


def _drain(stream: EventStream) -> list[Event]:
    events: list[Event] = []
    while True:
        try:
            events.append(stream.receive_nowait())
        except trio.WouldBlock:
            return events


async def test_subscription_is_bounded_by_default(autojump_clock: trio.testing.MockClock) -> None:
    """Tree.subscribe() without arguments holds at most DEFAULT_EVENT_BUFFER (1024) unread events."""
    assert DEFAULT_EVENT_BUFFER == 1024
    async with open_tree(_spec(Log())) as tree, tree.subscribe() as events:
        assert events.max_buffer == DEFAULT_EVENT_BUFFER
        await _exits(tree, 300)  # 1,200 events, never read while they come
        waiting = _drain(events)
    assert len(waiting) == DEFAULT_EVENT_BUFFER + 1
    assert isinstance(waiting[-1], EventsDropped)
    assert waiting[-1].count == 1_200 - DEFAULT_EVENT_BUFFER


async def test_unread_subscriber_stays_bounded_and_learns_how_many_it_missed(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A subscriber that never reads holds max_buffer events; the rest are counted, reported once, logged once."""
    seen: list[Event] = []
    async with open_tree(_spec(Log()), listeners=[seen.append]) as tree, tree.subscribe(max_buffer=10) as events:
        before = len(seen)
        await _exits(tree, 50)
        emitted = len(seen) - before
        waiting = _drain(events)
        assert events.dropped == emitted - 10
    assert len(waiting) == 11
    assert waiting[:10] == seen[before:before + 10]
    marker = waiting[10]
    assert isinstance(marker, EventsDropped)
    assert marker.count == emitted - 10
    assert marker.path == "app"
    assert marker.time == seen[before + 10].time
    warnings = [r for r in caplog.records if "events behind" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


async def test_dropped_events_are_reported_where_they_were_missed(autojump_clock: trio.testing.MockClock) -> None:
    """The EventsDropped marker comes after the events read before the gap and before those accepted after it."""
    seen: list[Event] = []
    async with open_tree(_spec(Log()), listeners=[seen.append]) as tree, tree.subscribe(max_buffer=4) as events:
        before = len(seen)
        await _exits(tree, 2)  # 8 events: 4 kept, 4 missed
        first = [await events.receive() for _ in range(4)]
        await _exits(tree, 1)  # 4 more, with room for them
        rest = _drain(events)
    assert first == seen[before:before + 4]
    assert isinstance(rest[0], EventsDropped)
    assert rest[0].count == 4
    assert rest[1:] == seen[before + 8:before + 12]
    assert events.dropped == 4


async def test_a_reader_that_keeps_up_misses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """A subscriber reading as events come receives every one, with no EventsDropped, when bursts fit its buffer."""
    seen: list[Event] = []
    received: list[Event] = []
    async with open_tree(_spec(Log()), listeners=[seen.append]) as tree, tree.subscribe(max_buffer=8) as events:
        before = len(seen)

        async def read() -> None:
            async for event in events:
                received.append(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await _exits(tree, 20)
            nursery.cancel_scope.cancel()
        assert received == seen[before:]
        assert events.dropped == 0


async def test_subscription_filters_by_kind_and_then_does_not_need_frequent_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """subscribe(kinds=...) yields only those events; crash-only subscribers do not make the tree build starts/stops."""
    async with open_tree(_spec(Log())) as tree:
        bus = tree._runtime.bus
        assert not bus.detailed
        async with tree.subscribe(kinds=(ChildCrashed, GaveUp)) as crashes:
            assert not bus.detailed
            await _exits(tree, 2)
            tree.inject_crash("a")
            await trio.testing.wait_all_tasks_blocked()
            got = _drain(crashes)
        assert [type(e) for e in got] == [ChildCrashed]
        async with tree.subscribe(kinds=ChildStarted):
            assert bus.detailed
        assert not bus.detailed


@pytest.mark.parametrize("bad", [0, -1, 0.5, math.nan, "10", True])
async def test_subscribe_refuses_a_buffer_smaller_than_one(bad: object) -> None:
    """max_buffer must be a number >= 1 (or math.inf); anything else is refused, naming the field."""
    async with open_tree(Supervisor(name="app")) as tree:
        with pytest.raises(ValueError, match="'max_buffer' must be a number >= 1"):
            async with tree.subscribe(max_buffer=bad):  # type: ignore[arg-type]
                pass


async def test_reading_after_the_subscription_ended_raises_closed(autojump_clock: trio.testing.MockClock) -> None:
    """Once its async with has ended, the stream raises trio.ClosedResourceError instead of waiting for ever."""
    async with open_tree(Supervisor(name="app")) as tree:
        async with tree.subscribe() as events:
            pass
        with pytest.raises(trio.ClosedResourceError):
            await events.receive()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _only_handlers(monkeypatch: pytest.MonkeyPatch, *handlers: logging.Handler) -> None:
    """The 'supervisors' logger gets exactly these handlers and does not propagate (undone after)."""
    lg = logging.getLogger("supervisors")
    monkeypatch.setattr(lg, "handlers", list(handlers))
    monkeypatch.setattr(lg, "propagate", False)


async def _crash_once(tree: Tree) -> None:
    tree.inject_crash("a", ValueError("boom"))
    await trio.testing.wait_all_tasks_blocked()


async def test_crash_under_null_handlers_builds_no_record_yet_reaches_subscribers(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only a NullHandler on the silenced logger no log record is built, and subscribers still get ChildCrashed."""
    _only_handlers(monkeypatch, logging.NullHandler())
    made: list[logging.LogRecord] = []
    original = logging.Logger.makeRecord

    def spy(self: logging.Logger, *args: object, **kwargs: object) -> logging.LogRecord:
        record = original(self, *args, **kwargs)  # type: ignore[arg-type]
        if record.levelno >= logging.ERROR:  # INFO lines may be on, if another test enabled them
            made.append(record)
        return record

    monkeypatch.setattr(logging.Logger, "makeRecord", spy)
    async with open_tree(_spec(Log())) as tree, tree.subscribe(kinds=ChildCrashed) as crashes:
        await _crash_once(tree)
        got = _drain(crashes)
    assert [type(e) for e in got] == [ChildCrashed]
    assert made == []


async def test_crash_is_logged_when_a_real_handler_sits_beside_a_null_handler(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One handler that writes records is enough: the crash is logged at ERROR with its traceback."""
    records = _Records()
    _only_handlers(monkeypatch, logging.NullHandler(), records)
    async with open_tree(_spec(Log())) as tree:
        await _crash_once(tree)
    crashed = [r for r in records.records if "crashed" in r.getMessage()]
    assert len(crashed) == 1
    assert crashed[0].levelno == logging.ERROR
    assert crashed[0].exc_info is not None


def test_a_logger_without_any_handler_still_counts_as_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """No handler anywhere means logging's last resort writes to stderr, so the record is built."""
    from supervisors._events import logged

    _only_handlers(monkeypatch)
    assert logged(logging.ERROR)


def test_a_filter_or_a_disabled_level_decides_whether_records_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter on the logger forces the record to be built; a level the logger drops needs none."""
    from supervisors._events import logged

    _only_handlers(monkeypatch, logging.NullHandler())
    assert not logged(logging.ERROR)
    monkeypatch.setattr(logging.getLogger("supervisors"), "filters", [logging.Filter("supervisors")])
    assert logged(logging.ERROR)
    _only_handlers(monkeypatch, _Records())
    lg = logging.getLogger("supervisors")
    level = lg.level
    lg.setLevel(logging.CRITICAL)
    try:
        assert not logged(logging.ERROR)
    finally:
        lg.setLevel(level)
