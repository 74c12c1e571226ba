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
from ._registry import JobDefinition, JobRegistry, encode_plain


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
    """Higher runs first within the queue; default 0; negative values run after. An int from
    -2**31 to 2**31 - 1 (PostgreSQL's ``INTEGER``, on every store)."""
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
    if registry is not None:
        return Builder(registry, retry).build(request, now)
    # The settings come from the definition the hosts recorded (NewJob.defined).
    return _new_job(
        request.job, encode_plain(request.args, converter), request.queue, None, None,
        request.unique_key, request.max_attempts, request.priority, request.concurrency_key,
        request.concurrency_limit, _run_at(request, now), request.parent, request.on,
        registered=False,
    )  # fmt: skip


def _run_at(request: JobRequest, now: float) -> float:
    if request.at is not None:
        return to_timestamp(request.at)
    if request.after is not None:
        return now + seconds(request.after)
    return now


INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""The range of a job's integer settings (``priority``, ``max_attempts``,
``concurrency_limit``) in every store: PostgreSQL keeps them as ``INTEGER``."""


def _integer(field: str, value: object, low: int) -> int:
    """``value`` as a plain int if it is an int (an `enum.IntEnum` member too, not a bool) in
    ``[low, INT_MAX]``; else `TypeError` or `ValueError` naming ``field``."""
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"{field!r} must be an int (got {type(value).__name__} {value!r})"
        raise TypeError(msg)
    if not low <= value <= INT_MAX:
        bound = f"between {low} and {INT_MAX}" if low == INT_MIN else f">= {low} and <= {INT_MAX}"
        msg = f"{field!r} must be {bound} (got {int(value)})"
        raise ValueError(msg)
    return int(value)


def _text(field: str, value: object) -> str:
    """``value`` as a plain str if it is a str (an `enum.StrEnum` member too); else `TypeError`
    naming ``field``."""
    if not isinstance(value, str):
        msg = f"{field!r} must be a string or None (got {type(value).__name__} {value!r})"
        raise TypeError(msg)
    return str.__str__(value)


def _new_job(
    name: str,
    args: str,
    queue: str | None,
    attempts: int | None,
    unique: str | None,
    unique_key: str | None,
    max_attempts: int | None,
    priority: int,
    concurrency_key: str | None,
    concurrency_limit: int,
    run_at: float,
    parent: int | None,
    on: ContinueOn,
    *,
    registered: bool,
) -> NewJob:
    """The record of `build`: the given options over the registered ones (``queue``,
    ``attempts``, the derived key ``unique``; ``registered``: they come from a registry)."""
    if max_attempts is not None:
        attempts = _integer("max_attempts", max_attempts, 1)
    if type(priority) is not int or not INT_MIN <= priority <= INT_MAX:  # the common case first
        priority = _integer("priority", priority, INT_MIN)
    if type(concurrency_limit) is not int or not 1 <= concurrency_limit <= INT_MAX:
        concurrency_limit = _integer("concurrency_limit", concurrency_limit, 1)
    if not (type(queue) is str or queue is None):
        queue = _text("queue", queue)
    if not (unique_key is None or type(unique_key) is str):
        unique_key = _text("unique_key", unique_key)
    if not (concurrency_key is None or type(concurrency_key) is str):
        concurrency_key = _text("concurrency_key", concurrency_key)
    return NewJob(
        name=name,
        queue=queue,
        args=args,
        run_at=run_at,
        max_attempts=attempts,
        unique_key=unique_key if unique_key is not None else unique,
        defined=not registered or attempts is None,
        priority=priority,
        concurrency_key=concurrency_key,
        concurrency_limit=concurrency_limit if concurrency_key is not None else None,
        parent_id=parent,
        continue_on=on,
    )


class _Registered:
    """What `Builder` takes from a job's registration: its definition, queue and attempts."""

    __slots__ = ("attempts", "definition", "queue")

    def __init__(self, definition: JobDefinition, retry: RetryPolicy | None) -> None:
        self.definition = definition
        self.queue = definition.queue
        policy = definition.retry or retry
        self.attempts = policy.max_attempts if policy is not None else None


class Builder:
    """`build` for one registry and default retry policy, without a `JobRequest`: each job
    name's registered settings are looked up once (again if the name is registered anew).

    ``retry`` as for `build`.
    """

    __slots__ = ("_known", "registry", "retry")

    def __init__(self, registry: JobRegistry, retry: RetryPolicy | None) -> None:
        self.registry = registry
        self.retry = retry
        self._known: dict[str, _Registered] = {}

    def build(self, request: JobRequest, now: float) -> NewJob:
        """`build` of ``request`` with this builder's registry and policy."""
        return self.job(
            request.job, request.args, queue=request.queue, unique_key=request.unique_key,
            max_attempts=request.max_attempts, priority=request.priority,
            concurrency_key=request.concurrency_key,
            concurrency_limit=request.concurrency_limit, run_at=_run_at(request, now),
            parent=request.parent, on=request.on,
        )  # fmt: skip

    def job(
        self,
        name: str,
        args: object,
        *,
        queue: str | None,
        unique_key: str | None,
        max_attempts: int | None,
        priority: int,
        concurrency_key: str | None,
        concurrency_limit: int,
        run_at: float,
        parent: int | None = None,
        on: ContinueOn = ContinueOn.SUCCESS,
    ) -> NewJob:
        """The store record of the job ``name`` with these options (as `JobRequest`'s), due at
        ``run_at``; raises as `build`."""
        definition = self.registry.get(name)
        known = self._known.get(name)
        if known is None or known.definition is not definition:
            known = self._known[name] = _Registered(definition, self.retry)
        if args is None and not definition.takes_arg:
            text = "null"  # what encode returns for it
        else:
            text = self.registry.encode(definition, args)
        return _new_job(
            name, text, queue or known.queue, known.attempts,
            f"{name}:{text}" if definition.unique else None, unique_key, max_attempts, priority,
            concurrency_key, concurrency_limit, run_at, parent, on, registered=True,
        )  # fmt: skip


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
