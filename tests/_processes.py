"""Running a program as a real process until markers appear in its output (shared by tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path


def run_command(
    command: list[str],
    marker: str | tuple[str, ...],
    *,
    timeout: float = 30.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Run ``command`` until every marker has appeared in its log, then SIGINT it; return (code, output).

    With no marker, the command runs to its end without a signal. ``on_line(line)`` is called for
    each line read before the signal (e.g. to query the program). ``timeout`` kills it."""
    waiting = {marker} if isinstance(marker, str) else set(marker)
    env = env if env is not None else {**os.environ, "PYTHONUNBUFFERED": "1"}
    lines: list[str] = []
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
    ) as proc:
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout if waiting else ():
                lines.append(line)
                if on_line is not None:
                    on_line(line)
                waiting = {m for m in waiting if m not in line}
                if not waiting:
                    proc.send_signal(signal.SIGINT)
                    break
            lines.extend(proc.stdout)
            code = proc.wait()
        finally:
            timer.cancel()
    return code, "".join(lines)
