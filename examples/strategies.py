"""The three restart strategies side by side: the same crash, three different sets of restarts.

    python examples/strategies.py

Three supervisors, ``one_for_one``, ``one_for_all`` and ``rest_for_one``, each run three
workers ``a``, ``b`` and ``c`` (started in that order). In each, ``b`` crashes on purpose once,
half a second after it starts. Each worker logs ``started`` every time it starts, so the log shows
which workers were restarted:

- one_for_one:  only ``b`` is restarted;
- one_for_all:  the other workers are stopped (``c``, then ``a``: reverse start order), then all
  three start again in order;
- rest_for_one: ``b`` and the workers started after it (``c``) are restarted; ``a`` keeps running.

When all three crashes have been handled, ``report`` logs the restart count of every worker
from ``Tree.snapshot()``. Stop it with Ctrl-C (exit code 0).
"""

from __future__ import annotations

import functools
import logging

import trio

from actors import BackgroundService
from supervisors import ChildSpec, ChildState, Strategy, Supervisor, current_tree, run

log = logging.getLogger("strategies")

crashed: set[str] = set()  # the paths of the workers that have already crashed (once each)


class Worker(BackgroundService):
    """Logs ``started`` and then idles; with ``crash=True`` its first incarnation crashes after 0.5 s."""

    def __init__(self, *, crash: bool = False) -> None:
        self.crash = crash

    async def on_start(self) -> None:
        log.info("%s started", self.path)

    async def execute(self) -> None:
        if self.crash and self.path not in crashed:
            await trio.sleep(0.5)
            crashed.add(self.path)
            raise RuntimeError(f"{self.path} crashes on purpose")
        await trio.sleep_forever()


def workers() -> list[ChildSpec]:
    return [
        ChildSpec(name="a", factory=Worker),
        ChildSpec(name="b", factory=functools.partial(Worker, crash=True)),
        ChildSpec(name="c", factory=Worker),
    ]


class Report(BackgroundService):
    """Waits until every ``b`` has been restarted and all workers run again, then logs the restarts."""

    async def execute(self) -> None:
        tree = current_tree()
        names = [strategy.value for strategy in Strategy]
        while True:
            await trio.sleep(0.1)
            supervisors = [tree.snapshot().find(name) for name in names]
            workers = [child for node in supervisors if node is not None for child in node.children]
            restarted = [child for child in workers if child.name == "b" and child.restarts]
            if len(restarted) == len(names) and all(child.state is ChildState.RUNNING for child in workers):
                break
        for node in supervisors:
            assert node is not None
            counts = ", ".join(f"{child.name} {child.restarts}" for child in node.children)
            log.info("restarts under %-13s %s", node.name + ":", counts)
        log.info("report done")
        await trio.sleep_forever()


tree = Supervisor(
    name="strategies",
    children=[
        *(Supervisor(name=strategy.value, strategy=strategy, children=workers()) for strategy in Strategy),
        ChildSpec(name="report", factory=Report),
    ],
)

if __name__ == "__main__":
    raise SystemExit(run(tree))
