"""Fuzz the hwcodesign CLI with hostile and careless input (`make fuzz`).

    python tests/fuzz/run_fuzz.py --cases 1000 --seed 0          the large run
    python tests/fuzz/run_fuzz.py --seed 0 --case 17 --case 42   replay cases alone (same seed)
    python tests/fuzz/run_fuzz.py --family projects --cases 50   one family

Prints every finding as it happens (family, mutation, command line, last stderr line), then a
table of outcomes by family. Exits 1 if any case ended in anything but a clean refusal or an
allowed acceptance (traceback, signal, wrong success, data loss, onnxruntime disagreement,
timeout, unclear message, leftover staging folders), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from support.fuzz_campaign import (  # noqa: E402
    WEIGHTS,
    build_assets,
    describe,
    elapsed,
    is_failure,
    run_campaign,
    summary_table,
)
from support.fuzz_run import Limits, Verdict  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", type=int, action="append", help="run only this case index (repeatable)")
    parser.add_argument("--family", action="append", choices=list(WEIGHTS), help="only these families")
    parser.add_argument("--examples", action="store_true", help="also mutate the ResNet-8 example (trains ~15 s)")
    parser.add_argument("--subprocess", action="store_true",
                        help="run each case as `python -m hwcodesign` instead of a fork (slower, for confirmation)")
    parser.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every case's time limit")
    parser.add_argument("--memory-gib", type=float, default=3.0, help="address space a case may add (default 3)")
    parser.add_argument("--workdir", type=Path, help="keep assets and failing cases here (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep every case's folder (with --workdir)")
    parser.add_argument("--json", type=Path, help="also write every verdict here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hwcodesign-fuzz-") as temporary:
        root = (args.workdir or Path(temporary)).resolve()
        limits = Limits(memory_bytes=int(args.memory_gib * (1 << 30)), timeout_scale=args.timeout_scale,
                        isolation="subprocess" if args.subprocess else "fork", cache=root / "csim_cache")
        start = time.monotonic()
        assets = build_assets(root, limits, examples=args.examples)
        print(f"assets ready in {elapsed(start)}: {', '.join(assets.models)}; onnxruntime judges "
              f"{', '.join(name for name, runs in assets.ort_runs.items() if runs)}", flush=True)
        indices = args.case or list(range(args.cases))
        counter = {"done": 0}

        def report(verdict: Verdict) -> None:
            counter["done"] += 1
            if is_failure(verdict):
                print(describe(verdict), flush=True)
            if counter["done"] % 50 == 0:
                print(f"-- {counter['done']}/{len(indices)} cases, {elapsed(start)}", flush=True)

        verdicts = run_campaign(root, assets, args.seed, indices, limits, args.family, args.keep, report)
        print()
        print(summary_table(verdicts))
        failures = [v for v in verdicts if is_failure(v)]
        print(f"\n{len(verdicts)} cases in {elapsed(start)} (seed {args.seed}); {len(failures)} findings")
        if args.json:
            args.json.write_text(json.dumps([verdict_json(v) for v in verdicts], indent=1) + "\n")
    return 1 if failures else 0


def verdict_json(verdict: Verdict) -> dict[str, object]:
    result = verdict.result
    return {"index": verdict.index, "family": verdict.case.family, "mutation": verdict.case.mutation,
            "argv": verdict.case.argv, "outcome": verdict.outcome, "detail": verdict.detail,
            "returncode": result.returncode if result else None,
            "seconds": round(result.seconds, 3) if result else None,
            "last_stderr_line": verdict.last_line}


if __name__ == "__main__":
    sys.exit(main())
