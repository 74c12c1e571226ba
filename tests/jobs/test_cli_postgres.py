"""The command line against a PostgreSQL store: migrate, then jobs enqueue / list / show / retry /
cancel / requeue / delete, and queues pause / resume."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator

import pytest
from _pg import drop_schema, require_postgres

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
    assert "is at version 0, this release needs" in capsys.readouterr().err
    assert main(["migrate", pg_store_url]) == 0
    assert "ran migrations" in capsys.readouterr().out
    assert main(["jobs", "enqueue", "send", "--args", '{"n": 1}', "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "1"
    assert main(["jobs", "list", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 shown; in the store: 1 (1 enqueued)"
    assert main(["jobs", "show", "1", "--store", pg_store_url]) == 0
    assert '  args:        {"n": 1}' in capsys.readouterr().out
    assert main(["jobs", "enqueue", "report", "--after", "1", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.strip() == "2"
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
    assert main(["jobs", "list", "--store", pg_store_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 shown; in the store: 0 (none)"
    assert main(["schedules", "list", "--store", pg_store_url]) == 0
    assert "no schedule is recorded in this store" in capsys.readouterr().out
    assert main(["schedules", "show", "nightly", "--store", pg_store_url]) == 1
    assert "no recurring schedule named 'nightly'" in capsys.readouterr().err
