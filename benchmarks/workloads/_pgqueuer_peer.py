"""The PgQueuer peer of the ``pg`` workload, run in a process of its own (asyncio, asyncpg):
``python _pgqueuer_peer.py URL SCHEMA MODE N`` prints one JSON object.

MODE ``enqueue``: N jobs enqueued one ``enqueue`` at a time, then N by 8 tasks each enqueuing
one at a time (on a pool of 8 connections), then N in one batch (jobs/s);
``work``: work the queue (batch 100, as PgQueuer's own benchmark), print ``ready`` once
running, until killed; ``pickup``: N times, enqueue one job on an idle worker and time until
it starts (median, p99 in ms); ``install``: make PgQueuer's tables in SCHEMA; ``fill``: enqueue
N jobs in one batch.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

import asyncpg
from pgqueuer import AsyncpgDriver, AsyncpgPoolDriver, PgQueuer, Queries

TASKS = 8
"""The concurrent enqueuers of ``enqueue_8tasks`` (a pool of as many connections)."""


async def connect(url: str, schema: str) -> asyncpg.Connection:
    return await asyncpg.connect(url, server_settings={"search_path": schema})


async def main(url: str, schema: str, mode: str, n: int) -> dict[str, float]:
    conn = await connect(url, schema)
    q = Queries(AsyncpgDriver(conn))
    if mode == "install":
        await q.install(create_schema=False)
        return {}
    if mode == "fill":
        await q.enqueue(["noop"] * n, [None] * n, [0] * n)
        return {}
    if mode == "enqueue":
        t0 = time.perf_counter()
        for _ in range(n):
            await q.enqueue("noop", None)
        one = n / (time.perf_counter() - t0)
        pool = await asyncpg.create_pool(
            url, min_size=TASKS, max_size=TASKS, server_settings={"search_path": schema}
        )
        pq = Queries(AsyncpgPoolDriver(pool))

        async def enqueuer() -> None:
            for _ in range(n // TASKS):
                await pq.enqueue("noop", None)

        t0 = time.perf_counter()
        await asyncio.gather(*(enqueuer() for _ in range(TASKS)))
        tasks = n // TASKS * TASKS / (time.perf_counter() - t0)
        await pool.close()
        t0 = time.perf_counter()
        await q.enqueue(["noop"] * n, [None] * n, [0] * n)
        return {"enqueue_1by1": one, "enqueue_8tasks": tasks, "bulk_enqueue": n / (time.perf_counter() - t0)}
    pgq = PgQueuer(AsyncpgDriver(conn))
    started: list[float] = []
    event = asyncio.Event()

    @pgq.entrypoint("noop")
    async def noop(job: object) -> None:
        started.append(time.perf_counter())
        event.set()

    if mode == "work":  # until killed
        runner = asyncio.create_task(pgq.qm.run(batch_size=100))
        await asyncio.sleep(0.5)
        print("ready", flush=True)
        await runner
        return {}
    other = await connect(url, schema)
    oq = Queries(AsyncpgDriver(other))
    runner = asyncio.create_task(pgq.qm.run(batch_size=100))
    await asyncio.sleep(0.5)
    samples = []
    for _ in range(n):
        event.clear()
        await oq.enqueue("noop", None)
        t0 = time.perf_counter()
        await asyncio.wait_for(event.wait(), 30)
        samples.append(started[-1] - t0)
    pgq.qm.shutdown.set()
    await asyncio.wait_for(runner, 30)
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {"pickup_median": statistics.median(ordered) * 1000, "pickup_p99": p99 * 1000}


if __name__ == "__main__":
    out = asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    print(json.dumps(out))
