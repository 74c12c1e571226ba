"""Results and continuations through `JobSystem` and `JobClient`, on every store."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import attrs
import pytest
import trio
from trio.testing import MockClock

from supervisors import Tree
from supervisors.jobs import (
    ContinueOn,
    InMemoryStore,
    JobClient,
    JobNotFoundError,
    JobRegistry,
    JobRequest,
    JobState,
    JobSystem,
    RetryPolicy,
    SQLiteStore,
    Store,
    TrioWallClock,
    current_job,
)

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]


@attrs.frozen
class Report:
    rows: int
    title: str = "report"


def chain_registry(seen: list[tuple[str, object]]) -> JobRegistry:
    """``count`` returns a `Report`; ``double`` (sync) and ``publish`` read their parent's."""
    reg = JobRegistry()

    @reg.job()
    async def count(n: int) -> Report:
        return Report(rows=n)

    @reg.job()
    def double() -> Report:
        parent = reg.converter.structure(current_job().parent_result, Report)
        seen.append(("double", parent))
        return Report(rows=parent.rows * 2, title="doubled")

    @reg.job()
    async def publish() -> str:
        job = current_job()
        seen.append(("publish", (job.parent_id, job.parent_result)))
        return "published"

    @reg.job(retry=RetryPolicy(max_attempts=1))
    async def fail() -> None:
        raise RuntimeError("boom")

    return reg


async def test_a_result_is_stored_and_a_chain_passes_each_result_on(
    running: Running, any_store: Store
) -> None:
    """A → B → C: each continuation runs after its parent succeeded and reads the parent's
    result (structured back with the registry's converter); every result is in `Job.result`.
    (Real time: the PostgreSQL store's threads do not mix with an autojump clock.)"""
    seen: list[tuple[str, object]] = []
    jobs = JobSystem(store=any_store, registry=chain_registry(seen), poll_interval=0.2)
    with trio.fail_after(60):
        async with running(jobs):
            a = await jobs.enqueue("count", 21)
            b = await jobs.continue_with(a, "double")
            c = await jobs.continue_with(b, "publish")
            done = await jobs.wait_finished(c)
            first, second = await jobs.get(a), await jobs.get(b)
    assert seen == [
        ("double", Report(rows=21)),
        ("publish", (b, {"rows": 42, "title": "doubled"})),
    ]
    assert first.result == {"rows": 21, "title": "report"}
    assert (first.continuations, second.parent_id, second.continuations) == ((b,), a, (c,))
    assert (done.state, done.result, done.continue_on) == (JobState.SUCCEEDED, "published", ContinueOn.SUCCESS)


async def test_a_failure_continuation_runs_after_its_parent_dies_and_a_success_one_is_cancelled(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Parent dead: its ``FAILURE`` continuation runs (without a parent result), its
    ``SUCCESS`` continuation is cancelled with a reason, and `wait_finished` returns for both."""
    seen: list[tuple[str, object]] = []
    jobs = JobSystem(store=InMemoryStore(), registry=chain_registry(seen), clock=wall)
    async with running(jobs):
        parent = await jobs.enqueue("fail")
        rescue = await jobs.continue_with(parent, "publish", on=ContinueOn.FAILURE)
        skipped = await jobs.continue_with(parent, "publish")
        assert (await jobs.wait_finished(rescue)).state is JobState.SUCCEEDED
        skipped_job = await jobs.wait_finished(skipped)
    assert seen == [("publish", (parent, None))]
    assert skipped_job.state is JobState.CANCELLED
    assert skipped_job.errors[0].error.startswith(f"not run: its parent, job {parent}, is dead")


async def test_cancelling_a_parent_that_waits_runs_its_failure_continuation(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Cancelling a scheduled parent enqueues its ``ANY`` continuation at once (no poll)."""
    seen: list[tuple[str, object]] = []
    jobs = JobSystem(store=InMemoryStore(), registry=chain_registry(seen), clock=wall)
    async with running(jobs):
        parent = await jobs.schedule("count", 1, after=3600)
        after = await jobs.continue_with(parent, "publish", on=ContinueOn.ANY)
        await jobs.cancel(parent)
        assert (await jobs.wait_finished(after)).state is JobState.SUCCEEDED
    assert seen == [("publish", (parent, None))]


@pytest.mark.parametrize("limit", [10, 0])
async def test_a_result_over_the_size_limit_fails_the_attempt_naming_the_job_and_limit(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running, limit: int
) -> None:
    """A result whose JSON is larger than ``max_result_size`` is not recorded: the attempt fails
    with `JobResultError` (retried per the policy; here the last attempt, so dead) and the
    job's success continuation is cancelled."""
    seen: list[tuple[str, object]] = []
    reg = chain_registry(seen)
    jobs = JobSystem(
        store=InMemoryStore(), registry=reg, clock=wall, max_result_size=limit,
        retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip
    async with running(jobs):
        big = await jobs.enqueue("count", 12345)
        nxt = await jobs.continue_with(big, "publish")
        job = await jobs.wait_finished(big)
        assert (await jobs.wait_finished(nxt)).state is JobState.CANCELLED
    assert (job.state, job.result) == (JobState.DEAD, None)
    size = len('{"rows":12345,"title":"report"}')
    assert job.errors[0].error == (
        f"JobResultError: the result of job {big} ('count') cannot be recorded: its JSON is "
        f"{size} bytes, over the limit of {limit} bytes; return less (e.g. where the data was "
        "written) or raise JobSystem(max_result_size=...)"
    )
    assert seen == []


async def test_a_result_that_does_not_convert_fails_the_attempt(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A return value that is not JSON (after unstructuring) fails the attempt, saying why."""
    reg = JobRegistry()

    @reg.job(retry=RetryPolicy(max_attempts=1))
    async def odd() -> object:
        return {1, 2}

    jobs = JobSystem(store=InMemoryStore(), registry=reg, clock=wall)
    async with running(jobs):
        job = await jobs.wait_finished(await jobs.enqueue("odd"))
    assert job.state is JobState.DEAD
    assert "cannot be recorded: it does not convert to JSON" in job.errors[0].error


def test_a_continuation_takes_no_delay_and_must_name_a_parent_that_exists(tmp_path: Path) -> None:
    """``parent`` with ``at``/``after`` is refused; an unknown parent raises `JobNotFoundError`."""
    with pytest.raises(ValueError, match=r"a continuation .* takes no 'at' or 'after'"):
        JobRequest(job="x", parent=1, after=5)
    with JobClient(tmp_path / "jobs.db") as client, pytest.raises(JobNotFoundError):
        client.continue_with(99, "publish")


async def test_job_client_continuations_behave_as_the_job_systems(
    thread_aware_clock: MockClock, wall: TrioWallClock, running: Running, tmp_path: Path
) -> None:
    """`JobClient.continue_with` links jobs in the file as `JobSystem.continue_with` does: a host
    runs the chain, the client reads results, parent and continuations; a continuation of an
    ended parent is resolved at once. (The file store's thread and the sync job work in real
    time: the clock holds still meanwhile.)"""
    path = tmp_path / "jobs.db"
    seen: list[tuple[str, object]] = []
    reg = chain_registry(seen)
    with JobClient(path, registry=reg, clock=wall) as client:
        a = client.enqueue("count", 5)
        b = client.continue_with(a, "double")
        c = client.continue_with(b, "publish", on=ContinueOn.ANY)
        assert client.get(b).state is JobState.AWAITING
        jobs = JobSystem(store=SQLiteStore(path), registry=reg, clock=wall, poll_interval=0.2)
        with trio.fail_after(60):
            async with running(jobs):
                await jobs.wait_finished(c)
        late = client.continue_with(a, "publish", on=ContinueOn.FAILURE)
        assert [client.get(j).state for j in (a, b, c, late)] == [
            JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.CANCELLED,
        ]  # fmt: skip
        assert client.get(b).result == {"rows": 10, "title": "doubled"}
        assert client.get(a).continuations == (b, late)
    assert seen == [("double", Report(rows=5)), ("publish", (b, {"rows": 10, "title": "doubled"}))]
