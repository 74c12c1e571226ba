"""The public face of supervisors.jobs, and the runnable example."""

from __future__ import annotations

import inspect
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import supervisors.jobs as jobs
from supervisors import Backoff
from supervisors.jobs import JobRegistry, RetryPolicy

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_name_is_exported_sorted_and_documented() -> None:
    """``__all__`` is sorted, complete, and every name in it has a docstring."""
    assert jobs.__all__ == sorted(jobs.__all__)
    public = {n for n in vars(jobs) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(jobs.__all__)
    for name in jobs.__all__:
        obj = getattr(jobs, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_public_names_are_implemented_in_private_modules() -> None:
    """Every public name is defined in a private ``_module`` and re-exported by the façade."""
    for name in jobs.__all__:
        obj = getattr(jobs, name)
        module = getattr(obj, "__module__", "")
        assert module.startswith("supervisors.jobs._"), (name, module)


class _Fixed(random.Random):
    """A generator whose ``uniform(a, b)`` returns the point ``at`` of the interval."""

    def __init__(self, at: float) -> None:
        super().__init__(0)
        self.at = at

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.at


def test_default_retry_policy_matches_the_documented_formula() -> None:
    """Defaults: 20 attempts, 1 s doubling to a one-hour cap, ±10 % jitter."""
    policy = RetryPolicy()
    assert policy.max_attempts == 20
    mid = _Fixed(0.5)
    assert [policy.delay(n, mid) for n in (1, 2, 3, 12, 13, 19)] == [
        1.0, 2.0, 4.0, 2048.0, 3600.0, 3600.0,
    ]  # fmt: skip
    assert policy.delay(1, _Fixed(0.0)) == pytest.approx(0.9)
    assert policy.delay(1, _Fixed(1.0)) == pytest.approx(1.1)
    total = sum(policy.delay(n, mid) for n in range(1, 20)) / 3600
    assert total == pytest.approx(8.1, abs=0.05)


def test_retry_delays_are_the_supervisors_backoff_and_reproducible_with_a_seed() -> None:
    """Retries and restarts share one backoff helper; a seeded generator repeats its delays."""
    policy = RetryPolicy()
    assert policy.backoff() == Backoff(initial=1.0, factor=2.0, max=3600.0, jitter=0.1)
    first = [policy.delay(n, random.Random(7)) for n in range(1, 30)]
    assert first == [policy.delay(n, random.Random(7)) for n in range(1, 30)]
    assert policy.delay(10**6, random.Random(1)) <= 3600.0 * 1.1


def test_retry_policy_rejects_bad_values_naming_the_field() -> None:
    """Invalid policy values raise ValueError naming the field and the value."""
    with pytest.raises(ValueError, match=r"'max_attempts' must be >= 1 \(got 0\)"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match=r"'jitter' must be in \[0, 1\) \(got 1.5\)"):
        RetryPolicy(jitter=1.5)


def test_registering_a_name_twice_is_refused() -> None:
    """A second registration under the same name raises instead of replacing the first."""
    reg = JobRegistry()
    reg.register(lambda: None, name="x")
    with pytest.raises(ValueError, match="'x' is already registered"):
        reg.register(lambda: None, name="x")


def test_job_functions_take_at_most_one_argument() -> None:
    """A job function with two required parameters is refused at registration."""
    reg = JobRegistry()

    def two(a: int, b: int) -> None:
        pass

    with pytest.raises(TypeError, match="at most one argument"):
        reg.register(two)


@pytest.mark.slow
def test_the_demo_example_runs_and_exits_by_itself(tmp_path: Path) -> None:
    """``examples/jobs_demo.py --once`` runs its jobs and exits 0 within a few seconds."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "jobs_demo.py"), "--once", "--db", str(tmp_path / "d.db")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "flaky_report: succeeded after 3 attempt(s)" in result.stdout
    assert "cleanup: expired records removed" in result.stdout
