"""The SQL of every store operation, written once as a table of named statements.

Statements use ``:name`` parameters and take the states they act on from the lifecycle table
(`_lifecycle.TRANSITIONS`), so a rule changes in one place. A `Dialect` renders them for one
database: `SQLITE` (files and ``:memory:``) and `POSTGRES`, which differ only in their parameter
style and the few clauses of `Dialect` (e.g. ``FOR UPDATE SKIP LOCKED`` in claims).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._lifecycle import DELETED, PARENT_ENDS, Op, sources, sources_to, wanting
from ._model import UNFINISHED_STATES, JobState

if TYPE_CHECKING:
    from ._query import JobQuery


@attrs.frozen(kw_only=True)
class Dialect:
    """What differs between databases in the statements of `STATEMENTS`."""

    name: str
    begin_write: str
    """Starts a write transaction that holds the write lock from its start."""
    skip_locked: str
    """Appended to the claim's inner ``SELECT`` (row locking, where the database has it)."""
    param: Callable[[str], str]
    """Renders the ``:name`` parameter ``name`` in the driver's style."""
    use_index: Callable[[str], str]
    """Renders a clause (after the table name) telling the planner to use the named index, or
    ``""`` where the planner needs no telling."""
    for_update: str = ""
    """Appended to a ``SELECT`` of a row that serialises writers (a queue's rate limit), where
    transactions do not already run one at a time."""
    lock_key: str = ""
    """A statement taking a transaction-scoped lock on the concurrency key ``:key``, or ``""``
    where write transactions already run one at a time (SQLite)."""
    row_order: str = "rowid"
    """The column that orders a job's errors by insertion."""
    prune_order: str = ""
    """Orders ``prune_ids``' rows by finished time then id, where the index hint does not
    already (SQLite reads them in that order from ``jobs_finished``)."""
    arrays: bool = False
    """Whether the driver passes lists as arrays that ``unnest`` turns into rows: then the
    set-based statements of `BATCHED` are rendered too (one statement for many jobs)."""
    contains: Callable[[str, str], str] = lambda column, param: f"instr({column}, {param}) > 0"
    """``column`` (text) contains the text parameter ``param``, case-sensitively."""
    json_equal: Callable[[str, tuple[str, ...], str, object], str] = (
        lambda column, keys, param, value: _sqlite_json_equal(column, keys, param, value)
    )
    """The JSON text ``column`` holds ``value`` (bound as ``param``, see `json_param`) at the
    path of object ``keys``, compared as JSON values."""


def _sqlite_json_equal(column: str, keys: tuple[str, ...], param: str, value: object) -> str:
    # ``json_extract`` first, so that an expression index on it (created by the user) serves
    # the comparison; ``json_type`` keeps ``true`` apart from 1 and ``"42"`` apart from 42.
    path = "'$." + ".".join(keys) + "'"
    kind = f"json_type({column}, {path})"
    if value is None:
        return f"{kind} = 'null'"
    if isinstance(value, bool):
        return f"{kind} = '{'true' if value else 'false'}'"
    types = "'text'" if isinstance(value, str) else "'integer', 'real'"
    return f"json_extract({column}, {path}) = {param} AND {kind} IN ({types})"


SQLITE = Dialect(
    name="sqlite",
    begin_write="BEGIN IMMEDIATE",
    skip_locked="",
    param=lambda name: f":{name}",
    use_index=lambda index: f"INDEXED BY {index}",
)


_PG_TYPES = {
    **dict.fromkeys(
        ("now", "finished_at", "lease_until", "retry_at", "run_at", "before", "cursor", "fire_time",
         "period", "since", "until", "cursor_at", "fraction", "at", "grace"),
        "float8",
    ),
    **dict.fromkeys(
        ("id", "parent_id", "attempt", "max_attempts", "limit", "offset", "is_unique", "paused",
         "priority", "concurrency_limit", "rate_limit", "n", "cursor_id", "version", "seq",
         "dropped", "job_id", "keep", "overlap"),
        "int8",
    ),
    # The columns of `BATCHED`'s statements, one element per job.
    **dict.fromkeys(("ids", "attempts", "max_attemptses", "priorities", "concurrency_limits"), "int8[]"),
    **dict.fromkeys(("run_ats", "retry_ats", "created_ats"), "float8[]"),
    **dict.fromkeys(("names", "queues", "argses", "states", "concurrency_keys", "errors",
                     "tracebacks", "results"), "text[]"),
}


def _pg_param(name: str) -> str:
    # Typed, so that a ``NULL`` parameter (``:retry_at IS NULL``) has a type PostgreSQL knows.
    return f"%({name})s::{_PG_TYPES.get(name, 'text')}"


POSTGRES = Dialect(
    name="postgres",
    begin_write="BEGIN",
    skip_locked="FOR UPDATE SKIP LOCKED",
    param=_pg_param,
    use_index=lambda index: "",
    for_update="FOR UPDATE",
    lock_key="SELECT pg_advisory_xact_lock(hashtext(%(key)s::text))",
    row_order="seq",
    prune_order="ORDER BY finished_at, id",
    arrays=True,
    contains=lambda column, param: f"strpos({column}, {param}) > 0",
    json_equal=lambda column, keys, param, value: (
        f"{column}::jsonb #> '{{{','.join(keys)}}}' = {param}::jsonb"
    ),
)
"""PostgreSQL through psycopg 3: ``%(name)s`` parameters, row locks skipped by claimers."""


def in_states(states: tuple[JobState, ...] | frozenset[JobState]) -> str:
    """``state = 'x'`` or ``state IN ('x', 'y')``, states in `JobState` declaration order (so the
    text matches the partial indexes' ``WHERE`` clauses)."""
    ordered = [s.value for s in JobState if s in states]
    if len(ordered) == 1:
        return f"state = '{ordered[0]}'"
    return "state IN ({})".format(", ".join(f"'{v}'" for v in ordered))


UNFINISHED = in_states(UNFINISHED_STATES)

COLUMNS = (
    "id, name, queue, args, state, attempt, max_attempts, run_at, created_at, finished_at, "
    "lease_until, unique_key, schedule, fire_time, cancel_requested, priority, concurrency_key, "
    "concurrency_limit, result, parent_id, continue_on"
)

_CREATED_AT = [column.strip() for column in COLUMNS.split(",")].index("created_at")


def search_key(row: Sequence[Any]) -> tuple[float, int]:
    """A row of `COLUMNS`' place in `SEARCH_ORDER`: its ``created_at``, then its id."""
    return float(row[_CREATED_AT]), int(row[0])


_FENCE = "id = :id AND state = 'running' AND attempt = :attempt AND lease_owner = :owner"
"""Only the holder of the current token acts on a claimed job (`_lifecycle.FENCED`)."""

# The end of an attempt without an outcome (interrupted or expired): counted, and the job is
# enqueued again if it has attempts left, else dead.
# A job whose cancellation was requested is cancelled instead (`Op.CANCEL_END`).
_GIVE_BACK = """
    state = CASE WHEN cancel_requested = 1 THEN 'cancelled'
                 WHEN attempt >= max_attempts THEN 'dead' ELSE 'enqueued' END,
    finished_at = CASE WHEN cancel_requested = 1 OR attempt >= max_attempts THEN :now
                       ELSE NULL END,
    run_at = :now, lease_owner = NULL, lease_until = NULL
"""

assert sources(Op.RENEW, Op.SUCCEED, Op.FAIL, Op.KILL) == (JobState.RUNNING,)
assert sources(Op.INTERRUPT, Op.EXPIRE, Op.CANCEL_END) == (JobState.RUNNING,)
_CANCEL_NOW = in_states(sources_to(Op.CANCEL, JobState.CANCELLED))
_CANCEL_LATER = in_states(sources_to(Op.CANCEL, JobState.RUNNING))
_DELETABLE = in_states(sources_to(Op.DELETE, DELETED))
_REQUEUE = in_states(sources(Op.REQUEUE))
assert sources(Op.CONTINUE, Op.ABANDON) == (JobState.AWAITING,)
_AWAITING = in_states(sources(Op.CONTINUE))


def _continue(parent_end: JobState) -> str:
    """Enqueue the awaiting continuations of job ``:id``, which ended in ``parent_end``, that
    want that end; ``:result`` is the parent's result."""
    wanted = ", ".join(f"'{on.value}'" for on in wanting(parent_end))
    return f"""
        UPDATE jobs SET state = 'enqueued', run_at = :now, parent_result = :result
        WHERE parent_id = :id AND {_AWAITING} AND continue_on IN ({wanted})
        RETURNING queue
    """


_PAUSED = "EXISTS (SELECT 1 FROM paused_queues WHERE queue = :queue)"

_TEMPLATES: Mapping[str, str] = {
    "insert": """
        INSERT INTO jobs (name, queue, args, state, max_attempts, run_at, created_at, unique_key,
                          schedule, fire_time, priority, concurrency_key, concurrency_limit,
                          finished_at, parent_id, continue_on, parent_result)
        VALUES (:name, :queue, :args, :state, :max_attempts, :run_at, :now, :unique_key,
                :schedule, :fire_time, :priority, :concurrency_key, :concurrency_limit,
                :finished_at, :parent_id, :continue_on, :parent_result)
        ON CONFLICT DO NOTHING RETURNING id
    """,
    # SQLite's merged inserts of plain jobs (no unique key, no schedule): ``{rows}`` is filled
    # with one ``(...)`` of positional marks per job, in the column order below; AUTOINCREMENT
    # gives the rows consecutive ids, in order, the last one the cursor's ``lastrowid``.
    "insert_rows": """
        INSERT INTO jobs (name, queue, args, state, max_attempts, run_at, created_at,
                          priority, concurrency_key, concurrency_limit)
        VALUES {rows}
    """,
    # Jobs inserted already claimed (`Store.insert_and_claim`), for ``{rows}`` rows of 13
    # parameters: the columns of ``insert_rows``, then the claim's attempt and lease.
    "insert_running_rows": """
        INSERT INTO jobs (name, queue, args, state, max_attempts, run_at, created_at,
                          priority, concurrency_key, concurrency_limit,
                          attempt, lease_owner, lease_until)
        VALUES {rows}
    """,
    # Whether a job inserted now into ``:queue`` would be the next one claimed there, with no
    # limit to count: the queue is not paused, has no rate limit, and no job waits in it.
    "claims_at_insert": f"""
        SELECT NOT {_PAUSED}
            AND NOT EXISTS (SELECT 1 FROM queue_limits WHERE queue = :queue)
            AND NOT EXISTS (SELECT 1 FROM jobs WHERE {in_states(sources(Op.CLAIM))} AND queue = :queue)
    """,
    "unique_holder": f"SELECT id FROM jobs WHERE unique_key = :unique_key AND {UNFINISHED}",
    "occurrence": "SELECT id FROM jobs WHERE schedule = :schedule AND fire_time = :fire_time",
    "claim": f"""
        UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = :owner,
                        lease_until = :lease_until, claim_tag = :claim_tag
        WHERE id IN (
            SELECT id FROM jobs WHERE {in_states(sources(Op.CLAIM))} AND queue = :queue
            AND NOT {_PAUSED}
            AND (concurrency_key IS NULL OR concurrency_limit > (
                SELECT count(*) FROM jobs AS r {{running_key}}
                WHERE r.state = 'running' AND r.concurrency_key = jobs.concurrency_key))
            ORDER BY priority DESC, run_at, id LIMIT :limit {{skip_locked}}
        )
        RETURNING id, name, queue, args, attempt, max_attempts, priority, run_at, concurrency_key,
                  parent_id, parent_result
    """,
    # The jobs a claim tagged ``claim_tag`` took and still holds: what a claim whose answer was
    # lost with its connection had committed (its retry asks first; see `SQLiteDB._claim`).
    "adopt": """
        SELECT id, name, queue, args, attempt, max_attempts, priority, run_at, concurrency_key,
               parent_id, parent_result
        FROM jobs WHERE claim_tag = :claim_tag AND lease_owner = :owner AND state = 'running'
    """,
    # A batch may take more jobs of one key than its limit (the count above is read before the
    # batch): the excess is given back in the same transaction, unseen by anyone.
    "key_running": """
        SELECT count(*) FROM jobs {running_key} WHERE state = 'running' AND concurrency_key = :key
    """,
    "key_limit": "SELECT concurrency_limit FROM jobs WHERE id = :id",
    "unclaim": """
        UPDATE jobs SET state = 'enqueued', attempt = attempt - 1, lease_owner = NULL,
                        lease_until = NULL
        WHERE id = :id
    """,
    # The limit and the claims counted in the buckets overlapping (now - period, now], at once.
    "rate_limit": """
        SELECT rate_limit, period, (
            SELECT COALESCE(sum(n), 0) FROM queue_claims
            WHERE queue_claims.queue = queue_limits.queue
            AND queue_claims.at > :now - queue_limits.period * (1 + 1.0 / 64)
        ) FROM queue_limits WHERE queue = :queue {for_update}
    """,
    "rate_oldest": "SELECT min(at) FROM queue_claims WHERE queue = :queue AND at > :since",
    "key_held": f"""
        SELECT 1 FROM jobs WHERE {in_states(sources(Op.CLAIM))} AND queue = :queue
        AND concurrency_key IS NOT NULL LIMIT 1
    """,
    # Claims are counted in buckets of `RATE_BUCKETS`-th of the period (see `rate_bucket`).
    "rate_log": """
        INSERT INTO queue_claims (queue, at, n) VALUES (:queue, :now, :n)
        ON CONFLICT (queue, at) DO UPDATE SET n = queue_claims.n + excluded.n
    """,
    "rate_trim": "DELETE FROM queue_claims WHERE queue = :queue AND at <= :since",
    "set_rate_limit": """
        INSERT INTO queue_limits (queue, rate_limit, period) VALUES (:queue, :rate_limit, :period)
        ON CONFLICT (queue) DO UPDATE SET rate_limit = excluded.rate_limit,
            period = excluded.period
    """,
    "clear_rate_limit": "DELETE FROM queue_limits WHERE queue = :queue",
    "rate_limits": "SELECT queue, rate_limit, period FROM queue_limits ORDER BY queue",
    "renew": f"UPDATE jobs SET lease_until = :lease_until WHERE {_FENCE}",
    "succeed": f"""
        UPDATE jobs SET state = 'succeeded', finished_at = :now, lease_owner = NULL,
                        lease_until = NULL, result = :result
        WHERE {_FENCE}
    """,
    # A batch of successes: the tokens are checked in one read, then the jobs whose token holds
    # are updated in one statement (``{ids}`` and ``{now}`` filled with positional marks).
    "running_tokens": """
        SELECT id, attempt, lease_owner FROM jobs WHERE id IN ({ids}) AND state = 'running'
        {for_update}
    """,
    "succeed_ids": """
        UPDATE jobs SET state = 'succeeded', finished_at = {now}, lease_owner = NULL,
                        lease_until = NULL, result = NULL
        WHERE id IN ({ids}) AND state = 'running'
    """,
    "fail": f"""
        UPDATE jobs SET
            state = CASE WHEN cancel_requested = 1 THEN 'cancelled'
                         WHEN :retry_at IS NULL THEN 'dead' ELSE 'retrying' END,
            run_at = COALESCE(:retry_at, run_at),
            finished_at = CASE WHEN cancel_requested = 1 OR :retry_at IS NULL THEN :now
                               ELSE NULL END,
            lease_owner = NULL, lease_until = NULL
        WHERE {_FENCE}
        RETURNING state
    """,
    "interrupt": f"UPDATE jobs SET {_GIVE_BACK} WHERE {_FENCE} RETURNING queue, state",
    "expire": f"""
        UPDATE jobs SET {_GIVE_BACK}
        WHERE id IN (
            SELECT id FROM jobs WHERE state = 'running' AND lease_until < :now {{skip_locked}}
        )
        RETURNING id, queue, attempt, state
    """,
    # A continuation's insert reads its parent under a row lock, so that the parent's end (which
    # resolves its continuations) cannot commit between the read and the insert.
    "parent": "SELECT state, result FROM jobs WHERE id = :id {for_update}",
    "any_awaiting": f"SELECT 1 FROM jobs WHERE {_AWAITING} LIMIT 1",
    **{f"continue_{end.value}": _continue(end) for end in PARENT_ENDS},
    "abandon": f"""
        UPDATE jobs SET state = 'cancelled', finished_at = :now
        WHERE parent_id = :id AND {_AWAITING}
        RETURNING id, continue_on
    """,
    "continuations_of": """
        SELECT parent_id, id FROM jobs WHERE parent_id IN ({ids}) ORDER BY id
    """,
    "probe": "SELECT state, attempt, max_attempts, queue, unique_key FROM jobs WHERE id = :id",
    "cancel": f"""
        UPDATE jobs SET state = 'cancelled', finished_at = :now WHERE id = :id AND {_CANCEL_NOW}
    """,
    "request_cancel": f"UPDATE jobs SET cancel_requested = 1 WHERE id = :id AND {_CANCEL_LATER}",
    "cancelling": """
        SELECT id FROM jobs WHERE id IN ({ids}) AND state = 'running' AND cancel_requested = 1
    """,
    "delete_errors": "DELETE FROM job_errors WHERE job_id = :id",
    "delete": f"DELETE FROM jobs WHERE id = :id AND {_DELETABLE}",
    "requeue": f"""
        UPDATE jobs SET state = 'enqueued', run_at = :now, finished_at = NULL,
                        max_attempts = :max_attempts, cancel_requested = 0, result = NULL
        WHERE id = :id AND {_REQUEUE}
    """,
    "pause_queue": """
        INSERT INTO paused_queues (queue, paused_at) VALUES (:queue, :now)
        ON CONFLICT (queue) DO NOTHING
    """,
    "resume_queue": "DELETE FROM paused_queues WHERE queue = :queue",
    "paused_queues": "SELECT queue FROM paused_queues ORDER BY queue",
    "define_schedule": """
        INSERT INTO schedule_definitions (name, job, queue, args, max_attempts)
        VALUES (:schedule, :job, :queue, :args, :max_attempts)
        ON CONFLICT (name) DO UPDATE SET job = excluded.job, queue = excluded.queue,
            args = excluded.args, max_attempts = excluded.max_attempts
    """,
    "schedule_definition": """
        SELECT job, queue, args, max_attempts, paused FROM schedule_definitions
        WHERE name = :schedule
    """,
    "schedule_names": "SELECT name FROM schedule_definitions ORDER BY name",
    "pause_schedule": "UPDATE schedule_definitions SET paused = :paused WHERE name = :schedule",
    "paused_schedules": "SELECT name FROM schedule_definitions WHERE paused = 1 ORDER BY name",
    "schedule_paused": "SELECT paused FROM schedule_definitions WHERE name = :schedule",
    "error": """
        INSERT INTO job_errors (job_id, attempt, at, error, traceback)
        VALUES (:id, :attempt, :now, :error, :traceback)
    """,
    "promote": f"""
        UPDATE jobs SET state = 'enqueued'
        WHERE id IN (
            SELECT id FROM jobs WHERE {in_states(sources(Op.PROMOTE))} AND run_at <= :now
            {{skip_locked}}
        )
        RETURNING queue
    """,
    "next_due": f"SELECT min(run_at) FROM jobs WHERE {in_states(sources(Op.PROMOTE))}",
    "cursor": "SELECT cursor FROM schedules WHERE name = :schedule",
    "set_cursor": """
        INSERT INTO schedules (name, cursor) VALUES (:schedule, :cursor)
        ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor
    """,
    "schedule_open": f"SELECT id FROM jobs WHERE schedule = :schedule AND {UNFINISHED} LIMIT 1",
    "retry": f"""
        UPDATE jobs SET state = 'enqueued', run_at = :now, finished_at = NULL,
                        max_attempts = :max_attempts
        WHERE id = :id AND {in_states(sources(Op.RETRY))}
    """,
    # ``{state}`` is filled with a literal (`in_states`) and ``{index}`` with `PRUNE_INDEXES`'
    # hint, so that a partial index on the finished time serves the search (without ANALYZE,
    # SQLite would scan every succeeded job by state); ``{ids}`` with the ids found.
    "prune_ids": """
        SELECT id FROM jobs {index} WHERE {state} AND finished_at < :before {prune_order}
        LIMIT :limit
    """,
    "prune_errors": "DELETE FROM job_errors WHERE job_id IN ({ids})",
    "prune": "DELETE FROM jobs WHERE id IN ({ids})",
    "definition": "SELECT queue, max_attempts, is_unique FROM job_definitions WHERE name = :name",
    "job_names": "SELECT name FROM job_definitions",
    "define": """
        INSERT INTO job_definitions (name, queue, max_attempts, is_unique)
        VALUES (:name, :queue, :max_attempts, :is_unique)
        ON CONFLICT (name) DO UPDATE SET queue = excluded.queue,
            max_attempts = excluded.max_attempts, is_unique = excluded.is_unique
    """,
    "get": f"SELECT {COLUMNS} FROM jobs WHERE id = :id",
    "list": f"SELECT {COLUMNS} FROM jobs {{where}} ORDER BY id LIMIT :limit OFFSET :offset",
    "errors_of": """
        SELECT job_id, attempt, at, error, traceback FROM job_errors
        WHERE job_id IN ({ids}) ORDER BY {row_order}
    """,
    "counts": "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state",
    # One seek of `jobs_search_state` per state, not a count of every job (`Store.has_work`).
    "has_work": f"""
        SELECT 1 FROM jobs WHERE {in_states(frozenset((JobState.ENQUEUED, JobState.RUNNING)))}
        AND queue = :queue LIMIT 1
    """,
    # --- progress and log of running attempts (`_reports`), fenced like `renew` ------------------
    "fenced": f"SELECT 1 FROM jobs WHERE {_FENCE}",
    "report_progress": """
        INSERT INTO job_progress (job_id, attempt, version, fraction, message, updated_at, dropped)
        VALUES (:id, :attempt, :version, :fraction, :message, :now, :dropped)
        ON CONFLICT (job_id, attempt) DO UPDATE SET version = excluded.version,
            fraction = excluded.fraction, message = excluded.message,
            updated_at = excluded.updated_at, dropped = excluded.dropped
        WHERE job_progress.version < excluded.version
    """,
    "report_line": """
        INSERT INTO job_log (job_id, attempt, seq, at, line) VALUES (:id, :attempt, :seq, :at, :line)
        ON CONFLICT (job_id, attempt, seq) DO NOTHING
    """,
    "job_exists": "SELECT 1 FROM jobs WHERE id = :id",
    "progress_of": """
        SELECT attempt, fraction, message, updated_at, dropped FROM job_progress
        WHERE job_id = :id ORDER BY attempt
    """,
    "log_of": "SELECT attempt, at, line FROM job_log WHERE job_id = :id ORDER BY attempt, seq",
    "delete_progress": "DELETE FROM job_progress WHERE job_id = :id",
    "delete_log": "DELETE FROM job_log WHERE job_id = :id",
    "prune_progress": "DELETE FROM job_progress WHERE job_id IN ({ids})",
    "prune_log": "DELETE FROM job_log WHERE job_id IN ({ids})",
    # --- the fire ledger of recurring schedules (`_reports.LedgerEntry`) ---------------------------
    "ledger_add": """
        INSERT INTO schedule_ledger (schedule, fire_time, outcome, job_id, reason, at, host)
        VALUES (:schedule, :fire_time, :outcome, :job_id, :reason, :now, :owner)
    """,
    "ledger_of": """
        SELECT schedule, fire_time, outcome, job_id, reason, at, host FROM schedule_ledger
        WHERE schedule = :schedule ORDER BY seq DESC LIMIT :limit
    """,
    "ledger_last": """
        SELECT schedule, fire_time, outcome, job_id, reason, at, host FROM schedule_ledger
        WHERE schedule = :schedule AND (:outcome IS NULL OR outcome = :outcome)
        ORDER BY seq DESC LIMIT 1
    """,
    "ledger_schedules": "SELECT DISTINCT schedule FROM schedule_ledger",
    # Keeps the newest ``:keep`` entries of a schedule.
    "ledger_trim": """
        DELETE FROM schedule_ledger WHERE schedule = :schedule AND seq <= (
            SELECT seq FROM schedule_ledger WHERE schedule = :schedule
            ORDER BY seq DESC LIMIT 1 OFFSET :keep)
    """,
    "define_schedule_policy": """
        UPDATE schedule_definitions SET cron = :cron, tz = :tz, misfire = :misfire,
            misfire_grace = :grace, overlap = :overlap
        WHERE name = :schedule
    """,
    "schedule_rows": """
        SELECT d.name, d.job, d.queue, d.paused, d.cron, d.tz, d.misfire, d.misfire_grace,
               d.overlap, s.cursor
        FROM schedule_definitions AS d LEFT JOIN schedules AS s ON s.name = d.name
        ORDER BY d.name
    """,
    "job_state": "SELECT state FROM jobs WHERE id = :id",
}

# The set-based forms of the per-job statements above, for dialects with arrays: the jobs come
# as parallel arrays turned into rows by ``unnest`` (``t``), so many jobs cost one statement.
# Each keeps its per-job statement's rule: the fence, the states, the columns written.
# ``id = ANY(:ids)`` lets the planner find the jobs by primary key (the join alone, with the
# row estimate of ``unnest``, can make it scan every running job).
_FENCE_MANY = (
    "jobs.id = ANY(:ids) AND jobs.id = t.job_id AND jobs.state = 'running' "
    "AND jobs.attempt = t.job_attempt AND jobs.lease_owner = :owner"
)
_TOKENS = "unnest(:ids, :attempts) AS t(job_id, job_attempt)"

BATCHED: Mapping[str, str] = {
    # Plain jobs only (no unique key, no occurrence: nothing can conflict); the ids come back
    # in the order of the arrays (a sequence numbers the rows in the order they are inserted).
    "insert_many": """
        INSERT INTO jobs (name, queue, args, state, max_attempts, run_at, created_at, priority,
                          concurrency_key, concurrency_limit)
        SELECT name, queue, args, state, max_attempts, run_at, created_at, priority,
               concurrency_key, concurrency_limit
        FROM unnest(:names, :queues, :argses, :states, :max_attemptses, :run_ats, :created_ats,
                    :priorities, :concurrency_keys, :concurrency_limits) WITH ORDINALITY
             AS t(name, queue, args, state, max_attempts, run_at, created_at, priority,
                  concurrency_key, concurrency_limit, ord)
        ORDER BY ord
        RETURNING id
    """,
    "succeed_many": f"""
        UPDATE jobs SET state = 'succeeded', finished_at = :now, lease_owner = NULL,
                        lease_until = NULL, result = t.result
        FROM unnest(:ids, :attempts, :results) AS t(job_id, job_attempt, result)
        WHERE {_FENCE_MANY}
        RETURNING jobs.id
    """,
    # Failed attempts and their errors in one statement: an error is recorded only for the
    # attempts the fence let through.
    "fail_many": f"""
        WITH failed AS (
            UPDATE jobs SET
                state = CASE WHEN cancel_requested = 1 THEN 'cancelled'
                             WHEN t.retry_at IS NULL THEN 'dead' ELSE 'retrying' END,
                run_at = COALESCE(t.retry_at, run_at),
                finished_at = CASE WHEN cancel_requested = 1 OR t.retry_at IS NULL THEN :now
                                   ELSE NULL END,
                lease_owner = NULL, lease_until = NULL
            FROM unnest(:ids, :attempts, :retry_ats, :errors, :tracebacks) WITH ORDINALITY
                 AS t(job_id, job_attempt, retry_at, error, traceback, ord)
            WHERE {_FENCE_MANY}
            RETURNING jobs.id, jobs.attempt, jobs.state, t.error, t.traceback, t.ord
        ), recorded AS (
            INSERT INTO job_errors (job_id, attempt, at, error, traceback)
            SELECT id, attempt, :now, error, traceback FROM failed ORDER BY ord
        )
        SELECT id, state FROM failed
    """,
    "renew_many": f"""
        UPDATE jobs SET lease_until = :lease_until FROM {_TOKENS} WHERE {_FENCE_MANY}
        RETURNING jobs.id
    """,
}

_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


RATE_BUCKETS = 64  # also written in the ``rate_limit`` statement
"""A rate window is counted in this many buckets: a claim at ``t`` counts in the bucket starting
at ``floor(t / g) * g`` (``g = period / RATE_BUCKETS``), and a bucket counts while any part of it
lies in the window, so a limit is never exceeded in any window and a held claim waits at most
``g`` longer than an exact count would make it."""


def rate_bucket(t: float, period: float) -> tuple[float, float]:
    """The start of the bucket of a claim at ``t``, and the bucket width."""
    g = period / RATE_BUCKETS
    return (t // g) * g, g


def _lock_key_statement(dialect: Dialect) -> dict[str, str]:
    return {"lock_key": dialect.lock_key} if dialect.lock_key else {}


def render(dialect: Dialect) -> dict[str, str]:
    """Every statement of the table, rendered for ``dialect`` (``{where}``, ``{ids}`` and
    ``{state}`` slots stay for the callers that fill them per call), with those of `BATCHED`
    where the dialect has arrays."""
    out: dict[str, str] = {}
    templates = {**_TEMPLATES, **BATCHED} if dialect.arrays else _TEMPLATES
    for name, template in templates.items():
        text = template.replace("{skip_locked}", dialect.skip_locked)
        text = text.replace("{for_update}", dialect.for_update)
        text = text.replace("{row_order}", dialect.row_order)
        text = text.replace("{prune_order}", dialect.prune_order)
        # Pinned: without statistics, SQLite would count a key's running jobs through
        # ``jobs_search_state`` (every running job) rather than this partial index (the key's).
        text = text.replace("{running_key}", dialect.use_index("jobs_running_key"))
        text = _PARAM.sub(lambda m: dialect.param(m.group(1)), text)
        out[name] = " ".join(text.split())
    out.update(_lock_key_statement(dialect))
    return out


STATEMENTS = render(SQLITE)
"""The statements for SQLite, by name."""

def prune_indexes(dialect: Dialect) -> dict[JobState, str]:
    """The index hint of ``prune_ids`` per state in ``dialect`` (dead and cancelled jobs have no
    such index)."""
    return {
        JobState.SUCCEEDED: dialect.use_index("jobs_finished"),
        JobState.DEAD: "",
        JobState.CANCELLED: "",
    }


PRUNE_INDEXES = prune_indexes(SQLITE)
"""The index hint of `STATEMENTS` ``prune_ids`` per state (dead jobs have no such index)."""


SEARCH_ORDER = "created_at DESC, id DESC"
"""A search's order: newest first (`JobQuery`); the search indexes end in these columns."""

SEARCH_QUEUES = """
    WITH RECURSIVE queues(queue) AS (
        SELECT min(queue) FROM jobs
        UNION ALL
        SELECT (SELECT min(queue) FROM jobs WHERE jobs.queue > queues.queue) FROM queues
        WHERE queues.queue IS NOT NULL
    )
    SELECT queue FROM queues WHERE queue IS NOT NULL
"""
"""Every queue that has a job, in order: one step down ``jobs_search_queue`` per queue (a skip
scan), however many jobs there are."""

SEARCH_WALKS_PER_STATEMENT = 200
"""The most walks merged by one statement (SQLite allows 500 terms in a compound ``SELECT``);
the pages of several statements are merged by `merge_pages`."""


def search_needs_queues(query: JobQuery) -> bool:
    """Whether `search_statements` needs the list of queues (`SEARCH_QUEUES`) for ``query``:
    it filters on neither queue nor name."""
    return query.queue is None and query.name is None


def search_statements(
    dialect: Dialect, query: JobQuery, queues: Sequence[str] = ()
) -> list[tuple[str, dict[str, object]]]:
    """The ``SELECT``s of `COLUMNS` answering ``query`` in ``dialect``, with their parameters;
    ``queues``: every queue that has a job, when `search_needs_queues`.

    Each reads ``query.limit + 1`` rows (the extra one says whether another page follows) in
    the order of `SEARCH_ORDER` from the query's cursor, or the reverse order for a cursor
    that pages back; several statements' rows are merged by `merge_pages`. Equality filters
    and the time range lead the search indexes, so the database walks one index in order and
    stops after the page: ``jobs_search_state`` (state, queue, ``created_at``),
    ``jobs_search_queue`` (queue, ``created_at``) and ``jobs_search_name`` (name,
    ``created_at``). With a queue or a name, one walk per state asked (none: one walk); with
    states but neither, one walk per state and queue; with none of the three, one walk per
    queue. The walks of a statement are each limited to the page, merged (``UNION ALL``) and
    cut to the page; the argument filters are checked on the rows walked. Several walks
    without a name or argument filter read only their index (ids and creation times), and
    the page's rows are read once it is known.
    """
    p = dialect.param
    params: dict[str, object] = {"limit": query.limit + 1}
    where: list[str] = []
    if query.name is not None:
        where.append(f"name = {p('name')}")
        params["name"] = query.name
    if query.since is not None:
        where.append(f"created_at >= {p('since')}")
        params["since"] = query.since
    if query.until is not None:
        where.append(f"created_at < {p('until')}")
        params["until"] = query.until
    if query.args_contains is not None:
        where.append(dialect.contains("args", p("args_contains")))
        params["args_contains"] = query.args_contains
    for i, (path, value) in enumerate(query.args_equal):
        name = f"arg{i}"
        where.append(dialect.json_equal("args", tuple(path.split(".")), p(name), value))
        params[name] = json_param(dialect, value)
    order = SEARCH_ORDER
    if query.cursor is not None:
        forward = query.cursor.forward
        where.append(f"(created_at, id) {'<' if forward else '>'} ({p('cursor_at')}, {p('cursor_id')})")
        params["cursor_at"], params["cursor_id"] = query.cursor.created_at, query.cursor.id
        if not forward:
            order = "created_at, id"
    states: list[JobState | None] = [s for s in JobState if s in query.states] or [None]
    walk_queues: list[str | None] = [query.queue]
    if search_needs_queues(query):
        walk_queues = list(queues)
    walks = [(state, queue) for state in states for queue in walk_queues]

    # Walks that filter on indexed columns only read their index (state or queue, then
    # ``created_at`` and the id): each walk's page of keys, merged, then the rows of one page.
    keys_only = query.name is None and query.args_contains is None and not query.args_equal

    def select(
        columns: str, state: JobState | None, queue: str | None, tag: int, values: dict[str, object]
    ) -> str:
        clauses = list(where)
        if state is not None:
            clauses.insert(0, f"state = {p(f's{tag}')}")
            values[f"s{tag}"] = state.value
        if queue is not None:
            clauses.insert(0, f"queue = {p(f'q{tag}')}")
            values[f"q{tag}"] = queue
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return f"SELECT {columns} FROM jobs{condition} ORDER BY {order} LIMIT {p('limit')}"

    out: list[tuple[str, dict[str, object]]] = []
    for first in range(0, len(walks), SEARCH_WALKS_PER_STATEMENT):
        chunk = walks[first : first + SEARCH_WALKS_PER_STATEMENT]
        values = dict(params)
        if len(chunk) == 1:
            out.append((select(COLUMNS, *chunk[0], 0, values), values))
            continue
        columns = "id, created_at" if keys_only else COLUMNS
        branches = " UNION ALL ".join(
            f"SELECT * FROM ({select(columns, state, queue, i, values)}) AS s{i}"
            for i, (state, queue) in enumerate(chunk)
        )
        merged = f"SELECT * FROM ({branches}) AS found ORDER BY {order} LIMIT {p('limit')}"
        if keys_only:
            merged = (
                f"SELECT {COLUMNS} FROM jobs WHERE id IN (SELECT id FROM ({merged}) AS page) "
                f"ORDER BY {order}"
            )
        out.append((merged, values))
    return out


def merge_pages(query: JobQuery, pages: list[list[Any]]) -> list[Any]:
    """The rows of `search_statements`' statements (``pages``, each in the search's order) as
    one page of ``query.limit + 1`` rows at most, in that order (row: `COLUMNS`)."""
    if len(pages) == 1:
        return pages[0]
    forward = query.cursor is None or query.cursor.forward
    rows = [row for page in pages for row in page]
    rows.sort(key=search_key, reverse=forward)
    return rows[: query.limit + 1]


def json_param(dialect: Dialect, value: object) -> object:
    """How ``value`` is bound for `Dialect.json_equal`: itself for SQLite, JSON text for
    PostgreSQL (cast to ``jsonb``)."""
    if dialect.name == "postgres":
        return json.dumps(value)
    return value
