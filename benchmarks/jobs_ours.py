"""Durable jobs on SQLite through `supervisors.jobs`: the functions behind the ``jobs`` workload.

Functions (each one repetition, a fresh database file in a temporary directory, the host's
job subtree running under ``open_tree``; queue concurrency `QUEUE_CONCURRENCY`):

- ``common_path(n, tasks) -> (enqueue_rate, end_to_end_rate)``: ``tasks`` Trio tasks each
  ``await jobs.enqueue("noop")`` n / tasks times, one at a time; rates over the time from the
  first enqueue until the last enqueue returned, and until every job was recorded succeeded.
- ``enqueue_bulk(n) -> jobs/s``: one ``await jobs.enqueue_many(...)`` of n jobs (no host).
- ``end_to_end_bulk(n) -> jobs/s``: a bulk enqueue of n jobs until all are recorded succeeded.
- ``pickup_latency(n) -> (median_s, p99_s)``: on an idle host, from the call to ``enqueue``
  until the job function starts, one job at a time, in the same process.
- ``xproc_pickup_latency(n) -> (median_s, p99_s)``: the same with the job enqueued by
  ``JobClient.enqueue`` in another process.

``python benchmarks/jobs_ours.py [N]`` prints them all (N defaults to 10,000).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import trio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from supervisors import Supervisor, open_tree
from supervisors.jobs import JobClient, JobRegistry, JobRequest, JobState, JobSystem, SQLiteStore

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


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def common_path(n: int, tasks: int) -> tuple[float, float]:
    """(enqueue rate, end-to-end rate) in jobs/s for ``tasks`` tasks enqueuing one at a time."""
    with _tempdir() as path:
        return trio.run(common_path_in, path, n, tasks)


async def common_path_in(path: str, n: int, tasks: int) -> tuple[float, float]:
    """`common_path` inside a running Trio program, its database in the directory ``path``."""
    probe = _Probe()
    probe.target = n
    jobs = _system(path, probe)
    per_task = [n // tasks + (1 if i < n % tasks else 0) for i in range(tasks)]

    async def enqueuer(count: int) -> None:
        for _ in range(count):
            await jobs.enqueue("noop")

    async with open_tree(Supervisor(name="bench", children=[jobs.child_spec()])):
        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for count in per_task:
                nursery.start_soon(enqueuer, count)
        t1 = time.perf_counter()
        await probe.done.wait()
        await jobs.wait_idle()
        t2 = time.perf_counter()
        counts = await jobs.counts()
    if counts.by_state[JobState.SUCCEEDED] != n:
        raise AssertionError(f"expected {n} succeeded jobs, got {counts}")
    return n / (t1 - t0), n / (t2 - t0)


def enqueue_bulk(n: int) -> float:
    """Jobs per second for one ``enqueue_many`` of ``n`` jobs (one transaction)."""

    async def main(path: str) -> float:
        jobs = _system(path, _Probe())
        await jobs.store.open()
        requests = [JobRequest(job="noop")] * n
        t0 = time.perf_counter()
        await jobs.enqueue_many(requests)
        elapsed = time.perf_counter() - t0
        await jobs.store.aclose()
        return n / elapsed

    with _tempdir() as path:
        return trio.run(main, path)


def end_to_end_bulk(n: int) -> float:
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
        samples = trio.run(main, path)
    return statistics.median(samples), _p99(samples)


class Enqueuer:
    """Another process that enqueues one job each time it is told to and reports when it began.

    It runs ``python benchmarks/jobs_ours.py --enqueuer MODE DB``; for each line ``go`` on its
    stdin it takes ``time.perf_counter()`` (CLOCK_MONOTONIC, comparable across processes on
    Linux), enqueues one job (``MODE`` ``ours``: `JobClient.enqueue`; ``raw``: the raw baseline's
    INSERT and datagram, see the ``jobs`` workload) and prints that time.
    """

    def __init__(self, mode: str, db: str) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--enqueuer", mode, db],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._ready = False

    async def enqueue(self) -> float:
        """Make the other process enqueue one job; return the time it started doing so."""
        proc = self._proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        if not self._ready:
            line = await trio.to_thread.run_sync(proc.stdout.readline)
            if line.strip() != "ready":
                raise RuntimeError(f"the enqueuer process did not start (said {line!r})")
            self._ready = True
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = await trio.to_thread.run_sync(proc.stdout.readline)
        return float(line)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _enqueuer_main(mode: str, db: str) -> None:
    if mode == "ours":
        client = JobClient(db)
        enqueue = lambda: client.enqueue("noop")  # noqa: E731
    else:
        from benchmarks.workloads.jobs import raw_client

        enqueue = raw_client(db)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        t0 = time.perf_counter()
        enqueue()
        print(repr(t0), flush=True)


def xproc_pickup_latency(n: int) -> tuple[float, float]:
    """Median and p99 seconds from another process's ``JobClient.enqueue`` to the job's start."""

    async def main(path: str) -> list[float]:
        probe = _Probe()
        probe.record = True
        jobs = _system(path, probe)
        samples: list[float] = []
        async with open_tree(Supervisor(name="bench", children=[jobs.child_spec()])):
            other = Enqueuer("ours", os.path.join(path, "jobs.db"))
            try:
                for i in range(n):
                    probe.target = i + 1
                    probe.done = trio.Event()
                    t0 = await other.enqueue()
                    await probe.done.wait()
                    samples.append(probe.started_at[-1] - t0)
                    await jobs.wait_idle()
            finally:
                other.close()
        return samples

    with _tempdir() as path:
        samples = trio.run(main, path)
    return statistics.median(samples), _p99(samples)


def main(argv: list[str]) -> None:
    if len(argv) > 1 and argv[1] == "--enqueuer":
        _enqueuer_main(argv[2], argv[3])
        return
    n = int(argv[1]) if len(argv) > 1 else 10_000
    print(f"sqlite {sqlite3.sqlite_version}, n={n}, queue concurrency {QUEUE_CONCURRENCY}")
    for tasks in (1, 8):
        enq, e2e = common_path(n, tasks)
        print(f"{tasks} task(s) enqueuing one by one: enqueue {enq:>10,.0f} jobs/s, "
              f"end to end {e2e:>10,.0f} jobs/s")
    print(f"enqueue bulk                  {enqueue_bulk(n):>10,.0f} jobs/s")
    print(f"end to end (bulk + run)       {end_to_end_bulk(n):>10,.0f} jobs/s")
    median, p99 = pickup_latency(200)
    print(f"pickup latency (200 jobs)     median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")
    median, p99 = xproc_pickup_latency(50)
    print(f"cross-process pickup (50)     median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")


if __name__ == "__main__":
    main(sys.argv)
