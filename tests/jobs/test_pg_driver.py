"""PostgresStore's driver: psycopg driven by Trio's socket waits through greenlets (no worker
thread on a call's path), its behaviour under cancellation and lost connections, and the
grouping of concurrent enqueues into one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import trio
import trio.testing
from _pg import PG_URL

from supervisors.jobs import NewJob, PostgresStore
from supervisors.jobs._postgres import PostgresDB


@pytest.fixture
async def store(pg_schema: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(PG_URL, schema=pg_schema, pool_size=1)
    await s.open()
    await s._run(lambda db: db.conn.execute("CREATE TABLE marks (n int8 NOT NULL)"))  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        await s.aclose()


def _job(name: str = "j", queue: str | None = "default") -> NewJob:
    return NewJob(name=name, queue=queue, args="null", run_at=0.0, max_attempts=1)


def _sql(sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _backend(db: PostgresDB) -> int:
    return int(db.conn.execute("SELECT pg_backend_pid()").fetchone()[0])


async def test_a_call_cancelled_mid_transaction_commits_and_leaves_its_connection_usable(
    store: PostgresStore, pg_schema: str
) -> None:
    """A caller cancelled while its write is in the database: the write runs to its end (no
    transaction left open or of unknown outcome), the caller sees the cancellation at its next
    checkpoint, and the same connection serves the next call."""
    before = await store._run(_backend)  # type: ignore[arg-type]

    def slow_write(db: PostgresDB) -> None:
        with db._write() as c:
            c.execute("INSERT INTO marks VALUES (1)")
            c.execute("SELECT pg_sleep(0.3)")
            c.execute("INSERT INTO marks VALUES (2)")

    with trio.move_on_after(0.05) as scope:
        await store._run(slow_write)  # type: ignore[arg-type]
        await trio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert _sql(f"SELECT n FROM {pg_schema}.marks ORDER BY n") == [(1,), (2,)]
    busy = _sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
        f"'{store.application_name}' AND state <> 'idle'"
    )
    assert busy == [(0,)]
    assert await store._run(_backend) == before  # type: ignore[arg-type]


async def test_a_call_whose_backend_is_terminated_is_rolled_back_and_retried_on_a_new_connection(
    store: PostgresStore, pg_schema: str
) -> None:
    """``pg_terminate_backend`` during a call: the transaction it had begun is rolled back by
    the server, the call is run again on a new connection and returns its result."""
    first = await store._run(_backend)  # type: ignore[arg-type]
    attempts: list[int] = []

    def write(db: PostgresDB) -> int:
        attempts.append(_backend(db))
        with db._write() as c:
            c.execute("INSERT INTO marks VALUES (%s)", (len(attempts),))
            if len(attempts) == 1:
                c.execute("SELECT pg_sleep(5)")
        return len(attempts)

    async def terminate() -> None:
        await trio.sleep(0.2)
        await trio.to_thread.run_sync(_sql, f"SELECT pg_terminate_backend({first})")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(terminate)
            assert await store._run(write) == 2  # type: ignore[arg-type]
    assert attempts[0] == first
    assert attempts[1] != first
    assert _sql(f"SELECT n FROM {pg_schema}.marks") == [(2,)]
    assert store.available


async def test_an_idle_connection_terminated_by_the_server_is_replaced_without_an_outage(
    store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A pooled connection whose backend was terminated while idle is found closed when taken
    and replaced before the call: no error, no outage logged."""
    first = await store._run(_backend)  # type: ignore[arg-type]
    _sql(f"SELECT pg_terminate_backend({first})")
    await trio.sleep(0.1)
    with caplog.at_level(logging.DEBUG, logger="supervisors.jobs.postgres"):
        second = await store._run(_backend)  # type: ignore[arg-type]
    assert second != first
    assert store.available
    assert [r for r in caplog.records if r.name == "supervisors.jobs.postgres"] == []


async def test_store_calls_use_no_worker_thread_once_connected(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enqueue, claim, settle and read on an open store without `trio.to_thread`."""

    async def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("a store call used a worker thread")

    monkeypatch.setattr(trio.to_thread, "run_sync", no_thread)
    now = store.clock.now()
    (job_id,) = await store.insert([_job()], now=now)
    (claimed,) = await store.claim("default", 1, owner="o", now=now, lease_until=now + 60)
    assert claimed.id == job_id
    settled = await store.settle(owner="o", now=now, succeeded=[(job_id, claimed.attempt)])
    assert settled.refused == frozenset()
    assert (await store.counts()).total == 1


async def test_concurrent_enqueues_share_one_transaction_and_each_gets_its_own_ids(
    store: PostgresStore, pg_schema: str
) -> None:
    """Enqueues made by many tasks at once are committed together (one transaction: the rows
    share their ``xmin``), each caller getting the id of its own job."""
    ids: dict[int, int] = {}

    async def enqueue(k: int) -> None:
        (ids[k],) = await store.insert([_job(f"j{k}")], now=store.clock.now())

    async with trio.open_nursery() as nursery:
        for k in range(20):
            nursery.start_soon(enqueue, k)
    rows = _sql(f"SELECT id, name, xmin::text FROM {pg_schema}.jobs")
    assert {name: job_id for job_id, name, _ in rows} == {f"j{k}": ids[k] for k in range(20)}
    assert len({xmin for _, _, xmin in rows}) == 1


async def test_a_failing_enqueue_in_a_group_fails_only_its_own_caller(
    store: PostgresStore, pg_schema: str
) -> None:
    """One job of a group that the database refuses (here a missing queue): its caller gets the
    error it gets alone; the others' jobs are committed."""
    with pytest.raises(psycopg.Error) as alone:
        await store.insert([_job("bad", queue=None)], now=store.clock.now())
    errors: dict[int, BaseException] = {}
    ids: dict[int, list[int]] = {}

    async def enqueue(k: int) -> None:
        try:
            ids[k] = await store.insert([_job(f"j{k}", queue=None if k == 3 else "default")], now=1.0)
        except psycopg.Error as exc:
            errors[k] = exc

    async with trio.open_nursery() as nursery:
        for k in range(8):
            nursery.start_soon(enqueue, k)
    assert list(errors) == [3]
    assert type(errors[3]) is type(alone.value)
    rows = _sql(f"SELECT name FROM {pg_schema}.jobs ORDER BY id")
    assert sorted(r[0] for r in rows) == [f"j{k}" for k in range(8) if k != 3]
    assert sorted(ids) == [0, 1, 2, 4, 5, 6, 7]


async def test_an_enqueue_cancelled_before_its_group_starts_is_withdrawn_and_the_others_go_on(
    store: PostgresStore, pg_schema: str
) -> None:
    """While the only connection is busy, the first of two enqueuers (the one that would lead
    their group) is cancelled: its job is not written, the other's is."""

    async def busy() -> None:  # holds the only connection
        await store._run(lambda db: db.conn.execute("SELECT pg_sleep(0.3)"))  # type: ignore[attr-defined]

    async def enqueue(name: str) -> None:
        await store.insert([_job(name)], now=1.0)

    with trio.fail_after(10):  # the second caller, left without a leader, would wait forever
        await _first_cancelled(busy, enqueue)
    assert _sql(f"SELECT name FROM {pg_schema}.jobs") == [("kept",)]


async def _first_cancelled(busy: Any, enqueue: Any) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy)
        await trio.sleep(0.05)
        async with trio.open_nursery() as first:
            first.start_soon(enqueue, "withdrawn")  # leads the group, waiting for the connection
            await trio.sleep(0.02)
            nursery.start_soon(enqueue, "kept")
            await trio.sleep(0.02)
            first.cancel_scope.cancel()


async def test_a_connect_abandoned_by_a_cancelled_call_is_closed_when_it_completes() -> None:
    """An unshielded call cancelled while its connection is being made does not leave that
    connection open for the garbage collector: the thread closes it when the connect ends."""
    import threading

    from supervisors.jobs._pg_green import connect_abandonable

    release = threading.Event()
    closed = threading.Event()

    class Conn:
        def close(self) -> None:
            closed.set()

    def connect() -> Conn:
        release.wait(10)
        return Conn()

    with trio.move_on_after(0.05) as scope:
        await connect_abandonable(connect)
    assert scope.cancelled_caught
    assert not closed.is_set()
    release.set()
    assert await trio.to_thread.run_sync(closed.wait, 10)


async def test_virtual_time_holds_still_under_the_thread_aware_clock_while_the_server_works(
    store: PostgresStore, thread_aware_clock: trio.testing.MockClock
) -> None:
    """Under `thread_aware_clock`, a call waiting for PostgreSQL (real time) lets no virtual
    time pass: a timer due meanwhile fires only after the call returned, at its own deadline."""
    fired: list[float] = []

    async def timer() -> None:
        await trio.sleep(1.0)
        fired.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await store._run(lambda db: db.conn.execute("SELECT pg_sleep(0.05)").fetchall())  # type: ignore[attr-defined]
        assert (trio.current_time(), fired) == (start, [])
    assert fired == [start + 1.0]


async def test_a_cancelled_unshielded_call_ends_its_hold_on_the_thread_aware_clock(
    store: PostgresStore, thread_aware_clock: trio.testing.MockClock
) -> None:
    """An unshielded call cancelled while the server works (its connection closed) ends its
    hold on virtual time: the clock jumps again afterwards."""
    pool = await store._green_pool()

    async def cancel_soon(scope: trio.CancelScope) -> None:
        await trio.to_thread.run_sync(time.sleep, 0.05)  # real time: the call is under way
        scope.cancel()

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_soon, scope)
            await pool.call(lambda db: db.execute("SELECT pg_sleep(5)"), shield=False)
    assert scope.cancelled_caught
    assert thread_aware_clock.autojump_threshold == 0.0  # no wait is holding the clock
    before = trio.current_time()
    await trio.sleep(3600.0)  # costs nothing: the clock jumps
    assert trio.current_time() == before + 3600.0
