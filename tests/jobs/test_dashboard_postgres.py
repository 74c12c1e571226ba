"""The dashboard's hosts page on a real PostgreSQL store: every host of the cluster, its heartbeat,
alive or not, the singletons it holds and the jobs it runs (skips without PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import trio
from _dashboard import BlockingJob
from _pg import PG_URL

from actors import BackgroundService
from supervisors import ChildSpec, Supervisor, open_tree
from supervisors.dashboard import dashboard
from supervisors.jobs import ClusterSingleton, JobRegistry, JobSystem, PostgresStore
from supervisors.web import ServerUrls


class Idle(BackgroundService):
    async def execute(self) -> None:
        await trio.sleep_forever()


async def until(predicate: Callable[[], bool]) -> None:
    while not predicate():  # noqa: ASYNC110 - the singleton's elector changes what it reads
        await trio.sleep(0.01)


async def test_the_hosts_page_lists_every_host_of_the_cluster_with_heartbeat_singletons_and_running_jobs(
    pg_schema: str,
) -> None:
    """Three hosts share a schema: this one (alive, holding the singleton and running a job),
    one stopped gracefully and one whose heartbeat is stale (dead); page and API show each."""
    slow = BlockingJob()
    store = PostgresStore(PG_URL, schema=pg_schema)
    stopped, stale = PostgresStore(PG_URL, schema=pg_schema), PostgresStore(PG_URL, schema=pg_schema)
    await stopped.open()
    await stale.open()
    await stopped.aclose()

    def stall(db: Any) -> None:  # as if that host had been killed a minute ago
        db.conn.execute("UPDATE hosts SET heartbeat_at = heartbeat_at - 60 WHERE id = %s", (stale.host_id,))

    await stale._run(stall)
    jobs = JobSystem(store=store, registry=slow.registry)
    singleton = ClusterSingleton(store=store, lease=3.0, retry=0.05)
    tree = Supervisor(name="app", children=[
        jobs.child_spec(), singleton.child_spec(ChildSpec(name="reporter", factory=Idle)),
        dashboard(jobs, address="127.0.0.1:0"),
    ])
    try:
        with trio.fail_after(60):
            async with open_tree(tree) as running:
                url = (await running.ref("dashboard").call(ServerUrls()))[0]
                async with slow.running(jobs) as job_id, httpx.AsyncClient(base_url=url) as http:
                    hosts: dict[str, Any] = {}
                    while not hosts.get(store.host_id, {}).get("singletons"):  # the elector takes the lease
                        await trio.sleep(0.05)
                        (entry,) = (await http.get("/api/hosts")).json()["items"]
                        hosts = {h["id"]: h for h in entry["hosts"]}
                    page = (await http.get("/hosts")).text
    finally:
        await stale.aclose()
    assert entry["hosts_table"] is True
    assert list(hosts) == [stopped.host_id, stale.host_id, store.host_id]  # oldest first
    this = hosts[store.host_id]
    assert (this["this"], this["alive"], this["singletons"], this["running"]) == (True, True, ["reporter"], [job_id])
    assert this["heartbeat_age_seconds"] < 60
    assert (hosts[stopped.host_id]["alive"], hosts[stopped.host_id]["stopped_at"] is not None) == (False, True)
    assert (hosts[stale.host_id]["alive"], hosts[stale.host_id]["stopped_at"]) == (False, None)
    assert hosts[stale.host_id]["heartbeat_age_seconds"] >= 60
    assert "1 of 3 hosts alive" in page
    assert page.count('class="dead"') == 2
    assert "(this host)" in page
    assert '<td class="singletons">reporter</td>' in page
    assert f'href="/jobs/{job_id}?system=jobs"' in page


async def test_a_postgres_outage_fails_readyz_at_once_and_the_hosts_page_says_the_store_is_unreachable(
    pg_schema: str,
) -> None:
    """While the store cannot reach PostgreSQL, /readyz answers 503 at once with the reason (not
    after its timeout) and the hosts page says the hosts are unknown (it does not hang); once a
    call succeeds again, /readyz answers 200."""
    import psycopg

    store = PostgresStore(PG_URL, schema=pg_schema)
    jobs = JobSystem(store=store, registry=JobRegistry())
    tree = Supervisor(name="app", children=[jobs.child_spec(), dashboard(jobs, address="127.0.0.1:0")])
    with trio.fail_after(60):
        async with open_tree(tree) as running, httpx.AsyncClient() as http:
            url = (await running.ref("dashboard").call(ServerUrls()))[0]
            assert (await http.get(url + "/readyz")).status_code == 200

            async def unreachable(fn: object, *, abandon: bool = False) -> None:
                raise psycopg.OperationalError("connection refused (simulated outage)")

            store._call = unreachable  # type: ignore[method-assign]
            with trio.move_on_after(0.5):
                await store.counts()  # retried with backoff: the store now knows it is cut off
            assert not store.available
            down = await http.get(url + "/readyz")  # from `available`: no 5 s wait for an answer
            (cut_off,) = (await http.get(url + "/api/hosts")).json()["items"]
            page = (await http.get(url + "/hosts")).text
            del store._call  # type: ignore[attr-defined]
            await store.counts()
            up = await http.get(url + "/readyz")
    assert down.status_code == 503
    failed = [c for c in down.json()["checks"] if not c["ok"]]
    assert failed == [{"check": "jobs:jobs", "ok": False, "reason": "job store of 'jobs' is unreachable (retrying)"}]
    assert up.status_code == 200
    assert cut_off["hosts"] == []
    assert cut_off["error"] == "the job store of 'jobs' is unreachable; its hosts are unknown"
    assert "the job store of &#39;jobs&#39; is unreachable" in page
