"""`JobQuery`: a search of the job store, and `JobPage`, one page of its answer.

One type for every caller (`JobSystem.search`, `JobClient.search`, the dashboard and the CLI), so
that a filter means the same thing everywhere and bad input is refused in one place, naming the
field. The SQL is built from a query in `_sql.search_statements`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeAlias

import attrs

from ._errors import JobError
from ._model import Job, JobState, JSONValue

ArgScalar: TypeAlias = str | int | float | bool | None
"""A value an argument path can be compared with: a JSON scalar."""

MAX_LIMIT = 1000
"""The largest page a search returns."""

_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class JobQueryError(JobError, ValueError):
    """A search was refused: ``field`` names the `JobQuery` field (or the parameter it came
    from) that was wrong; the message says what was expected and what was got."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field!r}: {message}")
        self.field = field
        self.reason = message


def _states(value: Iterable[JobState | str] | JobState | str | None) -> frozenset[JobState]:
    if value is None:
        return frozenset()
    if isinstance(value, JobState | str):
        value = [value]
    out: set[JobState] = set()
    for item in value:
        if isinstance(item, JobState):
            out.add(item)
            continue
        try:
            out.add(JobState(str(item).strip().lower()))
        except ValueError:
            known = ", ".join(s.value for s in JobState)
            raise JobQueryError("states", f"unknown job state {item!r}; expected one of: {known}") from None
    return frozenset(out)


def _text(field: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise JobQueryError(field, f"must be a string (got {value!r})")
    return value


def _moment(field: str, value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise JobQueryError(field, f"naive datetime {value.isoformat()} is ambiguous; pass an aware one")
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise JobQueryError(field, f"must be an aware datetime or epoch seconds (got {value!r})")


def _queue(value: object) -> str | None:
    return _text("queue", value)


def _name(value: object) -> str | None:
    return _text("name", value)


def _contains(value: object) -> str | None:
    return _text("args_contains", value)


def _since(value: object) -> float | None:
    return _moment("since", value)


def _until(value: object) -> float | None:
    return _moment("until", value)


def _args_equal(value: object) -> tuple[tuple[str, ArgScalar], ...]:
    if value is None:
        return ()
    items: Any = value.items() if isinstance(value, Mapping) else value
    out: list[tuple[str, ArgScalar]] = []
    for item in items:
        path: object
        scalar: object
        try:
            path, scalar = item
        except (TypeError, ValueError):
            raise JobQueryError("args_equal", f"expected (path, value) pairs (got {item!r})") from None
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            raise JobQueryError(
                "args_equal",
                f"malformed argument path {path!r}: use keys joined by dots, each a letter or _ then "
                "letters, digits or _ (e.g. 'user_id' or 'order.id')",
            )
        if not (scalar is None or isinstance(scalar, str | int | float | bool)) or (
            isinstance(scalar, float) and not math.isfinite(scalar)
        ):
            raise JobQueryError("args_equal", f"the value of {path!r} must be a JSON scalar (got {scalar!r})")
        out.append((path, scalar))
    return tuple(out)


@attrs.frozen(kw_only=True)
class Cursor:
    """A position in a search's order: just after (``forward``) or before (not ``forward``) the
    job created at ``created_at`` with id ``id``."""

    created_at: float
    id: int
    forward: bool = True

    def encode(self) -> str:
        """The opaque text form (URL-safe)."""
        text = f"{'n' if self.forward else 'p'}{self.created_at!r}:{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse `encode`'s text; raises `JobQueryError` (field ``cursor``) if it is malformed."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            direction, rest = raw[0], raw[1:]
            at, _, job_id = rest.partition(":")
            if direction not in "np" or not job_id.isdigit():
                raise ValueError(raw)
            created = float(at)
            if not math.isfinite(created):
                raise ValueError(raw)
            return cls(created_at=created, id=int(job_id), forward=direction == "n")
        except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
            raise JobQueryError(
                "cursor", f"malformed cursor {text!r}: pass a cursor exactly as a previous page returned it"
            ) from None


def _cursor(value: object) -> Cursor | None:
    if value is None or value == "":
        return None
    if isinstance(value, Cursor):
        return value
    if not isinstance(value, str):
        raise JobQueryError("cursor", f"must be a string (got {value!r})")
    return Cursor.decode(value)


def _limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise JobQueryError("limit", f"must be an integer from 1 to {MAX_LIMIT} (got {value!r})")
    return value


@attrs.frozen(kw_only=True)
class JobQuery:
    """A search of the jobs in a store: every filter given must hold (``None`` or empty = any).

    Results come newest first: by ``created_at`` descending, then id descending. Pages are
    reached by keyset paging: `JobPage.next` (older jobs) and `JobPage.previous` (newer jobs)
    are cursors to pass back as ``cursor``. A page starts strictly after its cursor's job, so
    jobs inserted meanwhile never shift or repeat the later pages (they are newer: they appear
    on the first page when it is read again). The other fields stay as they were on the page
    that gave the cursor. Invalid input raises `JobQueryError`, naming the field.
    """

    states: frozenset[JobState] = attrs.field(default=frozenset(), converter=_states)
    """Jobs in any of these states (given as `JobState` or names). Empty (the default): any."""
    queue: str | None = attrs.field(default=None, converter=_queue)
    """Jobs of this queue (exact)."""
    name: str | None = attrs.field(default=None, converter=_name)
    """Jobs of this registered name (exact)."""
    since: float | None = attrs.field(default=None, converter=_since)
    """Jobs created at or after this time (an aware datetime or epoch seconds; kept as epoch
    seconds)."""
    until: float | None = attrs.field(default=None, converter=_until)
    """Jobs created before this time (exclusive)."""
    args_contains: str | None = attrs.field(default=None, converter=_contains)
    """Jobs whose arguments, as the JSON text stored, contain this text (case-sensitive, no
    wildcards). Jobs enqueued through this library store compact JSON with sorted keys, so keys
    and strings appear quoted and without spaces: ``'"user_id":42'``."""
    args_equal: tuple[tuple[str, ArgScalar], ...] = attrs.field(default=(), converter=_args_equal)
    """``(path, value)`` pairs: jobs whose arguments (a JSON object) hold ``value`` at
    ``path`` (dot-separated keys, e.g. ``"order.id"``). Compared as JSON: ``42`` matches
    ``42`` and ``42.0`` but not ``"42"``; ``True`` matches only ``true``; ``None`` matches an
    explicit ``null`` (not a missing key). A mapping is accepted too."""
    limit: int = attrs.field(default=50, validator=lambda _i, _a, v: _limit(v))
    """The most jobs on one page, 1 to `MAX_LIMIT`. Defaults to 50."""
    cursor: Cursor | None = attrs.field(default=None, converter=_cursor)
    """Where the page starts: a cursor of a previous `JobPage` (its text or a `Cursor`).
    ``None`` (the default): the newest jobs."""

    def __attrs_post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise JobQueryError(
                "until", f"must be after 'since' (got since={self.since!r}, until={self.until!r}); swap them"
            )

    @classmethod
    def from_text(
        cls,
        *,
        states: str | Iterable[str] | None = None,
        queue: str | None = None,
        name: str | None = None,
        since: str | None = None,
        until: str | None = None,
        args_contains: str | None = None,
        args_match: Iterable[str] = (),
        limit: str | int | None = None,
        cursor: str | None = None,
        zone: tzinfo | None = None,
    ) -> JobQuery:
        """A query from text, as typed in a form or on a command line: ``states`` as names
        separated by commas (or several such strings), times as ISO 8601 with an offset (``Z``
        for UTC; a time without one is read in ``zone``, and refused when ``zone`` is ``None``,
        the default), each ``args_match`` as ``PATH=VALUE`` where ``VALUE`` is read as JSON if
        it parses (``42``, ``true``, ``"42"``, ``null``) and as a string otherwise."""
        if states is not None:
            states = [s for v in ([states] if isinstance(states, str) else states) for s in v.split(",") if s.strip()]
        pairs: list[tuple[str, ArgScalar]] = []
        for item in args_match:
            path, sep, raw = item.partition("=")
            if not sep:
                raise JobQueryError("args_match", f"expected PATH=VALUE, e.g. user_id=42 (got {item!r})")
            try:
                value: JSONValue = json.loads(raw)
            except ValueError:
                value = raw
            pairs.append((path.strip(), value))
        number: Any = 50
        if limit is not None and limit != "":
            try:
                number = int(limit)
            except ValueError:
                raise JobQueryError("limit", f"must be an integer from 1 to {MAX_LIMIT} (got {limit!r})") from None
        return cls(
            states=states, queue=queue, name=name, since=_iso("since", since, zone), until=_iso("until", until, zone),
            args_contains=args_contains, args_equal=pairs, limit=number, cursor=cursor,
        )  # fmt: skip

    def to_text(self) -> dict[str, str | list[str]]:
        """The query's filters as `from_text` reads them (empty fields left out; no cursor)."""
        out: dict[str, str | list[str]] = {}
        if self.states:
            out["states"] = ",".join(s.value for s in JobState if s in self.states)
        for key in ("queue", "name", "args_contains"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("since", "until"):
            value = getattr(self, key)
            if value is not None:
                out[key] = datetime.fromtimestamp(value, UTC).isoformat()
        if self.args_equal:
            out["args_match"] = [f"{p}={json.dumps(v)}" for p, v in self.args_equal]
        return out


def _iso(field: str, text: str | None, zone: tzinfo | None) -> datetime | None:
    if text is None or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise JobQueryError(field, f"expected an ISO 8601 time such as 2026-12-02T10:00:00Z (got {text!r})") from None
    if moment.tzinfo is None:
        if zone is None:
            raise JobQueryError(field, f"{text!r} has no UTC offset; add one, e.g. Z or +01:00")
        moment = moment.replace(tzinfo=zone)
    return moment


@attrs.frozen(kw_only=True)
class JobPage:
    """One page of a `JobQuery`'s answer, newest first."""

    jobs: tuple[Job, ...]
    next: str | None
    """The cursor of the following page (older jobs), ``None`` when no job matched beyond this page."""
    previous: str | None
    """The cursor of the preceding page (newer jobs), ``None`` on the first page."""


def page_of(query: JobQuery, jobs: list[Job], more: bool, keys: list[tuple[float, int]]) -> JobPage:
    """The page of ``jobs`` (newest first) read for ``query``; ``keys`` are their stored
    ``(created_at, id)`` (exact, unlike the datetimes); ``more``: rows lay beyond them in the
    direction read."""
    cursor = query.cursor
    forward = cursor is None or cursor.forward
    older = more if forward else True
    newer = cursor is not None and (forward or more)
    if not jobs:
        # Nothing this side of the cursor: the way back starts at the cursor itself.
        if cursor is None:
            return JobPage(jobs=(), next=None, previous=None)
        if forward:
            back = attrs.evolve(cursor, forward=False, id=cursor.id - 1)
            return JobPage(jobs=(), next=None, previous=back.encode())
        ahead = attrs.evolve(cursor, forward=True, id=cursor.id + 1)
        return JobPage(jobs=(), next=ahead.encode(), previous=None)
    (first_at, first_id), (last_at, last_id) = keys[0], keys[-1]
    return JobPage(
        jobs=tuple(jobs),
        next=Cursor(created_at=last_at, id=last_id).encode() if older else None,
        previous=Cursor(created_at=first_at, id=first_id, forward=False).encode() if newer else None,
    )
