"""A fuzz campaign: build the assets once, run N seeded cases spread over the families, tabulate.

Case `i` of seed `s` is fully determined by (s, i): its family comes from a fixed weighted
schedule, its generator from the family's list, and every random choice from
`default_rng([s, i])`, so `tests/fuzz/run_fuzz.py --seed s --case i` replays one finding alone.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from support.fuzz_cases import Assets, Context, Generator, families
from support.fuzz_models import base_models
from support.fuzz_run import (
    ACCEPTED,
    DATA_LOSS,
    FINDINGS,
    OUTCOMES,
    REFUSED,
    Case,
    Limits,
    Verdict,
    classify,
    compare_outputs,
    count_filesystem_steps,
    lost_files,
    onnxruntime_refuses,
    run_command,
    snapshot,
)

# Cases per round of the schedule: the model families get most, the expensive ones least.
WEIGHTS = {"structure": 4, "quantizers": 4, "external": 2, "resources": 1, "files": 2, "options": 3, "frames": 2,
           "projects": 3, "outputs": 3, "interrupts": 1}
HARNESS = "harness-error"  # the generator itself failed: a bug here, not in the product


class HarnessError(RuntimeError):
    """The intact models or projects do not go through the CLI: no mutant can be judged."""


def build_assets(root: Path, limits: Limits, examples: bool = False) -> Assets:
    """Base models, frames, the intact projects and their C-simulation outputs, under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    models = base_models(root / "models", examples=examples)
    scratch = root / "scratch"
    scratch.mkdir(exist_ok=True)
    ort_runs = {name: onnxruntime_refuses(path, limits, scratch) is False for name, path in models.items()}
    frames = root / "frames.npy"
    np.save(frames, np.random.default_rng(0).normal(0, 1, (2, 3, 10, 10)).astype(np.float32))
    projects, baselines, seconds = {}, {}, []
    for architecture in ("dataflow", "sequential"):
        projects[architecture] = root / "projects" / architecture
        baselines[architecture] = root / "baselines" / f"{architecture}.npz"
        baselines[architecture].parent.mkdir(exist_ok=True)
        for argv in (["compile", str(models["qdq_small"]), "--architecture", architecture, "-o",
                      str(projects[architecture])],
                     ["csim", str(projects[architecture]), str(frames), "-o", str(baselines[architecture])]):
            result = run_command(argv, root, limits, 300, scratch=scratch)
            if result.returncode != 0:
                raise HarnessError(f"hwcodesign {' '.join(argv)} failed on intact input:\n{result.stderr[-2000:]}")
            seconds.append(result.seconds)
    shutil.rmtree(scratch / "previous", ignore_errors=True)  # a reused --workdir
    shutil.copytree(projects["dataflow"], scratch / "previous")
    steps = count_filesystem_steps(["compile", str(models["qdq_small"]), "--architecture", "dataflow", "-o",
                                    "previous"], scratch, limits, scratch)
    meta = json.loads((projects["dataflow"] / "project.json").read_text())
    names = (onnx.load(models["qdq_small"]).graph.input[0].name, meta["inputs"][0]["tensor"])
    return Assets(models, ort_runs, frames, projects, baselines, max(seconds[0::2]), names, steps)


@dataclass(frozen=True)
class Planned:
    index: int
    family: str
    generator: Generator


def schedule(selected: Iterable[str] | None = None) -> list[str]:
    chosen = set(selected) if selected else set(WEIGHTS)
    unknown = chosen - set(WEIGHTS)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; known: {', '.join(WEIGHTS)}")
    return [family for family, weight in WEIGHTS.items() if family in chosen for _ in range(weight)]


def plan(seed: int, indices: Iterable[int], selected: Iterable[str] | None = None) -> list[Planned]:
    """Which family and generator each case index runs (round-robin over the generators)."""
    rounds = schedule(selected)
    generators = families()
    planned = []
    for index in indices:
        slot, turn = index % len(rounds), index // len(rounds)
        family = rounds[slot]
        occurrence = rounds[:slot].count(family) + turn * rounds.count(family)
        options = generators[family]
        planned.append(Planned(index, family, options[(occurrence + seed) % len(options)]))
    return planned


def run_case(planned: Planned, seed: int, root: Path, assets: Assets, limits: Limits, keep: bool = False) -> Verdict:
    """Generate, run and judge one case in its own folder root/cases/<index>/home/work."""
    case_dir = root / "cases" / f"{planned.index:05d}"
    shutil.rmtree(case_dir, ignore_errors=True)
    work = case_dir / "home" / "work"
    work.mkdir(parents=True)
    rng = np.random.default_rng([seed, planned.index])
    try:
        case = planned.generator(Context(work, assets, rng))
    except Exception as error:  # noqa: BLE001 - reported as the harness's own failure
        return Verdict(Case(planned.family, planned.generator.__name__, []), HARNESS, repr(error), index=planned.index)
    try:
        if case is None:
                return Verdict(Case(planned.family, planned.generator.__name__, []), "ignored", "not applicable",
                           index=planned.index)
        return judge(case, work, assets, limits, planned.index, case_dir)
    finally:
        if not keep:
            shutil.rmtree(case_dir, ignore_errors=True)


def judge(case: Case, work: Path, assets: Assets, limits: Limits, index: int, scratch: Path) -> Verdict:
    home = work.parent
    skip = [work / path for path in case.writable]
    before = snapshot(home, skip)
    timeout = case.timeout * limits.timeout_scale
    result = run_command(case.argv, work, limits, timeout, case.interrupt, scratch=scratch, crash_at=case.crash_at)
    lost = lost_files(before, snapshot(home, skip))
    differ = compare_outputs(work, *case.compare) if case.compare and result.returncode == 0 else None
    model = work / case.onnx_model if case.onnx_model else None
    outcome, detail = classify(case, result, lost, differ,
                               lambda: bool(model and onnxruntime_refuses(model, limits, scratch)))
    if case.after is not None and outcome in (REFUSED, ACCEPTED):
        def again(argv: list[str]):
            return run_command(argv, work, limits, timeout, scratch=scratch)
        extra = case.after(work, result, again)
        if extra is not None:
            outcome, detail = extra
    return Verdict(case, outcome, detail, result, index)


def run_campaign(root: Path, assets: Assets, seed: int, indices: Sequence[int], limits: Limits,
                 selected: Iterable[str] | None = None, keep: bool = False,
                 report: Callable[[Verdict], None] | None = None) -> list[Verdict]:
    verdicts = []
    protected = snapshot(root / "projects")
    for planned in plan(seed, indices, selected):
        verdict = run_case(planned, seed, root, assets, limits, keep)
        verdicts.append(verdict)
        if report:
            report(verdict)
    lost = lost_files(protected, snapshot(root / "projects"))
    if lost:  # the intact projects are read by csim cases in place: they must never change
        verdicts.append(Verdict(Case("projects", "the shared intact projects", []), DATA_LOSS,
                                f"changed: {', '.join(lost[:4])}"))
    return verdicts


def is_failure(verdict: Verdict) -> bool:
    return verdict.outcome in FINDINGS or verdict.outcome == HARNESS


def describe(verdict: Verdict) -> str:
    case = verdict.case
    return (f"#{verdict.index} [{case.family}] {verdict.outcome}: {case.mutation}\n"
            f"    $ hwcodesign {' '.join(repr(a) if not a or ' ' in a else a for a in case.argv)}\n"
            f"    {verdict.detail}"
            + (f" | stderr: {verdict.last_line}" if verdict.last_line != verdict.detail else ""))


def summary_table(verdicts: Sequence[Verdict]) -> str:
    """Counts by family (rows) and outcome (columns), with totals."""
    counts = Counter((v.case.family, v.outcome) for v in verdicts)
    outcomes = [o for o in (*OUTCOMES, HARNESS, "ignored") if any(k[1] == o for k in counts)]
    rows = [family for family in WEIGHTS if any(k[0] == family for k in counts)]
    header = ["family", *outcomes, "total"]
    lines = [[family, *(str(counts[(family, o)]) for o in outcomes), str(sum(counts[(family, o)] for o in outcomes))]
             for family in rows]
    lines.append(["total", *(str(sum(counts[(f, o)] for f in rows)) for o in outcomes), str(len(verdicts))])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in
                               enumerate(zip(row, widths))) for row in [header, *lines])


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.0f} s"
