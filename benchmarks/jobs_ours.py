"""Durable jobs on SQLite: our `supervisors.jobs` against a plain sqlite3 loop.

Functions (each one repetition, a fresh database file in a temporary directory):

- ``enqueue_one_by_one(n) -> jobs/s``: ``await jobs.enqueue(...)`` n times (one transaction each).
- ``enqueue_bulk(n) -> jobs/s``: one ``await jobs.enqueue_many(...)`` of n jobs.
- ``end_to_end(n) -> jobs/s``: with the job subtree running, enqueue n no-op jobs in bulk and
  wait until all are recorded succeeded; n / (time from the enqueue call to the last record).
- ``pickup_latency(n) -> (median_s, p99_s)``: on an idle host, time from the call to
  ``enqueue`` until the job function starts, one job at a time, in the same process.
- ``raw_sqlite(n) -> dict``: the baseline, plain sqlite3 without Trio: one INSERT per
  transaction; claiming one job per transaction; claiming and completing 100 per transaction.

``python benchmarks/jobs_ours.py [N]`` prints them all (N defaults to 10,000).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import trio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from supervisors import Supervisor, open_tree
from supervisors.jobs import JobRegistry, JobRequest, JobState, JobSystem, SQLiteStore

QUEUE_CONCURRENCY = 100
"""Concurrency of the benchmark's queue: also the largest batch claimed in one transaction."""


@contextlib.contextmanager
def _tempdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="bench-jobs-ours-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class _Probe:
    """Counts no-op job runs and records when each starts."""

    def __init__(self) -> None:
        self.count = 0
        self.target = math.inf
        self.done = trio.Event()
        self.started_at: list[float] = []
        self.record = False


def _system(path: str, probe: _Probe) -> JobSystem:
    registry = JobRegistry()

    @registry.job()
    async def noop() -> None:
        if probe.record:
            probe.started_at.append(time.perf_counter())
        probe.count += 1
        if probe.count >= probe.target:
            probe.done.set()

    return JobSystem(
        store=SQLiteStore(os.path.join(path, "jobs.db")),
        registry=registry,
        queues={"default": QUEUE_CONCURRENCY},
    )


def enqueue_one_by_one(n: int) -> float:
    """Jobs per second for ``n`` sequential ``enqueue`` calls (one transaction each)."""

    async def main(path: str) -> float:
        jobs = _system(path, _Probe())
        await jobs.store.open()
        t0 = time.perf_counter()
        for _ in range(n):
            await jobs.enqueue("noop")
        return n / (time.perf_counter() - t0)

    with _tempdir() as path:
        return trio.run(main, path)


def enqueue_bulk(n: int) -> float:
    """Jobs per second for one ``enqueue_many`` of ``n`` jobs (one transaction)."""

    async def main(path: str) -> float:
        jobs = _system(path, _Probe())
        await jobs.store.open()
        requests = [JobRequest(job="noop")] * n
        t0 = time.perf_counter()
        await jobs.enqueue_many(requests)
        return n / (time.perf_counter() - t0)

    with _tempdir() as path:
        return trio.run(main, path)


def end_to_end(n: int) -> float:
    """Jobs per second from a bulk enqueue of ``n`` no-op jobs until all are recorded done."""

    async def main(path: str) -> float:
        probe = _Probe()
        probe.target = n
        jobs = _system(path, probe)
        async with open_tree(Supervisor(name="bench", children=[jobs.child_spec()])):
            requests = [JobRequest(job="noop")] * n
            t0 = time.perf_counter()
            await jobs.enqueue_many(requests)
            await probe.done.wait()
            await jobs.wait_idle()
            elapsed = time.perf_counter() - t0
            counts = await jobs.counts()
        if counts.by_state[JobState.SUCCEEDED] != n:
            raise AssertionError(f"expected {n} succeeded jobs, got {counts}")
        return n / elapsed

    with _tempdir() as path:
        return trio.run(main, path)


def pickup_latency(n: int) -> tuple[float, float]:
    """Median and p99 seconds from ``enqueue`` to the job's start, on an idle host."""

    async def main(path: str) -> list[float]:
        probe = _Probe()
        probe.record = True
        jobs = _system(path, probe)
        samples: list[float] = []
        async with open_tree(Supervisor(name="bench", children=[jobs.child_spec()])):
            await trio.sleep(0.05)
            for i in range(n):
                probe.target = i + 1
                probe.done = trio.Event()
                t0 = time.perf_counter()
                await jobs.enqueue("noop")
                await probe.done.wait()
                samples.append(probe.started_at[-1] - t0)
                await jobs.wait_idle()
        return samples

    with _tempdir() as path:
        samples = sorted(trio.run(main, path))
    p99 = samples[min(len(samples) - 1, math.ceil(0.99 * len(samples)) - 1)]
    return statistics.median(samples), p99


def raw_sqlite(n: int) -> dict[str, float]:
    """The plain-sqlite3 baseline (no Trio): enqueue and process rates, jobs/s."""
    out: dict[str, float] = {}
    with _tempdir() as path:
        conn = sqlite3.connect(os.path.join(path, "raw.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, payload TEXT)")
        conn.execute("CREATE INDEX jobs_state_id ON jobs (state, id)")
        claim = (
            "UPDATE jobs SET state = 'running' WHERE id IN "
            "(SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?) RETURNING id"
        )
        for batch in (1, 100):
            t0 = time.perf_counter()
            for _ in range(n):
                conn.execute("INSERT INTO jobs (state, payload) VALUES ('queued', 'null')")
            t1 = time.perf_counter()
            while True:
                conn.execute("BEGIN IMMEDIATE")
                rows = conn.execute(claim, (batch,)).fetchall()
                conn.executemany("UPDATE jobs SET state = 'done' WHERE id = ?", rows)
                conn.execute("COMMIT")
                if not rows:
                    break
            t2 = time.perf_counter()
            out["enqueue_one_per_txn"] = n / (t1 - t0)
            out[f"process_{batch}_per_txn"] = n / (t2 - t1)
            out[f"end_to_end_{batch}_per_txn"] = n / (t2 - t0)
        conn.close()
    return out


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 10_000
    print(f"sqlite {sqlite3.sqlite_version}, n={n}, queue concurrency {QUEUE_CONCURRENCY}")
    for name, value in raw_sqlite(n).items():
        print(f"raw sqlite3 {name:<24} {value:>10,.0f} jobs/s")
    print(f"enqueue one by one            {enqueue_one_by_one(n):>10,.0f} jobs/s")
    print(f"enqueue bulk                  {enqueue_bulk(n):>10,.0f} jobs/s")
    print(f"end to end (bulk + run)       {end_to_end(n):>10,.0f} jobs/s")
    median, p99 = pickup_latency(200)
    print(f"pickup latency (200 jobs)     median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")


if __name__ == "__main__":
    main(sys.argv)
