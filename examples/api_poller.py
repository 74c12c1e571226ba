"""Pull data from an HTTP API on an interval, backing off while it fails.

    python examples/api_poller.py [--interval SECONDS]

The example starts its own stand-in for the external API: a small HTTP server from the standard
library on ``127.0.0.1`` with a port chosen by the system, in a thread. It serves
``GET /rates`` as JSON, and answers ``503 Service Unavailable`` for requests 4 to 6 (an outage).

``poller`` is a BackgroundService with one ``httpx.AsyncClient`` (opened in ``execute`` and
closed when the service stops or crashes). It polls every ``--interval`` seconds (default 5).
On an error (a refused connection, a timeout, a 5xx) it logs one warning and waits longer before
the next try, growing the delay with :class:`supervisors.Backoff` (one interval, then two, four,
... at most a minute, each ±10 %); the first success resets it. The errors it expects are handled where they occur;
anything else (a bug) crashes the poller and its supervisor restarts it. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import itertools
import json
import logging
import random
import threading

import httpx
import trio

from actors import BackgroundService
from supervisors import Backoff, ChildSpec, Supervisor, run

log = logging.getLogger("api_poller")


class RatesHandler(http.server.BaseHTTPRequestHandler):
    """The stand-in API: ``GET /rates`` is JSON; requests 4 to 6 get a 503."""

    requests = itertools.count(1)

    def do_GET(self) -> None:
        n = next(self.requests)
        if self.path != "/rates":
            self.send_error(404)
        elif 4 <= n <= 6:
            self.send_error(503, "down for maintenance")
        else:
            body = json.dumps({"request": n, "EURUSD": round(random.uniform(1.05, 1.10), 4)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the server quiet: the poller logs what matters."""


def start_test_server() -> http.server.ThreadingHTTPServer:
    """Serve the stand-in API on 127.0.0.1 and an ephemeral port, in a daemon thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RatesHandler)
    threading.Thread(target=server.serve_forever, name="test-api", daemon=True).start()
    return server


def describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {exc.response.reason_phrase}"
    return f"{type(exc).__name__}: {exc}"


class Poller(BackgroundService):
    """Polls ``url`` every ``interval`` seconds; backs off (``backoff``) while requests fail."""

    def __init__(self, url: str, interval: float, backoff: Backoff) -> None:
        self.url = url
        self.interval = interval
        self.backoff = backoff
        self.rng = random.Random()

    async def execute(self) -> None:
        failures = 0
        async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as client:
            while True:
                try:
                    response = await client.get(self.url)
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    failures += 1
                    delay = self.backoff.delay(failures, self.rng)
                    log.warning("poll failed (%d in a row): %s; next try in %.2f s", failures, describe(exc), delay)
                    await trio.sleep(delay)
                    continue
                if failures:
                    log.info("API is back after %d failed polls", failures)
                failures = 0
                rates = response.json()
                log.info("poll %d: EURUSD %s", rates["request"], rates["EURUSD"])
                await trio.sleep(self.interval)


def build_tree(url: str, interval: float) -> Supervisor:
    backoff = Backoff(initial=interval, factor=2.0, max=max(60.0, interval))
    return Supervisor(
        name="poller",
        children=[ChildSpec(name="rates", factory=functools.partial(Poller, url, interval, backoff))],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="poll a local HTTP API with backoff on errors")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    options = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # httpx logs every request at INFO
    server = start_test_server()
    host, port = server.server_address[:2]
    try:
        return run(build_tree(f"http://{host!s}:{port}/rates", options.interval))
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    raise SystemExit(main())
