"""Access to the example scripts (examples/*.py, not part of the package) from tests and benchmarks."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))  # examples/script_loader.py
from script_loader import load_script  # noqa: E402

BUILD_MODELS = EXAMPLES / "build_models.py"
WRITE_NOTEBOOK = EXAMPLES / "write_notebook.py"


@cache
def build_models_module() -> ModuleType:
    return load_script(BUILD_MODELS, "hwcodesign_examples_build_models")


@cache
def write_notebook_module() -> ModuleType:
    """examples/write_notebook.py, which generates examples/resnet8_pynq.ipynb."""
    return load_script(WRITE_NOTEBOOK, "hwcodesign_examples_write_notebook")
