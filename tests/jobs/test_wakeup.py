"""Cross-process wake-up: a JobClient's datagram starts the job without waiting for the poll.

The hosts here poll once an hour, so a job they run within the tests' bounds was woken.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from supervisors import Supervisor, open_tree
from supervisors.jobs import InMemoryStore, JobClient, JobRegistry, JobState, JobSystem, SQLiteStore
from supervisors.jobs._wakeup import wake_dir

HOUR = 3600.0


def registry() -> JobRegistry:
    reg = JobRegistry()

    @reg.job()
    async def noop() -> None:
        await trio.lowlevel.checkpoint()

    return reg


def host(path: Path, *, queue: str = "default", poll: float = HOUR, name: str = "jobs") -> JobSystem:
    return JobSystem(
        store=SQLiteStore(path), registry=registry(), queues={queue: 4}, poll_interval=poll, name=name
    )


async def wait_bound(path: Path, hosts: int) -> None:
    """Wait until ``hosts`` hosts have bound their wake-up sockets for ``path``."""
    with trio.fail_after(30):
        # the file system has no event to wait on
        while not (wake_dir(path).is_dir() and len(os.listdir(wake_dir(path))) >= hosts):  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_a_job_enqueued_by_another_process_starts_without_waiting_for_the_poll(
    tmp_path: Path,
) -> None:
    """Another process's JobClient.enqueue wakes the host, which polls only hourly."""
    path = tmp_path / "jobs.db"
    jobs = host(path)
    script = (
        "import sys\n"
        "from supervisors.jobs import JobClient\n"
        "with JobClient(sys.argv[1]) as client:\n"
        "    print(client.enqueue('noop'))\n"
    )
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
        done = await trio.run_process(
            [sys.executable, "-c", script, str(path)], capture_stdout=True
        )
        job_id = int(done.stdout)
        with trio.fail_after(30):
            job = await jobs.wait_finished(job_id)
    assert job.state is JobState.SUCCEEDED


async def test_every_host_on_the_file_is_woken(tmp_path: Path) -> None:
    """Two hosts on one file, each running its own queue: each is woken for its job."""
    path = tmp_path / "jobs.db"
    hosts = [host(path, queue=q, name=f"h{q}") for q in ("a", "b")]
    async with open_tree(Supervisor(name="app", children=[h.child_spec() for h in hosts])):
        await wait_bound(path, 2)
        with JobClient(path) as client:
            ids = [client.enqueue("noop", queue=q) for q in ("a", "b")]
        with trio.fail_after(30):
            finished = [await h.wait_finished(i) for h, i in zip(hosts, ids, strict=True)]
    assert [j.state for j in finished] == [JobState.SUCCEEDED] * 2
    assert os.listdir(wake_dir(path)) == []


async def test_a_client_removes_the_socket_of_a_host_that_died(tmp_path: Path) -> None:
    """A socket left by a dead host refuses the datagram; the client removes it and still
    wakes the live host."""
    path = tmp_path / "jobs.db"
    JobClient(path).close()
    wake_dir(path).mkdir()
    stale = wake_dir(path) / "1-dead"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()
    jobs = host(path)
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
        await wait_bound(path, 2)
        with JobClient(path) as client:
            job_id = client.enqueue("noop")
        with trio.fail_after(30):
            job = await jobs.wait_finished(job_id)
    assert job.state is JobState.SUCCEEDED
    assert not stale.exists()


async def test_a_path_too_long_for_a_socket_falls_back_to_polling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Where no socket can be bound, the host says so once and finds the job by polling."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "jobs.db"
    jobs = host(path, poll=0.05)
    with caplog.at_level(logging.INFO, logger="supervisors.jobs"):
        async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
            with JobClient(path) as client:
                job_id = client.enqueue("noop")
            with trio.fail_after(30):
                job = await jobs.wait_finished(job_id)
    assert job.state is JobState.SUCCEEDED
    assert [r.getMessage() for r in caplog.records if "too long" in r.getMessage()] != []
    assert not wake_dir(path).exists()


def test_a_client_without_hosts_enqueues_without_error(tmp_path: Path) -> None:
    """With no host (no wake directory), or a file in its place, enqueueing just commits."""
    path = tmp_path / "jobs.db"
    with JobClient(path) as client:
        first = client.enqueue("noop")
        wake_dir(path).mkdir()
        (wake_dir(path) / "not-a-socket").write_text("x")
        second = client.enqueue("noop")
        assert [client.get(i).state for i in (first, second)] == [JobState.ENQUEUED] * 2
    assert (wake_dir(path) / "not-a-socket").read_text() == "x"


async def test_an_outcome_recorded_while_a_waiter_reads_the_store_is_not_missed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """wait_idle and wait_finished read the store, then wait for the next recorded outcome: one
    recorded during the read wakes them at once instead of after the poll interval."""
    jobs = JobSystem(store=InMemoryStore(), registry=registry(), poll_interval=HOUR)
    core = jobs._core
    seen = core.settled_count
    core.notify_settled()  # recorded while the waiter was reading the store
    with trio.fail_after(1):
        await core.wait_settled(HOUR, since=seen)
    with pytest.raises(trio.TooSlowError):
        with trio.fail_after(1):
            await core.wait_settled(HOUR, since=core.settled_count)
