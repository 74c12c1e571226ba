"""Opening a SQLite job file: refusing what is not ours untouched, and migrating what is."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from supervisors import EXIT_FAILED, Supervisor, serve
from supervisors.jobs import JobClient, JobRegistry, JobState, JobSystem, SQLiteStore, StoreError
from supervisors.jobs._migrations import MIGRATIONS, SCHEMA_VERSION
from supervisors.jobs._sqlite_open import APPLICATION_ID

FIXTURES = Path(__file__).parent / "fixtures"

def snapshot(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` with the hash of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def refused(path: Path) -> str:
    """Open ``path`` with JobClient and return the StoreError's message."""
    with pytest.raises(StoreError) as info:
        JobClient(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def make_v1(path: Path) -> None:
    """A job file as the first release made it (schema version 1, no application_id)."""
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "schema_v1.sql").read_text())
    conn.close()


@pytest.fixture
def other_app(tmp_path: Path) -> Path:
    """Another application's database (rollback journal, its own tables)."""
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'a');")
    conn.close()
    return path


def test_random_bytes_are_refused_untouched(tmp_path: Path) -> None:
    """A file that is not a SQLite database is refused in one line naming it; nothing changes."""
    path = tmp_path / "jobs.db"
    path.write_bytes(bytes(range(256)) * 16)
    before = snapshot(tmp_path)
    message = refused(path)
    assert "not a SQLite database" in message
    assert snapshot(tmp_path) == before


def test_another_applications_database_is_refused_untouched(other_app: Path) -> None:
    """A database with other tables is neither switched to WAL nor given our tables."""
    before = snapshot(other_app.parent)
    message = refused(other_app)
    assert "another application's database" in message
    assert "users" in message
    assert snapshot(other_app.parent) == before
    with sqlite3.connect(other_app) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert sorted(snapshot(other_app.parent)) == ["app.db"]


def test_another_applications_wal_database_is_refused_untouched(tmp_path: Path) -> None:
    """Another application's WAL database, open with its -wal and -shm files, stays as it was."""
    path = tmp_path / "app.db"
    owner = sqlite3.connect(path, isolation_level=None)
    owner.execute("PRAGMA journal_mode=WAL")
    owner.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, what TEXT)")
    owner.execute("INSERT INTO jobs VALUES (1, 'theirs')")
    try:
        before = snapshot(tmp_path)
        assert {"app.db-wal", "app.db-shm"} <= set(before)
        message = refused(path)
        assert "another application's database" in message
        assert snapshot(tmp_path) == before
    finally:
        owner.close()


def test_a_directory_is_refused(tmp_path: Path) -> None:
    """A directory given as the store's path is refused, saying so."""
    message = refused(tmp_path)
    assert "is a directory" in message
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    """A path in a directory that does not exist is refused without creating the directory."""
    path = tmp_path / "nowhere" / "jobs.db"
    assert "directory does not exist" in refused(path)
    assert not path.parent.exists()


def test_a_read_only_job_file_is_refused_untouched(tmp_path: Path) -> None:
    """Our own file, read-only: refused before SQLite opens it, so no -wal/-shm appear."""
    path = tmp_path / "jobs.db"
    JobClient(path).close()
    before = snapshot(tmp_path)
    path.chmod(stat.S_IRUSR)
    try:
        assert "read-only" in refused(path)
        assert snapshot(tmp_path) == before
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_job_file_in_a_read_only_directory_is_refused_untouched(tmp_path: Path) -> None:
    """Our own file in a directory SQLite cannot create its -wal beside it in: refused."""
    directory = tmp_path / "ro"
    directory.mkdir()
    path = directory / "jobs.db"
    JobClient(path).close()
    before = snapshot(directory)
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert "read-only directory" in refused(path)
        assert snapshot(directory) == before
    finally:
        directory.chmod(stat.S_IRWXU)


def test_a_newer_schema_version_is_refused_untouched(tmp_path: Path) -> None:
    """A job file from a newer release is refused naming both versions; nothing changes."""
    path = tmp_path / "jobs.db"
    JobClient(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    before = snapshot(tmp_path)
    message = refused(path)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "upgrade this library" in message
    assert snapshot(tmp_path) == before


def test_a_job_file_whose_host_died_before_its_first_checkpoint_is_recognised(
    tmp_path: Path,
) -> None:
    """A new job file whose schema is still only in its -wal (the host was killed) is ours."""
    path = tmp_path / "jobs.db"
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    with JobClient(path) as client:
        job_id = client.enqueue("work", {"n": 1})
        for suffix in ("", "-wal"):
            (crashed / f"jobs.db{suffix}").write_bytes(Path(f"{path}{suffix}").read_bytes())
    with JobClient(crashed / "jobs.db") as client:
        assert client.get(job_id).args == {"n": 1}


def test_an_empty_file_becomes_a_job_store(tmp_path: Path) -> None:
    """An empty file (e.g. made by ``touch``) is ours to create the schema in."""
    path = tmp_path / "jobs.db"
    path.touch()
    with JobClient(path) as client:
        job_id = client.enqueue("work", {"n": 1})
        assert client.get(job_id).state is JobState.ENQUEUED
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_the_store_raises_store_error_on_open(tmp_path: Path) -> None:
    """SQLiteStore.open raises StoreError (not a raw sqlite3 error) for a bad file."""
    path = tmp_path / "jobs.db"
    path.write_bytes(b"not a database at all" * 10)
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match="not a SQLite database"):
        await store.open()
    await store.aclose()


def test_a_first_release_database_is_upgraded_in_place_keeping_its_jobs(tmp_path: Path) -> None:
    """A file made by the first release (schema 1, no application_id) is migrated in place:
    its jobs, errors and schedule cursors stay, and it is marked as ours."""
    path = tmp_path / "jobs.db"
    make_v1(path)
    with JobClient(path) as client:
        first, dead = client.get(1), client.get(2)
        assert (first.state, first.args) == (JobState.ENQUEUED, {"n": 1})
        assert dead.state is JobState.DEAD
        assert [e.error for e in dead.errors] == ["ValueError: boom"]
        new = client.enqueue("work", {"n": 3})
        assert new == 3
        assert client.counts().total == 3
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT cursor FROM schedules WHERE name = 'nightly'").fetchone() == (
            1700000000.0,
        )
    finally:
        conn.close()


def make_v7(path: Path) -> None:
    """A job file of schema version 7 (before job ids were never reused): five jobs (an error, a
    continuation), its newest job (id 6) deleted."""
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "schema_v7.sql").read_text())
    conn.close()


def contents(path: Path) -> tuple[dict[str, list[tuple[object, ...]]], dict[str, str]]:
    """Every row of every table of ours, and the SQL of every index, by name."""
    conn = sqlite3.connect(path)
    try:
        names = [
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(r[0]).startswith("sqlite_")
        ]
        rows = {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
        indexes = dict(
            conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
    finally:
        conn.close()
    return rows, indexes


def test_a_version_7_file_is_upgraded_keeping_every_row_and_index_and_reusing_no_id(
    tmp_path: Path,
) -> None:
    """Upgrading a file made by version 7 rebuilds ``jobs`` with AUTOINCREMENT and keeps every
    row with its id, every index (``jobs_state`` merged into ``jobs_search_state`` by version
    10), and the other tables; the next id comes after the largest, and from then on a deleted
    newest job's id is never given again."""
    path = tmp_path / "jobs.db"
    make_v7(path)
    rows, indexes = contents(path)
    assert [r[0] for r in rows["jobs"]] == [1, 2, 3, 4, 5]
    with JobClient(path) as client:
        assert client.get(5).parent_id == 1
        assert [e.error for e in client.get(1).errors] == ["ValueError: boom"]
        assert client.enqueue("work", {"n": 6}) == 6
        client.delete(6)
        assert client.enqueue("work", {"n": 7}) == 7
    after, after_indexes = contents(path)
    merged = "CREATE INDEX jobs_search_state ON jobs(state, queue, created_at)"
    assert indexes.pop("jobs_state") == "CREATE INDEX jobs_state ON jobs(state, queue)"
    assert after_indexes == {**indexes, "jobs_search_state": merged}
    width = len(rows["jobs"][0])  # later versions add columns at the end, empty for old rows
    assert [r[:width] for r in after["jobs"] if r[0] <= 5] == rows["jobs"]
    assert {r[width:] for r in after["jobs"] if r[0] <= 5} == {(None,)}  # claim_tag (version 9)
    assert {n: r for n, r in after.items() if n != "jobs"} == {
        n: r for n, r in rows.items() if n != "jobs"
    }
    conn = sqlite3.connect(path)
    try:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()
        assert "id INTEGER PRIMARY KEY AUTOINCREMENT" in sql
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone() == (7,)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def test_the_upgrade_starts_ids_above_every_id_still_referred_to(tmp_path: Path) -> None:
    """A deleted job whose id a schedule's ledger still names: upgrading from version 7 starts
    the ids above it, so the ledger never comes to name a new, unrelated job."""
    path = tmp_path / "jobs.db"
    make_v7(path)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO schedule_ledger (schedule, fire_time, outcome, job_id, reason, at, host)"
        " VALUES ('nightly', 0, 'enqueued', 9, '', 0, 'h')"
    )
    conn.commit()
    conn.close()
    with JobClient(path) as client:
        assert client.enqueue("work", {}) == 10


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    """Each migration's version is its position, and the schema version is the last one."""
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
    assert all(m.statements() or m.run is not None for m in MIGRATIONS)


async def test_a_host_on_a_bad_file_fails_its_start_with_one_line_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A host whose job file is refused exits 1, logging the StoreError's one line (no traceback),
    not nested in a StartFailed per supervisor level."""
    path = tmp_path / "jobs.db"
    path.write_bytes(b"\x00" * 4096)
    jobs = JobSystem(store=SQLiteStore(path), registry=JobRegistry())
    spec = Supervisor(name="app", children=[jobs.child_spec()])
    with caplog.at_level(logging.ERROR):
        assert await serve(spec, handle_signals=False) == EXIT_FAILED
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert [r.getMessage().count("not a SQLite database") for r in failures] == [1, 1]
    final = failures[-1].getMessage()
    assert "StartFailed" not in final
    assert "child 'app/jobs/store' failed to start with StoreError: job store" in final
    assert str(path) in final
    assert all(r.exc_info is None for r in caplog.records)


async def test_a_failed_start_on_a_bad_file_leaves_no_writer_thread_behind(tmp_path: Path) -> None:
    """The store is closed when its start fails (on_stop does not run then): its writer thread
    ends, instead of one thread leaking per failed start."""
    path = tmp_path / "jobs.db"
    path.write_bytes(b"\x00" * 4096)
    jobs = JobSystem(store=SQLiteStore(path), registry=JobRegistry())
    spec = Supervisor(name="app", children=[jobs.child_spec()])
    assert await serve(spec, handle_signals=False) == EXIT_FAILED
    assert [t for t in threading.enumerate() if str(path) in t.name] == []


def test_a_second_connection_in_one_process_keeps_the_file_locks_of_the_first(tmp_path: Path) -> None:
    """Opening the file again in a process that has it open (a `JobClient` beside a store, the
    store's second connection) does not look at it with a descriptor of its own: closing one
    would drop the process's POSIX locks on it, and another process closing its last connection
    would then take the file for unused and delete its WAL under the open connections."""
    path = tmp_path / "jobs.db"
    first = JobClient(path)
    try:
        first._db.conn.execute("PRAGMA wal_autocheckpoint=0")
        first.enqueue("x")
        with JobClient(path) as second:  # the same file, the same process
            assert second.get(1).name == "x"
        other = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM jobs'); "
            "c.close()"
        )
        subprocess.run([sys.executable, "-c", other, str(path)], check=True)
        assert Path(f"{path}-wal").exists()  # the other process saw us: it left the WAL alone
        first.enqueue("y")
    finally:
        first.close()
    with JobClient(path) as again:
        assert sorted(j.name for j in again.list()) == ["x", "y"]
        assert again._db.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
