"""The errors of the job system: one base class, `JobError`, and a subclass per kind of mistake."""

from __future__ import annotations

from collections.abc import Iterable

from supervisors import ConfigurationError


class JobError(Exception):
    """Base class of every error raised by `supervisors.jobs`."""


class UnknownJobError(JobError, LookupError):
    """A job name that no `JobRegistry` entry carries.

    The message lists the registered names so that a typo is easy to spot.
    """

    def __init__(self, name: str, registered: Iterable[str]) -> None:
        names = sorted(registered)
        known = ", ".join(repr(n) for n in names) if names else "none"
        super().__init__(
            f"unknown job name {name!r} (registered: {known}); "
            "register it with @registry.job(...) before enqueueing it"
        )
        self.name = name
        self.registered = tuple(names)


class JobArgumentsError(JobError, ValueError):
    """Job arguments that cannot be converted to or from JSON with `cattrs`."""


class CronError(JobError, ValueError):
    """A malformed cron expression or an unknown time zone."""


class JobNotFoundError(JobError, LookupError):
    """No job with the given id exists in the store (it may have been pruned)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job with id {job_id} (it never existed or was pruned)")
        self.job_id = job_id


class JobStateError(JobError):
    """An operation that the job's current state does not allow (e.g. retrying a running job)."""


class StoreError(JobError, ConfigurationError):
    """The store cannot be used: a refused file, a wrong schema version, SQLite too old.

    A `supervisors.ConfigurationError`: when it stops the job system's start, the host logs its
    message as one line, without a traceback.
    """


class ScheduleNotFoundError(JobError, LookupError):
    """No recurring schedule with the given name is recorded in the store.

    A schedule is recorded when a host whose `JobSystem` has it starts (or when that
    `JobSystem` triggers or pauses it); the message lists the recorded names.
    """

    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = sorted(known)
        listed = ", ".join(repr(n) for n in names) if names else "none"
        super().__init__(
            f"no recurring schedule named {name!r} is recorded in the store (recorded: {listed}); "
            "check the name, or start a host whose JobSystem has it in 'recurring'"
        )
        self.name = name
        self.known = tuple(names)


class JobResultError(JobError):
    """A job's return value that cannot be recorded as its result: it does not convert to JSON
    with the registry's ``cattrs`` converter, or its JSON is larger than the job system's
    ``max_result_size``.

    Raised inside the job's run, after its function returned: the attempt counts as failed
    (its error says why) and is retried per the job's retry policy, like any other failure.
    """

    def __init__(self, job_id: int, name: str, reason: str) -> None:
        super().__init__(f"the result of job {job_id} ({name!r}) cannot be recorded: {reason}")
        self.job_id = job_id
        self.name = name
