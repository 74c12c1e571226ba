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
import trio.lowlevel

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
    Metric("bulk_enqueue_rate", "jobs/s", kind="rate", digits=0),
    Metric("end_to_end_bulk_rate", "jobs/s", kind="rate", digits=0),
    Metric("pickup_median", "ms", digits=3),
    Metric("pickup_p99", "ms", digits=3),
]
PICKUP_N = 200
QUICK_PICKUP_N = 20
DESCRIPTION = (
    "Enqueue N no-op jobs (one committed transaction per enqueue, as an application's "
    "enqueue call does), then run them all to completion. enqueue_rate = N / enqueue time, "
    "process_rate = N / time from the first claim until the last job is recorded done, "
    "end_to_end_rate = N / (enqueue + process). bulk_enqueue_rate: N jobs in one transaction "
    "(enqueue_many); end_to_end_bulk_rate: a bulk enqueue of N jobs until all are done. "
    "pickup: time from enqueue (one job, committed) to the job starting, on an idle host, "
    "median and p99 over 200 jobs. A fresh database file in a temporary "
    "directory per repetition; WAL with synchronous=NORMAL (SQLiteStore's default) for ours "
    "and the baseline."
)
BASELINE = (
    "A plain sqlite3 loop, no Trio: WAL journal, synchronous=NORMAL, table jobs(id INTEGER PRIMARY KEY, state, "
    "payload) with an index on (state, id); enqueue = INSERT in autocommit mode; processing = "
    f"BEGIN IMMEDIATE; UPDATE ... SET state='running' WHERE id IN (first {BATCH} queued) "
    "RETURNING id, payload; no-op handling; UPDATE ... SET state='done'; COMMIT - i.e. "
    f"{BATCH} jobs claimed and completed per transaction; bulk = executemany in one "
    "transaction. Pickup baseline: raw Trio + sqlite3 - the INSERT is committed in a worker "
    "thread (trio.to_thread), a trio.Event wakes the waiting worker task, which claims the row "
    "in a worker thread. Reported in the raw_trio column."
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
        bulk_rate, bulk_e2e = _raw_bulk(os.path.join(tmp, "bulk.db"), n)
    median, p99 = _raw_pickup(PICKUP_N if n >= N else QUICK_PICKUP_N)
    return {"enqueue_rate": n / (t1 - t0), "process_rate": n / (t2 - t1),
            "end_to_end_rate": n / (t2 - t0), "bulk_enqueue_rate": bulk_rate,
            "end_to_end_bulk_rate": bulk_e2e, "pickup_median": median, "pickup_p99": p99}


def _raw_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, payload BLOB NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS jobs_state_id ON jobs (state, id)")
    return conn


def _raw_bulk(path: str, n: int) -> tuple[float, float]:
    """Bulk insert of n rows in one transaction, then batched claim/complete: (bulk rate, e2e rate)."""
    conn = _raw_connect(path)
    try:
        t0 = perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO jobs (state, payload) VALUES ('queued', ?)", [(PAYLOAD,)] * n)
        conn.execute("COMMIT")
        t1 = perf_counter()
        while True:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "UPDATE jobs SET state = 'running' WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' "
                "ORDER BY id LIMIT ?) RETURNING id", (BATCH,)).fetchall()
            if rows:
                conn.executemany("UPDATE jobs SET state = 'done' WHERE id = ?", rows)
            conn.execute("COMMIT")
            if not rows:
                break
        t2 = perf_counter()
    finally:
        conn.close()
    return n / (t1 - t0), n / (t2 - t0)


def _raw_pickup(samples_n: int) -> tuple[float, float]:
    """Median and p99 (ms) of enqueue-to-start with raw Trio + sqlite3 (see BASELINE)."""
    import statistics

    async def main(path: str) -> list[float]:
        conn = _raw_connect(path)
        wake = trio.Event()
        started: list[float] = []
        samples: list[float] = []

        def claim() -> list[tuple[int]]:
            return conn.execute(
                "UPDATE jobs SET state = 'running' WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' "
                "ORDER BY id LIMIT 1) RETURNING id").fetchall()

        async def worker() -> None:
            nonlocal wake
            while True:
                await wake.wait()
                wake = trio.Event()
                if await trio.to_thread.run_sync(claim):
                    started.append(perf_counter())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker)
            for _ in range(samples_n):
                t0 = perf_counter()
                await trio.to_thread.run_sync(conn.execute, "INSERT INTO jobs (state, payload) VALUES ('queued', ?)",
                                              (PAYLOAD,))
                wake.set()
                while len(started) <= len(samples):
                    await trio.lowlevel.checkpoint()
                samples.append((started[-1] - t0) * 1000)
            nursery.cancel_scope.cancel()
        conn.close()
        return samples

    with _tempdir() as tmp:
        samples = sorted(trio.run(main, os.path.join(tmp, "pickup.db")))
    p99 = samples[min(len(samples) - 1, max(0, -(-99 * len(samples) // 100) - 1))]
    return statistics.median(samples), p99


# --------------------------------------------------------------------------- ours


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

    from benchmarks import jobs_ours

    def extra() -> dict[str, float]:
        median, p99 = jobs_ours.pickup_latency(PICKUP_N if n >= N else QUICK_PICKUP_N)
        return {"bulk_enqueue_rate": jobs_ours.enqueue_bulk(n), "end_to_end_bulk_rate": jobs_ours.end_to_end(n),
                "pickup_median": median * 1000, "pickup_p99": p99 * 1000}

    with _tempdir() as tmp:
        result: dict[str, float] = run_trio(main, tmp)
    result.update(extra())
    return result


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
