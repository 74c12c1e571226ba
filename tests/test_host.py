"""The host: signals, graceful stop with a deadline, exit codes (real processes)."""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from _probes import Crash, Exit, Log, probe

from actors import Actor
from supervisors import (
    EXIT_FAILED,
    EXIT_FORCED,
    EXIT_OK,
    ChildSpec,
    ConfigurationError,
    Event,
    Supervisor,
    SupervisorGaveUp,
    Tree,
    TreeStopped,
    open_tree,
    serve,
)

APP = Path(__file__).with_name("hostapp.py")


def start(mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(APP), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for(proc: subprocess.Popen[str], marker: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if marker in line:
            return
    raise AssertionError(f"{marker!r} never printed; stderr: {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_stops_gracefully_with_exit_code_0(signum: int) -> None:
    """SIGTERM or SIGINT: children stop in reverse order and the process exits 0."""
    proc = start("ok")
    wait_for(proc, "READY")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == EXIT_OK, err
    assert "stopping gracefully" in err
    assert "tree hostapp stopped" in err


@pytest.mark.slow
def test_root_that_gives_up_exits_1_after_logging_why() -> None:
    """A root supervisor that exceeds its intensity makes the host exit non-zero."""
    proc = start("crash")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == EXIT_FAILED
    assert "crasher always crashes" in err
    assert "gave up" in err
    assert "Traceback" in err


@pytest.mark.slow
def test_second_signal_cancels_at_once_with_exit_code_2() -> None:
    """A second signal during a slow graceful stop cancels the rest; exit code 2."""
    proc = start("slow")
    wait_for(proc, "READY")
    proc.send_signal(signal.SIGTERM)
    wait_for(proc, "SLOWSTOP")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == EXIT_FORCED, err
    assert "second SIGTERM received during the graceful stop: hostapp/slow was still stopping" in err
    assert "tree hostapp stopped" not in err


@pytest.mark.slow
def test_graceful_stop_past_the_deadline_is_cancelled_with_exit_code_2() -> None:
    """A stop that overruns shutdown_timeout is cancelled; exit code 2, logged."""
    proc = start("deadline")
    wait_for(proc, "READY")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == EXIT_FORCED, err
    assert "did not stop within 0.5 s (the shutdown deadline): hostapp/slow was still stopping" in err
    assert "tree hostapp stopped" not in err


async def test_serve_returns_0_when_the_tree_is_asked_to_stop(autojump_clock: trio.testing.MockClock) -> None:
    """serve() without signals returns EXIT_OK after Tree.request_stop()."""
    log = Log()

    async def started(tree: Tree) -> None:
        await trio.sleep(1)
        tree.request_stop()

    spec = Supervisor(name="app", children=[ChildSpec(name="a", factory=probe("a", log))])
    assert await serve(spec, handle_signals=False, on_started=started) == EXIT_OK
    assert log == ["start a", "stop a"]


async def test_serve_returns_1_when_the_root_gives_up(autojump_clock: trio.testing.MockClock) -> None:
    """serve() returns EXIT_FAILED when the root supervisor gives up."""
    log = Log()

    async def started(tree: Tree) -> None:
        await tree.ref("a").cast(Crash())

    spec = Supervisor(name="app", max_restarts=0, children=[ChildSpec(name="a", factory=probe("a", log))])
    assert await serve(spec, handle_signals=False, on_started=started) == EXIT_FAILED


async def test_serve_returns_1_when_the_tree_cannot_start(autojump_clock: trio.testing.MockClock) -> None:
    """serve() returns EXIT_FAILED when a child fails to start."""
    log = Log()
    spec = Supervisor(
        name="app",
        children=[
            ChildSpec(name="a", factory=probe("a", log, fail_start=lambda: True)),
        ],
    )
    assert await serve(spec, handle_signals=False) == EXIT_FAILED


async def test_serve_bounds_a_requested_stop_by_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    """A stop asked for with request_stop() also gets only shutdown_timeout seconds."""
    log = Log()

    async def started(tree: Tree) -> None:
        tree.request_stop()

    spec = Supervisor(
        name="app", children=[ChildSpec(name="slow", factory=probe("slow", log, stop_takes=60.0), shutdown=math.inf)]
    )
    t0 = trio.current_time()
    code = await serve(spec, handle_signals=False, shutdown_timeout=0.5, on_started=started)
    assert code == EXIT_FORCED
    assert trio.current_time() - t0 == pytest.approx(0.5)


async def test_exception_from_on_started_stops_the_tree_and_is_reraised(autojump_clock: trio.testing.MockClock) -> None:
    """An error in on_started stops the tree gracefully and comes out of serve() unwrapped."""
    log = Log()

    async def started(tree: Tree) -> None:
        raise KeyError("config")

    spec = Supervisor(name="app", children=[ChildSpec(name="a", factory=probe("a", log))])
    with pytest.raises(KeyError):
        await serve(spec, handle_signals=False, on_started=started)
    assert log == ["start a", "stop a"]


async def test_forced_stop_names_the_child_still_stopping_and_the_deadline(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """When the shutdown deadline cuts the stop short, the log names the deepest child still stopping and the cause."""
    log = Log()

    async def started(tree: Tree) -> None:
        tree.request_stop()

    spec = Supervisor(name="app", children=[
        ChildSpec(name="fast", factory=probe("fast", log)),
        Supervisor(name="sub", children=[
            ChildSpec(name="slow", factory=probe("slow", log, stop_takes=60.0), shutdown=math.inf),
        ]),
    ])
    caplog.set_level(logging.INFO)
    assert await serve(spec, handle_signals=False, shutdown_timeout=0.5, on_started=started) == EXIT_FORCED
    forced = [r for r in caplog.records if r.levelno == logging.ERROR and "cancelling the rest" in r.getMessage()]
    assert len(forced) == 1
    assert "did not stop within 0.5 s (the shutdown deadline)" in forced[0].getMessage()
    assert "app/sub/slow was still stopping" in forced[0].getMessage()
    assert "second" not in forced[0].getMessage()


async def test_forced_stop_is_never_followed_by_a_clean_stop_line(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After a forced stop the tree's end is logged as cancelled (WARNING), never as 'tree app stopped'."""
    log = Log()

    async def started(tree: Tree) -> None:
        tree.request_stop()

    spec = Supervisor(name="app", children=[
        ChildSpec(name="slow", factory=probe("slow", log, stop_takes=60.0), shutdown=math.inf),
    ])
    caplog.set_level(logging.INFO)
    assert await serve(spec, handle_signals=False, shutdown_timeout=0.5, on_started=started) == EXIT_FORCED
    messages = [r.getMessage() for r in caplog.records]
    assert "tree app stopped" not in messages
    assert "tree app was cancelled before its graceful stop completed" in messages
    assert messages.index("tree app was cancelled before its graceful stop completed") > next(
        i for i, m in enumerate(messages) if "cancelling the rest" in m
    )


async def test_tree_stopped_event_says_when_the_stop_was_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    """TreeStopped.cancelled is True when a cancel scope cut the graceful stop short, False after a clean stop."""
    log = Log()
    spec = Supervisor(name="app", children=[
        ChildSpec(name="slow", factory=probe("slow", log, stop_takes=60.0), shutdown=math.inf),
    ])
    events: list[Event] = []
    with trio.move_on_after(10):
        async with open_tree(spec, listeners=[events.append]) as tree:
            tree.request_stop()
            await trio.sleep_forever()
    stopped = [e for e in events if isinstance(e, TreeStopped)]
    assert [e.cancelled for e in stopped] == [True]

    events.clear()
    async with open_tree(Supervisor(name="app", children=[ChildSpec(name="a", factory=probe("a", log))]),
                         listeners=[events.append]):
        pass
    assert [e.cancelled for e in events if isinstance(e, TreeStopped)] == [False]


async def test_give_up_deep_in_the_tree_is_reported_in_one_line_down_to_the_leaf(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's last line names app, app/sub and app/sub/crasher with its error, and gives the advice once."""
    log = Log()

    async def started(tree: Tree) -> None:
        for _ in range(4):
            await tree.ref("sub/crasher").cast(Crash("boom"))
            await trio.sleep(0.1)

    spec = Supervisor(name="app", max_restarts=0, children=[
        Supervisor(name="sub", max_restarts=3, children=[ChildSpec(name="crasher", factory=probe("crasher", log))]),
    ])
    caplog.set_level(logging.INFO)
    assert await serve(spec, handle_signals=False, on_started=started) == EXIT_FAILED
    last = caplog.records[-1]
    assert last.name == "supervisors.host"
    assert last.levelno == logging.ERROR
    assert last.getMessage() == (
        "tree 'app' failed: app gave up after 0 restart(s) in 5 s because app/sub gave up after 3 restart(s) "
        "in 5 s because app/sub/crasher raised RuntimeError('boom'); exiting with code 1. Fix the failing "
        "child, or raise max_restarts / within, or add a backoff."
    )
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Four crashes (each with its traceback), one line per supervisor that gave up, the host's line.
    assert len(errors) == 4 + 2 + 1
    assert sum("Fix the failing child" in r.getMessage() for r in errors) == 1
    assert [r.exc_info is not None for r in errors] == [True] * 4 + [False] * 3


async def test_supervisor_gave_up_chain_names_a_permanent_child_that_returned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """SupervisorGaveUp.chain says that a permanent child returned normally, rather than naming a made-up error."""
    log = Log()
    spec = Supervisor(name="app", max_restarts=0, children=[ChildSpec(name="a", factory=probe("a", log))])
    with pytest.raises(SupervisorGaveUp) as caught:
        async with open_tree(spec) as tree:
            await tree.ref("a").cast(Exit())
            await trio.sleep_forever()
    assert caught.value.child == "app/a"
    assert caught.value.chain == (
        "app gave up after 0 restart(s) in 5 s because app/a returned normally (it is permanent)"
    )


@pytest.mark.slow
def test_two_signals_back_to_back_force_the_stop_with_exit_code_2() -> None:
    """Two SIGINTs sent back to back, before the host reads the first, still count as two: exit 2 at once.

    The program's Trio run is blocked (checkpoint-free code) while both signals arrive, so a
    host that merged them would start a graceful stop that never ends (a child whose on_stop
    waits for ever, no shutdown deadline) and the process would not exit.
    """
    proc = start("double")
    try:
        wait_for(proc, "BLOCKING")
        proc.send_signal(signal.SIGINT)
        # Room for the kernel to deliver the first (it merges a signal sent again while the first
        # is still pending); no room for Python's handler or the host to run in between, as
        # the Trio run is blocked. Not a timed assertion.
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_FORCED, err
    # Which child was stopping when the second signal was read depends on scheduling.
    assert "second SIGINT received during the graceful stop: " in err
    assert "tree hostapp stopped" not in err


async def test_serve_bounds_the_stop_of_a_root_that_gives_up_by_the_deadline(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A root that gives up stops its children within shutdown_timeout too; past it, the rest is cancelled."""
    log = Log()

    async def started(tree: Tree) -> None:
        await tree.ref("crasher").cast(Crash())

    spec = Supervisor(name="app", max_restarts=0, children=[
        ChildSpec(name="slow", factory=probe("slow", log, stop_takes=60.0), shutdown=math.inf),
        ChildSpec(name="crasher", factory=probe("crasher", log)),
    ])
    t0 = trio.current_time()
    code = await serve(spec, handle_signals=False, shutdown_timeout=0.5, on_started=started)
    assert code == EXIT_FORCED
    assert trio.current_time() - t0 == pytest.approx(0.5)
    assert "app/slow was still stopping" in caplog.text
    assert "supervisor app gave up" in caplog.text


class _MissingSetting(ConfigurationError):
    pass


class _RefusesToStart(Actor):
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def on_start(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "traced"),
    [(_MissingSetting("setting APP_TOKEN is missing; set it in the environment"), False), (ValueError("bug"), True)],
)
async def test_a_configuration_error_at_start_is_logged_as_one_line_without_a_traceback(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, error: Exception, traced: bool
) -> None:
    """A start failure caused by a ConfigurationError is logged as its message alone; any other
    start failure keeps its traceback."""
    spec = Supervisor(name="app", children=[ChildSpec(name="svc", factory=lambda: _RefusesToStart(error))])
    with caplog.at_level(logging.ERROR):
        assert await serve(spec, handle_signals=False) == EXIT_FAILED
    (line,) = [r for r in caplog.records if r.name == "supervisors" and "failed to start" in r.getMessage()]
    assert str(error) in line.getMessage()
    assert (line.exc_info is not None) is traced


@pytest.mark.parametrize(("timeout", "error"), [(-1.0, ValueError), (math.nan, ValueError), ("30", TypeError)])
async def test_serve_refuses_a_shutdown_timeout_that_is_not_seconds_before_starting(
    timeout: object, error: type[Exception]
) -> None:
    """A negative, NaN or non-number ``shutdown_timeout`` raises naming the parameter before the
    tree starts (NaN used to end in an ExceptionGroup at the stop, -1 in a forced stop)."""
    started: list[str] = []
    spec = Supervisor(name="app", children=[ChildSpec(name="p", factory=probe("p", Log()))])

    async def on_started(tree: Tree) -> None:
        started.append(tree.name)

    with pytest.raises(error, match=r"'shutdown_timeout' must be a number of seconds >= 0"):
        await serve(spec, handle_signals=False, shutdown_timeout=timeout, on_started=on_started)  # type: ignore[arg-type]
    assert started == []
