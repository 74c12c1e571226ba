"""Logging of failed attempts: the first of a run of identical failures in full, the rest
summarised.

Two failures are *identical* when they have the same job name, exception type and location
(the file and line of the innermost frame of the traceback). The first failure of a run is
logged with its traceback; the identical failures after it are counted and summarised in one
line per `SUMMARY_INTERVAL`. A run ends when `RUN_ENDS_AFTER` seconds pass without such a
failure; the next one is logged in full again. A job that dies is always logged, in one line (with its
traceback only if it starts a run).
"""

from __future__ import annotations

import logging
import traceback

import attrs
import trio

from ._model import ClaimedJob

logger = logging.getLogger("supervisors.jobs")

SUMMARY_INTERVAL = 60.0
"""Seconds between two summaries of a run of identical failures."""

RUN_ENDS_AFTER = 3600.0
"""Seconds without an identical failure after which a run of failures is forgotten."""

Key = tuple[str, str, str]


def failure_key(job_name: str, exc: BaseException) -> Key:
    """``(job name, exception type, "file:line")`` of the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return (job_name, type(exc).__qualname__, where)


@attrs.define
class _Run:
    since: float
    """When the last full log or summary of this run was written (Trio time)."""
    last: float
    """When the last failure of this run happened."""
    count: int = 0
    """Identical failures since then, not yet summarised."""


class FailureLog:
    """Logs failed attempts of one job system (see the module docstring)."""

    def __init__(self, interval: float = SUMMARY_INTERVAL) -> None:
        self.interval = interval
        self._runs: dict[Key, _Run] = {}

    def failed(self, job: ClaimedJob, exc: Exception, retry_in: float | None) -> None:
        """Log the failure of ``job``'s attempt; ``retry_in`` is ``None`` when it is dead."""
        now = trio.current_time()
        self.flush(now)
        key = failure_key(job.name, exc)
        error = f"{type(exc).__qualname__}: {exc}"
        run = self._runs.get(key)
        first = run is None
        if run is None:
            self._runs[key] = _Run(since=now, last=now)
        else:
            run.last = now
            if retry_in is not None:
                run.count += 1
        if retry_in is None:
            logger.error(
                "job %d (%s) failed attempt %d of %d and is dead: %s",
                job.id, job.name, job.attempt, job.max_attempts, error,
                exc_info=exc if first else None,
            )  # fmt: skip
        elif first:
            logger.warning(
                "job %d (%s) failed attempt %d of %d, retrying in %.3g s: %s",
                job.id, job.name, job.attempt, job.max_attempts, retry_in, error,
                exc_info=exc,
            )  # fmt: skip

    def flush(self, now: float | None = None, *, force: bool = False) -> None:
        """Write the summaries that are due (all of them with ``force``); forget ended runs."""
        now = trio.current_time() if now is None else now
        for key, run in list(self._runs.items()):
            if run.count and (force or now - run.since >= self.interval):
                name, exc_type, where = key
                logger.warning(
                    "job %s failed %d more time(s) with %s at %s in the last %.0f s (the first "
                    "of these failures was logged in full)",
                    name, run.count, exc_type, where, now - run.since,
                )  # fmt: skip
                run.count = 0
                run.since = now
            elif now - run.last >= RUN_ENDS_AFTER:
                del self._runs[key]
