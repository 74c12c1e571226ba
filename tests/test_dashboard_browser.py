"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

The host runs in a thread with its own Trio loop; the test drives Playwright's sync API. Without
chromium or playwright these tests skip, unless ``SUPERVISORS_REQUIRE_BROWSER=1`` (CI sets it),
which makes the skip a failure. Screenshots are kept in ``test-artifacts/`` (not committed).
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from _dashboard import Worker, dead_job, make_jobs

from supervisors import ChildSpec, Secret, Supervisor, Tree, open_tree
from supervisors.dashboard import dashboard
from supervisors.jobs import JobState, JobSystem
from supervisors.web import ServerUrls

CHROMIUM = os.environ.get("SUPERVISORS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never 'playwright install')"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture
def browser_page() -> Iterator[Any]:
    missing = _browser_missing()
    if missing is not None:
        if os.environ.get("SUPERVISORS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SUPERVISORS_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            yield page
        finally:
            browser.close()


@attrs.frozen
class Host:
    url: str
    jobs: JobSystem
    tree: Tree
    token: trio.lowlevel.TrioToken

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run an async function in the host's loop, from the test's thread."""
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token)


@contextmanager
def hosted(**options: Any) -> Iterator[Host]:
    jobs = make_jobs()
    spec = Supervisor(name="app", children=[
        ChildSpec(name="worker", factory=Worker), jobs.child_spec(),
        dashboard(jobs, address="127.0.0.1:0", live_interval=0.5, **options),
    ])
    ready: queue.Queue[Host | BaseException] = queue.Queue()

    async def main() -> None:
        try:
            async with open_tree(spec) as tree:
                url = (await tree.ref("dashboard").call(ServerUrls()))[0]
                ready.put(Host(url, jobs, tree, trio.lowlevel.current_trio_token()))
                await tree.wait_stopping()
        except BaseException as exc:
            ready.put(exc)
            raise

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    host = ready.get()
    if isinstance(host, BaseException):
        raise host
    try:
        yield host
    finally:
        host.run_sync(host.tree.request_stop)
        thread.join()


def test_the_tree_page_shows_a_child_crash_and_restart_live(browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with hosted() as host:
        page.goto(host.url + "/tree")
        expect(page.locator("#live")).to_have_text("live")
        worker = page.locator('[data-path="app/worker"]').first
        expect(worker.locator(".restarts").first).to_have_text("0")
        host.run_sync(host.tree.inject_crash, "worker")
        expect(worker.locator(".restarts").first).to_have_text("1")  # no reload: the live stream
        expect(worker.locator(".last-error").first).to_contain_text("InjectedFault")
        expect(worker.locator(".state").first).to_have_text("running")
        page.screenshot(path=str(ARTIFACTS / "tree-after-crash.png"), full_page=True)


def test_a_dead_job_is_retried_with_a_click(browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with hosted() as host:
        job_id = host.run(dead_job, host.jobs)
        page.goto(f"{host.url}/jobs?state=dead")
        row = page.locator(f'tr[data-job="{job_id}"]')
        expect(row).to_contain_text("dead")
        page.screenshot(path=str(ARTIFACTS / "jobs-dead.png"), full_page=True)
        row.locator("button.act-retry").click()
        expect(page.locator("#message")).to_contain_text(f"retry: job {job_id} done")
        job = host.run(host.jobs.wait_finished, job_id)
        assert job.attempt == 2  # it ran again (and failed again: boom)
        page.screenshot(path=str(ARTIFACTS / "job-retried.png"), full_page=True)


@pytest.mark.skipif(not callable(getattr(JobSystem, "trigger", None)),
                    reason="JobSystem.trigger is not in this version of the job system")
def test_a_recurring_job_is_triggered_with_a_click(browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with hosted() as host:
        page.goto(host.url + "/schedules")
        page.locator('tr[data-schedule="nightly"] button.act-trigger').click()
        expect(page.locator("#message")).to_contain_text("trigger: schedule nightly done")
        page.screenshot(path=str(ARTIFACTS / "schedule-triggered.png"), full_page=True)

        async def succeeded() -> int:
            await host.jobs.wait_idle()
            return (await host.jobs.counts()).by_state[JobState.SUCCEEDED]

        assert host.run(succeeded) == 1


@attrs.frozen
class Settings:
    region: str
    api_key: Secret[str]


def test_the_hosts_and_config_pages_are_reached_from_the_menu_and_hide_secrets(browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with hosted(settings=Settings(region="eu-west", api_key=Secret("key-31337-hidden"))) as host:
        page.goto(host.url + "/tree")
        page.locator("nav a", has_text="Hosts").click()
        expect(page).to_have_url(host.url + "/hosts")
        row = page.locator("tr[data-host]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("(this host)")
        expect(row.locator(".host-state")).to_have_text("alive")
        expect(page.locator(".hosts-summary")).to_contain_text("One host: this one.")
        page.screenshot(path=str(ARTIFACTS / "hosts.png"), full_page=True)
        page.locator("nav a", has_text="Config").click()
        expect(page).to_have_url(host.url + "/config")
        expect(page.locator('tr[data-key="lease"] code')).to_have_text("30.0")
        expect(page.locator('#config-settings tr[data-key="region"] code')).to_have_text('"eu-west"')
        expect(page.locator('#config-settings tr[data-key="api_key"] code')).to_have_text('"***"')
        assert "key-31337-hidden" not in page.content()
        page.screenshot(path=str(ARTIFACTS / "config.png"), full_page=True)
