"""The supervision errors. One base class; escalation always raises one of these."""

from __future__ import annotations

__all__ = ["ChildNotFound", "InjectedFault", "NotRunning", "StartFailed", "SupervisionError", "SupervisorGaveUp"]


class SupervisionError(Exception):
    """Base class of every error raised by the :mod:`supervisors` package."""


class StartFailed(SupervisionError):
    """A child could not be started (its factory or ``on_start`` raised); ``__cause__`` says why.

    Raised by :func:`open_tree` when the tree cannot start (:func:`run` and :func:`serve` log
    it and return :data:`EXIT_FAILED` instead), and by :meth:`SupervisorRef.start_child`.
    During a supervisor's own start, the children already started are stopped in reverse order
    before this is raised.

    ``child`` is the path of the child whose start failed first: a supervisor that cannot start
    because a child of its own could not reports that child (and its error as ``__cause__``)
    rather than nesting one message per level.
    """

    def __init__(self, message: str, *, child: str | None = None) -> None:
        super().__init__(message)
        self.child = child


class SupervisorGaveUp(SupervisionError):
    """A supervisor exceeded its restart intensity, stopped its children and failed.

    Its parent sees this as a crash of that child (and may give up in turn); at the root it
    is raised from :func:`open_tree` and makes :func:`run` exit with code 1. ``__cause__`` is
    the failure that needed the restart too many.
    """

    def __init__(self, message: str, *, path: str, restarts: int, within: float) -> None:
        super().__init__(message)
        self.path = path
        self.restarts = restarts
        self.within = within


class ChildNotFound(SupervisionError, LookupError):
    """No child, actor or supervisor exists at the given name or path."""


class NotRunning(SupervisionError):
    """The operation needs a running supervisor or child, and it is not running now.

    It may be stopped for good, or only stopping or restarting: retry once it runs again
    (``Tree.snapshot()`` shows its state).
    """


class InjectedFault(Exception):
    """The default error of :meth:`Tree.inject_crash`: a crash made on purpose by a test or drill."""
