"""`--disable-pass NAME` and `--dump-ir DIR`: the options `inspect`, `simulate` and `compile` share
to run the import pipeline (`hwcodesign/passes/pipeline.py`) with passes off or its IR dumped."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from hwcodesign.cli.values import output_path
from hwcodesign.outputs import PathLike
from hwcodesign.passes import IR_PASSES, LOWERING_STEPS, MAPPING_PASSES, PassOptions, check_dump_dir


def add_pass_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--disable-pass", action="append", default=[], metavar="NAME",
                        help=f"skip this pass (repeatable); the passes in order: {', '.join(LOWERING_STEPS)} "
                        f"(lowering steps), lower, {', '.join(name for name, _ in IR_PASSES)} (IR rewrites), "
                        f"{', '.join(MAPPING_PASSES)} (taken where the mapper models a faster design)")
    parser.add_argument("--dump-ir", metavar="DIR", type=output_path,
                        help="write the IR after each pass into DIR, one numbered text file per pass")


def pass_options(args: argparse.Namespace, inputs: Iterable[PathLike | None]) -> PassOptions:
    """The options, checked before any work: pass names known, DIR safe as `-o` is (`inputs`: what
    the command reads and writes, which DIR may not be or hold)."""
    disabled = frozenset(args.disable_pass)
    PassOptions(disabled)  # an unknown name is refused before DIR is looked at
    return PassOptions(disabled, check_dump_dir(args.dump_ir, inputs) if args.dump_ir else None)
