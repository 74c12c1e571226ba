"""Workload 1 - cast throughput: N one-way messages from one sender task to one actor.

Note: no ``from __future__ import annotations`` in workload modules - our runtime dispatches
handlers on their *annotated* message type, so annotations must be real classes.
"""

import functools
import threading

import attrs
import trio
import trio.lowlevel

from benchmarks import _peers
from benchmarks._common import Metric, mailbox_size, perf_counter, run_trio, runtime

NAME = "cast"
TITLE = "cast throughput"
N = 200_000
QUICK_N = 10_000
METRICS = [
    Metric("throughput", "msg/s", kind="rate", digits=0),
    Metric("batched_throughput", "msg/s", kind="rate", digits=0),
]
DESCRIPTION = (
    "One sender task sends N one-way messages (the same frozen attrs instance each time) to "
    "one actor whose handler adds msg.by to a counter and sets an event on the N-th message. "
    "Timed from the first send until the N-th message has been handled. throughput: one "
    "waiting send per message (await ref.cast, a checkpoint each). batched_throughput: the "
    "non-waiting send (ref.cast_nowait) until the mailbox is full, then one waiting send."
)
BASELINE = (
    "trio.open_memory_channel(CAPACITY) with CAPACITY = our default mailbox size; one sender "
    "task, one receiver task doing the same counter work; await send.send(msg) per message for "
    "throughput, send.send_nowait(msg) until trio.WouldBlock then await send.send(msg) for "
    "batched_throughput."
)


@attrs.frozen
class Increment:
    by: int = 1


class _Box:
    """State shared by the sender and the receiver (created inside the trio.run)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = trio.Event()


# --------------------------------------------------------------------------- raw trio


async def _raw(n: int) -> dict[str, float]:
    cap, _ = mailbox_size()
    send, recv = trio.open_memory_channel(cap)
    box = _Box(n)

    async def receiver() -> None:
        async for msg in recv:
            box.count += msg.by
            if box.count == box.n:
                box.done.set()

    msg = Increment(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.lowlevel.checkpoint()  # let the receiver park on the channel, as our actor does
        t0 = perf_counter()
        for _ in range(n):
            await send.send(msg)
        await box.done.wait()
        elapsed = perf_counter() - t0
        box.count, box.done = 0, trio.Event()
        await trio.lowlevel.checkpoint()
        t0 = perf_counter()
        for _ in range(n):
            try:
                send.send_nowait(msg)
            except trio.WouldBlock:
                await send.send(msg)
        await box.done.wait()
        batched = perf_counter() - t0
        nursery.cancel_scope.cancel()
    return {"throughput": n / elapsed, "batched_throughput": n / batched}


def raw_trio(n: int) -> dict[str, float]:
    return run_trio(_raw, n)


# --------------------------------------------------------------------------- ours


@functools.cache
def _our_actor() -> type:
    actors, _ = runtime()

    class Sink(actors.Actor):
        def __init__(self, box: _Box) -> None:
            super().__init__()
            self.box = box

        @actors.handler
        async def increment(self, msg: Increment) -> None:
            box = self.box
            box.count += msg.by
            if box.count == box.n:
                box.done.set()

    return Sink


async def _ours(n: int) -> dict[str, float]:
    actors, sup = runtime()
    sink = _our_actor()
    box = _Box(n)
    tree = sup.Supervisor(
        name="bench", children=[sup.ChildSpec(name="sink", factory=functools.partial(sink, box))]
    )
    msg = Increment(1)
    async with sup.open_tree(tree) as t:
        ref = t.ref("sink")
        t0 = perf_counter()
        for _ in range(n):
            await ref.cast(msg)
        await box.done.wait()
        elapsed = perf_counter() - t0
        box.count, box.done = 0, trio.Event()
        await trio.lowlevel.checkpoint()
        full = actors.MailboxFull
        t0 = perf_counter()
        for _ in range(n):
            try:
                ref.cast_nowait(msg)
            except full:
                await ref.cast(msg)
        await box.done.wait()
        batched = perf_counter() - t0
        await t.stop()
    return {"throughput": n / elapsed, "batched_throughput": n / batched}


def ours(n: int) -> dict[str, float]:
    runtime()
    return run_trio(_ours, n)


# --------------------------------------------------------------------------- triotp


async def _triotp(n: int) -> dict[str, float]:
    from triotp import gen_server, mailbox

    _peers.triotp_init()
    box = _Box(n)

    async def init(_arg: object) -> int:
        return 0

    async def handle_cast(msg: Increment, state: int) -> tuple[object, int]:
        state += msg.by
        if state == n:
            box.done.set()
        return gen_server.NoReply(), state

    mod = _peers.triotp_module("bench_cast_sink", init=init, handle_cast=handle_cast)
    msg = Increment(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gen_server.start, mod, None, "sink")
        while mailbox._resolve("sink") is None:
            await trio.lowlevel.checkpoint()
        t0 = perf_counter()
        for _ in range(n):
            await gen_server.cast("sink", msg)
        await box.done.wait()
        elapsed = perf_counter() - t0
        nursery.cancel_scope.cancel()
    return {"throughput": n / elapsed}


def peer_triotp(n: int) -> dict[str, float]:
    _peers.require_triotp()
    with _peers.triotp_node():
        return run_trio(_triotp, n)


# --------------------------------------------------------------------------- pykka


def peer_pykka(n: int) -> dict[str, float]:
    pykka = _peers.require_pykka()

    class Sink(pykka.ThreadingActor):
        def __init__(self, n: int, done: threading.Event) -> None:
            super().__init__()
            self.n = n
            self.count = 0
            self.done = done

        def on_receive(self, message: Increment) -> None:
            self.count += message.by
            if self.count == self.n:
                self.done.set()

    done = threading.Event()
    msg = Increment(1)
    with _peers.pykka_cleanup():
        ref = Sink.start(n, done)
        t0 = perf_counter()
        for _ in range(n):
            ref.tell(msg)
        if not done.wait(timeout=600):
            raise TimeoutError("pykka sink never saw the last message")
        elapsed = perf_counter() - t0
    return {"throughput": n / elapsed}


NOTES = [
    "cast/pykka: pykka mailboxes are unbounded queue.Queue (tell never waits); "
    "triotp mailboxes are capacity-0 (rendezvous) memory channels.",
]
