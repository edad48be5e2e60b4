"""The host parts in a project: the files the driver runs on the board's CPU and their spec.

`driver/host_pre.onnx` / `host_post.onnx` run with onnxruntime where the board image has it;
`host_pre.npz` / `host_post.npz` hold the same parts as programs for the driver's numpy executor
(`hwcodesign/host/runtime.py`, embedded in driver.py). `driver/host.json` is the spec the driver
and the tool's whole-model runs read (the HOST dictionary: inputs, outputs, state, parts, and how
the accelerator's ports map to the model's tensors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

from hwcodesign.errors import HwcodesignError
from hwcodesign.host.program import numpy_missing, program_bytes
from hwcodesign.ir.graph import Graph
from hwcodesign.partition import HostOptions, Partition

HOST_SPEC_FILE = "driver/host.json"
HOST_DRIVER_FILES = ("host.json", "host_pre.onnx", "host_pre.npz", "host_post.onnx", "host_post.npz")


def host_spec(partition: Partition, graph: Graph) -> dict[str, Any]:
    """The HOST dictionary for a partition with host parts and its accelerator's IR `graph`."""
    port_inputs = [op.output.name for op in graph.inputs]
    if len(port_inputs) != len(partition.accelerator_inputs) or len(graph.outputs) != len(partition.accelerator_outputs):
        raise HwcodesignError(f"the accelerator part has inputs {partition.accelerator_inputs} and outputs "
                              f"{partition.accelerator_outputs}, its IR {port_inputs} and {list(graph.outputs)}")
    parts = {}
    for label, model in (("pre", partition.pre), ("post", partition.post)):
        parts[label] = None if model is None else {
            "onnx": f"host_{label}.onnx", "program": f"host_{label}.npz",
            "inputs": [value.name for value in model.graph.input],
            "outputs": [value.name for value in model.graph.output],
            "numpy_missing": numpy_missing(model),
        }
    return {
        "inputs": [tensor.as_dict() for tensor in partition.inputs],
        "outputs": [tensor.as_dict() for tensor in partition.outputs],
        "state": [{"input": p.input, "output": p.output, "shape": list(p.shape), "dtype": p.dtype}
                  for p in partition.state],
        **parts,
        "host_options": {"host": list(partition.options.host), "state": [list(p) for p in partition.options.state]},
        "boundary_shapes": {value.name: [d.dim_value for d in value.type.tensor_type.shape.dim] for value in
                            (*partition.accelerator.graph.input, *partition.accelerator.graph.output)},
        "accelerator_inputs": dict(zip(partition.accelerator_inputs, port_inputs)),
        "accelerator_outputs": dict(zip(graph.outputs, partition.accelerator_outputs)),
    }


def host_options_of(spec: dict[str, Any]) -> HostOptions:
    """The `--host`/`--state` options a project was compiled with, to split its model again."""
    given = spec.get("host_options", {})
    return HostOptions(tuple(given.get("host", ())), tuple(tuple(pair) for pair in given.get("state", ())))


def host_files(partition: Partition, spec: dict[str, Any]) -> dict[str, str | bytes]:
    """driver/host.json and each host part as ONNX and as a numpy program."""
    files: dict[str, str | bytes] = {HOST_SPEC_FILE: json.dumps(spec, indent=2, sort_keys=True) + "\n"}
    for label, model in (("pre", partition.pre), ("post", partition.post)):
        if model is not None:
            files[f"driver/host_{label}.onnx"] = serialized(model)
            files[f"driver/host_{label}.npz"] = program_bytes(model)
    return files


def write_host_files(partition: Partition, spec: dict[str, Any], root: Path) -> Path:
    """The host files as a project ships them, written under `root`; returns the driver folder
    they sit in (for `HostModel` without a whole project: the golden flow, benchmarks)."""
    for name, content in host_files(partition, spec).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root / Path(HOST_SPEC_FILE).parent


def serialized(model: onnx.ModelProto) -> bytes:
    """Deterministic bytes of a host part (the same model gives the same file)."""
    return model.SerializeToString(deterministic=True)
