from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """A mock clock that jumps ahead whenever every task is blocked: time costs nothing."""
    return trio.testing.MockClock(autojump_threshold=0)
