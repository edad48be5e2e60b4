"""The dataflow pipeline facet: stage plan, resources and cycles, HLS stage code."""
