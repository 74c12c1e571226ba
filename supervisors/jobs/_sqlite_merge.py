"""Merged inserts on SQLite: the enqueues that wait together for the writer thread, as one
multi-row ``INSERT`` inside the group's transaction (see `_writer`'s ``merge``), and the jobs
inserted already claimed (`Store.insert_and_claim`)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

import attrs

from ._model import ClaimedJob, NewJob
from ._sql import STATEMENTS as Q
from ._sqlite_db import SQLiteDB

ROWS_PER_INSERT = 500
"""The most jobs in one multi-row ``INSERT`` (13 parameters each at most: within SQLite's
32,766)."""


@attrs.frozen
class ClaimAtInsert:
    """An item of `insert_merged`: insert ``job`` at ``now`` and claim it for ``owner``, leased
    until ``lease_until``, if `claims_at_insert` allows; its result is ``(id, claimed)``."""

    job: NewJob
    now: float
    owner: str
    lease_until: float


InsertItem = tuple[Sequence[NewJob], float] | ClaimAtInsert
"""An item of `insert_merged`: ``(jobs, now)`` as `SQLiteDB.insert` (its result: the ids), or
a `ClaimAtInsert`."""


def claimed_at_insert(job: NewJob, job_id: int) -> ClaimedJob:
    """The claim of ``job``, inserted with ``job_id`` already claimed (its first attempt)."""
    assert job.queue is not None
    assert job.max_attempts is not None
    return ClaimedJob(job_id, job.name, job.queue, job.args, 1, job.max_attempts)


def _plain(job: NewJob) -> bool:
    """Nothing to look up to insert ``job``: settings resolved, no unique key, no schedule, no
    parent."""
    return not job.defined and job.unique_key is None and job.schedule is None and job.parent_id is None


@functools.lru_cache(maxsize=128)
def _statement(name: str, n: int, columns: int) -> str:
    row = "(" + ",".join(["?"] * columns) + ")"
    return Q[name].format(rows=",".join([row] * n))


class _Rows:
    """Rows waiting for one multi-row ``INSERT`` of the statement ``name``: their parameters
    and, per item, its index in the results, its number of rows, and for a `ClaimAtInsert`
    whether it is claimed (``None`` for an ``(jobs, now)`` item)."""

    def __init__(self, name: str, columns: int) -> None:
        self.name = name
        self.columns = columns
        self.params: list[object] = []
        self.items: list[tuple[int, int, bool | None]] = []

    def add(self, index: int, rows: Sequence[tuple[object, ...]], claimed: bool | None) -> None:
        """The rows of the item ``index``; ``claimed`` as in ``items``."""
        for row in rows:
            self.params += row
        self.items.append((index, len(rows), claimed))

    def flush(self, c: sqlite3.Connection, out: list[Any]) -> None:
        """Insert the rows; each item's result is its ids, or for a `ClaimAtInsert` ``(its id,
        claimed)``.

        The ids are AUTOINCREMENT's (above every id ever given, so never a deleted job's): it
        gives the rows of one ``INSERT`` consecutive ids, in order (the transaction holds the
        write lock), the last of them ``lastrowid``."""
        if not self.params:
            return
        ids: list[int] = []
        step = self.columns * ROWS_PER_INSERT
        for start in range(0, len(self.params), step):
            chunk = self.params[start : start + step]
            rows = len(chunk) // self.columns
            last = c.execute(_statement(self.name, rows, self.columns), chunk).lastrowid
            assert last is not None
            ids.extend(range(last - rows + 1, last + 1))
        first = 0
        for index, size, claimed in self.items:
            out[index] = ids[first : first + size] if claimed is None else (ids[first], claimed)
            first += size
        self.params.clear()
        self.items.clear()


def insert_merged(db: SQLiteDB, items: Sequence[InsertItem]) -> list[Any]:
    """Each item of ``items`` inside the transaction open on ``db``, with its result in order.

    ``(jobs, now)``: `SQLiteDB.insert`; plain jobs (see `_plain`) of consecutive items are one
    multi-row ``INSERT`` per `ROWS_PER_INSERT` jobs, the others one by one.

    `ClaimAtInsert`: its job is inserted ``RUNNING`` (attempt 1, leased to its owner: `Op.ENQUEUE`
    then `Op.CLAIM`, the ``ENQUEUED`` state seen by no other transaction) if it is plain, due,
    without a concurrency key, and would be the next job its queue hands out: the statement
    ``claims_at_insert`` (not paused, no rate limit, no job waiting), and no job of these items
    inserted ``ENQUEUED`` in that queue before it. Otherwise it is inserted as `SQLiteDB.insert`
    does. Its result: ``(its id, whether it was claimed)``.
    """
    out: list[Any] = [None] * len(items)
    enqueued = _Rows("insert_rows", 10)
    running = _Rows("insert_running_rows", 13)
    c = db.conn
    waiting: set[str] = set()  # queues given an ENQUEUED job by these items
    free: dict[str, bool] = {}  # queue -> `claims_at_insert`, asked once

    def flush() -> None:
        enqueued.flush(c, out)
        running.flush(c, out)

    for index, item in enumerate(items):
        if isinstance(item, ClaimAtInsert):
            job, now = item.job, item.now
            if not _plain(job):
                flush()
                out[index] = (db.insert([job], now)[0], False)
                continue
            queue = str(job.queue)
            if job.run_at <= now and job.concurrency_key is None and queue not in waiting:
                if queue not in free:
                    free[queue] = bool(c.execute(Q["claims_at_insert"], {"queue": queue}).fetchone()[0])
                if free[queue]:
                    running.add(index, [(*_row(job, now, "running"), 1, item.owner, item.lease_until)], True)
                    continue
            enqueued.add(index, [_row(job, now)], False)
            if job.run_at <= now:
                waiting.add(queue)
            continue
        jobs, now = item
        if not all(_plain(j) for j in jobs):
            flush()
            out[index] = db.insert(jobs, now)
            continue
        enqueued.add(index, [_row(j, now) for j in jobs], None)
        waiting.update(str(j.queue) for j in jobs if j.run_at <= now)
    flush()
    return out


def _row(job: NewJob, now: float, state: str | None = None) -> tuple[object, ...]:
    """The ``insert_rows`` parameters of ``job``; ``state`` defaults to enqueued if due, else
    scheduled."""
    if state is None:
        state = "enqueued" if job.run_at <= now else "scheduled"
    return (
        job.name, job.queue, job.args, state, job.max_attempts, job.run_at, now, job.priority,
        job.concurrency_key, job.concurrency_limit,
    )  # fmt: skip


def insert_claimed(db: SQLiteDB, item: ClaimAtInsert) -> tuple[int, bool]:
    """`insert_merged` of ``item`` alone, in a write transaction of its own (or the one open)."""
    with db._write():
        result: tuple[int, bool] = insert_merged(db, [item])[0]
    return result
