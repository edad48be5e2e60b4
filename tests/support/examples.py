"""Access to examples/build_models.py and examples/write_notebook.py (scripts, not part of the package)."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

BUILD_MODELS = Path(__file__).resolve().parents[2] / "examples" / "build_models.py"


def load_module(path: Path, name: str) -> ModuleType:
    """Import a script by path; registered in sys.modules so its dataclasses resolve annotations."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def build_models_module() -> ModuleType:
    return load_module(BUILD_MODELS, "hwcodesign_examples_build_models")


WRITE_NOTEBOOK = BUILD_MODELS.parent / "write_notebook.py"


@cache
def write_notebook_module() -> ModuleType:
    """examples/write_notebook.py, which generates examples/resnet8_pynq.ipynb."""
    return load_module(WRITE_NOTEBOOK, "hwcodesign_examples_write_notebook")
