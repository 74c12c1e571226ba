"""`SQLiteStore`: the embedded default store; one file, WAL mode, blocking calls off Trio."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar, final

import trio

from ._model import ClaimedJob, NewJob
from ._sqlite_db import SQLiteDB
from ._sqlite_merge import ClaimAtInsert, claimed_at_insert, insert_claimed, insert_merged
from ._sqlstore import SQLStore
from ._wakeup import listen
from ._writer import Writer

T = TypeVar("T")


@final
class SQLiteStore(SQLStore):
    """Jobs in one SQLite file (WAL mode), created with its schema on first use.

    The file is checked before anything is written to it (`StoreError`, naming the file, if it
    is not a job store, is read-only or was written by a newer version) and migrated to the
    current schema. Calls run on the store's writer thread through its connection; inserts,
    claims and outcomes waiting together are committed in one transaction (group commit), and
    each call returns only once its own transaction committed. When the writer thread is idle,
    such a small group (at most 64 jobs inserted) is committed on the Trio thread instead,
    through a second connection, saving two thread hand-offs, but only if it can be done at
    once: it never waits for a lock (if another connection holds the file's write lock, the
    group goes to the writer thread) and never writes the database file or calls ``fsync``
    (its commit appends to the WAL; a checkpointer thread copies the WAL into the file beside
    it). With ``synchronous="FULL"`` or ``"EXTRA"``, where every commit
    waits for the disk, all calls run on the writer thread. Calls that only read (`get`,
    `search`, `counts`, ...) run on a reader thread with a connection of its own, opened by the
    first of them: each sees every transaction committed before it was called, and none holds
    up the writes (a count of a million jobs reads for about 0.15 s). Several processes may
    share the file: claims and recurring occurrences are transactional and leased, so a job is
    claimed by one host at a time (see the at-least-once guarantee in the docs), and a
    `JobClient` wakes the hosts on the file after it enqueues (see "Cross-process wake-up" in
    the docs).

    ``synchronous`` is SQLite's ``PRAGMA synchronous``; defaults to ``"NORMAL"``, which in WAL
    mode survives the crash of the process (``kill -9``) but may lose the last transactions on a
    power failure; use ``"FULL"`` to survive that too, at a cost in enqueue throughput.
    Requires SQLite 3.35 or later (`StoreError` otherwise).
    """

    shared = True

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._writer = Writer(
            self._connect,
            connection=_connection,
            name=f"SQLiteStore({str(self.path)!r})",
            # A commit that waits for the disk (FULL, EXTRA) never runs on the Trio thread.
            inline=synchronous.upper() in ("NORMAL", "OFF"),
        )
        # Reads run on a connection and thread of their own (a private in-memory database has
        # one connection only): in WAL mode they read the last commit while writes go on.
        self._reader = None if str(self.path) == ":memory:" else Writer(
            self._connect, connection=_connection, name=f"SQLiteStore({str(self.path)!r}) reader"
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _connect(self) -> SQLiteDB:
        return SQLiteDB(self.path, synchronous=self._synchronous)

    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        return await self._writer.call(fn)

    async def _read(self, fn: Callable[[SQLiteDB], T]) -> T:
        if self._reader is None:
            return await self._writer.call(fn)
        return await self._reader.call(fn)

    async def _run_grouped(self, fn: Callable[[SQLiteDB], T]) -> T:
        return await self._writer.call(fn, group=True)

    async def insert(self, jobs: Sequence[NewJob], *, now: float) -> list[int]:
        # Several enqueuers waiting together: one multi-row INSERT (`insert_merged`).
        return await self._writer.call(
            lambda db: db.insert(jobs, now),
            group=True,
            merge=insert_merged,
            item=(jobs, now),
            weight=len(jobs),
        )

    async def insert_and_claim(
        self, job: NewJob, *, now: float, owner: str, lease_until: float
    ) -> tuple[int, ClaimedJob | None]:
        # Merged with the other inserts waiting together (`insert_merged`).
        item = ClaimAtInsert(job, now, owner, lease_until)
        job_id, claimed = await self._writer.call(
            lambda db: insert_claimed(db, item), group=True, merge=insert_merged, item=item
        )
        return job_id, claimed_at_insert(job, job_id) if claimed else None

    async def open(self) -> None:
        """Check, open and migrate the file; raises `StoreError` if it is unusable."""
        await self._run(lambda db: None)

    async def watch(
        self,
        wake: Callable[[str | None], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Wake on the datagrams `JobClient` sends after it committed (see the docs)."""
        if str(self.path) == ":memory:":
            await super().watch(wake, task_status=task_status)
            return
        await listen(self.path, wake, task_status=task_status)

    async def aclose(self) -> None:
        """Close the connections and end the store's threads; the store reopens if used again."""
        if self._reader is not None:
            await self._reader.stop(SQLiteDB.close)
        await self._writer.stop(SQLiteDB.close)


def _connection(db: SQLiteDB) -> sqlite3.Connection:
    return db.conn
