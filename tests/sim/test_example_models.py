"""The bundled example models: golden integers vs onnxruntime, element by element and by argmax."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from support.compare import compare_with_onnxruntime
from support.examples import build_models_module

from hwcodesign.passes import load_onnx, optimize

INPUTS = 200


def reference(key: str, path: Path) -> onnx.ModelProto:
    """What onnxruntime runs: the QDQ model itself, or the QONNX model with Quant expanded."""
    model = onnx.load(path)
    return build_models_module().expand_qonnx_quant(model) if key == "cnv" else model


@pytest.mark.parametrize("key", ["w8a8", "w4a8", "cnv"])
def test_example_model_matches_onnxruntime(key: str, example_models: dict[str, Path]) -> None:
    bm = build_models_module()
    path = example_models[key]
    graph = optimize(load_onnx(path))
    samples, _ = bm.synthetic_samples(INPUTS // 2, seed=0, stream=99)
    noise = np.random.default_rng(5).uniform(0, 1, (INPUTS // 2,) + samples.shape[1:]).astype(np.float32)
    inputs = [x[None] for x in np.concatenate([samples, noise])]
    agreement = compare_with_onnxruntime(onnx.load(path), inputs, graph=graph, reference=reference(key, path))
    print(f"{key}: {agreement}")
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.9, str(agreement)
    assert agreement.argmax_agreement >= 0.99, str(agreement)
