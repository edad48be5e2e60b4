"""Running a host part on the tool's side, frame by frame, with the onnxruntime reference.

The board runs the same parts with the driver's runtime (onnxruntime or its numpy executor,
`hwcodesign/host/runtime.py`); here, before a project exists (`--inputs` frames for a model with a
host part before its accelerator), the reference runner is the one way to run ONNX.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from hwcodesign.reference import Reference


def run_host_part(model: onnx.ModelProto, frames: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
    """`outputs` of `model` for N frames by input name (N, ...), run one frame at a time (host parts
    are batch-1 models), stacked along N."""
    reference = Reference(model)
    count = next(iter(frames.values())).shape[0]
    runs = [reference.run({name: frames[name][i:i + 1] for name in reference.input_names}, outputs)
            for i in range(count)]
    return {name: np.concatenate([run[name] for run in runs]) for name in outputs}
