"""Durable jobs in a supervision tree: fire-and-forget, delayed, retried and recurring jobs.

    python examples/jobs_demo.py [--db PATH] [--once]

Runs a tree with a job system on a SQLite file (a temporary one unless ``--db`` is given),
enqueues a few jobs and prints what happens. Stop it with Ctrl-C; with ``--once`` it stops by
itself once the demo jobs have finished (a few seconds). Another process can add jobs to the
same file with ``JobClient(PATH).enqueue("send_welcome", {"to": "x@example.com"})``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile

import attrs
import trio

from supervisors import Supervisor, Tree, run
from supervisors.jobs import (
    JobRegistry,
    JobRequest,
    JobSystem,
    Recurring,
    RetryPolicy,
    SQLiteStore,
    current_job,
)

registry = JobRegistry()


@attrs.frozen
class Welcome:
    to: str
    name: str = "friend"


@registry.job(queue="mail", unique=True)
async def send_welcome(args: Welcome) -> None:
    """Pretend to send an e-mail."""
    await trio.sleep(0.1)
    print(f"  mail: welcome e-mail sent to {args.name} <{args.to}>")


@registry.job(retry=RetryPolicy(base=0.2, jitter=0.0), max_attempts=3)
async def flaky_report() -> None:
    """Fails twice, then succeeds: shows retries with backoff."""
    attempt = current_job().attempt
    if attempt < 3:
        raise ConnectionError(f"report server unreachable (attempt {attempt})")
    print(f"  report: generated on attempt {attempt}")


@registry.job()
def cleanup() -> None:
    """A plain function (runs in a worker thread), run by a recurring schedule."""
    print("  cleanup: expired records removed")


def build(db: str) -> JobSystem:
    return JobSystem(
        store=SQLiteStore(db),
        registry=registry,
        queues={"default": 4, "mail": 2},
        recurring=[Recurring(name="cleanup", cron="*/2 * * * * *", job="cleanup")],
        grace=5.0,
    )


async def demo(jobs: JobSystem, tree: Tree, once: bool) -> None:
    ids = await jobs.enqueue_many(
        [
            JobRequest(job="send_welcome", args=Welcome("ada@example.com", "Ada")),
            JobRequest(job="send_welcome", args=Welcome("alan@example.com", "Alan")),
        ]
    )
    ids.append(await jobs.schedule("send_welcome", Welcome("grace@example.com"), after=1.0))
    ids.append(await jobs.enqueue("flaky_report"))
    print(f"enqueued jobs {ids}")
    if not once:
        return
    for job_id in ids:
        job = await jobs.wait_finished(job_id)
        print(f"job {job.id} {job.name}: {job.state.value} after {job.attempt} attempt(s)")
    await trio.sleep(2.1)  # let the recurring cleanup fire at least once
    counts = await jobs.counts()
    print("counts:", {state.value: n for state, n in counts.by_state.items() if n})
    tree.request_stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite file (default: a temporary file)")
    parser.add_argument("--once", action="store_true", help="stop when the demo jobs are done")
    options = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # failures are logged with their traceback
    logging.getLogger("supervisors.jobs").setLevel(logging.CRITICAL)  # keep the demo quiet
    with tempfile.TemporaryDirectory() as tmp:
        jobs = build(options.db or os.path.join(tmp, "jobs.db"))
        tree = Supervisor(name="app", children=[jobs.child_spec()])

        async def on_started(t: Tree) -> None:
            await demo(jobs, t, options.once)

        return run(tree, on_started=on_started, configure_logging=False)


if __name__ == "__main__":
    raise SystemExit(main())
