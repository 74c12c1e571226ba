"""The contract every job store keeps; each test runs against every store implementation."""

from __future__ import annotations

import contextlib
import json

import attrs
import pytest
import trio

from supervisors.jobs import (
    ContinueOn,
    Failure,
    JobNotFoundError,
    JobSettings,
    JobState,
    JobStateError,
    NewJob,
    ScheduleNotFoundError,
    ScheduleSettings,
    Store,
)
from supervisors.jobs._lifecycle import TRANSITIONS, Op
from supervisors.jobs._reports import FireOutcome, ProgressReport

T0 = 1_700_000_000.0
LEASE = 30.0


def new(
    name: str = "noop",
    *,
    queue: str = "default",
    run_at: float = T0,
    args: object = None,
    unique_key: str | None = None,
    max_attempts: int = 3,
    schedule: str | None = None,
    fire_time: float | None = None,
    priority: int = 0,
    key: str | None = None,
    key_limit: int = 1,
    parent: int | None = None,
    on: ContinueOn = ContinueOn.SUCCESS,
) -> NewJob:
    return NewJob(
        name=name,
        queue=queue,
        args=json.dumps(args),
        run_at=run_at,
        max_attempts=max_attempts,
        unique_key=unique_key,
        schedule=schedule,
        fire_time=fire_time,
        priority=priority,
        concurrency_key=key,
        concurrency_limit=key_limit if key is not None else None,
        parent_id=parent,
        continue_on=on,
    )


async def claim(store: Store, queue: str = "default", limit: int = 10, owner: str = "a") -> list[int]:
    jobs = await store.claim(queue, limit, owner=owner, now=T0, lease_until=T0 + LEASE)
    return [j.id for j in jobs]


async def state(store: Store, job_id: int) -> JobState:
    job = await store.get(job_id)
    assert job is not None
    return job.state


async def test_insert_makes_due_jobs_enqueued_and_later_jobs_scheduled(any_store: Store) -> None:
    """A job due now is enqueued; a job due later is scheduled; ids come back in order."""
    ids = await any_store.insert([new(run_at=T0), new(run_at=T0 + 5)], now=T0)
    assert ids == sorted(ids)
    assert await state(any_store, ids[0]) is JobState.ENQUEUED
    assert await state(any_store, ids[1]) is JobState.SCHEDULED


async def test_insert_keeps_name_queue_and_json_args(any_store: Store) -> None:
    """The stored job has the name, queue and arguments it was inserted with."""
    (job_id,) = await any_store.insert([new("mail", queue="q", args={"to": ["a", 1]})], now=T0)
    job = await any_store.get(job_id)
    assert job is not None
    assert (job.name, job.queue, job.args, job.attempt) == ("mail", "q", {"to": ["a", 1]}, 0)
    assert job.created_at.timestamp() == T0


async def test_unique_key_returns_the_unfinished_copy(any_store: Store) -> None:
    """A second job with the key of an unfinished one is not added; its id is returned."""
    first = await any_store.insert([new(unique_key="k")], now=T0)
    again = await any_store.insert([new(unique_key="k"), new(unique_key="other")], now=T0)
    assert again[0] == first[0]
    assert again[1] != first[0]
    assert (await any_store.counts()).total == 2


async def test_unique_key_is_free_again_once_the_copy_succeeded(any_store: Store) -> None:
    """After the unique job succeeded, a new copy is added."""
    (first,) = await any_store.insert([new(unique_key="k")], now=T0)
    assert await claim(any_store) == [first]
    await any_store.settle(owner="a", now=T0, succeeded=[(first, 1)])
    (second,) = await any_store.insert([new(unique_key="k")], now=T0)
    assert second != first


async def test_unique_key_blocks_while_the_copy_runs(any_store: Store) -> None:
    """A running unique job still blocks a second copy."""
    (first,) = await any_store.insert([new(unique_key="k")], now=T0)
    await claim(any_store)
    assert await any_store.insert([new(unique_key="k")], now=T0) == [first]


async def test_claim_takes_oldest_first_up_to_the_limit(any_store: Store) -> None:
    """Claims return the lowest ids first and at most ``limit`` jobs."""
    ids = await any_store.insert([new() for _ in range(5)], now=T0)
    assert await claim(any_store, limit=2) == ids[:2]
    assert await claim(any_store, limit=10) == ids[2:]
    assert await claim(any_store) == []


async def test_claim_only_takes_jobs_of_its_queue(any_store: Store) -> None:
    """A claim on one queue leaves other queues' jobs alone."""
    a, b = await any_store.insert([new(queue="a"), new(queue="b")], now=T0)
    assert await claim(any_store, "b") == [b]
    assert await state(any_store, a) is JobState.ENQUEUED


async def test_claim_leases_and_counts_the_attempt(any_store: Store) -> None:
    """A claimed job is running, leased until the given time, with its attempt counted."""
    (job_id,) = await any_store.insert([new()], now=T0)
    (claimed,) = await any_store.claim("default", 1, owner="a", now=T0, lease_until=T0 + 7)
    assert (claimed.id, claimed.attempt, claimed.max_attempts) == (job_id, 1, 3)
    job = await any_store.get(job_id)
    assert job is not None
    assert job.state is JobState.RUNNING
    assert job.lease_until is not None
    assert job.lease_until.timestamp() == T0 + 7


async def test_concurrent_claims_never_share_a_job(any_store: Store) -> None:
    """Many claimers racing on one queue each get distinct jobs, and together all of them."""
    ids = await any_store.insert([new() for _ in range(200)], now=T0)
    got: list[int] = []

    async def claimer(owner: str) -> None:
        while batch := await claim(any_store, limit=7, owner=owner):
            got.extend(batch)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(claimer, f"owner{i}")
    assert sorted(got) == ids


async def test_settle_records_success(any_store: Store) -> None:
    """A succeeded job is finished and holds no lease."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0 + 1, succeeded=[(job_id, 1)])
    job = await any_store.get(job_id)
    assert job is not None
    assert job.state is JobState.SUCCEEDED
    assert job.finished_at is not None
    assert job.finished_at.timestamp() == T0 + 1
    assert job.lease_until is None


async def test_settle_failure_with_retry_time_makes_the_job_retrying(any_store: Store) -> None:
    """A failure with a retry time records the error and waits until then."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0 + 1, failed=[Failure(job_id, 1, "ValueError: x", "tb", T0 + 9)])
    job = await any_store.get(job_id)
    assert job is not None
    assert job.state is JobState.RETRYING
    assert job.run_at.timestamp() == T0 + 9
    assert [(e.attempt, e.error, e.traceback) for e in job.errors] == [(1, "ValueError: x", "tb")]


async def test_settle_failure_without_retry_time_makes_the_job_dead(any_store: Store) -> None:
    """A failure without a retry time kills the job, keeping args and error."""
    (job_id,) = await any_store.insert([new(args=[1, 2])], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0 + 2, failed=[Failure(job_id, 1, "E: y", "tb", None)])
    job = await any_store.get(job_id)
    assert job is not None
    assert (job.state, job.args, job.errors[0].error) == (JobState.DEAD, [1, 2], "E: y")
    assert job.finished_at is not None


async def test_settle_release_requeues_counting_the_attempt(any_store: Store) -> None:
    """A released (interrupted) job is enqueued again; its attempt counts and is recorded."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    settled = await any_store.settle(owner="a", now=T0, released=[(job_id, 1)])
    assert settled.refused == frozenset()
    job = await any_store.get(job_id)
    assert job is not None
    assert (job.state, job.attempt) == (JobState.ENQUEUED, 1)
    assert [(e.attempt, e.error.split(":")[0]) for e in job.errors] == [(1, "interrupted")]
    (again,) = await any_store.claim("default", 1, owner="a", now=T0, lease_until=T0 + LEASE)
    assert again.token == (job_id, 2)


async def test_settle_release_of_the_last_attempt_kills_the_job(any_store: Store) -> None:
    """A job interrupted on its last attempt is dead: a job that hangs across stops dies."""
    (job_id,) = await any_store.insert([new(max_attempts=1)], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, released=[(job_id, 1)])
    assert await state(any_store, job_id) is JobState.DEAD


async def test_settle_refuses_jobs_leased_to_someone_else(any_store: Store) -> None:
    """An owner that does not hold the lease cannot record an outcome, and is told so."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store, owner="a")
    settled = await any_store.settle(owner="b", now=T0, succeeded=[(job_id, 1)])
    assert settled.refused == {job_id}
    assert await state(any_store, job_id) is JobState.RUNNING


async def test_a_batch_of_successes_refuses_exactly_the_tokens_not_held(any_store: Store) -> None:
    """Several successes recorded at once: each is fenced on its own (owner and attempt); the
    held ones succeed, the others are refused and left as they were."""
    ids = await any_store.insert([new() for _ in range(5)], now=T0)
    mine = await any_store.claim("default", 3, owner="a", now=T0, lease_until=T0 + LEASE)
    theirs = await any_store.claim("default", 2, owner="b", now=T0, lease_until=T0 + LEASE)
    stale = (mine[2].id, mine[2].attempt + 1)
    tokens = [mine[0].token, mine[1].token, stale, theirs[0].token]
    settled = await any_store.settle(owner="a", now=T0 + 1, succeeded=tokens)
    assert settled.refused == {mine[2].id, theirs[0].id}
    assert [await state(any_store, job_id) for job_id in ids] == [
        JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.RUNNING, JobState.RUNNING,
        JobState.RUNNING,
    ]  # fmt: skip
    job = await any_store.get(ids[0])
    assert job is not None
    assert job.finished_at is not None
    assert job.finished_at.timestamp() == T0 + 1


async def test_a_stale_token_is_refused_after_the_job_was_claimed_again(any_store: Store) -> None:
    """Fencing: after expiry and a new claim, the old attempt's settle and renew are refused."""
    (job_id,) = await any_store.insert([new()], now=T0)
    (first,) = await any_store.claim("default", 1, owner="a", now=T0, lease_until=T0 + 1)
    await any_store.requeue_expired(now=T0 + 2)
    (second,) = await any_store.claim("default", 1, owner="a", now=T0 + 2, lease_until=T0 + 40)
    assert (first.token, second.token) == ((job_id, 1), (job_id, 2))
    assert await any_store.renew([first.token], owner="a", lease_until=T0 + 99) == {job_id}
    failed = [Failure(job_id, 1, "E", "", None)]
    for settled in (
        await any_store.settle(owner="a", now=T0 + 3, succeeded=[first.token]),
        await any_store.settle(owner="a", now=T0 + 3, failed=failed),
        await any_store.settle(owner="a", now=T0 + 3, released=[first.token]),
    ):
        assert settled.refused == {job_id}
    job = await any_store.get(job_id)
    assert job is not None
    assert (job.state, job.attempt) == (JobState.RUNNING, 2)
    assert job.lease_until is not None
    assert job.lease_until.timestamp() == T0 + 40
    assert [e.attempt for e in job.errors] == [1]
    assert (await any_store.settle(owner="a", now=T0 + 3, succeeded=[second.token])).refused == set()
    assert await state(any_store, job_id) is JobState.SUCCEEDED


async def test_settle_and_claim_records_then_claims(any_store: Store) -> None:
    """One call records outcomes and claims the next jobs."""
    first, second = await any_store.insert([new(), new()], now=T0)
    await claim(any_store, limit=1)
    got = await any_store.settle_and_claim(
        "default", 5, owner="a", now=T0, lease_until=T0 + LEASE, succeeded=[(first, 1)]
    )
    assert [j.id for j in got.claimed] == [second]
    assert got.refused == frozenset()
    assert await state(any_store, first) is JobState.SUCCEEDED


async def test_renew_extends_only_the_owners_leases(any_store: Store) -> None:
    """Renewing moves the lease of jobs held by the owner, not of others'."""
    a, b = await any_store.insert([new(), new()], now=T0)
    await claim(any_store, limit=1, owner="x")
    await claim(any_store, limit=1, owner="y")
    await any_store.renew([(a, 1), (b, 1)], owner="x", lease_until=T0 + 100)
    ja, jb = await any_store.get(a), await any_store.get(b)
    assert ja is not None
    assert jb is not None
    assert ja.lease_until is not None
    assert jb.lease_until is not None
    assert (ja.lease_until.timestamp(), jb.lease_until.timestamp()) == (T0 + 100, T0 + LEASE)


async def test_promote_due_enqueues_due_jobs_and_reports_the_next(any_store: Store) -> None:
    """Due scheduled jobs become enqueued; the earliest later one is reported."""
    a, b, c = await any_store.insert(
        [new(run_at=T0 + 1, queue="q1"), new(run_at=T0 + 2, queue="q2"), new(run_at=T0 + 9)],
        now=T0,
    )
    promoted = await any_store.promote_due(now=T0 + 2)
    assert promoted.queues == {"q1", "q2"}
    assert promoted.next_due == T0 + 9
    assert [await state(any_store, i) for i in (a, b, c)] == [
        JobState.ENQUEUED,
        JobState.ENQUEUED,
        JobState.SCHEDULED,
    ]
    assert (await any_store.promote_due(now=T0 + 100)).next_due is None


async def test_promote_due_enqueues_retrying_jobs_whose_backoff_ended(any_store: Store) -> None:
    """A retrying job becomes enqueued when its retry time comes."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, failed=[Failure(job_id, 1, "e", "", T0 + 5)])
    assert (await any_store.promote_due(now=T0 + 4)).next_due == T0 + 5
    await any_store.promote_due(now=T0 + 5)
    assert await state(any_store, job_id) is JobState.ENQUEUED


async def test_requeue_expired_recovers_jobs_of_a_dead_owner(any_store: Store) -> None:
    """A job whose lease ended goes back to the queue with the expiry recorded."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    assert await any_store.requeue_expired(now=T0 + LEASE) == frozenset()
    assert await any_store.requeue_expired(now=T0 + LEASE + 1) == {"default"}
    job = await any_store.get(job_id)
    assert job is not None
    assert (job.state, job.attempt) == (JobState.ENQUEUED, 1)
    assert "lease expired" in job.errors[0].error


async def test_requeue_expired_kills_a_job_out_of_attempts(any_store: Store) -> None:
    """An expired job that used its last attempt is dead, not requeued."""
    (job_id,) = await any_store.insert([new(max_attempts=1)], now=T0)
    await claim(any_store)
    assert await any_store.requeue_expired(now=T0 + LEASE + 1) == frozenset()
    assert await state(any_store, job_id) is JobState.DEAD


async def test_fire_inserts_occurrences_and_moves_the_cursor(any_store: Store) -> None:
    """Firing inserts the occurrence jobs and records the new cursor."""
    assert await any_store.cursor("s") is None
    jobs = [new(schedule="s", fire_time=T0 + i) for i in (1, 2)]
    ids = await any_store.fire("s", expected=None, cursor=T0 + 2, jobs=jobs, exclusive=False, now=T0)
    assert ids is not None
    assert len(ids) == 2
    assert await any_store.cursor("s") == T0 + 2
    job = await any_store.get(ids[0])
    assert job is not None
    assert job.schedule == "s"
    assert job.fire_time is not None
    assert job.fire_time.timestamp() == T0 + 1


async def test_fire_with_a_stale_cursor_changes_nothing(any_store: Store) -> None:
    """A second host firing from an old cursor is refused (compare-and-set)."""
    await any_store.fire("s", expected=None, cursor=T0, jobs=[], exclusive=False, now=T0)
    late = await any_store.fire(
        "s", expected=None, cursor=T0 + 5, jobs=[new(schedule="s", fire_time=T0 + 5)],
        exclusive=False, now=T0,
    )  # fmt: skip
    assert late is None
    assert await any_store.cursor("s") == T0
    assert (await any_store.counts()).total == 0


async def test_fire_never_inserts_an_occurrence_twice(any_store: Store) -> None:
    """The same (schedule, fire time) is inserted once even if fired again."""
    job = new(schedule="s", fire_time=T0 + 1)
    await any_store.fire("s", expected=None, cursor=T0 + 1, jobs=[job], exclusive=False, now=T0)
    again = await any_store.fire("s", expected=T0 + 1, cursor=T0 + 1, jobs=[job], exclusive=False, now=T0)
    assert again == []
    assert (await any_store.counts()).total == 1


async def test_fire_exclusive_skips_while_a_run_is_unfinished(any_store: Store) -> None:
    """With ``exclusive``, no occurrence is added while one of the schedule is unfinished."""
    first = [new(schedule="s", fire_time=T0 + 1)]
    await any_store.fire("s", expected=None, cursor=T0 + 1, jobs=first, exclusive=True, now=T0)
    second = [new(schedule="s", fire_time=T0 + 2)]
    ids = await any_store.fire("s", expected=T0 + 1, cursor=T0 + 2, jobs=second, exclusive=True, now=T0)
    assert ids == []
    assert await any_store.cursor("s") == T0 + 2


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


# --- the lifecycle table: every (state, operation) pair, against every store ---------------------

_LAST = {Op.INTERRUPT_LAST, Op.EXPIRE_LAST}


async def reach(store: Store, target: JobState, *, max_attempts: int) -> tuple[int, tuple[int, int]]:
    """A job in ``target`` (by documented transitions only) and its latest fencing token."""
    run_at = T0 + 100 if target is JobState.SCHEDULED else T0
    if target is JobState.AWAITING:  # a continuation of a job of queue "parents"
        (parent,) = await store.insert([new(queue="parents")], now=T0)
        (job_id,) = await store.insert([new(parent=parent, max_attempts=max_attempts)], now=T0)
        return job_id, (job_id, 1)
    (job_id,) = await store.insert([new(run_at=run_at, max_attempts=max_attempts)], now=T0)
    if target in (JobState.SCHEDULED, JobState.ENQUEUED):
        return job_id, (job_id, 1)
    (claimed,) = await store.claim("default", 1, owner="a", now=T0, lease_until=T0 + LEASE)
    token = claimed.token
    if target is JobState.SUCCEEDED:
        await store.settle(owner="a", now=T0, succeeded=[token])
    elif target is JobState.RETRYING:
        await store.settle(owner="a", now=T0, failed=[Failure(job_id, 1, "E", "", T0 + 5)])
    elif target is JobState.DEAD:
        await store.settle(owner="a", now=T0, failed=[Failure(job_id, 1, "E", "", None)])
    elif target is JobState.CANCELLED:
        await store.cancel(job_id, now=T0)
        await store.settle(owner="a", now=T0, released=[token])
    return job_id, token


async def perform(
    store: Store, op: Op, job_id: int, token: tuple[int, int], job_state: JobState
) -> None:
    """Apply ``op`` to the job, as the component that owns the operation would."""
    later = T0 + 10 * LEASE
    if op is Op.PROMOTE:
        await store.promote_due(now=later)
    elif op is Op.CLAIM:
        await store.claim("default", 1, owner="a", now=T0, lease_until=T0 + LEASE)
    elif op is Op.RENEW:
        await store.renew([token], owner="a", lease_until=later)
    elif op is Op.SUCCEED:
        await store.settle(owner="a", now=T0, succeeded=[token])
    elif op in (Op.FAIL, Op.KILL):
        retry_at = later if op is Op.FAIL else None
        await store.settle(owner="a", now=T0, failed=[Failure(*token, "E", "", retry_at)])
    elif op in (Op.INTERRUPT, Op.INTERRUPT_LAST):
        await store.settle(owner="a", now=T0, released=[token])
    elif op in (Op.EXPIRE, Op.EXPIRE_LAST):
        await store.requeue_expired(now=later)
    elif op is Op.RETRY:
        with contextlib.suppress(JobStateError):
            await store.retry(job_id, now=T0, attempts=1)
    elif op is Op.PRUNE:
        with contextlib.suppress(ValueError):
            await store.prune(state=job_state, before=later)
    elif op is Op.CANCEL:
        with contextlib.suppress(JobStateError):
            await store.cancel(job_id, now=T0)
    elif op is Op.CANCEL_END:  # the runner of a job whose cancellation was requested stops it
        if job_state is JobState.RUNNING:
            await store.cancel(job_id, now=T0)
        await store.settle(owner="a", now=T0, released=[token])
    elif op is Op.DELETE:
        with contextlib.suppress(JobStateError):
            await store.delete(job_id, now=T0)
    elif op in (Op.CONTINUE, Op.ABANDON):  # the parent (if any) succeeds, or dies
        parents = await store.claim("parents", 1, owner="p", now=T0, lease_until=T0 + LEASE)
        outcome = [Failure(*p.token, "E", "", None) for p in parents]
        if op is Op.CONTINUE:
            await store.settle(owner="p", now=T0, succeeded=[p.token for p in parents])
        else:
            await store.settle(owner="p", now=T0, failed=outcome)
    elif op is Op.REQUEUE:
        with contextlib.suppress(JobStateError):
            await store.requeue(job_id, now=T0, attempts=1)
    else:  # pragma: no cover - the insert operations have no source state
        raise AssertionError(op)


@pytest.mark.parametrize(
    "op", [op for op in Op if op not in (Op.ENQUEUE, Op.SCHEDULE, Op.AWAIT)], ids=str
)
@pytest.mark.parametrize("start", list(JobState), ids=str)
async def test_every_operation_does_what_the_lifecycle_table_says(
    any_store: Store, start: JobState, op: Op
) -> None:
    """From each state, each operation leads where `TRANSITIONS` says; an absent pair is refused
    and leaves the job as it was."""
    job_id, token = await reach(any_store, start, max_attempts=1 if op in _LAST else 2)
    before = await any_store.get(job_id)
    await perform(any_store, op, job_id, token, start)
    after = await any_store.get(job_id)
    expected = TRANSITIONS.get((start, op), start)
    assert (after.state if after is not None else None) == expected
    if (start, op) not in TRANSITIONS:
        assert after == before
    elif op is Op.CANCEL and start is JobState.RUNNING:
        assert after is not None
        assert after.cancel_requested


async def test_insert_is_the_only_way_in(any_store: Store) -> None:
    """A new job enters as the table's ``(None, ENQUEUE)`` or ``(None, SCHEDULE)`` says."""
    now_id, later_id = await any_store.insert([new(run_at=T0), new(run_at=T0 + 1)], now=T0)
    assert await state(any_store, now_id) is TRANSITIONS[(None, Op.ENQUEUE)]
    assert await state(any_store, later_id) is TRANSITIONS[(None, Op.SCHEDULE)]


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


async def test_defined_jobs_take_the_recorded_settings(any_store: Store) -> None:
    """An insert with ``defined=True`` takes queue, attempts and uniqueness not given from the
    recorded definition; explicit ones win; unknown names get the defaults."""
    await any_store.define([JobSettings(name="mail", queue="m", max_attempts=2, unique=True)])
    loose = NewJob(name="mail", queue=None, args="1", run_at=T0, max_attempts=None, defined=True)
    a, b, c = await any_store.insert([loose, loose, attrs.evolve(loose, args="2")], now=T0)
    explicit = attrs.evolve(loose, queue="q", max_attempts=9, args="3")
    unknown = attrs.evolve(loose, name="other")
    d, e = await any_store.insert([explicit, unknown], now=T0)
    jobs = {j.id: j for j in await any_store.list()}
    assert (a == b, a == c) == (True, False)
    assert [(jobs[i].queue, jobs[i].max_attempts) for i in (a, c, d, e)] == [
        ("m", 2), ("m", 2), ("q", 9), ("default", 20),
    ]  # fmt: skip
    assert jobs[a].unique_key == "mail:1"


# --- operations: cancel, delete, requeue, pause and resume queues and schedules ------------------


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


async def test_trigger_enqueues_a_recorded_schedule_now(any_store: Store) -> None:
    """A recorded schedule's job is inserted due now, marked with the schedule."""
    await any_store.define_schedules(
        [ScheduleSettings(name="nightly", job="report", queue="q", args="[1]", max_attempts=4)]
    )
    job_id, queue = await any_store.trigger("nightly", now=T0)
    job = await any_store.get(job_id)
    assert job is not None
    assert queue == "q"
    assert (job.name, job.args, job.max_attempts, job.schedule, job.state) == (
        "report", [1], 4, "nightly", JobState.ENQUEUED,
    )  # fmt: skip
    with pytest.raises(ScheduleNotFoundError, match=r"'weekly' .* \(recorded: 'nightly'\)"):
        await any_store.trigger("weekly", now=T0)


async def test_a_paused_schedule_fires_nothing_but_moves_on(any_store: Store) -> None:
    """`fire` of a paused schedule inserts nothing and moves the cursor; resuming fires again;
    the pause survives a new record of the schedule."""
    spec = ScheduleSettings(name="s", job="noop", queue="default", args="null", max_attempts=1)
    await any_store.define_schedules([spec])
    await any_store.pause_schedule("s", paused=True)
    await any_store.define_schedules([spec])
    assert await any_store.paused_schedules() == frozenset({"s"})
    job = new(schedule="s", fire_time=T0)
    ids = await any_store.fire("s", expected=None, cursor=T0, jobs=[job], exclusive=False, now=T0)
    assert ids == []
    assert await any_store.cursor("s") == T0
    await any_store.pause_schedule("s", paused=False)
    job = new(schedule="s", fire_time=T0 + 60)
    ids = await any_store.fire(
        "s", expected=T0, cursor=T0 + 60, jobs=[job], exclusive=False, now=T0 + 60
    )
    assert ids is not None
    assert len(ids) == 1
    with pytest.raises(ScheduleNotFoundError, match="'nope'"):
        await any_store.pause_schedule("nope", paused=True)


# --- priorities and limits kept in the store -----------------------------------------------------


async def test_claim_takes_higher_priority_first_then_by_due_time_then_id(any_store: Store) -> None:
    """Priority wins over age; equal priorities go by run_at, then id."""
    ids = await any_store.insert(
        [new(priority=0), new(priority=5, run_at=T0 - 1), new(priority=5, run_at=T0 - 2),
         new(priority=-1), new(priority=5, run_at=T0 - 1)],
        now=T0,
    )  # fmt: skip
    order = [await claim(any_store, limit=1) for _ in ids]
    assert order == [[ids[2]], [ids[1]], [ids[4]], [ids[0]], [ids[3]]]


async def test_a_batch_claim_returns_jobs_in_claim_order(any_store: Store) -> None:
    """A claim of several jobs returns them highest priority first."""
    low, high = await any_store.insert([new(priority=1), new(priority=9)], now=T0)
    assert await claim(any_store) == [high, low]


async def test_rate_limit_counts_claims_in_a_sliding_window(any_store: Store) -> None:
    """At most N claims per period, across claimers; the window slides; retries count. Claims
    are counted in buckets of period/64 (here 0.15625 s), conservatively: a claim counts until
    its whole bucket has left the window."""
    ids = await any_store.insert([new() for _ in range(6)], now=T0)
    await any_store.set_rate_limit("default", limit=2, period=10.0)
    assert await any_store.rate_limits() == {"default": (2, 10.0)}

    async def claim_at(t: float, limit: int = 10) -> list[int]:
        got = await any_store.claim("default", limit, owner="b", now=T0 + t, lease_until=T0 + LEASE)
        return [j.id for j in got]

    assert await claim_at(0.0) == ids[:2]
    assert await claim_at(5.0) == []
    assert await claim_at(10.0) == []  # the bucket of the claims at T0 still overlaps the window
    assert await claim_at(10.2, limit=1) == [ids[2]]
    assert await claim_at(10.3) == [ids[3]]  # the claim at T0 + 10.2 still counts
    await any_store.set_rate_limit("default", limit=None, period=0.0)
    assert await claim_at(11.0) == ids[4:]


async def test_concurrency_key_limits_running_jobs_with_the_key(any_store: Store) -> None:
    """At most ``concurrency_limit`` jobs of a key run at once, even claimed in one batch;
    the jobs past them are claimed instead; finishing one frees its key."""
    u1, u1b, u2, u1c, plain = await any_store.insert(
        [new(key="u1"), new(key="u1"), new(key="u2", key_limit=2), new(key="u1"), new()], now=T0
    )
    assert await claim(any_store) == [u1, u2, plain]
    assert await claim(any_store) == []
    job = await any_store.get(u1b)
    assert job is not None
    assert (job.state, job.attempt, job.concurrency_key) == (JobState.ENQUEUED, 0, "u1")
    await any_store.settle(owner="a", now=T0, succeeded=[(u1, 1)])
    assert await claim(any_store) == [u1b]
    assert await state(any_store, u1c) is JobState.ENQUEUED


async def test_a_store_with_a_table_of_hosts_lists_this_host_with_the_jobs_claimed_under_its_id(
    any_store: Store,
) -> None:
    """A store that keeps a table of hosts lists this process's host, alive, with the jobs
    claimed by an owner ``<host id>/...`` as running there; a store without one answers None."""
    (job_id, _other) = await any_store.insert([new(), new()], now=T0)
    if any_store.host_id is None:
        assert await any_store.hosts() is None
        return
    assert await claim(any_store, limit=1, owner=f"{any_store.host_id}/worker") == [job_id]
    await claim(any_store, limit=1, owner="someone-else")
    hosts = {h.id: h for h in await any_store.hosts() or []}
    assert hosts[any_store.host_id].alive
    assert hosts[any_store.host_id].running == (job_id,)
    assert hosts[any_store.host_id].singletons == ()


# --- progress and log of attempts; the fire ledger of schedules ------------------------------------


def report(job_id: int, attempt: int = 1, *, version: int = 1, fraction: float | None = 0.5,
           message: str = "", lines: tuple[tuple[int, float, str], ...] = (),
           dropped: int = 0) -> ProgressReport:  # fmt: skip
    return ProgressReport(job_id, attempt, version, fraction, message, lines, dropped)


async def test_report_keeps_progress_and_lines_per_attempt(any_store: Store) -> None:
    """A running attempt's progress and log lines are stored under its attempt; the latest
    version of the progress wins, lines accumulate in order, a line sent twice is kept once."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    first = report(job_id, fraction=0.25, message="a", lines=((0, T0, "one"), (1, T0 + 1, "two")))
    assert await any_store.report([first], owner="a", now=T0 + 1) == frozenset()
    later = report(job_id, version=3, fraction=0.75, message="c", lines=((2, T0 + 2, "three"),))
    older = report(job_id, version=2, fraction=0.5, message="b", lines=((1, T0 + 1, "two"),))
    await any_store.report([later], owner="a", now=T0 + 3)
    await any_store.report([older], owner="a", now=T0 + 4)  # arrives late: progress stays
    (seen,) = await any_store.progress(job_id)
    assert (seen.attempt, seen.fraction, seen.message, seen.dropped) == (1, 0.75, "c", 0)
    assert [line.text for line in seen.lines] == ["one", "two", "three"]
    assert seen.lines[0].at.timestamp() == T0


async def test_report_is_fenced_by_the_attempt_and_owner(any_store: Store) -> None:
    """A report with a stale token (another owner, an old attempt, a finished job) is refused
    and stores nothing; the new attempt's reports are kept apart from the old one's."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.report([report(job_id, message="first run")], owner="a", now=T0)
    assert await any_store.report([report(job_id)], owner="b", now=T0) == {job_id}
    await any_store.requeue_expired(now=T0 + LEASE + 1)
    await claim(any_store, owner="b")
    stale = report(job_id, version=9, message="stale")
    assert await any_store.report([stale], owner="a", now=T0) == {job_id}
    assert await any_store.report([report(job_id, 2, message="second")], owner="b", now=T0) == set()
    await any_store.settle(owner="b", now=T0, succeeded=[(job_id, 2)])
    assert await any_store.report([report(job_id, 2, version=5)], owner="b", now=T0) == {job_id}
    progress = await any_store.progress(job_id)
    assert [(p.attempt, p.message) for p in progress] == [(1, "first run"), (2, "second")]


async def test_report_keeps_the_count_of_dropped_lines(any_store: Store) -> None:
    """The number of lines dropped over the cap is stored with the attempt's progress."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.report([report(job_id, fraction=None, dropped=7)], owner="a", now=T0)
    (seen,) = await any_store.progress(job_id)
    assert (seen.fraction, seen.dropped) == (None, 7)


async def test_progress_goes_with_its_job(any_store: Store) -> None:
    """Deleting or pruning a job deletes its progress and log; an unknown job raises."""
    kept, pruned = await any_store.insert([new(), new()], now=T0)
    await claim(any_store)
    line = ((0, T0, "x"),)
    await any_store.report([report(kept, lines=line), report(pruned, lines=line)], owner="a", now=T0)
    await any_store.settle(owner="a", now=T0, succeeded=[(kept, 1), (pruned, 1)])
    assert await any_store.prune(state=JobState.SUCCEEDED, before=T0 + 1, limit=1) == 1
    await any_store.delete(pruned, now=T0)
    for job_id in (kept, pruned):
        with pytest.raises(JobNotFoundError):
            await any_store.progress(job_id)
    (other,) = await any_store.insert([new()], now=T0)
    assert await any_store.progress(other) == []


def _occurrences(*times: float) -> list[NewJob]:
    return [new(schedule="s", fire_time=t) for t in times]


async def _outcomes(store: Store) -> list[tuple[float, FireOutcome, int | None]]:
    entries = await store.ledger("s", limit=50)
    return [(e.fire_time.timestamp(), e.outcome, e.job_id) for e in reversed(entries)]


async def test_the_ledger_records_fired_and_missed_occurrences(any_store: Store) -> None:
    """Each occurrence fired gets a FIRED entry with its job; each noted fire time without a job
    a MISSED entry with the note as its reason; oldest first, by the recording host."""
    ids = await any_store.fire(
        "s", expected=None, cursor=T0 + 3, jobs=_occurrences(T0 + 3), exclusive=False, now=T0 + 3,
        owner="host-a", notes={T0 + 1: "it came due while no scheduler was running", T0 + 2: "x"},
    )  # fmt: skip
    assert ids is not None
    assert await _outcomes(any_store) == [
        (T0 + 1, FireOutcome.MISSED, None), (T0 + 2, FireOutcome.MISSED, None),
        (T0 + 3, FireOutcome.FIRED, ids[0]),
    ]  # fmt: skip
    newest = (await any_store.ledger("s", limit=3))[-1]
    assert (newest.reason, newest.host) == ("it came due while no scheduler was running", "host-a")


async def test_the_ledger_records_skips_for_overlap_and_pause(any_store: Store) -> None:
    """An occurrence blocked by an unfinished run is SKIPPED naming that run; one of a paused
    schedule is SKIPPED as paused; a held occurrence records nothing."""
    spec = ScheduleSettings(name="s", job="noop", queue="default", args="null", max_attempts=1)
    await any_store.define_schedules([spec])
    (first,) = await any_store.fire(
        "s", expected=None, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=True, now=T0
    ) or [0]
    await any_store.fire("s", expected=T0 + 1, cursor=T0 + 2, jobs=_occurrences(T0 + 2), exclusive=True, now=T0)
    await any_store.fire(
        "s", expected=T0 + 2, cursor=T0 + 3, jobs=_occurrences(T0 + 3), exclusive=True, now=T0, hold=True
    )  # fmt: skip
    await any_store.pause_schedule("s", paused=True)
    await any_store.fire("s", expected=T0 + 2, cursor=T0 + 4, jobs=_occurrences(T0 + 4), exclusive=False, now=T0)
    assert await _outcomes(any_store) == [
        (T0 + 1, FireOutcome.FIRED, first), (T0 + 2, FireOutcome.SKIPPED, first),
        (T0 + 4, FireOutcome.SKIPPED, None),
    ]  # fmt: skip
    entries = await any_store.ledger("s")
    assert "paused" in entries[0].reason
    assert f"job {first} of this schedule is still unfinished" in entries[1].reason


async def test_the_ledger_records_deduplicated_occurrences(any_store: Store) -> None:
    """A host whose compare-and-set lost records DEDUPLICATED for the occurrences the winner
    enqueued, naming the winner's job; so does an occurrence whose job exists already."""
    (won,) = await any_store.fire(
        "s", expected=None, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=False, now=T0,
        owner="host-a",
    ) or [0]  # fmt: skip
    lost = await any_store.fire(
        "s", expected=None, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=False, now=T0,
        owner="host-b",
    )  # fmt: skip
    assert lost is None
    await any_store.fire("s", expected=T0 + 1, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=False, now=T0)
    assert await _outcomes(any_store) == [
        (T0 + 1, FireOutcome.FIRED, won), (T0 + 1, FireOutcome.DEDUPLICATED, won),
        (T0 + 1, FireOutcome.DEDUPLICATED, won),
    ]  # fmt: skip
    assert (await any_store.ledger("s"))[1].host == "host-b"


async def test_a_trigger_is_in_the_ledger_and_the_ledger_of_an_unknown_schedule_raises(
    any_store: Store,
) -> None:
    """A run triggered by hand is a FIRED entry saying so; an unrecorded schedule raises."""
    spec = ScheduleSettings(name="s", job="noop", queue="default", args="null", max_attempts=1)
    await any_store.define_schedules([spec])
    assert await any_store.ledger("s") == []
    job_id, _queue = await any_store.trigger("s", now=T0, owner="client")
    (entry,) = await any_store.ledger("s")
    assert (entry.outcome, entry.job_id, entry.host) == (FireOutcome.FIRED, job_id, "client")
    assert "triggered by hand" in entry.reason
    with pytest.raises(ScheduleNotFoundError, match="'nope'"):
        await any_store.ledger("nope")


async def test_trim_ledger_keeps_the_newest_entries_of_each_schedule(any_store: Store) -> None:
    """Retention keeps the newest ``keep`` entries per schedule."""
    for i in range(5):
        await any_store.fire(
            "s", expected=None if i == 0 else T0 + i - 1, cursor=T0 + i,
            jobs=_occurrences(T0 + i), exclusive=False, now=T0,
        )  # fmt: skip
    await any_store.fire("t", expected=None, cursor=T0, jobs=[new(schedule="t", fire_time=T0)],
                         exclusive=False, now=T0)  # fmt: skip
    assert await any_store.trim_ledger(keep=2) == 3
    assert [t for t, _, _ in await _outcomes(any_store)] == [T0 + 3, T0 + 4]
    assert len(await any_store.ledger("t")) == 1


async def test_schedules_lists_policies_next_and_last_runs(any_store: Store) -> None:
    """Recorded schedules come with their cron, time zone, policies in words, the next
    occurrence, the latest ledger entry and the state of the last run's job."""
    spec = ScheduleSettings(
        name="s", job="noop", queue="default", args="null", max_attempts=1,
        cron="0 * * * *", tz="Europe/Paris", misfire="skip", misfire_grace=30.0, overlap=False,
    )  # fmt: skip
    await any_store.define_schedules([spec])
    (job_id,) = await any_store.fire(
        "s", expected=None, cursor=T0, jobs=_occurrences(T0), exclusive=True, now=T0
    ) or [0]
    (info,) = await any_store.schedules(now=T0 + 1)
    assert (info.name, info.cron, info.tz, info.paused) == ("s", "0 * * * *", "Europe/Paris", False)
    assert info.next_run is not None
    assert info.next_run.timestamp() == (T0 // 3600 + 1) * 3600
    assert info.last_run is not None
    assert (info.last_run.job_id, info.last_run_state) == (job_id, JobState.ENQUEUED)
    assert "skip" in info.catch_up_policy
    assert "30 s" in info.catch_up_policy
    assert "skipped while a previous run is unfinished" in info.overlap_policy
    assert "clocks go back" in info.dst_policy
