"""The job database's schema as numbered migrations; ``PRAGMA user_version`` is the last one run.

Rules for a new step: append it (never edit a released one), make it keep every row (add
columns with defaults, create tables and indexes, copy data; never drop a column or a table
that holds data), and write it as plain statements separated by ``;`` (they run one by one
inside the opener's single transaction, so a failed step leaves the file as it was). A step
that must read the schema to rewrite it (a table rebuild) is a function instead, run in the
same transaction.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

import attrs


@attrs.frozen
class Migration:
    """One schema step: ``version`` is the ``user_version`` after it; ``script``'s statements
    run first, then ``run`` (if any) on the connection, inside the migration's transaction."""

    version: int
    summary: str
    script: str = ""
    run: Callable[[sqlite3.Connection], None] | None = None

    def statements(self) -> list[str]:
        return [s.strip() for s in self.script.split(";") if s.strip()]

    def apply(self, conn: sqlite3.Connection) -> None:
        """Run this step on ``conn``, which holds the migration's open transaction."""
        for statement in self.statements():
            conn.execute(statement)
        if self.run is not None:
            self.run(conn)


_UNFINISHED = "('scheduled', 'enqueued', 'running', 'retrying')"

SEARCH_INDEXES = """
CREATE INDEX jobs_search_state ON jobs(state, created_at);
CREATE INDEX jobs_search_queue ON jobs(queue, created_at);
CREATE INDEX jobs_search_name ON jobs(name, created_at)
"""
"""The search indexes as migration 6 made them (each ends in the row id, so it is in search
order); migration 10 puts ``queue`` into ``jobs_search_state`` (see `_sql.search_statements`)."""

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


def _never_reuse_job_ids(conn: sqlite3.Connection) -> None:
    """Rebuild ``jobs`` with ``id INTEGER PRIMARY KEY AUTOINCREMENT`` (SQLite's table-rebuild
    procedure), so that ``sqlite_sequence`` keeps the highest id ever given and a deleted newest
    job's id is never given again.

    The new table's definition is the current one (read from ``sqlite_master``, so columns
    added by any earlier step are kept) with ``AUTOINCREMENT`` added; every row is copied with
    its id; the indexes and triggers on ``jobs`` are recreated from their stored SQL. Foreign
    keys are deferred to the commit and checked before it (the schema declares none; other
    tables refer to jobs by value: ``job_errors``, ``job_progress``, ``job_log``,
    ``schedule_ledger`` and ``jobs.parent_id``). The high-water mark starts above every id
    still referred to, not only above the largest id left in ``jobs``: an id a table still
    names is never given to a new job either.
    """
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
    ).fetchone()
    rebuilt, tables = re.subn(r"^CREATE TABLE jobs\b", "CREATE TABLE jobs_rebuilt", str(sql))
    rebuilt, keys = re.subn(
        r"\bid INTEGER PRIMARY KEY\b(?! AUTOINCREMENT)", "id INTEGER PRIMARY KEY AUTOINCREMENT", rebuilt
    )
    if (tables, keys) != (1, 1):
        msg = f"cannot rebuild the jobs table: unexpected definition {sql!r}"
        raise sqlite3.DatabaseError(msg)
    attached = [
        str(r[0])
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'jobs' AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL ORDER BY type, name"
        )
    ]
    columns = ", ".join(f'"{r[1]}"' for r in conn.execute("PRAGMA table_info(jobs)"))
    conn.execute("PRAGMA defer_foreign_keys = ON")  # foreign_keys cannot change in a transaction
    conn.execute(rebuilt)
    conn.execute(f"INSERT INTO jobs_rebuilt ({columns}) SELECT {columns} FROM jobs ORDER BY id")
    conn.execute("DROP TABLE jobs")
    conn.execute("ALTER TABLE jobs_rebuilt RENAME TO jobs")
    for statement in attached:
        conn.execute(statement)
    referring = ["SELECT max(id) FROM jobs", "SELECT max(parent_id) FROM jobs"]
    for (table,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall():
        if any(r[1] == "job_id" for r in conn.execute(f'PRAGMA table_info("{table}")')):
            referring.append(f'SELECT max(job_id) FROM "{table}"')
    high = max(int(conn.execute(q).fetchone()[0] or 0) for q in referring)
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'jobs'")
    if high:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', ?)", (high,))
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        msg = f"rebuilding the jobs table broke foreign keys: {problems!r}"
        raise sqlite3.IntegrityError(msg)


MIGRATIONS += (
    Migration(
        version=8,
        summary="job ids are never reused: jobs rebuilt with AUTOINCREMENT (see sqlite_sequence)",
        run=_never_reuse_job_ids,
    ),
)

MIGRATIONS += (
    Migration(
        version=9,
        summary="claim tags: which call claimed a running job (a retried claim finds its own)",
        script="ALTER TABLE jobs ADD COLUMN claim_tag TEXT",
    ),
)

MIGRATIONS += (
    Migration(
        version=10,
        summary="one index by state and queue: jobs_state merged into jobs_search_state",
        script="""
DROP INDEX jobs_state;
DROP INDEX jobs_search_state;
CREATE INDEX jobs_search_state ON jobs(state, queue, created_at)
""",
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The ``user_version`` of a database this library has fully migrated."""

LEGACY_TABLES = frozenset({"jobs", "job_errors", "schedules"})
"""The tables of a version-1 file made by the first release (which set no ``application_id``)."""

assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
