"""`ReportsDB`: the store operations on attempts' progress and log and on schedules' fire
ledger, mixed into `SQLiteDB` (so `PostgresDB` runs them too, on its own dialect)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from ._cron import Cron
from ._errors import CronError, JobNotFoundError
from ._model import JobState, NewJob, to_datetime
from ._recurring import Misfire, catch_up_policy, dst_policy, overlap_policy
from ._reports import (
    AttemptProgress,
    FireOutcome,
    LedgerEntry,
    LogLine,
    ProgressReport,
    ScheduleInfo,
)

Entry = tuple[float, FireOutcome, int | None, str]
"""A ledger entry to write: ``(fire_time, outcome, job_id, reason)``."""


class ReportsDB:
    """The progress, log and ledger methods of `SQLiteDB` (see `Store` for their contract)."""

    Q: Mapping[str, str]
    conn: sqlite3.Connection

    def _write(self) -> Any: ...  # provided by SQLiteDB

    # --- progress and log ----------------------------------------------------------------------

    def report(self, reports: Sequence[ProgressReport], owner: str, now: float) -> frozenset[int]:
        Q = self.Q
        refused: list[int] = []
        with self._write() as c:
            for r in reports:
                fence = {"id": r.job_id, "attempt": r.attempt, "owner": owner}
                if c.execute(Q["fenced"], fence).fetchone() is None:
                    refused.append(r.job_id)
                    continue
                c.execute(
                    Q["report_progress"],
                    {"id": r.job_id, "attempt": r.attempt, "version": r.version,
                     "fraction": r.fraction, "message": r.message, "now": now,
                     "dropped": r.dropped},
                )  # fmt: skip
                for seq, at, text in r.lines:
                    c.execute(
                        Q["report_line"],
                        {"id": r.job_id, "attempt": r.attempt, "seq": seq, "at": at, "line": text},
                    )
        return frozenset(refused)

    def progress(self, job_id: int) -> list[AttemptProgress]:
        Q = self.Q
        c = self.conn
        c.execute("BEGIN")
        try:
            if c.execute(Q["job_exists"], {"id": job_id}).fetchone() is None:
                raise JobNotFoundError(job_id)
            rows = c.execute(Q["progress_of"], {"id": job_id}).fetchall()
            lines: dict[int, list[LogLine]] = {}
            for attempt, at, text in c.execute(Q["log_of"], {"id": job_id}).fetchall():
                lines.setdefault(int(attempt), []).append(LogLine(at=to_datetime(at), text=text))
        finally:
            c.execute("COMMIT")
        return [
            AttemptProgress(
                attempt=int(attempt),
                fraction=None if fraction is None else float(fraction),
                message=str(message),
                updated_at=to_datetime(float(updated_at)),
                lines=tuple(lines.get(int(attempt), ())),
                dropped=int(dropped),
            )
            for attempt, fraction, message, updated_at, dropped in rows
        ]

    def _forget_reports(self, c: Any, ids: Sequence[int], marks: str) -> None:
        """Delete the progress and log of jobs ``ids`` (``marks``: their placeholders)."""
        c.execute(self.Q["prune_progress"].format(ids=marks), ids)
        c.execute(self.Q["prune_log"].format(ids=marks), ids)

    # --- the fire ledger -----------------------------------------------------------------------

    def _record(self, c: Any, schedule: str, owner: str, now: float, entries: list[Entry]) -> None:
        """Write ``entries`` (oldest fire time first) to ``schedule``'s ledger."""
        entries.sort(key=lambda e: e[0])
        for fire_time, outcome, job_id, reason in entries:
            c.execute(
                self.Q["ledger_add"],
                {"schedule": schedule, "fire_time": fire_time, "outcome": outcome.value,
                 "job_id": job_id, "reason": reason, "now": now, "owner": owner},
            )  # fmt: skip

    def _deduplicated(self, c: Any, jobs: Sequence[NewJob]) -> list[Entry]:
        """The occurrences of ``jobs`` that already have a job: another host fired them."""
        out: list[Entry] = []
        for job in jobs:
            row = c.execute(
                self.Q["occurrence"], {"schedule": job.schedule, "fire_time": job.fire_time}
            ).fetchone()
            if row is not None and job.fire_time is not None:
                out.append((job.fire_time, FireOutcome.DEDUPLICATED, int(row[0]), duplicate_reason(int(row[0]))))
        return out

    def ledger(self, schedule: str, limit: int) -> list[LedgerEntry]:
        Q = self.Q
        rows = self.conn.execute(Q["ledger_of"], {"schedule": schedule, "limit": limit}).fetchall()
        if not rows:
            self._schedule(self.conn, schedule)  # raises ScheduleNotFoundError if not recorded
        return [_entry(r) for r in rows]

    def trim_ledger(self, keep: int) -> int:
        """Keep the newest ``keep`` entries of each schedule's ledger; return how many went."""
        Q = self.Q
        removed = 0
        with self._write() as c:
            for (schedule,) in c.execute(Q["ledger_schedules"]).fetchall():
                removed += c.execute(Q["ledger_trim"], {"schedule": schedule, "keep": keep}).rowcount
        return removed

    def schedules(self, now: float) -> list[ScheduleInfo]:
        Q = self.Q
        c = self.conn
        c.execute("BEGIN")
        try:
            out = []
            for row in c.execute(Q["schedule_rows"]).fetchall():
                name = str(row[0])
                last = c.execute(Q["ledger_last"], {"schedule": name, "outcome": None}).fetchone()
                run = c.execute(
                    Q["ledger_last"], {"schedule": name, "outcome": FireOutcome.FIRED.value}
                ).fetchone()
                state = None
                if run is not None and run[3] is not None:
                    found = c.execute(Q["job_state"], {"id": run[3]}).fetchone()
                    state = None if found is None else JobState(found[0])
                out.append(_info(row, last, run, state, now))
        finally:
            c.execute("COMMIT")
        return out

    def _schedule(self, c: Any, name: str) -> Any:
        raise NotImplementedError  # provided by SQLiteDB


def duplicate_reason(job_id: int) -> str:
    return (
        f"already enqueued as job {job_id} (by another host, or an earlier pass): the unique key "
        "per schedule and fire time keeps one"
    )


def _entry(r: Any) -> LedgerEntry:
    schedule, fire_time, outcome, job_id, reason, at, host = r
    return LedgerEntry(
        schedule=str(schedule),
        fire_time=to_datetime(float(fire_time)),
        outcome=FireOutcome(outcome),
        job_id=None if job_id is None else int(job_id),
        reason=str(reason),
        recorded_at=to_datetime(float(at)),
        host=str(host),
    )


def _info(row: Any, last: Any, run: Any, state: JobState | None, now: float) -> ScheduleInfo:
    name, job, queue, paused, cron, tz, misfire, grace, overlap, cursor = row
    policy = Misfire(misfire) if misfire in {m.value for m in Misfire} else Misfire.RUN_ONCE
    next_run = None
    if cron:
        try:
            compiled = Cron(str(cron), str(tz))
        except CronError:
            compiled = None
        if compiled is not None:
            after = now if cursor is None else max(now, float(cursor))
            nxt = compiled.next_after(after)
            next_run = None if nxt is None else to_datetime(nxt)
    return ScheduleInfo(
        name=name,
        job=str(job),
        queue=str(queue),
        cron=str(cron),
        tz=str(tz),
        paused=bool(paused),
        overlap_policy=overlap_policy(overlap=bool(overlap), misfire=policy),
        catch_up_policy=catch_up_policy(misfire=policy, grace=float(grace)),
        dst_policy=dst_policy(str(tz)),
        cursor=None if cursor is None else to_datetime(float(cursor)),
        next_run=next_run,
        last=None if last is None else _entry(last),
        last_run=None if run is None else _entry(run),
        last_run_state=state,
    )
