"""The dashboard's ASGI app: pages, the JSON API, live streams, health, readiness and metrics."""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import jinja2
import trio
from markupsafe import escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from supervisors import ChildRestarting, ChildState, Event, Secret, Tree, TreeStopping
from supervisors.jobs import JobQuery, JobState, JobSystem

from . import _views as views
from ._cluster import MASK, config_view, hosts_view
from ._hub import Hub
from ._metrics import Metrics
from ._openapi import openapi_document
from ._security import (
    API_CLIENT_HEADER,
    CSRF_COOKIE,
    TOKEN_COOKIE,
    Access,
    Role,
    csrf_matches,
    new_csrf_token,
    same_origin,
)

__all__ = ["Dashboard"]

logger = logging.getLogger("supervisors.dashboard")

TZ_COOKIE = "supervisors_tz"
LEDGER_ON_PAGE = 20
"""Fire ledger entries shown per schedule on the schedules page."""
MAX_LEDGER = 500
"""The most fire ledger entries `GET /api/schedules/{name}/ledger` returns at once."""
Handler = Callable[[Request], Awaitable[Response]]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise views.ActionError(400, f"unknown time zone {name!r}; use an IANA name such as 'UTC' or "
                                     "'Europe/Paris'") from None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{s}s")
    return " ".join(parts)


class Dashboard:
    """The dashboard of one supervision tree and its job systems, as an ASGI app.

    Made by :func:`dashboard` (the child spec), which binds it to the tree it runs in. It can
    also be served by other means: call `bind` with the tree once it runs (and `unbind` after).
    Arguments as for :func:`dashboard`.
    """

    def __init__(
        self,
        jobs: JobSystem | Sequence[JobSystem] = (),
        *,
        token: str | Secret[str] | None = None,
        readonly_token: str | Secret[str] | None = None,
        time_zone: str = "UTC",
        ready_restarts: int = 3,
        live_interval: float = 2.0,
        settings: object | None = None,
    ) -> None:
        self.systems: tuple[JobSystem, ...] = (jobs,) if isinstance(jobs, JobSystem) else tuple(jobs)
        names = [s.name for s in self.systems]
        if len(set(names)) != len(names):
            raise ValueError(f"the dashboard's job systems must have distinct names (got {names})")
        self.access = Access(token, readonly_token)
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {time_zone!r} for the dashboard's default") from None
        self.time_zone = time_zone
        if ready_restarts < 1:
            raise ValueError(f"'ready_restarts' must be >= 1 (got {ready_restarts})")
        self.ready_restarts = ready_restarts
        if not live_interval > 0 or live_interval == math.inf:
            raise ValueError(f"'live_interval' must be a finite number of seconds > 0 (got {live_interval})")
        self.live_interval = live_interval
        if settings is not None and not attrs.has(type(settings)):
            raise ValueError(f"'settings' must be an attrs instance, such as load_settings returns (got {settings!r})")
        self.settings = settings
        self._tokens = {"token": token is not None, "readonly_token": readonly_token is not None}
        self.tree: Tree | None = None
        self.hub = Hub()
        self.metrics = Metrics(lambda: self.tree, self.systems)
        self._restarting: dict[str, int] = {}
        self._unbind: list[Callable[[], None]] = []
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("supervisors.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates.filters["duration"] = _duration
        self._static = {
            name: (resources.files("supervisors.dashboard") / "static" / name).read_text("utf-8")
            for name in ("dashboard.js", "dashboard.css")
        }
        self.app = Starlette(
            routes=self._routes(),
            exception_handlers={404: _unrouted, 405: _unrouted},
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # -- binding to the tree ---------------------------------------------------------------------

    def bind(self, tree: Tree) -> None:
        """Show ``tree``: listen to its events (metrics, live pages) and to the job systems' runs."""
        self.unbind()
        self.tree = tree
        self._unbind.append(tree.add_listener(self._on_event))
        for system in self.systems:
            self._unbind.append(system.observe_runs(self._on_run))

    def unbind(self) -> None:
        """Stop listening (the pages answer 503 until bound again)."""
        unbind, self._unbind = self._unbind, []
        for stop in unbind:
            stop()

    def _on_event(self, event: Event) -> None:
        self.metrics.on_event(event)
        if isinstance(event, ChildRestarting):
            self._restarting[event.path] = event.restarts
        if isinstance(event, TreeStopping):
            self.hub.close()
            return
        self.hub.publish("tree")

    def _on_run(self, run: Any, seconds: float) -> None:
        self.metrics.on_run(run, seconds)
        self.hub.publish("jobs")

    # -- routes ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        r, admin = self._endpoint, Role.ADMIN
        return [
            Route("/", r(self._home, page=True)),
            Route("/healthz", self._healthz),
            Route("/readyz", self._readyz),
            Route("/metrics", r(self._metrics)),
            Route("/login", self._login, methods=["GET", "POST"]),
            Route("/static/{name}", self._static_file),
            Route("/events", r(self._events)),
            Route("/tree", r(self._tree_page, page=True)),
            Route("/partials/tree", r(self._tree_partial, page=True)),
            Route("/jobs", r(self._jobs_page, page=True)),
            Route("/partials/jobs", r(self._jobs_partial, page=True)),
            Route("/jobs/bulk/{action}", r(self._bulk, page=True, need=admin), methods=["POST"]),
            Route("/jobs/{job_id:int}", r(self._job_page, page=True)),
            Route("/partials/jobs/{job_id:int}/progress", r(self._progress_partial, page=True)),
            Route("/jobs/{job_id:int}/{action}", r(self._job_act, page=True, need=admin), methods=["POST"]),
            Route("/queues", r(self._queues_page, page=True)),
            Route("/queues/{name}/{action}", r(self._queue_act, page=True, need=admin), methods=["POST"]),
            Route("/schedules", r(self._schedules_page, page=True)),
            Route("/schedules/{name}/{action}", r(self._schedule_act, page=True, need=admin), methods=["POST"]),
            Route("/hosts", r(self._hosts_page, page=True)),
            Route("/config", r(self._config_page, page=True)),
            Route("/api/openapi.json", r(self._api_openapi)),
            Route("/api/tree", r(self._api_tree)),
            Route("/api/jobs", r(self._api_jobs)),
            Route("/api/jobs/bulk/{action}", r(self._bulk, need=admin), methods=["POST"]),
            Route("/api/jobs/{job_id:int}", r(self._api_job)),
            Route("/api/jobs/{job_id:int}/progress", r(self._api_progress)),
            Route("/api/jobs/{job_id:int}/{action}", r(self._job_act, need=admin), methods=["POST"]),
            Route("/api/queues", r(self._api_queues)),
            Route("/api/queues/{name}/{action}", r(self._queue_act, need=admin), methods=["POST"]),
            Route("/api/schedules", r(self._api_schedules)),
            Route("/api/schedules/{name}/ledger", r(self._api_ledger)),
            Route("/api/schedules/{name}/{action}", r(self._schedule_act, need=admin), methods=["POST"]),
            Route("/api/stats", r(self._api_stats)),
            Route("/api/hosts", r(self._api_hosts)),
            Route("/api/config", r(self._api_config)),
        ]

    def _endpoint(self, handler: Handler, *, page: bool = False, need: Role = Role.READER) -> Handler:
        """Wrap a handler: authentication, role, CSRF for POST, and errors as 400/404/409 (never a traceback)."""

        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            presented = _presented_token(request)
            role = self.access.role_of(presented)
            if role is None:
                if page and request.method == "GET":
                    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
                if presented:
                    return _error(request, 401, "the token sent is not one of this dashboard's tokens: send "
                                  "'Authorization: Bearer <token>' with the admin or read-only token the host "
                                  "was given, or log in", page=False)
                return _error(request, 401, "a token is required: send 'Authorization: Bearer <token>' or log in",
                              page=False)
            query_token = request.query_params.get("token")
            if page and request.method == "GET" and query_token:
                # a link with ?token=: keep it in a cookie and drop it from the address bar
                rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                moved = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
                moved.set_cookie(TOKEN_COOKIE, query_token, httponly=True, samesite="strict")
                return moved
            if need is Role.ADMIN and role is not Role.ADMIN:
                return _error(request, 403, "this token is read-only: actions need the admin token", page=page)
            if request.method == "POST":
                refused = await _csrf_refusal(request)
                if refused is not None:
                    return _error(request, 403, refused, page=page)
            request.state.role = role
            try:
                if self.tree is None:
                    raise views.ActionError(503, "the dashboard is not bound to a running tree")
                response = await handler(request)
            except views.ActionError as exc:
                response = self._error_page(request, exc.status, exc.reason) if page else _error(
                    request, exc.status, exc.reason, page=False)
            except Exception:
                logger.exception("dashboard request %s %s failed", request.method, request.url.path)
                response = _error(request, 500, "internal error (logged by the host)", page=page)
            csrf = getattr(request.state, "csrf", None)
            if csrf is not None and CSRF_COOKIE not in request.cookies:
                response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict")
            return response

        return endpoint

    # -- helpers -------------------------------------------------------------------------------

    def _system(self, request: Request) -> JobSystem:
        if not self.systems:
            raise views.ActionError(404, "this dashboard shows no job system (pass jobs= to dashboard())")
        name = request.query_params.get("system")
        if not name:
            return self.systems[0]
        for system in self.systems:
            if system.name == name:
                return system
        raise views.ActionError(404, f"no job system {name!r}; known: {[s.name for s in self.systems]}")

    def _zone_of(self, request: Request) -> str:
        name = request.query_params.get("tz") or request.cookies.get(TZ_COOKIE) or self.time_zone
        _zone(name)
        return name

    def _render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        zone_name = self._zone_of(request)
        zone = _zone(zone_name)

        def when(value: str | None) -> str:
            if value is None:
                return "-"
            moment = datetime.fromisoformat(value).astimezone(zone)
            return moment.strftime("%Y-%m-%d %H:%M:%S ") + (moment.tzname() or zone_name)

        def local(value: str | None) -> str:
            """A time for a form field, in the zone shown (read back in that zone)."""
            return "" if value is None else datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

        csrf = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
        request.state.csrf = csrf
        html = self._templates.get_template(template).render(
            request=request, csrf=csrf, zone=zone_name, when=when, local=local, zones=_ZONES,
            role=getattr(request.state, "role", Role.READER).value, systems=[s.name for s in self.systems],
            path=request.url.path, **context,
        )
        response = HTMLResponse(html, status_code=status)
        if request.query_params.get("tz"):
            response.set_cookie(TZ_COOKIE, zone_name, samesite="strict")
        return response

    def _error_page(self, request: Request, status: int, reason: str) -> Response:
        try:
            return self._render(request, "error.html", status=status, status_code=status, reason=reason)
        except views.ActionError:
            return PlainErrorResponse(status, reason)

    def _search_of(self, request: Request, extra: dict[str, list[str]] | None = None) -> tuple[JobSystem, JobQuery]:
        """The job system and the search of a request's query parameters (and ``extra`` ones, from
        a form or a JSON body, which win); times without an offset in the zone the page shows."""
        if request.url.path.startswith("/api/"):
            # A misspelt filter must not widen a search silently (nor a bulk action: it would act
            # on every job the other filters match).
            _refuse_unknown(request.query_params.keys(), (*views.SEARCH_PARAMS, *_API_EXTRA_PARAMS), "parameter")
            _refuse_unknown((extra or {}).keys(), (*views.SEARCH_PARAMS, "all"), "key of the request body")
        system = self._system(request)
        params: dict[str, list[str]] = {k: request.query_params.getlist(k) for k in views.SEARCH_PARAMS}
        params.update({k: v for k, v in (extra or {}).items() if k in views.SEARCH_PARAMS})
        return system, views.parse_search(params, zone=_zone(self._zone_of(request)))

    # -- health, readiness, metrics -----------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        await trio.lowlevel.checkpoint()
        return JSONResponse({"status": "ok", "time": datetime.now(UTC).isoformat()})

    async def readiness(self) -> dict[str, Any]:
        """The readiness checks: the tree runs, no child restarts past the threshold, every store answers."""
        checks: list[dict[str, Any]] = []
        tree = self.tree
        if tree is None:
            checks.append({"check": "tree", "ok": False, "reason": "the dashboard is not bound to a tree"})
        else:
            snapshot = tree.snapshot()
            ok = snapshot.state is ChildState.RUNNING
            checks.append({"check": "tree", "ok": ok, "reason": f"tree {tree.name!r} is {snapshot.state.value}"})
            flapping = [
                f"{node.path} is restarting (restart {self._restarting[node.path]} within its supervisor's "
                f"window; threshold {self.ready_restarts})"
                for node in snapshot.walk()
                if node.state is ChildState.RESTARTING and self._restarting.get(node.path, 0) >= self.ready_restarts
            ]
            checks.append({"check": "restarts", "ok": not flapping,
                           "reason": "; ".join(flapping) or "no child is restarting past the threshold"})
        for system in self.systems:
            if not system.store.available:  # known to be down: say so now, not after the timeout
                checks.append({"check": f"jobs:{system.name}", "ok": False,
                               "reason": f"job store of {system.name!r} is unreachable (retrying)"})
                continue
            reason = f"job store of {system.name!r} answered"
            ok = False
            with trio.move_on_after(5.0) as scope:
                try:
                    # A read of a few index entries: a count of every job would cost a probe
                    # time proportional to the jobs kept.
                    await system.store.has_work(tuple(system.queues))
                    ok = True
                except Exception as exc:
                    reason = f"job store of {system.name!r} failed: {exc!r}"
            if scope.cancelled_caught:
                reason = f"job store of {system.name!r} did not answer within 5 s"
            checks.append({"check": f"jobs:{system.name}", "ok": ok, "reason": reason})
        return {"ready": all(c["ok"] for c in checks), "checks": checks}

    async def _readyz(self, request: Request) -> Response:
        result = await self.readiness()
        return JSONResponse(result, status_code=200 if result["ready"] else 503)

    async def _metrics(self, request: Request) -> Response:
        self.metrics.live_clients.set(len(self.hub))
        body = await self.metrics.render()
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- login, static, live stream -----------------------------------------------------------------

    async def _login(self, request: Request) -> Response:
        target = request.query_params.get("next") or "/tree"
        if not target.startswith("/") or target.startswith("//"):
            target = "/tree"
        if request.method == "POST":
            refused = same_origin(request.headers, request.headers.get("host", ""))
            if refused is not None:
                return _error(request, 403, refused, page=True)
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            token = (form.get("token") or [""])[0]
            if self.access.role_of(token) is None:
                return HTMLResponse(self._templates.get_template("login.html").render(
                    next=target, failed=True), status_code=401)
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response
        return HTMLResponse(self._templates.get_template("login.html").render(next=target, failed=False))

    async def _static_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        text = self._static.get(name)
        if text is None:
            return _error(request, 404, f"no static file {name!r}", page=False)
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(text, media_type=kind, headers={"Cache-Control": "no-cache"})

    async def _events(self, request: Request) -> Response:
        try:
            client = self.hub.connect()
        except trio.ClosedResourceError:
            return _error(request, 503, "the dashboard is stopping", page=False)
        hub, interval = self.hub, self.live_interval

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\nevent: hello\ndata: {}\n\n"
                while True:
                    with trio.move_on_after(interval) as idle:
                        try:
                            kind = await client.receive()
                        except (trio.EndOfChannel, trio.ClosedResourceError):
                            yield "event: shutdown\ndata: {}\n\n"
                            return
                    if idle.cancelled_caught:
                        yield "event: tick\ndata: {}\n\n"
                        continue
                    kinds = {kind}
                    await trio.sleep(0.05)  # coalesce a burst of events into one refresh
                    while True:
                        try:
                            kinds.add(client.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                            break
                    for each in sorted(kinds):
                        yield f"event: {each}\ndata: {json.dumps({'kind': each})}\n\n"
            finally:
                hub.disconnect(client)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- pages ---------------------------------------------------------------------------------------

    async def _home(self, request: Request) -> Response:
        return RedirectResponse("/tree", status_code=303)

    async def _tree_page(self, request: Request) -> Response:
        assert self.tree is not None
        return self._render(request, "tree.html", tree=views.tree_view(self.tree, self.systems))

    async def _tree_partial(self, request: Request) -> Response:
        assert self.tree is not None
        return self._render(request, "_tree.html", tree=views.tree_view(self.tree, self.systems))

    async def _jobs_context(self, request: Request) -> dict[str, Any]:
        system, search = self._search_of(request)
        page = await views.jobs_page(system, search)
        stats = await views.stats_view(system)
        peak = max([1] + [b["succeeded"] + b["failed"] for b in stats["buckets"]])
        query: dict[str, Any] = {"system": system.name, **page["filter"], "limit": str(search.limit)}

        def link(**changes: Any) -> str:
            merged: dict[str, Any] = {**query, **changes}
            return "/jobs?" + urlencode({k: v for k, v in merged.items() if v is not None and v != "" and v != []},
                                        doseq=True)

        return {"page": page, "stats": stats, "peak": peak, "query": query, "link": link, "states": _STATES,
                "message": request.query_params.get("message")}

    async def _jobs_page(self, request: Request) -> Response:
        return self._render(request, "jobs.html", **await self._jobs_context(request))

    async def _jobs_partial(self, request: Request) -> Response:
        return self._render(request, "_jobs.html", **await self._jobs_context(request))

    async def _job_page(self, request: Request) -> Response:
        system = self._system(request)
        job = await _get_job(system, request.path_params["job_id"])
        return self._render(request, "job.html", job=job, actions=views.available_actions(system),
                            message=request.query_params.get("message"))

    async def _progress_partial(self, request: Request) -> Response:
        system = self._system(request)
        job = await _get_job(system, request.path_params["job_id"])
        return self._render(request, "_progress.html", job=job)

    async def _queues_page(self, request: Request) -> Response:
        queues = [q for s in self.systems for q in await views.queues_view(s)]
        return self._render(request, "queues.html", queues=queues, message=request.query_params.get("message"))

    async def _schedules_page(self, request: Request) -> Response:
        schedules = [x for s in self.systems for x in await views.schedules_view(s)]
        by_system = {s.name: s for s in self.systems}
        for x in schedules:
            ledger = await views.ledger_view(by_system[x["system"]], x["name"], limit=LEDGER_ON_PAGE)
            x["ledger"] = ledger["items"]
        return self._render(request, "schedules.html", schedules=schedules,
                            message=request.query_params.get("message"))

    async def _hosts_page(self, request: Request) -> Response:
        return self._render(request, "hosts.html", hosts=await hosts_view(self.systems, self.tree))

    def config(self) -> dict[str, Any]:
        """This host's effective configuration, every secret masked (see `_cluster.config_view`)."""
        board = {"time_zone": self.time_zone, "ready_restarts": self.ready_restarts,
                 "live_interval": self.live_interval,
                 **{name: MASK if given else None for name, given in self._tokens.items()}}
        return config_view(systems=self.systems, settings=self.settings, dashboard=board)

    async def _config_page(self, request: Request) -> Response:
        return self._render(request, "config.html", config=self.config())

    # -- actions (pages redirect back; the API answers JSON) ---------------------------------------

    async def _job_act(self, request: Request) -> Response:
        system = self._system(request)
        job_id, action = request.path_params["job_id"], request.path_params["action"]
        result = await views.job_action(system, job_id, action)
        if request.url.path.startswith("/api/"):
            return JSONResponse(result)
        target = "/jobs" if action == "delete" else f"/jobs/{job_id}"
        message = f"{action}: job {job_id} done" + (f" (now {result['state']})" if "state" in result else "")
        return RedirectResponse(f"{target}?{urlencode({'system': system.name, 'message': message})}", status_code=303)

    async def _bulk(self, request: Request) -> Response:
        extra: dict[str, list[str]] = {}
        everything = request.query_params.get("all") == "1"
        if request.url.path.startswith("/api/"):
            body = await request.body()
            if body:
                try:
                    loaded = json.loads(body)
                except ValueError as exc:
                    raise views.ActionError(400, f"the request body is not JSON: {exc}") from None
                if not isinstance(loaded, dict):
                    raise views.ActionError(400, "the request body must be a JSON object of search parameters")
                for key, value in loaded.items():
                    if value is not None:
                        extra[key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
                everything = everything or str(loaded.get("all")) in ("1", "True", "true")
        else:
            extra = await _form(request)
            everything = everything or extra.get("all") == ["1"]
        if request.path_params["action"] not in views.ACTIONS:
            raise views.ActionError(
                404, f"unknown job action {request.path_params['action']!r}; expected one of: "
                f"{', '.join(views.ACTIONS)}"
            )
        system, search = self._search_of(request, extra)
        if not any(views.search_filter(search).values()) and not everything:
            raise views.ActionError(400, "a bulk action needs a filter (state, queue, name, time or arguments), "
                                         "or all=1 for every job")
        result = await views.bulk_action(system, request.path_params["action"], search)
        if request.url.path.startswith("/api/"):
            return JSONResponse(result)
        message = f"{result['action']}: {result['done']} done, {result['failed']} refused"
        query = {"system": system.name, **result["filter"], "message": message}
        return RedirectResponse("/jobs?" + urlencode({k: v for k, v in query.items() if v}, doseq=True),
                                status_code=303)

    async def _queue_act(self, request: Request) -> Response:
        system = self._system(request)
        result = await views.queue_action(system, request.path_params["name"], request.path_params["action"])
        if request.url.path.startswith("/api/"):
            return JSONResponse(result)
        message = f"{result['action']}: queue {result['queue']} done"
        return RedirectResponse(f"/queues?{urlencode({'message': message})}", status_code=303)

    async def _schedule_act(self, request: Request) -> Response:
        system = self._system(request)
        result = await views.schedule_action(system, request.path_params["name"], request.path_params["action"])
        if request.url.path.startswith("/api/"):
            return JSONResponse(result)
        message = f"{result['action']}: schedule {result['schedule']} done" + (
            f" (job {result['job_id']})" if "job_id" in result else "")
        return RedirectResponse(f"/schedules?{urlencode({'message': message})}", status_code=303)

    # -- the JSON API ----------------------------------------------------------------------------------

    async def _api_openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def _api_tree(self, request: Request) -> Response:
        assert self.tree is not None
        return JSONResponse(views.tree_view(self.tree, self.systems))

    async def _api_jobs(self, request: Request) -> Response:
        system, search = self._search_of(request)
        return JSONResponse(await views.jobs_page(system, search))

    async def _api_job(self, request: Request) -> Response:
        system = self._system(request)
        return JSONResponse(await _get_job(system, request.path_params["job_id"]))

    async def _api_queues(self, request: Request) -> Response:
        return JSONResponse({"items": [q for s in self.systems for q in await views.queues_view(s)]})

    async def _api_progress(self, request: Request) -> Response:
        system = self._system(request)
        job_id = request.path_params["job_id"]
        attempts = await views.progress_view(system, job_id)
        return JSONResponse({"job_id": job_id, "system": system.name, "attempts": attempts})

    async def _api_ledger(self, request: Request) -> Response:
        system = self._system(request)
        limit = views.parse_int(request.query_params.get("limit"), "limit", 100, low=1, high=MAX_LEDGER)
        return JSONResponse(await views.ledger_view(system, request.path_params["name"], limit=limit))

    async def _api_schedules(self, request: Request) -> Response:
        return JSONResponse({"items": [x for s in self.systems for x in await views.schedules_view(s)]})

    async def _api_hosts(self, request: Request) -> Response:
        return JSONResponse(await hosts_view(self.systems, self.tree))

    async def _api_config(self, request: Request) -> Response:
        await trio.lowlevel.checkpoint()
        return JSONResponse(self.config())

    async def _api_stats(self, request: Request) -> Response:
        system = self._system(request)
        minutes = views.parse_int(request.query_params.get("minutes"), "minutes", 60, low=1, high=24 * 60)
        return JSONResponse(await views.stats_view(system, minutes=minutes))


_STATES = tuple(s.value for s in JobState)

_ZONES = ("UTC", "Europe/London", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo",
          "Australia/Sydney")
"""The zones offered by the picker (any IANA name works with ?tz=)."""


class PlainErrorResponse(JSONResponse):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__({"error": reason, "status": status}, status_code=status)


async def _get_job(system: JobSystem, job_id: int) -> dict[str, Any]:
    from supervisors.jobs import JobNotFoundError

    try:
        job = await system.get(job_id)
    except JobNotFoundError:
        raise views.ActionError(404, f"no job {job_id} in job system {system.name!r}") from None
    view = views.job_view(job, system)
    view["progress"] = await views.progress_view(system, job_id)
    return view


_API_EXTRA_PARAMS = ("system", "tz", "all", "token")
"""The query parameters a job search of the API takes beyond the search itself."""


def _refuse_unknown(names: Iterable[str], known: Sequence[str], what: str) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise views.ActionError(
            400, f"unknown {what} {unknown[0]!r}; expected one of: {', '.join(known)} (see /api/openapi.json)"
        )


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        return None
    query = request.query_params.get("token")
    if query:
        return query
    return request.cookies.get(TOKEN_COOKIE)


async def _form(request: Request) -> dict[str, list[str]]:
    kind = request.headers.get("content-type", "")
    if kind and not kind.startswith("application/x-www-form-urlencoded"):
        raise views.ActionError(400, f"expected a form (application/x-www-form-urlencoded), got {kind!r}")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {k: v for k, v in form.items() if v}


async def _csrf_refusal(request: Request) -> str | None:
    """Why this POST is refused as a possible cross-site request forgery, or ``None``."""
    refused = same_origin(request.headers, request.headers.get("host", ""))
    if refused is not None:
        return refused
    if request.headers.get("authorization") or request.headers.get(API_CLIENT_HEADER):
        return None  # browsers never send these across sites without a (refused) CORS preflight
    submitted = request.headers.get("x-csrf-token")
    if submitted is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        values = parse_qs(body.decode("utf-8", "replace")).get("csrf")
        submitted = values[0] if values else None
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), submitted):
        return ("missing or wrong CSRF token: submit the dashboard's own form, or send the header "
                f"'{API_CLIENT_HEADER}' (API clients)")
    return None


async def _unrouted(request: Request, exc: Exception) -> Response:
    """A path no route serves (404) or a method its route does not take (405): the API's JSON
    error (a page's HTML one outside ``/api/``), never Starlette's plain text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    allow = (exc.headers or {}).get("Allow") if isinstance(exc, HTTPException) else None
    method, path = request.method, request.url.path
    if status == 405:
        reason = f"{path} does not take {method}; it takes {allow or 'another method'}"
    else:
        reason = f"no such address: {method} {path}"
        if path.startswith("/api/"):
            reason += " (the API's routes are listed at /api/openapi.json)"
    response = _error(request, status, reason, page=not path.startswith("/api/"))
    if allow:
        response.headers["Allow"] = allow
    return response


def _error(request: Request, status: int, reason: str, *, page: bool) -> Response:
    if page:
        return HTMLResponse(
            f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{_escape(reason)}</p>"
            '<p><a href="/tree">back to the dashboard</a></p>', status_code=status)
    return JSONResponse({"error": reason, "status": status}, status_code=status)


def _escape(text: str) -> str:
    return str(escape(text))
