"""Workload 3 - start N actors under one supervisor: time and memory per actor."""


import trio

from benchmarks import _common, _peers
from benchmarks._common import Metric, memory_mark, memory_per_item, perf_counter, run_trio, runtime
from benchmarks.workloads import _idle

NAME = "start"
TITLE = "start actors under one supervisor"
N = 10_000
QUICK_N = 500
METRICS = [
    Metric("start_per_actor", "us/actor", digits=2, baseline="nursery.start each"),
    Metric("start_child_per_actor", "us/actor", digits=2, baseline="nursery.start each",
           raw_key="start_per_actor"),
    Metric("mem_per_actor", "bytes/actor", memory=True, digits=0, baseline="nursery.start each"),
]
DESCRIPTION = (
    "start_per_actor: open_tree() of a root Supervisor whose children are N idle actors "
    "(ChildSpec list built before timing), timed until open_tree has entered, i.e. all N "
    "children have run on_start; divided by N. start_child_per_actor: N sequential "
    "`await pool.start_child(ChildSpec(...))` on a DynamicSupervisor (second fresh trio.run). "
    "mem_per_actor: tracemalloc bytes allocated while the N actors of the static tree are alive "
    "(measured from just before open_tree to just after it entered), divided by N."
)
BASELINE = (
    "`await nursery.start(task)` N times; each task opens its own memory channel (capacity = "
    "our default mailbox size, its 'mailbox') and a trio.Event (signalled on exit, so it can "
    "be stopped one by one like ours), calls task_status.started(...) and reads the channel. "
    "The same raw figure serves as baseline for both start metrics."
)


# --------------------------------------------------------------------------- raw trio


async def _raw(n: int) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        m0 = memory_mark()
        t0 = perf_counter()
        await _idle.raw_start_all(nursery, n)
        elapsed = perf_counter() - t0
        result = memory_per_item(m0, n)
        nursery.cancel_scope.cancel()
    result["start_per_actor"] = elapsed / n * 1e6
    return result


def raw_trio(n: int) -> dict[str, float]:
    return run_trio(_raw, n)


# --------------------------------------------------------------------------- ours


async def _ours_static(n: int) -> dict[str, float]:
    _, sup = runtime()
    tree = _idle.our_tree(n)
    m0 = memory_mark()
    t0 = perf_counter()
    async with sup.open_tree(tree) as t:
        elapsed = perf_counter() - t0
        result = memory_per_item(m0, n)
        await t.stop()
    result["start_per_actor"] = elapsed / n * 1e6
    return result


async def _ours_dynamic(n: int) -> dict[str, float]:
    _, sup = runtime()
    idle = _idle.our_idle()
    tree = sup.Supervisor(name="bench", children=[sup.DynamicSupervisor(name="pool")])
    specs = [sup.ChildSpec(name=f"w{i}", factory=idle) for i in range(n)]
    async with sup.open_tree(tree) as t:
        pool = t.supervisor("pool")
        t0 = perf_counter()
        for spec in specs:
            await pool.start_child(spec)
        elapsed = perf_counter() - t0
        await t.stop()
    return {"start_child_per_actor": elapsed / n * 1e6}


def ours(n: int) -> dict[str, float]:
    runtime()
    result = run_trio(_ours_static, n)
    _common.prepare_repetition()
    if _common.memory_mark() is None:  # the dynamic phase has no memory metric
        result.update(run_trio(_ours_dynamic, n))
    return result


# --------------------------------------------------------------------------- triotp


async def _triotp(n: int) -> dict[str, float]:
    from triotp import supervisor

    _peers.triotp_init()
    countdown = _idle.Countdown(n)
    specs, opts = _idle.triotp_idle_specs(n, countdown.hit)
    async with trio.open_nursery() as nursery:
        m0 = memory_mark()
        t0 = perf_counter()
        await nursery.start(supervisor.start, specs, opts)
        await countdown.done.wait()
        elapsed = perf_counter() - t0
        result = memory_per_item(m0, n)
        nursery.cancel_scope.cancel()
    result["start_per_actor"] = elapsed / n * 1e6
    return result


def peer_triotp(n: int) -> dict[str, float]:
    _peers.require_triotp()
    with _peers.triotp_node():
        return run_trio(_triotp, n)


# --------------------------------------------------------------------------- pykka


def peer_pykka(n: int) -> dict[str, float]:
    _peers.require_pykka()
    idle = _idle.pykka_idle()
    with _peers.pykka_cleanup():
        m0 = memory_mark()
        t0 = perf_counter()
        for _ in range(n):
            idle.start()
        elapsed = perf_counter() - t0
        result = memory_per_item(m0, n)
    result["start_per_actor"] = elapsed / n * 1e6
    return result


NOTES = [
    "start/triotp: supervisor.start() with N gen_server child specs, timed until every "
    "gen_server has run init (triotp reports 'started' before its children run). "
    "triotp has a dynamic_supervisor but start_child is fire-and-forget, so no start_child figure.",
    "start/pykka: N x ThreadingActor.start(), one OS thread per actor; its mem_per_actor is "
    "Python heap only (tracemalloc does not see thread stacks).",
]
