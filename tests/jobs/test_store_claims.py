"""The store contract for inserting, claiming, settling under fencing tokens, renewing leases and
recovering expired ones; each test runs against every store implementation."""

from __future__ import annotations

import attrs
import trio
from _contract import LEASE, T0, claim, new, state

from supervisors.jobs import Failure, JobSettings, JobState, NewJob, Store
from supervisors.jobs._sqlstore import SQLStore


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


async def test_a_claim_run_again_hands_out_the_jobs_its_first_run_took(any_store: Store) -> None:
    """A claim run a second time (its first answer lost with the connection) hands out the jobs
    its first run took and still holds, found by the call's claim tag, not new ones; a run
    again of a call that took nothing, or of another owner, claims as usual."""
    assert isinstance(any_store, SQLStore)
    ids = await any_store.insert([new() for _ in range(3)], now=T0)

    async def settle_and_claim(tag: str, retry: bool, owner: str = "a") -> list[tuple[int, int]]:
        got = await any_store._run(
            lambda db: db.settle_and_claim("default", 2, owner, T0, T0 + LEASE, (), (), tag, retry)
        )
        return [job.token for job in got.claimed]

    first = await settle_and_claim("t1", retry=False)
    assert first == [(ids[0], 1), (ids[1], 1)]
    assert await settle_and_claim("t1", retry=True) == first
    assert await settle_and_claim("t1", retry=True, owner="b") == [(ids[2], 1)]
    assert await settle_and_claim("t2", retry=True) == []
    await any_store.settle(owner="a", now=T0, succeeded=first)
    assert await settle_and_claim("t1", retry=True) == []  # settled: no longer held


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


async def test_job_names_are_the_recorded_definitions_of_every_host(any_store: Store) -> None:
    """`job_names` is empty until a definition is recorded, then holds every name recorded (a
    name recorded again appears once)."""
    assert await any_store.job_names() == frozenset()
    await any_store.define([JobSettings(name="mail", queue="m", max_attempts=2, unique=True)])
    await any_store.define([JobSettings(name="mail", queue="n", max_attempts=3, unique=False),
                            JobSettings(name="report", queue="r", max_attempts=1, unique=False)])
    assert await any_store.job_names() == frozenset({"mail", "report"})


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
