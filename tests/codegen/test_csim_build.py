"""Building the C-simulation library: processes and threads that build the same sources at once
compile them once (`csim.build_lock`); the others wait and load that build."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.codegen import compile_small_project

from hwcodesign.codegen import csim
from hwcodesign.codegen.project import Project


def test_builds_of_the_same_sources_at_once_compile_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWCODESIGN_CACHE", str(tmp_path / "cache"))
    project = Project(compile_small_project(tmp_path))
    compiles, real_run = [], csim.run_measured

    def counted_run(command: list[str], cwd: Path | None = None) -> tuple[int, str, csim.BuildCost]:
        compiles.append(command)
        return real_run(command, cwd)

    monkeypatch.setattr(csim, "run_measured", counted_run)
    with ThreadPoolExecutor(4) as pool:
        libraries = list(pool.map(lambda _: csim.build_library(project), range(4)))
    assert len(compiles) == 1
    assert len(set(libraries)) == 1 and libraries[0].is_file()
    # no scratch left; the build's cost beside the library
    assert sorted(p.name for p in libraries[0].parent.iterdir()) == ["build.json", "build.lock", "libcsim.so"]


def test_a_build_records_its_time_and_peak_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded cost is g++'s: its seconds are within the call's wall time, and its peak memory
    is the compiler's (cc1plus parses the sources: tens of megabytes at least), not this process's
    (an earlier version read wait4's maxrss, which carries the parent's size over fork and exec:
    7 GB from a test worker in CI)."""
    monkeypatch.setenv("HWCODESIGN_CACHE", str(tmp_path / "cache"))
    project = Project(compile_small_project(tmp_path))
    assert csim.build_cost(project) is None
    start = time.perf_counter()
    csim.build_library(project)
    elapsed = time.perf_counter() - start
    cost = csim.build_cost(project)
    assert cost is not None and 0 < cost.seconds <= elapsed
    assert 20 * 2**20 < cost.peak_bytes < 2**30


def test_run_measured_returns_a_failing_commands_status_and_stderr() -> None:
    code, stderr, cost = csim.run_measured(["sh", "-c", "echo broken >&2; exit 3"])
    assert (code, stderr.strip()) == (3, "broken") and cost.seconds > 0
