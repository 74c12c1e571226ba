"""Helpers shared by the dashboard tests: a tree hosting a job system and the dashboard, an HTTP
client, and jobs in a given state (dead; running until released)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio

from actors import Actor, handler
from supervisors import ChildSpec, Supervisor, Tree, open_tree
from supervisors.dashboard import dashboard
from supervisors.jobs import InMemoryStore, JobRegistry, JobState, JobSystem, Recurring, Store
from supervisors.web import ServerUrls

ADMIN, READER = "admin-token-123", "reader-token-456"


@attrs.frozen
class Ping:
    pass


class Worker(Actor):
    @handler
    async def ping(self, msg: Ping) -> None:
        await trio.lowlevel.checkpoint()


@attrs.frozen
class Args:
    n: int


def make_jobs(store: Store | None = None) -> JobSystem:
    registry = JobRegistry()

    @registry.job(max_attempts=1)
    async def boom(args: Args) -> None:
        raise ValueError(f"boom {args.n}")

    @registry.job()
    async def fine(args: Args) -> int:
        return args.n

    return JobSystem(
        store=store if store is not None else InMemoryStore(), registry=registry,
        recurring=[Recurring(name="nightly", cron="0 3 * * *", job="fine", args=Args(1), tz="Europe/Paris")],
    )


@asynccontextmanager
async def hosted(
    *, extra: tuple[Any, ...] = (), jobs: JobSystem | None = None, **options: Any
) -> AsyncIterator[tuple[Tree, JobSystem, str]]:
    jobs = jobs if jobs is not None else make_jobs()
    spec = Supervisor(name="app", children=[
        ChildSpec(name="worker", factory=Worker), *extra, jobs.child_spec(),
        dashboard(jobs, address="127.0.0.1:0", **options),
    ])
    async with open_tree(spec) as tree:
        url = (await tree.ref("dashboard").call(ServerUrls()))[0]
        yield tree, jobs, url


def client(url: str, token: str | None = None, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    sent = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=url, headers={**sent, **(headers or {})})


async def dead_job(jobs: JobSystem, n: int = 1) -> int:
    job_id = await jobs.enqueue("boom", Args(n))
    job = await jobs.wait_finished(job_id)
    assert job.state is JobState.DEAD
    return job_id


class BlockingJob:
    """A registry whose one job, ``slow``, runs until released: for reading a page while a job
    runs. ``async with slow.running(jobs) as job_id:`` enqueues it, waits until its run began,
    and releases it on exit."""

    def __init__(self) -> None:
        self.started, self.release = trio.Event(), trio.Event()
        self.registry = JobRegistry()

        @self.registry.job()
        async def slow() -> None:
            self.started.set()
            await self.release.wait()

    @asynccontextmanager
    async def running(self, jobs: JobSystem) -> AsyncIterator[int]:
        job_id = await jobs.enqueue("slow")
        await self.started.wait()
        try:
            yield job_id
        finally:
            self.release.set()
