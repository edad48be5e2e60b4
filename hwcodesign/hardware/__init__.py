"""Hardware building blocks the op families share: foldings and stage costs, on-chip memories,
MAC and requantization units, stream words, line-buffer geometry, and the C-text helpers of the
generated stages. Below `hwcodesign.ops`, so every family's dataflow and engine facet can use
them without importing the mapper, the simulator or the code generator."""
