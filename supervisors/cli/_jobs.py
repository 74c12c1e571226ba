"""``supervisors jobs ...``: inspect and operate jobs in a store, from another process."""

from __future__ import annotations

import argparse
import builtins
import difflib
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import cattrs

from ._common import CommandError, parse_store_url, redact

if TYPE_CHECKING:
    from ..jobs import (
        AttemptProgress,
        ContinueOn,
        HostInfo,
        Job,
        JobCounts,
        JobPage,
        JobQuery,
        JobState,
        LedgerEntry,
        PostgresStore,
        RateLimit,
        ScheduleInfo,
    )

T = TypeVar("T")
N = TypeVar("N", int, float)

PAGE = 500
"""Jobs read per page by the bulk commands."""


class JobsBackend(Protocol):
    """What the job commands need of a store (`JobClient` for SQLite; `PostgresStore` adapted)."""

    def get(self, job_id: int) -> Job: ...
    def list(self, *, state: JobState | None = None, queue: str | None = None, limit: int = 100,
             offset: int = 0) -> list[Job]: ...
    def search(self, query: JobQuery | None = None) -> JobPage: ...
    def counts(self) -> JobCounts: ...
    def retry(self, job_id: int, *, attempts: int = 1) -> None: ...
    def enqueue(self, job: str, args: object = None, *, queue: str | None = None,
                unique_key: str | None = None, max_attempts: int | None = None, priority: int = 0,
                concurrency_key: str | None = None, concurrency_limit: int = 1) -> int: ...
    def continue_with(self, parent_id: int, job: str, args: object = None, *, on: ContinueOn = ...,
                      queue: str | None = None, unique_key: str | None = None,
                      max_attempts: int | None = None, priority: int = 0,
                      concurrency_key: str | None = None, concurrency_limit: int = 1) -> int: ...
    def requeue(self, job_id: int, *, attempts: int = 1) -> None: ...
    def cancel(self, job_id: int) -> JobState: ...
    def delete(self, job_id: int) -> None: ...
    def pause_queue(self, queue: str) -> None: ...
    def resume_queue(self, queue: str) -> None: ...
    def paused_queues(self) -> frozenset[str]: ...
    def set_rate_limit(self, queue: str, limit: RateLimit | None) -> None: ...
    def rate_limits(self) -> dict[str, RateLimit]: ...
    def job_names(self) -> frozenset[str]: ...
    def trigger(self, schedule: str) -> int: ...
    def pause_schedule(self, schedule: str) -> None: ...
    def resume_schedule(self, schedule: str) -> None: ...
    def paused_schedules(self) -> frozenset[str]: ...
    def progress(self, job_id: int) -> tuple[AttemptProgress, ...]: ...
    def ledger(self, schedule: str, *, limit: int = 100) -> tuple[LedgerEntry, ...]: ...
    def schedules(self) -> tuple[ScheduleInfo, ...]: ...
    def hosts(self) -> builtins.list[HostInfo] | None: ...
    def close(self) -> None: ...


class _Postgres:
    """`JobsBackend` over a `PostgresStore` (each call in its own Trio run; migrations not run)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        import trio

        async def main() -> T:
            try:
                return await fn()
            finally:
                await self.store.aclose()

        return trio.run(main)

    def get(self, job_id: int) -> Job:
        from ..jobs import JobNotFoundError

        job = self._call(lambda: self.store.get(job_id))
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def list(self, *, state: JobState | None = None, queue: str | None = None, limit: int = 100,
             offset: int = 0) -> list[Job]:
        return self._call(lambda: self.store.list(state=state, queue=queue, limit=limit, offset=offset))

    def search(self, query: JobQuery | None = None) -> JobPage:
        from ..jobs import JobQuery

        return self._call(lambda: self.store.search(query if query is not None else JobQuery()))

    def counts(self) -> JobCounts:
        return self._call(self.store.counts)

    def retry(self, job_id: int, *, attempts: int = 1) -> None:
        self._call(lambda: self.store.retry(job_id, now=time.time(), attempts=attempts))

    def enqueue(self, job: str, args: object = None, *, queue: str | None = None,
                unique_key: str | None = None, max_attempts: int | None = None, priority: int = 0,
                concurrency_key: str | None = None, concurrency_limit: int = 1) -> int:
        from ..jobs import JobRequest

        request = JobRequest(job=job, args=args, queue=queue, unique_key=unique_key, max_attempts=max_attempts,
                             priority=priority, concurrency_key=concurrency_key,
                             concurrency_limit=concurrency_limit)  # fmt: skip
        with self.store.connect() as conn:
            return self.store.enqueue_in(conn, [request])[0]

    def continue_with(self, parent_id: int, job: str, args: object = None, *, on: ContinueOn | None = None,
                      queue: str | None = None, unique_key: str | None = None,
                      max_attempts: int | None = None, priority: int = 0,
                      concurrency_key: str | None = None, concurrency_limit: int = 1) -> int:
        from ..jobs import ContinueOn, JobRequest

        request = JobRequest(job=job, args=args, queue=queue, unique_key=unique_key, max_attempts=max_attempts,
                             priority=priority, concurrency_key=concurrency_key,
                             concurrency_limit=concurrency_limit,
                             parent=parent_id, on=on if on is not None else ContinueOn.SUCCESS)  # fmt: skip
        with self.store.connect() as conn:
            return self.store.enqueue_in(conn, [request])[0]

    def requeue(self, job_id: int, *, attempts: int = 1) -> None:
        self._call(lambda: self.store.requeue(job_id, now=time.time(), attempts=attempts))

    def cancel(self, job_id: int) -> JobState:
        return self._call(lambda: self.store.cancel(job_id, now=time.time()))[0]

    def delete(self, job_id: int) -> None:
        self._call(lambda: self.store.delete(job_id, now=time.time()))

    def pause_queue(self, queue: str) -> None:
        self._call(lambda: self.store.pause_queue(queue, paused=True, now=time.time()))

    def resume_queue(self, queue: str) -> None:
        self._call(lambda: self.store.pause_queue(queue, paused=False, now=time.time()))

    def paused_queues(self) -> frozenset[str]:
        return self._call(self.store.paused_queues)

    def set_rate_limit(self, queue: str, limit: RateLimit | None) -> None:
        from ..jobs._model import rate_limit_row

        n, period = rate_limit_row(limit)
        self._call(lambda: self.store.set_rate_limit(queue, limit=n, period=period))

    def rate_limits(self) -> dict[str, RateLimit]:
        from ..jobs._model import rate_limits_of

        return rate_limits_of(self._call(self.store.rate_limits))

    def job_names(self) -> frozenset[str]:
        return self._call(self.store.job_names)

    def trigger(self, schedule: str) -> int:
        return self._call(lambda: self.store.trigger(schedule, now=time.time()))[0]

    def pause_schedule(self, schedule: str) -> None:
        self._call(lambda: self.store.pause_schedule(schedule, paused=True))

    def resume_schedule(self, schedule: str) -> None:
        self._call(lambda: self.store.pause_schedule(schedule, paused=False))

    def paused_schedules(self) -> frozenset[str]:
        return self._call(self.store.paused_schedules)

    def progress(self, job_id: int) -> tuple[AttemptProgress, ...]:
        return tuple(self._call(lambda: self.store.progress(job_id)))

    def ledger(self, schedule: str, *, limit: int = 100) -> tuple[LedgerEntry, ...]:
        return tuple(self._call(lambda: self.store.ledger(schedule, limit=limit)))

    def schedules(self) -> tuple[ScheduleInfo, ...]:
        return tuple(self._call(lambda: self.store.schedules(now=time.time())))

    def hosts(self) -> builtins.list[HostInfo] | None:
        return self._call(self.store.hosts)

    def close(self) -> None:
        pass


def open_backend(url: str) -> JobsBackend:
    """The job commands' handle on the store at ``url``; refuses a SQLite file that does not exist."""
    parsed = parse_store_url(url)
    if parsed.kind == "sqlite":
        from ..jobs import JobClient

        assert parsed.path is not None
        if not parsed.path.is_file():
            msg = f"no job store at {str(parsed.path)!r} (from {url!r}): check the path, or start the host once"
            if not parsed.path.is_absolute():
                msg += f" (the path is relative to {os.getcwd()!r}; an absolute one takes four slashes: 'sqlite:////{parsed.path}')"
            raise CommandError(msg)
        return JobClient(parsed.path)
    from ..jobs import PostgresStore

    # register_host=False: a command is not a host of the cluster (the hosts page lists hosts)
    if parsed.schema is not None:
        store = PostgresStore(parsed.url, schema=parsed.schema, migrate=False, register_host=False)
    else:
        store = PostgresStore(parsed.url, migrate=False, register_host=False)
    # The store retries a lost connection with backoff, as a host should; a command should not
    # wait: try one connection first (libpq's connect_timeout bounds it).
    try:
        store.connect().close()
    except ImportError as exc:
        msg = f"a PostgreSQL store needs the postgres extra ({exc}): pip install 'trio-supervisors[postgres]'"
        raise CommandError(msg) from exc
    except Exception as exc:
        reason = " ".join(str(exc).split())
        msg = f"cannot reach the PostgreSQL store at {redact(url)!r}: {reason}"
        raise CommandError(msg) from exc
    return _Postgres(store)


def when(dt: datetime | None) -> str:
    """A UTC time for people: ``2026-12-02 05:20:01Z`` (``-`` for none)."""
    return "-" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%SZ")


def to_json(value: object) -> Any:
    """``value`` (attrs records, enums, datetimes) as JSON-ready data."""
    converter = cattrs.Converter()
    converter.register_unstructure_hook(datetime, lambda dt: dt.isoformat())
    return converter.unstructure(value)


def _job_json(job: Job) -> Any:
    return to_json(job)


def _state(value: str | None) -> JobState | None:
    from ..jobs import JobState

    if value is None:
        return None
    try:
        return JobState(value.lower())
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        msg = f"unknown job state {value!r}: expected one of {names}"
        raise CommandError(msg) from None


_OPTIONS = {"states": "--state", "args_equal": "--args-match", "args_match": "--args-match",
            "args_contains": "--args-contains"}


def _search(options: argparse.Namespace) -> JobQuery:
    """The `JobQuery` of ``jobs list``'s options; times without an offset are UTC."""
    from ..jobs import JobQuery, JobQueryError

    try:
        return JobQuery.from_text(
            states=options.state or (), queue=options.queue, name=options.name, since=options.since,
            until=options.until, args_contains=options.args_contains, args_match=options.args_match or (),
            limit=options.limit, cursor=options.cursor, zone=UTC,
        )  # fmt: skip
    except JobQueryError as exc:
        option = _OPTIONS.get(exc.field, "--" + exc.field.replace("_", "-"))
        raise CommandError(f"{option}: {exc.reason}") from None


def list_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    page = backend.search(_search(options))
    jobs = page.jobs
    if options.json:
        print(json.dumps({"items": [_job_json(j) for j in jobs], "next": page.next, "previous": page.previous},
                         indent=2))
        return 0
    rows = [("ID", "STATE", "QUEUE", "NAME", "ATTEMPT", "CREATED", "RUN AT", "LAST ERROR")]
    for j in jobs:
        error = j.errors[-1].error if j.errors else ""
        rows.append((str(j.id), j.state.value, j.queue, j.name, f"{j.attempt}/{j.max_attempts}",
                     when(j.created_at), when(j.run_at), error[:60]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1])
    if page.next is not None:
        print(f"older jobs: --cursor {page.next}")
    if page.previous is not None:
        print(f"newer jobs: --cursor {page.previous}")
    counts = backend.counts()
    summary = ", ".join(f"{n} {s.value}" for s, n in counts.by_state.items() if n)
    print(f"{len(jobs)} shown; in the store: {counts.total} ({summary or 'none'})")
    return 0


def show_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    job = backend.get(options.id)
    progress = backend.progress(options.id)
    if options.json:
        print(json.dumps({**_job_json(job), "progress": to_json(progress)}, indent=2))
        return 0
    cancelling = ", cancellation requested" if job.cancel_requested else ""
    print(f"job {job.id}: {job.name} ({job.state.value}{cancelling})")
    fields = [
        ("queue", job.queue), ("args", json.dumps(job.args)), ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("run at", when(job.run_at)), ("created", when(job.created_at)), ("finished", when(job.finished_at)),
        ("lease until", when(job.lease_until)), ("unique key", job.unique_key or "-"),
        ("schedule", job.schedule or "-"), ("fire time", when(job.fire_time)), ("priority", str(job.priority)),
    ]
    if job.concurrency_key is not None:
        fields.append(("concurrency", f"key {job.concurrency_key!r}, at most {job.concurrency_limit} running at once"))
    if job.parent_id is not None:
        on = job.continue_on.value if job.continue_on is not None else "-"
        fields.append(("continues", f"job {job.parent_id} (on {on})"))
    if job.continuations:
        fields.append(("followed by", ", ".join(f"job {c}" for c in job.continuations)))
    if job.state.value == "succeeded":
        fields.append(("result", json.dumps(job.result)))
    for name, value in fields:
        print(f"  {name + ':':<12} {value}")
    for error in job.errors:
        print(f"attempt {error.attempt} failed at {when(error.at)}: {error.error}")
        if error.traceback:
            print("    " + error.traceback.rstrip().replace("\n", "\n    "))
    for report in progress:
        done = "-" if report.fraction is None else f"{report.fraction:.0%}"
        message = f" {report.message}" if report.message else ""
        print(f"attempt {report.attempt} progress {done}{message} (at {when(report.updated_at)})")
        for line in report.lines:
            print(f"    {when(line.at)}  {line.text}")
        if report.dropped:
            print(f"    ({report.dropped} more lines were dropped: over the cap of lines per attempt)")
    return 0


class Progress:
    """``verb done/total`` on stderr: rewritten in place on a terminal, else a line per `every`."""

    def __init__(self, verb: str, total: int, every: int = 100) -> None:
        self.verb, self.total, self.every, self.done = verb, total, every, 0
        self.tty = sys.stderr.isatty()

    def step(self) -> None:
        self.done += 1
        if self.tty:
            print(f"\r{self.verb} {self.done}/{self.total}", end="", file=sys.stderr, flush=True)
        elif self.done % self.every == 0 and self.done != self.total:
            print(f"{self.verb} {self.done}/{self.total}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _matching(backend: JobsBackend, state: JobState, queue: str | None) -> Iterator[int]:
    """The ids of every job in ``state`` (and ``queue``) now, read page by page."""
    last = -1
    offset = 0
    while True:
        page = backend.list(state=state, queue=queue, limit=PAGE, offset=offset)
        for job in page:
            if job.id > last:
                last = job.id
                yield job.id
        if len(page) < PAGE:
            return
        offset += PAGE


def _act(options: argparse.Namespace, backend: JobsBackend, verb: str, past: str, done: str,
         act: Callable[[int], object], *, default_state: str | None = None) -> int:
    """Apply ``act`` to the jobs given by id, or to every job of ``--state`` (and ``--queue``)
    with progress (``<past> n/total``); ``done`` says what became of a job, per job or in the summary."""
    state = options.state if options.state is not None else default_state
    if options.ids and state is not None:
        msg = f"give job ids or {'--all-dead' if default_state else '--state'}, not both"
        raise CommandError(msg)
    if not options.ids and state is None:
        msg = f"give the ids of the jobs to {verb}, or --state STATE to {verb} every job in a state"
        raise CommandError(msg)
    if options.ids:
        for job_id in options.ids:
            act(job_id)
            print(f"job {job_id} {done}")
        return 0
    chosen = _state(state)
    assert chosen is not None
    ids = list(_matching(backend, chosen, options.queue))
    progress = Progress(past, len(ids))
    for job_id in ids:
        act(job_id)
        progress.step()
    progress.finish()
    where = f" in queue {options.queue!r}" if options.queue else ""
    print(f"{len(ids)} {chosen.value} job(s){where} {done}")
    return 0


def retry_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    return _act(options, backend, "retry", "retried", "enqueued again",
                lambda job_id: backend.retry(job_id, attempts=options.attempts),
                default_state="dead" if options.all_dead else None)


def requeue_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    return _act(options, backend, "requeue", "requeued", "enqueued again",
                lambda job_id: backend.requeue(job_id, attempts=options.attempts))


def cancel_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    from ..jobs import JobState

    requested: list[int] = []

    def cancel(job_id: int) -> None:
        if backend.cancel(job_id) is JobState.RUNNING:
            requested.append(job_id)

    code = _act(options, backend, "cancel", "cancelled", "cancelled", cancel)
    if requested:
        ids = ", ".join(map(str, requested))
        print(f"running, so cancelled by their host at its next heartbeat: {ids}")
    return code


def delete_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    return _act(options, backend, "delete", "deleted", "deleted", backend.delete)


def enqueue_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    try:
        args = None if options.args is None else json.loads(options.args)
    except json.JSONDecodeError as exc:
        msg = f"--args is not valid JSON ({exc}): e.g. --args '{{\"email\": \"a@example.com\"}}'"
        raise CommandError(msg) from None
    if options.on is not None and options.after is None:
        raise CommandError("--on needs --after ID (the job this one continues)")
    if not options.force:
        _check_job_name(backend, options.name)
    if options.concurrency_limit is not None and options.concurrency_key is None:
        raise CommandError("--concurrency-limit needs --concurrency-key KEY (the jobs it limits)")
    settings: dict[str, Any] = {
        "queue": options.queue, "unique_key": options.unique_key, "max_attempts": options.max_attempts,
        "priority": options.priority, "concurrency_key": options.concurrency_key,
        "concurrency_limit": 1 if options.concurrency_limit is None else options.concurrency_limit,
    }
    try:
        if options.after is None:
            job_id = backend.enqueue(options.name, args, **settings)
        else:
            from ..jobs import ContinueOn

            job_id = backend.continue_with(
                options.after, options.name, args, on=ContinueOn(options.on or "success"), **settings
            )
    except ValueError as exc:  # a setting out of range, named by the message
        raise CommandError(str(exc)) from None
    print(job_id)
    return 0


def _check_job_name(backend: JobsBackend, name: str) -> None:
    """Refuse a name that no host on the store has registered (a typo would otherwise make a
    job that dies when a host claims it); say so when no host has recorded its jobs yet."""
    known = backend.job_names()
    if not known:
        print(f"note: no host has recorded its jobs in this store yet, so {name!r} was not checked",
              file=sys.stderr)
        return
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    names = ", ".join(sorted(known)) if len(known) <= 20 else f"{len(known)} names"
    msg = (f"no host on this store has registered a job named {name!r} (registered: {names}); "
           f"{hint}pass --force to enqueue it anyway (e.g. before the hosts that have it are deployed)")
    raise CommandError(msg)


def _with_backend(fn: Callable[[argparse.Namespace, JobsBackend], int]) -> Callable[[argparse.Namespace], int]:
    def handler(options: argparse.Namespace) -> int:
        backend = open_backend(options.store)
        try:
            return fn(options, backend)
        finally:
            backend.close()

    return handler


def _argument(parse: Callable[[str], N], ok: Callable[[N], bool], expected: str) -> Callable[[str], N]:
    """An argparse ``type``: ``parse`` the text, keep what ``ok`` accepts; else a usage error
    saying what was ``expected``."""

    def convert(text: str) -> N:
        try:
            value = parse(text)
        except ValueError:
            ok_value = False
        else:
            ok_value = ok(value)
        if not ok_value:
            msg = f"expected {expected} (got {text!r})"
            raise argparse.ArgumentTypeError(msg)
        return value

    return convert


_attempts = _argument(int, lambda n: n >= 1, "a whole number >= 1")
"""``--max-attempts``, ``--concurrency-limit`` and a rate limit's N."""
_seconds = _argument(float, lambda s: 0 < s < math.inf, "a number of seconds > 0, such as 60 or 0.5")
"""``--per``."""
_whole = _argument(int, lambda _: True, "a whole number such as 10 or -5")
"""``--priority`` (its range is checked with the job's other settings)."""


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="URL", required=True,
                       help="the job store: sqlite:///PATH or postgresql://USER@HOST/DB[?schema=NAME]")
    jobs = commands.add_parser("jobs", help="list, show, retry, requeue, cancel, delete and enqueue jobs",
                               description="Operate the jobs in a store directly (no host needed).")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")

    ls = sub.add_parser("list", parents=[common, store], help="search jobs, newest first, a page at a time",
                        description="Search the jobs of a store, newest created first. Every filter given must "
                        "hold. Page with --cursor: the command prints the cursors of the older and newer pages.")
    ls.add_argument("--state", action="append", metavar="STATE",
                    help="awaiting, scheduled, enqueued, running, succeeded, retrying, dead or cancelled; several "
                    "separated by commas or the option repeated")
    ls.add_argument("--queue", help="the queue, exactly")
    ls.add_argument("--name", help="the job name, exactly")
    ls.add_argument("--since", metavar="TIME",
                    help="created at or after TIME (ISO 8601; UTC unless an offset is given)")
    ls.add_argument("--until", metavar="TIME", help="created before TIME (as --since)")
    ls.add_argument("--args-match", action="append", metavar="PATH=VALUE",
                    help="the value at the dotted PATH of the arguments equals VALUE (JSON if it parses, else "
                    "a string), e.g. user_id=42; repeatable")
    ls.add_argument("--args-contains", metavar="TEXT", help="the arguments' JSON text contains TEXT (compact: "
                    '\'"user_id":42\')')
    ls.add_argument("--limit", type=int, default=50, help="jobs per page, 1 to 1000 (default 50)")
    ls.add_argument("--cursor", help="a cursor printed by an earlier page")
    ls.add_argument("--json", action="store_true", help='print {"items": [jobs], "next": cursor, "previous": cursor}')
    ls.set_defaults(handler=_with_backend(list_command))

    show = sub.add_parser("show", parents=[common, store],
                          help="one job with every failed attempt, and each attempt's progress and log")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="print the job as JSON")
    show.set_defaults(handler=_with_backend(show_command))

    bulk = argparse.ArgumentParser(add_help=False)
    bulk.add_argument("ids", type=int, nargs="*", metavar="ID")
    bulk.add_argument("--state", help="instead of ids: every job in this state (read 500 at a time), with progress")
    bulk.add_argument("--queue", help="with --state: only this queue")

    retry = sub.add_parser("retry", parents=[common, store, bulk],
                           help="enqueue dead, retrying or scheduled jobs now")
    retry.add_argument("--all-dead", action="store_true", help="the same as --state dead")
    retry.add_argument("--attempts", type=int, default=1, help="more attempts for a dead job (default 1)")
    retry.set_defaults(handler=_with_backend(retry_command))

    requeue = sub.add_parser("requeue", parents=[common, store, bulk],
                             help="enqueue finished jobs again (succeeded, dead or cancelled) or others now")
    requeue.add_argument("--attempts", type=int, default=1, help="more attempts for a finished job (default 1)")
    requeue.set_defaults(handler=_with_backend(requeue_command))

    cancel = sub.add_parser("cancel", parents=[common, store, bulk],
                            help="cancel unfinished jobs (a running one by its host, at its next heartbeat)")
    cancel.set_defaults(handler=_with_backend(cancel_command))

    delete = sub.add_parser("delete", parents=[common, store, bulk], help="delete jobs that are not running")
    delete.set_defaults(handler=_with_backend(delete_command))

    enqueue = sub.add_parser("enqueue", parents=[common, store], help="enqueue a job to run now; prints its id")
    enqueue.add_argument("name", help="the job's registered name")
    enqueue.add_argument("--args", metavar="JSON", help="the arguments as JSON (default: none)")
    enqueue.add_argument("--queue", help="default: the job's recorded queue")
    enqueue.add_argument("--unique-key")
    enqueue.add_argument("--max-attempts", type=_attempts, metavar="N",
                         help="attempts before the job is dead (default: the job's registered setting)")
    enqueue.add_argument("--priority", type=_whole, metavar="N", default=0,
                         help="higher is claimed first within the queue (default 0; negative after)")
    enqueue.add_argument("--concurrency-key", metavar="KEY",
                         help="jobs with this key run at most --concurrency-limit at once, on all hosts")
    enqueue.add_argument("--concurrency-limit", type=_attempts, metavar="N",
                         help="with --concurrency-key: how many may run at once (default 1)")
    enqueue.add_argument("--after", metavar="ID", type=int,
                         help="enqueue it as a continuation of job ID: it waits until that job ends")
    enqueue.add_argument("--on", choices=["success", "failure", "any"],
                         help="with --after: which end of job ID runs it (default: success); "
                         "on any other end it is cancelled")
    enqueue.add_argument("--force", action="store_true",
                         help="enqueue even if no host on the store has registered NAME")
    enqueue.set_defaults(handler=_with_backend(enqueue_command))


def _named(fn: Callable[[JobsBackend, str], str]) -> Callable[[argparse.Namespace], int]:
    def handler(options: argparse.Namespace) -> int:
        backend = open_backend(options.store)
        try:
            print(fn(backend, options.name))
        finally:
            backend.close()
        return 0

    return handler


def _paused(fn: Callable[[JobsBackend], frozenset[str]], what: str) -> Callable[[argparse.Namespace], int]:
    def handler(options: argparse.Namespace) -> int:
        backend = open_backend(options.store)
        try:
            names = sorted(fn(backend))
        finally:
            backend.close()
        for name in names:
            print(name)
        if not names:
            print(f"no {what} is paused", file=sys.stderr)
        return 0

    return handler


def _limits(options: argparse.Namespace, backend: JobsBackend) -> int:
    """``queues limits``: each rate-limited queue and its limit, one per line (or JSON)."""
    limits = backend.rate_limits()
    if options.json:
        print(json.dumps({q: {"limit": r.limit, "per_seconds": r.per} for q, r in sorted(limits.items())}))
        return 0
    for queue, limit in sorted(limits.items()):
        print(f"{queue}  {limit.limit} per {limit.per:g} s")
    if not limits:
        print("no queue is rate-limited", file=sys.stderr)
    return 0


def _limit(options: argparse.Namespace) -> int:
    """``queues limit NAME N --per SECONDS`` and ``queues limit NAME --none``."""
    from ..jobs import RateLimit

    if options.none == (options.limit is not None):
        raise CommandError("give a limit and --per SECONDS (e.g. 100 --per 60), or --none to remove the limit")
    limit = None
    if options.limit is not None:
        if options.per is None:
            raise CommandError(f"--per SECONDS is needed with a limit: {options.limit} jobs per how many seconds?")
        try:
            limit = RateLimit(options.limit, options.per)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    backend = open_backend(options.store)
    try:
        before = backend.rate_limits().get(options.name)
        if limit is not None and before is None:  # a rate-limited queue is known already
            _note_unknown_queue(backend, options.name)
        backend.set_rate_limit(options.name, limit)
    finally:
        backend.close()
    if limit is None:
        print(f"queue {options.name!r}: no rate limit" + ("" if before is not None else " (it had none)"))
    else:
        print(f"queue {options.name!r}: at most {limit.limit} jobs started per {limit.per:g} s, on every host")
    return 0


def _trigger(backend: JobsBackend, name: str) -> str:
    return f"schedule {name!r} triggered: job {backend.trigger(name)}"


def _pause_schedule(backend: JobsBackend, name: str) -> str:
    backend.pause_schedule(name)
    return f"schedule {name!r} paused"


def _resume_schedule(backend: JobsBackend, name: str) -> str:
    backend.resume_schedule(name)
    return f"schedule {name!r} resumed"


def _note_unknown_queue(backend: JobsBackend, name: str) -> None:
    """Say on stderr when no job of the store is in queue ``name`` and it is neither paused nor
    rate-limited (a typo would otherwise act on a queue no host runs, and say nothing), with
    the closest known name."""
    known = set(backend.counts().by_queue) | backend.paused_queues() | set(backend.rate_limits())
    if not known or name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    names = ", ".join(repr(q) for q in sorted(known)) if len(known) <= 20 else f"{len(known)} queues"
    print(f"note: no job of this store is in queue {name!r} (queues with jobs, paused or rate-limited: {names}){hint}",
          file=sys.stderr)


def _pause_queue(backend: JobsBackend, name: str) -> str:
    was_paused = name in backend.paused_queues()
    if not was_paused:
        _note_unknown_queue(backend, name)
    backend.pause_queue(name)
    return f"queue {name!r} was already paused" if was_paused else f"queue {name!r} paused"


def _resume_queue(backend: JobsBackend, name: str) -> str:
    was_paused = name in backend.paused_queues()
    if not was_paused:
        _note_unknown_queue(backend, name)
    backend.resume_queue(name)
    return f"queue {name!r} resumed" if was_paused else f"queue {name!r} was not paused; nothing changed"


def add_schedules_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="URL", required=True,
                       help="the job store: sqlite:///PATH or postgresql://USER@HOST/DB[?schema=NAME]")
    schedules = commands.add_parser("schedules", help="list, show, trigger, pause and resume recurring schedules",
                                    description="Operate the recurring schedules recorded in a store "
                                    "(a schedule is recorded when a host that has it starts).")
    sub = schedules.add_subparsers(dest="schedules_command", required=True, metavar="COMMAND")
    for name, fn, text in (
        ("trigger", _trigger, "enqueue an occurrence now (paused or not); prints the job id"),
        ("pause", _pause_schedule, "stop firing the schedule (its occurrences are skipped) until resumed"),
        ("resume", _resume_schedule, "fire the schedule again from its next occurrence"),
    ):
        command = sub.add_parser(name, parents=[common, store], help=text)
        command.add_argument("name", help="the schedule's name")
        command.set_defaults(handler=_named(fn))
    paused = sub.add_parser("paused", parents=[common, store], help="the paused schedules, one per line")
    paused.set_defaults(handler=_paused(lambda b: b.paused_schedules(), "schedule"))
    from ._schedules import add_listing_parsers

    add_listing_parsers(sub, [common, store], _with_backend)

    queues = commands.add_parser("queues", help="pause, resume and rate-limit queues",
                                 description="Pause a queue (no host claims its jobs) or resume it; set or "
                                 "remove its rate limit.")
    qsub = queues.add_subparsers(dest="queues_command", required=True, metavar="COMMAND")
    for name, fn, text in (
        ("pause", _pause_queue, "no host claims jobs of the queue until it is resumed (running ones finish)"),
        ("resume", _resume_queue, "hosts claim the queue's jobs again"),
    ):
        command = qsub.add_parser(name, parents=[common, store], help=text)
        command.add_argument("name", help="the queue's name")
        command.set_defaults(handler=_named(fn))
    qpaused = qsub.add_parser("paused", parents=[common, store], help="the paused queues, one per line")
    qpaused.set_defaults(handler=_paused(lambda b: b.paused_queues(), "queue"))
    limits = qsub.add_parser("limits", parents=[common, store], help="the rate-limited queues and their limits")
    limits.add_argument("--json", action="store_true", help='{"queue": {"limit": N, "per_seconds": S}, ...}')
    limits.set_defaults(handler=_with_backend(_limits))
    limit = qsub.add_parser(
        "limit", parents=[common, store],
        help="limit a queue to N jobs started per --per SECONDS on every host (--none: no limit)",
        description="Set or remove a queue's rate limit, kept in the store: at most N claims (attempts "
        "started, retries included) in any window of --per seconds, counted across every host.",
    )  # fmt: skip
    limit.add_argument("name", help="the queue's name")
    limit.add_argument("limit", nargs="?", type=_attempts, metavar="N", help="jobs started per window")
    limit.add_argument("--per", type=_seconds, metavar="SECONDS", help="the window, in seconds (e.g. 60)")
    limit.add_argument("--none", action="store_true", help="remove the queue's rate limit")
    limit.set_defaults(handler=_limit)
