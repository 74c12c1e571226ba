"""Idle actors/tasks shared by the ``start`` and ``stop`` workloads (not a workload itself)."""

import functools

import attrs
import trio

from benchmarks import _peers
from benchmarks._common import mailbox_size, runtime


@attrs.frozen
class Noop:
    pass


# --------------------------------------------------------------------------- raw trio


class RawActor:
    """What a raw 'actor' hands its starter: its mailbox's send side and its exit event."""

    __slots__ = ("done", "send")

    def __init__(self, send: trio.MemorySendChannel[object], done: trio.Event) -> None:
        self.send = send
        self.done = done

    async def stop(self) -> None:
        """Graceful stop, one actor: close its mailbox, wait until its task has returned."""
        self.send.close()
        await self.done.wait()


async def raw_idle_task(cap: int, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """A raw 'actor': owns a memory channel (its mailbox), reports started (the start
    handshake), reads messages until the channel is closed, then signals its exit."""
    send, recv = trio.open_memory_channel[object](cap)
    done = trio.Event()
    task_status.started(RawActor(send, done))
    async for _msg in recv:
        pass
    done.set()


async def raw_start_all(nursery: trio.Nursery, n: int) -> list[RawActor]:
    cap, _ = mailbox_size()
    start = nursery.start
    return [await start(raw_idle_task, cap) for _ in range(n)]


async def raw_stop_all(started: list[RawActor]) -> None:
    """Stop raw actors one by one in reverse start order, each waited for."""
    for actor in reversed(started):
        await actor.stop()


# --------------------------------------------------------------------------- ours


@functools.cache
def our_idle() -> type:
    actors, _ = runtime()

    class Idle(actors.Actor):
        @actors.handler
        async def noop(self, msg: Noop) -> None:
            pass

    return Idle


def our_tree(n: int) -> object:
    """A root supervisor with n idle actor children (specs built outside any timed region)."""
    _, sup = runtime()
    idle = our_idle()
    return sup.Supervisor(
        name="bench",
        children=[sup.ChildSpec(name=f"a{i}", factory=idle) for i in range(n)],
    )


# --------------------------------------------------------------------------- triotp


def triotp_idle_specs(n: int, on_init: object) -> tuple[list[object], object]:
    """n gen_server child specs; ``on_init()`` is called by each gen_server's init."""
    from triotp import gen_server, supervisor

    async def init(_arg: object) -> None:
        on_init()

    mod = _peers.triotp_module("bench_idle", init=init)
    specs = [
        supervisor.child_spec(id=f"a{i}", task=gen_server.start, args=[mod, None, None])
        for i in range(n)
    ]
    return specs, supervisor.options(max_restarts=3, max_seconds=5)


class Countdown:
    """Sets ``done`` once ``hit()`` was called n times (triotp reports 'started' before its
    gen_servers have run init, so readiness is observed through init itself)."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.done = trio.Event()

    def hit(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


# --------------------------------------------------------------------------- pykka


@functools.cache
def pykka_idle() -> type:
    pykka = _peers.require_pykka()

    class Idle(pykka.ThreadingActor):
        def on_receive(self, message: object) -> None:
            return None

    return Idle
