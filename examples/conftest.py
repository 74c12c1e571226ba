"""Hypothesis profiles for the example tests: fast by default, HYPOTHESIS_PROFILE=thorough in CI."""

import os

from hypothesis import settings

settings.register_profile("fast", max_examples=20, deadline=None)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
