"""Workload 4 - restart latency of a one-for-one child that crashes N times."""

import contextlib
import functools

import attrs
import trio
import trio.lowlevel

from benchmarks import _peers
from benchmarks._common import (
    Metric,
    NotApplicable,
    latency_summary,
    mailbox_size,
    perf_counter,
    run_trio,
    runtime,
    silenced_loggers,
)

NAME = "restart"
TITLE = "restart latency (one-for-one)"
N = 1_000
QUICK_N = 50
METRICS = [
    Metric("restart_median", "us/restart", digits=1),
    Metric("restart_p99", "us/restart", digits=1),
]
DESCRIPTION = (
    "A ONE_FOR_ONE Supervisor (max_restarts=10**9, within=5.0, no backoff) has one child. "
    "N times: the sender casts Crash (the handler records perf_counter() and raises), then "
    "calls Ping; the Ping handler - running in the restarted child, fed from the same "
    "mailbox, which belongs to the child slot - records perf_counter(). Sample = ping time "
    "minus crash time. The 'supervisors' and 'actors' loggers get a NullHandler and "
    "propagate=False for the whole workload (raw Trio does not log)."
)
BASELINE = (
    "A supervisor-like loop: `async with open_nursery() as n: await n.start(child, mailbox)` "
    "inside `while True: try ... except* Boom: pass`; the child reads the shared memory "
    "channel (capacity = our default mailbox size) and raises on Crash. Same Crash/Ping "
    "protocol and timestamps; Ping replies through a trio.Event slot."
)


@attrs.frozen
class Crash:
    pass


class Boom(Exception):
    """The deliberate crash."""


class _Box:
    def __init__(self) -> None:
        self.t_crash = 0.0
        self.t_ping = 0.0


@contextlib.contextmanager
def context():  # used by run.py around every implementation of this workload
    with silenced_loggers("supervisors", "actors"):
        yield


# --------------------------------------------------------------------------- raw trio


class _Slot:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = trio.Event()


_CRASH = Crash()


async def _raw(n: int) -> dict[str, float]:
    cap, _ = mailbox_size()
    send, recv = trio.open_memory_channel(cap)
    box = _Box()

    async def child(task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for msg in recv:
            if msg is _CRASH:
                box.t_crash = perf_counter()
                raise Boom
            box.t_ping = perf_counter()
            msg.event.set()

    async def supervise(task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(child)
                    if not started:
                        started = True
                        task_status.started()
            except* Boom:
                pass  # crashed: loop round and start a fresh child

    samples = []
    async with trio.open_nursery() as nursery:
        await nursery.start(supervise)
        for _ in range(n):
            await send.send(_CRASH)
            slot = _Slot()
            await send.send(slot)
            await slot.event.wait()
            samples.append(box.t_ping - box.t_crash)
        nursery.cancel_scope.cancel()
    return latency_summary(samples, "restart")


def raw_trio(n: int) -> dict[str, float]:
    return run_trio(_raw, n)


# --------------------------------------------------------------------------- ours


@functools.cache
def _our_classes() -> tuple[type, type]:
    actors, _ = runtime()

    class Ping(actors.Request[int]):
        pass

    class Crashy(actors.Actor):
        def __init__(self, box: _Box) -> None:
            super().__init__()
            self.box = box

        @actors.handler
        async def crash(self, msg: Crash) -> None:
            self.box.t_crash = perf_counter()
            raise Boom

        @actors.handler
        async def ping(self, msg: Ping) -> int:
            self.box.t_ping = perf_counter()
            return 0

    return Crashy, Ping


async def _ours(n: int) -> dict[str, float]:
    _, sup = runtime()
    crashy, ping = _our_classes()
    box = _Box()
    tree = sup.Supervisor(
        name="bench",
        strategy=sup.Strategy.ONE_FOR_ONE,
        max_restarts=10**9,
        within=5.0,
        backoff=None,
        children=[sup.ChildSpec(name="crashy", factory=functools.partial(crashy, box))],
    )
    crash, req = Crash(), ping()
    samples = []
    async with sup.open_tree(tree) as t:
        ref = t.ref("crashy")
        for _ in range(n):
            await ref.cast(crash)
            await ref.call(req)
            samples.append(box.t_ping - box.t_crash)
        await t.stop()
    return latency_summary(samples, "restart")


def ours(n: int) -> dict[str, float]:
    runtime()
    return run_trio(_ours, n)


# --------------------------------------------------------------------------- triotp


async def _triotp(n: int) -> dict[str, float]:
    from triotp import gen_server, mailbox, supervisor

    _peers.triotp_init()
    box = _Box()

    async def init(_arg: object) -> None:
        return None

    async def handle_cast(_msg: object, _state: object) -> tuple[object, object]:
        box.t_crash = perf_counter()
        raise Boom

    async def handle_call(_msg: object, _caller: object, state: object) -> tuple[object, object]:
        box.t_ping = perf_counter()
        return gen_server.Reply(payload=0), state

    mod = _peers.triotp_module("bench_crashy", init=init, handle_cast=handle_cast,
                               handle_call=handle_call)
    spec = supervisor.child_spec(id="crashy", task=gen_server.start, args=[mod, None, "crashy"],
                                 restart=supervisor.restart_strategy.PERMANENT)
    opts = supervisor.options(max_restarts=10**9, max_seconds=5)
    # While the gen_server is down its name is unregistered (MailboxDoesNotExist) or its
    # channel is being closed under a blocked sender (ClosedResourceError): retry.
    retry = (mailbox.MailboxDoesNotExist, trio.ClosedResourceError, trio.BrokenResourceError)

    async def until_delivered(fn: object, *args: object) -> None:
        while True:
            try:
                return await fn(*args)
            except retry:
                await trio.lowlevel.checkpoint()

    samples = []
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.start, [spec], opts)
        for _ in range(n):
            await until_delivered(gen_server.cast, "crashy", _CRASH)
            await until_delivered(gen_server.call, "crashy", "ping")
            samples.append(box.t_ping - box.t_crash)
        nursery.cancel_scope.cancel()
    return latency_summary(samples, "restart")


def peer_triotp(n: int) -> dict[str, float]:
    _peers.require_triotp()
    with _peers.triotp_node():
        return run_trio(_triotp, n)


def peer_pykka(n: int) -> dict[str, float]:
    _peers.require_pykka()
    raise NotApplicable("pykka has no supervision: a crashed actor is not restarted")


NOTES = [
    "restart/triotp: messages sent while the gen_server is down are not queued (its mailbox "
    "dies with it): the sender retries on MailboxDoesNotExist with a checkpoint.",
]
