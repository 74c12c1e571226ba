"""Workload - what the dashboard and its metrics cost the runtime: cast and restart with the
dashboard child in the tree, without and with a connected live page.

Note: no ``from __future__ import annotations`` in workload modules (see cast.py).
"""

import contextlib
import functools

import trio

from benchmarks import _common
from benchmarks._common import (
    Metric,
    RuntimeUnavailable,
    latency_summary,
    perf_counter,
    run_trio,
    runtime,
    silenced_loggers,
)
from benchmarks.workloads import cast, restart

NAME = "dashboard"
TITLE = "cast and restart with the dashboard (and a live page)"
N = 100_000
QUICK_N = 2_000
RESTART_DIVISOR = 100  # restarts per repetition: N / 100 (1000 full, 20 quick)
METRICS = [
    Metric("awaited_throughput_dashboard", "msg/s", kind="rate", digits=0, ours_key="awaited_throughput_dashboard",
           raw_key="awaited_throughput", baseline="await send() per message"),
    Metric("awaited_throughput_live", "msg/s", kind="rate", digits=0, ours_key="awaited_throughput_live",
           raw_key="awaited_throughput", baseline="await send() per message"),
    Metric("restart_median_dashboard", "us/restart", digits=1, ours_key="restart_median_dashboard",
           raw_key="restart_median", baseline="one nursery, except, start again"),
    Metric("restart_median_live", "us/restart", digits=1, ours_key="restart_median_live",
           raw_key="restart_median", baseline="one nursery, except, start again"),
]
DESCRIPTION = (
    "The cast workload's awaited_throughput and the restart workload's restart_median (no "
    "siblings), with `supervisors.dashboard.dashboard()` as the tree's last child on "
    "127.0.0.1:0 (it listens to every event, so the supervisors build the frequent start/stop "
    "events, and counts crashes for /metrics). *_live: a live page is connected as well: an "
    "HTTP client in the same trio.run reads /events and, like the page's script, fetches "
    "/partials/tree on every notice (each restart is one, coalesced per burst). Compare the "
    "ratios with the cast and restart rows: the difference is the dashboard's cost."
)
BASELINE = "The raw Trio designs of the cast (awaited) and restart workloads, unchanged."


@contextlib.contextmanager
def context():  # used by run.py around every implementation of this workload
    with silenced_loggers("supervisors", "actors", "hypercorn", "hypercorn.error", "supervisors.web"):
        yield


def _restarts(n: int) -> int:
    return max(10, n // RESTART_DIVISOR)


def raw_trio(n: int) -> dict[str, float]:
    result = {"awaited_throughput": run_trio(cast._raw_awaited, n)}
    _common.prepare_repetition()
    result.update(run_trio(restart._raw, _restarts(n), 0))
    return result


def _dashboard_spec():
    try:
        from supervisors.dashboard import dashboard
    except ImportError as exc:
        raise RuntimeUnavailable(f"the dashboard extra is not installed: {exc}") from exc
    from hypercorn.config import Config

    quiet = Config()
    quiet.errorlog = None  # no "Running on ..." line per repetition
    return dashboard(address="127.0.0.1:0", grace=0.5, live_interval=2.0, config=quiet)


@contextlib.asynccontextmanager
async def _live_page(tree, live: bool):
    """A connected page (read /events, fetch /partials/tree per notice), or nothing."""
    if not live:
        yield
        return
    import httpx

    from supervisors.web import ServerUrls

    url = (await tree.ref("dashboard").call(ServerUrls()))[0]
    connected = trio.Event()
    async with httpx.AsyncClient(base_url=url) as client, trio.open_nursery() as nursery:

        async def page() -> None:
            with contextlib.suppress(httpx.HTTPError):
                async with client.stream("GET", "/events") as stream, contextlib.aclosing(
                        stream.aiter_lines()) as lines:
                    async for line in lines:
                        if line == "event: hello":
                            connected.set()
                        elif line in ("event: tree", "event: tick"):
                            await client.get("/partials/tree")

        nursery.start_soon(page)
        await connected.wait()
        yield
        nursery.cancel_scope.cancel()


async def _cast(n: int, live: bool) -> float:
    _, sup = runtime()
    sink = cast._our_actor()
    box = cast._Box(n)
    tree = sup.Supervisor(name="bench", children=[
        sup.ChildSpec(name="sink", factory=functools.partial(sink, box)), _dashboard_spec()])
    msg = cast.Increment(1)
    async with sup.open_tree(tree) as t:
        async with _live_page(t, live):
            send = t.ref("sink").cast
            t0 = perf_counter()
            for _ in range(n):
                await send(msg)
            await box.done.wait()
            elapsed = perf_counter() - t0
        await t.stop()
    return n / elapsed


async def _restart(n: int, live: bool) -> dict[str, float]:
    _, sup = runtime()
    crashy, ping = restart._our_classes()
    box = restart._Box()
    tree = sup.Supervisor(
        name="bench", max_restarts=10**9, within=5.0, backoff=None,
        children=[sup.ChildSpec(name="crashy", factory=functools.partial(crashy, box)), _dashboard_spec()],
    )
    crash, req = restart.Crash(), ping()
    samples = []
    async with sup.open_tree(tree) as t:
        async with _live_page(t, live):
            ref = t.ref("crashy")
            for _ in range(n):
                await ref.cast(crash)
                await ref.call(req)
                samples.append(box.t_ping - box.t_crash)
        await t.stop()
    return latency_summary(samples, "restart")


def ours(n: int) -> dict[str, float]:
    runtime()
    result: dict[str, float] = {}
    for suffix, live in (("dashboard", False), ("live", True)):
        _common.prepare_repetition()
        result[f"awaited_throughput_{suffix}"] = run_trio(_cast, n, live)
        _common.prepare_repetition()
        result[f"restart_median_{suffix}"] = run_trio(_restart, _restarts(n), live)["restart_median"]
    return result
