"""A web app as a hosted service: a sign-up endpoint enqueues the welcome e-mail as a durable job.

    python examples/web_app.py [--db PATH]
    curl -X POST localhost:8000/sign-up -d '{"email": "ann@example.com"}'

Needs the ``web`` extra (hypercorn, starlette). The tree has two children, started in order:

- ``jobs``: the job system on a SQLite file (a temporary one unless ``--db`` is given), so a
  sign-up's e-mail survives a restart of the program. ``send_welcome`` sends through ``mailer``,
  a host resource opened before the tree starts and closed after it stops.
- ``web``: the Starlette app below, served by hypercorn's Trio worker as a supervised child
  (compare Kestrel as an ``IHostedService``). It counts as started once its socket listens; on
  Ctrl-C it refuses new connections and lets open requests finish, then the jobs stop.

Settings come from ``WEBAPP_*`` environment variables (``WEBAPP_PORT=0`` picks a free port,
``WEBAPP_MAIL_PASSWORD`` is a secret and is logged as ``***``). Stop with Ctrl-C (exit code 0).
"""

# No "from __future__ import annotations": send_welcome names the resource `mailer`, made in
# build(), in its Annotated[...] parameter; only eagerly evaluated annotations can see it there.
import argparse
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from supervisors import Resource, Secret, Supervisor, Tree, load_settings, run
from supervisors.jobs import JobNotFoundError, JobRegistry, JobSystem, SQLiteStore
from supervisors.web import ServerUrls, asgi_server

log = logging.getLogger("web_app")


@attrs.frozen
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    mail_sender: str = "hello@example.com"
    mail_password: Secret[str] = attrs.Factory(lambda: Secret("change-me"))


class Mailer:
    """Stands in for an SMTP client: logs what it would send."""

    def __init__(self, sender: str, password: Secret[str]) -> None:
        self.sender = sender
        self._password = password  # an SMTP login would use password.reveal()

    async def send(self, to: str, subject: str) -> None:
        log.info("welcome e-mail sent to %s from %s: %r", to, self.sender, subject)


def mailer_resource(settings: Settings) -> Resource[Mailer]:
    @asynccontextmanager
    async def connect() -> AsyncIterator[Mailer]:
        log.info("mailer connected")
        try:
            yield Mailer(settings.mail_sender, settings.mail_password)
        finally:
            log.info("mailer disconnected")

    return Resource("mailer", connect)


@attrs.frozen
class SignUp:
    email: str


def build(settings: Settings, db: str) -> tuple[Supervisor, Resource[Mailer]]:
    mailer = mailer_resource(settings)
    registry = JobRegistry()

    @registry.job(queue="mail", max_attempts=5)
    async def send_welcome(user: SignUp, *, mail: Annotated[Mailer, mailer]) -> None:
        await mail.send(user.email, "Welcome aboard!")

    jobs = JobSystem(store=SQLiteStore(db), registry=registry, queues={"mail": 2})

    async def sign_up(request: Request) -> JSONResponse:
        body = await request.json()
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or "@" not in email:
            return JSONResponse({"error": "send {\"email\": \"...\"}"}, status_code=422)
        job_id = await jobs.enqueue("send_welcome", SignUp(email))
        log.info("signed up %s; welcome e-mail is job %d", email, job_id)
        return JSONResponse({"job": job_id}, status_code=202)

    async def job_state(request: Request) -> JSONResponse:
        try:
            job = await jobs.get(int(request.path_params["job_id"]))
        except JobNotFoundError:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse({"job": job.id, "state": job.state.value})

    app = Starlette(routes=[
        Route("/sign-up", sign_up, methods=["POST"]),
        Route("/jobs/{job_id:int}", job_state),
    ])
    tree = Supervisor(
        name="web_app",
        children=[jobs.child_spec(), asgi_server(app, host=settings.host, port=settings.port, grace=5.0)],
    )
    return tree, mailer


async def announce(tree: Tree) -> None:
    for url in await tree.ref("web").call(ServerUrls()):
        log.info("listening on %s", url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the SQLite job file (default: a temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    settings = load_settings(Settings, env_prefix="WEBAPP_")
    log.info("settings: %s", settings)
    with tempfile.TemporaryDirectory() as scratch:
        db = args.db or os.path.join(scratch, "jobs.db")
        tree, mailer = build(settings, db)
        return run(tree, resources=[mailer], on_started=announce)


if __name__ == "__main__":
    raise SystemExit(main())
