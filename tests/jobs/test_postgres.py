"""PostgresStore specifics: migrations, the database's clock, hosts, transactional enqueue,
wake-ups (the lifecycle itself is the contract suite's, run on every store)."""

from __future__ import annotations

import threading

import psycopg
import pytest
import trio
from _pg import PG_URL

from supervisors.jobs import NewJob, PostgresStore, StoreError
from supervisors.jobs.__main__ import main as jobs_main
from supervisors.jobs._pg_migrations import PG_SCHEMA_VERSION, migrate


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
    """With ``migrate=False`` the store only checks, and says which command to run."""

    async def main() -> None:
        store = PostgresStore(PG_URL, schema=pg_schema, migrate=False)
        with pytest.raises(StoreError, match=r"python -m supervisors\.jobs migrate"):
            await store.open()

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
