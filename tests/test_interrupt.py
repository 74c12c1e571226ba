"""Ctrl-C inside a handler: the host's interrupt, not a crash (in-process and a real process)."""

from __future__ import annotations

import logging

import attrs
import pytest
import trio
import trio.testing
from _probes import Log, probe

from actors import Actor, BackgroundService, handler
from supervisors import (
    EXIT_INTERRUPTED,
    ChildCrashed,
    ChildSpec,
    ChildStarting,
    Event,
    Supervisor,
    TreeStopped,
    open_tree,
)


@attrs.frozen
class Interrupt:
    pass


class Interrupter(Actor):
    """Raises KeyboardInterrupt in a handler, as a Ctrl-C during a busy handler does."""

    def __init__(self, log: Log) -> None:
        self.log = log

    async def on_stop(self) -> None:
        self.log.append("stop interrupter")

    @handler
    async def interrupt(self, msg: Interrupt) -> None:
        raise KeyboardInterrupt


def tree(log: Log) -> Supervisor:
    return Supervisor(name="app", children=[
        ChildSpec(name="first", factory=probe("first", log)),
        ChildSpec(name="interrupter", factory=lambda: Interrupter(log)),
        ChildSpec(name="last", factory=probe("last", log)),
    ])


async def test_keyboard_interrupt_in_a_handler_stops_the_tree_gracefully_and_is_reraised_unwrapped(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """open_tree re-raises the bare KeyboardInterrupt after stopping the others in reverse order, with on_stop."""
    caplog.set_level(logging.INFO)
    log = Log()
    events: list[Event] = []
    body_reached_end = False
    with pytest.raises(KeyboardInterrupt) as info:
        async with open_tree(tree(log), listeners=[events.append]) as t:
            await t.ref("interrupter").cast(Interrupt())
            await trio.sleep(10)
            body_reached_end = True
    assert type(info.value) is KeyboardInterrupt  # not an exception group
    assert not body_reached_end  # the body is cancelled once the tree has stopped
    assert log.of("stop") == ["last", "first"]  # the interrupted actor's own on_stop does not run
    assert any("raised in 'app/interrupter'" in note for note in getattr(info.value, "__notes__", []))
    crashed = [e for e in events if isinstance(e, ChildCrashed)]
    assert [(e.path, type(e.error)) for e in crashed] == [("app/interrupter", KeyboardInterrupt)]
    assert [e.path for e in events if isinstance(e, ChildStarting)] == ["app/first", "app/interrupter", "app/last"]
    (stopped,) = [e for e in events if isinstance(e, TreeStopped)]
    assert isinstance(stopped.error, KeyboardInterrupt)
    assert "child app/interrupter was interrupted by KeyboardInterrupt while handling Interrupt" in caplog.text
    assert "tree app stopped after an interrupt (KeyboardInterrupt); open_tree re-raises it" in caplog.text
    assert "tree app stopped" not in [r.getMessage() for r in caplog.records]  # never reported clean


async def test_an_interrupt_inside_a_background_service_nursery_is_unwrapped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """SystemExit from execute() of a service that also handles messages (a nursery inside): bare, once."""

    class Quitter(BackgroundService):
        async def execute(self) -> None:
            await trio.sleep(1)
            raise SystemExit(3)

        @handler
        def interrupt(self, msg: Interrupt) -> None:
            pass

    log = Log()
    spec = Supervisor(name="app", children=[
        ChildSpec(name="p", factory=probe("p", log)), ChildSpec(name="q", factory=Quitter),
    ])
    with pytest.raises(SystemExit) as info:
        async with open_tree(spec):
            await trio.sleep(10)
    assert type(info.value) is SystemExit
    assert info.value.code == 3
    assert log.of("stop") == ["p"]


@pytest.mark.slow
def test_run_exits_130_when_a_handler_is_interrupted() -> None:
    """A real process: KeyboardInterrupt in a handler makes run() stop the tree gracefully and exit 130."""
    from test_host import start

    proc = start("interrupt")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "STOPPED ready" in out  # the sibling was stopped gracefully
    assert "tree 'hostapp' was interrupted by KeyboardInterrupt in hostapp/interrupter" in err
    assert "Traceback" not in err.split("was interrupted by KeyboardInterrupt in")[-1]
