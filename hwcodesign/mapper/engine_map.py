"""Sizing the layer-sequential engine for a model and a board: the same integer program.

The engine is one set of units, so the choice is one configuration (PE, SIMD, output stages,
pixel lanes, weight-memory depth, pixel parallelism, and on a board with UltraRAM which of its
weight memories and line buffer are built in it) for the whole model; each instruction's schedule
on it (its blocks, `engine.plan`) follows from the configuration (where a buffer is built changes
no schedule, only the resources). Every configuration is a candidate of a
single-"layer" table with its frame cycles (the sum of its instructions' cycles, the engine
running one layer at a time) and its resources, and `table.solve_table` picks the fastest that fits
the board's caps (and the fps bound), among ties the one using least; `least_within_limits`
explains infeasibility as it does for the dataflow pipeline. The candidate set is the whole
design space (a few thousand configurations), so the result is optimal for the cost model.

One engine runs one frame at a time; a board with room for more can hold several identical
instances, each on its own PS HP port with its own feature-map buffer, running different frames
at once (the DPU runs three cores on a ZCU102 the same way). The number of instances is part of
each candidate: the interval is a frame's cycles over the instances, the resources are the
instances' sum, and all instances share the board's DDR (`MemorySystem.shared`), so each one's
DDR-bound steps slow down as they are added. A frame's latency does not improve, so the
"latency" goal keeps one instance.

Each instance also runs its frames in batches: one start of the engine runs every instruction on
all the batch's frames (each in its own arena) before the next, so an instruction's weights and
records cross the DDR once per batch instead of once per frame: most of a big CNN's DDR traffic
in its deep layers (ResNet-50: 24 of 68 MB a frame). A larger batch never costs on-chip
resources and never lengthens the interval, so the throughput and resources goals take the
largest whose feature-map buffers fit `ARENA_BUDGET_BYTES` (up to `MAX_BATCH`, or the user's
`--max-batch`); every frame of a batch waits for the whole run, so the "latency" goal runs one
frame at a time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from hwcodesign.boards import HP_PORTS, Board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.engine.config import MAX_BATCH, URAM_BUFFERS, EngineConfig, EngineUnsupported
from hwcodesign.hardware.engine.plan import InstructionPlan, holds_at_depth
from hwcodesign.hardware.folding import RESOURCES, LayerCost
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.engine.cost import (
    HP_PORT_BYTES,
    EngineRun,
    InstructionTiming,
    MemorySystem,
    engine_resources,
    instruction_timings,
    memory_system,
)
from hwcodesign.mapper.engine.program import (
    buffer_sizes,
    chosen_blocking,
    instruction_inputs,
    instructions,
    mac_buffer_sizes,
    pixel_buffer_sizes,
    plan,
    plan_arena,
    unit_buffer_sizes,
    whole_plan,
)
from hwcodesign.mapper.engine.widths import EngineWidths, engine_widths, weight_storage_bits
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, Deadline
from hwcodesign.mapper.table import (
    CandidateTable,
    MappingInfeasible,
    cycle_budget,
    least_within_limits,
    resource_limits,
    solve_table,
)

LANES = (8, 16, 32, 64)
OUTPUT_STAGES = (1, 2, 4, 8)
PIXEL_LANES = (1, 2, 4, 8)
PIXEL_PARALLELISM = (1, 2, 4, 8)
SMALLEST_WEIGHT_DEPTH = 256
MAX_INSTANCES = HP_PORTS
"""Engine instances a design may hold: one per PS HP port (each instance's four AXI4 masters
share its port)."""
ARENA_BUDGET_BYTES = 128 << 20
"""The feature-map buffers of every instance's batch together stay within 128 MiB: the driver takes
them from the kernel's contiguous-memory pool (pynq.allocate), which also holds the params buffer
and the host's own buffers."""


@dataclass(frozen=True)
class EngineMapping:
    """The chosen engine, its resources, and every instruction's timing on it."""

    board: Board
    goal: str
    config: EngineConfig
    resources: LayerCost
    timings: tuple[InstructionTiming, ...]
    widths: EngineWidths
    objective: float
    solve_seconds: float
    limits: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    reason: str = ""  # why "auto" chose the engine (empty when asked for explicitly)
    note: str = ""  # set when the solver's time limit ran out (`solver.Deadline.note`)
    instances: int = 1  # identical engines running different frames at once (`resources` is their sum)
    alone_cycles: int = 0  # a run's cycles on one instance of `config` with the DDR to itself (0: not known)
    batch: int = 1  # frames per run of an instance (`timings` are a run's: all its frames)

    architecture = "sequential"

    @property
    def frame_cycles(self) -> int:
        """One run on one instance, the instructions back to back: the latency of each of its
        `batch` frames."""
        return sum(t.cycles for t in self.timings)

    @property
    def frames_in_flight(self) -> int:
        """Frames the design holds at once: every instance's run of `batch` frames."""
        return self.instances * self.batch

    @property
    def bottleneck_cycles(self) -> int:
        """The frame interval: each instance finishes a run of `batch` frames before it starts its
        next, and the instances take runs in turn."""
        return interval_cycles(self.frame_cycles, self.frames_in_flight)

    @property
    def fps(self) -> float:
        return self.board.clock_mhz * 1e6 * self.frames_in_flight / max(self.frame_cycles, 1)

    def total(self, resource: str) -> int:
        return self.resources.resource(resource)

    @property
    def memory(self) -> MemorySystem:
        """What bounds one instance's DDR traffic: its HP port and its share of the DDR."""
        return memory_system(self.board).shared(self.instances)


def candidate_configs(word_bits: int, deepest: int, packed_macs: bool = False) -> list[EngineConfig]:
    """Every engine configuration the templates support, its buffers in the automatic memory:
    lanes that are multiples of a DDR word's bytes, output stages that divide them, pixel lanes
    that divide a word, weight memories from `SMALLEST_WEIGHT_DEPTH` words in powers of two up to
    `deepest` (no layer needing blocks), 1 to 8 output pixels at once. Each comes in every one of
    `uram_placements` (which changes no plan, so `engine_candidates` sizes the buffers once)."""
    word_bytes = word_bits // 8
    lanes = [n for n in LANES if n % word_bytes == 0]
    depths = sorted({d for d in (SMALLEST_WEIGHT_DEPTH << k for k in range(16)) if d < deepest} | {max(deepest, 1)})
    return [EngineConfig(pe, simd, rq, ew, depth, word_bits, packed_macs, pp)
            for pe in lanes for simd in lanes for rq in OUTPUT_STAGES if rq <= min(pe, simd)
            for ew in PIXEL_LANES if word_bytes % ew == 0 for depth in depths for pp in PIXEL_PARALLELISM]


def uram_placements(urams: int) -> list[tuple[str, ...]]:
    """Where an engine's buffers may be built with `urams` UltraRAM blocks to spare: every subset
    of `URAM_BUFFERS`, in their order (none, each alone, both), or none in it without any."""
    if urams <= 0:
        return [()]
    return [tuple(b for k, b in enumerate(URAM_BUFFERS) if mask >> k & 1) for mask in range(1 << len(URAM_BUFFERS))]


def deepest_weights(graph: Graph, word_bits: int) -> int:
    """Weight words per PE memory the largest layer needs at the narrowest lanes (an upper bound
    on any useful weight depth)."""
    program = instructions(graph, word_bits)
    narrowest = min(n for n in LANES if n % (word_bits // 8) == 0)  # the fewest lanes any candidate has
    loose = EngineConfig(narrowest, narrowest, 1, 1, 1 << 40, word_bits)
    bits = weight_storage_bits(graph)
    return max((p.weight_buffer_words for p in (plan(i, graph, loose, bits) for i in program) if p.load_pe),
               default=1)


def interval_cycles(run_cycles: int, frames_at_once: int) -> int:
    """Cycles between frames when `frames_at_once` frames (instances x batch) take `run_cycles`
    together (a whole cycle)."""
    return math.ceil(run_cycles / frames_at_once)


def arena_bytes(graph: Graph, word_bits: int, program: list | None = None) -> int:
    """One frame's feature-map buffer (`plan_arena`) for `program` (`graph`'s instructions unless
    given): what a batch multiplies."""
    program = instructions(graph, word_bits) if program is None else program
    return plan_arena(graph, word_bits // 8, program).words * word_bits // 8


def largest_batch(instances: int, frame_bytes: int, most: int = MAX_BATCH) -> int:
    """The most frames per run, up to `most`, whose feature-map buffers, for all `instances`,
    fit `ARENA_BUDGET_BYTES` (`most`, or the largest power of two below it that fits); 1 at least."""
    batch = most
    while batch > 1 and instances * batch * frame_bytes > ARENA_BUDGET_BYTES:
        batch = 1 << ((batch - 1).bit_length() - 1)  # the next power of two down
    return batch


@dataclass(frozen=True)
class EngineCandidate:
    config: EngineConfig
    cost: LayerCost  # cycles = the frame interval, depth = a run's cycles; resources of all instances
    timings: tuple[InstructionTiming, ...]  # one run (`batch` frames) on one instance
    instances: int = 1
    batch: int = 1


def candidate(config: EngineConfig, timings: tuple[InstructionTiming, ...], resources: LayerCost,
              instances: int, batch: int = 1) -> EngineCandidate:
    """`instances` engines at `config` (one's `resources`), a run of `batch` frames on one taking
    `timings`."""
    cycles = sum(t.cycles for t in timings)
    cost = LayerCost(interval_cycles(cycles, instances * batch), cycles,
                     **{r: instances * resources.resource(r) for r in RESOURCES})
    return EngineCandidate(config, cost, timings, instances, batch)


class PixelUnitShare:
    """The pixel unit's instructions planned and timed once per pixel-lane count, for every number
    of instances. A pixel instruction's plan and loops depend only on the word width and the pixel
    lanes (the pixel unit's own sizes: `EngineFacet.plan` and `pixel_loops` of the pixel families
    read nothing else), not on the MAC unit's PE, SIMD, output stages or weight depth, so every
    configuration with the same lanes shares them: most of the sizing time of a model with many
    pixel instructions (DenseNet's hundreds of Concat parts). The brute-force tests, which plan
    every configuration afresh (`evaluate_config`), hold the shared timings to that."""

    def __init__(self, graph: Graph, program: list, bits: int, operands: Sequence[tuple[Tensor, ...]],
                 runs: Sequence[EngineRun]) -> None:
        self.graph, self.program, self.bits, self.operands, self.runs = graph, program, bits, operands, runs
        self.indexes = [k for k, i in enumerate(program) if not i.is_mac]
        self.by_lanes: dict[int, dict[int, tuple[InstructionPlan, tuple[InstructionTiming, ...]]] | None] = {}
        self.sized: dict[int, dict[str, int]] = {}
        self.in_runs: dict[tuple[int, int], list[InstructionTiming | None]] = {}

    def of(self, config: EngineConfig) -> dict[int, tuple[InstructionPlan, tuple[InstructionTiming, ...]]] | None:
        """Instruction index -> (plan, timing in each run: 1, 2, ... instances) of every pixel instruction at
        `config`'s pixel lanes; None when one cannot run on them."""
        if config.ew_lanes not in self.by_lanes:
            try:
                plans = {k: plan(self.program[k], self.graph, config, self.bits, self.operands[k]) for k in self.indexes}
            except EngineUnsupported:
                self.by_lanes[config.ew_lanes] = None
            else:
                self.by_lanes[config.ew_lanes] = {
                    k: (item, instruction_timings(item, config, self.bits, self.runs)) for k, item in plans.items()}
        return self.by_lanes[config.ew_lanes]

    def buffers(self, config: EngineConfig) -> dict[str, int]:
        """`pixel_buffer_sizes` of the pixel instructions at `config`'s pixel lanes (which `of` has
        planned)."""
        if config.ew_lanes not in self.sized:
            planned = self.by_lanes[config.ew_lanes]
            assert planned is not None
            self.sized[config.ew_lanes] = pixel_buffer_sizes((item for item, _ in planned.values()), config)
        return self.sized[config.ew_lanes]

    def run_timings(self, config: EngineConfig, instances: int) -> list[InstructionTiming | None]:
        """Every instruction's timing in a run on one of `instances` engines, as a new list: the
        pixel instructions' at `config`'s pixel lanes (which `of` has timed), None for the MAC
        unit's (its many sizes fill in their own into a copy of one list)."""
        if (config.ew_lanes, instances) not in self.in_runs:
            planned = self.by_lanes[config.ew_lanes]
            assert planned is not None
            timings: list[InstructionTiming | None] = [None] * len(self.program)
            for k, (_, timed) in planned.items():
                timings[k] = timed[instances - 1]
            self.in_runs[config.ew_lanes, instances] = timings
        return list(self.in_runs[config.ew_lanes, instances])


class MacUnitShare:
    """The MAC unit's instructions planned and timed once per MAC-unit size, for every number of
    instances. A MAC plan and its loops read the configuration's PE, SIMD, output stages, weight
    depth, pixel parallelism and word (`mac_plan`), and the pixel unit's lanes only where they time
    a fused residual Add (its stage has that many lanes): in the choice of blocking
    (`chosen_blocking`) and the timings. So every MAC instruction is planned in the whole memories
    (`whole_plan`) once per MAC-unit size, the instructions without a residual Add are also given
    their blocking and timed once per size, and those with one per size and pixel lanes. Plans come
    first (the resources need them), timings only when asked for (a configuration that cannot fit
    is never timed).

    The weight depth only blocks the weights: a layer in one block has the same plan at every
    depth holding them (`holds_at_depth`), so it is planned once for all of them, and timed once
    too (the cost model reads the depth only through the plan)."""

    def __init__(self, graph: Graph, program: list, bits: int, operands: Sequence[tuple[Tensor, ...]],
                 runs: Sequence[EngineRun]) -> None:
        self.graph, self.program, self.bits, self.operands, self.runs = graph, program, bits, operands, runs
        macs = [k for k, i in enumerate(program) if i.is_mac]
        self.shared = [k for k in macs if program[k].residual is None]
        self.own = [k for k in macs if program[k].residual is not None]
        self.keys: dict[EngineConfig, list[tuple[tuple[EngineConfig, bool], list[int]]]] = {}
        self.whole: dict[EngineConfig, dict[int, InstructionPlan] | None] = {}
        self.planned: dict[tuple[EngineConfig, bool], dict[int, InstructionPlan]] = {}
        self.timed: dict[tuple[EngineConfig, bool], dict[int, tuple[InstructionTiming, ...]]] = {}
        self.sized: dict[tuple[tuple[EngineConfig, bool], ...], dict[str, int]] = {}
        # by the size or key but for the depth (`depthless`): instruction index -> its plan, timing in one block
        self.one_block: dict[EngineConfig, dict[int, InstructionPlan]] = {}
        self.one_block_timed: dict[tuple[EngineConfig, bool], dict[int, tuple[InstructionTiming, ...]]] = {}

    def _keys(self, config: EngineConfig) -> list[tuple[tuple[EngineConfig, bool], list[int]]]:
        """(the MAC-unit size, False) and the instructions without a residual Add, then, if any,
        (the size with the pixel lanes, True) and those with one (found once per configuration)."""
        if config not in self.keys:
            mac_unit = replace(config, uram=())  # where a buffer is built changes no plan and no cycle
            keys = [((replace(mac_unit, ew_lanes=1), False), self.shared)]
            self.keys[config] = keys + [((mac_unit, True), self.own)] if self.own else keys
        return self.keys[config]

    def plans(self, config: EngineConfig) -> dict[int, InstructionPlan] | None:
        """Instruction index -> plan of every MAC instruction on `config`; None when one cannot run."""
        keys = self._keys(config)
        whole = self._whole_plans(keys[0][0][0], config)
        if whole is None:
            return None
        found: dict[int, InstructionPlan] = {}
        for key, indexes in keys:
            if key not in self.planned:
                self.planned[key] = {k: chosen_blocking(whole[k], config, self.bits) for k in indexes}
            found.update(self.planned[key])
        return found

    def _whole_plans(self, size: EngineConfig, config: EngineConfig) -> dict[int, InstructionPlan] | None:
        """Instruction index -> `whole_plan` of every MAC instruction on `config`, of MAC-unit size
        `size`; None when one cannot run."""
        if size not in self.whole:
            one_block = self.one_block.setdefault(depthless(size), {})
            try:
                self.whole[size] = {k: self._whole_plan(k, one_block, config) for k in self.shared + self.own}
            except EngineUnsupported:
                self.whole[size] = None
        return self.whole[size]

    def _whole_plan(self, k: int, one_block: dict[int, InstructionPlan], config: EngineConfig) -> InstructionPlan:
        """`whole_plan` of instruction `k` on `config`, or the plan in one block it has on the sizes
        differing only in the depth (`one_block`, which keeps the first found) where `config`'s
        depth holds it (`holds_at_depth`)."""
        known = one_block.get(k)
        if known is not None and holds_at_depth(known, config.weight_depth):
            return known
        item = whole_plan(self.program[k], self.graph, config, self.bits, self.operands[k])
        if known is None and item.blocks == 1:
            one_block[k] = item
        return item

    def buffers(self, config: EngineConfig) -> dict[str, int]:
        """`mac_buffer_sizes` of every MAC instruction on `config` (which `plans` has planned), once
        for all the configurations sharing their plans."""
        keys = tuple(key for key, _ in self._keys(config))
        if keys not in self.sized:
            self.sized[keys] = mac_buffer_sizes(item for key in keys for item in self.planned[key].values())
        return self.sized[keys]

    def timings(self, config: EngineConfig) -> dict[int, tuple[InstructionTiming, ...]]:
        """Instruction index -> its timing in each run, of every MAC instruction on `config` (which
        `plans` has planned)."""
        found: dict[int, tuple[InstructionTiming, ...]] = {}
        for key, _ in self._keys(config):
            if key not in self.timed:
                one_block = self.one_block_timed.setdefault((depthless(key[0]), key[1]), {})
                self.timed[key] = {k: self._timing(k, item, one_block, config) for k, item in self.planned[key].items()}
            found.update(self.timed[key])
        return found

    def _timing(self, k: int, item: InstructionPlan, one_block: dict[int, tuple[InstructionTiming, ...]],
                config: EngineConfig) -> tuple[InstructionTiming, ...]:
        """Instruction `k`'s timing in each run on `config`, planned `item`: a plan in one block is
        the same on all the sizes differing only in the depth, so one timing of it serves them
        (`one_block`); a plan in blocks is timed."""
        if item.blocks > 1:
            return instruction_timings(item, config, self.bits, self.runs)
        if k not in one_block:
            one_block[k] = instruction_timings(item, config, self.bits, self.runs)
        return one_block[k]


def depthless(config: EngineConfig) -> EngineConfig:
    """`config` but for its weight depth: the key of what the depths share (`MacUnitShare`)."""
    return replace(config, weight_depth=0)


def program_timings(pixel_unit: PixelUnitShare, mac_unit: MacUnitShare, config: EngineConfig,
                    instances: int) -> tuple[InstructionTiming, ...]:
    """Every instruction's timing in a run on one of `instances` engines at `config`, from the
    unit that runs it."""
    timings = pixel_unit.run_timings(config, instances)
    for k, timed in mac_unit.timings(config).items():
        timings[k] = timed[instances - 1]
    return cast(tuple[InstructionTiming, ...], tuple(timings))  # every MAC instruction's filled in


def evaluate_config(graph: Graph, program: list, config: EngineConfig, widths: EngineWidths, bits: int,
                    bandwidth: MemorySystem, operands: Sequence[tuple[Tensor, ...]] | None = None,
                    instances: int = 1, batch: int = 1) -> EngineCandidate | None:
    """`instances` engines at `config` running `batch` frames a run: the frame interval, a run's
    cycles and their resources; None when a layer cannot run on it. `operands`: each
    instruction's input tensors, looked up once for all the configurations."""
    if operands is None:
        operands = [instruction_inputs(i, graph) for i in program]
    try:
        plans = [plan(i, graph, config, bits, inputs) for i, inputs in zip(program, operands)]
    except EngineUnsupported:
        return None
    run = EngineRun(bandwidth.shared(instances), batch)
    timings = tuple(instruction_timings(p, config, bits, (run,))[0] for p in plans)
    return candidate(config, timings, engine_resources(config, buffer_sizes(plans, config), widths), instances, batch)


def fits_instances(resources: LayerCost, instances: int, limits: dict[str, int] | None) -> bool:
    return limits is None or all(instances * resources.resource(r) <= limits[r] for r in RESOURCES)


def engine_candidates(graph: Graph, board: Board, word_bits: int = 64,
                      progress: Callable[[str], None] | None = None, limits: dict[str, int] | None = None,
                      max_instances: int = MAX_INSTANCES, max_batch: int = MAX_BATCH) -> list[EngineCandidate]:
    """Every configuration the templates support that fits `limits` alone (all of them when none
    does, or no limits are given), one to `max_instances` instances of it (more than one only
    where they fit: a candidate that cannot fit is never chosen), each running the largest batch
    up to `max_batch` its buffers allow (`largest_batch`)."""
    program = instructions(graph, word_bits)  # refuses what the engine cannot run at all
    bits = weight_storage_bits(graph)
    widths = engine_widths(graph, [plan(i, graph, EngineConfig(8, 8, 1, 1, 1 << 40, word_bits), bits) for i in program])
    bandwidth = memory_system(board)
    configs = candidate_configs(word_bits, deepest_weights(graph, word_bits), widths.packs_macs(board.ps_type))
    # where the buffers are built changes no plan: each placement is sized from the same buffers
    placements = uram_placements((limits or board.resources.as_dict())["uram"])
    if progress:
        progress(f"sizing the engine: {len(configs) * len(placements)} configurations, 1 to {max_instances} instances, "
                 f"over {len(program)} instructions")
    operands = [instruction_inputs(i, graph) for i in program]
    frame_bytes = arena_bytes(graph, word_bits, program)
    runs = [EngineRun(bandwidth.shared(n), largest_batch(n, frame_bytes, max_batch)) for n in range(1, max_instances + 1)]
    pixel_unit = PixelUnitShare(graph, program, bits, operands, runs)
    mac_unit = MacUnitShare(graph, program, bits, operands, runs)
    sized = []  # (configuration, its resources): every one that runs the program
    for config in configs:
        pixel, mac = pixel_unit.of(config), mac_unit.plans(config)
        if pixel is None or mac is None:
            continue
        buffers = unit_buffer_sizes(mac_unit.buffers(config), pixel_unit.buffers(config))
        for placement in placements:
            placed = replace(config, uram=placement)
            sized.append((placed, engine_resources(placed, buffers, widths)))
    # one that cannot fit even alone is never chosen, so it is not timed, unless none fits: then
    # every one is, for the explanation of what does not fit
    fitting = [(c, r) for c, r in sized if fits_instances(r, 1, limits)]
    candidates = []
    timed: dict[tuple[EngineConfig, int], tuple[InstructionTiming, ...]] = {}  # wherever the buffers are built
    for config, resources in fitting or sized:
        unplaced = replace(config, uram=())
        for n in range(1, max_instances + 1):
            if n == 1 or fits_instances(resources, n, limits):
                if (unplaced, n) not in timed:
                    timed[unplaced, n] = program_timings(pixel_unit, mac_unit, config, n)
                candidates.append(candidate(config, timed[unplaced, n], resources, n, runs[n - 1].frames))
    if not candidates:
        raise MappingInfeasible(f"no engine configuration can run every layer of '{graph.name}' "
                                "(each needs more weight words per output than the largest weight memory)")
    return candidates


ENGINE_WORD_WIDTHS = (64, 128)
"""The feature maps' AXI words an engine may use (`EngineConfig.word_bits`; its params master stays
`PARAMS_WORD_BITS` wide): 128 bits only where the HP port is (Zynq UltraScale+), where it doubles
what every DDR-bound loop moves a cycle, at the price of lanes in multiples of 16 and pixels padded
to 16 bytes; the mapper takes whichever is faster."""


def engine_word_widths(board: Board, word_bits: int | None = None) -> tuple[int, ...]:
    """The feature-map words an engine on `board` may use: `ENGINE_WORD_WIDTHS` up to its HP
    port's width, or `word_bits` alone when pinned (EngineUnsupported names a width it cannot use)."""
    offered = tuple(w for w in ENGINE_WORD_WIDTHS if w // 8 <= HP_PORT_BYTES[board.ps_type])
    if word_bits is None:
        return offered
    if word_bits not in offered:
        raise EngineUnsupported(f"--word-bits {word_bits}: the layer-sequential engine's feature-map masters on "
                                f"{board.name} are {' or '.join(map(str, offered))} bits wide (its HP port's width "
                                "at most; other widths are the dataflow pipeline's)")
    return (word_bits,)


def map_engine(graph: Graph, board: Board, goal: str = "throughput", fps: float | None = None,
               caps: dict[str, float] | None = None, word_bits: int | None = None,
               progress: Callable[[str], None] | None = None,
               time_limit: float | Deadline | None = DEFAULT_TIME_LIMIT, max_batch: int = MAX_BATCH) -> EngineMapping:
    """The fastest engine for `graph` that fits `board`, running up to `max_batch` frames a run
    (goal "latency": one instance, one frame at a time, the shortest frame; "resources": the
    smallest that reaches `fps`), its feature maps' AXI words one of `engine_word_widths` (all of
    them tried unless `word_bits` pins one; EngineUnsupported names one the board cannot use);
    MappingInfeasible names what does not fit. The program is solved within `time_limit`
    (seconds or a shared Deadline, as for `ilp.map_dataflow`)."""
    start = time.perf_counter()
    limits = resource_limits(board, caps)
    if not 1 <= max_batch <= MAX_BATCH:
        raise HwcodesignError(f"an engine run holds 1 to {MAX_BATCH} frames, not {max_batch}")
    single = goal == "latency"
    candidates: list[EngineCandidate] = []
    refusals: list[HwcodesignError] = []
    for width in engine_word_widths(board, word_bits):
        try:
            candidates += engine_candidates(graph, board, width, progress, limits, 1 if single else MAX_INSTANCES,
                                            1 if single else max_batch)
        except (EngineUnsupported, MappingInfeasible) as refusal:  # at this width (a Concat's parts, ...)
            refusals.append(refusal)
    if not candidates:
        raise refusals[0]
    deadline = Deadline.of(time_limit)  # for the integer program (the candidates take the time they take)
    table = CandidateTable(("engine",), (tuple((c.config, c.instances) for c in candidates),),
                           (tuple(c.cost for c in candidates),))
    solution = solve_table(table, limits, "resources" if goal == "resources" else "throughput", cycle_budget(board, fps), deadline,
                           what="sizing the layer-sequential engine", hint="raise --time-limit")
    if solution is None:
        raise MappingInfeasible(explain_engine_infeasible(graph, board, table, limits, fps, deadline))
    (pick,), objective = solution
    chosen = candidates[pick]
    program = instructions(graph, chosen.config.word_bits)
    bits = weight_storage_bits(graph)
    plans = [plan(i, graph, chosen.config, bits) for i in program]
    widths = engine_widths(graph, plans)
    alone = alone_cycles(graph, program, chosen, widths, bits, memory_system(board))
    return EngineMapping(board, goal, chosen.config, chosen.cost, chosen.timings, widths, objective,
                         time.perf_counter() - start, limits, len(candidates), note=deadline.note,
                         instances=chosen.instances, alone_cycles=alone, batch=chosen.batch)


def alone_cycles(graph: Graph, program: list, chosen: EngineCandidate, widths: EngineWidths, bits: int,
                 bandwidth: MemorySystem) -> int:
    """A run of the chosen batch on one instance of the chosen configuration with the DDR to itself."""
    if chosen.instances == 1:
        return chosen.cost.depth
    alone = evaluate_config(graph, program, chosen.config, widths, bits, bandwidth, batch=chosen.batch)
    assert alone is not None  # the chosen configuration runs every instruction
    return alone.cost.depth


def explain_engine_infeasible(graph: Graph, board: Board, table: CandidateTable, limits: dict[str, int],
                              fps: float | None, deadline: Deadline | None = None) -> str:
    costs = table.costs[0]
    reasons = []
    for resource in RESOURCES:
        least = min(c.resource(resource) for c in costs)
        if least > limits[resource]:
            reasons.append(f"{resource.upper()} needs at least {least:,} (the smallest engine) but {board.name} "
                           f"allows {limits[resource]:,}")
    fitting = [c.cycles for c in costs if all(c.resource(r) <= limits[r] for r in RESOURCES)]
    if not reasons and fps and fitting:
        fastest = min(fitting)
        reasons.append(f"the fastest engine that fits takes {fastest:,} cycles per frame "
                       f"({board.clock_mhz * 1e6 / fastest:,.1f} fps), short of {fps:g} fps")
    if not reasons:
        for resource in RESOURCES:
            least = least_within_limits(table, limits, resource, deadline)
            if least is not None and least > limits[resource]:
                reasons.append(f"{resource.upper()} needs at least {least:,} while the other resources stay within "
                               f"their limits, but {board.name} allows {limits[resource]:,}")
    return f"model does not fit {board.name} as a layer-sequential engine: " + "; ".join(
        reasons or ["no configuration meets every limit at once"])


def fixed_engine_mapping(graph: Graph, board: Board, config: EngineConfig, instances: int = 1,
                         batch: int = 1) -> EngineMapping:
    """The engine mapping for a configuration (and number of instances and frames a run) chosen by
    hand (costs from the same model; the board's resources are not checked). `packed_macs` is kept only where
    the datapath and the board's DSPs allow it (`EngineWidths.packs_macs`). Raises
    EngineUnsupported when a layer cannot run on the configuration, or it puts buffers in
    UltraRAM on a board without any."""
    if not 1 <= instances <= MAX_INSTANCES:
        raise ValueError(f"an engine design has 1 to {MAX_INSTANCES} instances (one per HP port), not {instances}")
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"an engine run holds 1 to {MAX_BATCH} frames, not {batch}")
    if config.uram and not board.resources.uram:
        raise EngineUnsupported(f"{board.name} has no UltraRAM for the engine's {' and '.join(config.uram)} buffers")
    program = instructions(graph, config.word_bits)
    bits = weight_storage_bits(graph)
    plans = [plan(i, graph, config, bits) for i in program]
    widths = engine_widths(graph, plans)
    config = replace(config, packed_macs=config.packed_macs and widths.packs_macs(board.ps_type))
    bandwidth = memory_system(board)
    chosen = evaluate_config(graph, program, config, widths, bits, bandwidth, instances=instances, batch=batch)
    assert chosen is not None  # plan() above would have raised
    return EngineMapping(board, "fixed", config, chosen.cost, chosen.timings, widths,
                         float(chosen.cost.cycles), 0.0, resource_limits(board), 1, instances=instances,
                         alone_cycles=alone_cycles(graph, program, chosen, widths, bits, bandwidth), batch=batch)
