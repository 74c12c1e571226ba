"""What the commands share: the one-line error, loading ``module:attr``, store URLs."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

if TYPE_CHECKING:
    from ..jobs import Store


class CommandError(Exception):
    """A refused command: its message is printed as one line (no traceback unless ``--debug``)."""


def load_object(target: str) -> Any:
    """The object named by ``module:attr`` (``attr`` may be dotted); the current directory is importable.

    Raises `CommandError` for a malformed target, a module that cannot be imported or a missing
    attribute. An error raised while the module itself runs propagates (shown with ``--debug``),
    with a note naming the module it came from.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        msg = f"malformed target {target!r}: expected module:attribute, e.g. myapp.main:tree"
        raise CommandError(msg)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None and (module_name == missing or module_name.startswith(missing + ".")):
            msg = (
                f"cannot import module {module_name!r} (from {target!r}): no module named {missing!r}; "
                f"run from the directory that contains it, or install it"
            )
            raise CommandError(msg) from exc
        exc.add_note(f"while importing module {module_name!r} for {target!r}")  # an error of the module's own
        raise
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            msg = f"module {module_name!r} has no attribute {attr!r} (from {target!r})"
            raise CommandError(msg) from None
    return obj


@attrs.frozen
class StoreURL:
    """A parsed job store URL: ``sqlite:///relative/path``, ``sqlite:////absolute/path``, or a
    ``postgresql://`` / ``postgres://`` URL (``?schema=NAME`` picks the schema)."""

    kind: str  # "sqlite" or "postgresql"
    path: Path | None = None
    url: str = ""
    schema: str | None = None


def parse_store_url(url: str) -> StoreURL:
    """Parse a job store URL; raises `CommandError` naming the URL and the accepted forms."""
    accepted = "expected sqlite:///PATH (sqlite:////ABSOLUTE/PATH) or postgresql://USER@HOST:PORT/DB"
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            msg = f"malformed store URL {url!r}: {accepted}"
            raise CommandError(msg)
        return StoreURL(kind="sqlite", path=Path(parts.path[1:]), url=url)
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.netloc and not parts.path.strip("/"):
            msg = f"malformed store URL {redact(url)!r}: {accepted}"
            raise CommandError(msg)
        schema = None
        query = [q for q in parts.query.split("&") if q]
        rest = []
        for item in query:
            name, _, value = item.partition("=")
            if name == "schema":
                schema = value
            else:
                rest.append(item)
        plain = parts._replace(query="&".join(rest)).geturl()
        return StoreURL(kind="postgresql", url=plain, schema=schema)
    msg = f"unknown store URL {redact(url)!r}: {accepted}"
    raise CommandError(msg)


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def open_store(url: str) -> Store:
    """The `Store` for a store URL (`SQLiteStore` or `PostgresStore`; not opened yet)."""
    parsed = parse_store_url(url)
    try:
        if parsed.kind == "sqlite":
            from ..jobs import SQLiteStore

            assert parsed.path is not None
            return SQLiteStore(parsed.path)
        from ..jobs import PostgresStore

        if parsed.schema is not None:
            return PostgresStore(parsed.url, schema=parsed.schema)
        return PostgresStore(parsed.url)
    except ImportError as exc:
        msg = f"the job store needs an extra that is not installed ({exc}): pip install 'trio-supervisors[jobs]'"
        raise CommandError(msg) from exc
