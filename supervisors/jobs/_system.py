"""`JobSystem`: the façade users enqueue through, and the factory of its supervised subtree."""

from __future__ import annotations

import builtins
import functools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import NoReturn, final

import attrs

from supervisors import ChildSpec, Restart, Strategy, Supervisor

from ._clock import Clock, SystemClock
from ._core import Core, RunningJob, Settings
from ._errors import JobError
from ._model import (
    ContinueOn,
    HostInfo,
    Job,
    JobCounts,
    JobState,
    NewJob,
    RateLimit,
    RetryPolicy,
    rate_limit_row,
    rate_limits_of,
)
from ._query import JobPage, JobQuery
from ._recurring import Misfire, Recurring
from ._registry import JobRegistry
from ._reports import AttemptProgress, LedgerEntry, ScheduleInfo
from ._requests import FINISHED_STATES, Builder, JobRequest, check_retry, found, seconds
from ._resources import RegistryResources
from ._scheduler import Prepared, prune, reclaim
from ._services import SchedulerService, StoreService, queue_worker
from ._store import Store


def _store_clock(store: Store) -> Clock:
    """The clock a store keeps (attribute ``clock``, e.g. the database's), else `SystemClock`."""
    own = getattr(store, "clock", None)
    return own if isinstance(own, Clock) else SystemClock()


def _check_queues(queues: Mapping[str, int]) -> dict[str, int]:
    if not queues:
        msg = "'queues' must name at least one queue, e.g. {'default': 10}"
        raise ValueError(msg)
    for name, limit in queues.items():
        if not isinstance(name, str) or not name or "/" in name:
            msg = f"queue names must be non-empty strings without '/' (got {name!r})"
            raise ValueError(msg)
        if not isinstance(limit, int) or limit < 1:
            msg = f"the concurrency of queue {name!r} must be an int >= 1 (got {limit!r})"
            raise ValueError(msg)
    return dict(queues)


@final
class JobSystem:
    """Durable background jobs: a store, a registry of job functions, queues and schedules.

    Add ``jobs.child_spec()`` to a supervision tree to run the jobs; the façade methods
    (`enqueue`, `schedule`, `get`, ...) work whether or not the subtree is running, from any task
    of the Trio program.

    - ``store``: where jobs live (`SQLiteStore` for durable jobs, `InMemoryStore` for tests).
    - ``registry``: the job functions.
    - ``queues``: queue name → how many jobs of that queue run at once. Defaults to
      ``{"default": 10}``. Only these queues are run by this system.
    - ``recurring``: `Recurring` schedules; their names must be unique, their jobs registered and
      their arguments valid (checked here).
    - ``retry``: the `RetryPolicy` of jobs registered without one. Defaults to ``RetryPolicy()``:
      20 attempts, backoff ``min(3600, 2 ** (n - 1))`` s ±10 %.
    - ``clock``: the wall clock; defaults to the store's own clock if it has one (a
      `PostgresStore`'s is the database's clock, shared by every host), else `SystemClock`. Use `TrioWallClock` under
      ``trio.testing.MockClock``.
    - ``lease``: how long a claimed job stays leased without a heartbeat, in seconds; default
      30.0. A job whose host died is run again at most ``lease + heartbeat`` seconds after the
      host's last heartbeat.
    - ``heartbeat``: how often running jobs' leases are renewed and expired leases are looked
      for, in seconds; default 10.0; must be less than ``lease``.
    - ``poll_interval``: with a store that other processes write to (SQLite), how often to look
      for jobs they enqueued, in seconds; default 1.0. Jobs enqueued through this object wake
      the workers at once.
    - ``grace``: on a graceful stop, how long running jobs may take to finish before they are
      cancelled and returned to their queue, in seconds; default 10.0.
    - ``keep_succeeded``: succeeded jobs (with their results and errors) are deleted this long
      after they finished, in seconds or a timedelta; default one day (long enough to answer
      "did last night's job run?" and to read its result); ``None`` keeps them forever.
    - ``keep_dead``: the same for dead jobs; default seven days (a week to notice, fix and
      retry them by hand, as Sidekiq's dead set keeps six months at most); ``None`` keeps them
      forever.
    - ``keep_tracebacks``: how many failed attempts of a job keep their traceback: the first
      attempt and the last ``keep_tracebacks - 1`` of its attempts; default 5. The others keep
      their one-line error only (a job failing 20 times stores 5 tracebacks, not 20).
    - ``timeout``: the time limit of one attempt of a job registered without ``timeout=``, in
      seconds or a timedelta; default one hour; ``None`` means no limit. An attempt that runs
      longer is cancelled and fails with ``TimeoutError``, retried per its policy, so a hung
      job dies after its attempts instead of holding a worker slot for ever.
    - ``progress_interval``: a running job's progress and log lines (`JobContext.progress`,
      `JobContext.log`) are written at most this often, in seconds, per queue; default 1.0.
      What is reported meanwhile waits (the latest progress wins); an attempt's last reports
      are always written when it ends, before its outcome.
    - ``max_log_lines``: log lines kept per attempt; default 1000. Lines past it are dropped
      and counted (`AttemptProgress.dropped`).
    - ``keep_ledger``: fire ledger entries kept per recurring schedule (`ledger`); default
      1000. Older ones are deleted by the pruning pass (every minute).
    - ``max_result_size``: the largest result a job may return, in bytes of its JSON; default
      65536 (64 KiB). A larger one is not recorded: the attempt fails with `JobResultError`
      (naming the job and the limit) and is retried per the job's policy. Return where the
      data went (a path, a key), not the data.
    - ``rng``: the random generator of the retries' jitter; default a fresh
      ``random.Random()``. Pass ``random.Random(seed)`` for reproducible delays.
    - ``name``: the name of the subtree in the supervision tree; default ``"jobs"``.
    """

    def __init__(
        self,
        *,
        store: Store,
        registry: JobRegistry,
        queues: Mapping[str, int] | None = None,
        recurring: Sequence[Recurring] = (),
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        lease: float = 30.0,
        heartbeat: float = 10.0,
        poll_interval: float = 1.0,
        grace: float = 10.0,
        keep_succeeded: float | timedelta | None = timedelta(days=1),
        keep_dead: float | timedelta | None = timedelta(days=7),
        keep_tracebacks: int = 5,
        timeout: float | timedelta | None = timedelta(hours=1),
        progress_interval: float = 1.0,
        max_log_lines: int = 1000,
        keep_ledger: int = 1000,
        max_result_size: int = 64 * 1024,
        rng: random.Random | None = None,
        name: str = "jobs",
    ) -> None:
        for label, value in (("lease", lease), ("heartbeat", heartbeat)):
            if not value > 0:
                msg = f"{label!r} must be > 0 (got {value!r})"
                raise ValueError(msg)
        if heartbeat >= lease:
            msg = f"'heartbeat' ({heartbeat}) must be less than 'lease' ({lease})"
            raise ValueError(msg)
        if not poll_interval > 0 or not grace >= 0:
            msg = f"'poll_interval' must be > 0 and 'grace' >= 0 (got {poll_interval}, {grace})"
            raise ValueError(msg)
        keep = None if keep_succeeded is None else seconds(keep_succeeded)
        keep_dead_s = None if keep_dead is None else seconds(keep_dead)
        limit = None if timeout is None else seconds(timeout)
        if keep_tracebacks < 0:
            msg = f"'keep_tracebacks' must be >= 0 (got {keep_tracebacks})"
            raise ValueError(msg)
        if not progress_interval >= 0 or max_log_lines < 0 or keep_ledger < 1:
            msg = (
                "'progress_interval' must be >= 0, 'max_log_lines' >= 0 and 'keep_ledger' >= 1 "
                f"(got {progress_interval!r}, {max_log_lines!r}, {keep_ledger!r})"
            )
            raise ValueError(msg)
        if max_result_size < 0:
            msg = f"'max_result_size' must be >= 0 bytes (got {max_result_size})"
            raise ValueError(msg)
        if limit is not None and not limit > 0:
            msg = f"'timeout' must be > 0 seconds or None (got {timeout!r})"
            raise ValueError(msg)
        self.name = name
        self.registry = registry
        retry = retry if retry is not None else RetryPolicy()
        self._core = Core(
            store=store,
            registry=registry,
            clock=clock if clock is not None else _store_clock(store),
            retry=retry,
            queues=_check_queues(queues if queues is not None else {"default": 10}),
            settings=Settings(
                lease=float(lease),
                heartbeat=float(heartbeat),
                poll_interval=float(poll_interval),
                grace=float(grace),
                keep_succeeded=keep,
                keep_dead=keep_dead_s,
                keep_tracebacks=keep_tracebacks,
                prune_interval=60.0,
                progress_interval=float(progress_interval),
                max_log_lines=max_log_lines,
                keep_ledger=keep_ledger,
                max_result_size=max_result_size,
            ),
            timeout=limit,
            rng=rng,
        )
        self._builder = Builder(registry, retry)
        self._recurring = self._prepare(recurring)
        self._schedules_recorded = False
        self._core.wake_scheduler_on_settle = any(
            r.misfire is Misfire.RUN_ALL and not r.overlap for r in recurring
        )

    def _prepare(self, recurring: Sequence[Recurring]) -> tuple[Prepared, ...]:
        seen: set[str] = set()
        out = []
        for spec in recurring:
            if spec.name in seen:
                msg = f"two recurring schedules are named {spec.name!r}; names must be unique"
                raise ValueError(msg)
            seen.add(spec.name)
            definition = self.registry.get(spec.job)
            args = self.registry.encode(definition, spec.args)
            queue = spec.queue or definition.queue
            self._check_queue(queue, f"recurring schedule {spec.name!r}")
            attempts = (definition.retry or self._core.retry).max_attempts
            out.append(Prepared(spec, queue, args, attempts))
        return tuple(out)

    def __repr__(self) -> str:
        return f"<JobSystem {self.name!r} store={self._core.store!r} queues={self._core.queues}>"

    @property
    def store(self) -> Store:
        """The store this system uses."""
        return self._core.store

    @property
    def queues(self) -> Mapping[str, int]:
        """Queue name → concurrency, as configured."""
        return dict(self._core.queues)

    @property
    def recurring(self) -> tuple[Recurring, ...]:
        """The `Recurring` schedules of this system, as given."""
        return tuple(prepared.spec for prepared in self._recurring)

    def describe(self) -> dict[str, object]:
        """The effective configuration of this system as plain JSON-able data, for display (the
        dashboard's config page): ``name``, ``store`` (its ``repr``, which never holds a
        password), ``queues`` (name → concurrency), ``lease``, ``heartbeat``,
        ``poll_interval``, ``grace``, ``keep_succeeded`` and ``keep_dead`` (seconds or
        ``None``), ``keep_tracebacks``, ``timeout`` (seconds or ``None``), ``retry`` (the
        default `RetryPolicy`'s fields) and ``recurring`` (the schedules' names)."""
        core = self._core
        settings = core.settings
        return {
            "name": self.name,
            "store": repr(core.store),
            "queues": dict(core.queues),
            "lease": settings.lease,
            "heartbeat": settings.heartbeat,
            "poll_interval": settings.poll_interval,
            "grace": settings.grace,
            "keep_succeeded": settings.keep_succeeded,
            "keep_dead": settings.keep_dead,
            "keep_tracebacks": settings.keep_tracebacks,
            "timeout": core.timeout,
            "retry": attrs.asdict(core.retry),
            "recurring": [prepared.spec.name for prepared in self._recurring],
        }

    def running(self) -> tuple[RunningJob, ...]:
        """The jobs running in this process now (claimed by this system's workers), by start.

        Jobs that other hosts run are not included: ask the store (`list` with
        ``state=JobState.RUNNING``) for those.
        """
        return tuple(self._core.runs.running.values())

    def observe_runs(self, callback: Callable[[RunningJob, float], None]) -> Callable[[], None]:
        """Call ``callback(run, seconds)`` whenever a job's run in this process ends, whatever
        its outcome; return a function that stops the calls. The callback runs in the worker's
        task: it must be quick and must not block (one that raises is logged and removed).
        The dashboard's job duration histogram is fed this way."""
        observers = self._core.runs.observers
        observers.append(callback)

        def stop() -> None:
            if callback in observers:
                observers.remove(callback)

        return stop

    # --- the subtree -------------------------------------------------------------------------

    def child_spec(self) -> Supervisor:
        """The supervised subtree that runs the jobs; add it to a tree's ``children``.

        A `Supervisor` named ``name`` (rest-for-one; stopped in reverse order) with children
        ``store`` (opens the store on start, closes it on stop), ``workers`` (a one-for-one
        `Supervisor` with one worker per queue, named after the queue) and ``scheduler``. Run
        one subtree per `JobSystem` at a time.
        """
        core = self._core
        return Supervisor(
            name=self.name,
            strategy=Strategy.REST_FOR_ONE,
            children=[
                ChildSpec(name="store", factory=functools.partial(StoreService, core)),
                Supervisor(
                    name="workers",
                    children=[
                        attrs.evolve(spec, factory=RegistryResources(spec.factory, self.registry))
                        for spec in (queue_worker(core, q) for q in core.queues)
                    ],
                ),
                ChildSpec(
                    name="scheduler",
                    factory=functools.partial(SchedulerService, core, self._recurring),
                    restart=Restart.PERMANENT,
                ),
            ],
        )

    # --- enqueueing ----------------------------------------------------------------------------

    def _check_queue(self, queue: str, what: str) -> None:
        if queue not in self._core.queues:
            self._unknown_queue(queue, what)

    def _unknown_queue(self, queue: str, what: str) -> NoReturn:
        msg = (
            f"{what} targets queue {queue!r}, which this job system does not run "
            f"(queues: {sorted(self._core.queues)}); add it to JobSystem(queues=...), or "
            "enqueue it with JobClient for the host that runs it"
        )
        raise JobError(msg)

    async def _insert(self, jobs: list[NewJob], now: float) -> list[int]:
        core = self._core
        ids = await core.store.insert(jobs, now=now)
        for queue in {j.queue for j in jobs if j.run_at <= now and j.queue is not None}:
            core.wake_queue(queue)
        scheduled = any(j.run_at > now for j in jobs)
        if scheduled:
            core.wake_scheduler()
        return ids

    def _build(self, request: JobRequest, now: float) -> NewJob:
        job = self._builder.build(request, now)
        if job.queue is None or job.queue not in self._core.queues:  # a registry sets it
            self._unknown_queue(job.queue or "", f"job {request.job!r}")
        return job

    async def enqueue(
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
        """Enqueue the job ``job`` with ``args`` to run now (fire-and-forget); return its id.

        ``args`` is an instance of the job function's argument type (or plain JSON), converted
        with the registry's ``cattrs`` converter. Raises `UnknownJobError` for an unregistered
        name, `JobArgumentsError` for arguments that do not convert, `JobError` for a queue this
        system does not run. For a unique job whose copy is unfinished, returns that copy's id.

        ``priority`` (default 0): within its queue, a job of higher priority is claimed before
        any of lower priority; equal priorities in the order they became due (``run_at``), then
        by id. ``concurrency_key``: at most ``concurrency_limit`` (default 1) jobs with this key
        run at once, on every host of the store; the others wait, enqueued, and the queue's
        other jobs are claimed past them.
        """
        core = self._core
        now = core.clock.now()
        # `_build` and `_insert` without a JobRequest: the common path of the façade.
        new = self._builder.job(
            job, args, queue=queue, unique_key=unique_key, max_attempts=max_attempts,
            priority=priority, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit, run_at=now,
        )  # fmt: skip
        target = new.queue
        if target is None or target not in core.queues:  # a registry sets the queue
            self._unknown_queue(target or "", f"job {job!r}")
        slots = core.slots.get(target)
        if slots is None or not slots.reserve():
            (job_id,) = await core.store.insert((new,), now=now)
            core.wake_queue(target)
            return job_id
        # A slot is free here: the job may be claimed in its own insert (no claim to wait for).
        try:
            job_id, claimed = await core.store.insert_and_claim(
                new, now=now, owner=core.owner, lease_until=now + core.settings.lease
            )
        except BaseException:
            slots.release()
            raise
        if claimed is None:
            slots.release()
            core.wake_queue(target)
        else:
            slots.accept(claimed)
        return job_id

    async def schedule(
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
        """Like `enqueue`, but the job runs at ``at`` (an aware datetime) or ``after`` seconds.

        Exactly one of ``at`` and ``after`` must be given. A time in the past runs at once.
        ``priority`` and the concurrency key are as for `enqueue`.
        """
        request = JobRequest.scheduled(
            job, args, at=at, after=after, queue=queue, unique_key=unique_key,
            max_attempts=max_attempts, priority=priority, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
        )  # fmt: skip
        now = self._core.clock.now()
        return (await self._insert([self._build(request, now)], now))[0]

    async def continue_with(
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
        """Enqueue ``job`` to run once the job ``parent_id`` ends as ``on`` says; return its id.

        ``on``: `ContinueOn.SUCCESS` (default: the parent succeeded), ``FAILURE`` (it is dead or
        cancelled) or ``ANY``. Until then the continuation is ``AWAITING``, in the store: the
        link survives restarts. The parent's end enqueues it in the same transaction (due at
        once, ordered in its queue as any job); its function reads the parent's result as
        ``current_job().parent_result`` (the JSON form; ``None`` unless the parent succeeded).
        A parent that ends otherwise cancels the continuation (an `AttemptError` of attempt 0
        says why), and so its own continuations in turn; deleting or cancelling the parent
        counts as its cancellation. A parent that has already ended resolves the continuation
        at once. Raises `JobNotFoundError` for an unknown (or pruned) parent; otherwise as
        `enqueue`.
        """
        request = JobRequest(
            job=job, args=args, queue=queue, unique_key=unique_key, max_attempts=max_attempts,
            priority=priority, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit, parent=parent_id, on=on,
        )  # fmt: skip
        now = self._core.clock.now()
        return (await self._insert([self._build(request, now)], now))[0]

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> list[int]:
        """Enqueue several jobs in one store transaction; return their ids in order.

        Every request is validated before anything is written: one bad request raises and
        enqueues nothing.
        """
        now = self._core.clock.now()
        jobs = [self._build(r, now) for r in requests]
        if not jobs:
            return []
        return await self._insert(jobs, now)

    # --- inspecting and managing ---------------------------------------------------------------

    async def get(self, job_id: int) -> Job:
        """The job ``job_id``; raises `JobNotFoundError` if there is none (or it was pruned)."""
        return found(job_id, await self._core.store.get(job_id))

    async def progress(self, job_id: int) -> tuple[AttemptProgress, ...]:
        """What each attempt of the job reported (`JobContext.progress` and `JobContext.log`),
        by attempt, as last written (while it runs: at most ``progress_interval`` seconds old).
        Attempts that reported nothing are absent. Raises `JobNotFoundError`."""
        return tuple(await self._core.store.progress(job_id))

    async def list(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs in ``state`` and ``queue`` (``None`` = any), by id, ``limit`` from ``offset``."""
        return await self._core.store.list(state=state, queue=queue, limit=limit, offset=offset)

    async def search(self, query: JobQuery | None = None) -> JobPage:
        """One page of the jobs ``query`` matches, newest first (see `JobQuery` for the filters
        and keyset paging). ``None``: the newest 50 jobs. Raises `JobQueryError` for bad input
        (when the query is built)."""
        return await self._core.store.search(query if query is not None else JobQuery())

    async def counts(self) -> JobCounts:
        """How many jobs are in each state, in total and per queue."""
        return await self._core.store.counts()

    async def hosts(self) -> builtins.list[HostInfo] | None:
        """The hosts sharing this system's store, oldest first, each with its last heartbeat,
        whether it is alive, the cluster singletons it holds and the jobs it runs; ``None``
        with a store that keeps no table of hosts (SQLite, in memory: this process is the one
        host the system knows). See `Store.hosts`."""
        return await self._core.store.hosts()

    async def retry(self, job_id: int, *, attempts: int = 1) -> None:
        """Run a dead job again (with ``attempts`` more attempts, default 1), or a retrying or
        scheduled job now.

        Raises `JobNotFoundError`, or `JobStateError` if the job is enqueued, running or
        succeeded, or if it is unique and an unfinished copy exists.
        """
        check_retry(attempts)
        core = self._core
        queue = await core.store.retry(job_id, now=core.clock.now(), attempts=attempts)
        core.wake_queue(queue)

    async def requeue(self, job_id: int, *, attempts: int = 1) -> None:
        """Run the job again now, whatever it did: a succeeded, dead or cancelled job (with
        ``attempts`` more attempts, default 1), or a scheduled or retrying one (now).

        Raises `JobNotFoundError`, or `JobStateError` if the job is enqueued or running, or if it
        is unique and an unfinished copy exists.
        """
        check_retry(attempts)
        core = self._core
        queue = await core.store.requeue(job_id, now=core.clock.now(), attempts=attempts)
        core.wake_queue(queue)

    async def cancel(self, job_id: int) -> JobState:
        """Cancel the job ``job_id``; return ``CANCELLED``, or ``RUNNING`` for a running job
        whose cancellation is now requested.

        A scheduled, enqueued or retrying job becomes ``CANCELLED`` at once and never runs. A
        running job is cancelled where it runs: at once if it runs in this process, else when
        its host next renews its lease (within ``heartbeat`` seconds). Its function then sees
        ``trio.Cancelled`` at its next checkpoint (a sync function's thread is not interrupted:
        its return is awaited) and the job becomes ``CANCELLED`` (an `AttemptError` says
        ``cancelled: ...``), unless it returned first (``SUCCEEDED``). A failure, an
        interruption or an expired lease of a job whose cancellation was requested also makes
        it ``CANCELLED``: it is never retried. Raises `JobNotFoundError`, or `JobStateError`
        for a succeeded, dead or cancelled job.
        """
        core = self._core
        state, _queue = await core.store.cancel(job_id, now=core.clock.now())
        if state is JobState.RUNNING:
            local = core.local_cancels.get(job_id)
            if local is not None:
                local()
        else:
            core.notify_settled()
            core.wake(None)  # its continuations may have been enqueued
        return state

    async def delete(self, job_id: int) -> None:
        """Delete the job ``job_id`` and its errors, in any state but running. Its awaiting
        continuations are resolved as if it was cancelled.

        Raises `JobNotFoundError`, or `JobStateError` for a running job (cancel it and wait for
        it with `wait_finished` first).
        """
        core = self._core
        await core.store.delete(job_id, now=core.clock.now())
        core.notify_settled()
        core.wake(None)  # its continuations may have been enqueued

    async def set_rate_limit(self, queue: str, limit: RateLimit | None) -> None:
        """Limit ``queue`` to ``limit.limit`` claims per ``limit.per`` seconds on every host of
        the store (``None`` removes the limit). What counts: each claim (an attempt started,
        retries included) in the sliding window ``(now - per, now]``, whatever its outcome.
        Kept in the store. Jobs over the limit wait, enqueued, in their priority order."""
        n, period = rate_limit_row(limit)
        await self._core.store.set_rate_limit(queue, limit=n, period=period)
        self._core.wake_queue(queue)

    async def rate_limits(self) -> dict[str, RateLimit]:
        """The rate limit of each rate-limited queue (set by any host or client)."""
        return rate_limits_of(await self._core.store.rate_limits())

    async def pause_queue(self, queue: str) -> None:
        """Pause ``queue`` for every host on the store: no job of it is claimed until
        `resume_queue`. Jobs already running go on; jobs still enqueue. Kept in the store, so
        it survives restarts. Pausing a paused queue changes nothing."""
        core = self._core
        await core.store.pause_queue(queue, paused=True, now=core.clock.now())

    async def resume_queue(self, queue: str) -> None:
        """Let ``queue`` be claimed again (after `pause_queue`); a no-op on a queue not paused."""
        core = self._core
        await core.store.pause_queue(queue, paused=False, now=core.clock.now())
        core.wake_queue(queue)

    async def paused_queues(self) -> frozenset[str]:
        """The queues paused now (by any host or client)."""
        return await self._core.store.paused_queues()

    async def _record_schedules(self) -> None:
        if self._recurring and not self._schedules_recorded:
            await self._core.store.define_schedules([r.settings() for r in self._recurring])
            self._schedules_recorded = True

    async def trigger(self, schedule: str) -> int:
        """Enqueue an occurrence of the recurring schedule ``schedule`` now; return its id.

        It runs even if the schedule is paused or a previous run is unfinished (an explicit
        request), and does not move the schedule's cursor: the next cron occurrence fires as
        planned. The job's ``fire_time`` is the time of the call. Works for any schedule
        recorded in the store (by any host), and for this system's own. Raises
        `ScheduleNotFoundError`.
        """
        core = self._core
        await self._record_schedules()
        job_id, queue = await core.store.trigger(schedule, now=core.clock.now(), owner=core.owner)
        core.wake_queue(queue)
        return job_id

    async def pause_schedule(self, schedule: str) -> None:
        """Pause a recurring schedule for every host: its occurrences until `resume_schedule`
        are passed over (not run, not caught up later; the cursor moves on). Kept in the store.
        Raises `ScheduleNotFoundError`."""
        await self._record_schedules()
        await self._core.store.pause_schedule(schedule, paused=True)

    async def resume_schedule(self, schedule: str) -> None:
        """Resume a paused schedule from its next occurrence. Raises `ScheduleNotFoundError`."""
        await self._record_schedules()
        await self._core.store.pause_schedule(schedule, paused=False)
        self._core.wake_scheduler()

    async def paused_schedules(self) -> frozenset[str]:
        """The recorded schedules paused now."""
        return await self._core.store.paused_schedules()

    async def ledger(self, schedule: str, *, limit: int = 100) -> tuple[LedgerEntry, ...]:
        """The fire ledger of ``schedule``: what became of its latest ``limit`` occurrences
        (default 100), newest first, with the reason in words (see `FireOutcome`). Kept:
        ``keep_ledger`` entries per schedule. Raises `ScheduleNotFoundError`."""
        await self._record_schedules()
        return tuple(await self._core.store.ledger(schedule, limit=limit))

    async def schedules(self) -> tuple[ScheduleInfo, ...]:
        """Every schedule recorded in the store (by any host), by name: cron, time zone,
        policies in words, paused, next run, last ledger entry and last run with its state."""
        await self._record_schedules()
        core = self._core
        return tuple(await core.store.schedules(now=core.clock.now()))

    async def prune(
        self, *, older_than: float | timedelta, state: JobState = JobState.SUCCEEDED
    ) -> int:
        """Delete jobs in ``state`` (``SUCCEEDED``, the default, ``DEAD`` or ``CANCELLED``) that finished more
        than ``older_than`` ago, with their errors; return how many. Deletes in batches of
        `PRUNE_BATCH` jobs, one short transaction each, so other work runs in between."""
        core = self._core
        pruned = await prune(core.store, state, core.clock.now() - seconds(older_than))
        if pruned:
            await reclaim(core.store)
        return pruned

    async def wait_finished(self, job_id: int) -> Job:
        """Wait until the job ``job_id`` has succeeded, is dead or cancelled, and return it.

        Wakes up when this process records an outcome, and at least every ``poll_interval``.
        Raises `JobNotFoundError` if the job does not exist.
        """
        core = self._core
        while True:
            seen = core.settled_count
            job = await self.get(job_id)
            if job.state in FINISHED_STATES:
                return job
            await core.wait_settled(core.settings.poll_interval, since=seen)

    async def wait_idle(self) -> None:
        """Wait until no job of this system's queues is enqueued or running.

        Scheduled and retrying jobs do not count. Checks after every recorded outcome, and at
        least every ``poll_interval``.
        """
        core = self._core
        while True:
            seen = core.settled_count
            if not await core.store.has_work(core.queues):
                return
            await core.wait_settled(core.settings.poll_interval, since=seen)
