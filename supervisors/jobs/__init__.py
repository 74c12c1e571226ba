"""Durable background jobs and cron scheduling, run as a supervised subtree.

Register job functions by name in a `JobRegistry`, describe a `JobSystem` (a store, queues with
their concurrency, `Recurring` schedules) and add ``jobs.child_spec()`` to a supervision tree.
Jobs are enqueued with `JobSystem.enqueue` / `schedule` / `enqueue_many` from the Trio program,
or with `JobClient` from plain synchronous code in another process. Jobs run at least once:
see ``docs/jobs.md`` for the state machine, every default and the exact guarantee.

Requires the ``jobs`` extra (``cronsim``).
"""

from ._client import JobClient as JobClient
from ._clock import Clock as Clock
from ._clock import SystemClock as SystemClock
from ._clock import TrioWallClock as TrioWallClock
from ._core import RunningJob as RunningJob
from ._core import current_job as current_job
from ._cron import Cron as Cron
from ._errors import CronError as CronError
from ._errors import JobArgumentsError as JobArgumentsError
from ._errors import JobError as JobError
from ._errors import JobNotFoundError as JobNotFoundError
from ._errors import JobResultError as JobResultError
from ._errors import JobStateError as JobStateError
from ._errors import ScheduleNotFoundError as ScheduleNotFoundError
from ._errors import StoreError as StoreError
from ._errors import UnknownJobError as UnknownJobError
from ._memory import InMemoryStore as InMemoryStore
from ._model import AttemptError as AttemptError
from ._model import ClaimedJob as ClaimedJob
from ._model import ContinueOn as ContinueOn
from ._model import Failure as Failure
from ._model import HostInfo as HostInfo
from ._model import Job as Job
from ._model import JobCounts as JobCounts
from ._model import JobSettings as JobSettings
from ._model import JobState as JobState
from ._model import NewJob as NewJob
from ._model import Promoted as Promoted
from ._model import RateLimit as RateLimit
from ._model import RetryPolicy as RetryPolicy
from ._model import ScheduleSettings as ScheduleSettings
from ._model import Settled as Settled
from ._model import Success as Success
from ._postgres import DatabaseClock as DatabaseClock
from ._postgres import PostgresStore as PostgresStore
from ._progress import JobContext as JobContext
from ._query import Cursor as Cursor
from ._query import JobPage as JobPage
from ._query import JobQuery as JobQuery
from ._query import JobQueryError as JobQueryError
from ._recurring import Misfire as Misfire
from ._recurring import Recurring as Recurring
from ._registry import JobDefinition as JobDefinition
from ._registry import JobRegistry as JobRegistry
from ._reports import AttemptProgress as AttemptProgress
from ._reports import FireOutcome as FireOutcome
from ._reports import LedgerEntry as LedgerEntry
from ._reports import LogLine as LogLine
from ._reports import ProgressReport as ProgressReport
from ._reports import ScheduleInfo as ScheduleInfo
from ._requests import JobRequest as JobRequest
from ._singleton import ClusterSingleton as ClusterSingleton
from ._sqlite import SQLiteStore as SQLiteStore
from ._store import Store as Store
from ._system import JobSystem as JobSystem

__all__ = [
    "AttemptError",
    "AttemptProgress",
    "ClaimedJob",
    "Clock",
    "ClusterSingleton",
    "ContinueOn",
    "Cron",
    "CronError",
    "Cursor",
    "DatabaseClock",
    "Failure",
    "FireOutcome",
    "HostInfo",
    "InMemoryStore",
    "Job",
    "JobArgumentsError",
    "JobClient",
    "JobContext",
    "JobCounts",
    "JobDefinition",
    "JobError",
    "JobNotFoundError",
    "JobPage",
    "JobQuery",
    "JobQueryError",
    "JobRegistry",
    "JobRequest",
    "JobResultError",
    "JobSettings",
    "JobState",
    "JobStateError",
    "JobSystem",
    "LedgerEntry",
    "LogLine",
    "Misfire",
    "NewJob",
    "PostgresStore",
    "ProgressReport",
    "Promoted",
    "RateLimit",
    "Recurring",
    "RetryPolicy",
    "RunningJob",
    "SQLiteStore",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "ScheduleSettings",
    "Settled",
    "Store",
    "StoreError",
    "Success",
    "SystemClock",
    "TrioWallClock",
    "UnknownJobError",
    "current_job",
]
