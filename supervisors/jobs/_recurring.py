"""Recurring schedules: a cron expression that enqueues a job at each occurrence."""

from __future__ import annotations

import enum
import math

import attrs

from ._cron import Cron


class Misfire(enum.Enum):
    """What to do with occurrences that were missed (no scheduler ran, or it stalled).

    An occurrence is *missed* when it came due before the scheduler that finds it had started
    (the hosts were down), or when it is found more than ``misfire_grace`` seconds after its
    fire time (the scheduler stalled); otherwise it is *on time* and runs under every policy.

    - ``RUN_ONCE`` (default): all missed occurrences together run once, as the latest of them.
    - ``RUN_ALL``: every missed occurrence runs, oldest first. With ``overlap=False`` they run
      one after another: the next is enqueued when the previous run has finished.
    - ``SKIP``: missed occurrences do not run; the schedule resumes at the next one.
    """

    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"
    SKIP = "skip"


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        msg = f"{attribute.name!r} must be a non-empty string (got {value!r})"
        raise ValueError(msg)


def _misfire(value: Misfire | str) -> Misfire:
    """``value`` as a `Misfire`: a member, or its value's string (as written in a config file)."""
    if isinstance(value, Misfire):
        return value
    if isinstance(value, str):
        try:
            return Misfire(value)
        except ValueError:
            pass
    values = ", ".join(repr(member.value) for member in Misfire)
    error = ValueError if isinstance(value, str) else TypeError
    msg = f"'misfire' must be a Misfire or one of {values} (got {value!r} of type {type(value).__name__})"
    raise error(msg)


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        msg = f"{attribute.name!r} must be a number >= 0 (got {value!r} of type {type(value).__name__})"
        raise TypeError(msg)
    if not value >= 0:
        msg = f"{attribute.name!r} must be >= 0 (got {value!r})"
        raise ValueError(msg)


def _flag(_inst: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        msg = f"{attribute.name!r} must be True or False (got {value!r} of type {type(value).__name__})"
        raise TypeError(msg)


def _optional_text(_inst: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        msg = f"{attribute.name!r} must be a string or None (got {value!r} of type {type(value).__name__})"
        raise TypeError(msg)


@attrs.frozen(kw_only=True)
class Recurring:
    """A job enqueued at every occurrence of a cron expression.

    - ``name``: identifies the schedule in the store (its progress survives restarts; keep it
      stable). Must be unique within a `JobSystem`.
    - ``cron``: 5 fields (``"0 3 * * *"``), 6 fields with seconds first (``"*/10 * * * * *"``),
      or an alias: ``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``,
      ``@midnight``, ``@hourly``. Checked here: a malformed one raises `CronError`.
    - ``job`` / ``args``: the registered job and its arguments (checked by `JobSystem`).
    - ``tz``: the IANA time zone the expression is read in; defaults to ``"UTC"``. On the day
      clocks go back, a daily job runs once; a local time skipped when clocks go forward runs
      at the first valid minute after it.
    - ``queue``: defaults to the job's queue.
    - ``misfire``: `Misfire` policy, default ``RUN_ONCE``; its value's string (``"run_all"``, as
      written in a configuration file) is accepted too, anything else raises ``ValueError`` /
      ``TypeError`` naming the field and the accepted values; ``misfire_grace``: seconds after its
      fire time an occurrence found by a running scheduler still counts as on time (a busy or
      briefly stalled scheduler); default 60.0. Occurrences that came due before the scheduler
      started are missed whatever the grace.
    - ``overlap``: when false (default), an occurrence is skipped (and logged) while a job of
      this schedule is still unfinished (scheduled, enqueued, running or retrying), except
      under ``Misfire.RUN_ALL``, where it waits for that run; when true, runs may overlap.
      A bool: anything else raises ``TypeError`` (as does a ``queue`` that is not a string).

    The first time a schedule is seen, it starts from that moment: past occurrences are not
    run. Each occurrence is enqueued at most once, even with several hosts on one store.
    """

    name: str = attrs.field(validator=_non_empty)
    cron: str = attrs.field()
    job: str = attrs.field(validator=_non_empty)
    args: object = None
    tz: str = "UTC"
    queue: str | None = attrs.field(default=None, validator=_optional_text)
    misfire: Misfire = attrs.field(default=Misfire.RUN_ONCE, converter=_misfire)
    misfire_grace: float = attrs.field(default=60.0, validator=_non_negative)
    overlap: bool = attrs.field(default=False, validator=_flag)
    compiled: Cron = attrs.field(init=False, repr=False, eq=False)

    @compiled.default
    def _compile(self) -> Cron:
        return Cron(self.cron, self.tz)

    @property
    def overlap_policy(self) -> str:
        """This schedule's overlap rule, in words (shown by the dashboard and the CLI)."""
        return overlap_policy(overlap=self.overlap, misfire=self.misfire)

    @property
    def catch_up_policy(self) -> str:
        """This schedule's misfire (catch-up) rule, in words."""
        return catch_up_policy(misfire=self.misfire, grace=self.misfire_grace)

    @property
    def dst_policy(self) -> str:
        """How daylight-saving changes of ``tz`` are handled, in words (see `DST_POLICY`)."""
        return dst_policy(self.tz)


DST_POLICY = (
    "cron rules (as Debian cron): an expression with a fixed minute and hour (lists and ranges "
    "included) names local times: when clocks go back each runs once, at the first of the two "
    "instants, and when clocks go forward a time that does not exist runs at the first valid "
    "time after it (02:30 -> 03:00); an expression whose minute or hour field starts with '*' "
    "(e.g. '0 * * * *', '*/15 2 * * *'), and every expression with a seconds field, follows "
    "real time: it runs in both passes of a repeated hour and not at all in a skipped one"
)
"""The one daylight-saving rule of every schedule (computed by ``cronsim``; not configurable)."""


def overlap_policy(*, overlap: bool, misfire: Misfire) -> str:
    """The overlap rule of a schedule, in words."""
    if overlap:
        return "overlap allowed: an occurrence runs even while earlier runs are unfinished"
    if misfire is Misfire.RUN_ALL:
        return "no overlap: an occurrence waits until the previous run has finished"
    return "no overlap: an occurrence is skipped while a previous run is unfinished"


def catch_up_policy(*, misfire: Misfire, grace: float) -> str:
    """The misfire rule of a schedule, in words."""
    late = (
        f"an occurrence is missed if it came due while no scheduler ran or is found more than "
        f"{grace:g} s late; "
    )
    if misfire is Misfire.RUN_ALL:
        return late + "run_all: every missed occurrence runs, oldest first"
    if misfire is Misfire.SKIP:
        return late + "skip: missed occurrences do not run"
    return late + "run_once: missed occurrences run once together, as the latest of them"


def dst_policy(tz: str) -> str:
    """The daylight-saving rule of a schedule read in ``tz``, in words."""
    if tz.upper() in ("UTC", "ETC/UTC", "GMT", "ETC/GMT"):
        return f"{tz} has no daylight-saving changes"
    return f"{tz}: {DST_POLICY}"


MAX_OCCURRENCES_PER_PASS = 1000
"""``RUN_ALL`` enqueues at most this many missed occurrences per scheduler pass."""


def plan(
    spec: Recurring, cursor: float, now: float, *, started: float = -math.inf
) -> tuple[list[float], float, int] | None:
    """Decide which occurrences in ``(cursor, now]`` to enqueue under the misfire policy.

    An occurrence is *on time* if it came due at or after ``started`` (when this scheduler
    started) and at most ``misfire_grace`` seconds before ``now``; otherwise it was *missed*.
    Returns ``(fire_times, new_cursor, n_due)``, or ``None`` when no occurrence is due. When more
    than `MAX_OCCURRENCES_PER_PASS` are due, the cursor stops at the last one considered and the
    rest are planned by the next call.
    """
    due = spec.compiled.between(cursor, now, limit=MAX_OCCURRENCES_PER_PASS)
    if not due:
        return None
    new_cursor = due[-1]
    on_time = [t for t in due if t >= started and now - t <= spec.misfire_grace]
    if spec.misfire is Misfire.RUN_ALL:
        fire = due
    elif spec.misfire is Misfire.SKIP:
        fire = on_time
    elif len(due) == MAX_OCCURRENCES_PER_PASS:
        fire = []  # more are due beyond this pass: the latest one will be planned next time
    else:
        fire = [due[-1]]
    return fire, new_cursor, len(due)


def missed_reasons(
    spec: Recurring, due: list[float], fired: list[float], now: float, *, started: float
) -> dict[float, str]:
    """Why each occurrence of ``due`` not in ``fired`` did not run, by fire time (for the
    fire ledger): it came due before this scheduler started, or was found too late, and the
    misfire policy dropped it."""
    out: dict[float, str] = {}
    kept = set(fired)
    policy = spec.misfire.value
    for t in due:
        if t in kept:
            continue
        if t < started:
            why = "it came due while no scheduler was running (hosts down)"
        elif now - t <= spec.misfire_grace:
            why = "a later occurrence was due in the same pass"
        else:
            why = f"it was found {now - t:.0f} s late (misfire_grace {spec.misfire_grace:g} s)"
        if spec.misfire is Misfire.RUN_ONCE and fired:
            action = "ran once as the latest missed occurrence instead"
        else:
            action = "does not run missed occurrences" if spec.misfire is Misfire.SKIP else (
                "runs the latest of them on a later pass"
            )
        out[t] = f"{why}; misfire policy {policy} {action}"
    return out
