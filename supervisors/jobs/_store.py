"""The interface every job store implements, and the contract its methods keep.

All times are epoch seconds chosen by the caller, so a store never reads a clock. Every method
that changes several rows does so atomically. The methods that act on claimed jobs (`settle`,
`renew`) only touch jobs that are still ``RUNNING`` and leased to ``owner``: a worker whose lease
expired, and whose job was re-claimed by someone else, cannot overwrite the new run's state.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import trio

from ._model import ClaimedJob, Failure, Job, JobCounts, JobState, NewJob, Promoted

LEASE_EXPIRED = (
    "lease expired: the process running attempt {attempt} died or stopped renewing its lease"
)
"""The error recorded for an attempt whose lease expired."""


class Store(abc.ABC):
    """Where jobs live. Implementations: `InMemoryStore` and `SQLiteStore`.

    A store is safe to use from many Trio tasks at once. ``shared`` says whether other processes
    may change it behind this one's back; when true, a `JobSystem` polls it for work.
    """

    shared: bool = False

    @abc.abstractmethod
    async def insert(self, jobs: Sequence[NewJob], *, now: float) -> list[int]:
        """Add ``jobs`` in one transaction and return their ids, in order.

        A job is ``ENQUEUED`` if ``run_at <= now``, else ``SCHEDULED``. A job whose ``unique_key``
        equals that of an unfinished job is not added: the existing job's id is returned instead.
        """

    @abc.abstractmethod
    async def claim(
        self, queue: str, limit: int, *, owner: str, now: float, lease_until: float
    ) -> list[ClaimedJob]:
        """Move up to ``limit`` ``ENQUEUED`` jobs of ``queue`` to ``RUNNING``, oldest id first.

        Each claimed job's ``attempt`` is incremented and it is leased to ``owner`` until
        ``lease_until``. No job is handed to two claimers.
        """

    @abc.abstractmethod
    async def settle(
        self,
        *,
        owner: str,
        now: float,
        succeeded: Sequence[int] = (),
        failed: Sequence[Failure] = (),
        released: Sequence[int] = (),
    ) -> None:
        """Record the end of attempts of jobs leased to ``owner``, in one transaction.

        ``succeeded`` jobs become ``SUCCEEDED``. A `Failure` records an `AttemptError` and makes
        the job ``RETRYING`` until ``retry_at``, or ``DEAD`` when ``retry_at`` is ``None``.
        ``released`` jobs go back to ``ENQUEUED`` and their attempt is not counted.
        """

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
        """`settle`, then `claim` (``limit`` may be 0). Stores may do both in one round trip."""
        if succeeded or failed:
            await self.settle(owner=owner, now=now, succeeded=succeeded, failed=failed)
        if limit <= 0:
            return []
        return await self.claim(queue, limit, owner=owner, now=now, lease_until=lease_until)

    @abc.abstractmethod
    async def renew(self, ids: Sequence[int], *, owner: str, lease_until: float) -> None:
        """Extend the lease of the listed jobs that are still ``RUNNING`` under ``owner``."""

    @abc.abstractmethod
    async def promote_due(self, *, now: float) -> Promoted:
        """Move ``SCHEDULED`` and ``RETRYING`` jobs with ``run_at <= now`` to ``ENQUEUED``.

        Returns the queues that received jobs and the earliest ``run_at`` still in the future.
        """

    @abc.abstractmethod
    async def requeue_expired(self, *, now: float) -> frozenset[str]:
        """Recover ``RUNNING`` jobs whose lease ended before ``now``.

        Each gets an `AttemptError` (see ``LEASE_EXPIRED``); it goes back to ``ENQUEUED`` if it has
        attempts left, else to ``DEAD``. Returns the queues that received jobs.
        """

    @abc.abstractmethod
    async def cursor(self, schedule: str) -> float | None:
        """The last fire time recorded for a recurring schedule, ``None`` if never recorded."""

    @abc.abstractmethod
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
        """Insert occurrences of ``schedule`` and move its cursor, in one transaction.

        Compare-and-set: if the stored cursor is not ``expected`` (another host fired first),
        nothing changes and ``None`` is returned. Otherwise each job is inserted unless a job with
        the same ``(schedule, fire_time)`` exists, or ``exclusive`` is true and an unfinished job
        of the schedule exists; the cursor becomes ``cursor``; the ids inserted are returned.
        """

    @abc.abstractmethod
    async def get(self, job_id: int) -> Job | None:
        """The job with this id, or ``None``."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs filtered by state and queue (``None`` = any), ordered by id."""

    @abc.abstractmethod
    async def counts(self) -> JobCounts:
        """Jobs per state and per queue."""

    @abc.abstractmethod
    async def retry(self, job_id: int, *, now: float, attempts: int) -> str:
        """Make a ``DEAD``, ``RETRYING`` or ``SCHEDULED`` job ``ENQUEUED`` now; return its queue.

        A dead job gets ``attempts`` more attempts. Raises `JobNotFoundError`, or `JobStateError`
        for a job in another state or whose unique key is taken by an unfinished copy.
        """

    @abc.abstractmethod
    async def prune(self, *, before: float) -> int:
        """Delete ``SUCCEEDED`` jobs that finished before ``before``; return how many."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the store (connect, create the schema). Defaults to doing nothing.

        Other methods work without it; a `JobSystem` calls it when its subtree starts so that a
        store that cannot be used fails the start with a clear error.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the store's resources. Defaults to doing nothing."""

    async def watch(
        self,
        wake: Callable[[str | None], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call ``wake(queue)`` when another process makes jobs of ``queue`` ready, and
        ``wake(None)`` when anything else may have changed (scheduled jobs; at the start); run
        until cancelled. A `JobSystem` runs it while its subtree runs, besides polling a
        ``shared`` store. Defaults to waiting for cancellation (nothing to watch)."""
        task_status.started()
        await trio.sleep_forever()
