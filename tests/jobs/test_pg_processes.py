"""Real host processes sharing one PostgreSQL schema: many hosts, kill -9, recurring jobs across
hosts, connections cut by the server. Bounded in time; no timing is asserted."""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _pg import PG_URL

from supervisors.jobs import JobRequest, PostgresStore

ROOT = Path(__file__).resolve().parents[2]
HOST = Path(__file__).with_name("_pg_host.py")

pytestmark = pytest.mark.slow


class Hosts:
    """Host processes of one test, each with its log; all killed at the end."""

    def __init__(self, schema: str, tmp: Path) -> None:
        self.schema = schema
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *extra: str) -> int:
        return self.start_in([], PG_URL, *extra)

    def start_in(self, prefix: list[str], url: str, *extra: str) -> int:
        """Start a host whose command line is prefixed by ``prefix`` (e.g. ``ip netns exec``),
        on the database at ``url``; return its index."""
        i = len(self.procs)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (self.tmp / f"host{i}.err").open("ab") as err:
            self.procs.append(
                subprocess.Popen(
                    [*prefix, sys.executable, str(HOST), url, self.schema, str(self.log(i)), *extra],
                    env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                )
            )  # fmt: skip
        return i

    def log(self, i: int) -> Path:
        return self.tmp / f"host{i}.log"

    def err(self, i: int) -> str:
        return (self.tmp / f"host{i}.err").read_text()

    def lines(self) -> list[str]:
        out: list[str] = []
        for i in range(len(self.procs)):
            if self.log(i).exists():
                out.extend(self.log(i).read_text().splitlines())
        return out

    def done(self) -> collections.Counter[int]:
        return collections.Counter(int(x.split()[1]) for x in self.lines() if x.startswith("done"))

    def wait_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for i, p in enumerate(self.procs):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
            assert p.returncode == 0, self.err(i)

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture
def hosts(pg_schema: str, tmp_path: Path) -> Iterator[Hosts]:
    h = Hosts(pg_schema, tmp_path)
    try:
        yield h
    finally:
        h.kill_all()


def enqueue(schema: str, n: int, start: int = 0) -> None:
    store = PostgresStore(PG_URL, schema=schema)
    with psycopg.connect(PG_URL) as conn:
        store._prepare()  # migrates the schema
        store.enqueue_in(conn, [JobRequest(job="noop", args=i) for i in range(start, start + n)])


def query(sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(PG_URL) as conn:
        return conn.execute(sql).fetchall()


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def test_three_hosts_run_ten_thousand_jobs_each_exactly_once(hosts: Hosts) -> None:
    """10,000 jobs, 3 host processes: every job succeeds once, on one host, first attempt."""
    n = 10_000
    enqueue(hosts.schema, n)
    for _ in range(3):
        hosts.start("--until-idle")
    hosts.wait_all(timeout=240)
    done = hosts.done()
    assert set(done) == set(range(n))
    assert set(done.values()) == {1}
    rows = query(f"SELECT state, attempt, count(*) FROM {hosts.schema}.jobs GROUP BY 1, 2")
    assert rows == [("succeeded", 1, n)]
    assert sum(1 for i in range(3) if "done" in hosts.log(i).read_text()) >= 2  # shared


def test_kill_9_of_one_host_mid_run_loses_no_job_and_settles_none_twice(hosts: Hosts) -> None:
    """One of 3 hosts is killed mid-run: its leased jobs come back when their leases expire;
    every job succeeds; a job ran twice only if its first run was on the killed host."""
    n = 10_000
    enqueue(hosts.schema, n)
    for _ in range(3):
        hosts.start()
    wait_for(lambda: "done" in hosts.log(0).read_text() if hosts.log(0).exists() else False,
             120, "host 0 runs jobs")  # fmt: skip
    wait_for(lambda: len(hosts.done()) >= n // 5, 120, "a fifth of the jobs done")
    hosts.procs[0].send_signal(signal.SIGKILL)
    hosts.procs[0].wait()
    killed_ran = {int(x.split()[1]) for x in hosts.log(0).read_text().splitlines() if x.startswith("done")}
    left = f"SELECT count(*) FROM {hosts.schema}.jobs WHERE state <> 'succeeded'"
    wait_for(lambda: query(left)[0][0] == 0, 240, "every job succeeded")
    done = hosts.done()
    assert set(done) == set(range(n))
    twice = {i for i, c in done.items() if c > 1}
    assert twice <= killed_ran  # only jobs the killed host had run can run again
    rows = query(f"SELECT args, attempt FROM {hosts.schema}.jobs WHERE attempt > 1")
    recovered = {int(str(a)) for a, _ in rows}
    assert twice <= recovered  # a second run is always a new attempt after a lease expired
    assert all(att == 2 for _, att in rows)
    errors = query(f"SELECT DISTINCT error LIKE 'lease expired%%' FROM {hosts.schema}.job_errors")
    assert errors in ([], [(True,)])
    for i in (1, 2):
        assert "outcome is discarded" not in hosts.err(i)  # no live host lost a lease


def test_a_second_level_cron_across_three_hosts_enqueues_each_occurrence_once(hosts: Hosts) -> None:
    """Three hosts fire a every-second schedule for a few real seconds: each fire time is
    enqueued once (consecutive, none missing) and each occurrence runs once."""
    for _ in range(3):
        hosts.start("--cron")
    q = f"SELECT count(*) FROM {hosts.schema}.jobs WHERE schedule = 'tick' AND state = 'succeeded'"
    wait_for(lambda: _safe_count(q) >= 6, 120, "six occurrences ran")
    hosts.kill_all()
    fires = [float(str(r[0])) for r in query(
        f"SELECT fire_time FROM {hosts.schema}.jobs WHERE schedule = 'tick' ORDER BY fire_time"
    )]  # fmt: skip
    assert len(fires) == len(set(fires)) >= 6
    assert all(b - a == 1.0 for a, b in itertools.pairwise(fires))
    ticks = collections.Counter(x.split()[1] for x in hosts.lines() if x.startswith("tick"))
    assert set(ticks.values()) == {1}


def _safe_count(sql: str) -> int:
    try:
        return int(str(query(sql)[0][0]))
    except psycopg.errors.UndefinedTable:
        return 0  # no host has migrated the schema yet


def test_connections_cut_by_the_server_lose_and_double_nothing(hosts: Hosts) -> None:
    """``pg_terminate_backend`` of every connection of the hosts, twice, while they run jobs:
    every job succeeds; a job runs twice only after a cut claim; each host logs each outage
    once, recovers, and its other child runs on without a restart."""
    n = 3000
    enqueue(hosts.schema, n)
    for _ in range(2):
        hosts.start("--until-idle")
    app = f"supervisors-jobs:{hosts.schema}"
    kill = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        f"WHERE application_name = '{app}'"
    )
    # Both hosts started (a cut during a host's start fails its start: `open` does not retry).
    wait_for(lambda: all(hosts.log(i).exists() and "host started" in hosts.log(i).read_text()
                         for i in range(2)), 120, "both hosts started")  # fmt: skip
    wait_for(lambda: len(hosts.done()) >= 300, 120, "jobs running")
    assert query(kill)[0][0] > 0
    # A host may not have written its log yet (the other ran the first jobs): count 0 then.
    alive_at_cut = [
        hosts.log(i).read_text().count("other alive") if hosts.log(i).exists() else 0 for i in range(2)
    ]
    wait_for(lambda: len(hosts.done()) >= 1500, 120, "jobs running again")
    query(kill)
    hosts.wait_all(timeout=240)
    for i in range(2):  # the host's other child ran on through the outages, never restarted
        text = hosts.log(i).read_text()
        assert text.count("other started") == 1
        assert text.count("other alive") > alive_at_cut[i]
    done = hosts.done()
    assert set(done) == set(range(n))
    rows = query(f"SELECT state, count(*) FROM {hosts.schema}.jobs GROUP BY 1")
    assert rows == [("succeeded", n)]
    doubled = {i for i, c in done.items() if c > 1}
    again = {int(str(r[0])) for r in query(f"SELECT args FROM {hosts.schema}.jobs WHERE attempt > 1")}
    assert doubled <= again  # only a claim whose commit was cut can run a job again
    for i in range(2):
        assert hosts.err(i).count("lost PostgreSQL") == 1, hosts.err(i)  # once per outage
        assert "reachable again" in hosts.err(i)


def test_the_singleton_fails_over_within_a_lease_after_kill_9_and_never_runs_twice(
    hosts: Hosts,
) -> None:
    """Three hosts run a singleton (lease 3 s) that writes beats with the database's time. Its
    holder is killed -9 twice: another host takes over within the lease (plus its retry and
    the child's start), and the beats of two hosts never interleave."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {hosts.schema}")
        conn.execute(f"CREATE TABLE {hosts.schema}.singleton_beats (pid INTEGER, at FLOAT8)")
    pids = {hosts.procs[hosts.start("--singleton")].pid for _ in range(3)}
    beats = f"SELECT pid, at FROM {hosts.schema}.singleton_beats ORDER BY at"

    def holder() -> int | None:
        rows = query(beats + " DESC LIMIT 1")
        return int(str(rows[0][0])) if rows else None

    killed: list[tuple[int, float]] = []
    for _ in range(2):
        wait_for(lambda: holder() is not None and holder() not in {k for k, _ in killed}, 120,
                 "a live holder beats")  # fmt: skip
        wait_for(lambda: len(query(beats)) >= len(killed) * 10 + 10, 60, "it beats a while")
        victim = holder()
        assert victim in pids
        proc = next(p for p in hosts.procs if p.pid == victim)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        last = max(float(str(a)) for p, a in query(beats) if p == victim)
        killed.append((victim, last))
    wait_for(lambda: holder() not in {k for k, _ in killed}, 60, "the last host took over")
    rows = [(int(str(p)), float(str(a))) for p, a in query(beats)]
    # Runs: maximal sequences of one pid's beats; a pid never comes back after another ran.
    runs = [pid for i, (pid, _) in enumerate(rows) if i == 0 or rows[i - 1][0] != pid]
    assert len(runs) == len(set(runs)) == 3
    for victim, last in killed:
        after = [a for p, a in rows if p != victim and a > last]
        assert after
        assert min(after) - last < 3.0 + 0.2 + 2.0  # lease + retry + start slack


def test_hosts_with_clocks_minutes_apart_neither_skip_nor_double_an_occurrence(
    hosts: Hosts,
) -> None:
    """Three hosts whose wall clocks are 2 minutes behind, right, and 2.5 minutes ahead fire a
    every-second schedule that skips missed occurrences: since every due check reads the
    database's clock, each fire time is enqueued once, consecutive, none skipped, none early
    (created at or after its fire time by the database's clock), and each runs once."""
    for offset in ("-120", "0", "150"):
        hosts.start("--cron-skip", "--clock-offset", offset)
    q = f"SELECT count(*) FROM {hosts.schema}.jobs WHERE schedule = 'tick' AND state = 'succeeded'"
    wait_for(lambda: _safe_count(q) >= 8, 120, "eight occurrences ran")
    (db_now,) = query("SELECT extract(epoch FROM clock_timestamp())::float8")[0]
    hosts.kill_all()
    rows = [(float(str(f)), float(str(c))) for f, c in query(
        f"SELECT fire_time, created_at FROM {hosts.schema}.jobs WHERE schedule = 'tick' "
        "ORDER BY fire_time"
    )]  # fmt: skip
    fires = [f for f, _ in rows]
    assert len(fires) == len(set(fires)) >= 8
    assert all(b - a == 1.0 for a, b in itertools.pairwise(fires))  # none skipped
    assert fires[-1] <= float(str(db_now)) + 1.0  # none fired ahead by a fast clock
    assert all(created >= fire - 0.5 for fire, created in rows)  # none early (half a round trip)
    ticks = collections.Counter(x.split()[1] for x in hosts.lines() if x.startswith("tick"))
    assert set(ticks.values()) == {1}
