"""examples/dybit/run.py end to end on the session's ResNet-8: search, compile, C simulation.

Smaller than the example's defaults (8 calibration frames, 40 test frames, 24 foldings per
layer and format) so it runs in well under a minute; the benchmark runs the full size.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.examples import load_script

from hwcodesign.frontend.formats import read_formats
from hwcodesign.passes import load_onnx

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dybit" / "run.py"


@pytest.fixture(scope="module")
def results(example_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("dybit_example")
    shutil.copy(example_models["w8a8"], out / example_models["w8a8"].name)  # the example reuses it
    run = load_script(EXAMPLE, "dybit_example_run")
    return run.run(out, calibration=8, test=40, max_candidates=24), out


def test_chosen_mix_is_faster_within_the_budget(results: tuple[dict, Path]) -> None:
    """Whether DyBit layers are chosen is the search's call, not an invariant: with LUT
    multipliers priced for 4x8 products an int4 lane (36 LUTs) is cheaper than a dybit4 lane
    (52 plus its decoder), so at this budget the mix may be int4 where dybit4 is less sensitive.
    The DyBit datapath is compiled and simulated in tests/codegen/test_csim_dybit.py."""
    result, _ = results
    assert result["dybit_layers"] == sum(f.startswith("dybit") for f in result["formats"].values())
    assert result["sensitivity"] <= result["max_sensitivity"]
    assert result["mixed_fps"] > result["uniform_int8_fps"]
    assert result["speedup"] == pytest.approx(result["mixed_fps"] / result["uniform_int8_fps"], rel=1e-2)
    assert result["fastest_front_fps"] >= result["mixed_fps"]
    assert result["weight_kib"]["mixed"] < result["weight_kib"]["int8"]


def test_compiled_mix_is_bit_exact_and_agrees_with_int8(results: tuple[dict, Path]) -> None:
    result, _ = results
    assert result["csim_mismatches"] == 0 and result["csim_frames"] == 16
    for row in result["evaluation"].values():
        assert row["top1_agreement"] >= 0.8
        assert abs(row["mixed_accuracy"] - row["int8_accuracy"]) <= 0.15


def test_written_formats_are_the_compiled_ones(results: tuple[dict, Path]) -> None:
    result, out = results
    search_dir = out / "search"
    on_disk = json.loads((search_dir / "formats.json").read_text())["layers"]
    assert on_disk == result["formats"]
    mixed_model = next(search_dir.glob("*_mixed.onnx"))
    import onnx

    assert {k: str(v) for k, v in read_formats(onnx.load(str(mixed_model))).items()} == result["formats"]
    graph = load_onnx(mixed_model)
    typed = {op.name: str(op.weight_type) for op in graph if hasattr(op, "weight_type")}
    assert all(typed[name] == fmt for name, fmt in result["formats"].items())
    sensitivities = json.loads((search_dir / "search.json").read_text())["sensitivities"]
    assert set(sensitivities) == set(on_disk)  # every weight layer was measured in every format
    assert all({"dybit4", "dybit3", "dybit2"} <= set(row) for row in sensitivities.values())
    page = (search_dir / "report.html").read_text()
    assert "Pareto front" in page and "data:image/png;base64," in page
    front = json.loads((search_dir / "search.json").read_text())["front"]
    assert [p["cycles"] for p in front] == sorted(p["cycles"] for p in front)
    assert all(a["sensitivity"] > b["sensitivity"] for a, b in zip(front, front[1:]))
