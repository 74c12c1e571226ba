"""run / serve: the host. Signals, graceful stop with an overall deadline, exit codes."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from ._errors import SupervisionError
from ._resources import Resource
from ._spec import DynamicSupervisor, Supervisor
from ._tree import Tree, open_tree

__all__ = ["EXIT_FAILED", "EXIT_FORCED", "EXIT_OK", "run", "serve"]

logger = logging.getLogger("supervisors.host")

EXIT_OK = 0
"""The tree stopped cleanly (after a signal or ``Tree.request_stop()``)."""
EXIT_FAILED = 1
"""The tree could not start, or its root supervisor gave up."""
EXIT_FORCED = 2
"""The graceful stop overran ``shutdown_timeout`` or a second signal came: the rest was cancelled."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopper:
    def __init__(self) -> None:
        self.tree: Tree | None = None
        self.requested = False

    def request(self) -> None:
        self.requested = True
        if self.tree is not None:
            self.tree.request_stop()


async def _watch_signals(stopper: _Stopper, outer: trio.CancelScope, shutdown_timeout: float) -> None:
    with trio.open_signal_receiver(*_SIGNALS) as signals:
        count = 0
        async for signum in signals:
            count += 1
            name = signal.Signals(signum).name
            if count == 1:
                logger.info(
                    "%s received: stopping gracefully within %s s (send it again to stop at once)",
                    name, shutdown_timeout,
                )
                outer.deadline = min(outer.deadline, trio.current_time() + shutdown_timeout)
                stopper.request()
            else:
                logger.warning("second %s received: cancelling everything now", name)
                outer.cancel()
                return


async def serve(
    spec: Supervisor | DynamicSupervisor,
    *,
    shutdown_timeout: float = 30.0,
    handle_signals: bool = True,
    on_started: Callable[[Tree], Awaitable[None]] | None = None,
    resources: Sequence[Resource[Any]] = (),
) -> int:
    """Run the tree ``spec`` until it is stopped; return the process exit code.

    The async form of :func:`run`, for a program that already runs Trio. With
    ``handle_signals`` (default True; needs the main thread), the first SIGINT or SIGTERM
    starts a graceful stop: children stop in reverse start order, each within its own grace,
    and the whole stop within ``shutdown_timeout`` seconds (default 30.0, as in .NET), after
    which everything left is cancelled. A second signal cancels at once. The same deadline
    bounds a stop asked for with ``tree.request_stop()``. ``on_started(tree)`` is awaited
    once the tree has started (the tree keeps running after it returns, until a stop is
    requested); an exception from it stops the tree gracefully and is re-raised.

    Returns :data:`EXIT_OK` (0) after a clean stop, :data:`EXIT_FAILED` (1) if the tree could
    not start or its root gave up (logged with the reason), :data:`EXIT_FORCED` (2) if the stop
    overran the deadline or was cut short by a second signal. ``resources`` are opened before
    the tree starts and closed after it stops, as with :func:`open_tree`; one that fails to
    open (or one a child uses but is not given) makes the start fail: logged, exit code 1.
    """
    stopper = _Stopper()
    code = EXIT_OK
    body_error: BaseException | None = None
    async with trio.open_nursery() as watchers:
        with trio.CancelScope() as outer:
            if handle_signals:
                watchers.start_soon(_watch_signals, stopper, outer, shutdown_timeout)
            try:
                async with open_tree(spec, resources=resources) as tree:
                    stopper.tree = tree
                    if stopper.requested:
                        tree.request_stop()
                    if on_started is not None:
                        await on_started(tree)
                    await tree.wait_stopping()
                    # However the stop was asked for (signal, request_stop, the root failing),
                    # the whole graceful stop gets shutdown_timeout seconds.
                    outer.deadline = min(outer.deadline, trio.current_time() + shutdown_timeout)
            except SupervisionError as exc:
                logger.error("tree %r failed: %s; exiting with code %d", spec.name, exc, EXIT_FAILED)
                code = EXIT_FAILED
            except Exception as exc:  # raised by on_started: re-raised below, outside the nursery
                body_error = exc
        if outer.cancelled_caught:
            logger.error(
                "tree %r did not stop within %s s (or a second signal came); the rest was "
                "cancelled; exiting with code %d", spec.name, shutdown_timeout, EXIT_FORCED,
            )
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
    resources: Sequence[Resource[Any]] = (),
) -> int:
    """Run the tree ``spec`` in a new Trio run until it is stopped; return the exit code.

    The blocking entry point of a program (compare .NET ``host.Run()``)::

        raise SystemExit(run(tree))

    See :func:`serve` for signals, the deadline and exit codes. With ``configure_logging``
    (default True) and no handler on the root logger, logging is set up at INFO level on
    stderr so that every crash is seen.
    """
    if configure_logging and not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
    return trio.run(
        lambda: serve(
            spec, shutdown_timeout=shutdown_timeout, handle_signals=handle_signals, on_started=on_started,
            resources=resources,
        )
    )
