"""The host: signals, graceful stop with a deadline, exit codes (real processes)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing
from _probes import Crash, Log, probe

from supervisors import EXIT_FAILED, EXIT_FORCED, EXIT_OK, ChildSpec, Supervisor, Tree, serve

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
    assert "second SIGTERM" in err


@pytest.mark.slow
def test_graceful_stop_past_the_deadline_is_cancelled_with_exit_code_2() -> None:
    """A stop that overruns shutdown_timeout is cancelled; exit code 2, logged."""
    proc = start("deadline")
    wait_for(proc, "READY")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == EXIT_FORCED, err
    assert "did not stop within 0.5 s" in err


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
