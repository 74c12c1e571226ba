"""`SQLiteStore`: the embedded default store; one file, WAL mode, blocking calls off Trio."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, final

import trio

from ._sqlite_db import SQLiteDB
from ._sqlstore import SQLStore

T = TypeVar("T")


@final
class SQLiteStore(SQLStore):
    """Jobs in one SQLite file (WAL mode), created with its schema on first use.

    Every call runs on a worker thread (``trio.to_thread.run_sync``) through one connection,
    guarded by a ``CapacityLimiter`` of 1, so the Trio thread never blocks on disk. Several
    processes may share the file: claims and recurring occurrences are transactional and leased,
    so a job is claimed by one host at a time (see the at-least-once guarantee in the docs).

    ``synchronous`` is SQLite's ``PRAGMA synchronous``; defaults to ``"NORMAL"``, which in WAL
    mode survives the crash of the process (``kill -9``) but may lose the last transactions on a
    power failure; use ``"FULL"`` to survive that too, at a cost in enqueue throughput.
    Requires SQLite 3.35 or later (`StoreError` otherwise).
    """

    shared = True

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._db: SQLiteDB | None = None
        self._limiter = trio.CapacityLimiter(1)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _open(self) -> SQLiteDB:
        if self._db is None:
            self._db = SQLiteDB(self.path, synchronous=self._synchronous)
        return self._db

    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        def call() -> T:
            return fn(self._open())

        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    async def open(self) -> None:
        """Connect and create the schema if needed; raises `StoreError` if the file is unusable."""
        await self._run(lambda db: None)

    async def aclose(self) -> None:
        """Close the connection; the store reopens it if used again."""

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await trio.to_thread.run_sync(close, limiter=self._limiter)
