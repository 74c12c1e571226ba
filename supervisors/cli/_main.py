"""The command line's entry point: the parser, logging set-up and one-line errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import _admin, _hosts, _jobs, _run, _tree
from ._common import CommandError
from ._logging import LOG_FORMATS, configure_logging

PROG = "supervisors"


def _common_options(*, top: bool) -> argparse.ArgumentParser:
    # Options accepted before and after the command; a command's copy must not overwrite a value
    # given before it, so only the top parser has defaults.
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=default(False),
                        help="show the traceback of an error")
    common.add_argument("--log-level", default=default("INFO"), metavar="LEVEL",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"],
                        help="DEBUG, INFO (default), WARNING or ERROR")
    common.add_argument("--log-format", default=default("human"), choices=LOG_FORMATS,
                        help="human (default: one line per event, repeated failures summarised) or json "
                        "(one JSON object per line, for log shippers)")
    return common


def parser() -> argparse.ArgumentParser:
    """The command line's parser (``supervisors --help``)."""
    top = argparse.ArgumentParser(
        prog=PROG, parents=[_common_options(top=True)],
        description="Run and operate trio-supervisors hosts: run a tree, operate jobs in a store, "
        "watch a running host, migrate a store, show settings.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options(top=False)
    _run.add_parser(commands, common)
    _jobs.add_parser(commands, common)
    _jobs.add_schedules_parsers(commands, common)
    _tree.add_parser(commands, common)
    _hosts.add_parser(commands, common)
    _admin.add_parsers(commands, common)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0: done; 1: the command failed (one line on stderr; the traceback with ``--debug``);
    2: a usage error. ``run`` returns the host's exit code.
    """
    options = parser().parse_args(argv)
    configure_logging(options.log_level, options.log_format)
    try:
        return int(options.handler(options))
    except CommandError as exc:
        if options.debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if options.debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if options.debug:
            raise
        # A note says where the error came from (the module being imported, the target called).
        where = "".join(f" ({note})" for note in getattr(exc, "__notes__", ()))
        if type(exc).__module__.split(".")[0] in ("supervisors", "actors"):
            # Our own errors say what happened and what to do: the message is the line.
            print(f"{PROG}: error: {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        else:
            print(f"{PROG}: error: {type(exc).__name__}: {exc}{where} (run with --debug for the traceback)",
                  file=sys.stderr)
        return 1
