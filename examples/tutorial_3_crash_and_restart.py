"""Tutorial step 3: a crash is logged, the child restarted; SIGINT (Ctrl-C) stops the tree.

Run it with ``python examples/tutorial_3_crash_and_restart.py``; it stops by itself by sending
itself the SIGINT that Ctrl-C would send.
"""

from __future__ import annotations

import os
import signal

import trio
from tutorial_1_first_actor import GetCount, Increment
from tutorial_2_background_service import tree

from supervisors import Tree, run


async def demo(tree: Tree) -> None:
    counter = tree.ref("counter")
    await trio.sleep(1.0)
    print(f"before the crash the count is {await counter.call(GetCount())}")
    await counter.cast(Increment(by=0))  # the handler raises ValueError: the counter crashes
    print(f"after the restart the count is {await counter.call(GetCount())}")
    node = tree.snapshot().find("counter")
    assert node is not None
    print(f"the counter was restarted {node.restarts} time(s); last error: {node.last_error}")
    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does


if __name__ == "__main__":
    raise SystemExit(run(tree, on_started=demo))
