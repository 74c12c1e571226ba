"""Workload 7 - durable jobs on PostgreSQL (`PostgresStore`), hosts running; a raw baseline.

Needs the PostgreSQL of ``SUPERVISORS_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and the ``[postgres]`` extra; without them both
columns are reported unavailable, with the reason. Each repetition uses a fresh schema, dropped
after.

In this workload the ``raw_trio`` column holds a raw psycopg baseline (see BASELINE).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from benchmarks._common import Metric, RuntimeUnavailable, perf_counter

NAME = "pg"
TITLE = "jobs on PostgreSQL"
N = 10_000
QUICK_N = 500
BATCH = 100
PICKUP_N = 200
QUICK_PICKUP_N = 20
URL = os.environ.get("SUPERVISORS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
METRICS = [
    Metric("enqueue_1by1", "jobs/s", kind="rate", digits=0),
    Metric("bulk_enqueue", "jobs/s", kind="rate", digits=0),
    Metric("e2e_1host", "jobs/s", kind="rate", digits=0),
    Metric("e2e_2hosts", "jobs/s", kind="rate", digits=0),
    Metric("pickup_median", "ms", digits=3),
    Metric("pickup_p99", "ms", digits=3),
]
DESCRIPTION = (
    "enqueue_1by1: N no-op jobs, one `await jobs.enqueue` at a time (one transaction each); "
    "bulk_enqueue: one `enqueue_many` of N jobs. e2e_1host / e2e_2hosts: N jobs enqueued in "
    "bulk beforehand, then 1 or 2 host processes (queue concurrency 100) started; N / time from "
    "the hosts' start until every job is recorded succeeded (host start-up included, ~0.5 s). "
    "pickup: on an idle host, from `enqueue` returning to the job starting (NOTIFY wake-up), "
    f"one job at a time ({PICKUP_N}), median and p99. A fresh schema per repetition."
)
BASELINE = (
    "raw psycopg, no framework: enqueue_1by1 one autocommit INSERT per job; bulk_enqueue "
    "executemany in one transaction; e2e_1host one thread looping `UPDATE ... WHERE id IN "
    f"(SELECT ... LIMIT {BATCH} FOR UPDATE SKIP LOCKED) RETURNING id` then one UPDATE ... "
    "WHERE id = ANY(ids) marking them done, per transaction; e2e_2hosts two such threads; "
    "pickup: a thread INSERTs + NOTIFY, another thread blocked in LISTEN claims the row."
)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise RuntimeUnavailable("pg benchmark: the [postgres] extra is not installed") from exc
    try:
        with psycopg.connect(URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise RuntimeUnavailable(f"pg benchmark: no PostgreSQL at {URL}") from exc
    return psycopg


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    psycopg = _psycopg()
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return statistics.median(ordered) * 1000, p99 * 1000


# --------------------------------------------------------------------------- raw psycopg

_RAW_TABLE = """CREATE TABLE {s}.q (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL, payload TEXT NOT NULL);
CREATE INDEX ON {s}.q (id) WHERE state = 'ready'"""
_RAW_CLAIM = """UPDATE {s}.q SET state = 'running' WHERE id IN (
    SELECT id FROM {s}.q WHERE state = 'ready' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
    RETURNING id"""


def raw_trio(n: int) -> dict[str, float]:
    """Raw psycopg baselines (the name keeps the runner's column contract)."""
    psycopg = _psycopg()
    with _schema() as s:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {s}")
            for stmt in _RAW_TABLE.format(s=s).split(";"):
                conn.execute(stmt)
            t0 = perf_counter()
            for _ in range(n):
                conn.execute(f"INSERT INTO {s}.q (state, payload) VALUES ('ready', 'null')")
            one = n / (perf_counter() - t0)
            conn.execute(f"TRUNCATE {s}.q")
            t0 = perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {s}.q (state, payload) VALUES ('ready', %s)", [("null",)] * n
                )
            bulk = n / (perf_counter() - t0)
        e2e = {}
        for workers in (1, 2):
            with psycopg.connect(URL, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {s}.q")
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {s}.q (state, payload) VALUES ('ready', %s)", [("null",)] * n
                    )
            e2e[workers] = _raw_drain(psycopg, s, n, workers)
        median, p99 = _raw_pickup(psycopg, s, PICKUP_N if n >= N else QUICK_PICKUP_N)
    return {"enqueue_1by1": one, "bulk_enqueue": bulk, "e2e_1host": e2e[1], "e2e_2hosts": e2e[2],
            "pickup_median": median, "pickup_p99": p99}  # fmt: skip


def _raw_drain(psycopg: Any, s: str, n: int, workers: int) -> float:
    def work() -> None:
        with psycopg.connect(URL, autocommit=True) as conn:
            while True:
                with conn.transaction():
                    ids = [r[0] for r in conn.execute(_RAW_CLAIM.format(s=s), (BATCH,))]
                    if not ids:
                        return
                with conn.transaction():  # the no-op jobs ran
                    conn.execute(f"UPDATE {s}.q SET state = 'done' WHERE id = ANY(%s)", (ids,))

    threads = [threading.Thread(target=work) for _ in range(workers)]
    t0 = perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (perf_counter() - t0)


def _raw_pickup(psycopg: Any, s: str, samples: int) -> tuple[float, float]:
    got = threading.Event()
    stop = threading.Event()
    out: list[float] = []

    def listener() -> None:
        with psycopg.connect(URL, autocommit=True) as conn, psycopg.connect(URL, autocommit=True) as work:
            conn.execute(f'LISTEN "{s}.raw"')
            ready.set()
            while not stop.is_set():
                for _ in conn.notifies(stop_after=1):
                    work.execute(_RAW_CLAIM.format(s=s), (1,)).fetchall()
                    got.set()

    ready = threading.Event()
    th = threading.Thread(target=listener)
    th.start()
    ready.wait()
    with psycopg.connect(URL, autocommit=True) as conn:
        for _ in range(samples):
            got.clear()
            t0 = perf_counter()
            with conn.transaction():
                conn.execute(f"INSERT INTO {s}.q (state, payload) VALUES ('ready', 'null')")
                conn.execute(f"NOTIFY \"{s}.raw\"")
            got.wait()
            out.append(perf_counter() - t0)
        stop.set()
        conn.execute(f"NOTIFY \"{s}.raw\"")
    th.join()
    return _stats(out)


# --------------------------------------------------------------------------- ours


def ours(n: int) -> dict[str, float]:
    _psycopg()
    import trio

    from supervisors import Supervisor, open_tree
    from supervisors.jobs import JobRegistry, JobRequest, JobSystem, PostgresStore

    reg = JobRegistry()
    started: list[float] = []
    event: list[Any] = [None]

    @reg.job()
    async def noop() -> None:
        started.append(perf_counter())
        if event[0] is not None:
            event[0].set()

    out: dict[str, float] = {}
    with _schema() as s:

        async def enqueue_rates() -> None:
            store = PostgresStore(URL, schema=s)
            jobs = JobSystem(store=store, registry=reg)
            try:
                t0 = perf_counter()
                for _ in range(n):
                    await jobs.enqueue("noop")
                out["enqueue_1by1"] = n / (perf_counter() - t0)
                t0 = perf_counter()
                await jobs.enqueue_many([JobRequest(job="noop")] * n)
                out["bulk_enqueue"] = n / (perf_counter() - t0)
            finally:
                await store.aclose()

        trio.run(enqueue_rates)
    for hosts, key in ((1, "e2e_1host"), (2, "e2e_2hosts")):
        with _schema() as s:
            out[key] = _e2e(s, n, hosts)
    with _schema() as s:

        async def pickup() -> None:
            store = PostgresStore(URL, schema=s)
            jobs = JobSystem(store=store, registry=reg, queues={"default": 100})
            samples: list[float] = []
            async with open_tree(Supervisor(name="bench", children=[jobs.child_spec()])):
                await trio.sleep(0.3)
                for _ in range(PICKUP_N if n >= N else QUICK_PICKUP_N):
                    event[0] = trio.Event()
                    await jobs.enqueue("noop")
                    t0 = perf_counter()  # from the enqueue's return (committed)
                    await event[0].wait()
                    samples.append(started[-1] - t0)
            out["pickup_median"], out["pickup_p99"] = _stats(samples)

        trio.run(pickup)
    return out


_HOST = '''
import sys, trio
from supervisors import Supervisor, open_tree
from supervisors.jobs import JobRegistry, JobState, JobSystem, PostgresStore
reg = JobRegistry()
@reg.job()
async def noop() -> None:
    pass
async def main(url, schema, n):
    jobs = JobSystem(store=PostgresStore(url, schema=schema), registry=reg,
                     queues={"default": 100}, keep_succeeded=None)
    async with open_tree(Supervisor(name="h", children=[jobs.child_spec()])):
        while (await jobs.counts()).by_state[JobState.SUCCEEDED] < n:
            await trio.sleep(0.05)  # counting scans the table: not so often that it matters
trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
'''


def _e2e(schema: str, n: int, hosts: int) -> float:
    import subprocess

    import psycopg
    import trio

    from supervisors.jobs import NewJob, PostgresStore

    async def fill() -> None:
        store = PostgresStore(URL, schema=schema)
        try:
            await store.open()
            job = NewJob(name="noop", queue="default", args="null", run_at=0.0, max_attempts=3)
            await store.insert([job] * n, now=store.clock.now())
        finally:
            await store.aclose()

    trio.run(fill)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    t0 = perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", _HOST, URL, schema, str(n)], env=env)
        for _ in range(hosts)
    ]
    for p in procs:
        p.wait(timeout=600)
    elapsed = perf_counter() - t0
    with psycopg.connect(URL) as conn:
        done = conn.execute(f"SELECT count(*) FROM {schema}.jobs WHERE state = 'succeeded'").fetchone()
    if done is None or done[0] != n:
        raise RuntimeError(f"pg benchmark: {done} of {n} jobs succeeded")
    return n / elapsed


# --------------------------------------------------------------------------- PgQueuer (peer)


def peer_pgqueuer(n: int) -> dict[str, float]:
    """PgQueuer (asyncio, asyncpg, batch 100) measured as ours is: each phase in processes
    of its own (`_pgqueuer_peer.py`), a fresh schema each; e2e from the workers' start until
    they drained the queue (PgQueuer's ``drain`` mode), start-up included."""
    import json
    import subprocess

    from benchmarks._peers import require_pgqueuer

    require_pgqueuer()
    _psycopg()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_pgqueuer_peer.py")

    def start(schema: str, mode: str, count: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, script, URL, schema, mode, str(count)], stdout=subprocess.PIPE, text=True
        )

    def run(schema: str, mode: str, count: int) -> dict[str, float]:
        p = start(schema, mode, count)
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"pgqueuer {mode} exited with {p.returncode}")
        return dict(json.loads(out))

    def fresh(s: str) -> None:
        psycopg = _psycopg()
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {s}")
        run(s, "install", 0)

    out: dict[str, float] = {}
    with _schema() as s:
        fresh(s)
        out.update(run(s, "enqueue", n))
    for hosts, key in ((1, "e2e_1host"), (2, "e2e_2hosts")):
        with _schema() as s:
            fresh(s)
            run(s, "fill", n)
            t0 = perf_counter()
            procs = [start(s, "drain", n) for _ in range(hosts)]
            for p in procs:
                p.communicate(timeout=600)
            out[key] = n / (perf_counter() - t0)
    with _schema() as s:
        fresh(s)
        out.update(run(s, "pickup", PICKUP_N if n >= N else QUICK_PICKUP_N))
    return out
