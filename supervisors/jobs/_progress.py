"""What a running job reports: `JobContext` (given by `current_job`) and the per-attempt
`Reporter` that holds its progress and log lines until the runner writes them.

Reporting never waits for the store: `JobContext.progress` and `JobContext.log` record in memory
under a lock (callable from the job's worker thread too) and wake the runner's report writer,
which writes at most every ``progress_interval`` seconds and once more when the attempt ends.
A job that reports nothing costs nothing: its reporter is made on its first report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, final

from ._model import ClaimedJob, JSONValue, Token
from ._reports import MAX_LINE_CHARS, MAX_MESSAGE_CHARS, ProgressReport


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Reporter:
    """One attempt's reports not yet written (thread-safe).

    ``now`` gives the wall time of a line logged; ``wake`` tells the writer there is something
    to write (called on the first report after each write only).
    """

    __slots__ = (
        "_closed", "_dirty", "_dropped", "_fraction", "_lines", "_lock", "_max_lines", "_message", "_now",
        "_seq", "_version", "_wake", "job",
    )  # fmt: skip

    def __init__(
        self, job: ClaimedJob, *, max_lines: int, now: Callable[[], float], wake: Callable[[], None]
    ) -> None:
        self.job = job
        self._lock = threading.Lock()
        self._max_lines = max_lines
        self._now = now
        self._wake = wake
        self._version = 0
        self._fraction: float | None = None
        self._message = ""
        self._lines: list[tuple[int, float, str]] = []
        self._seq = 0
        self._dropped = 0
        self._dirty = False
        self._closed = False

    def close(self) -> None:
        """Drop what is pending and ignore later reports (the store refused the attempt's token)."""
        with self._lock:
            self._closed = True
            self._lines = []

    def progress(self, fraction: float, message: str) -> None:
        if not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
            msg = f"'fraction' must be a number in [0, 1] (got {fraction!r})"
            raise ValueError(msg)
        message = _cut(str(message), MAX_MESSAGE_CHARS)
        with self._lock:
            if self._closed:
                return
            self._fraction, self._message = float(fraction), message
            self._touch()

    def log(self, text: str) -> None:
        at = self._now()
        line = _cut(str(text), MAX_LINE_CHARS)
        with self._lock:
            if self._closed:
                return
            if self._seq < self._max_lines:
                self._lines.append((self._seq, at, line))
                self._seq += 1
            else:
                self._dropped += 1
            self._touch()

    def _touch(self) -> None:
        self._version += 1
        if not self._dirty:
            self._dirty = True
            self._wake()

    def take(self) -> ProgressReport | None:
        """What was reported since the last `take`, or ``None`` if nothing was."""
        with self._lock:
            if not self._dirty or self._closed:
                return None
            self._dirty = False
            lines, self._lines = tuple(self._lines), []
            return ProgressReport(
                self.job.id, self.job.attempt, self._version, self._fraction, self._message,
                lines, self._dropped,
            )  # fmt: skip


class ReportSink(Protocol):
    """Where a `JobContext` finds the reporter of its attempt (a queue runner)."""

    def reporter(self, job: ClaimedJob) -> Reporter | None:
        """The attempt's reporter, made on first use; ``None`` once the attempt has ended."""
        ...


@final
class JobContext:
    """The job running in this task or thread, as `current_job` gives it.

    Reads its claim (``id``, ``name``, ``queue``, ``args``, ``attempt``, ``max_attempts``) and
    reports on its progress. Reporting is synchronous and never waits for the store; reports
    are written at most every ``progress_interval`` seconds (`JobSystem`), the latest
    progress winning, and once more when the attempt ends, before its outcome is recorded.
    Reports of an attempt that lost its lease are refused by the store and dropped.
    """

    __slots__ = ("_job", "_sink")

    def __init__(self, job: ClaimedJob, sink: ReportSink | None) -> None:
        self._job = job
        self._sink = sink

    def __repr__(self) -> str:
        return f"JobContext(id={self._job.id}, name={self._job.name!r}, attempt={self._job.attempt})"

    @property
    def claim(self) -> ClaimedJob:
        """The claim this attempt runs under."""
        return self._job

    @property
    def id(self) -> int:
        """The job's id."""
        return self._job.id

    @property
    def name(self) -> str:
        """The job's registered name."""
        return self._job.name

    @property
    def queue(self) -> str:
        """The queue it runs in."""
        return self._job.queue

    @property
    def args(self) -> str:
        """The arguments as JSON text."""
        return self._job.args

    @property
    def attempt(self) -> int:
        """This attempt's number (1 for the first run)."""
        return self._job.attempt

    @property
    def max_attempts(self) -> int:
        """Its attempts in total, the first run included."""
        return self._job.max_attempts

    @property
    def parent_id(self) -> int | None:
        """For a continuation: the job it continues."""
        return self._job.parent_id

    @property
    def parent_result(self) -> JSONValue:
        """For a continuation: its parent's result (JSON form); see `ClaimedJob.parent_result`."""
        return self._job.parent_result

    @property
    def token(self) -> Token:
        """``(id, attempt)``: the fencing token of this attempt."""
        return self._job.token

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the attempt got: ``fraction`` in ``[0, 1]`` (``ValueError`` outside)
        and a short ``message`` (cut to `MAX_MESSAGE_CHARS`). Only the latest report is kept."""
        reporter = self._reporter()
        if reporter is not None:
            reporter.progress(fraction, message)

    def log(self, text: str) -> None:
        """Add a line to the attempt's log (cut to `MAX_LINE_CHARS` characters). Lines past
        ``max_log_lines`` of the attempt are dropped and counted (`AttemptProgress.dropped`)."""
        reporter = self._reporter()
        if reporter is not None:
            reporter.log(text)

    def _reporter(self) -> Reporter | None:
        return None if self._sink is None else self._sink.reporter(self._job)

