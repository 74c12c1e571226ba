"""Helpers shared by the command-line tests: run `main` in this process, make a SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from supervisors.cli import main
from supervisors.jobs import Failure, JobClient, SQLiteStore


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in this process; return (exit status, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def make_store(path: Path, *, enqueued: int = 0, dead: int = 0) -> None:
    """A job store file with ``dead`` dead jobs (ids first) and then ``enqueued`` enqueued ones."""
    with JobClient(path) as client:
        for n in range(dead):
            client.enqueue("send", {"n": n}, queue="dead")

    async def kill() -> None:
        store = SQLiteStore(path)
        now = time.time()
        claimed = await store.claim("dead", dead, owner="t", now=now, lease_until=now + 60)
        failures = [Failure(c.id, c.attempt, "ConnectionError: down", "Traceback: here", None) for c in claimed]
        await store.settle(owner="t", now=now, failed=failures)
        await store.aclose()

    if dead:
        trio.run(kill)
    with JobClient(path) as client:
        for n in range(enqueued):
            client.enqueue("send", {"n": n})
