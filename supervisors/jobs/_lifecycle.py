"""The job lifecycle, once: which transitions exist, and what an attempt, a lease and a retry mean.

Every store obeys this module: the SQL statements (`_sql`) take the states each operation may
act on from `TRANSITIONS`, and the contract suite checks every (state, operation) pair against
the table. The runner asks `retry_at` what a failed attempt leads to.

Terms:

- An *attempt* is one claim of a job. Claiming increments ``attempt``; nothing ever decrements
  it, so ``(job id, attempt)`` names one run uniquely and serves as its *fencing token*.
- A *lease* is the claim's time limit (``lease_until``), renewed by the runner's heartbeat. Only
  the holder of the current token may renew it or record the attempt's outcome; a stale token
  is refused.
- An attempt ends in one of four ways: success, failure (retry later or dead), *interruption*
  (the runner gave the job back without an outcome: graceful stop, lease lost to a stall) or
  *expiry* (the lease ran out: the host died or stalled). Interruption and expiry count the
  attempt and record why; the job is enqueued again if it has attempts left, else dead.
- A *continuation* waits (``AWAITING``) for its *parent* to end. Every operation that ends a
  job (success, death, cancellation, deletion) resolves the job's awaiting continuations in
  the same transaction: those whose `ContinueOn` wants that end are enqueued (`Op.CONTINUE`),
  the others cancelled (`Op.ABANDON`), which in turn resolves theirs (`continues`).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping

from ._model import ContinueOn, Job, JobState, RetryPolicy

LEASE_EXPIRED = (
    "lease expired: the process running attempt {attempt} died or stopped renewing its lease"
)
"""The error recorded for an attempt whose lease expired."""

CANCELLED = "cancelled: attempt {attempt} was cancelled on request (JobSystem.cancel)"
"""The error recorded for an attempt whose cancellation was requested and that then ended
without success."""

ABANDONED = (
    "not run: its parent, job {parent}, {ended}; this continuation runs on {on} of its parent"
)
"""The error recorded (as attempt 0) for a continuation cancelled because of how its parent
ended (`Op.ABANDON`)."""

INTERRUPTED = "interrupted: attempt {attempt} was stopped before it finished (host stopping)"
"""The error recorded for an attempt given back by its runner without an outcome."""


class Op(enum.Enum):
    """The operations that change a job's state (the columns of `TRANSITIONS`)."""

    ENQUEUE = "enqueue"
    """Insert a job due now (``Store.insert``, ``Store.fire``)."""
    SCHEDULE = "schedule"
    """Insert a job due later."""
    PROMOTE = "promote"
    """A due scheduled or retrying job becomes ready (``Store.promote_due``)."""
    CLAIM = "claim"
    """A runner takes the job: a new attempt and a lease (``Store.claim``)."""
    RENEW = "renew"
    """The lease holder extends the lease (``Store.renew``)."""
    SUCCEED = "succeed"
    """The lease holder records success (``Store.settle``)."""
    FAIL = "fail"
    """The lease holder records a failure with a retry time."""
    KILL = "kill"
    """The lease holder records a failure without a retry time (last attempt, or cannot run)."""
    INTERRUPT = "interrupt"
    """The lease holder gives the job back without an outcome; attempts are left."""
    INTERRUPT_LAST = "interrupt_last"
    """The same, on the job's last attempt."""
    EXPIRE = "expire"
    """The lease ran out (``Store.requeue_expired``); attempts are left."""
    EXPIRE_LAST = "expire_last"
    """The lease ran out on the job's last attempt."""
    RETRY = "retry"
    """An operator runs the job now (``Store.retry``)."""
    PRUNE = "prune"
    """Retention deletes the finished job (``Store.prune``)."""
    CANCEL = "cancel"
    """An operator cancels the job (``Store.cancel``): a job not running is cancelled at once;
    a running one is flagged (``cancel_requested``) and keeps running until its runner sees it."""
    CANCEL_END = "cancel_end"
    """An attempt of a job whose cancellation was requested ends without success: its runner
    cancelled it, or it failed, was interrupted or its lease expired (``Store.settle``,
    ``Store.requeue_expired``). It does not run again."""
    DELETE = "delete"
    """An operator deletes the job and its errors (``Store.delete``)."""
    REQUEUE = "requeue"
    """An operator runs the job again now, finished or not yet due (``Store.requeue``)."""
    AWAIT = "await"
    """Insert a continuation whose parent has not ended (``NewJob.parent_id``)."""
    CONTINUE = "continue"
    """The continuation's parent ended as its `ContinueOn` wants: it becomes due now."""
    ABANDON = "abandon"
    """The continuation's parent ended otherwise: it never runs (also at insert, for a parent
    that had already ended so)."""


_S = JobState
DELETED = None
"""The target of `Op.PRUNE`: the job no longer exists."""

TRANSITIONS: Mapping[tuple[JobState | None, Op], JobState | None] = {
    (None, Op.ENQUEUE): _S.ENQUEUED,
    (None, Op.SCHEDULE): _S.SCHEDULED,
    (None, Op.AWAIT): _S.AWAITING,
    (None, Op.ABANDON): _S.CANCELLED,
    (_S.AWAITING, Op.CONTINUE): _S.ENQUEUED,
    (_S.AWAITING, Op.ABANDON): _S.CANCELLED,
    (_S.AWAITING, Op.CANCEL): _S.CANCELLED,
    (_S.AWAITING, Op.DELETE): DELETED,
    (_S.SCHEDULED, Op.PROMOTE): _S.ENQUEUED,
    (_S.RETRYING, Op.PROMOTE): _S.ENQUEUED,
    (_S.ENQUEUED, Op.CLAIM): _S.RUNNING,
    (_S.RUNNING, Op.RENEW): _S.RUNNING,
    (_S.RUNNING, Op.SUCCEED): _S.SUCCEEDED,
    (_S.RUNNING, Op.FAIL): _S.RETRYING,
    (_S.RUNNING, Op.KILL): _S.DEAD,
    (_S.RUNNING, Op.INTERRUPT): _S.ENQUEUED,
    (_S.RUNNING, Op.INTERRUPT_LAST): _S.DEAD,
    (_S.RUNNING, Op.EXPIRE): _S.ENQUEUED,
    (_S.RUNNING, Op.EXPIRE_LAST): _S.DEAD,
    (_S.DEAD, Op.RETRY): _S.ENQUEUED,
    (_S.RETRYING, Op.RETRY): _S.ENQUEUED,
    (_S.SCHEDULED, Op.RETRY): _S.ENQUEUED,
    (_S.SUCCEEDED, Op.PRUNE): DELETED,
    (_S.DEAD, Op.PRUNE): DELETED,
    (_S.CANCELLED, Op.PRUNE): DELETED,
    (_S.SCHEDULED, Op.CANCEL): _S.CANCELLED,
    (_S.ENQUEUED, Op.CANCEL): _S.CANCELLED,
    (_S.RETRYING, Op.CANCEL): _S.CANCELLED,
    (_S.RUNNING, Op.CANCEL): _S.RUNNING,
    (_S.RUNNING, Op.CANCEL_END): _S.CANCELLED,
    (_S.SCHEDULED, Op.DELETE): DELETED,
    (_S.ENQUEUED, Op.DELETE): DELETED,
    (_S.RETRYING, Op.DELETE): DELETED,
    (_S.SUCCEEDED, Op.DELETE): DELETED,
    (_S.DEAD, Op.DELETE): DELETED,
    (_S.CANCELLED, Op.DELETE): DELETED,
    (_S.SCHEDULED, Op.REQUEUE): _S.ENQUEUED,
    (_S.RETRYING, Op.REQUEUE): _S.ENQUEUED,
    (_S.SUCCEEDED, Op.REQUEUE): _S.ENQUEUED,
    (_S.DEAD, Op.REQUEUE): _S.ENQUEUED,
    (_S.CANCELLED, Op.REQUEUE): _S.ENQUEUED,
}
"""(state, operation) → state after it. A pair that is absent is refused: the store leaves the
job as it was (and says so where the operation reports per job, e.g. a stale token)."""


def sources(*ops: Op) -> tuple[JobState, ...]:
    """The states the operations ``ops`` act on, in `JobState` declaration order."""
    found = {s for (s, op) in TRANSITIONS if op in ops and s is not None}
    return tuple(s for s in JobState if s in found)


def sources_to(op: Op, target: JobState | None) -> tuple[JobState, ...]:
    """The states from which ``op`` leads to ``target``, in `JobState` declaration order."""
    found = {s for (s, o), t in TRANSITIONS.items() if o is op and t is target and s is not None}
    return tuple(s for s in JobState if s in found)


PARENT_ENDS = (_S.SUCCEEDED, _S.DEAD, _S.CANCELLED)
"""The ends of a parent that resolve its continuations (a deleted parent counts as
``CANCELLED``)."""


def continues(on: ContinueOn, parent_end: JobState) -> bool:
    """Whether a continuation waiting with ``on`` runs when its parent ends in ``parent_end``
    (one of `PARENT_ENDS`); if not, it is abandoned (`Op.ABANDON`)."""
    if on is ContinueOn.ANY:
        return True
    return (parent_end is _S.SUCCEEDED) == (on is ContinueOn.SUCCESS)


def wanting(parent_end: JobState) -> tuple[ContinueOn, ...]:
    """The `ContinueOn` values that run on ``parent_end``, in declaration order."""
    return tuple(on for on in ContinueOn if continues(on, parent_end))


FENCED = frozenset({Op.RENEW, Op.SUCCEED, Op.FAIL, Op.KILL, Op.INTERRUPT, Op.INTERRUPT_LAST})
"""The operations that need the current fencing token ``(job id, attempt)`` and lease owner."""


def ended_by(job: Job, attempt: int) -> bool:
    """Whether the store holds ``job`` as ended by its own attempt ``attempt``: succeeded under
    that attempt, or with an error recorded for it other than `LEASE_EXPIRED` (a failure, a
    cancellation, an interruption, all written under the attempt's fencing token). False when
    the attempt was recovered by lease expiry instead, or has not ended.

    A runner whose outcome was refused asks this to tell a lost lease from a write that had
    already committed: a write retried after the connection broke during its ``COMMIT`` is
    refused by the fence, since the first try ended the attempt."""
    if job.state is JobState.SUCCEEDED and job.attempt == attempt:
        return True
    expired = LEASE_EXPIRED.format(attempt=attempt)
    return any(e.attempt == attempt and e.error != expired for e in job.errors)


def retry_at(
    policy: RetryPolicy, *, attempt: int, max_attempts: int, now: float, rng: random.Random
) -> float | None:
    """When a job whose attempt ``attempt`` failed runs again; ``None`` means it is dead."""
    if attempt >= max_attempts:
        return None
    return now + policy.delay(attempt, rng)


def keeps_traceback(attempt: int, max_attempts: int, keep: int) -> bool:
    """Whether the failure of attempt ``attempt`` keeps its traceback when a job keeps ``keep``
    of them: the first attempt's and those of its last ``keep - 1`` attempts."""
    if keep <= 0:
        return False
    return attempt == 1 or attempt > max_attempts - (keep - 1)
