"""The store contract for job search (`Store.search`); each test runs against every store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from supervisors.jobs import Cursor, JobQuery, JobQueryError, JobState, NewJob, Store

T0 = 1_700_000_000.0


def new(name: str = "noop", *, queue: str = "default", args: object = None, run_at: float = T0) -> NewJob:
    return NewJob(name=name, queue=queue, args=json.dumps(args), run_at=run_at, max_attempts=1)


async def ids_of(store: Store, **filters: object) -> list[int]:
    page = await store.search(JobQuery(**filters))  # type: ignore[arg-type]
    return [j.id for j in page.jobs]


async def test_search_returns_the_newest_jobs_first(any_store: Store) -> None:
    """Without filters, jobs come newest created first; ties in time by id, highest first."""
    older = await any_store.insert([new(), new()], now=T0)
    newer = await any_store.insert([new()], now=T0 + 1)
    assert await ids_of(any_store) == [newer[0], older[1], older[0]]


async def test_search_filters_by_one_state_or_several(any_store: Store) -> None:
    """``states`` keeps the jobs in any of the states given, newest first."""
    ids = await any_store.insert([new(), new(run_at=T0 + 60), new(), new(run_at=T0 + 60)], now=T0)
    await any_store.claim("default", 1, owner="a", now=T0, lease_until=T0 + 30)  # ids[0] runs
    assert await ids_of(any_store, states={JobState.SCHEDULED}) == [ids[3], ids[1]]
    assert await ids_of(any_store, states=["running", "enqueued"]) == [ids[2], ids[0]]
    assert await ids_of(any_store, states=["dead"]) == []


async def test_search_by_state_merges_the_newest_of_every_queue(any_store: Store) -> None:
    """A search by state alone walks each queue and merges their newest jobs into one page in
    the search's order, both ways, also past the walks one statement takes (many queues)."""
    from supervisors.jobs._sql import SEARCH_WALKS_PER_STATEMENT

    queues = [f"q{i:03d}" for i in range(SEARCH_WALKS_PER_STATEMENT + 5)]
    ids = [(await any_store.insert([new(queue=q)], now=T0 + i))[0] for i, q in enumerate(reversed(queues))]
    await any_store.insert([new(queue="q000", run_at=T0 + 900)], now=T0)  # scheduled: filtered out
    page = await any_store.search(JobQuery(states={JobState.ENQUEUED}, limit=3))
    assert [j.id for j in page.jobs] == ids[::-1][:3]
    assert page.next is not None
    second = await any_store.search(JobQuery(states={JobState.ENQUEUED}, limit=4, cursor=page.next))
    assert [j.id for j in second.jobs] == ids[::-1][3:7]
    assert second.previous is not None
    back = await any_store.search(JobQuery(states={JobState.ENQUEUED}, limit=3, cursor=second.previous))
    assert [j.id for j in back.jobs] == ids[::-1][:3]
    everything = await any_store.search(JobQuery(states={JobState.ENQUEUED}, limit=500))
    assert [j.id for j in everything.jobs] == ids[::-1]


async def test_search_filters_by_queue_and_by_name(any_store: Store) -> None:
    """``queue`` and ``name`` match exactly."""
    ids = await any_store.insert([new("mail", queue="a"), new("sms", queue="a"), new("mail", queue="b")], now=T0)
    assert await ids_of(any_store, queue="a") == [ids[1], ids[0]]
    assert await ids_of(any_store, name="mail") == [ids[2], ids[0]]
    assert await ids_of(any_store, name="mail", queue="b") == [ids[2]]
    assert await ids_of(any_store, name="mai") == []


async def test_search_filters_by_creation_time_from_since_until_before_until(any_store: Store) -> None:
    """``since`` is inclusive and ``until`` exclusive, on ``created_at``; datetimes and epoch
    seconds alike."""
    ids = [(await any_store.insert([new()], now=T0 + i))[0] for i in range(4)]
    assert await ids_of(any_store, since=T0 + 1, until=T0 + 3) == [ids[2], ids[1]]
    assert await ids_of(any_store, since=datetime.fromtimestamp(T0 + 3, UTC)) == [ids[3]]
    assert await ids_of(any_store, until=T0 + 1) == [ids[0]]


async def test_search_finds_a_substring_of_the_arguments_json(any_store: Store) -> None:
    """``args_contains`` matches the stored JSON text, case-sensitively."""
    ids = await any_store.insert([new(args={"email": "Ann@x.org"}), new(args={"email": "bob@x.org"})], now=T0)
    assert await ids_of(any_store, args_contains="Ann@") == [ids[0]]
    assert await ids_of(any_store, args_contains="ann@") == []
    assert await ids_of(any_store, args_contains='"email": "bob') == [ids[1]]
    assert await ids_of(any_store, args_contains="@x.org") == [ids[1], ids[0]]
    assert await ids_of(any_store, args_contains="%") == []  # no wildcards


async def test_search_compares_a_value_at_an_argument_path_as_json(any_store: Store) -> None:
    """``args_equal`` compares JSON values: numbers by value, strings, booleans and null by
    type too; nested keys with dots; a missing key or a non-object never matches."""
    ids = await any_store.insert(
        [
            new(args={"user_id": 42, "order": {"id": "A1"}}),
            new(args={"user_id": "42", "flag": True}),
            new(args={"user_id": 42.0, "flag": 1, "note": None}),
            new(args=[42]),
            new(args=None),
        ],
        now=T0,
    )
    assert await ids_of(any_store, args_equal={"user_id": 42}) == [ids[2], ids[0]]
    assert await ids_of(any_store, args_equal={"user_id": "42"}) == [ids[1]]
    assert await ids_of(any_store, args_equal={"order.id": "A1"}) == [ids[0]]
    assert await ids_of(any_store, args_equal={"flag": True}) == [ids[1]]
    assert await ids_of(any_store, args_equal={"flag": 1}) == [ids[2]]
    assert await ids_of(any_store, args_equal={"note": None}) == [ids[2]]
    assert await ids_of(any_store, args_equal={"user_id": 42, "flag": 1}) == [ids[2]]
    assert await ids_of(any_store, args_equal={"missing": None}) == []


async def test_search_combines_every_filter(any_store: Store) -> None:
    """Every filter given must hold at once."""
    ids = await any_store.insert(
        [
            new("mail", queue="a", args={"user_id": 7}),
            new("mail", queue="a", args={"user_id": 8}),
            new("mail", queue="b", args={"user_id": 7}),
            new("sms", queue="a", args={"user_id": 7}),
            new("mail", queue="a", args={"user_id": 7}, run_at=T0 + 60),
        ],
        now=T0,
    )
    found = await ids_of(
        any_store, states=["enqueued"], queue="a", name="mail", args_equal={"user_id": 7},
        args_contains="user", since=T0, until=T0 + 1,
    )  # fmt: skip
    assert found == [ids[0]]
    assert await ids_of(any_store, states=["enqueued", "scheduled"], queue="a", name="mail",
                        args_equal={"user_id": 7}) == [ids[4], ids[0]]  # fmt: skip


async def test_search_pages_forward_and_back_by_cursor(any_store: Store) -> None:
    """``next`` leads to older jobs until none is left; ``previous`` leads back to the same
    pages; the first page has no ``previous`` and the last no ``next``."""
    ids = await any_store.insert([new() for _ in range(7)], now=T0)
    newest_first = ids[::-1]
    first = await any_store.search(JobQuery(limit=3))
    assert [j.id for j in first.jobs] == newest_first[:3]
    assert first.previous is None
    assert first.next is not None
    second = await any_store.search(JobQuery(limit=3, cursor=first.next))
    assert [j.id for j in second.jobs] == newest_first[3:6]
    third = await any_store.search(JobQuery(limit=3, cursor=second.next))
    assert [j.id for j in third.jobs] == newest_first[6:]
    assert third.next is None
    assert third.previous is not None
    back = await any_store.search(JobQuery(limit=3, cursor=third.previous))
    assert [j.id for j in back.jobs] == newest_first[3:6]
    top = await any_store.search(JobQuery(limit=3, cursor=back.previous))
    assert [j.id for j in top.jobs] == newest_first[:3]
    assert top.previous is None


async def test_search_pages_stay_put_while_jobs_are_inserted(any_store: Store) -> None:
    """Paging through a filter while other tasks insert matching jobs reads every job that
    existed at the start exactly once, in order: new jobs are newer, so never on later pages."""
    before = await any_store.insert([new("mail", args={"n": i}) for i in range(25)], now=T0)
    seen: list[int] = []

    async def insert_meanwhile() -> None:
        for i in range(10):
            await any_store.insert([new("mail")], now=T0 + 1 + i)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(insert_meanwhile)
        cursor: str | None = None
        while True:
            page = await any_store.search(JobQuery(name="mail", limit=4, cursor=cursor))
            seen.extend(j.id for j in page.jobs)
            if page.next is None:
                break
            cursor = page.next
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in before] == before[::-1]
    assert seen[-len(before):] == before[::-1]  # once past the first page, only the old jobs


async def test_search_pages_past_jobs_leaving_the_filter(any_store: Store) -> None:
    """A job of an earlier page that changes state or is deleted does not move later pages."""
    ids = await any_store.insert([new() for _ in range(6)], now=T0)
    first = await any_store.search(JobQuery(states=["enqueued"], limit=2))
    for job in first.jobs:
        await any_store.cancel(job.id, now=T0)
    await any_store.delete(first.jobs[0].id, now=T0)
    second = await any_store.search(JobQuery(states=["enqueued"], limit=2, cursor=first.next))
    assert [j.id for j in second.jobs] == [ids[3], ids[2]]


async def test_a_search_page_returns_whole_jobs_with_their_errors(any_store: Store) -> None:
    """The jobs found carry their arguments and recorded errors, as `get` returns them."""
    (job_id,) = await any_store.insert([new(args={"a": [1, 2]})], now=T0)
    await any_store.claim("default", 1, owner="a", now=T0, lease_until=T0 + 30)
    from supervisors.jobs import Failure

    await any_store.settle(owner="a", now=T0, failed=[Failure(job_id, 1, "E: x", "tb", None)])
    (job,) = (await any_store.search(JobQuery(states=["dead"]))).jobs
    assert job == await any_store.get(job_id)


# -- JobQuery: validation (no store involved) -----------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"states": ["deadd"]}, "states", "unknown job state 'deadd'"),
        ({"since": T0 + 5, "until": T0}, "until", "must be after 'since'"),
        ({"since": T0, "until": T0}, "until", "must be after 'since'"),
        ({"cursor": "not-a-cursor"}, "cursor", "malformed cursor"),
        ({"cursor": "bjEuMA"}, "cursor", "malformed cursor"),
        ({"limit": 0}, "limit", "from 1 to 1000"),
        ({"limit": 1001}, "limit", "from 1 to 1000"),
        ({"args_equal": {"a b": 1}}, "args_equal", "malformed argument path 'a b'"),
        ({"args_equal": {"a": [1]}}, "args_equal", "must be a JSON scalar"),
        ({"since": datetime(2026, 1, 1)}, "since", "naive datetime"),
        ({"queue": 3}, "queue", "must be a string"),
    ],
)
def test_a_bad_query_is_refused_naming_the_field(fields: dict[str, object], field: str, says: str) -> None:
    """Unknown states, an inverted time range, a malformed cursor, a limit out of range, a bad
    argument path or value are refused with `JobQueryError` naming the field."""
    with pytest.raises(JobQueryError) as caught:
        JobQuery(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"{field!r}:")


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"since": "yesterday"}, "since", "expected an ISO 8601 time"),
        ({"until": "2026-01-01T10:00:00"}, "until", "has no UTC offset"),
        ({"args_match": ["user_id"]}, "args_match", "expected PATH=VALUE"),
        ({"limit": "ten"}, "limit", "must be an integer"),
        ({"states": "dead,nope"}, "states", "unknown job state 'nope'"),
    ],
)
def test_a_query_typed_as_text_is_refused_naming_the_field(fields: dict[str, object], field: str, says: str) -> None:
    """`JobQuery.from_text` refuses malformed times, matches and limits, naming the field."""
    with pytest.raises(JobQueryError) as caught:
        JobQuery.from_text(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert says in str(caught.value)


def test_a_query_typed_as_text_reads_states_times_and_json_values() -> None:
    """Comma-separated states, ISO times with offsets, and ``PATH=VALUE`` read as JSON when it
    parses (else as a string); `to_text` gives back what `from_text` reads."""
    query = JobQuery.from_text(
        states="dead, retrying", since="2026-12-02T10:00:00Z", until="2026-12-02T12:00:00+01:00",
        args_match=["user_id=42", "email=a@x.org", 'code="42"', "ok=true"], limit="20",
    )  # fmt: skip
    assert query.states == {JobState.DEAD, JobState.RETRYING}
    assert query.since == datetime(2026, 12, 2, 10, tzinfo=UTC).timestamp()
    assert query.until == datetime(2026, 12, 2, 11, tzinfo=UTC).timestamp()
    assert query.args_equal == (("user_id", 42), ("email", "a@x.org"), ("code", "42"), ("ok", True))
    assert query.limit == 20
    assert JobQuery.from_text(**query.to_text(), limit=20) == query  # type: ignore[arg-type]


def test_a_cursor_survives_its_text_form_exactly() -> None:
    """A cursor's text decodes to the same position, to the last bit of its time."""
    cursor = Cursor(created_at=T0 + 0.1234567891, id=12345, forward=False)
    assert Cursor.decode(cursor.encode()) == cursor
    assert JobQuery(cursor=cursor.encode()).cursor == cursor


async def test_job_client_and_job_system_search_alike(tmp_path: Path) -> None:
    """`JobClient.search` (sync) answers a query as `JobSystem.search` (async) does on the same
    file, page by page."""
    from supervisors.jobs import JobClient, JobRegistry, JobSystem, SQLiteStore

    path = tmp_path / "jobs.db"
    with JobClient(path) as client:
        for n in range(5):
            client.enqueue("mail", {"n": n}, queue="q")
        client.enqueue("sms", {"n": 9}, queue="q")
        system = JobSystem(store=SQLiteStore(path), registry=JobRegistry())
        try:
            query = JobQuery(name="mail", states=["enqueued"], limit=2)
            while True:
                ours, theirs = await system.search(query), client.search(query)
                assert ours == theirs
                if ours.next is None:
                    break
                query = JobQuery(name="mail", states=["enqueued"], limit=2, cursor=ours.next)
            assert [j.args for j in (await system.search()).jobs][:2] == [{"n": 9}, {"n": 4}]
        finally:
            await system.store.aclose()
