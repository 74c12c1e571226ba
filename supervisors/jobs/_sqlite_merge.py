"""Merged inserts on SQLite: the enqueues that wait together for the writer thread, as one
multi-row ``INSERT`` inside the group's transaction (see `_writer`'s ``merge``)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence

from ._model import NewJob
from ._sql import STATEMENTS as Q
from ._sqlite_db import SQLiteDB

ROWS_PER_INSERT = 500
"""The most jobs in one multi-row ``INSERT`` (10 parameters each: within SQLite's 32,766)."""


@functools.lru_cache(maxsize=64)
def _statement(n: int) -> str:
    return Q["insert_rows"].format(rows=",".join(["(?,?,?,?,?,?,?,?,?,?)"] * n))


def insert_merged(db: SQLiteDB, items: list[tuple[Sequence[NewJob], float]]) -> list[list[int]]:
    """`SQLiteDB.insert` of each ``(jobs, now)`` of ``items``, in order, inside the transaction
    open on ``db``: the consecutive items whose jobs are all plain (settings resolved, no unique
    key, no schedule, no parent: nothing to look up) in one multi-row ``INSERT`` per
    `ROWS_PER_INSERT` jobs, the others one by one."""
    out: list[list[int]] = []
    params: list[object] = []  # of the plain jobs not inserted yet, 10 per job
    sizes: list[int] = []  # of the items in ``params``
    for jobs, now in items:
        for j in jobs:
            if j.defined or j.unique_key is not None or j.schedule is not None or (
                j.parent_id is not None
            ):
                _insert_rows(db.conn, params, sizes, out)
                out.append(db.insert(jobs, now))
                break
        else:
            for j in jobs:
                params += (
                    j.name, j.queue, j.args, "enqueued" if j.run_at <= now else "scheduled",
                    j.max_attempts, j.run_at, now, j.priority, j.concurrency_key,
                    j.concurrency_limit,
                )  # fmt: skip
            sizes.append(len(jobs))
    _insert_rows(db.conn, params, sizes, out)
    return out


def _insert_rows(
    c: sqlite3.Connection, params: list[object], sizes: list[int], out: list[list[int]]
) -> None:
    """Insert the rows of ``params``; append each item's ids to ``out``; empty ``params`` and
    ``sizes``.

    The ids are AUTOINCREMENT's (above every id ever given, so never a deleted job's): it gives
    the rows of one ``INSERT`` consecutive ids, in order (the transaction holds the write lock),
    the last of them ``lastrowid``."""
    if not params:
        return
    ids: list[int] = []
    step = _COLUMNS * ROWS_PER_INSERT
    for start in range(0, len(params), step):
        chunk = params[start : start + step]
        rows = len(chunk) // _COLUMNS
        last = c.execute(_statement(rows), chunk).lastrowid
        assert last is not None
        ids.extend(range(last - rows + 1, last + 1))
    first = 0
    for size in sizes:
        out.append(ids[first : first + size])
        first += size
    params.clear()
    sizes.clear()


_COLUMNS = 10
