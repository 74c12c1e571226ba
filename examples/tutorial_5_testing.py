"""Tutorial step 5: testing the tree with pytest-trio and a MockClock.

Run it with ``pytest examples/tutorial_5_testing.py``.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from tutorial_1_first_actor import Counter, GetCount, Increment
from tutorial_2_background_service import tree

from supervisors import ChildCrashed, ChildSpec, Event, Supervisor, open_tree


@pytest.mark.trio
async def test_counter_adds_what_it_is_sent() -> None:
    """Casts are handled in order; a call returns the handler's value."""
    spec = Supervisor(name="test", children=[ChildSpec(name="counter", factory=Counter)])
    async with open_tree(spec) as running:
        counter = running.ref("counter")
        await counter.cast(Increment(by=2))
        await counter.cast(Increment(by=3))
        assert await counter.call(GetCount()) == 5


@pytest.mark.trio
async def test_clicker_clicks_ten_times_a_second(autojump_clock: trio.testing.MockClock) -> None:
    """Ten virtual seconds take no real time under the autojump clock."""
    async with open_tree(tree) as running:
        await trio.sleep(9.95)
        assert await running.ref("counter").call(GetCount()) == 100


@pytest.mark.trio
async def test_counter_restarts_from_zero_after_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    """A crash is reported as an event; the restarted counter starts from a fresh state."""
    events: list[Event] = []
    spec = Supervisor(name="test", children=[ChildSpec(name="counter", factory=Counter)])
    async with open_tree(spec, listeners=[events.append]) as running:
        counter = running.ref("counter")
        await counter.cast(Increment(by=5))
        await counter.cast(Increment(by=0))  # crashes the counter
        assert await counter.call(GetCount()) == 0  # answered by the new incarnation
    crashes = [event for event in events if isinstance(event, ChildCrashed)]
    assert [(c.path, c.message) for c in crashes] == [("test/counter", Increment(by=0))]
    assert isinstance(crashes[0].error, ValueError)
