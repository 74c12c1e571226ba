"""`SQLStore`: the `Store` methods over a `SQLiteDB`, for every store that speaks SQL to SQLite.

Subclasses say only how a call reaches the connection (`SQLStore._run`): `SQLiteStore` on a
worker thread, `InMemoryStore` inline on a private ``:memory:`` database. A call that only reads
goes through `SQLStore._read`, which a store may run beside the writes (`SQLiteStore` does).
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

from ._lifecycle import Op
from ._model import (
    ClaimedJob,
    Failure,
    Job,
    JobCounts,
    JobSettings,
    JobState,
    NewJob,
    Promoted,
    ScheduleSettings,
    Settled,
    Success,
    Token,
)
from ._query import JobPage, JobQuery
from ._reports import AttemptProgress, LedgerEntry, ProgressReport, ScheduleInfo
from ._sqlite_db import SQLiteDB
from ._store import Store

T = TypeVar("T")

_claim_tags = itertools.count(1)
"""The tags of this process's claims (unique per owner, which is unique per process)."""


def _claiming(fn: Callable[[SQLiteDB, str, bool], T]) -> Callable[[SQLiteDB], T]:
    """``fn(db, tag, retry)`` for `SQLStore._run`: one new claim tag for the call, and ``retry``
    true when the call is run again (its connection broke, or its group was rolled back): then
    `SQLiteDB._claim` first looks for the jobs an earlier run of it claimed and committed."""
    tag = str(next(_claim_tags))
    runs = 0

    def run(db: SQLiteDB) -> T:
        nonlocal runs
        runs += 1
        return fn(db, tag, runs > 1)

    return run


class SQLStore(Store):
    """The store contract carried out by `SQLiteDB` (the SQL of `_sql`)."""

    @abc.abstractmethod
    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        """Call ``fn`` with the connection, serialised with every other call; checkpoints."""

    async def _read(self, fn: Callable[[SQLiteDB], T]) -> T:
        """As `_run`, for ``fn`` that only reads (its reads in one transaction when it needs
        them consistent): it sees every transaction committed before the call, and may run
        beside the writes, on another connection, so that a long read (a count of every job, a
        search scanning many) does not hold them up. Defaults to `_run`."""
        return await self._run(fn)

    async def _run_grouped(self, fn: Callable[[SQLiteDB], T]) -> T:
        """As `_run`, for a write that may share a transaction with other such calls waiting
        at the same time (group commit: `SQLiteDB`'s writes join a transaction already open);
        it still returns only once that transaction committed. Defaults to `_run`."""
        return await self._run(fn)

    async def insert(self, jobs: Sequence[NewJob], *, now: float) -> list[int]:
        return await self._run_grouped(lambda db: db.insert(jobs, now))

    async def claim(
        self, queue: str, limit: int, *, owner: str, now: float, lease_until: float
    ) -> list[ClaimedJob]:
        return await self._run_grouped(
            _claiming(lambda db, tag, retry: db.claim(queue, limit, owner, now, lease_until, tag, retry))
        )

    async def settle(
        self,
        *,
        owner: str,
        now: float,
        succeeded: Sequence[Token | Success] = (),
        failed: Sequence[Failure] = (),
        released: Sequence[Token] = (),
    ) -> Settled:
        return await self._run_grouped(lambda db: db.settle(owner, now, succeeded, failed, released))

    async def settle_and_claim(
        self,
        queue: str,
        limit: int,
        *,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[Token | Success] = (),
        failed: Sequence[Failure] = (),
    ) -> Settled:
        return await self._run_grouped(
            _claiming(
                lambda db, tag, retry: db.settle_and_claim(
                    queue, limit, owner, now, lease_until, succeeded, failed, tag, retry
                )
            )
        )

    async def renew(
        self, tokens: Sequence[Token], *, owner: str, lease_until: float
    ) -> frozenset[int]:
        return await self._run_grouped(lambda db: db.renew(tokens, owner, lease_until))

    async def define(self, settings: Sequence[JobSettings]) -> None:
        await self._run(lambda db: db.define(settings))

    async def job_names(self) -> frozenset[str]:
        return await self._read(lambda db: db.job_names())

    async def promote_due(self, *, now: float) -> Promoted:
        return await self._run(lambda db: db.promote_due(now))

    async def requeue_expired(self, *, now: float) -> frozenset[str]:
        return await self._run(lambda db: db.requeue_expired(now))

    async def cursor(self, schedule: str) -> float | None:
        return await self._read(lambda db: db.cursor(schedule))

    async def fire(
        self,
        schedule: str,
        *,
        expected: float | None,
        cursor: float,
        jobs: Sequence[NewJob],
        exclusive: bool,
        now: float,
        hold: bool = False,
        owner: str = "",
        notes: Mapping[float, str] | None = None,
    ) -> list[int] | None:
        return await self._run(
            lambda db: db.fire(schedule, expected, cursor, jobs, exclusive, now, hold, owner, notes)
        )

    async def ledger(self, schedule: str, *, limit: int = 100) -> list[LedgerEntry]:
        return await self._read(lambda db: db.ledger(schedule, limit))

    async def trim_ledger(self, *, keep: int) -> int:
        return await self._run(lambda db: db.trim_ledger(keep))

    async def schedules(self, *, now: float) -> list[ScheduleInfo]:
        return await self._read(lambda db: db.schedules(now))

    async def report(
        self, reports: Sequence[ProgressReport], *, owner: str, now: float
    ) -> frozenset[int]:
        return await self._run_grouped(lambda db: db.report(reports, owner, now))

    async def progress(self, job_id: int) -> list[AttemptProgress]:
        return await self._read(lambda db: db.progress(job_id))

    async def get(self, job_id: int) -> Job | None:
        return await self._read(lambda db: db.get(job_id))

    async def list(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        return await self._read(lambda db: db.list(state, queue, limit, offset))

    async def search(self, query: JobQuery) -> JobPage:
        return await self._read(lambda db: db.search(query))

    async def counts(self) -> JobCounts:
        return await self._read(lambda db: db.counts())

    async def has_work(self, queues: Collection[str]) -> bool:
        return await self._read(lambda db: db.has_work(queues))

    async def retry(self, job_id: int, *, now: float, attempts: int) -> str:
        return await self._run(lambda db: db.retry(job_id, now, attempts))

    async def requeue(self, job_id: int, *, now: float, attempts: int) -> str:
        return await self._run(lambda db: db.retry(job_id, now, attempts, Op.REQUEUE))

    async def cancel(self, job_id: int, *, now: float) -> tuple[JobState, str]:
        return await self._run(lambda db: db.cancel(job_id, now))

    async def cancelling(self, job_ids: Sequence[int]) -> frozenset[int]:
        return await self._read(lambda db: db.cancelling(job_ids))

    async def delete(self, job_id: int, *, now: float) -> None:
        await self._run(lambda db: db.delete(job_id, now))

    async def pause_queue(self, queue: str, *, paused: bool, now: float) -> None:
        await self._run(lambda db: db.pause_queue(queue, paused, now))

    async def paused_queues(self) -> frozenset[str]:
        return await self._read(lambda db: db.paused_queues())

    async def define_schedules(self, schedules: Sequence[ScheduleSettings]) -> None:
        await self._run(lambda db: db.define_schedules(schedules))

    async def trigger(self, schedule: str, *, now: float, owner: str = "") -> tuple[int, str]:
        return await self._run(lambda db: db.trigger(schedule, now, owner))

    async def pause_schedule(self, schedule: str, *, paused: bool) -> None:
        await self._run(lambda db: db.pause_schedule(schedule, paused))

    async def paused_schedules(self) -> frozenset[str]:
        return await self._read(lambda db: db.paused_schedules())

    async def set_rate_limit(self, queue: str, *, limit: int | None, period: float) -> None:
        await self._run(lambda db: db.set_rate_limit(queue, limit, period))

    async def rate_limits(self) -> dict[str, tuple[int, float]]:
        return await self._read(lambda db: db.rate_limits())

    async def prune(self, *, state: JobState, before: float, limit: int = 500) -> int:
        return await self._run(lambda db: db.prune(state, before, limit))

    async def reclaim(self, *, pages: int = 1000) -> int:
        return await self._run(lambda db: db.reclaim(pages))
