"""Tutorial step 2: a BackgroundService beside the counter, both in one supervisor.

Run it with ``python examples/tutorial_2_background_service.py``; it stops by itself.
"""

from __future__ import annotations

import trio
from tutorial_1_first_actor import Counter, GetCount, Increment

from actors import BackgroundService
from supervisors import ChildSpec, Supervisor, Tree, current_tree, run


class Clicker(BackgroundService):
    """Clicks the counter every ``interval`` seconds until it is stopped."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval

    async def execute(self) -> None:
        counter = current_tree().ref("counter")
        try:
            while True:
                await counter.cast(Increment())
                await trio.sleep(self.interval)
        finally:
            print("clicker: stopped")


tree = Supervisor(
    name="app",
    children=[
        ChildSpec(name="counter", factory=Counter),
        ChildSpec(name="clicker", factory=Clicker),
    ],
)


async def demo(tree: Tree) -> None:
    await trio.sleep(1.0)
    count = await tree.ref("counter").call(GetCount())
    print(f"after one second the count is {count}")
    tree.request_stop()


if __name__ == "__main__":
    raise SystemExit(run(tree, on_started=demo))
