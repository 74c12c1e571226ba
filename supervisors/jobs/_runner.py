"""The runner of one queue: claims jobs in batches, runs them, records outcomes in batches.

One pump task talks to the store; ``concurrency`` worker tasks run job functions. Outcomes are
collected in memory and written with the next claim in a single store call, so a busy queue
costs one store round trip per batch, not per job. Enqueues in this process wake the pump at
once; with a store that other processes write to, the pump also polls every ``poll_interval``.

Invariants:

- A job is in ``_active`` (by id, with its claim) from the moment it is claimed until its
  outcome is written or its lease is found lost. Only ``_active`` claims are renewed.
- A worker slot (``_in_flight``) is held until the job's code has really stopped: an async
  function has returned or raised; a sync function's thread has returned. A cancelled sync job
  keeps its slot, and its lease, until its thread returns.
- A worker runs its jobs one after the other inside one cancel scope of its own (`_Slot`),
  replaced after a job whose run was cancelled; while it runs a job, cancelling that scope
  cancels that job only. A job's time limit and the stop's deadline are kept per slot and
  enforced by one watcher task (`_watch`), so a run costs no Trio deadline of its own.
- At exit, a job in ``_active`` without an outcome whose code has stopped is released (the
  attempt counts); one whose thread still runs is left leased, so its lease expires and it is
  recovered only after the process is gone or the thread returned.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import outcome
import trio

from supervisors import outside_trio

from ._core import Core, _current
from ._errors import JobArgumentsError, JobResultError, UnknownJobError
from ._lifecycle import ended_by, keeps_traceback, retry_at
from ._model import ClaimedJob, Failure, Success, Token
from ._progress import Reporter
from ._registry import JobDefinition, describe_error
from ._resources import declared_resources, job_resources
from ._signal import Signal

logger = logging.getLogger("supervisors.jobs")

_FLUSH_TIMEOUT = 10.0
_EXPLAIN_TIMEOUT = 5.0
"""How long the runner waits to read a job whose outcome the store refused, to log why."""
_NO_RESOURCES: Mapping[str, object] = MappingProxyType({})


def _log_lost(job: ClaimedJob, what: str) -> None:
    logger.warning(
        "job %d (%s) lost its lease (token: attempt %d) %s; the job was recovered by lease "
        "expiry and may run again elsewhere",
        job.id, job.name, job.attempt, what,
    )  # fmt: skip


_NOTHING: tuple[list[Token], list[Success], list[Failure]] = ([], [], [])


class _Plan:
    """How a runner runs the jobs of one definition (worked out on its first job)."""

    __slots__ = ("definition", "plain_async", "resources", "timeout")

    def __init__(self, definition: JobDefinition, timeout: float | None) -> None:
        self.definition = definition
        self.timeout = timeout
        """The time limit of a run: the definition's, else the system's (``None``: none)."""
        self.resources = bool(declared_resources(definition.fn))
        self.plain_async = definition.is_async and not self.resources


class _Slot:
    """One worker: the cancel scope it runs its jobs in, and the job it runs now (if any)."""

    __slots__ = ("cancelled", "deadline", "definition", "job", "requested", "scope", "timeout")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.cancelled = False
        """Whether ``scope`` was cancelled (only `cancel` cancels it)."""
        self.job: ClaimedJob | None = None
        self.deadline = math.inf
        """When the run of ``job`` is cancelled: its time limit or the stop (Trio time)."""
        self.definition: JobDefinition | None = None
        self.timeout: float | None = None
        """``job``'s definition and time limit."""
        self.requested = False
        """Whether the cancellation of the last run was requested (`QueueRunner.cancel`)."""

    def cancel(self) -> None:
        self.cancelled = True
        self.scope.cancel()


class QueueRunner:
    """Runs the jobs of one queue with at most ``concurrency`` at a time."""

    def __init__(self, core: Core, queue: str, concurrency: int) -> None:
        self.core = core
        self.queue = queue
        self.concurrency = concurrency
        self._active: dict[int, ClaimedJob] = {}
        self._slots: list[_Slot] = []
        self._running: dict[int, _Slot] = {}
        """Job id → the slot running it, while its function runs."""
        self._ready: collections.deque[ClaimedJob] = collections.deque()
        """Claimed jobs that no worker has taken yet (every worker was busy)."""
        self._idle: list[trio.lowlevel.Task] = []
        """Workers waiting for a job (in `_work`); the pump hands a job straight to one."""
        self._watch_at = math.inf
        """When the watcher looks at the slots' deadlines next (Trio time)."""
        self._watch_kick = Signal()
        self._threads: set[int] = set()
        self._cancel_requested: set[int] = set()
        self._ok: list[Token] = []
        """Succeeded attempts without a result (most of them: a bare token is cheaper)."""
        self._results: list[Success] = []
        """Succeeded attempts with a result."""
        self._failed: list[Failure] = []
        self._recording: tuple[list[Token], list[Success], list[Failure]] = ([], [], [])
        """The outcomes the pump is writing now (a renewal may see their jobs as not running)."""
        self._plans: dict[str, _Plan] = {}
        """Job name → how to run it (`_plan`)."""
        self._in_flight = 0
        """Jobs claimed and not yet recorded as ended, and slots reserved (`reserve`)."""
        self._draining = False
        self._stop_jobs_at = math.inf
        self._give_up_at = math.inf
        self._holds: set[trio.CancelScope] = set()
        self._kick = core.queue_signals[queue]
        self._reporters: dict[Token, Reporter] = {}
        """The attempts running here that reported something (`JobContext.progress`), by token."""
        self._report_signal = Signal()
        self._report_written: trio.Event | None = None
        """Set when the write of reports in flight (if any) has ended."""
        self._trio_thread = threading.get_ident()
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._anchor = (-math.inf, 0.0)
        """``(wall, monotonic)`` read together on the Trio thread: a worker thread's clock."""

    def drain(self, *, stop_jobs_at: float = math.inf, give_up_at: float = math.inf) -> None:
        """Stop claiming; `run` returns once the running jobs have stopped and are recorded.

        Jobs still running at ``stop_jobs_at`` (Trio time) are cancelled; they are released
        (the attempt counts) once their code has stopped. A sync job's thread that has not
        returned by ``give_up_at`` is left running: its job stays leased (see the module
        docstring).
        """
        self._draining = True
        self._stop_jobs_at = stop_jobs_at
        self._give_up_at = give_up_at
        for slot in self._running.values():
            slot.deadline = min(slot.deadline, stop_jobs_at)
        self._watch_kick.set()
        for hold in self._holds:
            hold.deadline = min(hold.deadline, give_up_at)
        self._kick.set()

    async def run(self) -> None:
        """Run until drained (returns) or cancelled (stopped jobs are released)."""
        self._trio_thread = threading.get_ident()
        self._trio_token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeat)
                nursery.start_soon(self._watch)
                nursery.start_soon(self._write_reports)
                for _ in range(self.concurrency):
                    slot = _Slot()
                    self._slots.append(slot)
                    nursery.start_soon(self._work, slot)
                slots = self.core.slots
                slots[self.queue] = self  # slots may be reserved while the pump runs
                try:
                    await self._pump()
                finally:
                    if slots.get(self.queue) is self:
                        del slots[self.queue]
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._flush()

    async def _pump(self) -> None:
        core = self.core
        store = core.store
        queue = self.queue
        lease = core.settings.lease
        poll = core.settings.poll_interval if store.shared else math.inf
        maybe_work = True
        held_by_key = False  # jobs wait for a concurrency key: claim again after an outcome
        rate_until: float | None = None  # the rate window frees a claim then (wall clock)
        seen = core.wake_gen[queue]
        while True:
            has_results = bool(self._ok or self._results or self._failed)
            if has_results and held_by_key:
                maybe_work = True
            if self._draining:
                if self._in_flight == 0 and not has_results:
                    return
                free = 0
            else:
                free = self.concurrency - self._in_flight
            want = free > 0 and maybe_work
            if not has_results and not want:
                wait = poll if free > 0 else math.inf
                if rate_until is not None and free > 0:
                    wait = min(wait, max(0.0, rate_until - core.clock.now()))
                woken = await self._kick.wait(wait)
                if not woken or core.wake_gen[queue] != seen:
                    maybe_work = True
                continue
            if want:  # a round that only records outcomes must not absorb a wake-up unseen
                seen = core.wake_gen[queue]
            ok, results, failed = self._ok, self._results, self._failed
            self._ok, self._results, self._failed = [], [], []
            self._recording = (ok, results, failed)
            succeeded: Sequence[Token | Success] = [*ok, *results] if results else ok
            limit = free if want else 0
            now = core.clock.now()
            self._anchor = (now, time.monotonic())
            with trio.CancelScope(shield=True):
                settled = await store.settle_and_claim(
                    queue,
                    limit,
                    owner=core.owner,
                    now=now,
                    lease_until=now + lease,
                    succeeded=succeeded,
                    failed=failed,
                )
            active = self._active
            self._recording = _NOTHING
            refused: list[ClaimedJob] = []
            if succeeded or failed:
                refused = [active.pop(i) for i in sorted(settled.refused) if i in active]
                for job_id, _ in ok:
                    active.pop(job_id, None)
                for s in results:
                    active.pop(s.job_id, None)
                for f in failed:
                    active.pop(f.job_id, None)
                core.notify_settled()
                for ready in settled.ready:
                    core.wake_queue(ready)
                if any(f.retry_at is not None for f in failed):
                    core.wake_scheduler()
            claimed = settled.claimed
            if want and len(claimed) < limit:
                maybe_work = core.wake_gen[queue] != seen
            if want:
                held_by_key = settled.held_by_key
                rate_until = settled.rate_limited_until
            self._in_flight += len(claimed)
            for job in claimed:
                self._hand_out(job)
            if refused:
                await self._explain_refused(refused, "before its outcome was recorded; the outcome is discarded")

    def _open(self) -> bool:
        """Whether the pump runs: this runner is the one `Core.slots` has for its queue."""
        return self.core.slots.get(self.queue) is self

    def reserve(self) -> bool:
        """`Slots.reserve`: a slot is free and the runner claims (not draining)."""
        if not self._open() or self._draining or self._in_flight >= self.concurrency:
            return False
        self._in_flight += 1
        return True

    def release(self) -> None:
        """`Slots.release`: the pump may claim with the slot again."""
        self._in_flight -= 1
        self._kick.set()

    def accept(self, job: ClaimedJob) -> None:
        """`Slots.accept`: ``job`` is run as if the pump had claimed it.

        Only a runner stopped without draining (cancelled: its pump no longer waits for the
        reserved slot) has no worker left: the job is logged and stays leased until its lease
        expires, as for a host that died."""
        if not self._open():
            self._in_flight -= 1
            logger.warning(
                "job %d (%s) was claimed as the runner of queue %r stopped; it stays leased "
                "until its lease expires, then runs again",
                job.id, job.name, self.queue,
            )  # fmt: skip
            return
        self._hand_out(job)

    def _hand_out(self, job: ClaimedJob) -> None:
        """Run ``job``, claimed for this runner (its slot counted in ``_in_flight``): it becomes
        active and cancellable here, and goes to an idle worker, else waits for the next one."""
        self._active[job.id] = job
        self.core.local_cancels.by_id[job.id] = self.cancel
        idle = self._idle
        if idle:
            trio.lowlevel.reschedule(idle.pop(), outcome.Value(job))
        else:
            self._ready.append(job)

    def cancel(self, job_id: int) -> None:
        """Cancel the run of ``job_id`` here, whose cancellation was requested in the store: its
        function sees ``trio.Cancelled`` at its next checkpoint (a sync job's thread is not
        interrupted; the run ends when it returns)."""
        if job_id not in self._active:
            return
        self._cancel_requested.add(job_id)
        slot = self._running.get(job_id)
        if slot is not None:
            slot.cancel()

    async def _end_cancelled(self, job: ClaimedJob) -> None:
        """Record the end of a run cancelled on request: the store makes the job CANCELLED."""
        core = self.core
        with trio.CancelScope(shield=True):
            settled = await core.store.settle(
                owner=core.owner, now=core.clock.now(), released=[job.token]
            )
        if job.id in settled.refused:
            if self._active.pop(job.id, None) is not None:
                await self._explain_refused([job], "before its cancellation was recorded")
            return
        self._active.pop(job.id, None)
        core.notify_settled()
        for ready in settled.ready:
            core.wake_queue(ready)

    def _lost(self, job_id: int, what: str) -> None:
        """The store refused this running job's renewal: another run owns the job now."""
        job = self._active.pop(job_id, None)
        if job is None:
            return
        _log_lost(job, what)
        slot = self._running.get(job_id)
        if slot is not None:
            slot.cancel()

    async def _explain_refused(self, jobs: list[ClaimedJob], what: str) -> None:
        """The store refused to record how these attempts ended (already out of ``_active``):
        read each job to log why. Either the lease was lost (the job was recovered by lease
        expiry), or the store already holds the attempt as ended by this very write: a try of
        it committed but its answer was lost (a connection cut during ``COMMIT``), and the retry
        was refused by the fence. Nothing is decided here; a failed read only loses the detail."""
        for job in jobs:
            recorded = False
            with trio.move_on_after(_EXPLAIN_TIMEOUT):
                try:
                    stored = await self.core.store.get(job.id)
                except Exception:  # only the log line depends on it
                    stored = None
                recorded = stored is not None and ended_by(stored, job.attempt)
            if recorded:
                logger.info(
                    "job %d (%s): attempt %d had already ended by this outcome when its write was "
                    "retried (a first try committed but its answer was lost, e.g. the connection "
                    "to the store broke during COMMIT); the store kept that outcome and refused "
                    "the retry: nothing is lost and the attempt does not run again",
                    job.id, job.name, job.attempt,
                )  # fmt: skip
            else:
                _log_lost(job, what)

    async def _work(self, slot: _Slot) -> None:
        """Run jobs one after the other in the slot's scope; after a run that was cancelled
        (the scope caught it), record why, and go on in a new scope.

        The next job is one waiting in `_ready` (after a checkpoint), else the one the pump
        hands over (`_idle`)."""
        task = trio.lowlevel.current_task()
        idle, ready = self._idle, self._ready

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            idle.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        while True:
            job: ClaimedJob | None = None
            try:
                with trio.CancelScope() as scope:
                    slot.scope, slot.cancelled = scope, False
                    while True:
                        if ready:
                            await trio.lowlevel.checkpoint()
                            if ready:
                                job = ready.popleft()
                        if job is None:
                            idle.append(task)
                            job = await trio.lowlevel.wait_task_rescheduled(abort)
                            assert job is not None
                        await self._execute(slot, job)
                        self._done(job)
                        job = None
                        if slot.cancelled:  # cancelled as the run returned: a new scope
                            break
                if job is not None:
                    await self._end_interrupted(slot, job)
            finally:
                if job is not None:
                    self._done(job)

    def _done(self, job: ClaimedJob) -> None:
        core = self.core
        core.local_cancels.by_id.pop(job.id, None)
        self._in_flight -= 1
        self._kick.set()
        core.runs.end(job)

    def _plan(self, name: str) -> _Plan:
        """How to run the jobs called ``name``; raises `UnknownJobError`."""
        plan = self._plans.get(name)
        if plan is None:
            definition = self.core.registry.get(name)
            timeout = definition.timeout if definition.timeout is not None else self.core.timeout
            plan = self._plans[name] = _Plan(definition, timeout)
        return plan

    async def _execute(self, slot: _Slot, job: ClaimedJob) -> None:
        """Run ``job``; a cancellation of its run (of ``slot.scope``) propagates."""
        started = trio.current_time()
        self.core.runs.begin(job, started)
        try:
            plan = self._plan(job.name)
            definition = plan.definition
            args = self.core.registry.decode(definition, job.args) if definition.takes_arg else None
        except (UnknownJobError, JobArgumentsError) as exc:
            logger.error("job %d (%s) cannot run and is dead: %s", job.id, job.name, exc)
            self._failed.append(Failure(job.id, job.attempt, str(exc), "", None))
            return
        cancel_requested = self._cancel_requested
        if job.id in cancel_requested:  # cancelled before it started: do not start it
            cancel_requested.discard(job.id)
            await self._end_cancelled(job)
            return
        timeout = plan.timeout
        deadline = self._stop_jobs_at
        if timeout is not None and started + timeout < deadline:
            deadline = started + timeout
        slot.job, slot.definition, slot.timeout = job, definition, timeout
        slot.deadline = deadline
        if deadline < self._watch_at:
            self._watch_kick.set()
        self._running[job.id] = slot
        token = _current.set((job, self))
        value: object = None
        try:
            try:
                if plan.resources:
                    # scoped resources close with the run's outcome: an error, the timeout, the
                    # stop
                    async with job_resources(definition.fn) as resources:
                        value = await self._call(job, definition, args, resources)
                elif plan.plain_async:
                    fn = definition.fn
                    value = await (fn(args) if definition.takes_arg else fn())  # type: ignore[misc]
                else:
                    value = await self._call(job, definition, args, _NO_RESOURCES)
            except Exception as exc:
                await self._report_end(job)  # the attempt's last reports go before its outcome
                if job.id in self._active:
                    self._record_failure(job, definition, exc)  # made CANCELLED if requested
                return
        finally:
            _current.reset(token)
            del self._running[job.id]
            slot.job = None
            slot.deadline = math.inf
            if cancel_requested:
                slot.requested = job.id in cancel_requested
                cancel_requested.discard(job.id)
            else:
                slot.requested = False
        if self._reporters:
            await self._report_end(job)
        if job.id not in self._active:
            return  # the lease was lost: another run owns the outcome
        if value is None:
            self._ok.append((job.id, job.attempt))
            return
        try:
            result = self._result(job, value)
        except JobResultError as exc:
            self._record_failure(job, definition, exc)
        else:
            self._results.append(Success(job.id, job.attempt, result))

    async def _end_interrupted(self, slot: _Slot, job: ClaimedJob) -> None:
        """Record the end of a run whose cancellation its slot's scope caught: cancelled on
        request, stopped, or past its time limit."""
        await self._report_end(job)
        if job.id not in self._active:
            return  # the lease was lost: another run owns the outcome
        if slot.requested:
            await self._end_cancelled(job)
        elif trio.current_time() >= self._stop_jobs_at:
            return  # interrupted by the stop: `_flush` releases it
        else:
            assert slot.definition is not None
            limit = TimeoutError(f"job {job.name!r} ran longer than its timeout of {slot.timeout} s")
            self._record_failure(job, slot.definition, limit)

    async def _report_end(self, job: ClaimedJob) -> None:
        """Write what ``job``'s attempt reported since the last write, once its code ended (the
        attempt's last reports go before its outcome)."""
        if self._reporters:
            reporter = self._reporters.pop(job.token, None)
            if reporter is not None:
                await self._final_report(reporter)

    async def _watch(self) -> None:
        """Cancel the runs whose slot's deadline (time limit or stop) has passed."""
        while True:
            now = trio.current_time()
            soonest = math.inf
            for slot in self._slots:
                if slot.job is None:
                    continue
                if slot.deadline <= now:
                    slot.cancel()
                elif slot.deadline < soonest:
                    soonest = slot.deadline
            if self.core.timeout is not None:
                # A run starting later with the default time limit ends after this: it need
                # not wake the watcher (quick jobs would, one by one, if it slept for ever).
                soonest = min(soonest, now + self.core.timeout)
            self._watch_at = soonest
            await self._watch_kick.wait(soonest - now)

    def _result(self, job: ClaimedJob, value: object) -> str | None:
        """The JSON text of the function's return value (``None`` for ``None``); raises
        `JobResultError` for a value that does not convert or is over ``max_result_size``."""
        if value is None:
            return None
        try:
            plain = self.core.registry.converter.unstructure(value)
            text = json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except Exception as exc:
            reason = f"it does not convert to JSON: {describe_error(exc)}"
            raise JobResultError(job.id, job.name, reason) from exc
        limit = self.core.settings.max_result_size
        size = len(text.encode())
        if size > limit:
            reason = (
                f"its JSON is {size} bytes, over the limit of {limit} bytes; return less (e.g. "
                "where the data was written) or raise JobSystem(max_result_size=...)"
            )
            raise JobResultError(job.id, job.name, reason)
        return text

    async def _call(
        self, job: ClaimedJob, definition: JobDefinition, args: object, resources: Mapping[str, object]
    ) -> object:
        fn = definition.fn
        if definition.is_async:
            if definition.takes_arg:
                return await fn(args, **resources)  # type: ignore[misc]
            return await fn(**resources)  # type: ignore[misc]
        positional = (args,) if definition.takes_arg else ()
        call: Callable[[], object] = functools.partial(fn, *positional, **resources)
        return await self._in_thread(job, call)

    async def _in_thread(self, job: ClaimedJob, call: Callable[[], object]) -> object:
        """Run ``call`` in a worker thread. If cancelled, keep waiting (holding the slot and the
        lease) until the thread has really returned, or until ``give_up_at`` of a stop: the job
        then stays leased and is recovered by lease expiry once the process is gone."""
        returned = trio.Event()
        trio_token = trio.lowlevel.current_trio_token()
        threads = self._threads

        def in_thread() -> object:
            try:
                return call()
            finally:
                with contextlib.suppress(trio.RunFinishedError):
                    trio_token.run_sync_soon(returned.set)

        threads.add(job.id)
        try:
            with outside_trio():
                return await trio.to_thread.run_sync(in_thread, abandon_on_cancel=True)
        except trio.Cancelled:
            with trio.CancelScope(shield=True, deadline=self._give_up_at) as hold:
                self._holds.add(hold)
                try:
                    await returned.wait()
                finally:
                    self._holds.discard(hold)
            raise
        finally:
            if returned.is_set():
                threads.discard(job.id)

    # --- progress and log (`_progress`) ----------------------------------------------------------

    def reporter(self, job: ClaimedJob) -> Reporter | None:
        """The reporter of ``job``'s attempt, made on its first report (any thread); ``None``
        once the attempt's code has ended."""
        found = self._reporters.get(job.token)
        if found is not None or job.id not in self._running:
            return found
        made = Reporter(
            job, max_lines=self.core.settings.max_log_lines, now=self._line_time, wake=self._wake_writer
        )
        return self._reporters.setdefault(job.token, made)

    def _line_time(self) -> float:
        if threading.get_ident() == self._trio_thread:
            return self.core.clock.now()
        wall, mono = self._anchor
        return wall + (time.monotonic() - mono) if wall > -math.inf else time.time()

    def _wake_writer(self) -> None:
        if threading.get_ident() == self._trio_thread:
            self._report_signal.set()
        elif self._trio_token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._trio_token.run_sync_soon(self._report_signal.set)

    async def _write_reports(self) -> None:
        """Write what running attempts reported: at once, then at most every
        ``progress_interval`` seconds (what is reported meanwhile waits, the latest winning)."""
        core = self.core
        while True:
            await self._report_signal.wait()
            reports = [r for r in (rep.take() for rep in list(self._reporters.values())) if r]
            if reports:
                now = core.clock.now()
                self._anchor = (now, time.monotonic())
                written = self._report_written = trio.Event()
                try:
                    refused = await core.store.report(reports, owner=core.owner, now=now)
                finally:
                    written.set()
                for report in reports:  # lost its lease: its reports go nowhere
                    lost = self._reporters.get((report.job_id, report.attempt))
                    if report.job_id in refused and lost is not None:
                        lost.close()
            await trio.sleep(core.settings.progress_interval)

    async def _final_report(self, reporter: Reporter) -> None:
        """Write what the attempt reported since the last write, after the write in flight (the
        lines it took must commit before the outcome, which ends the attempt's fence)."""
        core = self.core
        with trio.CancelScope(shield=True):
            if self._report_written is not None:
                await self._report_written.wait()
            report = reporter.take()
            if report is not None:
                await core.store.report([report], owner=core.owner, now=core.clock.now())

    def _record_failure(self, job: ClaimedJob, definition: JobDefinition, exc: Exception) -> None:
        core = self.core
        policy = definition.retry or core.retry
        error = f"{type(exc).__qualname__}: {exc}"
        keep = keeps_traceback(job.attempt, job.max_attempts, core.settings.keep_tracebacks)
        tb = "".join(traceback.format_exception(exc)) if keep else ""
        now = core.clock.now()
        when = retry_at(
            policy, attempt=job.attempt, max_attempts=job.max_attempts, now=now, rng=core.rng
        )
        core.failures.failed(job, exc, None if when is None else when - now)
        self._failed.append(Failure(job.id, job.attempt, error, tb, when))

    async def _heartbeat(self) -> None:
        core = self.core
        while True:
            await trio.sleep(core.settings.heartbeat)
            core.failures.flush()
            finished = self._finished_ids()
            running = [job for job in self._active.values() if job.id not in finished]
            if running:
                now = core.clock.now()
                tokens = sorted(job.token for job in running)
                lost = await core.store.renew(
                    tokens, owner=core.owner, lease_until=now + core.settings.lease
                )
                for job_id in sorted(lost):
                    # Its outcome may have been written meanwhile: not lost, finished.
                    if job_id not in _ids(*self._recording):
                        self._lost(job_id, "while running; cancelling this run")
                kept = [job.id for job in running if job.id not in lost]
                if kept:
                    for job_id in sorted(await core.store.cancelling(kept)):
                        self.cancel(job_id)

    def _finished_ids(self) -> set[int]:
        """The jobs whose outcome is waiting to be written or being written."""
        return _ids(self._ok, self._results, self._failed) | _ids(*self._recording)

    async def _flush(self) -> None:
        self.core.failures.flush(force=True)
        done = _ids(self._ok, self._results, self._failed)
        ok: list[Token | Success] = [*self._ok, *self._results]
        failed = self._failed
        self._ok, self._results, self._failed = [], [], []
        released = sorted(
            job.token
            for job_id, job in self._active.items()
            if job_id not in done and job_id not in self._threads
        )
        held = len(self._threads)
        self._active.clear()
        if held:
            logger.warning(
                "queue %r stopped with %d job thread(s) still running; their jobs stay leased "
                "and run again after their leases expire",
                self.queue, held,
            )  # fmt: skip
        if not (ok or failed or released):
            return
        core = self.core
        with trio.move_on_after(_FLUSH_TIMEOUT) as scope:
            try:
                settled = await core.store.settle(
                    owner=core.owner,
                    now=core.clock.now(),
                    succeeded=ok,
                    failed=failed,
                    released=released,
                )
            except Exception:
                logger.exception(
                    "queue %r could not record %d outcomes and release %d jobs; "
                    "the released ones run again when their leases expire",
                    self.queue, len(ok) + len(failed), len(released),
                )  # fmt: skip
                return
        if scope.cancelled_caught:
            logger.error(
                "queue %r: recording outcomes timed out after %s s; unreleased jobs run "
                "again when their leases expire", self.queue, _FLUSH_TIMEOUT,
            )  # fmt: skip
            return
        core.notify_settled()
        for ready in settled.ready:
            core.wake_queue(ready)
        if released:
            core.wake_queue(self.queue)


def _ids(ok: Sequence[Token], results: Sequence[Success], failed: Sequence[Failure]) -> set[int]:
    ids = {job_id for job_id, _ in ok}
    ids.update(s.job_id for s in results)
    ids.update(f.job_id for f in failed)
    return ids
