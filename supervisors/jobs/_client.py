"""`JobClient`: enqueue and inspect jobs in a SQLite job store from plain synchronous code."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import final

import cattrs

from ._clock import Clock, SystemClock
from ._lifecycle import Op
from ._model import ContinueOn, Job, JobCounts, JobState, RateLimit, RetryPolicy, rate_limit_row, rate_limits_of
from ._query import JobPage, JobQuery
from ._registry import JobRegistry
from ._reports import AttemptProgress, LedgerEntry, ScheduleInfo
from ._requests import JobRequest, build, check_retry, found
from ._sqlite_db import SQLiteDB
from ._wakeup import Poker


@final
class JobClient:
    """A synchronous handle on a SQLite job store, for another process (a web app, a script).

    A host running a `JobSystem` on the same file is woken by a datagram after each enqueue or
    retry commits and starts the job at once; its ``poll_interval`` (1 s by default) is the
    fallback where the datagram cannot reach it (see the docs' "Cross-process wake-up").
    Calls block; the client is safe to share between threads (calls are serialised by a lock).

    - ``registry``: when given, job names and arguments are checked as `JobSystem.enqueue`
      checks them, and queues, attempts and uniqueness come from the registrations. Without
      it, any name is accepted and arguments are unstructured with ``converter`` (default: a
      plain ``cattrs.Converter()``); the queue, attempts and uniqueness not given explicitly
      come from the job's definition as the hosts recorded it in the store when they started
      (queue ``"default"`` and 20 attempts for a name no host has recorded yet), so every
      enqueuer gets the same behaviour. A wrong name or argument makes the job dead when a host
      runs it, with the reason.
    - ``retry``: with a registry, the attempts of jobs registered without a policy (as
      `JobSystem`'s ``retry``). Default ``None``: those jobs get the attempts the hosts recorded
      for them (so the hosts' ``JobSystem(retry=...)`` applies; 20 for a name no host has
      recorded yet).
    - ``clock``: defaults to `SystemClock`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        registry: JobRegistry | None = None,
        converter: cattrs.Converter | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self.registry = registry
        self._converter = converter
        self._retry = retry
        self._clock = clock if clock is not None else SystemClock()
        self._db = SQLiteDB(self.path, synchronous=synchronous)
        self._poker = Poker(self.path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JobClient({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection. Further calls raise."""
        with self._lock:
            self._db.close()
            self._poker.close()

    def __enter__(self) -> JobClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[int]:
        """Enqueue several jobs in one transaction; return their ids in order (see `JobRequest`).

        Every request is validated before anything is written.
        """
        now = self._clock.now()
        jobs = [
            build(r, registry=self.registry, retry=self._retry, now=now, converter=self._converter)
            for r in requests
        ]
        with self._lock:
            ids = self._db.insert(jobs, now)
            ready = [j.queue for j in jobs if j.run_at <= now]
            # A job whose queue comes from its recorded definition (queue None) wakes every
            # runner: the scheduler line does that.
            self._poker.poke(
                [q for q in ready if q is not None],
                scheduler=None in ready or any(j.run_at > now for j in jobs),
            )
        return ids

    def enqueue(
        self,
        job: str,
        args: object = None,
        *,
        queue: str | None = None,
        unique_key: str | None = None,
        max_attempts: int | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        concurrency_limit: int = 1,
    ) -> int:
        """Enqueue ``job`` to run now; return its id (see `JobSystem.enqueue`)."""
        request = JobRequest(
            job=job, args=args, queue=queue, unique_key=unique_key, max_attempts=max_attempts,
            priority=priority, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
        )  # fmt: skip
        return self.enqueue_many([request])[0]

    def schedule(
        self,
        job: str,
        args: object = None,
        *,
        at: datetime | None = None,
        after: float | timedelta | None = None,
        queue: str | None = None,
        unique_key: str | None = None,
        max_attempts: int | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        concurrency_limit: int = 1,
    ) -> int:
        """Enqueue ``job`` to run at ``at`` or ``after`` seconds (exactly one); return its id."""
        request = JobRequest.scheduled(
            job, args, at=at, after=after, queue=queue, unique_key=unique_key,
            max_attempts=max_attempts, priority=priority, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
        )  # fmt: skip
        return self.enqueue_many([request])[0]

    def continue_with(
        self,
        parent_id: int,
        job: str,
        args: object = None,
        *,
        on: ContinueOn = ContinueOn.SUCCESS,
        queue: str | None = None,
        unique_key: str | None = None,
        max_attempts: int | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        concurrency_limit: int = 1,
    ) -> int:
        """Enqueue ``job`` to run once the job ``parent_id`` ends as ``on`` says; return its id
        (see `JobSystem.continue_with`)."""
        request = JobRequest(
            job=job, args=args, queue=queue, unique_key=unique_key, max_attempts=max_attempts,
            priority=priority, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit, parent=parent_id, on=on,
        )  # fmt: skip
        return self.enqueue_many([request])[0]

    def get(self, job_id: int) -> Job:
        """The job ``job_id``; raises `JobNotFoundError` if there is none."""
        with self._lock:
            return found(job_id, self._db.get(job_id))

    def list(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs in ``state`` and ``queue`` (``None`` = any), by id."""
        with self._lock:
            return self._db.list(state, queue, limit, offset)

    def search(self, query: JobQuery | None = None) -> JobPage:
        """As `JobSystem.search`."""
        with self._lock:
            return self._db.search(query if query is not None else JobQuery())

    def counts(self) -> JobCounts:
        """How many jobs are in each state, in total and per queue."""
        with self._lock:
            return self._db.counts()

    def hosts(self) -> None:
        """As `JobSystem.hosts`: always ``None``, since a SQLite file keeps no table of hosts."""
        return

    def requeue(self, job_id: int, *, attempts: int = 1) -> None:
        """As `JobSystem.requeue`."""
        check_retry(attempts)
        with self._lock:
            queue = self._db.retry(job_id, self._clock.now(), attempts, Op.REQUEUE)
            self._poker.poke([queue])

    def cancel(self, job_id: int) -> JobState:
        """As `JobSystem.cancel`; a running job is cancelled by its host at its next heartbeat."""
        with self._lock:
            state, _queue = self._db.cancel(job_id, self._clock.now())
            if state is JobState.CANCELLED:
                self._poker.poke([], scheduler=True)  # its continuations may have been enqueued
        return state

    def delete(self, job_id: int) -> None:
        """As `JobSystem.delete`."""
        with self._lock:
            self._db.delete(job_id, self._clock.now())
            self._poker.poke([], scheduler=True)  # its continuations may have been enqueued

    def set_rate_limit(self, queue: str, limit: RateLimit | None) -> None:
        """As `JobSystem.set_rate_limit`."""
        with self._lock:
            self._db.set_rate_limit(queue, *rate_limit_row(limit))
            self._poker.poke([queue])

    def rate_limits(self) -> dict[str, RateLimit]:
        """As `JobSystem.rate_limits`."""
        with self._lock:
            return rate_limits_of(self._db.rate_limits())

    def pause_queue(self, queue: str) -> None:
        """As `JobSystem.pause_queue`."""
        with self._lock:
            self._db.pause_queue(queue, True, self._clock.now())

    def resume_queue(self, queue: str) -> None:
        """As `JobSystem.resume_queue`; wakes the hosts running the queue."""
        with self._lock:
            self._db.pause_queue(queue, False, self._clock.now())
            self._poker.poke([queue])

    def job_names(self) -> frozenset[str]:
        """The names of the jobs the hosts on this store have registered (each host records
        its registry's definitions when it starts); empty if no host has started on it yet.
        For checking a name before enqueuing it without a registry (the command line does)."""
        with self._lock:
            return self._db.job_names()

    def paused_queues(self) -> frozenset[str]:
        """As `JobSystem.paused_queues`."""
        with self._lock:
            return self._db.paused_queues()

    def trigger(self, schedule: str) -> int:
        """As `JobSystem.trigger`, for a schedule a host recorded in the store."""
        with self._lock:
            job_id, queue = self._db.trigger(schedule, self._clock.now(), f"client-{os.getpid()}")
            self._poker.poke([queue])
        return job_id

    def pause_schedule(self, schedule: str) -> None:
        """As `JobSystem.pause_schedule`."""
        with self._lock:
            self._db.pause_schedule(schedule, True)

    def resume_schedule(self, schedule: str) -> None:
        """As `JobSystem.resume_schedule`."""
        with self._lock:
            self._db.pause_schedule(schedule, False)
            self._poker.poke([], scheduler=True)

    def paused_schedules(self) -> frozenset[str]:
        """As `JobSystem.paused_schedules`."""
        with self._lock:
            return self._db.paused_schedules()

    def progress(self, job_id: int) -> tuple[AttemptProgress, ...]:
        """As `JobSystem.progress`."""
        with self._lock:
            return tuple(self._db.progress(job_id))

    def ledger(self, schedule: str, *, limit: int = 100) -> tuple[LedgerEntry, ...]:
        """As `JobSystem.ledger`, for a schedule a host recorded in the store."""
        with self._lock:
            return tuple(self._db.ledger(schedule, limit))

    def schedules(self) -> tuple[ScheduleInfo, ...]:
        """As `JobSystem.schedules`."""
        with self._lock:
            return tuple(self._db.schedules(self._clock.now()))

    def retry(self, job_id: int, *, attempts: int = 1) -> None:
        """As `JobSystem.retry`; the hosts on the store are woken at once (cross-process wake-up)."""
        check_retry(attempts)
        with self._lock:
            queue = self._db.retry(job_id, self._clock.now(), attempts)
            self._poker.poke([queue])
