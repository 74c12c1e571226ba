"""The command line: `python -m supervisors run|jobs|tree|migrate|config` (docs/cli.md)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli import cli
from _processes import run_command

from supervisors.cli import HumanFormatter, JsonFormatter, main, parser

TESTS = Path(__file__).parent

pytestmark = pytest.mark.usefixtures("restore_logging")


def run_process(*args: str, until: tuple[str, ...] = (), timeout: float = 30.0) -> tuple[int, str]:
    """`python -m supervisors ARGS` in tests/; SIGINT once every marker appeared; (code, output)."""
    return run_command([sys.executable, "-m", "supervisors", *args], until, timeout=timeout, cwd=TESTS)


# --- run --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_serves_a_spec_until_sigint_and_logs_the_stop_order_at_info() -> None:
    """`run cliapp:spec` starts the tree, stops on SIGINT in reverse start order (each stop at INFO), exits 0."""
    code, out = run_process("run", "cliapp:spec", until=("tree app started",))
    assert code == 0, out
    order = [line.split("stopped ")[-1].strip() for line in out.splitlines() if "supervisors.cli: stopped" in line]
    assert order == ["app/third", "app/second", "app/first"], out
    assert "INFO" in out
    assert "tree app stopped" in out


@pytest.mark.slow
def test_run_calls_a_function_target_with_the_store_of_the_store_url(tmp_path: Path) -> None:
    """`run cliapp:with_store --store sqlite:///PATH` passes a SQLiteStore on PATH as store=."""
    db = tmp_path / "jobs.db"
    code, out = run_process("run", "cliapp:with_store", "--store", f"sqlite:///{db}", until=("tree app started",))
    assert code == 0, out
    assert f"STORE {db}" in out


@pytest.mark.slow
def test_run_exits_2_when_the_stop_overruns_the_shutdown_timeout() -> None:
    """`--shutdown-timeout 0.2` with a child whose stop never ends: forced stop, the host's exit code 2."""
    code, out = run_process("run", "cliapp:stuck", "--shutdown-timeout", "0.2", until=("tree app started",))
    assert code == 2, out
    assert "did not stop within 0.2 s" in out


@pytest.mark.slow
def test_run_human_log_shows_a_repeated_crash_in_full_once_then_one_line_per_repeat() -> None:
    """A child that crashes on the same line again and again: one traceback, then counted one-liners."""
    code, out = run_process("run", "cliapp:crashing", until=("[repeat 3;",))
    assert code == 0, out
    assert out.count("Traceback (most recent call last)") == 1, out
    repeats = [line for line in out.splitlines() if "crashed" in line and "[repeat " in line]
    assert len(repeats) >= 3
    assert "[repeat 1; traceback as logged the first time]" in repeats[0]


@pytest.mark.slow
def test_run_json_log_format_writes_one_json_object_per_line_with_every_traceback() -> None:
    """`--log-format json`: every line is a JSON object; each crash carries its traceback."""
    code, out = run_process("--log-format", "json", "run", "cliapp:crashing", until=('restart 3 in window',))
    assert code == 0, out
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    crashes = [e for e in entries if "crashed" in e["message"]]
    assert len(crashes) >= 3
    assert all("RuntimeError: crasher always crashes" in e["traceback"] for e in crashes)


def test_run_refuses_a_module_that_does_not_exist_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad module path: exit 1, one line naming the module, no traceback."""
    code, _, err = cli(capsys, "run", "no_such_module_here:tree")
    assert code == 1
    assert err.strip().splitlines() == [
        "supervisors: error: cannot import module 'no_such_module_here' (from 'no_such_module_here:tree'): "
        "no module named 'no_such_module_here'; run from the directory that contains it, or install it"
    ]


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("cliapp", "malformed target 'cliapp': expected module:attribute"),
        ("cliapp:nothing", "module 'cliapp' has no attribute 'nothing'"),
        ("cliapp:not_a_tree", "cliapp:not_a_tree is an int, not a Supervisor spec or a function returning one"),
        ("cliapp:returns_nothing", "cliapp:returns_nothing() returned a NoneType, not a Supervisor"),
        ("cliapp:with_store", "cliapp:with_store takes a job store: pass --store URL"),
    ],
)
def test_run_refuses_a_target_that_is_not_a_tree_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, target: str, says: str
) -> None:
    """Each wrong target is refused with one line saying what is wrong."""
    monkeypatch.chdir(TESTS)
    code, _, err = cli(capsys, "run", target)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert says in err


def test_run_names_the_module_whose_import_raised(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A module that exists but fails to import (a missing dependency): the one line names the
    module and the target as well as the error."""
    (tmp_path / "errsweep_broken_app.py").write_text("import errsweep_missing_dependency\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = cli(capsys, "run", "errsweep_broken_app:tree")
    assert code == 1
    assert err.strip() == (
        "supervisors: error: ModuleNotFoundError: No module named 'errsweep_missing_dependency' "
        "(while importing module 'errsweep_broken_app' for 'errsweep_broken_app:tree') "
        "(run with --debug for the traceback)"
    )


@pytest.mark.parametrize("value", ["-1", "nan", "soon"])
def test_run_refuses_a_shutdown_timeout_that_is_not_seconds(capsys: pytest.CaptureFixture[str], value: str) -> None:
    """`--shutdown-timeout` must be a number of seconds >= 0: a usage error (exit 2) before anything starts."""
    with pytest.raises(SystemExit) as info:
        main(["run", "cliapp:spec", "--shutdown-timeout", value])
    assert info.value.code == 2
    assert f"--shutdown-timeout: expected a number of seconds >= 0, or inf for no deadline (got {value!r})" in (
        capsys.readouterr().err
    )


def test_run_refuses_a_malformed_store_url(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`--store mysql://x`: one line naming the URL and the accepted forms."""
    monkeypatch.chdir(TESTS)
    code, _, err = cli(capsys, "run", "cliapp:with_store", "--store", "mysql://x")
    assert code == 1
    assert "unknown store URL 'mysql://x': expected sqlite:///PATH" in err


def test_debug_shows_the_traceback_of_an_error_in_the_target(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --debug an error of the target is one line; with it, the exception propagates."""
    monkeypatch.chdir(TESTS)
    code, _, err = cli(capsys, "run", "cliapp:raises")
    assert code == 1
    assert err.strip() == (
        "supervisors: error: ValueError: the target's own bug (raised by cliapp:raises()) "
        "(run with --debug for the traceback)"
    )
    with pytest.raises(ValueError, match="the target's own bug"):
        main(["--debug", "run", "cliapp:raises"])


# --- log formats --------------------------------------------------------------------------------


def _record(message: str, exc: BaseException | None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("supervisors", logging.ERROR, __file__, 1, "child %s crashed: %r",
                             (message, exc), exc_info)


def _failure(n: int) -> BaseException:
    try:
        raise RuntimeError(f"boom {n}")
    except RuntimeError as exc:
        return exc


def test_human_formatter_logs_a_failure_in_full_once_then_counts_repeats_until_the_window_ends() -> None:
    """Same logger, message, exception type and line: full once, then `[repeat n]`; in full again after the window."""
    now = [0.0]
    formatter = HumanFormatter(window=10.0, clock=lambda: now[0])
    first = formatter.format(_record("a", _failure(1)))
    assert "Traceback" in first
    second = formatter.format(_record("a", _failure(2)))
    assert "Traceback" not in second
    assert second.endswith("child a crashed: RuntimeError('boom 2') [repeat 1; traceback as logged the first time]")
    now[0] = 5.0
    assert "[repeat 2;" in formatter.format(_record("a", _failure(3)))
    now[0] = 16.0
    assert "Traceback" in formatter.format(_record("a", _failure(4)))
    plain = formatter.format(_record("a", None))
    assert "\n" not in plain


def test_json_formatter_writes_the_record_and_its_traceback() -> None:
    """One JSON object: time in UTC, level, logger, message, traceback."""
    entry = json.loads(JsonFormatter().format(_record("a", _failure(1))))
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "supervisors"
    assert entry["message"] == "child a crashed: RuntimeError('boom 1')"
    assert entry["time"].endswith("+00:00")
    assert entry["traceback"].startswith("Traceback (most recent call last)")


# --- migrate, config ----------------------------------------------------------------------------


def test_migrate_creates_a_sqlite_store_then_says_it_is_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`migrate sqlite:///PATH` creates and migrates the file; a second run changes nothing."""
    db = tmp_path / "new.db"
    code, out, _ = cli(capsys, "migrate", f"sqlite:///{db}")
    assert code == 0
    assert out.startswith(f"{db}: migrated from version 0 to ")
    code, out, _ = cli(capsys, "migrate", f"sqlite:///{db}")
    assert code == 0
    assert out.startswith(f"{db}: already at version ")
    code, out, _ = cli(capsys, "jobs", "list", "--store", f"sqlite:///{db}")
    assert out.splitlines()[-1] == "0 shown; in the store: 0 (none)"


def test_config_shows_settings_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`config module:Settings --env-prefix P`: every field, nested ones dotted, a Secret as ***."""
    (tmp_path / "mysettings.py").write_text(
        "import attrs\nfrom supervisors import Secret\n"
        "@attrs.frozen\nclass Db:\n    url: str = 'sqlite:///x'\n    password: Secret[str] = Secret('')\n"
        "@attrs.frozen\nclass Settings:\n    name: str\n    db: Db = Db()\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_NAME", "shop")
    monkeypatch.setenv("APP_DB__PASSWORD", "hunter2")
    code, out, _ = cli(capsys, "config", "mysettings:Settings", "--env-prefix", "APP_")
    assert code == 0
    assert out.splitlines() == ['name = "shop"', 'db.url = "sqlite:///x"', 'db.password = "***"']
    assert "hunter2" not in out


def test_config_reports_every_settings_problem_in_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing required field: exit 1 and the settings error, no traceback."""
    (tmp_path / "mysettings2.py").write_text(
        "import attrs\n@attrs.frozen\nclass Settings:\n    port: int\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "config", "mysettings2:Settings", "--env-prefix", "NOPE_")
    assert code == 1
    assert "SettingsError" in err
    assert "NOPE_PORT" in err
    assert "Traceback" not in err


# --- tree -----------------------------------------------------------------------------------------


def test_tree_once_reports_an_unreachable_dashboard_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`tree --url` where nothing listens: one line naming the URL and what to check."""
    code, _, err = cli(capsys, "tree", "--once", "--url", "http://127.0.0.1:9")
    assert code == 1
    assert err.startswith("supervisors: error: cannot reach the dashboard at http://127.0.0.1:9 (")
    assert err.strip().endswith("is the host running with --dashboard?")


def test_run_passes_no_dashboard_to_a_target_that_takes_one_when_dashboard_is_not_given(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The dashboard is off by default: a target with a `dashboard` parameter gets None."""
    from supervisors.cli._run import resolve_tree

    monkeypatch.chdir(TESTS)
    options = parser().parse_args(["run", "cliapp:with_dashboard"])
    with caplog.at_level(logging.INFO, logger="cliapp"):
        spec = resolve_tree(options.target, options)
    assert [c.name for c in spec.children] == ["first", "second", "third"]
    assert "DASHBOARD None" in caplog.text


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:", ":8000", "127.0.0.1:99999"])
def test_run_refuses_a_malformed_dashboard_address(
    address: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dashboard` with something that is not HOST:PORT: one line with an example."""
    monkeypatch.chdir(TESTS)
    code, _, err = cli(capsys, "run", "cliapp:spec", "--dashboard", address)
    assert code == 1
    assert f"malformed address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:8000" in err


TREE = {
    "path": "demo", "name": "demo", "kind": "supervisor", "state": "running", "restarts": 0,
    "uptime_seconds": 125.0, "mailbox_depth": None, "messages_handled": None, "last_error": None,
    "children": [
        {"path": "demo/worker", "name": "worker", "kind": "actor", "state": "restarting", "restarts": 3,
         "uptime_seconds": 0.5, "mailbox_depth": 2, "messages_handled": 40,
         "last_error": "ValueError('image 7 is corrupt')\nmore", "children": []},
    ],
}


@pytest.fixture
def fake_dashboard() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server answering GET /api/tree with TREE; yields its URL and the headers of each request."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            body = json.dumps(TREE).encode() if self.path == "/api/tree" else b"{}"
            self.send_response(200 if self.path == "/api/tree" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_tree_once_prints_the_running_tree_from_the_dashboard_api(
    fake_dashboard: tuple[str, list[dict[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`tree --once --token T`: one line per child, indented, with state, restarts, uptime, mailbox, error."""
    url, seen = fake_dashboard
    code, out, _ = cli(capsys, "tree", "--once", "--url", url, "--token", "s3cret-token")
    assert code == 0
    assert out.splitlines() == [
        "demo  supervisor  running  up 2m05s",
        "  worker  actor  restarting  restarts 3  up 0s  mailbox 2  handled 40  "
        "last error ValueError('image 7 is corrupt')",
    ]
    assert seen[0]["Authorization"] == "Bearer s3cret-token"


@pytest.mark.slow
def test_tree_redraws_until_interrupted_and_exits_0(fake_dashboard: tuple[str, list[dict[str, str]]]) -> None:
    """`tree --interval 0.05` polls the API again and again; SIGINT ends it with exit 0."""
    url, seen = fake_dashboard
    with subprocess.Popen(
        [sys.executable, "-m", "supervisors", "tree", "--url", url, "--interval", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        assert proc.stdout is not None
        frames = 0
        for line in proc.stdout:
            if line.startswith(url):
                frames += 1
                if frames == 3:
                    proc.send_signal(signal.SIGINT)
                    break
        rest = proc.stdout.read()
        code = proc.wait(timeout=30)
    assert code == 0, rest
    assert len(seen) >= 3


# --- the dashboard ----------------------------------------------------------------------------


def test_run_refuses_a_dashboard_on_a_public_address_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dashboard 0.0.0.0:8000` and no token: one line saying why, exit 1, nothing started."""
    monkeypatch.chdir(TESTS)
    monkeypatch.delenv("SUPERVISORS_DASHBOARD_TOKEN", raising=False)
    code, _, err = cli(capsys, "run", "cliapp:spec", "--dashboard", "0.0.0.0:8000")
    assert code == 1
    assert err.startswith("supervisors: error: --dashboard 0.0.0.0:8000: the dashboard would listen on '0.0.0.0:8000'")
    assert "Pass --dashboard-token (and --dashboard-readonly-token for read-only users)" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_run_adds_the_dashboard_to_a_spec_and_tree_shows_it_with_the_token_of_the_environment() -> None:
    """`run cliapp:spec --dashboard ADDR` with SUPERVISORS_DASHBOARD_TOKEN: the dashboard is the
    root's last child; the API wants the token; `tree --once --token` shows the tree, without it one line."""
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    token = "cli-test-token-123"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SUPERVISORS_DASHBOARD_TOKEN": token}
    seen: dict[str, object] = {}
    with subprocess.Popen(
        [sys.executable, "-m", "supervisors", "run", "cliapp:spec", "--dashboard", address],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=TESTS,
    ) as proc:
        timer = threading.Timer(60, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "tree app started" in line:
                    break
            seen["anonymous"] = httpx.get(f"http://{address}/api/tree", timeout=10).status_code
            seen["healthz"] = httpx.get(f"http://{address}/healthz", timeout=10).status_code
            for args in (["--token", token], []):
                done = subprocess.run(
                    [sys.executable, "-m", "supervisors", "tree", "--once", "--url", f"http://{address}", *args],
                    capture_output=True, text=True, timeout=60,
                )
                seen[f"tree{len(args)}"] = (done.returncode, done.stdout, done.stderr)
            proc.send_signal(signal.SIGINT)
            out = proc.stdout.read()
            code = proc.wait()
        finally:
            timer.cancel()
    assert code == 0, out
    assert seen["anonymous"] == 401
    assert seen["healthz"] == 200
    with_token = seen["tree2"]
    assert isinstance(with_token, tuple)
    assert with_token[0] == 0, with_token
    assert [line.split()[0] for line in with_token[1].splitlines()] == ["app", "first", "second", "third", "dashboard"]
    without = seen["tree0"]
    assert isinstance(without, tuple)
    assert without[0] == 1
    assert "answered 401" in without[2]
    assert without[2].strip().endswith("(pass --token)")




def test_run_names_the_option_of_a_dashboard_token_that_is_too_short(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short `--dashboard-readonly-token`: the line names that option (not the Python parameter),
    its length (never its value) and how to make a good one."""
    monkeypatch.chdir(TESTS)
    code, _, err = cli(capsys, "run", "cliapp:spec", "--dashboard", "127.0.0.1:0", "--dashboard-token",
                       "long-enough-admin", "--dashboard-readonly-token", "abc")
    assert code == 1
    assert err.startswith(
        "supervisors: error: --dashboard 127.0.0.1:0: the dashboard's --dashboard-readonly-token must be a "
        "string of at least 8 characters (got 3 character(s)); make one with: python -c"
    )
    assert "'abc'" not in err
