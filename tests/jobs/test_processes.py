"""Real processes on one SQLite file: kill -9 recovery, and a second process enqueueing."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supervisors.jobs import JobClient, JobRequest, JobState

ROOT = Path(__file__).resolve().parents[2]
HOST = Path(__file__).with_name("_crash_host.py")


def start_host(db: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (log.parent / "host.err").open("ab") as err:
        return subprocess.Popen(
            [sys.executable, str(HOST), str(db), str(log), *extra],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


@pytest.mark.slow
def test_jobs_survive_kill_9_of_the_host(tmp_path: Path) -> None:
    """Kill -9 mid-run, restart: every job succeeds; unstarted ones ran exactly once."""
    db, log = tmp_path / "jobs.db", tmp_path / "run.log"
    n = 200
    with JobClient(db) as client:
        ids = client.enqueue_many([JobRequest(job="work", args=i) for i in range(n)])
    first = start_host(db, log)
    try:
        wait_for(lambda: sum(line.startswith("done") for line in lines(log)) >= 40, 20)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    started_before_kill = {int(x.split()[1]) for x in lines(log) if x.startswith("start")}
    done_before_kill = {int(x.split()[1]) for x in lines(log) if x.startswith("done")}
    assert 0 < len(started_before_kill) < n

    second = start_host(db, log, "--until-idle")
    second.wait(timeout=25)
    assert second.returncode == 0, (tmp_path / "host.err").read_text()

    done = collections.Counter(int(x.split()[1]) for x in lines(log) if x.startswith("done"))
    with JobClient(db) as client:
        jobs = [client.get(i) for i in ids]
    states = {job.state for job in jobs}
    interrupted = started_before_kill - done_before_kill
    assert states == {JobState.SUCCEEDED}
    assert set(done) == set(range(n))
    assert all(done[i] == 1 for i in range(n) if i not in started_before_kill)
    assert all(done[i] >= 1 for i in started_before_kill)
    for job in jobs:
        if job.args in interrupted:  # recovered through its expired lease
            assert job.attempt == 2
            assert "lease expired" in job.errors[0].error


@pytest.mark.slow
def test_job_enqueued_by_another_process_starts_within_the_poll_interval(
    tmp_path: Path,
) -> None:
    """A synchronous JobClient in this process feeds a host process running the jobs."""
    db, log = tmp_path / "jobs.db", tmp_path / "run.log"
    JobClient(db).close()  # create the schema before the host polls
    host = start_host(db, log)
    try:
        wait_for(lambda: "host started" in lines(log), 20)
        with JobClient(db) as client:
            t0 = time.monotonic()
            job_id = client.enqueue("work", 7)
            wait_for(lambda: "start 7" in lines(log), 5)
            pickup = time.monotonic() - t0
            wait_for(lambda: client.get(job_id).state is JobState.SUCCEEDED, 5)
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    assert pickup < 0.1 + 0.5  # the host's poll interval (0.1 s) plus scheduling slack
