"""Reading an ONNX model and refusing, early and by name, what can never become hardware.

The checks here run before lowering so every later stage can rely on: a structurally valid model
(ONNX checker), static shapes for every spatial dimension (hardware line buffers and loop bounds
are fixed at synthesis), and float or integer 2-D/4-D inputs.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from hwcodesign.errors import ModelFormatError, ModelNote, UnsupportedModelError
from hwcodesign.frontend.validate import check_declared_sizes, gib
from hwcodesign.ir.op import Shape

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
"""The custom domains QONNX's quantizers (`Quant`, `BipolarQuant`, `Trunc`) are written in."""
MAX_PROTOBUF_BYTES = 2 << 30  # protobuf's own limit: a larger file is not a model, and is not read


def read_model(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """Load and check a model; a file that is missing, truncated or invalid is a ModelFormatError.

    This is the structural check; `type_error` adds the checker's type and shape inference.
    """
    origin = origin_of(source)
    if isinstance(source, onnx.ModelProto):
        model = source
        check_declared_sizes(model, origin)
    else:
        path = Path(source)
        model = _parse(path)
        check_declared_sizes(model, origin)
        if _has_external(model):
            try:
                onnx.load_external_data_for_model(model, str(path.parent))
            except (OSError, ValueError, onnx.checker.ValidationError) as error:
                raise ModelFormatError(f"{path}: cannot read its external data ({', '.join(_external_files(model))}): "
                                       f"{_first_line(error)}") from None
    model = with_qonnx_domains(model, origin)
    check_opset(model, origin)  # first: the checker reads every node by its opset's schema
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as error:
        raise ModelFormatError(f"{origin}: fails the ONNX checker: {_checker_message(error)}") from None
    return model


def with_qonnx_domains(model: onnx.ModelProto, origin: str) -> onnx.ModelProto:
    """The model with an opset import (version 1) for each QONNX custom domain its nodes use but it
    does not declare, as qonnx's own files and the QONNX model zoo's often leave out; qonnx reads
    them all the same, and the ONNX checker would refuse them before any op is looked at. The
    caller's model is not changed (a copy gets the imports), and a `ModelNote` says what was
    added. Any other undeclared domain is left for the checker to refuse."""
    declared = {entry.domain for entry in model.opset_import}
    missing = sorted({node.domain for node in model.graph.node if node.domain in QONNX_DOMAINS} - declared)
    if not missing:
        return model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    fixed.opset_import.extend(onnx.helper.make_opsetid(domain, 1) for domain in missing)
    warnings.warn(f"{origin}: its nodes use the QONNX domain{'s' if len(missing) > 1 else ''} "
                  f"{', '.join(repr(d) for d in missing)} without declaring an opset for "
                  f"{'them' if len(missing) > 1 else 'it'}, as qonnx accepts; read as version 1",
                  ModelNote, stacklevel=3)
    return fixed


# Before opset 7, Add/Mul/Sub broadcast by `broadcast`/`axis` attributes, not as numpy does
OLDEST_OPSET = 7


def check_opset(model: onnx.ModelProto, origin: str) -> None:
    """The default domain's opset must be one whose semantics the lowering reads (7 and later)
    and that this onnx defines (a future opset's ops may mean something else)."""
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and not OLDEST_OPSET <= entry.version <= newest:
            raise ModelFormatError(f"{origin}: declares ONNX opset {entry.version}; supported are opsets "
                                   f"{OLDEST_OPSET} to {newest} (re-export the model at one of them)")


def type_error(model: onnx.ModelProto, origin: str) -> ModelFormatError | None:
    """The checker's `full_check` (strict type and shape inference) on a structurally valid model.

    It refuses what onnxruntime refuses and the structural check lets through: types the ONNX
    spec forbids (a float or int32 zero point, an int32 QuantizeLinear output), shapes that do not
    broadcast, attributes out of their range. Returned, not raised, so the caller can prefer a
    more specific refusal of the same model.
    """
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as error:
        return ModelFormatError(f"{origin}: fails the ONNX checker: {_checker_message(error)}")
    return None


def origin_of(source: str | Path | onnx.ModelProto) -> str:
    return "the given ModelProto" if isinstance(source, onnx.ModelProto) else str(source)


def _parse(path: Path) -> onnx.ModelProto:
    try:
        if path.is_dir():
            raise ModelFormatError(f"{path}: is a directory, not an ONNX model file")
        if not path.exists():
            raise ModelFormatError(f"{path}: no such file")
        if not path.is_file():
            raise ModelFormatError(f"{path}: is not a regular file (a device, pipe or socket?)")
        if path.stat().st_size > MAX_PROTOBUF_BYTES:
            raise ModelFormatError(f"{path}: {gib(path.stat().st_size)}; an ONNX protobuf is at most "
                                   f"{gib(MAX_PROTOBUF_BYTES)} (larger weights go in external data)")
        data = path.read_bytes()
    except OSError as error:  # permissions, a name too long, an I/O error
        raise ModelFormatError(f"{path}: cannot read: {error.strerror or error}") from None
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
    return model


def _checker_message(error: Exception) -> str:
    """The checker's first line; a node's problem in the words of every other frontend error."""
    text = _first_line(error)
    match = re.search(r"\(op_type:([^,]*), node name: ([^)]*)\): (.*)", text)
    if match is None:
        return text
    op_type, node, reason = match.groups()
    reason = re.sub(r"^(\[\w+\] )+", "", reason)
    return f"node '{node}' (op {op_type}): {reason}"


def _external_files(model: onnx.ModelProto) -> list[str]:
    return sorted({entry.value for init in model.graph.initializer for entry in init.external_data
                   if entry.key == "location"})


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


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
