"""A tree with a queue consumer and a worker that crashes, recovers, and loses nothing else.

- ``outbox`` is a queue consumer: an actor that "sends" each e-mail cast to it.
- ``resizer`` is a flaky worker: every seventh image makes it crash; its supervisor restarts
  it (after a short backoff) and the images queued meanwhile wait in its mailbox.
- ``producer`` is a BackgroundService that feeds both, started last so its consumers are up.

Run it with ``python examples/pipeline.py``; stop it with Ctrl-C. Every crash is logged with
its traceback; the stats line shows that only the crashing message was lost.
"""

from __future__ import annotations

import logging

import attrs
import trio

from actors import Actor, BackgroundService, Request, handler
from supervisors import Backoff, ChildSpec, Supervisor, current_tree, run

log = logging.getLogger("pipeline")


@attrs.frozen
class SendEmail:
    to: str
    subject: str


@attrs.frozen
class Resize:
    image: int


@attrs.frozen
class Stats(Request[int]):
    """Ask a worker how many messages it has handled in its current incarnation."""


class Outbox(Actor):
    """Consumes SendEmail messages one at a time, in order."""

    def __init__(self) -> None:
        self.sent = 0

    @handler
    async def send(self, msg: SendEmail) -> None:
        await trio.sleep(0.01)  # the SMTP round trip
        self.sent += 1
        log.debug("sent %r to %s", msg.subject, msg.to)

    @handler
    def stats(self, msg: Stats) -> int:
        return self.sent


class Resizer(Actor):
    """Resizes images; crashes on every seventh one (a bug the supervisor papers over)."""

    def __init__(self) -> None:
        self.done = 0

    @handler
    async def resize(self, msg: Resize) -> None:
        if msg.image % 7 == 0:
            raise ValueError(f"image {msg.image} is corrupt")
        await trio.sleep(0.005)
        self.done += 1

    @handler
    def stats(self, msg: Stats) -> int:
        return self.done


class Producer(BackgroundService):
    """Feeds the outbox and the resizer, and prints progress once a second."""

    async def execute(self) -> None:
        tree = current_tree()
        parent = self.path.rpartition("/")[0]  # siblings, wherever this subtree is mounted
        outbox, resizer = tree.ref(f"{parent}/outbox"), tree.ref(f"{parent}/resizer")
        n = 0
        while True:
            n += 1
            await outbox.cast(SendEmail(to=f"user{n}@example.com", subject=f"welcome #{n}"))
            await resizer.cast(Resize(image=n))
            if n % 10 == 0:
                resizer_node = tree.snapshot().find(resizer.path)
                restarts = resizer_node.restarts if resizer_node else 0
                log.info(
                    "progress: %d produced, outbox sent %d, resizer restarted %d times",
                    n, await outbox.call(Stats()), restarts,
                )
            await trio.sleep(0.2)


tree = Supervisor(
    name="pipeline",
    max_restarts=5,
    within=5.0,
    backoff=Backoff(initial=0.05, max=1.0),
    children=[
        ChildSpec(name="outbox", factory=Outbox),
        ChildSpec(name="resizer", factory=Resizer),
        ChildSpec(name="producer", factory=Producer),
    ],
)

if __name__ == "__main__":
    raise SystemExit(run(tree))
