"""dashboard(): the dashboard served as a supervised child of the tree it shows."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import trio
from hypercorn.config import Config

from supervisors import ChildSpec, Restart, Secret, current_tree
from supervisors.jobs import JobSystem
from supervisors.web import AsgiServer
from supervisors.web._server import STOP_MARGIN

from ._app import Dashboard
from ._security import TokenError, is_loopback, parse_address

__all__ = ["DashboardServer", "dashboard"]

logger = logging.getLogger("supervisors.dashboard")


class DashboardServer(AsgiServer):
    """Serves a :class:`Dashboard` bound to the tree it runs in; made by :func:`dashboard`.

    On a stop request the live streams (server-sent events) end at once, so that the drain of
    requests in progress does not wait for them.
    """

    def __init__(self, board: Dashboard, config: Config, host: str, port: int) -> None:
        super().__init__(board.app, config, host, port)
        self.board = board

    async def on_start(self) -> None:
        self.board.bind(current_tree())
        try:
            await super().on_start()
        except BaseException:
            self.board.unbind()
            raise
        # The address it really listens on (with port 0, the one the system chose).
        logger.info("dashboard of tree %r on %s/", current_tree().name, self._urls[0])

    async def execute(self) -> None:
        try:
            async with trio.open_nursery() as nursery:

                async def close_streams_on_stop() -> None:
                    await self.wait_stop_requested()
                    self.board.hub.close()

                nursery.start_soon(close_streams_on_stop)
                await super().execute()
                nursery.cancel_scope.cancel()
        finally:
            self.board.hub.close()
            self.board.unbind()


def dashboard(
    jobs: JobSystem | Sequence[JobSystem] = (),
    *,
    address: str = "127.0.0.1:8000",
    token: str | Secret[str] | None = None,
    readonly_token: str | Secret[str] | None = None,
    name: str = "dashboard",
    grace: float = 5.0,
    time_zone: str = "UTC",
    ready_restarts: int = 3,
    live_interval: float = 2.0,
    restart: Restart = Restart.PERMANENT,
    config: Config | None = None,
    settings: object | None = None,
) -> ChildSpec:
    """A child spec that serves the web dashboard of the tree it is added to.

    ::

        tree = Supervisor(name="app", children=[..., jobs.child_spec(), dashboard(jobs)])

    - ``jobs``: the `JobSystem` (or several, with distinct names) whose jobs, queues and
      schedules are shown and operated; default none (the tree only).
    - ``address``: ``"host:port"``; default ``"127.0.0.1:8000"`` (this machine only). Port
      ``0`` lets the system choose (ask the child with :class:`supervisors.web.ServerUrls`).
    - ``token``: the admin token (reads and acts). ``readonly_token``: a token that only reads.
      Each a string of at least 8 characters or a :class:`supervisors.Secret`. With neither,
      every request may act, which is allowed on a loopback address only: any other address
      without a token raises ``ValueError`` here, so the host refuses to start.
    - ``name``: the child's name; default ``"dashboard"``.
    - ``grace``: how long requests in progress may finish on a stop, in seconds; default 5.0.
      Live streams end at the stop request, so they never hold the stop up.
    - ``time_zone``: the zone times are shown in until the user picks another; default ``"UTC"``.
    - ``ready_restarts``: ``/readyz`` answers 503 while a child is restarting with at least
      this many restarts in its supervisor's intensity window; default 3.
    - ``live_interval``: seconds between keep-alive ticks of the live streams (pages refresh
      their job tables on each); default 2.0.
    - ``restart``, ``config``: as for :func:`supervisors.web.asgi_server`.
    - ``settings``: the application's settings (an attrs instance, such as
      :func:`supervisors.load_settings` returns) to show on the config page, secrets masked;
      default ``None`` (the page shows the host, the dashboard and the job systems only).

    Each start builds a fresh :class:`Dashboard` (its own Prometheus registry) and binds it to
    the running tree (``current_tree()``).
    """
    host, port = parse_address(address)
    board_check = Dashboard(jobs, token=token, readonly_token=readonly_token, time_zone=time_zone,
                            ready_restarts=ready_restarts, live_interval=live_interval, settings=settings)
    if not is_loopback(host) and board_check.access.open:
        raise TokenError(
            f"the dashboard would listen on {address!r}, which is not a loopback address, without a "
            "token: anyone who reaches it could operate the host. Pass {token} (and {readonly_token} "
            "for read-only users), or listen on 127.0.0.1"
        )
    if not grace >= 0 or grace == math.inf:
        raise ValueError(f"'grace' must be a finite number of seconds >= 0 (got {grace!r})")
    served = _copy(Config() if config is None else config)
    served.graceful_timeout = float(grace)
    served.bind = [address]

    def factory() -> DashboardServer:
        board = Dashboard(jobs, token=token, readonly_token=readonly_token, time_zone=time_zone,
                          ready_restarts=ready_restarts, live_interval=live_interval, settings=settings)
        return DashboardServer(board, served, host, port)

    return ChildSpec(name=name, factory=factory, restart=restart, shutdown=grace + STOP_MARGIN)


def _copy(config: Config) -> Config:
    import copy

    return copy.copy(config)
