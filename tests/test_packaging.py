"""What a wheel is made of, checked without building one (tests/test_install.py builds one).

setup.cfg lists the packages by hand (two are the repository's templates/ and boards/ mapped into
the package), so a new subpackage must be added there; and the base install must declare every
library the package imports, and nothing of torch's weight, for `pip install hwcodesign` to work.
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "hwcodesign"
DATA_PACKAGES = {"hwcodesign._templates": "templates", "hwcodesign._boards": "boards"}


def setup_options() -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read(REPOSITORY / "setup.cfg")
    return config["options"]


def listed(value: str) -> list[str]:
    return [line.strip() for line in value.strip().splitlines() if line.strip()]


def normalized(name: str) -> str:
    """A distribution's name as the index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def code_folders() -> set[str]:
    return {".".join(path.parent.relative_to(REPOSITORY).parts) for path in PACKAGE.rglob("*.py")
            if "__pycache__" not in path.parts}


def test_every_code_folder_is_a_listed_regular_package() -> None:
    folders = code_folders()
    assert sorted(name for name in folders if not (REPOSITORY / name.replace(".", "/") / "__init__.py").is_file()) == []
    assert set(listed(setup_options()["packages"])) == folders | set(DATA_PACKAGES)
    mapping = dict(line.split(" = ") for line in listed(setup_options()["package_dir"]))
    assert mapping == DATA_PACKAGES


def imported_libraries() -> set[str]:
    """Top-level names of what hwcodesign imports that is neither itself nor the standard library."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name not in {"hwcodesign", "__future__"}}


def test_the_base_install_is_exactly_what_hwcodesign_imports() -> None:
    required = {normalized(re.match(r"[A-Za-z0-9_.-]+", line).group()) for line in listed(setup_options()["install_requires"])}
    distributions = packages_distributions()
    undeclared = [name for name in sorted(imported_libraries())
                  if not {normalized(dist) for dist in distributions.get(name, [name])} & required]
    assert undeclared == []
    unused = {dist for dist in required
              if not any(dist in map(normalized, distributions.get(name, [name])) for name in imported_libraries())}
    assert sorted(unused) == []
    assert "torch" not in required
