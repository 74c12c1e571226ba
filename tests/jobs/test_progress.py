"""Progress and log lines reported by running jobs (`current_job().progress` / `.log`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from supervisors import Tree
from supervisors.jobs import InMemoryStore, JobNotFoundError, JobRegistry, JobSystem, TrioWallClock, current_job
from supervisors.jobs._reports import MAX_LINE_CHARS

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]


def system(wall: TrioWallClock, registry: JobRegistry, **kw: object) -> JobSystem:
    return JobSystem(store=InMemoryStore(), registry=registry, clock=wall, **kw)  # type: ignore[arg-type]


async def test_progress_and_log_are_readable_while_the_job_runs_and_final_at_the_end(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A job's first report is written at once; later ones wait for the interval (latest wins);
    the last report is written when the attempt ends, before its outcome."""
    reg = JobRegistry()
    go_on = trio.Event()

    @reg.job()
    async def copy() -> None:
        job = current_job()
        job.progress(0.1, "starting")
        job.log("copied a")
        await trio.sleep(1)
        job.progress(0.2, "copied 2")
        job.progress(0.4, "copied 4")
        await go_on.wait()
        job.progress(1.0, "done")
        job.log("copied b")

    jobs = system(wall, reg, progress_interval=5.0)
    async with running(jobs):
        job_id = await jobs.enqueue("copy")
        await trio.sleep(2)
        (early,) = await jobs.progress(job_id)
        assert (early.attempt, early.fraction, early.message) == (1, 0.1, "starting")
        assert [line.text for line in early.lines] == ["copied a"]
        await trio.sleep(4)
        (later,) = await jobs.progress(job_id)
        assert (later.fraction, later.message) == (0.4, "copied 4")
        go_on.set()
        await jobs.wait_finished(job_id)
        (final,) = await jobs.progress(job_id)
    assert (final.fraction, final.message, final.dropped) == (1.0, "done", 0)
    assert [line.text for line in final.lines] == ["copied a", "copied b"]
    assert final.lines[0].at <= final.lines[1].at


async def test_log_lines_past_the_cap_are_dropped_and_counted(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """An attempt keeps ``max_log_lines`` lines and counts the rest; long lines are cut."""
    reg = JobRegistry()

    @reg.job()
    async def chatty() -> None:
        for i in range(5):
            current_job().log(f"line {i}" if i else "x" * (MAX_LINE_CHARS + 10))

    jobs = system(wall, reg, max_log_lines=3)
    async with running(jobs):
        job_id = await jobs.enqueue("chatty")
        await jobs.wait_finished(job_id)
        (seen,) = await jobs.progress(job_id)
    assert [len(line.text) for line in seen.lines] == [MAX_LINE_CHARS, 6, 6]
    assert seen.lines[0].text.endswith("…")
    assert (seen.dropped, seen.fraction) == (2, None)


async def test_each_attempt_keeps_its_own_progress(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A retried job's attempts report apart: the first attempt's log stays with it."""
    reg = JobRegistry()

    @reg.job()
    async def flaky() -> None:
        job = current_job()
        job.progress(0.5 * job.attempt, f"attempt {job.attempt}")
        if job.attempt == 1:
            raise RuntimeError("first attempt fails")

    jobs = system(wall, reg)
    async with running(jobs):
        job_id = await jobs.enqueue("flaky")
        await jobs.wait_finished(job_id)
        attempts = await jobs.progress(job_id)
    assert [(a.attempt, a.fraction, a.message) for a in attempts] == [
        (1, 0.5, "attempt 1"), (2, 1.0, "attempt 2"),
    ]  # fmt: skip


async def test_a_sync_job_reports_from_its_thread(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A plain ``def`` job (run in a worker thread) reports progress and lines too."""
    reg = JobRegistry()
    threads: list[bool] = []

    @reg.job()
    def blocking() -> None:
        threads.append(threading.current_thread() is not threading.main_thread())
        job = current_job()
        for i in range(3):
            job.log(f"step {i}")
            job.progress((i + 1) / 3, f"step {i}")

    jobs = system(wall, reg)
    async with running(jobs):
        job_id = await jobs.enqueue("blocking")
        await jobs.wait_finished(job_id)
        (seen,) = await jobs.progress(job_id)
    assert threads == [True]
    assert (seen.fraction, seen.message) == (1.0, "step 2")
    assert [line.text for line in seen.lines] == ["step 0", "step 1", "step 2"]


async def test_a_job_that_reports_nothing_has_no_progress(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Jobs that do not report store nothing; an unknown job raises."""
    reg = JobRegistry()

    @reg.job()
    async def quiet() -> None:
        pass

    jobs = system(wall, reg)
    async with running(jobs):
        job_id = await jobs.enqueue("quiet")
        await jobs.wait_finished(job_id)
        assert await jobs.progress(job_id) == ()
        with pytest.raises(JobNotFoundError):
            await jobs.progress(job_id + 1)


async def test_a_fraction_outside_zero_to_one_is_refused(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """``progress(1.5)`` raises ValueError naming the field inside the job (which then fails)."""
    reg = JobRegistry()
    errors: list[str] = []

    @reg.job()
    async def bad() -> None:
        try:
            current_job().progress(1.5)
        except ValueError as exc:
            errors.append(str(exc))

    jobs = system(wall, reg)
    async with running(jobs):
        await jobs.wait_finished(await jobs.enqueue("bad"))
    assert errors == ["'fraction' must be a number in [0, 1] (got 1.5)"]


async def test_a_run_that_lost_its_lease_cannot_write_over_the_next_attempt(
    autojump_clock: MockClock, wall: TrioWallClock
) -> None:
    """A stalled run whose job was recovered and run again by another host keeps reporting:
    its reports are refused (fenced), the new attempt's are kept, each under its attempt."""
    from supervisors import Supervisor, open_tree

    reg = JobRegistry()
    started, gate = trio.Event(), trio.Event()
    ended: list[int] = []

    @reg.job()
    async def slow() -> None:
        job = current_job()
        job.progress(0.1, f"attempt {job.attempt} started")
        if job.attempt == 1:
            started.set()
            with trio.CancelScope(shield=True):  # stalls past its lease, as a stuck run would
                await gate.wait()
            job.progress(0.9, "stale")
            job.log("stale line")
        ended.append(job.attempt)

    store = InMemoryStore()
    a, b = (JobSystem(store=store, registry=reg, clock=wall, name=name) for name in ("a", "b"))
    async with open_tree(Supervisor(name="app", children=[a.child_spec(), b.child_spec()])):
        job_id = await a.enqueue("slow")
        await started.wait()
        await trio.testing.wait_all_tasks_blocked()  # attempt 1's first report is written
        assert (await a.progress(job_id))[0].message == "attempt 1 started"
        assert await store.requeue_expired(now=wall.now() + 3600) == {"default"}
        b._core.wake_queue("default")  # host b recovers the job: attempt 2
        await b.wait_finished(job_id)
        gate.set()
        await trio.sleep(60)  # host a's run ends and tries to write its last reports
        attempts = await a.progress(job_id)
    assert sorted(ended) == [1, 2]
    assert [(p.attempt, p.fraction, p.message, p.lines) for p in attempts] == [
        (1, 0.1, "attempt 1 started", ()), (2, 0.1, "attempt 2 started", ()),
    ]  # fmt: skip
