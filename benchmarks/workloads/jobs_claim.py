"""Workload 7 - claiming jobs with priorities and a rate limit vs plain claiming, same run.

Both columns run the library's own SQLite store (`SQLiteDB`, the statements every store runs)
on a fresh file with N enqueued no-op jobs, then claim them 10 at a time until the queue is
empty, settling each batch as succeeded (the runner's common path: one transaction per batch).

- ``raw_trio`` column: *plain claiming*: every job priority 0, no rate limit.
- ``ours`` column: *with priorities and a rate limit*: priorities drawn from 0..9 and the queue
  rate-limited to 10 N claims per hour (so the limit is counted on every claim but never holds
  a claim back).

The ratio is the cost of the features on the claim path (target: at most 1.10).

- ``claim_prio`` and ``claim_limit``: the same claims with one feature only (priorities drawn
  from 0..9, or the rate limit alone), each against the plain claims of the same repetition:
  what each feature costs by itself.
- ``host_rate``: the same backlogs (N jobs, priorities 0..9 and the rate limit, or neither)
  worked off by a host, as users run them: a `JobSystem` on the file with one queue of
  concurrency 10 (the default) started under ``open_tree``, its no-op jobs claimed, run and
  recorded by its runner; N / time from the start of the tree until every job is recorded
  succeeded (``wait_idle``).
- ``pg_claim_rate``: the claims of ``claim_rate`` through `PostgresStore` (N / 10 jobs, a
  fresh schema per repetition), with the features or without. Left out, with the reason on
  stderr, where the ``pg`` workload's PostgreSQL is not reachable.
"""

import random
import shutil
import sys
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
PG_SHARE = 10
"""``pg_claim_rate`` claims N / PG_SHARE jobs (a PostgreSQL commit waits for the disk)."""
METRICS = [
    Metric("claim_rate", "jobs/s", kind="rate", digits=0),
    Metric("claim_prio", "jobs/s", kind="rate", digits=0, baseline="plain", raw_key="claim_rate"),
    Metric("claim_limit", "jobs/s", kind="rate", digits=0, baseline="plain", raw_key="claim_rate"),
    Metric("host_rate", "jobs/s", kind="rate", digits=0),
    Metric("pg_claim_rate", "jobs/s", kind="rate", digits=0),
]
DESCRIPTION = __doc__.split("\n\n", 1)[1]
NOW = 1_000_000.0


def _backlog(n: int, *, priorities: bool) -> list[int]:
    rng = random.Random(1)
    return [rng.randrange(10) if priorities else 0 for _ in range(n)]


def _claim_all(n: int, *, priorities: bool, limit: bool) -> float:
    """Claims per second of `SQLiteDB.settle_and_claim` working off ``n`` jobs."""
    try:
        from supervisors.jobs import NewJob
        from supervisors.jobs._sqlite_db import SQLiteDB
    except ImportError as exc:  # pragma: no cover - the library is part of the repository
        raise RuntimeUnavailable(f"supervisors.jobs not importable: {exc}") from exc
    tmp = tempfile.mkdtemp(prefix="bench-claim-")
    try:
        db = SQLiteDB(f"{tmp}/jobs.db")
        jobs = [
            NewJob(name="noop", queue="q", args="null", run_at=NOW, max_attempts=3, priority=p)
            for p in _backlog(n, priorities=priorities)
        ]
        for start in range(0, n, 1000):
            db.insert(jobs[start : start + 1000], NOW)
        if limit:
            db.set_rate_limit("q", 10 * n, 3600.0)
        done: list[tuple[int, int]] = []
        claimed = 0
        t0 = time.perf_counter()
        while True:
            got = db.settle_and_claim("q", BATCH, "bench", NOW, NOW + 30.0, done, ())
            done = [j.token for j in got.claimed]
            claimed += len(done)
            if not done:
                break
        elapsed = time.perf_counter() - t0
        db.close()
        if claimed != n:
            raise AssertionError(f"claimed {claimed} of {n} jobs")
        return n / elapsed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_pg_missing: list[str] = []
"""Why PostgreSQL is not reachable, once found out (the reason is printed once)."""


def _pg_claim_all(n: int, *, features: bool) -> float | None:
    """``_claim_all`` through `PostgresStore` (both features or neither); None, with the
    reason on stderr (once), without a reachable PostgreSQL."""
    from benchmarks.workloads.pg import URL, fresh_schema

    if _pg_missing:
        return None
    try:
        from supervisors.jobs import NewJob, PostgresStore

        with fresh_schema() as schema:

            async def main() -> float:
                store = PostgresStore(URL, schema=schema, register_host=False)
                await store.open()
                try:
                    jobs = [
                        NewJob(name="noop", queue="q", args="null", run_at=NOW, max_attempts=3,
                               priority=p)
                        for p in _backlog(n, priorities=features)
                    ]  # fmt: skip
                    for start in range(0, n, 1000):
                        await store.insert(jobs[start : start + 1000], now=NOW)
                    if features:
                        await store.set_rate_limit("q", limit=10 * n, period=3600.0)
                    done: list[tuple[int, int]] = []
                    claimed = 0
                    t0 = time.perf_counter()
                    while True:
                        got = await store.settle_and_claim(
                            "q", BATCH, owner="bench", now=NOW, lease_until=NOW + 30.0, succeeded=done
                        )
                        done = [j.token for j in got.claimed]
                        claimed += len(done)
                        if not done:
                            break
                    elapsed = time.perf_counter() - t0
                finally:
                    await store.aclose()
                if claimed != n:
                    raise AssertionError(f"claimed {claimed} of {n} jobs on PostgreSQL")
                return n / elapsed

            return trio.run(main)
    except (ImportError, RuntimeUnavailable) as exc:
        _pg_missing.append(str(exc))
        print(f"  jobs_claim: pg_claim_rate left out - {exc}", file=sys.stderr, flush=True)
        return None


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


def _pg(n: int, *, features: bool) -> dict[str, float]:
    rate = _pg_claim_all(max(BATCH, n // PG_SHARE), features=features)
    return {} if rate is None else {"pg_claim_rate": rate}


def raw_trio(n: int) -> dict[str, float]:
    """Plain claiming (no priorities, no rate limit): the store's claims, a host's, PostgreSQL's."""
    return {
        "claim_rate": _claim_all(n, priorities=False, limit=False),
        "host_rate": _host(n, features=False),
        **_pg(n, features=False),
    }


def ours(n: int) -> dict[str, float]:
    """Claiming with priorities and a rate limit (and each alone): the store's claims, a
    host's, PostgreSQL's."""
    return {
        "claim_rate": _claim_all(n, priorities=True, limit=True),
        "claim_prio": _claim_all(n, priorities=True, limit=False),
        "claim_limit": _claim_all(n, priorities=False, limit=True),
        "host_rate": _host(n, features=True),
        **_pg(n, features=True),
    }
