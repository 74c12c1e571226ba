"""Retention: what is kept, for how long, pruned in small batches, and the disk space given back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path

import trio
from trio.testing import MockClock

from supervisors import Tree
from supervisors.jobs import (
    Failure,
    InMemoryStore,
    JobRegistry,
    JobState,
    JobSystem,
    NewJob,
    RetryPolicy,
    SQLiteStore,
    TrioWallClock,
)
from supervisors.jobs._sqlite_db import SQLiteDB
from supervisors.jobs._sqlite_open import JOURNAL_SIZE_LIMIT

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]
T0 = 1_700_000_000.0


class CountingStore(InMemoryStore):  # type: ignore[misc]
    """An in-memory store that records how many jobs each ``prune`` call deleted."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def prune(self, *, state: JobState, before: float, limit: int = 500) -> int:
        n = await super().prune(state=state, before=before, limit=limit)
        self.batches.append(n)
        return n


async def test_retention_prunes_in_small_batches(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """1,200 succeeded jobs that come of age together are deleted by three transactions (500,
    500, 200), not one."""
    store = CountingStore()
    # All finished at the same time, written to the store directly: jobs run by the system
    # would finish at times spread by the autojump clock (it jumps while a sync job's thread
    # works), and be pruned in as many smaller passes.
    now = wall.now()
    ids = await store.insert(
        [NewJob(name="ok", queue="default", args="null", run_at=now, max_attempts=1)] * 1200, now=now
    )
    claimed = await store.claim("default", len(ids), owner="t", now=now, lease_until=now + 60)
    await store.settle(owner="t", now=now, succeeded=[c.token for c in claimed])
    jobs = JobSystem(store=store, registry=JobRegistry(), clock=wall, keep_succeeded=timedelta(hours=1))
    async with running(jobs):
        await trio.sleep(3600 - 1)
        kept = (await jobs.counts()).total
        await trio.sleep(120)
        counts = await jobs.counts()
    assert (kept, counts.total) == (1200, 0)
    assert [n for n in store.batches if n] == [500, 500, 200]


async def test_dead_jobs_are_pruned_after_keep_dead(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A dead job is kept for ``keep_dead``, then deleted with its errors."""
    reg = JobRegistry()

    @reg.job(max_attempts=1)
    async def bad() -> None:
        raise ValueError("x")

    jobs = JobSystem(
        store=InMemoryStore(), registry=reg, clock=wall, keep_dead=timedelta(hours=2)
    )
    async with running(jobs):
        job_id = await jobs.enqueue("bad")
        await jobs.wait_finished(job_id)
        await trio.sleep(3600)
        kept = (await jobs.counts()).by_state[JobState.DEAD]
        await trio.sleep(3600 + 120)
        gone = (await jobs.counts()).by_state[JobState.DEAD]
    assert (kept, gone) == (1, 0)


async def test_a_job_keeps_the_first_and_last_tracebacks_only(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """With ``keep_tracebacks=3``, a job failing 8 times keeps the tracebacks of attempts 1, 7
    and 8; every attempt keeps its one-line error."""
    reg = JobRegistry()

    @reg.job(retry=RetryPolicy(max_attempts=8, jitter=0.0))
    async def flaky() -> None:
        raise ValueError("again")

    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall, keep_tracebacks=3)
    async with running(jobs):
        job = await jobs.wait_finished(await jobs.enqueue("flaky"))
    assert [e.error for e in job.errors] == ["ValueError: again"] * 8
    assert [e.attempt for e in job.errors if e.traceback] == [1, 7, 8]
    assert "Traceback" in job.errors[0].traceback


def test_a_new_database_file_vacuums_incrementally_and_bounds_its_wal(tmp_path: Path) -> None:
    """A new job database is made with ``auto_vacuum=INCREMENTAL``; the WAL is bounded by
    ``journal_size_limit``."""
    db = SQLiteDB(tmp_path / "jobs.db")
    try:
        assert db.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert db.conn.execute("PRAGMA journal_size_limit").fetchone()[0] == JOURNAL_SIZE_LIMIT
    finally:
        db.close()


async def test_pruning_gives_the_space_back_to_the_file_system(tmp_path: Path) -> None:
    """After dead jobs with big tracebacks are pruned, `reclaim` shrinks the file."""
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path)
    try:
        new = NewJob(name="j", queue="q", args='"' + "x" * 1000 + '"', run_at=T0, max_attempts=1)
        ids = await store.insert([new] * 2000, now=T0)
        claimed = await store.claim("q", 2000, owner="a", now=T0, lease_until=T0 + 30)
        failures = [Failure(c.id, c.attempt, "E", "tb" * 2000, None) for c in claimed]
        await store.settle(owner="a", now=T0, failed=failures)
        big = size_after_checkpoint(path)
        pruned = 0
        while n := await store.prune(state=JobState.DEAD, before=T0 + 1):
            pruned += n
        while await store.reclaim(pages=1000):
            pass
        small = size_after_checkpoint(path)
    finally:
        await store.aclose()
    assert pruned == len(ids)
    assert small < big / 10


def size_after_checkpoint(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path.stat().st_size
