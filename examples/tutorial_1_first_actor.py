"""Tutorial step 1: an actor with two handlers, sent a cast and a call.

Run it with ``python examples/tutorial_1_first_actor.py``; it stops by itself.
"""

from __future__ import annotations

import attrs

from actors import Actor, Request, handler
from supervisors import ChildSpec, Supervisor, Tree, run


@attrs.frozen
class Increment:
    """Add ``by`` to the count. Sent with cast: no reply."""

    by: int = 1


@attrs.frozen
class GetCount(Request[int]):
    """Ask for the count. Sent with call: the reply is an int."""


class Counter(Actor):
    """Counts; handles one message at a time, in the order they arrive."""

    def __init__(self) -> None:
        self.count = 0

    @handler
    async def increment(self, msg: Increment) -> None:
        if msg.by < 1:
            raise ValueError(f"can only count up (got by={msg.by})")
        self.count += msg.by

    @handler
    def get_count(self, msg: GetCount) -> int:
        return self.count


tree = Supervisor(name="app", children=[ChildSpec(name="counter", factory=Counter)])


async def demo(tree: Tree) -> None:
    counter = tree.ref("counter")
    await counter.cast(Increment())
    await counter.cast(Increment(by=41))
    count = await counter.call(GetCount())
    print(f"the count is {count}")
    tree.request_stop()


if __name__ == "__main__":
    raise SystemExit(run(tree, on_started=demo))
