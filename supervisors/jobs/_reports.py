"""Records of what a running attempt reports (progress, log lines) and of what a recurring
schedule did at each occurrence (the fire ledger), as stores keep and return them."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from ._model import JobState

MAX_LINE_CHARS = 2000
"""A log line longer than this many characters is cut to it (the cut is marked ``…``)."""

MAX_MESSAGE_CHARS = 200
"""A progress message longer than this many characters is cut to it."""


@attrs.frozen(kw_only=True)
class LogLine:
    """One line a job logged with ``current_job().log(...)``."""

    at: datetime
    """When the job logged it (UTC)."""
    text: str


@attrs.frozen(kw_only=True)
class AttemptProgress:
    """What one attempt of a job reported, as last written to the store.

    Written while the attempt runs, at most every ``progress_interval`` seconds, and once more
    when it ends (before its outcome is recorded). Kept with the job: deleted when it is.
    """

    attempt: int
    """The attempt (1 for the first run)."""
    fraction: float | None
    """The last fraction reported, in ``[0, 1]``; ``None`` if the attempt only logged."""
    message: str
    """The message reported with it (``""`` if none)."""
    updated_at: datetime
    """When the attempt's report was last written (UTC)."""
    lines: tuple[LogLine, ...]
    """The lines logged, oldest first: at most ``max_log_lines`` of them."""
    dropped: int
    """Lines logged after the cap and not kept (0 if none)."""


@attrs.frozen(slots=True)
class ProgressReport:
    """A batch of what a running attempt reported, for `Store.report` (times are epoch seconds).

    ``version`` grows with every batch of the attempt: a batch older than the one stored
    changes nothing of the progress (its lines are kept: each has its own ``seq``).
    """

    job_id: int
    attempt: int
    version: int
    fraction: float | None
    message: str
    lines: tuple[tuple[int, float, str], ...]
    """``(seq, at, text)``: ``seq`` numbers the attempt's lines from 0."""
    dropped: int
    """How many lines the attempt dropped so far (over the cap)."""


class FireOutcome(enum.Enum):
    """What happened to one occurrence of a recurring schedule (a row of its fire ledger)."""

    FIRED = "fired"
    """A job was enqueued for it (``job_id``); also a run triggered by hand."""
    SKIPPED = "skipped"
    """Not run: a previous run was unfinished (``overlap=False``; ``job_id`` is that run), or
    the schedule was paused."""
    MISSED = "missed"
    """Not run: it came due while no scheduler ran, or was found later than ``misfire_grace``,
    and the misfire policy dropped it."""
    DEDUPLICATED = "deduplicated"
    """Another host (or an earlier pass) had already enqueued it (``job_id``): the unique key
    per schedule and fire time decided."""


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One occurrence of a recurring schedule and what became of it, with the reason."""

    schedule: str
    fire_time: datetime
    """The cron occurrence (UTC); for a run triggered by hand, the time of the trigger."""
    outcome: FireOutcome
    job_id: int | None
    """The job enqueued (fired), the one that held it back (skipped for overlap), the one that
    had it already (deduplicated); ``None`` otherwise."""
    reason: str
    """Why, in words."""
    recorded_at: datetime
    """When the host decided it (UTC)."""
    host: str
    """The job system (its owner id) or client that recorded it."""


@attrs.frozen(kw_only=True)
class ScheduleInfo:
    """A recurring schedule as recorded in the store, with its policies and its last outcome.

    Returned by `JobSystem.schedules` and `JobClient.schedules`.
    """

    name: str
    job: str
    queue: str
    cron: str
    """The cron expression (``""`` if recorded by a release that did not store it)."""
    tz: str
    paused: bool
    overlap_policy: str
    """The overlap rule, in words."""
    catch_up_policy: str
    """The misfire (catch-up) rule, in words."""
    dst_policy: str
    """How the time zone's daylight-saving changes are handled, in words."""
    cursor: datetime | None
    """The last occurrence the schedulers considered (UTC); ``None`` before the first."""
    next_run: datetime | None
    """The next occurrence after now and after the cursor (UTC); ``None`` if unknown or never."""
    last: LedgerEntry | None
    """The latest ledger entry."""
    last_run: LedgerEntry | None
    """The latest ``FIRED`` entry."""
    last_run_state: JobState | None
    """The state of the job of `last_run`, ``None`` if there is none or it was pruned."""
