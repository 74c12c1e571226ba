"""Workload 7 - claiming jobs with priorities and a rate limit vs plain claiming, same run.

Both columns run the library's own SQLite store (`SQLiteDB`, the statements every store runs)
on a fresh file with N enqueued no-op jobs, then claim them 10 at a time until the queue is
empty, settling each batch as succeeded (the runner's common path: one transaction per batch).

- ``raw_trio`` column: *plain claiming*: every job priority 0, no rate limit.
- ``ours`` column: *with priorities and a rate limit*: priorities drawn from 0..9 and the queue
  rate-limited to 10 N claims per hour (so the limit is counted on every claim but never holds
  a claim back).

The ratio is the cost of the features on the claim path (target: at most 1.10).

- ``host_rate``: the same backlogs (N jobs, priorities 0..9 and the rate limit, or neither)
  worked off by a host, as users run them: a `JobSystem` on the file with one queue of
  concurrency 10 (the default) started under ``open_tree``, its no-op jobs claimed, run and
  recorded by its runner; N / time from the start of the tree until every job is recorded
  succeeded (``wait_idle``).
"""

import random
import shutil
import tempfile
import time
from datetime import timedelta

import trio

from benchmarks._common import Metric, RuntimeUnavailable

NAME = "jobs_claim"
TITLE = "claiming with priorities and a rate limit"
N = 20_000
QUICK_N = 2_000
BATCH = 10
HOST_CONCURRENCY = 10
METRICS = [
    Metric("claim_rate", "jobs/s", kind="rate", digits=0),
    Metric("host_rate", "jobs/s", kind="rate", digits=0),
]
DESCRIPTION = __doc__.split("\n\n", 1)[1]


def _claim_all(n: int, *, features: bool) -> dict[str, float]:
    try:
        from supervisors.jobs import NewJob
        from supervisors.jobs._sqlite_db import SQLiteDB
    except ImportError as exc:  # pragma: no cover - the library is part of the repository
        raise RuntimeUnavailable(f"supervisors.jobs not importable: {exc}") from exc
    tmp = tempfile.mkdtemp(prefix="bench-claim-")
    try:
        db = SQLiteDB(f"{tmp}/jobs.db")
        rng = random.Random(1)
        now = 1_000_000.0
        jobs = [
            NewJob(name="noop", queue="q", args="null", run_at=now, max_attempts=3,
                   priority=rng.randrange(10) if features else 0)
            for _ in range(n)
        ]  # fmt: skip
        for start in range(0, n, 1000):
            db.insert(jobs[start : start + 1000], now)
        if features:
            db.set_rate_limit("q", 10 * n, 3600.0)
        done: list[tuple[int, int]] = []
        claimed = 0
        t0 = time.perf_counter()
        while True:
            got = db.settle_and_claim("q", BATCH, "bench", now, now + 30.0, done, ())
            done = [j.token for j in got.claimed]
            claimed += len(done)
            if not done:
                break
        elapsed = time.perf_counter() - t0
        db.close()
        if claimed != n:
            raise AssertionError(f"claimed {claimed} of {n} jobs")
        return {"claim_rate": n / elapsed}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _host(n: int, *, features: bool) -> float:
    """N / seconds for a host to work off a backlog of ``n`` no-op jobs."""
    try:
        from supervisors import Supervisor, open_tree
        from supervisors.jobs import JobRegistry, JobRequest, JobSystem, RateLimit, SQLiteStore
    except ImportError as exc:  # pragma: no cover - the library is part of the repository
        raise RuntimeUnavailable(f"supervisors.jobs not importable: {exc}") from exc

    async def main(path: str) -> float:
        registry = JobRegistry()
        done = trio.Event()
        ran = 0

        @registry.job()
        async def noop() -> None:
            nonlocal ran
            ran += 1
            if ran == n:
                done.set()

        def system() -> JobSystem:
            return JobSystem(store=SQLiteStore(path), registry=registry, queues={"q": HOST_CONCURRENCY})

        setup = system()  # the backlog, written before the host starts
        rng = random.Random(1)
        await setup.enqueue_many(
            [JobRequest(job="noop", queue="q", priority=rng.randrange(10) if features else 0) for _ in range(n)]
        )
        if features:
            await setup.set_rate_limit("q", RateLimit(10 * n, timedelta(hours=1)))
        await setup.store.aclose()
        jobs = system()
        t0 = time.perf_counter()
        async with open_tree(Supervisor(name="bench", children=[jobs.child_spec()])):
            await done.wait()
            await jobs.wait_idle()
            elapsed = time.perf_counter() - t0
        return n / elapsed

    tmp = tempfile.mkdtemp(prefix="bench-claim-host-")
    try:
        return trio.run(main, f"{tmp}/jobs.db")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def raw_trio(n: int) -> dict[str, float]:
    """Plain claiming (no priorities, no rate limit): the store's claims, then a host's."""
    return {**_claim_all(n, features=False), "host_rate": _host(n, features=False)}


def ours(n: int) -> dict[str, float]:
    """Claiming with priorities and a rate limit: the store's claims, then a host's."""
    return {**_claim_all(n, features=True), "host_rate": _host(n, features=True)}
