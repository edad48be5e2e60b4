"""Import an example script by path.

The examples are scripts in plain folders, not a package, yet they import each other (a build
script uses its folder's model and data modules) and the tests and benchmarks import them too.
Every caller goes through :func:`load_script`, so each script runs once per process under one
name: a dataclass defined in ``data.py`` is then the same class whoever asked for it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: Path, name: str) -> ModuleType:
    """The script at `path` as module `name`, executed on first request and kept in
    ``sys.modules`` (which is also what lets its dataclasses resolve their annotations)."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
