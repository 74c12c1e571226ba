"""The store contract for schedules: firing occurrences, triggers, pauses and the fire ledger;
each test runs against every store implementation."""

from __future__ import annotations

import pytest
from _contract import T0, new

from supervisors.jobs import JobState, NewJob, ScheduleNotFoundError, ScheduleSettings, Store
from supervisors.jobs._reports import FireOutcome


async def test_fire_inserts_occurrences_and_moves_the_cursor(any_store: Store) -> None:
    """Firing inserts the occurrence jobs and records the new cursor."""
    assert await any_store.cursor("s") is None
    jobs = [new(schedule="s", fire_time=T0 + i) for i in (1, 2)]
    ids = await any_store.fire("s", expected=None, cursor=T0 + 2, jobs=jobs, exclusive=False, now=T0)
    assert ids is not None
    assert len(ids) == 2
    assert await any_store.cursor("s") == T0 + 2
    job = await any_store.get(ids[0])
    assert job is not None
    assert job.schedule == "s"
    assert job.fire_time is not None
    assert job.fire_time.timestamp() == T0 + 1


async def test_fire_with_a_stale_cursor_changes_nothing(any_store: Store) -> None:
    """A second host firing from an old cursor is refused (compare-and-set)."""
    await any_store.fire("s", expected=None, cursor=T0, jobs=[], exclusive=False, now=T0)
    late = await any_store.fire(
        "s", expected=None, cursor=T0 + 5, jobs=[new(schedule="s", fire_time=T0 + 5)],
        exclusive=False, now=T0,
    )  # fmt: skip
    assert late is None
    assert await any_store.cursor("s") == T0
    assert (await any_store.counts()).total == 0


async def test_fire_never_inserts_an_occurrence_twice(any_store: Store) -> None:
    """The same (schedule, fire time) is inserted once even if fired again."""
    job = new(schedule="s", fire_time=T0 + 1)
    await any_store.fire("s", expected=None, cursor=T0 + 1, jobs=[job], exclusive=False, now=T0)
    again = await any_store.fire("s", expected=T0 + 1, cursor=T0 + 1, jobs=[job], exclusive=False, now=T0)
    assert again == []
    assert (await any_store.counts()).total == 1


async def test_fire_exclusive_skips_while_a_run_is_unfinished(any_store: Store) -> None:
    """With ``exclusive``, no occurrence is added while one of the schedule is unfinished."""
    first = [new(schedule="s", fire_time=T0 + 1)]
    await any_store.fire("s", expected=None, cursor=T0 + 1, jobs=first, exclusive=True, now=T0)
    second = [new(schedule="s", fire_time=T0 + 2)]
    ids = await any_store.fire("s", expected=T0 + 1, cursor=T0 + 2, jobs=second, exclusive=True, now=T0)
    assert ids == []
    assert await any_store.cursor("s") == T0 + 2


async def test_trigger_enqueues_a_recorded_schedule_now(any_store: Store) -> None:
    """A recorded schedule's job is inserted due now, marked with the schedule."""
    await any_store.define_schedules(
        [ScheduleSettings(name="nightly", job="report", queue="q", args="[1]", max_attempts=4)]
    )
    job_id, queue = await any_store.trigger("nightly", now=T0)
    job = await any_store.get(job_id)
    assert job is not None
    assert queue == "q"
    assert (job.name, job.args, job.max_attempts, job.schedule, job.state) == (
        "report", [1], 4, "nightly", JobState.ENQUEUED,
    )  # fmt: skip
    with pytest.raises(ScheduleNotFoundError, match=r"'weekly' .* \(recorded: 'nightly'\)"):
        await any_store.trigger("weekly", now=T0)


async def test_a_paused_schedule_fires_nothing_but_moves_on(any_store: Store) -> None:
    """`fire` of a paused schedule inserts nothing and moves the cursor; resuming fires again;
    the pause survives a new record of the schedule."""
    spec = ScheduleSettings(name="s", job="noop", queue="default", args="null", max_attempts=1)
    await any_store.define_schedules([spec])
    await any_store.pause_schedule("s", paused=True)
    await any_store.define_schedules([spec])
    assert await any_store.paused_schedules() == frozenset({"s"})
    job = new(schedule="s", fire_time=T0)
    ids = await any_store.fire("s", expected=None, cursor=T0, jobs=[job], exclusive=False, now=T0)
    assert ids == []
    assert await any_store.cursor("s") == T0
    await any_store.pause_schedule("s", paused=False)
    job = new(schedule="s", fire_time=T0 + 60)
    ids = await any_store.fire(
        "s", expected=T0, cursor=T0 + 60, jobs=[job], exclusive=False, now=T0 + 60
    )
    assert ids is not None
    assert len(ids) == 1
    with pytest.raises(ScheduleNotFoundError, match="'nope'"):
        await any_store.pause_schedule("nope", paused=True)


def _occurrences(*times: float) -> list[NewJob]:
    return [new(schedule="s", fire_time=t) for t in times]


async def _outcomes(store: Store) -> list[tuple[float, FireOutcome, int | None]]:
    entries = await store.ledger("s", limit=50)
    return [(e.fire_time.timestamp(), e.outcome, e.job_id) for e in reversed(entries)]


async def test_the_ledger_records_fired_and_missed_occurrences(any_store: Store) -> None:
    """Each occurrence fired gets a FIRED entry with its job; each noted fire time without a job
    a MISSED entry with the note as its reason; oldest first, by the recording host."""
    ids = await any_store.fire(
        "s", expected=None, cursor=T0 + 3, jobs=_occurrences(T0 + 3), exclusive=False, now=T0 + 3,
        owner="host-a", notes={T0 + 1: "it came due while no scheduler was running", T0 + 2: "x"},
    )  # fmt: skip
    assert ids is not None
    assert await _outcomes(any_store) == [
        (T0 + 1, FireOutcome.MISSED, None), (T0 + 2, FireOutcome.MISSED, None),
        (T0 + 3, FireOutcome.FIRED, ids[0]),
    ]  # fmt: skip
    newest = (await any_store.ledger("s", limit=3))[-1]
    assert (newest.reason, newest.host) == ("it came due while no scheduler was running", "host-a")


async def test_the_ledger_records_skips_for_overlap_and_pause(any_store: Store) -> None:
    """An occurrence blocked by an unfinished run is SKIPPED naming that run; one of a paused
    schedule is SKIPPED as paused; a held occurrence records nothing."""
    spec = ScheduleSettings(name="s", job="noop", queue="default", args="null", max_attempts=1)
    await any_store.define_schedules([spec])
    (first,) = await any_store.fire(
        "s", expected=None, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=True, now=T0
    ) or [0]
    await any_store.fire("s", expected=T0 + 1, cursor=T0 + 2, jobs=_occurrences(T0 + 2), exclusive=True, now=T0)
    await any_store.fire(
        "s", expected=T0 + 2, cursor=T0 + 3, jobs=_occurrences(T0 + 3), exclusive=True, now=T0, hold=True
    )  # fmt: skip
    await any_store.pause_schedule("s", paused=True)
    await any_store.fire("s", expected=T0 + 2, cursor=T0 + 4, jobs=_occurrences(T0 + 4), exclusive=False, now=T0)
    assert await _outcomes(any_store) == [
        (T0 + 1, FireOutcome.FIRED, first), (T0 + 2, FireOutcome.SKIPPED, first),
        (T0 + 4, FireOutcome.SKIPPED, None),
    ]  # fmt: skip
    entries = await any_store.ledger("s")
    assert "paused" in entries[0].reason
    assert f"job {first} of this schedule is still unfinished" in entries[1].reason


async def test_the_ledger_records_deduplicated_occurrences(any_store: Store) -> None:
    """A host whose compare-and-set lost records DEDUPLICATED for the occurrences the winner
    enqueued, naming the winner's job; so does an occurrence whose job exists already."""
    (won,) = await any_store.fire(
        "s", expected=None, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=False, now=T0,
        owner="host-a",
    ) or [0]  # fmt: skip
    lost = await any_store.fire(
        "s", expected=None, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=False, now=T0,
        owner="host-b",
    )  # fmt: skip
    assert lost is None
    await any_store.fire("s", expected=T0 + 1, cursor=T0 + 1, jobs=_occurrences(T0 + 1), exclusive=False, now=T0)
    assert await _outcomes(any_store) == [
        (T0 + 1, FireOutcome.FIRED, won), (T0 + 1, FireOutcome.DEDUPLICATED, won),
        (T0 + 1, FireOutcome.DEDUPLICATED, won),
    ]  # fmt: skip
    assert (await any_store.ledger("s"))[1].host == "host-b"


async def test_a_trigger_is_in_the_ledger_and_the_ledger_of_an_unknown_schedule_raises(
    any_store: Store,
) -> None:
    """A run triggered by hand is a FIRED entry saying so; an unrecorded schedule raises."""
    spec = ScheduleSettings(name="s", job="noop", queue="default", args="null", max_attempts=1)
    await any_store.define_schedules([spec])
    assert await any_store.ledger("s") == []
    job_id, _queue = await any_store.trigger("s", now=T0, owner="client")
    (entry,) = await any_store.ledger("s")
    assert (entry.outcome, entry.job_id, entry.host) == (FireOutcome.FIRED, job_id, "client")
    assert "triggered by hand" in entry.reason
    with pytest.raises(ScheduleNotFoundError, match="'nope'"):
        await any_store.ledger("nope")


async def test_trim_ledger_keeps_the_newest_entries_of_each_schedule(any_store: Store) -> None:
    """Retention keeps the newest ``keep`` entries per schedule."""
    for i in range(5):
        await any_store.fire(
            "s", expected=None if i == 0 else T0 + i - 1, cursor=T0 + i,
            jobs=_occurrences(T0 + i), exclusive=False, now=T0,
        )  # fmt: skip
    await any_store.fire("t", expected=None, cursor=T0, jobs=[new(schedule="t", fire_time=T0)],
                         exclusive=False, now=T0)  # fmt: skip
    assert await any_store.trim_ledger(keep=2) == 3
    assert [t for t, _, _ in await _outcomes(any_store)] == [T0 + 3, T0 + 4]
    assert len(await any_store.ledger("t")) == 1


async def test_schedules_lists_policies_next_and_last_runs(any_store: Store) -> None:
    """Recorded schedules come with their cron, time zone, policies in words, the next
    occurrence, the latest ledger entry and the state of the last run's job."""
    spec = ScheduleSettings(
        name="s", job="noop", queue="default", args="null", max_attempts=1,
        cron="0 * * * *", tz="Europe/Paris", misfire="skip", misfire_grace=30.0, overlap=False,
    )  # fmt: skip
    await any_store.define_schedules([spec])
    (job_id,) = await any_store.fire(
        "s", expected=None, cursor=T0, jobs=_occurrences(T0), exclusive=True, now=T0
    ) or [0]
    (info,) = await any_store.schedules(now=T0 + 1)
    assert (info.name, info.cron, info.tz, info.paused) == ("s", "0 * * * *", "Europe/Paris", False)
    assert info.next_run is not None
    assert info.next_run.timestamp() == (T0 // 3600 + 1) * 3600
    assert info.last_run is not None
    assert (info.last_run.job_id, info.last_run_state) == (job_id, JobState.ENQUEUED)
    assert "skip" in info.catch_up_policy
    assert "30 s" in info.catch_up_policy
    assert "skipped while a previous run is unfinished" in info.overlap_policy
    assert "clocks go back" in info.dst_policy
