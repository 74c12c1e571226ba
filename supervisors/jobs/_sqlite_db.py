"""The synchronous SQLite implementation of the store contract.

Used on a worker thread by `SQLiteStore` and directly by `JobClient`. One connection per
instance; callers serialise access to it. Every write runs in a ``BEGIN IMMEDIATE`` transaction,
so concurrent processes on the same file take turns instead of failing half-way; claims are one
``UPDATE ... RETURNING`` statement, so two hosts never claim the same job.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._errors import JobNotFoundError, JobStateError, StoreError
from ._model import (
    AttemptError,
    ClaimedJob,
    Failure,
    Job,
    JobCounts,
    JobState,
    NewJob,
    Promoted,
    to_datetime,
)
from ._sqlite_open import connect
from ._store import LEASE_EXPIRED

_UNFINISHED = "('scheduled', 'enqueued', 'running', 'retrying')"

_COLUMNS = (
    "id, name, queue, args, state, attempt, max_attempts, run_at, created_at, finished_at, "
    "lease_until, unique_key, schedule, fire_time"
)

_INSERT = (
    "INSERT INTO jobs (name, queue, args, state, max_attempts, run_at, created_at, unique_key, "
    "schedule, fire_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id"
)

_CLAIM = """
UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?, lease_until = ?
WHERE id IN (
    SELECT id FROM jobs WHERE state = 'enqueued' AND queue = ? ORDER BY id LIMIT ?
)
RETURNING id, name, queue, args, attempt, max_attempts
"""

_SUCCEED = (
    "UPDATE jobs SET state = 'succeeded', finished_at = ?, lease_owner = NULL, "
    "lease_until = NULL WHERE id = ? AND state = 'running' AND lease_owner = ?"
)

_FAIL = """
UPDATE jobs SET
    state = CASE WHEN ?1 IS NULL THEN 'dead' ELSE 'retrying' END,
    run_at = COALESCE(?1, run_at),
    finished_at = CASE WHEN ?1 IS NULL THEN ?2 ELSE NULL END,
    lease_owner = NULL, lease_until = NULL
WHERE id = ?3 AND state = 'running' AND lease_owner = ?4
RETURNING attempt
"""

_RELEASE = (
    "UPDATE jobs SET state = 'enqueued', attempt = attempt - 1, lease_owner = NULL, "
    "lease_until = NULL WHERE id = ? AND state = 'running' AND lease_owner = ?"
)

_ERROR = "INSERT INTO job_errors (job_id, attempt, at, error, traceback) VALUES (?, ?, ?, ?, ?)"


class SQLiteDB:
    """One connection to a job database file, checked and migrated by `connect` on open."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self.conn = connect(path, synchronous=synchronous)

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    # --- writes ------------------------------------------------------------------------------

    def _insert_one(self, c: sqlite3.Connection, job: NewJob, now: float) -> int | None:
        state = "enqueued" if job.run_at <= now else "scheduled"
        row = c.execute(
            _INSERT,
            (
                job.name,
                job.queue,
                job.args,
                state,
                job.max_attempts,
                job.run_at,
                now,
                job.unique_key,
                job.schedule,
                job.fire_time,
            ),
        ).fetchone()
        if row is not None:
            return int(row[0])
        return None

    def _existing(self, c: sqlite3.Connection, job: NewJob) -> int:
        if job.unique_key is not None:
            row = c.execute(
                f"SELECT id FROM jobs WHERE unique_key = ? AND state IN {_UNFINISHED}",
                (job.unique_key,),
            ).fetchone()
            if row is not None:
                return int(row[0])
        row = c.execute(
            "SELECT id FROM jobs WHERE schedule = ? AND fire_time = ?",
            (job.schedule, job.fire_time),
        ).fetchone()
        if row is None:  # pragma: no cover - a conflict always has a cause
            msg = f"inserting job {job.name!r} conflicted with no visible job"
            raise StoreError(msg)
        return int(row[0])

    def insert(self, jobs: Sequence[NewJob], now: float) -> list[int]:
        ids: list[int] = []
        with self._write() as c:
            for job in jobs:
                new = self._insert_one(c, job, now)
                ids.append(new if new is not None else self._existing(c, job))
        return ids

    def _claim(
        self, c: sqlite3.Connection, queue: str, limit: int, owner: str, lease_until: float
    ) -> list[ClaimedJob]:
        rows = c.execute(_CLAIM, (owner, lease_until, queue, limit)).fetchall()
        rows.sort()
        return [ClaimedJob(*row) for row in rows]

    def claim(
        self, queue: str, limit: int, owner: str, now: float, lease_until: float
    ) -> list[ClaimedJob]:
        with self._write() as c:
            return self._claim(c, queue, limit, owner, lease_until)

    def _settle(
        self,
        c: sqlite3.Connection,
        owner: str,
        now: float,
        succeeded: Sequence[int],
        failed: Sequence[Failure],
        released: Sequence[int],
    ) -> None:
        if succeeded:
            c.executemany(_SUCCEED, [(now, job_id, owner) for job_id in succeeded])
        for f in failed:
            row = c.execute(_FAIL, (f.retry_at, now, f.job_id, owner)).fetchone()
            if row is not None:
                c.execute(_ERROR, (f.job_id, row[0], now, f.error, f.traceback))
        if released:
            c.executemany(_RELEASE, [(job_id, owner) for job_id in released])

    def settle(
        self,
        owner: str,
        now: float,
        succeeded: Sequence[int],
        failed: Sequence[Failure],
        released: Sequence[int],
    ) -> None:
        with self._write() as c:
            self._settle(c, owner, now, succeeded, failed, released)

    def settle_and_claim(
        self,
        queue: str,
        limit: int,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[int],
        failed: Sequence[Failure],
    ) -> list[ClaimedJob]:
        with self._write() as c:
            self._settle(c, owner, now, succeeded, failed, ())
            if limit <= 0:
                return []
            return self._claim(c, queue, limit, owner, lease_until)

    def renew(self, ids: Sequence[int], owner: str, lease_until: float) -> None:
        with self._write() as c:
            c.executemany(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'running' "
                "AND lease_owner = ?",
                [(lease_until, job_id, owner) for job_id in ids],
            )

    def promote_due(self, now: float) -> Promoted:
        with self._write() as c:
            rows = c.execute(
                "UPDATE jobs SET state = 'enqueued' WHERE state IN ('scheduled', 'retrying') "
                "AND run_at <= ? RETURNING queue",
                (now,),
            ).fetchall()
            nxt = c.execute(
                "SELECT min(run_at) FROM jobs WHERE state IN ('scheduled', 'retrying')"
            ).fetchone()[0]
        return Promoted(queues=frozenset(r[0] for r in rows), next_due=nxt)

    def requeue_expired(self, now: float) -> frozenset[str]:
        with self._write() as c:
            rows = c.execute(
                """
                UPDATE jobs SET
                    state = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'enqueued' END,
                    finished_at = CASE WHEN attempt >= max_attempts THEN ?1 ELSE NULL END,
                    run_at = ?1, lease_owner = NULL, lease_until = NULL
                WHERE state = 'running' AND lease_until < ?1
                RETURNING id, queue, attempt, state
                """,
                (now,),
            ).fetchall()
            c.executemany(
                _ERROR,
                [(r[0], r[2], now, LEASE_EXPIRED.format(attempt=r[2]), "") for r in rows],
            )
        return frozenset(r[1] for r in rows if r[3] == "enqueued")

    def cursor(self, schedule: str) -> float | None:
        row = self.conn.execute(
            "SELECT cursor FROM schedules WHERE name = ?", (schedule,)
        ).fetchone()
        return None if row is None else float(row[0])

    def fire(
        self,
        schedule: str,
        expected: float | None,
        cursor: float,
        jobs: Sequence[NewJob],
        exclusive: bool,
        now: float,
    ) -> list[int] | None:
        with self._write() as c:
            row = c.execute("SELECT cursor FROM schedules WHERE name = ?", (schedule,)).fetchone()
            current = None if row is None else float(row[0])
            if current != expected:
                return None
            ids: list[int] = []
            for job in jobs:
                if (
                    exclusive
                    and c.execute(
                        f"SELECT 1 FROM jobs WHERE schedule = ? AND state IN {_UNFINISHED} LIMIT 1",
                        (schedule,),
                    ).fetchone()
                ):
                    continue
                new = self._insert_one(c, job, now)
                if new is not None:
                    ids.append(new)
            c.execute(
                "INSERT INTO schedules (name, cursor) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor",
                (schedule, cursor),
            )
        return ids

    def retry(self, job_id: int, now: float, attempts: int) -> str:
        with self._write() as c:
            row = c.execute(
                "SELECT state, attempt, max_attempts, queue, unique_key FROM jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            state, attempt, max_attempts, queue, unique_key = row
            if state not in ("dead", "retrying", "scheduled"):
                msg = (
                    f"job {job_id} is {state}; only dead, retrying or scheduled jobs can be retried"
                )
                raise JobStateError(msg)
            if state == "dead":
                if unique_key is not None:
                    other = c.execute(
                        f"SELECT id FROM jobs WHERE unique_key = ? AND state IN {_UNFINISHED}",
                        (unique_key,),
                    ).fetchone()
                    if other is not None:
                        msg = (
                            f"job {job_id} is unique and its copy, job {other[0]}, is "
                            "unfinished; wait for that copy instead of retrying this one"
                        )
                        raise JobStateError(msg)
                max_attempts = attempt + attempts
            c.execute(
                "UPDATE jobs SET state = 'enqueued', run_at = ?, finished_at = NULL, "
                "max_attempts = ? WHERE id = ?",
                (now, max_attempts, job_id),
            )
        return str(queue)

    def prune(self, before: float) -> int:
        with self._write() as c:
            c.execute(
                "DELETE FROM job_errors WHERE job_id IN (SELECT id FROM jobs "
                "WHERE state = 'succeeded' AND finished_at < ?)",
                (before,),
            )
            cur = c.execute(
                "DELETE FROM jobs WHERE state = 'succeeded' AND finished_at < ?", (before,)
            )
            return cur.rowcount

    # --- reads -------------------------------------------------------------------------------

    def _jobs(self, c: sqlite3.Connection, rows: list[Any]) -> list[Job]:
        errors: dict[int, list[AttemptError]] = {}
        ids = [int(r[0]) for r in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for job_id, attempt, at, error, tb in c.execute(
                f"SELECT job_id, attempt, at, error, traceback FROM job_errors "
                f"WHERE job_id IN ({marks}) ORDER BY rowid",
                chunk,
            ):
                errors.setdefault(job_id, []).append(
                    AttemptError(attempt=attempt, at=to_datetime(at), error=error, traceback=tb)
                )
        return [_job(r, tuple(errors.get(int(r[0]), ()))) for r in rows]

    def get(self, job_id: int) -> Job | None:
        c = self.conn
        c.execute("BEGIN")
        try:
            rows = c.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchall()
            jobs = self._jobs(c, rows)
        finally:
            c.execute("COMMIT")
        return jobs[0] if jobs else None

    def list(self, state: JobState | None, queue: str | None, limit: int, offset: int) -> list[Job]:
        where: list[str] = []
        params: list[object] = []
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if queue is not None:
            where.append("queue = ?")
            params.append(queue)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        c = self.conn
        c.execute("BEGIN")
        try:
            rows = c.execute(
                f"SELECT {_COLUMNS} FROM jobs {clause} ORDER BY id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            return self._jobs(c, rows)
        finally:
            c.execute("COMMIT")

    def counts(self) -> JobCounts:
        rows = self.conn.execute(
            "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
        ).fetchall()
        return JobCounts.from_rows([(q, JobState(s), n) for q, s, n in rows])


def _job(r: Any, errors: tuple[AttemptError, ...]) -> Job:
    (job_id, name, queue, args, state, attempt, max_attempts, run_at, created_at, finished_at,
     lease_until, unique_key, schedule, fire_time) = r  # fmt: skip
    return Job(
        id=int(job_id),
        name=str(name),
        queue=str(queue),
        args=json.loads(str(args)),
        state=JobState(state),
        attempt=int(attempt),
        max_attempts=int(max_attempts),
        run_at=to_datetime(float(run_at)),
        created_at=to_datetime(float(created_at)),
        finished_at=None if finished_at is None else to_datetime(float(finished_at)),
        lease_until=None if lease_until is None else to_datetime(float(lease_until)),
        unique_key=None if unique_key is None else str(unique_key),
        schedule=None if schedule is None else str(schedule),
        fire_time=None if fire_time is None else to_datetime(float(fire_time)),
        errors=errors,
    )
