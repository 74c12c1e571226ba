"""`InMemoryStore`: the store contract in plain Python data, for tests and throwaway hosts."""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from typing import final

import attrs
import trio

from ._errors import JobNotFoundError, JobStateError
from ._model import (
    UNFINISHED_STATES,
    AttemptError,
    ClaimedJob,
    Failure,
    Job,
    JobCounts,
    JobState,
    NewJob,
    Promoted,
    to_datetime,
)
from ._store import LEASE_EXPIRED, Store

_ENQ = JobState.ENQUEUED
_RUN = JobState.RUNNING


@attrs.define(slots=True)
class _Row:
    id: int
    job: NewJob
    state: JobState
    created_at: float
    run_at: float
    max_attempts: int
    attempt: int = 0
    finished_at: float | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    errors: list[tuple[int, float, str, str]] = attrs.field(factory=list)


@final
class InMemoryStore(Store):
    """Jobs in process memory: fast, private to one process, lost when it exits.

    Keeps the same contract as `SQLiteStore` (the contract test suite runs against both). Job
    arguments are kept as JSON text, so a job that works here also survives a restart with a
    durable store.
    """

    shared = False

    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._next_id = 1
        self._ready: dict[str, list[int]] = {}
        self._due: list[tuple[float, int]] = []
        self._running: set[int] = set()
        self._unique: dict[str, int] = {}
        self._occurrences: dict[tuple[str, float], int] = {}
        self._cursors: dict[str, float] = {}
        self._tally: dict[tuple[str, JobState], int] = {}

    def __repr__(self) -> str:
        return f"InMemoryStore(<{len(self._rows)} jobs>)"

    # --- state changes keep the indexes in step -------------------------------------------------

    def _count(self, row: _Row, delta: int) -> None:
        key = (row.job.queue, row.state)
        n = self._tally.get(key, 0) + delta
        if n:
            self._tally[key] = n
        else:
            self._tally.pop(key, None)

    def _set_state(self, row: _Row, state: JobState) -> None:
        old = row.state
        self._count(row, -1)
        row.state = state
        self._count(row, +1)
        if old is _RUN:
            self._running.discard(row.id)
        key = row.job.unique_key
        if key is not None:
            if state in UNFINISHED_STATES:
                self._unique[key] = row.id
            elif self._unique.get(key) == row.id:
                del self._unique[key]
        if state is _ENQ:
            heapq.heappush(self._ready.setdefault(row.job.queue, []), row.id)
        elif state is JobState.SCHEDULED or state is JobState.RETRYING:
            heapq.heappush(self._due, (row.run_at, row.id))
        elif state is _RUN:
            self._running.add(row.id)

    def _insert(self, job: NewJob, now: float) -> int | None:
        if job.unique_key is not None and job.unique_key in self._unique:
            return None
        if job.schedule is not None and (job.schedule, job.fire_time or 0.0) in self._occurrences:
            return None
        row = _Row(
            id=self._next_id,
            job=job,
            state=JobState.SUCCEEDED,  # placeholder, replaced just below
            created_at=now,
            run_at=job.run_at,
            max_attempts=job.max_attempts,
        )
        self._next_id += 1
        self._rows[row.id] = row
        self._count(row, +1)
        if job.schedule is not None:
            self._occurrences[(job.schedule, job.fire_time or 0.0)] = row.id
        self._set_state(row, _ENQ if job.run_at <= now else JobState.SCHEDULED)
        return row.id

    def _existing(self, job: NewJob) -> int:
        if job.unique_key is not None and job.unique_key in self._unique:
            return self._unique[job.unique_key]
        return self._occurrences[(job.schedule or "", job.fire_time or 0.0)]

    # --- the contract -----------------------------------------------------------------------------

    async def insert(self, jobs: Sequence[NewJob], *, now: float) -> list[int]:
        await trio.lowlevel.checkpoint()
        ids = []
        for job in jobs:
            new = self._insert(job, now)
            ids.append(new if new is not None else self._existing(job))
        return ids

    def _claim(self, queue: str, limit: int, owner: str, lease_until: float) -> list[ClaimedJob]:
        heap = self._ready.get(queue)
        out: list[ClaimedJob] = []
        while heap and len(out) < limit:
            row = self._rows.get(heapq.heappop(heap))
            if row is None or row.state is not _ENQ:
                continue
            row.attempt += 1
            row.lease_owner = owner
            row.lease_until = lease_until
            self._set_state(row, _RUN)
            job = row.job
            out.append(
                ClaimedJob(row.id, job.name, job.queue, job.args, row.attempt, row.max_attempts)
            )
        return out

    async def claim(
        self, queue: str, limit: int, *, owner: str, now: float, lease_until: float
    ) -> list[ClaimedJob]:
        await trio.lowlevel.checkpoint()
        return self._claim(queue, limit, owner, lease_until)

    def _owned(self, job_id: int, owner: str) -> _Row | None:
        row = self._rows.get(job_id)
        if row is None or row.state is not _RUN or row.lease_owner != owner:
            return None
        return row

    def _settle(
        self,
        owner: str,
        now: float,
        succeeded: Sequence[int],
        failed: Sequence[Failure],
        released: Sequence[int],
    ) -> None:
        for job_id in succeeded:
            row = self._owned(job_id, owner)
            if row is not None:
                row.finished_at = now
                row.lease_owner = row.lease_until = None
                self._set_state(row, JobState.SUCCEEDED)
        for f in failed:
            row = self._owned(f.job_id, owner)
            if row is not None:
                row.lease_owner = row.lease_until = None
                row.errors.append((row.attempt, now, f.error, f.traceback))
                if f.retry_at is None:
                    row.finished_at = now
                    self._set_state(row, JobState.DEAD)
                else:
                    row.run_at = f.retry_at
                    self._set_state(row, JobState.RETRYING)
        for job_id in released:
            row = self._owned(job_id, owner)
            if row is not None:
                row.attempt -= 1
                row.lease_owner = row.lease_until = None
                self._set_state(row, _ENQ)

    async def settle(
        self,
        *,
        owner: str,
        now: float,
        succeeded: Sequence[int] = (),
        failed: Sequence[Failure] = (),
        released: Sequence[int] = (),
    ) -> None:
        await trio.lowlevel.checkpoint()
        self._settle(owner, now, succeeded, failed, released)

    async def settle_and_claim(
        self,
        queue: str,
        limit: int,
        *,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[int] = (),
        failed: Sequence[Failure] = (),
    ) -> list[ClaimedJob]:
        await trio.lowlevel.checkpoint()
        self._settle(owner, now, succeeded, failed, ())
        return self._claim(queue, limit, owner, lease_until) if limit > 0 else []

    async def renew(self, ids: Sequence[int], *, owner: str, lease_until: float) -> None:
        await trio.lowlevel.checkpoint()
        for job_id in ids:
            row = self._owned(job_id, owner)
            if row is not None:
                row.lease_until = lease_until

    async def promote_due(self, *, now: float) -> Promoted:
        await trio.lowlevel.checkpoint()
        queues: set[str] = set()
        due = self._due
        while due:
            run_at, job_id = due[0]
            row = self._rows.get(job_id)
            if row is None or row.state not in (JobState.SCHEDULED, JobState.RETRYING):
                heapq.heappop(due)
                continue
            if row.run_at != run_at:  # stale entry: the job was rescheduled
                heapq.heappop(due)
                continue
            if run_at > now:
                return Promoted(queues=frozenset(queues), next_due=run_at)
            heapq.heappop(due)
            self._set_state(row, _ENQ)
            queues.add(row.job.queue)
        return Promoted(queues=frozenset(queues), next_due=None)

    async def requeue_expired(self, *, now: float) -> frozenset[str]:
        await trio.lowlevel.checkpoint()
        queues: set[str] = set()
        for job_id in sorted(self._running):
            row = self._rows[job_id]
            if row.lease_until is None or row.lease_until >= now:
                continue
            row.errors.append((row.attempt, now, LEASE_EXPIRED.format(attempt=row.attempt), ""))
            row.lease_owner = row.lease_until = None
            row.run_at = now
            if row.attempt >= row.max_attempts:
                row.finished_at = now
                self._set_state(row, JobState.DEAD)
            else:
                self._set_state(row, _ENQ)
                queues.add(row.job.queue)
        return frozenset(queues)

    async def cursor(self, schedule: str) -> float | None:
        await trio.lowlevel.checkpoint()
        return self._cursors.get(schedule)

    async def fire(
        self,
        schedule: str,
        *,
        expected: float | None,
        cursor: float,
        jobs: Sequence[NewJob],
        exclusive: bool,
        now: float,
    ) -> list[int] | None:
        await trio.lowlevel.checkpoint()
        if self._cursors.get(schedule) != expected:
            return None
        ids = []
        for job in jobs:
            if exclusive and any(
                r.job.schedule == schedule and r.state in UNFINISHED_STATES
                for r in self._rows.values()
            ):
                continue
            new = self._insert(job, now)
            if new is not None:
                ids.append(new)
        self._cursors[schedule] = cursor
        return ids

    def _job(self, row: _Row) -> Job:
        job = row.job
        return Job(
            id=row.id,
            name=job.name,
            queue=job.queue,
            args=json.loads(job.args),
            state=row.state,
            attempt=row.attempt,
            max_attempts=row.max_attempts,
            run_at=to_datetime(row.run_at),
            created_at=to_datetime(row.created_at),
            finished_at=None if row.finished_at is None else to_datetime(row.finished_at),
            lease_until=None if row.lease_until is None else to_datetime(row.lease_until),
            unique_key=job.unique_key,
            schedule=job.schedule,
            fire_time=None if job.fire_time is None else to_datetime(job.fire_time),
            errors=tuple(
                AttemptError(attempt=a, at=to_datetime(at), error=e, traceback=tb)
                for a, at, e, tb in row.errors
            ),
        )

    async def get(self, job_id: int) -> Job | None:
        await trio.lowlevel.checkpoint()
        row = self._rows.get(job_id)
        return None if row is None else self._job(row)

    async def list(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        await trio.lowlevel.checkpoint()
        rows = [
            r
            for r in self._rows.values()
            if (state is None or r.state is state) and (queue is None or r.job.queue == queue)
        ]
        return [self._job(r) for r in rows[offset : offset + limit]]

    async def counts(self) -> JobCounts:
        await trio.lowlevel.checkpoint()
        return JobCounts.from_rows([(q, s, n) for (q, s), n in self._tally.items()])

    async def retry(self, job_id: int, *, now: float, attempts: int) -> str:
        await trio.lowlevel.checkpoint()
        row = self._rows.get(job_id)
        if row is None:
            raise JobNotFoundError(job_id)
        if row.state not in (JobState.DEAD, JobState.RETRYING, JobState.SCHEDULED):
            msg = (
                f"job {job_id} is {row.state.value}; only dead, retrying or scheduled jobs "
                "can be retried"
            )
            raise JobStateError(msg)
        if row.state is JobState.DEAD:
            key = row.job.unique_key
            if key is not None and key in self._unique:
                msg = (
                    f"job {job_id} is unique and its copy, job {self._unique[key]}, is "
                    "unfinished; wait for that copy instead of retrying this one"
                )
                raise JobStateError(msg)
            row.max_attempts = row.attempt + attempts
        row.run_at = now
        row.finished_at = None
        self._set_state(row, _ENQ)
        queue: str = row.job.queue
        return queue

    async def prune(self, *, before: float) -> int:
        await trio.lowlevel.checkpoint()
        doomed = [
            r
            for r in self._rows.values()
            if r.state is JobState.SUCCEEDED
            and r.finished_at is not None
            and r.finished_at < before
        ]
        for r in doomed:
            del self._rows[r.id]
            self._count(r, -1)
            if r.job.schedule is not None:
                self._occurrences.pop((r.job.schedule, r.job.fire_time or 0.0), None)
        return len(doomed)
