"""run / serve: the host. Signals, graceful stop with an overall deadline, exit codes."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import FrameType
from typing import Any

import trio

from ._errors import SupervisionError, SupervisorGaveUp
from ._events import Event, GaveUp
from ._resources import Resource
from ._runtime import DEFAULT_BLOCKED_SEND_WARNING, interrupt_in
from ._snapshot import ChildState
from ._spec import DynamicSupervisor, Supervisor
from ._tree import Tree, open_tree

__all__ = ["EXIT_FAILED", "EXIT_FORCED", "EXIT_INTERRUPTED", "EXIT_OK", "run", "serve"]

logger = logging.getLogger("supervisors.host")

EXIT_OK = 0
"""The tree stopped cleanly (after a signal or ``Tree.request_stop()``)."""
EXIT_FAILED = 1
"""The tree could not start, or its root supervisor gave up."""
EXIT_FORCED = 2
"""The graceful stop overran ``shutdown_timeout`` or a second signal came: the rest was cancelled."""
EXIT_INTERRUPTED = 130
"""A child raised ``KeyboardInterrupt`` (Ctrl-C inside a handler): 128 + SIGINT, as a shell reports it."""


def _interrupt_exit_code(interrupt: BaseException) -> int:
    """130 for an interrupt; a ``SystemExit`` raised by a child exits as Python would exit."""
    if isinstance(interrupt, SystemExit):
        code = interrupt.code
        if code is None:
            return EXIT_OK
        return code if isinstance(code, int) else EXIT_FAILED
    return EXIT_INTERRUPTED

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _still_stopping(tree: Tree | None) -> str:
    """Who held the stop up: the deepest children still stopping (or starting), by path."""
    if tree is None:
        return "the tree was still starting"
    nodes = tree.snapshot().walk()[1:]
    for state, doing in ((ChildState.STOPPING, "stopping"), (ChildState.STARTING, "starting")):
        busy = [node.path for node in nodes if node.state is state]
        # The deepest ones: a busy supervisor is only waiting for its busy child.
        leaves = [path for path in busy if not any(other.startswith(path + "/") for other in busy)]
        if leaves:
            return f"{', '.join(leaves)} {'was' if len(leaves) == 1 else 'were'} still {doing}"
    if any(node.state is ChildState.RUNNING for node in nodes):
        return "no child had begun to stop yet"
    return "no child was stopping any more"


class _Host:
    """One serve(): the tree, when its stop began, and whether (and why) it was cut short."""

    def __init__(self, name: str, shutdown_timeout: float, outer: trio.CancelScope) -> None:
        self.name = name
        self.shutdown_timeout = shutdown_timeout
        self.outer = outer
        self.tree: Tree | None = None
        self.requested = False
        self.deadline = math.inf
        self.stop_began = trio.Event()
        self.forced = False

    def request(self) -> None:
        self.requested = True
        if self.tree is not None:
            self.tree.request_stop()

    def begin_stop(self) -> None:
        """Start the clock of the graceful stop (once: later calls keep the first deadline)."""
        if not self.stop_began.is_set():
            self.deadline = trio.current_time() + self.shutdown_timeout
            self.stop_began.set()

    def watch_root(self, event: Event) -> None:
        if isinstance(event, GaveUp) and event.path == self.name:
            self.begin_stop()

    def force(self, why: str) -> None:
        """Cancel everything left now, logging who was still stopping and why the stop was cut."""
        if self.forced:
            return
        self.forced = True
        logger.error(
            "%s: %s; cancelling the rest now; exiting with code %d", why, _still_stopping(self.tree), EXIT_FORCED
        )
        self.outer.cancel()


def _check_shutdown_timeout(value: object) -> None:
    """Refuse a deadline that is not a number of seconds >= 0 (NaN included) before anything starts."""
    msg = f"'shutdown_timeout' must be a number of seconds >= 0 (math.inf: no deadline) (got {value!r})"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(msg)
    if not value >= 0:
        raise ValueError(msg)


def _within(seconds: float) -> str:
    """``"within 30.0 s"``, or ``"with no deadline"`` for math.inf, as the log lines read."""
    return "with no deadline" if seconds == math.inf else f"within {seconds} s"


async def _enforce_deadline(host: _Host) -> None:
    await host.stop_began.wait()
    await trio.sleep_until(host.deadline)
    host.force(f"tree {host.name!r} did not stop within {host.shutdown_timeout} s (the shutdown deadline)")


@contextlib.contextmanager
def _counting_signal_handlers() -> Iterator[socket.socket]:
    """Yield a socket that receives one byte, the signal's number, per SIGINT / SIGTERM received.

    Python runs a signal's handler once for all the deliveries that came before it got to run
    (two ``kill`` calls in a row make one call), and ``trio.open_signal_receiver`` merges a
    signal that comes again before it was read. The interpreter's wakeup fd, by contrast, gets
    one byte per delivery, so the host counts those bytes: a double Ctrl-C is always two signals.
    The handlers and the wakeup fd are put back as they were on exit.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        """Replaces the default action (KeyboardInterrupt, exit); the wakeup byte is the delivery."""

    receive, send = socket.socketpair()
    receive.setblocking(False)
    send.setblocking(False)
    previous = {signum: signal.signal(signum, handler) for signum in _SIGNALS}
    old_fd = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
    try:
        yield receive
    finally:
        signal.set_wakeup_fd(old_fd)
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        receive.close()
        send.close()


async def _watch_signals(host: _Host) -> None:
    with _counting_signal_handlers() as sock:
        count = 0
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                data = sock.recv(256)
            except BlockingIOError:  # pragma: no cover - readable means a byte is there
                continue
            for signum in data:
                if signum not in _SIGNALS:
                    continue  # a signal some other handler of the process is for
                count += 1
                name = signal.Signals(signum).name
                if count == 1:
                    logger.info(
                        "%s received: stopping gracefully %s (send it again to stop at once)",
                        name, _within(host.shutdown_timeout),
                    )
                    host.begin_stop()
                    host.request()
                else:
                    host.force(f"second {name} received during the graceful stop")
                    return


async def serve(
    spec: Supervisor | DynamicSupervisor,
    *,
    shutdown_timeout: float = 30.0,
    handle_signals: bool = True,
    on_started: Callable[[Tree], Awaitable[None]] | None = None,
    blocked_send_warning: float = DEFAULT_BLOCKED_SEND_WARNING,
    resources: Sequence[Resource[Any]] = (),
) -> int:
    """Run the tree ``spec`` until it is stopped; return the process exit code.

    The async form of :func:`run`, for a program that already runs Trio. With
    ``handle_signals`` (default True; needs the main thread), the first SIGINT or SIGTERM
    starts a graceful stop: children stop in reverse start order, each within its own grace,
    and the whole stop within ``shutdown_timeout`` seconds (default 30.0, as in .NET), after
    which everything left is cancelled. A second signal cancels at once (every signal delivered
    counts, even two that arrive before the host read the first; only the kernel merges a
    signal sent again while the first is still pending). The same deadline bounds a stop asked for with
    ``tree.request_stop()`` or caused by the root giving up. A forced stop is logged at ERROR
    with its cause and the path of the deepest children still stopping. ``on_started(tree)`` is awaited
    once the tree has started (the tree keeps running after it returns, until a stop is
    requested); an exception from it stops the tree gracefully and is re-raised.
    ``blocked_send_warning`` is passed to :func:`open_tree` (a send waiting that long for room
    in a full mailbox is reported as :class:`MailboxBlocked`).

    Returns :data:`EXIT_OK` (0) after a clean stop, :data:`EXIT_FAILED` (1) if the tree could
    not start or its root gave up (logged with the reason), :data:`EXIT_FORCED` (2) if the stop
    overran the deadline or was cut short by a second signal, :data:`EXIT_INTERRUPTED` (130)
    if a child raised ``KeyboardInterrupt`` (Ctrl-C inside a handler; the tree is stopped
    gracefully first; a ``SystemExit`` raised by a child gives its own code). ``resources``
    are opened before the tree starts and closed after it stops, as with :func:`open_tree`;
    one that fails to open (or one a child uses but is not given) makes the start fail:
    logged, exit code 1.
    """
    _check_shutdown_timeout(shutdown_timeout)
    code = EXIT_OK
    body_error: BaseException | None = None
    async with trio.open_nursery() as watchers:
        with trio.CancelScope() as outer:
            host = _Host(spec.name, shutdown_timeout, outer)
            watchers.start_soon(_enforce_deadline, host)
            if handle_signals:
                watchers.start_soon(_watch_signals, host)
            try:
                async with open_tree(
                    spec, blocked_send_warning=blocked_send_warning, resources=resources
                ) as tree:
                    host.tree = tree
                    # A root that gives up stops its children before the tree counts as stopping:
                    # the deadline starts when it decides. (Not a detailed subscriber: cheap.)
                    tree._runtime.bus.subscribe(host.watch_root, detailed=False)
                    if host.requested:
                        tree.request_stop()
                    if on_started is not None:
                        await on_started(tree)
                    await tree.wait_stopping()
                    # However the stop was asked for (signal, request_stop, the root failing),
                    # the whole graceful stop gets shutdown_timeout seconds.
                    host.begin_stop()
            except SupervisorGaveUp as exc:
                logger.error(
                    "tree %r failed: %s; exiting with code %d. Fix the failing child, or raise "
                    "max_restarts / within, or add a backoff.", spec.name, exc.chain, EXIT_FAILED,
                )
                code = EXIT_FAILED
            except SupervisionError as exc:
                logger.error("tree %r failed: %s; exiting with code %d", spec.name, exc, EXIT_FAILED)
                code = EXIT_FAILED
            except Exception as exc:  # raised by on_started: re-raised below, outside the nursery
                body_error = exc
            except BaseException as exc:
                # Ctrl-C inside a handler (or another interrupt): the tree was stopped gracefully.
                interrupt = interrupt_in(exc)
                if interrupt is None:
                    raise
                code = _interrupt_exit_code(interrupt)
                where = ""
                if host.tree is not None and host.tree._runtime.interrupted is not None:
                    where = f" in {host.tree._runtime.interrupted[0]}"
                logger.error("tree %r was interrupted by %s%s; it was stopped gracefully; exiting with code %d",
                             spec.name, type(interrupt).__name__, where, code)
        if host.forced:
            code = EXIT_FORCED
        watchers.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
    return code


def run(
    spec: Supervisor | DynamicSupervisor,
    *,
    shutdown_timeout: float = 30.0,
    handle_signals: bool = True,
    configure_logging: bool = True,
    on_started: Callable[[Tree], Awaitable[None]] | None = None,
    blocked_send_warning: float = DEFAULT_BLOCKED_SEND_WARNING,
    resources: Sequence[Resource[Any]] = (),
) -> int:
    """Run the tree ``spec`` in a new Trio run until it is stopped; return the exit code.

    The blocking entry point of a program (compare .NET ``host.Run()``)::

        raise SystemExit(run(tree))

    See :func:`serve` for signals, the deadline and exit codes. With ``configure_logging``
    (default True) and no handler on the root logger, logging is set up at INFO level on
    stderr so that every crash is seen.
    """
    _check_shutdown_timeout(shutdown_timeout)
    if configure_logging and not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
    return trio.run(
        lambda: serve(
            spec, shutdown_timeout=shutdown_timeout, handle_signals=handle_signals, on_started=on_started,
            blocked_send_warning=blocked_send_warning,
            resources=resources,
        )
    )
