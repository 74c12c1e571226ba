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
TASKS = 8
"""The concurrent enqueuers of ``enqueue_8tasks``."""
PICKUP_N = 200
QUICK_PICKUP_N = 20
URL = os.environ.get("SUPERVISORS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
METRICS = [
    Metric("enqueue_1by1", "jobs/s", kind="rate", digits=0),
    Metric("enqueue_8tasks", "jobs/s", kind="rate", digits=0),
    Metric("bulk_enqueue", "jobs/s", kind="rate", digits=0),
    Metric("e2e_1host", "jobs/s", kind="rate", digits=0),
    Metric("e2e_2hosts", "jobs/s", kind="rate", digits=0),
    Metric("pickup_median", "ms", digits=3),
    Metric("pickup_p99", "ms", digits=3),
]
DESCRIPTION = (
    "enqueue_1by1: N no-op jobs, one `await jobs.enqueue` at a time (one transaction each); "
    f"enqueue_8tasks: N no-op jobs, {TASKS} tasks each awaiting one `jobs.enqueue` at a time "
    "(each returns once its job is committed); "
    "bulk_enqueue: one `enqueue_many` of N jobs. e2e_1host / e2e_2hosts: "
    "1 or 2 host processes (queue concurrency 100) started and idle, then N jobs enqueued in one "
    "transaction; N / database time from its commit to the last success recorded (host start-up "
    "excluded). "
    "pickup: on an idle host, from `enqueue` returning to the job starting (NOTIFY wake-up), "
    f"one job at a time ({PICKUP_N}), median and p99. A fresh schema per repetition."
)
BASELINE = (
    "raw psycopg, no framework: enqueue_1by1 one autocommit INSERT per job; enqueue_8tasks "
    f"the same from {TASKS} threads, a connection each; bulk_enqueue "
    "executemany in one transaction; e2e_1host one thread looping `UPDATE ... WHERE id IN "
    f"(SELECT ... LIMIT {BATCH} FOR UPDATE SKIP LOCKED) RETURNING id` then one UPDATE ... "
    "WHERE id = ANY(ids) marking them done, per transaction; e2e_2hosts two such threads; "
    "pickup: a thread INSERTs + NOTIFY, another thread blocked in LISTEN claims the row."
)


def psycopg_or_unavailable() -> Any:
    """The psycopg module, once a connection to `URL` answered; `RuntimeUnavailable` (with the
    reason) without the extra or the server. Also used by ``jobs_claim``."""
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
def fresh_schema() -> Iterator[str]:
    """A new schema name for one repetition (not created here), dropped with its tables after."""
    psycopg = psycopg_or_unavailable()
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
    psycopg = psycopg_or_unavailable()
    with fresh_schema() as s:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {s}")
            for stmt in _RAW_TABLE.format(s=s).split(";"):
                conn.execute(stmt)
            t0 = perf_counter()
            for _ in range(n):
                conn.execute(f"INSERT INTO {s}.q (state, payload) VALUES ('ready', 'null')")
            one = n / (perf_counter() - t0)
            conn.execute(f"TRUNCATE {s}.q")
        tasks = _raw_concurrent_inserts(psycopg, s, n)
        with psycopg.connect(URL, autocommit=True) as conn:
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
    return {"enqueue_1by1": one, "enqueue_8tasks": tasks, "bulk_enqueue": bulk, "e2e_1host": e2e[1],
            "e2e_2hosts": e2e[2], "pickup_median": median, "pickup_p99": p99}  # fmt: skip


def _raw_concurrent_inserts(psycopg: Any, s: str, n: int) -> float:
    conns = [psycopg.connect(URL, autocommit=True) for _ in range(TASKS)]

    def work(conn: Any) -> None:
        for _ in range(n // TASKS):
            conn.execute(f"INSERT INTO {s}.q (state, payload) VALUES ('ready', 'null')")

    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    t0 = perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = n // TASKS * TASKS / (perf_counter() - t0)
    for c in conns:
        c.close()
    return rate


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
    psycopg_or_unavailable()
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
    with fresh_schema() as s:

        async def enqueue_rates() -> None:
            store = PostgresStore(URL, schema=s)
            jobs = JobSystem(store=store, registry=reg)
            try:
                t0 = perf_counter()
                for _ in range(n):
                    await jobs.enqueue("noop")
                out["enqueue_1by1"] = n / (perf_counter() - t0)

                async def enqueuer() -> None:
                    for _ in range(n // TASKS):
                        await jobs.enqueue("noop")

                t0 = perf_counter()
                async with trio.open_nursery() as nursery:
                    for _ in range(TASKS):
                        nursery.start_soon(enqueuer)
                out["enqueue_8tasks"] = n // TASKS * TASKS / (perf_counter() - t0)
                t0 = perf_counter()
                await jobs.enqueue_many([JobRequest(job="noop")] * n)
                out["bulk_enqueue"] = n / (perf_counter() - t0)
            finally:
                await store.aclose()

        trio.run(enqueue_rates)
    for hosts, key in ((1, "e2e_1host"), (2, "e2e_2hosts")):
        with fresh_schema() as s:
            out[key] = _e2e(s, n, hosts)
    with fresh_schema() as s:

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
import pathlib, sys, trio
from supervisors import Supervisor, open_tree
from supervisors.jobs import JobRegistry, JobState, JobSystem, PostgresStore
reg = JobRegistry()
@reg.job()
async def noop() -> None:
    pass
async def main(url, schema, n, ready):
    jobs = JobSystem(store=PostgresStore(url, schema=schema), registry=reg,
                     queues={"default": 100}, keep_succeeded=None)
    async with open_tree(Supervisor(name="h", children=[jobs.child_spec()])):
        pathlib.Path(ready).touch()
        while (await jobs.counts()).by_state[JobState.SUCCEEDED] < n:
            await trio.sleep(0.05)  # counting scans the table: not so often that it matters
trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
'''


def _e2e(schema: str, n: int, hosts: int) -> float:
    """Start ``hosts`` host processes and wait until each is running (listening, workers
    idle); then enqueue ``n`` jobs in one transaction. The rate is ``n`` over the database
    time from that commit to the last job's recorded success (process start-up excluded, as
    the raw baseline has none)."""
    import subprocess
    import tempfile
    import time

    import psycopg
    import trio

    from supervisors.jobs import NewJob, PostgresStore
    from supervisors.jobs._postgres import PostgresDB

    async def migrate() -> None:
        store = PostgresStore(URL, schema=schema)
        try:
            await store.open()
        finally:
            await store.aclose()

    trio.run(migrate)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    with tempfile.TemporaryDirectory() as tmp:
        ready = [os.path.join(tmp, f"ready{i}") for i in range(hosts)]
        procs = [
            subprocess.Popen([sys.executable, "-c", _HOST, URL, schema, str(n), r], env=env)
            for r in ready
        ]
        try:
            deadline = time.monotonic() + 120
            while not all(os.path.exists(r) for r in ready):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("pg benchmark: a host did not start")
                time.sleep(0.01)
            job = NewJob(name="noop", queue="default", args="null", run_at=0.0, max_attempts=3)
            clock = "SELECT extract(epoch FROM clock_timestamp())::float8"
            with psycopg.connect(URL, autocommit=True) as conn:
                with conn.transaction():
                    conn.execute(f"SET LOCAL search_path = {schema}")
                    now = float(conn.execute(clock).fetchone()[0])  # type: ignore[index]
                    PostgresDB(conn, schema).insert([job] * n, now)
                t0 = float(conn.execute(clock).fetchone()[0])  # type: ignore[index]
            for p in procs:
                p.wait(timeout=600)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    with psycopg.connect(URL) as conn:
        done, last = conn.execute(
            f"SELECT count(*), max(finished_at) FROM {schema}.jobs WHERE state = 'succeeded'"
        ).fetchone()  # type: ignore[misc]
    if done != n:
        raise RuntimeError(f"pg benchmark: {done} of {n} jobs succeeded")
    return n / (float(last) - t0)


# --------------------------------------------------------------------------- PgQueuer (peer)


def peer_pgqueuer(n: int) -> dict[str, float]:
    """PgQueuer (asyncio, asyncpg, batch 100) measured as ours is: each phase in processes
    of its own (`_pgqueuer_peer.py`), a fresh schema each; e2e from the workers' start until
    they drained the queue (PgQueuer's ``drain`` mode), start-up included."""
    import json
    import subprocess

    from benchmarks._peers import require_pgqueuer

    require_pgqueuer()
    psycopg_or_unavailable()
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
        psycopg = psycopg_or_unavailable()
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {s}")
        run(s, "install", 0)

    out: dict[str, float] = {}
    with fresh_schema() as s:
        fresh(s)
        out.update(run(s, "enqueue", n))
    for hosts, key in ((1, "e2e_1host"), (2, "e2e_2hosts")):
        with fresh_schema() as s:
            fresh(s)
            procs = [start(s, "work", 0) for _ in range(hosts)]
            try:
                for p in procs:  # each says "ready" once its worker runs
                    assert p.stdout is not None
                    if p.stdout.readline().strip() != "ready":
                        raise RuntimeError("pgqueuer worker did not start")
                t0 = _db_time_after(lambda: run(s, "fill", n))
                end = _wait_drained(s, n)
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            out[key] = n / (end - t0)
    with fresh_schema() as s:
        fresh(s)
        out.update(run(s, "pickup", PICKUP_N if n >= N else QUICK_PICKUP_N))
    return out


def _db_time_after(fn: Any) -> float:
    fn()
    psycopg = psycopg_or_unavailable()
    with psycopg.connect(URL) as conn:
        return float(conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0])  # type: ignore[index]


def _wait_drained(schema: str, n: int) -> float:
    """The database time of PgQueuer's last successful job, once ``n`` are logged."""
    import time

    psycopg = psycopg_or_unavailable()
    sql = (
        f"SELECT count(*), extract(epoch FROM max(created))::float8 FROM {schema}.pgqueuer_log "
        "WHERE status = 'successful'"
    )
    deadline = time.monotonic() + 600
    with psycopg.connect(URL, autocommit=True) as conn:
        while time.monotonic() < deadline:
            done, last = conn.execute(sql).fetchone()  # type: ignore[misc]
            if done >= n:
                return float(last)
            time.sleep(0.05)
    raise RuntimeError("pg benchmark: PgQueuer did not drain the queue")
