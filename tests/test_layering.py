"""The package's import layers (.importlinter): no module imports from a layer above its own, so
there are no import cycles between subpackages, and the op families import none of the stages
that use them. `lint-imports` (the dev extra's import-linter) checks the contracts; this test runs
it, so a new upward import or cycle fails the suite and not only `make lint`.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
CONTRACTS = REPOSITORY / ".importlinter"


def lint_imports() -> str | None:
    """The lint-imports beside this Python (the venv's), else one on PATH."""
    beside = Path(sys.executable).parent / "lint-imports"
    return str(beside) if beside.is_file() else shutil.which("lint-imports")


def layered_modules() -> set[str]:
    """Every module the layers contract names (optional layers, in parentheses, included)."""
    config = configparser.ConfigParser()
    config.read(CONTRACTS)
    layers = config["importlinter:contract:layers"]["layers"]
    return {name.strip("() ") for line in layers.splitlines() if line.strip() and not line.strip().startswith("#")
            for name in re.split(r"[|:]", line) if name.strip()}


def test_every_subpackage_and_module_is_in_a_layer() -> None:
    """A new subpackage or top-level module must be given its place in the layers, or the
    contract would not check it."""
    package = REPOSITORY / "hwcodesign"
    names = {f"hwcodesign.{path.stem}" for path in package.glob("*.py") if path.stem != "__init__"}
    names |= {f"hwcodesign.{path.name}" for path in package.iterdir() if (path / "__init__.py").is_file()}
    assert sorted(names - layered_modules()) == []


def test_the_import_contracts_hold() -> None:
    tool = lint_imports()
    if tool is None:
        pytest.skip("lint-imports is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([tool, "--config", str(CONTRACTS), "--no-cache"], cwd=REPOSITORY, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
