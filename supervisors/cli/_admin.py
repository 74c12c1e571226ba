"""``supervisors migrate URL`` and ``supervisors config module:Settings``."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

import attrs

from ._common import CommandError, load_object, open_store, parse_store_url


def _user_version(path: Path) -> int:
    if not path.is_file():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def migrate_command(options: argparse.Namespace) -> int:
    """Create or upgrade the store's schema (the migrations a host runs when it opens the store)."""
    parsed = parse_store_url(options.url)
    if parsed.kind == "postgresql":
        from ..jobs.__main__ import main as pg_migrate

        schema = options.schema or parsed.schema
        return pg_migrate(["migrate", parsed.url, *(["--schema", schema] if schema else [])])
    if options.schema:
        raise CommandError("--schema is for PostgreSQL stores; a SQLite store has none")
    assert parsed.path is not None
    before = _user_version(parsed.path)
    store = open_store(options.url)

    async def open_and_close() -> None:
        try:
            await store.open()
        finally:
            await store.aclose()

    import trio

    trio.run(open_and_close)
    after = _user_version(parsed.path)
    if after == before:
        print(f"{parsed.path}: already at version {after}")
    else:
        print(f"{parsed.path}: migrated from version {before} to {after}")
    return 0


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            items.extend(_flatten(value, f"{prefix}{key}."))
        return items
    return [(prefix[:-1], data)]


def config_command(options: argparse.Namespace) -> int:
    """Load the settings class as the program would and print them with secrets masked."""
    from .. import load_settings, masked_settings

    cls = load_object(options.target)
    if not (isinstance(cls, type) and attrs.has(cls)):
        msg = f"{options.target} is not an attrs class of settings (got {cls!r})"
        raise CommandError(msg)
    if options.toml is not None and not Path(options.toml).is_file():
        msg = f"no settings file at {options.toml!r}"
        raise CommandError(msg)
    settings = load_settings(cls, env_prefix=options.env_prefix, toml=options.toml, section=options.section)
    data = masked_settings(settings)
    if options.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    for key, value in _flatten(data):
        print(f"{key} = {json.dumps(value, default=str)}")
    return 0


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    migrate = commands.add_parser(
        "migrate", parents=[common], help="create or upgrade a job store's schema",
        description="Run the job store's migrations (SQLite: the file is created if missing; PostgreSQL: "
        "under the store's advisory lock, as python -m supervisors.jobs migrate).",
    )
    migrate.add_argument("url", help="sqlite:///PATH or postgresql://USER@HOST/DB[?schema=NAME]")
    migrate.add_argument("--schema", help="PostgreSQL schema (default supervisors_jobs)")
    migrate.set_defaults(handler=migrate_command)

    config = commands.add_parser(
        "config", parents=[common], help="show settings as the program loads them, secrets masked",
        description="Load an attrs settings class with load_settings and print it; Secret fields show ***.",
    )
    config.add_argument("target", help="module:SettingsClass")
    config.add_argument("--env-prefix", help="read <PREFIX><FIELD> environment variables, e.g. MYAPP_")
    config.add_argument("--toml", metavar="FILE", help="a TOML file of settings")
    config.add_argument("--section", help="the TOML table to read, e.g. app")
    config.add_argument("--json", action="store_true", help="print JSON")
    config.set_defaults(handler=config_command)
