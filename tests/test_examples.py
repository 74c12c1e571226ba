"""Every example runs: started as a real process, stopped with SIGINT, exit code 0."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from _processes import run_command

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_until(script: str, marker: str | tuple[str, ...], *args: str, timeout: float = 30.0) -> tuple[int, str]:
    """Run an example until every marker has appeared in its log, then SIGINT it; return (code, output)."""
    return run_command([sys.executable, str(EXAMPLES / script), *args], marker, timeout=timeout)


@pytest.mark.slow
def test_heartbeat_example_beats_and_stops_cleanly() -> None:
    """examples/heartbeat.py logs heartbeats and exits 0 on SIGINT."""
    code, out = run_until("heartbeat.py", "heartbeat 2")
    assert code == 0, out
    assert "tree app stopped" in out


@pytest.mark.slow
def test_pipeline_example_recovers_from_worker_crashes() -> None:
    """examples/pipeline.py: the resizer crashes and is restarted; the consumer keeps sending."""
    code, out = run_until("pipeline.py", "progress: 20 produced")
    assert code == 0, out
    assert "crashed while handling Resize" in out
    assert "restarting pipeline/resizer" in out
    assert "outbox sent 20" in out


@pytest.mark.slow
def test_demo_application_runs_and_stops_cleanly(tmp_path: Path) -> None:
    """examples/demo.py (the README's demo command) runs services and jobs, and exits 0."""
    markers = ("cleanup: expired sessions removed", "welcome e-mail sent to", "progress: 10 produced")
    code, out = run_until("demo.py", markers, "--db", str(tmp_path / "demo.db"))
    assert code == 0, out
    assert "heartbeat 1" in out
    assert "welcome e-mail sent to" in out
    assert "progress: 10 produced" in out
    assert "tree demo stopped" in out


def readme_demo_command() -> list[str]:
    """The README's demo command after its set-up: `.venv/bin/python -m supervisors run ...`, split."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Run the demo"):]
    block = section[section.index("```sh\n") + len("```sh\n"):]
    command = block[: block.index("```")].strip()
    run = command.split(" && ")[-1]
    assert run.startswith(".venv/bin/python -m supervisors run examples.demo:tree"), command
    return [sys.executable, *shlex.split(run)[1:]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_readme_demo_command_runs_the_demo_with_its_dashboard_answering(tmp_path: Path) -> None:
    """The README's one demo command (after its pip install) runs services and jobs with the
    dashboard on: the page it says to open answers, with the demo's tree; SIGINT: exit 0."""
    command = readme_demo_command()
    assert command[-2:] == ["--dashboard", "127.0.0.1:8000"]
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    assert "Open <http://127.0.0.1:8000/>" in readme
    address = f"127.0.0.1:{free_port()}"  # the README's port may be taken on a shared machine
    command[-1] = address
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(EXAMPLES.parent)}
    answers: dict[str, object] = {}

    def look(line: str) -> None:
        if "welcome e-mail sent to" in line and not answers:
            page = httpx.get(f"http://{address}/", follow_redirects=True, timeout=10)
            tree = httpx.get(f"http://{address}/api/tree", timeout=10).json()
            answers.update(status=page.status_code, html=page.text, tree=tree)
            cli = subprocess.run([sys.executable, "-m", "supervisors", "tree", "--once", "--url", f"http://{address}"],
                                 capture_output=True, text=True, timeout=60, env=env)
            answers["cli"] = cli.stdout + cli.stderr

    markers = ("cleanup: expired sessions removed", "welcome e-mail sent to", "[repeat 1; traceback as logged")
    code, out = run_command(command, markers, cwd=tmp_path, env=env, on_line=look)
    assert code == 0, out
    assert f"supervisors.dashboard: dashboard of tree 'demo' on http://{address}/" in out
    assert answers["status"] == 200, answers
    assert "demo" in str(answers["html"])
    tree = answers["tree"]
    assert isinstance(tree, dict)
    assert tree["name"] == "demo"
    assert {c["name"] for c in tree["children"]} >= {"heartbeat", "pipeline", "jobs", "signups", "dashboard"}
    assert "  pipeline  supervisor  running" in str(answers["cli"]), answers["cli"]
    assert (tmp_path / "demo-jobs.sqlite3").is_file()
    assert "supervisors.cli: stopped demo/dashboard" in out
    assert "tree demo stopped" in out


@pytest.mark.slow
def test_demo_jobs_survive_a_restart_of_the_demo(tmp_path: Path) -> None:
    """Jobs enqueued in one run of the demo are in the store the next run opens."""
    db = str(tmp_path / "demo.db")
    code, _ = run_until("demo.py", "signed up; welcome e-mail is job 3", "--db", db)
    assert code == 0
    code, out = run_until("demo.py", "welcome e-mail is job", "--db", db)
    assert code == 0, out
    first_id = int(re.search(r"welcome e-mail is job (\d+)", out).group(1))  # type: ignore[union-attr]
    assert first_id > 3  # the store kept the first run's jobs: ids continue


@pytest.mark.slow
def test_property_test_example_of_the_demo_tree_passes() -> None:
    """examples/test_demo_tree.py (the testing how-to's example) passes under pytest."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "test_demo_tree.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=EXAMPLES.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


@pytest.mark.slow
def test_readme_example_runs_and_stops_cleanly(tmp_path: Path) -> None:
    """The README's first code block, run as a program, answers calls and exits 0 on SIGINT."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\n") + len("```python\n")
    script = tmp_path / "readme_example.py"
    script.write_text(readme[start : readme.index("```", start)], encoding="utf-8")
    code, out = run_until(str(script), "hello, world")
    assert code == 0, out
    assert "tree app stopped" in out


@pytest.mark.slow
def test_strategies_example_restarts_what_each_strategy_says() -> None:
    """examples/strategies.py: b crashes under each strategy; the report shows who was restarted."""
    code, out = run_until("strategies.py", "report done")
    assert code == 0, out
    assert "restarts under one_for_one:  a 0, b 1, c 0" in out
    assert "restarts under one_for_all:  a 1, b 1, c 1" in out
    assert "restarts under rest_for_one: a 0, b 1, c 1" in out
    assert "tree strategies stopped" in out


@pytest.mark.slow
def test_reports_example_writes_the_report_file_periodically(tmp_path: Path) -> None:
    """examples/reports.py writes a new report to its file on every tick of its timer."""
    out = tmp_path / "report.txt"
    code, log = run_until("reports.py", "report 3 written", "--out", str(out), "--interval", "0.3")
    assert code == 0, log
    report = out.read_text(encoding="utf-8")
    assert report.startswith("Sales report 3\n"), report
    assert re.search(r"^orders:  \d+$", report, re.MULTILINE), report
    assert not (tmp_path / "report.txt.tmp").exists()


@pytest.mark.slow
def test_api_poller_example_backs_off_during_an_outage_and_recovers() -> None:
    """examples/api_poller.py: three failed polls with growing delays, then polling resumes."""
    code, out = run_until("api_poller.py", "poll 8:", "--interval", "0.1")
    assert code == 0, out
    delays = [float(d) for d in re.findall(r"poll failed \(\d in a row\): HTTP 503 .*; next try in ([\d.]+) s", out)]
    assert len(delays) == 3, out
    assert delays[0] < delays[1] < delays[2], delays
    assert "API is back after 3 failed polls" in out
    assert "tree poller stopped" in out


@pytest.mark.slow
def test_email_queue_example_retries_a_refused_email_and_closes_its_client_last() -> None:
    """examples/email_queue.py: user3's e-mail is refused once, retried, delivered; SMTP closes after the tree."""
    code, out = run_until("email_queue.py", "welcome e-mail to user4@example.com delivered")
    assert code == 0, out
    assert "job 3 (send_welcome) failed attempt 1 of 5" in out
    assert "welcome e-mail to user3@example.com delivered (attempt 2)" in out
    assert out.index("SMTP client connected") < out.index("tree email started")
    assert out.index("tree email stopped") < out.index("SMTP client disconnected")


@pytest.mark.slow
def test_cleanup_example_rolls_back_a_failed_purge_and_retries_it(tmp_path: Path) -> None:
    """examples/cleanup.py: a purge that fails after its delete leaves the rows; the retry removes them."""
    args = ("--dir", str(tmp_path), "--cron", "*/2 * * * * *", "--fail-once")
    code, out = run_until("cleanup.py", "purge (attempt 2)", *args)
    assert code == 0, out
    failed = int(re.search(r"failing on purpose after deleting (\d+) rows", out).group(1))  # type: ignore[union-attr]
    removed = int(re.search(r"purge \(attempt 2\): (\d+) expired", out).group(1))  # type: ignore[union-attr]
    assert removed >= failed > 0  # the rolled-back rows were still there for the retry
    with contextlib.closing(sqlite3.connect(tmp_path / "app.sqlite3")) as db:
        assert db.execute("SELECT removed FROM purge_log").fetchall() == [(removed,)]


@pytest.mark.slow
def test_web_app_example_signs_up_over_http_and_sends_the_welcome_email(tmp_path: Path) -> None:
    """examples/web_app.py: a POST to /sign-up enqueues the e-mail, the job sends it, Ctrl-C exits 0."""
    import httpx

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WEBAPP_PORT": "0", "WEBAPP_MAIL_PASSWORD": "hunter2"}
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, str(EXAMPLES / "web_app.py"), "--db", str(tmp_path / "jobs.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as proc:
        timer = threading.Timer(30.0, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            url = None
            for line in proc.stdout:
                lines.append(line)
                if "listening on " in line:
                    url = line.rsplit("listening on ", 1)[1].strip()
                    response = httpx.post(url + "/sign-up", json={"email": "ann@example.com"})
                    assert response.status_code == 202, response.text
                    assert httpx.post(url + "/sign-up", json={}).status_code == 422
                if "welcome e-mail sent to ann@example.com" in line:
                    assert url is not None
                    assert httpx.get(url + "/jobs/1").json()["state"] in {"running", "succeeded"}
                    proc.send_signal(signal.SIGINT)
                    break
            lines.extend(proc.stdout)
            code = proc.wait()
        finally:
            timer.cancel()
    out = "".join(lines)
    assert code == 0, out
    assert "signed up ann@example.com; welcome e-mail is job 1" in out
    assert "mail_password=Secret('***')" in out
    assert "hunter2" not in out
    assert out.index("mailer connected") < out.index("listening on") < out.index("mailer disconnected")
