"""ActorCell: runs the incarnations of one actor child slot.

It implements the `ChildCell` protocol of `_contract.py` (the contract with whatever supervises
actors): the supervisor creates one cell per incarnation through `actor_cell`, runs
:meth:`ActorCell.run` in a task of its own nursery inside a cancel scope it controls, and asks
it to stop with :meth:`ActorCell.request_stop`. ``run`` returns on a normal exit and raises on a
crash; ``current`` is the message whose handler was running at that moment.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import trio

from ._actor import Actor, BackgroundService, has_hook
from ._mailbox import Call, Mailbox, TimerMessage, fail_call, sender_mailbox
from ._ref import ActorRef
from ._timers import TimerHandle, run_timer

if TYPE_CHECKING:
    from ._contract import StartStatus

__all__ = ["ActorCell", "Spawn"]

logger = logging.getLogger("actors")

Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]


class ActorCell:
    """One incarnation of an actor (see the module docstring)."""

    __slots__ = (
        "_execute_scope",
        "_requested_by_supervisor",
        "_spawn",
        "_stop_event",
        "_stop_requested",
        "_timers",
        "actor",
        "current",
        "factory",
        "grace",
        "immediate",
        "mailbox",
        "path",
        "ref",
    )

    def __init__(
        self,
        path: str,
        factory: Callable[[], Any],
        mailbox: Mailbox,
        ref: ActorRef,
        spawn: Spawn,
        grace: float = math.inf,
    ) -> None:
        self.path = path
        self.grace = grace
        self.factory = factory
        self.mailbox = mailbox
        self.ref = ref
        self._spawn = spawn
        self.actor: Actor | None = None
        self.current: object = None
        self.immediate = False
        self._stop_requested = False
        self._stop_event: trio.Event | None = None
        self._requested_by_supervisor = False
        self._execute_scope: trio.CancelScope | None = None
        self._timers: set[TimerHandle] | None = None

    # -- control (called by the supervisor) ------------------------------------------------

    def request_stop(self, *, immediate: bool, by_supervisor: bool = True) -> None:
        """Ask the incarnation to end: after the current message, or at once if ``immediate``.

        ``immediate`` only records that ``on_stop`` must not run; the supervisor cancels the
        scope around :meth:`run` itself. ``by_supervisor=False`` is the actor's own
        :meth:`Actor.stop` (a normal exit).
        """
        self._stop_requested = True
        self._requested_by_supervisor = self._requested_by_supervisor or by_supervisor
        self.immediate = self.immediate or immediate
        if self._stop_event is not None:
            self._stop_event.set()
        scope = self._execute_scope
        if scope is not None and (immediate or getattr(self.actor, "cancel_on_stop", True)):
            scope.cancel()
        self.mailbox.wake()

    async def wait_stop_requested(self) -> None:
        if self._stop_requested:
            await trio.lowlevel.checkpoint()
            return
        if self._stop_event is None:
            self._stop_event = trio.Event()
        await self._stop_event.wait()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def start_timer(self, msg: object, delay: float, interval: float | None) -> TimerHandle:
        handle = TimerHandle()
        timers = self._timers
        if timers is None:
            timers = self._timers = set()
        timers.add(handle)
        mailbox = self.mailbox

        async def timer() -> None:
            try:
                await run_timer(handle, mailbox, msg, delay, interval, self)
            finally:
                timers.discard(handle)

        self._spawn(timer)
        return handle

    def _cancel_timers(self) -> None:
        timers = self._timers
        if timers:
            for handle in list(timers):
                handle.cancel()


    # -- running ---------------------------------------------------------------------------

    async def run(self, task_status: StartStatus) -> None:
        # Sends from this task (and the tasks it starts) are this actor's: a send that waits for
        # room names it, and cycles of waiting actors are found through blocked_on.
        sender_mailbox.set(self.mailbox)
        actor = self.factory()
        if not isinstance(actor, Actor):
            raise TypeError(
                f"the factory of {self.path!r} returned {actor!r}, not an Actor; pass the actor "
                "class or a callable that returns an instance"
            )
        cls = type(actor)
        if cls._unresolved:
            cls._resolve_handlers()
        actor._cell = self
        self.actor = actor
        mailbox = self.mailbox
        if mailbox.accepted is not cls._handlers:  # a new mailbox, or a factory of another class
            mailbox.handles = cls._accepts_of_class()
            mailbox.accepted = cls._handlers
        try:
            on_start = has_hook(actor, "on_start")
            if on_start is not None:
                await on_start()
            task_status.started()
            # Serving (inlined here rather than in a method of its own: one coroutine less per actor).
            try:
                if isinstance(actor, BackgroundService):
                    await self._run_background(actor)
                else:
                    await self._loop(actor)
            except Exception:
                self._cancel_timers()
                on_stop = None if self.immediate else has_hook(actor, "on_stop")
                if on_stop is not None:
                    await self._on_stop_after_crash(on_stop)
                raise
            self._cancel_timers()
            on_stop = has_hook(actor, "on_stop")
            if on_stop is not None and not self.immediate:
                if self._stop_requested and self._requested_by_supervisor:
                    await on_stop()  # the supervisor's cancel scope bounds it
                else:
                    await self._bounded(on_stop)
        finally:
            # Timers belong to this incarnation (also one started by on_start before it failed,
            # or by on_stop). Their queued messages go with it: the supervisor discards them
            # (Mailbox.discard_timer_messages) when it handles the end of the incarnation.
            self._cancel_timers()

    async def _bounded(self, on_stop: Callable[[], Awaitable[None]]) -> None:
        """Run on_stop after an exit of the actor's own, within the child's grace.

        The grace is counted from the start of ``on_stop``; a grace of 0 means it is not
        called (as for a stop by the supervisor). The bound is deliberate (OTP lets
        ``terminate/2`` run unbounded): a hung ``on_stop`` would otherwise hold the restart
        back for ever.
        """
        if self.grace <= 0:
            return
        with trio.move_on_after(self.grace) as scope:
            await on_stop()
        if scope.cancelled_caught:
            logger.warning(
                "on_stop of %s did not finish within its %s s shutdown grace and was cancelled; "
                "its supervisor handles the exit now", self.path, self.grace
            )

    async def _on_stop_after_crash(self, on_stop: Callable[[], Awaitable[None]]) -> None:
        try:
            await self._bounded(on_stop)
        except Exception:
            logger.exception("on_stop of %r raised after a crash; the crash stands", self.path)

    async def _loop(self, actor: Actor) -> None:
        mailbox = self.mailbox
        # Mailbox.receive, inlined: while items are queued, take one without creating a
        # coroutine per message, and wait for one without a coroutine of its own (same order,
        # same wake-up of a blocked sender).
        queue = mailbox._queue
        cls = type(actor)
        # The handler table, read first: _lookup only for types not seen yet (it caches them).
        table_get = cls._handlers.get
        while not self._stop_requested:
            if not queue:
                mailbox._receiver = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(mailbox._abort_receive)
                if not queue:
                    continue  # woken with nothing to read (a stop request)
            item = queue.popleft()
            mailbox.received += 1
            if mailbox._senders_waiting:
                mailbox._wake_sender()
            if type(item) is TimerMessage:
                item = item.msg
            self.current = item
            if type(item) is Call:
                msg = item.msg
                try:  # _dispatch inlined: one coroutine less per call
                    entry = table_get(type(msg)) or cls._lookup(type(msg))
                    if entry is None:
                        result = await actor.on_unhandled(msg)
                    elif entry[1]:
                        result = await entry[0](actor, msg)
                    else:
                        result = entry[0](actor, msg)
                except BaseException as exc:
                    if isinstance(exc, Exception):
                        fail_call(
                            item,
                            f"handler for {type(msg).__qualname__} in actor {self.path!r} "
                            f"raised {type(exc).__name__}: {exc}",
                            exc,
                        )
                    else:
                        fail_call(item, f"actor {self.path!r} was stopped before replying")
                    raise
                item.reply(result)
            else:  # a cast: _dispatch inlined, saving a coroutine per message on the hot path
                entry = table_get(type(item)) or cls._lookup(type(item))
                if entry is None:
                    await actor.on_unhandled(item)
                elif entry[1]:
                    await entry[0](actor, item)
                else:
                    entry[0](actor, item)
            self.current = None

    async def _execute(self, actor: BackgroundService) -> None:
        with trio.CancelScope() as scope:
            self._execute_scope = scope
            if self._stop_requested and (self.immediate or actor.cancel_on_stop):
                scope.cancel()
            await actor.execute()

    async def _run_background(self, actor: BackgroundService) -> None:
        if not type(actor)._handlers:
            await self._execute(actor)
            return
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:

            async def serve() -> None:
                nonlocal failure
                try:
                    await self._loop(actor)
                except Exception as exc:
                    failure = exc
                    nursery.cancel_scope.cancel()

            nursery.start_soon(serve)
            try:
                await self._execute(actor)
            except Exception as exc:
                failure = failure or exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

