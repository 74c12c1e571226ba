"""Optional peer libraries (triotp, pykka, huey, pgqueuer): import probes, installation and small adapters.

Peers are never required: each ``peer_<name>`` function calls ``require_<name>()`` which raises
:class:`RuntimeUnavailable` when the library is not importable, and run.py prints a note.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._common import RuntimeUnavailable

PEERS = ["triotp", "pykka", "huey", "pgqueuer"]

#: What ``--peers`` installs.  triotp 0.2.1 pins ``trio<0.20`` (and trio-util, which still
#: references ``trio.MultiError``).  Installing it with its dependencies would *downgrade* the
#: trio that our runtime needs, so it is installed with ``--no-deps`` and its other
#: dependencies are listed explicitly; trio itself is left alone.
PIP_INSTALLS: list[list[str]] = [
    ["pykka", "huey"],
    ["pgqueuer", "asyncpg"],  # run in processes of their own (asyncio), by workload pg
    ["--no-deps", "triotp", "trio-util", "Logbook", "tenacity", "async_generator"],
]


def install_peers() -> None:
    for args in PIP_INSTALLS:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", *args]
        print("$", " ".join(cmd), flush=True)
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0:
            print(f"note: pip exited with {result.returncode}; peers that failed to install "
                  "will be skipped", flush=True)


def available(name: str) -> tuple[bool, str]:
    try:
        {"triotp": require_triotp, "pykka": require_pykka, "huey": require_huey,
         "pgqueuer": require_pgqueuer}[name]()
    except RuntimeUnavailable as exc:
        return False, str(exc)
    return True, ""


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def versions() -> dict[str, str]:
    return {name: _version(name) for name in PEERS if available(name)[0]}


# --------------------------------------------------------------------------- triotp


def require_triotp() -> Any:
    try:
        import triotp
        import triotp.gen_server
        import triotp.mailbox
        import triotp.supervisor
    except Exception as exc:
        raise RuntimeUnavailable(f"triotp not installed ({type(exc).__name__}: {exc})") from exc
    return triotp


@contextmanager
def triotp_node() -> Iterator[None]:
    """What ``triotp.node.run`` does around ``trio.run``, minus the run: a logbook NullHandler
    (triotp's ``LogLevel.NONE``) bound for the duration.  Call :func:`triotp_init` as the first
    thing inside the ``trio.run`` (the mailbox registries are contextvars)."""
    import logbook

    with logbook.NullHandler().applicationbound():
        yield


def triotp_init() -> None:
    from triotp import mailbox

    mailbox._init()


def triotp_module(name: str, **callbacks: Any) -> types.ModuleType:
    """gen_server callbacks live in a module; build one on the fly."""
    mod = types.ModuleType(name)
    for key, fn in callbacks.items():
        setattr(mod, key, fn)
    return mod


# --------------------------------------------------------------------------- pykka


def require_pykka() -> Any:
    try:
        import pykka
    except Exception as exc:
        raise RuntimeUnavailable(f"pykka not installed ({type(exc).__name__}: {exc})") from exc
    return pykka


@contextmanager
def pykka_cleanup() -> Iterator[None]:
    """Never leave pykka threads behind, whatever happens in the repetition."""
    import pykka

    try:
        yield
    finally:
        pykka.ActorRegistry.stop_all(block=True, timeout=60)


# --------------------------------------------------------------------------- huey


def require_huey() -> Any:
    try:
        import huey
    except Exception as exc:
        raise RuntimeUnavailable(f"huey not installed ({type(exc).__name__}: {exc})") from exc
    return huey


# --------------------------------------------------------------------------- pgqueuer


def require_pgqueuer() -> Any:
    """PgQueuer and asyncpg, for workload ``pg`` (which runs them in processes of their own)."""
    try:
        import asyncpg  # noqa: F401
        import pgqueuer
    except Exception as exc:
        raise RuntimeUnavailable(f"pgqueuer not installed ({type(exc).__name__}: {exc})") from exc
    return pgqueuer
