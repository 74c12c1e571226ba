"""A nightly clean-up: a recurring job purges expired rows, each run in one transaction.

    python examples/cleanup.py [--dir PATH] [--cron EXPR] [--fail-once]

The application's database (``app.sqlite3``) has a ``sessions`` table; ``logins`` stands in
for the web app and adds a session every 0.2 s, some already expired. The recurring job
``purge_expired_sessions`` runs on ``--cron`` (default ``0 3 * * *``: every night at 03:00 in
Europe/Paris; try ``--cron '*/2 * * * * *'``, every two seconds). Each run opens a transaction
scope: it deletes the expired sessions and records the purge in ``purge_log``; both commit
together when the job returns, and both roll back if it raises (the job is then retried; with
``--fail-once`` the first run fails on purpose after its delete, to show the rollback). The
job is a plain function, so it runs in a worker thread and its blocking ``sqlite3`` calls never
stall the tree. Both SQLite files live in ``--dir`` (default: a temporary directory).
Stop it with Ctrl-C (exit code 0).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import trio

from actors import BackgroundService
from supervisors import ChildSpec, Supervisor, run
from supervisors.jobs import JobRegistry, JobSystem, Recurring, RetryPolicy, SQLiteStore, current_job

log = logging.getLogger("cleanup")
registry = JobRegistry()
APP_DB = "app.sqlite3"
fail_once = False  # set by --fail-once


@contextlib.contextmanager
def transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in a transaction: committed if the block returns, rolled back if it raises."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        connection.close()


def create_schema(path: Path) -> None:
    with transaction(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, user TEXT, expires_at REAL)")
        db.execute("CREATE TABLE IF NOT EXISTS purge_log (at REAL, removed INTEGER)")


@registry.job(name="purge_expired_sessions", retry=RetryPolicy(base=0.5, max_attempts=3))
def purge_expired_sessions(app_db: str) -> None:
    """Delete the expired sessions and log the purge, in one transaction."""
    global fail_once
    now = time.time()
    with transaction(Path(app_db)) as db:
        removed = db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,)).rowcount
        if fail_once:
            fail_once = False
            log.warning("purge: failing on purpose after deleting %d rows; the delete is rolled back", removed)
            raise OSError("disk full (on purpose)")
        db.execute("INSERT INTO purge_log VALUES (?, ?)", (now, removed))
        left = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    log.info("purge (attempt %d): %d expired sessions removed, %d left", current_job().attempt, removed, left)


class Logins(BackgroundService):
    """Stands in for the web app: a login every 0.2 s; every other session is already expired."""

    def __init__(self, app_db: Path) -> None:
        self.app_db = app_db

    async def execute(self) -> None:
        n = 0
        while True:
            n += 1
            expires = time.time() + (-60 if n % 2 else 3600)
            await trio.to_thread.run_sync(self.add_session, f"user{n}", expires)
            await trio.sleep(0.2)

    def add_session(self, user: str, expires_at: float) -> None:
        with transaction(self.app_db) as db:
            db.execute("INSERT INTO sessions (user, expires_at) VALUES (?, ?)", (user, expires_at))


def build_tree(directory: Path, cron: str) -> Supervisor:
    app_db = directory / APP_DB
    create_schema(app_db)
    jobs = JobSystem(
        store=SQLiteStore(directory / "jobs.sqlite3"),
        registry=registry,
        recurring=[
            Recurring(name="nightly-cleanup", cron=cron, tz="Europe/Paris", job="purge_expired_sessions",
                      args=str(app_db)),
        ],
    )
    return Supervisor(
        name="cleanup",
        children=[jobs.child_spec(), ChildSpec(name="logins", factory=functools.partial(Logins, app_db))],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="a recurring job purges expired rows in a transaction")
    parser.add_argument("--dir", type=Path, help="directory of the SQLite files (default: a temporary one)")
    parser.add_argument("--cron", default="0 3 * * *", help="when the clean-up runs (default: 03:00 nightly)")
    parser.add_argument("--fail-once", action="store_true", help="make the first purge fail after its delete")
    options = parser.parse_args()
    global fail_once
    fail_once = options.fail_once
    with tempfile.TemporaryDirectory() as tmp:
        return run(build_tree(options.dir or Path(tmp), options.cron))


if __name__ == "__main__":
    raise SystemExit(main())
