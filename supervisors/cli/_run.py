"""``supervisors run module:attr``: run a tree under the host, as uvicorn runs an app."""

from __future__ import annotations

import argparse
import inspect
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .. import ChildSpec, ChildStopped, DynamicSupervisor, Event, Supervisor, Tree, TreeStopping, serve
from ._common import CommandError, load_object, open_store

logger = logging.getLogger("supervisors.cli")

DEFAULT_DASHBOARD = "127.0.0.1:8000"

_TOKEN_OPTIONS = {"token": "--dashboard-token", "readonly_token": "--dashboard-readonly-token"}
"""The options that set the dashboard's tokens, by the names `TokenError` gives them."""


def _dashboard_factory(options: argparse.Namespace) -> Callable[..., ChildSpec] | None:
    """``dashboard(jobs=())`` with the address and tokens of the options, or None without --dashboard."""
    if options.dashboard is None:
        return None
    parse_address(options.dashboard)
    try:
        from ..dashboard import TokenError, dashboard
    except ImportError as exc:
        msg = f"--dashboard needs the dashboard extra ({exc}): pip install 'trio-supervisors[dashboard]'"
        raise CommandError(msg) from exc

    def make(jobs: Any = (), **kwargs: Any) -> ChildSpec:
        try:
            return dashboard(jobs, address=options.dashboard, token=options.dashboard_token,
                             readonly_token=options.dashboard_readonly_token, **kwargs)
        except TokenError as exc:  # named by the options that set the tokens
            raise CommandError(f"--dashboard {options.dashboard}: {exc.render(_TOKEN_OPTIONS)}") from exc
        except ValueError as exc:
            raise CommandError(f"--dashboard {options.dashboard}: {exc}") from exc

    return make


def resolve_tree(target: str, options: argparse.Namespace) -> Supervisor | DynamicSupervisor:
    """The spec named by ``target``, with the dashboard of ``--dashboard`` in it.

    A spec is used as it is (the dashboard, if asked for, is added as the root's last child and
    shows the tree). A callable is called with the keyword arguments it declares among:
    ``store`` (the `Store` of ``--store``; required unless it has a default) and ``dashboard``
    (a function ``dashboard(jobs=(), **options) -> ChildSpec`` to add where the tree wants,
    given the job systems to show; ``None`` without ``--dashboard``).
    """
    obj = load_object(target)
    make_dashboard = _dashboard_factory(options)
    store_url = options.store
    if isinstance(obj, Supervisor | DynamicSupervisor):
        if store_url is not None:
            msg = f"--store was given, but {target} is a tree spec; point at a function taking store= instead"
            raise CommandError(msg)
        return obj if make_dashboard is None else _add_child(obj, make_dashboard())
    if not callable(obj):
        msg = f"{target} is {_a(type(obj).__name__)}, not a Supervisor spec or a function returning one"
        raise CommandError(msg)
    try:
        parameters = dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        parameters = {}
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
    if "dashboard" in parameters:
        kwargs["dashboard"] = make_dashboard
    try:
        spec = obj(**kwargs)
    except CommandError:
        raise
    except Exception as exc:
        exc.add_note(f"raised by {target}()")
        raise
    if not isinstance(spec, Supervisor | DynamicSupervisor):
        msg = f"{target}() returned {_a(type(spec).__name__)}, not a Supervisor or DynamicSupervisor spec"
        raise CommandError(msg)
    if make_dashboard is not None and "dashboard" not in parameters:
        spec = _add_child(spec, make_dashboard())
    return spec


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: ``"an int"``, ``"a str"``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _seconds(text: str) -> float:
    """The value of ``--shutdown-timeout``: a number of seconds >= 0 (``inf`` for no deadline)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        msg = f"expected a number of seconds >= 0, or inf for no deadline (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); raises `CommandError` if malformed."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        msg = f"malformed address {address!r}: expected HOST:PORT, e.g. {DEFAULT_DASHBOARD}"
        raise CommandError(msg)
    return host, int(port)


def _add_child(spec: Supervisor | DynamicSupervisor, child: ChildSpec) -> Supervisor | DynamicSupervisor:
    """``spec`` with ``child`` as its root's last child (started last, stopped first)."""
    if isinstance(spec, Supervisor):
        return attrs.evolve(spec, children=[*spec.children, child])
    return Supervisor(name=spec.name, children=[attrs.evolve(spec, name="app"), child])


class ShutdownLog:
    """Logs each child that stopped gracefully during the tree's stop, at INFO, in stop order
    (the runtime logs those at DEBUG only; the other ways of stopping it logs itself)."""

    def __init__(self, *, stopping: bool = False) -> None:
        self.stopping = stopping

    def __call__(self, event: Event) -> None:
        if isinstance(event, TreeStopping):
            self.stopping = True
        elif self.stopping and isinstance(event, ChildStopped) and event.how == "graceful" and event.error is None:
            logger.info("stopped %s", event.path)


async def _on_started(tree: Tree) -> None:
    # A signal can arrive between the tree's start and this call: its stop has then begun already.
    tree.add_listener(ShutdownLog(stopping=tree.is_stopping))


def command(options: argparse.Namespace) -> int:
    """Run the tree; the exit code is the host's (see `serve`)."""
    spec = resolve_tree(options.target, options)
    # The dashboard logs the address it listens on once it does (`supervisors.dashboard`).
    logger.info("running %s (tree %r)", options.target, spec.name)
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
    run.add_argument("--dashboard-token", metavar="TOKEN", default=os.environ.get("SUPERVISORS_DASHBOARD_TOKEN"),
                     help="the dashboard's admin token (default: $SUPERVISORS_DASHBOARD_TOKEN); "
                     "this or --dashboard-readonly-token is required to listen on a non-loopback address")
    run.add_argument("--dashboard-readonly-token", metavar="TOKEN",
                     default=os.environ.get("SUPERVISORS_DASHBOARD_READONLY_TOKEN"),
                     help="a token that may only read (default: $SUPERVISORS_DASHBOARD_READONLY_TOKEN)")
    run.add_argument("--shutdown-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                     help="the whole graceful stop's deadline (default 30)")
    run.set_defaults(handler=command, logs=True)
