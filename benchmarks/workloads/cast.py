"""Workload 1 - cast throughput: N one-way messages from one sender task to one actor.

Note: no ``from __future__ import annotations`` in workload modules - our runtime dispatches
handlers on their *annotated* message type, so annotations must be real classes.
"""

import functools
import threading

import attrs
import trio
import trio.lowlevel

from benchmarks import _common, _peers
from benchmarks._common import Metric, mailbox_size, perf_counter, run_trio, runtime

NAME = "cast"
TITLE = "cast throughput"
N = 200_000
QUICK_N = 10_000
METRICS = [
    Metric("batch_throughput", "msg/s", kind="rate", digits=0,
           baseline="send_nowait, receive_nowait drain"),
    Metric("awaited_throughput", "msg/s", kind="rate", digits=0,
           baseline="await send() per message"),
]
DESCRIPTION = (
    "One sender task sends N one-way messages (the same frozen attrs instance each time) to "
    "one actor whose handler adds msg.by to a counter and sets an event on the N-th message. "
    "Timed from the first send until the N-th message has been handled. batch_throughput: "
    "`ref.cast_nowait(msg)`, falling back to `await ref.cast(msg)` only when the mailbox is "
    "full (MailboxFull). awaited_throughput: `await ref.cast(msg)` per message."
)
BASELINE = (
    "A trio.open_memory_channel(CAPACITY) (CAPACITY = our default mailbox size, 1024), one "
    "sender, one receiver task doing the same counter work. batch: `send_nowait`, waiting in "
    "`await send()` only on WouldBlock (channel full); the receiver awaits `receive()` once "
    "and then drains with `receive_nowait()` until WouldBlock. awaited: `await send.send()` "
    "per message, received with `async for`."
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


async def _raw_batch(n: int) -> float:
    cap, _ = mailbox_size()
    send, recv = trio.open_memory_channel(cap)
    box = _Box(n)
    would_block = trio.WouldBlock

    async def receiver() -> None:
        receive, receive_nowait = recv.receive, recv.receive_nowait
        while True:
            msg = await receive()
            while True:
                box.count += msg.by
                if box.count == box.n:
                    box.done.set()
                try:
                    msg = receive_nowait()
                except would_block:
                    break

    msg = Increment(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.lowlevel.checkpoint()  # let the receiver park on the channel, as our actor does
        send_nowait = send.send_nowait
        t0 = perf_counter()
        for _ in range(n):
            try:
                send_nowait(msg)
            except would_block:
                await send.send(msg)
        await box.done.wait()
        elapsed = perf_counter() - t0
        nursery.cancel_scope.cancel()
    return n / elapsed


async def _raw_awaited(n: int) -> float:
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
        await trio.lowlevel.checkpoint()
        t0 = perf_counter()
        for _ in range(n):
            await send.send(msg)
        await box.done.wait()
        elapsed = perf_counter() - t0
        nursery.cancel_scope.cancel()
    return n / elapsed


def raw_trio(n: int) -> dict[str, float]:
    batch = run_trio(_raw_batch, n)
    _common.prepare_repetition()
    return {"batch_throughput": batch, "awaited_throughput": run_trio(_raw_awaited, n)}


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


async def _ours(n: int, batch: bool) -> float:
    actors, sup = runtime()
    sink = _our_actor()
    box = _Box(n)
    tree = sup.Supervisor(
        name="bench", children=[sup.ChildSpec(name="sink", factory=functools.partial(sink, box))]
    )
    msg = Increment(1)
    async with sup.open_tree(tree) as t:
        ref = t.ref("sink")
        cast = ref.cast
        if batch:
            cast_nowait = ref.cast_nowait
            full = actors.MailboxFull
            t0 = perf_counter()
            for _ in range(n):
                try:
                    cast_nowait(msg)
                except full:
                    await cast(msg)
        else:
            t0 = perf_counter()
            for _ in range(n):
                await cast(msg)
        await box.done.wait()
        elapsed = perf_counter() - t0
        await t.stop()
    return n / elapsed


def ours(n: int) -> dict[str, float]:
    runtime()
    batch = run_trio(_ours, n, True)
    _common.prepare_repetition()
    return {"batch_throughput": batch, "awaited_throughput": run_trio(_ours, n, False)}


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
    return {"awaited_throughput": n / elapsed}


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
    return {"batch_throughput": n / elapsed}


NOTES = [
    "cast/pykka: tell() never waits (unbounded queue.Queue), so it is shown in the batch row "
    "only; triotp's cast always awaits a capacity-0 (rendezvous) channel, so it is shown in the "
    "awaited row only.",
]
