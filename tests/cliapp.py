"""Targets for tests/test_cli.py: `python -m supervisors run cliapp:TARGET` with tests/ as the cwd."""

from __future__ import annotations

import logging

import trio

from actors import Actor, BackgroundService
from supervisors import Backoff, ChildSpec, Supervisor
from supervisors.jobs import SQLiteStore, Store

log = logging.getLogger("cliapp")


class Ready(BackgroundService):
    async def execute(self) -> None:
        log.info("READY")
        await trio.sleep_forever()


class Crasher(BackgroundService):
    """Crashes on the same line every time it runs (a deliberate, repeated failure)."""

    async def execute(self) -> None:
        await trio.sleep(0.01)
        raise RuntimeError("crasher always crashes")


class StuckStop(Actor):
    async def on_stop(self) -> None:
        await trio.sleep_forever()


spec = Supervisor(name="app", children=[
    ChildSpec(name="first", factory=Ready),
    ChildSpec(name="second", factory=Ready),
    ChildSpec(name="third", factory=Ready),
])

crashing = Supervisor(name="app", max_restarts=1000, within=60.0, backoff=Backoff(initial=0.01, max=0.01), children=[
    ChildSpec(name="ready", factory=Ready),
    ChildSpec(name="crasher", factory=Crasher),
])

stuck = Supervisor(name="app", children=[
    ChildSpec(name="stuck", factory=StuckStop, shutdown=60.0),
    ChildSpec(name="ready", factory=Ready),
])

not_a_tree = 42


def with_store(store: Store) -> Supervisor:
    """A function target taking the store of --store."""
    assert isinstance(store, SQLiteStore)
    log.info("STORE %s", store.path)
    return spec


def returns_nothing() -> None:
    return None


def raises() -> Supervisor:
    raise ValueError("the target's own bug")


def with_dashboard(dashboard: object = None) -> Supervisor:
    """A function target taking the dashboard maker of --dashboard (None without it)."""
    log.info("DASHBOARD %r", dashboard)
    return spec
