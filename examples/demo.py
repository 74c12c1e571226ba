"""The demo application: hosted services and durable jobs in one supervised tree.

    python -m supervisors run examples.demo:tree [--store sqlite:///PATH] [--dashboard]
    python examples/demo.py [--db PATH]

- ``heartbeat``: a BackgroundService that logs every few seconds.
- ``pipeline``: a queue consumer and a worker that crashes and recovers (examples/pipeline.py).
- ``signups``: a producer that simulates a user signing up every second and enqueues a
  durable ``send_welcome_email`` job for each (fails now and then: watch the retries).
- ``jobs``: the job system on SQLite (``demo-jobs.sqlite3`` in the current directory unless
  ``--db`` is given): a worker pool per queue, a scheduler, and a recurring ``cleanup`` job
  every 10 seconds. Jobs survive a restart: stop the demo with Ctrl-C and start it again.
"""

from __future__ import annotations

import argparse
import functools
import logging
import random
import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

sys.path.insert(0, str(Path(__file__).parent))

from heartbeat import HeartbeatService
from pipeline import tree as pipeline

from actors import BackgroundService
from supervisors import ChildSpec, Supervisor, run
from supervisors.jobs import JobRegistry, JobSystem, Recurring, RetryPolicy, SQLiteStore, Store

log = logging.getLogger("demo")
registry = JobRegistry()


@attrs.frozen
class Welcome:
    email: str
    name: str


@registry.job(queue="mail", retry=RetryPolicy(base=0.5, max_delay=5.0), max_attempts=5)
async def send_welcome_email(args: Welcome) -> None:
    """Send the welcome e-mail; the SMTP server is flaky (one attempt in four fails)."""
    await trio.sleep(0.05)
    if random.random() < 0.25:
        raise ConnectionError("SMTP server did not answer")
    log.info("welcome e-mail sent to %s <%s>", args.name, args.email)


@registry.job()
def cleanup() -> None:
    """The nightly clean-up, every 10 s for the demo (a plain function: runs in a thread)."""
    log.info("cleanup: expired sessions removed")


class Signups(BackgroundService):
    """Simulates the web app: a user signs up every second; the e-mail goes to a job."""

    def __init__(self, jobs: JobSystem) -> None:
        self.jobs = jobs

    async def execute(self) -> None:
        n = 0
        while True:
            n += 1
            job_id = await self.jobs.enqueue("send_welcome_email", Welcome(f"user{n}@example.com", f"User {n}"))
            log.info("user %d signed up; welcome e-mail is job %d", n, job_id)
            await trio.sleep(1.0)


def build_tree(
    store: Store, *, dashboard: Callable[[JobSystem], ChildSpec] | None = None, **job_options: object
) -> Supervisor:
    """The demo tree on ``store`` (the property test runs it on an in-memory store), with the
    child ``dashboard(jobs)`` makes last if given."""
    jobs = JobSystem(
        store=store,
        registry=registry,
        queues={"default": 2, "mail": 4},
        recurring=[Recurring(name="cleanup", cron="*/10 * * * * *", job="cleanup")],
        **job_options,  # type: ignore[arg-type]
    )
    children: list[ChildSpec | Supervisor] = [
        ChildSpec(name="heartbeat", factory=lambda: HeartbeatService(interval=5.0)),
        pipeline,
        jobs.child_spec(),
        ChildSpec(name="signups", factory=functools.partial(Signups, jobs)),
    ]
    if dashboard is not None:
        children.append(dashboard(jobs))
    return Supervisor(name="demo", children=children)


def tree(store: Store | None = None, dashboard: Callable[[JobSystem], ChildSpec] | None = None) -> Supervisor:
    """The demo tree for ``python -m supervisors run examples.demo:tree``: the job store given
    with ``--store URL``, else ``demo-jobs.sqlite3`` in the current directory; with
    ``--dashboard``, the dashboard showing the tree and the demo's jobs."""
    return build_tree(store if store is not None else SQLiteStore("demo-jobs.sqlite3"), dashboard=dashboard)


def main() -> int:
    parser = argparse.ArgumentParser(description="the trio-supervisors demo application")
    parser.add_argument("--db", default="demo-jobs.sqlite3", help="SQLite file of the job store")
    options = parser.parse_args()
    return run(build_tree(SQLiteStore(options.db)))


if __name__ == "__main__":
    raise SystemExit(main())
