"""The heartbeat hosted service: a BackgroundService that logs once a second.

Run it with ``python examples/heartbeat.py``; stop it with Ctrl-C (exit code 0).
"""

from __future__ import annotations

import logging

import trio

from actors import BackgroundService
from supervisors import ChildSpec, Supervisor, run

log = logging.getLogger("heartbeat")


class HeartbeatService(BackgroundService):
    """Logs a heartbeat every ``interval`` seconds until it is stopped."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval

    async def execute(self) -> None:
        beats = 0
        while True:
            beats += 1
            log.info("heartbeat %d", beats)
            await trio.sleep(self.interval)


tree = Supervisor(name="app", children=[ChildSpec(name="heartbeat", factory=HeartbeatService)])

if __name__ == "__main__":
    raise SystemExit(run(tree))
