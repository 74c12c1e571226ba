"""Workload 6 - durable jobs on SQLite, with the host running: the common path and pickup.

``ours(n)`` (via ``benchmarks/jobs_ours.py``) is skipped with the note "jobs benchmark:
supervisors.jobs not available yet" when ``supervisors.jobs`` cannot be imported.

In this workload the ``raw_trio`` column holds plain sqlite3 / raw Trio baselines (see BASELINE).
"""

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import tempfile
import threading
from collections.abc import Callable, Iterator

import trio

from benchmarks import _peers
from benchmarks._common import Metric, RuntimeUnavailable, perf_counter

NAME = "jobs"
TITLE = "jobs on SQLite"
N = 10_000
QUICK_N = 500
BATCH = 100
TASKS = 8
PAYLOAD = b'{"task": "noop", "args": [], "kwargs": {}}'
METRICS = [
    Metric("enqueue_1task", "jobs/s", kind="rate", digits=0),
    Metric("e2e_1task", "jobs/s", kind="rate", digits=0),
    Metric("e2e_8tasks", "jobs/s", kind="rate", digits=0),
    Metric("bulk_enqueue_rate", "jobs/s", kind="rate", digits=0),
    Metric("end_to_end_bulk_rate", "jobs/s", kind="rate", digits=0),
    Metric("pickup_median", "ms", digits=3),
    Metric("pickup_p99", "ms", digits=3),
    Metric("xproc_pickup_median", "ms", digits=3),
    Metric("xproc_pickup_p99", "ms", digits=3),
]
PICKUP_N = 200
QUICK_PICKUP_N = 20
XPROC_N = 100
QUICK_XPROC_N = 10
DESCRIPTION = (
    "The common path with the host running: 1 and 8 tasks each awaiting enqueue of one no-op "
    "job at a time (one committed job per call) until N jobs ran; enqueue_1task = N / time "
    "until the last enqueue returned, e2e_* = N / time until the last job was recorded done. "
    "bulk_enqueue_rate: N jobs in one transaction (enqueue_many); end_to_end_bulk_rate: a bulk "
    "enqueue of N jobs until all are done. pickup: time from enqueue (one job, committed) to "
    "the job starting on an idle host, median and p99 (200 jobs; xproc_*: 100 jobs enqueued by "
    "another process). A fresh database file per repetition; WAL with synchronous=NORMAL "
    "(SQLiteStore's default) for ours and the baselines."
)
BASELINE = (
    "enqueue and e2e rows: a plain sqlite3 loop, no Trio, one autocommit transaction per "
    "INSERT, per claim (UPDATE ... LIMIT 1 RETURNING) and per completion; the same figure is "
    "the baseline of e2e_1task and e2e_8tasks. Bulk rows: executemany in one transaction, then "
    f"{BATCH} jobs claimed and completed per transaction. pickup: raw Trio + sqlite3, the INSERT "
    "committed in a worker thread, a trio.Event wakes the worker task, which claims the row in a "
    "worker thread and sets an Event the enqueuer waits on (no busy-waiting). xproc_pickup: "
    "the other process INSERTs and sends a datagram to a Unix socket beside the file, on which "
    "the raw Trio host's worker task waits before claiming. Reported in the raw_trio column."
)


@contextlib.contextmanager
def _tempdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="bench-jobs-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- raw sqlite3

_INSERT = "INSERT INTO jobs (state, payload) VALUES ('queued', ?)"
_CLAIM = (
    "UPDATE jobs SET state = 'running' WHERE id IN "
    "(SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?) RETURNING id, payload"
)
_COMPLETE = "UPDATE jobs SET state = 'done' WHERE id = ?"


def _raw_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # supervisors.jobs.SQLiteStore's default
    conn.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, payload BLOB NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS jobs_state_id ON jobs (state, id)")
    return conn


def raw_trio(n: int) -> dict[str, float]:
    """Raw baselines (the name keeps the runner's column contract)."""
    with _tempdir() as tmp:
        conn = _raw_connect(os.path.join(tmp, "enqueue.db"))
        try:
            t0 = perf_counter()
            for _ in range(n):
                conn.execute(_INSERT, (PAYLOAD,))
            enqueue = n / (perf_counter() - t0)
        finally:
            conn.close()
        e2e = _raw_per_operation(os.path.join(tmp, "e2e.db"), n)
        bulk_rate, bulk_e2e = _raw_bulk(os.path.join(tmp, "bulk.db"), n)
        median, p99 = _raw_pickup(os.path.join(tmp, "pickup.db"), PICKUP_N if n >= N else QUICK_PICKUP_N)
        x_median, x_p99 = _raw_xproc_pickup(os.path.join(tmp, "xproc.db"), XPROC_N if n >= N else QUICK_XPROC_N)
    return {"enqueue_1task": enqueue, "e2e_1task": e2e, "e2e_8tasks": e2e,
            "bulk_enqueue_rate": bulk_rate, "end_to_end_bulk_rate": bulk_e2e,
            "pickup_median": median, "pickup_p99": p99,
            "xproc_pickup_median": x_median, "xproc_pickup_p99": x_p99}


def _raw_per_operation(path: str, n: int) -> float:
    """n jobs, each INSERTed, claimed and completed in its own autocommit transaction: jobs/s."""
    conn = _raw_connect(path)
    try:
        t0 = perf_counter()
        for _ in range(n):
            conn.execute(_INSERT, (PAYLOAD,))
            (job_id, _payload), = conn.execute(_CLAIM, (1,)).fetchall()
            conn.execute(_COMPLETE, (job_id,))  # the no-op job ran
        return n / (perf_counter() - t0)
    finally:
        conn.close()


def _raw_bulk(path: str, n: int) -> tuple[float, float]:
    """Bulk insert of n rows in one transaction, then batched claim/complete: (bulk rate, e2e rate)."""
    conn = _raw_connect(path)
    try:
        t0 = perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT, [(PAYLOAD,)] * n)
        conn.execute("COMMIT")
        t1 = perf_counter()
        while True:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(_CLAIM, (BATCH,)).fetchall()
            if rows:
                conn.executemany(_COMPLETE, [(row[0],) for row in rows])
            conn.execute("COMMIT")
            if not rows:
                break
        t2 = perf_counter()
    finally:
        conn.close()
    return n / (t1 - t0), n / (t2 - t0)


def _stats(samples: list[float]) -> tuple[float, float]:
    """(median, nearest-rank p99) in ms of samples in seconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, max(0, -(-99 * len(ordered) // 100) - 1))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _raw_pickup(path: str, samples_n: int) -> tuple[float, float]:
    """Median and p99 (ms) of enqueue-to-start with raw Trio + sqlite3 (see BASELINE)."""

    async def main() -> list[float]:
        conn = _raw_connect(path)
        wake = trio.Event()
        started = trio.Event()
        started_at = 0.0
        samples: list[float] = []

        async def worker() -> None:
            nonlocal wake, started_at
            while True:
                await wake.wait()
                wake = trio.Event()
                if await trio.to_thread.run_sync(lambda: conn.execute(_CLAIM, (1,)).fetchall()):
                    started_at = perf_counter()
                    started.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker)
            for _ in range(samples_n):
                started = trio.Event()
                t0 = perf_counter()
                await trio.to_thread.run_sync(conn.execute, _INSERT, (PAYLOAD,))
                wake.set()
                await started.wait()
                samples.append(started_at - t0)
            nursery.cancel_scope.cancel()
        conn.close()
        return samples

    return _stats(trio.run(main))


def raw_client(path: str) -> Callable[[], None]:
    """The raw baseline's enqueue from another process: INSERT (committed), then a datagram."""
    conn = _raw_connect(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = path + ".sock"

    def enqueue() -> None:
        conn.execute(_INSERT, (PAYLOAD,))
        with contextlib.suppress(OSError):
            sock.sendto(b"!", address)

    return enqueue


def _raw_xproc_pickup(path: str, samples_n: int) -> tuple[float, float]:
    """Median and p99 (ms) from another process's INSERT to the raw Trio host's start."""
    from benchmarks.jobs_ours import Enqueuer

    async def main() -> list[float]:
        conn = _raw_connect(path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        await sock.bind(path + ".sock")
        started = trio.Event()
        started_at = 0.0
        samples: list[float] = []

        async def worker() -> None:
            nonlocal started_at
            while True:
                await sock.recv(64)
                if await trio.to_thread.run_sync(lambda: conn.execute(_CLAIM, (1,)).fetchall()):
                    started_at = perf_counter()
                    started.set()

        other = Enqueuer("raw", path)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker)
                for _ in range(samples_n):
                    started = trio.Event()
                    t0 = await other.enqueue()
                    await started.wait()
                    samples.append(started_at - t0)
                nursery.cancel_scope.cancel()
        finally:
            other.close()
            sock.close()
            conn.close()
        return samples

    return _stats(trio.run(main))


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
    from benchmarks import jobs_ours

    enqueue, e2e_1 = jobs_ours.common_path(n, 1)
    _, e2e_8 = jobs_ours.common_path(n, TASKS)
    median, p99 = jobs_ours.pickup_latency(PICKUP_N if n >= N else QUICK_PICKUP_N)
    x_median, x_p99 = jobs_ours.xproc_pickup_latency(XPROC_N if n >= N else QUICK_XPROC_N)
    return {"enqueue_1task": enqueue, "e2e_1task": e2e_1, "e2e_8tasks": e2e_8,
            "bulk_enqueue_rate": jobs_ours.enqueue_bulk(n),
            "end_to_end_bulk_rate": jobs_ours.end_to_end_bulk(n),
            "pickup_median": median * 1000, "pickup_p99": p99 * 1000,
            "xproc_pickup_median": x_median * 1000, "xproc_pickup_p99": x_p99 * 1000}


async def _ours_common_path(n: int, tasks: int) -> tuple[float, float]:
    """One repetition of ours' common path (``tasks`` enqueuers), inside ``run_trio``: for
    ``benchmarks/instructions.py jobs _ours_common_path 8`` (not a row of the table)."""
    from benchmarks import jobs_ours

    with _tempdir() as tmp:
        return await jobs_ours.common_path_in(tmp, n, tasks)


# --------------------------------------------------------------------------- huey (peer)


def peer_huey(n: int) -> dict[str, float]:
    """huey with its consumer running: 1 then 8 threads enqueue n no-op tasks, one at a time."""
    _peers.require_huey()
    out: dict[str, float] = {}
    for threads, key in ((1, "e2e_1task"), (TASKS, "e2e_8tasks")):
        enqueue, e2e = _huey_common_path(n, threads)
        out[key] = e2e
        if threads == 1:
            out["enqueue_1task"] = enqueue
    return out


def _huey_common_path(n: int, threads: int) -> tuple[float, float]:
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

        def enqueuer(k: int) -> None:
            for _ in range(k):
                noop()

        consumer = huey.create_consumer(workers=1, worker_type="thread", periodic=False,
                                        check_worker_health=False)
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM,
                                                         signal.SIGHUP)}
        try:
            consumer.start()  # one worker thread + the scheduler thread
            workers = [threading.Thread(target=enqueuer, args=(n // threads + (i < n % threads),))
                       for i in range(threads)]
            t0 = perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            t1 = perf_counter()
            if not finished.wait(timeout=600):
                raise TimeoutError(f"huey ran {count[0]} of {n} tasks")
            t2 = perf_counter()
        finally:
            consumer.stop(graceful=True)
            for sig, handler in saved.items():
                signal.signal(sig, handler)
            huey.storage.close()
    return n / (t1 - t0), n / (t2 - t0)


NOTES = [
    "jobs: the raw_trio column holds plain sqlite3 / raw Trio baselines; see benchmarks/README.md.",
    "jobs/huey: SqliteHuey(results=False) with its consumer running (1 worker thread, "
    "periodic=False; it polls its queue with backoff up to 0.1 s by default), 1 or 8 threads "
    "calling a no-op task N times in total; huey dequeues one task per transaction and runs "
    "SQLite with synchronous=FULL (its default; huey cannot select NORMAL).",
    "jobs/ours: queue concurrency 100 (at most 100 jobs claimed per transaction).",
]
