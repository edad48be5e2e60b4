"""A layer-sequential engine project's driver/notebook.ipynb, executed headlessly on the emulated
board (one execution: these are slow). The notebook is the same as for a dataflow project; what
differs underneath is the driver (params.bin, registers, ap_start per frame) and report.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.engine import compile_small_engine
from support.notebooks import (
    errors,
    execute_notebook,
    images,
    isolate_jupyter,
    notebook_result,
    notebook_text,
)


def test_engine_notebook_runs_bit_exact_on_the_emulated_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = compile_small_engine(tmp_path / "compiled")
    assert result.project.architecture == "sequential"
    isolate_jupyter(monkeypatch, tmp_path)
    for name in ("HWCODESIGN_PROJECT", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HWCODESIGN_BACKEND", "emulate")
    driver_dir = result.project.root / "driver"
    notebook = execute_notebook(driver_dir / "notebook.ipynb", driver_dir)
    assert not errors(notebook)
    outcome = notebook_result(notebook)
    text = notebook_text(notebook)
    assert outcome["backend"] == "emulate"
    assert outcome["bit_exact"] is True, text
    assert outcome["differing_elements"] == 0
    assert outcome["float_path_ok"] is True, text
    assert outcome["fps"] > 0
    assert outcome["max_lsb_vs_onnxruntime"] is not None and outcome["max_lsb_vs_onnxruntime"] <= 1, text
    assert "bit-exact with the golden model: True" in text
    # the plot and the estimate come from the engine's report.json, one folder up
    report = json.loads((result.project.root / "report.json").read_text())
    assert report["architecture"] == "sequential"
    assert f"compiler estimate for the hardware: {report['summary']['fps']:.1f} fps" in text
    assert images(notebook) == 1
