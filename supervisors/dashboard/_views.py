"""What the pages and the JSON API show, as plain JSON-able data; both render the same dicts.

Times are ISO 8601 strings in UTC here; pages convert them to the zone the user picked.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

import attrs
import trio
import trio.lowlevel

from supervisors import ChildSnapshot, ChildState, Tree
from supervisors.jobs import (
    Job,
    JobNotFoundError,
    JobQuery,
    JobQueryError,
    JobState,
    JobStateError,
    JobSystem,
    LedgerEntry,
)

__all__ = [
    "ACTIONS",
    "BULK_BATCH",
    "ActionError",
    "bulk_action",
    "job_action",
    "job_view",
    "jobs_page",
    "ledger_entry_view",
    "ledger_view",
    "parse_search",
    "progress_view",
    "queues_view",
    "schedules_view",
    "stats_view",
    "tree_view",
]

ACTIONS = ("retry", "cancel", "delete", "requeue")
"""The actions on a job; those the job system lacks are reported as unavailable (``available_actions``)."""

QUEUE_ACTIONS = ("pause", "resume")
SCHEDULE_ACTIONS = ("trigger", "pause", "resume")
BULK_BATCH = 100
"""Jobs acted on per batch by a bulk action: one store call each, other work runs in between."""


class ActionError(Exception):
    """An action could not be done; ``status`` is the HTTP status to answer (400, 404, 409)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def iso(value: datetime | float | None) -> str | None:
    """UTC ISO 8601 of an aware datetime or epoch seconds; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat()


def available_actions(system: JobSystem) -> list[str]:
    """The job actions this job system supports (``retry`` always; the others where present)."""
    return [name for name in ACTIONS if callable(getattr(system, name, None))]


# -- the tree ----------------------------------------------------------------------------------


def _node(node: ChildSnapshot, now: float, workers: Mapping[str, tuple[JobSystem, str]]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "path": node.path,
        "name": node.name,
        "kind": node.kind.value,
        "state": node.state.value,
        "strategy": node.strategy,
        "restarts": node.restarts,
        "uptime_seconds": None if node.started_at is None else max(0.0, now - node.started_at),
        "mailbox_depth": node.mailbox_depth,
        "messages_handled": node.messages_handled,
        "last_error": node.last_error,
        "last_traceback": node.last_traceback,
        "children": [_node(child, now, workers) for child in node.children],
    }
    worker = workers.get(node.path)
    if worker is not None:
        system, queue = worker
        view["queue"] = {"name": queue, "concurrency": system.queues.get(queue)}
        for run in system.running():
            if run.queue == queue:
                view["children"].append({
                    "path": f"{node.path}/job-{run.id}", "name": f"job {run.id}", "kind": "job",
                    "state": ChildState.RUNNING.value, "strategy": None, "restarts": 0,
                    "uptime_seconds": max(0.0, now - run.started), "mailbox_depth": None,
                    "messages_handled": None, "last_error": None, "last_traceback": None, "children": [],
                    "job": {"id": run.id, "name": run.name, "queue": run.queue, "attempt": run.attempt},
                })
    return view


def worker_paths(snapshot: ChildSnapshot, systems: Sequence[JobSystem]) -> dict[str, tuple[JobSystem, str]]:
    """Path of each job system's queue worker in the tree → (system, queue)."""
    found: dict[str, tuple[JobSystem, str]] = {}
    for node in snapshot.walk():
        for system in systems:
            if node.name == system.name and {c.name for c in node.children} >= {"workers", "scheduler"}:
                for queue in system.queues:
                    found[f"{node.path}/workers/{queue}"] = (system, queue)
    return found


def tree_view(tree: Tree, systems: Sequence[JobSystem]) -> dict[str, Any]:
    """The whole tree with every child's state, and the jobs running under their queue's worker."""
    snapshot = tree.snapshot()
    return _node(snapshot, trio.current_time(), worker_paths(snapshot, systems))


# -- jobs --------------------------------------------------------------------------------------


def job_view(job: Job, system: JobSystem) -> dict[str, Any]:
    """One job with its arguments, attempts and errors (tracebacks included), its result, and its
    place in a chain of continuations (its parent and its continuations, by id)."""
    view: dict[str, Any] = {
        "id": job.id,
        "system": system.name,
        "name": job.name,
        "queue": job.queue,
        "state": job.state.value,
        "args": job.args,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "run_at": iso(job.run_at),
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
        "lease_until": iso(job.lease_until),
        "unique_key": job.unique_key,
        "schedule": job.schedule,
        "fire_time": iso(job.fire_time),
        "errors": [
            {"attempt": e.attempt, "at": iso(e.at), "error": e.error, "traceback": e.traceback} for e in job.errors
        ],
        "result": job.result,
        "parent_id": job.parent_id,
        "continue_on": None if job.continue_on is None else job.continue_on.value,
        "continuations": list(job.continuations),
        "priority": job.priority,
        "concurrency_key": job.concurrency_key,
        "concurrency_limit": job.concurrency_limit,
        "cancel_requested": job.cancel_requested,
    }
    return view


def parse_int(value: str | None, name: str, default: int, *, low: int = 0, high: int = 10**9) -> int:
    """An integer query parameter within ``low..high``; a 400 with the reason otherwise."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ActionError(400, f"{name!r} must be an integer (got {value!r})") from None
    if not low <= number <= high:
        raise ActionError(400, f"{name!r} must be between {low} and {high} (got {number})")
    return number


def check_queue(system: JobSystem, queue: str | None, *, known_only: bool = False) -> str | None:
    if not queue:
        return None
    if known_only and queue not in system.queues:
        raise ActionError(404, f"no queue {queue!r} in job system {system.name!r} (queues: {sorted(system.queues)})")
    return queue


SEARCH_PARAMS = ("state", "queue", "name", "since", "until", "args_contains", "args_match", "limit", "cursor")
"""The query parameters of a job search (``/jobs``, ``/api/jobs`` and the bulk actions); ``state`` and
``args_match`` may be repeated, ``state`` also holds several states separated by commas."""

_FIELD_PARAMS = {"states": "state", "args_equal": "args_match"}


def parse_search(params: Mapping[str, str | Sequence[str]], *, zone: tzinfo = UTC) -> JobQuery:
    """The `JobQuery` of the search parameters ``params`` (name → value, or values for the
    repeatable ones); a 400 naming the parameter for bad input. ``since`` and ``until``
    without a UTC offset are read in ``zone`` (the zone the page shows)."""

    def values(name: str) -> list[str]:
        value = params.get(name)
        if value is None:
            return []
        return [value] if isinstance(value, str) else [v for v in value if v]

    def one(name: str) -> str | None:
        found = values(name)
        return found[-1].strip() if found else None

    try:
        return JobQuery.from_text(
            states=values("state"), queue=one("queue"), name=one("name"), since=one("since"),
            until=one("until"), args_contains=next(reversed(values("args_contains")), None),
            args_match=values("args_match"), limit=one("limit"), cursor=one("cursor"), zone=zone,
        )  # fmt: skip
    except JobQueryError as exc:
        param = _FIELD_PARAMS.get(exc.field, exc.field)
        raise ActionError(400, f"{param!r}: {exc.reason}") from None


def search_filter(query: JobQuery) -> dict[str, Any]:
    """The filters of ``query`` as search parameters (what a link or a form repeats), with
    ``state`` a list of state names."""
    return {
        "state": [s.value for s in JobState if s in query.states],
        "queue": query.queue,
        "name": query.name,
        "since": iso(query.since),
        "until": iso(query.until),
        "args_contains": query.args_contains,
        "args_match": [f"{path}={json.dumps(value)}" for path, value in query.args_equal],
    }


def _countable(query: JobQuery) -> bool:
    """Whether the number of jobs ``query`` matches is in the counts (state and queue filters only)."""
    return query.name is None and query.since is None and query.until is None and not (
        query.args_contains or query.args_equal
    )


async def jobs_page(system: JobSystem, query: JobQuery) -> dict[str, Any]:
    """One page of the jobs ``query`` matches, newest first, with the counts by state, the
    cursors of the next (older) and previous (newer) pages, and the number of jobs matched
    when the counts give it (``total``: a filter on states and queue only; else ``None``)."""
    counts = await system.counts()
    total: int | None = None
    if _countable(query):
        per = counts.by_queue.get(query.queue, {}) if query.queue is not None else counts.by_state
        total = sum(n for s, n in per.items() if not query.states or s in query.states)
    page = await system.search(query)
    return {
        "system": system.name,
        "filter": search_filter(query),
        "limit": query.limit,
        "next": page.next,
        "previous": page.previous,
        "total": total,
        "counts": {s.value: n for s, n in counts.by_state.items()},
        "queues": sorted(set(system.queues) | set(counts.by_queue)),
        "actions": available_actions(system),
        "items": [job_view(job, system) for job in page.jobs],
    }


async def job_action(system: JobSystem, job_id: int, action: str) -> dict[str, Any]:
    """Do ``action`` on one job; 404 for an unknown id, 409 when its state does not allow it."""
    if action not in ACTIONS:
        raise ActionError(404, f"unknown job action {action!r}; expected one of: {', '.join(ACTIONS)}")
    method = getattr(system, action, None)
    if not callable(method):
        raise ActionError(404, f"job action {action!r} is not supported by this job system")
    try:
        outcome = await method(job_id)
    except JobNotFoundError:
        raise ActionError(404, f"no job {job_id} in job system {system.name!r}") from None
    except JobStateError as exc:
        raise ActionError(409, str(exc)) from None
    result: dict[str, Any] = {"id": job_id, "action": action, "ok": True}
    if isinstance(outcome, JobState):
        result["state"] = outcome.value
    return result


async def bulk_action(system: JobSystem, action: str, query: JobQuery, *, batch: int = BULK_BATCH) -> dict[str, Any]:
    """Do ``action`` on every job ``query`` matches (its cursor and limit aside), reading
    ``batch`` jobs per store call, newest first.

    The search is paged by keyset, so each job is acted on at most once, and a job acted on
    (changed or deleted) never moves the jobs still to come; jobs created after the action
    started are left out. Jobs the action refuses (their state does not allow it) are counted
    in ``failed`` and passed over; the first ten reasons are returned.
    """
    if action not in ACTIONS or not callable(getattr(system, action, None)):
        raise ActionError(404, f"job action {action!r} is not supported by this job system")
    method = getattr(system, action)
    done = failed = 0
    reasons: list[str] = []
    query = attrs.evolve(query, limit=batch, cursor=None)
    while True:
        page = await system.search(query)
        for job in page.jobs:
            try:
                await method(job.id)
            except (JobNotFoundError, JobStateError) as exc:
                failed += 1
                if len(reasons) < 10:
                    reasons.append(f"job {job.id}: {exc}")
                continue
            done += 1
        if page.next is None:
            break
        query = attrs.evolve(query, cursor=page.next)
        await trio.lowlevel.checkpoint()
    return {"action": action, "filter": search_filter(query), "done": done, "failed": failed, "reasons": reasons}


# -- queues and schedules ------------------------------------------------------------------------


async def queues_view(system: JobSystem) -> list[dict[str, Any]]:
    """Every queue of the system (run here, holding jobs, paused or rate-limited): concurrency,
    counts by state, running here, paused, rate limit, latency."""
    from ._metrics import oldest_wait

    counts = await system.counts()
    paused: frozenset[str] = frozenset()
    paused_queues = getattr(system, "paused_queues", None)
    if callable(paused_queues):
        paused = await paused_queues()
    limits = await system.rate_limits()
    running = system.running()
    out = []
    for queue in sorted(set(system.queues) | set(counts.by_queue) | paused | set(limits)):
        per = counts.by_queue.get(queue, {})
        limit = limits.get(queue)
        out.append({
            "name": queue,
            "system": system.name,
            "concurrency": system.queues.get(queue),
            "counts": {s.value: per.get(s, 0) for s in JobState},
            "running_here": sum(1 for run in running if run.queue == queue),
            "paused": queue in paused,
            "rate_limit": None if limit is None else {"limit": limit.limit, "per_seconds": limit.per},
            "latency_seconds": await oldest_wait(system, queue),
            "actions": [a for a in QUEUE_ACTIONS if callable(getattr(system, f"{a}_queue", None))],
        })
    return out


async def schedules_view(system: JobSystem) -> list[dict[str, Any]]:
    """Every recurring schedule: cron, zone, job, queue, the next and last occurrence, paused."""
    paused: frozenset[str] = frozenset()
    paused_schedules = getattr(system, "paused_schedules", None)
    if callable(paused_schedules):
        paused = await paused_schedules()
    actions = [a for a in SCHEDULE_ACTIONS
               if callable(getattr(system, "trigger" if a == "trigger" else f"{a}_schedule", None))]
    now = time.time()
    out = []
    infos = {i.name: i for i in await system.schedules()}
    for spec in system.recurring:
        cursor = await system.store.cursor(spec.name)
        nxt = spec.compiled.next_after(max(now, cursor if cursor is not None else -math.inf))
        info = infos.get(spec.name)
        last = None if info is None else info.last
        last_run = None if info is None else info.last_run
        out.append({
            "name": spec.name,
            "system": system.name,
            "cron": spec.cron,
            "tz": spec.tz,
            "job": spec.job,
            "queue": spec.queue,
            "overlap": spec.overlap,
            "misfire": spec.misfire.value if hasattr(spec.misfire, "value") else str(spec.misfire),
            "next_run": iso(nxt),
            "last_run": iso(cursor),
            "paused": spec.name in paused,
            "actions": actions,
            "overlap_policy": spec.overlap_policy,
            "catch_up_policy": spec.catch_up_policy,
            "dst_policy": spec.dst_policy,
            "last": None if last is None else ledger_entry_view(last),
            "last_fired": None if last_run is None else ledger_entry_view(last_run),
            "last_fired_state": None if info is None or info.last_run_state is None else info.last_run_state.value,
        })
    return out


def ledger_entry_view(entry: LedgerEntry) -> dict[str, Any]:
    """One occurrence of a schedule and what became of it."""
    return {
        "fire_time": iso(entry.fire_time),
        "outcome": entry.outcome.value,
        "job_id": entry.job_id,
        "reason": entry.reason,
        "recorded_at": iso(entry.recorded_at),
        "host": entry.host,
    }


async def ledger_view(system: JobSystem, name: str, *, limit: int = 100) -> dict[str, Any]:
    """The fire ledger of the schedule ``name``, newest first; 404 if the store knows no such schedule."""
    from supervisors.jobs import ScheduleNotFoundError

    try:
        entries = await system.ledger(name, limit=limit)
    except ScheduleNotFoundError:
        raise ActionError(404, f"no recurring schedule {name!r} in job system {system.name!r}") from None
    return {"schedule": name, "system": system.name, "items": [ledger_entry_view(e) for e in entries]}


async def progress_view(system: JobSystem, job_id: int) -> list[dict[str, Any]]:
    """What each attempt of the job reported: progress, message and log lines; 404 for no such job."""
    try:
        attempts = await system.progress(job_id)
    except JobNotFoundError:
        raise ActionError(404, f"no job {job_id} in job system {system.name!r}") from None
    return [
        {
            "attempt": a.attempt,
            "fraction": a.fraction,
            "message": a.message,
            "updated_at": iso(a.updated_at),
            "lines": [{"at": iso(line.at), "text": line.text} for line in a.lines],
            "dropped": a.dropped,
        }
        for a in attempts
    ]


async def schedule_action(system: JobSystem, name: str, action: str) -> dict[str, Any]:
    """Trigger, pause or resume the schedule ``name``; 404 if unknown or not supported."""
    if name not in {spec.name for spec in system.recurring}:
        raise ActionError(404, f"no recurring schedule {name!r} in job system {system.name!r}")
    if action not in SCHEDULE_ACTIONS:
        raise ActionError(404, f"unknown schedule action {action!r}; expected one of: {', '.join(SCHEDULE_ACTIONS)}")
    method = getattr(system, "trigger" if action == "trigger" else f"{action}_schedule", None)
    if not callable(method):
        raise ActionError(404, f"schedule action {action!r} is not supported by this job system")
    outcome = await method(name)
    result: dict[str, Any] = {"schedule": name, "action": action, "ok": True}
    if isinstance(outcome, int):
        result["job_id"] = outcome
    return result


async def queue_action(system: JobSystem, name: str, action: str) -> dict[str, Any]:
    """Pause or resume the queue ``name``; 404 if unknown or not supported."""
    check_queue(system, name, known_only=True)
    if action not in QUEUE_ACTIONS:
        raise ActionError(404, f"unknown queue action {action!r}; expected one of: {', '.join(QUEUE_ACTIONS)}")
    method = getattr(system, f"{action}_queue", None)
    if not callable(method):
        raise ActionError(404, f"queue action {action!r} is not supported by this job system")
    await method(name)
    return {"queue": name, "action": action, "ok": True}


# -- throughput ----------------------------------------------------------------------------------

STATS_SCAN = 5000
"""At most this many of the most recent finished jobs (and as many retrying/dead) are read for the chart."""


async def stats_view(system: JobSystem, *, minutes: int = 60, bucket: int = 60) -> dict[str, Any]:
    """Succeeded jobs and failed attempts per ``bucket`` seconds over the last ``minutes``, from the store.

    Read from the jobs' finish times and their recorded errors, so the chart survives restarts
    (within the store's retention: ``keep_succeeded``, ``keep_dead``).
    """
    now = time.time()
    start = now - minutes * 60
    n = max(1, (minutes * 60) // bucket)
    succeeded = [0] * n
    failed = [0] * n

    def slot(ts: float) -> int | None:
        if ts < start or ts > now:
            return None
        return min(n - 1, int((ts - start) // bucket))

    counts = await system.counts()
    for state in (JobState.SUCCEEDED, JobState.DEAD, JobState.RETRYING):
        total = counts.by_state.get(state, 0)
        offset = max(0, total - STATS_SCAN)
        while offset < total:
            page = await system.list(state=state, limit=500, offset=offset)
            if not page:
                break
            offset += len(page)
            for job in page:
                if state is JobState.SUCCEEDED and job.finished_at is not None:
                    i = slot(job.finished_at.timestamp())
                    if i is not None:
                        succeeded[i] += 1
                for error in job.errors:
                    i = slot(error.at.timestamp())
                    if i is not None:
                        failed[i] += 1
    return {
        "system": system.name,
        "start": iso(start),
        "bucket_seconds": bucket,
        "buckets": [
            {"start": iso(start + i * bucket), "succeeded": succeeded[i], "failed": failed[i]} for i in range(n)
        ],
    }
