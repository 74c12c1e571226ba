"""Specifications: validation messages, enum strings from configuration, the backoff curve."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import Actor
from supervisors import Backoff, ChildSpec, DynamicSupervisor, Restart, Strategy, Supervisor


def _child(**fields: Any) -> ChildSpec:
    return ChildSpec(**{"name": "a", "factory": Actor, **fields})


def _supervisor(**fields: Any) -> Supervisor:
    return Supervisor(**fields)


def _dynamic(**fields: Any) -> DynamicSupervisor:
    return DynamicSupervisor(**{"name": "d", **fields})


def _backoff(**fields: Any) -> Backoff:
    return Backoff(**fields)


BUILDERS: dict[str, Callable[..., object]] = {
    "ChildSpec": _child, "Supervisor": _supervisor, "DynamicSupervisor": _dynamic, "Backoff": _backoff,
}

# (spec, field, bad value, exception, words the message must contain besides the field and value)
BAD_VALUES = [
    ("ChildSpec", "name", 3, TypeError, "non-empty string without '/'"),
    ("ChildSpec", "name", "", ValueError, "non-empty string"),
    ("ChildSpec", "name", "a/b", ValueError, "without '/'"),
    ("ChildSpec", "factory", 3, TypeError, "callable"),
    ("ChildSpec", "restart", "bogus", ValueError, "'permanent', 'transient', 'temporary'"),
    ("ChildSpec", "restart", 1, TypeError, "'permanent', 'transient', 'temporary'"),
    ("ChildSpec", "restart", Strategy.ONE_FOR_ALL, TypeError, "a Restart or one of"),
    ("ChildSpec", "shutdown", -1, ValueError, "a number >= 0"),
    ("ChildSpec", "shutdown", "5", TypeError, "a number >= 0"),
    ("ChildSpec", "shutdown", None, TypeError, "a number >= 0"),
    ("ChildSpec", "shutdown", math.nan, ValueError, "a number >= 0"),
    ("ChildSpec", "mailbox_size", 0, ValueError, "an int >= 1"),
    ("ChildSpec", "mailbox_size", 2.5, TypeError, "an int >= 1"),
    ("ChildSpec", "mailbox_size", True, TypeError, "an int >= 1"),
    ("Supervisor", "name", None, TypeError, "non-empty string"),
    ("Supervisor", "children", [3], TypeError, "ChildSpec, Supervisor or DynamicSupervisor"),
    ("Supervisor", "children", 3, TypeError, "a sequence of ChildSpec, Supervisor or DynamicSupervisor"),
    ("Supervisor", "children", "ab", TypeError, "a sequence of ChildSpec, Supervisor or DynamicSupervisor"),
    ("Supervisor", "strategy", "one-for-all", ValueError, "'one_for_one', 'one_for_all', 'rest_for_one'"),
    ("Supervisor", "strategy", None, TypeError, "a Strategy or one of"),
    ("Supervisor", "max_restarts", -1, ValueError, "an int >= 0"),
    ("Supervisor", "max_restarts", "3", TypeError, "an int >= 0"),
    ("Supervisor", "max_restarts", 2.5, TypeError, "an int >= 0"),
    ("Supervisor", "within", 0, ValueError, "a number > 0"),
    ("Supervisor", "within", "5", TypeError, "a number > 0"),
    ("Supervisor", "backoff", 3, TypeError, "a Backoff or None"),
    ("Supervisor", "restart", "always", ValueError, "'permanent', 'transient', 'temporary'"),
    ("Supervisor", "shutdown", -0.5, ValueError, "a number >= 0"),
    ("DynamicSupervisor", "max_children", 0, ValueError, "an int >= 1 or None"),
    ("DynamicSupervisor", "max_children", "3", TypeError, "an int >= 1 or None"),
    ("DynamicSupervisor", "max_restarts", None, TypeError, "an int >= 0"),
    ("DynamicSupervisor", "within", -1.0, ValueError, "a number > 0"),
    ("DynamicSupervisor", "backoff", {"initial": 1}, TypeError, "a Backoff or None"),
    ("DynamicSupervisor", "restart", 0, TypeError, "a Restart or one of"),
    ("DynamicSupervisor", "shutdown", "inf", TypeError, "a number >= 0"),
    ("Backoff", "initial", -1, ValueError, "a number >= 0"),
    ("Backoff", "initial", math.inf, ValueError, "a number >= 0"),
    ("Backoff", "initial", "0.1", TypeError, "a number >= 0"),
    ("Backoff", "factor", 0.5, ValueError, "a number >= 1"),
    ("Backoff", "factor", None, TypeError, "a number >= 1"),
    ("Backoff", "max", -1, ValueError, "a number >= 0"),
    ("Backoff", "max", "30", TypeError, "a number >= 0"),
    ("Backoff", "jitter", 1.5, ValueError, "between 0 and 1"),
    ("Backoff", "jitter", "0.1", TypeError, "between 0 and 1"),
]


@pytest.mark.parametrize(
    ("spec", "field", "value", "error", "expected"), BAD_VALUES, ids=[f"{s}.{f}={v!r}" for s, f, v, _, _ in BAD_VALUES]
)
def test_an_invalid_spec_field_is_refused_naming_the_field_the_rule_and_the_value(
    spec: str, field: str, value: object, error: type[Exception], expected: str
) -> None:
    """Every spec field refuses a bad value with one clean message: field, what was expected, what was got."""
    with pytest.raises(error) as caught:
        BUILDERS[spec](**{field: value})
    message = str(caught.value)
    assert f"'{field}'" in message
    assert expected in message
    shown = value[0] if isinstance(value, list) else value  # a bad child is named, not the whole list
    assert repr(shown) in message
    assert "Attribute(" not in message  # no raw attrs dump


def test_duplicate_child_names_are_refused_naming_the_supervisor_and_the_name() -> None:
    """Two siblings with one name: the message names their supervisor and the name."""
    with pytest.raises(ValueError, match="supervisor 'app' has two children named 'a'; sibling names must be unique"):
        Supervisor(name="app", children=[_child(), _child()])


def test_an_actor_class_or_instance_in_the_wrong_place_is_refused_saying_what_to_write() -> None:
    """An actor class given as a child, or an instance given as a factory: the message says the
    right form, not only what was wrong."""
    with pytest.raises(TypeError, match=r"wrap an actor class in ChildSpec\(name=..., factory=Actor\)"):
        Supervisor(name="app", children=[Actor])
    instance_hint = r"'factory' of child 'a' must be callable.*pass the class, factory=Actor, not an instance"
    with pytest.raises(TypeError, match=instance_hint):
        _child(factory=Actor())


@pytest.mark.parametrize("restart", list(Restart))
def test_a_restart_type_can_be_given_as_its_string(restart: Restart) -> None:
    """ChildSpec(restart="transient") is ChildSpec(restart=Restart.TRANSIENT), as read from a config file."""
    assert _child(restart=restart.value) == _child(restart=restart)
    assert _supervisor(restart=restart.value).restart is restart
    assert _dynamic(restart=restart.value).restart is restart


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_strategy_can_be_given_as_its_string(strategy: Strategy) -> None:
    """Supervisor(strategy="one_for_all") is Supervisor(strategy=Strategy.ONE_FOR_ALL)."""
    assert Supervisor(strategy=strategy.value).strategy is strategy


def test_backoff_delay_saturates_at_max_for_a_huge_restart_count() -> None:
    """A restart count far beyond what a float power can hold gives the cap, not OverflowError."""
    backoff = Backoff(initial=0.1, factor=2.0, max=30.0, jitter=0.0)
    rng = random.Random(0)
    assert backoff.delay(1_100, rng) == 30.0
    assert backoff.delay(10**9, rng) == 30.0
    assert Backoff(initial=0.0, factor=10.0, jitter=0.0).delay(10**6, rng) == 0.0
    assert Backoff(max=math.inf, jitter=0.0).delay(10**6, rng) == math.inf


@given(
    n=st.integers(min_value=1, max_value=10**12),
    initial=st.floats(min_value=0, max_value=1e6),
    factor=st.floats(min_value=1, max_value=1e3),
    cap=st.floats(min_value=0, max_value=1e9),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_delay_stays_within_the_cap_and_never_shrinks_as_restarts_grow(
    n: int, initial: float, factor: float, cap: float, jitter: float, seed: int
) -> None:
    """For every restart count the delay is in [0, max * (1 + jitter)]; without jitter it never falls as n grows."""
    backoff = Backoff(initial=initial, factor=factor, max=cap, jitter=jitter)
    delay = backoff.delay(n, random.Random(seed))
    assert 0.0 <= delay <= cap * (1 + jitter) * (1 + 1e-12)  # the tolerance covers float rounding in uniform()
    exact = Backoff(initial=initial, factor=factor, max=cap, jitter=0.0)
    assert exact.delay(n, random.Random(seed)) <= exact.delay(n + 1, random.Random(seed))
