"""The job system as a supervised subtree, under an autojump MockClock and an in-memory store."""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import trio
from trio.testing import MockClock

from supervisors import Tree
from supervisors.jobs import (
    InMemoryStore,
    JobArgumentsError,
    JobError,
    JobRegistry,
    JobRequest,
    JobState,
    JobSystem,
    NewJob,
    RetryPolicy,
    TrioWallClock,
    UnknownJobError,
    current_job,
)

START = datetime(2024, 1, 1, tzinfo=UTC)  # as TrioWallClock starts in conftest

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]

NO_JITTER = RetryPolicy(base=1.0, factor=2.0, jitter=0.0)


@attrs.frozen
class Email:
    to: str
    subject: str = "hello"


def system(wall: TrioWallClock, registry: JobRegistry, **kw: object) -> JobSystem:
    kw.setdefault("store", InMemoryStore())
    return JobSystem(registry=registry, clock=wall, **kw)  # type: ignore[arg-type]


async def test_enqueued_job_runs_once_with_its_structured_arguments(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """An enqueued job runs once, gets its attrs arguments back, and ends succeeded."""
    reg = JobRegistry()
    seen: list[Email] = []

    @reg.job()
    async def send(args: Email) -> None:
        seen.append(args)

    jobs = system(wall, reg)
    async with running(jobs):
        job_id = await jobs.enqueue("send", Email("a@example.com"))
        job = await jobs.wait_finished(job_id)
    assert seen == [Email("a@example.com")]
    assert (job.state, job.attempt, job.args) == (
        JobState.SUCCEEDED,
        1,
        {"to": "a@example.com", "subject": "hello"},
    )


async def test_job_enqueued_before_the_tree_starts_runs_when_it_starts(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Jobs wait in the store until a subtree runs them."""
    reg = JobRegistry()
    ran: list[int] = []

    @reg.job()
    async def work(n: int) -> None:
        ran.append(n)

    jobs = system(wall, reg)
    job_id = await jobs.enqueue("work", 7)
    assert (await jobs.get(job_id)).state is JobState.ENQUEUED
    async with running(jobs):
        await jobs.wait_finished(job_id)
    assert ran == [7]


async def test_scheduled_job_stays_scheduled_until_its_time(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A job scheduled after a delay is scheduled, then runs at that time, not before."""
    reg = JobRegistry()
    ran_at: list[float] = []

    @reg.job()
    async def later() -> None:
        ran_at.append(wall.now())

    jobs = system(wall, reg)
    async with running(jobs):
        t0 = wall.now()
        job_id = await jobs.schedule("later", after=timedelta(minutes=1))
        assert (await jobs.get(job_id)).state is JobState.SCHEDULED
        await trio.sleep(59)
        assert ran_at == []
        await jobs.wait_finished(job_id)
    assert ran_at == [pytest.approx(t0 + 60)]


async def test_schedule_at_a_datetime(autojump_clock: MockClock, wall: TrioWallClock, running: Running) -> None:
    """``schedule(at=...)`` runs the job at that wall time."""
    reg = JobRegistry()
    ran_at: list[float] = []

    @reg.job()
    async def later() -> None:
        ran_at.append(wall.now())

    jobs = system(wall, reg)
    at = START + timedelta(hours=2)
    async with running(jobs):
        await jobs.wait_finished(await jobs.schedule("later", at=at))
    assert ran_at == [pytest.approx(at.timestamp())]


async def test_schedule_needs_exactly_one_of_at_and_after(autojump_clock: MockClock, wall: TrioWallClock) -> None:
    """Giving neither or both of ``at`` and ``after`` is an error at the call site."""
    reg = JobRegistry()
    reg.register(lambda: None, name="x")
    jobs = system(wall, reg)
    with pytest.raises(ValueError, match="exactly one"):
        await jobs.schedule("x")
    with pytest.raises(ValueError, match="exactly one"):
        await jobs.schedule("x", at=START, after=1.0)


async def test_running_job_is_running_and_leased(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """While its function runs, a job is running with a lease in the future."""
    reg = JobRegistry()
    release = trio.Event()

    @reg.job()
    async def slow() -> None:
        await release.wait()

    jobs = system(wall, reg, lease=30.0, heartbeat=10.0)
    async with running(jobs):
        job_id = await jobs.enqueue("slow")
        await trio.sleep(1)
        job = await jobs.get(job_id)
        assert job.state is JobState.RUNNING
        assert job.lease_until is not None
        assert job.lease_until.timestamp() > wall.now()
        release.set()
        assert (await jobs.wait_finished(job_id)).state is JobState.SUCCEEDED


async def test_failing_job_retries_with_exponential_backoff_then_dies(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Attempts are spaced 1, 2, 4 s apart; after the last one the job is dead with every error."""
    reg = JobRegistry()
    attempts_at: list[float] = []

    @reg.job(retry=NO_JITTER, max_attempts=4)
    async def flaky() -> None:
        attempts_at.append(wall.now())
        raise ValueError(f"failure {len(attempts_at)}")

    jobs = system(wall, reg)
    async with running(jobs):
        job = await jobs.wait_finished(await jobs.enqueue("flaky"))
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert gaps == [pytest.approx(1), pytest.approx(2), pytest.approx(4)]
    assert job.state is JobState.DEAD
    assert [e.attempt for e in job.errors] == [1, 2, 3, 4]
    assert job.errors[-1].error == "ValueError: failure 4"
    assert "raise ValueError" in job.errors[-1].traceback


async def test_job_is_retrying_during_its_backoff(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Between a failure and the next attempt the job is retrying, due at the backoff's end."""
    reg = JobRegistry()

    @reg.job(retry=attrs.evolve(NO_JITTER, base=100.0), max_attempts=2)
    async def flaky() -> None:
        raise RuntimeError("no")

    jobs = system(wall, reg)
    async with running(jobs):
        t0 = wall.now()
        job_id = await jobs.enqueue("flaky")
        await trio.sleep(50)
        job = await jobs.get(job_id)
        assert job.state is JobState.RETRYING
        assert job.run_at.timestamp() == pytest.approx(t0 + 100)
        assert (await jobs.wait_finished(job_id)).state is JobState.DEAD


async def test_failures_are_logged_retries_as_warnings_death_as_an_error(
    autojump_clock: MockClock,
    wall: TrioWallClock,
    running: Running,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failures are logged on 'supervisors.jobs': retries as warnings, death as an error; the
    first failure of a run of identical ones carries its traceback."""
    reg = JobRegistry()

    @reg.job(retry=NO_JITTER, max_attempts=2)
    async def broken() -> None:
        raise KeyError("missing")

    jobs = system(wall, reg)
    with caplog.at_level(logging.WARNING, logger="supervisors.jobs"):
        async with running(jobs):
            await jobs.wait_finished(await jobs.enqueue("broken"))
    records = [r for r in caplog.records if r.name == "supervisors.jobs"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.ERROR]
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is KeyError
    assert "is dead" in records[-1].getMessage()


async def test_dead_job_can_be_retried_by_hand(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A dead job retried by hand runs again and can succeed, keeping its old errors."""
    reg = JobRegistry()
    fail = [True]

    @reg.job(max_attempts=1)
    async def fragile() -> None:
        if fail[0]:
            raise OSError("down")

    jobs = system(wall, reg)
    async with running(jobs):
        job_id = await jobs.enqueue("fragile")
        assert (await jobs.wait_finished(job_id)).state is JobState.DEAD
        fail[0] = False
        await jobs.retry(job_id)
        job = await jobs.wait_finished(job_id)
    assert (job.state, job.attempt, len(job.errors)) == (JobState.SUCCEEDED, 2, 1)


async def test_unknown_job_name_is_refused_at_the_call_site(autojump_clock: MockClock, wall: TrioWallClock) -> None:
    """Enqueueing an unregistered name raises and names the registered jobs."""
    reg = JobRegistry()
    reg.register(lambda: None, name="send_email")
    reg.register(lambda: None, name="cleanup")
    jobs = system(wall, reg)
    with pytest.raises(UnknownJobError, match=r"'send_emial'.*'cleanup', 'send_email'"):
        await jobs.enqueue("send_emial")


async def test_arguments_that_do_not_structure_are_refused_at_the_call_site(
    autojump_clock: MockClock,
    wall: TrioWallClock,
) -> None:
    """Arguments that do not fit the job's argument type raise, naming the problem."""
    reg = JobRegistry()

    @reg.job()
    async def send(args: Email) -> None:
        pass

    jobs = system(wall, reg)
    with pytest.raises(JobArgumentsError, match=r"job 'send'.*required field missing"):
        await jobs.enqueue("send", {"subject": "no recipient"})
    assert (await jobs.counts()).total == 0


async def test_arguments_that_are_neither_the_class_nor_a_mapping_say_what_the_job_takes(
    autojump_clock: MockClock,
    wall: TrioWallClock,
) -> None:
    """``enqueue("send", 5)`` for a job taking an attrs class: the message names the class the job
    takes and what was given, beside cattrs's own words; nothing is enqueued."""
    reg = JobRegistry()

    @reg.job()
    async def send(args: Email) -> None:
        pass

    jobs = system(wall, reg)
    expected = r"job 'send'.*; it takes Email \(or a mapping of its fields\), got int 5$"
    with pytest.raises(JobArgumentsError, match=expected):
        await jobs.enqueue("send", 5)
    assert (await jobs.counts()).total == 0


def test_a_job_timeout_that_is_not_a_number_is_refused_naming_the_job() -> None:
    """``timeout="5"`` (a string from a config file) raises a TypeError naming the job, not a
    comparison error."""
    reg = JobRegistry()

    async def send(args: Email) -> None:
        pass

    expected = r"'timeout' of job 'send' must be a number of seconds > 0 or None \(got '5'\)"
    with pytest.raises(TypeError, match=expected):
        reg.register(send, timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'timeout' of job 'send' must be a number of seconds > 0"):
        reg.register(send, timeout=-1)


async def test_unknown_job_found_in_the_store_dies_with_the_reason(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A job whose name this host does not know (enqueued elsewhere) is dead, not lost."""
    reg = JobRegistry()
    reg.register(lambda: None, name="known")
    store = InMemoryStore()
    jobs = system(wall, reg, store=store)
    (job_id,) = await store.insert(
        [NewJob(name="ghost", queue="default", args="null", run_at=0.0, max_attempts=5)],
        now=0.0,
    )
    async with running(jobs):
        job = await jobs.wait_finished(job_id)
    assert job.state is JobState.DEAD
    assert "unknown job name 'ghost'" in job.errors[0].error


async def test_stored_arguments_that_do_not_structure_make_the_job_dead(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Stored arguments that no longer structure make the job dead with the reason."""
    reg = JobRegistry()

    @reg.job()
    async def send(args: Email) -> None:
        pass

    store = InMemoryStore()
    jobs = system(wall, reg, store=store)
    (job_id,) = await store.insert(
        [NewJob(name="send", queue="default", args='{"x": 1}', run_at=0.0, max_attempts=5)],
        now=0.0,
    )
    async with running(jobs):
        job = await jobs.wait_finished(job_id)
    assert job.state is JobState.DEAD
    assert "do not structure" in job.errors[0].error


async def test_unique_job_is_not_enqueued_twice_while_pending(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A unique job with equal arguments returns the pending copy; other arguments do not."""
    reg = JobRegistry()
    ran: list[int] = []

    @reg.job(unique=True)
    async def reindex(user: int) -> None:
        ran.append(user)

    jobs = system(wall, reg)
    a = await jobs.enqueue("reindex", 1)
    assert await jobs.enqueue("reindex", 1) == a
    b = await jobs.enqueue("reindex", 2)
    assert b != a
    async with running(jobs):
        await jobs.wait_finished(a)
        await jobs.wait_finished(b)
        c = await jobs.enqueue("reindex", 1)
        assert c not in (a, b)
        await jobs.wait_finished(c)
    assert sorted(ran) == [1, 1, 2]


async def test_queue_runs_at_most_its_concurrency(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A queue with concurrency 2 runs six 1-second jobs two at a time, in 3 seconds."""
    reg = JobRegistry()
    now_running = [0]
    peak = [0]

    @reg.job(queue="narrow")
    async def step() -> None:
        now_running[0] += 1
        peak[0] = max(peak[0], now_running[0])
        await trio.sleep(1)
        now_running[0] -= 1

    jobs = system(wall, reg, queues={"narrow": 2})
    async with running(jobs):
        t0 = trio.current_time()
        ids = await jobs.enqueue_many([JobRequest(job="step")] * 6)
        for job_id in ids:
            await jobs.wait_finished(job_id)
        elapsed = trio.current_time() - t0
    assert peak[0] == 2
    assert elapsed == pytest.approx(3)


async def test_queues_are_independent(autojump_clock: MockClock, wall: TrioWallClock, running: Running) -> None:
    """A busy queue does not delay another queue's jobs."""
    reg = JobRegistry()
    gate = trio.Event()

    @reg.job(queue="slow")
    async def block() -> None:
        await gate.wait()

    @reg.job(queue="fast")
    async def quick() -> None:
        pass

    jobs = system(wall, reg, queues={"slow": 1, "fast": 1})
    async with running(jobs):
        await jobs.enqueue("block")
        await jobs.enqueue("block")
        quick_id = await jobs.enqueue("quick")
        assert (await jobs.wait_finished(quick_id)).state is JobState.SUCCEEDED
        gate.set()


async def test_enqueue_to_a_queue_this_system_does_not_run_is_refused(
    autojump_clock: MockClock,
    wall: TrioWallClock,
) -> None:
    """A job for a queue without workers here raises instead of waiting forever."""
    reg = JobRegistry()
    reg.register(lambda: None, name="x", queue="elsewhere")
    jobs = system(wall, reg)
    with pytest.raises(JobError, match="queue 'elsewhere'"):
        await jobs.enqueue("x")


async def test_enqueue_many_validates_everything_before_writing(autojump_clock: MockClock, wall: TrioWallClock) -> None:
    """One bad request in a batch enqueues nothing."""
    reg = JobRegistry()
    reg.register(lambda: None, name="ok")
    jobs = system(wall, reg)
    with pytest.raises(UnknownJobError):
        await jobs.enqueue_many([JobRequest(job="ok"), JobRequest(job="nope")])
    assert (await jobs.counts()).total == 0
    ids = await jobs.enqueue_many([JobRequest(job="ok"), JobRequest(job="ok", after=5.0)])
    assert [(await jobs.get(i)).state for i in ids] == [JobState.ENQUEUED, JobState.SCHEDULED]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"priority": "high"}, TypeError, r"'priority' must be an int \(got str 'high'\)"),
        ({"priority": True}, TypeError, r"'priority' must be an int \(got bool True\)"),
        ({"priority": 2**31}, ValueError, r"'priority' must be between -2147483648 and 2147483647 \(got 2147483648\)"),
        ({"max_attempts": 0}, ValueError, r"'max_attempts' must be >= 1 and <= 2147483647 \(got 0\)"),
        ({"max_attempts": 2.5}, TypeError, r"'max_attempts' must be an int \(got float 2.5\)"),
        ({"concurrency_key": "u", "concurrency_limit": 0}, ValueError, r"'concurrency_limit' must be >= 1"),
        ({"queue": 5}, TypeError, r"'queue' must be a string or None \(got int 5\)"),
        ({"unique_key": 5}, TypeError, r"'unique_key' must be a string or None"),
        ({"concurrency_key": 7}, TypeError, r"'concurrency_key' must be a string or None"),
    ],
)
async def test_a_bad_job_setting_is_refused_at_the_call_site_naming_it_and_nothing_is_written(
    autojump_clock: MockClock, wall: TrioWallClock, options: dict[str, object], error: type[Exception], message: str
) -> None:
    """Priorities, attempts and limits are ints in PostgreSQL's ``INTEGER`` range on every store
    (SQLite would take a string as a priority and sort it above every number); queues and keys
    are strings."""
    reg = JobRegistry()
    reg.register(lambda: None, name="ok")
    jobs = system(wall, reg)
    with pytest.raises(error, match=message):
        await jobs.enqueue_many([JobRequest(job="ok"), JobRequest(job="ok", **options)])  # type: ignore[arg-type]
    assert (await jobs.counts()).total == 0


async def test_an_int_enum_priority_and_a_str_enum_queue_are_taken_as_their_values(
    autojump_clock: MockClock, wall: TrioWallClock
) -> None:
    """`enum.IntEnum` and `enum.StrEnum` members are ints and strings: stored as their values."""

    class Priority(enum.IntEnum):
        HIGH = 10

    class Queue(enum.StrEnum):
        MAIL = "mail"

    reg = JobRegistry()
    reg.register(lambda: None, name="ok")
    jobs = system(wall, reg, queues={"mail": 1})
    job = await jobs.get(await jobs.enqueue("ok", priority=Priority.HIGH, queue=Queue.MAIL))
    assert (job.priority, type(job.priority), job.queue, type(job.queue)) == (10, int, "mail", str)


async def test_current_job_describes_the_running_job(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Inside a job function, current_job() gives its id, name and attempt."""
    reg = JobRegistry()
    seen: list[tuple[int, str, int]] = []

    @reg.job()
    async def me() -> None:
        info = current_job()
        seen.append((info.id, info.name, info.attempt))

    jobs = system(wall, reg)
    async with running(jobs):
        job_id = await jobs.enqueue("me")
        await jobs.wait_finished(job_id)
    assert seen == [(job_id, "me", 1)]
    with pytest.raises(JobError, match="outside a job"):
        current_job()


async def test_sync_job_function_runs_in_a_thread(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A plain ``def`` job runs (in a worker thread) and succeeds."""
    reg = JobRegistry()
    seen: list[str] = []

    @reg.job()
    def blocking(args: Email) -> None:
        seen.append(args.to)

    jobs = system(wall, reg)
    async with running(jobs):
        job = await jobs.wait_finished(await jobs.enqueue("blocking", Email("t@x")))
    assert (job.state, seen) == (JobState.SUCCEEDED, ["t@x"])


async def test_graceful_stop_lets_a_running_job_finish_within_the_grace(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Stopping the tree waits for a running job that ends within the grace."""
    reg = JobRegistry()

    @reg.job()
    async def slow() -> None:
        await trio.sleep(3)

    jobs = system(wall, reg, grace=10.0)
    async with running(jobs) as tree:
        job_id = await jobs.enqueue("slow")
        await trio.sleep(1)
        t0 = trio.current_time()
        await tree.stop()
        assert trio.current_time() - t0 == pytest.approx(2)
    job = await jobs.get(job_id)
    assert (job.state, job.attempt) == (JobState.SUCCEEDED, 1)


async def test_stop_past_the_grace_cancels_and_requeues_the_job(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A job still running when the grace ends is cancelled and enqueued again; the attempt it
    used counts and the interruption is recorded."""
    reg = JobRegistry()
    cancelled = []

    @reg.job()
    async def endless() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    jobs = system(wall, reg, grace=2.0)
    async with running(jobs) as tree:
        job_id = await jobs.enqueue("endless")
        await trio.sleep(1)
        t0 = trio.current_time()
        await tree.stop()
        assert trio.current_time() - t0 == pytest.approx(2)
    job = await jobs.get(job_id)
    assert cancelled == [True]
    assert (job.state, job.attempt) == (JobState.ENQUEUED, 1)
    assert [e.error.split(":")[0] for e in job.errors] == ["interrupted"]


async def test_job_of_a_dead_host_runs_again_when_its_lease_expires(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A job left running by a crashed host is re-run after its lease expires, attempt counted."""
    reg = JobRegistry()
    ran_at: list[float] = []

    @reg.job()
    async def work() -> None:
        ran_at.append(trio.current_time())

    store = InMemoryStore()
    jobs = system(wall, reg, store=store, lease=30.0, heartbeat=5.0)
    (job_id,) = await jobs.enqueue_many([JobRequest(job="work")])
    now = wall.now()
    await store.claim("default", 1, owner="crashed-host", now=now, lease_until=now + 30)
    t0 = trio.current_time()
    async with running(jobs):
        job = await jobs.wait_finished(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.attempt == 2
    assert "lease expired" in job.errors[0].error
    assert 30 < ran_at[0] - t0 <= 35 + 1e-6


async def test_heartbeat_keeps_a_long_job_leased(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A job running for ten lease lengths is never considered lost: one attempt, no error."""
    reg = JobRegistry()
    runs = [0]

    @reg.job()
    async def long() -> None:
        runs[0] += 1
        await trio.sleep(300)

    jobs = system(wall, reg, lease=30.0, heartbeat=10.0)
    async with running(jobs):
        job = await jobs.wait_finished(await jobs.enqueue("long"))
    assert (runs[0], job.attempt, job.errors) == (1, 1, ())


async def test_old_succeeded_jobs_are_pruned(autojump_clock: MockClock, wall: TrioWallClock, running: Running) -> None:
    """Succeeded jobs are deleted after ``keep_succeeded``; dead jobs are kept."""
    reg = JobRegistry()
    reg.register(lambda: None, name="ok")

    @reg.job(max_attempts=1)
    async def bad() -> None:
        raise ValueError("x")

    jobs = system(wall, reg, keep_succeeded=timedelta(hours=1))
    async with running(jobs):
        ok_id = await jobs.enqueue("ok")
        bad_id = await jobs.enqueue("bad")
        await jobs.wait_finished(ok_id)
        await jobs.wait_finished(bad_id)
        await trio.sleep(3600 + 120)
        counts = await jobs.counts()
    assert counts.by_state[JobState.SUCCEEDED] == 0
    assert counts.by_state[JobState.DEAD] == 1


async def test_list_and_counts_report_states_per_queue(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """``list`` and ``counts`` show jobs by state and queue."""
    reg = JobRegistry()
    reg.register(lambda: None, name="a", queue="qa")
    reg.register(lambda: None, name="b", queue="qb")
    jobs = system(wall, reg, queues={"qa": 1, "qb": 1})
    await jobs.enqueue("a")
    await jobs.schedule("b", after=60)
    assert [j.name for j in await jobs.list(state=JobState.SCHEDULED)] == ["b"]
    assert [j.name for j in await jobs.list(queue="qa")] == ["a"]
    counts = await jobs.counts()
    assert counts.by_queue["qa"][JobState.ENQUEUED] == 1
    assert counts.by_queue["qb"][JobState.SCHEDULED] == 1


async def test_invalid_settings_are_refused(autojump_clock: MockClock, wall: TrioWallClock) -> None:
    """Bad timing settings and queue limits raise with the offending value."""
    reg = JobRegistry()
    with pytest.raises(ValueError, match=r"'heartbeat'.*less than 'lease'"):
        system(wall, reg, lease=5.0, heartbeat=5.0)
    with pytest.raises(ValueError, match="concurrency of queue 'q'"):
        system(wall, reg, queues={"q": 0})
