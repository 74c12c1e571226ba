"""Durable jobs and cron scheduling (placeholder façade, completed below)."""

from ._clock import Clock as Clock
from ._clock import SystemClock as SystemClock
from ._clock import TrioWallClock as TrioWallClock
from ._cron import Cron as Cron
from ._errors import CronError as CronError
from ._errors import JobArgumentsError as JobArgumentsError
from ._errors import JobError as JobError
from ._errors import JobNotFoundError as JobNotFoundError
from ._errors import JobStateError as JobStateError
from ._errors import StoreError as StoreError
from ._errors import UnknownJobError as UnknownJobError
from ._memory import InMemoryStore as InMemoryStore
from ._model import AttemptError as AttemptError
from ._model import Job as Job
from ._model import JobCounts as JobCounts
from ._model import JobState as JobState
from ._model import RetryPolicy as RetryPolicy
from ._registry import JobDefinition as JobDefinition
from ._registry import JobRegistry as JobRegistry
from ._sqlite import SQLiteStore as SQLiteStore
from ._store import Store as Store
