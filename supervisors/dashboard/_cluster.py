"""The hosts of a cluster and this host's effective configuration, as plain JSON-able data.

Hosts come from each job system's store (`JobSystem.hosts`): a store with a table of hosts
(PostgreSQL) lists every host with its heartbeat, the cluster singletons it holds and the jobs
it runs; a store without one (SQLite, in memory) knows one host, this process.

The configuration never shows a secret: `Secret` values, values of fields whose name says
they are secret (``password``, ``token``, ``secret``, ``api_key``, ...) and the password of a
URL are replaced by ``'***'`` before anything is rendered, in pages and in JSON alike.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio

from supervisors import Secret, Tree, masked_settings
from supervisors.jobs import HostInfo, JobSystem

from ._views import iso

__all__ = ["MASK", "config_view", "hosts_view", "mask"]

MASK = "***"
STORE_TIMEOUT = 5.0
"""Seconds the hosts page waits for a store's answer (as readiness does)."""
_SENSITIVE = re.compile(r"pass(word|wd|phrase)?$|secret|token|credential|api_?key|private_?key|auth", re.I)


def _host_row(host: HostInfo, *, this: str | None) -> dict[str, Any]:
    return {
        "id": host.id, "hostname": host.hostname, "pid": host.pid, "this": host.id == this,
        "alive": host.alive, "started_at": iso(host.started_at), "heartbeat_at": iso(host.heartbeat_at),
        "heartbeat_age_seconds": max(0.0, host.read_at - host.heartbeat_at), "stopped_at": iso(host.stopped_at),
        "singletons": list(host.singletons), "running": list(host.running),
    }  # fmt: skip


def _this_process(tree: Tree | None, running: Sequence[int]) -> dict[str, Any]:
    """This process as the one host of a store without a table of hosts: alive, since its tree started."""
    now = time.time()
    started = None
    if tree is not None:
        at = tree.snapshot().started_at
        if at is not None:
            started = now - (trio.current_time() - at)
    return {
        "id": f"{socket.gethostname()}/{os.getpid()}", "hostname": socket.gethostname(), "pid": os.getpid(),
        "this": True, "alive": True, "started_at": iso(started), "heartbeat_at": iso(now),
        "heartbeat_age_seconds": 0.0, "stopped_at": None, "singletons": [], "running": sorted(running),
    }  # fmt: skip


async def hosts_view(systems: Sequence[JobSystem], tree: Tree | None) -> dict[str, Any]:
    """The hosts known to each job system's store (``items``: one entry per system, with its
    ``hosts``); without a job system, one entry for this process. A store that is cut off or
    does not answer within `STORE_TIMEOUT` gives an entry with no hosts and an ``error``."""
    items: list[dict[str, Any]] = []
    for system in systems:
        entry: dict[str, Any] = {"system": system.name, "store": repr(system.store)}
        hosts = None
        if system.store.available:
            with trio.move_on_after(STORE_TIMEOUT):
                hosts = await system.hosts()
                entry["hosts_table"] = hosts is not None
        if "hosts_table" not in entry:  # cut off, or no answer in time: say so rather than hang
            entry.update(hosts_table=True, hosts=[],
                         error=f"the job store of {system.name!r} is unreachable; its hosts are unknown")
        elif hosts is None:
            entry["hosts"] = [_this_process(tree, [run.id for run in system.running()])]
        else:
            entry["hosts"] = [_host_row(h, this=system.store.host_id) for h in hosts]
        items.append(entry)
    if not systems:
        items.append({"system": None, "store": None, "hosts_table": False, "hosts": [_this_process(tree, [])]})
    return {"items": items}


def mask(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced by ``'***'``: `Secret` instances, non-empty values of
    keys that name a secret, URL passwords; dicts, lists and attrs instances are walked."""
    if isinstance(value, Secret):
        return MASK
    if attrs.has(type(value)):
        return mask(masked_settings(value), key)
    if isinstance(value, Mapping):
        return {str(k): mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask(v, key) for v in value]
    if key and _SENSITIVE.search(key) and value not in (None, "", False, True):
        return MASK
    if isinstance(value, str) and "://" in value:
        return _redact_url(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _redact_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return MASK  # not parseable: do not risk showing it
    if not password:
        return text
    return text.replace(f":{password}@", f":{MASK}@", 1)


def config_view(
    *, systems: Sequence[JobSystem], settings: object | None, dashboard: Mapping[str, Any]
) -> dict[str, Any]:
    """This host's effective configuration, secrets masked: ``host`` (name, pid, versions),
    ``dashboard``, ``jobs`` (each system's `JobSystem.describe`) and ``settings`` (the
    application's settings given to the dashboard, or ``None``)."""
    try:
        version = metadata.version("trio-supervisors")
    except metadata.PackageNotFoundError:
        version = None
    host = {
        "hostname": socket.gethostname(), "pid": os.getpid(), "python": sys.version.split()[0],
        "platform": platform.platform(), "supervisors": version, "trio": trio.__version__,
    }  # fmt: skip
    return {
        "host": host,
        "dashboard": mask(dict(dashboard)),
        "jobs": [mask(system.describe()) for system in systems],
        "settings": None if settings is None else mask(settings),
    }
