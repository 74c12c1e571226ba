"""PostgresStore specifics: migrations, the database's clock, hosts, transactional enqueue,
wake-ups (the lifecycle itself is the contract suite's, run on every store)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import psycopg
import pytest
import trio
from _pg import PG_URL, close_sync

from supervisors import Tree
from supervisors.jobs import (
    JobNotFoundError,
    JobRegistry,
    JobRequest,
    JobState,
    JobSystem,
    NewJob,
    PostgresStore,
    StoreError,
)
from supervisors.jobs.__main__ import main as jobs_main
from supervisors.jobs._pg_migrations import PG_SCHEMA_VERSION, migrate

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]


def versions(schema: str) -> list[int]:
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(f"SELECT version FROM {schema}.schema_migrations ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def test_the_migrate_command_creates_the_schema_then_finds_it_current(
    pg_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m supervisors.jobs migrate URL --schema S`` runs every step once."""
    assert jobs_main(["migrate", PG_URL, "--schema", pg_schema]) == 0
    assert "ran migrations" in capsys.readouterr().out
    assert jobs_main(["migrate", PG_URL, "--schema", pg_schema]) == 0
    assert "already at version" in capsys.readouterr().out
    assert versions(pg_schema) == list(range(1, PG_SCHEMA_VERSION + 1))


def test_the_migrate_command_refuses_a_bad_schema_name(capsys: pytest.CaptureFixture[str]) -> None:
    """A schema name that is not a plain identifier is refused before connecting."""
    assert jobs_main(["migrate", PG_URL, "--schema", "x; DROP TABLE y"]) == 1
    assert "schema name" in capsys.readouterr().err


def test_hosts_starting_together_migrate_once(pg_schema: str) -> None:
    """Eight connections migrating at once: the advisory lock lets one run the steps."""
    results: list[list[int]] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            barrier.wait()
            results.append(migrate(conn, pg_schema))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=len) == [[]] * 7 + [list(range(1, PG_SCHEMA_VERSION + 1))]


def test_migrating_again_keeps_every_job(pg_schema: str) -> None:
    """Running the migrations on a schema holding jobs changes nothing."""

    async def main() -> None:
        store = PostgresStore(PG_URL, schema=pg_schema)
        try:
            job = NewJob(name="j", queue="default", args="null", run_at=0.0, max_attempts=1)
            ids = await store.insert([job], now=1.0)
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                assert migrate(conn, pg_schema) == []
            assert (await store.get(ids[0])) is not None
        finally:
            await store.aclose()

    trio.run(main)


def test_a_schema_of_a_newer_release_is_refused(pg_schema: str) -> None:
    """A schema migrated beyond this release's steps is left alone with a clear error."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        migrate(conn, pg_schema)
        conn.execute(f"INSERT INTO {pg_schema}.schema_migrations VALUES (999, 'future')")

    async def main() -> None:
        store = PostgresStore(PG_URL, schema=pg_schema)
        with pytest.raises(StoreError, match="newer than this release"):
            await store.open()

    trio.run(main)


def test_migrate_false_refuses_an_unmigrated_schema(pg_schema: str) -> None:
    """With ``migrate=False`` the store only checks, and says which command to run: a schema
    that does not exist (maybe a misspelt name) is named as such, one without our tables too,
    and one of an older version says which version it is at."""

    async def open_checked() -> str:
        store = PostgresStore(PG_URL, schema=pg_schema, migrate=False)
        with pytest.raises(StoreError, match=r"python -m supervisors\.jobs migrate") as info:
            await store.open()
        return str(info.value)

    assert f"there is no schema {pg_schema!r} in this PostgreSQL database" in trio.run(open_checked)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {pg_schema}")
    assert "holds no job store (no schema_migrations table)" in trio.run(open_checked)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        migrate(conn, pg_schema)
        conn.execute(f"DELETE FROM {pg_schema}.schema_migrations WHERE version = %s", (PG_SCHEMA_VERSION,))
    assert f"is at version {PG_SCHEMA_VERSION - 1}, this release needs {PG_SCHEMA_VERSION}" in trio.run(
        open_checked
    )


def test_a_server_that_does_not_answer_fails_open_with_a_store_error_saying_what_to_check() -> None:
    """`open` (what a job system's start calls) on an address where no PostgreSQL listens raises
    `StoreError` (logged as one line at the start) with libpq's reason on one line and what to
    check, not psycopg's OperationalError with a traceback."""

    async def main() -> None:
        store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", schema="nowhere")
        with pytest.raises(StoreError) as info:
            await store.open()
        message = str(info.value)
        assert message.startswith("cannot reach the PostgreSQL job store (schema 'nowhere'): connection failed")
        assert message.endswith("; check that the server runs and that the store's URL (host, port, database, "
                                "user) is right")
        assert "\n" not in message
        assert isinstance(info.value.__cause__, psycopg.OperationalError)

    trio.run(main)


def test_a_bad_schema_name_is_refused() -> None:
    """The schema name is checked when the store is made."""
    with pytest.raises(ValueError, match="schema name"):
        PostgresStore(PG_URL, schema="Public; --")


def test_the_store_clock_is_the_database_clock(pg_schema: str) -> None:
    """After `open`, the store's clock reads the database's ``clock_timestamp()``, whatever the
    host's wall clock says."""

    async def main() -> None:
        store = PostgresStore(PG_URL, schema=pg_schema)
        try:
            store.clock._base -= 3600.0  # as if this host's clock were an hour behind
            store.clock._synced = -float("inf")
            await store.open()
            await store.counts()  # a call resamples the clock when due
            with psycopg.connect(PG_URL) as conn:
                db = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
            assert db is not None
            assert abs(store.clock.now() - db[0]) < 60.0
        finally:
            await store.aclose()

    trio.run(main)


def business(store: PostgresStore, schema: str, name: str, *, commit: bool, reg: JobRegistry) -> int:
    """The user's own transaction: a row of their data and a job, committed or rolled back."""
    with psycopg.connect(PG_URL) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {schema}.users (name TEXT PRIMARY KEY)")
        conn.commit()
        with conn.transaction():
            conn.execute(f"INSERT INTO {schema}.users VALUES (%s)", (name,))
            (job_id,) = store.enqueue_in(conn, [JobRequest(job="welcome", args=name)], registry=reg)
            if not commit:
                raise psycopg.Rollback
    return job_id


async def test_a_job_enqueued_in_the_users_transaction_exists_iff_it_commits(pg_schema: str, running: Running) -> None:
    """Rolled back with the user's row: no job. Committed with it: the job runs, once."""
    reg = JobRegistry()
    ran: list[str] = []

    @reg.job()
    async def welcome(name: str) -> None:
        ran.append(name)

    store = PostgresStore(PG_URL, schema=pg_schema)
    jobs = JobSystem(store=store, registry=reg, poll_interval=30.0)
    async with running(jobs):
        with trio.fail_after(30):
            gone = await trio.to_thread.run_sync(lambda: business(store, pg_schema, "bob", commit=False, reg=reg))
            with pytest.raises(JobNotFoundError):
                await jobs.get(gone)
            kept = await trio.to_thread.run_sync(lambda: business(store, pg_schema, "ann", commit=True, reg=reg))
            job = await jobs.wait_finished(kept)
    assert job.state is JobState.SUCCEEDED
    assert ran == ["ann"]
    with psycopg.connect(PG_URL) as conn:
        users = conn.execute(f"SELECT name FROM {pg_schema}.users").fetchall()
    assert users == [("ann",)]


async def test_watch_wakes_the_queue_when_another_connection_commits_a_job(pg_schema: str) -> None:
    """A job committed on any connection is announced to every watching host by NOTIFY, with
    its queue, long before the fallback poll."""
    store = PostgresStore(PG_URL, schema=pg_schema, poll_interval=600.0)
    woken: list[str | None] = []
    arrived = trio.Event()

    def wake(queue: str | None) -> None:
        woken.append(queue)
        if queue == "mail":
            arrived.set()

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.watch, wake)

            def enqueue() -> None:
                with psycopg.connect(PG_URL) as conn:
                    store.enqueue_in(conn, [JobRequest(job="send", queue="mail")])

            await trio.to_thread.run_sync(enqueue)
            with trio.fail_after(30):
                await arrived.wait()
            nursery.cancel_scope.cancel()
    finally:
        await store.aclose()
    assert woken[0] is None  # at the start: look at everything once
    assert "mail" in woken


async def test_hosts_register_under_a_process_unique_id_and_are_shown_dead_or_stopped(
    pg_schema: str,
) -> None:
    """Each store registers its own host id (host name, pid and a random part); a stopped host
    is shown stopped, and a host whose heartbeat is stale is shown dead."""
    a = PostgresStore(PG_URL, schema=pg_schema, heartbeat=5.0)
    b = PostgresStore(PG_URL, schema=pg_schema, heartbeat=5.0)
    try:
        await a.open()
        await b.open()
        assert a.host_id != b.host_id
        assert f"/{os.getpid()}/" in a.host_id
        alive = {h.id: h.alive for h in await a.hosts()}
        assert alive == {a.host_id: True, b.host_id: True}
        await b.aclose()

        def stall(db: Any) -> None:  # as if host a had been killed a minute ago
            db.conn.execute("UPDATE hosts SET heartbeat_at = heartbeat_at - 60 WHERE id = %s", (a.host_id,))

        await a._run(stall)
        hosts = {h.id: h for h in await a.hosts()}
        assert not hosts[a.host_id].alive
        assert hosts[a.host_id].stopped_at is None
        assert not hosts[b.host_id].alive
        assert hosts[b.host_id].stopped_at is not None
        await a.beat()
        assert {h.id: h.alive for h in await a.hosts()}[a.host_id]
    finally:
        await a.aclose()
        await b.aclose()


async def test_old_hosts_are_forgotten_on_a_heartbeat_and_a_tool_is_never_listed_as_a_host(
    pg_schema: str,
) -> None:
    """A host whose last heartbeat is older than ``keep_hosts`` is deleted at any host's next
    heartbeat (a recent dead one is kept; a live one whose row was deleted comes back); a store
    opened with ``register_host=False`` (the command line's) never appears."""
    a = PostgresStore(PG_URL, schema=pg_schema, keep_hosts=3600.0)
    old, recent = PostgresStore(PG_URL, schema=pg_schema), PostgresStore(PG_URL, schema=pg_schema)
    tool = PostgresStore(PG_URL, schema=pg_schema, register_host=False)
    try:
        for store in (a, old, recent, tool):
            await store.open()
        await tool.counts()
        await old.aclose()
        await recent.aclose()
        await tool.aclose()

        def age(db: Any) -> None:
            db.conn.execute("UPDATE hosts SET heartbeat_at = heartbeat_at - 7200 WHERE id = %s", (old.host_id,))
            db.conn.execute("UPDATE hosts SET heartbeat_at = heartbeat_at - 600 WHERE id = %s", (recent.host_id,))

        await a._run(age)
        assert {h.id for h in await a.hosts()} == {a.host_id, old.host_id, recent.host_id}
        await a.beat()
        assert {h.id for h in await a.hosts()} == {a.host_id, recent.host_id}
        await a._run(lambda db: db.conn.execute("DELETE FROM hosts WHERE id = %s", (a.host_id,)))
        await a.beat()
        assert {h.id: h.alive for h in await a.hosts()} == {a.host_id: True, recent.host_id: False}
    finally:
        await a.aclose()
    with pytest.raises(ValueError, match="'keep_hosts' must be more than three heartbeats"):
        PostgresStore(PG_URL, heartbeat=5.0, keep_hosts=15.0)


def test_the_transactional_enqueue_example_of_the_docs_commits_or_rolls_back_both(
    pg_schema: str,
) -> None:
    """docs/postgres.md's ``sign_up``: a new user gets a job; a duplicate user raises and
    leaves no job behind."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "postgres.md").read_text(encoding="utf-8")
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.DOTALL) if "def sign_up" in b]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    store = PostgresStore(PG_URL, schema=pg_schema)
    try:
        store._prepare()  # migrates the schema
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {pg_schema}.users (email TEXT PRIMARY KEY)")
        job_id = namespace["sign_up"](url, store, "ann@example.com")
        with pytest.raises(psycopg.errors.UniqueViolation):
            namespace["sign_up"](url, store, "ann@example.com")
        with psycopg.connect(PG_URL) as conn:
            jobs = conn.execute(f"SELECT id, args FROM {pg_schema}.jobs").fetchall()
        assert jobs == [(job_id, '"ann@example.com"')]
    finally:
        close_sync(store)


async def test_a_lost_connection_is_retried_logged_once_and_reported_unavailable(
    pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Calls failing with a broken connection are retried with backoff; the outage is logged
    once when it starts and once when it ends, and `available` is false meanwhile."""
    store = PostgresStore(PG_URL, schema=pg_schema)
    await store.open()
    real = store._call
    failures = 5
    seen: list[bool] = []

    async def flaky(fn: Any, *, abandon: bool = False) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            seen.append(store.available)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await real(fn, abandon=abandon)

    store._call = flaky  # type: ignore[method-assign]
    try:
        with trio.fail_after(30):
            assert (await store.counts()).total == 0
    finally:
        del store._call  # type: ignore[attr-defined]
        await store.aclose()
    assert seen == [True, False, False, False, False]
    assert store.available
    messages = [r.getMessage() for r in caplog.records if r.name == "supervisors.jobs.postgres"]
    assert len(messages) == 2
    assert messages[0].startswith("lost PostgreSQL")
    assert "reachable again" in messages[1]


async def test_an_enqueue_whose_commit_was_cut_off_raises_instead_of_repeating(pg_schema: str) -> None:
    """An insert whose ``COMMIT`` may or may not have landed is not retried (it could enqueue
    the jobs twice): `StoreError` says so."""
    from supervisors.jobs._postgres import _Ambiguous

    store = PostgresStore(PG_URL, schema=pg_schema)
    calls = 0

    async def cut(fn: Any, *, abandon: bool = False) -> Any:
        nonlocal calls
        calls += 1
        raise _Ambiguous("server closed the connection unexpectedly")

    store._call = cut  # type: ignore[method-assign]
    job = NewJob(name="j", queue="default", args="null", run_at=0.0, max_attempts=1)
    with pytest.raises(StoreError, match="may or may not have committed"):
        await store.insert([job], now=1.0)
    assert calls == 1


def test_a_continuation_enqueued_while_its_parent_settles_is_not_left_awaiting(pg_schema: str) -> None:
    """A continuation's insert reads its parent under a row lock: while the parent's success is
    being recorded (its transaction still open), the insert waits for it, then sees the success
    and enqueues the continuation with the result, instead of awaiting an end already past."""
    import time

    from supervisors.jobs import Success
    from supervisors.jobs._postgres import PostgresDB

    store = PostgresStore(PG_URL, schema=pg_schema)
    job = NewJob(name="p", queue="q", args="null", run_at=0.0, max_attempts=1)
    try:

        async def claimed_parent() -> tuple[int, int]:
            await store.insert([job], now=0.0)
            (claim,) = await store.claim("q", 1, owner="o", now=0.0, lease_until=100.0)
            return claim.token

        token = trio.run(claimed_parent)
        inserted: list[int] = []
        child = attrs.evolve(job, name="c", parent_id=token[0])
        with store.connect() as conn, psycopg.connect(PG_URL, autocommit=True) as watch:
            conn.execute("BEGIN")
            PostgresDB(conn, pg_schema).settle("o", 1.0, [Success(*token, '"done"')], (), ())
            thread = threading.Thread(
                target=lambda: inserted.extend(trio.run(lambda: store.insert([child], now=2.0)))
            )
            thread.start()
            deadline = time.monotonic() + 30
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"
            while watch.execute(waiting, (store.application_name,)).fetchone()[0] == 0:
                assert time.monotonic() < deadline, "the continuation's insert never waited for the parent"
                time.sleep(0.01)
            conn.execute("COMMIT")
            thread.join(30)
        (child_id,) = inserted
        got = trio.run(store.get, child_id)
        assert got is not None
        assert (got.state, got.parent_id) == (JobState.ENQUEUED, token[0])
    finally:
        close_sync(store)


async def test_a_settle_cut_off_after_its_commit_is_logged_as_recorded_not_as_a_lost_lease(
    pg_schema: str, running: Running, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection is cut (``pg_terminate_backend``) just after a pipelined settle committed:
    the store retries the write, the fence refuses the retry, and the runner logs that the
    attempt had already ended by this outcome, not that its lease was lost; the job ran once."""
    from supervisors.jobs._postgres import PostgresDB

    caplog.set_level(logging.INFO, logger="supervisors.jobs")
    reg = JobRegistry()
    ran: list[int] = []

    @reg.job()
    async def pay() -> None:
        ran.append(1)

    real = PostgresDB.settle_and_claim
    cuts: list[int] = []

    def cut_after_commit(self: PostgresDB, *args: Any) -> Any:
        settled = real(self, *args)
        if args[5] and not cuts:  # succeeded: the outcome is committed now
            cuts.append(self.conn.info.backend_pid)
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (cuts[0],))
            self.conn.execute("SELECT 1")  # raises: the answer is lost with the connection
        return settled

    explained = trio.Event()

    class Explained(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "had already ended" in record.getMessage():
                explained.set()  # logged by the runner, in Trio's thread

    monkeypatch.setattr(PostgresDB, "settle_and_claim", cut_after_commit)
    handler = Explained()
    logging.getLogger("supervisors.jobs").addHandler(handler)
    jobs = JobSystem(store=PostgresStore(PG_URL, schema=pg_schema), registry=reg, poll_interval=30.0)
    try:
        async with running(jobs):
            with trio.fail_after(30):
                job = await jobs.wait_finished(await jobs.enqueue("pay"))
                await explained.wait()
    finally:
        logging.getLogger("supervisors.jobs").removeHandler(handler)
    assert len(cuts) == 1
    assert (job.state, job.attempt, ran) == (JobState.SUCCEEDED, 1, [1])
    messages = [r.getMessage() for r in caplog.records if r.name == "supervisors.jobs"]
    assert not [m for m in messages if "lost its lease" in m]
    (explanation,) = [m for m in messages if "had already ended" in m]
    assert explanation.startswith(f"job {job.id} (pay): attempt 1 had already ended by this outcome")


async def test_a_job_system_on_postgres_runs_an_hour_long_job_in_virtual_time(
    pg_schema: str, running: Running, thread_aware_clock: trio.testing.MockClock
) -> None:
    """Under `thread_aware_clock` the store's calls hold virtual time still while the server
    works, and the wait for notifications does not (it would hold the clock for ever): a job
    that sleeps an hour runs once and succeeds at once in real time, its lease renewed."""
    reg = JobRegistry()
    renewals: list[float] = []

    @reg.job()
    async def hour() -> str:
        await trio.sleep(3600.0)
        return "done"

    store = PostgresStore(PG_URL, schema=pg_schema)
    real_renew = store.renew

    async def renew(*args: Any, **kwargs: Any) -> Any:
        renewals.append(trio.current_time())
        return await real_renew(*args, **kwargs)

    store.renew = renew  # type: ignore[method-assign]
    jobs = JobSystem(store=store, registry=reg, poll_interval=30.0, timeout=None)
    async with running(jobs):
        job = await jobs.wait_finished(await jobs.enqueue("hour"))
    assert (job.state, job.attempt, job.result) == (JobState.SUCCEEDED, 1, "done")
    assert trio.current_time() >= 3600.0
    assert len(renewals) >= 100  # every lease / 3 virtual seconds, each a call to the server


async def test_a_claim_cut_off_after_its_commit_hands_out_the_jobs_it_took_at_once(
    pg_schema: str, running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection is cut just after a claim committed, its answer lost: the store runs the
    call again, which finds the jobs the first run took (by the call's claim tag) and hands
    them out, so they run now, at their first attempt, instead of staying leased until their
    leases expire (an hour here) and losing an attempt; each runs once."""
    from supervisors.jobs._postgres import PostgresDB

    reg = JobRegistry()
    ran: list[int] = []

    @reg.job()
    async def pay(n: int) -> None:
        ran.append(n)

    real = PostgresDB.settle_and_claim
    cuts: list[int] = []

    def cut_after_claim(self: PostgresDB, *args: Any) -> Any:
        settled = real(self, *args)
        if settled.claimed and not cuts:  # the claim is committed now
            cuts.append(self.conn.info.backend_pid)
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (cuts[0],))
            self.conn.execute("SELECT 1")  # raises: the answer is lost with the connection
        return settled

    monkeypatch.setattr(PostgresDB, "settle_and_claim", cut_after_claim)
    jobs = JobSystem(
        store=PostgresStore(PG_URL, schema=pg_schema), registry=reg, poll_interval=30.0, lease=3600.0
    )
    async with running(jobs):
        with trio.fail_after(30):
            ids = await jobs.enqueue_many([JobRequest(job="pay", args=n) for n in (1, 2, 3)])
            done = [await jobs.wait_finished(job_id) for job_id in ids]
    assert len(cuts) == 1
    assert sorted(ran) == [1, 2, 3]
    assert [(j.state, j.attempt, j.errors) for j in done] == [(JobState.SUCCEEDED, 1, ())] * 3
