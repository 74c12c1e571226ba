"""Workload 10 - searching a job store of a million jobs: typical searches and paging.

One SQLite store of N jobs is built once per run (``executemany`` into the library's own schema,
every index in place, so the file is what a host would have): 20 job names, 5 queues, states as a
busy system has them (85 % succeeded, 5 % dead, 3 % enqueued, 2 % each scheduled, retrying and
cancelled, 1 % running), arguments ``{"order":"ord-<i>","user_id":<i mod 50,000>}``, one job
created every 10 ms. Then each search below is timed (median of repeated runs, after one
warm-up), in milliseconds per page of 50 jobs:

- ``state_first``: the newest dead jobs; ``state_deep``: a page of dead jobs from a cursor in the
  middle of them (keyset paging: no rows skipped by counting);
- ``two_states``: the newest dead or retrying jobs (one index walk per state and queue, merged);
- ``queue_name``: one queue and one name; ``time_range``: jobs created in a one-hour window in
  the middle of the table;
- ``args_equal``: one name and ``user_id == 4242`` (checked on that name's jobs, newest first);
- ``args_contains``: ``"ord-99"`` in the arguments (checked on all jobs, newest first).

- ``ours`` column: `SQLiteDB.search(JobQuery(...))` (what `JobClient.search` and a store's
  `search` run): the statements of ``_sql.search_statements`` (after the list of queues, for
  a search by state alone), the jobs' errors read too, `Job` records built, the page's cursors
  encoded.
- ``raw_trio`` column: the same SQL text run by hand on a plain ``sqlite3`` connection, rows
  fetched as tuples, plus one ``SELECT`` of the page's errors (what ours also reads).
"""

import contextlib
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from benchmarks._common import Metric, RuntimeUnavailable

NAME = "jobs_search"
TITLE = "job search in a million jobs"
N = 1_000_000
QUICK_N = 20_000
PAGE = 50
SEARCHES = ("state_first", "state_deep", "two_states", "queue_name", "time_range", "args_equal", "args_contains")
METRICS = [Metric(name, "ms", digits=3, baseline="same SQL, plain sqlite3") for name in SEARCHES]
DESCRIPTION = __doc__.split("\n\n", 1)[1]
BASELINE = "the same SQL text on a plain sqlite3 connection, plus one SELECT of the page's errors"
T0 = 1_700_000_000.0
STEP = 0.01
_STATES = (["succeeded"] * 85 + ["dead"] * 5 + ["enqueued"] * 3 + ["scheduled"] * 2 + ["retrying"] * 2
           + ["cancelled"] * 2 + ["running"])  # fmt: skip

_built: dict[int, str] = {}
_tmp: list[str] = []


@contextlib.contextmanager
def context() -> Iterator[None]:  # used by run.py around every implementation of this workload
    try:
        yield
    finally:
        for path in _tmp:
            shutil.rmtree(path, ignore_errors=True)
        _tmp.clear()
        _built.clear()


def _rows(n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        state = _STATES[(i * 37) % len(_STATES)]
        created = T0 + i * STEP
        finished = created + 1.0 if state in ("succeeded", "dead", "cancelled") else None
        lease = created + 30.0 if state == "running" else None
        args = json.dumps({"order": f"ord-{i}", "user_id": i % 50_000}, separators=(",", ":"))
        yield (f"job_{i % 20}", f"q{i % 5}", args, state, 1, 20, created, created, finished, lease)


def database(n: int) -> str:
    """The path of the store of ``n`` jobs, built on first use in this run."""
    if n in _built:
        return _built[n]
    try:
        from supervisors.jobs._sqlite_db import SQLiteDB
    except ImportError as exc:  # pragma: no cover - the library is part of the repository
        raise RuntimeUnavailable(f"supervisors.jobs not importable: {exc}") from exc
    tmp = tempfile.mkdtemp(prefix="bench-search-")
    _tmp.append(tmp)
    path = f"{tmp}/jobs.db"
    SQLiteDB(path).close()  # the schema, migrated
    t0 = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO jobs (name, queue, args, state, attempt, max_attempts, run_at, created_at, finished_at,"
        " lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _rows(n),
    )
    dead = conn.execute("SELECT id FROM jobs WHERE state = 'dead' ORDER BY id LIMIT 100").fetchall()
    conn.executemany(
        "INSERT INTO job_errors (job_id, attempt, at, error, traceback) VALUES (?, 1, ?, 'E: x', 'tb')",
        [(r[0], T0) for r in dead],
    )
    conn.execute("COMMIT")
    conn.close()
    print(f"  jobs_search: built {n:,} jobs in {time.perf_counter() - t0:.1f} s", flush=True)
    _built[n] = path
    return path


def queries(n: int, path: str) -> dict[str, Any]:
    """The `JobQuery` of each search for a store of ``n`` jobs."""
    from supervisors.jobs import Cursor, JobQuery

    conn = sqlite3.connect(path)
    dead = conn.execute("SELECT count(*) FROM jobs WHERE state = 'dead'").fetchone()[0]
    at, job_id = conn.execute(
        "SELECT created_at, id FROM jobs WHERE state = 'dead' ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
        (dead // 2,),
    ).fetchone()
    conn.close()
    middle = T0 + n * STEP / 2
    return {
        "state_first": JobQuery(states=["dead"], limit=PAGE),
        "state_deep": JobQuery(states=["dead"], limit=PAGE, cursor=Cursor(created_at=at, id=job_id)),
        "two_states": JobQuery(states=["dead", "retrying"], limit=PAGE),
        "queue_name": JobQuery(queue="q2", name="job_7", limit=PAGE),
        "time_range": JobQuery(since=middle, until=middle + 3600, limit=PAGE),
        "args_equal": JobQuery(name="job_2", args_equal={"user_id": 4242}, limit=PAGE),
        "args_contains": JobQuery(args_contains="ord-99", limit=PAGE),
    }


def _time(fn: Any, repeat: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def _repeat(n: int) -> int:
    return 5 if n >= 200_000 else 20


def raw_trio(n: int) -> dict[str, float]:
    """The same SQL by hand on a plain sqlite3 connection."""
    from supervisors.jobs._sql import SEARCH_QUEUES, SQLITE, merge_pages, search_needs_queues, search_statements

    path = database(n)
    conn = sqlite3.connect(path, isolation_level=None)
    errors = "SELECT job_id, attempt, at, error, traceback FROM job_errors WHERE job_id IN ({}) ORDER BY rowid"
    out: dict[str, float] = {}
    for name, query in queries(n, path).items():
        def run(query: Any = query) -> None:
            conn.execute("BEGIN")
            queues = [r[0] for r in conn.execute(SEARCH_QUEUES)] if search_needs_queues(query) else []
            statements = search_statements(SQLITE, query, queues)
            rows = merge_pages(query, [conn.execute(sql, params).fetchall() for sql, params in statements])
            ids = [r[0] for r in rows[:PAGE]]
            if ids:
                conn.execute(errors.format(",".join("?" * len(ids))), ids).fetchall()
            conn.execute("COMMIT")

        out[name] = _time(run, _repeat(n))
    conn.close()
    return out


def ours(n: int) -> dict[str, float]:
    """`SQLiteDB.search`: what `JobClient.search` and the stores run."""
    from supervisors.jobs._sqlite_db import SQLiteDB

    path = database(n)
    db = SQLiteDB(path)
    out: dict[str, float] = {}
    for name, query in queries(n, path).items():
        page = db.search(query)
        if len(page.jobs) == 0:
            raise AssertionError(f"search {name!r} found no job")
        out[name] = _time(lambda query=query: db.search(query), _repeat(n))
    db.close()
    return out
