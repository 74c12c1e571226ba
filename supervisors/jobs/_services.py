"""The supervised children of a job system's subtree (built by `JobSystem.child_spec`)."""

from __future__ import annotations

import functools

import trio

from actors import BackgroundService
from supervisors import ChildSpec, Restart

from ._core import Core
from ._runner import QueueRunner
from ._scheduler import Prepared, Scheduler

THREAD_WAIT = 4.0
"""On a stop, how long after the grace a cancelled sync job's thread may take to return."""

FLUSH_MARGIN = 15.0
"""Extra shutdown time given to a queue worker beyond its grace: `THREAD_WAIT`, then up to 10 s
to record outcomes."""


class StoreService(BackgroundService):
    """Opens the store when the subtree starts (a broken store fails the start), watches it for
    jobs other processes add (`Store.watch`), and closes it when the subtree stops (last, since
    it is the first child)."""

    def __init__(self, core: Core) -> None:
        super().__init__()
        self._core = core

    async def on_start(self) -> None:
        core = self._core
        try:
            await core.store.open()
            await core.store.define(core.registry.settings(core.retry))
        except BaseException:
            # on_stop does not run after a failed start: close here, or the store's connection
            # (and a SQLite store's writer thread) would outlive every failed start.
            with trio.CancelScope(shield=True):
                await core.store.aclose()
            raise

    async def execute(self) -> None:
        await self._core.store.watch(self._core.wake)

    async def on_stop(self) -> None:
        await self._core.store.aclose()


class QueueWorker(BackgroundService):
    """Runs one queue. On stop it claims nothing more and lets running jobs finish within the
    grace; then cancels them and returns them to the queue once their code has stopped (a sync
    job's thread gets `THREAD_WAIT` more seconds to return, then is left running and its job
    leased)."""

    def __init__(self, core: Core, queue: str) -> None:
        super().__init__()
        self._core = core
        self._queue = queue

    async def execute(self) -> None:
        core = self._core
        runner = QueueRunner(core, self._queue, core.queues[self._queue])
        # The runner is shielded from the stop request's cancellation so that running jobs can
        # finish; the deadlines set at the stop enforce the grace.
        shield = trio.CancelScope(shield=True)

        async def shielded() -> None:
            with shield:
                await runner.run()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(shielded)
            try:
                await trio.sleep_forever()
            finally:
                stop_at = trio.current_time() + core.settings.grace
                runner.drain(stop_jobs_at=stop_at, give_up_at=stop_at + THREAD_WAIT)
                shield.deadline = stop_at + THREAD_WAIT


def queue_worker(core: Core, queue: str) -> ChildSpec:
    """The child spec of the worker of ``queue`` (named after the queue)."""
    return ChildSpec(
        name=queue,
        factory=functools.partial(QueueWorker, core, queue),
        restart=Restart.PERMANENT,
        shutdown=core.settings.grace + FLUSH_MARGIN,
    )


class SchedulerService(BackgroundService):
    """Runs the `Scheduler` until stopped."""

    def __init__(self, core: Core, recurring: tuple[Prepared, ...]) -> None:
        super().__init__()
        self._scheduler = Scheduler(core, recurring)

    async def execute(self) -> None:
        await self._scheduler.run()
