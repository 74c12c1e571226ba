"""The store contract against the lifecycle table: every (state, operation) pair, on every store
implementation."""

from __future__ import annotations

import contextlib

import pytest
from _contract import LEASE, T0, new, state

from supervisors.jobs import Failure, JobState, JobStateError, Store
from supervisors.jobs._lifecycle import TRANSITIONS, Op

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
