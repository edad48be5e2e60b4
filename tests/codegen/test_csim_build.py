"""Building the C-simulation library: processes and threads that build the same sources at once
compile them once (`csim.build_lock`); the others wait and load that build."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.codegen import compile_small_project

from hwcodesign.codegen import csim
from hwcodesign.codegen.project import Project


def test_builds_of_the_same_sources_at_once_compile_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWCODESIGN_CACHE", str(tmp_path / "cache"))
    project = Project(compile_small_project(tmp_path))
    compiles, real_run = [], subprocess.run

    def counted_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        compiles.append(command)
        return real_run(command, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(csim.subprocess, "run", counted_run)
    with ThreadPoolExecutor(4) as pool:
        libraries = list(pool.map(lambda _: csim.build_library(project), range(4)))
    assert len(compiles) == 1
    assert len(set(libraries)) == 1 and libraries[0].is_file()
    assert sorted(p.name for p in libraries[0].parent.iterdir()) == ["build.lock", "libcsim.so"]  # no scratch left
