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
# Libraries the package may import only inside a function, in the named modules, which raise a
# HwcodesignError naming the extra when the library is absent: onnxruntime runs the reference
# (reference.py) and the QDQ quantizer (quantize.py) for the examples and the tests, never for
# compile/simulate/csim/package/search; the host parts' executor (host/runtime.py, embedded in the
# driver) uses it when the board has it and numpy otherwise.
# name -> (modules allowed to import it, the extra declaring it)
LAZY_OPTIONAL = {"onnxruntime": ({"hwcodesign/reference.py", "hwcodesign/quantize.py", "hwcodesign/host/runtime.py"},
                                 "examples")}


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


def import_sites() -> dict[str, set[tuple[str, bool]]]:
    """Top-level names of what hwcodesign imports that is neither itself nor the standard library,
    each with where: (module path, whether the import runs inside a function)."""
    sites: dict[str, set[tuple[str, bool]]] = {}

    def visit(node: ast.AST, path: str, in_function: bool) -> None:
        names: set[str] = set()
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {node.module.split(".")[0]}
        for name in names - {"hwcodesign", "__future__"} - set(sys.stdlib_module_names):
            sites.setdefault(name, set()).add((path, in_function))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, path, inner)

    for path in PACKAGE.rglob("*.py"):
        visit(ast.parse(path.read_text(), str(path)), path.relative_to(REPOSITORY).as_posix(), False)
    return sites


def imported_libraries() -> set[str]:
    """What the base install must provide: every import but the lazy optional ones."""
    return set(import_sites()) - set(LAZY_OPTIONAL)


def test_optional_libraries_are_imported_lazily_and_only_where_allowed() -> None:
    sites = import_sites()
    for name, (modules, extra) in LAZY_OPTIONAL.items():
        assert sites.get(name), f"{name} is allowed as a lazy optional import but nothing imports it"
        assert {path for path, _ in sites[name]} <= modules
        assert all(in_function for _, in_function in sites[name]), f"{name} imported at module level"
        declared = {normalized(re.match(r"[A-Za-z0-9_.-]+", line).group())
                    for line in listed(setup_options().parser["options.extras_require"][extra])}
        assert normalized(name) in declared


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
