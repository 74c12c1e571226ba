"""The store contract for the progress and log lines of attempts; each test runs against every
store implementation."""

from __future__ import annotations

import pytest
from _contract import LEASE, T0, claim, new

from supervisors.jobs import JobNotFoundError, JobState, Store
from supervisors.jobs._reports import ProgressReport


def report(job_id: int, attempt: int = 1, *, version: int = 1, fraction: float | None = 0.5,
           message: str = "", lines: tuple[tuple[int, float, str], ...] = (),
           dropped: int = 0) -> ProgressReport:  # fmt: skip
    return ProgressReport(job_id, attempt, version, fraction, message, lines, dropped)


async def test_report_keeps_progress_and_lines_per_attempt(any_store: Store) -> None:
    """A running attempt's progress and log lines are stored under its attempt; the latest
    version of the progress wins, lines accumulate in order, a line sent twice is kept once."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    first = report(job_id, fraction=0.25, message="a", lines=((0, T0, "one"), (1, T0 + 1, "two")))
    assert await any_store.report([first], owner="a", now=T0 + 1) == frozenset()
    later = report(job_id, version=3, fraction=0.75, message="c", lines=((2, T0 + 2, "three"),))
    older = report(job_id, version=2, fraction=0.5, message="b", lines=((1, T0 + 1, "two"),))
    await any_store.report([later], owner="a", now=T0 + 3)
    await any_store.report([older], owner="a", now=T0 + 4)  # arrives late: progress stays
    (seen,) = await any_store.progress(job_id)
    assert (seen.attempt, seen.fraction, seen.message, seen.dropped) == (1, 0.75, "c", 0)
    assert [line.text for line in seen.lines] == ["one", "two", "three"]
    assert seen.lines[0].at.timestamp() == T0


async def test_report_is_fenced_by_the_attempt_and_owner(any_store: Store) -> None:
    """A report with a stale token (another owner, an old attempt, a finished job) is refused
    and stores nothing; the new attempt's reports are kept apart from the old one's."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.report([report(job_id, message="first run")], owner="a", now=T0)
    assert await any_store.report([report(job_id)], owner="b", now=T0) == {job_id}
    await any_store.requeue_expired(now=T0 + LEASE + 1)
    await claim(any_store, owner="b")
    stale = report(job_id, version=9, message="stale")
    assert await any_store.report([stale], owner="a", now=T0) == {job_id}
    assert await any_store.report([report(job_id, 2, message="second")], owner="b", now=T0) == set()
    await any_store.settle(owner="b", now=T0, succeeded=[(job_id, 2)])
    assert await any_store.report([report(job_id, 2, version=5)], owner="b", now=T0) == {job_id}
    progress = await any_store.progress(job_id)
    assert [(p.attempt, p.message) for p in progress] == [(1, "first run"), (2, "second")]


async def test_report_keeps_the_count_of_dropped_lines(any_store: Store) -> None:
    """The number of lines dropped over the cap is stored with the attempt's progress."""
    (job_id,) = await any_store.insert([new()], now=T0)
    await claim(any_store)
    await any_store.report([report(job_id, fraction=None, dropped=7)], owner="a", now=T0)
    (seen,) = await any_store.progress(job_id)
    assert (seen.fraction, seen.dropped) == (None, 7)


async def test_progress_goes_with_its_job(any_store: Store) -> None:
    """Deleting or pruning a job deletes its progress and log; an unknown job raises."""
    kept, pruned = await any_store.insert([new(), new()], now=T0)
    await claim(any_store)
    line = ((0, T0, "x"),)
    await any_store.report([report(kept, lines=line), report(pruned, lines=line)], owner="a", now=T0)
    await any_store.settle(owner="a", now=T0, succeeded=[(kept, 1), (pruned, 1)])
    assert await any_store.prune(state=JobState.SUCCEEDED, before=T0 + 1, limit=1) == 1
    await any_store.delete(pruned, now=T0)
    for job_id in (kept, pruned):
        with pytest.raises(JobNotFoundError):
            await any_store.progress(job_id)
    (other,) = await any_store.insert([new()], now=T0)
    assert await any_store.progress(other) == []
