"""The fire ledger of recurring schedules, as running schedulers write it, and their policies."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import trio
from trio.testing import MockClock

from supervisors import Supervisor, Tree, open_tree
from supervisors.jobs import (
    FireOutcome,
    InMemoryStore,
    JobRegistry,
    JobState,
    JobSystem,
    Misfire,
    Recurring,
    TrioWallClock,
)

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]
START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def registry(run_for: float = 0.0) -> JobRegistry:
    reg = JobRegistry()

    @reg.job()
    async def tick() -> None:
        await trio.sleep(run_for)

    return reg


def outcomes(entries: tuple[object, ...]) -> list[tuple[float, str]]:
    return [
        (e.fire_time.timestamp() - START, e.outcome.value)  # type: ignore[attr-defined]
        for e in reversed(entries)
    ]


async def test_an_overlapping_occurrence_is_skipped_and_says_which_run_held_it(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Every minute, a job that runs 90 s: every other occurrence is SKIPPED naming the run."""
    jobs = JobSystem(
        store=InMemoryStore(), registry=registry(90.0), clock=wall,
        recurring=[Recurring(name="minutely", cron="* * * * *", job="tick")],
    )  # fmt: skip
    async with running(jobs):
        await trio.sleep(4 * 60 + 30)
        entries = await jobs.ledger("minutely")
    assert outcomes(entries) == [
        (60, "fired"), (120, "skipped"), (180, "fired"), (240, "skipped"),
    ]  # fmt: skip
    fired, skipped = entries[-1], entries[-2]
    assert skipped.job_id == fired.job_id
    assert f"job {fired.job_id} of this schedule is still unfinished" in skipped.reason
    assert skipped.host == fired.host == jobs._core.owner


async def test_occurrences_missed_while_down_are_in_the_ledger_with_the_reason(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """After three hours down, a run_once hourly schedule records two MISSED occurrences and
    the latest FIRED as caught up."""
    store = InMemoryStore()
    await store.fire("hourly", expected=None, cursor=START - 3 * 3600, jobs=[], exclusive=False, now=START)
    jobs = JobSystem(
        store=store, registry=registry(), clock=wall,
        recurring=[Recurring(name="hourly", cron="30 * * * *", job="tick", misfire=Misfire.RUN_ONCE)],
    )  # fmt: skip
    async with running(jobs):
        await trio.sleep(60)
        entries = await jobs.ledger("hourly")
    assert outcomes(entries) == [(-9000, "missed"), (-5400, "missed"), (-1800, "fired")]
    assert "no scheduler was running" in entries[-1].reason
    assert "misfire policy run_once ran once as the latest" in entries[-1].reason
    assert "caught up" in entries[0].reason


async def test_two_schedulers_on_one_store_fire_once_and_the_other_records_a_duplicate(
    autojump_clock: MockClock, wall: TrioWallClock
) -> None:
    """Two job systems on one store race for each occurrence: one FIRED entry per occurrence,
    and a DEDUPLICATED entry by the other host naming the same job."""
    store = InMemoryStore()
    systems = [
        JobSystem(
            store=store, registry=registry(), clock=wall, name=f"jobs{i}",
            recurring=[Recurring(name="every5", cron="*/5 * * * *", job="tick")],
        )
        for i in (1, 2)
    ]
    tree = Supervisor(name="app", children=[s.child_spec() for s in systems])
    async with open_tree(tree):
        await trio.sleep(11 * 60)
        entries = await systems[0].ledger("every5")
    by_time: dict[float, list[tuple[str, int | None, str]]] = {}
    for e in entries:
        by_time.setdefault(e.fire_time.timestamp() - START, []).append((e.outcome.value, e.job_id, e.host))
    assert sorted(by_time) == [300, 600]
    owners = {s._core.owner for s in systems}
    for found in by_time.values():
        assert sorted(outcome for outcome, _, _ in found) == ["deduplicated", "fired"]
        assert {job_id for _, job_id, _ in found} != {None}
        assert len({job_id for _, job_id, _ in found}) == 1
        assert {host for _, _, host in found} == owners
    assert len(await store.list(limit=100)) == 2


async def test_the_ledger_is_trimmed_to_keep_ledger_entries(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """The pruning pass keeps the newest ``keep_ledger`` entries per schedule."""
    jobs = JobSystem(
        store=InMemoryStore(), registry=registry(), clock=wall, keep_ledger=3,
        recurring=[Recurring(name="minutely", cron="* * * * *", job="tick")],
    )  # fmt: skip
    async with running(jobs):
        await trio.sleep(10 * 60 + 30)
        entries = await jobs.ledger("minutely")
    assert [t for t, _ in outcomes(entries)] == [480, 540, 600]


async def test_schedules_state_their_policies_next_and_last_run(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """`schedules` gives cron, time zone, policies in words, next run, last run and its state."""
    jobs = JobSystem(
        store=InMemoryStore(), registry=registry(), clock=wall,
        recurring=[
            Recurring(name="nightly", cron="30 2 * * *", tz="Europe/Paris", job="tick",
                      misfire=Misfire.SKIP, misfire_grace=120.0, overlap=True),
            Recurring(name="minutely", cron="* * * * *", job="tick"),
        ],
    )  # fmt: skip
    async with running(jobs):
        await trio.sleep(90)
        await jobs.pause_schedule("nightly")
        minutely, nightly = await jobs.schedules()
    assert (nightly.name, nightly.cron, nightly.tz, nightly.paused) == (
        "nightly", "30 2 * * *", "Europe/Paris", True,
    )  # fmt: skip
    assert nightly.last is None
    assert nightly.next_run is not None
    assert nightly.next_run.timestamp() == START + 1.5 * 3600  # 02:30 in Paris is 01:30 UTC
    assert nightly.overlap_policy.startswith("overlap allowed")
    assert "skip" in nightly.catch_up_policy
    assert "120 s" in nightly.catch_up_policy
    assert "clocks go back" in nightly.dst_policy
    assert minutely.last_run is not None
    assert minutely.last_run.fire_time.timestamp() == START + 60
    assert minutely.last_run_state is JobState.SUCCEEDED
    assert minutely.next_run is not None
    assert minutely.next_run.timestamp() == START + 120
    assert minutely.dst_policy == "UTC has no daylight-saving changes"
    assert minutely.last is not None
    assert minutely.last.outcome is FireOutcome.FIRED
    spec = jobs.recurring[0]
    assert (spec.overlap_policy, spec.catch_up_policy, spec.dst_policy) == (
        nightly.overlap_policy, nightly.catch_up_policy, nightly.dst_policy,
    )  # fmt: skip
