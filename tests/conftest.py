from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator

import pytest
import trio.testing
from hypothesis import settings

# Property tests: a fast profile for the default run, a thorough one for CI
# (HYPOTHESIS_PROFILE=thorough). Tests that set max_examples themselves keep their own.
settings.register_profile("fast", max_examples=40, deadline=None)
settings.register_profile("thorough", max_examples=400, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """A mock clock that jumps ahead whenever every task is blocked: time costs nothing."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what the command line's ``main()`` does, as a program would: configure the root logger and
    make the cwd importable (``pytestmark = pytest.mark.usefixtures("restore_logging")``)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
