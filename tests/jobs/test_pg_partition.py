"""A network partition between one host and the database, made with a network namespace.

The test makes its own namespace and veth pair (addresses in 10.251.0.0/30, which only this
test uses), and relays the namespace's connections from the pair's outer address to the
PostgreSQL at 127.0.0.1:5432; it targets no other address. Taking the pair's inner end down cuts
the host off from the database without closing anything: packets are dropped, as in a real
partition. Needs root and ``ip`` (iproute2); skips saying so otherwise, and with
``SUPERVISORS_REQUIRE_NETNS=1`` (set by CI, which runs as root) the skip is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest
from _pg import PG_URL
from test_pg_processes import Hosts, hosts, query, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

OUTER, INNER = "10.251.0.1", "10.251.0.2"
DB = ("127.0.0.1", 5432)


def _netns_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "making a network namespace needs root"
    probe = f"sjprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


def require_netns() -> None:
    reason = _netns_unavailable()
    if reason is not None:
        if os.environ.get("SUPERVISORS_REQUIRE_NETNS") == "1":
            pytest.fail(f"SUPERVISORS_REQUIRE_NETNS=1 but {reason}")
        pytest.skip(reason)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Relay:
    """Forwards TCP connections accepted on ``(OUTER, port)`` to the test PostgreSQL, a thread
    per direction; `close` stops accepting and closes every socket."""

    def __init__(self) -> None:
        self.server = socket.create_server((OUTER, 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(DB)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self.threads:
            t.join(timeout=5)


@contextlib.contextmanager
def namespace() -> Iterator[tuple[str, str, Relay]]:
    """A network namespace joined to this one by a veth pair, and a relay to the database;
    yields (namespace, inner interface, relay). Everything is removed after."""
    tag = uuid.uuid4().hex[:6]
    ns, outer, inner = f"sjpart{tag}", f"sjo{tag}", f"sji{tag}"
    _ip("netns", "add", ns)
    relay: Relay | None = None
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("addr", "add", f"{OUTER}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{INNER}/30", "dev", inner)
        _ip("netns", "exec", ns, "ip", "link", "set", inner, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        relay = Relay()
        yield ns, inner, relay
    finally:
        if relay is not None:
            relay.close()
        subprocess.run(["ip", "link", "del", outer], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def beats(of: Hosts, i: int) -> list[float]:
    """The wall times host ``i``'s singleton child logged a beat at."""
    if not of.log(i).exists():
        return []
    return [float(x.split()[1]) for x in of.log(i).read_text().splitlines() if x.startswith("beat ")]


def test_a_holder_cut_off_from_the_database_stops_its_singleton_before_another_host_starts_it(
    hosts: Hosts,  # noqa: F811 - the fixture imported above
) -> None:
    """Host 0 runs in a network namespace and holds the singleton (lease 3 s); its link is
    taken down. It stops its child by its own deadline, before the lease expires; another host
    starts the child only after that; when the link is back, host 0 does not take it back
    while the other holds it. Checked on every beat the children logged (their wall clocks
    are this machine's) and on the side table they wrote; the child never ran on two hosts at
    once."""
    require_netns()
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {hosts.schema}")
        conn.execute(f"CREATE TABLE {hosts.schema}.singleton_beats (pid INTEGER, at FLOAT8)")
    with namespace() as (ns, inner, relay):
        url = f"postgresql://postgres@{OUTER}:{relay.port}/test"
        hosts.start_in(["ip", "netns", "exec", ns], url, "--singleton")
        wait_for(lambda: len(beats(hosts, 0)) >= 10, 120, "host 0 holds the singleton")
        for _ in range(2):
            hosts.start("--singleton")
        wait_for(lambda: len(beats(hosts, 0)) >= 40, 60, "host 0 keeps it while others wait")
        assert beats(hosts, 1) == beats(hosts, 2) == []
        _ip("netns", "exec", ns, "ip", "link", "set", inner, "down")
        wait_for(lambda: beats(hosts, 1) or beats(hosts, 2), 60, "another host takes over")
        cut_beats = beats(hosts, 0)
        _ip("netns", "exec", ns, "ip", "link", "set", inner, "up")
        taker = 1 if beats(hosts, 1) else 2
        wait_for(lambda: len(beats(hosts, taker)) >= 60, 60, "the new holder beats a while")
        hosts.kill_all()
    first_of_taker = min(beats(hosts, taker))
    assert max(cut_beats) < first_of_taker  # stopped before the other started
    assert beats(hosts, 0) == cut_beats  # and did not start again while the other held it
    assert beats(hosts, 3 - taker) == []
    # The side table: the beats that reached it (late ones carry the time they were made at)
    # form one run per host, the cut-off host's entirely before the other's.
    rows = [(int(str(p)), float(str(a))) for p, a in query(
        f"SELECT pid, at FROM {hosts.schema}.singleton_beats ORDER BY at"
    )]  # fmt: skip
    runs = [pid for k, (pid, _) in enumerate(rows) if k == 0 or rows[k - 1][0] != pid]
    assert runs == [hosts.procs[0].pid, hosts.procs[taker].pid]
