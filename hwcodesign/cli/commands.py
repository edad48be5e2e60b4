"""`hwcodesign` entry point. Each subcommand calls the same functions a notebook would.

User errors (bad model, unknown board) print one line and exit 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from hwcodesign import __version__
from hwcodesign.backends import ARCHITECTURES, backend_of
from hwcodesign.boards import available_boards, format_board_table, load_board, with_clock
from hwcodesign.check import check_project
from hwcodesign.cli import INTERRUPTED
from hwcodesign.cli.host_options import add_host_options, host_options
from hwcodesign.cli.pass_options import add_pass_options, pass_options
from hwcodesign.cli.progress import counted, step
from hwcodesign.cli.values import (
    batch_size,
    clock_mhz,
    fraction,
    frame_count,
    frame_rate,
    non_negative,
    output_path,
    percentile,
    resource_cap,
    seconds,
    weight_formats,
)
from hwcodesign.codegen.csim import build_note, checked_headers, run_csim_cached_note
from hwcodesign.codegen.host_parts import host_options_of
from hwcodesign.codegen.package import BOARD_HOME, package_project
from hwcodesign.codegen.project import Project
from hwcodesign.errors import HwcodesignError, ModelNote
from hwcodesign.flows.compile import compile_model
from hwcodesign.flows.evaluate import DEFAULT_BATCH, evaluate
from hwcodesign.flows.quantize import quantize_file
from hwcodesign.flows.search import search
from hwcodesign.flows.simulate import simulate_model
from hwcodesign.flows.whole_model import (
    check_whole_model,
    csim_accelerator,
    golden_differences,
    run_with_host,
)
from hwcodesign.frames import FramesError, load_float_frames, load_frames
from hwcodesign.frontend.loader import read_model
from hwcodesign.hardware.engine.config import MAX_BATCH
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.stream_layout import WORD_BITS
from hwcodesign.mapper.folding_file import read_folding_file
from hwcodesign.mapper.precision import format_front
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT
from hwcodesign.mapper.table import GOALS
from hwcodesign.outputs import (
    PROJECT_KIND,
    REPORT_KIND,
    SEARCH_KIND,
    check_destination,
    check_output_file,
    write_file_atomically,
)
from hwcodesign.partition import ACCELERATOR, Partition, load_partitioned
from hwcodesign.partition.run import run_host_part
from hwcodesign.passes import PACK_INPUT_WINDOW, load_onnx, optimize
from hwcodesign.report import format_layer_table, format_summary, write_report
from hwcodesign.report.search_report import write_search
from hwcodesign.tables import format_table


def layer_table(graph: Graph) -> str:
    """One row per layer: what it is (the op's own `summary`), what flows in and out, and what it costs."""
    rows = []
    for op in graph:
        inputs = graph.input_tensors(op)
        in_shape = ", ".join("x".join(map(str, t.shape[1:])) for t in inputs) or "-"
        rows.append((
            op.name,
            op.summary(),
            in_shape,
            "x".join(map(str, op.output.shape[1:])),
            op.output.describe(),
            op.weights_summary(),
            f"{op.macs([t.shape for t in inputs]):,}",
            f"{op.weight_bits():,}",
        ))
    headers = ("layer", "op", "input CxHxW", "output CxHxW", "output type", "weights", "MACs", "weight bits")
    return format_table(headers, rows, right_align=(6, 7))


def summary(graph: Graph) -> str:
    macs = graph.macs()
    bits = sum(op.weight_bits() for op in graph)
    outputs = ", ".join(f"{t.name} {'x'.join(map(str, t.shape[1:]))} {t.describe()}" for t in graph.output_tensors())
    return (
        f"{len(graph)} layers, {macs / 1e6:.2f} M MACs per frame, "
        f"{bits / 8 / 1024:.1f} KiB of weights and biases\noutputs: {outputs}"
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    passes = pass_options(args, (args.model,))
    partition, graph = load_partitioned(args.model, passes, host_options(args))
    if not args.raw:
        graph = optimize(graph, passes)
    print(layer_table(graph))
    print()
    print(summary(graph))
    if partition.has_host_parts:
        print()
        print(placement_table(partition))
    return 0


def placement_table(partition: Partition) -> str:
    """Where each node of the model runs, for a model with host parts: the host's nodes by name and
    why, the accelerator's as a count (its layers are the table above), and the state carried."""
    placement = partition.placement
    rows = [(name, place, placement.reasons.get(name, "")) for name, place in placement.places.items()
            if place != ACCELERATOR]
    lines = [f"placement: {len(placement.nodes(ACCELERATOR))} ONNX nodes on the accelerator (the layers above), "
             f"{len(rows)} on the board's CPU:", format_table(("node", "runs on", "why"), rows)]
    lines += [f"state carried across frames: {p.input} <- {p.output} ({'x'.join(map(str, p.shape))})"
              for p in partition.state]
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace) -> int:
    board = with_clock(load_board(args.board), args.clock)
    out_dir = Path(args.output) if args.output else Path("reports") / f"{Path(args.model).stem}-{board.name}"
    check_destination(out_dir, REPORT_KIND, inputs=(args.model, args.inputs, args.folding))
    passes = pass_options(args, (args.model, args.inputs, out_dir))
    with step("importing and optimizing the model"):
        partition, graph = load_partitioned(args.model, passes, host_options(args))
        graph = optimize(graph, passes)
    samples = graph_frames(partition, graph, args.inputs)
    report = simulate_model(
        graph, board, model_path=str(args.model), goal=args.goal, fps=args.fps, caps=dict(args.cap),
        pinned=read_folding_file(args.folding) if args.folding else None,
        architecture=args.architecture, samples=samples, density=args.density, percentile=args.percentile,
        time_limit=args.time_limit, step=step, partition=partition, max_batch=args.max_batch,
        pack_input=passes.enabled(PACK_INPUT_WINDOW)).report
    with step(f"writing {out_dir}/report.json and report.html"):
        write_report(report, out_dir)
    print(format_layer_table(report))
    print()
    print(format_summary(report))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    out_dir = Path(args.output) if args.output else Path("build") / Path(args.model).stem
    check_destination(out_dir, PROJECT_KIND, inputs=(args.model, args.inputs, args.folding))
    passes = pass_options(args, (args.model, args.inputs, out_dir))
    host = host_options(args)
    samples = None
    if args.inputs:
        partition, graph = load_partitioned(args.model, passes, host)
        samples = graph_frames(partition, optimize(graph, passes), args.inputs)
    pinned = read_folding_file(args.folding) if args.folding else None
    result = compile_model(args.model, with_clock(load_board(args.board), args.clock), out_dir, goal=args.goal,
                           fps=args.fps, caps=dict(args.cap), pinned=pinned,
                           word_bits=args.word_bits, architecture=args.architecture, samples=samples,
                           density=args.density, time_limit=args.time_limit, step=step, passes=passes, host=host,
                           max_batch=args.max_batch)
    print(format_layer_table(result.report))
    print()
    print(format_summary(result.report))
    print()
    kind = backend_of(result.mapping).label
    print(f"project written to {out_dir}/ ({len(result.graph)} layers as a {kind}, "
          f"top function {result.project.meta['top_function']})")
    print(f"  hwcodesign csim {out_dir} input.npy   C simulation with g++ (no Xilinx tools needed)")
    print(f"  make -C {out_dir} csim                 the C testbench on the golden vectors")
    print(f"  make -C {out_dir} hls                  Vitis HLS synthesis and IP export (needs vitis_hls)")
    print(f"  make -C {out_dir} bitstream            Vivado block design and .bit/.hwh (needs vivado)")
    return 0


def graph_frames(partition: Partition, graph: Graph, path: str | None) -> dict[str, np.ndarray] | None:
    """`--inputs` frames for `graph`'s inputs (None without the option): the accelerator's own
    inputs, or for a model with a host part before the accelerator the model's inputs, which that
    part turns into the accelerator's (run with onnxruntime, as the driver would)."""
    if not path:
        return None
    if partition.pre is None:
        return load_frames(path, [op.output for op in graph.inputs])
    floats = load_float_frames(path, {spec.name: spec.shape for spec in partition.inputs})
    accelerator = run_host_part(partition.pre, floats, partition.accelerator_inputs)
    return {op.output.name: op.output.quantize(accelerator[name])
            for op, name in zip(graph.inputs, partition.accelerator_inputs, strict=True)}


def add_sparsity_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", metavar="FRAMES", help="sample frames (.npy, or .npz by input name): a sparse "
                        "network is sized for their active sites and profiled frame by frame")
    parser.add_argument("--percentile", type=percentile, default=95.0,
                        help="with --inputs: size for this percentile of the frames' densities (default 95)")
    parser.add_argument("--density", type=fraction, help="without --inputs: the design density (active fraction of "
                        "sites) of every sparse tensor; default: every site active")


def cmd_csim(args: argparse.Namespace) -> int:
    project = Project(args.project)
    headers = checked_headers(args.xilinx_headers)
    source = Path(args.input)
    out_path = check_output_file(args.output or source.with_name(f"{source.stem}_csim.npz"), ".npz",
                                 inputs=(source, args.model))
    if project.host_spec is not None:
        return csim_whole_model(args, project, headers, out_path)
    frames = load_frames(source, [port.frame_tensor for port in project.inputs])
    golden_graph = model_of_project(args.model, project) if args.model else None
    count = next(iter(frames.values())).shape[0]
    against = f", Xilinx's headers in {headers}" if headers else ""
    packed = {port.tensor.name: port.from_frames(frames[port.tensor.name]) for port in project.inputs}
    with step(f"C simulation of {project.name} ({run_csim_cached_note(project, headers)}{against}) on {count} frame(s)"):
        outputs = project.csim(packed, headers, workers=os.cpu_count() or 1)
    print_build_note(project, headers)
    arrays = {}
    for port in project.outputs:
        values = outputs[port.tensor.name]
        arrays[port.tensor.name] = values
        arrays[f"{port.tensor.name}_dequantized"] = port.tensor.dequantize(values)
        flat = values.reshape(values.shape[0], -1)
        line = f"{port.tensor.name}: {values.shape[0]} x {'x'.join(map(str, values.shape[1:]))} {port.tensor.dtype}"
        if flat.shape[1] > 1 and values.shape[2:] == (1, 1):
            line += ", argmax per frame: " + " ".join(str(int(i)) for i in flat.argmax(axis=1)[:16])
        print(line)
    write_file_atomically(out_path, lambda stream: np.savez(stream, **arrays))
    print(f"outputs written to {out_path} (integers, and *_dequantized reals)")
    if golden_graph is not None:
        return check_against_golden(golden_graph, args.model, frames, outputs)  # the model's own input layout
    return 0


def print_build_note(project: Project, headers: Path | None) -> None:
    note = build_note(project, headers)
    if note is not None:
        print(note)


def csim_whole_model(args: argparse.Namespace, project: Project, headers: Path | None, out_path: Path) -> int:
    """`csim` of a project with host parts: INPUT is the model's own inputs; the host parts run as the
    driver runs them (onnxruntime), the accelerator in C simulation. With `--model`, the accelerator's
    integers must equal its golden model's and the whole model must agree with onnxruntime."""
    spec = project.host_spec
    assert spec is not None
    frames = load_float_frames(args.input, {s["name"]: s["shape"] for s in spec["inputs"]})
    partition, graph = None, None
    if args.model:
        partition, graph = load_partitioned(args.model, host=host_options_of(spec))
        graph = optimize(graph)
        project.check_model(graph, args.model)
    accelerator = csim_accelerator(project, headers, os.cpu_count() or 1)
    count = next(iter(frames.values())).shape[0]
    against = f", Xilinx's headers in {headers}" if headers else ""
    with step(f"the whole model on {count} frame(s): host parts with onnxruntime, the accelerator in C simulation "
              f"({run_csim_cached_note(project, headers)}{against})"):
        outputs = run_with_host(project.root / "driver", spec, frames, accelerator)
    print_build_note(project, headers)
    arrays = {**outputs, **{f"accelerator_{name}": value for name, value in accelerator.integers("outputs").items()}}
    for name, value in outputs.items():
        print(f"{name}: {value.shape[0]} x {'x'.join(map(str, value.shape[1:]))} {value.dtype}")
    write_file_atomically(out_path, lambda stream: np.savez(stream, **arrays))
    print(f"outputs written to {out_path} (the model's outputs, and accelerator_* integers)")
    if graph is None or partition is None:
        return 0
    status = check_against_golden(graph, args.model, accelerator.integers("inputs"), accelerator.integers("outputs"))
    check = check_whole_model(partition, graph, spec, frames, outputs, accelerator)
    print(check.describe())
    return status or (0 if check.passed else 1)


def cmd_check(args: argparse.Namespace) -> int:
    """Each check's verdict, then its problems one per line (`file:line: message`); 1 if any failed."""
    project = Project(args.project)
    headers = checked_headers(args.xilinx_headers)
    failed = 0
    for result in check_project(project, headers):
        verdict = "skipped" if result.skipped else "ok" if result.passed else "FAILED"
        print(f"{result.name}: {verdict} ({result.covered})" + (f": {result.skipped}" if result.skipped else ""))
        for problem in result.problems:
            print(f"  {problem}")
        failed += not result.passed
    print(f"{project.root}: " + (f"{failed} check(s) failed" if failed else "all checks passed"))
    return 1 if failed else 0


def model_of_project(model: str, project: Project) -> Graph:
    """`csim --model`'s graph, refused before the run unless its inputs and outputs are the
    project's: the golden model of another network compares nothing."""
    graph = optimize(load_onnx(model))
    project.check_model(graph, model)
    return graph


def check_against_golden(graph: Graph, model: str, frames: dict[str, np.ndarray],
                         outputs: dict[str, np.ndarray]) -> int:
    """Re-run the model's golden model on the same integers; report (and fail on) any difference."""
    differing, total = golden_differences(graph, frames, outputs)
    if differing:
        print(f"MISMATCH: {differing} of {total} output elements differ from the golden model of {model}")
        return 1
    print(f"bit-exact: all {total} output elements equal the golden model of {model}")
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    out = package_project(args.project, args.output, zip_file=args.zip)
    name = Project(args.project).name
    bitstream = (out / f"{name}.bit").is_file()
    files = sorted(path.name for path in out.iterdir())
    print(f"package written to {out}/ ({', '.join(files)})")
    if args.zip:
        print(f"  and {out.parent / (name + '.zip')} (the same files under {name}/)")
    if bitstream:
        print(f"copy it to the board's {BOARD_HOME}/{name}/ and run notebook.ipynb there (steps in {out}/README.md)")
    else:
        print(f"no bitstream yet: only emulation works (steps in {out}/README.md)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    model_path = Path(args.model)
    out_dir = Path(args.output) if args.output else Path("build") / f"{model_path.stem}-search-{board.name}"
    check_destination(out_dir, SEARCH_KIND, inputs=(args.model, args.inputs))
    model = read_model(model_path)
    frames = None
    if args.inputs:  # checked and quantized as `compile --inputs` does
        partition, graph = load_partitioned(model)
        frames = next(iter((graph_frames(partition, optimize(graph), args.inputs) or {}).values()))
    else:
        print("no --inputs: sensitivities are measured on random frames over the input's range (a data-free proxy)")
    result = search(model, board, args.formats, fps=args.fps, max_sensitivity=args.max_sensitivity, frames=frames,
                    caps=dict(args.cap), time_limit=args.time_limit, progress=lambda message: print(f"  {message}"))
    written = write_search(result, model, model_path, out_dir)
    print(format_front(result))
    print(f"search took {result.seconds:.1f} s; written to {out_dir}/ (report.html: the front; formats.json: the "
          "chosen per-layer formats)")
    print(f"  hwcodesign compile {written['model']} --board {board.name}   the chosen mixed-precision model")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """The whole model over a data set off the board (`flows/evaluate.py`): accuracy against the
    labels, agreement with onnxruntime; the outputs written with -o."""
    out_path = check_output_file(args.output, ".npz", inputs=(args.model, args.frames, args.labels)) \
        if args.output else None
    with step(f"loading {args.model}"):
        partition, graph = load_partitioned(args.model, host=host_options(args))
        graph = optimize(graph)
    frames = load_float_frames(args.frames, {spec.name: spec.shape for spec in partition.inputs})
    labels = load_labels(args.labels) if args.labels else None
    count = next(iter(frames.values())).shape[0]
    accelerator, by = None, "the golden model"
    if args.project:
        project = Project(args.project)
        project.check_model(graph, args.model)
        headers = checked_headers(args.xilinx_headers)
        workers = os.cpu_count() or 1
        accelerator, by = (lambda: csim_accelerator(project, headers, workers)), \
            f"C simulation of {project.name}, {workers} process(es)"
    with counted(f"evaluating {count} frame(s) ({by})", count) as advance:
        result = evaluate(partition, graph, frames, labels, str(args.labels), args.batch, not args.no_compare,
                          advance, accelerator)
    for line in result.describe():
        print(line)
    if out_path is not None:
        write_file_atomically(out_path, lambda stream: np.savez(stream, **result.outputs))
        print(f"outputs written to {out_path}")
    return 0 if result.passed else 1


def load_labels(path: str) -> np.ndarray:
    """Integer class labels (N,) from a .npy file; FramesError naming the file otherwise."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise FramesError(f"{path}: cannot read labels ({error}); give a .npy of one integer class per frame") \
            from None


def cmd_quantize(args: argparse.Namespace) -> int:
    with step(f"quantizing {args.model} on the frames of {args.calibration}"):
        path, result = quantize_file(args.model, args.calibration, args.output, weight_bits=args.weight_bits,
                                     per_channel=not args.per_tensor, host=tuple(args.host),
                                     symmetric_activations=args.symmetric_activations)
    for group in result.kept_float:
        print(f"kept float: {group}")
    for note in result.notes:
        print(f"note: {note}")
    weights = f"int{args.weight_bits} weights {'per tensor' if args.per_tensor else 'per output channel'}"
    print(f"quantized model ({weights}, uint8 activations) written to {path}")
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    print(format_board_table(available_boards()))
    return 0


ARCHITECTURE_HELP = ("dataflow: one stage per layer, all on chip; sequential: one engine running the layers "
                     "in turn from DDR; auto (default): dataflow when it fits the board, else sequential")


def add_mapping_options(parser: argparse.ArgumentParser) -> None:
    """The model and how to map it: what `simulate` and `compile` share."""
    parser.add_argument("model", help="path to a QDQ or QONNX .onnx file")
    parser.add_argument("--board", default="ultra96v2", help="board name (see `hwcodesign boards`)")
    parser.add_argument("--goal", choices=GOALS, default=None,
                        help="throughput: minimise the bottleneck interval; latency: minimise first-frame latency; "
                             "resources: the least hardware that reaches --fps (the largest fraction of any resource "
                             "limit plus a quarter of their sum). Default: resources with --fps, else throughput")
    parser.add_argument("--fps", type=frame_rate, help="frame rate the design must reach")
    parser.add_argument("--folding", metavar="FILE",
                        help="pin layers' foldings (PE, SIMD, mac, output) from a JSON file, e.g. a project's "
                             "folding.json; the other layers are optimised (the dataflow pipeline only)")
    parser.add_argument("--clock", type=clock_mhz, metavar="MHZ",
                        help="PL clock in MHz (default: the board's); timing closure is Vivado's to check")
    parser.add_argument("--cap", type=resource_cap, action="append", default=[], metavar="RESOURCE=FRACTION",
                        help="utilisation cap per resource (default dsp=0.9, bram18k/lut/ff=0.8)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="auto", help=ARCHITECTURE_HELP)
    parser.add_argument("--max-batch", type=batch_size, default=MAX_BATCH, metavar="N",
                        help=f"frames one run of the layer-sequential engine may hold (1-{MAX_BATCH}; default "
                             f"{MAX_BATCH}): a batch loads each layer's weights once for all its frames, but every "
                             "frame waits for the whole run; the latency goal runs one frame at a time")
    add_sparsity_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwcodesign", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hwcodesign {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print the lowered integer IR of a quantized ONNX model")
    inspect.add_argument("model", help="path to a QDQ or QONNX .onnx file")
    inspect.add_argument("--raw", action="store_true", help="show the IR before optimization passes")
    add_pass_options(inspect)
    add_host_options(inspect)
    inspect.set_defaults(run=cmd_inspect)
    simulate = commands.add_parser(
        "simulate", help="map a model onto a board and simulate its latency and throughput (no hardware needed)"
    )
    add_mapping_options(simulate)
    add_time_limit_option(simulate)
    simulate.add_argument("-o", "--output", type=output_path, help="report folder (default reports/<model>-<board>)")
    add_pass_options(simulate)
    add_host_options(simulate)
    simulate.set_defaults(run=cmd_simulate)
    compile_ = commands.add_parser(
        "compile", help="compile a model into a Vitis HLS / Vivado / PYNQ project for a board"
    )
    add_mapping_options(compile_)
    compile_.add_argument("--word-bits", type=int, choices=WORD_BITS, default=None,
                          help="word width of the AXI4-Streams (dataflow; default 64) or of the engine's "
                               "feature-map AXI4 masters (default: the faster of 64 and the board's HP port width; "
                               "its params master is 64 bits)")
    add_time_limit_option(compile_)
    compile_.add_argument("-o", "--output", type=output_path, help="project folder (default build/<model>)")
    add_pass_options(compile_)
    add_host_options(compile_)
    compile_.set_defaults(run=cmd_compile)
    csim = commands.add_parser("csim", help="run a compiled project's C simulation (g++, bit-exact) on inputs")
    csim.add_argument("project", help="project folder written by `hwcodesign compile`")
    csim.add_argument("input", help=".npy frames (N,C,H,W) or (C,H,W) (a vector input, as an MLP's: (N,C) or (C,)): "
                                    "integers as they are, floats are quantized; .npz by input tensor name for several "
                                    "inputs")
    csim.add_argument("-o", "--output", type=output_path, help="where to write the outputs (.npz; default <input>_csim.npz)")
    csim.add_argument("--model", help="the source .onnx: also run the golden model and require bit-exact agreement")
    add_xilinx_headers_option(csim)
    csim.set_defaults(run=cmd_csim)
    check = commands.add_parser(
        "check", help="check a compiled project: synthesizable C++, the Vitis/Vivado Tcl scripts, the C simulation build"
    )
    check.add_argument("project", help="project folder written by `hwcodesign compile`")
    add_xilinx_headers_option(check)
    check.set_defaults(run=cmd_check)
    package = commands.add_parser(
        "package", help="gather a compiled project's bitstream, driver and notebook into one folder for a PYNQ board"
    )
    package.add_argument("project", help="project folder written by `hwcodesign compile`")
    package.add_argument("-o", "--output", type=output_path, help="package folder (default <project>/pynq_package)")
    package.add_argument("--zip", action="store_true", help="also write <name>.zip of the folder beside it")
    package.set_defaults(run=cmd_package)
    search_ = commands.add_parser(
        "search", help="choose every layer's weight format (int8/int4/DyBit) and folding in one ILP: Pareto front"
    )
    search_.add_argument("model", help="path to a QDQ .onnx file (its weights are re-quantized per format)")
    search_.add_argument("--board", default="ultra96v2", help="board name (see `hwcodesign boards`)")
    target = search_.add_mutually_exclusive_group()
    target.add_argument("--fps", type=frame_rate, help="choose the least-sensitive formats reaching this frame rate")
    target.add_argument("--max-sensitivity", type=non_negative,
                        help="choose the fastest formats whose summed sensitivity stays within this")
    search_.add_argument("--formats", type=weight_formats, default="int8,int4,dybit4,dybit3,dybit2",
                         help="candidate weight formats, comma separated (default int8,int4,dybit4,dybit3,dybit2)")
    search_.add_argument("--inputs", metavar="FRAMES", help="calibration frames (.npy, float or integer) for the "
                         "sensitivities (default: random frames)")
    search_.add_argument("--cap", type=resource_cap, action="append", default=[], metavar="RESOURCE=FRACTION",
                         help="utilisation cap per resource (default dsp=0.9, bram18k/lut/ff=0.8)")
    add_time_limit_option(search_)
    search_.add_argument("-o", "--output", type=output_path, help="output folder (default build/<model>-search-<board>)")
    search_.set_defaults(run=cmd_search)
    evaluate_ = commands.add_parser(
        "evaluate", help="run the whole model over a data set off the board (host parts + the golden model of "
                         "the accelerator, or its C simulation): accuracy against labels, agreement with onnxruntime")
    evaluate_.add_argument("model", help="path to the quantized .onnx model")
    evaluate_.add_argument("frames", help="float frames: .npy (N, ...) for one input, .npz by input name for several")
    evaluate_.add_argument("--labels", metavar="LABELS", help="integer class per frame (.npy, shape (N,)): top-1 "
                                                              "accuracy of the first output")
    evaluate_.add_argument("--batch", type=frame_count, default=DEFAULT_BATCH, metavar="N",
                           help=f"frames the golden model runs at once (default {DEFAULT_BATCH}; a model with state "
                                "runs all its frames as one sequence)")
    evaluate_.add_argument("--no-compare", action="store_true", help="do not run onnxruntime beside it")
    evaluate_.add_argument("--project", metavar="DIR", help="run the accelerator as this compiled project's C "
                                                            "simulation (g++) instead of the golden model")
    add_xilinx_headers_option(evaluate_)
    evaluate_.add_argument("-o", "--output", type=output_path, help="write the model's outputs to this .npz")
    add_host_options(evaluate_)
    evaluate_.set_defaults(run=cmd_evaluate)
    quantize = commands.add_parser(
        "quantize", help="quantize a float ONNX model for the accelerator (onnxruntime quantize_static, QDQ)")
    quantize.add_argument("model", help="path to the float .onnx model")
    quantize.add_argument("--calibration", required=True, metavar="FRAMES",
                          help="float calibration frames: .npy (N, ...) for one input, .npz by input name for several")
    quantize.add_argument("-o", "--output", type=output_path, required=True, help="the QDQ .onnx file to write")
    quantize.add_argument("--weight-bits", type=int, choices=(8, 4), default=8, help="weight bits (default 8)")
    quantize.add_argument("--per-tensor", action="store_true", help="one weight scale per layer, not per channel")
    quantize.add_argument("--symmetric-activations", action="store_true",
                          help="int8 activations with zero point 0 and scale max|x| / 127 (as CoDeNet), not uint8")
    quantize.add_argument("--host", nargs="+", default=[], metavar="NODE_OR_OPTYPE",
                          help="node names or op types to keep float for the host CPU (e.g. GRU ArgMax)")
    quantize.set_defaults(run=cmd_quantize)
    boards = commands.add_parser("boards", help="list the supported boards and their resources")
    boards.set_defaults(run=cmd_boards)
    return parser


def add_xilinx_headers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--xilinx-headers", metavar="DIR",
                        help="build the C simulation against Xilinx's ap_int.h/hls_stream.h in DIR instead of the shim")


def add_time_limit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-limit", type=seconds, default=DEFAULT_TIME_LIMIT, metavar="SECONDS",
                        help=f"time the mapping's integer programs may take (default {DEFAULT_TIME_LIMIT:g} s); "
                        "when it runs out the best design found so far is used, marked as not proven optimal")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with notes_printed():
            return args.run(args)
    except HwcodesignError as error:
        if args.debug:
            raise
        print(f"hwcodesign: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.debug or not caused_by_interrupt(error):
            raise
        return interrupted()
    except KeyboardInterrupt:
        if args.debug:
            raise
        return interrupted()


@contextlib.contextmanager
def notes_printed() -> Iterator[None]:
    """Each `ModelNote` the command issues as one `hwcodesign: note: ...` line on stderr when it is
    issued (once per message); other warnings as Python shows them."""
    show = warnings.showwarning

    def show_note(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
        if issubclass(category, ModelNote):
            print(f"hwcodesign: note: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("default", ModelNote)
        warnings.showwarning = show_note
        yield


def interrupted() -> int:
    """Ctrl-C: one line and exit 130. Outputs are staged and swapped in whole
    (hwcodesign/outputs.py), so nothing half-written stays."""
    print("hwcodesign: interrupted", file=sys.stderr)
    return INTERRUPTED


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether a Ctrl-C is what `error` wraps: Python re-raises one that lands in a class body's
    `__set_name__` (e.g. while matplotlib is imported) as a RuntimeError caused by it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
