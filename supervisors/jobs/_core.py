"""The state shared by a `JobSystem`'s façade, its queue runners and its scheduler."""

from __future__ import annotations

import functools
import logging
import math
import random
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Protocol

import attrs
import trio

from ._clock import Clock
from ._errors import JobError
from ._failures import FailureLog
from ._model import ClaimedJob, RetryPolicy
from ._progress import JobContext, ReportSink
from ._registry import JobRegistry
from ._signal import Signal
from ._store import Store

logger = logging.getLogger("supervisors.jobs")

_current: ContextVar[tuple[ClaimedJob, ReportSink] | None] = ContextVar(
    "supervisors.jobs.current", default=None
)


def current_job() -> JobContext:
    """The job whose function is running in this task or its worker thread: its id, name,
    queue, attempt, ... (for a continuation, ``parent_id`` and ``parent_result``), and
    `JobContext.progress` / `JobContext.log` to report on its run.

    Raises `JobError` outside a job function.
    """
    current = _current.get()
    if current is None:
        msg = "current_job() was called outside a job function; call it from inside one"
        raise JobError(msg)
    return JobContext(*current)


@attrs.frozen(kw_only=True)
class Settings:
    """The timing knobs of a job system (see `JobSystem` for their meaning and defaults)."""

    lease: float
    heartbeat: float
    poll_interval: float
    grace: float
    keep_succeeded: float | None
    keep_dead: float | None
    keep_tracebacks: int
    prune_interval: float
    progress_interval: float = 1.0
    max_log_lines: int = 1000
    keep_ledger: int = 1000
    max_result_size: int = 64 * 1024


class Slots(Protocol):
    """A queue's runner as `JobSystem.enqueue` sees it: free slots that a job inserted already
    claimed (`Store.insert_and_claim`) goes straight to."""

    def reserve(self) -> bool:
        """Take a free slot if there is one and the runner still claims (true); `accept` or
        `release` follows."""

    def release(self) -> None:
        """Give back the slot of a `reserve` whose job was not claimed."""

    def accept(self, job: ClaimedJob) -> None:
        """Run ``job``, claimed for this system, in the slot of a `reserve`."""


class Core:
    """Store, registry, clock and the in-process wake-ups shared by the parts of a job system."""

    def __init__(
        self,
        *,
        store: Store,
        registry: JobRegistry,
        clock: Clock,
        retry: RetryPolicy,
        queues: Mapping[str, int],
        settings: Settings,
        timeout: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.timeout = timeout
        """The time limit of jobs registered without one; ``None``: no limit."""
        self.rng = rng if rng is not None else random.Random()
        """Draws the retries' jitter."""
        self.failures = FailureLog()
        """Logs failed attempts, summarising runs of identical ones."""
        self.registry = registry
        self.clock = clock
        self.retry = retry
        self.queues = dict(queues)
        self.settings = settings
        host = store.host_id
        self.owner = f"{host}/{uuid.uuid4().hex[:8]}" if host else f"host-{uuid.uuid4().hex[:12]}"
        """The lease owner of the jobs this system claims (under the store's host id, if any)."""
        self.wake_gen = dict.fromkeys(self.queues, 0)
        self.queue_signals = {q: Signal() for q in self.queues}
        self.scheduler_signal = Signal()
        self._settled: trio.Event | None = None
        self.settled_count = 0
        """How many times `notify_settled` was called."""
        self.local_cancels = LocalCancels()
        """Running jobs of this process by id → what cancels their run here (`JobSystem.cancel`
        of a job running in this process takes effect at once, not at the next heartbeat)."""
        self.wake_scheduler_on_settle = False
        """Set when a schedule's next occurrence waits for the previous run (``RUN_ALL``)."""
        self.runs = Runs()
        """The jobs running in this process now, and the observers of their runs (the dashboard)."""
        self.slots: dict[str, Slots] = {}
        """The runner of each queue running in this process now (registered by the runner)."""

    def wake_queue(self, queue: str) -> None:
        """Tell the runner of ``queue`` (if it runs in this process) that jobs may be ready."""
        signal = self.queue_signals.get(queue)
        if signal is not None:
            self.wake_gen[queue] += 1
            signal.set()

    def wake(self, queue: str | None) -> None:
        """Wake the runner of ``queue``, or with ``None`` every runner and the scheduler."""
        if queue is not None:
            self.wake_queue(queue)
            return
        for each in self.queues:
            self.wake_queue(each)
        self.wake_scheduler()

    def wake_scheduler(self) -> None:
        """Tell the scheduler that the next due time may have moved earlier."""
        self.scheduler_signal.set()

    def notify_settled(self) -> None:
        """Wake the tasks waiting in `wait_settled` (and the scheduler, if it waits for runs to
        finish: ``wake_scheduler_on_settle``)."""
        if self.wake_scheduler_on_settle:
            self.scheduler_signal.set()
        self.settled_count += 1
        event = self._settled
        if event is not None:
            self._settled = None
            event.set()

    async def wait_settled(self, max_wait: float = math.inf, *, since: int | None = None) -> None:
        """Wait until some job's attempt is recorded in this process, or ``max_wait`` seconds.

        With ``since`` (a `settled_count` read before looking at the store), returns at once if
        an attempt was recorded after that read, so a record made while the caller was reading
        the store is not missed.
        """
        if since is not None and since != self.settled_count:
            await trio.lowlevel.checkpoint()
            return
        if self._settled is None:
            self._settled = trio.Event()
        event = self._settled
        with trio.move_on_after(max_wait):
            await event.wait()


class LocalCancels:
    """The jobs claimed by this process's runners, by id → the runner's ``cancel(job_id)``.

    Runners write ``by_id`` directly (a dict operation per job); `get` gives the zero-argument
    canceller `JobSystem.cancel` calls.
    """

    __slots__ = ("by_id",)

    def __init__(self) -> None:
        self.by_id: dict[int, Callable[[int], None]] = {}

    def get(self, job_id: int) -> Callable[[], None] | None:
        """What cancels the run of ``job_id`` here; ``None`` if no runner here has it."""
        cancel = self.by_id.get(job_id)
        return None if cancel is None else functools.partial(cancel, job_id)


@attrs.frozen(kw_only=True)
class RunningJob:
    """A job running in this process: which queue's worker runs it, since when (``trio.current_time()``)."""

    id: int
    name: str
    queue: str
    attempt: int
    started: float


RunObserver = Callable[[RunningJob, float], None]
"""Called with a job whose run in this process ended (whatever its outcome) and its duration in seconds."""


class Runs:
    """The runs in progress in this process, by job id, and the observers told when one ends.

    Costs a dict insert and delete per run (the `RunningJob` records are made only when read
    or when an observer is told); observers are called synchronously and must be quick (one
    that raises is logged and removed).
    """

    __slots__ = ("_started", "observers")

    def __init__(self) -> None:
        self._started: dict[int, tuple[ClaimedJob, float]] = {}
        self.observers: list[RunObserver] = []

    @property
    def running(self) -> dict[int, RunningJob]:
        """The runs in progress now, by job id, in the order they began."""
        return {job_id: _running(job, started) for job_id, (job, started) in self._started.items()}

    def begin(self, job: ClaimedJob, started: float) -> None:
        """``job`` started at ``started`` (``trio.current_time()``)."""
        self._started[job.id] = (job, started)

    def end(self, job: ClaimedJob) -> None:
        run = self._started.pop(job.id, None)
        if run is None or not self.observers:
            return
        took = trio.current_time() - run[1]
        record = _running(*run)
        for observer in tuple(self.observers):
            try:
                observer(record, took)
            except Exception:
                logger.exception("job run observer %r raised; it is removed", observer)
                self.observers.remove(observer)


def _running(job: ClaimedJob, started: float) -> RunningJob:
    return RunningJob(id=job.id, name=job.name, queue=job.queue, attempt=job.attempt, started=started)
