"""Call timeouts: deadlines of concurrent calls, answered and cancelled calls leave nothing behind."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from _probes import Echo, Log, Sleep, probe, tree_of

from actors import CallTimeout
from supervisors import ChildSpec, open_tree


async def test_a_shorter_timeout_sent_after_a_longer_one_expires_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each call times out at its own deadline, whatever order the calls were made in."""
    log = Log()
    expired: dict[str, float] = {}
    async with open_tree(tree_of(ChildSpec(name="p", factory=probe("p", log)))) as tree:
        ref = tree.ref("p")
        await ref.cast(Sleep(math.inf))
        t0 = trio.current_time()

        async def caller(name: str, timeout: float) -> None:
            with pytest.raises(CallTimeout, match=f"got no reply within {timeout} s"):
                await ref.call(Echo(name), timeout=timeout)
            expired[name] = trio.current_time() - t0

        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller, "long", 10.0)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(caller, "short", 2.0)
    assert expired == {"short": pytest.approx(2.0), "long": pytest.approx(10.0)}


async def test_an_answered_call_is_not_failed_when_its_timeout_would_have_expired(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The reply wins: nothing reaches the caller at the old deadline."""
    log = Log()
    async with open_tree(tree_of(ChildSpec(name="p", factory=probe("p", log)))) as tree:
        ref = tree.ref("p")
        assert await ref.call(Echo(1), timeout=1.0) == 1
        await trio.sleep(5)  # past the deadline of the answered call: no CallTimeout arrives
        assert await ref.call(Echo(2), timeout=1.0) == 2


async def test_a_caller_cancelled_while_waiting_gets_no_timeout_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A call cancelled from outside ends with Cancelled only; its deadline is forgotten."""
    log = Log()
    async with open_tree(tree_of(ChildSpec(name="p", factory=probe("p", log)))) as tree:
        ref = tree.ref("p")
        await ref.cast(Sleep(3))
        with trio.move_on_after(1) as scope:
            await ref.call(Echo(1), timeout=5.0)
        assert scope.cancelled_caught
        await trio.sleep(10)  # past the cancelled call's deadline
        assert await ref.call(Echo(2)) == 2


@pytest.mark.parametrize(("timeout", "error"), [(-1.0, ValueError), (math.nan, ValueError), ("5", TypeError)])
async def test_a_call_with_a_timeout_that_is_not_seconds_is_refused_before_it_is_sent(
    autojump_clock: trio.testing.MockClock, timeout: object, error: type[Exception]
) -> None:
    """A negative, NaN or non-number ``timeout`` raises at the call site naming the actor and the
    message (not Trio's own words), and the request is not enqueued."""
    log = Log()
    async with open_tree(tree_of(ChildSpec(name="p", factory=probe("p", log)))) as tree:
        ref = tree.ref("p")
        with pytest.raises(error, match=r"call Echo to actor 'app/p': 'timeout' must be a number of seconds >= 0"):
            await ref.call(Echo(1), timeout=timeout)  # type: ignore[arg-type]
        assert ref.mailbox_depth == 0
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.call(Echo(2), timeout=1.0) == 2
