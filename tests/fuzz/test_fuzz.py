"""A bounded fuzz run in the ordinary test suite: hostile and careless input across every command.

Every family of tests/support/fuzz_models.py and fuzz_cases.py gets a few seeded cases (the
large run is `make fuzz`). Each must end in a clean refusal (exit 2, no traceback, one line
naming what is wrong, no file of the user's touched) or, where the input is legitimate, a run
whose results are right. Replay a failure alone with
`python tests/fuzz/run_fuzz.py --seed <seed> --case <index>`.
"""

from __future__ import annotations

import os
from pathlib import Path

from support.fuzz_campaign import WEIGHTS, build_assets, describe, is_failure, run_campaign, summary_table
from support.fuzz_run import Limits

SEED = int(os.environ.get("FUZZ_SEED", "0"))
CASES = int(os.environ.get("FUZZ_TEST_CASES", "60"))
# a clean refusal comes at once: 9 s for a model case, 18 s for a resource one
TIMEOUT_SCALE = 0.15


def test_hostile_input_gets_a_clean_refusal(tmp_path: Path) -> None:
    limits = Limits(timeout_scale=TIMEOUT_SCALE)  # children share the session's C-simulation cache
    assets = build_assets(tmp_path, limits)
    verdicts = run_campaign(tmp_path, assets, SEED, range(CASES), limits)
    assert {v.case.family for v in verdicts} == set(WEIGHTS), "every family must be exercised"
    failures = [describe(v) for v in verdicts if is_failure(v)]
    assert not failures, (f"{len(failures)} of {len(verdicts)} fuzz cases (seed {SEED}) broke a promise:\n"
                          + summary_table(verdicts) + "\n\n" + "\n".join(failures))
