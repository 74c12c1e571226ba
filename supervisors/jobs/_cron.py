"""Cron expressions, evaluated by `cronsim` in a time zone (DST handled as Debian cron does)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

try:
    from cronsim import CronSim, CronSimError
except ImportError as exc:  # pragma: no cover - depends on the installation
    msg = "supervisors.jobs needs cronsim: install the extra, pip install 'trio-supervisors[jobs]'"
    raise ImportError(msg) from exc

from ._errors import CronError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FORMS = (
    "5 fields 'minute hour day-of-month month day-of-week', 6 fields with seconds first, "
    "or one of " + ", ".join(sorted(ALIASES))
)


def _zone(tz: str) -> ZoneInfo:
    if not isinstance(tz, str):
        msg = f"'tz' must be an IANA time zone name such as 'UTC' or 'Europe/Paris' (got {tz!r})"
        raise TypeError(msg)
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {tz!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        raise CronError(msg) from None


@attrs.frozen
class Cron:
    """A validated cron expression bound to a time zone.

    Occurrences are computed by ``cronsim``: on the day clocks go back, a job at a fixed local time
    runs once (at the first of the two instants); on the day clocks go forward, a local time that
    does not exist runs at the first valid minute after it. An expression whose minute or hour
    field starts with ``*``, and every 6-field expression, follows real time instead (both passes
    of a repeated hour, none of a skipped one): see `DST_POLICY`.
    """

    expr: str
    tz: str = "UTC"
    _fields: str = attrs.field(init=False, repr=False)
    _zone: ZoneInfo = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        zone = _zone(self.tz)
        text = self.expr.strip()
        if text.startswith("@"):
            fields = ALIASES.get(text.lower())
            if fields is None:
                msg = f"cron expression {self.expr!r}: unknown alias {text!r}; expected {_FORMS}"
                raise CronError(msg)
        else:
            fields = " ".join(text.split())
            if len(fields.split()) not in (5, 6):
                n = len(fields.split())
                msg = f"cron expression {self.expr!r} has {n} fields; expected {_FORMS}"
                raise CronError(msg)
        try:
            it = CronSim(fields, datetime(2000, 1, 1, tzinfo=zone))
            next(it)
        except CronSimError as exc:
            msg = f"cron expression {self.expr!r} is invalid: {exc}; expected {_FORMS}"
            raise CronError(msg) from None
        except StopIteration:
            msg = f"cron expression {self.expr!r} never fires (no match within 50 years)"
            raise CronError(msg) from None
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_zone", zone)

    def next_after(self, after: float) -> float | None:
        """The first occurrence strictly after ``after`` (epoch seconds), or ``None`` if none."""
        it = CronSim(self._fields, datetime.fromtimestamp(after, self._zone))
        for _ in range(10_000):
            try:
                ts = next(it).timestamp()
            except StopIteration:
                return None
            if ts > after:
                return ts
        return None  # pragma: no cover - cronsim always moves forward

    def between(self, after: float, until: float, *, limit: int) -> list[float]:
        """Occurrences in ``(after, until]``, oldest first, at most ``limit`` of them."""
        out: list[float] = []
        cursor = after
        while len(out) < limit:
            ts = self.next_after(cursor)
            if ts is None or ts > until:
                break
            out.append(ts)
            cursor = ts
        return out
