"""``supervisors run module:attr``: run a tree under the host, as uvicorn runs an app."""

from __future__ import annotations

import argparse
import inspect
import logging
from typing import Any

import attrs
import trio

from .. import ChildStopped, DynamicSupervisor, Event, Supervisor, Tree, TreeStopping, serve
from ._common import CommandError, load_object, open_store

logger = logging.getLogger("supervisors.cli")

DEFAULT_DASHBOARD = "127.0.0.1:8000"


def resolve_tree(target: str, store_url: str | None) -> Supervisor | DynamicSupervisor:
    """The spec named by ``target``: a spec, or a callable returning one (given ``store=`` if it
    takes a ``store`` parameter and ``--store`` was given)."""
    obj = load_object(target)
    if isinstance(obj, Supervisor | DynamicSupervisor):
        if store_url is not None:
            msg = f"--store was given, but {target} is a tree spec; point at a function taking store= instead"
            raise CommandError(msg)
        return obj
    if not callable(obj):
        msg = f"{target} is a {type(obj).__name__}, not a Supervisor spec or a function returning one"
        raise CommandError(msg)
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    kwargs: dict[str, Any] = {}
    store = parameters.get("store")
    if store is not None and store_url is not None:
        kwargs["store"] = open_store(store_url)
    elif store is not None and store.default is inspect.Parameter.empty:
        msg = f"{target} takes a job store: pass --store URL (e.g. --store sqlite:///jobs.sqlite3)"
        raise CommandError(msg)
    elif store is None and store_url is not None:
        msg = f"--store was given, but {target} takes no 'store' parameter"
        raise CommandError(msg)
    spec = obj(**kwargs)
    if not isinstance(spec, Supervisor | DynamicSupervisor):
        msg = f"{target}() returned a {type(spec).__name__}, not a Supervisor or DynamicSupervisor spec"
        raise CommandError(msg)
    return spec


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); raises `CommandError` if malformed."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        msg = f"malformed address {address!r}: expected HOST:PORT, e.g. {DEFAULT_DASHBOARD}"
        raise CommandError(msg)
    return host, int(port)


def with_dashboard(spec: Supervisor | DynamicSupervisor, address: str) -> Supervisor | DynamicSupervisor:
    """``spec`` with the dashboard's child added last to its root (so it stops first)."""
    host, port = parse_address(address)
    try:
        from .. import dashboard  # type: ignore[attr-defined]
    except ImportError as exc:
        msg = (
            f"--dashboard needs the dashboard extra ({exc}): pip install 'trio-supervisors[dashboard]'"
        )
        raise CommandError(msg) from exc
    child = dashboard.child_spec(host=host, port=port)
    if isinstance(spec, Supervisor):
        return attrs.evolve(spec, children=[*spec.children, child])
    return Supervisor(name=spec.name, children=[attrs.evolve(spec, name="app"), child])


class ShutdownLog:
    """Logs each child that stopped gracefully during the tree's stop, at INFO, in stop order
    (the runtime logs those at DEBUG only; the other ways of stopping it logs itself)."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, TreeStopping):
            self.stopping = True
        elif self.stopping and isinstance(event, ChildStopped) and event.how == "graceful" and event.error is None:
            logger.info("stopped %s", event.path)


async def _on_started(tree: Tree) -> None:
    tree.add_listener(ShutdownLog())


def command(options: argparse.Namespace) -> int:
    """Run the tree; the exit code is the host's (see `serve`)."""
    spec = resolve_tree(options.target, options.store)
    if options.dashboard is not None:
        spec = with_dashboard(spec, options.dashboard)
    logger.info("running %s (tree %r)%s", options.target, spec.name,
                f"; dashboard on http://{options.dashboard}/" if options.dashboard else "")
    return trio.run(lambda: serve(spec, shutdown_timeout=options.shutdown_timeout, on_started=_on_started))


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser(
        "run", parents=[common], help="run a supervision tree with signals handled",
        description="Run the tree named by module:attr (a Supervisor spec, or a function returning one) "
        "until SIGINT or SIGTERM; exit with the host's code (0 clean, 1 failed, 2 forced, 130 interrupted).",
    )
    run.add_argument("target", help="module:attr, e.g. examples.demo:tree")
    run.add_argument("--store", metavar="URL", help="job store passed as store= to a function target: "
                     "sqlite:///PATH or postgresql://...")
    run.add_argument("--dashboard", metavar="HOST:PORT", nargs="?", const=DEFAULT_DASHBOARD,
                     help=f"serve the dashboard (default address {DEFAULT_DASHBOARD}); off unless given")
    run.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="SECONDS",
                     help="the whole graceful stop's deadline (default 30)")
    run.set_defaults(handler=command, logs=True)
