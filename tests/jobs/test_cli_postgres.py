"""The command line against a PostgreSQL store: migrate, then jobs enqueue / list / show / retry /
cancel / requeue / delete, and queues pause / resume."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from _pg import PG_URL, drop_schema, require_postgres

from supervisors.cli import main


@pytest.fixture
def pg_store_url() -> Iterator[str]:
    url = require_postgres()
    schema = f"cli_{uuid.uuid4().hex[:12]}"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield f"{url}?schema={schema}"
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        drop_schema(schema)


def test_cli_migrates_then_operates_jobs_in_a_postgres_store(
    pg_store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before migrate the jobs commands refuse (one line); after it they enqueue, list, show, refuse a retry."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["jobs", "list", "--store", pg_store_url]) == 1
    err = capsys.readouterr().err
    assert "there is no schema" in err
    assert "check the schema name" in err
    assert main(["migrate", pg_store_url]) == 0
    assert "ran migrations" in capsys.readouterr().out
    assert main(["jobs", "enqueue", "send", "--args", '{"n": 1}', "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "1"
    assert main(["jobs", "list", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 shown; in the store: 1 (1 enqueued)"
    assert main(["jobs", "show", "1", "--store", pg_store_url]) == 0
    assert '  args:        {"n": 1}' in capsys.readouterr().out
    assert main(["jobs", "enqueue", "report", "--after", "1", "--priority", "3", "--concurrency-key", "u",
                 "--store", pg_store_url]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == "2"
    assert main(["jobs", "show", "2", "--store", pg_store_url]) == 0
    shown = capsys.readouterr().out
    assert "  priority:    3\n" in shown
    assert "  concurrency: key 'u', at most 1 running at once\n" in shown
    assert main(["jobs", "delete", "2", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "job 2 deleted"
    assert main(["jobs", "retry", "1", "--store", pg_store_url]) == 1
    assert capsys.readouterr().err.strip() == (
        "supervisors: error: JobStateError: job 1 is enqueued; only scheduled, retrying, dead jobs can be retried"
    )
    assert main(["jobs", "cancel", "1", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "job 1 cancelled"
    assert main(["jobs", "requeue", "1", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "job 1 enqueued again"
    assert main(["jobs", "cancel", "--state", "enqueued", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "1 enqueued job(s) cancelled"
    assert main(["jobs", "delete", "1", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "job 1 deleted"
    assert main(["queues", "pause", "mail", "--store", pg_store_url]) == 0
    assert main(["queues", "paused", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "mail"
    assert main(["queues", "resume", "mail", "--store", pg_store_url]) == 0
    assert main(["queues", "limit", "mail", "5", "--per", "1.5", "--store", pg_store_url]) == 0
    capsys.readouterr()
    assert main(["queues", "limits", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out == "mail  5 per 1.5 s\n"
    assert main(["queues", "limit", "mail", "--none", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out == "queue 'mail': no rate limit\n"
    assert main(["jobs", "list", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 shown; in the store: 0 (none)"
    assert main(["schedules", "list", "--store", pg_store_url]) == 0
    assert "no schedule is recorded in this store" in capsys.readouterr().out
    assert main(["schedules", "show", "nightly", "--store", pg_store_url]) == 1
    assert "no recurring schedule named 'nightly'" in capsys.readouterr().err
    import psycopg

    with psycopg.connect(pg_store_url.split("?")[0]) as conn:  # a command is no host of the cluster
        schema = pg_store_url.rsplit("=", 1)[1]
        assert conn.execute(f"SELECT count(*) FROM {schema}.hosts").fetchone() == (0,)


async def test_cli_hosts_lists_the_hosts_of_a_postgres_store_and_says_sqlite_keeps_none(
    pg_schema: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``supervisors hosts`` prints each host with its state, heartbeat and jobs (and JSON with
    --json); with a SQLite store it says there is no table of hosts."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # main() sets up the root logger
    try:
        await _hosts_command_checks(pg_schema, tmp_path, capsys)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def _hosts_command_checks(pg_schema: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from supervisors.jobs import PostgresStore, SQLiteStore

    url = f"{PG_URL}?schema={pg_schema}"
    alive, stopped = PostgresStore(PG_URL, schema=pg_schema), PostgresStore(PG_URL, schema=pg_schema)
    await stopped.open()
    await stopped.aclose()
    await alive.open()
    try:
        status = await trio.to_thread.run_sync(main, ["hosts", "--store", url])
        table = capsys.readouterr().out.splitlines()
        await trio.to_thread.run_sync(main, ["hosts", "--store", url, "--json"])
        listed = json.loads(capsys.readouterr().out)
    finally:
        await alive.aclose()
    assert status == 0
    assert table[0].split() == ["HOST", "STATE", "LAST", "HEARTBEAT", "AGE", "STARTED", "RUNNING", "SINGLETONS"]
    assert [(line.split()[0], line.split()[1]) for line in table[1:-1]] == [
        (stopped.host_id, "stopped"), (alive.host_id, "alive")]
    assert table[-1] == "1 of 2 hosts alive"
    assert [(h["id"], h["alive"], h["running"], h["singletons"]) for h in listed] == [
        (stopped.host_id, False, [], []), (alive.host_id, True, [], [])]
    sqlite = SQLiteStore(tmp_path / "jobs.db")
    await sqlite.open()
    await sqlite.aclose()
    assert await trio.to_thread.run_sync(main, ["hosts", "--store", f"sqlite:///{tmp_path / 'jobs.db'}"]) == 0
    assert "this store keeps no table of hosts (SQLite)" in capsys.readouterr().out


def test_cli_refuses_a_job_name_no_host_registered_in_a_postgres_store(
    pg_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """As on SQLite: with definitions recorded, an unknown name is refused (nothing enqueued) and
    ``--force`` enqueues it."""
    from supervisors.jobs import JobSettings, PostgresStore

    assert main(["migrate", pg_store_url]) == 0
    url, schema = pg_store_url.split("?schema=")

    async def define() -> None:
        store = PostgresStore(url, schema=schema, migrate=False, register_host=False)
        await store.open()
        await store.define([JobSettings(name="send", queue="default", max_attempts=3, unique=False)])
        await store.aclose()

    trio.run(define)
    capsys.readouterr()
    assert main(["jobs", "enqueue", "sned", "--store", pg_store_url]) == 1
    assert "no host on this store has registered a job named 'sned'" in capsys.readouterr().err
    assert main(["jobs", "enqueue", "sned", "--force", "--store", pg_store_url]) == 0
    assert main(["jobs", "enqueue", "send", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.split() == ["1", "2"]
