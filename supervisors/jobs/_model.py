"""Plain data of the job system: states, job records, retry policy, store records.

Times inside the store layer are floats (seconds since the Unix epoch, UTC); the records handed to
users (`Job`, `AttemptError`) carry timezone-aware UTC `datetime` objects.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import attrs

from supervisors import Backoff

JSONValue: TypeAlias = Any
"""A value made of ``None``, ``bool``, ``int``, ``float``, ``str``, lists and string-keyed dicts."""


class JobState(enum.Enum):
    """The life cycle of a job.

    ``SCHEDULED`` (due later) → ``ENQUEUED`` (due, waiting for a worker) → ``RUNNING`` (claimed,
    holds a lease) → ``SUCCEEDED`` | ``RETRYING`` (failed, waits for its backoff, then goes back to
    ``ENQUEUED``) | ``DEAD`` (failed its last attempt, or cannot run at all; kept until retried
    by hand) | ``CANCELLED`` (cancelled by an operator before it ran, or while it ran).
    ``AWAITING``: a continuation waiting for its parent to end (`JobSystem.continue_with`),
    then ``ENQUEUED``, or ``CANCELLED`` if the parent's end is not the one it waits for.
    """

    AWAITING = "awaiting"
    SCHEDULED = "scheduled"
    ENQUEUED = "enqueued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    DEAD = "dead"
    CANCELLED = "cancelled"


UNFINISHED_STATES = frozenset(
    {JobState.AWAITING, JobState.SCHEDULED, JobState.ENQUEUED, JobState.RUNNING, JobState.RETRYING}
)
"""The states in which a unique job blocks a second copy and a recurring run blocks the next."""


class ContinueOn(enum.Enum):
    """When a continuation runs: which ends of its parent enqueue it (`JobSystem.continue_with`).

    On any other end of its parent the continuation is ``CANCELLED``, with an `AttemptError`
    (attempt 0) saying why.
    """

    SUCCESS = "success"
    """The parent ``SUCCEEDED`` (the default). The continuation sees the parent's result."""
    FAILURE = "failure"
    """The parent ended without success: ``DEAD`` or ``CANCELLED`` (or was deleted)."""
    ANY = "any"
    """The parent ended, whatever the outcome."""


def to_datetime(ts: float) -> datetime:
    """Convert seconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def to_timestamp(dt: datetime) -> float:
    """Convert an aware datetime to seconds since the epoch; naive datetimes are refused."""
    if dt.tzinfo is None:
        msg = f"naive datetime {dt.isoformat()} is ambiguous; pass an aware one (tzinfo=UTC)"
        raise ValueError(msg)
    return dt.timestamp()


@attrs.frozen(kw_only=True)
class AttemptError:
    """The failure of one attempt of a job, as recorded in the store."""

    attempt: int
    """The attempt that failed (1 for the first run)."""
    at: datetime
    """When the failure was recorded (UTC)."""
    error: str
    """``"ExceptionType: message"``, or the reason the job could not run."""
    traceback: str
    """The formatted traceback, or ``""`` when there was no exception (e.g. an expired lease)."""


@attrs.frozen(kw_only=True)
class Job:
    """A snapshot of one job as stored. Returned by `JobSystem.get` and `JobSystem.list`."""

    id: int
    name: str
    queue: str
    args: JSONValue
    """The arguments in their JSON form (``cattrs``-unstructured)."""
    state: JobState
    attempt: int
    """How many attempts have started so far (0 before the first run)."""
    max_attempts: int
    run_at: datetime
    """When the job is or was due (UTC)."""
    created_at: datetime
    finished_at: datetime | None
    """When it reached ``SUCCEEDED`` or ``DEAD``; ``None`` otherwise."""
    lease_until: datetime | None
    """While ``RUNNING``: when the lease expires unless renewed by a heartbeat."""
    unique_key: str | None
    schedule: str | None
    """The `Recurring` schedule that created the job, if any."""
    fire_time: datetime | None
    """For a recurring job: the cron occurrence it stands for."""
    errors: tuple[AttemptError, ...]
    """Every failed attempt, oldest first."""
    cancel_requested: bool = False
    """Whether `JobSystem.cancel` was called while the job ran: its run is being cancelled (it
    becomes ``CANCELLED`` unless it succeeds first)."""
    priority: int = 0
    """Higher runs first within its queue (see `JobSystem.enqueue`)."""
    concurrency_key: str | None = None
    """Jobs sharing this key run at most ``concurrency_limit`` at once, across hosts."""
    concurrency_limit: int | None = None
    result: JSONValue = None
    """What the job's function returned, in its JSON form (``cattrs``-unstructured), once it
    ``SUCCEEDED``; ``None`` before, and for a function that returned ``None``. Kept as long as
    the job (``JobSystem(keep_succeeded=...)``)."""
    parent_id: int | None = None
    """For a continuation (`JobSystem.continue_with`): the job it continues. The parent may
    have been pruned or deleted since."""
    continue_on: ContinueOn | None = None
    """For a continuation: which ends of its parent enqueue it."""
    continuations: tuple[int, ...] = ()
    """The ids of the jobs that continue this one, by id."""


def _zero_counts() -> dict[JobState, int]:
    return dict.fromkeys(JobState, 0)


@attrs.frozen(kw_only=True)
class JobCounts:
    """How many jobs are in each state, in total and per queue."""

    by_state: Mapping[JobState, int] = attrs.field(factory=_zero_counts)
    """Every state is present, with 0 when no job is in it."""
    by_queue: Mapping[str, Mapping[JobState, int]] = attrs.field(factory=dict)
    """Only queues that hold at least one job; each inner mapping has every state."""

    @property
    def total(self) -> int:
        """The number of jobs in the store."""
        return sum(self.by_state.values())

    @classmethod
    def from_rows(cls, rows: list[tuple[str, JobState, int]]) -> JobCounts:
        """Build from ``(queue, state, count)`` rows."""
        by_state = _zero_counts()
        by_queue: dict[str, dict[JobState, int]] = {}
        for queue, state, n in rows:
            by_state[state] += n
            by_queue.setdefault(queue, _zero_counts())[state] += n
        return cls(by_state=by_state, by_queue=by_queue)


def _positive(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        msg = f"{attribute.name!r} must be > 0 (got {value!r})"
        raise ValueError(msg)


def _attempts(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        msg = f"{attribute.name!r} must be >= 1 (got {value!r})"
        raise ValueError(msg)


def _factor(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 1:
        msg = f"{attribute.name!r} must be >= 1 (got {value!r})"
        raise ValueError(msg)


def _jitter(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value < 1:
        msg = f"{attribute.name!r} must be in [0, 1) (got {value!r})"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often a failing job is tried and how long it waits between attempts.

    The delay before attempt ``n + 1`` after attempt ``n`` failed is
    ``min(max_delay, base * factor ** (n - 1))``, multiplied by a random factor drawn uniformly
    from ``[1 - jitter, 1 + jitter]``. With the defaults (20 attempts, 1 s, doubling, capped at
    one hour, ±10 %) the delays are about 1 s, 2 s, 4 s, ... 2048 s, then 3600 s seven times: a
    job that always fails is declared dead about 8.1 hours after its first attempt.
    """

    max_attempts: int = attrs.field(default=20, validator=_attempts)
    """Attempts in total, the first run included. Defaults to 20 (as Oban; Hangfire uses 10)."""
    base: float = attrs.field(default=1.0, validator=_positive)
    """The delay after the first failure, in seconds. Defaults to 1.0."""
    factor: float = attrs.field(default=2.0, validator=_factor)
    """The growth of the delay per failed attempt. Defaults to 2.0."""
    max_delay: float = attrs.field(default=3600.0, validator=_positive)
    """The cap on the delay before jitter, in seconds. Defaults to 3600.0 (one hour)."""
    jitter: float = attrs.field(default=0.1, validator=_jitter)
    """The relative spread of the random jitter, in ``[0, 1)``. Defaults to 0.1 (±10 %)."""

    def backoff(self) -> Backoff:
        """The supervisors' `Backoff` with this policy's numbers (one helper for restarts and
        retries)."""
        return Backoff(initial=self.base, factor=self.factor, max=self.max_delay, jitter=self.jitter)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The backoff in seconds after attempt ``attempt`` (1-based) failed.

        ``rng`` draws the jitter; defaults to a fresh unseeded ``random.Random()``. Pass a
        seeded one for reproducible delays (a `JobSystem` passes its own, see ``rng=``).
        """
        return self.backoff().delay(attempt, rng if rng is not None else random.Random())


DEFAULT_MAX_ATTEMPTS = 20
"""The attempts of a job enqueued without a registry whose name no host has recorded."""


# --- records exchanged with stores -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class NewJob:
    """A job to insert into a store. ``args`` is JSON text; times are epoch seconds.

    With ``defined=True`` (an enqueuer without the registry, or with it but without a retry
    policy for a job registered without one), the job's settings come from its
    definition as recorded in the store by the hosts (`Store.define`): ``queue`` and
    ``max_attempts`` when ``None``, and uniqueness (a key from the name and arguments) when
    ``unique_key`` is ``None``. A name no host has recorded gets queue ``"default"`` and
    `DEFAULT_MAX_ATTEMPTS`. Without ``defined``, ``queue`` and ``max_attempts`` are required.

    ``priority``: higher is claimed first within the queue. ``concurrency_key`` with
    ``concurrency_limit``: at most that many jobs with the key run at once (see `Store.claim`).
    """

    name: str
    queue: str | None
    args: str
    run_at: float
    max_attempts: int | None
    unique_key: str | None = None
    schedule: str | None = None
    fire_time: float | None = None
    defined: bool = False
    priority: int = 0
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    parent_id: int | None = None
    """A continuation of this job: the job is ``AWAITING`` until its parent ends (then
    ``ENQUEUED`` or ``CANCELLED`` as ``continue_on`` says), or resolved at insert if the parent
    has already ended. ``run_at`` is ignored. An unknown parent raises `JobNotFoundError`."""
    continue_on: ContinueOn = ContinueOn.SUCCESS


@attrs.frozen(kw_only=True)
class JobSettings:
    """The settings of a job definition that a host records in its store (`Store.define`), so
    that every enqueuer, with or without the registry, gets the same behaviour."""

    name: str
    queue: str
    max_attempts: int
    unique: bool


def _to_seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@attrs.frozen
class RateLimit:
    """A queue's rate limit: at most ``limit`` claims (attempts started) in any window of
    ``per`` seconds, counted in the store across every host. See `JobSystem.set_rate_limit`."""

    limit: int = attrs.field(validator=_attempts)
    """The claims allowed per window, >= 1."""
    per: float = attrs.field(converter=_to_seconds, validator=_positive)
    """The window, in seconds (a timedelta is converted)."""


def rate_limit_row(limit: RateLimit | None) -> tuple[int | None, float]:
    """``limit`` as a store keeps it (`Store.set_rate_limit`): ``(limit, period)``, or
    ``(None, 0.0)`` for no limit."""
    return (None, 0.0) if limit is None else (limit.limit, limit.per)


def rate_limits_of(rows: Mapping[str, tuple[int, float]]) -> dict[str, RateLimit]:
    """The `RateLimit` of each queue of `Store.rate_limits`' ``queue → (limit, period)``."""
    return {queue: RateLimit(n, per) for queue, (n, per) in rows.items()}


@attrs.frozen(kw_only=True)
class ScheduleSettings:
    """A recurring schedule as a host records it in its store (`Store.define_schedules`), so
    that every client can trigger or pause it by name."""

    name: str
    job: str
    queue: str
    args: str
    """The job's arguments as JSON text."""
    max_attempts: int
    cron: str = ""
    """The cron expression; ``""`` records no policy (the policy columns keep their values)."""
    tz: str = "UTC"
    misfire: str = "run_once"
    """The `Misfire` policy's value."""
    misfire_grace: float = 60.0
    overlap: bool = False


Token: TypeAlias = tuple[int, int]
"""A fencing token: ``(job id, attempt)``. It names one claim of a job; see `Store.settle`."""


@attrs.frozen(slots=True)
class ClaimedJob:
    """A job handed to a worker by `Store.claim`: it is ``RUNNING`` and leased to the claimer."""

    id: int
    name: str
    queue: str
    args: str
    attempt: int
    """This claim's attempt number (1 for the first run); with ``id``, the fencing token."""
    max_attempts: int
    parent_id: int | None = None
    """For a continuation: the job it continues."""
    parent_result: JSONValue = None
    """For a continuation: its parent's result (JSON form) as it was when the parent
    succeeded; ``None`` if the parent did not succeed or returned ``None``. Structure it with
    the registry's converter: ``registry.converter.structure(job.parent_result, Report)``."""

    @property
    def token(self) -> Token:
        """``(id, attempt)``: what `Store.settle` and `Store.renew` need to act on this claim."""
        return (self.id, self.attempt)


@attrs.frozen(slots=True)
class Success:
    """A successful attempt to record with its result (`Store.settle`'s ``succeeded`` takes
    these or bare tokens, which record no result).

    ``result`` is the function's return value as JSON text, ``None`` for no result.
    """

    job_id: int
    attempt: int
    result: str | None = None

    @property
    def token(self) -> Token:
        """``(job_id, attempt)``."""
        return (self.job_id, self.attempt)


@attrs.frozen(slots=True)
class Failure:
    """A failed attempt to record: ``retry_at`` is when to try again, ``None`` means dead.

    ``attempt`` is the fencing token's attempt (see `ClaimedJob.token`).
    """

    job_id: int
    attempt: int
    error: str
    traceback: str
    retry_at: float | None

    @property
    def token(self) -> Token:
        """``(job_id, attempt)``."""
        return (self.job_id, self.attempt)


@attrs.frozen(kw_only=True)
class Settled:
    """What `Store.settle` and `Store.settle_and_claim` did (the last two fields are set by
    `Store.settle_and_claim`: what held its claim back).

    ``refused`` are the job ids whose token was stale: the job is no longer ``RUNNING`` under
    that attempt and owner (its lease expired and it was recovered or claimed again), so
    nothing was recorded for them. ``claimed`` are the jobs claimed after settling.
    """

    refused: frozenset[int] = frozenset()
    claimed: list[ClaimedJob] = attrs.field(factory=list)
    held_by_key: bool = False
    """The claim came back short while jobs of the queue wait for their concurrency key: a
    claim after the next outcome may take them."""
    rate_limited_until: float | None = None
    """The claim came back short because of the queue's rate limit: when the window frees a
    claim (epoch seconds)."""
    ready: frozenset[str] = frozenset()
    """The queues of continuations that the settled jobs enqueued."""


@attrs.frozen(kw_only=True)
class Promoted:
    """What `Store.promote_due` did: the queues that received jobs, and the next due time."""

    queues: frozenset[str]
    next_due: float | None


@attrs.frozen(kw_only=True)
class HostInfo:
    """One host sharing a job store (a row of PostgreSQL's ``hosts`` table; times in epoch
    seconds of the database's clock). See `Store.hosts`."""

    id: str
    """Host name, process id and a random part: ``"web-1/4242/1a2b3c4d"``."""
    hostname: str
    pid: int
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    alive: bool
    """Not stopped, and its last heartbeat is no older than three heartbeat periods."""
    read_at: float
    """The database's time when the row was read: ``read_at - heartbeat_at`` is the
    heartbeat's age, whatever this host's clock says."""
    singletons: tuple[str, ...] = ()
    """The names of the `ClusterSingleton` leases it holds now (unexpired), sorted."""
    running: tuple[int, ...] = ()
    """The ids of the jobs running under its leases, by id."""
