"""Log set-up of the command line: a format for people, JSON lines for log shippers.

The human format writes one line per event. A failure that repeats (the same logger, message,
exception type and innermost source line, as a crashing child or a failing job produces) is
logged with its traceback the first time; each repeat within `REPEAT_WINDOW` seconds of the
previous one is one line ending with its count, without the traceback. The runtime's logging
calls are unchanged: only their presentation is.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["REPEAT_WINDOW", "HumanFormatter", "JsonFormatter", "configure_logging"]

REPEAT_WINDOW = 600.0
"""Seconds after a failure within which the same failure counts as a repeat (not logged in full)."""

LOG_FORMATS = ("human", "json")

_Key = tuple[str, str, str, str]


def _failure_key(record: logging.LogRecord) -> _Key | None:
    """(logger, message template, exception type, "file:line" of the innermost frame), or None."""
    if not record.exc_info or record.exc_info[1] is None:
        return None
    exc = record.exc_info[1]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return (record.name, str(record.msg), type(exc).__qualname__, where)


class HumanFormatter(logging.Formatter):
    """``HH:MM:SS.mmm LEVEL   logger: message``; repeated failures summarised (see the module)."""

    def __init__(self, *, window: float = REPEAT_WINDOW, clock: Any = time.monotonic) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        self.window = window
        self._clock = clock
        self._seen: dict[_Key, tuple[float, int]] = {}  # key -> (time of the last one, repeats)

    def format(self, record: logging.LogRecord) -> str:
        key = _failure_key(record)
        if key is None:
            return super().format(record)
        now = self._clock()
        last = self._seen.get(key)
        if last is None or now - last[0] > self.window:
            self._seen[key] = (now, 0)
            return super().format(record)
        repeats = last[1] + 1
        self._seen[key] = (now, repeats)
        brief = logging.makeLogRecord(record.__dict__)
        brief.exc_info = None
        brief.exc_text = None
        brief.stack_info = None
        line = super().format(brief)
        return f"{line} [repeat {repeats}; traceback as logged the first time]"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    and ``traceback`` when the record carries an exception (every time, in full)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "human", stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing ``fmt`` to ``stream`` (stderr) at ``level``."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
