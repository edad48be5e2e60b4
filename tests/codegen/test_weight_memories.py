"""Each MAC stage's weight ROMs bound where its folding puts them (BIND_STORAGE rom_1p in block
RAM or LUTRAM): a project mixing both passes `hwcodesign check` and runs bit-exact in C simulation."""

from __future__ import annotations

import re
from pathlib import Path

from support.codegen import assert_bit_exact, random_frames
from support.qonnx_by_hand import qonnx_two_convs

from hwcodesign.backends.choose import emit_project
from hwcodesign.boards import load_board
from hwcodesign.check import check_project
from hwcodesign.hardware.ctext import WEIGHT_MEMORY_CODES, identifier
from hwcodesign.hardware.folding import Folding
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.ops import Conv, Pool
from hwcodesign.passes import load_onnx, optimize

BIND = re.compile(r"hwc_weight_memory_tag<(?P<tag>HWC_WEIGHTS_\w+)>\) \{\n#pragma HLS INLINE\n"
                  r"#pragma HLS BIND_STORAGE variable=weights type=rom_1p impl=(?P<impl>\w+)\n\}")
ENUM = re.compile(r"enum hwc_weight_memory \{ (?P<body>[^}]*) \};")


def test_each_layer_binds_its_weights_where_its_folding_says_and_runs_bit_exact(tmp_path: Path) -> None:
    graph = optimize(load_onnx(qonnx_two_convs(2)))
    first, second = (op.name for op in graph if isinstance(op, Conv))
    pool = next(op.name for op in graph if isinstance(op, Pool))
    foldings = {first: Folding(2, 3, weights="lutram"), second: Folding(1, 2, "lut", "thresholds", "bram")}
    project = emit_project(graph, fixed_mapping(graph, load_board("pynqz2"), foldings), tmp_path / "memories")
    hls = project.root / "hls"
    params = {op.name: hls / "params" / f"{identifier(op.name, index)}.h" for index, op in enumerate(graph)}
    weight_memory = {name: int(found.group(1)) for name, path in params.items()
                     if path.is_file() and (found := re.search(r"WEIGHT_MEMORY = (\d+);", path.read_text()))}
    # the pool's placeholder table (never read) is a LUT ROM whatever its folding says
    assert weight_memory == {first: WEIGHT_MEMORY_CODES["lutram"], second: WEIGHT_MEMORY_CODES["bram"],
                             pool: WEIGHT_MEMORY_CODES["lutram"]}
    common = (hls / "layers" / "hwc_common.h").read_text()
    codes = {name: int(code) for name, code in re.findall(r"(HWC_WEIGHTS_\w+) = (\d+)", ENUM.search(common).group("body"))}
    binds = {codes[match["tag"]]: match["impl"] for match in BIND.finditer(common)}
    assert binds == {code: memory for memory, code in WEIGHT_MEMORY_CODES.items()}
    assert [result.name for result in check_project(project) if not result.passed] == []
    assert_bit_exact(graph, project, random_frames(graph, 6, seed=5), "weight memories")
