"""Operations on jobs, queues and schedules, from `JobSystem` and `JobClient` alike."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from supervisors import Tree
from supervisors.jobs import (
    InMemoryStore,
    JobClient,
    JobNotFoundError,
    JobRegistry,
    JobState,
    JobStateError,
    JobSystem,
    RateLimit,
    Recurring,
    ScheduleNotFoundError,
    SQLiteStore,
    TrioWallClock,
    current_job,
)

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]


def blocking_registry(started: trio.Event, seen: list[str]) -> JobRegistry:
    reg = JobRegistry()

    @reg.job()
    async def slow() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            seen.append("cancelled")
            raise

    @reg.job()
    async def quick() -> None:
        seen.append("quick")

    return reg


async def test_cancel_of_a_job_running_here_cancels_its_run_at_once(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """The function sees trio.Cancelled; the job is CANCELLED with a ``cancelled:`` error, not
    retried, and its slot is free again."""
    started, seen = trio.Event(), []
    reg = blocking_registry(started, seen)
    # No heartbeat and no timeout within the test: only the local cancel can end the run.
    jobs = JobSystem(
        store=InMemoryStore(), registry=reg, clock=wall, queues={"default": 1},
        lease=1e6, heartbeat=1e5, timeout=None,
    )  # fmt: skip
    async with running(jobs):
        job_id = await jobs.enqueue("slow")
        await started.wait()
        assert await jobs.cancel(job_id) is JobState.RUNNING
        job = await jobs.wait_finished(job_id)
        assert await jobs.wait_finished(await jobs.enqueue("quick"))
    assert seen == ["cancelled", "quick"]
    assert job.state is JobState.CANCELLED
    assert job.attempt == 1
    assert [e.error.split(":")[0] for e in job.errors] == ["cancelled"]


async def test_a_run_that_returns_as_it_is_cancelled_succeeds_and_the_next_job_runs(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A run cancelled here that returns before its next checkpoint has succeeded; the worker
    (the queue's only one) runs the next job normally, not cancelled with the previous one."""
    seen: list[str] = []
    reg = JobRegistry()
    jobs = JobSystem(
        store=InMemoryStore(), registry=reg, clock=wall, queues={"default": 1},
        lease=1e6, heartbeat=1e5, timeout=None,
    )  # fmt: skip

    @reg.job()
    async def cancels_itself() -> None:
        assert await jobs.cancel(current_job().id) is JobState.RUNNING
        seen.append("returned")

    @reg.job()
    async def after() -> None:
        await trio.sleep(1)
        seen.append("after")

    async with running(jobs):
        first = await jobs.wait_finished(await jobs.enqueue("cancels_itself"))
        second = await jobs.wait_finished(await jobs.enqueue("after"))
    assert seen == ["returned", "after"]
    assert (first.state, second.state) == (JobState.SUCCEEDED, JobState.SUCCEEDED)


async def test_cancel_requested_elsewhere_is_seen_at_the_next_heartbeat(
    thread_aware_clock: MockClock, wall: TrioWallClock, running: Running, tmp_path: Path
) -> None:
    """A JobClient's cancel of a running job is carried out by its host within one heartbeat."""
    # The SQLite store's writer thread works in real time: the clock holds still meanwhile.
    started, seen = trio.Event(), []
    reg = blocking_registry(started, seen)
    db = tmp_path / "jobs.db"
    jobs = JobSystem(store=SQLiteStore(db), registry=reg, clock=wall, heartbeat=5.0, timeout=None)
    with JobClient(db, clock=wall) as client:
        async with running(jobs):
            job_id = await jobs.enqueue("slow")
            await started.wait()
            assert client.cancel(job_id) is JobState.RUNNING
            job = await jobs.wait_finished(job_id)
    assert seen == ["cancelled"]
    assert job.state is JobState.CANCELLED


async def test_cancel_of_a_waiting_job_means_it_never_runs(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A scheduled job cancelled before it is due never runs; cancelling again is refused."""
    seen: list[str] = []
    reg = blocking_registry(trio.Event(), seen)
    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall)
    async with running(jobs):
        job_id = await jobs.schedule("quick", after=10)
        assert await jobs.cancel(job_id) is JobState.CANCELLED
        await trio.sleep(20)
        with pytest.raises(JobStateError, match="is cancelled"):
            await jobs.cancel(job_id)
        with pytest.raises(JobNotFoundError, match="no job with id 12345"):
            await jobs.cancel(12345)
    assert seen == []


async def test_requeue_and_delete_from_the_system(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A succeeded job runs again after `requeue`; `delete` removes it."""
    seen: list[str] = []
    reg = blocking_registry(trio.Event(), seen)
    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall)
    async with running(jobs):
        job_id = await jobs.enqueue("quick")
        await jobs.wait_finished(job_id)
        await jobs.requeue(job_id)
        job = await jobs.wait_finished(job_id)
        await jobs.delete(job_id)
        with pytest.raises(JobNotFoundError):
            await jobs.get(job_id)
    assert seen == ["quick", "quick"]
    assert job.attempt == 2


async def test_a_queue_paused_by_a_client_runs_nothing_until_resumed(
    thread_aware_clock: MockClock, wall: TrioWallClock, running: Running, tmp_path: Path
) -> None:
    """Pausing is kept in the store: a client's pause holds the host's queue."""
    # The SQLite store's writer thread works in real time: the clock holds still meanwhile.
    seen: list[str] = []
    reg = blocking_registry(trio.Event(), seen)
    db = tmp_path / "jobs.db"
    jobs = JobSystem(store=SQLiteStore(db), registry=reg, clock=wall)
    with JobClient(db, clock=wall) as client:
        client.pause_queue("default")
        async with running(jobs):
            assert await jobs.paused_queues() == frozenset({"default"})
            job_id = await jobs.enqueue("quick")
            await trio.sleep(30)
            assert (await jobs.get(job_id)).state is JobState.ENQUEUED
            client.resume_queue("default")
            await jobs.wait_finished(job_id)
            await jobs.pause_queue("default")
            assert client.paused_queues() == frozenset({"default"})
    assert seen == ["quick"]


async def test_trigger_and_pause_a_schedule_from_the_system(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """`trigger` runs a schedule's job now; a paused schedule's occurrences are passed over
    until it is resumed; unknown schedules are named in the error."""
    reg = JobRegistry()
    runs: list[int] = []

    @reg.job()
    async def tick() -> None:
        runs.append(1)

    every_minute = Recurring(name="tick", cron="* * * * *", job="tick")
    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall, recurring=[every_minute])
    await jobs.pause_schedule("tick")
    async with running(jobs):
        await trio.sleep(150)
        assert runs == []
        assert await jobs.paused_schedules() == frozenset({"tick"})
        await jobs.wait_finished(await jobs.trigger("tick"))
        assert runs == [1]
        await jobs.resume_schedule("tick")
        await trio.sleep(60)
        await jobs.wait_idle()
        assert runs == [1, 1]
        with pytest.raises(ScheduleNotFoundError, match="'tock'"):
            await jobs.trigger("tock")


def test_a_client_triggers_and_pauses_the_schedules_hosts_recorded(tmp_path: Path) -> None:
    """A JobClient finds the schedules a host recorded in the store, by name."""
    reg = JobRegistry()

    @reg.job()
    async def tick() -> None:
        pass

    db = tmp_path / "jobs.db"
    every_minute = Recurring(name="tick", cron="* * * * *", job="tick")
    jobs = JobSystem(store=SQLiteStore(db), registry=reg, recurring=[every_minute])

    async def record() -> None:
        await jobs.pause_schedule("tick")
        await jobs.store.aclose()

    trio.run(record)
    with JobClient(db) as client:
        assert client.paused_schedules() == frozenset({"tick"})
        client.resume_schedule("tick")
        assert client.paused_schedules() == frozenset()
        job = client.get(client.trigger("tick"))
        assert (job.name, job.schedule, job.state) == ("tick", "tick", JobState.ENQUEUED)
        with pytest.raises(ScheduleNotFoundError, match=r"'tock' .* \(recorded: 'tick'\)"):
            client.trigger("tock")


async def test_higher_priority_runs_first_and_a_key_runs_one_at_a_time(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """With one slot, jobs run by priority; two jobs of one key never overlap on two slots."""
    reg = JobRegistry()
    order: list[str] = []
    live: set[str] = set()
    overlaps: list[str] = []

    @reg.job()
    async def work(tag: str) -> None:
        if tag in live:
            overlaps.append(tag)
        live.add(tag)
        order.append(tag)
        await trio.sleep(1)
        live.discard(tag)

    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall, queues={"default": 1})
    await jobs.pause_queue("default")
    for tag, priority in (("low", 0), ("high", 10), ("mid", 5)):
        await jobs.enqueue("work", tag, priority=priority)
    async with running(jobs):
        await jobs.resume_queue("default")
        await jobs.wait_idle()
    assert order == ["high", "mid", "low"]

    keyed = JobSystem(store=InMemoryStore(), registry=reg, clock=wall, queues={"default": 4})
    async with running(keyed):
        for _ in range(3):
            await keyed.enqueue("work", "user-1", concurrency_key="user-1")
        await keyed.wait_idle()
    assert overlaps == []


async def test_a_rate_limited_queue_starts_at_most_n_jobs_per_window(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Five quick jobs under 2 per 10 s all run, never more than two starts in a 10 s window,
    the runner waking when the window frees a claim."""
    reg = JobRegistry()
    starts: list[float] = []

    @reg.job()
    async def tick() -> None:
        starts.append(trio.current_time())

    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall)
    await jobs.set_rate_limit("default", RateLimit(2, per=10))
    assert await jobs.rate_limits() == {"default": RateLimit(2, 10.0)}
    async with running(jobs):
        ids = [await jobs.enqueue("tick") for _ in range(5)]
        for job_id in ids:
            await jobs.wait_finished(job_id)
    assert len(starts) == 5
    assert all(b - a >= 10 for a, b in zip(starts, starts[2:], strict=False))
