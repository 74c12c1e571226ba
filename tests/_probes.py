"""Small actors for the runtime's own tests; each records its lifecycle in a shared log."""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import trio

from actors import Actor, BackgroundService, Request, handler
from supervisors import ChildSpec, Supervisor


@attrs.frozen
class Crash:
    reason: str = "boom"


@attrs.frozen
class Exit:
    pass


@attrs.frozen
class Echo(Request[object]):
    value: object = None


@attrs.frozen
class Sleep:
    seconds: float


class Log(list[str]):
    """The lifecycle log shared by probes: entries like 'start a', 'stop b'."""

    def of(self, kind: str) -> list[str]:
        return [entry.split(" ", 1)[1] for entry in self if entry.startswith(kind + " ")]


class Probe(Actor):
    """Records start/stop; crashes, exits or sleeps on demand."""

    def __init__(
        self,
        name: str,
        log: Log,
        *,
        fail_start: Callable[[], bool] = lambda: False,
        stop_takes: float = 0.0,
    ) -> None:
        self.name = name
        self.log = log
        self.fail_start = fail_start
        self.stop_takes = stop_takes
        self.seen: list[object] = []

    async def on_start(self) -> None:
        if self.fail_start():
            self.log.append(f"startfail {self.name}")
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def on_stop(self) -> None:
        if self.stop_takes:
            await trio.sleep(self.stop_takes)
        self.log.append(f"stop {self.name}")

    @handler
    async def crash(self, msg: Crash) -> None:
        raise RuntimeError(msg.reason)

    @handler
    async def exit(self, msg: Exit) -> None:
        self.stop()

    @handler
    async def echo(self, msg: Echo) -> object:
        self.seen.append(msg.value)
        return msg.value

    @handler
    async def sleep(self, msg: Sleep) -> None:
        await trio.sleep(msg.seconds if msg.seconds != math.inf else 1e9)


def probe(name: str, log: Log, **kwargs: object) -> Callable[[], Probe]:
    return lambda: Probe(name, log, **kwargs)  # type: ignore[arg-type]


class Ticker(BackgroundService):
    def __init__(self, name: str, log: Log) -> None:
        self.name = name
        self.log = log

    async def execute(self) -> None:
        self.log.append(f"start {self.name}")
        try:
            await trio.sleep_forever()
        finally:
            self.log.append(f"stop {self.name}")


@attrs.frozen
class Tick:
    pass


def tree_of(*specs: ChildSpec) -> Supervisor:
    """A tree ``app`` of the given children (one-for-one)."""
    return Supervisor(name="app", children=specs)
