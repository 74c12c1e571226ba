"""Cron expressions, time zones and DST, misfire policies and recurring schedules."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import trio
from trio.testing import MockClock

from supervisors import Supervisor, Tree, open_tree
from supervisors.jobs import (
    Cron,
    CronError,
    InMemoryStore,
    JobArgumentsError,
    JobRegistry,
    JobState,
    JobSystem,
    Misfire,
    Recurring,
    TrioWallClock,
    UnknownJobError,
    current_job,
)
from supervisors.jobs._recurring import plan

Running = Callable[[JobSystem], AbstractAsyncContextManager[Tree]]
PARIS = ZoneInfo("Europe/Paris")


def ts(*args: int, tz: ZoneInfo | None = None) -> float:
    return datetime(*args, tzinfo=tz or UTC).timestamp()  # type: ignore[misc]


def local(t: float, tz: ZoneInfo = PARIS) -> datetime:
    return datetime.fromtimestamp(t, tz)


# --- cron expressions (pure) ---------------------------------------------------------------------


def test_five_field_expression_fires_at_the_given_minute() -> None:
    """``0 3 * * *`` fires daily at 03:00 in its time zone."""
    cron = Cron("0 3 * * *", "Europe/Paris")
    fires = cron.between(ts(2024, 1, 1), ts(2024, 1, 3), limit=10)
    assert [local(t).strftime("%d %H:%M") for t in fires] == ["01 03:00", "02 03:00"]


def test_six_field_expression_has_seconds_first() -> None:
    """A sixth field is read as seconds, placed first."""
    cron = Cron("*/20 * * * * *")
    assert cron.between(ts(2024, 1, 1), ts(2024, 1, 1) + 60, limit=10) == [ts(2024, 1, 1) + s for s in (20, 40, 60)]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("@daily", datetime(2024, 1, 2, tzinfo=UTC)),
        ("@midnight", datetime(2024, 1, 2, tzinfo=UTC)),
        ("@weekly", datetime(2024, 1, 7, tzinfo=UTC)),
        ("@monthly", datetime(2024, 2, 1, tzinfo=UTC)),
        ("@yearly", datetime(2025, 1, 1, tzinfo=UTC)),
        ("@annually", datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_aliases_mean_what_cron_means(alias: str, expected: datetime) -> None:
    """Each ``@`` alias fires at its conventional time."""
    assert Cron(alias).next_after(ts(2024, 1, 1)) == expected.timestamp()


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", r"'61 \* \* \* \*' is invalid: Bad minute"),
        ("* * *", "has 3 fields; expected 5 fields"),
        ("@reboot", "unknown alias '@reboot'"),
        ("0 0 31 2 *", "invalid"),
    ],
)
def test_malformed_cron_expression_says_what_is_wrong(expr: str, message: str) -> None:
    """A malformed expression raises CronError naming the expression and the problem."""
    with pytest.raises(CronError, match=message):
        Cron(expr)


def test_unknown_time_zone_is_refused() -> None:
    """An unknown zone name raises CronError naming it."""
    with pytest.raises(CronError, match="unknown time zone 'Mars/Olympus'"):
        Cron("@daily", "Mars/Olympus")


def test_a_time_zone_that_is_not_a_string_is_refused_naming_the_field() -> None:
    """``tz=None`` (say, a missing setting) raises a TypeError naming ``'tz'`` and what it takes,
    not zoneinfo's words about paths."""
    expected = r"'tz' must be an IANA time zone name such as 'UTC' or 'Europe/Paris' \(got None\)"
    with pytest.raises(TypeError, match=expected):
        Recurring(name="nightly", cron="0 3 * * *", job="count", tz=None)  # type: ignore[arg-type]


def test_daily_job_fires_once_on_the_day_clocks_go_back() -> None:
    """02:30 exists twice on 27 Oct 2024 in Paris; the job fires once that day."""
    fires = Cron("30 2 * * *", "Europe/Paris").between(ts(2024, 10, 26), ts(2024, 10, 29), limit=9)
    assert [local(t).date().day for t in fires] == [26, 27, 28]
    assert local(fires[1]).utcoffset() == timedelta(hours=2)


def test_daily_job_fires_at_the_first_valid_time_when_clocks_go_forward() -> None:
    """02:30 does not exist on 31 Mar 2024 in Paris; the job fires at 03:00 instead."""
    fires = Cron("30 2 * * *", "Europe/Paris").between(ts(2024, 3, 30), ts(2024, 4, 2), limit=9)
    assert [local(t).strftime("%d %H:%M") for t in fires] == ["30 02:30", "31 03:00", "01 02:30"]


def test_hourly_job_fires_every_real_hour_across_fall_back() -> None:
    """An hourly job fires every 3600 s through the repeated hour."""
    fires = Cron("0 * * * *", "Europe/Paris").between(ts(2024, 10, 26, 22), ts(2024, 10, 27, 3), limit=9)
    assert [b - a for a, b in itertools.pairwise(fires)] == [3600.0] * (len(fires) - 1)
    assert len(fires) == 5


# --- misfire planning (pure) ---------------------------------------------------------------------


def spec(misfire: Misfire, **kw: object) -> Recurring:
    return Recurring(name="s", cron="30 * * * *", job="j", misfire=misfire, **kw)  # type: ignore[arg-type]


NOW = ts(2024, 1, 1, 12)


def test_misfire_run_once_runs_the_latest_missed_occurrence() -> None:
    """Five missed occurrences under RUN_ONCE give one run, as the latest."""
    decision = plan(spec(Misfire.RUN_ONCE), NOW - 5 * 3600, NOW)
    assert decision == ([NOW - 1800], NOW - 1800, 5)


def test_misfire_run_all_runs_every_missed_occurrence() -> None:
    """Five missed occurrences under RUN_ALL give five runs, oldest first."""
    fire, cursor, n = plan(spec(Misfire.RUN_ALL), NOW - 5 * 3600, NOW)  # type: ignore[misc]
    assert fire == [NOW - 1800 - 3600 * k for k in (4, 3, 2, 1, 0)]
    assert (cursor, n) == (NOW - 1800, 5)


def test_misfire_skip_drops_late_occurrences_but_keeps_on_time_ones() -> None:
    """SKIP runs nothing missed, but an occurrence within the grace still runs."""
    assert plan(spec(Misfire.SKIP), NOW - 5 * 3600, NOW) == ([], NOW - 1800, 5)
    on_time = plan(spec(Misfire.SKIP, misfire_grace=60.0), NOW - 3600, NOW - 1800 + 59)
    assert on_time == ([NOW - 1800], NOW - 1800, 1)


def test_misfire_skip_drops_occurrences_due_before_the_scheduler_started() -> None:
    """An occurrence that came due while no scheduler ran is missed, even within the grace."""
    late_start = NOW - 1800 + 30
    assert plan(spec(Misfire.SKIP), NOW - 3600, late_start, started=late_start) == ([], NOW - 1800, 1)
    assert plan(spec(Misfire.SKIP), NOW - 3600, late_start, started=NOW - 1800) == ([NOW - 1800], NOW - 1800, 1)


def test_a_misfire_policy_can_be_given_as_its_string_and_a_bad_one_is_refused_by_name() -> None:
    """misfire="run_all" (from a config file) is Misfire.RUN_ALL; a bad value gets one clean message."""
    assert spec("run_all").misfire is Misfire.RUN_ALL  # type: ignore[arg-type]
    refused = r"^'misfire' must be a Misfire or one of 'run_once', 'run_all', 'skip' \(got 'bogus' of type str\)$"
    with pytest.raises(ValueError, match=refused):
        spec("bogus")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^'misfire' must be a Misfire or one of .* \(got 1 of type int\)$"):
        spec(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^'misfire_grace' must be a number >= 0 \(got '60' of type str\)$"):
        spec(Misfire.SKIP, misfire_grace="60")


def test_an_overlap_that_is_not_a_bool_or_a_queue_that_is_not_a_string_is_refused_by_name() -> None:
    """``overlap=1`` or ``"yes"`` would read as true by accident: refused, as is ``queue=5``."""
    with pytest.raises(TypeError, match=r"^'overlap' must be True or False \(got 'yes' of type str\)$"):
        spec(Misfire.SKIP, overlap="yes")
    with pytest.raises(TypeError, match=r"^'overlap' must be True or False \(got 1 of type int\)$"):
        spec(Misfire.SKIP, overlap=1)
    with pytest.raises(TypeError, match=r"^'queue' must be a string or None \(got 5 of type int\)$"):
        spec(Misfire.SKIP, queue=5)
    assert spec(Misfire.SKIP, overlap=True, queue="mail").overlap is True


def test_nothing_due_plans_nothing() -> None:
    """Before the next occurrence, plan returns None."""
    assert plan(spec(Misfire.RUN_ALL), NOW - 60, NOW) is None


# --- recurring schedules in a running system ---------------------------------------------------


def recorder() -> tuple[JobRegistry, list[float]]:
    reg = JobRegistry()
    calls: list[float] = []

    @reg.job()
    async def tick() -> None:
        calls.append(trio.current_time())

    return reg, calls


async def fired(jobs: JobSystem) -> list[float]:
    done = await jobs.list(state=JobState.SUCCEEDED, limit=10_000)
    return sorted(j.fire_time.timestamp() for j in done if j.fire_time is not None)


async def test_recurring_job_runs_at_each_occurrence(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A schedule every 10 minutes runs at 10, 20 and 30 minutes past the start."""
    reg, calls = recorder()
    jobs = JobSystem(
        store=InMemoryStore(),
        registry=reg,
        clock=wall,
        recurring=[Recurring(name="every10", cron="*/10 * * * *", job="tick")],
    )
    async with running(jobs):
        await trio.sleep(35 * 60)
    assert calls == [pytest.approx(600 * k) for k in (1, 2, 3)]
    assert await fired(jobs) == [ts(2024, 1, 1) + 600 * k for k in (1, 2, 3)]


async def test_daily_schedule_runs_once_on_fall_back_day_in_a_running_system(
    autojump_clock: MockClock, running: Running
) -> None:
    """Over three days around the end of DST, a daily Paris job runs exactly once a day."""
    reg, _ = recorder()
    wall = TrioWallClock(datetime(2024, 10, 26, tzinfo=UTC))
    jobs = JobSystem(
        store=InMemoryStore(),
        registry=reg,
        clock=wall,
        lease=3000.0,
        heartbeat=1000.0,
        keep_succeeded=None,
        recurring=[Recurring(name="nightly", cron="30 2 * * *", tz="Europe/Paris", job="tick")],
    )
    async with running(jobs):
        await trio.sleep(3 * 86400)
    days = [local(t).strftime("%d %H:%M %z") for t in await fired(jobs)]
    assert days == ["26 02:30 +0200", "27 02:30 +0200", "28 02:30 +0100"]


async def seed_cursor(store: InMemoryStore, name: str, cursor: float) -> None:
    await store.fire(name, expected=None, cursor=cursor, jobs=[], exclusive=False, now=cursor)


@pytest.mark.parametrize(
    ("policy", "expected_hours"),
    [
        (Misfire.RUN_ONCE, [-0.5]),
        (Misfire.RUN_ALL, [-4.5, -3.5, -2.5, -1.5, -0.5]),
        (Misfire.SKIP, []),
    ],
)
async def test_occurrences_missed_while_down_follow_the_misfire_policy(
    autojump_clock: MockClock,
    wall: TrioWallClock,
    running: Running,
    policy: Misfire,
    expected_hours: list[float],
) -> None:
    """After five hours down, an hourly job runs once, five times, or not at all."""
    reg, _ = recorder()
    store = InMemoryStore()
    start = ts(2024, 1, 1)
    await seed_cursor(store, "hourly", start - 5 * 3600)
    jobs = JobSystem(
        store=store,
        registry=reg,
        clock=wall,
        recurring=[Recurring(name="hourly", cron="30 * * * *", job="tick", misfire=policy, overlap=True)],
    )
    async with running(jobs):
        await trio.sleep(60)
    assert await fired(jobs) == [start + h * 3600 for h in expected_hours]


async def test_skipped_misfires_do_not_stop_later_occurrences(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """Under SKIP the schedule resumes with the next occurrence after the restart."""
    reg, _ = recorder()
    store = InMemoryStore()
    start = ts(2024, 1, 1)
    await seed_cursor(store, "hourly", start - 5 * 3600)
    jobs = JobSystem(
        store=store,
        registry=reg,
        clock=wall,
        recurring=[Recurring(name="hourly", cron="30 * * * *", job="tick", misfire=Misfire.SKIP)],
    )
    async with running(jobs):
        await trio.sleep(3600)
    assert await fired(jobs) == [start + 1800]


async def test_first_start_does_not_run_past_occurrences(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A schedule seen for the first time starts from now, whatever its misfire policy."""
    reg, calls = recorder()
    jobs = JobSystem(
        store=InMemoryStore(),
        registry=reg,
        clock=wall,
        recurring=[Recurring(name="h", cron="@hourly", job="tick", misfire=Misfire.RUN_ALL)],
    )
    async with running(jobs):
        await trio.sleep(10)
    assert calls == []


async def test_recurring_runs_do_not_overlap_unless_asked(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """A 150 s job every minute runs at minutes 1, 4, 7, 10, never two at once."""
    reg = JobRegistry()
    active = [0]
    peak = [0]

    @reg.job()
    async def long() -> None:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await trio.sleep(150)
        active[0] -= 1

    jobs = JobSystem(
        store=InMemoryStore(),
        registry=reg,
        clock=wall,
        recurring=[Recurring(name="m", cron="* * * * *", job="long")],
    )
    async with running(jobs):
        await trio.sleep(10 * 60 + 1)
        listed = await jobs.list(limit=100)
    starts = sorted((j.fire_time.timestamp() - ts(2024, 1, 1)) / 60 for j in listed if j.fire_time)
    assert starts == [1, 4, 7, 10]
    assert peak[0] == 1


async def test_recurring_runs_overlap_when_allowed(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """With ``overlap=True`` every minute starts a run even while others are running."""
    reg = JobRegistry()
    active = [0]
    peak = [0]

    @reg.job()
    async def long() -> None:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await trio.sleep(150)
        active[0] -= 1

    jobs = JobSystem(
        store=InMemoryStore(),
        registry=reg,
        clock=wall,
        recurring=[Recurring(name="m", cron="* * * * *", job="long", overlap=True)],
    )
    async with running(jobs):
        await trio.sleep(10 * 60 + 1)
        total = (await jobs.counts()).total
    assert total == 10
    assert peak[0] == 3


async def test_two_hosts_enqueue_each_occurrence_once(autojump_clock: MockClock, wall: TrioWallClock) -> None:
    """Two job systems sharing a store and a schedule enqueue every occurrence exactly once."""
    reg, calls = recorder()
    store = InMemoryStore()
    schedule = [Recurring(name="five", cron="*/5 * * * *", job="tick", overlap=True)]
    hosts = [JobSystem(store=store, registry=reg, clock=wall, recurring=schedule, name=f"host{i}") for i in range(2)]
    tree = Supervisor(name="app", children=[h.child_spec() for h in hosts])
    async with open_tree(tree):
        await trio.sleep(3600 + 1)
    assert len(calls) == 12
    assert await fired(hosts[0]) == [ts(2024, 1, 1) + 300 * k for k in range(1, 13)]


def test_recurring_checks_its_cron_expression_at_construction() -> None:
    """A bad cron expression in a Recurring raises where it is written."""
    with pytest.raises(CronError, match="'0 25 \\* \\* \\*' is invalid: Bad hour"):
        Recurring(name="x", cron="0 25 * * *", job="j")


def test_job_system_checks_recurring_jobs_and_arguments() -> None:
    """A schedule naming an unknown job, or with bad arguments, is refused by JobSystem."""
    reg = JobRegistry()

    @reg.job()
    async def count(n: int) -> None:
        pass

    with pytest.raises(UnknownJobError, match="'nope'"):
        JobSystem(
            store=InMemoryStore(),
            registry=reg,
            recurring=[Recurring(name="a", cron="@daily", job="nope")],
        )
    with pytest.raises(JobArgumentsError, match="job 'count'"):
        JobSystem(
            store=InMemoryStore(),
            registry=reg,
            recurring=[Recurring(name="a", cron="@daily", job="count", args="many")],
        )


async def test_run_all_runs_every_missed_occurrence_one_after_another(
    autojump_clock: MockClock, wall: TrioWallClock, running: Running
) -> None:
    """RUN_ALL after a 10-minute outage runs all ten missed occurrences, oldest first, one at a
    time (overlap=False makes them wait for each other instead of being skipped)."""
    reg = JobRegistry()
    runs: list[tuple[int, float]] = []
    active = [0]

    @reg.job()
    async def report() -> None:
        active[0] += 1
        assert active[0] == 1
        runs.append((current_job().id, trio.current_time()))
        await trio.sleep(5)
        active[0] -= 1

    store = InMemoryStore()
    start = ts(2024, 1, 1)
    await seed_cursor(store, "minutely", start - 570)
    jobs = JobSystem(
        store=store,
        registry=reg,
        clock=wall,
        recurring=[Recurring(name="minutely", cron="* * * * *", job="report", misfire=Misfire.RUN_ALL)],
    )
    async with running(jobs):
        await trio.sleep(59)
        fire_times = [(await jobs.get(job_id)).fire_time for job_id, _ in runs]
    assert [f.timestamp() - start for f in fire_times if f is not None] == [-540 + 60 * k for k in range(10)]
    assert all(b[1] - a[1] >= 5 for a, b in itertools.pairwise(runs))


async def test_skip_after_an_outage_runs_nothing_missed_and_resumes_at_the_next_occurrence(
    autojump_clock: MockClock, running: Running
) -> None:
    """A minutely SKIP schedule whose hosts were down for ten minutes, back 30 s after the last
    occurrence: none of the ten missed occurrences runs (not even the one 30 s ago, inside the
    60 s grace: it came due while no scheduler ran); the next one, a minute later, runs."""
    reg, _ = recorder()
    store = InMemoryStore()
    start = ts(2024, 1, 1)
    await seed_cursor(store, "minutely", start - 600)
    back = TrioWallClock(datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC))
    jobs = JobSystem(
        store=store,
        registry=reg,
        clock=back,
        recurring=[Recurring(name="minutely", cron="* * * * *", job="tick", misfire=Misfire.SKIP)],
    )
    async with running(jobs):
        await trio.sleep(60)
    assert await fired(jobs) == [start + 60]


def test_a_fixed_hour_range_fires_once_in_the_repeated_hour() -> None:
    """A range of fixed hours names local times: 02:00 fires once when clocks go back."""
    cron = Cron("0 1-3 * * *", "Europe/Paris")
    fires = cron.between(ts(2024, 10, 27, tz=PARIS), ts(2024, 10, 27, 6, tz=PARIS), limit=9)
    assert [local(t).strftime("%H:%M%z") for t in fires] == ["01:00+0200", "02:00+0200", "03:00+0100"]


def test_a_minute_field_starting_with_a_star_follows_real_time_across_daylight_changes() -> None:
    """``*/20 2 * * *`` runs in both passes of the repeated hour and not at all in a skipped one."""
    cron = Cron("*/20 2 * * *", "Europe/Paris")
    back = cron.between(ts(2024, 10, 27, tz=PARIS), ts(2024, 10, 27, 6, tz=PARIS), limit=9)
    assert [local(t).strftime("%H:%M%z") for t in back] == [
        "02:00+0200", "02:20+0200", "02:40+0200", "02:00+0100", "02:20+0100", "02:40+0100",
    ]
    assert cron.between(ts(2024, 3, 31, tz=PARIS), ts(2024, 3, 31, 6, tz=PARIS), limit=9) == []


def test_a_six_field_expression_follows_real_time_across_daylight_changes() -> None:
    """With a seconds field, even a fixed 02:30:00 runs twice when clocks go back and not at all
    when they go forward."""
    cron = Cron("0 30 2 * * *", "Europe/Paris")
    back = cron.between(ts(2024, 10, 27, tz=PARIS), ts(2024, 10, 27, 6, tz=PARIS), limit=9)
    assert [local(t).strftime("%H:%M%z") for t in back] == ["02:30+0200", "02:30+0100"]
    assert cron.between(ts(2024, 3, 31, tz=PARIS), ts(2024, 3, 31, 6, tz=PARIS), limit=9) == []
