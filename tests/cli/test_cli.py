"""The CLI prints what the pipeline functions return; no logic of its own to test beyond that."""

from pathlib import Path

import onnx
import pytest
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.cli import main


def test_inspect_prints_one_row_per_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["layer", "op", "input"]
    conv_row = next(line for line in lines if line.startswith("conv "))
    assert "Conv 3x3/s1" in conv_row and "6x10x10" in conv_row and "int8" in conv_row
    assert "1,620" in conv_row or "16,200" in conv_row  # 6*10*10*27 MACs
    assert "2 layers" in out


def test_inspect_raw_shows_unoptimized_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), path)
    assert main(["inspect", "--raw", str(path)]) == 0


def test_boards_lists_all_five(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in ("ultra96v2", "zcu102", "zcu104", "kv260", "pynqz2"):
        assert name in out
    assert "xczu3eg-sbva484-1-i" in out and "70560" in out


def test_simulate_prints_table_and_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), model)
    out = tmp_path / "report"
    assert main(["simulate", str(model), "--board", "ultra96v2", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "% of bottleneck" in captured.out and "fps" in captured.out
    assert "mapping onto ultra96v2" in captured.err  # progress lines go to stderr
    assert (out / "report.json").is_file() and (out / "report.html").is_file()


def test_simulate_infeasible_fps_leaves_no_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), model)
    out = tmp_path / "report"
    assert main(["simulate", str(model), "--board", "pynqz2", "--fps", "1e12", "-o", str(out)]) == 2
    assert "requested fps" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("cap", ["dsp", "dsp=2", "urams=0.5", "lut=x"])
def test_simulate_rejects_bad_caps(tmp_path: Path, cap: str, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), model)
    with pytest.raises(SystemExit) as stop:  # refused by argparse, before any work
        main(["simulate", str(model), "--cap", cap, "-o", str(tmp_path / "r")])
    assert stop.value.code == 2
    assert "argument --cap" in capsys.readouterr().err


def test_a_clock_option_sets_the_design_clock_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--clock reaches the cycle budget, the reported frame rate, the HLS clock period and the
    PS's PL clock in the block design; a clock the board's fabric will not run is refused."""
    import json

    model = tmp_path / "m.onnx"
    onnx.save(conv_bn_relu_qdq(), model)
    assert main(["simulate", str(model), "--board", "pynqz2", "--clock", "150", "-o", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["board"]["clock_mhz"] == 150
    assert report["summary"]["fps"] == pytest.approx(150e6 / report["summary"]["interval_cycles"])
    assert main(["compile", str(model), "--board", "pynqz2", "--clock", "125", "-o", str(tmp_path / "p")]) == 0
    assert "create_clock -period 8 " in (tmp_path / "p" / "hls" / "run_hls.tcl").read_text()
    assert "FREQMHZ {125}" in (tmp_path / "p" / "vivado" / "block_design.tcl").read_text()
    capsys.readouterr()
    assert main(["simulate", str(model), "--board", "pynqz2", "--clock", "400"]) == 2
    assert "PYNQ-Z2's PL clock must be 1..250 MHz" in capsys.readouterr().err
