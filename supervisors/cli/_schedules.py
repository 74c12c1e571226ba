"""``supervisors schedules list`` and ``schedules show NAME``: recurring schedules, their
policies and their fire ledger, read from a store."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._jobs import JobsBackend, to_json, when

if TYPE_CHECKING:
    from ..jobs import LedgerEntry, ScheduleInfo

Handler = Callable[[argparse.Namespace], int]


def _last(info: ScheduleInfo) -> str:
    """The latest ledger outcome, and the state of the last run's job."""
    if info.last is None:
        return "-"
    text = info.last.outcome.value
    run = info.last_run
    if run is not None:
        state = "pruned" if info.last_run_state is None else info.last_run_state.value
        text += f" (last run: job {run.job_id}, {state})"
    return text


def list_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    infos = backend.schedules()
    if options.json:
        print(json.dumps(to_json(infos), indent=2))
        return 0
    rows = [("NAME", "CRON", "TZ", "NEXT RUN", "LAST RUN", "PAUSED", "LAST OUTCOME")]
    for i in infos:
        last_run = when(i.last_run.fire_time) if i.last_run is not None else "-"
        rows.append((i.name, i.cron or "?", i.tz, when(i.next_run), last_run,
                     "yes" if i.paused else "no", _last(i)))  # fmt: skip
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1])
    if not infos:
        print("no schedule is recorded in this store (a host records its schedules when it starts)")
    return 0


def _entry_row(e: LedgerEntry) -> str:
    job = "-" if e.job_id is None else str(e.job_id)
    return f"{when(e.fire_time)}  {e.outcome.value:<12}  {job:>6}  {e.reason}  [{e.host}]"


def show_command(options: argparse.Namespace, backend: JobsBackend) -> int:
    entries = backend.ledger(options.name, limit=options.limit)
    info = next((i for i in backend.schedules() if i.name == options.name), None)
    if options.json:
        data: Any = {"schedule": to_json(info), "ledger": to_json(entries)}
        print(json.dumps(data, indent=2))
        return 0
    if info is not None:
        paused = ", paused" if info.paused else ""
        print(f"schedule {info.name}: job {info.job} on queue {info.queue}{paused}")
        for name, value in (
            ("cron", f"{info.cron or '?'} ({info.tz})"), ("next run", when(info.next_run)),
            ("last run", when(info.last_run.fire_time) if info.last_run else "-"),
            ("last", _last(info)), ("overlap", info.overlap_policy),
            ("catch-up", info.catch_up_policy), ("DST", info.dst_policy),
        ):  # fmt: skip
            print(f"  {name + ':':<10} {value}")
    print(f"fire ledger, newest first ({len(entries)} shown):")
    print(f"{'FIRE TIME':<20}  {'OUTCOME':<12}  {'JOB':>6}  REASON  [HOST]")
    for e in entries:
        print(_entry_row(e))
    return 0


def add_listing_parsers(
    sub: Any, parents: list[argparse.ArgumentParser],
    with_backend: Callable[[Callable[[argparse.Namespace, JobsBackend], int]], Handler],
) -> None:  # fmt: skip
    """Add ``list`` and ``show`` to the ``schedules`` command's subparsers."""
    ls = sub.add_parser("list", parents=parents,
                        help="every recorded schedule: cron, time zone, next and last run, outcome, paused")
    ls.add_argument("--json", action="store_true", help="print the schedules as JSON")
    ls.set_defaults(handler=with_backend(list_command))
    show = sub.add_parser("show", parents=parents,
                          help="one schedule's policies and its fire ledger (why each occurrence ran or not)")
    show.add_argument("name", help="the schedule's name")
    show.add_argument("--limit", type=int, default=50, help="ledger entries shown, newest first (default 50)")
    show.add_argument("--json", action="store_true", help="print the schedule and its ledger as JSON")
    show.set_defaults(handler=with_backend(show_command))
