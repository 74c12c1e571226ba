"""Workload 2 - call round trip: N sequential request/reply calls to one actor."""

import functools

import trio
import trio.lowlevel

from benchmarks import _peers
from benchmarks._common import (
    Metric,
    latency_summary,
    mailbox_size,
    perf_counter,
    run_trio,
    runtime,
)

NAME = "call"
TITLE = "call round trip"
N = 20_000
QUICK_N = 1_000
METRICS = [
    Metric("call_median", "us/call", digits=2, baseline="channel + Event reply slot"),
    Metric("call_p99", "us/call", digits=2, baseline="channel + Event reply slot"),
]
DESCRIPTION = (
    "One caller task makes N sequential calls to one actor whose handler increments a counter "
    "and returns it. Each call is timed individually (perf_counter around the awaited call); "
    "reported: median and p99 (nearest rank) per call. Ours uses ref.call(req) with its "
    "default timeout (5 s), i.e. what an application writes."
)
BASELINE = (
    "A request memory channel (capacity = our default mailbox size) carrying (request, slot), "
    "where slot holds a fresh trio.Event and the reply value: the server stores the reply and "
    "sets the event. This was the fastest idiomatic raw-Trio request/reply we measured: about "
    "30% faster than a fresh open_memory_channel(1) per call (10.1 us vs 13.9 us median on the "
    "development machine); the channel variant is kept as raw_trio_reply_channel() for reference."
)


class _Slot:
    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.value: object = None


class _Get:
    """Raw-Trio request object (ours uses a Request subclass)."""

    __slots__ = ()


# --------------------------------------------------------------------------- raw trio


async def _raw(n: int) -> dict[str, float]:
    cap, _ = mailbox_size()
    send, recv = trio.open_memory_channel(cap)

    async def server() -> None:
        count = 0
        async for _req, slot in recv:
            count += 1
            slot.value = count
            slot.event.set()

    req = _Get()
    samples = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        await trio.lowlevel.checkpoint()
        for _ in range(n):
            t0 = perf_counter()
            slot = _Slot()
            await send.send((req, slot))
            await slot.event.wait()
            _ = slot.value
            samples.append(perf_counter() - t0)
        nursery.cancel_scope.cancel()
    return latency_summary(samples, "call")


def raw_trio(n: int) -> dict[str, float]:
    return run_trio(_raw, n)


async def _raw_reply_channel(n: int) -> dict[str, float]:
    cap, _ = mailbox_size()
    send, recv = trio.open_memory_channel(cap)

    async def server() -> None:
        count = 0
        async for _req, reply in recv:
            count += 1
            reply.send_nowait(count)

    req = _Get()
    samples = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        await trio.lowlevel.checkpoint()
        for _ in range(n):
            t0 = perf_counter()
            reply_send, reply_recv = trio.open_memory_channel(1)
            await send.send((req, reply_send))
            await reply_recv.receive()
            samples.append(perf_counter() - t0)
        nursery.cancel_scope.cancel()
    return latency_summary(samples, "call")


def raw_trio_reply_channel(n: int) -> dict[str, float]:
    """Alternative baseline (slower): a fresh open_memory_channel(1) per call."""
    return run_trio(_raw_reply_channel, n)


# --------------------------------------------------------------------------- ours


@functools.cache
def _our_classes() -> tuple[type, type]:
    actors, _ = runtime()

    class GetCount(actors.Request[int]):
        pass

    class Counter(actors.Actor):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        @actors.handler
        async def get(self, msg: GetCount) -> int:
            self.count += 1
            return self.count

    return Counter, GetCount


async def _ours(n: int) -> dict[str, float]:
    _, sup = runtime()
    counter, get_count = _our_classes()
    tree = sup.Supervisor(name="bench", children=[sup.ChildSpec(name="counter", factory=counter)])
    req = get_count()
    samples = []
    async with sup.open_tree(tree) as t:
        ref = t.ref("counter")
        for _ in range(n):
            t0 = perf_counter()
            await ref.call(req)
            samples.append(perf_counter() - t0)
        await t.stop()
    return latency_summary(samples, "call")


def ours(n: int) -> dict[str, float]:
    runtime()
    return run_trio(_ours, n)


# --------------------------------------------------------------------------- triotp


async def _triotp(n: int) -> dict[str, float]:
    from triotp import gen_server, mailbox

    _peers.triotp_init()

    async def init(_arg: object) -> int:
        return 0

    async def handle_call(_msg: object, _caller: object, state: int) -> tuple[object, int]:
        state += 1
        return gen_server.Reply(payload=state), state

    mod = _peers.triotp_module("bench_call_counter", init=init, handle_call=handle_call)
    req = _Get()
    samples = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gen_server.start, mod, None, "counter")
        while mailbox._resolve("counter") is None:
            await trio.lowlevel.checkpoint()
        for _ in range(n):
            t0 = perf_counter()
            await gen_server.call("counter", req)
            samples.append(perf_counter() - t0)
        nursery.cancel_scope.cancel()
    return latency_summary(samples, "call")


def peer_triotp(n: int) -> dict[str, float]:
    _peers.require_triotp()
    with _peers.triotp_node():
        return run_trio(_triotp, n)


# --------------------------------------------------------------------------- pykka


def peer_pykka(n: int) -> dict[str, float]:
    pykka = _peers.require_pykka()

    class Counter(pykka.ThreadingActor):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def on_receive(self, message: object) -> int:
            self.count += 1
            return self.count

    req = _Get()
    samples = []
    with _peers.pykka_cleanup():
        ref = Counter.start()
        for _ in range(n):
            t0 = perf_counter()
            ref.ask(req, timeout=60)
            samples.append(perf_counter() - t0)
    return latency_summary(samples, "call")


NOTES = [
    "call/raw_trio: request channel + per-call trio.Event reply slot (fastest idiomatic "
    "raw-Trio request/reply; a fresh open_memory_channel(1) per call is ~30% slower).",
    "call/pykka: ask() blocks the calling OS thread on a threading-based future; "
    "triotp call uses a fresh capacity-0 channel per call.",
]
