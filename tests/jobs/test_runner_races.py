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
from supervisors.jobs._model import Failure, Settled, Success, Token
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
        self, queue: str, limit: int, *, succeeded: Sequence[Token | Success] = (),
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


class HoldingStore(SQLStore):
    """A ``:memory:`` SQL store whose first settle of an outcome waits for ``gate`` before it
    writes (``held`` is set when it starts waiting)."""

    def __init__(self) -> None:
        self.db = SQLiteDB(":memory:")
        self.gate = trio.Event()
        self.held = trio.Event()

    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        await trio.lowlevel.checkpoint()
        return fn(self.db)

    async def settle_and_claim(
        self, queue: str, limit: int, *, succeeded: Sequence[Token | Success] = (),
        failed: Sequence[Failure] = (), **kw: Any,
    ) -> Settled:
        if succeeded and not self.held.is_set():
            self.held.set()
            await self.gate.wait()
        return await super().settle_and_claim(queue, limit, succeeded=succeeded, failed=failed, **kw)


async def test_a_job_enqueued_while_an_outcome_is_recorded_is_claimed_though_another_outcome_follows(
    autojump_clock: trio.testing.MockClock, wall: TrioWallClock
) -> None:
    """A wake-up (an enqueue, a retry) that arrives while the runner records an outcome, and is
    followed by a second outcome before the runner waits again, still makes it claim: the
    second recording does not swallow the wake-up (a lost wake-up left the job enqueued for
    good with a store that is not polled)."""
    reg = JobRegistry()
    release = {"a": trio.Event(), "b": trio.Event()}
    started = {"a": trio.Event(), "b": trio.Event()}

    @reg.job()
    async def hold(name: str) -> str:
        started[name].set()
        await release[name].wait()
        return name

    @reg.job()
    async def quick() -> None:
        await trio.lowlevel.checkpoint()

    store = HoldingStore()
    jobs = JobSystem(store=store, registry=reg, clock=wall)
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
        await jobs.enqueue("hold", "a")
        await jobs.enqueue("hold", "b")
        await started["a"].wait()
        await started["b"].wait()
        await trio.testing.wait_all_tasks_blocked()  # the runner found no more work and waits
        release["a"].set()
        await store.held.wait()  # the runner records a's outcome (and claims nothing)
        late = await jobs.enqueue("quick")  # wakes the runner while it is in the store
        release["b"].set()
        await trio.testing.wait_all_tasks_blocked()  # b's outcome waits for the next store call
        store.gate.set()
        with trio.fail_after(60):  # virtual time: the runner is not polled with this store
            job = await jobs.wait_finished(late)
    assert job.state is JobState.SUCCEEDED
