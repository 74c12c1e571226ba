"""Workload 7 - claiming jobs with priorities and a rate limit vs plain claiming, same run.

Both columns run the library's own SQLite store (`SQLiteDB`, the statements every store runs)
on a fresh file with N enqueued no-op jobs, then claim them 10 at a time until the queue is
empty, settling each batch as succeeded (the runner's common path: one transaction per batch).

- ``raw_trio`` column: *plain claiming*: every job priority 0, no rate limit.
- ``ours`` column: *with priorities and a rate limit*: priorities drawn from 0..9 and the queue
  rate-limited to 10 N claims per hour (so the limit is counted on every claim but never holds
  a claim back).

The ratio is the cost of the features on the claim path (target: at most 1.10).
"""

import random
import shutil
import tempfile
import time

from benchmarks._common import Metric, RuntimeUnavailable

NAME = "jobs_claim"
TITLE = "claiming with priorities and a rate limit"
N = 20_000
QUICK_N = 2_000
BATCH = 10
METRICS = [Metric("claim_rate", "jobs/s", kind="rate", digits=0)]
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


def raw_trio(n: int) -> dict[str, float]:
    """Plain claiming (no priorities, no rate limit)."""
    return _claim_all(n, features=False)


def ours(n: int) -> dict[str, float]:
    """Claiming with priorities and a rate limit."""
    return _claim_all(n, features=True)
