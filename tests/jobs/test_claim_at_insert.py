"""Jobs claimed by their own insert (`Store.insert_and_claim`): the store contract (every store
either claims as `claim` would or only inserts), the SQLite merge of such inserts with others,
and `JobSystem.enqueue` handing a job claimed so straight to a free worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import trio
from _contract import LEASE, T0, claim, new, state
from trio.testing import MockClock

from supervisors import Tree
from supervisors.jobs import (
    InMemoryStore,
    JobRegistry,
    JobState,
    JobSystem,
    NewJob,
    SQLiteStore,
    Store,
    TrioWallClock,
)
from supervisors.jobs._sqlite_db import SQLiteDB
from supervisors.jobs._sqlite_merge import ClaimAtInsert, insert_merged

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]


async def insert_and_claim(store: Store, job: NewJob, owner: str = "a") -> tuple[int, bool]:
    job_id, claimed = await store.insert_and_claim(job, now=T0, owner=owner, lease_until=T0 + LEASE)
    if claimed is not None:
        assert claimed.token == (job_id, 1)
        assert (claimed.name, claimed.queue, claimed.args) == (job.name, job.queue, job.args)
    return job_id, claimed is not None


def claims_at_insert(store: Store) -> bool:
    """The SQLite stores claim here; PostgreSQL keeps the default (insert only)."""
    from supervisors.jobs import PostgresStore

    return not isinstance(store, PostgresStore)


async def test_a_job_inserted_into_an_idle_queue_is_claimed_by_its_insert(any_store: Store) -> None:
    """On a queue with nothing waiting, the job comes back claimed: running, attempt 1, leased
    to the owner, so no other claimer gets it and its token settles it. A store that does not
    claim here leaves it exactly as `insert` would (enqueued)."""
    job_id, claimed = await insert_and_claim(any_store, new())
    job = await any_store.get(job_id)
    assert job is not None
    if not claims_at_insert(any_store):
        assert not claimed
        assert (job.state, job.attempt) == (JobState.ENQUEUED, 0)
        return
    assert claimed
    assert (job.state, job.attempt) == (JobState.RUNNING, 1)
    assert job.lease_until is not None
    assert job.lease_until.timestamp() == T0 + LEASE
    assert await claim(any_store, owner="b") == []
    settled = await any_store.settle(owner="a", now=T0, succeeded=[(job_id, 1)])
    assert settled.refused == frozenset()
    assert await state(any_store, job_id) is JobState.SUCCEEDED


async def test_a_job_is_not_claimed_by_its_insert_past_a_job_waiting_in_its_queue(any_store: Store) -> None:
    """A waiting job is handed out first: the new one is only inserted, and claims take the two
    in their order."""
    (first,) = await any_store.insert([new()], now=T0)
    second, claimed = await insert_and_claim(any_store, new())
    assert not claimed
    assert await state(any_store, second) is JobState.ENQUEUED
    assert await claim(any_store, limit=1) == [first]
    assert await claim(any_store, limit=1) == [second]


@pytest.mark.parametrize(
    "case", ["paused queue", "rate limit", "concurrency key", "due later", "unique key"]
)
async def test_a_job_a_limit_applies_to_is_only_inserted(any_store: Store, case: str) -> None:
    """A paused or rate-limited queue, a concurrency key, a job due later, a unique key: the job
    is inserted as `insert` does (the claim path counts the limits), never claimed by its insert."""
    job = new()
    if case == "paused queue":
        await any_store.pause_queue("default", paused=True, now=T0)
    elif case == "rate limit":
        await any_store.set_rate_limit("default", limit=100, period=60.0)
    elif case == "concurrency key":
        job = new(key="user-1")
    elif case == "due later":
        job = new(run_at=T0 + 5)
    else:
        job = new(unique_key="k")
    job_id, claimed = await insert_and_claim(any_store, job)
    assert not claimed
    expected = JobState.SCHEDULED if case == "due later" else JobState.ENQUEUED
    assert await state(any_store, job_id) is expected


async def test_a_unique_job_claimed_by_an_insert_still_blocks_its_copies(any_store: Store) -> None:
    """A unique key is never claimed at insert; its unfinished copy's id is returned as by
    `insert`."""
    first, _ = await insert_and_claim(any_store, new(unique_key="k"))
    again, claimed = await insert_and_claim(any_store, new(unique_key="k"))
    assert (again, claimed) == (first, False)


@pytest.fixture(params=["memory", "sqlite"])
async def claiming_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The stores that claim at insert."""
    store: Store = InMemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "jobs.db")
    try:
        yield store
    finally:
        await store.aclose()


async def test_a_job_claimed_by_its_insert_whose_lease_expires_is_requeued(claiming_store: Store) -> None:
    """Lease expiry treats it as any claimed job: back to the queue, its attempt counted."""
    job_id, claimed = await insert_and_claim(claiming_store, new())
    assert claimed
    await claiming_store.requeue_expired(now=T0 + LEASE + 1)
    job = await claiming_store.get(job_id)
    assert job is not None
    assert (job.state, job.attempt) == (JobState.ENQUEUED, 1)


def test_merged_inserts_claim_only_up_to_the_first_job_left_waiting_in_a_queue() -> None:
    """In one group: claims at insert are granted in order until an item leaves a job waiting
    in that queue; after it, that queue's claims are plain inserts (the waiting job goes
    first); other queues are not affected. Ids are given in each statement's order."""
    db = SQLiteDB(":memory:")
    try:
        items = [
            ClaimAtInsert(new(), T0, "a", T0 + LEASE),
            ClaimAtInsert(new(), T0, "a", T0 + LEASE),
            ([new()], T0),
            ClaimAtInsert(new(), T0, "a", T0 + LEASE),
            ClaimAtInsert(new(queue="other"), T0, "a", T0 + LEASE),
        ]
        db.conn.execute("BEGIN IMMEDIATE")
        out = insert_merged(db, items)
        db.conn.execute("COMMIT")
        assert [r[1] for r in (out[0], out[1], out[3], out[4])] == [True, True, False, True]
        ids = [out[0][0], out[1][0], out[2][0], out[3][0], out[4][0]]
        assert len(set(ids)) == 5
        states = {i: db.get(i).state for i in ids}  # type: ignore[union-attr]
        assert [states[i] for i in ids] == [
            JobState.RUNNING, JobState.RUNNING, JobState.ENQUEUED, JobState.ENQUEUED, JobState.RUNNING,
        ]  # fmt: skip
    finally:
        db.close()


# --- JobSystem.enqueue ---------------------------------------------------------------------


async def test_enqueue_with_a_free_slot_returns_with_the_job_already_running(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """With a slot free here, the job is claimed by its own insert: when ``enqueue`` returns it
    is running (no claim to wait for) and it starts without another store call."""
    reg = JobRegistry()
    release = trio.Event()
    started = trio.Event()

    @reg.job()
    async def slow() -> None:
        started.set()
        await release.wait()

    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall, queues={"default": 2})
    async with running(jobs):
        job_id = await jobs.enqueue("slow")
        job = await jobs.get(job_id)
        assert (job.state, job.attempt) == (JobState.RUNNING, 1)
        await started.wait()
        release.set()
        assert (await jobs.wait_finished(job_id)).state is JobState.SUCCEEDED


async def test_enqueue_with_every_slot_busy_leaves_the_job_waiting_until_one_frees(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Every slot taken: the job is enqueued and the worker claims it once a slot frees."""
    reg = JobRegistry()
    release = trio.Event()
    ran: list[str] = []

    @reg.job()
    async def first() -> None:
        ran.append("first")
        await release.wait()

    @reg.job()
    async def second() -> None:
        ran.append("second")

    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall, queues={"default": 1})
    async with running(jobs):
        first_id = await jobs.enqueue("first")
        second_id = await jobs.enqueue("second")
        assert (await jobs.get(second_id)).state is JobState.ENQUEUED
        await trio.sleep(1)
        assert ran == ["first"]
        release.set()
        assert (await jobs.wait_finished(second_id)).state is JobState.SUCCEEDED
        assert (await jobs.get(first_id)).state is JobState.SUCCEEDED
    assert ran == ["first", "second"]


async def test_enqueue_into_a_paused_queue_with_free_slots_runs_nothing(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A paused queue: the job waits, enqueued, although slots are free, and runs on resume."""
    reg = JobRegistry()

    @reg.job()
    async def work() -> None:
        await trio.lowlevel.checkpoint()

    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall)
    async with running(jobs):
        await jobs.pause_queue("default")
        job_id = await jobs.enqueue("work")
        await trio.sleep(5)
        assert (await jobs.get(job_id)).state is JobState.ENQUEUED
        await jobs.resume_queue("default")
        assert (await jobs.wait_finished(job_id)).state is JobState.SUCCEEDED


async def test_a_failing_insert_gives_its_reserved_slot_back(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """An insert that raises leaves no slot taken: the worker still runs as many jobs as its
    concurrency allows."""
    reg = JobRegistry()
    release = trio.Event()
    started: list[int] = []

    @reg.job()
    async def slow(n: int) -> None:
        started.append(n)
        await release.wait()

    class Failing(InMemoryStore):  # type: ignore[misc]
        fail = True

        async def insert_and_claim(self, job: NewJob, **kw: object) -> tuple[int, None]:
            if self.fail:
                self.fail = False
                raise OSError("disk I/O error")
            return await super().insert_and_claim(job, **kw)  # type: ignore[arg-type, no-any-return]

    jobs = JobSystem(store=Failing(), registry=reg, clock=wall, queues={"default": 1})
    async with running(jobs):
        with pytest.raises(OSError, match="disk I/O error"):
            await jobs.enqueue("slow", 0)
        job_id = await jobs.enqueue("slow", 1)
        assert (await jobs.get(job_id)).state is JobState.RUNNING
        await trio.sleep(1)
        assert started == [1]
        release.set()
        await jobs.wait_finished(job_id)


async def test_a_job_claimed_as_its_runner_stopped_is_logged_and_left_to_its_lease(
    autojump_clock: MockClock, wall: TrioWallClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A runner that stopped while an insert it reserved a slot for was in flight (cancelled,
    so its pump no longer waited) cannot run the job: it says so, and the job stays leased
    until its lease expires."""
    from supervisors.jobs._model import ClaimedJob
    from supervisors.jobs._runner import QueueRunner

    jobs = JobSystem(store=InMemoryStore(), registry=JobRegistry(), clock=wall, queues={"default": 1})
    runner = QueueRunner(jobs._core, "default", 1)
    assert not runner.reserve()  # not running: no slot to take
    runner._in_flight = 1  # a slot reserved before it stopped
    with caplog.at_level(logging.WARNING, logger="supervisors.jobs"):
        runner.accept(ClaimedJob(7, "mail", "default", "null", 1, 3))
    assert runner._in_flight == 0
    assert "job 7 (mail) was claimed as the runner of queue 'default' stopped" in caplog.text
