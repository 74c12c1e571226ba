"""Fault injection (``Tree.inject_crash`` / ``Tree.inject_exit``): crash or end a running child."""

from __future__ import annotations

from ._errors import NotRunning
from ._slot import Slot

__all__ = ["inject"]


def inject(slot: Slot, error: Exception | None) -> None:
    """Crash (``error``) or end normally (``None``) the running incarnation of ``slot``.

    An actor is cancelled at its next checkpoint and its supervisor sees ``error`` as its
    crash; a supervisor fails as if it had given up. A normal exit is the actor's own
    ``stop()``; a supervisor refuses it (``ValueError``). Raises :class:`NotRunning` unless
    the child is running (started, and not being stopped).
    """
    incarnation = slot.current
    if incarnation is None or not incarnation.started or incarnation.stopping:
        raise NotRunning(f"child {slot.path!r} is not running (state {slot.state.value}); nothing to inject")
    if error is None:
        incarnation.cell.request_stop(immediate=False, by_supervisor=False)
    elif incarnation.supervisor is not None:
        incarnation.supervisor.inject_failure(error)
    else:
        incarnation.injected = error
        incarnation.scope.cancel()
