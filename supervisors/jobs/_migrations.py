"""The job database's schema as numbered migrations; ``PRAGMA user_version`` is the last one run.

Rules for a new step: append it (never edit a released one), make it keep every row (add
columns with defaults, create tables and indexes, copy data; never drop a column or a table
that holds data), and write it as plain statements separated by ``;`` (they run one by one
inside the opener's single transaction, so a failed step leaves the file as it was).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Migration:
    """One schema step: ``version`` is the ``user_version`` after it."""

    version: int
    summary: str
    script: str

    def statements(self) -> list[str]:
        return [s.strip() for s in self.script.split(";") if s.strip()]


_UNFINISHED = "('scheduled', 'enqueued', 'running', 'retrying')"

SEARCH_INDEXES = """
CREATE INDEX jobs_search_state ON jobs(state, created_at);
CREATE INDEX jobs_search_queue ON jobs(queue, created_at);
CREATE INDEX jobs_search_name ON jobs(name, created_at)
"""
"""The indexes of `_sql.search_statement` (each ends in the row id, so it is in search order).
A search without a state walks ``jobs_search_state`` once per state; no index on ``created_at``
alone, which every insert would pay for."""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        summary="jobs, their errors and recurring schedules' cursors (the first release)",
        script=f"""
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at REAL NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    lease_owner TEXT,
    lease_until REAL,
    unique_key TEXT,
    schedule TEXT,
    fire_time REAL
);
CREATE INDEX jobs_ready ON jobs(queue, id) WHERE state = 'enqueued';
CREATE INDEX jobs_due ON jobs(run_at) WHERE state IN ('scheduled', 'retrying');
CREATE INDEX jobs_leased ON jobs(lease_until) WHERE state = 'running';
CREATE INDEX jobs_state ON jobs(state, queue);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state = 'succeeded';
CREATE UNIQUE INDEX jobs_unique ON jobs(unique_key)
    WHERE unique_key IS NOT NULL AND state IN {_UNFINISHED};
CREATE UNIQUE INDEX jobs_occurrence ON jobs(schedule, fire_time)
    WHERE schedule IS NOT NULL;
CREATE INDEX jobs_schedule_open ON jobs(schedule)
    WHERE schedule IS NOT NULL AND state IN {_UNFINISHED};
CREATE TABLE job_errors (
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    error TEXT NOT NULL,
    traceback TEXT NOT NULL
);
CREATE INDEX job_errors_job ON job_errors(job_id);
CREATE TABLE schedules (name TEXT PRIMARY KEY, cursor REAL NOT NULL)
""",
    ),
    Migration(
        version=2,
        summary="the job definitions' settings, recorded by hosts for enqueuers without a registry",
        script="""
CREATE TABLE job_definitions (
    name TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    is_unique INTEGER NOT NULL
)
""",
    ),
)

MIGRATIONS += (
    Migration(
        version=3,
        summary="operations: cancellation requests, paused queues, recorded and pausable schedules",
        script="""
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE TABLE paused_queues (queue TEXT PRIMARY KEY, paused_at REAL NOT NULL);
CREATE TABLE schedule_definitions (
    name TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    queue TEXT NOT NULL,
    args TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0
)
""",
    ),
)

MIGRATIONS += (
    Migration(
        version=4,
        summary="priorities, per-key concurrency limits and per-queue rate limits",
        script="""
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE jobs ADD COLUMN concurrency_limit INTEGER;
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs(queue, priority DESC, run_at, id) WHERE state = 'enqueued';
CREATE INDEX jobs_running_key ON jobs(concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;
CREATE TABLE queue_limits (queue TEXT PRIMARY KEY, rate_limit INTEGER NOT NULL, period REAL NOT NULL);
CREATE TABLE queue_claims (queue TEXT NOT NULL, at REAL NOT NULL, n INTEGER NOT NULL);
CREATE UNIQUE INDEX queue_claims_at ON queue_claims(queue, at)
""",
    ),
)

_UNFINISHED_5 = "('awaiting', 'scheduled', 'enqueued', 'running', 'retrying')"

MIGRATIONS += (
    Migration(
        version=5,
        summary="results and continuations: a job's result, its parent and the awaiting state",
        script=f"""
ALTER TABLE jobs ADD COLUMN result TEXT;
ALTER TABLE jobs ADD COLUMN parent_id INTEGER;
ALTER TABLE jobs ADD COLUMN continue_on TEXT;
ALTER TABLE jobs ADD COLUMN parent_result TEXT;
CREATE INDEX jobs_parent ON jobs(parent_id) WHERE parent_id IS NOT NULL;
DROP INDEX jobs_unique;
CREATE UNIQUE INDEX jobs_unique ON jobs(unique_key)
    WHERE unique_key IS NOT NULL AND state IN {_UNFINISHED_5};
DROP INDEX jobs_schedule_open;
CREATE INDEX jobs_schedule_open ON jobs(schedule)
    WHERE schedule IS NOT NULL AND state IN {_UNFINISHED_5}
""",
    ),
)

MIGRATIONS += (
    Migration(
        version=6,
        summary="job search: indexes by creation time after state, queue or name",
        script=SEARCH_INDEXES,
    ),
)

MIGRATIONS += (
    Migration(
        version=7,
        summary="progress and log lines of attempts; the fire ledger and policies of schedules",
        script="""
CREATE TABLE job_progress (
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    version INTEGER NOT NULL,
    fraction REAL,
    message TEXT NOT NULL,
    updated_at REAL NOT NULL,
    dropped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE job_log (
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);
CREATE TABLE schedule_ledger (
    seq INTEGER PRIMARY KEY,
    schedule TEXT NOT NULL,
    fire_time REAL NOT NULL,
    outcome TEXT NOT NULL,
    job_id INTEGER,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    host TEXT NOT NULL
);
CREATE INDEX schedule_ledger_schedule ON schedule_ledger(schedule, seq);
ALTER TABLE schedule_definitions ADD COLUMN cron TEXT NOT NULL DEFAULT '';
ALTER TABLE schedule_definitions ADD COLUMN tz TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE schedule_definitions ADD COLUMN misfire TEXT NOT NULL DEFAULT 'run_once';
ALTER TABLE schedule_definitions ADD COLUMN misfire_grace REAL NOT NULL DEFAULT 60.0;
ALTER TABLE schedule_definitions ADD COLUMN overlap INTEGER NOT NULL DEFAULT 0
""",
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The ``user_version`` of a database this library has fully migrated."""

LEGACY_TABLES = frozenset({"jobs", "job_errors", "schedules"})
"""The tables of a version-1 file made by the first release (which set no ``application_id``)."""

assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
