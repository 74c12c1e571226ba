"""A program run by test_host.py in a subprocess: `python hostapp.py MODE`."""

from __future__ import annotations

import math
import sys
import time

import trio

from actors import Actor, BackgroundService, handler
from supervisors import ChildSpec, Supervisor, run


class Ready(BackgroundService):
    async def execute(self) -> None:
        print("READY", flush=True)
        await trio.sleep_forever()


class Crasher(BackgroundService):
    async def execute(self) -> None:
        await trio.sleep(0.05)
        raise RuntimeError("crasher always crashes")


class StuckStop(Actor):
    """A graceful stop of this child never ends: only a forced stop gets past it."""

    async def on_stop(self) -> None:
        await trio.sleep_forever()


class Blocker(BackgroundService):
    """Blocks the whole Trio run (no checkpoint) for a while, as checkpoint-free code does."""

    async def execute(self) -> None:
        print("BLOCKING", flush=True)
        time.sleep(3)  # noqa: ASYNC251 (on purpose: the run is blocked while signals arrive)
        await trio.sleep_forever()


class Interrupted(Actor):
    """Raises KeyboardInterrupt in a handler soon after starting, as Ctrl-C in a busy handler does."""

    async def on_start(self) -> None:
        self.send_after(0.05, "go")

    @handler
    def go(self, msg: str) -> None:
        raise KeyboardInterrupt


class StopsVisibly(Actor):
    async def on_stop(self) -> None:
        print("STOPPED ready", flush=True)


class SlowStop(Actor):
    async def on_stop(self) -> None:
        print("SLOWSTOP", flush=True)
        await trio.sleep(60)


def main(mode: str) -> int:
    children = [ChildSpec(name="ready", factory=Ready)]
    timeout = 30.0
    if mode == "crash":
        children.append(ChildSpec(name="crasher", factory=Crasher))
    elif mode == "slow":
        children.insert(0, ChildSpec(name="slow", factory=SlowStop, shutdown=math.inf))
    elif mode == "deadline":
        children.insert(0, ChildSpec(name="slow", factory=SlowStop, shutdown=math.inf))
        timeout = 0.5
    elif mode == "interrupt":
        children = [ChildSpec(name="ready", factory=StopsVisibly), ChildSpec(name="interrupter", factory=Interrupted)]
    elif mode == "double":
        children = [
            ChildSpec(name="stuck", factory=StuckStop, shutdown=math.inf),
            ChildSpec(name="blocker", factory=Blocker),
        ]
        timeout = math.inf
    return run(Supervisor(name="hostapp", max_restarts=2, within=10, children=children), shutdown_timeout=timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
