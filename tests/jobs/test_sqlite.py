"""What is specific to the SQLite store: durability, sharing a file, JobClient, the schema."""

from __future__ import annotations

import collections
import sqlite3
from pathlib import Path

import attrs
import pytest
import trio

from supervisors import Supervisor, open_tree
from supervisors.jobs import (
    JobArgumentsError,
    JobClient,
    JobRegistry,
    JobRequest,
    JobState,
    JobSystem,
    RetryPolicy,
    SQLiteStore,
    StoreError,
    UnknownJobError,
)
from supervisors.jobs._sqlite_db import SQLiteDB
from supervisors.jobs._sqlite_open import APPLICATION_ID, CACHE_KIB, check_sqlite_version


@attrs.frozen
class Payload:
    n: int


def counting_registry() -> tuple[JobRegistry, collections.Counter[int]]:
    reg = JobRegistry()
    runs: collections.Counter[int] = collections.Counter()

    @reg.job()
    async def work(args: Payload) -> None:
        runs[args.n] += 1
        await trio.lowlevel.checkpoint()

    return reg, runs


async def test_two_hosts_on_one_file_run_each_job_once(tmp_path: Path) -> None:
    """Two job systems with their own connections to one file never run a job twice."""
    db = tmp_path / "jobs.db"
    reg, runs = counting_registry()
    hosts = [JobSystem(store=SQLiteStore(db), registry=reg, queues={"default": 8}, name=f"h{i}") for i in range(2)]
    n = 500
    async with open_tree(Supervisor(name="app", children=[h.child_spec() for h in hosts])):
        ids = await hosts[0].enqueue_many([JobRequest(job="work", args=Payload(i)) for i in range(n)])
        with trio.fail_after(30):
            for job_id in ids:
                await hosts[1].wait_finished(job_id)
    assert sorted(runs) == list(range(n))
    assert set(runs.values()) == {1}


async def test_jobs_survive_a_restart_of_the_store(tmp_path: Path) -> None:
    """Jobs enqueued through one store object are run by a system opened on the file later."""
    db = tmp_path / "jobs.db"
    reg, runs = counting_registry()
    first = JobSystem(store=SQLiteStore(db), registry=reg)
    job_id = await first.enqueue("work", Payload(3))
    await first.store.aclose()
    second = JobSystem(store=SQLiteStore(db), registry=reg)
    async with open_tree(Supervisor(name="app", children=[second.child_spec()])):
        with trio.fail_after(10):
            job = await second.wait_finished(job_id)
    assert (job.state, job.args, runs[3]) == (JobState.SUCCEEDED, {"n": 3}, 1)


def test_sqlite_file_uses_wal_mode(tmp_path: Path) -> None:
    """The store switches the file to write-ahead logging."""
    db = tmp_path / "jobs.db"
    JobClient(db).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_store_connection_keeps_statement_journals_in_memory_and_a_larger_page_cache(
    tmp_path: Path,
) -> None:
    """Each connection of a store has ``temp_store=MEMORY`` (a claim's statement journal never
    becomes a temporary file) and a page cache of `CACHE_KIB` KiB."""
    db = SQLiteDB(tmp_path / "jobs.db")
    try:
        assert db.conn.execute("PRAGMA temp_store").fetchone()[0] == 2
        assert db.conn.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    finally:
        db.close()


def test_a_file_with_another_schema_version_is_refused(tmp_path: Path) -> None:
    """A job file written by another schema version raises StoreError naming both versions."""
    db = tmp_path / "jobs.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        JobClient(db)


def test_old_sqlite_is_refused_with_a_clear_error() -> None:
    """SQLite before 3.35 (no UPDATE ... RETURNING) is refused, saying what to upgrade."""
    with pytest.raises(StoreError, match=r"SQLite 3\.31\.1 is too old.*3\.35\.0"):
        check_sqlite_version("3.31.1")
    check_sqlite_version("3.35.0")


def test_job_client_checks_names_and_arguments_with_a_registry(tmp_path: Path) -> None:
    """With a registry, JobClient refuses unknown names and bad arguments at the call site."""
    reg, _ = counting_registry()
    with JobClient(tmp_path / "jobs.db", registry=reg) as client:
        with pytest.raises(UnknownJobError, match=r"'wrok'.*'work'"):
            client.enqueue("wrok", Payload(1))
        with pytest.raises(JobArgumentsError, match="job 'work'"):
            client.enqueue("work", {"m": 1})
        job = client.get(client.enqueue("work", Payload(1)))
    assert (job.state, job.args, job.queue) == (JobState.ENQUEUED, {"n": 1}, "default")


def test_job_client_without_registry_refuses_a_bad_priority_and_writes_nothing(tmp_path: Path) -> None:
    """The settings are checked without a registry too (the command line enqueues so)."""
    with JobClient(tmp_path / "jobs.db") as client:
        with pytest.raises(TypeError, match=r"'priority' must be an int \(got str '9'\)"):
            client.enqueue("remote_job", priority="9")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"'priority' must be between"):
            client.enqueue("remote_job", priority=-(2**31) - 1)
        assert client.counts().total == 0


def test_job_client_without_registry_stores_any_name(tmp_path: Path) -> None:
    """Without a registry, JobClient unstructures attrs arguments and accepts any name."""
    with JobClient(tmp_path / "jobs.db") as client:
        job_id = client.schedule("remote_job", Payload(5), after=60, queue="mail")
        job = client.get(job_id)
        counts = client.counts()
    assert (job.name, job.args, job.queue, job.state) == (
        "remote_job",
        {"n": 5},
        "mail",
        JobState.SCHEDULED,
    )
    assert counts.by_queue["mail"][JobState.SCHEDULED] == 1


async def test_host_runs_a_job_enqueued_by_a_job_client(tmp_path: Path) -> None:
    """A job written by a JobClient (as another process would) is found by polling and run."""
    db = tmp_path / "jobs.db"
    reg, runs = counting_registry()
    jobs = JobSystem(store=SQLiteStore(db), registry=reg, poll_interval=0.05)
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
        with JobClient(db) as client:
            job_id = client.enqueue("work", Payload(9))
        with trio.fail_after(5):
            job = await jobs.wait_finished(job_id)
    assert (job.state, runs[9]) == (JobState.SUCCEEDED, 1)


async def test_a_job_client_without_registry_gets_the_hosts_settings(tmp_path: Path) -> None:
    """The settings belong to the definition: a job registered with ``queue="mail",
    max_attempts=2`` and enqueued by a JobClient without the registry (as another process
    would) goes to ``mail`` with 2 attempts, and dies after them; a unique job is unique there
    too. The host recorded its definitions in the store when it started."""
    db = tmp_path / "jobs.db"
    reg = JobRegistry()
    attempts: list[int] = []

    @reg.job(queue="mail", max_attempts=2, retry=RetryPolicy(base=0.01, jitter=0.0))
    async def notify(args: Payload) -> None:
        attempts.append(args.n)
        raise ValueError("smtp down")

    @reg.job(queue="mail", unique=True)
    async def digest(args: Payload) -> None:
        await trio.sleep(60)

    jobs = JobSystem(
        store=SQLiteStore(db), registry=reg, queues={"mail": 2}, poll_interval=0.05, grace=0.1
    )
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])) as tree:
        with JobClient(db) as client:
            job_id = client.enqueue("notify", Payload(3))
            first = client.enqueue("digest", Payload(1))
            again = client.enqueue("digest", Payload(1))
            stored = client.get(job_id)
        with trio.fail_after(10):
            job = await jobs.wait_finished(job_id)
        await tree.stop()
    assert (stored.queue, stored.max_attempts) == ("mail", 2)
    assert (job.state, job.attempt, attempts) == (JobState.DEAD, 2, [3, 3])
    assert again == first


async def test_a_job_client_with_the_registry_gets_the_attempts_of_the_hosts_retry_policy(tmp_path: Path) -> None:
    """A job registered without a retry policy takes its attempts from the host's
    ``JobSystem(retry=...)``; a JobClient given the registry (but no ``retry``) enqueues it with
    those attempts too, as the host recorded them, not with its own default of 20. A client
    given ``retry=`` keeps its own."""
    db = tmp_path / "jobs.db"
    reg = JobRegistry()

    @reg.job(queue="mail")
    async def notify(args: Payload) -> None:
        raise ValueError("smtp down")

    jobs = JobSystem(
        store=SQLiteStore(db), registry=reg, queues={"mail": 1}, retry=RetryPolicy(max_attempts=3)
    )
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])) as tree:
        await tree.stop()
    with JobClient(db, registry=reg) as client:
        hosts = client.get(client.enqueue("notify", Payload(1)))
    with JobClient(db, registry=reg, retry=RetryPolicy(max_attempts=7)) as client:
        own = client.get(client.enqueue("notify", Payload(2)))
    assert (hosts.queue, hosts.max_attempts) == ("mail", 3)
    assert (own.queue, own.max_attempts) == ("mail", 7)


def test_a_job_client_falls_back_to_defaults_for_names_no_host_recorded(tmp_path: Path) -> None:
    """Before any host has recorded a job's definition, a registry-less JobClient uses queue
    ``"default"`` and 20 attempts; explicit settings always win."""
    with JobClient(tmp_path / "jobs.db") as client:
        plain = client.get(client.enqueue("unknown_yet", 1))
        explicit = client.get(client.enqueue("unknown_yet", 2, queue="q", max_attempts=3))
    assert (plain.queue, plain.max_attempts) == ("default", 20)
    assert (explicit.queue, explicit.max_attempts) == ("q", 3)
