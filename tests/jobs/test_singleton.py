"""`ClusterSingleton`: one holder at a time across hosts (in-process hosts here; kill -9 of a
holder process in test_pg_processes)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from _pg import PG_URL

from actors import BackgroundService
from supervisors import ChildSpec, Supervisor, open_tree
from supervisors.jobs import ClusterSingleton, PostgresStore

running: list[str] = []
events: list[str] = []


class Reporter(BackgroundService):
    """Records where it runs (the host given to its factory)."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    async def execute(self) -> None:
        running.append(self.host)
        events.append(f"start {self.host}")
        try:
            await trio.sleep_forever()
        finally:
            running.remove(self.host)
            events.append(f"stop {self.host}")


async def until(predicate: Callable[[], bool]) -> None:
    while not predicate():  # noqa: ASYNC110 - other tasks (and hosts) change what it reads
        await trio.sleep(0.01)


def host_tree(store: PostgresStore, host: str) -> Supervisor:
    singleton = ClusterSingleton(store=store, lease=3.0, retry=0.05)
    spec = ChildSpec(name="reporter", factory=lambda: Reporter(host))
    return Supervisor(name=host, children=[singleton.child_spec(spec)])


async def test_the_singleton_runs_on_one_host_and_moves_when_its_holder_stops(pg_schema: str) -> None:
    """Of two hosts, one runs the child; when that host stops (releasing the lease), the other
    starts it, after the first stopped it."""
    running.clear()
    events.clear()
    a, b = PostgresStore(PG_URL, schema=pg_schema), PostgresStore(PG_URL, schema=pg_schema)
    await a.open()
    await b.open()
    try:
        with trio.fail_after(60):
            async with open_tree(host_tree(a, "a")) as tree_a, open_tree(host_tree(b, "b")) as tree_b:
                await until(lambda: running)
                await trio.sleep(1.0)  # both compete for a while
                assert len(running) == 1
                first = running[0]
                other = "b" if first == "a" else "a"
                await (tree_a if first == "a" else tree_b).stop()
                await until(lambda: running == [other])
        assert events[:3] == [f"start {first}", f"stop {first}", f"start {other}"]
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_holder_cut_from_the_database_stops_its_child_before_the_lease_expires(
    pg_schema: str,
) -> None:
    """When renewals stop landing, the holder stops its child by its local deadline; the lease
    row then expires in the database no earlier than that."""
    running.clear()
    events.clear()
    store = PostgresStore(PG_URL, schema=pg_schema)
    await store.open()
    try:
        with trio.fail_after(60):
            async with open_tree(host_tree(store, "a")):
                await until(lambda: running)
                store._call = _partitioned  # type: ignore[method-assign]  # every call fails now
                await until(lambda: not running)
                stopped = trio.current_time()
        del store._call  # type: ignore[attr-defined]
        rows = await store._run(lambda db: db.conn.execute(
            "SELECT until - extract(epoch FROM clock_timestamp()) FROM leases"
        ).fetchall())  # fmt: skip
        # Seconds until the lease expires, as of now; the child stopped before that moment.
        assert rows[0][0] > -(trio.current_time() - stopped)
        assert events == ["start a", "stop a"]
    finally:
        await store.aclose()


async def _partitioned(fn: object, *, abandon: bool = False) -> None:
    raise OSError("network unreachable (simulated partition)")


def test_renew_and_margin_must_leave_room_before_the_lease_ends() -> None:
    """A configuration whose renewal could land after the deadline is refused."""
    store = PostgresStore(PG_URL)
    with pytest.raises(ValueError, match="must be less than 'lease'"):
        ClusterSingleton(store=store, lease=3.0, renew=2.0, margin=1.5)
