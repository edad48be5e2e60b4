"""Careless and hostile values on the command line (issue 15, finding 5): every bad option value,
every bad frame file and Ctrl-C end in exit 2 (130 for Ctrl-C) with one line naming the option or
file, never a traceback."""

from __future__ import annotations

import importlib
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.onnx_models import two_inputs_two_outputs_qdq
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.cli import main

cli = importlib.import_module("hwcodesign.cli.commands")

INPUT_SHAPE = (3, 10, 10)  # conv_bn_relu_qdq's input 'xq', uint8


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), path)
    return path


def exit_code(argv: list[str]) -> int:
    """What the shell sees: main's return value, or the code argparse exits with."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def assert_refused(code: int, err: str, *names: str) -> None:
    """Exit 2, no traceback, and an error line naming every one of `names`."""
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    for name in names:
        assert name in errors[0], err


BAD_VALUES = [
    ("--fps", "nan"), ("--fps", "inf"), ("--fps", "-3"), ("--fps", "0"), ("--fps", "1e-300"), ("--fps", "x"),
    ("--density", "0"), ("--density", "1.5"), ("--density", "nan"), ("--density", "-0.2"),
    ("--percentile", "-1"), ("--percentile", "101"), ("--percentile", "nan"),
    ("--cap", "dsp"), ("--cap", "dsp=2"), ("--cap", "urams=0.5"), ("--cap", "lut=x"), ("--cap", "lut=nan"),
    ("--time-limit", "0"), ("--time-limit", "nan"), ("--time-limit", "-5"), ("--time-limit", "inf"),
]


@pytest.mark.parametrize("command", ["simulate", "compile"])
@pytest.mark.parametrize(("option", "value"), BAD_VALUES)
def test_bad_option_values_are_refused_by_the_parser(model: Path, tmp_path: Path, command: str, option: str,
                                                     value: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = exit_code([command, str(model), option, value, "-o", str(out)])
    assert_refused(code, capsys.readouterr().err, f"argument {option}", value)
    assert not out.exists()


@pytest.mark.parametrize(("option", "value"), [
    ("--max-sensitivity", "nan"), ("--max-sensitivity", "-1"), ("--max-sensitivity", "inf"),
    ("--fps", "nan"), ("--fps", "1e-300"),
    ("--formats", "int8,int8"), ("--formats", "int8,int7x"), ("--formats", ","), ("--formats", "dybit4,DyBit4"),
    ("--time-limit", "0"),
])
def test_bad_search_values_are_refused_by_the_parser(model: Path, tmp_path: Path, option: str, value: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = exit_code(["search", str(model), option, value, "-o", str(out)])
    assert_refused(code, capsys.readouterr().err, f"argument {option}")
    assert not out.exists()


def write_npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def good_frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, *INPUT_SHAPE)).astype(np.uint8)


def truncated(path: Path) -> Path:
    np.save(path, good_frames())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def pickled(path: Path) -> Path:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


def pickle_file(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"xq": [1, 2, 3]}))
    return path


def npz_pickled(path: Path) -> Path:
    np.savez(path, xq=np.array([object()] * 3, dtype=object))
    return path


def npz_truncated(path: Path) -> Path:
    np.savez(path, xq=good_frames())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    return path


def edited(path: Path, old: bytes, new: bytes, archive: bool = False) -> Path:
    """A good frames file with bytes `old` replaced by `new` (the same length: offsets stay valid)."""
    assert len(old) == len(new)
    if archive:
        np.savez(path, xq=good_frames())
    else:
        np.save(path, good_frames())
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    return path


def encrypted_member(path: Path) -> Path:
    """An .npz whose member the zip directory flags as strongly encrypted: zipfile refuses it."""
    np.savez(path, xq=good_frames())
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the central directory entry; its flags are at offset 8
    data[entry + 8] |= 0x41
    path.write_bytes(bytes(data))
    return path


FRAME_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    # the header is a Python literal numpy parses: an unbalanced one fails in its tokenizer
    "mangled-header": (lambda p: edited(p, b"10), }", b"10,  }"), "not a readable .npy or .npz"),
    "huge-declared-shape": (lambda p: edited(p, b"(2, 3, 10, 10)", b"(99999999999,)"),
                            "not a readable .npy or .npz"),
    "npz-encrypted-member": (encrypted_member, "not a readable .npy or .npz"),
    "garbage": (lambda p: (p.write_bytes(np.random.default_rng(0).bytes(300)), p)[1], "not a readable .npy or .npz"),
    "empty": (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    "truncated": (truncated, "not a readable .npy or .npz"),
    "pickled-npy": (pickled, "pickled"),
    "pickle-file": (pickle_file, "not a readable .npy or .npz"),
    "pickled-npz": (npz_pickled, "pickled"),
    "truncated-npz": (npz_truncated, "not a readable .npy or .npz"),
    "wrong-shape": (lambda p: write_npy(p, np.zeros((2, 3, 9, 10), np.uint8)), "must be (N, 3, 10, 10)"),
    "one-dim": (lambda p: write_npy(p, np.zeros(300, np.uint8)), "must be (N, 3, 10, 10)"),
    "scalar": (lambda p: write_npy(p, np.array(3.0)), "must be (N, 3, 10, 10)"),
    "zero-frames": (lambda p: write_npy(p, np.zeros((0, *INPUT_SHAPE), np.uint8)), "no frames"),
    "bool": (lambda p: write_npy(p, np.zeros((1, *INPUT_SHAPE), bool)), "bool"),
    "complex": (lambda p: write_npy(p, np.zeros((1, *INPUT_SHAPE), complex)), "complex"),
    "string": (lambda p: write_npy(p, np.full((1, *INPUT_SHAPE), "a")), "<U1"),
    "nan": (lambda p: write_npy(p, np.full((1, *INPUT_SHAPE), np.nan, np.float32)), "NaN"),
    "inf": (lambda p: write_npy(p, np.full((1, *INPUT_SHAPE), np.inf)), "infinite"),
    "out-of-range": (lambda p: write_npy(p, np.full((1, *INPUT_SHAPE), 300, np.int32)), "outside uint8"),
    "negative": (lambda p: write_npy(p, np.full((1, *INPUT_SHAPE), -1, np.int64)), "outside uint8"),
    "npz-wrong-key": (lambda p: (np.savez(p, other=good_frames()), p)[1], "no array for input 'xq'"),
    "directory": (lambda p: (p.mkdir(), p)[1], "is a directory"),
    "missing": (lambda p: p, "no such file"),
}


@pytest.mark.parametrize("case", sorted(FRAME_FILES))
@pytest.mark.parametrize("command", ["simulate", "compile"])
def test_bad_frame_files_are_refused_naming_the_file(model: Path, tmp_path: Path, command: str, case: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    make, problem = FRAME_FILES[case]
    suffix = ".npz" if "npz" in case else ".npy"
    frames = make(tmp_path / f"frames{suffix}")
    out = tmp_path / "out"
    code = exit_code([command, str(model), "--inputs", str(frames), "-o", str(out)])
    assert_refused(code, capsys.readouterr().err, str(frames), problem)
    assert not out.exists()


def test_a_device_is_not_a_frame_file(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = exit_code(["simulate", str(model), "--inputs", "/dev/null", "-o", str(tmp_path / "out")])
    assert_refused(code, capsys.readouterr().err, "/dev/null", "is not a regular file")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled project for the csim cases (they fail before the C simulation runs)."""
    folder = tmp_path_factory.mktemp("csim_values")
    onnx.save(conv_bn_relu_qdq(), folder / "model.onnx")
    assert main(["compile", str(folder / "model.onnx"), "-o", str(folder / "proj")]) == 0
    return folder / "proj"


@pytest.mark.parametrize("case", ["garbage", "pickled-npy", "nan", "out-of-range", "zero-frames", "directory",
                                  "string", "wrong-shape"])
def test_csim_refuses_bad_frame_files_like_compile(project: Path, tmp_path: Path, case: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    make, problem = FRAME_FILES[case]
    frames = make(tmp_path / "frames.npy")
    capsys.readouterr()
    code = exit_code(["csim", str(project), str(frames), "-o", str(tmp_path / "y.npz")])
    assert_refused(code, capsys.readouterr().err, str(frames), problem)
    assert not (tmp_path / "y.npz").exists()


def test_csim_accepts_float_and_single_frames(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = write_npy(tmp_path / "x.npy", np.random.default_rng(1).random(INPUT_SHAPE).astype(np.float32))
    assert exit_code(["csim", str(project), str(frames), "-o", str(tmp_path / "y.npz")]) == 0
    outputs = np.load(tmp_path / "y.npz")
    assert outputs.files and all(outputs[name].shape[0] == 1 for name in outputs.files)
    # what the library's build cost, as it was measured (csim.build_cost)
    assert re.search(r"g\+\+ built it in \d+\.\d s, peak memory \d+ MB", capsys.readouterr().out)


def interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("stage", ["load_partitioned", "simulate_model", "write_report"])
def test_ctrl_c_exits_130_with_one_line(model: Path, tmp_path: Path, stage: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, stage, interrupt)
    out = tmp_path / "out"
    assert exit_code(["simulate", str(model), "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "hwcodesign: interrupted"
    assert not out.exists()


def interrupt_inside_a_class_body(*args: object, **kwargs: object) -> None:
    """What Python makes of a Ctrl-C landing in `__set_name__` while a class is created (seen while
    matplotlib was being imported): a RuntimeError caused by the KeyboardInterrupt."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as ctrl_c:
        raise RuntimeError("Error calling __set_name__ on '_axis_method_wrapper' instance") from ctrl_c


def test_ctrl_c_wrapped_by_the_interpreter_still_exits_130(model: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "write_report", interrupt_inside_a_class_body)
    assert exit_code(["simulate", str(model), "-o", str(tmp_path / "out")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1] == "hwcodesign: interrupted"


def test_a_programming_error_is_still_a_traceback(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "load_partitioned", lambda *args: [][1])
    with pytest.raises(IndexError):
        main(["inspect", str(model)])


def test_ctrl_c_with_debug_shows_the_traceback(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "load_partitioned", interrupt)
    with pytest.raises(KeyboardInterrupt):
        main(["--debug", "inspect", str(model)])


@pytest.mark.parametrize("other", ["fewer_channels", "other_network"])
def test_csim_model_of_a_different_network_is_refused_before_the_run(project: Path, tmp_path: Path, other: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{other}.onnx"
    if other == "fewer_channels":
        onnx.save(conv_bn_relu_qdq(channels=4), path)
    else:
        onnx.save(two_inputs_model(tmp_path), path)
    frames = write_npy(tmp_path / "x.npy", good_frames())
    capsys.readouterr()
    code = exit_code(["csim", str(project), str(frames), "--model", str(path), "-o", str(tmp_path / "y.npz")])
    assert_refused(code, capsys.readouterr().err, str(path), "is not the network")
    assert not (tmp_path / "y.npz").exists()


def two_inputs_model(folder: Path) -> onnx.ModelProto:
    return onnx.load(two_inputs_two_outputs_qdq(folder / "two.onnx"))


@pytest.mark.parametrize("command", ["simulate", "compile"])
def test_time_limit_reaches_the_mapper(model: Path, tmp_path: Path, command: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    simulate_module = importlib.import_module("hwcodesign.flows.simulate")
    real = simulate_module.map_to_board
    seen = []

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs["time_limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(simulate_module, "map_to_board", spy)
    assert exit_code([command, str(model), "--time-limit", "7.5", "-o", str(tmp_path / "out")]) == 0
    assert exit_code([command, str(model), "-o", str(tmp_path / "out2")]) == 0
    assert seen == [7.5, 60.0]


def test_ctrl_c_while_a_project_is_written_leaves_nothing(model: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("hwcodesign.outputs.write.manifest_text", interrupt)  # after the files, before the swap
    out = tmp_path / "builds" / "proj"
    assert exit_code(["compile", str(model), "-o", str(out)]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "hwcodesign: interrupted"
    assert list((tmp_path / "builds").iterdir()) == []  # neither the project nor a staging folder


@pytest.mark.parametrize("command", ["simulate", "compile", "search"])
def test_an_empty_output_path_is_refused_not_taken_for_the_default(model: Path, tmp_path: Path, command: str,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    code = exit_code([command, str(model), "-o", ""])
    assert_refused(code, capsys.readouterr().err, "argument -o", "empty path")
    assert sorted(tmp_path.iterdir()) == before  # no build/ or reports/ written instead


def test_a_model_path_that_links_to_itself_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loop = tmp_path / "loop.onnx"
    loop.symlink_to(loop.name)
    code = exit_code(["compile", str(loop), "-o", str(tmp_path / "out")])
    assert_refused(code, capsys.readouterr().err, "loop.onnx")
    assert not (tmp_path / "out").exists()


def test_a_mapping_that_does_not_fit_names_the_cap_and_the_largest_layer(model: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = exit_code(["simulate", str(model), "--architecture", "dataflow", "--cap", "lut=1e-6",
                      "-o", str(tmp_path / "out")])
    assert_refused(code, capsys.readouterr().err, "LUT needs at least", "in layer '", "under --cap lut=1e-06")


class InterruptedImport:
    """A meta-path finder standing in for a Ctrl-C while the commands' modules are being loaded."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "hwcodesign.cli.commands":
            raise KeyboardInterrupt
        return None


def test_ctrl_c_while_the_pipeline_is_still_loading_exits_130(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    import hwcodesign.cli

    monkeypatch.delitem(sys.modules, "hwcodesign.cli.commands")
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    assert hwcodesign.cli.main(["boards"]) == 130
    assert capsys.readouterr().err == "hwcodesign: interrupted\n"


def test_importing_the_package_loads_no_pipeline() -> None:
    """`import hwcodesign` stays instant (the CLI loads the pipeline inside its Ctrl-C handling)."""
    import subprocess
    import sys

    code = "import sys, hwcodesign, hwcodesign.cli; print(sorted(m for m in ('onnx', 'pulp', 'numpy') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
