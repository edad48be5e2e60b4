"""`hwcodesign check PROJECT`: what a generated project must satisfy before Vitis or Vivado see it.

Three checks, each in its own module, each returning `file:line: message` problems:
- `synthesizable`: the HLS C++ stays within what Vitis HLS synthesizes (restricted C++, bounded
  loops with trip counts, no recursion, no dynamic allocation);
- `tcl`: every vendor script runs to its end under tclsh with Vitis/Vivado commands stubbed;
- C simulation build: the sources compile with g++ into the library `hwcodesign csim` loads
  (against Xilinx's own headers when given them).
The test suite uses the same functions, so a user's project is held to exactly what CI checks.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwcodesign.check.synthesizable import synthesis_problems
from hwcodesign.check.tcl import TCLSH, TCLSH_MISSING, fake_hls_export, fake_vivado_outputs, run_tcl
from hwcodesign.codegen.csim import CsimError, build_library
from hwcodesign.codegen.project import Project

TCL_SCRIPTS = ("hls/run_hls.tcl", "vivado/block_design.tcl", "vivado/build_bitstream.tcl")
TCL_FRAME = re.compile(r'\(file "(?P<file>[^"]+)" line (?P<line>\d+)\)')


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: its name, what it covered, its problems, and why it was skipped."""

    name: str
    covered: str
    problems: tuple[str, ...] = ()
    skipped: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems


def check_synthesizable(project: Project) -> CheckResult:
    return CheckResult("synthesizable C++", "restricted C++, bounded loops, trip counts, no recursion",
                       tuple(synthesis_problems(project.root)))


def check_tcl(project: Project) -> CheckResult:
    """Run the scripts in the order `make bitstream` does, on a copy of the project (the user's
    folder stays untouched), each step finding what the one before it would have left."""
    scripts = [name for name in TCL_SCRIPTS if (project.root / name).is_file()]
    covered = ", ".join(scripts) + " under tclsh with Vitis/Vivado stubbed"
    if TCLSH is None:
        return CheckResult("Vitis/Vivado Tcl", covered, skipped=TCLSH_MISSING)
    problems = []
    with tempfile.TemporaryDirectory(prefix="hwc_tcl_") as scratch:
        copy = Path(scratch) / "project"
        shutil.copytree(project.root, copy, ignore=shutil.ignore_patterns("build", "output"))
        leaves = {"hls/run_hls.tcl": lambda: fake_hls_export(copy, project.name),
                  "vivado/block_design.tcl": lambda: fake_vivado_outputs(copy, project.name)}
        for name in scripts:
            problem = tcl_problem(copy, name, Path(scratch))
            if problem:
                problems.append(problem)
            leaves.get(name, lambda: None)()
    return CheckResult("Vitis/Vivado Tcl", covered, tuple(problems))


def tcl_problem(root: Path, name: str, scratch: Path) -> str | None:
    """`file:line: message` when the script `name` does not run to its end, else None."""
    script = (root / name).resolve()
    run = run_tcl(script, scratch)
    if run.completed and run.returncode == 0:
        return None
    line = 0
    for frame in TCL_FRAME.finditer(run.stderr):
        if Path(frame.group("file")).resolve() == script:
            line = int(frame.group("line"))
            break
    lines = [text.strip() for text in run.stderr.splitlines() if text.strip()]
    reason = lines[0] if lines else f"stopped before its end (exit status {run.returncode})"
    return f"{name}:{line}: {reason}"


def check_csim_build(project: Project, xilinx_headers: Path | None = None) -> CheckResult:
    headers = f"Xilinx's headers in {xilinx_headers}" if xilinx_headers else "the project's shim headers"
    try:
        build_library(project, xilinx_headers)
    except CsimError as error:
        return CheckResult("C simulation build", f"g++ build of the csim library against {headers}", (str(error),))
    return CheckResult("C simulation build", f"g++ build of the csim library against {headers}")


CHECKS: tuple[Callable[[Project], CheckResult], ...] = (check_synthesizable, check_tcl)


def check_project(project: Project, xilinx_headers: Path | None = None) -> list[CheckResult]:
    """Every check on `project`, in order."""
    return [check(project) for check in CHECKS] + [check_csim_build(project, xilinx_headers)]


__all__ = ["CheckResult", "check_csim_build", "check_project", "check_synthesizable", "check_tcl"]
