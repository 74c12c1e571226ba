"""Helpers shared by the store contract modules (``test_store_*.py``): a `NewJob` builder, a claim
and a state lookup at the fixed time `T0`. The ``any_store`` fixture (every store implementation)
is in ``conftest.py``."""

from __future__ import annotations

import json

from supervisors.jobs import ContinueOn, JobState, NewJob, Store

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
