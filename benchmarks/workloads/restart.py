"""Workload 4 - restart latency of a one-for-one child that crashes N times."""

import contextlib
import functools
from typing import Any

import attrs
import trio
import trio.lowlevel

from benchmarks import _common, _peers
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
from benchmarks.workloads import _idle

NAME = "restart"
TITLE = "restart latency (one-for-one)"
N = 1_000
QUICK_N = 50
#: idle actors started before the crashing child in the *_siblings metrics
SIBLINGS = 100
METRICS = [
    Metric("restart_median", "us/restart", digits=1, baseline="one nursery, except, start again"),
    Metric("restart_p99", "us/restart", digits=1, baseline="one nursery, except, start again"),
    Metric("restart_siblings_median", "us/restart", digits=1,
           baseline="same + 100 idle sibling tasks"),
    Metric("restart_siblings_p99", "us/restart", digits=1,
           baseline="same + 100 idle sibling tasks"),
]
DESCRIPTION = (
    "A ONE_FOR_ONE Supervisor (max_restarts=10**9, within=5.0, no backoff) has one child. "
    "N times: the sender casts Crash (the handler records perf_counter() and raises), then "
    "calls Ping; the Ping handler - running in the restarted child, fed from the same "
    "mailbox, which belongs to the child slot - records perf_counter(). Sample = ping time "
    "minus crash time. restart_siblings_*: the same with 100 idle actors listed before the "
    "crashing child under the same supervisor (a second fresh trio.run). The 'supervisors' "
    "and 'actors' loggers get a NullHandler and propagate=False for the whole workload (raw "
    "Trio does not log)."
)
BASELINE = (
    "A supervisor task holding one long-lived nursery: `while True: exited = Event(); await "
    "nursery.start(child, exited); await exited.wait()`; the child reports started, reads "
    "the shared memory channel (capacity = our default mailbox size), raises Boom on Crash, "
    "catches it with a plain `except Boom` around its loop and sets `exited`. Same Crash/Ping "
    "protocol and timestamps; Ping replies through a trio.Event slot. *_siblings: 100 raw "
    "idle actors started in the same nursery first."
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


async def _raw(n: int, siblings: int) -> dict[str, float]:
    cap, _ = mailbox_size()
    send, recv = trio.open_memory_channel(cap)
    box = _Box()

    async def child(exited: trio.Event,
                    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async for msg in recv:
                if msg is _CRASH:
                    box.t_crash = perf_counter()
                    raise Boom
                box.t_ping = perf_counter()
                msg.event.set()
        except Boom:
            pass  # crashed: report the exit to the supervisor
        exited.set()

    async def supervise(task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await _idle.raw_start_all(nursery, siblings)
            started = False
            while True:
                exited = trio.Event()
                await nursery.start(child, exited)
                if not started:
                    started = True
                    task_status.started()
                await exited.wait()

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


def _both(fn: Any, n: int) -> dict[str, float]:
    """One repetition: without siblings, then (fresh trio.run) with SIBLINGS idle siblings."""
    result = run_trio(fn, n, 0)
    _common.prepare_repetition()
    with_siblings = run_trio(fn, n, SIBLINGS)
    result.update({k.replace("restart_", "restart_siblings_"): v for k, v in with_siblings.items()})
    return result


def raw_trio(n: int) -> dict[str, float]:
    return _both(_raw, n)


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


async def _ours(n: int, siblings: int) -> dict[str, float]:
    _, sup = runtime()
    crashy, ping = _our_classes()
    idle = _idle.our_idle()
    box = _Box()
    tree = sup.Supervisor(
        name="bench",
        strategy=sup.Strategy.ONE_FOR_ONE,
        max_restarts=10**9,
        within=5.0,
        backoff=None,
        children=[
            *(sup.ChildSpec(name=f"idle{i}", factory=idle) for i in range(siblings)),
            sup.ChildSpec(name="crashy", factory=functools.partial(crashy, box)),
        ],
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
    return _both(_ours, n)


# --------------------------------------------------------------------------- triotp


async def _triotp(n: int, siblings: int) -> dict[str, float]:
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
    idle_specs, _ = _idle.triotp_idle_specs(siblings, lambda: None)
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
        await nursery.start(supervisor.start, [*idle_specs, spec], opts)
        for _ in range(n):
            await until_delivered(gen_server.cast, "crashy", _CRASH)
            await until_delivered(gen_server.call, "crashy", "ping")
            samples.append(box.t_ping - box.t_crash)
        nursery.cancel_scope.cancel()
    return latency_summary(samples, "restart")


def peer_triotp(n: int) -> dict[str, float]:
    _peers.require_triotp()
    with _peers.triotp_node():
        return _both(_triotp, n)


def peer_pykka(n: int) -> dict[str, float]:
    _peers.require_pykka()
    raise NotApplicable("pykka has no supervision: a crashed actor is not restarted")


NOTES = [
    "restart/triotp: messages sent while the gen_server is down are not queued (its mailbox "
    "dies with it): the sender retries on MailboxDoesNotExist with a checkpoint.",
]
