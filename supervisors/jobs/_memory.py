"""`InMemoryStore`: the SQLite store on a private ``:memory:`` database, for tests and throwaway
hosts. Same SQL, same lifecycle as `SQLiteStore`; only persistence differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, final

import trio

from ._model import ClaimedJob, NewJob
from ._sqlite_db import SQLiteDB
from ._sqlite_merge import ClaimAtInsert, claimed_at_insert, insert_claimed
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

    async def insert_and_claim(
        self, job: NewJob, *, now: float, owner: str, lease_until: float
    ) -> tuple[int, ClaimedJob | None]:
        item = ClaimAtInsert(job, now, owner, lease_until)
        job_id, claimed = await self._run(lambda db: insert_claimed(db, item))
        return job_id, claimed_at_insert(job, job_id) if claimed else None
