"""What claiming by priority costs on a backlog, by layout: ``python benchmarks/claim_layout.py [ROUNDS]``.

The ``jobs_claim`` workload finds claiming with priorities and a rate limit dearer than plain
claiming. This script asks whether that is our code or the data: the same backlog (N no-op
jobs of one queue, priorities drawn from 0..9, or all 0 for *plain*) is claimed 10 at a time
and each batch settled as succeeded in the next claim's transaction, in four ways:

- ``store``: the store's own statements (`SQLiteDB.settle_and_claim`, no rate limit);
- ``by hand, rowid``: hand-written sqlite3 on a table like ours (rowid = job id, the same
  columns, the ready index ``(queue, priority DESC, run_at, id) WHERE state = 'enqueued'`` and
  the search, lease and finished indexes): one ``UPDATE ... RETURNING`` claims, one ``UPDATE``
  settles;
- ``by hand, clustered``: the same on a table clustered by claim order (``WITHOUT ROWID``,
  primary key ``(queue, priority, run_at, id)``, a unique index on ``id``), the layout that
  keeps the jobs of one priority next to each other;
- ``by hand, leases``: the rowid table, with a claim recorded in a table of leases instead of
  the job's row, so that only the settling writes each row of the backlog (once instead of
  twice).

For the hand-written layouts it also times N enqueues of one job per transaction. Rates
are jobs per second of this process's CPU time (``time.process_time``); each round runs every
variant once, alternated, and the medians over the rounds are printed with the ratio
``plain / priorities`` (what priorities cost) for each way.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from supervisors.jobs import NewJob  # noqa: E402
from supervisors.jobs._sqlite_db import SQLiteDB  # noqa: E402

N = 20_000
BATCH = 10
NOW = 1_000_000.0

_COLUMNS = """
    name TEXT NOT NULL, queue TEXT NOT NULL, args TEXT NOT NULL, state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, run_at REAL NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, lease_owner TEXT, lease_until REAL,
    unique_key TEXT, schedule TEXT, fire_time REAL, cancel_requested INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0, concurrency_key TEXT, concurrency_limit INTEGER,
    result TEXT, parent_id INTEGER, continue_on TEXT, parent_result TEXT, claim_tag TEXT
"""
_SHARED_INDEXES = """
    CREATE INDEX jobs_search_state ON jobs(state, queue, created_at);
    CREATE INDEX jobs_search_queue ON jobs(queue, created_at);
    CREATE INDEX jobs_search_name ON jobs(name, created_at);
    CREATE INDEX jobs_leased ON jobs(lease_until) WHERE state = 'running';
    CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state = 'succeeded';
"""
# Clustered: the key sorts by claim order, so priority is stored negated (highest first).
_LAYOUTS = {
    "rowid": (
        f"CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, {_COLUMNS});"
        "CREATE INDEX jobs_ready ON jobs(queue, priority DESC, run_at, id) WHERE state = 'enqueued';",
        "SELECT id FROM jobs WHERE state = 'enqueued' AND queue = 'q' ORDER BY priority DESC, run_at, id LIMIT ?",
    ),
    "clustered": (
        f"CREATE TABLE jobs (id INTEGER NOT NULL, {_COLUMNS}, "
        "PRIMARY KEY (queue, priority, run_at, id)) WITHOUT ROWID;"
        "CREATE UNIQUE INDEX jobs_id ON jobs(id);"
        "CREATE INDEX jobs_ready ON jobs(queue) WHERE state = 'enqueued';",
        "SELECT id FROM jobs INDEXED BY jobs_ready WHERE state = 'enqueued' AND queue = 'q' "
        "ORDER BY priority, run_at, id LIMIT ?",
    ),
}


_INSERT = (
    "INSERT INTO jobs (name, queue, args, state, max_attempts, run_at, created_at, priority) "
    "VALUES ('noop', 'q', 'null', 'enqueued', 3, ?, ?, ?)"
)
"""A job of the rowid layouts (the id from the table)."""


def _priorities(features: bool) -> list[int]:
    rng = random.Random(1)
    return [rng.randrange(10) if features else 0 for _ in range(N)]


def _store(path: str, features: bool) -> dict[str, float]:
    db = SQLiteDB(path)
    jobs = [
        NewJob(name="noop", queue="q", args="null", run_at=NOW, max_attempts=3, priority=p)
        for p in _priorities(features)
    ]
    for start in range(0, N, 1000):
        db.insert(jobs[start : start + 1000], NOW)
    done: list[tuple[int, int]] = []
    t0 = time.process_time()
    while True:
        got = db.settle_and_claim("q", BATCH, "bench", NOW, NOW + 30.0, done, ())
        done = [job.token for job in got.claimed]
        if not done:
            break
    claim = N / (time.process_time() - t0)
    db.close()
    return {"claim": claim}


def _connect(path: str, schema: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-16384")  # as the store's connections
    conn.executescript(schema + _SHARED_INDEXES)
    return conn


def _enqueue(conn: sqlite3.Connection, insert: str, rows: list[tuple[object, ...]]) -> float:
    """Enqueues per second of CPU time, one job per transaction."""
    t0 = time.process_time()
    for params in rows:
        conn.execute(insert, params)  # autocommit: one transaction per enqueue
    return len(rows) / (time.process_time() - t0)


def _work_off(
    conn: sqlite3.Connection, claim_sql: str, settle: Callable[[list[int], str], None]
) -> float:
    """Claims per second of CPU time: ``claim_sql`` (lease deadline, batch size) takes a
    batch; ``settle(ids, marks)`` records the previous one as succeeded, in the same
    transaction."""
    done: list[int] = []
    t0 = time.process_time()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        if done:
            settle(done, ",".join("?" * len(done)))
        done = [row[0] for row in conn.execute(claim_sql, (NOW + 30.0, BATCH)).fetchall()]
        conn.execute("COMMIT")
        if not done:
            break
    return N / (time.process_time() - t0)


def _by_hand(layout: str, path: str, features: bool) -> dict[str, float]:
    schema, ready = _LAYOUTS[layout]
    conn = _connect(path, schema)
    if layout == "clustered":
        enqueue = _enqueue(
            conn,
            "INSERT INTO jobs (id, name, queue, args, state, max_attempts, run_at, created_at, "
            "priority) VALUES (?, 'noop', 'q', 'null', 'enqueued', 3, ?, ?, ?)",
            [(job_id, NOW, NOW, -p) for job_id, p in enumerate(_priorities(features), start=1)],
        )
    else:
        enqueue = _enqueue(conn, _INSERT, [(NOW, NOW, p) for p in _priorities(features)])

    def settle(done: list[int], marks: str) -> None:
        conn.execute(
            "UPDATE jobs SET state = 'succeeded', finished_at = ?, lease_owner = NULL, "
            f"lease_until = NULL WHERE id IN ({marks}) AND state = 'running'",
            (NOW, *done),
        )

    claim = _work_off(
        conn,
        "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = 'bench', "
        f"lease_until = ? WHERE id IN ({ready}) RETURNING id",
        settle,
    )
    conn.close()
    return {"enqueue": enqueue, "claim": claim}


def _by_hand_leases(path: str, features: bool) -> dict[str, float]:
    """The rowid table, with a claim recorded in a table of leases instead of the job's row:
    only the settling writes the row (``enqueued`` to ``succeeded``), so each row of the
    backlog is written once, not twice. A sketch of a layout, not a design: the job's state
    while it runs would have to be read from two tables."""
    conn = _connect(
        path,
        _LAYOUTS["rowid"][0]
        + "CREATE TABLE leases (id INTEGER PRIMARY KEY, attempt INTEGER NOT NULL, "
        "owner TEXT NOT NULL, until REAL NOT NULL);"
        "CREATE INDEX leases_until ON leases(until);",
    )
    enqueue = _enqueue(conn, _INSERT, [(NOW, NOW, p) for p in _priorities(features)])

    def settle(done: list[int], marks: str) -> None:
        conn.execute(
            "UPDATE jobs SET state = 'succeeded', finished_at = ?, attempt = attempt + 1 "
            f"WHERE id IN ({marks}) AND +state = 'enqueued'",  # + : by id, not by state
            (NOW, *done),
        )
        conn.execute(f"DELETE FROM leases WHERE id IN ({marks})", done)

    claim = _work_off(
        conn,
        "INSERT INTO leases (id, attempt, owner, until) "
        "SELECT id, attempt + 1, 'bench', ? FROM jobs WHERE state = 'enqueued' AND queue = 'q' "
        "AND NOT EXISTS (SELECT 1 FROM leases AS l WHERE l.id = jobs.id) "
        "ORDER BY priority DESC, run_at, id LIMIT ? RETURNING id",
        settle,
    )
    conn.close()
    return {"enqueue": enqueue, "claim": claim}


_VARIANTS: dict[str, Callable[[str, bool], dict[str, float]]] = {
    "store": _store,
    "by hand, rowid": lambda path, features: _by_hand("rowid", path, features),
    "by hand, clustered": lambda path, features: _by_hand("clustered", path, features),
    "by hand, leases": _by_hand_leases,
}


def main(rounds: int) -> None:
    results: dict[tuple[str, bool], list[dict[str, float]]] = {}
    for _ in range(rounds):
        for name, variant in _VARIANTS.items():
            for features in (False, True):
                tmp = tempfile.mkdtemp(prefix="bench-claim-layout-")
                try:
                    got = variant(f"{tmp}/jobs.db", features)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                results.setdefault((name, features), []).append(got)
    print(f"N = {N:,} jobs of one queue, claimed {BATCH} at a time; median of {rounds} rounds (jobs/s of CPU time)")
    print(f"{'way':20s} {'metric':8s} {'plain':>9s} {'priorities':>11s} {'ratio':>6s}")
    for name in _VARIANTS:
        for metric in results[(name, False)][0]:
            plain = statistics.median(r[metric] for r in results[(name, False)])
            prio = statistics.median(r[metric] for r in results[(name, True)])
            print(f"{name:20s} {metric:8s} {plain:9,.0f} {prio:11,.0f} {plain / prio:5.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
