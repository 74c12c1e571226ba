"""Tree.subscribe(): a bounded event stream per subscriber that counts what it misses.

Invariants: the buffer holds at most ``max_buffer`` events (``_queued``) plus EventsDropped markers,
one per gap and never two in a row; events
that arrive while it is full are counted in ``_missed`` and replaced by one marker placed
where they would have been (before the next event accepted, or returned when the buffer is
empty). The tree never waits for a subscriber.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import final

import trio

from ._events import DETAILED_EVENTS, Event, EventBus, EventsDropped

__all__ = ["DEFAULT_EVENT_BUFFER", "EventStream", "open_stream"]

logger = logging.getLogger("supervisors")

DEFAULT_EVENT_BUFFER = 1024
"""How many events a subscriber may fall behind before it misses some (``Tree.subscribe``)."""


@final
class EventStream:
    """The events of a tree for one subscriber, from :meth:`Tree.subscribe`; no public constructor.

    ``async for event in stream`` (or ``await stream.receive()``) yields every event emitted
    after subscribing, in order, for as long as the ``async with`` lasts. When the subscriber
    falls ``max_buffer`` events behind, the events that arrive meanwhile are dropped for it and
    it receives one :class:`EventsDropped` (with their ``count``) in their place; ``dropped`` is
    the total so far, and the first drop is logged as a warning. The tree never waits for it.
    """

    __slots__ = (
        "_buffer", "_closed", "_dropped", "_kinds", "_lot", "_max_buffer", "_missed", "_missed_at", "_path", "_queued",
    )

    def __init__(self, path: str, max_buffer: float, kinds: tuple[type[Event], ...]) -> None:
        self._path = path
        self._max_buffer = max_buffer
        self._kinds = kinds
        self._buffer: deque[Event] = deque()
        self._queued = 0  # events in the buffer, markers not counted
        self._lot = trio.lowlevel.ParkingLot()
        self._missed = 0
        self._missed_at = 0.0
        self._dropped = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<EventStream of {self._path!r}: {len(self._buffer)} buffered, {self._dropped} dropped>"

    @property
    def max_buffer(self) -> float:
        """How many events may wait to be read before later ones are dropped."""
        return self._max_buffer

    @property
    def dropped(self) -> int:
        """How many events this subscriber has missed so far (each reported by an EventsDropped)."""
        return self._dropped

    def _push(self, event: Event) -> None:
        if not isinstance(event, self._kinds) or self._closed:
            return
        if self._queued >= self._max_buffer:
            if not self._missed:
                self._missed_at = event.time
            self._missed += 1
            self._dropped += 1
            if self._dropped == 1:
                logger.warning(
                    "a subscriber of tree %s is more than %s events behind: later events are dropped "
                    "for it (it receives EventsDropped); read faster or raise subscribe(max_buffer=)",
                    self._path, self._max_buffer,
                )
            return
        if self._missed:
            self._buffer.append(self._marker())
        self._buffer.append(event)
        self._queued += 1
        self._lot.unpark()

    def _marker(self) -> EventsDropped:
        marker = EventsDropped(path=self._path, time=self._missed_at, count=self._missed)
        self._missed = 0
        return marker

    def receive_nowait(self) -> Event:
        """The next event if one is waiting; raises ``trio.WouldBlock`` otherwise.

        Raises ``trio.ClosedResourceError`` once the ``async with`` has ended.
        """
        if self._closed:
            raise trio.ClosedResourceError("this event stream was closed: its 'async with tree.subscribe()' ended")
        if self._buffer:
            event = self._buffer.popleft()
            if not isinstance(event, EventsDropped):
                self._queued -= 1
            return event
        if self._missed:
            return self._marker()
        raise trio.WouldBlock

    async def receive(self) -> Event:
        """Wait for the next event and return it."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                event = self.receive_nowait()
            except trio.WouldBlock:
                await self._lot.park()
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return event

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        return await self.receive()

    def _close(self) -> None:
        self._closed = True
        self._buffer.clear()
        self._queued = 0
        self._lot.unpark_all()


@asynccontextmanager
async def open_stream(
    bus: EventBus, path: str, max_buffer: float, kinds: type[Event] | tuple[type[Event], ...]
) -> AsyncIterator[EventStream]:
    """Subscribe an :class:`EventStream` to ``bus`` for the duration of the block."""
    if isinstance(max_buffer, bool) or not isinstance(max_buffer, int | float) or not max_buffer >= 1:
        raise ValueError(f"'max_buffer' must be a number >= 1 or math.inf (got {max_buffer!r})")
    wanted = kinds if isinstance(kinds, tuple) else (kinds,)
    if not wanted or not all(isinstance(kind, type) and issubclass(kind, Event) for kind in wanted):
        raise TypeError(f"'kinds' must be Event classes (got {kinds!r})")
    # Does this subscriber need the frequent events (so that the supervisors must build them)?
    detailed = any(issubclass(kind, frequent) or issubclass(frequent, kind)
                   for kind in wanted for frequent in DETAILED_EVENTS)
    stream = EventStream(path, max_buffer, wanted)
    unsubscribe = bus.subscribe(stream._push, detailed=detailed)
    try:
        yield stream
    finally:
        unsubscribe()
        stream._close()
