"""``supervisors hosts --store URL``: the hosts that share a job store, as its table of hosts says."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import attrs

from ._jobs import open_backend


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _state(stopped_at: float | None, alive: bool) -> str:
    if stopped_at is not None:
        return "stopped"
    return "alive" if alive else "dead"


def hosts_command(options: argparse.Namespace) -> int:
    backend = open_backend(options.store)
    try:
        hosts = backend.hosts()
    finally:
        backend.close()
    if hosts is None:
        if options.json:
            print("null")
        else:
            print("this store keeps no table of hosts (SQLite): the hosts are the processes that run a "
                  "job system on the file; a PostgreSQL store lists every host of a cluster")
        return 0
    if options.json:
        print(json.dumps([attrs.asdict(h) for h in hosts], indent=2))
        return 0
    rows: list[tuple[str, ...]] = [("HOST", "STATE", "LAST HEARTBEAT", "AGE", "STARTED", "RUNNING", "SINGLETONS")]
    for h in hosts:
        rows.append((h.id, _state(h.stopped_at, h.alive), _when(h.heartbeat_at),
                     f"{max(0.0, h.read_at - h.heartbeat_at):.0f}s", _when(h.started_at), str(len(h.running)),
                     ", ".join(h.singletons) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1])
    alive = sum(h.alive for h in hosts)
    print(f"{alive} of {len(hosts)} hosts alive")
    return 0


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    hosts = commands.add_parser(
        "hosts", parents=[common], help="the hosts sharing a job store: heartbeat, alive, singletons, jobs",
        description="List the hosts recorded in a PostgreSQL store's table of hosts (a SQLite store has none).",
    )
    hosts.add_argument("--store", metavar="URL", required=True,
                       help="the job store: postgresql://USER@HOST/DB[?schema=NAME] (or sqlite:///PATH)")
    hosts.add_argument("--json", action="store_true", help="print the hosts as JSON (null without a table)")
    hosts.set_defaults(handler=hosts_command)
