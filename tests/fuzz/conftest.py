"""Property-based fuzzing of the parsers that take user or archive input (hypothesis).

Profiles: `ci` (the default: a short, bounded pass that `make test` runs) and `long`
(`make fuzz`: thousands of examples per target, a few minutes each). Every target
asserts the same contract: the input is accepted, or refused with crossbuild's own
one-line UserError; any other exception, or a multi-line message, is a bug.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples on every CI run: a failure reproduces
    database=None,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
