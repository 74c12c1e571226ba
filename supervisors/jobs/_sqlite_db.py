"""The synchronous SQLite implementation of the store contract.

Used on a worker thread by `SQLiteStore` and directly by `JobClient`. One connection per
instance; callers serialise access to it. Every write runs in a ``BEGIN IMMEDIATE`` transaction,
so concurrent processes on the same file take turns instead of failing half-way; claims are one
``UPDATE ... RETURNING`` statement, so two hosts never claim the same job.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from ._errors import JobNotFoundError, JobStateError, ScheduleNotFoundError, StoreError
from ._lifecycle import (
    ABANDONED,
    CANCELLED,
    INTERRUPTED,
    LEASE_EXPIRED,
    Op,
    continues,
    sources,
)
from ._model import (
    DEFAULT_MAX_ATTEMPTS,
    UNFINISHED_STATES,
    AttemptError,
    ClaimedJob,
    ContinueOn,
    Failure,
    Job,
    JobCounts,
    JobSettings,
    JobState,
    NewJob,
    Promoted,
    ScheduleSettings,
    Settled,
    Success,
    Token,
    to_datetime,
)
from ._query import JobPage, JobQuery, page_of
from ._reports import FireOutcome
from ._reports_db import Entry, ReportsDB, duplicate_reason
from ._sql import (
    PRUNE_INDEXES,
    SEARCH_QUEUES,
    SQLITE,
    in_states,
    merge_pages,
    rate_bucket,
    search_key,
    search_needs_queues,
    search_statements,
)
from ._sql import STATEMENTS as Q
from ._sqlite_open import close, connect

_INSERT_ROW = Q["insert"].removesuffix(" RETURNING id")
"""``insert`` without its ``RETURNING``: on SQLite the cursor's ``lastrowid`` is the new id."""
assert Q["insert"] != _INSERT_ROW, "the insert statement no longer ends with RETURNING id"


class _WriteTransaction:
    """`SQLiteDB._write`'s context manager (a class: it runs once per write call)."""

    __slots__ = ("_conn", "_owned")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._owned = False

    def __enter__(self) -> sqlite3.Connection:
        c = self._conn
        if not c.in_transaction:
            c.execute(SQLITE.begin_write)
            self._owned = True
        return c

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned:
            self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


class SQLiteDB(ReportsDB):
    """One connection to a job database file, checked and migrated by `connect` on open.

    The methods run the statements of `_sql` rendered for ``Q``'s dialect; `_postgres` reuses
    them on a PostgreSQL connection (another ``Q``, ``dialect``, ``mark`` and transaction).
    """

    Q = Q
    """The statements, by name."""
    dialect = SQLITE
    """The dialect ``Q`` is rendered in."""
    prune_indexes = PRUNE_INDEXES
    """``prune_ids``' index hints in ``dialect``."""
    mark = "?"
    """The positional parameter marker of the driver."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self.conn = connect(path, synchronous=synchronous)
        self._trimmed: dict[str, float] = {}
        """Queue → the rate bucket in which this connection last trimmed its claims log."""

    def close(self) -> None:
        close(self.conn)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction; inside one already open (a group commit), that one."""
        return _WriteTransaction(self.conn)

    # --- writes: the statements come from the one table in `_sql` -----------------------------

    def _insert_one(self, c: sqlite3.Connection, job: NewJob, now: float) -> tuple[int, bool]:
        """Insert ``job``; return ``(its id, True)``, or ``(the id of the job it conflicts with,
        False)`` when it has the unique key or the occurrence of an existing job."""
        if job.unique_key is not None or job.schedule is not None:
            # Look first: a conflicting INSERT would use up an id on PostgreSQL (its sequence
            # moves on even when nothing is inserted), so ids would differ between stores. The
            # INSERT's ON CONFLICT still settles a race with another writer.
            holder = self._holder(c, job)
            if holder is not None:
                return holder, False
        new = self._insert_row(c, job, now)
        if new is not None:
            return new, True
        holder = self._holder(c, job)  # lost a race with another writer
        if holder is None:  # pragma: no cover - a conflict always has a cause
            msg = f"inserting job {job.name!r} conflicted with no visible job"
            raise StoreError(msg)
        return holder, False

    def _insert_row(self, c: sqlite3.Connection, job: NewJob, now: float) -> int | None:
        """The INSERT of ``job``: its new id, or None if a uniqueness constraint refused it."""
        state = "enqueued" if job.run_at <= now else "scheduled"
        run_at, finished_at, parent_result, abandoned = job.run_at, None, None, ""
        if job.parent_id is not None:
            state, parent_result, abandoned = self._continuation(c, job)
            run_at = now
            finished_at = now if state == "cancelled" else None
        params = {
            "name": job.name,
            "queue": job.queue,
            "args": job.args,
            "state": state,
            "max_attempts": job.max_attempts,
            "run_at": run_at,
            "now": now,
            "unique_key": job.unique_key,
            "schedule": job.schedule,
            "fire_time": job.fire_time,
            "priority": job.priority,
            "concurrency_key": job.concurrency_key,
            "concurrency_limit": job.concurrency_limit,
            "finished_at": finished_at,
            "parent_id": job.parent_id,
            "continue_on": None if job.parent_id is None else job.continue_on.value,
            "parent_result": parent_result,
        }
        new: int | None
        if self.dialect is SQLITE:
            # One step, no RETURNING row to fetch: the id of the row inserted, if one was.
            cursor = c.execute(_INSERT_ROW, params)
            new = cursor.lastrowid if cursor.rowcount == 1 else None
        else:
            row = c.execute(self.Q["insert"], params).fetchone()
            new = None if row is None else int(row[0])
        if new is not None and abandoned:
            self._error(c, new, 0, now, abandoned)
        return new

    def _continuation(self, c: Any, job: NewJob) -> tuple[str, str | None, str]:
        """The state a continuation enters in (awaiting, enqueued or cancelled), its parent's
        result, and why it was abandoned (or ``""``)."""
        row = c.execute(self.Q["parent"], {"id": job.parent_id}).fetchone()
        if row is None:
            raise JobNotFoundError(job.parent_id)  # type: ignore[arg-type]
        end = JobState(row[0])
        if end in UNFINISHED_STATES:
            return "awaiting", None, ""
        if continues(job.continue_on, end):
            return "enqueued", None if row[1] is None else str(row[1]), ""
        reason = _abandoned(job.parent_id, end, job.continue_on)  # type: ignore[arg-type]
        return "cancelled", None, reason

    def _error(self, c: Any, job_id: int, attempt: int, now: float, error: str) -> None:
        c.execute(
            self.Q["error"],
            {"id": job_id, "attempt": attempt, "now": now, "error": error, "traceback": ""},
        )

    def _resolve_continuations(
        self, c: Any, ends: list[tuple[int, JobState, str | None]], now: float, *, deleted: bool = False
    ) -> frozenset[str]:
        """Resolve the awaiting continuations of the jobs that just ended (``(id, end, result)``):
        enqueue those that want that end, cancel the others and resolve theirs in turn. Returns
        the queues that received jobs. A deleted parent counts as cancelled."""
        if not ends or c.execute(self.Q["any_awaiting"]).fetchone() is None:
            return frozenset()
        ready: set[str] = set()
        todo = list(ends)
        while todo:
            parent, end, result = todo.pop()
            params = {"id": parent, "now": now, "result": result}
            ready.update(str(r[0]) for r in c.execute(self.Q[f"continue_{end.value}"], params))
            for child, on in c.execute(self.Q["abandon"], {"id": parent, "now": now}).fetchall():
                reason = _abandoned(parent, end, ContinueOn(on), deleted=deleted)
                self._error(c, int(child), 0, now, reason)
                todo.append((int(child), JobState.CANCELLED, None))
            deleted = False  # only the first generation's parent was deleted
        return frozenset(ready)

    def _holder(self, c: sqlite3.Connection, job: NewJob) -> int | None:
        """The job that ``job`` would conflict with (same unique key, or same occurrence)."""
        if job.unique_key is not None:
            row = c.execute(self.Q["unique_holder"], {"unique_key": job.unique_key}).fetchone()
            if row is not None:
                return int(row[0])
        if job.schedule is None:
            return None
        row = c.execute(
            self.Q["occurrence"], {"schedule": job.schedule, "fire_time": job.fire_time}
        ).fetchone()
        return None if row is None else int(row[0])


    def _resolve(self, c: sqlite3.Connection, job: NewJob, cache: dict[str, Any]) -> NewJob:
        """Fill the settings of a ``defined`` job from its recorded definition."""
        if job.name not in cache:
            cache[job.name] = c.execute(self.Q["definition"], {"name": job.name}).fetchone()
        row = cache[job.name]
        queue, attempts, unique = row if row is not None else ("default", DEFAULT_MAX_ATTEMPTS, 0)
        key = job.unique_key
        if key is None and unique:
            key = f"{job.name}:{job.args}"
        return attrs.evolve(
            job,
            queue=job.queue if job.queue is not None else str(queue),
            max_attempts=job.max_attempts if job.max_attempts is not None else int(attempts),
            unique_key=key,
            defined=False,
        )

    def insert(self, jobs: Sequence[NewJob], now: float) -> list[int]:
        ids: list[int] = []
        cache: dict[str, Any] = {}
        with self._write() as c:
            for job in jobs:
                if job.defined:
                    job = self._resolve(c, job, cache)
                ids.append(self._insert_one(c, job, now)[0])
        return ids

    def _claim(
        self,
        c: Any,
        queue: str,
        limit: int,
        owner: str,
        now: float,
        lease_until: float,
        tag: str | None = None,
        retry: bool = False,
    ) -> Settled:
        """Claim up to ``limit`` jobs of ``queue``: highest priority first, then oldest
        ``run_at``, then lowest id; within the queue's rate limit and the jobs' key limits.
        Says what held the claim back when it comes back short.

        ``tag`` marks the jobs claimed (``claim_tag``). With ``retry`` (the same call run again
        after its connection broke), the jobs an earlier run with this tag claimed and this
        owner still holds are its answer, if there are any: that run committed, and its jobs
        are handed out instead of being left leased until their leases expire."""
        Q = self.Q
        if retry and tag is not None:
            held = c.execute(Q["adopt"], {"claim_tag": tag, "owner": owner}).fetchall()
            if held:
                held.sort(key=_claim_order)
                return Settled(claimed=[_claimed(row) for row in held])
        asked = limit
        rate = c.execute(Q["rate_limit"], {"queue": queue, "now": now}).fetchone()
        rate_until: float | None = None
        limited = False
        if rate is not None:
            period = float(rate[1])
            bucket, width = rate_bucket(now, period)
            since = now - period - width  # the buckets that overlap (now - period, now]
            used = int(rate[2])
            if int(rate[0]) - used < limit:
                limit, limited = int(rate[0]) - used, True
            if limit <= 0:
                return Settled(rate_limited_until=self._window_frees(c, queue, since, period))
        rows = c.execute(
            Q["claim"],
            {"owner": owner, "lease_until": lease_until, "queue": queue, "limit": limit,
             "claim_tag": tag},
        ).fetchall()  # fmt: skip
        rows.sort(key=_claim_order)
        if any(r[8] is not None for r in rows):
            rows = self._within_key_limits(c, rows)
        if rate is not None and rows:
            if self._trimmed.get(queue) != bucket:  # once per bucket and connection
                c.execute(Q["rate_trim"], {"queue": queue, "since": since})
                self._trimmed[queue] = bucket
            c.execute(Q["rate_log"], {"queue": queue, "now": bucket, "n": len(rows)})
        if limited:
            rate_until = self._window_frees(c, queue, since, period)
        held = len(rows) < asked and c.execute(Q["key_held"], {"queue": queue}).fetchone() is not None
        return Settled(
            claimed=[_claimed(row) for row in rows],
            held_by_key=held,
            rate_limited_until=rate_until,
        )

    def _window_frees(self, c: Any, queue: str, since: float, period: float) -> float | None:
        """When the oldest bucket of claims in a queue's rate window leaves it."""
        oldest = c.execute(self.Q["rate_oldest"], {"queue": queue, "since": since}).fetchone()
        _, width = rate_bucket(0.0, period)
        return None if oldest[0] is None else float(oldest[0]) + width + period

    def _within_key_limits(self, c: Any, rows: list[Any]) -> list[Any]:
        """Give back, unseen, the jobs of a batch that took a key past its limit (the lowest
        in claim order go back)."""
        Q = self.Q
        keys = sorted({str(r[8]) for r in rows if r[8] is not None})
        excess: dict[str, int] = {}
        for key in keys:
            if self.dialect.lock_key:
                c.execute(Q["lock_key"], {"key": key})
            running = int(c.execute(Q["key_running"], {"key": key}).fetchone()[0])
            first = next(r for r in rows if r[8] == key)
            key_limit = int(c.execute(Q["key_limit"], {"id": first[0]}).fetchone()[0])
            excess[key] = max(0, running - key_limit)
        kept: list[Any] = []
        for r in reversed(rows):
            key = r[8]
            if key is not None and excess[key] > 0:
                excess[key] -= 1
                c.execute(Q["unclaim"], {"id": r[0]})
            else:
                kept.append(r)
        kept.reverse()
        return kept

    def claim(
        self,
        queue: str,
        limit: int,
        owner: str,
        now: float,
        lease_until: float,
        tag: str | None = None,
        retry: bool = False,
    ) -> list[ClaimedJob]:
        with self._write() as c:
            return self._claim(c, queue, limit, owner, now, lease_until, tag, retry).claimed

    def set_rate_limit(self, queue: str, limit: int | None, period: float) -> None:
        with self._write() as c:
            if limit is None:
                c.execute(self.Q["clear_rate_limit"], {"queue": queue})
            else:
                c.execute(
                    self.Q["set_rate_limit"],
                    {"queue": queue, "rate_limit": limit, "period": period},
                )

    def rate_limits(self) -> dict[str, tuple[int, float]]:
        rows = self.conn.execute(self.Q["rate_limits"]).fetchall()
        return {str(q): (int(n), float(p)) for q, n, p in rows}

    def _settle(
        self,
        c: sqlite3.Connection,
        owner: str,
        now: float,
        succeeded: Sequence[Token | Success],
        failed: Sequence[Failure],
        released: Sequence[Token],
    ) -> Settled:
        refused: list[int] = []
        ends: list[tuple[int, JobState, str | None]] = []
        succeed = self.Q["succeed"]
        plain: list[Token] = []  # without a result: recorded together (`_succeed_many`)
        for item in succeeded:
            if isinstance(item, Success):
                job_id, attempt, result = item.job_id, item.attempt, item.result
            else:
                (job_id, attempt), result = item, None
            if result is None and len(succeeded) > 1:
                plain.append((job_id, attempt))
                continue
            params = {"id": job_id, "attempt": attempt, "owner": owner, "now": now, "result": result}
            if c.execute(succeed, params).rowcount != 1:
                refused.append(job_id)
            else:
                ends.append((job_id, JobState.SUCCEEDED, result))
        if plain:
            self._succeed_many(c, owner, now, plain, refused, ends)
        for f in failed:
            fence = {"id": f.job_id, "attempt": f.attempt, "owner": owner, "now": now}
            row = c.execute(self.Q["fail"], {**fence, "retry_at": f.retry_at}).fetchone()
            if row is None:
                refused.append(f.job_id)
                continue
            c.execute(self.Q["error"], {**fence, "error": f.error, "traceback": f.traceback})
            if row[0] != "retrying":
                ends.append((f.job_id, JobState(row[0]), None))
        for job_id, attempt in released:
            fence = {"id": job_id, "attempt": attempt, "owner": owner, "now": now}
            row = c.execute(self.Q["interrupt"], fence).fetchone()
            if row is None:
                refused.append(job_id)
                continue
            text = CANCELLED if row[1] == "cancelled" else INTERRUPTED
            error = text.format(attempt=attempt)
            c.execute(self.Q["error"], {**fence, "error": error, "traceback": ""})
            if row[1] != "enqueued":
                ends.append((job_id, JobState(row[1]), None))
        return Settled(refused=frozenset(refused), ready=self._resolve_continuations(c, ends, now))

    def _succeed_many(
        self,
        c: Any,
        owner: str,
        now: float,
        succeeded: Sequence[Token],
        refused: list[int],
        ends: list[tuple[int, JobState, str | None]],
    ) -> None:
        """`Op.SUCCEED` without a result of ``succeeded`` (the same fence as ``succeed``:
        running, this attempt, this owner), a read and a write per 500 jobs; appends the
        refused ids to ``refused`` and the others' ends to ``ends``."""
        mark = self.mark
        for start in range(0, len(succeeded), 500):
            chunk = succeeded[start : start + 500]
            marks = ",".join([mark] * len(chunk))
            ids = [job_id for job_id, _ in chunk]
            held = {
                int(job_id): int(attempt)
                for job_id, attempt, lease_owner in c.execute(
                    self.Q["running_tokens"].format(ids=marks), ids
                )
                if lease_owner == owner
            }
            ok = [job_id for job_id, attempt in chunk if held.get(job_id) == attempt]
            if len(ok) < len(chunk):
                kept = set(ok)
                refused.extend(job_id for job_id in ids if job_id not in kept)
            if ok:
                statement = self.Q["succeed_ids"].format(now=mark, ids=",".join([mark] * len(ok)))
                c.execute(statement, [now, *ok])
                ends.extend((job_id, JobState.SUCCEEDED, None) for job_id in ok)

    def settle(
        self,
        owner: str,
        now: float,
        succeeded: Sequence[Token | Success],
        failed: Sequence[Failure],
        released: Sequence[Token],
    ) -> Settled:
        with self._write() as c:
            return self._settle(c, owner, now, succeeded, failed, released)

    def settle_and_claim(
        self,
        queue: str,
        limit: int,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[Token | Success],
        failed: Sequence[Failure],
        tag: str | None = None,
        retry: bool = False,
    ) -> Settled:
        """Record the outcomes, then claim (`_claim`, with ``tag`` and ``retry``), in one
        transaction."""
        with self._write() as c:
            settled = self._settle(c, owner, now, succeeded, failed, ())
            if limit <= 0:
                return settled
            got = self._claim(c, queue, limit, owner, now, lease_until, tag, retry)
        return Settled(
            refused=settled.refused,
            ready=settled.ready,
            claimed=got.claimed,
            held_by_key=got.held_by_key,
            rate_limited_until=got.rate_limited_until,
        )

    def renew(self, tokens: Sequence[Token], owner: str, lease_until: float) -> frozenset[int]:
        lost: list[int] = []
        with self._write() as c:
            for job_id, attempt in tokens:
                fence = {"id": job_id, "attempt": attempt, "owner": owner}
                if c.execute(self.Q["renew"], {**fence, "lease_until": lease_until}).rowcount != 1:
                    lost.append(job_id)
        return frozenset(lost)

    def job_names(self) -> frozenset[str]:
        return frozenset(str(r[0]) for r in self.conn.execute(self.Q["job_names"]))

    def define(self, settings: Sequence[JobSettings]) -> None:
        with self._write() as c:
            for d in settings:
                c.execute(
                    self.Q["define"],
                    {"name": d.name, "queue": d.queue, "max_attempts": d.max_attempts,
                     "is_unique": int(d.unique)},
                )  # fmt: skip

    def promote_due(self, now: float) -> Promoted:
        with self._write() as c:
            rows = c.execute(self.Q["promote"], {"now": now}).fetchall()
            nxt = c.execute(self.Q["next_due"]).fetchone()[0]
        return Promoted(queues=frozenset(r[0] for r in rows), next_due=nxt)

    def requeue_expired(self, now: float) -> frozenset[str]:
        with self._write() as c:
            rows = c.execute(self.Q["expire"], {"now": now}).fetchall()
            for job_id, _queue, attempt, _state in rows:
                self._error(c, job_id, attempt, now, LEASE_EXPIRED.format(attempt=attempt))
            ends: list[tuple[int, JobState, str | None]] = [
                (int(r[0]), JobState(r[3]), None) for r in rows if r[3] != "enqueued"
            ]
            ready = self._resolve_continuations(c, ends, now)
        return frozenset(r[1] for r in rows if r[3] == "enqueued") | ready

    def cursor(self, schedule: str) -> float | None:
        row = self.conn.execute(self.Q["cursor"], {"schedule": schedule}).fetchone()
        return None if row is None else float(row[0])

    def fire(
        self,
        schedule: str,
        expected: float | None,
        cursor: float,
        jobs: Sequence[NewJob],
        exclusive: bool,
        now: float,
        hold: bool = False,
        owner: str = "",
        notes: Mapping[float, str] | None = None,
    ) -> list[int] | None:
        notes = notes or {}
        entries: list[Entry] = []
        with self._write() as c:
            self._lock_schedule(c, schedule)
            row = c.execute(self.Q["cursor"], {"schedule": schedule}).fetchone()
            current = None if row is None else float(row[0])
            if current != expected:
                self._record(c, schedule, owner, now, self._deduplicated(c, jobs))
                return None
            paused = c.execute(self.Q["schedule_paused"], {"schedule": schedule}).fetchone()
            if paused is not None and paused[0]:
                for job in jobs:  # a paused schedule's occurrences are passed over
                    entries.append((_time(job), FireOutcome.SKIPPED, None, "the schedule is paused"))
                jobs = ()
            ids: list[int] = []
            for job in jobs:
                if exclusive:
                    held = c.execute(self.Q["schedule_open"], {"schedule": schedule}).fetchone()
                    if held is not None:
                        if hold:
                            return []  # the cursor stays: these occurrences wait for the run
                        why = f"overlap=False: job {held[0]} of this schedule is still unfinished"
                        entries.append((_time(job), FireOutcome.SKIPPED, int(held[0]), why))
                        continue
                new, inserted = self._insert_one(c, job, now)
                if inserted:
                    ids.append(new)
                    note = notes.get(_time(job))
                    why = f"enqueued as job {new}" + (f" ({note})" if note else "")
                    entries.append((_time(job), FireOutcome.FIRED, new, why))
                else:
                    entries.append((_time(job), FireOutcome.DEDUPLICATED, new, duplicate_reason(new)))
            fired = {_time(job) for job in jobs}
            for t, why in notes.items():
                if t not in fired:
                    entries.append((t, FireOutcome.MISSED, None, why))
            self._record(c, schedule, owner, now, entries)
            c.execute(self.Q["set_cursor"], {"schedule": schedule, "cursor": cursor})
        return ids

    def _lock_schedule(self, c: Any, schedule: str) -> None:
        """Serialise `fire` of ``schedule`` with other writers (the write transaction does)."""

    def retry(self, job_id: int, now: float, attempts: int, op: Op = Op.RETRY) -> str:
        """`Op.RETRY` (``retry``) or `Op.REQUEUE` (``requeue``): the same rule over different
        source states; a finished job gets ``attempts`` more attempts."""
        verb, statement = ("retried", "retry") if op is Op.RETRY else ("requeued", "requeue")
        with self._write() as c:
            row = c.execute(self.Q["probe"], {"id": job_id}).fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            state, attempt, max_attempts, queue, unique_key = row
            if JobState(state) not in sources(op):
                allowed = ", ".join(s.value for s in sources(op))
                msg = f"job {job_id} is {state}; only {allowed} jobs can be {verb}"
                raise JobStateError(msg)
            if state in ("dead", "succeeded", "cancelled"):
                if unique_key is not None:
                    other = c.execute(self.Q["unique_holder"], {"unique_key": unique_key}).fetchone()
                    if other is not None:
                        msg = (
                            f"job {job_id} is unique and its copy, job {other[0]}, is "
                            "unfinished; wait for that copy instead of retrying this one"
                        )
                        raise JobStateError(msg)
                max_attempts = attempt + attempts
            c.execute(self.Q[statement], {"id": job_id, "now": now, "max_attempts": max_attempts})
        return str(queue)

    def cancel(self, job_id: int, now: float) -> tuple[JobState, str]:
        """Cancel a job not running, or flag a running one; return its state after and queue."""
        with self._write() as c:
            row = c.execute(self.Q["probe"], {"id": job_id}).fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            state, queue = JobState(row[0]), str(row[3])
            if c.execute(self.Q["cancel"], {"id": job_id, "now": now}).rowcount == 1:
                self._resolve_continuations(c, [(job_id, JobState.CANCELLED, None)], now)
                return JobState.CANCELLED, queue
            if c.execute(self.Q["request_cancel"], {"id": job_id}).rowcount == 1:
                return JobState.RUNNING, queue
        allowed = ", ".join(s.value for s in sources(Op.CANCEL))
        msg = f"job {job_id} is {state.value}; only {allowed} jobs can be cancelled"
        raise JobStateError(msg)

    def cancelling(self, job_ids: Sequence[int]) -> frozenset[int]:
        """Those of ``job_ids`` that are running and whose cancellation was requested."""
        found: set[int] = set()
        for start in range(0, len(job_ids), 500):
            chunk = list(job_ids[start : start + 500])
            marks = ",".join([self.mark] * len(chunk))
            found.update(int(r[0]) for r in self.conn.execute(self.Q["cancelling"].format(ids=marks), chunk))
        return frozenset(found)

    def delete(self, job_id: int, now: float) -> None:
        with self._write() as c:
            row = c.execute(self.Q["probe"], {"id": job_id}).fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            if c.execute(self.Q["delete"], {"id": job_id}).rowcount != 1:
                msg = f"job {job_id} is {row[0]}; cancel it and wait for it to stop before deleting it"
                raise JobStateError(msg)
            c.execute(self.Q["delete_errors"], {"id": job_id})
            c.execute(self.Q["delete_progress"], {"id": job_id})
            c.execute(self.Q["delete_log"], {"id": job_id})
            self._resolve_continuations(c, [(job_id, JobState.CANCELLED, None)], now, deleted=True)

    def pause_queue(self, queue: str, paused: bool, now: float) -> None:
        with self._write() as c:
            c.execute(self.Q["pause_queue" if paused else "resume_queue"], {"queue": queue, "now": now})

    def paused_queues(self) -> frozenset[str]:
        return frozenset(str(r[0]) for r in self.conn.execute(self.Q["paused_queues"]))

    def define_schedules(self, schedules: Sequence[ScheduleSettings]) -> None:
        with self._write() as c:
            for d in schedules:
                c.execute(
                    self.Q["define_schedule"],
                    {"schedule": d.name, "job": d.job, "queue": d.queue, "args": d.args,
                     "max_attempts": d.max_attempts},
                )  # fmt: skip
                if d.cron:
                    c.execute(
                        self.Q["define_schedule_policy"],
                        {"schedule": d.name, "cron": d.cron, "tz": d.tz, "misfire": d.misfire,
                         "grace": d.misfire_grace, "overlap": int(d.overlap)},
                    )  # fmt: skip

    def _schedule(self, c: Any, name: str) -> Any:
        row = c.execute(self.Q["schedule_definition"], {"schedule": name}).fetchone()
        if row is None:
            known = [str(r[0]) for r in c.execute(self.Q["schedule_names"])]
            raise ScheduleNotFoundError(name, known)
        return row

    def trigger(self, name: str, now: float, owner: str = "") -> tuple[int, str]:
        """Enqueue an occurrence of schedule ``name`` now; return its id and queue."""
        with self._write() as c:
            job, queue, args, attempts, _paused = self._schedule(c, name)
            new = NewJob(
                name=str(job), queue=str(queue), args=str(args), run_at=now,
                max_attempts=int(attempts), schedule=name, fire_time=now,
            )  # fmt: skip
            job_id, inserted = self._insert_one(c, new, now)
            entry: Entry = (
                (now, FireOutcome.FIRED, job_id, f"triggered by hand: enqueued as job {job_id}")
                if inserted
                else (now, FireOutcome.DEDUPLICATED, job_id, duplicate_reason(job_id))
            )
            self._record(c, name, owner, now, [entry])
            return job_id, str(queue)

    def pause_schedule(self, name: str, paused: bool) -> None:
        with self._write() as c:
            self._schedule(c, name)
            c.execute(self.Q["pause_schedule"], {"schedule": name, "paused": int(paused)})

    def paused_schedules(self) -> frozenset[str]:
        return frozenset(str(r[0]) for r in self.conn.execute(self.Q["paused_schedules"]))

    def prune(self, state: JobState, before: float, limit: int) -> int:
        if state not in sources(Op.PRUNE):
            allowed = ", ".join(s.value for s in sources(Op.PRUNE))
            msg = f"only {allowed} jobs can be pruned (got {state.value})"
            raise ValueError(msg)
        with self._write() as c:
            find = self.Q["prune_ids"].format(
                state=in_states((state,)), index=self.prune_indexes[state]
            )
            ids = [int(r[0]) for r in c.execute(find, {"before": before, "limit": limit})]
            if ids:
                marks = ",".join([self.mark] * len(ids))
                c.execute(self.Q["prune_errors"].format(ids=marks), ids)
                self._forget_reports(c, ids, marks)
                c.execute(self.Q["prune"].format(ids=marks), ids)
        return len(ids)

    def reclaim(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the file system (one short write); return
        how many free pages remain. A no-op on a file made without ``auto_vacuum``."""
        c = self.conn
        if int(c.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:  # not INCREMENTAL
            return 0
        with self._write():
            c.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
        return int(c.execute("PRAGMA freelist_count").fetchone()[0])

    # --- reads -------------------------------------------------------------------------------

    def _jobs(self, c: sqlite3.Connection, rows: list[Any]) -> list[Job]:
        errors: dict[int, list[AttemptError]] = {}
        children: dict[int, list[int]] = {}
        ids = [int(r[0]) for r in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join([self.mark] * len(chunk))
            for parent, child in c.execute(self.Q["continuations_of"].format(ids=marks), chunk):
                children.setdefault(int(parent), []).append(int(child))
            for job_id, attempt, at, error, tb in c.execute(
                self.Q["errors_of"].format(ids=marks), chunk
            ):
                errors.setdefault(job_id, []).append(
                    AttemptError(attempt=attempt, at=to_datetime(at), error=error, traceback=tb)
                )
        return [
            _job(r, tuple(errors.get(int(r[0]), ())), tuple(children.get(int(r[0]), ())))
            for r in rows
        ]

    def get(self, job_id: int) -> Job | None:
        c = self.conn
        c.execute("BEGIN")
        try:
            jobs = self._jobs(c, c.execute(self.Q["get"], {"id": job_id}).fetchall())
        finally:
            c.execute("COMMIT")
        return jobs[0] if jobs else None

    def list(self, state: JobState | None, queue: str | None, limit: int, offset: int) -> list[Job]:
        where: list[str] = []
        params: dict[str, object] = {"limit": limit, "offset": offset}
        if state is not None:
            where.append(f"state = {self.dialect.param('state')}")
            params["state"] = state.value
        if queue is not None:
            where.append(f"queue = {self.dialect.param('queue')}")
            params["queue"] = queue
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        c = self.conn
        c.execute("BEGIN")
        try:
            return self._jobs(c, c.execute(self.Q["list"].format(where=clause), params).fetchall())
        finally:
            c.execute("COMMIT")

    def search(self, query: JobQuery) -> JobPage:
        """One page of ``query``'s answer (see `JobQuery`), read in one transaction."""
        c = self.conn
        c.execute("BEGIN")
        try:
            queues: list[str] = []
            if search_needs_queues(query):
                queues = [str(r[0]) for r in c.execute(SEARCH_QUEUES).fetchall()]
            statements = search_statements(self.dialect, query, queues)
            pages = [c.execute(sql, params).fetchall() for sql, params in statements]
            rows = merge_pages(query, pages)
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            cursor = query.cursor
            if cursor is not None and not cursor.forward:
                rows.reverse()  # read oldest first, from the cursor up
            jobs = self._jobs(c, rows)
        finally:
            c.execute("COMMIT")
        return page_of(query, jobs, more, [search_key(r) for r in rows])

    def counts(self) -> JobCounts:
        rows = self.conn.execute(self.Q["counts"]).fetchall()
        return JobCounts.from_rows([(q, JobState(s), n) for q, s, n in rows])

    def has_work(self, queues: Collection[str]) -> bool:
        statement = self.Q["has_work"]
        return any(self.conn.execute(statement, {"queue": q}).fetchone() is not None for q in queues)


def _time(job: NewJob) -> float:
    """The fire time of an occurrence job (its run time if it has none)."""
    return job.fire_time if job.fire_time is not None else job.run_at


_ENDED = {
    JobState.SUCCEEDED: "succeeded",
    JobState.DEAD: "is dead",
    JobState.CANCELLED: "was cancelled",
}


def _abandoned(parent: int, end: JobState, on: ContinueOn, *, deleted: bool = False) -> str:
    ended = "was deleted" if deleted else _ENDED[end]
    return ABANDONED.format(parent=parent, ended=ended, on=on.value)


def _claim_order(row: Any) -> tuple[int, float, int]:
    """The order claims hand jobs out in, of a row of ``claim`` or ``adopt``: highest priority
    first, then oldest ``run_at``, then lowest id (the ready index's order)."""
    return (-row[6], row[7], row[0])


def _claimed(row: Any) -> ClaimedJob:
    job = ClaimedJob(*row[:6])
    parent_id, parent_result = row[9], row[10]
    if parent_id is None:
        return job
    result = None if parent_result is None else json.loads(str(parent_result))
    return attrs.evolve(job, parent_id=int(parent_id), parent_result=result)


def _job(r: Any, errors: tuple[AttemptError, ...], continuations: tuple[int, ...] = ()) -> Job:
    (job_id, name, queue, args, state, attempt, max_attempts, run_at, created_at, finished_at,
     lease_until, unique_key, schedule, fire_time, cancel_requested, priority, concurrency_key,
     concurrency_limit, result, parent_id, continue_on) = r  # fmt: skip
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
        cancel_requested=bool(cancel_requested),
        priority=int(priority),
        concurrency_key=None if concurrency_key is None else str(concurrency_key),
        concurrency_limit=None if concurrency_limit is None else int(concurrency_limit),
        result=None if result is None else json.loads(str(result)),
        parent_id=None if parent_id is None else int(parent_id),
        continue_on=None if continue_on is None else ContinueOn(continue_on),
        continuations=continuations,
    )
