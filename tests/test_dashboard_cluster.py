"""The dashboard's hosts and config pages (PostgreSQL hosts in tests/jobs/test_dashboard_postgres.py)."""

from __future__ import annotations

import logging
import os
import socket

import attrs
import pytest
from _dashboard import ADMIN, BlockingJob, client, hosted

from supervisors import Secret, load_settings
from supervisors.dashboard import Dashboard
from supervisors.jobs import InMemoryStore, JobRegistry, JobSystem

DB_PASSWORD, API_TOKEN, SIGNING_KEY = "pg-pass-5551", "tok-77331-plain", "sign-90210-secret"


@attrs.frozen
class Database:
    url: str
    password: Secret[str]


@attrs.frozen
class AppSettings:
    name: str
    workers: int
    api_token: str
    signing_key: Secret[str]
    database: Database


def app_settings() -> AppSettings:
    return load_settings(AppSettings, env_prefix="APP_", environ={
        "APP_NAME": "shop", "APP_WORKERS": "4", "APP_API_TOKEN": API_TOKEN, "APP_SIGNING_KEY": SIGNING_KEY,
        "APP_DATABASE__URL": f"postgresql://shop:{DB_PASSWORD}@db:5432/shop", "APP_DATABASE__PASSWORD": DB_PASSWORD,
    })


async def test_without_a_table_of_hosts_the_hosts_page_shows_this_host_alone_with_its_running_jobs() -> None:
    """With a store that keeps no table of hosts (SQLite, memory), the one host is this process,
    alive, with the jobs it runs now; the page says so."""
    slow = BlockingJob()
    jobs = JobSystem(store=InMemoryStore(), registry=slow.registry)
    async with hosted(jobs=jobs) as (_tree, _jobs, url), client(url) as http, slow.running(jobs) as job_id:
        body = (await http.get("/api/hosts")).json()
        page = (await http.get("/hosts")).text
    (entry,) = body["items"]
    assert (entry["system"], entry["store"], entry["hosts_table"]) == ("jobs", "InMemoryStore()", False)
    (host,) = entry["hosts"]
    assert (host["hostname"], host["pid"]) == (socket.gethostname(), os.getpid())
    assert (host["this"], host["alive"]) == (True, True)
    assert host["running"] == [job_id]
    assert host["singletons"] == []
    assert "One host: this one." in page
    assert "(this host)" in page
    assert f'href="/jobs/{job_id}?system=jobs"' in page


async def test_a_dashboard_without_job_systems_lists_this_process_as_its_one_host() -> None:
    """A dashboard that shows no job system still lists this process as the one host."""
    async with hosted(jobs=JobSystem(store=InMemoryStore(), registry=JobRegistry())) as (tree, _jobs, _url):
        board = Dashboard()
        board.bind(tree)
        try:
            from supervisors.dashboard._cluster import hosts_view

            view = await hosts_view(board.systems, board.tree)
        finally:
            board.unbind()
    assert [(e["system"], e["hosts_table"], [h["pid"] for h in e["hosts"]]) for e in view["items"]] == [
        (None, False, [os.getpid()])]
    assert view["items"][0]["hosts"][0]["started_at"] is not None


async def test_the_config_page_shows_the_effective_settings_and_never_a_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The config page and /api/config show the host, the dashboard, each job system's knobs and
    the application's settings; Secret fields, secret-named fields, URL passwords and the
    dashboard's tokens are '***' in the HTML, the JSON and the logs."""
    settings = app_settings()
    with caplog.at_level(logging.DEBUG):
        async with (
            hosted(token=Secret(ADMIN), readonly_token="reader-token-456", settings=settings)
            as (_tree, _jobs, url),
            client(url, ADMIN) as http,
        ):
            body = (await http.get("/api/config")).json()
            page = (await http.get("/config")).text
            raw = (await http.get("/api/config")).text
    for text in (page, raw, caplog.text):
        for secret in (DB_PASSWORD, API_TOKEN, SIGNING_KEY, ADMIN, "reader-token-456"):
            assert secret not in text
    assert body["settings"] == {
        "name": "shop", "workers": 4, "api_token": "***", "signing_key": "***",
        "database": {"url": "postgresql://shop:***@db:5432/shop", "password": "***"},
    }
    assert (body["dashboard"]["token"], body["dashboard"]["readonly_token"]) == ("***", "***")
    assert body["dashboard"]["time_zone"] == "UTC"
    (system,) = body["jobs"]
    assert (system["name"], system["store"], system["queues"]) == ("jobs", "InMemoryStore()", {"default": 10})
    assert (system["lease"], system["heartbeat"], system["poll_interval"]) == (30.0, 10.0, 1.0)
    assert system["retry"]["max_attempts"] == 20
    assert system["recurring"] == ["nightly"]
    assert body["host"]["pid"] == os.getpid()
    assert '<th>database.url</th><td><code>"postgresql://shop:***@db:5432/shop"</code>' in page
    assert '<tr data-key="lease"><th>lease</th><td><code>30.0</code>' in page


def test_masking_covers_secrets_in_nested_lists_and_unparseable_urls() -> None:
    """Secrets nested in lists and mappings are masked; a URL that does not parse is masked whole."""
    from supervisors.dashboard._cluster import mask

    assert mask({"peers": [{"password": "x1"}, Secret("x2")], "dsn": "http://[bad", "n": 3, "token": None}) == {
        "peers": [{"password": "***"}, "***"], "dsn": "***", "n": 3, "token": None}


def test_the_dashboard_refuses_settings_that_are_not_an_attrs_instance() -> None:
    """``settings=`` takes an attrs instance; anything else is refused with what was got."""
    with pytest.raises(ValueError, match="'settings' must be an attrs instance"):
        Dashboard(settings={"password": "x"})
