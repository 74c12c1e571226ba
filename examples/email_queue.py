"""An e-mail queue: a sign-up enqueues a welcome e-mail; a job worker sends it, with retries.

    python examples/email_queue.py [--db PATH]

- ``signups`` is a BackgroundService standing in for the web app: a user signs up every half
  second and a durable ``send_welcome`` job is enqueued for them (it survives a restart).
- ``jobs`` is the job system on a SQLite file (a temporary one unless ``--db`` is given); its
  ``mail`` queue sends two e-mails at a time.
- ``send_welcome`` declares the SMTP client it needs (``smtp: Annotated[SmtpClient, smtp_client]``).
  ``smtp_client`` is a host resource: the host opens it **once**, before the tree starts, and
  closes it after the tree has stopped, so it is shared by every job and outlives every restart
  (as a singleton ``SmtpClient`` would in ASP.NET Core). A tree whose jobs use a resource the host
  does not provide is refused before anything starts. The "server" is a fake sink in memory that
  refuses the first attempt for every third address, so the log shows a retry with backoff.

Stop it with Ctrl-C (exit code 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import attrs
import trio

from actors import BackgroundService
from supervisors import ChildSpec, Resource, Supervisor, run
from supervisors.jobs import JobRegistry, JobSystem, RetryPolicy, SQLiteStore, current_job

log = logging.getLogger("email_queue")


@attrs.frozen
class Email:
    to: str
    subject: str
    body: str


class SmtpRefused(ConnectionError):
    """The (fake) server refused a message; the job fails this attempt and is retried."""


class FakeSink:
    """The fake mail server: keeps what it accepts; refuses the first try for every third address."""

    def __init__(self) -> None:
        self.delivered: list[Email] = []
        self.refused: set[str] = set()

    def accept(self, email: Email) -> None:
        number = int(email.to.removeprefix("user").partition("@")[0])
        if number % 3 == 0 and email.to not in self.refused:
            self.refused.add(email.to)
            raise SmtpRefused(f"451 try again later: greylisted {email.to}")
        self.delivered.append(email)


class SmtpClient:
    """A client connected to a mail server; ``send`` is one SMTP round trip."""

    def __init__(self, sink: FakeSink) -> None:
        self.sink = sink
        self.sent = 0

    async def send(self, email: Email) -> None:
        await trio.sleep(0.02)  # the round trip
        self.sink.accept(email)
        self.sent += 1


sink = FakeSink()


@asynccontextmanager
async def connect_smtp() -> AsyncIterator[SmtpClient]:
    """Connect to the mail server (here: the fake sink) and disconnect at the end."""
    log.info("SMTP client connected")
    client = SmtpClient(sink)
    try:
        yield client
    finally:
        log.info("SMTP client disconnected after %d e-mails", client.sent)


smtp_client = Resource("smtp", connect_smtp)
"""The host resource: one SMTP connection for the whole program."""
registry = JobRegistry()


@attrs.frozen
class Welcome:
    to: str
    name: str


@registry.job(queue="mail", retry=RetryPolicy(base=0.2, max_attempts=5))
async def send_welcome(args: Welcome, *, smtp: Annotated[SmtpClient, smtp_client]) -> None:
    """Send the welcome e-mail; a refusal fails this attempt and the job is retried later."""
    await smtp.send(Email(to=args.to, subject="Welcome!", body=f"Hello {args.name}, welcome aboard."))
    log.info("welcome e-mail to %s delivered (attempt %d)", args.to, current_job().attempt)


class Signups(BackgroundService):
    """Stands in for the web app's sign-up endpoint: a user signs up every half second."""

    def __init__(self, jobs: JobSystem) -> None:
        self.jobs = jobs

    async def execute(self) -> None:
        n = 0
        while True:
            n += 1
            job_id = await self.jobs.enqueue("send_welcome", Welcome(f"user{n}@example.com", f"User {n}"))
            log.info("user%d signed up; welcome e-mail is job %d", n, job_id)
            await trio.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description="sign-ups enqueue welcome e-mails; a job worker sends them")
    parser.add_argument("--db", help="SQLite file of the job store (default: a temporary file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(options.db or os.path.join(tmp, "jobs.db"))
        jobs = JobSystem(store=store, registry=registry, queues={"mail": 2}, grace=5.0)
        tree = Supervisor(
            name="email",
            children=[jobs.child_spec(), ChildSpec(name="signups", factory=lambda: Signups(jobs))],
        )
        return run(tree, resources=[smtp_client])


if __name__ == "__main__":
    raise SystemExit(main())
