"""`hwcodesign` entry point. Each subcommand calls the same functions a notebook would.

User errors (bad model, unknown board) print one line and exit 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hwcodesign.boards import available_boards, format_board_table, load_board
from hwcodesign.cli.progress import step
from hwcodesign.errors import HwcodesignError
from hwcodesign.frontend import load_onnx
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.ops import Act, Conv, Input, Linear, Pool
from hwcodesign.mapper.cost import RESOURCES
from hwcodesign.mapper.ilp import GOALS, map_to_board
from hwcodesign.passes import optimize
from hwcodesign.report import build_report, format_layer_table, format_summary, write_report
from hwcodesign.sim.latency import simulate
from hwcodesign.tables import format_table


def layer_table(graph: Graph) -> str:
    """One row per layer: what it is, what flows in and out, and what it costs."""
    rows = []
    for op in graph:
        inputs = graph.input_tensors(op)
        in_shape = ", ".join("x".join(map(str, t.shape[1:])) for t in inputs) or "-"
        weight = f"{op.weight_type}" if isinstance(op, Conv | Linear) else "-"
        detail = op.kind
        if isinstance(op, Conv):
            kh, kw = op.kernel
            detail += f" {kh}x{kw}/s{op.stride[0]}" + (f" g{op.groups}" if op.groups > 1 else "")
        elif isinstance(op, Pool):
            detail = f"{op.mode.capitalize()}Pool {op.kernel[0]}x{op.kernel[1]}/s{op.stride[0]}"
        elif isinstance(op, Act):
            detail += f" {op.function}"
        rows.append((
            op.name,
            detail,
            in_shape,
            "x".join(map(str, op.output.shape[1:])),
            op.output.describe(),
            weight,
            f"{op.macs([t.shape for t in inputs]):,}" if not isinstance(op, Input) else "0",
            f"{op.weight_bits():,}",
        ))
    headers = ("layer", "op", "input CxHxW", "output CxHxW", "output type", "weights", "MACs", "weight bits")
    return format_table(headers, rows, right_align=(6, 7))


def summary(graph: Graph) -> str:
    macs = sum(op.macs([t.shape for t in graph.input_tensors(op)]) for op in graph if not isinstance(op, Input))
    bits = sum(op.weight_bits() for op in graph)
    outputs = ", ".join(f"{t.name} {'x'.join(map(str, t.shape[1:]))} {t.describe()}" for t in graph.output_tensors())
    return (
        f"{len(graph)} layers, {macs / 1e6:.2f} M MACs per frame, "
        f"{bits / 8 / 1024:.1f} KiB of weights and biases\noutputs: {outputs}"
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    graph = load_onnx(args.model)
    if not args.raw:
        graph = optimize(graph)
    print(layer_table(graph))
    print()
    print(summary(graph))
    return 0


def parse_caps(pairs: list[str]) -> dict[str, float]:
    """`--cap dsp=0.9 --cap lut=0.7` -> {"dsp": 0.9, "lut": 0.7} (fractions of the board)."""
    caps = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in RESOURCES or not value:
            raise HwcodesignError(f"--cap {pair}: expected RESOURCE=FRACTION with RESOURCE one of {', '.join(RESOURCES)}")
        try:
            caps[name] = float(value)
        except ValueError:
            raise HwcodesignError(f"--cap {pair}: '{value}' is not a number") from None
        if not 0 < caps[name] <= 1:
            raise HwcodesignError(f"--cap {pair}: the fraction must be in (0, 1]")
    return caps


def cmd_simulate(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    out_dir = Path(args.output) if args.output else Path("reports") / f"{Path(args.model).stem}-{board.name}"
    caps = parse_caps(args.cap)
    with step("importing and optimizing the model"):
        graph = optimize(load_onnx(args.model))
    with step(f"mapping onto {board.name} (integer program, goal: {args.goal})"):
        mapping = map_to_board(graph, board, args.goal, fps=args.fps, caps=caps)
    with step("simulating the dataflow pipeline"):
        latency = simulate(graph, mapping)
    report = build_report(graph, mapping, latency, model_path=str(args.model))
    with step(f"writing {out_dir}/report.json and report.html"):
        write_report(report, out_dir)
    print(format_layer_table(report))
    print()
    print(format_summary(report))
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    print(format_board_table(available_boards()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwcodesign", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print the lowered integer IR of a quantized ONNX model")
    inspect.add_argument("model", help="path to a QDQ or QONNX .onnx file")
    inspect.add_argument("--raw", action="store_true", help="show the IR before optimization passes")
    inspect.set_defaults(run=cmd_inspect)
    simulate = commands.add_parser(
        "simulate", help="map a model onto a board and simulate its latency and throughput (no hardware needed)"
    )
    simulate.add_argument("model", help="path to a QDQ or QONNX .onnx file")
    simulate.add_argument("--board", default="ultra96v2", help="board name (see `hwcodesign boards`)")
    simulate.add_argument("--goal", choices=GOALS, default="throughput",
                          help="throughput: minimise the bottleneck interval; latency: minimise first-frame latency")
    simulate.add_argument("--fps", type=float, help="frame-rate floor the mapping must reach")
    simulate.add_argument("--cap", action="append", default=[], metavar="RESOURCE=FRACTION",
                          help="utilisation cap per resource (default dsp=0.9, bram18k/lut/ff=0.8)")
    simulate.add_argument("-o", "--output", help="report folder (default reports/<model>-<board>)")
    simulate.set_defaults(run=cmd_simulate)
    boards = commands.add_parser("boards", help="list the supported boards and their resources")
    boards.set_defaults(run=cmd_boards)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except HwcodesignError as error:
        if args.debug:
            raise
        print(f"hwcodesign: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
