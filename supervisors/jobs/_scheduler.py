"""The scheduler: makes due jobs ready, recovers expired leases, fires recurring schedules, prunes.

It sleeps until the earliest of: the next due ``SCHEDULED``/``RETRYING`` job, the next
occurrence of a recurring schedule, the next lease check (every heartbeat interval), the next
pruning pass, and, with a store other processes write to, the poll interval. In-process
changes that may move that time earlier (a job scheduled, a failure to retry) wake it at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import trio

from ._core import Core
from ._model import JobState, NewJob, ScheduleSettings
from ._recurring import MAX_OCCURRENCES_PER_PASS, Misfire, Recurring, missed_reasons, plan
from ._store import Store

logger = logging.getLogger("supervisors.jobs")

MAX_SLEEP = 60.0
"""The scheduler re-reads the wall clock at least this often (tolerates clock jumps)."""


PRUNE_BATCH = 500
"""Jobs deleted per transaction by retention; other store work runs between batches."""


async def prune(store: Store, state: JobState, before: float) -> int:
    """Delete the jobs in ``state`` finished before ``before``, `PRUNE_BATCH` per transaction,
    yielding to other tasks between batches; return how many."""
    total = 0
    while True:
        n = await store.prune(state=state, before=before, limit=PRUNE_BATCH)
        total += n
        if n < PRUNE_BATCH:
            return total
        await trio.lowlevel.checkpoint()


RECLAIM_PAGES = 1000
"""Free pages returned to the file system per transaction (4 MB with SQLite's default pages)."""


async def reclaim(store: Store) -> None:
    """Give the space freed by pruning back to the file system, `RECLAIM_PAGES` per
    transaction, yielding to other tasks between them."""
    while await store.reclaim(pages=RECLAIM_PAGES) > 0:
        await trio.lowlevel.checkpoint()


class Prepared:
    """A recurring schedule with its job's queue, JSON arguments and attempts resolved."""

    __slots__ = ("args", "max_attempts", "queue", "spec")

    def __init__(self, spec: Recurring, queue: str, args: str, max_attempts: int) -> None:
        self.spec = spec
        self.queue = queue
        self.args = args
        self.max_attempts = max_attempts

    def settings(self) -> ScheduleSettings:
        """The record of this schedule in the store (`Store.define_schedules`)."""
        return ScheduleSettings(
            name=self.spec.name,
            job=self.spec.job,
            queue=self.queue,
            args=self.args,
            max_attempts=self.max_attempts,
            cron=self.spec.cron,
            tz=self.spec.tz,
            misfire=self.spec.misfire.value,
            misfire_grace=self.spec.misfire_grace,
            overlap=self.spec.overlap,
        )


class Scheduler:
    """The scheduler of one job system (see the module docstring)."""

    def __init__(self, core: Core, recurring: Sequence[Prepared]) -> None:
        self.core = core
        self.recurring = tuple(recurring)
        self._cursors: dict[str, float] = {}
        self._started = -math.inf

    async def _load_cursors(self) -> None:
        store = self.core.store
        if self.recurring:
            await store.define_schedules([r.settings() for r in self.recurring])
        for r in self.recurring:
            name = r.spec.name
            cursor = await store.cursor(name)
            while cursor is None:
                now = self.core.clock.now()
                done = await store.fire(
                    name, expected=None, cursor=now, jobs=(), exclusive=False, now=now
                )
                cursor = now if done is not None else await store.cursor(name)
            self._cursors[name] = cursor

    async def run(self) -> None:
        """Run until cancelled."""
        core = self.core
        store = core.store
        clock = core.clock
        settings = core.settings
        self._started = clock.now()
        await self._load_cursors()
        next_check = -math.inf
        next_prune = -math.inf
        while True:
            now = clock.now()
            wake_at: list[float] = []
            promoted = await store.promote_due(now=now)
            for queue in promoted.queues:
                core.wake_queue(queue)
            if promoted.next_due is not None:
                wake_at.append(promoted.next_due)
            if now >= next_check:
                for queue in await store.requeue_expired(now=now):
                    core.wake_queue(queue)
                next_check = now + settings.heartbeat
            wake_at.append(next_check)
            for r in self.recurring:
                upcoming = await self._fire(r, now)
                if upcoming is not None:
                    wake_at.append(upcoming)
            retention = (
                (JobState.SUCCEEDED, settings.keep_succeeded),
                (JobState.DEAD, settings.keep_dead),
                (JobState.CANCELLED, settings.keep_dead),
            )
            if self.recurring or any(keep is not None for _, keep in retention):
                if now >= next_prune:
                    total = 0
                    for state, keep in retention:
                        if keep is not None:
                            pruned = await prune(store, state, now - keep)
                            if pruned:
                                logger.debug("pruned %d %s jobs", pruned, state.value)
                            total += pruned
                    if self.recurring:
                        trimmed = await store.trim_ledger(keep=settings.keep_ledger)
                        if trimmed:
                            logger.debug("trimmed %d fire ledger entries", trimmed)
                    if total:
                        await reclaim(store)
                    next_prune = now + settings.prune_interval
                wake_at.append(next_prune)
            wait = min(wake_at) - clock.now()
            if store.shared:
                wait = min(wait, settings.poll_interval)
            await core.scheduler_signal.wait(min(wait, MAX_SLEEP))

    def _notes(
        self, spec: Recurring, cursor: float, fire_times: list[float], new_cursor: float,
        n_due: int, now: float,
    ) -> dict[float, str]:
        """The fire ledger's notes on a pass (see `Store.fire`): why each occurrence dropped by
        the misfire policy did not run, and which occurrences run late (caught up)."""
        notes: dict[float, str] = {}
        started = self._started
        for t in fire_times:
            if t < started:
                notes[t] = "caught up: it came due while no scheduler was running"
            elif now - t > spec.misfire_grace:
                notes[t] = f"caught up: found {now - t:.0f} s late"
        if n_due > len(fire_times):
            due = spec.compiled.between(cursor, new_cursor, limit=MAX_OCCURRENCES_PER_PASS)
            notes.update(missed_reasons(spec, due, fire_times, now, started=started))
        return notes

    async def _fire(self, r: Prepared, now: float) -> float | None:
        """Enqueue the due occurrences of ``r``; return its next occurrence after them."""
        core = self.core
        spec = r.spec
        cursor = self._cursors[spec.name]
        # RUN_ALL without overlap runs the missed occurrences one after another: one per call to
        # the store, held (cursor kept) while the previous run is unfinished.
        one_by_one = spec.misfire is Misfire.RUN_ALL and not spec.overlap
        while (decision := plan(spec, cursor, now, started=self._started)) is not None:
            fire_times, new_cursor, n_due = decision
            if one_by_one:
                fire_times, new_cursor, n_due = fire_times[:1], fire_times[0], 1
            jobs = [
                NewJob(
                    name=spec.job,
                    queue=r.queue,
                    args=r.args,
                    run_at=t,
                    max_attempts=r.max_attempts,
                    schedule=spec.name,
                    fire_time=t,
                )
                for t in fire_times
            ]
            ids = await core.store.fire(
                spec.name,
                expected=cursor,
                cursor=new_cursor,
                jobs=jobs,
                exclusive=not spec.overlap,
                now=now,
                hold=one_by_one,
                owner=core.owner,
                notes=self._notes(spec, cursor, fire_times, new_cursor, n_due, now),
            )
            if ids is None:  # another host fired first: continue from where it got to
                stored = await core.store.cursor(spec.name)
                cursor = new_cursor if stored is None else stored
                continue
            if one_by_one and not ids and await core.store.cursor(spec.name) == new_cursor:
                cursor = new_cursor  # the schedule is paused: the occurrence was passed over
                continue
            if one_by_one and not ids:  # held: the previous run is unfinished
                self._cursors[spec.name] = cursor
                return None  # woken when a run settles (Core.notify_settled)
            missed = n_due - len(jobs)
            if missed > 0:
                logger.info(
                    "recurring %r: %d missed occurrence(s) not run (misfire policy %s)",
                    spec.name, missed, spec.misfire.name,
                )  # fmt: skip
            if len(ids) < len(jobs):
                logger.info(
                    "recurring %r: %d occurrence(s) skipped because a previous run is "
                    "unfinished (overlap=False)", spec.name, len(jobs) - len(ids),
                )  # fmt: skip
            if ids:
                core.wake_queue(r.queue)
            cursor = new_cursor
        self._cursors[spec.name] = cursor
        return spec.compiled.next_after(cursor)
