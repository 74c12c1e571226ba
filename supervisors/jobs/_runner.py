"""The runner of one queue: claims jobs in batches, runs them, records outcomes in batches.

One pump task talks to the store; ``concurrency`` worker tasks run job functions. Outcomes are
collected in memory and written with the next claim in a single store call, so a busy queue
costs one store round trip per batch, not per job. Enqueues in this process wake the pump at
once; with a store that other processes write to, the pump also polls every ``poll_interval``.

Invariants: a job id is in ``_active`` from the moment it is claimed until its outcome is
written; a job in ``_active`` that has no recorded outcome when the runner exits is released
back to the queue (its attempt is not counted).
"""

from __future__ import annotations

import functools
import logging
import math
import traceback

import trio

from ._core import Core, _current
from ._errors import JobArgumentsError, UnknownJobError
from ._model import ClaimedJob, Failure, RetryPolicy
from ._resources import job_resources

logger = logging.getLogger("supervisors.jobs")

_FLUSH_TIMEOUT = 10.0


class QueueRunner:
    """Runs the jobs of one queue with at most ``concurrency`` at a time."""

    def __init__(self, core: Core, queue: str, concurrency: int) -> None:
        self.core = core
        self.queue = queue
        self.concurrency = concurrency
        self._active: set[int] = set()
        self._ok: list[int] = []
        self._failed: list[Failure] = []
        self._in_flight = 0
        self._draining = False
        self._kick = core.queue_signals[queue]

    def drain(self) -> None:
        """Stop claiming; `run` returns once the running jobs have finished and are recorded."""
        self._draining = True
        self._kick.set()

    async def run(self) -> None:
        """Run until drained (returns) or cancelled (running jobs are released)."""
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
        seen = core.wake_gen[queue]
        while True:
            has_results = bool(self._ok or self._failed)
            if self._draining:
                if self._in_flight == 0 and not has_results:
                    return
                free = 0
            else:
                free = self.concurrency - self._in_flight
            want = free > 0 and maybe_work
            if not has_results and not want:
                woken = await self._kick.wait(poll if free > 0 else math.inf)
                if not woken or core.wake_gen[queue] != seen:
                    maybe_work = True
                continue
            seen = core.wake_gen[queue]
            ok, failed = self._ok, self._failed
            self._ok, self._failed = [], []
            limit = free if want else 0
            now = core.clock.now()
            with trio.CancelScope(shield=True):
                claimed = await store.settle_and_claim(
                    queue,
                    limit,
                    owner=core.owner,
                    now=now,
                    lease_until=now + lease,
                    succeeded=ok,
                    failed=failed,
                )
            active = self._active
            active.update(job.id for job in claimed)
            if ok or failed:
                active.difference_update(ok)
                active.difference_update(f.job_id for f in failed)
                core.notify_settled()
                if any(f.retry_at is not None for f in failed):
                    core.wake_scheduler()
            if want and len(claimed) < limit:
                maybe_work = core.wake_gen[queue] != seen
            self._in_flight += len(claimed)
            for job in claimed:
                send.send_nowait(job)

    async def _work(self, receive: trio.MemoryReceiveChannel[ClaimedJob]) -> None:
        async for job in receive:
            try:
                await self._execute(job)
            finally:
                self._in_flight -= 1
                self._kick.set()

    async def _execute(self, job: ClaimedJob) -> None:
        registry = self.core.registry
        try:
            definition = registry.get(job.name)
            args = registry.decode(definition, job.args)
        except (UnknownJobError, JobArgumentsError) as exc:
            logger.error("job %d (%s) cannot run and is dead: %s", job.id, job.name, exc)
            self._failed.append(Failure(job.id, str(exc), "", None))
            return
        token = _current.set(job)
        try:
            fn = definition.fn
            async with job_resources(fn) as kwargs:  # scoped resources close with the run's outcome
                if definition.is_async:
                    if definition.takes_arg:
                        await fn(args, **kwargs)  # type: ignore[misc]
                    else:
                        await fn(**kwargs)  # type: ignore[misc]
                else:
                    positional = (args,) if definition.takes_arg else ()
                    call = functools.partial(fn, *positional, **kwargs)
                    await trio.to_thread.run_sync(call, abandon_on_cancel=True)
        except Exception as exc:
            self._record_failure(job, definition.retry or self.core.retry, exc)
        else:
            self._ok.append(job.id)
        finally:
            _current.reset(token)

    def _record_failure(self, job: ClaimedJob, policy: RetryPolicy, exc: Exception) -> None:
        error = f"{type(exc).__qualname__}: {exc}"
        tb = "".join(traceback.format_exception(exc))
        if job.attempt >= job.max_attempts:
            logger.error(
                "job %d (%s) failed attempt %d of %d and is dead: %s",
                job.id, job.name, job.attempt, job.max_attempts, error,
                exc_info=exc,
            )  # fmt: skip
            self._failed.append(Failure(job.id, error, tb, None))
            return
        delay = policy.delay(job.attempt)
        logger.warning(
            "job %d (%s) failed attempt %d of %d, retrying in %.3g s: %s",
            job.id, job.name, job.attempt, job.max_attempts, delay, error,
            exc_info=exc,
        )  # fmt: skip
        self._failed.append(Failure(job.id, error, tb, self.core.clock.now() + delay))

    async def _heartbeat(self) -> None:
        core = self.core
        while True:
            await trio.sleep(core.settings.heartbeat)
            if self._active:
                now = core.clock.now()
                await core.store.renew(
                    sorted(self._active), owner=core.owner, lease_until=now + core.settings.lease
                )

    async def _flush(self) -> None:
        ok, failed = self._ok, self._failed
        self._ok, self._failed = [], []
        done = set(ok).union(f.job_id for f in failed)
        released = sorted(self._active - done)
        self._active.clear()
        if not (ok or failed or released):
            return
        core = self.core
        with trio.move_on_after(_FLUSH_TIMEOUT) as scope:
            try:
                await core.store.settle(
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
        if released:
            core.wake_queue(self.queue)
