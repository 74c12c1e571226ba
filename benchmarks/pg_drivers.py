"""PostgreSQL driver candidates for `PostgresStore`, measured side by side in one run.

    python benchmarks/pg_drivers.py            # 5 alternated repetitions, medians
    python benchmarks/pg_drivers.py --reps 3 --n 2000

Candidates (each runs the same statements on the same PostgreSQL, in Trio):

- ``threads``: synchronous psycopg 3 with a ``psycopg_pool.ConnectionPool``, each call on a
  worker thread through ``trio.to_thread.run_sync`` (not abandoned on cancel). What the store
  used before ``greenlet``.
- ``trio_nonblocking``: psycopg 3's libpq connection in non-blocking mode, its protocol
  generators (``psycopg.generators.execute``) driven by Trio's ``wait_readable`` /
  ``wait_writable`` on its socket: no threads.
- ``trio_nonblocking_safe``: the same, made correct under cancellation: a cancelled call
  sends the server a cancel request and reads the connection back to idle before it raises.
- ``greenlet``: what the store uses: synchronous psycopg 3 code run in a greenlet whose socket
  waits switch to the Trio task, which awaits ``wait_readable`` / ``wait_writable``
  (``supervisors.jobs._pg_green``), on its pool of 4 connections; each call shielded from
  cancellation (it ends committed or rolled back).
- ``pgtrio`` (if installed): a pure-Python, Trio-native implementation of the wire protocol.

Figures: ``latency`` is one round trip (``SELECT $1``) at a time, median in microseconds;
``4 tasks`` is round trips per second with 4 tasks on 4 connections; ``txn`` is a
transaction of BEGIN, an UPDATE of 100 rows, COMMIT (as a settle does; commits reach the
disk) at a time, median in milliseconds. ``cancel`` says what a cancelled caller leaves
behind: a ``SELECT pg_sleep(1)`` is cancelled after 50 ms, then the connection is used again.
Needs the PostgreSQL of ``SUPERVISORS_TEST_POSTGRES_URL`` (default 127.0.0.1:5432, database test).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import trio

URL = os.environ.get("SUPERVISORS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


class Threads:
    name = "threads"

    def __init__(self, schema: str) -> None:
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(
            URL, min_size=4, max_size=4, open=True,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
        )  # fmt: skip
        self.pool.wait()
        self.limiter = trio.CapacityLimiter(4)

    async def query(self, sql: str, *params: Any) -> list[Any]:
        def run() -> list[Any]:
            with self.pool.connection() as c:
                cur = c.execute(sql, params or None)
                return cur.fetchall() if cur.description else []

        return await trio.to_thread.run_sync(run, limiter=self.limiter)

    async def txn(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        def run() -> None:
            with self.pool.connection() as c, c.transaction():
                for sql, params in statements:
                    c.execute(sql, params or None)

        await trio.to_thread.run_sync(run, limiter=self.limiter)

    def close(self) -> None:
        self.pool.close()


class TrioNonblocking:
    """psycopg's connection, its libpq socket waited on by Trio; one task per connection at a
    time (a `trio.Lock` each)."""

    name = "trio_nonblocking"

    def __init__(self, schema: str) -> None:
        import psycopg

        self.conns = [
            psycopg.connect(URL, autocommit=True, options=f"-c search_path={schema}") for _ in range(4)
        ]
        for c in self.conns:
            c.pgconn.nonblocking = 1
        self.free = list(self.conns)
        self.available = trio.Semaphore(4)

    async def _run(self, c: Any, gen: Any) -> Any:
        from psycopg.generators import READY_R, READY_W, WAIT_R, WAIT_W

        fd = c.pgconn.socket
        try:
            s = next(gen)
            while True:
                if s & WAIT_W:
                    await trio.lowlevel.wait_writable(fd)
                    s = gen.send(READY_W)
                elif s & WAIT_R:
                    await trio.lowlevel.wait_readable(fd)
                    s = gen.send(READY_R)
        except StopIteration as stop:
            return stop.value

    async def _exec(self, c: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
        from psycopg.generators import execute

        pq = c.pgconn
        pq.send_query_params(sql.encode(), [str(p).encode() for p in params] or None)
        results = await self._run(c, execute(pq))
        res = results[-1]
        if res.status not in (1, 2):  # COMMAND_OK, TUPLES_OK
            raise RuntimeError(res.error_message.decode())
        return [tuple(res.get_value(i, j) for j in range(res.nfields)) for i in range(res.ntuples)]

    async def _with_conn(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        async with self.available:
            c = self.free.pop()
            try:
                return await fn(c)
            finally:
                self.free.append(c)

    async def query(self, sql: str, *params: Any) -> list[Any]:
        return await self._with_conn(lambda c: self._exec(c, sql.replace("%s", "$1"), params))  # type: ignore[no-any-return]

    async def txn(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        async def run(c: Any) -> None:
            await self._exec(c, "BEGIN", ())
            for sql, params in statements:
                await self._exec(c, sql.replace("%s", "$1"), params)
            await self._exec(c, "COMMIT", ())

        await self._with_conn(run)

    def close(self) -> None:
        for c in self.conns:
            c.close()


class TrioNonblockingSafe(TrioNonblocking):
    """`TrioNonblocking`, correct under cancellation: a cancelled call asks the server to
    cancel its statement and reads the connection back to idle (shielded) before it raises."""

    name = "trio_nonblocking_safe"

    async def _run(self, c: Any, gen: Any) -> Any:
        try:
            return await super()._run(c, gen)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(c.pgconn.get_cancel().cancel)
                with __import__("contextlib").suppress(StopIteration):
                    await super()._run(c, gen)  # the rest of the results: the connection is idle
            raise


class Greenlet:
    name = "greenlet"

    def __init__(self, schema: str) -> None:
        from supervisors.jobs._pg_green import GreenPool, green_connection_class

        def connect() -> Any:
            return green_connection_class().connect(URL, autocommit=True, options=f"-c search_path={schema}")

        self.pool = GreenPool(connect, 4)
        for conn in [connect() for _ in range(4)]:  # opened ahead, as the other candidates'
            self.pool._idle.append(conn)

    async def query(self, sql: str, *params: Any) -> list[Any]:
        def run(c: Any) -> list[Any]:
            cur = c.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

        return await self.pool.call(run)

    async def txn(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        def run(c: Any) -> None:
            with c.transaction():
                for sql, params in statements:
                    c.execute(sql, params or None)

        await self.pool.call(run)

    def close(self) -> None:
        self.pool.close()


class PgTrio:
    name = "pgtrio"

    def __init__(self, schema: str) -> None:
        import pgtrio  # noqa: F401 - probe

        self.schema = schema
        self.pool: Any = None

    async def open(self) -> None:
        import pgtrio

        self.pool = await pgtrio.create_pool("test", host="127.0.0.1", user="postgres", pool_size=4)

    async def query(self, sql: str, *params: Any) -> list[Any]:
        async with self.pool.acquire() as c:
            return list(await c.execute(sql.replace("%s", "$1"), *params))

    async def txn(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        async with self.pool.acquire() as c:
            await c.execute("BEGIN")
            for sql, params in statements:
                await c.execute(sql.replace("%s", "$1").replace("q", f"{self.schema}.q", 1), *params)
            await c.execute("COMMIT")

    def close(self) -> None:
        pass


async def measure(driver: Any, n: int) -> dict[str, float | str]:
    if hasattr(driver, "open"):
        await driver.open()
    out: dict[str, float | str] = {}
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        await driver.query("SELECT %s::int8", i)
        samples.append(time.perf_counter() - t0)
    out["latency_us"] = statistics.median(samples) * 1e6

    async def worker(k: int) -> None:
        for i in range(n // 4):
            await driver.query("SELECT %s::int8", i)

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for k in range(4):
            nursery.start_soon(worker, k)
    out["4tasks_per_s"] = (n // 4) * 4 / (time.perf_counter() - t0)
    samples = []
    for _ in range(max(10, n // 50)):
        t0 = time.perf_counter()
        await driver.txn([("UPDATE q SET n = n + 1 WHERE id <= 100", ())])
        samples.append(time.perf_counter() - t0)
    out["txn_ms"] = statistics.median(samples) * 1e3
    out["cancel"] = await cancel_probe(driver)
    return out


async def cancel_probe(driver: Any) -> str:
    t0 = time.perf_counter()
    with trio.move_on_after(0.05):
        await driver.query("SELECT pg_sleep(1)")
    took = time.perf_counter() - t0
    try:
        with trio.fail_after(5):
            ok = (await driver.query("SELECT %s::int8", 7))[0][0] in (7, b"7", "7")
    except Exception as exc:  # reported, not raised
        return f"returned after {took * 1e3:.0f} ms; connection unusable after: {type(exc).__name__}"
    return f"returned after {took * 1e3:.0f} ms; next query {'ok' if ok else 'WRONG'}"


def main(argv: list[str] | None = None) -> int:
    import psycopg

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=4000)
    args = ap.parse_args(argv)
    schema = f"drivers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.q (id int8 PRIMARY KEY, n int8 NOT NULL)")
        conn.execute(f"INSERT INTO {schema}.q SELECT i, 0 FROM generate_series(1, 1000) i")
    kinds: list[type] = [Threads, TrioNonblocking, TrioNonblockingSafe, Greenlet]
    try:
        import pgtrio  # noqa: F401

        kinds.append(PgTrio)
    except ImportError:
        print("pgtrio: not installed (pip install pgtrio to add its column)", file=sys.stderr)
    results: dict[str, list[dict[str, float | str]]] = {k.name: [] for k in kinds}
    try:
        for rep in range(args.reps):
            for kind in kinds:  # alternated, so drift affects all alike
                driver = kind(schema)
                try:
                    r = trio.run(measure, driver, args.n)
                finally:
                    driver.close()
                results[kind.name].append(r)
                print(f"rep {rep + 1} {kind.name}: {r}", file=sys.stderr)
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"# PostgreSQL drivers, median of {args.reps}, n={args.n}; {os.getloadavg()=}")
    print("| driver | latency (µs) | 4 tasks (round trips/s) | txn (ms) | on cancel |")
    print("|---|---|---|---|---|")
    for name, rs in results.items():
        med = {k: statistics.median(float(r[k]) for r in rs) for k in ("latency_us", "4tasks_per_s", "txn_ms")}
        print(f"| {name} | {med['latency_us']:.0f} | {med['4tasks_per_s']:,.0f} | {med['txn_ms']:.2f} | "
              f"{rs[-1]['cancel']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
