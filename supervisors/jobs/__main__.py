"""``python -m supervisors.jobs migrate URL [--schema NAME]``: create or upgrade a PostgreSQL job
schema (the same migrations a `PostgresStore` runs on start-up, under the same advisory lock)."""

from __future__ import annotations

import argparse
import sys

from ._errors import StoreError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 done, 1 refused or failed)."""
    parser = argparse.ArgumentParser(
        prog="python -m supervisors.jobs",
        description="Create or upgrade a PostgreSQL job schema. To list, operate and enqueue jobs, "
        "pause queues or trigger schedules, use the full command line: python -m supervisors --help.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    m = commands.add_parser("migrate", help="create or upgrade a PostgreSQL job schema")
    m.add_argument("url", help="the database, e.g. postgresql://user@host:5432/db")
    m.add_argument("--schema", default="supervisors_jobs", help="default: supervisors_jobs")
    args = parser.parse_args(argv)
    from ._pg_migrations import PG_SCHEMA_VERSION, check_schema_name, migrate
    from ._postgres import _psycopg

    try:
        check_schema_name(args.schema)
        psycopg = _psycopg()
        with psycopg.connect(args.url, autocommit=True) as conn:
            ran = migrate(conn, args.schema)
    except (StoreError, ValueError) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"migrate: cannot migrate schema {args.schema!r}: {exc}", file=sys.stderr)
        return 1
    if ran:
        print(f"schema {args.schema!r}: ran migrations {ran}; now at version {PG_SCHEMA_VERSION}")
    else:
        print(f"schema {args.schema!r}: already at version {PG_SCHEMA_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
