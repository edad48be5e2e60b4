"""Latency of the layer-sequential engine: its instructions back to back, as the cost model times them.

Apart from the dataflow pipeline's row-by-row simulation (`latency`): the engine has no stages
running concurrently and no FIFOs, so its report follows from the mapping alone.
"""

from __future__ import annotations

from hwcodesign.hardware.memory import MemoryCost
from hwcodesign.mapper.engine_map import EngineMapping
from hwcodesign.sim.latency import LatencyReport, StageTiming


def simulate_engine(mapping: EngineMapping) -> LatencyReport:
    """The engine's run: its instructions back to back (each waits for the previous one's
    results in DDR), each taking the cycles the cost model follows from its loops for all the
    run's `batch` frames, so a frame's latency is the run's. An instance's runs do not overlap, so
    the interval is the run over the frames the instances hold at once
    (`EngineMapping.bottleneck_cycles`); nothing streams in or out (the host writes inputs and
    reads outputs in DDR), and there are no FIFOs between layers to plan."""
    start = 0
    timings = []
    frame = max(mapping.frame_cycles, 1)
    for timing in mapping.timings:
        timings.append(StageTiming(timing.name, timing.kind, timing.cycles, float(start + timing.cycles),
                                   float(start + timing.cycles), timing.cycles / frame))
        start += timing.cycles
    return LatencyReport(mapping.board.clock_mhz, float(start), start / mapping.frames_in_flight, 0.0, 0.0, tuple(timings),
                         {}, {}, MemoryCost(0, 0))
