"""Pure restart decisions over plain data; the Trio layer (``_supervisor``) only carries them out.

Nothing here awaits, reads a clock or touches a task, so every rule of the semantics page can
be tested exhaustively against a model.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence

import attrs

from ._spec import Restart, Strategy

__all__ = [
    "ExitKind",
    "RestartPlan",
    "RestartWindow",
    "needs_restart",
    "plan_restart",
    "plan_retry",
    "record_restart",
]


class ExitKind(enum.Enum):
    """How an incarnation ended on its own (a stop requested by the supervisor is not an exit)."""

    NORMAL = "normal"
    CRASH = "crash"


def needs_restart(restart: Restart, kind: ExitKind) -> bool:
    """Whether a child that exited with ``kind`` must be restarted (and so counts toward intensity)."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return kind is ExitKind.CRASH
    return False


class RestartWindow:
    """The restarts of one supervisor incarnation within a sliding window of ``within`` seconds.

    A restart at time ``t`` is in the window while ``now - t <= within`` (edge included, as in
    OTP, but over exact times rather than whole seconds). Recording is amortised O(1): times
    arrive in order, so expired ones are dropped from the left.
    """

    __slots__ = ("_times", "max_restarts", "within")

    def __init__(self, max_restarts: int, within: float) -> None:
        self.max_restarts = max_restarts
        self.within = within
        self._times: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._times)

    def times(self) -> tuple[float, ...]:
        return tuple(self._times)

    def record(self, now: float) -> bool:
        """Count one restart at ``now``; False if the window would then hold more than
        ``max_restarts`` restarts, in which case the supervisor gives up instead."""
        times = self._times
        while times and now - times[0] > self.within:
            times.popleft()
        times.append(now)
        return len(times) <= self.max_restarts


def record_restart(
    history: tuple[float, ...], now: float, max_restarts: int, within: float
) -> tuple[bool, tuple[float, ...]]:
    """:class:`RestartWindow` as a function over tuples: ``(allowed, new_history)``."""
    window = RestartWindow(max_restarts, within)
    window._times.extend(history)
    allowed = window.record(now)
    return allowed, window.times()


@attrs.frozen
class RestartPlan:
    """What to do for one restart, by child index.

    ``stop``: running children to stop, in this order (reverse list order).
    ``remove``: temporary children among ``stop`` that are removed once stopped.
    ``start``: children to start, in this order (list order).
    """

    stop: tuple[int, ...]
    remove: tuple[int, ...]
    start: tuple[int, ...]


def plan_restart(
    strategy: Strategy, failed: int, restarts: Sequence[Restart], running: Sequence[bool]
) -> RestartPlan:
    """The plan for restarting child ``failed`` (already down) under ``strategy``.

    ``restarts[i]`` and ``running[i]`` describe child ``i`` in list order. Siblings in the
    affected range that are running are stopped in reverse order; temporary ones among them are
    removed, not restarted. Every non-temporary child in the range is started again in order,
    including a transient child that was down after a normal exit.
    """
    if strategy is Strategy.ONE_FOR_ONE:
        affected = range(failed, failed + 1)
    elif strategy is Strategy.ONE_FOR_ALL:
        affected = range(len(restarts))
    else:
        affected = range(failed, len(restarts))
    stop = tuple(i for i in reversed(affected) if i != failed and running[i])
    remove = tuple(i for i in stop if restarts[i] is Restart.TEMPORARY)
    start = tuple(i for i in affected if restarts[i] is not Restart.TEMPORARY)
    return RestartPlan(stop=stop, remove=remove, start=start)


def plan_retry(strategy: Strategy, failed_start: int, plan: RestartPlan) -> RestartPlan:
    """The plan after child ``failed_start`` failed to start while carrying out ``plan``.

    ONE_FOR_ALL retries the whole group: it stops again, in reverse order, the children it had
    already started. ONE_FOR_ONE and REST_FOR_ONE retry from the child that failed; the
    children started before it stay up.
    """
    position = plan.start.index(failed_start)
    started = plan.start[:position]
    if strategy is Strategy.ONE_FOR_ALL:
        return RestartPlan(stop=tuple(reversed(started)), remove=(), start=plan.start)
    return RestartPlan(stop=(), remove=(), start=plan.start[position:])
