"""The semantics of the façade operations, once for `JobSystem` (async) and `JobClient` (sync).

Both façades build requests, validate them and read the store's answers through these
functions; they differ only in how they reach the store (awaiting a `Store`, or calling a
`SQLiteDB` under a lock).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import cattrs

from ._errors import JobNotFoundError
from ._model import ContinueOn, Job, JobState, NewJob, RetryPolicy, to_timestamp
from ._registry import JobRegistry, encode_plain


def seconds(value: float | timedelta) -> float:
    """A duration as seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _at_or_after(
    inst: JobRequest, _attribute: attrs.Attribute[datetime | None], _value: datetime | None
) -> None:
    if inst.at is not None and inst.after is not None:
        msg = "give 'at' or 'after', not both"
        raise ValueError(msg)
    if inst.at is not None and inst.at.tzinfo is None:
        msg = f"'at' must be timezone-aware (got naive {inst.at.isoformat()}); add tzinfo=UTC"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class JobRequest:
    """One job to enqueue with `JobSystem.enqueue_many` or `JobClient.enqueue_many`.

    ``at`` (an aware datetime) or ``after`` (seconds or a timedelta) delay the job; neither
    means now. ``queue``, ``max_attempts`` and ``unique_key`` default to the job's registration
    (queue ``"default"``, the retry policy's attempts, a key derived from the arguments when the
    job was registered with ``unique=True``).
    """

    job: str
    args: object = None
    queue: str | None = None
    at: datetime | None = attrs.field(default=None, validator=_at_or_after)
    after: float | timedelta | None = None
    unique_key: str | None = None
    max_attempts: int | None = None
    priority: int = 0
    """Higher runs first within the queue; default 0; negative values run after."""
    concurrency_key: str | None = None
    """Jobs with the same key run at most ``concurrency_limit`` at once, on all hosts."""
    concurrency_limit: int = 1
    """With ``concurrency_key``: how many of its jobs may run at once; default 1."""
    parent: int | None = None
    """Make the job a continuation of the job with this id (see `JobSystem.continue_with`);
    not with ``at`` or ``after``."""
    on: ContinueOn = ContinueOn.SUCCESS
    """With ``parent``: which ends of the parent run the continuation."""

    def __attrs_post_init__(self) -> None:
        if self.parent is not None and (self.at is not None or self.after is not None):
            msg = (
                f"a continuation (parent={self.parent}) runs when its parent ends; it takes no "
                "'at' or 'after'"
            )
            raise ValueError(msg)

    @classmethod
    def scheduled(
        cls,
        job: str,
        args: object,
        *,
        at: datetime | None,
        after: float | timedelta | None,
        queue: str | None,
        unique_key: str | None,
        max_attempts: int | None,
        priority: int = 0,
        concurrency_key: str | None = None,
        concurrency_limit: int = 1,
    ) -> JobRequest:
        """The request of a ``schedule()`` call: exactly one of ``at`` and ``after``."""
        if (at is None) == (after is None):
            msg = "schedule() needs exactly one of 'at' (a datetime) or 'after' (seconds)"
            raise ValueError(msg)
        return cls(
            job=job, args=args, queue=queue, at=at, after=after, unique_key=unique_key,
            max_attempts=max_attempts, priority=priority, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
        )  # fmt: skip


def build(
    request: JobRequest,
    *,
    registry: JobRegistry | None,
    retry: RetryPolicy | None,
    now: float,
    converter: cattrs.Converter | None = None,
) -> NewJob:
    """Validate ``request`` (against ``registry`` when given) and make the store record.

    ``retry`` gives the attempts of a job registered without a policy of its own; ``None`` (an
    enqueuer that did not choose one) leaves them to the definition the hosts recorded, as for an
    enqueuer without the registry. Raises `UnknownJobError` or `JobArgumentsError` (from the
    registry), ``ValueError`` for a bad ``max_attempts``.
    """
    queue: str | None
    attempts: int | None
    if registry is not None:
        definition = registry.get(request.job)
        args = registry.encode(definition, request.args)
        queue = request.queue or definition.queue
        policy = definition.retry or retry
        attempts = policy.max_attempts if policy is not None else None
        unique = f"{request.job}:{args}" if definition.unique else None
    else:  # the settings come from the definition the hosts recorded (NewJob.defined)
        args = encode_plain(request.args, converter)
        queue = request.queue
        attempts = None
        unique = None
    if request.max_attempts is not None:
        if request.max_attempts < 1:
            msg = f"'max_attempts' must be >= 1 (got {request.max_attempts})"
            raise ValueError(msg)
        attempts = request.max_attempts
    if request.concurrency_limit < 1:
        msg = f"'concurrency_limit' must be >= 1 (got {request.concurrency_limit})"
        raise ValueError(msg)
    if request.at is not None:
        run_at = to_timestamp(request.at)
    elif request.after is not None:
        run_at = now + seconds(request.after)
    else:
        run_at = now
    return NewJob(
        name=request.job,
        queue=queue,
        args=args,
        run_at=run_at,
        max_attempts=attempts,
        unique_key=request.unique_key if request.unique_key is not None else unique,
        defined=registry is None or attempts is None,
        priority=request.priority,
        concurrency_key=request.concurrency_key,
        concurrency_limit=request.concurrency_limit if request.concurrency_key is not None else None,
        parent_id=request.parent,
        continue_on=request.on,
    )


FINISHED_STATES = frozenset({JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED})
"""The states `wait_finished` waits for."""


def found(job_id: int, job: Job | None) -> Job:
    """The answer of ``get``: the job, or `JobNotFoundError` if there is none (or it was pruned)."""
    if job is None:
        raise JobNotFoundError(job_id)
    return job


def check_retry(attempts: int) -> None:
    """Validate the ``attempts`` of ``retry`` (raises ``ValueError``)."""
    if attempts < 1:
        msg = f"'attempts' must be >= 1 (got {attempts})"
        raise ValueError(msg)
