"""A job host for the process tests: ``python _crash_host.py DB LOG [--until-idle]``.

Runs the jobs of the SQLite file DB; every job ``work(n)`` appends ``start n`` and ``done n``
lines to LOG (``fenced(n)`` logs its attempt too, and its cancellation; ``chain(n)`` its attempt
and its parent's result). With ``--until-idle`` it exits once no job is awaiting, enqueued,
running, scheduled or retrying; otherwise it runs until killed.
"""

from __future__ import annotations

import json
import os
import sys

import trio

from supervisors import Supervisor, open_tree
from supervisors.jobs import JobRegistry, JobState, JobSystem, SQLiteStore, current_job

registry = JobRegistry()
LOG = ""


def log(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@registry.job()
async def fenced(n: int) -> None:
    """The first attempt hangs (until cancelled); later ones finish at once."""
    attempt = current_job().attempt
    log(f"start {n} attempt {attempt}")
    try:
        await trio.sleep(30 if attempt == 1 else 0.02)
    except trio.Cancelled:
        log(f"cancelled {n} attempt {attempt}")
        raise
    log(f"done {n} attempt {attempt}")


@registry.job()
async def chain(n: int) -> dict[str, int]:
    """A step of a continuation chain: logs its parent's result, returns its own. Step 2's
    first attempt hangs (the test kills the host then)."""
    job = current_job()
    parent = json.dumps(job.parent_result, sort_keys=True)
    log(f"start chain {n} attempt {job.attempt} parent {parent}")
    if n == 2 and job.attempt == 1:
        await trio.sleep(30)
    log(f"done chain {n} attempt {job.attempt}")
    return {"step": n, "attempt": job.attempt}


@registry.job()
async def work(n: int) -> None:
    log(f"start {n}")
    await trio.sleep(0.02)
    log(f"done {n}")


async def main(db: str, until_idle: bool) -> None:
    jobs = JobSystem(
        store=SQLiteStore(db),
        registry=registry,
        queues={"default": 4},
        lease=2.0,
        heartbeat=0.5,
        poll_interval=0.1,
    )
    async with open_tree(Supervisor(name="host", children=[jobs.child_spec()])):
        log("host started")
        if not until_idle:
            await trio.sleep_forever()
        while True:
            counts = await jobs.counts()
            pending = sum(
                counts.by_state[s]
                for s in (
                    JobState.AWAITING,
                    JobState.SCHEDULED,
                    JobState.ENQUEUED,
                    JobState.RUNNING,
                    JobState.RETRYING,
                )
            )
            if pending == 0:
                return
            await trio.sleep(0.1)


if __name__ == "__main__":
    LOG = sys.argv[2]
    trio.run(main, sys.argv[1], "--until-idle" in sys.argv)
