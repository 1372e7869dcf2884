"""Hypothesis profiles for the unit tests; none writes an example database into the repository.

`unit` (default) keeps the suite in seconds; `HYPOTHESIS_PROFILE=thorough` runs 100x the examples.
"""

import os

from hypothesis import settings

settings.register_profile("unit", database=None, print_blob=True)
settings.register_profile(
    "thorough", database=None, print_blob=True, max_examples=10_000, deadline=None
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "unit"))
