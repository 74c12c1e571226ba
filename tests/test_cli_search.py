"""``supervisors jobs list``: the search filters and keyset paging, in human and JSON formats."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from _cli import cli, make_store

from supervisors.jobs import JobClient

pytestmark = pytest.mark.usefixtures("restore_logging")


def listed(capsys: pytest.CaptureFixture[str], db: Path, *options: str) -> dict[str, object]:
    code, out, err = cli(capsys, "jobs", "list", "--store", f"sqlite:///{db}", "--json", *options)
    assert code == 0, err
    answer: dict[str, object] = json.loads(out)
    return answer


def ids(answer: dict[str, object]) -> list[int]:
    return [j["id"] for j in answer["items"]]  # type: ignore[attr-defined]


def test_jobs_list_searches_by_state_name_queue_arguments_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs list` takes the search's filters: several states, name, queue, argument path
    equality and substring, and a creation time range (UTC unless an offset is given)."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=2, dead=1)  # 1: dead {"n": 0}; 2, 3: enqueued {"n": 0}, {"n": 1}
    with JobClient(db) as client:
        client.enqueue("report", {"user": {"id": 7}}, queue="slow")  # 4
        created = client.get(4).created_at - timedelta(milliseconds=1)  # shown to the microsecond: rounded
    assert ids(listed(capsys, db, "--state", "dead,enqueued")) == [4, 3, 2, 1]
    assert ids(listed(capsys, db, "--state", "dead", "--state", "enqueued", "--name", "send")) == [3, 2, 1]
    assert ids(listed(capsys, db, "--queue", "slow")) == [4]
    assert ids(listed(capsys, db, "--args-match", "n=1")) == [3]
    assert ids(listed(capsys, db, "--args-match", "user.id=7", "--name", "report")) == [4]
    assert ids(listed(capsys, db, "--args-contains", '"n":0')) == [2, 1]
    naive_utc = created.replace(tzinfo=None).isoformat()
    assert ids(listed(capsys, db, "--since", naive_utc)) == [4]
    assert ids(listed(capsys, db, "--until", created.isoformat())) == [3, 2, 1]


def test_jobs_list_pages_by_cursor_in_both_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A page prints the cursors of the older and newer pages (a line each, or ``next`` and
    ``previous`` in JSON); passing one back with --cursor shows that page."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=5)
    first = listed(capsys, db, "--limit", "2")
    assert ids(first) == [5, 4]
    assert first["previous"] is None
    second = listed(capsys, db, "--limit", "2", "--cursor", str(first["next"]))
    assert ids(second) == [3, 2]
    code, out, _ = cli(capsys, "jobs", "list", "--store", f"sqlite:///{db}", "--limit", "2",
                       "--cursor", str(second["next"]))  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:2]] == ["1"]
    newer = next(line for line in lines if line.startswith("newer jobs: --cursor "))
    assert ids(listed(capsys, db, "--limit", "2", "--cursor", newer.split()[-1])) == [3, 2]
    assert not any(line.startswith("older jobs:") for line in lines)
    assert lines[-1] == "1 shown; in the store: 5 (5 enqueued)"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--state", "zombie"), "--state: unknown job state 'zombie'"),
        (("--since", "2026-01-02", "--until", "2026-01-01"), "--until: must be after 'since'"),
        (("--since", "yesterday"), "--since: expected an ISO 8601 time"),
        (("--cursor", "nope"), "--cursor: malformed cursor 'nope'"),
        (("--args-match", "user_id"), "--args-match: expected PATH=VALUE"),
        (("--args-match", "a b=1"), "--args-match: malformed argument path 'a b'"),
        (("--limit", "0"), "--limit: must be an integer from 1 to 1000"),
    ],
)
def test_jobs_list_refuses_a_bad_search_in_one_line_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], says: str
) -> None:
    """Bad search input: exit 1 and one line naming the option and what to do."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    code, out, err = cli(capsys, "jobs", "list", "--store", f"sqlite:///{db}", *options)
    assert code == 1
    assert out == ""
    assert err.strip().splitlines() == [f"supervisors: error: {says}" + err.strip().split(says, 1)[1]]
