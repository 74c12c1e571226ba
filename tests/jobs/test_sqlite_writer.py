"""The SQLite store's writer thread: order, group commit, cancellation, durability on return."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from supervisors.jobs import JobQuery, JobRegistry, JobSystem, NewJob, SQLiteStore
from supervisors.jobs import _writer as writer_module
from supervisors.jobs._sqlite_db import SQLiteDB
from supervisors.jobs._sqlite_merge import ROWS_PER_INSERT, insert_merged
from supervisors.jobs._writer import Writer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    return path


def make_writer(path: Path, *, inline: bool = False) -> Writer:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if inline:
            conn.execute("PRAGMA journal_mode=WAL")
        return conn

    return Writer(connect, connection=lambda conn: conn, name="test-writer", inline=inline)


def registry() -> JobRegistry:
    reg = JobRegistry()

    @reg.job()
    async def x() -> None:
        await trio.lowlevel.checkpoint()

    return reg


def rows(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT n FROM t ORDER BY n")]
    finally:
        conn.close()


def insert(n: int, *, fail: bool = False) -> Callable[[sqlite3.Connection], bool]:
    """A grouped call: inserts ``n`` in the open transaction, or in its own one when alone;
    returns whether it ran inside a group's transaction."""

    def fn(conn: sqlite3.Connection) -> bool:
        grouped = conn.in_transaction
        if not grouped:
            conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            if fail:
                msg = f"call {n} fails"
                raise ValueError(msg)
        except BaseException:
            if not grouped:
                conn.execute("ROLLBACK")
            raise
        if not grouped:
            conn.execute("COMMIT")
        return grouped

    return fn


async def hold(writer: Writer, nursery: trio.Nursery) -> threading.Event:
    """Occupy the writer thread until the returned event is set."""
    release = threading.Event()
    nursery.start_soon(writer.call, lambda _: release.wait())
    await trio.testing.wait_all_tasks_blocked()
    return release


async def opened(writer: Writer) -> None:
    """Open the writer's connection (on its thread, as every first call does)."""
    await writer.call(lambda _: None)


async def test_calls_waiting_together_are_committed_in_one_transaction(db: Path) -> None:
    """Grouped calls queued while the thread is busy run in one transaction, and each caller
    returns after it committed."""
    writer = make_writer(db)
    grouped: dict[int, bool] = {}

    async def call(n: int) -> None:
        grouped[n] = await writer.call(insert(n), group=True)
        assert n in rows(db)

    async with trio.open_nursery() as nursery:
        release = await hold(writer, nursery)
        for n in range(5):
            nursery.start_soon(call, n)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert grouped == dict.fromkeys(range(5), True)
    assert rows(db) == [0, 1, 2, 3, 4]
    await writer.stop(sqlite3.Connection.close)


@pytest.mark.parametrize("inline", [False, True], ids=["writer_thread", "trio_thread"])
async def test_a_failing_call_in_a_group_does_not_fail_the_others(db: Path, inline: bool) -> None:
    """When one call of a group raises, the group is rolled back and each call runs alone (on the
    writer thread, an inline group handed to it): the others commit, the failing one raises its
    own error and leaves nothing."""
    writer = make_writer(db, inline=inline)
    outcomes: dict[int, object] = {}

    async def call(n: int) -> None:
        try:
            outcomes[n] = await writer.call(insert(n, fail=n == 1), group=True)
        except ValueError as exc:
            outcomes[n] = str(exc)

    if inline:
        await opened(writer)  # the thread idle: the three calls of one pass commit inline
    async with trio.open_nursery() as nursery:
        release = None if inline else await hold(writer, nursery)  # else they wait as one group
        for n in range(3):
            nursery.start_soon(call, n)
        if release is not None:
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert outcomes == {0: False, 1: "call 1 fails", 2: False}
    assert rows(db) == [0, 2]
    await writer.stop(sqlite3.Connection.close)


async def test_calls_run_in_the_order_they_were_made(db: Path) -> None:
    """A call that cannot join a group waits for the group before it, and the calls after it
    wait for it."""
    writer = make_writer(db)
    seen: list[str] = []

    async def call(label: str, group: bool) -> None:
        await writer.call(lambda _: seen.append(label), group=group)

    async with trio.open_nursery() as nursery:
        release = await hold(writer, nursery)
        for label, group in (("a", True), ("b", True), ("c", False), ("d", True)):
            nursery.start_soon(call, label, group)
            await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert seen == ["a", "b", "c", "d"]
    await writer.stop(sqlite3.Connection.close)


async def test_a_call_cancelled_before_it_starts_writes_nothing(db: Path) -> None:
    """Cancelling a call still waiting for the thread withdraws it: Cancelled, nothing written."""
    writer = make_writer(db)
    scope = trio.CancelScope()
    returned: list[bool] = []

    async def call() -> None:
        with scope:
            returned.append(await writer.call(insert(7), group=True))

    async with trio.open_nursery() as nursery:
        release = await hold(writer, nursery)
        nursery.start_soon(call)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert scope.cancelled_caught
    assert returned == []
    assert rows(db) == []
    assert await writer.call(insert(8), group=True) is False
    assert rows(db) == [8]
    await writer.stop(sqlite3.Connection.close)


async def test_a_call_cancelled_while_running_completes(db: Path) -> None:
    """Once the thread started a call, cancelling its caller waits for it, and it takes effect."""
    writer = make_writer(db)
    started = threading.Event()
    release = threading.Event()
    result: list[bool] = []

    def slow(conn: sqlite3.Connection) -> bool:
        started.set()
        release.wait()
        return insert(9)(conn)

    async def call() -> None:
        result.append(await writer.call(slow))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await trio.to_thread.run_sync(started.wait)
        nursery.cancel_scope.cancel()
        release.set()
    assert result == [False]
    assert rows(db) == [9]
    await writer.stop(sqlite3.Connection.close)


async def test_the_store_reopens_after_aclose(tmp_path: Path) -> None:
    """aclose ends the writer thread; the next call starts it again and reopens the file."""
    store = SQLiteStore(tmp_path / "jobs.db")
    jobs = JobSystem(store=store, registry=registry())
    first = await jobs.enqueue("x")
    await store.aclose()
    await store.aclose()
    second = await jobs.enqueue("x")
    assert (await jobs.get(first)).id == first
    assert second == first + 1
    await store.aclose()


async def test_reads_of_a_store_do_not_wait_for_its_writes(tmp_path: Path) -> None:
    """While a write waits for the file's lock (held here by another connection), reads run on
    the store's reader connection and answer at once, from the last commit; the write commits
    once the lock is released, and the next read sees it."""
    path = tmp_path / "jobs.db"
    jobs = JobSystem(store=SQLiteStore(path), registry=registry())
    first = await jobs.enqueue("x")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    written: list[int] = []

    async def enqueue() -> None:
        written.append(await jobs.enqueue("x"))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(enqueue)
            await trio.sleep(0.1)
            with trio.fail_after(5):  # a read queued behind the write would wait for the lock
                counts = await jobs.counts()
                page = await jobs.search(JobQuery())
                job = await jobs.get(first)
            assert written == []  # the write still waits for the lock
            assert counts.total == 1
            assert [j.id for j in page.jobs] == [first]
            assert job.id == first
            other.execute("COMMIT")
    finally:
        other.close()
    assert (await jobs.counts()).total == 2
    assert (await jobs.get(written[0])).id == written[0]
    await jobs.store.aclose()


async def test_an_in_memory_sqlite_store_reads_its_own_writes(tmp_path: Path) -> None:
    """``SQLiteStore(":memory:")`` has one private database: its reads use the writer's
    connection (a second connection would open another, empty, database)."""
    jobs = JobSystem(store=SQLiteStore(":memory:"), registry=registry())
    job_id = await jobs.enqueue("x")
    assert (await jobs.get(job_id)).id == job_id
    assert (await jobs.counts()).total == 1
    await jobs.store.aclose()


async def test_concurrent_enqueues_are_committed_when_they_return(tmp_path: Path) -> None:
    """Every enqueue that returned is visible to another connection at once."""
    path = tmp_path / "jobs.db"
    jobs = JobSystem(store=SQLiteStore(path), registry=registry())
    await jobs.store.open()
    other = sqlite3.connect(path)

    async def enqueue() -> None:
        job_id = await jobs.enqueue("x")
        assert other.execute("SELECT count(*) FROM jobs WHERE id = ?", (job_id,)).fetchone() == (1,)

    try:
        async with trio.open_nursery() as nursery:
            for _ in range(40):
                nursery.start_soon(enqueue)
    finally:
        other.close()
        await jobs.store.aclose()
    assert (await jobs.counts()).total == 40
    await jobs.store.aclose()


def test_one_writer_serves_several_trio_runs_one_after_the_other(db: Path) -> None:
    writer = make_writer(db)

    def insert(n: int) -> Callable[[sqlite3.Connection], int]:
        return lambda conn: conn.execute("INSERT INTO t (n) VALUES (?)", (n,)).rowcount

    async def main(first: int) -> list[int]:
        results: list[int] = []

        async def one(n: int) -> None:
            results.append(await writer.call(insert(n), group=True))

        async with trio.open_nursery() as nursery:
            for n in range(first, first + 3):
                nursery.start_soon(one, n)
        return results

    assert trio.run(main, 1) == [1, 1, 1]
    assert trio.run(main, 4) == [1, 1, 1]  # the hand-off to the thread works in a new run too

    async def close() -> None:
        await writer.stop(lambda conn: conn.close())

    trio.run(close)
    conn = sqlite3.connect(db)
    assert [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n")] == [1, 2, 3, 4, 5, 6]
    conn.close()


async def test_calls_with_the_same_merge_function_run_as_one_call(db: Path) -> None:
    """Grouped calls next to each other that name one ``merge`` run as one call of it over their
    items, in order, and each caller gets its own result; a call without it runs alone."""
    writer = make_writer(db)
    merged: list[list[int]] = []

    def merge(conn: sqlite3.Connection, items: list[int]) -> list[int]:
        merged.append(list(items))
        conn.executemany("INSERT INTO t (n) VALUES (?)", [(n,) for n in items])
        return [n * 10 for n in items]

    results: dict[int, int] = {}

    async def call(n: int) -> None:
        results[n] = await writer.call(lambda conn: merge(conn, [n])[0], group=True, merge=merge, item=n)

    async with trio.open_nursery() as nursery:
        release = await hold(writer, nursery)
        for n in range(4):
            nursery.start_soon(call, n)
            await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert results == {0: 0, 1: 10, 2: 20, 3: 30}
    assert merged == [[0, 1, 2, 3]]
    assert rows(db) == [0, 1, 2, 3]
    await writer.stop(sqlite3.Connection.close)


async def test_enqueuers_waiting_together_each_get_the_id_of_their_own_job(tmp_path: Path) -> None:
    """Concurrent enqueues on a SQLite file (merged into one insert where they can be) return
    each caller the id of the job it enqueued, unique jobs included."""
    reg = JobRegistry()

    @reg.job()
    async def echo(n: int) -> None:
        await trio.lowlevel.checkpoint()

    @reg.job(unique=True)
    async def once(n: int) -> None:
        await trio.lowlevel.checkpoint()

    jobs = JobSystem(store=SQLiteStore(tmp_path / "j.db"), registry=reg)
    got: dict[int, int] = {}

    async def enqueue(n: int) -> None:
        if n % 5 == 0:
            got[n] = await jobs.enqueue("once", n % 2)
        else:
            got[n] = await jobs.enqueue("echo", n)

    async with trio.open_nursery() as nursery:
        for n in range(60):
            nursery.start_soon(enqueue, n)
    try:
        for n, job_id in got.items():
            job = await jobs.get(job_id)
            if n % 5 == 0:
                assert (job.name, job.args) == ("once", n % 2)
            else:
                assert (job.name, job.args) == ("echo", n)
        assert len(set(got.values())) == 48 + 2  # the unique jobs: one per argument
        assert (await jobs.counts()).total == 50
    finally:
        await jobs.store.aclose()


def test_merged_inserts_never_reuse_a_deleted_newest_jobs_id(tmp_path: Path) -> None:
    """The ids a multi-row insert gives come after every id ever given, not after the largest
    left: a deleted newest job's id is not given again."""
    db = SQLiteDB(tmp_path / "j.db")
    job = NewJob(name="echo", queue="default", args="{}", run_at=0.0, max_attempts=1)
    try:
        first = db.insert([job, job, job], now=0.0)
        db.delete(first[-1], now=0.0)
        db.delete(first[-2], now=0.0)
        db.conn.execute("BEGIN IMMEDIATE")
        merged = insert_merged(db, [([job, job], 1.0), ([job], 1.0)])
        db.conn.execute("COMMIT")
        assert merged == [[first[-1] + 1, first[-1] + 2], [first[-1] + 3]]
        db.delete(merged[-1][0], now=1.0)
        assert db.insert([job], now=2.0) == [first[-1] + 4]  # the high-water mark moved too
    finally:
        db.close()


async def test_a_call_with_a_merge_function_that_runs_alone_runs_through_it(db: Path) -> None:
    """A grouped call with a ``merge`` that waits alone is run as ``merge`` of its one item, in
    a transaction of its own, and gets that result."""
    writer = make_writer(db)
    merged: list[list[int]] = []

    def merge(conn: sqlite3.Connection, items: list[int]) -> list[int]:
        merged.append(list(items))
        assert conn.in_transaction
        conn.executemany("INSERT INTO t (n) VALUES (?)", [(n,) for n in items])
        return [n * 10 for n in items]

    result = await writer.call(lambda conn: merge(conn, [7])[0], group=True, merge=merge, item=7)
    assert (result, merged, rows(db)) == (70, [[7]], [7])
    await writer.stop(sqlite3.Connection.close)


def test_a_merged_insert_longer_than_one_statement_gives_each_job_its_own_id(
    tmp_path: Path,
) -> None:
    """Merged inserts of more jobs than one multi-row INSERT takes give every job the id of its
    own row, in order, across the statements."""
    db = SQLiteDB(tmp_path / "j.db")
    try:
        items = [
            ([NewJob(name="echo", queue="default", args=f"{i}", run_at=0.0, max_attempts=1)] * k, 1.0)
            for i, k in enumerate([ROWS_PER_INSERT - 1, 3, ROWS_PER_INSERT])
        ]
        db.conn.execute("BEGIN IMMEDIATE")
        merged = insert_merged(db, items)
        db.conn.execute("COMMIT")
        assert [len(ids) for ids in merged] == [ROWS_PER_INSERT - 1, 3, ROWS_PER_INSERT]
        for (jobs, _), ids in zip(items, merged, strict=True):
            for job, job_id in zip(jobs, ids, strict=True):
                assert db.conn.execute("SELECT args FROM jobs WHERE id = ?", (job_id,)).fetchone() == (job.args,)
        flat = [i for ids in merged for i in ids]
        assert flat == list(range(flat[0], flat[0] + len(flat)))
    finally:
        db.close()


# --- inline commits (SQLiteStore with synchronous NORMAL or OFF) -------------------------------


def on_this_thread(n: int, ident: int) -> Callable[[sqlite3.Connection], bool]:
    """A grouped call that inserts ``n`` and says whether it ran on the thread ``ident``."""

    def fn(conn: sqlite3.Connection) -> bool:
        insert(n)(conn)
        return threading.get_ident() == ident

    return fn


async def test_a_small_group_commits_on_the_trio_thread_when_the_writer_thread_is_idle(
    db: Path,
) -> None:
    """With ``inline``, grouped calls of one pass run in one transaction on the Trio thread when
    the writer thread has nothing to do, and each returns after that transaction committed."""
    writer = make_writer(db, inline=True)
    await opened(writer)
    here = threading.get_ident()
    ran_here: list[bool] = []
    grouped: list[bool] = []

    async def call(n: int) -> None:
        grouped.append(await writer.call(insert(n), group=True))
        assert n in rows(db)  # committed, visible to another connection
        ran_here.append(await writer.call(lambda _: threading.get_ident() == here, group=True))

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(call, n)
    assert grouped == [True, True, True]  # one transaction for the three
    assert ran_here == [True, True, True]
    assert rows(db) == [0, 1, 2]
    await writer.stop(sqlite3.Connection.close)


async def test_an_inline_group_that_finds_the_file_locked_waits_on_the_thread_not_on_trio(
    db: Path,
) -> None:
    """When another connection holds the write lock, the group is handed to the writer thread
    at once (nothing written meanwhile): the Trio thread goes on, and the calls commit once the
    lock is released."""
    writer = make_writer(db, inline=True)
    await opened(writer)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    here = threading.get_ident()
    results: list[bool] = []
    ticks = 0

    async def call(n: int) -> None:
        results.append(await writer.call(on_this_thread(n, here), group=True))

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.005)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        async with trio.open_nursery() as calls:
            for n in range(2):
                calls.start_soon(call, n)
            await trio.sleep(0.2)
            assert results == []  # still waiting for the lock, on the writer thread
            assert ticks >= 10  # the Trio thread was not blocked meanwhile
            other.execute("COMMIT")
        nursery.cancel_scope.cancel()
    other.close()
    assert results == [False, False]  # they ran on the writer thread
    assert rows(db) == [0, 1]
    await writer.stop(sqlite3.Connection.close)


async def test_an_inline_call_cancelled_before_its_pass_ends_writes_nothing(db: Path) -> None:
    writer = make_writer(db, inline=True)
    await opened(writer)
    with trio.CancelScope() as scope:
        scope.cancel()
        await writer.call(insert(7), group=True)
    assert scope.cancelled_caught
    assert await writer.call(insert(8), group=True) is True
    assert rows(db) == [8]
    await writer.stop(sqlite3.Connection.close)


async def test_inline_commits_keep_the_wal_checkpointed(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inline commits never checkpoint themselves; the checkpointer and the writer thread do it
    for them about every `CHECKPOINT_PAGES` pages, so the WAL file does not grow with the number
    of commits."""
    pages = 500
    monkeypatch.setattr(writer_module, "CHECKPOINT_PAGES", pages)
    writer = make_writer(db, inline=True)
    await opened(writer)
    commits = 6 * pages  # one page or more each: 12 MB of WAL if never checkpointed
    for n in range(commits):
        await writer.call(insert(n), group=True)
    assert len(rows(db)) == commits
    wal = db.with_name(db.name + "-wal").stat().st_size
    assert wal < 3 * pages * (4096 + 24)
    await writer.stop(sqlite3.Connection.close)


async def test_inline_commits_go_on_while_the_checkpointer_copies_the_wal(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpointer thread copies the WAL with a connection of its own while inline commits
    go on on the Trio thread; once it is done, the writer thread checkpoints the rest (so that
    the WAL restarts); `stop` ends the checkpointer thread."""
    copying, release = threading.Event(), threading.Event()
    ran: list[str] = []
    checkpoint = writer_module._checkpoint

    def watched(conn: sqlite3.Connection, name: str) -> int:
        thread = threading.current_thread().name
        ran.append(thread)
        if thread.endswith("checkpointer"):
            copying.set()
            release.wait()
        return checkpoint(conn, name)

    monkeypatch.setattr(writer_module, "_checkpoint", watched)
    writer = make_writer(db, inline=True)
    await opened(writer)
    here = threading.get_ident()
    n = 0
    while not copying.is_set():  # until enough was written for a checkpoint
        assert await writer.call(on_this_thread(n, here), group=True) is True
        n += 1
    during = [await writer.call(on_this_thread(n + i, here), group=True) for i in range(50)]
    assert during == [True] * 50  # committed on the Trio thread meanwhile
    assert ran == ["test-writer checkpointer"]
    release.set()
    for i in range(200):  # the next inline commit after the copy hands the rest to the thread
        await writer.call(on_this_thread(n + 50 + i, here), group=True)
        if len(ran) == 2:
            break
        await trio.sleep(0.001)
    assert ran == ["test-writer checkpointer", "test-writer"]
    assert len(rows(db)) == n + 50 + i + 1
    await writer.stop(sqlite3.Connection.close)
    assert not [t for t in threading.enumerate() if t.name.startswith("test-writer")]


@pytest.mark.parametrize(("synchronous", "inline"), [("NORMAL", True), ("OFF", True), ("FULL", False)])
async def test_a_store_commits_on_the_trio_thread_only_if_a_commit_does_not_wait_for_the_disk(
    tmp_path: Path, synchronous: str, inline: bool
) -> None:
    store = SQLiteStore(tmp_path / "j.db", synchronous=synchronous)
    await store.open()
    here = threading.get_ident()
    assert await store._run_grouped(lambda _: threading.get_ident() == here) is inline
    await store.aclose()


async def test_a_failed_checkpoint_is_logged_not_lost(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Nobody waits for the writer thread's checkpoint, so its failure is logged with the writer's
    name, and the calls go on."""
    writer = make_writer(db, inline=True)
    await opened(writer)

    class Failing:
        def execute(self, sql: str, *args: object) -> object:
            raise sqlite3.OperationalError("disk I/O error")

    writer._connection = lambda resource: Failing() if resource == "failing" else resource  # type: ignore[assignment, return-value]
    with caplog.at_level("WARNING", logger="supervisors.jobs"):
        await writer.call(lambda resource: writer._checkpoint("failing", 10))
    assert "test-writer: checkpoint of the WAL failed (disk I/O error)" in caplog.text
    assert await writer.call(insert(1), group=True) is True
    await writer.stop(sqlite3.Connection.close)
