"""The web dashboard served as a child of the tree: real HTTP on 127.0.0.1 (pages, API, security, metrics)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import trio
from _dashboard import ADMIN, READER, Args, BlockingJob, Ping, Worker, client, dead_job, hosted, make_jobs

from supervisors import Backoff, ChildSpec, ChildStopped, Supervisor, open_tree
from supervisors.dashboard import METRICS, Dashboard, TokenError, dashboard
from supervisors.jobs import (
    InMemoryStore,
    JobQuery,
    JobRegistry,
    JobState,
    JobSystem,
    RateLimit,
    SQLiteStore,
)
from supervisors.web import ServerUrls

# -- the tree, health, readiness, metrics --------------------------------------------------------


async def test_api_tree_shows_every_child_with_state_strategy_restarts_and_running_jobs_under_workers() -> None:
    async with hosted() as (tree, _jobs, url), client(url) as http:
        await tree.ref("worker").cast(Ping())
        tree.inject_crash("worker")
        await trio.sleep(0.05)
        body = (await http.get("/api/tree")).json()
    assert (body["path"], body["kind"], body["strategy"]) == ("app", "supervisor", "one_for_one")
    nodes = {}

    def walk(node: dict[str, Any]) -> None:
        nodes[node["path"]] = node
        for child in node["children"]:
            walk(child)

    walk(body)
    worker = nodes["app/worker"]
    assert worker["restarts"] == 1
    assert worker["state"] == "running"
    assert "InjectedFault" in worker["last_error"]
    assert "InjectedFault: crash" in worker["last_traceback"]
    assert worker["mailbox_depth"] == 0
    assert worker["messages_handled"] >= 1
    assert worker["uptime_seconds"] >= 0
    assert nodes["app/jobs"]["strategy"] == "rest_for_one"
    assert nodes["app/jobs/workers/default"]["queue"] == {"name": "default", "concurrency": 10}


async def test_a_running_job_appears_as_a_node_under_its_queue_worker() -> None:
    slow = BlockingJob()
    jobs = JobSystem(store=InMemoryStore(), registry=slow.registry)
    async with hosted(jobs=jobs) as (_tree, _jobs, url), client(url) as http, slow.running(jobs) as job_id:
        body = (await http.get("/api/tree")).json()
    worker = next(c for c in next(c for c in body["children"] if c["name"] == "jobs")["children"]
                  if c["name"] == "workers")["children"][0]
    assert [c["job"] for c in worker["children"]] == [{"id": job_id, "name": "slow", "queue": "default", "attempt": 1}]
    assert worker["children"][0]["kind"] == "job"


async def test_healthz_answers_and_readyz_reports_each_check_with_its_reason() -> None:
    async with hosted() as (_tree, _jobs, url), client(url) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert ready.status_code == 200
    assert [(c["check"], c["ok"]) for c in ready.json()["checks"]] == [
        ("tree", True), ("restarts", True), ("jobs:jobs", True)]


async def test_readyz_is_503_while_a_child_restarts_past_the_threshold() -> None:
    flapping = Supervisor(name="flaky", children=[ChildSpec(name="flappy", factory=Worker)],
                          backoff=Backoff(initial=3600, jitter=0))
    async with hosted(extra=(flapping,), ready_restarts=1) as (tree, _jobs, url), client(url) as http:
        tree.inject_crash("flaky/flappy")
        await trio.sleep(0.05)
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        failed = [c for c in ready.json()["checks"] if not c["ok"]]
        assert [c["check"] for c in failed] == ["restarts"]
        assert "app/flaky/flappy is restarting" in failed[0]["reason"]


async def test_readyz_is_503_when_the_job_store_fails() -> None:
    jobs = make_jobs()
    async with hosted(jobs=jobs) as (_tree, _jobs, url), client(url) as http:

        async def broken(queues: object) -> None:
            raise OSError("disk gone")

        jobs.store.has_work = broken  # type: ignore[method-assign,assignment]
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert "disk gone" in next(c for c in ready.json()["checks"] if c["check"] == "jobs:jobs")["reason"]


async def test_metrics_come_from_the_events_snapshots_and_store_in_a_registry_of_their_own() -> None:
    async with hosted() as (tree, jobs, url), client(url) as http:
        tree.inject_crash("worker")
        await dead_job(jobs)
        await jobs.wait_finished(await jobs.enqueue("fine", Args(2)))
        await trio.sleep(0.05)
        text = (await http.get("/metrics")).text
    assert 'supervisors_child_crashes_total{path="app/worker"} 1.0' in text
    assert 'supervisors_child_restarts_total{path="app/worker"} 1.0' in text
    assert 'supervisors_mailbox_depth{path="app/worker"} 0.0' in text
    assert 'supervisors_messages_handled_total{path="app/worker"}' in text
    assert 'supervisors_jobs{queue="default",state="dead"} 1.0' in text
    assert 'supervisors_jobs{queue="default",state="succeeded"} 1.0' in text
    assert 'supervisors_job_duration_seconds_count{job="fine",queue="default"} 1.0' in text
    assert 'supervisors_queue_latency_seconds{queue="default"} 0.0' in text
    for name, _kind, _help in METRICS:
        assert f"# HELP {name}" in text or f"# HELP {name.removesuffix('_total')}" in text
    assert b"supervisors_child_crashes" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


# -- security -------------------------------------------------------------------------------------


def test_a_non_loopback_address_without_a_token_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"not a loopback address, without a token.*Pass token="):
        dashboard(address="0.0.0.0:8000")
    assert dashboard(address="0.0.0.0:8000", token=ADMIN).name == "dashboard"
    assert dashboard(address="[::1]:0").name == "dashboard"
    with pytest.raises(ValueError, match="port 'x' is not a number"):
        dashboard(address="127.0.0.1:x")
    with pytest.raises(TokenError, match=r"token= must be a string of at least 8 characters \(got 5 character\(s\)\)"):
        dashboard(token="short")
    with pytest.raises(TokenError, match="readonly_token= must be a string of at least 8 characters") as info:
        dashboard(token=ADMIN, readonly_token="tiny")
    assert "tiny" not in str(info.value)
    assert info.value.render({"token": "ADMIN_TOKEN", "readonly_token": "READ_TOKEN"}).startswith(
        "the dashboard's READ_TOKEN must be a string of at least 8 characters"
    )
    with pytest.raises(TokenError, match="the dashboard's token= and readonly_token= must differ"):
        dashboard(token=ADMIN, readonly_token=ADMIN)


async def test_cross_site_posts_are_refused_and_the_dashboards_own_form_is_accepted() -> None:
    async with hosted() as (_tree, jobs, url), client(url) as http:
        job_id = await dead_job(jobs)
        page = await http.get(f"/jobs/{job_id}")
        csrf = http.cookies["supervisors_csrf"]
        assert f'name="csrf" value="{csrf}"' in page.text
        form = {"csrf": csrf}
        evil = await http.post(f"/jobs/{job_id}/retry", data=form, headers={"origin": "http://evil.example"})
        fetch = await http.post(f"/jobs/{job_id}/retry", data=form, headers={"sec-fetch-site": "cross-site"})
        forged = await http.post(f"/jobs/{job_id}/retry", data={"csrf": "guess"})
        bare_api = await http.post(f"/api/jobs/{job_id}/retry")
        assert [r.status_code for r in (evil, fetch, forged, bare_api)] == [403, 403, 403, 403]
        assert "Origin http://evil.example" in evil.text
        assert "CSRF" in forged.text
        assert (await jobs.get(job_id)).state is JobState.DEAD
        own = await http.post(f"/jobs/{job_id}/retry", data=form, headers={"origin": url})
        assert own.status_code == 303
        assert own.headers["location"].startswith(f"/jobs/{job_id}?")
        assert (await jobs.wait_finished(job_id)).attempt == 2


async def test_a_read_only_token_reads_but_cannot_act_and_no_token_is_refused() -> None:
    async with hosted(token=ADMIN, readonly_token=READER) as (_tree, jobs, url):
        job_id = await dead_job(jobs)
        async with client(url) as anonymous, client(url, READER) as reader, client(url, ADMIN) as admin:
            assert (await anonymous.get("/api/jobs")).status_code == 401
            assert (await anonymous.get("/tree")).status_code == 303  # to the login form
            assert (await reader.get("/api/jobs")).status_code == 200
            refused = await reader.post(f"/api/jobs/{job_id}/retry")
            assert refused.status_code == 403
            assert "read-only" in refused.json()["error"]
            assert (await reader.post("/api/jobs/bulk/retry", params={"state": "dead"})).status_code == 403
            assert (await jobs.get(job_id)).state is JobState.DEAD
            assert "act-retry" not in (await reader.get(f"/jobs/{job_id}")).text  # no buttons for readers
            done = await admin.post(f"/api/jobs/{job_id}/retry")
            assert done.status_code == 200
            assert done.json()["ok"]
            assert (await anonymous.get("/healthz")).status_code == 200  # probes need no token


async def test_the_login_form_and_a_token_link_set_the_session_cookie() -> None:
    async with hosted(token=ADMIN) as (_tree, _jobs, url), client(url) as http:
        wrong = await http.post("/login?next=/jobs", data={"token": "nope-nope"})
        assert wrong.status_code == 401
        ok = await http.post("/login?next=/jobs", data={"token": ADMIN})
        assert (ok.status_code, ok.headers["location"]) == (303, "/jobs")
        assert (await http.get("/tree")).status_code == 200
    async with hosted(token=ADMIN) as (_tree, _jobs, url), client(url) as http:
        link = await http.get(f"/tree?token={ADMIN}&tz=UTC")
        assert (link.status_code, link.headers["location"]) == (303, "/tree?tz=UTC")
        assert (await http.get("/tree")).status_code == 200


async def test_unknown_ids_are_404_and_malformed_input_400_with_a_reason_never_a_traceback() -> None:
    async with hosted() as (_tree, _jobs, url), client(url, headers={"x-supervisors-client": "test"}) as http:
        answers = {
            "/api/jobs/999": await http.get("/api/jobs/999"),
            "/api/jobs?state=bogus": await http.get("/api/jobs", params={"state": "bogus"}),
            "/api/jobs?limit=x": await http.get("/api/jobs", params={"limit": "x"}),
            "/api/jobs?system=nope": await http.get("/api/jobs", params={"system": "nope"}),
            "POST /api/jobs/999/retry": await http.post("/api/jobs/999/retry"),
            "POST /api/jobs/1/explode": await http.post("/api/jobs/1/explode"),
            "POST /api/jobs/bulk/retry": await http.post("/api/jobs/bulk/retry"),
            "POST /api/queues/nope/pause": await http.post("/api/queues/nope/pause"),
            "POST /api/schedules/nope/trigger": await http.post("/api/schedules/nope/trigger"),
            "/jobs/999": await http.get("/jobs/999"),
            "/jobs?tz=Mars/Base": await http.get("/jobs", params={"tz": "Mars/Base"}),
        }
    statuses = {what: r.status_code for what, r in answers.items()}
    assert statuses == {
        "/api/jobs/999": 404, "/api/jobs?state=bogus": 400, "/api/jobs?limit=x": 400,
        "/api/jobs?system=nope": 404, "POST /api/jobs/999/retry": 404, "POST /api/jobs/1/explode": 404,
        "POST /api/jobs/bulk/retry": 400, "POST /api/queues/nope/pause": 404,
        "POST /api/schedules/nope/trigger": 404, "/jobs/999": 404, "/jobs?tz=Mars/Base": 400,
    }
    assert answers["/api/jobs?state=bogus"].json()["error"].startswith("'state': unknown job state 'bogus'")
    assert "unknown time zone 'Mars/Base'" in answers["/jobs?tz=Mars/Base"].text
    assert all("Traceback" not in r.text for r in answers.values())


async def test_an_unknown_address_or_method_is_answered_like_every_other_error() -> None:
    """A path no route serves is a 404 and a method a route does not take a 405 (with ``Allow``),
    in JSON under ``/api/`` and as a page elsewhere, naming what was asked: never plain text."""
    async with hosted() as (_tree, _jobs, url), client(url, headers={"x-supervisors-client": "test"}) as http:
        api = await http.get("/api/jobz")
        page = await http.get("/jobz")
        method = await http.delete("/api/jobs")
    assert (api.status_code, page.status_code, method.status_code) == (404, 404, 405)
    assert api.json() == {
        "error": "no such address: GET /api/jobz (the API's routes are listed at /api/openapi.json)",
        "status": 404,
    }
    assert page.headers["content-type"].startswith("text/html")
    assert "no such address: GET /jobz" in page.text
    reason, allowed = method.json()["error"].split("; it takes ")
    assert reason == "/api/jobs does not take DELETE"
    assert set(allowed.split(", ")) == set(method.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_a_misspelt_search_parameter_is_refused_and_a_bulk_action_with_one_touches_nothing() -> None:
    """An unknown query parameter or body key of the search API is a 400 naming it, never a filter
    silently dropped: a bulk delete with ``queue_name`` would otherwise delete every dead job."""
    async with hosted() as (_tree, jobs, url), client(url, headers={"x-supervisors-client": "test"}) as http:
        job_id = await dead_job(jobs)
        read = await http.get("/api/jobs", params={"state": "dead", "after": "2024-01-01"})
        bulk = await http.post("/api/jobs/bulk/delete", json={"state": "dead", "queue_name": "mail"})
        bulk_query = await http.post("/api/jobs/bulk/delete", params={"state": "dead", "queu": "mail"})
        unknown_action = await http.post("/api/jobs/bulk/explode", params={"state": "dead"})
        still_there = (await jobs.get(job_id)).state
    assert (read.status_code, bulk.status_code, bulk_query.status_code) == (400, 400, 400)
    assert read.json()["error"].startswith("unknown parameter 'after'; expected one of: state, queue, name")
    assert bulk.json()["error"].startswith("unknown key of the request body 'queue_name'; expected one of:")
    assert bulk_query.json()["error"].startswith("unknown parameter 'queu'")
    assert unknown_action.status_code == 404
    assert unknown_action.json()["error"] == (
        "unknown job action 'explode'; expected one of: retry, cancel, delete, requeue"
    )
    assert still_there is JobState.DEAD


# -- jobs, schedules, queues ----------------------------------------------------------------------


async def test_jobs_page_filters_and_pages_on_the_server_and_shows_a_jobs_attempts() -> None:
    async with hosted() as (_tree, jobs, url), client(url) as http:
        for n in range(3):
            await dead_job(jobs, n)
        await jobs.wait_finished(await jobs.enqueue("fine", Args(9)))
        first = (await http.get("/api/jobs", params={"state": "dead", "limit": 2})).json()
        assert [j["args"] for j in first["items"]] == [{"n": 2}, {"n": 1}]  # newest first
        assert first["previous"] is None
        page = (await http.get("/api/jobs", params={"state": "dead", "limit": 2, "cursor": first["next"]})).json()
        assert (page["total"], page["counts"]["dead"], page["counts"]["succeeded"]) == (3, 3, 1)
        assert [j["args"] for j in page["items"]] == [{"n": 0}]
        assert page["next"] is None
        back = (await http.get("/api/jobs", params={"state": "dead", "limit": 2, "cursor": page["previous"]})).json()
        assert back["items"] == first["items"]
        detail = (await http.get(f"/api/jobs/{page['items'][0]['id']}")).json()
        assert detail["errors"][0]["error"] == "ValueError: boom 0"
        assert "Traceback" in detail["errors"][0]["traceback"]
        html = (await http.get("/jobs", params={"state": "dead", "limit": 2})).text
        assert html.count('data-job="') == 2
        assert "2 shown of 3" in html
        assert 'rel="next">older</a>' in html
        assert "<svg" in html  # the last hour's chart
        stats = (await http.get("/api/stats")).json()
        assert sum(b["succeeded"] for b in stats["buckets"]) == 1
        assert sum(b["failed"] for b in stats["buckets"]) == 3


async def test_the_last_hours_chart_is_read_from_the_store_so_it_survives_a_restart_of_the_host(
    tmp_path: Path,
) -> None:
    """Jobs that ended under one host are counted in the chart of the next host on the same
    SQLite file: the chart is read from the store, not from the memory of a process."""
    path = tmp_path / "jobs.db"
    first = make_jobs(SQLiteStore(path))
    async with hosted(jobs=first):
        await dead_job(first)
        await first.wait_finished(await first.enqueue("fine", Args(2)))
    async with hosted(jobs=make_jobs(SQLiteStore(path))) as (_tree, _jobs, url), client(url) as http:
        stats = (await http.get("/api/stats")).json()
        page = (await http.get("/jobs")).text
    assert sum(b["succeeded"] for b in stats["buckets"]) == 1
    assert sum(b["failed"] for b in stats["buckets"]) == 1
    assert "<svg" in page


async def test_a_jobs_page_and_api_show_its_result_its_parent_and_its_continuations() -> None:
    """The job API and page show a succeeded job's result and link a parent and its
    continuations both ways."""
    async with hosted() as (_tree, jobs, url), client(url) as http:
        parent = await jobs.enqueue("fine", Args(7))
        child = await jobs.continue_with(parent, "fine", Args(8))
        await jobs.wait_finished(child)
        up = (await http.get(f"/api/jobs/{parent}")).json()
        down = (await http.get(f"/api/jobs/{child}")).json()
        assert (up["result"], up["continuations"], up["parent_id"]) == (7, [child], None)
        assert (down["result"], down["parent_id"], down["continue_on"]) == (8, parent, "success")
        page = (await http.get(f"/jobs/{parent}", params={"system": "jobs"})).text
        assert f'<a href="/jobs/{child}?system=jobs">job {child}</a>' in page
        assert '<pre class="result">7</pre>' in page
        page = (await http.get(f"/jobs/{child}", params={"system": "jobs"})).text
        assert f'<a href="/jobs/{parent}?system=jobs" class="parent">job {parent}</a> (runs on its success)' in page


async def test_a_jobs_page_and_api_show_its_priority_and_concurrency_key() -> None:
    """A job's priority is shown always, its concurrency key and limit when it has one."""
    async with hosted() as (_tree, jobs, url), client(url) as http:
        keyed = await jobs.enqueue("fine", Args(1), priority=-3, concurrency_key="user:9", concurrency_limit=2)
        plain = await jobs.enqueue("fine", Args(2))
        await jobs.wait_finished(keyed)
        await jobs.wait_finished(plain)
        api = (await http.get(f"/api/jobs/{keyed}")).json()
        assert (api["priority"], api["concurrency_key"], api["concurrency_limit"]) == (-3, "user:9", 2)
        page = (await http.get(f"/jobs/{keyed}", params={"system": "jobs"})).text
        assert '<dd class="priority">-3</dd>' in page
        assert '<dd class="concurrency">key <code>user:9</code>, at most 2 running at once</dd>' in page
        page = (await http.get(f"/jobs/{plain}", params={"system": "jobs"})).text
        assert '<dd class="priority">0</dd>' in page
        assert 'class="concurrency"' not in page


async def test_a_bulk_action_acts_on_everything_the_filter_matches_in_batches() -> None:
    """Bulk retry acts on every dead job of the filter; each one runs again."""
    async with hosted() as (_tree, jobs, url), client(url, headers={"x-supervisors-client": "test"}) as http:
        ids = [await dead_job(jobs, n) for n in range(5)]
        done = await http.post("/api/jobs/bulk/retry", json={"state": "dead", "queue": "default"})
        assert done.status_code == 200
        assert (done.json()["done"], done.json()["failed"]) == (5, 0)
        for job_id in ids:
            assert (await jobs.wait_finished(job_id)).attempt == 2
        from supervisors.dashboard import _views

        batched = await _views.bulk_action(jobs, "retry", JobQuery(states=[JobState.DEAD]), batch=2)
        assert batched["done"] == 5


async def test_every_time_is_shown_in_the_zone_the_user_picks_and_named() -> None:
    async with hosted() as (_tree, jobs, url), client(url) as http:
        job_id = await dead_job(jobs)
        default = (await http.get(f"/jobs/{job_id}")).text
        tokyo = await http.get(f"/jobs/{job_id}", params={"tz": "Asia/Tokyo"})
        later = (await http.get(f"/jobs/{job_id}")).text  # the choice is kept in a cookie
    assert re.search(r"\d\d:\d\d:\d\d UTC", default)
    assert re.search(r"\d\d:\d\d:\d\d JST", tokyo.text)
    assert "JST" in later
    assert '<option value="Asia/Tokyo" selected>' in tokyo.text


async def test_schedules_and_queues_are_listed_with_next_run_and_zone() -> None:
    async with hosted() as (_tree, _jobs, url), client(url) as http:
        schedules = (await http.get("/api/schedules")).json()["items"]
        queues = (await http.get("/api/queues")).json()["items"]
        page = (await http.get("/schedules")).text
    assert [(s["name"], s["cron"], s["tz"], s["job"]) for s in schedules] == [
        ("nightly", "0 3 * * *", "Europe/Paris", "fine")]
    assert schedules[0]["next_run"] is not None
    assert [(q["name"], q["concurrency"], q["paused"]) for q in queues] == [("default", 10, False)]
    assert "nightly" in page
    assert "0 3 * * *" in page


async def test_the_queues_page_and_api_show_rate_limits_and_paused_queues_that_no_host_runs() -> None:
    """A queue's rate limit is listed with it; a queue that is only paused or only rate-limited
    (a name no host runs, e.g. mistyped) is listed too, so that it is seen."""
    async with hosted() as (_tree, jobs, url), client(url) as http:
        await jobs.set_rate_limit("default", RateLimit(100, timedelta(minutes=1)))
        await jobs.pause_queue("defualt")
        queues = (await http.get("/api/queues")).json()["items"]
        page = (await http.get("/queues")).text
    assert [(q["name"], q["paused"], q["rate_limit"]) for q in queues] == [
        ("default", False, {"limit": 100, "per_seconds": 60.0}),
        ("defualt", True, None),
    ]
    assert '<td class="rate-limit">100 per 1m 0s</td>' in page
    assert '<td class="rate-limit">-</td>' in page


# -- the API document, live streams, stopping -----------------------------------------------------


async def test_every_route_of_the_openapi_document_answers_with_the_documented_status_and_shape() -> None:
    async with hosted() as (_tree, jobs, url), client(url, headers={"x-supervisors-client": "test"}) as http:
        doc = (await http.get("/api/openapi.json")).json()
        job_id = await dead_job(jobs)
        values = {"job_id": str(job_id), "name": "default", "action": None}
        checked = 0
        for path, methods in doc["paths"].items():
            for method, operation in methods.items():
                concrete = path
                for param in operation.get("parameters", []):
                    if param["in"] == "path":
                        value = values[param["name"]]
                        if value is None:
                            value = param["schema"]["enum"][0]
                        concrete = concrete.replace("{" + param["name"] + "}", value)
                if path.startswith("/api/schedules/"):
                    concrete = concrete.replace("/default/", "/nightly/")
                params = {"state": "dead"} if path == "/api/jobs/bulk/{action}" else {}
                answer = await http.request(method.upper(), concrete, params=params)
                assert str(answer.status_code) in operation["responses"], (method, concrete, answer.text)
                schema = operation["responses"][str(answer.status_code)]["content"]["application/json"]["schema"]
                if "$ref" in schema:
                    schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
                body = answer.json()
                assert set(schema.get("required", ())) <= set(body), (method, concrete, body)
                checked += 1
    assert checked == len([m for ms in doc["paths"].values() for m in ms]) >= 10


async def test_a_crash_reaches_a_live_page_as_a_tree_notice() -> None:
    seen: list[str] = []
    async with (
        hosted() as (tree, _jobs, url), client(url) as http, http.stream("GET", "/events") as stream,
        aclosing(stream.aiter_lines()) as lines,
    ):
        assert await anext(lines) == "retry: 1000"
        assert await anext(lines) == "event: hello"
        tree.inject_crash("worker")
        async for line in lines:  # read to the end: the stop below ends the stream
            seen.append(line)
            if line == "event: tree":
                tree.request_stop()
    assert seen.index("event: tree") < seen.index("event: shutdown")


async def test_stopping_the_tree_ends_the_live_streams_so_the_server_stops_within_its_grace() -> None:
    stopped: list[ChildStopped] = []
    spec = Supervisor(name="app", children=[dashboard(address="127.0.0.1:0", grace=3600)])
    def listen(event: object) -> None:
        if isinstance(event, ChildStopped):
            stopped.append(event)

    async with open_tree(spec, listeners=[listen]) as tree:
        url = (await tree.ref("dashboard").call(ServerUrls()))[0]
        tail: list[str] = []
        async with (
            client(url) as http, http.stream("GET", "/events") as stream, aclosing(stream.aiter_lines()) as lines,
        ):
            assert await anext(lines) == "retry: 1000"
            tree.request_stop()
            tail.extend([line async for line in lines])
        await tree.wait_stopped()
    assert "event: shutdown" in tail
    assert [(e.path, e.how) for e in stopped] == [("app/dashboard", "graceful")]


def test_the_dashboard_without_its_extra_names_the_extra_to_install() -> None:
    code = "import sys; sys.modules['jinja2'] = None; import supervisors.dashboard"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "pip install 'trio-supervisors[dashboard]'" in result.stderr
    base = subprocess.run([sys.executable, "-c", "import sys; sys.modules['jinja2'] = None; import supervisors, "
                           "supervisors.jobs, supervisors.web"], capture_output=True, text=True, check=False)
    assert base.returncode == 0, base.stderr


def test_a_dashboard_refuses_duplicate_job_system_names_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="distinct names"):
        Dashboard([make_jobs(), make_jobs()])
    with pytest.raises(ValueError, match="unknown time zone 'Nowhere'"):
        Dashboard(time_zone="Nowhere")


def test_the_dashboard_page_documents_every_public_name_metric_and_api_route() -> None:
    from pathlib import Path

    import supervisors.dashboard
    from supervisors.dashboard._openapi import openapi_document

    text = (Path(__file__).parent.parent / "docs" / "dashboard.md").read_text(encoding="utf-8")
    missing = [name for name in supervisors.dashboard.__all__ if f"`{name}" not in text]
    missing += [name for name, _, _ in METRICS if f"`{name}`" not in text]
    missing += [path for path in openapi_document()["paths"]
                if path != "/api/openapi.json" and path.split("{")[0].rstrip("/") not in text]
    assert not missing, f"docs/dashboard.md does not mention {missing}"


HAS_OPERATIONS = all(callable(getattr(JobSystem, name, None)) for name in (
    "cancel", "delete", "requeue", "pause_queue", "resume_queue", "trigger", "pause_schedule", "resume_schedule"))
needs_operations = pytest.mark.skipif(
    not HAS_OPERATIONS, reason="this job system has no cancel/delete/requeue/pause/trigger operations")


@needs_operations
async def test_cancel_requeue_and_delete_one_job_through_the_api() -> None:
    async with hosted() as (_tree, jobs, url), client(url, headers={"x-supervisors-client": "t"}) as http:
        await jobs.pause_queue("default")  # type: ignore[attr-defined]
        waiting = await jobs.enqueue("fine", Args(1))
        cancelled = await http.post(f"/api/jobs/{waiting}/cancel")
        assert cancelled.json() == {"id": waiting, "action": "cancel", "ok": True, "state": "cancelled"}
        again = await http.post(f"/api/jobs/{waiting}/cancel")
        assert again.status_code == 409
        assert (await http.post(f"/api/jobs/{waiting}/requeue")).status_code == 200
        assert (await jobs.get(waiting)).state is JobState.ENQUEUED
        assert (await http.post(f"/api/jobs/{waiting}/delete")).status_code == 200
        assert (await http.get(f"/api/jobs/{waiting}")).status_code == 404
        page = (await http.get("/api/jobs")).json()
        assert page["actions"] == ["retry", "cancel", "delete", "requeue"]


@needs_operations
async def test_pause_and_resume_a_queue_and_trigger_pause_and_resume_a_schedule() -> None:
    async with hosted() as (_tree, jobs, url), client(url, headers={"x-supervisors-client": "t"}) as http:
        assert (await http.post("/api/queues/default/pause")).json()["ok"]
        assert [q["paused"] for q in (await http.get("/api/queues")).json()["items"]] == [True]
        assert (await http.post("/api/queues/default/resume")).status_code == 200
        assert [q["paused"] for q in (await http.get("/api/queues")).json()["items"]] == [False]
        triggered = (await http.post("/api/schedules/nightly/trigger")).json()
        assert (await jobs.wait_finished(triggered["job_id"])).state is JobState.SUCCEEDED
        assert (await http.post("/api/schedules/nightly/pause")).status_code == 200
        assert [s["paused"] for s in (await http.get("/api/schedules")).json()["items"]] == [True]
        assert (await http.post("/api/schedules/nightly/resume")).status_code == 200
        assert [s["paused"] for s in (await http.get("/api/schedules")).json()["items"]] == [False]


# -- progress and log of jobs; the fire ledger of schedules -----------------------------------------


async def test_a_job_page_shows_live_progress_and_the_log_of_each_attempt() -> None:
    """While a job runs, its page, partial and API show its progress and log; the final report
    replaces them when it ends."""
    from supervisors.jobs import current_job

    registry = JobRegistry()
    release = trio.Event()

    @registry.job()
    async def copy() -> None:
        job = current_job()
        job.progress(0.4, "copied 40 files")
        job.log("copied a.txt")
        await release.wait()
        job.progress(1.0, "copied 100 files")

    jobs = JobSystem(store=InMemoryStore(), registry=registry)
    async with hosted(jobs=jobs) as (_tree, _jobs, url), client(url) as http:
        job_id = await jobs.enqueue("copy")
        with trio.fail_after(30):
            while not (await http.get(f"/api/jobs/{job_id}/progress")).json()["attempts"]:  # noqa: ASYNC110 - written by the runner
                await trio.sleep(0.01)
        running = (await http.get(f"/api/jobs/{job_id}/progress")).json()
        page = (await http.get(f"/jobs/{job_id}")).text
        release.set()
        await jobs.wait_finished(job_id)
        partial = (await http.get(f"/partials/jobs/{job_id}/progress")).text
        job = (await http.get(f"/api/jobs/{job_id}")).json()
        missing = await http.get(f"/api/jobs/{job_id + 1}/progress")
    (attempt,) = running["attempts"]
    assert (attempt["attempt"], attempt["fraction"], attempt["message"]) == (1, 0.4, "copied 40 files")
    assert [line["text"] for line in attempt["lines"]] == ["copied a.txt"]
    assert 'data-live="job"' in page
    assert f'data-partial="/partials/jobs/{job_id}/progress?system=jobs"' in page
    assert "copied 40 files" in page
    assert "copied a.txt" in page
    assert "copied 100 files" in partial
    assert "100%" in partial
    assert job["progress"][0]["fraction"] == 1.0
    assert missing.status_code == 404


async def test_the_schedules_page_shows_the_last_result_policies_and_fire_ledger() -> None:
    """After a trigger, the schedules page and API show the last outcome and run, the policies
    in words and the ledger entry with its reason; an unknown schedule's ledger is 404."""
    async with hosted() as (_tree, jobs, url), client(url) as http:
        job_id = await jobs.trigger("nightly")
        await jobs.wait_finished(job_id)
        (item,) = (await http.get("/api/schedules")).json()["items"]
        ledger = (await http.get("/api/schedules/nightly/ledger", params={"limit": 5})).json()
        page = (await http.get("/schedules")).text
        unknown = await http.get("/api/schedules/weekly/ledger")
    assert (item["last"]["outcome"], item["last_fired"]["job_id"], item["last_fired_state"]) == (
        "fired", job_id, "succeeded")
    assert item["dst_policy"].startswith("Europe/Paris: cron rules")
    assert [(e["outcome"], e["job_id"]) for e in ledger["items"]] == [("fired", job_id)]
    assert "triggered by hand" in ledger["items"][0]["reason"]
    assert "triggered by hand" in page
    assert "no overlap: an occurrence is skipped while a previous run is unfinished" in page
    assert f"job {job_id}</a> succeeded" in page
    assert unknown.status_code == 404


async def test_the_dashboard_logs_the_address_it_really_listens_on(caplog: pytest.LogCaptureFixture) -> None:
    """With port 0, the logged address carries the port the system chose, as `ServerUrls` does."""
    caplog.set_level(logging.INFO, logger="supervisors.dashboard")
    async with hosted() as (_, _, url):
        assert not url.endswith(":0")
    assert f"dashboard of tree 'app' on {url}/" in caplog.messages
