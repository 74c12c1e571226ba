"""The pure restart decisions, checked against a direct model with Hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from supervisors import Restart, Strategy
from supervisors._decide import ExitKind, needs_restart, plan_restart, plan_retry, record_restart

restarts_st = st.sampled_from(list(Restart))
strategies_st = st.sampled_from(list(Strategy))


@given(
    max_restarts=st.integers(0, 5),
    within=st.floats(0.5, 10),
    gaps=st.lists(st.floats(0, 6, allow_nan=False), min_size=1, max_size=30),
)
def test_intensity_matches_a_sliding_window_model(max_restarts: int, within: float, gaps: list[float]) -> None:
    """A restart is allowed iff, with it, at most max_restarts fall within `within` seconds."""
    history: tuple[float, ...] = ()
    accepted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        allowed, history = record_restart(history, now, max_restarts, within)
        in_window = [t for t in accepted if now - t <= within]
        assert allowed == (len(in_window) + 1 <= max_restarts)
        if not allowed:
            break
        accepted.append(now)
        assert history == (*in_window, now)


@given(restart=restarts_st, kind=st.sampled_from(list(ExitKind)))
def test_restart_types(restart: Restart, kind: ExitKind) -> None:
    """permanent: always; transient: only after a crash; temporary: never."""
    expected = {
        Restart.PERMANENT: True,
        Restart.TRANSIENT: kind is ExitKind.CRASH,
        Restart.TEMPORARY: False,
    }[restart]
    assert needs_restart(restart, kind) is expected


@st.composite
def group(draw: st.DrawFn) -> tuple[Strategy, int, list[Restart], list[bool]]:
    n = draw(st.integers(1, 8))
    restarts = draw(st.lists(restarts_st, min_size=n, max_size=n))
    running = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    candidates = [i for i in range(n) if restarts[i] is not Restart.TEMPORARY]
    failed = draw(st.sampled_from(candidates)) if candidates else None
    if failed is None:
        restarts[0] = Restart.PERMANENT
        failed = 0
    running[failed] = False  # the failed child is down
    return draw(strategies_st), failed, restarts, running


@given(group())
def test_restart_plan_matches_the_strategy(case: tuple[Strategy, int, list[Restart], list[bool]]) -> None:
    """Stop the running affected siblings in reverse; start the non-temporary affected in order."""
    strategy, failed, restarts, running = case
    n = len(restarts)
    plan = plan_restart(strategy, failed, restarts, running)
    affected = {
        Strategy.ONE_FOR_ONE: [failed],
        Strategy.ONE_FOR_ALL: list(range(n)),
        Strategy.REST_FOR_ONE: list(range(failed, n)),
    }[strategy]
    assert list(plan.stop) == [i for i in reversed(affected) if running[i] and i != failed]
    assert list(plan.remove) == [i for i in plan.stop if restarts[i] is Restart.TEMPORARY]
    assert list(plan.start) == [i for i in affected if restarts[i] is not Restart.TEMPORARY]
    assert failed in plan.start


@given(group(), st.data())
def test_retry_plan_after_a_failed_start(
    case: tuple[Strategy, int, list[Restart], list[bool]], data: st.DataObject
) -> None:
    """ONE_FOR_ALL retries the whole group; the others retry from the child that failed."""
    strategy, failed, restarts, running = case
    plan = plan_restart(strategy, failed, restarts, running)
    failed_start = data.draw(st.sampled_from(plan.start))
    retry = plan_retry(strategy, failed_start, plan)
    position = plan.start.index(failed_start)
    if strategy is Strategy.ONE_FOR_ALL:
        assert retry.start == plan.start
        assert retry.stop == tuple(reversed(plan.start[:position]))
    else:
        assert retry.start == plan.start[position:]
        assert retry.stop == ()
