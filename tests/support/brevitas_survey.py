"""What hwcodesign says today about FINN's real networks: every `bnn_pynq` variant through every
Brevitas exporter (`support/brevitas_models.py`), the QONNX model zoo files kept in
tests/data/qonnx_zoo, and the quantized models the qonnx wheel ships. A script, not a test (pytest
collects only test_*.py): it records where the frontend stands while BipolarQuant, QCDQ below
8 bits, Trunc and host-part QONNX ops are being built, so each of those changes can be measured
against the same table.

For each model: how long building and exporting took, its ops (with their domains) and opsets,
then `load_partitioned` + `optimize`: accepted (the layers, by `inspect`'s summary) or refused (the
first line, then each distinct op type and reason the refusal names), and the host parts the
split gives (computed by the split alone, so a refused model still shows them), marked `!` where
they hold a non-standard op the host runtimes cannot run.

    PYTHONPATH=.:tests .venv/bin/python tests/support/brevitas_survey.py [--cache DIR]
        [--zoo-mirror GIT_DIR] [--networks tfc,cnv] [--exporters qonnx,qcdq]

`--zoo-mirror` adds the zoo's other real files (those without a licence the repository can keep)
straight from a clone of fastmachinelearning/qonnx_model_zoo, read with `git show`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from hwcodesign.errors import HwcodesignError, UnsupportedNodesError  # noqa: E402
from hwcodesign.ir.op import Input  # noqa: E402
from hwcodesign.partition import HostOptions, load_partitioned, split_model  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402
from hwcodesign.passes.lowering import handled_op_types  # noqa: E402
from support.brevitas_models import EXPORTERS, NETWORKS, ExportCache, ExportRefused, variants  # noqa: E402

ZOO_DIR = TESTS / "data" / "qonnx_zoo"
MIRROR_EXTRAS = ("models/GSCV2/kwsmlp_w3a3/kwsmlp_w3a3.onnx",
                 "models/UNSW_NB15/unsw_nb15_mlp_w2a2/unsw_nb15-mlp-w2a2.onnx",
                 "models/JetTagging/QKeras_hls4ml_3layer/qkeras_jettagging.onnx")
"""Real files of the zoo whose folders state no licence: surveyed from a clone, not kept here."""
STANDARD_DOMAINS = ("", "ai.onnx")
QUANTIZER_OPS = ("Quant", "BipolarQuant", "Trunc", "FloatQuant", "QuantizeLinear", "DequantizeLinear")


@dataclass
class Row:
    source: str
    exporter: str
    seconds: float | None
    ops: str
    opsets: str
    verdict: str
    host: str

    def markdown(self) -> str:
        seconds = "-" if self.seconds is None else f"{self.seconds:.1f}"
        cells = [self.source, self.exporter, seconds, self.ops, self.opsets, self.verdict, self.host]
        return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


def op_name(node: onnx.NodeProto) -> str:
    return f"{node.domain}:{node.op_type}" if node.domain not in STANDARD_DOMAINS else node.op_type


def ops_summary(model: onnx.ModelProto) -> str:
    """Quantizers first (they are what the frontend work is about), then the rest, with counts."""
    counts = Counter(op_name(node) for node in model.graph.node)
    quantizers = [k for k in counts if k.split(":")[-1] in QUANTIZER_OPS]
    order = quantizers + [k for k in counts if k not in quantizers]
    return ", ".join(f"{k} {counts[k]}" for k in order)


def opsets(model: onnx.ModelProto) -> str:
    declared = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    return f"IR {model.ir_version}; {declared}"


def host_parts(model: onnx.ModelProto) -> str:
    """The host's parts as the split alone gives them (`!`: a non-standard op in them)."""
    try:
        partition = split_model(model, handled_op_types(), HostOptions())
    except HwcodesignError as error:
        return f"split refused: {str(error).splitlines()[0]}"
    except Exception as error:  # noqa: BLE001 - a crash is a finding the table must show
        return f"split CRASHED: {type(error).__name__}: {str(error).splitlines()[0]}"
    described = []
    for label, part in (("pre", partition.pre), ("post", partition.post)):
        if part is None:
            continue
        names = [op_name(node) for node in part.graph.node]
        mark = "!" if any(node.domain not in STANDARD_DOMAINS for node in part.graph.node) else ""
        described.append(f"{label}{mark}: {' '.join(names)}")
    return "; ".join(described) or "none"


def verdict(model: onnx.ModelProto) -> str:
    """`load_partitioned` + `optimize`: the layers, or the refusal condensed."""
    try:
        _, graph = load_partitioned(model)
        graph = optimize(graph)
    except UnsupportedNodesError as error:
        reasons = Counter(f"{p.op_type}: {p.reason}" for p in error.problems)
        listed = "; ".join(f"{reason} (x{count})" if count > 1 else reason for reason, count in reasons.items())
        return f"REFUSED {str(error).splitlines()[0]} {listed}"
    except HwcodesignError as error:
        return f"REFUSED {str(error).splitlines()[0]}"
    except Exception as error:  # noqa: BLE001 - not a one-line refusal: the table says so
        return f"CRASHED {type(error).__name__}: {str(error).splitlines()[0]}"
    layers = Counter(op.summary() for op in graph if not isinstance(op, Input))
    formats = sorted({op.weights_summary() for op in graph} - {"-"})
    listed = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in layers.items())
    return f"accepted: {listed}; weights {', '.join(formats) or '-'}"


def survey_model(source: str, exporter: str, model: onnx.ModelProto, seconds: float | None) -> Row:
    return Row(source, exporter, seconds, ops_summary(model), opsets(model), verdict(model), host_parts(model))


def bnn_pynq_rows(cache: ExportCache, networks: list[str], exporters: list[str]) -> Iterator[Row]:
    for variant in variants(networks, exporters=exporters):
        source = f"{variant.network} {variant.precision}"
        try:
            path = cache(variant.network, variant.precision, variant.exporter)
        except ExportRefused as refused:
            reason = str(refused).split(": ", 1)[-1]
            yield Row(source, variant.exporter, cache.seconds[variant], "-", "-", f"export refused: {reason}", "-")
            continue
        yield survey_model(source, variant.exporter, onnx.load(str(path)), cache.seconds[variant])


def file_rows() -> Iterator[Row]:
    """The zoo files kept in tests/data and the qonnx wheel's quantized models."""
    for path in sorted(ZOO_DIR.glob("*.onnx")):
        yield survey_model(f"zoo {path.stem}", "zoo file", onnx.load(str(path)), None)
    import qonnx

    data = Path(qonnx.__file__).parent / "data" / "onnx"
    for path in sorted(data.rglob("*.onnx")):
        model = onnx.load(str(path))
        if any(node.op_type in QUANTIZER_OPS for node in model.graph.node):
            yield survey_model(f"qonnx wheel {path.relative_to(data)}", "qonnx data", model, None)


def mirror_rows(git_dir: Path) -> Iterator[Row]:
    for path in MIRROR_EXTRAS:
        blob = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{path}"], capture_output=True)
        if blob.returncode != 0:
            yield Row(f"zoo {Path(path).stem}", "zoo clone", None, "-", "-", "not in the clone", "-")
            continue
        yield survey_model(f"zoo {Path(path).stem}", "zoo clone", onnx.load_from_string(blob.stdout), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="folder for the exported files (default: a temporary one)")
    parser.add_argument("--zoo-mirror", type=Path, help="git dir of a qonnx_model_zoo clone")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--exporters", default=",".join(EXPORTERS))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print("| model | exporter | build+export s | ops | opsets | hwcodesign today | host parts |")
    print("|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        cache = ExportCache(args.cache or Path(scratch))
        rows = list(bnn_pynq_rows(cache, args.networks.split(","), args.exporters.split(",")))
        for row in rows:
            print(row.markdown(), flush=True)
        built = sum(cache.seconds.values())
    for row in file_rows():
        print(row.markdown(), flush=True)
    if args.zoo_mirror:
        for row in mirror_rows(args.zoo_mirror):
            print(row.markdown(), flush=True)
    print(f"\n{len(rows)} bnn_pynq variants built and exported in {built:.1f} s; survey {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
