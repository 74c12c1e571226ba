"""The supervision errors. One base class; escalation always raises one of these."""

from __future__ import annotations

__all__ = [
    "ChildNotFound",
    "ConfigurationError",
    "InjectedFault", "NotRunning",
    "StartFailed",
    "SupervisionError",
    "SupervisorGaveUp",
]


class SupervisionError(Exception):
    """Base class of every error raised by the :mod:`supervisors` package."""


class ConfigurationError(Exception):
    """A child cannot start because of its configuration or environment, and the message says all.

    Raise it (or a subclass) from a factory or ``on_start`` when the cause is outside the code: a
    refused file, a missing setting, an unreachable address. The message must name the thing and
    what to do. Such a start failure is logged as one line, without a traceback (which would only
    show our own start-up path); every other start failure is logged with its traceback. It is
    otherwise an ordinary exception: the start fails with `StartFailed`, whose ``__cause__`` it is.
    ``supervisors.jobs.StoreError`` is one.
    """


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
    the failure that needed the restart too many, and ``child`` the path of the child whose
    exit it was (``None`` if unknown). :attr:`chain` says all of it in one line, down to the leaf.
    """

    def __init__(self, message: str, *, path: str, restarts: int, within: float, child: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.restarts = restarts
        self.within = within
        self.child = child

    @property
    def chain(self) -> str:
        """The whole chain of failures, one line, down to the leaf and its error.

        For example ``"app gave up after 0 restart(s) in 5 s because app/sub gave up after 3
        restart(s) in 5 s because app/sub/crasher raised ValueError('boom')"``.
        """
        parts: list[str] = []
        failure: SupervisorGaveUp = self
        while True:
            parts.append(
                f"{failure.path} gave up after {failure.restarts - 1} restart(s) in {failure.within:g} s"
            )
            cause = failure.__cause__
            if isinstance(cause, SupervisorGaveUp) and (failure.child is None or cause.path == failure.child):
                failure = cause
                continue
            if cause is not None:
                parts.append(f"{failure.child or 'a child'} {describe_exit(cause)}")
            return " because ".join(parts)


class NormalExit(Exception):
    """Stands for the cause of restarting a permanent child that returned normally."""

    def __init__(self, path: str) -> None:
        super().__init__(f"permanent child {path!r} returned normally")


def describe_exit(error: BaseException) -> str:
    """How a child's exit reads after its path: ``"raised ValueError('boom')"``."""
    if isinstance(error, NormalExit):
        return "returned normally (it is permanent)"
    return f"raised {error!r}"


def gave_up_message(path: str, max_restarts: int, within: float, child: str, cause: BaseException) -> str:
    """The message of a SupervisorGaveUp: the limit, the last failure in one line, what to do."""
    last = cause.chain if isinstance(cause, SupervisorGaveUp) else f"{child} {describe_exit(cause)}"
    return (
        f"supervisor {path!r} gave up: more than {max_restarts} restart(s) within {within:g} s "
        f"(last: {last}); its children were stopped. Fix the failing child, or raise "
        "max_restarts / within, or add a backoff."
    )


class ChildNotFound(SupervisionError, LookupError):
    """No child, actor or supervisor exists at the given name or path."""


class NotRunning(SupervisionError):
    """The operation needs a running supervisor or child, and it is not running now.

    It may be stopped for good, or only stopping or restarting: retry once it runs again
    (``Tree.snapshot()`` shows its state).
    """


class InjectedFault(Exception):
    """The default error of :meth:`Tree.inject_crash`: a crash made on purpose by a test or drill."""
