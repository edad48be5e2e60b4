"""Every pass from an ONNX model to the optimized integer IR, named and in order. A reader sees
the whole import here at a glance.

1. The lowering steps (`LOWERING_STEPS`): patterns the lowering walk tries on each node before
   its op type's rule, while the float epilogue is still visible: read a Clip between
   QuantizeLinear and DequantizeLinear as a narrower quantizer, fold constants, make float
   functions of one quantized tensor lookup tables, fold BatchNorm,
   fold activations into the layer before them, recognise fixed-shape DeformConv offsets and
   sparse active-site masks. They read the walk's state, so they run inside it.
2. `lower`: the walk itself (`passes/lowering.py`), building the IR with the families' rules.
3. The IR passes (`IR_PASSES`): Graph -> Graph rewrites that never change an output integer.
4. The mapping-time rewrites (`MAPPING_PASSES`): rewrites that change what the accelerator takes
   (not an output integer) and pay on some hardware only, so the compiler applies them where the
   mapper models a faster design: `pack-input-window` (`passes/input_window.py`).

Any pass but `lower` can be disabled by name (`PassOptions.disabled`, `--disable-pass NAME`); a
model that needs a disabled pass is refused as if the pass did not exist, naming the node.
`PassOptions.dump_ir` writes one numbered file per pass that ran (`passes/dump.py`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from hwcodesign.errors import HwcodesignError
from hwcodesign.frontend.loader import origin_of, read_model, type_error
from hwcodesign.ir.graph import Graph
from hwcodesign.passes.cleanup import remove_dead_layers, remove_identity_acts
from hwcodesign.passes.dump import clear_dumps, graph_text, step_text, write_dump
from hwcodesign.passes.fusion import fuse_activations
from hwcodesign.passes.lowering import LoweringWalk, lowering_patterns

Pass = Callable[[Graph], Graph]

LOWERING_STEPS: tuple[str, ...] = (
    "recognize-narrow-quantizers",
    "fold-constants",
    "lookup-tables",
    "fold-batch-norm",
    "fold-activations",
    "recognize-fixed-shape-offsets",
    "recognize-sparse-masks",
    "recognize-channel-shuffle",
)
LOWER = "lower"
IR_PASSES: tuple[tuple[str, Pass], ...] = (
    ("remove-dead-layers", remove_dead_layers),
    ("remove-identity-acts", remove_identity_acts),
    ("fuse-activations", fuse_activations),
)
PACK_INPUT_WINDOW = "pack-input-window"
MAPPING_PASSES: tuple[str, ...] = (PACK_INPUT_WINDOW,)
PASS_NAMES: tuple[str, ...] = (*LOWERING_STEPS, LOWER, *(name for name, _ in IR_PASSES), *MAPPING_PASSES)
assert set(LOWERING_STEPS) == set(lowering_patterns()), "every lowering pattern has its place in LOWERING_STEPS"


class PassError(HwcodesignError):
    """A pass named that does not exist, or that cannot be disabled."""


@dataclass(frozen=True)
class PassOptions:
    """Which passes to skip (names from `PASS_NAMES`) and where to dump the IR after each pass."""

    disabled: frozenset[str] = field(default_factory=frozenset)
    dump_ir: Path | None = None

    def __post_init__(self) -> None:
        for name in sorted(self.disabled):
            if name == LOWER:
                raise PassError(f"pass '{LOWER}' builds the IR and cannot be disabled")
            if name not in PASS_NAMES:
                raise PassError(f"unknown pass '{name}'; the passes are: {', '.join(PASS_NAMES)}")

    def enabled(self, name: str) -> bool:
        return name not in self.disabled

    def dump(self, name: str, text: str) -> None:
        """Write `text` as the dump of pass `name`, numbered by its place in `PASS_NAMES`."""
        if self.dump_ir is not None:
            write_dump(self.dump_ir, PASS_NAMES.index(name) + 1, name, text)

    def dump_graph(self, name: str, graph: Graph) -> None:
        self.dump(name, graph_text(graph, f"after pass {PASS_NAMES.index(name) + 1} '{name}'"))


DEFAULT = PassOptions()


def lower(model: onnx.ModelProto, options: PassOptions = DEFAULT, *, dump: bool = True) -> Graph:
    """The lowering walk with the enabled steps; dumps each step's nodes, then the graph."""
    steps = [step for step in LOWERING_STEPS if options.enabled(step)]
    walk = LoweringWalk(model, steps)
    graph = walk.run()
    if dump and options.dump_ir is not None:
        clear_dumps(options.dump_ir)
        patterns = lowering_patterns()
        for step in steps:
            title = f"pass {PASS_NAMES.index(step) + 1} '{step}': a lowering step, run during '{LOWER}'"
            options.dump(step, step_text(title, patterns[step].summary, walk.taken[step]))
        options.dump_graph(LOWER, graph)
    return graph


def load_onnx(source: str | Path | onnx.ModelProto, options: PassOptions = DEFAULT) -> Graph:
    """Read, check and lower a quantized ONNX model; raises a HwcodesignError on bad input.

    A model the ONNX checker's type and shape inference refuses is still refused, but in the
    lowering's words when it has some: they say what to change ("P must have shape (1, 18, 1, 1)")
    where the checker says only that shapes do not broadcast.
    """
    return lower_checked(read_model(source), origin_of(source), options)


def lower_checked(model: onnx.ModelProto, origin: str, options: PassOptions = DEFAULT) -> Graph:
    """`lower` on a structurally valid model, refusing one the checker's full check refuses
    (in the lowering's words where it has some)."""
    invalid = type_error(model, origin)
    if invalid is None:
        return lower(model, options)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # its numbers may be anything
            warnings.simplefilter("ignore")
            lower(model, options, dump=False)
    except HwcodesignError as error:
        raise error from None
    except Exception:  # noqa: BLE001, S110 - lowering assumes a type-valid model; the checker's error is the answer
        pass
    raise invalid


def optimize(graph: Graph, options: PassOptions = DEFAULT) -> Graph:
    """Run every enabled IR pass in order, checking the graph after each one."""
    for name, rewrite in IR_PASSES:
        if options.enabled(name):
            graph = rewrite(graph)
            graph.check()
            options.dump_graph(name, graph)
    return graph
