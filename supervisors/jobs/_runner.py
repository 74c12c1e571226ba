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
- At exit, a job in ``_active`` without an outcome whose code has stopped is released (the
  attempt counts); one whose thread still runs is left leased, so its lease expires and it is
  recovered only after the process is gone or the thread returned.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import traceback
from collections.abc import Callable, Mapping

import trio

from ._core import Core, _current
from ._errors import JobArgumentsError, JobResultError, UnknownJobError
from ._lifecycle import keeps_traceback, retry_at
from ._model import ClaimedJob, Failure, Success
from ._registry import JobDefinition, describe_error
from ._resources import job_resources

logger = logging.getLogger("supervisors.jobs")

_FLUSH_TIMEOUT = 10.0


class QueueRunner:
    """Runs the jobs of one queue with at most ``concurrency`` at a time."""

    def __init__(self, core: Core, queue: str, concurrency: int) -> None:
        self.core = core
        self.queue = queue
        self.concurrency = concurrency
        self._active: dict[int, ClaimedJob] = {}
        self._scopes: dict[int, trio.CancelScope] = {}
        self._threads: set[int] = set()
        self._cancel_requested: set[int] = set()
        self._ok: list[Success] = []
        self._failed: list[Failure] = []
        self._recording: set[int] = set()
        """Jobs whose outcome the pump is writing now (a renewal may see them as not running)."""
        self._in_flight = 0
        self._draining = False
        self._stop_jobs_at = math.inf
        self._give_up_at = math.inf
        self._holds: set[trio.CancelScope] = set()
        self._kick = core.queue_signals[queue]

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
        for scope in self._scopes.values():
            scope.deadline = min(scope.deadline, stop_jobs_at)
        for hold in self._holds:
            hold.deadline = min(hold.deadline, give_up_at)
        self._kick.set()

    async def run(self) -> None:
        """Run until drained (returns) or cancelled (stopped jobs are released)."""
        send, receive = trio.open_memory_channel[ClaimedJob](math.inf)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeat)
                for _ in range(self.concurrency):
                    nursery.start_soon(self._work, receive)
                await self._pump(send)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._flush()

    async def _pump(self, send: trio.MemorySendChannel[ClaimedJob]) -> None:
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
            has_results = bool(self._ok or self._failed)
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
            seen = core.wake_gen[queue]
            ok, failed = self._ok, self._failed
            self._ok, self._failed = [], []
            self._recording = {s.job_id for s in ok} | {f.job_id for f in failed}
            limit = free if want else 0
            now = core.clock.now()
            with trio.CancelScope(shield=True):
                settled = await store.settle_and_claim(
                    queue,
                    limit,
                    owner=core.owner,
                    now=now,
                    lease_until=now + lease,
                    succeeded=ok,
                    failed=failed,
                )
            active = self._active
            self._recording = set()
            if ok or failed:
                for job_id in settled.refused:
                    self._lost(job_id, "before its outcome was recorded; the outcome is discarded")
                for s in ok:
                    active.pop(s.job_id, None)
                for f in failed:
                    active.pop(f.job_id, None)
                core.notify_settled()
                for ready in settled.ready:
                    core.wake_queue(ready)
                if any(f.retry_at is not None for f in failed):
                    core.wake_scheduler()
            claimed = settled.claimed
            for job in claimed:
                active[job.id] = job
                core.local_cancels[job.id] = functools.partial(self.cancel, job.id)
            if want and len(claimed) < limit:
                maybe_work = core.wake_gen[queue] != seen
            if want:
                held_by_key = settled.held_by_key
                rate_until = settled.rate_limited_until
            self._in_flight += len(claimed)
            for job in claimed:
                send.send_nowait(job)

    def cancel(self, job_id: int) -> None:
        """Cancel the run of ``job_id`` here, whose cancellation was requested in the store: its
        function sees ``trio.Cancelled`` at its next checkpoint (a sync job's thread is not
        interrupted; the run ends when it returns)."""
        if job_id not in self._active:
            return
        self._cancel_requested.add(job_id)
        scope = self._scopes.get(job_id)
        if scope is not None:
            scope.cancel()

    async def _end_cancelled(self, job: ClaimedJob) -> None:
        """Record the end of a run cancelled on request: the store makes the job CANCELLED."""
        core = self.core
        with trio.CancelScope(shield=True):
            settled = await core.store.settle(
                owner=core.owner, now=core.clock.now(), released=[job.token]
            )
        if job.id in settled.refused:
            self._lost(job.id, "before its cancellation was recorded")
            return
        self._active.pop(job.id, None)
        core.notify_settled()
        for ready in settled.ready:
            core.wake_queue(ready)

    def _lost(self, job_id: int, what: str) -> None:
        """The store refused this job's token: another run owns the job now."""
        job = self._active.pop(job_id, None)
        if job is None:
            return
        logger.warning(
            "job %d (%s) lost its lease (token: attempt %d) %s; the job was recovered by lease "
            "expiry and may run again elsewhere",
            job.id, job.name, job.attempt, what,
        )  # fmt: skip
        scope = self._scopes.get(job_id)
        if scope is not None:
            scope.cancel()

    async def _work(self, receive: trio.MemoryReceiveChannel[ClaimedJob]) -> None:
        async for job in receive:
            self.core.runs.begin(job)
            try:
                await self._execute(job)
            finally:
                self.core.local_cancels.pop(job.id, None)
                self._in_flight -= 1
                self._kick.set()
                self.core.runs.end(job)

    async def _execute(self, job: ClaimedJob) -> None:
        core = self.core
        registry = core.registry
        try:
            definition = registry.get(job.name)
            args = registry.decode(definition, job.args)
        except (UnknownJobError, JobArgumentsError) as exc:
            logger.error("job %d (%s) cannot run and is dead: %s", job.id, job.name, exc)
            self._failed.append(Failure(job.id, job.attempt, str(exc), "", None))
            return
        if job.id in self._cancel_requested:  # cancelled before it started: do not start it
            self._cancel_requested.discard(job.id)
            await self._end_cancelled(job)
            return
        timeout = definition.timeout if definition.timeout is not None else core.timeout
        deadline = trio.current_time() + timeout if timeout is not None else math.inf
        scope = trio.CancelScope(deadline=min(deadline, self._stop_jobs_at))
        self._scopes[job.id] = scope
        token = _current.set(job)
        value: object = None
        try:
            with scope:
                # scoped resources close with the run's outcome: an error, the timeout, the stop
                async with job_resources(definition.fn) as resources:
                    value = await self._call(job, definition, args, resources)
        except Exception as exc:
            if job.id in self._active:
                self._record_failure(job, definition, exc)  # made CANCELLED if requested
            return
        finally:
            _current.reset(token)
            del self._scopes[job.id]
            requested = job.id in self._cancel_requested
            self._cancel_requested.discard(job.id)
        if job.id not in self._active:
            return  # the lease was lost: another run owns the outcome
        if not scope.cancelled_caught:
            try:
                result = self._result(job, value)
            except JobResultError as exc:
                self._record_failure(job, definition, exc)
            else:
                self._ok.append(Success(job.id, job.attempt, result))
        elif requested:
            await self._end_cancelled(job)
        elif trio.current_time() >= self._stop_jobs_at:
            return  # interrupted by the stop: `_flush` releases it
        else:
            limit = TimeoutError(f"job {job.name!r} ran longer than its timeout of {timeout} s")
            self._record_failure(job, definition, limit)

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
            finished = {s.job_id for s in self._ok} | {f.job_id for f in self._failed}
            finished |= self._recording
            running = [job for job in self._active.values() if job.id not in finished]
            if running:
                now = core.clock.now()
                tokens = sorted(job.token for job in running)
                lost = await core.store.renew(
                    tokens, owner=core.owner, lease_until=now + core.settings.lease
                )
                for job_id in sorted(lost):
                    # Its outcome may have been written meanwhile: not lost, finished.
                    if job_id not in self._recording:
                        self._lost(job_id, "while running; cancelling this run")
                kept = [job.id for job in running if job.id not in lost]
                if kept:
                    for job_id in sorted(await core.store.cancelling(kept)):
                        self.cancel(job_id)

    async def _flush(self) -> None:
        self.core.failures.flush(force=True)
        ok, failed = self._ok, self._failed
        self._ok, self._failed = [], []
        done = {s.job_id for s in ok} | {f.job_id for f in failed}
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
