"""AsgiServer: an ASGI app served by hypercorn's Trio worker as a supervised background service."""

from __future__ import annotations

import copy
import errno
import logging
import math
import socket
from typing import Any

import attrs
import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from actors import BackgroundService, Request, handler
from supervisors import ChildSpec, ConfigurationError, Restart

__all__ = ["AsgiServer", "ServerUrls", "asgi_server"]

logger = logging.getLogger("supervisors.web")

STOP_MARGIN = 1.0
"""Shutdown time given to the child beyond its grace, so that hypercorn ends the drain itself."""


class ListenError(ConfigurationError, OSError):
    """The server cannot listen on its address; the message names the child, the address and what
    to do (a `ConfigurationError`: its start failure is logged as one line)."""


@attrs.frozen
class ServerUrls(Request[tuple[str, ...]]):
    """Ask an :class:`AsgiServer` child for the URLs it listens on (``http://127.0.0.1:8000``).

    ``await tree.ref("web").call(ServerUrls())``; with ``port=0`` this is how to learn the port
    the system chose. After a restart the child binds again, so ask again.
    """


class AsgiServer(BackgroundService):
    """Serves ``app`` with hypercorn's Trio worker; made by :func:`asgi_server`.

    ``on_start`` binds and listens, so the child counts as started only once connections are
    accepted, and a port already in use fails the start. On a stop request the listening
    socket is closed (new connections are refused), requests in progress may finish within
    hypercorn's ``graceful_timeout``, then the rest are cancelled.
    """

    cancel_on_stop = False

    def __init__(self, app: Any, config: Config, host: str, port: int) -> None:
        super().__init__()
        self._app = app
        self._config = config
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._urls: tuple[str, ...] = ()

    async def on_start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        try:
            sock = socket.create_server(
                (self._host, self._port), family=family, backlog=self._config.backlog
            )
        except OSError as exc:
            where = f"{self._host}:{self._port}"
            hint = (
                "another process is listening there: stop it, or choose another port (0 picks a free one)"
                if exc.errno == errno.EADDRINUSE
                else "check the address (an address of this machine, a port this user may bind)"
            )
            msg = f"{self.path}: cannot listen on {where}: {exc.strerror}; {hint}"
            error = ListenError(msg)
            error.errno = exc.errno
            raise error from exc
        sock.setblocking(False)
        self._socket = sock
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self._urls = (f"http://{shown}:{port}",)

    @handler
    def urls(self, msg: ServerUrls) -> tuple[str, ...]:
        return self._urls

    async def execute(self) -> None:
        sock = self._socket
        assert sock is not None
        sockets = Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[])
        try:
            async with trio.open_nursery() as nursery:

                async def shutdown_trigger() -> None:
                    await self.wait_stop_requested()
                    nursery.start_soon(self._stop_listening)

                await worker_serve(
                    wrap_app(self._app, self._config.wsgi_max_body_size, None),
                    self._config,
                    sockets=sockets,
                    shutdown_trigger=shutdown_trigger,
                )
                nursery.cancel_scope.cancel()
        finally:
            self._close()

    async def _stop_listening(self) -> None:
        # By the time this runs, hypercorn has cancelled its accept loop (the trigger returned a
        # step earlier); closing the socket makes the kernel refuse new connections while the
        # requests in progress drain.
        await trio.lowlevel.checkpoint()
        self._close()

    def _close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def on_stop(self) -> None:
        self._close()


def asgi_server(
    app: Any,
    *,
    name: str = "web",
    host: str = "127.0.0.1",
    port: int = 8000,
    grace: float = 10.0,
    restart: Restart = Restart.PERMANENT,
    config: Config | None = None,
) -> ChildSpec:
    """A child spec that serves the ASGI ``app`` on ``host``:``port`` with hypercorn's Trio worker.

    - ``name``: the child's name; default ``"web"``.
    - ``host``: default ``"127.0.0.1"`` (this machine only); ``"0.0.0.0"`` or ``"::"`` for
      every interface. ``port``: default 8000; ``0`` lets the system choose (ask with
      :class:`ServerUrls`).
    - ``grace``: on a stop, how long requests in progress may take to finish, in seconds;
      default 10.0. New connections are refused from the stop on. The child's shutdown is
      ``grace`` plus 1 s, so the drain ends in hypercorn, not by cancellation.
    - ``restart``: default ``PERMANENT``.
    - ``config``: a hypercorn ``Config`` for everything else (timeouts, access log, h2); it
      is copied, and its ``bind`` and ``graceful_timeout`` are replaced by the above. TLS is not
      set up by this spec: terminate it in front (a reverse proxy) or serve with hypercorn.

    The server runs the app's ASGI lifespan on every start. The child counts as started once
    the socket listens; a port in use fails the start.
    """
    if not grace >= 0 or grace == math.inf:
        raise ValueError(f"'grace' must be a finite number of seconds >= 0 (got {grace!r})")
    settings = copy.copy(config) if config is not None else Config()
    settings.graceful_timeout = float(grace)
    settings.bind = [f"{host}:{port}"]

    def factory() -> AsgiServer:
        return AsgiServer(app, settings, host, port)

    return ChildSpec(name=name, factory=factory, restart=restart, shutdown=grace + STOP_MARGIN)
