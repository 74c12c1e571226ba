"""Tutorial step 4: the same tree inside a Trio program of your own, with open_tree.

Run it with ``python examples/tutorial_4_embedding.py``; it stops by itself.
"""

from __future__ import annotations

import logging

import trio
from tutorial_1_first_actor import GetCount
from tutorial_2_background_service import tree

from supervisors import open_tree


async def main() -> None:
    async with open_tree(tree) as running:  # returns once every child has started
        counter = running.ref("counter")
        for _ in range(3):
            await trio.sleep(0.5)
            print(f"main: the count is {await counter.call(GetCount())}")
        print("main: leaving the block stops the tree")
    # Here every task of the tree has finished.
    print("main: the tree has stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(name)s: %(message)s")
    trio.run(main)
