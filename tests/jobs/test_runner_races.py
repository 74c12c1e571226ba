"""Races between a queue runner's heartbeat and the recording of outcomes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

from supervisors import Supervisor, open_tree
from supervisors.jobs import JobRegistry, JobState, JobSystem, TrioWallClock
from supervisors.jobs._model import Failure, Settled, Token
from supervisors.jobs._sqlite_db import SQLiteDB
from supervisors.jobs._sqlstore import SQLStore

T = TypeVar("T")


class GatedStore(SQLStore):
    """A ``:memory:`` SQL store whose settles, once written, wait for ``gate`` before returning."""

    def __init__(self) -> None:
        self.db = SQLiteDB(":memory:")
        self.gate = trio.Event()
        self.held = trio.Event()

    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        await trio.lowlevel.checkpoint()
        return fn(self.db)

    async def settle_and_claim(
        self, queue: str, limit: int, *, succeeded: Sequence[Token] = (),
        failed: Sequence[Failure] = (), **kw: Any,
    ) -> Settled:
        settled = await super().settle_and_claim(queue, limit, succeeded=succeeded, failed=failed, **kw)
        if succeeded:
            self.held.set()
            await self.gate.wait()
        return settled


async def test_a_renewal_racing_the_record_of_an_outcome_does_not_report_a_lost_lease(
    autojump_clock: trio.testing.MockClock, wall: TrioWallClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A heartbeat that renews while a finished job's outcome is being written (the store has
    it, the runner has not seen the answer yet) neither warns of a lost lease nor cancels."""
    reg = JobRegistry()

    @reg.job()
    async def quick() -> None:
        await trio.lowlevel.checkpoint()

    store = GatedStore()
    jobs = JobSystem(store=store, registry=reg, clock=wall, heartbeat=1.0, lease=5.0)
    with caplog.at_level(logging.WARNING, logger="supervisors.jobs"):
        async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
            job_id = await jobs.enqueue("quick")
            await store.held.wait()
            await trio.sleep(3.0)  # heartbeats run while the outcome's answer is held
            store.gate.set()
            job = await jobs.wait_finished(job_id)
    assert job.state is JobState.SUCCEEDED
    assert [r.getMessage() for r in caplog.records if "lost its lease" in r.getMessage()] == []


async def test_a_wake_up_that_arrives_while_outcomes_are_recorded_is_not_lost(
    autojump_clock: trio.testing.MockClock, wall: TrioWallClock
) -> None:
    """A job made ready (here: retried) while the runner records an outcome, and just before it
    records another one, is still claimed: the wake-up is not absorbed by a round that only
    records outcomes (a store nobody else writes to is never polled, so it would wait for ever)."""
    reg = JobRegistry()
    finish, fail = trio.Event(), trio.Event()

    @reg.job(max_attempts=1)
    async def boom() -> None:
        raise ValueError("boom")

    @reg.job()
    async def ok() -> None:
        await finish.wait()

    @reg.job(max_attempts=1)
    async def bad() -> None:
        await fail.wait()
        raise ValueError("bad")

    store = GatedStore()
    jobs = JobSystem(store=store, registry=reg, clock=wall)
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
        dead = await jobs.enqueue("boom")
        assert (await jobs.wait_finished(dead)).state is JobState.DEAD
        from supervisors.jobs import JobRequest

        await jobs.enqueue_many([JobRequest(job="ok"), JobRequest(job="bad")])
        await trio.testing.wait_all_tasks_blocked()
        finish.set()
        await store.held.wait()  # the success is being recorded
        fail.set()
        await trio.testing.wait_all_tasks_blocked()  # the failure waits for the next round
        await jobs.retry(dead)
        store.gate.set()
        with trio.fail_after(600):
            job = await jobs.wait_finished(dead)
    assert (job.state, job.attempt) == (JobState.DEAD, 2)
