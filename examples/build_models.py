"""Build small, real, quantized CNNs as ONNX files for examples and tests.

Three models are produced, all for a 1x3x32x32 input named ``input`` and a
1x10 output named ``logits``:

* ``resnet8_qdq_w8a8.onnx`` / ``resnet8_qdq_w4a8.onnx`` -- a small ResNet
  trained briefly in torch on a synthetic task, exported with the TorchScript
  exporter and quantized with onnxruntime's ``quantize_static`` in QDQ format
  (uint8 activations, per-channel int8 or int4 weights).
* ``cnv_qonnx_w4a4.onnx`` -- a small CNN written directly with
  ``onnx.helper`` in QONNX style (``Quant`` nodes of domain
  ``qonnx.custom_op.general``), as FINN/Brevitas exports them.

``expand_qonnx_quant`` rewrites QONNX ``Quant`` nodes into standard ONNX ops so
that onnxruntime can run a QONNX model as a bit-exact reference.

No data is downloaded: the classification task is synthetic (10 fixed random
"prototype" images plus noise), generated from a seed. Everything is
deterministic for a given seed.

CLI::

    python examples/build_models.py --out examples/models
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwcodesign.onnx_edit import GraphEdit, keep_used_opsets
from hwcodesign.quantize import quantize_qdq, quiet
from hwcodesign.reference import Reference

INPUT_SHAPE = (1, 3, 32, 32)
NUM_CLASSES = 10
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

QONNX_DOMAIN = "qonnx.custom_op.general"
#: Domains under which a ``Quant`` node has QONNX semantics (FINN and older
#: Brevitas exports use the latter two).
QONNX_QUANT_DOMAINS = frozenset({QONNX_DOMAIN, "finn.custom_op.general", "onnx.brevitas"})

RESNET_FILES = {8: "resnet8_qdq_w8a8.onnx", 4: "resnet8_qdq_w4a8.onnx"}
RESNET_FLOAT_FILE = "resnet8_float.onnx"
CNV_FILE = "cnv_qonnx_w4a4.onnx"


# ---------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------


def synthetic_prototypes(seed: int = 0) -> np.ndarray:
    """Ten fixed 3x32x32 "prototype" images in [0, 1], one per class.

    Each prototype has its own per-channel base colour and per-channel
    oriented sinusoidal texture, so the classes differ both in colour
    statistics and in spatial structure.
    """
    rng = np.random.default_rng([seed, 1000])
    c, h, w = INPUT_SHAPE[1:]
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    protos = np.empty((NUM_CLASSES, c, h, w), dtype=np.float64)
    for k in range(NUM_CLASSES):
        for ch in range(c):
            base = rng.uniform(0.2, 0.8)
            amp = rng.uniform(0.1, 0.35)
            freq = rng.uniform(1.0, 5.0)
            theta = rng.uniform(0.0, np.pi)
            phase = rng.uniform(0.0, 2 * np.pi)
            arg = 2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) / w + phase
            protos[k, ch] = base + amp * np.sin(arg)
    return np.clip(protos, 0.0, 1.0).astype(np.float32)


def synthetic_samples(
    n: int, seed: int = 0, stream: int = 0, noise: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples ``(x, y)`` of the synthetic task: x = prototype[y] + noise.

    ``x`` is float32 of shape (n, 3, 32, 32) clipped to [0, 1]; ``y`` is int64.
    ``seed`` selects the task (prototypes), ``stream`` an independent sample
    stream (use different streams for training, calibration and testing).
    """
    protos = synthetic_prototypes(seed)
    rng = np.random.default_rng([seed, 2000, stream])
    y = rng.integers(0, NUM_CLASSES, size=n)
    x = protos[y] + noise * rng.standard_normal((n, *INPUT_SHAPE[1:])).astype(np.float32)
    return np.clip(x, 0.0, 1.0).astype(np.float32), y.astype(np.int64)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def op_counts(model: onnx.ModelProto | str | Path) -> dict[str, int]:
    """Op type counts of a model's main graph (``domain:op`` for non-default domains)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    counts = collections.Counter(
        f"{n.domain}:{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in model.graph.node
    )
    return dict(sorted(counts.items()))


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------------------
# a. ResNet, quantized with onnxruntime (QDQ)
# ---------------------------------------------------------------------------


def _make_resnet():
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout)
                )
            else:
                self.shortcut = nn.Identity()
            self.relu2 = nn.ReLU()

        def forward(self, x):
            out = self.relu1(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu2(out + self.shortcut(x))

    class ResNet8(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.stage1 = Block(16, 16, 1)
            self.stage2 = Block(16, 32, 2)
            self.stage3 = Block(32, 64, 2)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(64, NUM_CLASSES)

        def forward(self, x):
            x = self.stage3(self.stage2(self.stage1(self.stem(x))))
            return self.fc(self.flatten(self.pool(x)))

    return ResNet8()


@functools.lru_cache(maxsize=4)
def _trained_resnet_onnx(seed: int) -> bytes:
    """Train the ResNet on the synthetic task; return the float ONNX (opset 17) bytes."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    with _torch_threads(1):  # single-threaded for bit-reproducible training
        model = _make_resnet()
        g = torch.Generator().manual_seed(seed + 1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                # Non-trivial BN parameters/statistics so that BN folding matters.
                c = m.num_features
                m.weight.data = torch.rand(c, generator=g) + 0.5
                m.bias.data = 0.2 * torch.randn(c, generator=g)
                m.running_mean = 0.5 * torch.randn(c, generator=g)
                m.running_var = torch.rand(c, generator=g) * 1.5 + 0.5

        x_train, y_train = synthetic_samples(100 * 32, seed=seed, stream=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        for step in range(100):
            xb = torch.from_numpy(x_train[step * 32 : (step + 1) * 32])
            yb = torch.from_numpy(y_train[step * 32 : (step + 1) * 32])
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()

        dummy = torch.from_numpy(synthetic_samples(1, seed=seed, stream=1)[0])
        with tempfile.TemporaryDirectory() as td, quiet():
            path = Path(td) / "float.onnx"
            # Legacy TorchScript exporter (dynamo=False) still works in torch 2.13
            # (DeprecationWarning only). It folds eval-mode BN into Conv.
            torch.onnx.export(
                model,
                (dummy,),
                str(path),
                dynamo=False,
                opset_version=17,
                do_constant_folding=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
            )
            return path.read_bytes()


def build_resnet_qdq(out_dir: Path, weight_bits: int = 8, seed: int = 0) -> Path:
    """Train, export and QDQ-quantize the ResNet; return the written model path.

    Weights are per-channel symmetric int8 (``weight_bits=8``) or int4
    (``weight_bits=4``, model converted to opset 21 so standard ONNX Q/DQ ops
    carry int4); activations are asymmetric uint8 calibrated with MinMax on
    64 synthetic samples (``hwcodesign.quantize``). The float model is also
    written as ``resnet8_float.onnx``.
    """
    if weight_bits not in RESNET_FILES:
        raise ValueError(f"weight_bits must be 8 or 4, got {weight_bits}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    float_bytes = _trained_resnet_onnx(seed)
    (out_dir / RESNET_FLOAT_FILE).write_bytes(float_bytes)
    out_path = out_dir / RESNET_FILES[weight_bits]

    x_cal, _ = synthetic_samples(64, seed=seed, stream=2)
    float_model = onnx.load_from_string(float_bytes)
    if weight_bits == 4:
        # Native INT4 Q/DQ needs opset 21; otherwise ORT would fall back to
        # com.microsoft Q/DQ ops.
        float_model = onnx.version_converter.convert_version(float_model, 21)
    model = quantize_qdq(
        float_model, x_cal, weight_bits=weight_bits, input_name=INPUT_NAME, pre_process=True
    )
    # quant_pre_process leaves opset imports for every domain ORT knows; keep used ones.
    keep_used_opsets(model, always=("", "ai.onnx"))
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return out_path


# ---------------------------------------------------------------------------
# c. QONNX Quant -> standard ONNX
# ---------------------------------------------------------------------------


def qonnx_int_range(bitwidth: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """Integer range [min, max] of a QONNX Quant with the given parameters."""
    if signed:
        lo = -(2 ** (bitwidth - 1)) + (1 if narrow else 0)
        hi = 2 ** (bitwidth - 1) - 1
    else:
        lo = 0
        hi = 2**bitwidth - 1 - (1 if narrow else 0)
    return lo, hi


def _expand_quant_node(
    node: onnx.NodeProto,
    consts: dict[str, np.ndarray],
    fresh,
    new_nodes: list[onnx.NodeProto],
    new_inits: list[onnx.TensorProto],
    opset: int,
) -> None:
    """Append the standard-ONNX expansion of one QONNX Quant node."""
    if opset < 11:
        raise ValueError(f"expanding Quant needs default-domain opset >= 11 (Round, Clip), model has {opset}")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    signed = bool(attrs.get("signed", 1))
    narrow = bool(attrs.get("narrow", 0))
    mode = attrs.get("rounding_mode", b"ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode.upper() != "ROUND":
        raise ValueError(f"Quant node {node.name!r}: unsupported rounding_mode {mode!r} (only ROUND)")
    if len(node.input) != 4:
        raise ValueError(f"Quant node {node.name!r}: expected 4 inputs, got {len(node.input)}")
    x, scale, zeropt, bw_name = node.input
    if bw_name not in consts:
        raise ValueError(f"Quant node {node.name!r}: bitwidth {bw_name!r} is not a constant")
    bw = np.asarray(consts[bw_name], dtype=np.float64)
    if bw.size == 0 or np.any(bw != np.round(bw)) or np.any(bw < 1):
        raise ValueError(f"Quant node {node.name!r}: bitwidth must be positive integers, got {bw}")
    y = node.output[0]
    prefix = (node.name or y) + "__"
    zp_is_zero = zeropt in consts and not np.any(consts[zeropt])

    def emit(op: str, inputs: list[str], output: str | None = None, tag: str = "") -> str:
        o = output or fresh(prefix + (tag or op.lower()))
        new_nodes.append(helper.make_node(op, inputs, [o], name=fresh(prefix + op)))
        return o

    def const(tag: str, value) -> str:
        name = fresh(prefix + tag)
        new_inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    t = emit("Div", [x, scale])
    if not zp_is_zero:
        t = emit("Add", [t, zeropt])
    if signed and np.all(bw == 1):  # bipolar
        if opset < 12:
            raise ValueError(
                f"expanding a bipolar Quant needs opset >= 12 (GreaterOrEqual), model has {opset}"
            )
        ge = emit("GreaterOrEqual", [t, const("zero", 0.0)], tag="ge")
        q = emit("Where", [ge, const("one", 1.0), const("minus_one", -1.0)], tag="q")
    else:
        if signed and np.any(bw == 1):
            raise ValueError(f"Quant node {node.name!r}: mixed bipolar/non-bipolar bitwidths")
        ranges = [qonnx_int_range(int(b), signed, narrow) for b in bw.ravel()]
        lo = np.array([r[0] for r in ranges], dtype=np.float32).reshape(bw.shape)
        hi = np.array([r[1] for r in ranges], dtype=np.float32).reshape(bw.shape)
        r = emit("Round", [t])
        if bw.size == 1:
            q = emit("Clip", [r, const("min", lo.reshape(())), const("max", hi.reshape(()))], tag="q")
        else:
            q = emit("Min", [emit("Max", [r, const("min", lo)]), const("max", hi)], tag="q")
    if not zp_is_zero:
        q = emit("Sub", [q, zeropt])
    emit("Mul", [q, scale], output=y)


def expand_qonnx_quant(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of ``model`` with every QONNX ``Quant`` node expanded.

    Each ``Quant(x, scale, zeropt, bitwidth)`` becomes standard ONNX ops::

        q = Clip(Round(x / scale + zeropt), min, max)
        y = (q - zeropt) * scale

    with the integer range from ``qonnx_int_range``. ONNX ``Round`` rounds half
    to even, like numpy's ``np.round`` used by QONNX for ``rounding_mode=
    "ROUND"``. (QONNX clamps before rounding; with integer bounds that is the
    same.) A signed 1-bit Quant is bipolar: q = +1 if x/scale+zeropt >= 0 else -1.

    ``bitwidth`` must be a constant (initializer or Constant node). Only
    ``rounding_mode="ROUND"`` is supported; anything else raises ValueError.
    Non-Quant nodes, initializers and graph inputs/outputs are kept; the
    Quant's output name is preserved. Tensors are assumed float32.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph

    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)

    fresh = GraphEdit(out).fresh  # names no node, tensor or initializer of the model uses
    opset = max((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), default=0)
    new_inits: list[onnx.TensorProto] = []
    new_nodes: list[onnx.NodeProto] = []
    quant_inputs: set[str] = set()
    n_expanded = 0
    for node in g.node:
        if node.op_type == "Quant" and node.domain in QONNX_QUANT_DOMAINS:
            _expand_quant_node(node, consts, fresh, new_nodes, new_inits, opset)
            quant_inputs.update(node.input)
            n_expanded += 1
        else:
            new_nodes.append(node)

    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(new_inits)
    # Drop initializers that only fed the expanded Quant nodes (bitwidth, zero zeropt).
    referenced = {i for n in g.node for i in n.input} | {o.name for o in g.output} | {i.name for i in g.input}
    kept = [i for i in g.initializer if i.name in referenced or i.name not in quant_inputs]
    del g.initializer[:]
    g.initializer.extend(kept)

    if n_expanded:
        still_used = {n.domain for n in g.node}
        keep = [o for o in out.opset_import if o.domain not in QONNX_QUANT_DOMAINS or o.domain in still_used]
        del out.opset_import[:]
        out.opset_import.extend(keep)
    return out


# ---------------------------------------------------------------------------
# b. QONNX-style CNN (w4a4)
# ---------------------------------------------------------------------------

_CNV_OPSET = 13
_CNV_IR_VERSION = 8


def _cnv_graph(p: dict, batch: int, extra_outputs: tuple[str, ...] = ()) -> onnx.ModelProto:
    """Build the QONNX CNN from parameters ``p`` (missing entries -> placeholders)."""
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    counter = collections.Counter()

    def init(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(op: str, inputs, output: str, domain: str = "", **attrs) -> str:
        counter[op] += 1
        nodes.append(
            helper.make_node(op, inputs, [output], name=f"{op}_{counter[op] - 1}", domain=domain, **attrs)
        )
        return output

    def quant(x: str, out: str, scale, bits: int, signed: bool, narrow: bool) -> str:
        s = init(f"{out}_scale", scale)
        z = init(f"{out}_zeropt", 0.0)
        b = init(f"{out}_bitwidth", float(bits))
        return node(
            "Quant",
            [x, s, z, b],
            out,
            domain=QONNX_DOMAIN,
            signed=int(signed),
            narrow=int(narrow),
            rounding_mode="ROUND",
        )

    def wquant(name: str, w: np.ndarray, per_channel: bool) -> str:
        if per_channel:
            scale = np.abs(w).reshape(w.shape[0], -1).max(axis=1).reshape(-1, *([1] * (w.ndim - 1))) / 7.0
        else:
            scale = np.float32(np.abs(w).max() / 7.0)
        return quant(init(name, w), f"{name}_q", scale, 4, signed=True, narrow=True)

    def bn(x: str, out: str, prefix: str, c: int) -> str:
        return node(
            "BatchNormalization",
            [
                x,
                init(f"{prefix}_gamma", p[f"{prefix}_gamma"]),
                init(f"{prefix}_beta", p[f"{prefix}_beta"]),
                init(f"{prefix}_mean", p.get(f"{prefix}_mean", np.zeros(c))),
                init(f"{prefix}_var", p.get(f"{prefix}_var", np.ones(c))),
            ],
            out,
            epsilon=1e-5,
        )

    def act(name: str):
        return p.get(name, 1.0)

    x = quant(INPUT_NAME, "input_q", 1.0 / 255.0, 8, signed=False, narrow=False)
    # Block 1
    x = node(
        "Conv",
        [x, wquant("conv1_w", p["conv1_w"], True)],
        "conv1_out",
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
    )
    x = bn(x, "bn1_out", "bn1", 16)
    x = node("Relu", [x], "relu1_out")
    x = quant(x, "act1_q", act("act1_scale"), 4, signed=False, narrow=False)
    x = node("MaxPool", [x], "pool1_out", kernel_shape=[2, 2], strides=[2, 2])
    # Block 2
    x = node(
        "Conv",
        [x, wquant("conv2_w", p["conv2_w"], True)],
        "conv2_out",
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
    )
    x = bn(x, "bn2_out", "bn2", 32)
    x = node("Relu", [x], "relu2_out")
    x = quant(x, "act2_q", act("act2_scale"), 4, signed=False, narrow=False)
    x = node("MaxPool", [x], "pool2_out", kernel_shape=[2, 2], strides=[2, 2])
    # Block 3 (conv with float bias, no BN)
    x = node(
        "Conv",
        [x, wquant("conv3_w", p["conv3_w"], True), init("conv3_b", p.get("conv3_b", np.zeros(32)))],
        "conv3_out",
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
    )
    x = node("Relu", [x], "relu3_out")
    x = quant(x, "act3_q", act("act3_scale"), 4, signed=False, narrow=False)
    # Head
    x = node("GlobalAveragePool", [x], "gap_out")
    x = quant(x, "gap_q", act("gap_scale"), 8, signed=True, narrow=False)
    x = node("Flatten", [x], "flatten_out", axis=1)
    x = node("MatMul", [x, wquant("fc_w", p["fc_w"], False)], "fc_out")
    x = node("Add", [x, init("fc_b", p["fc_b"])], "fc_biased")
    quant(x, OUTPUT_NAME, act("out_scale"), 8, signed=True, narrow=False)

    graph = helper.make_graph(
        nodes,
        "cnv_qonnx_w4a4",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, *INPUT_SHAPE[1:]])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in (OUTPUT_NAME, *extra_outputs)],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _CNV_OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)],
        producer_name="hwcodesign-examples",
    )
    model.ir_version = _CNV_IR_VERSION
    return model


def _cnv_run(p: dict, x: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
    model = expand_qonnx_quant(_cnv_graph(p, batch=x.shape[0], extra_outputs=names))
    # ORT's default graph optimisations, as when these scales were first calibrated (the model's bytes stay the same)
    outputs = Reference(model, optimized=True).run({INPUT_NAME: x}, names)
    return [outputs[name] for name in names]


def build_qonnx_cnn(out_dir: Path, seed: int = 0) -> Path:
    """Build the QONNX-style w4a4 CNN; return the written model path.

    Conv weights are random (He-normal); BN statistics, the conv3 bias and all
    activation scales are calibrated layer by layer on synthetic data (running
    the expanded model in onnxruntime); the final MatMul+Add classifier is a
    ridge-regression fit on the quantized pooled features, so the model
    actually classifies the synthetic task.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 3000])

    def he(shape):
        fan_in = int(np.prod(shape[1:]))
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    p: dict = {
        "conv1_w": he((16, 3, 3, 3)),
        "bn1_gamma": rng.uniform(0.5, 1.5, 16),
        "bn1_beta": rng.normal(0.2, 0.3, 16),
        "conv2_w": he((32, 16, 3, 3)),
        "bn2_gamma": rng.uniform(0.5, 1.5, 32),
        "bn2_beta": rng.normal(0.2, 0.3, 32),
        "conv3_w": he((32, 32, 3, 3)),
        "fc_w": rng.standard_normal((32, NUM_CLASSES)) * 0.1,
        "fc_b": np.zeros(NUM_CLASSES),
    }
    x_cal, y_cal = synthetic_samples(256, seed=seed, stream=2)

    def chan_stats(t):
        return t.mean(axis=(0, 2, 3)), t.var(axis=(0, 2, 3))

    def unsigned_scale(t, bits=4):  # 99.9th percentile of a ReLU output
        return float(max(np.percentile(t, 99.9), 1e-3) / (2**bits - 1))

    def signed_scale(t, bits=8):
        return float(max(np.abs(t).max(), 1e-3) / (2 ** (bits - 1) - 1))

    # Layer-by-layer calibration: each stage only depends on already-set params.
    (t,) = _cnv_run(p, x_cal, ("conv1_out",))
    p["bn1_mean"], p["bn1_var"] = chan_stats(t)
    (t,) = _cnv_run(p, x_cal, ("relu1_out",))
    p["act1_scale"] = unsigned_scale(t)
    (t,) = _cnv_run(p, x_cal, ("conv2_out",))
    p["bn2_mean"], p["bn2_var"] = chan_stats(t)
    (t,) = _cnv_run(p, x_cal, ("relu2_out",))
    p["act2_scale"] = unsigned_scale(t)
    (t,) = _cnv_run(p, x_cal, ("conv3_out",))  # bias still zero here
    m, v = chan_stats(t)
    p["conv3_b"] = -m + np.sqrt(v) * rng.normal(0.3, 0.3, 32)
    (t,) = _cnv_run(p, x_cal, ("relu3_out",))
    p["act3_scale"] = unsigned_scale(t)
    (t,) = _cnv_run(p, x_cal, ("gap_out",))
    p["gap_scale"] = signed_scale(t)

    # Fit the classifier (ridge regression to centred one-hot targets).
    (f,) = _cnv_run(p, x_cal, ("flatten_out",))
    f = f.astype(np.float64)
    fm = f.mean(axis=0)
    fc = f - fm
    targets = np.eye(NUM_CLASSES)[y_cal] - 1.0 / NUM_CLASSES
    lam = 1e-3 * np.trace(fc.T @ fc) / fc.shape[1]
    w = np.linalg.solve(fc.T @ fc + lam * np.eye(fc.shape[1]), fc.T @ targets)
    w *= 4.0 / max((fc @ w).std(), 1e-6)  # logits of a few units
    p["fc_w"] = w
    p["fc_b"] = -fm @ w
    (t,) = _cnv_run(p, x_cal, ("fc_biased",))
    p["out_scale"] = signed_scale(t)

    model = _cnv_graph(p, batch=1)
    # Record intermediate shapes (shape inference cannot see through Quant).
    inferred = onnx.shape_inference.infer_shapes(expand_qonnx_quant(model))
    names = {o for n in model.graph.node for o in n.output} - {OUTPUT_NAME}
    model.graph.value_info.extend(vi for vi in inferred.graph.value_info if vi.name in names)
    del model.graph.output[:]
    model.graph.output.extend(vi for vi in inferred.graph.output if vi.name == OUTPUT_NAME)
    onnx.checker.check_model(model)
    out_path = out_dir / CNV_FILE
    onnx.save(model, str(out_path))
    return out_path


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def build_all(out_dir: Path, seed: int = 0) -> list[Path]:
    return [
        build_resnet_qdq(out_dir, weight_bits=8, seed=seed),
        build_resnet_qdq(out_dir, weight_bits=4, seed=seed),
        build_qonnx_cnn(out_dir, seed=seed),
    ]


def accuracy(model: onnx.ModelProto | str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a batch-1 model on samples ``x`` with labels ``y``."""
    reference = Reference(model)
    preds = [int(np.argmax(reference.first(x[i : i + 1]))) for i in range(len(x))]
    return float(np.mean(np.asarray(preds) == y))


SAMPLES_FILE = "samples.npy"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "models")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    x_test, y_test = synthetic_samples(100, seed=args.seed, stream=3)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / SAMPLES_FILE, x_test[:8])  # float images for `hwcodesign csim` in the demo
    for path in build_all(args.out, seed=args.seed):
        model = onnx.load(str(path))
        ref = expand_qonnx_quant(model) if path.name == CNV_FILE else model
        acc = accuracy(ref, x_test, y_test)
        print(f"{path}: synthetic-task accuracy {acc:.2f}")
        for op, n in op_counts(model).items():
            print(f"    {op}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
