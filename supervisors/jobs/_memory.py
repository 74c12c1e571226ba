"""`InMemoryStore`: the SQLite store on a private ``:memory:`` database, for tests and throwaway
hosts. Same SQL, same lifecycle as `SQLiteStore`; only persistence differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, final

import trio

from ._sqlite_db import SQLiteDB
from ._sqlstore import SQLStore

T = TypeVar("T")


@final
class InMemoryStore(SQLStore):
    """Jobs in process memory: private to one process, lost when it exits.

    It is SQLite's ``:memory:`` database running the very statements of `SQLiteStore`, so every
    rule of the lifecycle is the same. Calls run inline on the Trio thread (an in-memory
    database does no disk I/O) and each is a checkpoint.
    """

    shared = False

    def __init__(self) -> None:
        self._db: SQLiteDB | None = None

    def __repr__(self) -> str:
        return "InMemoryStore()"

    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        await trio.lowlevel.checkpoint()
        if self._db is None:
            self._db = SQLiteDB(":memory:")
        return fn(self._db)
