"""`--host` and `--state`: the options `inspect`, `simulate` and `compile` share to put parts of a
model on the board's CPU (`hwcodesign/partition/`)."""

from __future__ import annotations

import argparse

from hwcodesign.partition import HostOptions


def state_pair(text: str) -> tuple[str, str]:
    """`INPUT=OUTPUT`: a graph input fed with the graph output of the frame before."""
    state_in, sep, state_out = text.partition("=")
    if not sep or not state_in or not state_out:
        raise argparse.ArgumentTypeError(f"'{text}' is not INPUT=OUTPUT (a graph input and the graph output "
                                         "that feeds it on the next frame)")
    return state_in, state_out


def add_host_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", action="append", default=[], metavar="NODE_OR_OPTYPE",
                        help="run this node, or every node of this op type, on the board's CPU (repeatable; e.g. "
                        "GRU, ArgMax, or a first layer's node name); float parts before the first quantizer and "
                        "after the last dequantizer run there anyway")
    parser.add_argument("--state", action="append", default=[], type=state_pair, metavar="INPUT=OUTPUT",
                        help="a host state carried across frames beyond those found on GRU/LSTM/RNN nodes "
                        "(repeatable); zeros at the start and after the driver's reset()")


def host_options(args: argparse.Namespace) -> HostOptions:
    return HostOptions(tuple(args.host), tuple(args.state))
