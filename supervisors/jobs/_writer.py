"""The writer thread of a `SQLiteStore`: one long-lived thread, one connection, group commit.

Trio tasks hand calls to the thread through a `queue.SimpleQueue` and sleep in
`trio.lowlevel.wait_task_rescheduled`; the thread runs them in arrival order and wakes the
tasks through the Trio token (`run_sync_soon`), one callback per batch. The calls made in one
pass of the Trio scheduler are handed over together by a system task of the run (the
*flusher*), which the first of them reschedules: it runs in the next pass, so the hand-off
costs no system call and no scheduler statistics on the Trio thread.

Group commit: calls marked ``group=True`` (each a function whose writes run inside the
connection's current transaction when one is open) that are waiting together are run in one
``BEGIN IMMEDIATE`` ... ``COMMIT``, and every caller is woken only after that ``COMMIT``, so
"committed when the call returns" holds for each of them. If any call of a group raises, or the
``COMMIT`` fails, the group is rolled back and each call is run again alone, in its own
transaction, so one call's error never becomes another's. Consecutive calls of a group that
name the same ``merge`` function run as one call of it over their items (e.g. one multi-row
``INSERT`` for several enqueuers), and so does a call with a ``merge`` that runs alone; each
still gets its own result.

Inline commits (``inline=True``): when the thread is idle (no call handed to it is unfinished)
and the calls of a pass are all group calls of small total weight (`INLINE_WEIGHT`), the flusher
runs their transaction itself, on the Trio thread, and wakes the callers directly: two thread
hand-offs fewer per transaction, which on the common path (tasks each awaiting one enqueue, a
runner settling and claiming) is most of the cost. It runs on a second resource opened with the
first (for a file; an in-memory database has one), whose connection never waits: its busy
timeout is 0, so if another connection holds the write lock (or anything else fails) the
transaction is rolled back at once and the calls go to the thread as usual, which waits for the
lock and gives each call its own error. Its automatic checkpoints are off, so no ``COMMIT`` on
the Trio thread writes the database file or calls ``fsync``. After about `CHECKPOINT_PAGES`
pages were written to the WAL by inline commits (the pages per commit are learnt from each
checkpoint's count), a *checkpointer* thread with a connection of its own
copies the WAL into the database (``PASSIVE``) while inline commits go on; then the writer
thread checkpoints what was committed meanwhile (a short ``PASSIVE`` on the writer's
connection, inline commits waiting for it), so that the next write can start the WAL again
from its beginning. (Without that second step a WAL written to without pause is never wholly
copied and grows.) Use it only where a commit does not wait for the disk (``PRAGMA
synchronous`` ``NORMAL`` or ``OFF`` in WAL mode, or an in-memory database).

A `SQLiteStore` runs a second `Writer` as its reader: the same thread and hand-off for the calls
that only read, on a connection of their own, none of them grouped, none inline.

Cancellation: a call that the thread has not started yet is withdrawn and raises `trio.Cancelled`
(nothing was written); once started it runs to the end and its outcome is delivered.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import outcome
import trio

from supervisors import outside_trio, outside_work_listener

T = TypeVar("T")

logger = logging.getLogger("supervisors.jobs")

MAX_GROUP = 512
"""The most calls committed in one transaction."""

INLINE_WEIGHT = 64
"""The most weight (e.g. jobs inserted) the calls of one inline transaction may have."""

CHECKPOINT_PAGES = 4000
"""About how many pages written to the WAL by inline commits call for a checkpoint (16 MiB of
WAL). Four times SQLite's default ``wal_autocheckpoint`` (which the thread's own commits keep):
the copy runs beside the commits, so a larger WAL costs only disk, and the pause that ends a
checkpoint comes four times less often (8 tasks enqueuing one at a time: +18%, median of 10
runs alternated with 1,000; 8,000 gained nothing more)."""

_INLINE_SETTINGS = ("PRAGMA busy_timeout=0", "PRAGMA wal_autocheckpoint=0")
"""The inline connection's settings: never wait for a lock, never checkpoint on commit."""


class _State(enum.Enum):
    WAITING = 0
    RUNNING = 1
    WITHDRAWN = 2


class _Call(Generic[T]):
    __slots__ = ("fn", "group", "item", "merge", "opens", "result", "state", "task", "token", "weight")

    def __init__(
        self,
        fn: Callable[[Any], T],
        group: bool,
        opens: bool,
        merge: Callable[[Any, list[Any]], list[Any]] | None,
        item: object,
        token: trio.lowlevel.TrioToken,
        weight: int,
    ) -> None:
        self.fn = fn
        self.group = group
        self.weight = weight
        self.opens = opens
        self.merge = merge
        self.item = item
        self.state = _State.WAITING
        self.task: trio.lowlevel.Task | None = trio.lowlevel.current_task()
        self.token = token
        self.result: outcome.Outcome[T] | None = None

    def abort(self, _: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        with _STATE_LOCK:
            if self.state is _State.WAITING:
                self.state = _State.WITHDRAWN
                return trio.lowlevel.Abort.SUCCEEDED
        return trio.lowlevel.Abort.FAILED


_STATE_LOCK = threading.Lock()
"""Guards `_Call.state` (withdrawn by the caller, taken by the thread)."""


def _wake(calls: list[_Call[Any]]) -> None:
    for call in calls:
        assert call.result is not None
        if call.task is not None:
            trio.lowlevel.reschedule(call.task, call.result)


class Writer:
    """Runs functions of one resource (``open_fn()``'s result, opened on the thread) in order.

    ``connection(resource)`` is the connection a group's transaction runs on. ``inline``: run
    small groups on the Trio thread when the thread is idle (see the module's doc). Used from one
    Trio run at a time (several runs one after the other are fine).
    """

    def __init__(
        self,
        open_fn: Callable[[], Any],
        *,
        connection: Callable[[Any], sqlite3.Connection],
        name: str,
        inline: bool = False,
    ) -> None:
        self._open_fn = open_fn
        self._connection = connection
        self._name = name
        self._inline = inline
        self._in_flight = 0
        """Calls handed to the thread and not yet finished (guarded by `_STATE_LOCK`)."""
        self._inline_resource: Any = None
        """What inline transactions run on, opened by the thread with the writer's resource: a
        second one (its connection set up by `_INLINE_SETTINGS`) for a file, the same one for an
        in-memory database."""
        self._inline_conn: sqlite3.Connection | None = None
        """``_inline_resource``'s connection once it is set up: inline transactions run only then."""
        self._commits = 0
        """Inline commits since the last checkpoint."""
        self._checkpointer: _Checkpointer | None = None
        """Copies the WAL into the database beside inline commits (file databases only: an
        in-memory one has no WAL)."""
        self._commits_per_checkpoint = 64
        """Inline commits that write about `CHECKPOINT_PAGES` pages (learnt by `_checkpoint`)."""
        self._resource: Any = None
        self._thread: threading.Thread | None = None
        self._queue: queue.SimpleQueue[list[_Call[Any]] | None] = queue.SimpleQueue()
        self._outbox: list[_Call[Any]] = []
        self._flusher: trio.lowlevel.Task | None = None
        """The flusher task while it waits to be rescheduled (see the module's doc)."""
        self._flusher_token: trio.lowlevel.TrioToken | None = None
        """The run the flusher belongs to; ``None`` when none is alive."""

    async def call(
        self,
        fn: Callable[[Any], T],
        *,
        group: bool = False,
        opens: bool = True,
        merge: Callable[[Any, list[Any]], list[Any]] | None = None,
        item: object = None,
        weight: int = 1,
    ) -> T:
        """Run ``fn(resource)`` on the thread and return its result (or raise its error).

        ``group``: ``fn`` may share a transaction with other calls (see the module's doc).
        ``opens``: open the resource first if needed; when false, ``fn`` gets ``None``.
        ``merge``, ``item`` (with ``group``): ``merge(resource, items)`` does for several such
        calls next to each other in a group what their ``fn`` would do one by one, and returns
        their results in order; ``fn(resource)`` must equal ``merge(resource, [item])[0]``.
        ``weight`` (with ``group``): how much work the call is (e.g. rows written), against
        `INLINE_WEIGHT`.

        The calls made in one pass of the Trio scheduler reach the thread together (one wake-up
        of the thread, by the flusher task in the next pass), so they can share a transaction.
        """
        if self._thread is None:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=self._main, args=(self._queue,), name=self._name, daemon=True
            )
            self._thread.start()
        outbox = self._outbox
        token = self._flusher_token
        if not outbox or token is None:  # the first call of this pass: wake the flusher
            token = trio.lowlevel.current_trio_token()
            self._wake_flusher(token)
        call: _Call[T] = _Call(fn, group, opens, merge, item, token, weight)
        outbox.append(call)
        listener = outside_work_listener()
        if listener is None:
            result: T = await trio.lowlevel.wait_task_rescheduled(call.abort)
            return result
        listener.outside_work_began()
        try:
            result = await trio.lowlevel.wait_task_rescheduled(call.abort)
        finally:
            listener.outside_work_ended()
        return result

    def _wake_flusher(self, token: trio.lowlevel.TrioToken) -> None:
        flusher = self._flusher
        if flusher is not None and self._flusher_token is token:
            self._flusher = None
            trio.lowlevel.reschedule(flusher)
        elif self._flusher_token is not token:
            # First use in this run (or the previous flusher has ended): it flushes on start.
            self._flusher_token = token
            trio.lowlevel.spawn_system_task(self._flush_loop, name=f"{self._name} flusher")

    async def _flush_loop(self) -> None:
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()
        try:
            while True:
                self._flush(inline=True)
                self._flusher = task
                await trio.lowlevel.wait_task_rescheduled(self._abort_flusher)
        finally:
            if self._flusher_token is token:
                self._flusher = self._flusher_token = None
            self._flush()  # calls made meanwhile are not left behind

    def _abort_flusher(self, _: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        self._flusher = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _flush(self, *, inline: bool = False) -> None:
        calls, self._outbox = self._outbox, []
        if not calls:
            return
        conn = self._inline_conn
        if (
            inline
            and conn is not None
            and self._in_flight == 0  # the thread is idle: no call overtaken, no checkpoint pending
            and len(calls) <= MAX_GROUP
            and all(call.group for call in calls)
            and sum(call.weight for call in calls) <= INLINE_WEIGHT
            and self._run_inline(conn, calls)
        ):
            return
        self._hand_over(calls)

    def _hand_over(self, calls: list[_Call[Any]]) -> None:
        with _STATE_LOCK:
            self._in_flight += len(calls)
        self._queue.put(calls)

    def _run_inline(self, conn: sqlite3.Connection, calls: list[_Call[Any]]) -> bool:
        """Run ``calls`` as one group on this thread and wake them; false (nothing written, the
        calls untouched) if the transaction cannot be committed at once."""
        batch = _take(collections.deque(calls))
        if not batch:
            return True
        results: list[Any] = []
        committed = False
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = _run_merged(batch, self._inline_resource)
            conn.execute("COMMIT")
            committed = True
        except Exception:  # the thread runs the calls again, and each gets its own error
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        if not committed:  # nothing was written: the thread runs them, each error its own
            with _STATE_LOCK:
                for call in batch:
                    call.state = _State.WAITING
            return False
        for call, value in zip(batch, results, strict=True):
            call.result = outcome.Value(value)
        _wake(batch)
        self._commits += 1
        checkpointer = self._checkpointer
        if checkpointer is not None and checkpointer.running:
            if checkpointer.done:  # copy the rest, so that the WAL restarts
                checkpointer.running = False
                self._hand_over_checkpoint(batch[0].token, self._commits)
        elif checkpointer is not None and self._commits >= self._commits_per_checkpoint:
            checkpointer.start(self._commits)
        return True

    def _hand_over_checkpoint(self, token: trio.lowlevel.TrioToken, commits: int) -> None:
        self._commits = 0
        check = _Call(
            lambda resource: self._checkpoint(resource, commits),
            group=False, opens=True, merge=None, item=None, token=token, weight=1,
        )
        check.task = None  # nobody waits for it
        self._hand_over([check])

    def _checkpoint(self, resource: Any, commits: int) -> None:
        """On the thread: checkpoint the WAL, and learn how many inline commits fill it. Nobody
        waits for it, so a failure is logged (the next one is tried after as many commits)."""
        frames = _checkpoint(self._connection(resource), self._name)
        checkpointer = self._checkpointer
        if checkpointer is not None and checkpointer.frames > 0:  # the WAL before it copied most
            frames, commits = checkpointer.frames, checkpointer.commits
        if frames > 0:
            per_commit = max(1.0, frames / max(1, commits))
            self._commits_per_checkpoint = max(1, min(4096, round(CHECKPOINT_PAGES / per_commit)))

    async def stop(self, close: Callable[[Any], None]) -> None:
        """Run ``close(resource)`` if it was opened, then end the thread; it restarts on use."""
        thread = self._thread
        if thread is None:
            await trio.lowlevel.checkpoint()
            return

        def finish() -> None:
            self._inline_conn = None
            inline, self._inline_resource = self._inline_resource, None
            checkpointer, self._checkpointer = self._checkpointer, None
            if checkpointer is not None:
                checkpointer.close()
            resource, self._resource = self._resource, None
            if inline is not None and inline is not resource:
                close(inline)
            if resource is not None:
                close(resource)

        try:
            await self.call(lambda _: finish(), opens=False)
        finally:
            self._thread = None
            self._queue.put(None)
            with outside_trio():
                await trio.to_thread.run_sync(thread.join)

    # --- on the thread ---------------------------------------------------------------------------

    def _main(self, q: queue.SimpleQueue[list[_Call[Any]] | None]) -> None:
        backlog: collections.deque[_Call[Any]] = collections.deque()
        stopping = False
        while True:
            if not backlog:
                if stopping:
                    return
                item = q.get()
                if item is None:
                    return
                backlog.extend(item)
            while not stopping and not q.empty():
                item = q.get()
                if item is None:
                    stopping = True
                else:
                    backlog.extend(item)
            before = len(backlog)
            batch = _take(backlog)
            if batch:
                if len(batch) == 1 and batch[0].merge is None:
                    self._run_alone(batch[0])
                else:
                    self._run_group(batch)
            # Done with the connection: the woken callers' next calls may run inline at once.
            with _STATE_LOCK:
                self._in_flight -= before - len(backlog)
            if batch:
                self._deliver(batch)

    def _resource_or_open(self) -> Any:
        if self._resource is None:
            self._resource = resource = self._open_fn()
            if self._inline:
                self._open_inline(resource)
        return self._resource

    def _open_inline(self, resource: Any) -> None:
        """Open what inline transactions run on (see ``_inline_resource``); on failure, log it
        and leave every call to this thread."""
        main = self._connection(resource).execute("PRAGMA database_list").fetchone()
        if main is None or not main[2]:  # in memory: no other process, no WAL, no checkpoints
            self._inline_resource = resource
            self._inline_conn = self._connection(resource)
            return
        try:
            self._inline_resource = inline = self._open_fn()  # `stop` closes it, whatever follows
            conn = self._connection(inline)
            for statement in _INLINE_SETTINGS:
                conn.execute(statement)
        except Exception as exc:
            logger.warning("%s: cannot open a second connection for commits on the Trio thread (%s); "
                           "every call runs on the writer thread", self._name, exc)
            return
        self._checkpointer = _Checkpointer(str(main[2]), self._name)
        self._inline_conn = conn

    def _run_alone(self, call: _Call[Any]) -> None:
        if call.opens:
            call.result = outcome.capture(lambda: call.fn(self._resource_or_open()))
        else:
            call.result = outcome.capture(call.fn, None)

    def _run_group(self, batch: list[_Call[Any]]) -> None:
        try:
            resource = self._resource_or_open()
        except BaseException as exc:
            for call in batch:
                call.result = outcome.Error(exc)
            return
        conn = self._connection(resource)
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = _run_merged(batch, resource)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # alone, each call then gets the error
                    conn.execute("ROLLBACK")
            for call in batch:
                self._run_alone(call)
            return
        for call, value in zip(batch, results, strict=True):
            call.result = outcome.Value(value)

    def _deliver(self, batch: list[_Call[Any]]) -> None:
        token = batch[0].token
        if all(call.token is token for call in batch):
            self._send(token, batch)
            return
        by_token: dict[trio.lowlevel.TrioToken, list[_Call[Any]]] = {}
        for call in batch:
            by_token.setdefault(call.token, []).append(call)
        for each, calls in by_token.items():
            self._send(each, calls)

    @staticmethod
    def _send(token: trio.lowlevel.TrioToken, calls: list[_Call[Any]]) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the callers' run ended meanwhile
            token.run_sync_soon(_wake, calls)


def _take(backlog: collections.deque[_Call[Any]]) -> list[_Call[Any]]:
    """The calls to run next, taken from the front of ``backlog`` (marked running): the first
    call not withdrawn, with the group calls that follow it if it is one (`MAX_GROUP` at most).
    Empty if every call of ``backlog`` was withdrawn."""
    batch: list[_Call[Any]] = []
    with _STATE_LOCK:
        while backlog:
            call = backlog[0]
            if batch and not (call.group and len(batch) < MAX_GROUP):
                break
            backlog.popleft()
            if call.state is _State.WITHDRAWN:
                continue
            call.state = _State.RUNNING
            batch.append(call)
            if not call.group:
                break
    return batch


def _run_merged(batch: list[_Call[Any]], resource: Any) -> list[Any]:
    """The results of ``batch``'s calls, each run of calls with the same ``merge`` as one."""
    results: list[Any] = []
    i, n = 0, len(batch)
    while i < n:
        call = batch[i]
        merge = call.merge
        j = i + 1
        if merge is not None:  # one call too: the merged form has less to do
            while j < n and batch[j].merge is merge:
                j += 1
            merged = merge(resource, [c.item for c in batch[i:j]])
            if len(merged) != j - i:  # pragma: no cover - a broken merge function
                msg = f"{merge!r} returned {len(merged)} results for {j - i} calls"
                raise RuntimeError(msg)
            results.extend(merged)
        else:
            results.append(call.fn(resource))
        i = j
    return results


def _checkpoint(conn: sqlite3.Connection, name: str) -> int:
    """``PRAGMA wal_checkpoint(PASSIVE)`` on ``conn``: the frames the WAL held, or -1 if it
    failed (logged: nobody waits for a checkpoint)."""
    try:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error as exc:
        logger.warning("%s: checkpoint of the WAL failed (%s); the WAL grows until one succeeds", name, exc)
        return -1
    return int(row[1]) if row is not None else -1


class _Checkpointer:
    """A thread with its own connection to the file that copies the WAL into the database
    (``PASSIVE``) when asked, while the writer's connection goes on committing.

    Driven from the Trio thread: `start` when enough was written; ``done`` turns true on the
    thread when the copy is over (``frames``: what the WAL held, for ``commits`` commits).
    """

    def __init__(self, path: str, name: str) -> None:
        self._path = path
        self._name = name
        self._go = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.running = False
        self.done = False
        self.frames = 0
        self.commits = 0

    def start(self, commits: int) -> None:
        self.running, self.done, self.commits, self.frames = True, False, commits, 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=f"{self._name} checkpointer", daemon=True)
            self._thread.start()
        self._go.set()

    def close(self) -> None:
        """End the thread (after the checkpoint under way, if any)."""
        self._closing = True
        self._go.set()
        if self._thread is not None:
            self._thread.join()

    def _main(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._go.wait()
                self._go.clear()
                if self._closing:
                    return
                if conn is None:
                    try:
                        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                    except sqlite3.Error as exc:
                        logger.warning("%s: cannot open a connection to checkpoint the WAL (%s)", self._name, exc)
                self.frames = -1 if conn is None else _checkpoint(conn, self._name)
                self.done = True
        finally:
            if conn is not None:
                conn.close()
