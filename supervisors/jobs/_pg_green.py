"""Synchronous psycopg code run from Trio without threads: a greenlet bridge and a small pool.

psycopg's synchronous `Connection` drives its protocol (sans-IO generators that say "wait
until the socket is readable / writable") through one method, ``Connection.wait``.
`green_connection_class` overrides it: inside a greenlet started by `run_green`, each wait
switches to the parent greenlet (the Trio task), which awaits
``trio.lowlevel.wait_readable`` / ``wait_writable`` on the connection's socket and switches
back. So the store's lifecycle code, written once as synchronous Python (`SQLiteDB`), runs
unchanged on a connection whose waits are Trio's: no worker thread, no lock hand-off.
Outside such a greenlet (a connection used from plain synchronous code) the connection waits
as psycopg's own does.

Cancellation (`run_green`): with ``shield`` (the default) the call runs to its end whatever
happens to the caller, so it ends with its transaction committed or rolled back and its
outcome known, and the connection is idle again; the caller sees the cancellation at its next
checkpoint. Without ``shield`` a cancelled call closes the connection (the server rolls back
the open transaction; a ``COMMIT`` already sent may or may not land) and raises `trio.Cancelled`
at once: for callers that must give up by a deadline and can tolerate an unknown outcome.

greenlet comes with the ``postgres`` extra and is imported on first use.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import select
import threading
from collections.abc import Callable
from selectors import EVENT_READ, EVENT_WRITE
from typing import Any, TypeVar

import trio

from supervisors import outside_trio

from ._errors import StoreError

T = TypeVar("T")


def _greenlet() -> Any:
    try:
        greenlet = importlib.import_module("greenlet")  # untyped: kept as Any
    except ImportError as exc:  # pragma: no cover - depends on the install
        msg = "PostgresStore needs greenlet: install the extra with pip install 'trio-supervisors[postgres]'"
        raise StoreError(msg) from exc
    return greenlet


@functools.cache
def _bridge_class() -> Any:
    class Bridge(_greenlet().greenlet):  # type: ignore[misc]
        """A greenlet whose psycopg waits are done by its parent (the Trio task)."""

        bridged = True

    return Bridge


@functools.cache
def green_connection_class() -> Any:
    """``psycopg.Connection`` whose waits, inside `run_green`, are the Trio task's."""
    import psycopg

    greenlet = _greenlet()

    class GreenConnection(psycopg.Connection[Any]):
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            current = greenlet.getcurrent()
            if timeout is not None or not getattr(current, "bridged", False):
                return super().wait(gen, interval, timeout)
            fd = self.pgconn.socket
            parent = current.parent
            try:
                s = next(gen)
                while True:
                    # A wait that includes writing (pipeline mode asks for read-or-write before
                    # each command) nearly always finds the socket writable: a zero-timeout
                    # poll answers it without a trip through the Trio scheduler.
                    if s & EVENT_WRITE and (ready := _ready_now(fd, s)):
                        s = gen.send(ready)
                        continue
                    s = gen.send(parent.switch((fd, int(s))))
            except StopIteration as stop:
                return stop.value
            except OSError as exc:
                raise psycopg.OperationalError(f"connection socket closed: {exc}") from exc
            except psycopg.Error:
                raise
            except BaseException:
                # Thrown in by the parent (an abandoned call, an interrupt): the protocol is
                # somewhere mid-message, so the connection cannot be used again.
                self.pgconn.finish()
                raise

    return GreenConnection


def _ready_now(fd: int, s: int) -> int:
    """What ``fd`` is ready for, of what ``s`` asks, without waiting."""
    readable, writable, _ = select.select([fd] if s & EVENT_READ else [], [fd], [], 0)
    return (EVENT_READ if readable else 0) | (EVENT_WRITE if writable else 0)


async def _wait(fd: int, s: int) -> int:
    """Wait until ``fd`` is ready as ``s`` asks; return what it is ready for. psycopg's
    ``Wait`` and ``Ready`` values are the `selectors` event bits."""
    if s == EVENT_READ:
        await trio.lowlevel.wait_readable(fd)
        return EVENT_READ
    if s == EVENT_WRITE:
        await trio.lowlevel.wait_writable(fd)
        return EVENT_WRITE
    # Read or write (a send that found the socket full): whichever comes first, as libpq asks.
    ready = 0
    async with trio.open_nursery() as nursery:

        async def one(wait: Callable[[int], Any], flag: int) -> None:
            nonlocal ready
            await wait(fd)
            ready |= flag
            nursery.cancel_scope.cancel()

        nursery.start_soon(one, trio.lowlevel.wait_readable, EVENT_READ)
        nursery.start_soon(one, trio.lowlevel.wait_writable, EVENT_WRITE)
    return ready


async def run_green(conn: Any, fn: Callable[[Any], T], *, shield: bool = True) -> T:
    """``fn(conn)`` in a new greenlet, its socket waits awaited by this Trio task; its result.

    ``conn`` is a `green_connection_class` connection used by nothing else meanwhile. See the
    module's doc for ``shield``."""
    g = _bridge_class()(fn)
    # The call waits for the server, which works in real time (a test clock holds still).
    with outside_trio(), trio.CancelScope(shield=shield):
        request = g.switch(conn)
        while not g.dead:
            fd, s = request
            try:
                ready = await _wait(fd, s)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    conn.pgconn.finish()  # before the greenlet sees it: no further wait
                request = g.throw(exc)
                while not g.dead:  # it insisted on waiting on the closed connection
                    request = g.throw(exc)
                raise
            request = g.switch(ready)
    return request  # type: ignore[no-any-return]


def _idle(conn: Any) -> bool:
    import psycopg

    return not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def idle_and_sound(conn: Any) -> bool:
    """Whether ``conn``, taken from the idle list, can serve a call: open, outside a
    transaction, and (checked without a round trip) with nothing to read on its socket. An
    idle connection of the pool is sent nothing unless the server is ending it (a terminated
    backend, a server shutting down: an error, then the end of the stream), so anything there
    retires it (the rare parameter report included: a new connection costs a few ms)."""
    if not _idle(conn):
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


async def connect_abandonable(connect: Callable[[], Any]) -> Any:
    """``connect()`` on a worker thread that a cancelled caller does not wait for; a connection
    made after its caller gave up is closed by the thread, never left to the garbage collector
    open."""
    lock = threading.Lock()
    state: dict[str, Any] = {"abandoned": False, "conn": None}

    def run() -> Any:
        conn = connect()
        with lock:
            if not state["abandoned"]:
                state["conn"] = conn
                return conn
        conn.close()
        return None

    try:
        with outside_trio():
            return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    except BaseException:
        with lock:
            state["abandoned"] = True
            made, state["conn"] = state["conn"], None
        if made is not None:
            made.close()
        raise


class GreenPool:
    """At most ``size`` connections made by ``connect`` (blocking; run on a worker thread, off
    the hot path), each lent to one call at a time."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self._connect = connect
        self._idle: list[Any] = []
        self._slots = trio.Semaphore(size)
        self._closed = False

    async def call(self, fn: Callable[[Any], T], *, shield: bool = True) -> T:
        """``fn(conn)`` on a pooled connection (see `run_green`; without ``shield``, waiting
        for a connection is abandoned on cancellation too); a connection that broke or was left
        in a transaction is closed instead of going back to the pool."""
        async with self._slots:
            conn: Any = None
            while self._idle:
                candidate = self._idle.pop()
                if idle_and_sound(candidate):
                    conn = candidate
                    break
                candidate.close()
            if conn is None:
                # An unshielded call gives up waiting for a connection too (a partition can
                # hold a connect for its whole timeout); the thread then closes what it made.
                if shield:
                    with outside_trio():
                        conn = await trio.to_thread.run_sync(self._connect)
                else:
                    conn = await connect_abandonable(self._connect)
            try:
                return await run_green(conn, fn, shield=shield)
            finally:
                if not self._closed and _idle(conn):
                    self._idle.append(conn)
                else:
                    conn.close()

    def close(self) -> None:
        """Close the idle connections; those lent out are closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
