"""A nightly clean-up: a recurring job purges expired rows, each run in one transaction.

    python examples/cleanup.py [--dir PATH] [--cron EXPR] [--fail-once]

The application's database (``app.sqlite3``) has a ``sessions`` table; ``logins`` stands in
for the web app and adds a session every 0.2 s, some already expired. The recurring job
``purge_expired_sessions`` runs on ``--cron`` (default ``0 3 * * *``: every night at 03:00 in
Europe/Paris; try ``--cron '*/2 * * * * *'``, every two seconds).

Two resources, declared once and opened by the host:

- ``app_db`` (a host resource) knows where the database is and opens connections; the host
  opens it before the tree starts (creating the tables) and closes it after the tree stopped.
- ``transaction`` (a scoped resource, which requires ``app_db``) is opened afresh for each job
  run that declares it, as ``IServiceScopeFactory.CreateScope()`` gives each run its own
  ``DbContext``: a connection in a transaction that commits when the job returns and rolls
  back if it raises, times out or is cancelled. The job deletes the expired sessions and records
  the purge in ``purge_log``: both or neither (with ``--fail-once`` the first run fails on
  purpose after its delete, to show the rollback; the job is retried).

The job is a plain function, so it runs in a worker thread and its blocking ``sqlite3`` calls
never stall the tree. Both SQLite files live in ``--dir`` (default: a temporary directory).
Stop it with Ctrl-C (exit code 0).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import trio

from actors import BackgroundService
from supervisors import ChildSpec, Resource, Supervisor, run, uses
from supervisors.jobs import JobRegistry, JobSystem, Recurring, RetryPolicy, SQLiteStore, current_job

log = logging.getLogger("cleanup")
registry = JobRegistry()
APP_DB = "app.sqlite3"
fail_once = False  # set by --fail-once


class Database:
    """The application's SQLite database: where it is, and a way to connect."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> sqlite3.Connection:
        # autocommit mode: transactions are begun and ended explicitly; usable from a worker thread
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def create_schema(self) -> None:
        with contextlib.closing(self.connect()) as db:
            db.execute("CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, user TEXT, expires_at REAL)")
            db.execute("CREATE TABLE IF NOT EXISTS purge_log (at REAL, removed INTEGER)")


database_path = Path(APP_DB)  # set by main() from --dir (in an application: from its settings)


@asynccontextmanager
async def open_database() -> AsyncIterator[Database]:
    database = Database(database_path)
    await trio.to_thread.run_sync(database.create_schema)
    yield database


@asynccontextmanager
async def begin_transaction() -> AsyncIterator[sqlite3.Connection]:
    """A connection in a transaction: committed if the job returns, rolled back if it raises."""
    connection = await trio.to_thread.run_sync(app_db.get().connect)
    try:
        await trio.to_thread.run_sync(connection.execute, "BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            with trio.CancelScope(shield=True):  # roll back even when the run was cancelled
                await trio.to_thread.run_sync(connection.execute, "ROLLBACK")
            raise
        await trio.to_thread.run_sync(connection.execute, "COMMIT")
    finally:
        connection.close()


app_db = Resource("app-db", open_database)
"""Host resource: the application database."""
transaction = Resource("transaction", begin_transaction, scoped=True, requires=[app_db])
"""Scoped resource: one transaction per job run."""


@registry.job(name="purge_expired_sessions", retry=RetryPolicy(base=0.5, max_attempts=3))
def purge_expired_sessions(*, tx: Annotated[sqlite3.Connection, transaction]) -> None:
    """Delete the expired sessions and log the purge, in the run's transaction."""
    global fail_once
    now = time.time()
    removed = tx.execute("DELETE FROM sessions WHERE expires_at < ?", (now,)).rowcount
    if fail_once:
        fail_once = False
        log.warning("purge: failing on purpose after deleting %d rows; the delete is rolled back", removed)
        raise OSError("disk full (on purpose)")
    tx.execute("INSERT INTO purge_log VALUES (?, ?)", (now, removed))
    left = tx.execute("SELECT count(*) FROM sessions").fetchone()[0]
    log.info("purge (attempt %d): %d expired sessions removed, %d left", current_job().attempt, removed, left)


class Logins(BackgroundService):
    """Stands in for the web app: a login every 0.2 s; every other session is already expired."""

    db = uses(app_db)

    async def execute(self) -> None:
        n = 0
        while True:
            n += 1
            expires = time.time() + (-60 if n % 2 else 3600)
            await trio.to_thread.run_sync(self.add_session, f"user{n}", expires)
            await trio.sleep(0.2)

    def add_session(self, user: str, expires_at: float) -> None:
        with contextlib.closing(self.db.connect()) as db:
            db.execute("INSERT INTO sessions (user, expires_at) VALUES (?, ?)", (user, expires_at))


def build_tree(directory: Path, cron: str) -> Supervisor:
    jobs = JobSystem(
        store=SQLiteStore(directory / "jobs.sqlite3"),
        registry=registry,
        recurring=[Recurring(name="nightly-cleanup", cron=cron, tz="Europe/Paris", job="purge_expired_sessions")],
    )
    return Supervisor(name="cleanup", children=[jobs.child_spec(), ChildSpec(name="logins", factory=Logins)])


def main() -> int:
    parser = argparse.ArgumentParser(description="a recurring job purges expired rows in a transaction")
    parser.add_argument("--dir", type=Path, help="directory of the SQLite files (default: a temporary one)")
    parser.add_argument("--cron", default="0 3 * * *", help="when the clean-up runs (default: 03:00 nightly)")
    parser.add_argument("--fail-once", action="store_true", help="make the first purge fail after its delete")
    options = parser.parse_args()
    global fail_once, database_path
    fail_once = options.fail_once
    with tempfile.TemporaryDirectory() as tmp:
        directory = options.dir or Path(tmp)
        database_path = directory / APP_DB
        return run(build_tree(directory, options.cron), resources=[app_db])


if __name__ == "__main__":
    raise SystemExit(main())
