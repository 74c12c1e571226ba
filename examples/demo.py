"""The demo application: a heartbeat and the pipeline tree, supervised together.

Run it with ``python examples/demo.py`` and stop it with Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from heartbeat import HeartbeatService
from pipeline import tree as pipeline

from supervisors import ChildSpec, Supervisor, run

tree = Supervisor(
    name="demo",
    children=[
        ChildSpec(name="heartbeat", factory=lambda: HeartbeatService(interval=2.0)),
        pipeline,
    ],
)

if __name__ == "__main__":
    raise SystemExit(run(tree))
