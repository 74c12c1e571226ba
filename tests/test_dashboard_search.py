"""Job search in the dashboard: the jobs page and ``/api/jobs`` search on the server, page by
cursor, and the bulk actions act on everything a search matches."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from _dashboard import Args, client, dead_job, hosted

from supervisors.dashboard import _views
from supervisors.jobs import JobQuery, JobState


async def test_the_jobs_api_searches_by_name_states_arguments_and_creation_time() -> None:
    """``/api/jobs`` filters by name, one or several states, a value at an argument path, a
    substring of the arguments and a creation time range, newest first; ``total`` is given
    only when the counts say it (states and queue)."""
    async with hosted() as (_tree, jobs, url), client(url) as http:
        dead = [await dead_job(jobs, n) for n in range(3)]
        fine = await jobs.enqueue("fine", Args(9))
        await jobs.wait_finished(fine)

        async def ids(**params: object) -> list[int]:
            answer = await http.get("/api/jobs", params=params)  # type: ignore[arg-type]
            assert answer.status_code == 200, answer.text
            return [j["id"] for j in answer.json()["items"]]

        assert await ids(name="fine") == [fine]
        assert await ids(state="dead,succeeded") == [fine, *dead[::-1]]
        assert await ids(state=["dead", "succeeded"]) == [fine, *dead[::-1]]
        assert await ids(args_match="n=1") == [dead[1]]
        assert await ids(args_match=["n=1", "n=2"]) == []
        assert await ids(args_contains='"n":2') == [dead[2]]
        created = [datetime.fromisoformat((await http.get(f"/api/jobs/{i}")).json()["created_at"]) for i in dead[:2]]
        middle = (created[0] + (created[1] - created[0]) / 2).isoformat()  # between dead[0] and dead[1]
        assert await ids(since=middle) == [fine, dead[2], dead[1]]
        assert await ids(until=middle, name="boom") == [dead[0]]
        tokyo = datetime.fromisoformat(middle).astimezone(ZoneInfo("Asia/Tokyo")).replace(tzinfo=None)
        assert await ids(since=tokyo.isoformat(), tz="Asia/Tokyo") == [fine, dead[2], dead[1]]
        page = (await http.get("/api/jobs", params={"name": "boom"})).json()
        assert page["total"] is None
        assert page["filter"]["name"] == "boom"
        assert (await http.get("/api/jobs", params={"state": "dead"})).json()["total"] == 3


async def test_the_jobs_api_refuses_a_bad_search_naming_the_parameter() -> None:
    """A malformed cursor, an inverted time range, a malformed argument match or an unknown
    state is a 400 whose message starts with the parameter's name."""
    async with hosted() as (_tree, _jobs, url), client(url) as http:
        for params, name in (
            ({"cursor": "garbage"}, "cursor"),
            ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
            ({"since": "last tuesday"}, "since"),
            ({"args_match": "n"}, "args_match"),
            ({"state": "dead,zombie"}, "state"),
            ({"limit": "0"}, "limit"),
        ):
            answer = await http.get("/api/jobs", params=params)
            assert answer.status_code == 400, params
            assert answer.json()["error"].startswith(f"{name!r}: "), answer.json()


async def test_the_jobs_page_searches_and_keeps_the_search_in_its_form_and_links() -> None:
    """The jobs page shows the jobs a search matches, fills the form with the search (times in
    the zone picked) and keeps the search in its older/newer links."""
    async with hosted() as (_tree, jobs, url), client(url) as http:
        dead = [await dead_job(jobs, n) for n in range(3)]
        created = (await http.get(f"/api/jobs/{dead[0]}")).json()["created_at"]
        params = {"name": "boom", "args_contains": '"n"', "limit": "1", "since": created, "tz": "Asia/Tokyo"}
        html = (await http.get("/jobs", params=params)).text
        assert f'data-job="{dead[2]}"' in html
        assert html.count('data-job="') == 1
        assert 'name="name" value="boom"' in html
        shown = datetime.fromisoformat(created).astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S")
        assert f'name="since" value="{shown}"' in html
        older = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        assert "name=boom" in older
        assert "cursor=" in older
        second = (await http.get(older)).text
        assert f'data-job="{dead[1]}"' in second
        assert 'rel="prev">newer</a>' in second


async def test_a_bulk_action_acts_on_everything_a_search_matches() -> None:
    """A bulk action through the API takes the search's parameters (query or JSON body) and
    acts on every job it matches, and on no other; in batches, each job once."""
    async with hosted() as (_tree, jobs, url), client(url, headers={"x-supervisors-client": "t"}) as http:
        dead = [await dead_job(jobs, n) for n in range(6)]
        done = await http.post("/api/jobs/bulk/delete", json={"name": "boom", "args_match": ["n=4"]})
        assert done.status_code == 200, done.text
        assert (done.json()["done"], done.json()["failed"]) == (1, 0)
        assert done.json()["filter"]["args_match"] == ["n=4"]
        left = [j.id for j in (await jobs.search(JobQuery(states=["dead"]))).jobs]
        assert left == [dead[5], dead[3], dead[2], dead[1], dead[0]]
        refused = await http.post("/api/jobs/bulk/delete", json={"cursor": "nope"})
        assert refused.status_code == 400
        batched = await _views.bulk_action(jobs, "delete", JobQuery(states=[JobState.DEAD], name="boom"), batch=2)
        assert (batched["done"], batched["failed"]) == (5, 0)
        assert (await jobs.search()).jobs == ()
