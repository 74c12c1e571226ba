"""How one run of a job ends: fencing after a lost lease, sync jobs' threads, timeouts, stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from supervisors import Tree
from supervisors.jobs import (
    InMemoryStore,
    JobRegistry,
    JobState,
    JobSystem,
    RetryPolicy,
    Settled,
    TrioWallClock,
)

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]

NO_JITTER = RetryPolicy(base=1.0, factor=2.0, jitter=0.0)


def system(wall: TrioWallClock, registry: JobRegistry, **kw: object) -> JobSystem:
    kw.setdefault("store", InMemoryStore())
    return JobSystem(registry=registry, clock=wall, **kw)  # type: ignore[arg-type]


async def steal(store: InMemoryStore, wall: TrioWallClock) -> None:
    """Do what another host does after this one stalled past its lease: recover the job by
    expiry and claim it again (attempt 2)."""
    now = wall.now()
    await store.requeue_expired(now=now + 1000)
    (claimed,) = await store.claim("default", 1, owner="other-host", now=now, lease_until=now + 1e6)
    assert claimed.attempt == 2


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """A threading event that is always set at the end, so no test leaves a thread blocked."""
    event = threading.Event()
    yield event
    event.set()


async def test_a_run_that_lost_its_lease_is_cancelled_and_logs_a_warning(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """When a renewal is refused (the job was recovered and claimed again), the stale run is
    cancelled, logs at WARNING naming the job and its token, and records nothing."""
    reg = JobRegistry()
    events: list[str] = []

    @reg.job()
    async def slow() -> None:
        events.append("start")
        try:
            await trio.sleep(100)
        except trio.Cancelled:
            events.append("cancelled")
            raise
        events.append("finished")  # pragma: no cover - must not happen

    store = InMemoryStore()
    jobs = system(wall, reg, store=store, heartbeat=10.0)
    async with running(jobs):
        job_id = await jobs.enqueue("slow")
        await trio.sleep(1)
        await steal(store, wall)
        await trio.sleep(20)
        job = await jobs.get(job_id)
    assert events == ["start", "cancelled"]
    assert (job.state, job.attempt) == (JobState.RUNNING, 2)  # the new run's, untouched
    lost = [r for r in caplog.records if "lost its lease" in r.getMessage()]
    assert [r.levelno for r in lost] == [logging.WARNING]
    assert f"job {job_id} (slow)" in lost[0].getMessage()
    assert "attempt 1" in lost[0].getMessage()


async def test_an_outcome_after_the_lease_was_lost_is_refused_and_logged(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A stale run that finishes before its next heartbeat: the store refuses its success (the
    fenced settle), the runner logs it, and the new run's state is left alone."""
    reg = JobRegistry()
    effects: list[int] = []

    @reg.job()
    async def pay() -> None:
        await trio.sleep(3)
        effects.append(1)

    store = InMemoryStore()
    jobs = system(wall, reg, store=store, heartbeat=10.0)
    async with running(jobs):
        job_id = await jobs.enqueue("pay")
        await trio.sleep(1)
        await steal(store, wall)
        await trio.sleep(5)
        job = await jobs.get(job_id)
    assert effects == [1]
    assert (job.state, job.attempt, job.finished_at) == (JobState.RUNNING, 2, None)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"job {job_id} (pay) lost its lease (token: attempt 1) before" in m for m in messages)


async def test_a_hung_job_times_out_and_dies_after_its_attempts(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A job that never returns is cancelled at its timeout; each timeout is a failed attempt,
    retried per the policy, and the job is dead after the last one."""
    reg = JobRegistry()
    starts: list[float] = []

    @reg.job(retry=NO_JITTER, max_attempts=3, timeout=10.0)
    async def hang() -> None:
        starts.append(trio.current_time())
        await trio.sleep_forever()

    jobs = system(wall, reg)
    async with running(jobs):
        t0 = trio.current_time()
        job = await jobs.wait_finished(await jobs.enqueue("hang"))
    assert job.state is JobState.DEAD
    assert [e.error.split(":")[0] for e in job.errors] == ["TimeoutError"] * 3
    assert "ran longer than its timeout of 10.0 s" in job.errors[0].error
    assert [round(s - t0) for s in starts] == [0, 11, 23]  # 10 s run, 1 s then 2 s backoff


async def test_the_system_timeout_applies_to_jobs_registered_without_one(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """``JobSystem(timeout=)`` is the default limit; a job's own ``timeout=`` overrides it."""
    reg = JobRegistry()

    @reg.job(max_attempts=1)
    async def default_limit() -> None:
        await trio.sleep(50)

    @reg.job(max_attempts=1, timeout=100.0)
    async def own_limit() -> None:
        await trio.sleep(50)

    jobs = system(wall, reg, timeout=30.0)
    async with running(jobs):
        a = await jobs.wait_finished(await jobs.enqueue("default_limit"))
        b = await jobs.wait_finished(await jobs.enqueue("own_limit"))
    assert (a.state, b.state) == (JobState.DEAD, JobState.SUCCEEDED)
    assert "timeout of 30.0 s" in a.errors[0].error


async def test_a_job_that_hangs_across_graceful_stops_dies(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Without a timeout, a job interrupted by each graceful stop still uses an attempt each
    time, so it is dead after its attempts instead of hanging again on every start."""
    reg = JobRegistry()

    @reg.job(max_attempts=2)
    async def hang() -> None:
        await trio.sleep_forever()

    jobs = system(wall, reg, grace=1.0, timeout=None)
    job_id = await jobs.enqueue("hang")
    for _ in range(2):
        async with running(jobs) as tree:
            await trio.sleep(5)
            await tree.stop()
    job = await jobs.get(job_id)
    assert (job.state, job.attempt) == (JobState.DEAD, 2)
    assert [e.error.split(":")[0] for e in job.errors] == ["interrupted", "interrupted"]


async def test_a_cancelled_sync_job_keeps_its_slot_until_its_thread_returns(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running, gate: threading.Event
) -> None:
    """A sync job's thread cannot be interrupted: after its timeout the job is not released
    while the thread runs (no second copy starts, the slot stays taken); when the thread
    returns, the attempt is recorded as timed out and the next job gets the slot."""
    reg = JobRegistry()
    started: list[str] = []
    entered = threading.Event()

    @reg.job(max_attempts=5, timeout=5.0)
    def blocking() -> None:
        started.append("blocking")
        entered.set()
        gate.wait()

    @reg.job()
    def quick() -> None:
        started.append("quick")

    jobs = system(wall, reg, queues={"default": 1})
    async with running(jobs):
        first = await jobs.enqueue("blocking")
        second = await jobs.enqueue("quick")
        await trio.to_thread.run_sync(entered.wait)
        await trio.sleep(60)  # far past the timeout and several lease lengths
        assert started == ["blocking"]
        assert (await jobs.get(first)).state is JobState.RUNNING
        assert (await jobs.get(second)).state is JobState.ENQUEUED
        gate.set()
        done = await jobs.wait_finished(second)
        blocked = await jobs.get(first)
    assert done.state is JobState.SUCCEEDED
    assert started[:2] == ["blocking", "quick"]
    assert blocked.errors[0].error.startswith("TimeoutError")


async def test_a_sync_job_ignoring_a_stop_is_left_leased_not_released(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running, gate: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At a graceful stop, a sync job whose thread does not return within the grace plus the
    thread wait is not put back in the queue (it still runs): it stays leased, so it runs again
    only after its lease expires, and the stop says so."""
    reg = JobRegistry()

    @reg.job(timeout=1e6)
    def stubborn() -> None:
        gate.wait()

    jobs = system(wall, reg, grace=2.0)
    async with running(jobs) as tree:
        job_id = await jobs.enqueue("stubborn")
        await trio.sleep(1)
        t0 = trio.current_time()
        await tree.stop()
        waited = trio.current_time() - t0
    job = await jobs.get(job_id)
    assert job.state is JobState.RUNNING
    assert waited == pytest.approx(2.0 + 4.0)
    assert any("still running" in r.getMessage() for r in caplog.records)


async def test_identical_failures_are_logged_in_full_once_then_summarised(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """Of a run of identical failures (same job, exception type and line), the first is logged
    with its traceback, the rest as periodic one-line counts; the death is one line; a failure
    at another line starts its own run, logged in full."""
    reg = JobRegistry()

    @reg.job(retry=RetryPolicy(max_attempts=10, base=1.0, jitter=0.0))
    async def flaky(n: int) -> None:
        if n == 0:
            raise ValueError("same place")
        raise KeyError("elsewhere")

    jobs = system(wall, reg)
    caplog.set_level(logging.WARNING, logger="supervisors.jobs")
    async with running(jobs):
        first = await jobs.enqueue("flaky", 0)
        await jobs.wait_finished(first)
        other = await jobs.enqueue("flaky", 1)
        await trio.sleep(0.5)
        await jobs.wait_finished(other)
    records = [r for r in caplog.records if r.name == "supervisors.jobs"]
    full = [r for r in records if r.exc_info]
    assert [r.exc_info[0] for r in full if r.exc_info] == [ValueError, KeyError]
    summaries = [r.getMessage() for r in records if "more time(s)" in r.getMessage()]
    counted = [int(m.split("failed ")[1].split(" more")[0]) for m in summaries if "ValueError" in m]
    assert sum(counted) == 8  # attempts 2 to 9; attempt 1 in full, attempt 10 is the death
    deaths = [r for r in records if "is dead" in r.getMessage()]
    assert [r.levelno for r in deaths] == [logging.ERROR, logging.ERROR]
    assert not deaths[0].exc_info
    assert len(records) <= 2 + len(summaries) + 2 + 10  # never one record per failure per line


async def test_an_outcome_whose_write_committed_before_the_connection_broke_is_not_called_lost(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A write of outcomes that the store retries after its first try committed (its answer lost)
    is refused by the fence; the runner reads the job, finds the attempt ended by that outcome,
    and says so at INFO instead of claiming a lost lease."""
    caplog.set_level(logging.INFO, logger="supervisors.jobs")
    reg = JobRegistry()

    @reg.job()
    async def pay() -> None:
        pass

    @reg.job()
    async def flaky() -> None:
        raise ValueError("no")

    store = InMemoryStore()
    real = store.settle_and_claim

    async def committed_then_retried(*args: Any, **kwargs: Any) -> Settled:
        # The first try records the outcomes and commits; its answer is lost; the retry's
        # answer is what the runner gets.
        await store.settle(owner=kwargs["owner"], now=kwargs["now"], succeeded=kwargs["succeeded"],
                           failed=kwargs["failed"])  # fmt: skip
        return await real(*args, **kwargs)

    store.settle_and_claim = committed_then_retried  # type: ignore[method-assign]
    jobs = system(wall, reg, store=store, retry=NO_JITTER)
    async with running(jobs):
        paid = await jobs.enqueue("pay")
        failed = await jobs.enqueue("flaky")
        await trio.sleep(0.5)
        paid_job, failed_job = await jobs.get(paid), await jobs.get(failed)
    assert (paid_job.state, paid_job.attempt) == (JobState.SUCCEEDED, 1)
    assert (failed_job.state, [e.attempt for e in failed_job.errors]) == (JobState.RETRYING, [1])
    assert [r.getMessage() for r in caplog.records if "lost its lease" in r.getMessage()] == []
    explained = sorted(r.getMessage() for r in caplog.records if "had already ended" in r.getMessage())
    assert [m.split(":")[0] for m in explained] == [f"job {paid} (pay)", f"job {failed} (flaky)"]
    assert all("attempt 1 had already ended by this outcome when its write was retried" in m for m in explained)
    assert all(r.levelno == logging.INFO for r in caplog.records if "had already ended" in r.getMessage())


async def test_running_lists_a_run_and_observers_are_told_its_end(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """`JobSystem.running` lists a job while its function runs (its id, queue, attempt, start)
    and not after; an observer is told of the run with how long it took."""
    reg = JobRegistry()
    started, release = trio.Event(), trio.Event()

    @reg.job()
    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    jobs = system(wall, reg)
    seen: list[tuple[int, str, int, float]] = []
    stop = jobs.observe_runs(lambda run, took: seen.append((run.id, run.name, run.attempt, took)))
    async with running(jobs):
        job_id = await jobs.enqueue("slow")
        await started.wait()
        (run,) = jobs.running()
        assert (run.id, run.name, run.queue, run.attempt) == (job_id, "slow", "default", 1)
        await trio.sleep(5)
        release.set()
        job = await jobs.wait_finished(job_id)
        assert jobs.running() == ()
    stop()
    assert job.state is JobState.SUCCEEDED
    assert job.result == "done"
    assert len(seen) == 1
    assert seen[0][:3] == (job_id, "slow", 1)
    assert seen[0][3] >= 5
