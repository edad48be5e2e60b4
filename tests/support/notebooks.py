"""Executing notebooks headlessly (nbclient + ipykernel) with this venv's Python as the kernel."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from hwcodesign.codegen.notebook import result_from_text


def install_kernel(root: Path) -> Path:
    """A `python3` kernelspec running `sys.executable` (this venv), under root; returns JUPYTER_PATH.

    The kernelspec ipykernel ships says `python`, which is whatever PATH finds first: the
    notebook must import this checkout's hwcodesign and numpy, so name the interpreter exactly.
    """
    kernel = root / "kernels" / "python3"
    kernel.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (hwcodesign tests)", "language": "python",
    }
    (kernel / "kernel.json").write_text(json.dumps(spec))
    return root


def isolate_jupyter(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """Point Jupyter at a private kernelspec and private config/runtime/IPython folders."""
    monkeypatch.setenv("JUPYTER_PATH", str(install_kernel(tmp / "jupyter")))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp / "jupyter_config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp / "jupyter_runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp / "ipython"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp / "matplotlib"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)


def execute_notebook(path: Path, cwd: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Run every cell of `path` in a fresh python3 kernel started in `cwd`; raises on a failing cell.

    The kernel inherits os.environ (set HWCODESIGN_BACKEND etc. before calling).
    """
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def cell_text(cell: Any) -> str:
    """Everything a code cell printed (streams and text results)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(cell_text(cell) for cell in notebook.cells if cell.cell_type == "code")


def errors(notebook: nbformat.NotebookNode) -> list[str]:
    """Error outputs of any cell (nbclient raises on them; kept as a second check)."""
    return [f"{output.get('ename')}: {output.get('evalue')}" for cell in notebook.cells
            for output in cell.get("outputs", []) if output.get("output_type") == "error"]


def notebook_result(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The HWCODESIGN_NOTEBOOK_RESULT record the last cell printed."""
    result = result_from_text(notebook_text(notebook))
    assert result is not None, "the notebook printed no HWCODESIGN_NOTEBOOK_RESULT line:\n" + notebook_text(notebook)
    return result


def images(notebook: nbformat.NotebookNode) -> int:
    """How many PNG figures the notebook displayed."""
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))
