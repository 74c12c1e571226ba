"""The store contract for priorities, rate limits, concurrency keys and the table of hosts; each
test runs against every store implementation."""

from __future__ import annotations

from _contract import LEASE, T0, claim, new, state

from supervisors.jobs import JobState, Store


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
