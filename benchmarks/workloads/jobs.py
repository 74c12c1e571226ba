"""Workload 6 - durable jobs on SQLite: enqueue N jobs, then run them all to completion.

``ours(n)`` is skipped with the note "jobs benchmark: supervisors.jobs not available yet" when
``supervisors.jobs`` cannot be imported. ``benchmarks/jobs_ours.py`` (by the jobs implementer)
has more jobs figures (bulk enqueue, pickup latency) as a standalone script.

In this workload the ``raw_trio`` column is the plain-sqlite3 baseline (no Trio involved).
"""

import contextlib
import os
import shutil
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Iterator

import trio

from benchmarks import _peers
from benchmarks._common import Metric, RuntimeUnavailable, perf_counter

NAME = "jobs"
TITLE = "jobs on SQLite"
N = 10_000
QUICK_N = 500
BATCH = 100
PAYLOAD = b'{"task": "noop", "args": [], "kwargs": {}}'
METRICS = [
    Metric("enqueue_rate", "jobs/s", kind="rate", digits=0),
    Metric("process_rate", "jobs/s", kind="rate", digits=0),
    Metric("end_to_end_rate", "jobs/s", kind="rate", digits=0),
]
DESCRIPTION = (
    "Enqueue N no-op jobs (one committed transaction per enqueue, as an application's "
    "enqueue call does), then run them all to completion. enqueue_rate = N / enqueue time, "
    "process_rate = N / time from the first claim until the last job is recorded done, "
    "end_to_end_rate = N / (enqueue + process). A fresh database file in a temporary "
    "directory per repetition; WAL with synchronous=NORMAL (SQLiteStore's default) for ours "
    "and the baseline."
)
BASELINE = (
    "A plain sqlite3 loop, no Trio: WAL journal, synchronous=NORMAL, table jobs(id INTEGER PRIMARY KEY, state, "
    "payload) with an index on (state, id); enqueue = INSERT in autocommit mode; processing = "
    f"BEGIN IMMEDIATE; UPDATE ... SET state='running' WHERE id IN (first {BATCH} queued) "
    "RETURNING id, payload; no-op handling; UPDATE ... SET state='done'; COMMIT - i.e. "
    f"{BATCH} jobs claimed and completed per transaction. Reported in the raw_trio column."
)


@contextlib.contextmanager
def _tempdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="bench-jobs-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- raw sqlite3


def raw_trio(n: int) -> dict[str, float]:
    """Raw baseline: a plain sqlite3 loop (the name keeps the runner's column contract)."""
    with _tempdir() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "jobs.db"), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # supervisors.jobs.SQLiteStore's default
            conn.execute(
                "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, "
                "payload BLOB NOT NULL)"
            )
            conn.execute("CREATE INDEX jobs_state_id ON jobs (state, id)")
            insert = "INSERT INTO jobs (state, payload) VALUES ('queued', ?)"
            claim = (
                "UPDATE jobs SET state = 'running' WHERE id IN "
                "(SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?) "
                "RETURNING id, payload"
            )
            complete = "UPDATE jobs SET state = 'done' WHERE id = ?"

            t0 = perf_counter()
            for _ in range(n):
                conn.execute(insert, (PAYLOAD,))
            t1 = perf_counter()
            done = 0
            while True:
                conn.execute("BEGIN IMMEDIATE")
                rows = conn.execute(claim, (BATCH,)).fetchall()
                if not rows:
                    conn.execute("COMMIT")
                    break
                for _job_id, _payload in rows:
                    pass  # the no-op job
                conn.executemany(complete, [(row[0],) for row in rows])
                conn.execute("COMMIT")
                done += len(rows)
            t2 = perf_counter()
            if done != n:
                raise AssertionError(f"processed {done} of {n} jobs")
        finally:
            conn.close()
    return {"enqueue_rate": n / (t1 - t0), "process_rate": n / (t2 - t1),
            "end_to_end_rate": n / (t2 - t0)}


# --------------------------------------------------------------------------- ours (placeholder)


def ours(n: int) -> dict[str, float]:
    try:
        import supervisors.jobs as jobs
    except Exception as exc:
        raise RuntimeUnavailable(
            f"jobs benchmark: supervisors.jobs not available yet ({type(exc).__name__})"
        ) from exc
    if getattr(jobs, "__file__", None) is None:  # a bare directory imports as a namespace pkg
        raise RuntimeUnavailable("jobs benchmark: supervisors.jobs not available yet")
    return _ours(n)


#: Concurrency of our queue in this workload; the job runner claims at most this many jobs per
#: transaction, so it matches the baseline's BATCH.
QUEUE_CONCURRENCY = BATCH


def _ours(n: int) -> dict[str, float]:
    """Same protocol as raw_trio(), through supervisors.jobs (SQLiteStore, its defaults).

    Enqueue phase: the store is opened (untimed), then n sequential ``await jobs.enqueue``.
    Process phase: the job subtree (``jobs.child_spec()``) is started under a root supervisor
    and timed until every job has run and ``jobs.wait_idle()`` sees none enqueued or running,
    so it includes starting the subtree (a few ms).
    """
    from benchmarks._common import run_trio
    from supervisors import Supervisor, open_tree
    from supervisors.jobs import JobRegistry, JobState, JobSystem, SQLiteStore

    class Probe:
        def __init__(self) -> None:
            self.count = 0
            self.done = trio.Event()

    async def main(path: str) -> dict[str, float]:
        probe = Probe()
        registry = JobRegistry()

        @registry.job()
        async def noop() -> None:
            probe.count += 1
            if probe.count >= n:
                probe.done.set()

        jobs = JobSystem(store=SQLiteStore(os.path.join(path, "jobs.db")), registry=registry,
                         queues={"default": QUEUE_CONCURRENCY})
        await jobs.store.open()
        t0 = perf_counter()
        for _ in range(n):
            await jobs.enqueue("noop")
        t1 = perf_counter()
        async with open_tree(Supervisor(name="bench", children=[jobs.child_spec()])):
            await probe.done.wait()
            await jobs.wait_idle()
            t2 = perf_counter()
            counts = await jobs.counts()
        if counts.by_state[JobState.SUCCEEDED] != n:
            raise AssertionError(f"expected {n} succeeded jobs, got {counts}")
        return {"enqueue_rate": n / (t1 - t0), "process_rate": n / (t2 - t1),
                "end_to_end_rate": n / (t2 - t0)}

    with _tempdir() as tmp:
        return run_trio(main, tmp)


# --------------------------------------------------------------------------- huey (peer)


def peer_huey(n: int) -> dict[str, float]:
    _peers.require_huey()
    from huey import SqliteHuey

    with _tempdir() as tmp:
        huey = SqliteHuey(name="bench", filename=os.path.join(tmp, "huey.db"), results=False)
        lock = threading.Lock()
        finished = threading.Event()
        count = [0]

        @huey.task()
        def noop() -> None:
            with lock:
                count[0] += 1
                if count[0] == n:
                    finished.set()

        t0 = perf_counter()
        for _ in range(n):
            noop()
        t1 = perf_counter()
        consumer = huey.create_consumer(workers=1, worker_type="thread", periodic=False,
                                        check_worker_health=False)
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM,
                                                         signal.SIGHUP)}
        try:
            consumer.start()  # one worker thread + the scheduler thread
            if not finished.wait(timeout=600):
                raise TimeoutError(f"huey ran {count[0]} of {n} tasks")
            t2 = perf_counter()
        finally:
            consumer.stop(graceful=True)
            for sig, handler in saved.items():
                signal.signal(sig, handler)
            huey.storage.close()
    return {"enqueue_rate": n / (t1 - t0), "process_rate": n / (t2 - t1),
            "end_to_end_rate": n / (t2 - t0)}


NOTES = [
    "jobs: the raw_trio column is a plain sqlite3 loop (no Trio); see benchmarks/README.md.",
    "jobs/huey: SqliteHuey(results=False), N no-op tasks enqueued from the main thread, then "
    "an in-process consumer (1 worker thread, periodic=False) runs until the N-th task ran; "
    "huey dequeues one task per transaction and runs SQLite with synchronous=FULL (its "
    "default; huey cannot select NORMAL).",
    "jobs/ours: queue concurrency 100 (at most 100 jobs claimed per transaction); "
    "process_rate includes starting the job subtree.",
]
