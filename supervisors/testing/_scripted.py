"""The toolkit's own actor for generated trees: takes time to start and stop, counts messages."""

from __future__ import annotations

import weakref
from collections import defaultdict

import attrs
import trio

from actors import Actor, handler

from .._tree import current_tree

__all__ = ["Ledger", "Numbered", "Scripted", "ScriptedActor", "ledgers"]


@attrs.frozen
class Numbered:
    """A message carrying a sequence number, recorded by :class:`ScriptedActor` when handled."""

    seq: int


@attrs.define
class Ledger:
    """Which numbered messages each path was sent (accepted by its mailbox) and handled."""

    sent: dict[str, list[int]] = attrs.field(factory=lambda: defaultdict(list))
    received: dict[str, list[int]] = attrs.field(factory=lambda: defaultdict(list))
    next_seq: int = 0

    def take_seq(self) -> int:
        self.next_seq += 1
        return self.next_seq


ledgers: weakref.WeakKeyDictionary[object, Ledger] = weakref.WeakKeyDictionary()
"""The ledger of each traced tree, by Tree (children find it through current_tree())."""


class ScriptedActor(Actor):
    """Sleeps ``start_delay`` in ``on_start`` and ``stop_delay`` in ``on_stop``; records messages."""

    def __init__(self, start_delay: float = 0.0, stop_delay: float = 0.0) -> None:
        self.start_delay = start_delay
        self.stop_delay = stop_delay

    async def on_start(self) -> None:
        if self.start_delay:
            await trio.sleep(self.start_delay)

    async def on_stop(self) -> None:
        if self.stop_delay:
            await trio.sleep(self.stop_delay)

    @handler
    def numbered(self, msg: Numbered) -> None:
        ledger = ledgers.get(current_tree())
        if ledger is not None:
            ledger.received[self.path].append(msg.seq)


@attrs.frozen
class Scripted:
    """A readable, hashable factory of :class:`ScriptedActor` (what generated trees use)."""

    start_delay: float = 0.0
    stop_delay: float = 0.0

    def __call__(self) -> ScriptedActor:
        return ScriptedActor(self.start_delay, self.stop_delay)
