"""`SQLiteStore`: the embedded default store; one file, WAL mode, blocking calls off Trio."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar, final

import trio

from ._model import ClaimedJob, Failure, Job, JobCounts, JobState, NewJob, Promoted
from ._sqlite_db import SQLiteDB
from ._store import Store
from ._wakeup import listen
from ._writer import Writer

T = TypeVar("T")


@final
class SQLiteStore(Store):
    """Jobs in one SQLite file (WAL mode), created with its schema on first use.

    Every call runs on a worker thread (``trio.to_thread.run_sync``) through one connection,
    guarded by a ``CapacityLimiter`` of 1, so the Trio thread never blocks on disk. Several
    processes may share the file: claims and recurring occurrences are transactional and leased,
    so a job is claimed by one host at a time (see the at-least-once guarantee in the docs).

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
            self._connect, connection=_connection, name=f"SQLiteStore({str(self.path)!r})"
        )

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _connect(self) -> SQLiteDB:
        return SQLiteDB(self.path, synchronous=self._synchronous)

    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        return await self._writer.call(fn)

    async def _run_grouped(self, fn: Callable[[SQLiteDB], T]) -> T:
        return await self._writer.call(fn, group=True)

    async def open(self) -> None:
        """Check, open and migrate the file; raises `StoreError` if it is unusable."""
        await self._run(lambda db: None)

    async def insert(self, jobs: Sequence[NewJob], *, now: float) -> list[int]:
        return await self._run_grouped(lambda db: db.insert(jobs, now))

    async def claim(
        self, queue: str, limit: int, *, owner: str, now: float, lease_until: float
    ) -> list[ClaimedJob]:
        return await self._run_grouped(lambda db: db.claim(queue, limit, owner, now, lease_until))

    async def settle(
        self,
        *,
        owner: str,
        now: float,
        succeeded: Sequence[int] = (),
        failed: Sequence[Failure] = (),
        released: Sequence[int] = (),
    ) -> None:
        await self._run_grouped(lambda db: db.settle(owner, now, succeeded, failed, released))

    async def settle_and_claim(
        self,
        queue: str,
        limit: int,
        *,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[int] = (),
        failed: Sequence[Failure] = (),
    ) -> list[ClaimedJob]:
        return await self._run_grouped(
            lambda db: db.settle_and_claim(queue, limit, owner, now, lease_until, succeeded, failed)
        )

    async def renew(self, ids: Sequence[int], *, owner: str, lease_until: float) -> None:
        await self._run_grouped(lambda db: db.renew(ids, owner, lease_until))

    async def promote_due(self, *, now: float) -> Promoted:
        return await self._run(lambda db: db.promote_due(now))

    async def requeue_expired(self, *, now: float) -> frozenset[str]:
        return await self._run(lambda db: db.requeue_expired(now))

    async def cursor(self, schedule: str) -> float | None:
        return await self._run(lambda db: db.cursor(schedule))

    async def fire(
        self,
        schedule: str,
        *,
        expected: float | None,
        cursor: float,
        jobs: Sequence[NewJob],
        exclusive: bool,
        now: float,
    ) -> list[int] | None:
        return await self._run(lambda db: db.fire(schedule, expected, cursor, jobs, exclusive, now))

    async def get(self, job_id: int) -> Job | None:
        return await self._run(lambda db: db.get(job_id))

    async def list(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        return await self._run(lambda db: db.list(state, queue, limit, offset))

    async def counts(self) -> JobCounts:
        return await self._run(lambda db: db.counts())

    async def retry(self, job_id: int, *, now: float, attempts: int) -> str:
        return await self._run(lambda db: db.retry(job_id, now, attempts))

    async def prune(self, *, before: float) -> int:
        return await self._run(lambda db: db.prune(before))

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
        """Close the connection and end the writer thread; the store reopens if used again."""
        await self._writer.stop(SQLiteDB.close)


def _connection(db: SQLiteDB) -> sqlite3.Connection:
    return db.conn
