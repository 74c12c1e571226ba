"""The job system as a subtree: its shape, and recovery when a queue worker crashes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import trio
from trio.testing import MockClock

from supervisors import ChildState, Tree
from supervisors.jobs import (
    Failure,
    InMemoryStore,
    JobRegistry,
    JobState,
    JobSystem,
    Settled,
    TrioWallClock,
)

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]


class FlakyStore(InMemoryStore):  # type: ignore[misc]
    """An in-memory store whose next ``settle_and_claim`` raises when ``fail_next`` is set."""

    fail_next = False

    async def settle_and_claim(
        self,
        queue: str,
        limit: int,
        *,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[tuple[int, int]] = (),
        failed: Sequence[Failure] = (),
    ) -> Settled:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk I/O error")
        return await super().settle_and_claim(
            queue, limit, owner=owner, now=now, lease_until=lease_until,
            succeeded=succeeded, failed=failed,
        )  # fmt: skip


async def test_subtree_has_store_workers_and_scheduler(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """The subtree holds the store, one worker per queue and the scheduler."""
    reg = JobRegistry()
    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall, queues={"a": 1, "b": 2})
    async with running(jobs) as tree:
        snapshot = tree.snapshot()
    paths = {
        node.path
        for node in (
            snapshot.find(p) for p in ("jobs/store", "jobs/workers/a", "jobs/workers/b", "jobs/scheduler")
        )
        if node is not None and node.state is ChildState.RUNNING
    }
    assert paths == {
        "app/jobs/store",
        "app/jobs/workers/a",
        "app/jobs/workers/b",
        "app/jobs/scheduler",
    }


async def test_crashed_queue_worker_is_restarted_and_its_jobs_run_again(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A store error crashes the queue worker; it restarts, and the job it was running is
    returned to the queue (the interrupted attempt counts) and run again."""
    reg = JobRegistry()
    started: list[str] = []

    @reg.job()
    async def long() -> None:
        started.append("long")
        await trio.sleep(10)

    @reg.job()
    async def short() -> None:
        started.append("short")

    store = FlakyStore()
    jobs = JobSystem(store=store, registry=reg, clock=wall, queues={"default": 2})
    async with running(jobs) as tree:
        long_id = await jobs.enqueue("long")
        await trio.sleep(1)
        store.fail_next = True
        # A concurrency key: not claimed by its own insert, so the pump's claim fails.
        short_id = await jobs.enqueue("short", concurrency_key="k")
        long_job = await jobs.wait_finished(long_id)
        short_job = await jobs.wait_finished(short_id)
        worker = tree.snapshot().find("jobs/workers/default")
    assert worker is not None
    assert worker.restarts == 1
    assert "disk I/O error" in (worker.last_error or "")
    assert (long_job.state, long_job.attempt) == (JobState.SUCCEEDED, 2)
    assert [e.error.split(":")[0] for e in long_job.errors] == ["interrupted"]
    assert short_job.state is JobState.SUCCEEDED
    assert started == ["long", "long", "short"] or started == ["long", "short", "long"]
