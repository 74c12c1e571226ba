"""A job host on PostgreSQL for the process tests: ``python _pg_host.py URL SCHEMA LOG [options]``.

Every job ``noop(n)`` appends ``done n`` to LOG; the recurring ``tick`` (with ``--cron``, every
second) appends ``tick <job id>``; with ``--singleton`` a `ClusterSingleton` child (lease 3 s)
writes beats to the table ``singleton_beats``. With ``--until-idle`` the host exits once no job is pending;
otherwise it runs until killed. The lease is 10 s (``PG_HOST_LEASE``): long enough that a host
starved of CPU on a loaded machine keeps its leases, short enough that a killed host's jobs come
back within the test.
"""

from __future__ import annotations

import logging
import os
import sys

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
    """The singleton child: writes ``(pid, database time)`` rows to ``singleton_beats`` every
    50 ms, so that a test sees when and where it ran."""

    def __init__(self, url: str, schema: str) -> None:
        super().__init__()
        self.url, self.schema = url, schema

    async def execute(self) -> None:
        conn = await trio.to_thread.run_sync(lambda: psycopg.connect(self.url, autocommit=True))
        try:
            while True:
                await trio.to_thread.run_sync(
                    conn.execute,
                    f"INSERT INTO {self.schema}.singleton_beats VALUES "
                    f"({os.getpid()}, extract(epoch FROM clock_timestamp()))",
                )
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
    if "--cron" in argv:
        recurring.append(
            Recurring(name="tick", job="tick", cron="* * * * * *", misfire=Misfire.RUN_ALL, overlap=True)
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
                return
            await trio.sleep(0.1)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    LOG = sys.argv[3]
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[4:])
