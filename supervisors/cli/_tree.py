"""``supervisors tree``: a live terminal view of a running host's tree, through its dashboard's API."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from ._common import CommandError

DEFAULT_URL = "http://127.0.0.1:8000"
TREE_PATH = "/api/tree"


def fetch_tree(url: str, token: str | None, timeout: float = 5.0) -> Any:
    """The tree as the dashboard's ``GET /api/tree`` returns it; `CommandError` if unreachable."""
    request = urllib.request.Request(url.rstrip("/") + TREE_PATH, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        hint = " (pass --token)" if exc.code in (401, 403) else ""
        msg = f"the dashboard at {url} answered {exc.code} {exc.reason} for {TREE_PATH}{hint}"
        raise CommandError(msg) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        msg = f"cannot reach the dashboard at {url} ({reason}); is the host running with --dashboard?"
        raise CommandError(msg) from None
    except ValueError as exc:
        msg = f"the dashboard at {url} did not answer JSON for {TREE_PATH} ({exc})"
        raise CommandError(msg) from None


def _root(data: Any) -> dict[str, Any]:
    if isinstance(data, dict) and isinstance(data.get("tree"), dict):
        return data["tree"]  # type: ignore[no-any-return]
    if isinstance(data, dict):
        return data
    msg = f"unexpected answer from {TREE_PATH}: {str(data)[:80]!r}"
    raise CommandError(msg)


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def render(data: Any) -> list[str]:
    """One line per node, indented by depth: name, kind, state, restarts, uptime, mailbox depth,
    messages handled, the first line of the last error."""
    lines: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        name = node.get("name") or str(node.get("path", "?")).rsplit("/", 1)[-1]
        parts = [f"{'  ' * depth}{name}", str(node.get("kind", "")), str(node.get("state", "?"))]
        restarts = node.get("restarts")
        if restarts:
            parts.append(f"restarts {restarts}")
        uptime = node.get("uptime_seconds")
        if isinstance(uptime, int | float):
            parts.append(f"up {_duration(uptime)}")
        depth_ = node.get("mailbox_depth")
        if depth_ is not None:
            parts.append(f"mailbox {depth_}")
        handled = node.get("messages_handled")
        if handled:
            parts.append(f"handled {handled}")
        error = node.get("last_error")
        if error:
            parts.append(f"last error {str(error).splitlines()[0][:80]}")
        lines.append("  ".join(p for p in parts if p))
        for child in node.get("children") or ():
            if isinstance(child, dict):
                walk(child, depth + 1)

    walk(_root(data), 0)
    return lines


def tree_command(options: argparse.Namespace) -> int:
    data = fetch_tree(options.url, options.token)
    if options.once:
        print("\n".join(render(data)))
        return 0
    tty = sys.stdout.isatty()
    try:
        while True:
            stamp = time.strftime("%H:%M:%S")
            frame = "\n".join([f"{options.url}  {stamp}  (Ctrl-C to quit)", "", *render(data)])
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J" + frame + "\n")
            else:
                sys.stdout.write(frame + "\n\n")
            sys.stdout.flush()
            time.sleep(options.interval)
            try:
                data = fetch_tree(options.url, options.token)
            except CommandError as exc:
                data = {"name": f"(unreachable: {exc})", "state": "", "children": []}
    except KeyboardInterrupt:
        return 0


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    tree = commands.add_parser(
        "tree", parents=[common], help="a live view of a running host's tree (through its dashboard)",
        description="Show the supervision tree of a host started with --dashboard, refreshed every "
        "--interval seconds until Ctrl-C.",
    )
    tree.add_argument("--url", default=DEFAULT_URL, help=f"the dashboard (default {DEFAULT_URL})")
    tree.add_argument("--token", help="the dashboard's read-only or admin token, if it needs one")
    tree.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    tree.add_argument("--once", action="store_true", help="print the tree once and exit")
    tree.set_defaults(handler=tree_command)
