"""The web app as a hosted service, and a tree opened in an app's lifespan: real HTTP on 127.0.0.1."""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import httpx
import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from actors import Actor, Request, handler
from supervisors import ChildSpec, ChildState, ConfigurationError, Resource, StartFailed, Supervisor, Tree, open_tree
from supervisors.jobs import InMemoryStore, JobRegistry, JobState, JobSystem
from supervisors.web import ServerUrls, asgi_server, tree_lifespan


def app_with_slow_route(entered: trio.Event, release: trio.Event) -> Starlette:
    async def hello(request: HttpRequest) -> PlainTextResponse:
        return PlainTextResponse("hello")

    async def slow(request: HttpRequest) -> PlainTextResponse:
        entered.set()
        await release.wait()
        return PlainTextResponse("finished")

    return Starlette(routes=[Route("/", hello), Route("/slow", slow)])


async def url_of(tree: Tree, path: str = "web") -> str:
    return (await tree.ref(path).call(ServerUrls()))[0]


async def test_asgi_server_child_serves_requests_once_started() -> None:
    """The child counts as started once its socket listens: a request right after open_tree succeeds."""
    app = app_with_slow_route(trio.Event(), trio.Event())
    spec = Supervisor(name="app", children=[asgi_server(app, port=0)])
    async with open_tree(spec) as tree:
        url = await url_of(tree)
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as client:
            response = await client.get(url + "/")
    assert (response.status_code, response.text) == (200, "hello")


async def test_request_in_flight_during_shutdown_completes_and_new_ones_are_refused() -> None:
    """On a stop the listener closes at once (a new request is refused) and the open request finishes."""
    entered, release = trio.Event(), trio.Event()
    spec = Supervisor(name="app", children=[asgi_server(app_with_slow_route(entered, release), port=0, grace=30)])
    responses: list[httpx.Response] = []
    async with open_tree(spec) as tree:
        url = await url_of(tree)
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:

            async def in_flight() -> None:
                responses.append(await client.get(url + "/slow"))

            nursery.start_soon(in_flight)
            await entered.wait()
            tree.request_stop()
            await trio.testing.wait_all_tasks_blocked()  # the stop has closed the listener
            async with httpx.AsyncClient() as fresh:
                with pytest.raises(httpx.ConnectError):
                    await fresh.get(url + "/")
            assert tree.snapshot().state is ChildState.STOPPING  # still draining the open request
            release.set()
        await tree.wait_stopped()
    assert [(r.status_code, r.text) for r in responses] == [(200, "finished")]


async def test_asgi_server_is_restarted_by_its_supervisor_like_any_child() -> None:
    """A crashed server child is restarted, binds again and serves."""
    app = app_with_slow_route(trio.Event(), trio.Event())
    spec = Supervisor(name="app", children=[asgi_server(app, port=0)])
    async with open_tree(spec) as tree, httpx.AsyncClient() as client:
        await url_of(tree)
        tree.inject_crash("web")
        url = await url_of(tree)  # the call waits in the mailbox for the new incarnation
        response = await client.get(url + "/")
        assert tree.snapshot().children[0].restarts == 1
    assert (response.status_code, response.text) == (200, "hello")


async def test_asgi_server_on_a_port_in_use_fails_the_start_naming_the_child() -> None:
    """A port that is taken: the child's start fails and the tree does not start."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        app = app_with_slow_route(trio.Event(), trio.Event())
        spec = Supervisor(name="app", children=[asgi_server(app, port=port)])
        with pytest.raises(StartFailed) as info:
            async with open_tree(spec):
                pytest.fail("the tree must not start")
    cause = info.value.__cause__
    assert isinstance(cause, ConfigurationError)  # logged as one line, without a traceback
    assert isinstance(cause, OSError)
    assert str(cause).startswith(f"app/web: cannot listen on 127.0.0.1:{port}: ")
    assert str(cause).endswith(
        "another process is listening there: stop it, or choose another port (0 picks a free one)"
    )


def test_asgi_server_refuses_an_unbounded_grace() -> None:
    """The drain needs a finite grace."""
    with pytest.raises(ValueError, match="'grace' must be a finite number"):
        asgi_server(Starlette(), grace=float("inf"))


# -- the other way round: the server is started by someone else, the app opens the tree ----------


@attrs.frozen
class Count(Request[int]):
    pass


class Counter(Actor):
    def __init__(self) -> None:
        self.count = 0

    @handler
    def count_up(self, msg: Count) -> int:
        self.count += 1
        return self.count


@attrs.frozen
class Welcome:
    email: str


@asynccontextmanager
async def greeting_prefix() -> AsyncIterator[str]:
    yield "Welcome, "


async def test_tree_lifespan_opens_the_tree_and_handlers_reach_actors_resources_and_jobs() -> None:
    """hypercorn serves a Starlette app whose lifespan runs the tree; handlers call an actor and enqueue a job."""
    sent: list[str] = []
    registry = JobRegistry()
    prefix = Resource("prefix", greeting_prefix)

    @registry.job()
    async def welcome(args: Welcome) -> None:
        sent.append(args.email)

    jobs = JobSystem(store=InMemoryStore(), registry=registry)
    spec = Supervisor(name="app", children=[ChildSpec(name="counter", factory=Counter), jobs.child_spec()])

    async def visit(request: HttpRequest) -> JSONResponse:
        tree: Tree = request.state.tree
        return JSONResponse({"visits": await tree.ref("counter").call(Count())})

    async def sign_up(request: HttpRequest) -> JSONResponse:
        email = (await request.json())["email"]
        job_id = await jobs.enqueue("welcome", Welcome(email))
        return JSONResponse({"job": job_id, "greeting": request.state.resources[prefix] + email})

    app = Starlette(
        routes=[Route("/visit", visit), Route("/sign-up", sign_up, methods=["POST"])],
        lifespan=tree_lifespan(spec, resources=[prefix]),
    )
    config = Config()
    config.bind = ["127.0.0.1:0"]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=stop.wait))
        async with httpx.AsyncClient(base_url=binds[0]) as client:
            visits = [(await client.get("/visit")).json()["visits"] for _ in range(2)]
            signed = (await client.post("/sign-up", json={"email": "ann@example.com"})).json()
        job = await jobs.wait_finished(signed["job"])
        stop.set()
    assert visits == [1, 2]
    assert signed["greeting"] == "Welcome, ann@example.com"
    assert job.state is JobState.SUCCEEDED
    assert sent == ["ann@example.com"]


def test_base_install_does_not_import_the_web_extra_and_names_it_when_missing() -> None:
    """``import supervisors`` never imports hypercorn; ``supervisors.web`` without it says which extra to install."""
    script = (
        "import sys\n"
        "import supervisors, supervisors.jobs\n"
        "assert 'hypercorn' not in sys.modules and 'starlette' not in sys.modules\n"
        "sys.modules['hypercorn'] = None\n"
        "try:\n"
        "    import supervisors.web\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "pip install 'trio-supervisors[web]'" in out
