"""Fixtures for the job-system tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio.testing
from _pg import PG_URL, close_sync, drop_schema, require_postgres

from supervisors import Supervisor, Tree, open_tree
from supervisors.jobs import InMemoryStore, JobSystem, SQLiteStore, Store, TrioWallClock

START = datetime(2024, 1, 1, tzinfo=UTC)
"""The wall time at which tests using `TrioWallClock` start."""


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """A mock clock that jumps to the next deadline whenever all tasks are blocked."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def wall() -> TrioWallClock:
    """Wall time that follows Trio's clock from `START` (request ``autojump_clock`` too: only a
    clock requested by the test itself is used by pytest-trio)."""
    return TrioWallClock(START)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name for one test, dropped after it (skips without PostgreSQL)."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        drop_schema(schema)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store implementation in turn (the contract suite runs against all of them); the
    PostgreSQL one in a schema of its own, dropped after the test. Closed after the test (its
    connection and, for SQLite, its writer thread), so a run does not pile them up."""
    store: Store
    if request.param == "memory":
        store = InMemoryStore()
    elif request.param == "sqlite":
        store = SQLiteStore(tmp_path / "jobs.db")
    else:
        schema = request.getfixturevalue("pg_schema")
        from supervisors.jobs import PostgresStore

        store = PostgresStore(PG_URL, schema=schema)
    try:
        yield store
    finally:
        try:
            await store.aclose()
        finally:
            if request.param == "postgres":
                close_sync(store)  # a pool that aclose could not close


@asynccontextmanager
async def _running(jobs: JobSystem) -> AsyncIterator[Tree]:
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])) as tree:
        yield tree


@pytest.fixture
def running() -> Callable[[JobSystem], AbstractAsyncContextManager[Tree]]:
    """``async with running(jobs) as tree:`` runs ``jobs`` as the only child of tree ``app``."""
    return _running
