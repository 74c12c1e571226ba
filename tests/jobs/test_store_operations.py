"""The store contract for the operations on jobs (list, counts, retry, cancel, delete, requeue,
prune, pause a queue); each test runs against every store implementation."""

from __future__ import annotations

import pytest
from _contract import LEASE, T0, claim, new, state

from supervisors.jobs import Failure, JobNotFoundError, JobState, JobStateError, Store


async def test_list_filters_by_state_and_queue(any_store: Store) -> None:
    """Listing filters by state and queue, ordered by id, with limit and offset."""
    ids = await any_store.insert(
        [new(queue="a"), new(queue="b"), new(queue="a", run_at=T0 + 9), new(queue="a")], now=T0
    )
    enqueued_a = await any_store.list(state=JobState.ENQUEUED, queue="a")
    assert [j.id for j in enqueued_a] == [ids[0], ids[3]]
    assert [j.id for j in await any_store.list(limit=2, offset=1)] == ids[1:3]
    assert [j.id for j in await any_store.list(state=JobState.SCHEDULED)] == [ids[2]]


async def test_counts_per_state_and_queue(any_store: Store) -> None:
    """Counts add up per state and per queue; absent states count zero."""
    await any_store.insert([new(queue="a"), new(queue="a"), new(queue="b", run_at=T0 + 1)], now=T0)
    counts = await any_store.counts()
    assert counts.total == 3
    assert counts.by_state[JobState.ENQUEUED] == 2
    assert counts.by_state[JobState.DEAD] == 0
    assert counts.by_queue["a"][JobState.ENQUEUED] == 2
    assert counts.by_queue["b"][JobState.SCHEDULED] == 1


async def test_has_work_while_a_job_of_the_queues_is_enqueued_or_running(any_store: Store) -> None:
    """`has_work` is true while a job of one of the queues is enqueued or running, whatever the
    other queues hold; scheduled and finished jobs do not count. It agrees with `counts` (the
    base class's default), on every store."""

    async def both(queues: list[str]) -> bool:
        answer = await any_store.has_work(queues)
        assert await Store.has_work(any_store, queues) is answer  # the default, from counts
        return answer

    assert await both(["a"]) is False
    (later,) = await any_store.insert([new(queue="a", run_at=T0 + 60)], now=T0)
    (other,) = await any_store.insert([new(queue="b")], now=T0)
    assert (await both(["a"]), await both(["a", "b"]), await both([])) == (False, True, False)
    (job_id,) = await any_store.insert([new(queue="a")], now=T0)
    assert await both(["a"]) is True  # enqueued
    assert await claim(any_store, queue="a") == [job_id]
    assert await both(["a"]) is True  # running
    await any_store.settle(owner="a", now=T0, succeeded=[(job_id, 1)])
    assert await both(["a"]) is False  # succeeded; the other job of "a" is scheduled
    assert await state(any_store, later) is JobState.SCHEDULED
    assert await both(["b", "c"]) is True
    assert await state(any_store, other) is JobState.ENQUEUED


async def test_retry_gives_a_dead_job_more_attempts(any_store: Store) -> None:
    """Retrying a dead job enqueues it with the extra attempts and keeps its errors."""
    (job_id,) = await any_store.insert([new(max_attempts=1)], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, failed=[Failure(job_id, 1, "e", "tb", None)])
    assert await any_store.retry(job_id, now=T0 + 1, attempts=2) == "default"
    job = await any_store.get(job_id)
    assert job is not None
    assert (job.state, job.max_attempts, len(job.errors)) == (JobState.ENQUEUED, 3, 1)
    assert job.finished_at is None


async def test_retry_refuses_running_and_succeeded_jobs(any_store: Store) -> None:
    """Only dead, retrying or scheduled jobs can be retried."""
    a, b = await any_store.insert([new(), new()], now=T0)
    await claim(any_store, limit=1)
    with pytest.raises(JobStateError, match="is running"):
        await any_store.retry(a, now=T0, attempts=1)
    with pytest.raises(JobStateError, match="is enqueued"):
        await any_store.retry(b, now=T0, attempts=1)
    with pytest.raises(JobNotFoundError, match="no job with id 999"):
        await any_store.retry(999, now=T0, attempts=1)


async def test_retry_refuses_a_dead_unique_job_with_a_live_copy(any_store: Store) -> None:
    """A dead unique job cannot come back while another copy is unfinished."""
    (dead,) = await any_store.insert([new(unique_key="k", max_attempts=1)], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, failed=[Failure(dead, 1, "e", "", None)])
    (live,) = await any_store.insert([new(unique_key="k")], now=T0)
    with pytest.raises(JobStateError, match=f"job {live}"):
        await any_store.retry(dead, now=T0, attempts=1)


async def test_retry_runs_a_scheduled_job_now(any_store: Store) -> None:
    """Retrying a scheduled job makes it enqueued at once."""
    (job_id,) = await any_store.insert([new(run_at=T0 + 100)], now=T0)
    await any_store.retry(job_id, now=T0, attempts=1)
    assert await claim(any_store) == [job_id]


async def test_prune_deletes_only_old_succeeded_jobs(any_store: Store) -> None:
    """Pruning removes succeeded jobs finished before the cut-off, nothing else."""
    old, new_ok, dead = await any_store.insert([new(), new(), new(max_attempts=1)], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, succeeded=[(old, 1)])
    await any_store.settle(owner="a", now=T0 + 10, succeeded=[(new_ok, 1)])
    await any_store.settle(owner="a", now=T0, failed=[Failure(dead, 1, "e", "", None)])
    assert await any_store.prune(state=JobState.SUCCEEDED, before=T0 + 5) == 1
    assert await any_store.get(old) is None
    assert await any_store.get(new_ok) is not None
    assert await any_store.get(dead) is not None


async def test_prune_deletes_old_dead_jobs_in_batches(any_store: Store) -> None:
    """Dead jobs are pruned by their own cut-off, at most ``limit`` per call, errors included."""
    ids = await any_store.insert([new(max_attempts=1) for _ in range(5)], now=T0)
    await claim(any_store)
    failed = [Failure(i, 1, "e", "tb", None) for i in ids]
    await any_store.settle(owner="a", now=T0, failed=failed)
    assert await any_store.prune(state=JobState.SUCCEEDED, before=T0 + 1) == 0
    assert await any_store.prune(state=JobState.DEAD, before=T0 + 1, limit=2) == 2
    assert await any_store.prune(state=JobState.DEAD, before=T0 + 1, limit=2) == 2
    assert [j.id for j in await any_store.list()] == ids[4:]
    with pytest.raises(ValueError, match="only succeeded, dead, cancelled jobs can be pruned"):
        await any_store.prune(state=JobState.RUNNING, before=T0)


async def test_cancel_makes_a_waiting_job_cancelled_and_never_claimed(any_store: Store) -> None:
    """A scheduled, enqueued or retrying job is cancelled at once; no claim takes it."""
    now_id, later_id = await any_store.insert([new(), new(run_at=T0 + 5)], now=T0)
    assert await any_store.cancel(now_id, now=T0) == (JobState.CANCELLED, "default")
    assert await any_store.cancel(later_id, now=T0) == (JobState.CANCELLED, "default")
    await any_store.promote_due(now=T0 + 10)
    assert await claim(any_store) == []
    job = await any_store.get(now_id)
    assert job is not None
    assert job.finished_at is not None
    assert job.attempt == 0


async def test_cancel_of_a_running_job_is_a_request_seen_by_cancelling(any_store: Store) -> None:
    """A running job stays running, flagged; `cancelling` names it; the end of its attempt
    without success makes it cancelled with a ``cancelled:`` error, never retried."""
    a, b = await any_store.insert([new(), new()], now=T0)
    await claim(any_store)
    assert await any_store.cancel(a, now=T0) == (JobState.RUNNING, "default")
    assert await any_store.cancelling([a, b]) == frozenset({a})
    await any_store.settle(owner="a", now=T0, released=[(a, 1)])
    job = await any_store.get(a)
    assert job is not None
    assert job.state is JobState.CANCELLED
    assert [e.error.split(":")[0] for e in job.errors] == ["cancelled"]
    assert await any_store.cancelling([a]) == frozenset()


async def test_a_cancel_requested_job_that_fails_or_expires_is_cancelled(any_store: Store) -> None:
    """Failure and lease expiry of a job whose cancellation was requested do not retry it."""
    a, b = await any_store.insert([new(), new()], now=T0)
    await claim(any_store)
    await any_store.cancel(a, now=T0)
    await any_store.cancel(b, now=T0)
    await any_store.settle(owner="a", now=T0, failed=[Failure(a, 1, "E", "", T0 + 1)])
    await any_store.requeue_expired(now=T0 + 2 * LEASE)
    assert [await state(any_store, i) for i in (a, b)] == [JobState.CANCELLED] * 2


async def test_a_cancel_requested_job_that_succeeds_is_succeeded(any_store: Store) -> None:
    """A run that returns before it sees its cancellation keeps its success."""
    (a,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.cancel(a, now=T0)
    await any_store.settle(owner="a", now=T0, succeeded=[(a, 1)])
    job = await any_store.get(a)
    assert job is not None
    assert (job.state, job.cancel_requested) == (JobState.SUCCEEDED, True)


async def test_cancel_refuses_finished_jobs_and_names_unknown_ones(any_store: Store) -> None:
    """Cancelling a succeeded job raises `JobStateError`; an unknown id `JobNotFoundError`."""
    (a,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, succeeded=[(a, 1)])
    with pytest.raises(JobStateError, match=f"job {a} is succeeded; only .* can be cancelled"):
        await any_store.cancel(a, now=T0)
    with pytest.raises(JobNotFoundError, match="no job with id 999"):
        await any_store.cancel(999, now=T0)


async def test_delete_removes_a_job_and_its_errors_but_not_a_running_one(any_store: Store) -> None:
    """Delete works in every state but running."""
    a, b = await any_store.insert([new(max_attempts=1), new()], now=T0)
    await claim(any_store, limit=1)
    await any_store.settle(owner="a", now=T0, failed=[Failure(a, 1, "E", "tb", None)])
    await any_store.delete(a, now=T0)
    assert await any_store.get(a) is None
    await claim(any_store)
    with pytest.raises(JobStateError, match=f"job {b} is running; cancel it"):
        await any_store.delete(b, now=T0)
    with pytest.raises(JobNotFoundError, match=f"no job with id {a}"):
        await any_store.delete(a, now=T0)


async def test_a_deleted_newest_jobs_id_is_never_given_to_a_later_job(any_store: Store) -> None:
    """Deleting or pruning the newest jobs frees no id: later jobs, one or many, get higher ids,
    and an old id still names no job (a cancel of it cannot reach a new one)."""
    a, b = await any_store.insert([new(), new()], now=T0)
    await any_store.delete(b, now=T0)
    (c,) = await any_store.insert([new(unique_key="u")], now=T0)
    assert c > b
    assert await claim(any_store) == [a, c]
    await any_store.settle(owner="a", now=T0, succeeded=[(a, 1), (c, 1)])
    assert await any_store.prune(state=JobState.SUCCEEDED, before=T0 + 1) == 2
    later = await any_store.insert([new(), new(), new()], now=T0 + 2)
    assert min(later) > c
    assert len(set(later)) == 3
    for gone in (b, c):
        with pytest.raises(JobNotFoundError, match=f"no job with id {gone}"):
            await any_store.cancel(gone, now=T0 + 2)


async def test_requeue_runs_a_finished_job_again_with_more_attempts(any_store: Store) -> None:
    """A succeeded or cancelled job is enqueued again now, with ``attempts`` more attempts."""
    a, b = await any_store.insert([new(max_attempts=1), new()], now=T0)
    await claim(any_store, limit=1)
    await any_store.settle(owner="a", now=T0, succeeded=[(a, 1)])
    await any_store.cancel(b, now=T0)
    assert await any_store.requeue(a, now=T0 + 1, attempts=2) == "default"
    await any_store.requeue(b, now=T0 + 1, attempts=1)
    job = await any_store.get(a)
    assert job is not None
    assert (job.state, job.max_attempts, job.finished_at) == (
        JobState.ENQUEUED, 3, None,
    )
    assert await claim(any_store) == [a, b]
    with pytest.raises(JobStateError, match=r"only .* can be requeued"):
        await any_store.requeue(a, now=T0, attempts=1)


async def test_a_paused_queue_is_not_claimed_until_resumed(any_store: Store) -> None:
    """Pausing is per queue, kept in the store, and idempotent."""
    a, b = await any_store.insert([new(queue="q"), new(queue="r")], now=T0)
    await any_store.pause_queue("q", paused=True, now=T0)
    await any_store.pause_queue("q", paused=True, now=T0)
    assert await any_store.paused_queues() == frozenset({"q"})
    assert await claim(any_store, "q") == []
    assert await claim(any_store, "r") == [b]
    await any_store.pause_queue("q", paused=False, now=T0)
    assert await any_store.paused_queues() == frozenset()
    assert await claim(any_store, "q") == [a]
