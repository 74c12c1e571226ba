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
"""The most jobs in one multi-row ``INSERT`` (11 parameters each: within SQLite's 32,766)."""


@functools.lru_cache(maxsize=64)
def _statement(n: int) -> str:
    return Q["insert_rows"].format(rows=",".join(["(?,?,?,?,?,?,?,?,?,?,?)"] * n))


def _plain(job: NewJob) -> bool:
    """Whether ``job`` needs no look-up to insert: settings resolved, no unique key, no
    schedule, no parent."""
    return (
        not job.defined and job.unique_key is None and job.schedule is None
        and job.parent_id is None
    )  # fmt: skip


def insert_merged(db: SQLiteDB, items: list[tuple[Sequence[NewJob], float]]) -> list[list[int]]:
    """`SQLiteDB.insert` of each ``(jobs, now)`` of ``items``, in order, inside the transaction
    open on ``db``: the consecutive items whose jobs are all plain in one multi-row ``INSERT``
    per `ROWS_PER_INSERT` jobs, the others one by one."""
    out: list[list[int]] = []
    rows: list[tuple[object, ...]] = []
    sizes: list[int] = []  # of the items in ``rows``
    c = db.conn
    for jobs, now in items:
        if not all(_plain(j) for j in jobs):
            _insert_rows(c, rows, sizes, out)
            out.append(db.insert(jobs, now))
            continue
        for j in jobs:
            rows.append((
                j.name, j.queue, j.args, "enqueued" if j.run_at <= now else "scheduled",
                j.max_attempts, j.run_at, now, j.priority, j.concurrency_key,
                j.concurrency_limit,
            ))  # fmt: skip
        sizes.append(len(jobs))
    _insert_rows(c, rows, sizes, out)
    return out


def _insert_rows(
    c: sqlite3.Connection, rows: list[tuple[object, ...]], sizes: list[int], out: list[list[int]]
) -> None:
    """Insert ``rows`` with the next free ids (as SQLite would choose them: the transaction
    holds the write lock); append each item's ids to ``out``; empty ``rows`` and ``sizes``."""
    if not rows:
        return
    base = int(c.execute(Q["max_id"]).fetchone()[0] or 0) + 1
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        params: list[object] = []
        for job_id, row in enumerate(chunk, base + start):
            params.append(job_id)
            params.extend(row)
        c.execute(_statement(len(chunk)), params)
    first = base
    for size in sizes:
        out.append(list(range(first, first + size)))
        first += size
    rows.clear()
    sizes.clear()
