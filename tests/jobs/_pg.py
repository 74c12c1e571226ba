"""PostgreSQL helpers for the job tests: the test database, skips, schemas per test."""

from __future__ import annotations

import functools
import os

import pytest

from supervisors.jobs import Store

PG_URL = os.environ.get("SUPERVISORS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL the tests use (never another address unless the variable says so)."""


@functools.cache
def _pg_unreachable() -> str | None:
    try:
        import greenlet  # noqa: F401
        import psycopg
    except ImportError:
        return "psycopg 3 and greenlet are not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL reachable at {PG_URL} ({str(exc).strip()})"
    return None


def require_postgres() -> str:
    """The test database's URL; skips the test when PostgreSQL is unreachable, or fails it when
    ``SUPERVISORS_REQUIRE_POSTGRES=1`` (CI sets it, so these tests always run there)."""
    reason = _pg_unreachable()
    if reason is not None:
        if os.environ.get("SUPERVISORS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SUPERVISORS_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return PG_URL


def drop_schema(schema: str) -> None:
    """Drop a test's PostgreSQL schema and everything in it."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def close_sync(store: Store) -> None:
    """Close a `PostgresStore`'s connections from synchronous code (fixture teardown)."""
    pool = getattr(store, "_pool", None)
    if pool is not None:
        pool.close()  # the idle connections (none is lent out once the calls have returned)
        store._pool = None  # type: ignore[attr-defined]
