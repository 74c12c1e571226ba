"""The dashboard's security rules not shown elsewhere (docs/dashboard.md "Security"), one test each."""

from __future__ import annotations

import inspect

import pytest
from _dashboard import ADMIN, READER, client, hosted

from supervisors import Secret
from supervisors.dashboard import Dashboard, dashboard
from supervisors.web import ServerUrls


async def test_the_default_address_is_loopback_only() -> None:
    """Without ``address=``, the dashboard listens on 127.0.0.1:8000 (this machine only)."""
    assert inspect.signature(dashboard).parameters["address"].default == "127.0.0.1:8000"
    async with hosted() as (tree, _jobs, _url):
        urls = await tree.ref("dashboard").call(ServerUrls())
    assert all(u.startswith("http://127.0.0.1:") for u in urls)


async def test_with_tokens_metrics_and_every_api_route_need_one_and_the_probes_do_not() -> None:
    """With tokens set, /metrics and the API (hosts and config included) answer 401 without a
    token and 200 with the read-only one; /healthz and /readyz answer without a token."""
    async with (
        hosted(token=ADMIN, readonly_token=READER) as (_tree, _jobs, url),
        client(url) as anonymous, client(url, READER) as reader,
    ):
        guarded = ["/metrics", "/api/tree", "/api/jobs", "/api/hosts", "/api/config", "/api/stats", "/events"]
        refused = {path: (await anonymous.get(path)).status_code for path in guarded}
        allowed = {path: (await reader.get(path)).status_code for path in guarded if path != "/events"}
        probes = {path: (await anonymous.get(path)).status_code for path in ("/healthz", "/readyz")}
    assert refused == dict.fromkeys(guarded, 401)
    assert allowed == {path: 200 for path in guarded if path != "/events"}
    assert probes == {"/healthz": 200, "/readyz": 200}


async def test_a_wrong_token_is_told_apart_from_a_missing_one() -> None:
    """401 either way, but a token that matches neither of the dashboard's says so, rather than
    asking for a token the client did send."""
    async with (
        hosted(token=ADMIN, readonly_token=READER) as (_tree, _jobs, url),
        client(url) as anonymous, client(url, "not-the-right-token") as wrong,
    ):
        missing = await anonymous.get("/api/tree")
        mistaken = await wrong.get("/api/tree")
    assert (missing.status_code, mistaken.status_code) == (401, 401)
    assert missing.json()["error"].startswith("a token is required")
    assert mistaken.json()["error"].startswith("the token sent is not one of this dashboard's tokens")


async def test_the_login_cookie_is_http_only_and_same_site_and_login_never_redirects_off_site() -> None:
    """The session cookie cannot be read by scripts nor sent across sites; a ``next`` that
    leaves the dashboard (``//evil.example``, ``https://...``) goes to the tree instead."""
    async with hosted(token=ADMIN) as (_tree, _jobs, url), client(url) as http:
        answers = [await http.post("/login", params={"next": target}, data={"token": ADMIN})
                   for target in ("//evil.example/x", "https://evil.example/x", "/jobs")]
    assert [a.headers["location"] for a in answers] == ["/tree", "/tree", "/jobs"]
    cookie = answers[-1].headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


async def test_an_unexpected_error_is_500_without_a_traceback_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that fails unexpectedly answers 500 with a one-line reason; the traceback goes
    to the host's log, never to the client."""
    async with hosted() as (_tree, jobs, url), client(url) as http:

        async def broken(**_: object) -> None:
            raise RuntimeError("store exploded")

        jobs.counts = broken  # type: ignore[method-assign]
        api = await http.get("/api/jobs")
        page = await http.get("/jobs")
    assert (api.status_code, api.json()["error"]) == (500, "internal error (logged by the host)")
    assert page.status_code == 500
    assert all("Traceback" not in r.text and "store exploded" not in r.text for r in (api, page))
    assert "store exploded" in caplog.text


def test_the_admin_and_read_only_tokens_must_differ_and_a_secret_token_is_accepted() -> None:
    """The same token for both roles is refused; a `Secret` token works like a string."""
    with pytest.raises(ValueError, match="must differ"):
        Dashboard(token=ADMIN, readonly_token=Secret(ADMIN))
    assert Dashboard(token=Secret(ADMIN)).access.role_of(ADMIN) is not None
