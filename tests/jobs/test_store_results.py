"""The store contract for results and continuations; each test runs against every store."""

from __future__ import annotations

import json

import pytest
from _contract import LEASE, T0, claim, new, state

from supervisors.jobs import (
    ContinueOn,
    Failure,
    Job,
    JobNotFoundError,
    JobState,
    Store,
    Success,
)
from supervisors.jobs._lifecycle import TRANSITIONS, Op


async def get(store: Store, job_id: int) -> Job:
    job = await store.get(job_id)
    assert job is not None
    return job


async def parent_and_child(
    store: Store, on: ContinueOn = ContinueOn.SUCCESS, *, attempts: int = 3
) -> tuple[int, int]:
    """A parent of queue "p" (not yet run) and a continuation of it in queue "default"."""
    (parent,) = await store.insert([new(queue="p", max_attempts=attempts)], now=T0)
    (child,) = await store.insert([new(parent=parent, on=on)], now=T0)
    return parent, child


async def end(store: Store, job_id: int, how: str, result: object = None) -> frozenset[str]:
    """Run the job ``job_id`` of queue "p" to its end ``how``; return the queues made ready."""
    if how == "cancelled":
        await store.cancel(job_id, now=T0 + 1)
        return frozenset()
    (claimed,) = await store.claim("p", 1, owner="p", now=T0 + 1, lease_until=T0 + 1 + LEASE)
    assert claimed.id == job_id
    if how == "succeeded":
        text = None if result is None else json.dumps(result)
        settled = await store.settle(owner="p", now=T0 + 1, succeeded=[Success(*claimed.token, text)])
    else:
        failure = Failure(*claimed.token, "E", "", None)
        settled = await store.settle(owner="p", now=T0 + 1, failed=[failure])
    return settled.ready


async def test_settle_records_the_result_and_a_bare_token_none(any_store: Store) -> None:
    """A `Success` stores its JSON result, read back as `Job.result`; a bare token stores none."""
    a, b = await any_store.insert([new(), new()], now=T0)
    await claim(any_store)
    report = {"rows": [1, 2], "name": "é"}
    await any_store.settle(owner="a", now=T0, succeeded=[Success(a, 1, json.dumps(report)), (b, 1)])
    assert (await get(any_store, a)).result == report
    assert (await get(any_store, b)).result is None


async def test_requeue_forgets_the_result_of_the_previous_run(any_store: Store) -> None:
    """A succeeded job run again has no result until it succeeds again."""
    (a,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, succeeded=[Success(a, 1, "42")])
    await any_store.requeue(a, now=T0, attempts=1)
    assert (await get(any_store, a)).result is None


async def test_results_are_pruned_with_their_succeeded_jobs(any_store: Store) -> None:
    """Retention deletes a succeeded job and its result once it is older than the cut-off."""
    old, recent = await any_store.insert([new(), new()], now=T0)
    await claim(any_store)
    await any_store.settle(owner="a", now=T0, succeeded=[Success(old, 1, '"old"')])
    await any_store.settle(owner="a", now=T0 + 10, succeeded=[Success(recent, 1, '"new"')])
    assert await any_store.prune(state=JobState.SUCCEEDED, before=T0 + 5) == 1
    assert await any_store.get(old) is None
    assert (await get(any_store, recent)).result == "new"


async def test_a_continuation_awaits_its_parent_then_runs_with_its_result(any_store: Store) -> None:
    """A continuation is awaiting (never claimed) until its parent succeeds; the parent's settle
    enqueues it in the same call, and its claim carries the parent's id and result."""
    parent, child = await parent_and_child(any_store)
    assert await state(any_store, child) is TRANSITIONS[(None, Op.AWAIT)] is JobState.AWAITING
    assert await claim(any_store) == []
    await any_store.promote_due(now=T0 + 100)
    assert await state(any_store, child) is JobState.AWAITING
    assert await end(any_store, parent, "succeeded", {"total": 3}) == frozenset({"default"})
    assert await state(any_store, child) is JobState.ENQUEUED
    (claimed,) = await any_store.claim("default", 5, owner="a", now=T0 + 2, lease_until=T0 + 9)
    assert (claimed.id, claimed.parent_id, claimed.parent_result) == (child, parent, {"total": 3})
    parent_job, child_job = await get(any_store, parent), await get(any_store, child)
    assert parent_job.continuations == (child,)
    assert (child_job.parent_id, child_job.continue_on) == (parent, ContinueOn.SUCCESS)
    assert child_job.run_at.timestamp() == T0 + 1  # due when its parent ended


@pytest.mark.parametrize(
    ("on", "parent_end", "runs"),
    [
        (ContinueOn.SUCCESS, "succeeded", True),
        (ContinueOn.SUCCESS, "dead", False),
        (ContinueOn.SUCCESS, "cancelled", False),
        (ContinueOn.FAILURE, "succeeded", False),
        (ContinueOn.FAILURE, "dead", True),
        (ContinueOn.FAILURE, "cancelled", True),
        (ContinueOn.ANY, "succeeded", True),
        (ContinueOn.ANY, "dead", True),
        (ContinueOn.ANY, "cancelled", True),
    ],
)
async def test_each_continuation_mode_runs_on_its_ends_and_is_cancelled_on_the_others(
    any_store: Store, on: ContinueOn, parent_end: str, runs: bool
) -> None:
    """A continuation runs when its parent's end is one its mode wants; on any other end it is
    cancelled, finished, with an error of attempt 0 naming the parent and how it ended."""
    parent, child = await parent_and_child(any_store, on, attempts=1)
    await end(any_store, parent, parent_end)
    job = await get(any_store, child)
    if runs:
        assert job.state is JobState.ENQUEUED
        assert job.errors == ()
        return
    assert job.state is JobState.CANCELLED
    assert job.finished_at is not None
    (error,) = job.errors
    assert error.attempt == 0
    ended = {"dead": "is dead", "cancelled": "was cancelled", "succeeded": "succeeded"}[parent_end]
    assert error.error == (
        f"not run: its parent, job {parent}, {ended}; this continuation runs on {on.value} of its parent"
    )


async def test_a_failure_continuation_sees_no_parent_result(any_store: Store) -> None:
    """A continuation run because its parent died has ``parent_result`` ``None``."""
    parent, child = await parent_and_child(any_store, ContinueOn.FAILURE, attempts=1)
    await end(any_store, parent, "dead")
    (claimed,) = await any_store.claim("default", 1, owner="a", now=T0 + 2, lease_until=T0 + 9)
    assert (claimed.id, claimed.parent_id, claimed.parent_result) == (child, parent, None)


async def test_a_continuation_of_an_ended_parent_is_resolved_at_insert(any_store: Store) -> None:
    """Inserting a continuation of a parent that already ended enqueues it with the parent's
    result, or cancels it at once, as its mode says; it never waits."""
    ok, dead = await any_store.insert([new(queue="p"), new(queue="p", max_attempts=1)], now=T0)
    await end(any_store, ok, "succeeded", [1, 2])
    await end(any_store, dead, "dead")
    runs, skipped, rescue = await any_store.insert(
        [new(parent=ok), new(parent=dead), new(parent=dead, on=ContinueOn.FAILURE)], now=T0 + 5
    )
    assert await state(any_store, runs) is JobState.ENQUEUED
    assert await state(any_store, rescue) is JobState.ENQUEUED
    skipped_job = await get(any_store, skipped)
    assert skipped_job.state is TRANSITIONS[(None, Op.ABANDON)] is JobState.CANCELLED
    assert f"job {dead}, is dead" in skipped_job.errors[0].error
    claimed = await any_store.claim("default", 5, owner="a", now=T0 + 6, lease_until=T0 + 9)
    assert [(c.id, c.parent_result) for c in claimed] == [(runs, [1, 2]), (rescue, None)]


async def test_a_continuation_of_an_unknown_parent_is_refused(any_store: Store) -> None:
    """A continuation of a job that does not exist (or was pruned) raises `JobNotFoundError`
    and the whole insert adds nothing."""
    with pytest.raises(JobNotFoundError, match="no job with id 999"):
        await any_store.insert([new(), new(parent=999)], now=T0)
    assert (await any_store.counts()).total == 0


async def test_deleting_a_parent_resolves_its_continuations_as_cancelled(any_store: Store) -> None:
    """Deleting a parent that has not run cancels its success continuations (saying the parent
    was deleted) and enqueues its failure continuations; none is left awaiting."""
    parent, on_success = await parent_and_child(any_store)
    (on_failure,) = await any_store.insert([new(parent=parent, on=ContinueOn.FAILURE)], now=T0)
    await any_store.delete(parent, now=T0 + 1)
    job = await get(any_store, on_success)
    assert job.state is JobState.CANCELLED
    assert f"job {parent}, was deleted" in job.errors[0].error
    assert await state(any_store, on_failure) is JobState.ENQUEUED


async def test_an_abandoned_continuation_resolves_its_own_continuations(any_store: Store) -> None:
    """A → B → C (each on success), and D on B's failure: A dies, so B is cancelled, so C is
    cancelled and D runs, in the transaction that recorded A's death."""
    a, b = await parent_and_child(any_store, attempts=1)
    c, d = await any_store.insert([new(parent=b), new(parent=b, on=ContinueOn.FAILURE)], now=T0)
    assert await state(any_store, c) is JobState.AWAITING  # B is unfinished: C waits too
    assert await end(any_store, a, "dead") == frozenset({"default"})
    assert [await state(any_store, j) for j in (b, c, d)] == [
        JobState.CANCELLED, JobState.CANCELLED, JobState.ENQUEUED,
    ]  # fmt: skip
    assert f"job {b}, was cancelled" in (await get(any_store, c)).errors[0].error


async def test_cancelling_an_awaiting_continuation_resolves_its_chain(any_store: Store) -> None:
    """An awaiting continuation can be cancelled; its own continuations are resolved then, and
    its parent's end later leaves it cancelled."""
    a, b = await parent_and_child(any_store)
    (c,) = await any_store.insert([new(parent=b, on=ContinueOn.ANY)], now=T0)
    assert (await any_store.cancel(b, now=T0))[0] is JobState.CANCELLED
    assert await state(any_store, c) is JobState.ENQUEUED
    await end(any_store, a, "succeeded")
    assert await state(any_store, b) is JobState.CANCELLED


async def test_an_expired_last_attempt_resolves_continuations(any_store: Store) -> None:
    """A parent whose last lease expires is dead: `requeue_expired` resolves its continuations
    and reports their queues."""
    parent, child = await parent_and_child(any_store, ContinueOn.FAILURE, attempts=1)
    await any_store.claim("p", 1, owner="p", now=T0, lease_until=T0 + LEASE)
    assert await any_store.requeue_expired(now=T0 + 2 * LEASE) == frozenset({"default"})
    assert await state(any_store, parent) is JobState.DEAD
    assert await state(any_store, child) is JobState.ENQUEUED


async def test_continuations_are_listed_by_id_and_survive_the_parents_retry(any_store: Store) -> None:
    """`Job.continuations` lists a parent's continuations by id, whatever their state; retrying
    a dead parent does not bring back a continuation it cancelled."""
    parent, first = await parent_and_child(any_store, attempts=1)
    (second,) = await any_store.insert([new(parent=parent, on=ContinueOn.ANY)], now=T0)
    await end(any_store, parent, "dead")
    assert (await get(any_store, parent)).continuations == (first, second)
    await any_store.retry(parent, now=T0 + 2, attempts=1)
    assert await state(any_store, first) is JobState.CANCELLED
    listed = await any_store.list(limit=10)
    assert [j.continuations for j in listed] == [(first, second), (), ()]
