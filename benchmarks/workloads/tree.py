"""Workload 7 - a two-level tree of N actors (groups of 100 under one root) started and stopped."""

import math

import trio

from benchmarks import _common
from benchmarks._common import Metric, perf_counter, run_trio, runtime
from benchmarks.workloads import _idle

NAME = "tree"
TITLE = "start and stop a tree of actors"
N = 10_000
QUICK_N = 500
#: actors per group supervisor
FANOUT = 100
METRICS = [
    Metric("tree_start_per_actor", "us/actor", digits=2, baseline="nested nursery.start"),
    Metric("tree_stop_per_actor", "us/actor", digits=2, baseline="close + wait each, reverse"),
]
DESCRIPTION = (
    "A root Supervisor with ceil(N/100) child Supervisors of 100 idle actors each (specs "
    "built beforehand). tree_start_per_actor: open_tree() timed until it has entered (every "
    "actor started), / N. tree_stop_per_actor: `await t.stop()` (groups stopped in reverse "
    "order, each stopping its actors one by one in reverse order) timed until the open_tree "
    "block has exited, / N."
)
BASELINE = (
    "A root nursery starts ceil(N/100) group tasks with nursery.start; each group opens its "
    "own nursery, starts 100 raw actors (as in `start`) with nursery.start, then reports "
    "started. Stop: the root asks the groups in reverse order (an Event each) and waits for "
    "each to finish; a group stops its actors one by one in reverse order (close the channel, "
    "wait for the task's exit event) and then leaves its nursery."
)


def _groups(n: int) -> list[int]:
    count = math.ceil(n / FANOUT)
    return [min(FANOUT, n - i * FANOUT) for i in range(count)]


# --------------------------------------------------------------------------- raw trio


class _Group:
    __slots__ = ("done", "stop_requested")

    def __init__(self) -> None:
        self.stop_requested = trio.Event()
        self.done = trio.Event()

    async def stop(self) -> None:
        self.stop_requested.set()
        await self.done.wait()


async def _raw_group(size: int, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    group = _Group()
    async with trio.open_nursery() as nursery:
        started = await _idle.raw_start_all(nursery, size)
        task_status.started(group)
        await group.stop_requested.wait()
        await _idle.raw_stop_all(started)
    group.done.set()


async def _raw(n: int) -> dict[str, float]:
    sizes = _groups(n)
    async with trio.open_nursery() as nursery:
        t0 = perf_counter()
        groups = [await nursery.start(_raw_group, size) for size in sizes]
        started = perf_counter() - t0
        t1 = perf_counter()
        for group in reversed(groups):
            await group.stop()
    stopped = perf_counter() - t1
    return {"tree_start_per_actor": started / n * 1e6, "tree_stop_per_actor": stopped / n * 1e6}


def raw_trio(n: int) -> dict[str, float]:
    return run_trio(_raw, n)


# --------------------------------------------------------------------------- ours


def _our_tree(n: int) -> object:
    _, sup = runtime()
    idle = _idle.our_idle()
    groups = []
    for g, size in enumerate(_groups(n)):
        children = [sup.ChildSpec(name=f"a{i}", factory=idle) for i in range(size)]
        groups.append(sup.Supervisor(name=f"g{g}", children=children))
    return sup.Supervisor(name="bench", children=groups)


async def _ours(n: int) -> dict[str, float]:
    _, sup = runtime()
    tree = _our_tree(n)
    t0 = perf_counter()
    async with sup.open_tree(tree) as t:
        started = perf_counter() - t0
        t1 = perf_counter()
        await t.stop()
    stopped = perf_counter() - t1
    return {"tree_start_per_actor": started / n * 1e6, "tree_stop_per_actor": stopped / n * 1e6}


def ours(n: int) -> dict[str, float]:
    runtime()
    _common.prepare_repetition()
    return run_trio(_ours, n)


NOTES = [
    "tree: no peer figures (pykka has no supervision tree; triotp has no graceful tree stop).",
]
