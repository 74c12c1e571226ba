"""Whether long reads hold up enqueues: ``python benchmarks/read_stall.py [JOBS] [ROUNDS]``.

A `SQLiteStore` file holds JOBS finished jobs (default 1,000,000). In each round, 8 Trio tasks
each ``await jobs.enqueue`` 500 jobs one at a time (4,000 in all) while a task reads
``counts()`` (every job, per state and queue) every 50 ms, three ways, alternated:

- ``alone``: no reads, the baseline;
- ``reader``: ``store.counts()``, which runs on the store's reader connection;
- ``writer``: the same read through the writer thread (``store._run``), the path every read
  took before the reader connection: it queues with the writes.

Printed: the enqueue latency (median, p99, max) of each way, medians over the rounds, and how
long a count took.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from supervisors.jobs import JobRegistry, JobSystem, NewJob, SQLiteStore  # noqa: E402
from supervisors.jobs._sqlite_db import SQLiteDB  # noqa: E402

TASKS = 8
PER_TASK = 500
READ_EVERY = 0.05


def build(path: str, n: int) -> None:
    db = SQLiteDB(path)
    now = time.time()
    for start in range(0, n, 20_000):
        size = min(20_000, n - start)
        db.insert([NewJob(name="noop", queue="default", args="null", run_at=now, max_attempts=3)] * size, now)
    db.conn.execute("UPDATE jobs SET state = 'succeeded', finished_at = created_at")
    db.close()


async def one_round(path: str, way: str) -> dict[str, float]:
    registry = JobRegistry()

    @registry.job()
    async def noop() -> None:
        await trio.lowlevel.checkpoint()

    store = SQLiteStore(path)
    jobs = JobSystem(store=store, registry=registry, queues={"other": 10})  # no runner: enqueues only
    await store.open()
    latencies: list[float] = []
    reads: list[float] = []
    done = False

    async def enqueuer() -> None:
        for _ in range(PER_TASK):
            t0 = time.perf_counter()
            await jobs.enqueue("noop", queue="other")
            latencies.append(time.perf_counter() - t0)

    async def reader() -> None:
        while not done:
            t0 = time.perf_counter()
            if way == "reader":
                await store.counts()
            else:
                await store._run(lambda db: db.counts())
            reads.append(time.perf_counter() - t0)
            await trio.sleep(READ_EVERY)

    async with trio.open_nursery() as nursery:
        if way != "alone":
            nursery.start_soon(reader)
        async with trio.open_nursery() as enqueuers:
            for _ in range(TASKS):
                enqueuers.start_soon(enqueuer)
        done = True
    await store.aclose()
    latencies.sort()
    return {
        "median": statistics.median(latencies) * 1e3,
        "p99": latencies[int(len(latencies) * 0.99)] * 1e3,
        "max": latencies[-1] * 1e3,
        "count": statistics.median(reads) * 1e3 if reads else 0.0,
    }


def main(n: int, rounds: int) -> None:
    tmp = tempfile.mkdtemp(prefix="bench-read-stall-")
    try:
        path = f"{tmp}/jobs.db"
        build(path, n)
        ways = ("alone", "reader", "writer")
        results: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
        for _ in range(rounds):
            for way in ways:
                results[way].append(trio.run(one_round, path, way))
        print(f"{n:,} jobs kept; {TASKS} tasks x {PER_TASK} enqueues; a count every {READ_EVERY * 1e3:.0f} ms")
        print(f"median of {rounds} rounds, ms: {'way':8s} {'median':>7s} {'p99':>7s} {'max':>7s} {'count':>7s}")
        for way in ways:
            m = {key: statistics.median(r[key] for r in results[way]) for key in results[way][0]}
            print(f"{'':28s}{way:8s} {m['median']:7.2f} {m['p99']:7.2f} {m['max']:7.1f} {m['count']:7.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
