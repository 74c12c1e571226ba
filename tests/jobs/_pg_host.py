"""A job host on PostgreSQL for the process tests: ``python _pg_host.py URL SCHEMA LOG [options]``.

Every job ``noop(n)`` appends ``done n`` to LOG; the recurring ``tick`` (with ``--cron``, every
second; ``--cron-skip``: the same with ``Misfire.SKIP``) appends ``tick <job id>``; with
``--singleton`` a `ClusterSingleton` child (lease 3 s) writes beats to the table
``singleton_beats`` and ``beat <time>`` lines to LOG. ``--clock-offset SECONDS`` is the test hook
for clock skew: it shifts this process's wall clock (``time.time`` and ``time.time_ns``) by that
many seconds before anything runs, as if the host's clock were wrong by that much (its monotonic
clock is left alone). With ``--until-idle`` the host exits 0.5 s after no job is pending;
otherwise it runs until killed. The lease is 10 s (``PG_HOST_LEASE``): long enough that a host
starved of CPU on a loaded machine keeps its leases, short enough that a killed host's jobs come
back within the test.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time

import psycopg
import trio

from actors import BackgroundService
from supervisors import ChildSpec, Supervisor, open_tree
from supervisors.jobs import (
    ClusterSingleton,
    JobRegistry,
    JobState,
    JobSystem,
    Misfire,
    PostgresStore,
    Recurring,
    current_job,
)

registry = JobRegistry()
LOG = ""


def log(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@registry.job()
async def noop(n: int) -> None:
    log(f"done {n}")


@registry.job()
async def tick() -> None:
    log(f"tick {current_job().id}")


class Beater(BackgroundService):
    """The singleton child: every 50 ms, appends ``beat <wall time>`` to LOG and inserts
    ``(pid, wall time)`` into ``singleton_beats``, so that a test sees when and where it ran.
    The time is taken when the child beats, so an insert that lands late (held up by a
    partition) still says when the child acted; the log needs no network at all."""

    def __init__(self, url: str, schema: str) -> None:
        super().__init__()
        self.url, self.schema = url, schema

    async def execute(self) -> None:
        conn = await trio.to_thread.run_sync(lambda: psycopg.connect(self.url, autocommit=True))
        send, receive = trio.open_memory_channel[float](math.inf)

        async def write() -> None:  # apart from the beats: a hung write stops no local beat
            async for at in receive:
                await trio.to_thread.run_sync(
                    conn.execute,
                    f"INSERT INTO {self.schema}.singleton_beats VALUES (%s, %s)",
                    (os.getpid(), at),
                    abandon_on_cancel=True,  # stopped at once even if the write hangs
                )

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write)
                while True:
                    at = time.time()
                    log(f"beat {at!r}")
                    send.send_nowait(at)
                    await trio.sleep(0.05)
        finally:
            conn.close()


class Other(BackgroundService):
    """Another child of the host: logs ``other started`` once per incarnation, then ``other
    alive`` every 0.2 s (so a test sees it kept running through a database outage)."""

    async def execute(self) -> None:
        log("other started")
        while True:
            await trio.sleep(0.2)
            log("other alive")


PENDING = (JobState.SCHEDULED, JobState.ENQUEUED, JobState.RUNNING, JobState.RETRYING)


async def main(url: str, schema: str, argv: list[str]) -> None:
    recurring = []
    if "--cron" in argv or "--cron-skip" in argv:
        misfire = Misfire.SKIP if "--cron-skip" in argv else Misfire.RUN_ALL
        recurring.append(
            Recurring(name="tick", job="tick", cron="* * * * * *", misfire=misfire, overlap=True)
        )
    store = PostgresStore(url, schema=schema, heartbeat=0.5)
    jobs = JobSystem(
        store=store,
        registry=registry,
        queues={"default": 64},
        recurring=recurring,
        lease=float(os.environ.get("PG_HOST_LEASE", "10")),
        heartbeat=1.0,
        poll_interval=1.0,
        keep_succeeded=None,
    )
    children = [jobs.child_spec(), ChildSpec(name="other", factory=Other)]
    if "--singleton" in argv:
        singleton = ClusterSingleton(store=store, lease=3.0, retry=0.2)
        children.append(singleton.child_spec(ChildSpec(name="beater", factory=lambda: Beater(url, schema))))
    async with open_tree(Supervisor(name="host", children=children)):
        log("host started")
        if "--until-idle" not in argv:
            await trio.sleep_forever()
        while True:
            counts = await jobs.counts()
            if sum(counts.by_state[s] for s in PENDING) == 0:
                # Linger for two more ``other alive`` lines: a test that cut the connections
                # sees the other child log after the cut however fast the jobs were worked off.
                await trio.sleep(0.5)
                return
            await trio.sleep(0.1)


def shift_wall_clock(offset: float) -> None:
    """The ``--clock-offset`` hook: this process's wall clock reads ``offset`` seconds off."""
    real, real_ns = time.time, time.time_ns
    time.time = lambda: real() + offset  # type: ignore[assignment]
    time.time_ns = lambda: real_ns() + int(offset * 1e9)  # type: ignore[assignment]


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    LOG = sys.argv[3]
    if "--clock-offset" in sys.argv:
        shift_wall_clock(float(sys.argv[sys.argv.index("--clock-offset") + 1]))
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[4:])
