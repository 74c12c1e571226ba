"""Real processes on one SQLite file: kill -9 recovery (of jobs and of a continuation chain), and
a second process enqueueing."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
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
def test_a_continuation_chain_survives_kill_9_of_the_host_between_its_steps(tmp_path: Path) -> None:
    """A → B → C: A succeeds, the host is killed with -9 while B runs, a new host recovers B by
    its lease and runs it again; C runs exactly once, with the result of B's run that succeeded."""
    db, log = tmp_path / "jobs.db", tmp_path / "run.log"
    with JobClient(db) as client:
        a = client.enqueue("chain", 1)
        b = client.continue_with(a, "chain", 2)
        c = client.continue_with(b, "chain", 3)
    first = start_host(db, log)
    try:
        wait_for(lambda: any(x.startswith("start chain 2 attempt 1") for x in lines(log)), 20)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with JobClient(db) as client:
        assert [client.get(j).state for j in (a, b, c)] == [
            JobState.SUCCEEDED, JobState.RUNNING, JobState.AWAITING,
        ]  # fmt: skip

    second = start_host(db, log, "--until-idle")
    second.wait(timeout=25)
    assert second.returncode == 0, (tmp_path / "host.err").read_text()

    assert [x for x in lines(log) if "chain" in x] == [
        "start chain 1 attempt 1 parent null",
        "done chain 1 attempt 1",
        'start chain 2 attempt 1 parent {"attempt": 1, "step": 1}',
        'start chain 2 attempt 2 parent {"attempt": 1, "step": 1}',
        "done chain 2 attempt 2",
        'start chain 3 attempt 1 parent {"attempt": 2, "step": 2}',
        "done chain 3 attempt 1",
    ]
    with JobClient(db) as client:
        last = client.get(c)
        assert client.get(b).errors[0].error.startswith("lease expired")
    assert (last.state, last.attempt, last.result) == (JobState.SUCCEEDED, 1, {"attempt": 1, "step": 3})


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


def stop_outside_a_transaction(proc: subprocess.Popen[bytes], db: Path) -> None:
    """SIGSTOP ``proc`` at a moment it holds no SQLite write lock (else retry), so that the
    other host is not blocked behind a frozen transaction."""
    for _ in range(100):
        proc.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(db, timeout=0.05)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        finally:
            probe.close()
    pytest.fail("the host never released the write lock")


@pytest.mark.slow
def test_a_host_stalled_past_its_lease_loses_the_job_and_its_outcome(tmp_path: Path) -> None:
    """SIGSTOP a host past its lease, let another host recover and run the job, SIGCONT: the
    job's success is recorded once (by the new run's fenced settle), and the stale run is
    cancelled and logs that it lost the lease."""
    db, log = tmp_path / "jobs.db", tmp_path / "run.log"
    with JobClient(db) as client:
        job_id = client.enqueue("fenced", 1)
    stalled = start_host(db, log)
    other: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: "start 1 attempt 1" in lines(log), 20)
        stop_outside_a_transaction(stalled, db)
        other = start_host(db, log, "--until-idle")
        other.wait(timeout=25)  # recovers the expired lease, runs attempt 2, exits when idle
        assert other.returncode == 0, (tmp_path / "host.err").read_text()
        stalled.send_signal(signal.SIGCONT)
        wait_for(lambda: "cancelled 1 attempt 1" in lines(log), 10)
        wait_for(lambda: "lost its lease" in (tmp_path / "host.err").read_text(), 10)
    finally:
        stalled.send_signal(signal.SIGCONT)
        stalled.send_signal(signal.SIGKILL)
        stalled.wait()
        if other is not None and other.poll() is None:
            other.kill()
            other.wait()
    assert [x for x in lines(log) if x.startswith(("start", "done", "cancelled"))] == [
        "start 1 attempt 1",
        "start 1 attempt 2",
        "done 1 attempt 2",
        "cancelled 1 attempt 1",
    ]
    with JobClient(db) as client:
        job = client.get(job_id)
    assert (job.state, job.attempt) == (JobState.SUCCEEDED, 2)
    assert [e.error.split(":")[0] for e in job.errors] == ["lease expired"]
    err = (tmp_path / "host.err").read_text()
    assert f"job {job_id} (fenced) lost its lease (token: attempt 1)" in err
