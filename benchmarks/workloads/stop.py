"""Workload 5 - stop a tree of N actors (our runtime stops children in reverse start order)."""

import trio

from benchmarks import _common, _peers
from benchmarks._common import Metric, perf_counter, run_trio, runtime
from benchmarks.workloads import _idle

NAME = "stop"
TITLE = "stop a tree of actors"
N = 10_000
QUICK_N = 500
METRICS = [
    Metric("stop_per_actor", "us/actor", digits=2, baseline="close + wait each, reverse"),
    Metric("stop_dynamic_per_actor", "us/actor", digits=2, baseline="close + wait each, reverse",
           raw_key="stop_per_actor"),
    Metric("stop_vs_cancel_all", "us/actor", digits=2, baseline="cancel-all (does less)",
           ours_key="stop_per_actor", raw_key="stop_cancel_all"),
]
DESCRIPTION = (
    "A root Supervisor with N idle actor children is started (untimed), then `await t.stop()` "
    "(graceful stop: children stopped one by one in reverse start order, each running its "
    "default on_stop) is timed until the open_tree block has exited; divided by N. "
    "stop_dynamic_per_actor: the same with the N actors added to a DynamicSupervisor with "
    "start_child (untimed), in a second fresh trio.run. stop_vs_cancel_all: our "
    "stop_per_actor again, against a raw nursery cancel (which does less)."
)
BASELINE = (
    "N raw actors (each a task owning a memory channel, started with nursery.start, untimed) "
    "are stopped one by one in reverse start order: close the actor's send channel, wait for "
    "the event its task sets when its receive loop has ended; timed until the nursery exits. "
    "Labelled 'cancel-all (does less)': nursery.cancel_scope.cancel() of the same N tasks "
    "(everything at once, no order, no grace)."
)


async def _raw(n: int) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        started = await _idle.raw_start_all(nursery, n)
        t0 = perf_counter()
        await _idle.raw_stop_all(started)
    elapsed = perf_counter() - t0
    return {"stop_per_actor": elapsed / n * 1e6}


async def _raw_cancel_all(n: int) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        await _idle.raw_start_all(nursery, n)
        t0 = perf_counter()
        nursery.cancel_scope.cancel()
    elapsed = perf_counter() - t0
    return {"stop_cancel_all": elapsed / n * 1e6}


def raw_trio(n: int) -> dict[str, float]:
    result = run_trio(_raw, n)
    _common.prepare_repetition()
    result.update(run_trio(_raw_cancel_all, n))
    return result


async def _ours(n: int) -> dict[str, float]:
    _, sup = runtime()
    tree = _idle.our_tree(n)
    async with sup.open_tree(tree) as t:
        t0 = perf_counter()
        await t.stop()
    elapsed = perf_counter() - t0
    return {"stop_per_actor": elapsed / n * 1e6}


async def _ours_dynamic(n: int) -> dict[str, float]:
    _, sup = runtime()
    idle = _idle.our_idle()
    tree = sup.Supervisor(name="bench", children=[sup.DynamicSupervisor(name="pool")])
    specs = [sup.ChildSpec(name=f"w{i}", factory=idle) for i in range(n)]
    async with sup.open_tree(tree) as t:
        pool = t.supervisor("pool")
        for spec in specs:
            await pool.start_child(spec)
        t0 = perf_counter()
        await t.stop()
    elapsed = perf_counter() - t0
    return {"stop_dynamic_per_actor": elapsed / n * 1e6}


def ours(n: int) -> dict[str, float]:
    runtime()
    result = run_trio(_ours, n)
    _common.prepare_repetition()
    result.update(run_trio(_ours_dynamic, n))
    return result


async def _triotp(n: int) -> dict[str, float]:
    from triotp import supervisor

    _peers.triotp_init()
    countdown = _idle.Countdown(n)
    specs, opts = _idle.triotp_idle_specs(n, countdown.hit)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.start, specs, opts)
        await countdown.done.wait()
        t0 = perf_counter()
        nursery.cancel_scope.cancel()
    elapsed = perf_counter() - t0
    return {"stop_per_actor": elapsed / n * 1e6}


def peer_triotp(n: int) -> dict[str, float]:
    _peers.require_triotp()
    with _peers.triotp_node():
        return run_trio(_triotp, n)


def peer_pykka(n: int) -> dict[str, float]:
    pykka = _peers.require_pykka()
    idle = _idle.pykka_idle()
    with _peers.pykka_cleanup():
        for _ in range(n):
            idle.start()
        t0 = perf_counter()
        pykka.ActorRegistry.stop_all(block=True, timeout=600)
        elapsed = perf_counter() - t0
    return {"stop_per_actor": elapsed / n * 1e6}


NOTES = [
    "stop/triotp: no graceful tree stop exists (application.stop cancels the app nursery), "
    "so the supervisor's nursery is cancelled.",
    "stop/pykka: ActorRegistry.stop_all(block=True) - stops actors one by one in reverse "
    "start order, each stop a message to its thread plus a join.",
]
