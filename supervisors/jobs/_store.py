"""The interface every job store implements, and the contract its methods keep.

All times are epoch seconds chosen by the caller, so a store never reads a clock. Every method
that changes several rows does so atomically. The lifecycle rules (which operation moves a job
from which state to which) are `_lifecycle.TRANSITIONS`; a store only persists them.

Fencing: the methods that act on claimed jobs (`settle`, `renew`) take tokens ``(job id,
attempt)`` (`ClaimedJob.token`) and only touch a job that is still ``RUNNING`` under that attempt
and leased to ``owner``. A worker whose lease expired, and whose job was recovered or claimed
again, holds a stale token: the store refuses it and says so (`Settled.refused`, the result of
`renew`), and the new run's state is left alone.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Collection, Mapping, Sequence

import trio

from ._model import (
    ClaimedJob,
    Failure,
    HostInfo,
    Job,
    JobCounts,
    JobSettings,
    JobState,
    NewJob,
    Promoted,
    ScheduleSettings,
    Settled,
    Success,
    Token,
)
from ._query import JobPage, JobQuery
from ._reports import AttemptProgress, LedgerEntry, ProgressReport, ScheduleInfo


class Store(abc.ABC):
    """Where jobs live. Implementations: `InMemoryStore` and `SQLiteStore`.

    A store is safe to use from many Trio tasks at once. ``shared`` says whether other processes
    may change it behind this one's back; when true, a `JobSystem` polls it for work.
    """

    shared: bool = False
    host_id: str | None = None
    """This process's id in the store's table of hosts; ``None`` for a store without one. A
    `JobSystem` on such a store leases its jobs as ``<host_id>/<random part>``, so `hosts`
    can tell which host runs which job."""

    @abc.abstractmethod
    async def insert(self, jobs: Sequence[NewJob], *, now: float) -> list[int]:
        """Add ``jobs`` in one transaction and return their ids, in order.

        A ``defined`` job first takes its missing settings from the recorded definitions (see
        `NewJob`). A job is ``ENQUEUED`` if ``run_at <= now``, else ``SCHEDULED``. A job whose ``unique_key``
        equals that of an unfinished job is not added: the existing job's id is returned instead.

        A continuation (``parent_id`` set) is ``AWAITING`` while its parent is unfinished
        (`Op.AWAIT`); for a parent that has ended it is resolved at once: ``ENQUEUED`` now with
        the parent's result if its ``continue_on`` wants that end, else ``CANCELLED`` with an
        `AttemptError` (attempt 0) saying why (`Op.ABANDON`). An unknown parent raises
        `JobNotFoundError` and inserts nothing.
        """

    @abc.abstractmethod
    async def claim(
        self, queue: str, limit: int, *, owner: str, now: float, lease_until: float
    ) -> list[ClaimedJob]:
        """Move up to ``limit`` ``ENQUEUED`` jobs of ``queue`` to ``RUNNING``: highest
        ``priority`` first, then oldest ``run_at`` (when the job became due), then lowest id.

        Nothing is claimed from a paused queue (`pause_queue`). A rate-limited queue
        (`set_rate_limit`) gets at most ``limit - used`` jobs, ``used`` being the jobs claimed
        in ``(now - period, now]``. A job with a ``concurrency_key`` is passed over (the next
        ones are claimed) while ``concurrency_limit`` jobs with its key are running.

        Each claimed job's ``attempt`` is incremented and it is leased to ``owner`` until
        ``lease_until``. No job is handed to two claimers.
        """

    async def insert_and_claim(
        self, job: NewJob, *, now: float, owner: str, lease_until: float
    ) -> tuple[int, ClaimedJob | None]:
        """`insert` ``job`` and, in the same transaction, claim it for ``owner`` (as `claim`
        would: attempt 1, leased until ``lease_until``) if it would be the next job its queue
        hands out and no limit applies: it is due, has no unique key, schedule, parent or
        concurrency key, and its queue is not paused, has no rate limit and no ``ENQUEUED``
        job. No other transaction sees it ``ENQUEUED``.

        Returns its id and its claim, or ``None`` if it was only inserted (then it is exactly
        `insert`'s job). A store may never claim here; this default does not (the stores on
        SQLite do).
        """
        (job_id,) = await self.insert((job,), now=now)
        return job_id, None

    @abc.abstractmethod
    async def settle(
        self,
        *,
        owner: str,
        now: float,
        succeeded: Sequence[Token | Success] = (),
        failed: Sequence[Failure] = (),
        released: Sequence[Token] = (),
    ) -> Settled:
        """Record the end of attempts leased to ``owner``, in one transaction.

        ``succeeded`` jobs become ``SUCCEEDED`` with their `Success.result` (a bare token
        records none). A `Failure` records an `AttemptError` and makes
        the job ``RETRYING`` until ``retry_at``, or ``DEAD`` when ``retry_at`` is ``None``.
        ``released`` attempts were interrupted (the runner stopped them without an outcome):
        the attempt counts, an `AttemptError` records the interruption, and the job is
        ``ENQUEUED`` again if it has attempts left, else ``DEAD``. A stale token changes nothing
        and its job id is in the result's ``refused``.

        A job that ends (succeeded, dead or cancelled) resolves its awaiting continuations in
        the same transaction: those whose `ContinueOn` wants that end become ``ENQUEUED`` with
        the parent's result (their queues are in the result's ``ready``), the others
        ``CANCELLED`` with an `AttemptError` saying why, which resolves theirs in turn.
        `requeue_expired`, `cancel` and `delete` resolve continuations the same way (a deleted
        parent counts as cancelled).
        """

    async def settle_and_claim(
        self,
        queue: str,
        limit: int,
        *,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[Token | Success] = (),
        failed: Sequence[Failure] = (),
    ) -> Settled:
        """`settle`, then `claim` (``limit`` may be 0). Stores may do both in one round trip."""
        settled = Settled()
        if succeeded or failed:
            settled = await self.settle(owner=owner, now=now, succeeded=succeeded, failed=failed)
        if limit <= 0:
            return settled
        claimed = await self.claim(queue, limit, owner=owner, now=now, lease_until=lease_until)
        return Settled(refused=settled.refused, claimed=claimed, ready=settled.ready)

    @abc.abstractmethod
    async def renew(
        self, tokens: Sequence[Token], *, owner: str, lease_until: float
    ) -> frozenset[int]:
        """Extend the leases of the listed claims; return the job ids whose token is stale (the
        lease was lost: nothing was extended for them)."""

    @abc.abstractmethod
    async def define(self, settings: Sequence[JobSettings]) -> None:
        """Record the settings of job definitions (replacing earlier records of the same
        names), for the inserts of ``defined`` jobs (see `NewJob`)."""

    @abc.abstractmethod
    async def job_names(self) -> frozenset[str]:
        """The names of the job definitions recorded by `define` (by every host on the store,
        ever); empty if none was."""

    @abc.abstractmethod
    async def promote_due(self, *, now: float) -> Promoted:
        """Move ``SCHEDULED`` and ``RETRYING`` jobs with ``run_at <= now`` to ``ENQUEUED``.

        Returns the queues that received jobs and the earliest ``run_at`` still in the future.
        """

    @abc.abstractmethod
    async def requeue_expired(self, *, now: float) -> frozenset[str]:
        """Recover ``RUNNING`` jobs whose lease ended before ``now``.

        The attempt counts and gets an `AttemptError` (see ``LEASE_EXPIRED``); the job goes back
        to ``ENQUEUED`` if it has attempts left, else to ``DEAD``. Returns the queues that received jobs.
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
        hold: bool = False,
        owner: str = "",
        notes: Mapping[float, str] | None = None,
    ) -> list[int] | None:
        """Insert occurrences of ``schedule`` and move its cursor, in one transaction.

        Compare-and-set: if the stored cursor is not ``expected`` (another host fired first),
        the cursor is left alone and ``None`` is returned. Otherwise each job is inserted unless a job with
        the same ``(schedule, fire_time)`` exists, or ``exclusive`` is true and an unfinished job
        of the schedule exists; the cursor becomes ``cursor``; the ids inserted are returned.
        With ``hold``, an occurrence blocked by ``exclusive`` is not skipped: nothing changes
        (the cursor stays) and ``[]`` is returned, so the occurrence is fired later. A paused
        schedule (`pause_schedule`) inserts nothing, moves its cursor and returns ``[]``.

        The fire ledger (`ledger`) gets, in the same transaction and recorded by ``owner``, one
        entry per occurrence, oldest first: ``FIRED`` (with ``notes[fire_time]`` appended to the
        reason, if any), ``SKIPPED`` (blocked by ``exclusive``, or paused), ``DEDUPLICATED`` (its
        job exists already: also for each job of a refused compare-and-set whose occurrence has
        a job), and ``MISSED`` for each fire time of ``notes`` without a job (the note is the
        reason). A held call records nothing.
        """

    @abc.abstractmethod
    async def ledger(self, schedule: str, *, limit: int = 100) -> list[LedgerEntry]:
        """The newest ``limit`` entries of ``schedule``'s fire ledger, newest first. Raises
        `ScheduleNotFoundError` for a schedule neither recorded nor in the ledger."""

    @abc.abstractmethod
    async def trim_ledger(self, *, keep: int) -> int:
        """Delete all but the newest ``keep`` ledger entries of every schedule; return how many."""

    @abc.abstractmethod
    async def schedules(self, *, now: float) -> list[ScheduleInfo]:
        """Every recorded schedule, by name, with its policies, next occurrence after ``now``
        and latest ledger entries."""

    @abc.abstractmethod
    async def report(
        self, reports: Sequence[ProgressReport], *, owner: str, now: float
    ) -> frozenset[int]:
        """Record the progress and log lines of running attempts, in one transaction, fenced as
        `renew` is: a report whose token ``(job_id, attempt)`` is not ``RUNNING`` and leased to
        ``owner`` changes nothing and its job id is returned. A report's progress replaces the
        attempt's stored one only if its ``version`` is higher; its lines are added (a line
        whose ``seq`` is stored already is not added twice)."""

    @abc.abstractmethod
    async def progress(self, job_id: int) -> list[AttemptProgress]:
        """What each attempt of the job reported, by attempt (attempts that reported nothing
        are absent). Raises `JobNotFoundError`."""

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
    async def search(self, query: JobQuery) -> JobPage:
        """One page of the jobs ``query`` matches, newest first, from its cursor (see
        `JobQuery`); read in one transaction."""

    @abc.abstractmethod
    async def counts(self) -> JobCounts:
        """Jobs per state and per queue."""

    async def has_work(self, queues: Collection[str]) -> bool:
        """Whether any job of ``queues`` is ``ENQUEUED`` or ``RUNNING`` (`JobSystem.wait_idle`
        asks after every recorded outcome). Defaults to reading `counts`, which reads every
        job; the SQL stores look for one such job through an index instead."""
        counts = await self.counts()
        busy = (JobState.ENQUEUED, JobState.RUNNING)
        return any(counts.by_queue[q][s] > 0 for q in queues if q in counts.by_queue for s in busy)

    @abc.abstractmethod
    async def retry(self, job_id: int, *, now: float, attempts: int) -> str:
        """Make a ``DEAD``, ``RETRYING`` or ``SCHEDULED`` job ``ENQUEUED`` now; return its queue.

        A dead job gets ``attempts`` more attempts. Raises `JobNotFoundError`, or `JobStateError`
        for a job in another state or whose unique key is taken by an unfinished copy.
        """

    @abc.abstractmethod
    async def requeue(self, job_id: int, *, now: float, attempts: int) -> str:
        """Make a ``SCHEDULED``, ``RETRYING``, ``SUCCEEDED``, ``DEAD`` or ``CANCELLED`` job
        ``ENQUEUED`` now; return its queue. A finished job gets ``attempts`` more attempts and
        loses its cancellation request. Raises as `retry` does."""

    @abc.abstractmethod
    async def cancel(self, job_id: int, *, now: float) -> tuple[JobState, str]:
        """Cancel the job; return its state after (``CANCELLED``, or ``RUNNING`` for a running
        job, now flagged ``cancel_requested``) and its queue.

        A flagged running job is cancelled by its runner when it sees the flag; any end of its
        attempt but success then makes it ``CANCELLED`` (`Op.CANCEL_END`). Raises
        `JobNotFoundError`, or `JobStateError` for a finished job."""

    @abc.abstractmethod
    async def cancelling(self, job_ids: Sequence[int]) -> frozenset[int]:
        """Those of ``job_ids`` that are ``RUNNING`` with a cancellation requested."""

    @abc.abstractmethod
    async def delete(self, job_id: int, *, now: float) -> None:
        """Delete the job, its errors, progress and log; its awaiting continuations are resolved
        as if it was cancelled (at ``now``). Raises `JobNotFoundError`, or `JobStateError` for a
        running job (cancel it first)."""

    @abc.abstractmethod
    async def pause_queue(self, queue: str, *, paused: bool, now: float) -> None:
        """Pause (``paused=True``) or resume a queue: `claim` takes no job of a paused queue.
        Pausing a paused queue or resuming a running one changes nothing."""

    @abc.abstractmethod
    async def paused_queues(self) -> frozenset[str]:
        """The queues paused now."""

    @abc.abstractmethod
    async def define_schedules(self, schedules: Sequence[ScheduleSettings]) -> None:
        """Record recurring schedules (replacing earlier records of the same names, keeping
        whether they are paused), so that `trigger` and `pause_schedule` find them."""

    @abc.abstractmethod
    async def trigger(self, schedule: str, *, now: float, owner: str = "") -> tuple[int, str]:
        """Insert an occurrence of ``schedule`` due now (``fire_time`` = ``now``), whether or not
        it is paused or a run is unfinished; return its id and queue; record it in the ledger
        (``FIRED``, "triggered by hand", by ``owner``). Raises `ScheduleNotFoundError`."""

    @abc.abstractmethod
    async def pause_schedule(self, schedule: str, *, paused: bool) -> None:
        """Pause or resume a recorded schedule: `fire` of a paused schedule moves its cursor and
        inserts nothing. Raises `ScheduleNotFoundError`."""

    @abc.abstractmethod
    async def paused_schedules(self) -> frozenset[str]:
        """The recorded schedules paused now."""

    @abc.abstractmethod
    async def set_rate_limit(self, queue: str, *, limit: int | None, period: float) -> None:
        """Limit `claim` of ``queue`` to ``limit`` jobs per ``period`` seconds (``None``: no
        limit). Counted in the store: the claims (attempts started) of every host in the
        window ``(now - period, now]``."""

    @abc.abstractmethod
    async def rate_limits(self) -> dict[str, tuple[int, float]]:
        """Queue → ``(limit, period)`` of every rate-limited queue."""

    @abc.abstractmethod
    async def prune(self, *, state: JobState, before: float, limit: int = 500) -> int:
        """Delete up to ``limit`` jobs in ``state`` (``SUCCEEDED``, ``DEAD`` or ``CANCELLED``) that finished
        before ``before``, oldest id first, with their errors, progress and log, in one short transaction; return
        how many. Callers loop while it returns ``limit``, letting other work in between.
        Raises ``ValueError`` for another state."""

    async def reclaim(self, *, pages: int = 1000) -> int:
        """Return up to ``pages`` pages freed by `prune` to the file system, in one short
        transaction; return how many free pages remain (callers loop while it is not 0).
        Defaults to doing nothing and returning 0 (a store whose database reclaims by itself)."""
        return 0

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the store (connect, create the schema). Defaults to doing nothing.

        Other methods work without it; a `JobSystem` calls it when its subtree starts so that a
        store that cannot be used fails the start with a clear error.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the store's resources. Defaults to doing nothing."""

    @property
    def available(self) -> bool:
        """False while the store is known to be unreachable (a store that retries a lost
        database: from its first failed call to the next successful one); readiness checks
        answer at once from it. Defaults to true."""
        return True

    async def hosts(self) -> builtins.list[HostInfo] | None:
        """The hosts that share this store, alive or not, oldest first (`HostInfo`: heartbeat,
        cluster singletons held, jobs running); ``None`` for a store that keeps no table of
        hosts (then only the process that uses it is known). Defaults to ``None``."""
        await trio.lowlevel.checkpoint()
        return None

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
