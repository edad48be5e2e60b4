"""Reading an ONNX model and refusing, early and by name, what can never become hardware.

The checks here run before lowering so every later stage can rely on: a structurally valid model
(ONNX checker), static shapes for every spatial dimension (hardware line buffers and loop bounds
are fixed at synthesis), and float or integer 2-D/4-D inputs.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from hwcodesign.errors import ModelFormatError, UnsupportedModelError
from hwcodesign.ir.ops import Shape


def read_model(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """Load and check a model; a file that is missing, truncated or invalid is a ModelFormatError."""
    if isinstance(source, onnx.ModelProto):
        model = source
        origin = "the given ModelProto"
    else:
        path = Path(source)
        origin = str(path)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file")
        data = path.read_bytes()
        if not data:
            raise ModelFormatError(f"{path}: file is empty")
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except DecodeError as error:
            raise ModelFormatError(
                f"{path}: not a readable ONNX protobuf (truncated or corrupted file?): {error}"
            ) from None
        if not model.graph.node and not model.graph.output:
            raise ModelFormatError(f"{path}: parsed as protobuf but holds no ONNX graph")
        if _has_external(model):
            onnx.load_external_data_for_model(model, str(path.parent))
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ModelFormatError(f"{origin}: fails the ONNX checker: {first_line}") from None
    return model


def _has_external(model: onnx.ModelProto) -> bool:
    return any(
        init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer
    )


def static_input_shape(value: onnx.ValueInfoProto) -> Shape:
    """The input's shape as 4-D NCHW; batch may be symbolic (taken as 1), nothing else may."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise UnsupportedModelError(value.name, "graph input", "the input has no declared shape")
    dims = list(tensor_type.shape.dim)
    if len(dims) not in (2, 4):
        raise UnsupportedModelError(
            value.name, "graph input", f"rank {len(dims)} input; expected NCHW (4-D) or NC (2-D)"
        )
    shape = []
    axis_names = "NCHW" if len(dims) == 4 else "NC"
    for axis, dim in enumerate(dims):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(dim.dim_value)
        elif axis == 0:
            shape.append(1)
        else:
            symbol = dim.dim_param or "?"
            raise UnsupportedModelError(
                value.name,
                "graph input",
                f"dimension {axis_names[axis]} is dynamic ('{symbol}'); hardware needs a fixed "
                "size: export the model with a static input shape",
            )
    if shape[0] != 1:
        raise UnsupportedModelError(
            value.name,
            "graph input",
            f"batch {shape[0]}: the accelerator streams one frame at a time; export with batch 1",
        )
    while len(shape) < 4:
        shape.append(1)
    return tuple(shape)  # type: ignore[return-value]


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The model's real inputs (older exporters also list every initializer as an input)."""
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]
