"""Folding files: compile writes every stage's folding into the project; `--folding` pins some or
all layers to a file's foldings (the rest optimised); bad files are refused in one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from support.qonnx_by_hand import qonnx_two_convs

from hwcodesign.backends.choose import map_to_board
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.cli import main
from hwcodesign.flows.compile import compile_model
from hwcodesign.hardware.folding import Folding
from hwcodesign.mapper.folding_file import FoldingFileError, folding_json, read_folding_file
from hwcodesign.passes import load_onnx, optimize


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("folding") / "two_convs.onnx"
    onnx.save(qonnx_two_convs(2), path)
    return path


def test_a_projects_folding_file_reproduces_its_design(model: Path, tmp_path: Path) -> None:
    result = compile_model(model, "pynqz2", tmp_path / "p", fps=2000)
    pinned = read_folding_file(tmp_path / "p" / "folding.json")
    assert pinned == {name: f for name, f in result.mapping.foldings.items() if name in pinned}
    assert len(pinned) == len(result.graph) - 1  # every stage but the input stream
    again = map_pipeline(result.graph, load_board("pynqz2"), pinned=pinned)
    assert {name: again.foldings[name] for name in pinned} == pinned
    assert again.costs == result.mapping.costs


def test_pinned_layers_keep_their_folding_and_the_rest_are_optimised(model: Path) -> None:
    graph = optimize(load_onnx(model))
    board = load_board("pynqz2")
    free = map_pipeline(graph, board)
    first = next(op.name for op in graph if op.kind == "Conv")
    slow = Folding(1, 1, "dsp", "multiply")
    pinned = map_pipeline(graph, board, pinned={first: slow})
    assert pinned.foldings[first] == slow != free.foldings[first]
    assert pinned.costs[first].cycles > free.costs[first].cycles


def test_the_weight_memory_round_trips_and_either_memory_may_be_pinned(model: Path, tmp_path: Path) -> None:
    """A file names each layer's weight memory; a pin may put a layer's weights in a memory the
    mapper is not offered there (conv1's ROMs are nearly empty blocks: LUTRAM alone is offered),
    priced as it names it."""
    graph = optimize(load_onnx(model))
    first = next(op.name for op in graph if op.kind == "Conv")
    foldings = {first: Folding(2, 3, "dsp", "thresholds", "lutram"), "other": Folding(4, 1)}
    path = tmp_path / "folding.json"
    path.write_text(folding_json(foldings))
    assert json.loads(path.read_text())["layers"][first]["weights"] == "lutram"
    assert read_folding_file(path) == foldings
    board = load_board("pynqz2")
    lutram = map_pipeline(graph, board, pinned={first: foldings[first]})
    bram = map_pipeline(graph, board, pinned={first: replace(foldings[first], weights="bram")})
    assert lutram.foldings[first].weights == "lutram" and bram.foldings[first].weights == "bram"
    assert bram.costs[first].bram18k > lutram.costs[first].bram18k and bram.costs[first].lut < lutram.costs[first].lut


def write(path: Path, layers: object, **header: object) -> Path:
    path.write_text(json.dumps({"format": "hwcodesign-folding", "version": 1, **header, "layers": layers}))
    return path


@pytest.mark.parametrize(("layers", "message"), [
    ({"nowhere": {"pe": 1, "simd": 1}}, "names layer 'nowhere', which the model does not have"),
    ({"conv1": {"pe": 5, "simd": 1}}, r"layer 'conv1' \(Conv\): PE5 SIMD1 is not a folding it builds"),
])
def test_a_folding_the_model_cannot_take_is_refused_naming_the_layer(model: Path, tmp_path: Path, layers: object,
                                                                    message: str) -> None:
    graph = optimize(load_onnx(model))
    with pytest.raises(FoldingFileError, match=message):
        map_pipeline(graph, load_board("pynqz2"), pinned=read_folding_file(write(tmp_path / "f.json", layers)))


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not JSON"),
    ('{"format": "other", "version": 1, "layers": {}}', "not a hwcodesign-folding file"),
    ('{"format": "hwcodesign-folding", "version": 1, "layers": {"a": {"pe": 0, "simd": 1}}}', "'pe' must be a positive"),
    ('{"format": "hwcodesign-folding", "version": 1, "layers": {"a": {"pe": 1, "simd": 1, "mac": "x"}}}', "'mac' must"),
    ('{"format": "hwcodesign-folding", "version": 1, "layers": {"a": {"pe": 1, "simd": 1, "weights": "uram"}}}',
     "layer 'a': 'weights' must be one of bram, lutram, not 'uram'"),
    ('{"format": "hwcodesign-folding", "version": 1, "layers": {"a": {"pe": 1, "simd": 1, "speed": 2}}}',
     "unknown key 'speed'"),
])
def test_a_malformed_folding_file_is_refused_in_one_line(model: Path, tmp_path: Path, text: str, message: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(["simulate", str(model), "--board", "pynqz2", "--folding", str(path), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "r").exists()


def test_the_engine_refuses_a_folding_file(model: Path) -> None:
    graph = optimize(load_onnx(model))
    with pytest.raises(FoldingFileError, match="pins dataflow stages"):
        map_to_board(graph, load_board("pynqz2"), architecture="sequential", pinned={"conv1": Folding()})
