"""The ``supervisors`` command line (also ``python -m supervisors``): run a tree, operate jobs.

See ``docs/cli.md`` for every command and option.
"""

from ._logging import REPEAT_WINDOW as REPEAT_WINDOW
from ._logging import HumanFormatter as HumanFormatter
from ._logging import JsonFormatter as JsonFormatter
from ._logging import configure_logging as configure_logging
from ._main import main as main
from ._main import parser as parser

__all__ = ["REPEAT_WINDOW", "HumanFormatter", "JsonFormatter", "configure_logging", "main", "parser"]
